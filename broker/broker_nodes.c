/*  broker_nodes - the broker's node socket: one handler per MDPW command
 *  (READY, REPLY, HEARTBEAT, DISCONNECT), a node's own requests (an order
 *  node's decrement), and the nodes' liveness (missed heartbeats, closed
 *  connections).  Part of the broker object (broker_internal.h).  Replies
 *  travel as raw zmq_msg_t, the body passed on by reference.
 */
#include "broker_internal.h"
#include "cache_io.h"
#include "wire.h"
#include "bs_frames.h"
#include "bs_mdp.h"

#include <errno.h>
#include <string.h>

static void
s_send_backup (broker_t *self, zmq_msg_t *node)
{
    wire_backup (self->node_sock, zmq_msg_data (node), zmq_msg_size (node));
}

//  A node's connection closed (it was killed, or its host went away):
//  declared dead at once, without waiting for missed heartbeats
void
broker_disconnects (broker_t *self)
{
    bs_monitor_event_t event;
    while (bs_monitor_next (self->disconnects, &event))
        for (size_t i = 0; event.event == ZMQ_EVENT_DISCONNECTED && i < workers_size (self->workers); i++) {
            worker_t *w = workers_at (self->workers, i);
            if (w->alive && w->fd == event.value) {
                w->fd = -1;
                broker_worker_dead (self, w, "its connection closed");
            }
        }
}

//  A send to the node failed.  EAGAIN is the broker's own proof that the
//  node does not read (its queue is at the high-water mark): it is held
//  out (workers_hold) as well as declared dead, so that its next READY or
//  heartbeat does not bring it back, to fail again at the next send, for
//  as long as it does not read
void
broker_worker_unreachable (broker_t *self, worker_t *w, int error)
{
    if (!w->alive)
        return;
    if (error != EAGAIN) {
        broker_worker_dead (self, w, "unreachable");
        return;
    }
    int64_t hold = workers_hold (self->workers, w->id, zclock_mono ());
    char why [128];
    snprintf (why, sizeof why, "unreachable: its queue is full (held out for %lld ms)", (long long) hold);
    broker_worker_dead (self, w, why);
}

//  A held node's READY or heartbeat is answered HEARTBEAT: the broker is
//  there (the node keeps its connection), but the node is not told to
//  register.  Once its hold ends, its next message gets DISCONNECT, which
//  it reads after whatever its queue holds before it, and its READY then
//  registers it.
static void
s_send_heartbeat (broker_t *self, zmq_msg_t *identity)
{
    worker_t stranger = { .identity_size = zmq_msg_size (identity) };
    if (stranger.identity_size <= sizeof stranger.identity) {
        memcpy (stranger.identity, zmq_msg_data (identity), stranger.identity_size);
        wire_to_worker (self->node_sock, &stranger, BS_MDPW_HEARTBEAT, NULL, NULL);
    }
}

//  Frames of a node's message: [node] [empty] [MDPW01] [command] ...
#define NODE_IDENTITY   0
#define NODE_COMMAND    3

//  How long a worker may stay silent: its kind's heartbeat times liveness
static int64_t
s_window (broker_t *self, worker_t *w)
{
    return (int64_t) w->heartbeat_ms * (w->standard? MDP_LIVENESS: self->options.liveness);
}

//  A node's liveness window starts again with each message it sends
static void
s_node_seen (broker_t *self, worker_t *w, zmq_msg_t *command)
{
    w->last_seen = zclock_mono ();
    w->expiry = w->last_seen + s_window (self, w);
    w->fd = zmq_msg_get (command, ZMQ_SRCFD);
}

//  True when the connection of routing id is newer than the worker's.  The
//  node socket's ROUTER numbers the connections it names itself, in order:
//  [0] and a 32-bit big-endian counter (compared with wrap-around).  Ids of
//  any other shape are taken as newer.
static bool
s_newer_connection (zmq_msg_t *routing_id, worker_t *w)
{
    const uint8_t *a = zmq_msg_data (routing_id), *b = w->identity;
    if (zmq_msg_size (routing_id) != 5 || w->identity_size != 5 || a [0] != 0 || b [0] != 0)
        return true;
    uint32_t na = (uint32_t) a [1] << 24 | (uint32_t) a [2] << 16 | (uint32_t) a [3] << 8 | a [4];
    uint32_t nb = (uint32_t) b [1] << 24 | (uint32_t) b [2] << 16 | (uint32_t) b [3] << 8 | b [4];
    return (int32_t) (na - nb) > 0;
}

