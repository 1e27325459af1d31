/*  mdpworker - Majordomo worker with Paranoid Pirate reconnects and
 *  failover between brokers  */
#include "mdpworker.h"
#include "bs_alloc.h"
#include "bs_endpoints.h"
#include "bs_frames.h"
#include "bs_monitor.h"
#include "bs_mdp.h"
#include "bs_msg.h"

#include <czmq.h>
#include <string.h>

//  Messages queued each way on the broker socket
#define MDPWORKER_HWM  250000

//  The longest a silence may last before the next try, however long the
//  brokers stay away
#define SILENCE_MAX_MS 8000

//  The extra frame of a standby broker's DISCONNECT (it is not active)
#define BACKUP_FRAME "backup"

struct _mdpworker_t {
    bs_endpoints_t *endpoints;  //  the brokers, the one in use current
    char *service, *id;
    int heartbeat_ms, liveness;
    zsock_t *sock;
    bs_monitor_t *monitor;      //  the broker connection's events (with two
                                //  brokers or more: where to go when it drops)
    bool heard;                 //  the broker in use answered us as active
    int64_t broker_expiry;      //  move on when nothing heard by then
    int silence_ms;             //  how long a silence may last here
    int misses;                 //  moves in a row with no answer from an
                                //  active broker (silent, or the backup)
    int64_t connected_at;       //  when the current broker was connected
    int64_t backup_move_at;     //  the broker said it is the backup: move on
                                //  then (0: it did not)
    int64_t next_heartbeat;
    zmq_msg_t status;           //  node_status body, may be empty
    bs_keys_t *keys;            //  borrowed
    bool ready_due;
};

//  How long to wait after the misses-th move in a row: one liveness window
//  for each broker tried once, then twice as long for every round of the
//  list that went unanswered, up to SILENCE_MAX_MS.  With one broker this
//  is the old Paranoid Pirate backoff (2, 4, 8... windows).
static int
s_backoff_ms (mdpworker_t *self, int misses)
{
    int64_t wait = (int64_t) self->heartbeat_ms * self->liveness;
    for (int round = misses / (int) bs_endpoints_size (self->endpoints); round > 0 && wait < SILENCE_MAX_MS; round--)
        wait *= 2;
    return wait < SILENCE_MAX_MS? (int) wait: SILENCE_MAX_MS;
}

