/*  gw_link - the gateway's asynchronous broker link  */
#include "gw_link.h"
#include "bs_endpoints.h"
#include "bs_failover.h"
#include "bs_frames.h"
#include "bs_mdp.h"
#include "bs_monitor.h"
#include "bs_sizes.h"

#include <czmq.h>
#include <string.h>

//  How often requests that could not go out yet (no connection) are tried
#define UNSENT_RETRY_MS 10
//  How often a pair's connection is checked while calls are under way
#define LOST_CHECK_MS 100

typedef struct _pending_t pending_t;

struct _gw_waiter_t {
    pending_t *pending;
    gw_waiter_t *next;
    gw_link_fn *fn;
    void *arg;
};

struct _pending_t {
    char key [2 * BS_RID_SIZE + 1];     //  the rid in hex, the table's key
    char service [BS_SERVICE_MAX + 1];
    uint8_t *body;                      //  the encoded request, resent as is
    size_t size;
    int timeout_ms;
    int attempts;                       //  allowed
    int attempt;                        //  this one, from 1
    int64_t deadline;                   //  the attempt's end, or the pause's
    bool paused;                        //  after a whole round of not_active
    bool sent;                          //  the attempt went out
    bool unanswered;                    //  sent, and no reply since
    int stale;                          //  not_active answers still to come
                                        //  from brokers left behind
    bs_failover_t failover;
    gw_waiter_t *waiters;
};

struct _gw_link_t {
    zsock_t *sock;
    bs_endpoints_t *endpoints;
    bs_monitor_t *monitor;              //  NULL with one broker
    bool lost;                          //  the broker in use dropped us
    bool connected;                     //  the broker in use took a connection
    zhashx_t *pending;                  //  key -> pending_t
    int timeout_ms, attempts;
};

static bool s_read_events (gw_link_t *self);
static void s_failover (gw_link_t *self);

static void
s_rid_key (const uint8_t *rid, char *key)
{
    static const char hex [] = "0123456789abcdef";
    for (int i = 0; i < BS_RID_SIZE; i++) {
        key [2 * i] = hex [rid [i] >> 4];
        key [2 * i + 1] = hex [rid [i] & 15];
    }
    key [2 * BS_RID_SIZE] = 0;
}

static void
s_pending_destroy (void **item_p)
{
    pending_t *pending = *item_p;
    if (!pending)
        return;
    while (pending->waiters) {
        gw_waiter_t *next = pending->waiters->next;
        free (pending->waiters);
        pending->waiters = next;
    }
    free (pending->body);
    free (pending);
    *item_p = NULL;
}

gw_link_t *
gw_link_new (const char *endpoint, bs_keys_t *keys, int timeout_ms, int attempts)
{
    bs_endpoints_t *list = bs_endpoints_new (endpoint);
    if (!list || (bs_endpoints_size (list) > 1 && !bs_endpoints_valid (list))) {
        bs_endpoints_destroy (&list);
        return NULL;
    }
    gw_link_t *self = calloc (1, sizeof (gw_link_t));
    if (!self)
        abort ();
    self->endpoints = list;
    self->timeout_ms = timeout_ms > 0? timeout_ms: 2500;
    self->attempts = attempts > 0? attempts: 1;
    //  (no destructor: a request leaves the table before it is destroyed)
    self->pending = zhashx_new ();
    self->sock = zsock_new (ZMQ_DEALER);
    zsock_set_linger (self->sock, 0);
    zsock_set_maxmsgsize (self->sock, BS_MAX_BODY + 1024);
    zsock_set_rcvhwm (self->sock, 100000);
    zsock_set_sndhwm (self->sock, 100000);
    //  Nothing waits in the socket for a broker that is not there
    zsock_set_immediate (self->sock, 1);
    //  With a pair, a killed broker's connection closing is seen at once
    if (bs_endpoints_size (list) > 1)
        self->monitor = bs_monitor_new (zsock_resolve (self->sock),
            ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED);
    if ((bs_endpoints_size (list) > 1 && !self->monitor)
    ||  !bs_keys_connect_to (keys, self->sock, "broker")
    ||  zsock_connect (self->sock, "%s", bs_endpoints_current (list)) != 0) {
        gw_link_destroy (&self);
        return NULL;
    }
    return self;
}

void
gw_link_destroy (gw_link_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_link_t *self = *self_p;
    if (self->pending)
        for (void *item = zhashx_first (self->pending); item; item = zhashx_next (self->pending))
            s_pending_destroy (&item);
    zhashx_destroy (&self->pending);
    bs_monitor_destroy (&self->monitor);
    zsock_destroy (&self->sock);
    bs_endpoints_destroy (&self->endpoints);
    free (self);
    *self_p = NULL;
}