//  A READY for a service this broker does not offer: logged, and answered
//  DISCONNECT one heartbeat (of the worker's kind) later, at a tick: the
//  reference 7/MDP worker reconnects and sends READY again the moment it
//  hears DISCONNECT, and would otherwise spin
static void
s_refuse_ready (broker_t *self, zmq_msg_t *identity, bool standard, const char *why)
{
    static int64_t last_warning;
    static char last_why [256];
    int64_t now = zclock_mono ();
    if (now - last_warning > 5000 || strcmp (why, last_why) != 0) {
        last_warning = now;
        snprintf (last_why, sizeof last_why, "%s", why);
        zsys_warning ("broker: refused READY: %s", why);
    }
    size_t size = zmq_msg_size (identity);
    if (size > sizeof self->refused [0].identity)
        return;
    if (self->refused_count == REFUSED_MAX)
        broker_send_refusals (self, INT64_MAX);     //  full: all go now
    refused_t *entry = &self->refused [self->refused_count++];
    memcpy (entry->identity, zmq_msg_data (identity), size);
    entry->size = size;
    entry->due = now + (standard? MDP_HEARTBEAT_MS: self->options.heartbeat_ms);
}

void
broker_send_refusals (broker_t *self, int64_t now)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->refused_count; i++) {
        refused_t *entry = &self->refused [i];
        if (entry->due <= now) {
            worker_t stranger = { .identity_size = entry->size };
            memcpy (stranger.identity, entry->identity, entry->size);
            wire_to_worker (self->node_sock, &stranger, BS_MDPW_DISCONNECT, NULL, NULL);
        }
        else
            self->refused [kept++] = *entry;
    }
    self->refused_count = kept;
}

//  True when a key's name is the service's, or the service's and a dash
//  and more (the names keygen makes for a service's workers)
static bool
s_key_names_service (const char *key_name, const char *service)
{
    size_t n = strlen (service);
    return strncmp (key_name, service, n) == 0 && (key_name [n] == 0 || (key_name [n] == '-' && key_name [n + 1]));
}