//  READY carries service, node id and status; HEARTBEAT the status
static void
s_send_command (mdpworker_t *self, uint8_t command)
{
    void *sock = zsock_resolve (self->sock);
    bool ready = command == BS_MDPW_READY;
    bool status = (ready || command == BS_MDPW_HEARTBEAT) && zmq_msg_size (&self->status) > 0;
    //  Never block the node: with no connection (the broker is away, or
    //  refused our key) the command is dropped and sent again later.  Once
    //  the first frame is taken, the rest of the message is too.
    if (zmq_send (sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    zmq_send (sock, BS_MDPW, strlen (BS_MDPW), ZMQ_SNDMORE);
    zmq_send (sock, &command, 1, (ready || status)? ZMQ_SNDMORE: 0);
    if (ready) {
        zmq_send (sock, self->service, strlen (self->service), ZMQ_SNDMORE);
        zmq_send (sock, self->id, strlen (self->id), status? ZMQ_SNDMORE: 0);
    }
    if (status)
        zmq_send (sock, zmq_msg_data (&self->status), zmq_msg_size (&self->status), 0);
}

void
mdpworker_set_status (mdpworker_t *self, const void *data, size_t size)
{
    zmq_msg_close (&self->status);
    zmq_msg_init_size (&self->status, size);
    memcpy (zmq_msg_data (&self->status), data, size);
}

//  A fresh socket to the current broker
static void
s_connect (mdpworker_t *self)
{
    bs_monitor_destroy (&self->monitor);
    zsock_destroy (&self->sock);
    self->sock = zsock_new (ZMQ_DEALER);
    zsock_set_linger (self->sock, 0);
    zsock_set_maxmsgsize (self->sock, BS_MAX_BODY + 1024);
    //  Finite queues both ways, above what the broker may have in flight
    //  (its --max-inflight, 200,000 by default): within the broker's own
    //  bounds nothing is dropped; past them a reply that cannot be queued
    //  is dropped (sends never block) and its client retries, and no
    //  broker can grow this node's memory without bound
    zsock_set_sndhwm (self->sock, MDPWORKER_HWM);
    zsock_set_rcvhwm (self->sock, MDPWORKER_HWM);
    //  No routing id of our own: the broker gives each connection one, so
    //  that no other connection can take ours over; READY says who we are
    //  TCP reconnects back off too, from 100 ms up to 2 s
    zsock_set_reconnect_ivl (self->sock, 100);
    zsock_set_reconnect_ivl_max (self->sock, 2000);
    bs_keys_connect_to (self->keys, self->sock, "broker");
    //  Watched from before the connect; without a monitor, silence still
    //  moves the worker on
    if (bs_endpoints_size (self->endpoints) > 1)
        self->monitor = bs_monitor_new (zsock_resolve (self->sock), ZMQ_EVENT_DISCONNECTED);
    self->heard = false;
    zsock_connect (self->sock, "%s", bs_endpoints_current (self->endpoints));
    //  READY goes out on the next tick, with whatever status is set by then
    self->ready_due = true;
    int64_t now = zclock_mono ();
    self->connected_at = now;
    self->backup_move_at = 0;
    self->broker_expiry = now + self->silence_ms;
    self->next_heartbeat = now + self->heartbeat_ms;
}

//  Moves to the next broker of the list (the same one when there is one)
static void
s_move_on (mdpworker_t *self, const char *why)
{
    const char *from = bs_endpoints_current (self->endpoints);
    size_t from_index = bs_endpoints_index (self->endpoints);
    self->misses++;
    self->silence_ms = s_backoff_ms (self, self->misses);
    const char *to = bs_endpoints_next (self->endpoints);
    if (bs_endpoints_size (self->endpoints) == 1)
        zsys_warning ("%s: broker %s %s: reconnecting (waiting up to %d ms for it)", self->id, from, why,
                      self->silence_ms);
    else
        zsys_warning ("%s: broker %s (%zu) %s: moving to %s (%zu; waiting up to %d ms for it)", self->id, from,
                      from_index, why, to, bs_endpoints_index (self->endpoints), self->silence_ms);
    s_connect (self);
}

mdpworker_t *
mdpworker_new (const char *endpoint, const char *service, const char *id, int heartbeat_ms, int liveness,
               bs_keys_t *keys)
{
    bs_endpoints_t *endpoints = bs_endpoints_new (endpoint);
    if (!endpoints) {
        zsys_error ("%s: '%s' is not a list of broker endpoints", id, endpoint? endpoint: "");
        return NULL;
    }
    mdpworker_t *self = calloc (1, sizeof (mdpworker_t));
    if (!self)
        abort ();
    self->endpoints = endpoints;
    self->service = bs_strdup (service);
    self->id = bs_strdup (id);
    self->heartbeat_ms = heartbeat_ms;
    self->liveness = liveness;
    self->keys = keys;
    self->silence_ms = heartbeat_ms * liveness;
    zmq_msg_init (&self->status);
    s_connect (self);
    return self;
}

void
mdpworker_destroy (mdpworker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mdpworker_t *self = *self_p;
    bs_monitor_destroy (&self->monitor);
    zsock_destroy (&self->sock);
    zmq_msg_close (&self->status);
    bs_endpoints_destroy (&self->endpoints);
    free (self->service);
    free (self->id);
    free (self);
    *self_p = NULL;
}

void *
mdpworker_socket (mdpworker_t *self)
{
    return zsock_resolve (self->sock);
}

void *
mdpworker_monitor (mdpworker_t *self)
{
    return self->monitor? bs_monitor_socket (self->monitor): NULL;
}

size_t
mdpworker_broker_index (mdpworker_t *self)
{
    return bs_endpoints_index (self->endpoints);
}

const char *
mdpworker_broker (mdpworker_t *self)
{
    return bs_endpoints_current (self->endpoints);
}

int
mdpworker_recv (mdpworker_t *self, zmq_msg_t *token, zmq_msg_t *body)
{
    void *sock = zsock_resolve (self->sock);
    zmq_msg_t frames [6];
    int count;
    int total = bs_frames_recv (sock, frames, 6, &count);
    if (total < 0)
        return -1;
    int rc = -1;
    if (count < 3 || zmq_msg_size (&frames [0]) != 0 || zmq_msg_size (&frames [2]) != 1
    ||  zmq_msg_size (&frames [1]) != strlen (BS_MDPW)
    ||  memcmp (zmq_msg_data (&frames [1]), BS_MDPW, strlen (BS_MDPW)) != 0)
        zsys_warning ("%s: dropped a malformed message from the broker", self->id);
    else
    if (*(uint8_t *) zmq_msg_data (&frames [2]) == BS_MDPW_DISCONNECT && total == 4
    &&  zmq_msg_size (&frames [3]) == strlen (BACKUP_FRAME)
    &&  memcmp (zmq_msg_data (&frames [3]), BACKUP_FRAME, strlen (BACKUP_FRAME)) == 0) {
        //  A standby broker: another one in the list is the one to
        //  serve.  Not more than once per heartbeat; once every
        //  broker said so in a row, only after a backoff as for silence.
        if (!self->backup_move_at) {
            int in_a_row = self->misses + 1;
            int64_t wait = in_a_row < (int) bs_endpoints_size (self->endpoints)?
                self->heartbeat_ms: s_backoff_ms (self, in_a_row - (int) bs_endpoints_size (self->endpoints));
            self->backup_move_at = self->connected_at + wait;
            //  The move, not the silence, decides from now on
            if (self->broker_expiry < self->backup_move_at + self->heartbeat_ms)
                self->broker_expiry = self->backup_move_at + self->heartbeat_ms;
            zsys_info ("%s: broker %s says it is the backup", self->id, bs_endpoints_current (self->endpoints));
        }
    }
    else {
        //  Anything else from the broker shows it is alive and active
        self->misses = 0;
        self->heard = true;
        self->silence_ms = s_backoff_ms (self, 0);
        self->broker_expiry = zclock_mono () + self->silence_ms;
        uint8_t command = *(uint8_t *) zmq_msg_data (&frames [2]);
        //  A broker that speaks to us beyond heartbeats serves us after all
        if (command != BS_MDPW_HEARTBEAT)
            self->backup_move_at = 0;
        if (command == BS_MDPW_REQUEST && total == 6 && zmq_msg_size (&frames [4]) == 0) {
            zmq_msg_init (token);
            zmq_msg_move (token, &frames [3]);
            zmq_msg_init (body);
            zmq_msg_move (body, &frames [5]);
            rc = MDPWORKER_REQUEST;
        }
        else
        if (command == BS_MDPW_ASSIGN && total == 4) {
            zmq_msg_init (body);
            zmq_msg_move (body, &frames [3]);
            rc = MDPWORKER_ASSIGN;
        }
        else
        if (command == BS_MDPW_DISCONNECT) {
            zsys_info ("%s: broker asked to register again", self->id);
            s_send_command (self, BS_MDPW_READY);
        }
        else
        if (command != BS_MDPW_HEARTBEAT)
            zsys_warning ("%s: dropped an unexpected command %d from the broker", self->id, command);
    }
    bs_frames_close (frames, count);
    return rc;
}

int
mdpworker_reply (mdpworker_t *self, zmq_msg_t *token, const void *body, size_t size)
{
    void *sock = zsock_resolve (self->sock);
    uint8_t command = BS_MDPW_REPLY;
    //  A reply that cannot go out now is lost like one to a dead broker:
    //  the client's retry (same rid) gets the stored answer
    if (zmq_send (sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    zmq_send (sock, BS_MDPW, strlen (BS_MDPW), ZMQ_SNDMORE);
    zmq_send (sock, &command, 1, ZMQ_SNDMORE);
    zmq_send (sock, zmq_msg_data (token), zmq_msg_size (token), ZMQ_SNDMORE);
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    return zmq_send (sock, body, size, 0) < 0? -1: 0;
}

int64_t
mdpworker_tick (mdpworker_t *self)
{
    if (self->ready_due) {
        s_send_command (self, BS_MDPW_READY);
        self->ready_due = false;
    }
    //  The connection to a broker that had been serving us closed: its
    //  process died (or its host went away), so the next broker now rather
    //  than after a silent liveness window.  A connection that never got
    //  an answer (refused, or a failed handshake) is left to the silence
    //  rule and its backoff.
    bs_monitor_event_t event;
    bool dropped = false;
    while (self->monitor && bs_monitor_next (self->monitor, &event))
        dropped |= event.event == ZMQ_EVENT_DISCONNECTED;
    if (dropped && self->heard)
        s_move_on (self, "closed the connection");
    int64_t now = zclock_mono ();
    if (self->backup_move_at && now >= self->backup_move_at) {
        s_move_on (self, "is the backup");
        now = zclock_mono ();
    }
    if (now >= self->broker_expiry) {
        //  Heartbeats may be waiting unread while we were busy: not silence
        int events = 0;
        size_t len = sizeof events;
        zmq_getsockopt (zsock_resolve (self->sock), ZMQ_EVENTS, &events, &len);
        if (events & ZMQ_POLLIN)
            return 0;
    }
    if (now >= self->broker_expiry) {
        //  Silent: the next broker of the list (the same one when there is
        //  one), backing off while every one stays away
        char why [64];
        snprintf (why, sizeof why, "is silent (%d ms)", self->silence_ms);
        s_move_on (self, why);
        now = zclock_mono ();
    }
    if (now >= self->next_heartbeat) {
        s_send_command (self, BS_MDPW_HEARTBEAT);
        self->next_heartbeat = now + self->heartbeat_ms;
    }
    int64_t wait = self->next_heartbeat - now;
    if (self->backup_move_at && self->backup_move_at - now < wait)
        wait = self->backup_move_at - now;
    return wait < 0? 0: wait;
}

void
mdpworker_disconnect (mdpworker_t *self)
{
    s_send_command (self, BS_MDPW_DISCONNECT);
}