//  Sends the request's bytes without waiting: a request that cannot go out
//  now (no connection) is tried again on the next tick
static void
s_send (gw_link_t *self, pending_t *pending)
{
    //  With a pair, nothing goes out until the broker in use took our
    //  connection: right after a move the socket may still hold the
    //  connection being closed, which would swallow it
    if (self->monitor && !self->connected) {
        pending->sent = false;
        return;
    }
    void *sock = zsock_resolve (self->sock);
    pending->sent = zmq_send (sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 0
                 && zmq_send (sock, BS_MDPC, strlen (BS_MDPC), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
                 && zmq_send (sock, pending->service, strlen (pending->service), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0
                 && zmq_send (sock, pending->body, pending->size, ZMQ_DONTWAIT) >= 0;
    pending->unanswered |= pending->sent;
}

gw_waiter_t *
gw_link_call (gw_link_t *self, const char *service, const bs_msg_t *request,
              int timeout_ms, int attempts, gw_link_fn *fn, void *arg)
{
    size_t rid_size = 0;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    uint8_t fresh [BS_RID_SIZE];
    if (!rid || rid_size != BS_RID_SIZE) {
        bs_rid_generate (fresh);        //  callers always set one: a guard
        rid = fresh;
    }
    char key [2 * BS_RID_SIZE + 1];
    s_rid_key (rid, key);
    gw_waiter_t *waiter = calloc (1, sizeof (gw_waiter_t));
    if (!waiter)
        abort ();
    waiter->fn = fn;
    waiter->arg = arg;
    pending_t *pending = zhashx_lookup (self->pending, key);
    if (pending) {
        //  The same request under way: one answer for both
        waiter->pending = pending;
        waiter->next = pending->waiters;
        pending->waiters = waiter;
        return waiter;
    }
    //  The broker in use went away while we were idle: start with the next
    if (self->monitor) {
        s_read_events (self);
        if (self->lost)
            s_failover (self);
    }
    pending = calloc (1, sizeof (pending_t));
    if (!pending)
        abort ();
    memcpy (pending->key, key, sizeof key);
    snprintf (pending->service, sizeof pending->service, "%s", service);
    pending->body = bs_msg_encode (request, &pending->size);
    pending->timeout_ms = timeout_ms > 0? timeout_ms: self->timeout_ms;
    pending->attempts = attempts > 0? attempts: self->attempts;
    pending->attempt = 1;
    pending->deadline = zclock_mono () + pending->timeout_ms;
    pending->waiters = waiter;
    waiter->pending = pending;
    zhashx_insert (self->pending, key, pending);
    s_send (self, pending);
    return waiter;
}

void
gw_link_cancel (gw_link_t *self, gw_waiter_t **waiter_p)
{
    if (!waiter_p || !*waiter_p)
        return;
    gw_waiter_t *waiter = *waiter_p;
    pending_t *pending = waiter->pending;
    gw_waiter_t **link = &pending->waiters;
    while (*link && *link != waiter)
        link = &(*link)->next;
    if (*link)
        *link = waiter->next;
    free (waiter);
    //  Nobody waits any more: a late reply is dropped like any unknown one
    if (!pending->waiters) {
        zhashx_delete (self->pending, pending->key);
        void *item = pending;
        s_pending_destroy (&item);
    }
    *waiter_p = NULL;
}

//  Calls back everyone waiting for the request and forgets it
static void
s_finish (gw_link_t *self, pending_t *pending, const bs_msg_t *answer, bs_err_t err)
{
    //  Out of the table first: the callbacks see a consistent link
    zhashx_delete (self->pending, pending->key);
    gw_waiter_t *waiter = pending->waiters;
    pending->waiters = NULL;
    while (waiter) {
        gw_waiter_t *next = waiter->next;
        waiter->fn (waiter->arg, answer, err);
        free (waiter);
        waiter = next;
    }
    void *item = pending;
    s_pending_destroy (&item);
}

void
gw_link_fail_all (gw_link_t *self, bs_err_t err)
{
    pending_t *pending;
    while ((pending = zhashx_first (self->pending)))
        s_finish (self, pending, NULL, err);
}

void *
gw_link_socket (gw_link_t *self)
{
    return zsock_resolve (self->sock);
}

void *
gw_link_monitor (gw_link_t *self)
{
    return self->monitor? bs_monitor_socket (self->monitor): NULL;
}

size_t
gw_link_pending (gw_link_t *self)
{
    return zhashx_size (self->pending);
}

const char *
gw_link_endpoint (gw_link_t *self)
{
    return bs_endpoints_current (self->endpoints);
}

//  Reads the monitor's events of the broker in use; true when its
//  connection dropped, or was refused before it ever took us
static bool
s_read_events (gw_link_t *self)
{
    return self->monitor
        && bs_monitor_track (self->monitor, bs_endpoints_current (self->endpoints), &self->connected, &self->lost);
}

//  Moves to the next broker of the pair and resends every request under
//  way there (except those pausing: they go when their pause ends)
static void
s_failover (gw_link_t *self)
{
    if (bs_endpoints_size (self->endpoints) < 2)
        return;
    bs_endpoints_switch (self->endpoints, self->sock);
    self->lost = false;
    self->connected = false;
    zsys_info ("gateway: asking the broker at %s now", bs_endpoints_current (self->endpoints));
    int64_t now = zclock_mono ();
    for (pending_t *pending = zhashx_first (self->pending); pending; pending = zhashx_next (self->pending)) {
        //  The broker left behind may still answer what it got: a
        //  not_active from it must not move us again
        if (pending->unanswered)
            pending->stale++;
        pending->unanswered = false;
        if (!pending->paused) {
            pending->deadline = now + pending->timeout_ms;
            s_send (self, pending);
        }
    }
}

//  A reply for one of our requests
static void
s_on_reply (gw_link_t *self, pending_t *pending, bs_msg_t *reply)
{
    pending->unanswered = false;
    if (!bs_failover_is_not_active (reply)) {
        s_finish (self, pending, reply, BS_OK);
        return;
    }
    if (pending->stale > 0) {
        pending->stale--;       //  from a broker we moved away from already
        return;
    }
    //  The passive broker of a pair: the next one should serve.  A whole
    //  round of them (a takeover under way) pauses and counts as an attempt;
    //  the last attempt's not_active is the caller's answer.
    size_t brokers = bs_endpoints_size (self->endpoints);
    if (bs_failover_not_active (&pending->failover, brokers) == BS_FAILOVER_NOW)
        s_failover (self);
    else
    if (pending->attempt < pending->attempts) {
        pending->attempt++;
        pending->paused = true;
        pending->deadline = zclock_mono () + BS_FAILOVER_PAUSE_MS;
        s_failover (self);
    }
    else
        s_finish (self, pending, reply, BS_OK);
}

void
gw_link_on_input (gw_link_t *self)
{
    void *sock = zsock_resolve (self->sock);
    zmq_msg_t frames [4];
    int count;
    while (bs_frames_recv (sock, frames, 4, &count) >= 0) {
        pending_t *pending = NULL;
        const uint8_t *rid;
        size_t rid_size;
        if (count == 4 && zmq_msg_size (&frames [0]) == 0
        &&  zmq_msg_size (&frames [1]) == strlen (BS_MDPC)
        &&  memcmp (zmq_msg_data (&frames [1]), BS_MDPC, strlen (BS_MDPC)) == 0
        &&  bs_peek_bytes (zmq_msg_data (&frames [3]), zmq_msg_size (&frames [3]), BS_FIELD_rid, &rid, &rid_size)
        &&  rid_size == BS_RID_SIZE) {
            char key [2 * BS_RID_SIZE + 1];
            s_rid_key (rid, key);
            pending = zhashx_lookup (self->pending, key);
        }
        //  Replies nobody waits for (late, or to a cancelled call) are
        //  dropped undecoded
        bs_msg_t *reply = NULL;
        if (pending) {
            bs_err_t err;
            reply = bs_msg_decode (zmq_msg_data (&frames [3]), zmq_msg_size (&frames [3]), &err, NULL, 0);
        }
        bs_frames_close (frames, count);
        if (reply)
            s_on_reply (self, pending, reply);
        bs_msg_destroy (&reply);
    }
}

int
gw_link_tick (gw_link_t *self)
{
    if (zhashx_size (self->pending) == 0) {
        s_read_events (self);
        return -1;
    }
    int64_t now = zclock_mono ();
    bool pair = bs_endpoints_size (self->endpoints) > 1;
    //  The broker's connection dropped (killed): move on now rather than
    //  when each request's timer runs out.  A request unanswered in time
    //  moves on too: it may have gone to a broker that died.
    s_read_events (self);
    bool move = pair && self->lost;
    zlistx_t *late = zlistx_new ();
    int64_t next = now + (pair? LOST_CHECK_MS: 1000);
    for (pending_t *pending = zhashx_first (self->pending); pending; pending = zhashx_next (self->pending)) {
        if (now >= pending->deadline) {
            zlistx_add_end (late, pending);
            move |= pair && !pending->paused;
        }
        else {
            if (!pending->sent && !pending->paused)
                s_send (self, pending);
            if (!pending->sent && !pending->paused && now + UNSENT_RETRY_MS < next)
                next = now + UNSENT_RETRY_MS;
            if (pending->deadline < next)
                next = pending->deadline;
        }
    }
    for (pending_t *pending = zlistx_first (late); pending; pending = zlistx_next (late)) {
        if (pending->paused) {
            //  The pause after a round of not_active ends: the next round
            pending->paused = false;
            pending->deadline = now + pending->timeout_ms;
            if (!move)
                s_send (self, pending);
        }
        else
        if (pending->attempt < pending->attempts) {
            pending->attempt++;
            pending->deadline = now + pending->timeout_ms;
            bs_failover_reset (&pending->failover);
            //  A failover below sends it with every other request under way
            if (!move)
                s_send (self, pending);
        }
        else
            s_finish (self, pending, NULL, BS_ERR_timeout);
    }
    zlistx_destroy (&late);
    if (move)
        s_failover (self);
    if (zhashx_size (self->pending) == 0)
        return -1;
    //  (a request sent again just now may be due sooner than computed)
    int wait = (int) (next - zclock_mono ());
    return wait < 0? 0: wait > (pair? LOST_CHECK_MS: 1000)? (pair? LOST_CHECK_MS: 1000): wait;
}