//  READY [service]: a standard 7/MDP worker registers; READY [service] [id]
//  [status]: a bookstore node (re)registers.  A READY for a service the
//  services setting does not offer, or a standard worker's for one of the
//  bookstore's services, is refused with DISCONNECT (s_refuse_ready).  A
//  READY refused for its id or key gets no answer: a DISCONNECT would only
//  bring the same READY back.
static void
s_node_ready (broker_t *self, zmq_msg_t *frames, int count, int total)
{
    //  A connection that dropped before this message came may have had the
    //  same descriptor: settle those first
    broker_disconnects (self);
    worker_t *w = workers_find (self->workers, zmq_msg_data (&frames [NODE_IDENTITY]), zmq_msg_size (&frames [NODE_IDENTITY]));
    //  7/MDP's READY carries the service alone; the bookstore's nodes add
    //  their id and status
    bool standard = total == 5;
    char service [BS_SERVICE_MAX + 1] = "", id [BS_ID_MAX + 1] = "";
    if (count >= 5)
        wire_frame_text (&frames [4], service, sizeof service);
    if (count >= 6)
        wire_frame_text (&frames [5], id, sizeof id);
    //  The id names the node everywhere (assignments, status, the
    //  feed): plain text, and not another live node's
    //  (a standard worker sends no id: it is known by its routing
    //  id in hex, which must not be another live node's either)
    bool bad_id = count >= 6 && (zmq_msg_size (&frames [5]) >= sizeof id || !workers_id_valid (id));
    if (bad_id) {
        static int64_t last_id_warning;
        if (zclock_mono () - last_id_warning > 5000) {
            last_id_warning = zclock_mono ();
            zsys_warning ("broker: refused READY: node id '%.64s' is not plain text", id);
        }
        return;
    }
    char why [256];
    if (count < 5 || zmq_msg_size (&frames [4]) > BS_SERVICE_MAX || !*service
    ||  !bs_text_valid (service, strlen (service)) || strchr (service, '@')) {
        snprintf (why, sizeof why, "its service name is not 1 to %d bytes of text without '@'", BS_SERVICE_MAX);
        s_refuse_ready (self, &frames [NODE_IDENTITY], standard, why);
        return;
    }
    if (!broker_service_allowed (self, service)) {
        snprintf (why, sizeof why, "service '%s' is not offered by this broker (its services setting: %.80s)",
                  service, self->options.services);
        s_refuse_ready (self, &frames [NODE_IDENTITY], standard, why);
        return;
    }
    if (standard && broker_bookstore_service (service)) {
        snprintf (why, sizeof why, "service '%s' takes bookstore nodes only (READY with a node id and status)",
                  service);
        s_refuse_ready (self, &frames [NODE_IDENTITY], standard, why);
        return;
    }
    //  Under CURVE every worker presents a node key (the node port takes
    //  no other); a node's must be listed under the id it announces, and
    //  that id must name its service (catalog-2 serves the catalog, order-3
    //  orders), as the replication sockets require too: an order node's
    //  key never registers as a catalog replica.  A standard worker's key
    //  must be named after the service it offers (echo, or echo-2 for
    //  echo), so that one worker's key, or a node's, offers no other
    const char *key_name = "";
    if (self->options.keys && standard && strcmp (bs_keys_role (&frames [NODE_COMMAND], &key_name), "node") == 0
    &&  !s_key_names_service (key_name, service)) {
        snprintf (why, sizeof why, "a standard worker's key must be named '%.32s' or '%.32s-...', not '%.64s'",
                  service, service, key_name);
        s_refuse_ready (self, &frames [NODE_IDENTITY], standard, why);
        return;
    }
    bool impostor = self->options.keys
                 && (strcmp (bs_keys_role (&frames [NODE_COMMAND], &key_name), "node") != 0
                     || (!standard && (strcmp (key_name, id) != 0
                                       || strncmp (key_name, service, strlen (service)) != 0)));
    if (total > 7 || impostor) {
        static int64_t last_warning;
        if (zclock_mono () - last_warning > 5000) {
            last_warning = zclock_mono ();
            if (impostor)
                zsys_warning ("broker: refused READY from '%s' for %s: its key belongs to '%s'", id, service, key_name);
            else
                zsys_warning ("broker: refused READY for '%s': %d frames, at most 7 expected", service, total);
        }
        return;
    }
    //  A node held out (its queue at this broker was full) registers once
    //  its hold ends, not before, whatever it says
    int64_t held = workers_held (self->workers, id, zmq_msg_data (&frames [NODE_IDENTITY]),
                                 zmq_msg_size (&frames [NODE_IDENTITY]), zclock_mono ());
    if (held > 0) {
        static int64_t last_held_warning;
        if (zclock_mono () - last_held_warning > 5000) {
            last_held_warning = zclock_mono ();
            zsys_warning ("broker: READY from %s held off for %lld ms more: its queue here was full",
                          *id? id: "a standard worker", (long long) held);
        }
        s_send_heartbeat (self, &frames [NODE_IDENTITY]);
        return;
    }
    //  A service the allow-list's "*" admits exists from its first worker on
    if (requests_service_add (self->requests, service) < 0) {
        snprintf (why, sizeof why, "service '%s' would be one more than the %d this broker serves", service,
                  REQUESTS_MAX_SERVICES);
        s_refuse_ready (self, &frames [NODE_IDENTITY], standard, why);
        return;
    }
    //  Every connection has its own routing id, so a node that connects
    //  again (it restarted, or its link dropped) comes under a new one.
    //  With CURVE its key proved the id: its old record is displaced.  In
    //  plain mode ids prove nothing: the id stays with the live connection
    //  that holds it (a node's old connection is noticed closed at once on
    //  loopback, or dies with its heartbeats), and the newcomer is refused,
    //  never silently.
    worker_t *holder = workers_id_holder (self->workers, id, zmq_msg_data (&frames [NODE_IDENTITY]),
                                          zmq_msg_size (&frames [NODE_IDENTITY]));
    if (holder && !self->options.keys) {
        static int64_t last_holder_warning;
        if (zclock_mono () - last_holder_warning > 5000) {
            last_holder_warning = zclock_mono ();
            zsys_warning ("broker: refused READY for '%s': a live node holds that id on another connection "
                          "(plain mode: node ids are not authenticated)", id);
        }
        return;
    }
    if (holder && !s_newer_connection (&frames [NODE_IDENTITY], holder)) {
        //  A READY still queued from a connection the node has since
        //  replaced: the newer one stays
        zsys_debug ("broker: ignored a READY for %s from a connection older than its current one", id);
        return;
    }
    if (holder) {
        zsys_info ("broker: node %s registered again from a new connection: its old one is dropped", id);
        workers_displace (holder, zclock_mono ());
        broker_redispatch_from (self, holder);
    }
    //  Dead records of the id are forgotten now rather than in 10 minutes
    for (size_t i = 0; i < workers_size (self->workers); i++) {
        worker_t *old = workers_at (self->workers, i);
        if (!old->alive && old != w && strcmp (old->id, *id? id: "") == 0)
            workers_displace (old, zclock_mono ());
    }
    if (w && w->alive && !standard && !w->standard && strcmp (w->service, service) == 0
    &&  strcmp (w->id, id) == 0) {
        //  A READY on a connection registered and alive: the node answers
        //  a DISCONNECT sent while it was not registered (several may wait
        //  in its queue, one for each heartbeat it sent meanwhile).  It
        //  holds, in order, what it was sent since it registered, so its
        //  registration stands, with the status it brings; taking its
        //  requests back here would send them again, to a node that is
        //  behind, once for each such READY.
        s_node_seen (self, w, &frames [NODE_COMMAND]);
        if (count >= 7)
            workers_apply_status (w, zmq_msg_data (&frames [6]), zmq_msg_size (&frames [6]));
        broker_control (self, false);
        return;
    }
    if (w && w->alive) {
        //  A standard worker's second READY (7/MDP has one per
        //  connection), or one for another service or id: it starts
        //  afresh, and its requests go to someone else
        workers_declare_dead (w, zclock_mono ());
        broker_redispatch_from (self, w);
    }
    w = workers_register (self->workers, zmq_msg_data (&frames [NODE_IDENTITY]), zmq_msg_size (&frames [NODE_IDENTITY]),
                          service, id);
    if (!w)
        return;
    w->standard = standard;
    w->heartbeat_ms = standard? MDP_HEARTBEAT_MS: self->options.heartbeat_ms;
    w->registered = w->last_seen = zclock_mono ();
    w->expiry = w->registered + s_window (self, w);
    w->next_heartbeat = w->registered + w->heartbeat_ms;
    if (w->expiry < self->next_expiry)
        self->next_expiry = w->expiry;
    w->fd = zmq_msg_get (&frames [NODE_COMMAND], ZMQ_SRCFD);
    feed_event (self->feed, "joined", w->id, w->service, 0, "joined service %s", w->service);
    //  A bookstore node is recorded in etcd's registry, with the key that
    //  proved its id
    registry_write_t write;
    char key [64] = "";
    if (!standard && self->registry) {
        if (self->options.keys && !bs_keys_node_public (self->options.keys, w->id, key, sizeof key))
            snprintf (key, sizeof key, "?");
        if (registry_note (self->registry, w->id, w->service, key, &write))
            broker_registry_write (self, &write);
    }
    if (count >= 7)
        workers_apply_status (w, zmq_msg_data (&frames [6]), zmq_msg_size (&frames [6]));
    broker_control (self, true);
}

//  REPLY [token] [empty] [body...]: answers the client whose request the token
//  names, at most once, and only when it comes from the registration (the
//  connection, and the node on it) the request was last sent to: a late
//  reply from a node declared dead still answers a client waiting for it,
//  but no other connection can answer, whatever token it guesses.  Stale
//  tokens (a freed or reused slot, or another broker incarnation's) and
//  replies from elsewhere are dropped and counted.  w is NULL for an
//  unregistered connection, or dead for a node declared dead.
static void
s_node_reply (broker_t *self, worker_t *w, zmq_msg_t *frames, int count, int total)
{
    uint32_t index;
    //  A standard worker's reply may have several body frames, as 7/MDP
    //  allows; a node's has one
    bool standard = w && w->standard && total >= 7;
    request_t *req = total == 7 || standard? requests_by_token (self->requests, &frames [4], &index): NULL;
    if (!req || !w || req->sent_to != w->serial) {
        self->replies_refused++;
        if (req && !w) {
            static int64_t last_warning;
            if (zclock_mono () - last_warning > 5000) {
                last_warning = zclock_mono ();
                zsys_warning ("broker: refused a reply from an unregistered connection");
            }
        }
        else
        if (req)
            //  Routine too after a re-dispatch: another node holds it now
            zsys_debug ("broker: dropped a reply from %s: its request was sent to another node", w->id);
        else
            //  Routine after a re-dispatch or a restart: the client was or
            //  will be answered another way
            zsys_debug ("broker: dropped a reply from %s: its token names no request in flight",
                        w? w->id: "an unregistered node");
        return;
    }
    if (req->worker && req->worker->outstanding > 0)
        req->worker->outstanding--;
    if (w->alive)
        w->served++;
    if (!req->worker)
        requests_unqueue (self->requests, index);
    //  A read that was under way while the broker lost its lease (another
    //  broker may have served writes since) is answered, not cached
    if (req->cacheable && req->cache_round == self->serving_round)
        cache_io_fill (self->cache, self->options.cache_ttl_ms, self->catalog_epoch, req, w, &frames [6]);
    char buf [REQUEST_SERVICE_MAX];
    const char *service = broker_request_service (self, req, buf, sizeof buf);
    void *sock = req->from_node? self->node_sock: self->client_sock;
    if (total > count) {
        char message [128];
        snprintf (message, sizeof message, "the worker's reply had more than %d body frames, which this broker "
                  "does not carry", REQUEST_BODY_FRAMES_MAX);
        zsys_warning ("broker: dropped a reply of %d frames from worker %s (%s)", total, w->id, w->service);
        wire_error (sock, &req->client, service, &req->body, BS_ERR_bad_frame, message);
    }
    else
        wire_to_client_frames (sock, &req->client, service, &frames [6], count - 6);
    requests_free (self->requests, index);
}

//  HEARTBEAT [status]: the node's status report rides on its heartbeat
static void
s_node_heartbeat (broker_t *self, worker_t *w, zmq_msg_t *frames, int count)
{
    if (count != 5)
        return;
    workers_apply_status (w, zmq_msg_data (&frames [4]), zmq_msg_size (&frames [4]));
    broker_control (self, false);
}

//  DISCONNECT: the node is leaving; its requests go to another
static void
s_node_disconnect (broker_t *self, worker_t *w)
{
    broker_worker_dead (self, w, "said DISCONNECT");
}

//  A message from a node that is not registered (or was declared dead): it
//  is told to register again, unless it is saying goodbye itself
static void
s_node_stranger (broker_t *self, worker_t *w, zmq_msg_t *identity, uint8_t command)
{
    if (command == BS_MDPW_DISCONNECT)
        return;
    if (workers_held (self->workers, w? w->id: NULL, zmq_msg_data (identity), zmq_msg_size (identity),
                      zclock_mono ()) > 0) {
        s_send_heartbeat (self, identity);
        return;
    }
    worker_t stranger = { .identity_size = zmq_msg_size (identity) };
    if (stranger.identity_size <= sizeof stranger.identity) {
        memcpy (stranger.identity, zmq_msg_data (identity), stranger.identity_size);
        wire_to_worker (self->node_sock, &stranger, BS_MDPW_DISCONNECT, NULL, NULL);
    }
}

//  [node] [empty] [MDPC01] [service] [body]: a node's own request (an
//  order node's decrement), which only the node socket takes, so that no
//  client can send one; answered on the node socket, as a client is.
static void
s_node_request (broker_t *self, zmq_msg_t *frames, int count, int total)
{
    char service [BS_SERVICE_MAX + 1] = "";
    if (count >= 4)
        wire_frame_text (&frames [3], service, sizeof service);
    if (total != 5 || zmq_msg_size (&frames [1]) != 0 || zmq_msg_size (&frames [4]) > MAX_REQUEST) {
        wire_error (self->node_sock, &frames [0], service, NULL, BS_ERR_bad_frame,
                    "a node's request must be [empty] \"MDPC01\" service body, at most 64 KiB");
        return;
    }
    if (broker_fenced (self)) {
        const char *holder = fence_holder (self->fence);
        char message [384];
        snprintf (message, sizeof message, "this broker does not hold the active lease in etcd; the active one is %s",
                  *holder? holder: "unknown yet");
        wire_error (self->node_sock, &frames [0], service, &frames [4], BS_ERR_not_active, message);
        return;
    }
    int svc = zmq_msg_size (&frames [3]) < sizeof service? requests_service_find (self->requests, service): -1;
    bs_op_t op = bs_peek_op (zmq_msg_data (&frames [4]), zmq_msg_size (&frames [4]));
    if (svc < 0 || op != BS_OP_decrement) {
        wire_error (self->node_sock, &frames [0], service, &frames [4], BS_ERR_forbidden,
                    "the node socket takes only requests between nodes (decrement); clients use the client port");
        return;
    }
    uint64_t client_key = quota_key (zmq_msg_data (&frames [0]), zmq_msg_size (&frames [0]));
    if (!quota_take (self->quota, client_key)) {
        wire_error (self->node_sock, &frames [0], service, &frames [4], BS_ERR_overloaded,
                    "the broker has too many requests in flight; retry shortly");
        return;
    }
    uint32_t index = requests_alloc (self->requests);
    request_t *req = requests_at (self->requests, index);
    req->client_key = client_key;
    zmq_msg_init (&req->client);
    zmq_msg_move (&req->client, &frames [0]);
    zmq_msg_init (&req->body);
    zmq_msg_move (&req->body, &frames [4]);
    req->service = svc;
    req->op = op;
    req->cacheable = false;
    req->from_node = true;
    req->target [0] = 0;
    req->created = zclock_mono ();
    req->deadline = req->created + self->options.request_timeout_ms;
    broker_dispatch (self, index);
}

//  One message on the node socket, handed to its command's function
void
broker_node_message (broker_t *self)
{
    zmq_msg_t frames [MAX_FRAMES];
    int count;
    int total = bs_frames_recv (self->node_sock, frames, MAX_FRAMES, &count);
    if (total < 0)
        return;
    if (total >= 3 && wire_frame_is (&frames [2], BS_MDPC)) {
        s_node_request (self, frames, count, total);
        bs_frames_close (frames, count);
        return;
    }
    if (total < 4 || zmq_msg_size (&frames [1]) != 0 || !wire_frame_is (&frames [2], BS_MDPW)
    ||  zmq_msg_size (&frames [NODE_COMMAND]) != 1) {
        zsys_warning ("broker: dropped a malformed message from a node (%d frames)", total);
        bs_frames_close (frames, count);
        return;
    }
    uint8_t command = *(uint8_t *) zmq_msg_data (&frames [NODE_COMMAND]);
    //  A broker that does not serve sends nodes on to the active one.
    //  While it knows of none it keeps the nodes that turn to it: it may be
    //  the next to take the lease.
    if (command == BS_MDPW_READY)
        broker_node_came (self);
    if (broker_verdict (self) == BROKER_REFUSE) {
        //  A standard worker knows no "backup": to it this is a refusal,
        //  paced as any (it would reconnect here at once)
        if (command == BS_MDPW_READY && total == 5)
            s_refuse_ready (self, &frames [NODE_IDENTITY], true,
                            "this broker is not the active one: a standard worker must turn to the active one");
        else
        if (command != BS_MDPW_DISCONNECT)
            s_send_backup (self, &frames [NODE_IDENTITY]);
    }
    else
    if (command == BS_MDPW_READY)
        s_node_ready (self, frames, count, total);
    else {
        worker_t *w = workers_find (self->workers, zmq_msg_data (&frames [NODE_IDENTITY]),
                                    zmq_msg_size (&frames [NODE_IDENTITY]));
        bool known = w && w->alive;
        if (known)
            s_node_seen (self, w, &frames [NODE_COMMAND]);
        else
            s_node_stranger (self, w, &frames [NODE_IDENTITY], command);
        //  A late reply from a node declared dead may still answer a client
        //  whose request is waiting: deliver it once
        if (command == BS_MDPW_REPLY)
            s_node_reply (self, w, frames, count, total);
        else
        if (command == BS_MDPW_HEARTBEAT && known)
            s_node_heartbeat (self, w, frames, count);
        else
        if (command == BS_MDPW_DISCONNECT && known)
            s_node_disconnect (self, w);
    }
    bs_frames_close (frames, count);
}

//  --------------------------------------------------------------------------
//  Liveness

//  A node silent past its liveness window is dead.  Checked when the
//  earliest expiry comes, not only on heartbeat ticks, so that a frozen
//  node is caught within its window.
void
broker_check_expiry (broker_t *self, int64_t now)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < workers_size (self->workers); i++) {
        worker_t *w = workers_at (self->workers, i);
        if (w->alive && now > w->expiry)
            broker_worker_dead (self, w, "missed heartbeats");
        else
        if (w->alive && w->expiry < next)
            next = w->expiry;
    }
    self->next_expiry = next;
}
