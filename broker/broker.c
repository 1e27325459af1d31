/*  broker - Majordomo broker with least-outstanding load balancing and
 *  re-dispatch of in-flight requests.  The forwarding path works on raw
 *  zmq_msg_t frames: bodies are passed along without being copied or parsed.
 *
 *  This file holds the event loop and the wiring between the broker's
 *  modules: the client path (s_client_message), the node commands
 *  (s_node_message and its s_node_*), dispatch and re-dispatch, the
 *  broker pair's takeover and yield, and the heartbeat tick.  The pieces
 *  live apart: requests (the table of requests in flight and the services'
 *  queues), route (which worker takes a request), wire (the frames on the
 *  sockets), cache_io (cached replies and invalidations), status (the
 *  cluster as one message), and workers, controller, peer, cache, quota,
 *  feed.
 */
#include "broker.h"
#include "cache.h"
#include "cache_io.h"
#include "controller.h"
#include "bs_monitor.h"
#include "feed.h"
#include "fence.h"
#include "peer.h"
#include "quota.h"
#include "requests.h"
#include "route.h"
#include "status.h"
#include "wire.h"
#include "workers.h"
#include "bs_frames.h"
#include "bs_mdp.h"
#include "bs_msg.h"
#include "bs_sizes.h"

#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define MAX_FRAMES      8
//  Requests are capped in size well below the socket limit so that an
//  oversized one still gets an answer
#define MAX_REQUEST     65536
//  An in-flight request older than this is forgotten (its client gave up)
#define REQUEST_MAX_AGE_MS 60000
//  A request's service frame: "service" or "service@node"
#define REQUEST_SERVICE_MAX (BS_SERVICE_MAX + 1 + BS_ID_MAX + 1)

struct _broker_t {
    broker_options_t options;
    zsock_t *clients;
    zsock_t *nodes;
    zsock_t *invalidations;     //  REP: the catalog primary's invalidations
    void *client_sock;          //  raw handles for the hot path
    void *node_sock;
    cache_t *cache;
    quota_t *quota;             //  requests in flight per client
    feed_t *feed;               //  events and status for the monitor
    bs_monitor_t *disconnects;  //  dropped node connections
    char catalog_primary [BS_ID_MAX + 1];   //  as last announced on the feed
    int catalog;                //  index of the catalog service, or -1
    uint64_t catalog_epoch;     //  the cache holds replies of this epoch
    bool cache_ready;           //  the cache's base floor is known
    bool muted;                 //  test switch: invalidations unanswered
    workers_t *workers;
    controller_t *controller;
    ctlplane_t *store;          //  the control plane (etcd), or NULL
    peer_t *peer;               //  the other broker of a pair, if any
    fence_t *fence;             //  with etcd: the active broker's lease
    bool serving;               //  ...held and provably valid (last seen)
    uint32_t serving_round;     //  counts the changes of serving: a reply to
                                //  a request of another round is not cached
    int expected_nodes;         //  after a takeover: nodes the peer served
    char expected_primary [BS_ID_MAX + 1];  //  ...and its catalog primary
    int64_t next_assign;        //  periodic refresh of the partition map
    requests_t *requests;       //  in flight, and queued per service
    int64_t next_heartbeat;
    int64_t next_expiry;        //  no node expires before this
    uint64_t replies_refused;   //  replies from no request's registration
};

//  --------------------------------------------------------------------------
//  Dispatch

static void s_worker_dead (broker_t *self, worker_t *w, const char *why);

//  The service frame a request came with, which its reply repeats: the
//  service, and "@node" when it asked one node.  buf holds the latter.
static const char *
s_request_service (broker_t *self, const request_t *req, char *buf, size_t size)
{
    const char *name = requests_service_name (self->requests, req->service);
    if (!req->target [0])
        return name;
    snprintf (buf, size, "%s@%s", name, req->target);
    return buf;
}

//  Sends the request to the best worker, or queues it until one can take it
static void
s_dispatch (broker_t *self, uint32_t index)
{
    request_t *req = requests_at (self->requests, index);
    const char *service = requests_service_name (self->requests, req->service);
    worker_t *w;
    //  A broker that is not active holds requests for its takeover; the
    //  cache's floors count once its base floor is known
    while (peer_active (self->peer)
       &&  (w = route_choose (self->workers, self->controller, self->cache_ready? self->cache: NULL,
                              req, service))) {
        uint8_t token [REQUEST_TOKEN_SIZE];
        requests_token (self->requests, index, token);
        zmq_msg_t copy;
        zmq_msg_init (&copy);
        zmq_msg_copy (&copy, &req->body);
        if (wire_to_worker (self->node_sock, w, BS_MDPW_REQUEST, token, &copy) == 0) {
            req->worker = w;
            req->sent_to = w->serial;
            w->outstanding++;
            return;
        }
        zmq_msg_close (&copy);
        s_worker_dead (self, w, zmq_errno () == EAGAIN? "unreachable: its queue is full": "unreachable");
    }
    requests_enqueue (self->requests, index);
}

//  Offers queued requests of a service to workers again
static void
s_drain_pending (broker_t *self, int service)
{
    uint32_t head = requests_take_queue (self->requests, service);
    while (head != NO_REQUEST) {
        uint32_t index = head;
        head = requests_at (self->requests, index)->next;
        s_dispatch (self, index);
    }
}

static void
s_drain_all (broker_t *self)
{
    for (int s = 0; s < requests_service_count (self->requests); s++)
        s_drain_pending (self, s);
}

//  Tells every alive node the partition map of its service
static void
s_send_assignments (broker_t *self)
{
    for (int s = 0; s < requests_service_count (self->requests); s++) {
        const char *service = requests_service_name (self->requests, s);
        bs_msg_t *assign = controller_assign (self->controller, service);
        size_t size;
        uint8_t *data = bs_msg_encode (assign, &size);
        for (size_t i = 0; i < workers_size (self->workers); i++) {
            worker_t *w = workers_at (self->workers, i);
            if (!w->alive || strcmp (w->service, service) != 0)
                continue;
            zmq_msg_t body;
            zmq_msg_init_size (&body, size);
            memcpy (zmq_msg_data (&body), data, size);
            if (wire_to_worker (self->node_sock, w, BS_MDPW_ASSIGN, NULL, &body) != 0)
                zmq_msg_close (&body);
        }
        free (data);
        bs_msg_destroy (&assign);
    }
    self->next_assign = zclock_mono () + 1000;
}

//  Re-reads the cluster's state after any change; tells the nodes and
//  retries queued requests when the map moved
//  The cache follows the catalog's epoch.  A new primary may lack writes
//  its predecessor committed but never replicated, so replies read before
//  the change are dropped.  After a (re)start the broker has not seen the
//  invalidations that came before it: it stores nothing read before the
//  catalog head it first learns, which includes every write those
//  invalidations announced.
static void
s_cache_follow_catalog (broker_t *self)
{
    uint64_t epoch = controller_epoch (self->controller, "catalog");
    if (epoch != self->catalog_epoch) {
        cache_stats_t stats;
        cache_stats (self->cache, &stats);
        if (stats.size)
            feed_event (self->feed, "cache_cleared", NULL, "catalog", epoch,
                        "cache cleared: the catalog is at epoch %llu", (unsigned long long) epoch);
        cache_clear (self->cache);
        self->catalog_epoch = epoch;
    }
    worker_t *primary = controller_catalog_primary (self->controller, self->workers);
    if (primary && strcmp (primary->id, self->catalog_primary) != 0) {
        snprintf (self->catalog_primary, sizeof self->catalog_primary, "%s", primary->id);
        feed_event (self->feed, "elected", primary->id, "catalog", epoch,
                    "is primary of the catalog at epoch %llu", (unsigned long long) epoch);
    }
    if (!self->cache_ready && primary && (!self->fence || self->serving)) {
        uint64_t head = 0;
        for (size_t i = 0; i < workers_size (self->workers); i++) {
            worker_t *w = workers_at (self->workers, i);
            if (w->alive && strcmp (w->service, "catalog") == 0 && route_catalog_seq (w) > head)
                head = route_catalog_seq (w);
        }
        cache_set_base_floor (self->cache, head);
        self->cache_ready = true;
    }
}

static int s_serving_nodes (broker_t *self);

static void
s_control (broker_t *self, bool force)
{
    //  After a takeover the election waits for the catalog primary the
    //  peer named (it may hold acknowledged writes no other replica has),
    //  or, if it named none, for every node it served; at most the settle
    //  time
    if (controller_settling (self->controller) && (self->expected_nodes > 0 || self->expected_primary [0])) {
        worker_t *primary = self->expected_primary [0]? workers_by_id (self->workers, self->expected_primary): NULL;
        bool back = self->expected_primary [0]? primary && primary->alive && primary->has_status
                                              : s_serving_nodes (self) >= self->expected_nodes;
        if (back) {
            controller_end_settle (self->controller);
            self->expected_nodes = 0;
            self->expected_primary [0] = 0;
        }
    }
    if (!peer_active (self->peer))
        return;         //  nodes held for a takeover get no roles yet
    bool changed = controller_update (self->controller, self->workers);
    s_cache_follow_catalog (self);
    for (size_t i = 0; i < workers_size (self->workers); i++) {
        worker_t *w = workers_at (self->workers, i);
        bool insync = w->alive && w->has_status && controller_insync (self->controller, w);
        if (insync && !w->reported_insync)
            feed_event (self->feed, "caught_up", w->id, w->service, 0, "is in sync and serves reads");
        w->reported_insync = insync;
    }
    if (changed || force) {
        s_send_assignments (self);
        s_drain_all (self);
    }
}

//  Takes back every request a worker holds and dispatches it elsewhere
static void
s_redispatch_from (broker_t *self, worker_t *w)
{
    int moved = 0;
    for (uint32_t i = 0; i < requests_cap (self->requests); i++) {
        request_t *req = requests_at (self->requests, i);
        if (req->used && req->worker == w) {
            req->worker = NULL;
            req->deadline = zclock_mono () + self->options.request_timeout_ms;
            s_dispatch (self, i);
            moved++;
        }
    }
    w->outstanding = 0;
    if (moved)
        zsys_info ("broker: re-dispatched %d request(s) held by %s", moved, w->id);
}

static void
s_worker_dead (broker_t *self, worker_t *w, const char *why)
{
    if (!w->alive)
        return;
    workers_declare_dead (w, zclock_mono ());
    feed_event (self->feed, "dead", w->id, w->service, 0, "declared dead: %s", why);
    s_control (self, false);
    s_redispatch_from (self, w);
}

//  --------------------------------------------------------------------------
//  Broker pairs

static void s_refuse_passive (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body);

//  Answers every request this broker holds "not_active", so that its
//  clients resend them (same rids) to the active broker
static void
s_release_all (broker_t *self)
{
    int released = 0;
    for (uint32_t i = 0; i < requests_cap (self->requests); i++) {
        request_t *req = requests_at (self->requests, i);
        if (!req->used)
            continue;
        if (req->worker && req->worker->outstanding > 0)
            req->worker->outstanding--;
        char service [REQUEST_SERVICE_MAX];
        s_request_service (self, req, service, sizeof service);
        if (req->from_node)
            wire_error (self->node_sock, &req->client, service, &req->body, BS_ERR_not_active,
                        "this broker is no longer active in its pair");
        else
            s_refuse_passive (self, &req->client, service, &req->body);
        requests_free (self->requests, i);
        released++;
    }
    requests_clear_queues (self->requests);
    if (released)
        zsys_info ("broker: sent %d request(s) on to the active broker", released);
}

static int
s_serving_nodes (broker_t *self)
{
    int n = 0;
    for (size_t i = 0; i < workers_size (self->workers); i++) {
        worker_t *w = workers_at (self->workers, i);
        n += w->alive && w->has_status;
    }
    return n;
}

//  This broker took over: it relearns the cluster from the nodes as they
//  register, never at an epoch its peer or its own past could have used,
//  and with a cold cache
static void
s_activate (broker_t *self)
{
    uint64_t epoch = controller_max_epoch (self->controller);
    if (peer_epoch (self->peer) > epoch)
        epoch = peer_epoch (self->peer);
    self->expected_nodes = peer_nodes (self->peer);
    snprintf (self->expected_primary, sizeof self->expected_primary, "%s", peer_primary (self->peer));
    //  The primary the peer named may notice the peer's death a liveness
    //  window after the node that turned to us: it gets two
    int settle = self->options.heartbeat_ms * (self->options.liveness + 1);
    controller_destroy (&self->controller);
    self->controller = controller_new (self->expected_primary [0]? 2 * settle: settle);
    if (self->store)
        controller_use_store (self->controller, self->store);
    controller_raise_epoch (self->controller, epoch);
    cache_clear (self->cache);
    self->cache_ready = false;
    self->catalog_epoch = 0;
    self->catalog_primary [0] = 0;
    self->next_assign = 0;
    s_control (self, true);
    feed_event (self->feed, "active", self->options.id, NULL, 0, "is active (catalog epochs above %llu)",
                (unsigned long long) epoch);
}

//  Sends every node this broker holds on to its peer
static void
s_release_nodes (broker_t *self)
{
    for (size_t i = 0; i < workers_size (self->workers); i++) {
        worker_t *w = workers_at (self->workers, i);
        if (!w->alive)
            continue;
        wire_backup (self->node_sock, w->identity, w->identity_size);
        workers_declare_dead (w, zclock_mono ());
        w->outstanding = 0;
    }
}

//  This broker yielded to its peer: nodes and requests go there
static void
s_deactivate (broker_t *self)
{
    s_release_nodes (self);
    s_release_all (self);
    cache_clear (self->cache);
    self->cache_ready = false;
    feed_event (self->feed, "passive", self->options.id, NULL, 0, "is passive: its peer is active");
}

static void
s_peer_changed (broker_t *self, peer_state_t before)
{
    peer_state_t now = peer_state (self->peer);
    if (now == PEER_STATE_ACTIVE && before != PEER_STATE_ACTIVE)
        s_activate (self);
    else
    if (before == PEER_STATE_ACTIVE && now != PEER_STATE_ACTIVE)
        s_deactivate (self);
}

//  With etcd, Binary Star's word is not enough to serve: the broker must
//  also hold the active lease, provably valid now (fence.h).  Whenever that
//  changes the cache goes: replies cached while another broker may have
//  served writes are stale, and so is what a broker cached before a pause.
//  True when the broker may not serve.
static bool
s_fenced (broker_t *self)
{
    if (!self->fence)
        return false;
    bool serving = fence_serving (self->fence, zclock_mono ());
    if (serving != self->serving) {
        self->serving = serving;
        self->serving_round++;
        cache_clear (self->cache);
        self->cache_ready = false;
        if (serving)
            feed_event (self->feed, "lease", self->options.id, NULL, 0, "holds the active lease in etcd");
        else
            feed_event (self->feed, "lease_lost", self->options.id, NULL, 0,
                        "cannot prove it holds the active lease in etcd: it stops serving");
    }
    return !serving;
}

//  Binary Star's verdict, except that a passive broker does not hold
//  clients and nodes for a takeover while another broker is known to hold
//  the active lease: it sends them on, so that nodes and lease meet
static peer_verdict_t
s_verdict (broker_t *self)
{
    peer_verdict_t verdict = peer_client_verdict (self->peer);
    if (verdict == PEER_HOLD && self->fence && *fence_holder (self->fence))
        verdict = PEER_REFUSE;
    return verdict;
}

static void
s_refuse_unfenced (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body)
{
    char message [384];
    const char *holder = fence_holder (self->fence);
    if (*holder) {
        snprintf (message, sizeof message, "this broker does not hold the active lease in etcd; the active one is %s",
                  holder);
        wire_error (self->client_sock, client, service, body, BS_ERR_not_active, message);
    }
    else
        //  Its peer may serve: the client moves on (only a broker with a
        //  peer takes the lease)
        wire_error (self->client_sock, client, service, body, BS_ERR_not_active,
                    "this broker cannot prove it holds the active lease in etcd (is etcd reachable?); "
                    "try its peer");
}

//  --------------------------------------------------------------------------
//  Broker's own service

//  The cluster as status shows it, with the broker's own drop counters:
//  "stale", replies refused because they came from no connection their
//  request was sent to (late ones after a re-dispatch, and forgeries);
//  "evictions", replies dropped because their client did not read (its
//  queue was full) or was gone
static bs_msg_t *
s_status_msg (broker_t *self)
{
    bs_msg_t *status = status_msg (requests_inflight (self->requests), self->cache, self->workers,
                                   self->controller, self->peer);
    bs_msg_set_int (status, BS_FIELD_stale, (int64_t) self->replies_refused);
    bs_msg_set_int (status, BS_FIELD_evictions, (int64_t) wire_client_drops ());
    return status;
}

//  Answers "status" on service "broker" or "broker@<this broker's id>";
//  service: the request's service frame, which the reply repeats
static void
s_handle_status (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body)
{
    char reason [128];
    bs_err_t err;
    bs_msg_t *request = bs_msg_decode (zmq_msg_data (body), zmq_msg_size (body), &err, reason, sizeof reason);
    if (request)
        err = bs_msg_validate_request (request, reason, sizeof reason);
    if (err == BS_OK && bs_msg_op (request) != BS_OP_status) {
        err = BS_ERR_unknown_op;
        snprintf (reason, sizeof reason, "the broker service only answers 'status'");
    }
    if (err != BS_OK) {
        wire_error (self->client_sock, client, service, body, err, reason);
        bs_msg_destroy (&request);
        return;
    }
    bs_msg_t *reply = s_status_msg (self);
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    bs_msg_set_bin (reply, BS_FIELD_rid, rid, rid_size);
    wire_msg_to_client (self->client_sock, client, service, reply);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
}

//  --------------------------------------------------------------------------
//  Client side
//
//  Every reply to a client repeats the service frame of its request, and
//  every error the broker makes carries the request's rid when the body
//  has one, so that any 7/MDP client, REQ or pipelining DEALER, can read
//  and match it.

//  Operations nodes send one another through the broker (an order node's
//  decrement: stock taken without an order) and the internal messages:
//  never from a client, whatever its key.  Nodes send theirs on the node
//  socket (s_node_request).
static bool
s_node_only (bs_op_t op)
{
    return op < BS_OP_COUNT && (op == BS_OP_decrement || bs_op_kind (op) == BS_KIND_CONTROL);
}

//  Who may run what on the client socket, in every mode; with CURVE
//  (role not NULL) changing the catalog also takes an admin key.  On a
//  refusal, the sentence for the client goes into message.
static bool
s_allowed (bs_op_t op, const char *role, char *message, size_t size)
{
    if (s_node_only (op)) {
        snprintf (message, size, "'%s' is an operation between nodes, which clients may not send", bs_op_name (op));
        return false;
    }
    bool ok = !role
           || ((op == BS_OP_set_price || op == BS_OP_restock || op == BS_OP_add_book)?
               strcmp (role, "admin") == 0: *role != 0);
    if (!ok)
        snprintf (message, size, "your key may not run '%s'", bs_op_name (op));
    return ok;
}

//  The not_active answer of a passive broker, naming the active one
static void
s_refuse_passive (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body)
{
    char message [384];
    snprintf (message, sizeof message, "this broker is %s in a pair; the active one is %s",
              peer_state_name (peer_state (self->peer)),
              *peer_endpoint (self->peer)? peer_endpoint (self->peer): "its peer");
    wire_error (self->client_sock, client, service, body, BS_ERR_not_active, message);
}

//  An error for a request whose service frame may be anything: the reply
//  repeats the frame as it came (NULL: the request had none), and the rid
//  when the body (NULL: none) has one
static void
s_refuse_frame (broker_t *self, zmq_msg_t *client, zmq_msg_t *service, zmq_msg_t *body,
                bs_err_t err, const char *message)
{
    bs_msg_t *msg = bs_msg_new_error (err, message);
    const uint8_t *rid;
    size_t size;
    if (body && bs_peek_bytes (zmq_msg_data (body), zmq_msg_size (body), BS_FIELD_rid, &rid, &size)
    &&  size == BS_RID_SIZE)
        bs_msg_set_bin (msg, BS_FIELD_rid, rid, size);
    uint8_t *data = bs_msg_encode (msg, &size);
    bs_msg_destroy (&msg);
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    zmq_msg_copy (&frame, client);
    zmq_msg_send (&frame, self->client_sock, ZMQ_SNDMORE);
    zmq_send (self->client_sock, "", 0, ZMQ_SNDMORE);
    zmq_send (self->client_sock, BS_MDPC, strlen (BS_MDPC), ZMQ_SNDMORE);
    zmq_msg_init (&frame);
    if (service)
        zmq_msg_copy (&frame, service);
    zmq_msg_send (&frame, self->client_sock, ZMQ_SNDMORE);
    zmq_send (self->client_sock, data, size, 0);
    free (data);
}

//  True when some client operation of the schema (messages.def) belongs to
//  the service: its bodies are then checked here, whole, before the cache
//  and before any node sees them
static bool
s_schema_service (const char *service)
{
    for (int op = 0; op < BS_OP_COUNT; op++)
        if (bs_op_kind ((bs_op_t) op) != BS_KIND_CONTROL && strcmp (bs_op_service ((bs_op_t) op), service) == 0)
            return true;
    return false;
}

//  Checks a request of a schema service as a node would: a well-formed
//  body, every field within its limits, the fields its op takes, an op of
//  this service.  BS_OK, or the error with its sentence in reason; *op_p
//  receives the op.
static bs_err_t
s_check_request (zmq_msg_t *body, const char *service, bs_op_t *op_p, char *reason, size_t size)
{
    bs_err_t err;
    bs_msg_t *request = bs_msg_decode (zmq_msg_data (body), zmq_msg_size (body), &err, reason, size);
    if (request)
        err = bs_msg_validate_request (request, reason, size);
    *op_p = request? bs_msg_op (request): BS_OP_COUNT;
    if (err == BS_OK && strcmp (bs_op_service (*op_p), service) != 0) {
        err = BS_ERR_unknown_op;
        snprintf (reason, size, "the %s service does not execute '%s'", service, bs_op_name (*op_p));
    }
    bs_msg_destroy (&request);
    return err;
}

//  "service@node": the node must exist and be of that service.  Known but
//  down, the request waits for it (and is answered "unavailable" after the
//  request timeout); unknown, it is refused at once, except while this
//  broker is still learning its nodes (just started or taking over), when
//  the node may yet register.
static bool
s_node_known (broker_t *self, const char *service, const char *id)
{
    if (!workers_id_valid (id))
        return false;
    worker_t *w = workers_by_id (self->workers, id);
    if (w)
        return strcmp (w->service, service) == 0;
    return !peer_active (self->peer) || controller_settling (self->controller);
}

static void
s_client_message (broker_t *self)
{
    zmq_msg_t frames [MAX_FRAMES];
    int count;
    int total = bs_frames_recv (self->client_sock, frames, MAX_FRAMES, &count);
    if (total < 0)
        return;
    //  [client] [empty] [MDPC01] [service] [body]
    if (total != 5 || zmq_msg_size (&frames [1]) != 0 || !wire_frame_is (&frames [2], BS_MDPC)) {
        if (count >= 1)
            s_refuse_frame (self, &frames [0], count >= 4? &frames [3]: NULL, count >= 5? &frames [4]: NULL,
                            BS_ERR_bad_frame, "a request must be [empty] \"MDPC01\" service body");
        bs_frames_close (frames, count);
        return;
    }
    zmq_msg_t *client = &frames [0], *body = &frames [4];
    if (zmq_msg_size (body) > MAX_REQUEST) {
        s_refuse_frame (self, client, &frames [3], body, BS_ERR_too_large,
                        "the request is larger than the 64 KiB limit");
        bs_frames_close (frames, count);
        return;
    }
    //  The service frame: "service", or "service@node" to ask one node.
    //  The reply repeats it, so it must be text the broker can hold.
    char service [REQUEST_SERVICE_MAX] = "", message [256];
    size_t frame_size = zmq_msg_size (&frames [3]);
    if (frame_size < sizeof service && bs_text_valid (zmq_msg_data (&frames [3]), frame_size))
        wire_frame_text (&frames [3], service, sizeof service);
    char *at = strchr (service, '@');
    const char *target = at? at + 1: "";
    if (at)
        *at = 0;
    int svc = *service? requests_service_find (self->requests, service): -1;
    bool own_broker = strcmp (service, BS_SERVICE_BROKER) == 0;
    if (svc < 0 && !own_broker) {
        snprintf (message, sizeof message, "no service named '%.40s'", service);
        s_refuse_frame (self, client, &frames [3], body, BS_ERR_unknown_service, message);
        bs_frames_close (frames, count);
        return;
    }
    if (at)
        *at = '@';      //  service is the whole frame again, for replies
    //  "broker" is the active broker's view: a passive one sends clients
    //  on; "broker@<id>" asks that broker itself, whatever its state
    if (own_broker && at && strcmp (target, self->options.id? self->options.id: "") != 0) {
        snprintf (message, sizeof message, "this broker is '%.64s': ask broker '%.64s' itself",
                  self->options.id? self->options.id: "", target);
        wire_error (self->client_sock, client, service, body, BS_ERR_unknown_node, message);
        bs_frames_close (frames, count);
        return;
    }
    if (own_broker && (at || s_verdict (self) != PEER_REFUSE)) {
        s_handle_status (self, client, service, body);
        bs_frames_close (frames, count);
        return;
    }
    //  A passive broker sends clients to the active one, unless the
    //  active one has gone silent: then it holds them for its takeover
    peer_verdict_t verdict = s_verdict (self);
    if (verdict == PEER_REFUSE) {
        s_refuse_passive (self, client, service, body);
        bs_frames_close (frames, count);
        return;
    }
    //  Checked as each request is read, after any pause: a broker that was
    //  stopped past its lease answers nothing, not even from its cache
    if (s_fenced (self)) {
        s_refuse_unfenced (self, client, service, body);
        bs_frames_close (frames, count);
        return;
    }
    const char *name = requests_service_name (self->requests, svc);
    if (at && !s_node_known (self, name, target)) {
        snprintf (message, sizeof message, "no node '%.64s' serves '%s'", target, name);
        wire_error (self->client_sock, client, service, body, BS_ERR_unknown_node, message);
        bs_frames_close (frames, count);
        return;
    }
    //  The schema's services get every request checked whole here, so that
    //  a cache hit and a miss get the same answer, and every refusal
    //  carries the rid (a node could not read it from a body it cannot
    //  decode).  Other services' bodies are opaque.
    bs_op_t op;
    if (s_schema_service (name)) {
        char reason [160];
        bs_err_t err = s_check_request (body, name, &op, reason, sizeof reason);
        if (err != BS_OK) {
            wire_error (self->client_sock, client, service, body, err, reason);
            bs_frames_close (frames, count);
            return;
        }
    }
    else
        op = bs_peek_op (zmq_msg_data (body), zmq_msg_size (body));
    if (!s_allowed (op, self->options.keys? bs_keys_role (body, NULL): NULL, message, sizeof message)) {
        wire_error (self->client_sock, client, service, body, BS_ERR_forbidden, message);
        bs_frames_close (frames, count);
        return;
    }
    uint8_t key [CACHE_KEY_MAX];
    size_t key_size = 0;
    if (svc == self->catalog && !at && cache_enabled (self->cache) && verdict == PEER_SERVE)
        key_size = cache_key_for (op, zmq_msg_data (body), zmq_msg_size (body), key);
    //  A client that floods the broker is refused alone, cache hits included
    uint64_t client_key = quota_key (zmq_msg_data (client), zmq_msg_size (client));
    if (!quota_take (self->quota, client_key)) {
        wire_error (self->client_sock, client, service, body, BS_ERR_overloaded,
                      quota_total (self->quota) >= (uint32_t) self->options.max_inflight?
                      "the broker has too many requests in flight; retry shortly":
                      "you have too many requests in flight; wait for answers before sending more");
        bs_frames_close (frames, count);
        return;
    }
    //  A cache hit holds its place only while it is answered
    if (key_size && cache_io_serve (self->cache, self->options.cache_ttl_ms, self->client_sock, &frames [0],
                                     &frames [4], key, key_size)) {
        quota_give (self->quota, client_key);
        bs_frames_close (frames, count);
        return;
    }
    uint32_t index = requests_alloc (self->requests);
    request_t *req = requests_at (self->requests, index);
    req->client_key = client_key;
    zmq_msg_init (&req->client);
    zmq_msg_move (&req->client, client);
    zmq_msg_init (&req->body);
    zmq_msg_move (&req->body, body);
    req->service = svc;
    req->op = op;
    req->cacheable = key_size > 0;
    if (key_size) {
        memcpy (req->cache_key, key, key_size);
        req->cache_key_size = (uint8_t) key_size;
        req->cache_epoch = self->catalog_epoch;
        req->cache_round = self->serving_round;
    }
    snprintf (req->target, sizeof req->target, "%s", target);
    req->created = zclock_mono ();
    req->deadline = req->created + self->options.request_timeout_ms;
    bs_frames_close (frames, count);
    s_dispatch (self, index);
}

//  --------------------------------------------------------------------------
//  Node side

static void
s_send_backup (broker_t *self, zmq_msg_t *node)
{
    wire_backup (self->node_sock, zmq_msg_data (node), zmq_msg_size (node));
}

//  A node's connection closed (it was killed, or its host went away):
//  declared dead at once, without waiting for missed heartbeats
static void
s_disconnects (broker_t *self)
{
    bs_monitor_event_t event;
    while (bs_monitor_next (self->disconnects, &event))
        for (size_t i = 0; event.event == ZMQ_EVENT_DISCONNECTED && i < workers_size (self->workers); i++) {
            worker_t *w = workers_at (self->workers, i);
            if (w->alive && w->fd == event.value) {
                w->fd = -1;
                s_worker_dead (self, w, "its connection closed");
            }
        }
}

//  Frames of a node's message: [node] [empty] [MDPW01] [command] ...
#define NODE_IDENTITY   0
#define NODE_COMMAND    3

//  A node's liveness window starts again with each message it sends
static void
s_node_seen (broker_t *self, worker_t *w, zmq_msg_t *command)
{
    w->last_seen = zclock_mono ();
    w->expiry = w->last_seen + (int64_t) self->options.heartbeat_ms * self->options.liveness;
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

//  READY [service] [id] [status]: a node (re)registers.  A READY that
//  cannot be accepted gets no answer: a DISCONNECT would only bring the
//  same READY back.
static void
s_node_ready (broker_t *self, zmq_msg_t *frames, int count, int total)
{
    //  A connection that dropped before this message came may have had the
    //  same descriptor: settle those first
    s_disconnects (self);
    worker_t *w = workers_find (self->workers, zmq_msg_data (&frames [NODE_IDENTITY]), zmq_msg_size (&frames [NODE_IDENTITY]));
    char service [BS_SERVICE_MAX + 1] = "", id [BS_ID_MAX + 1] = "";
    if (count >= 5)
        wire_frame_text (&frames [4], service, sizeof service);
    if (count >= 6)
        wire_frame_text (&frames [5], id, sizeof id);
    int svc = requests_service_find (self->requests, service);
    //  The id names the node everywhere (assignments, status, the
    //  feed): plain text, and not another live node's
    //  (a plain Majordomo worker sends no id: it is known by its routing
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
    const char *key_name = "";
    bool impostor = self->options.keys
                 && (strcmp (bs_keys_role (&frames [NODE_COMMAND], &key_name), "node") != 0
                     || strcmp (key_name, id) != 0);
    if (svc < 0 || total > 7 || impostor) {
        static int64_t last_warning;
        if (zclock_mono () - last_warning > 5000) {
            last_warning = zclock_mono ();
            if (impostor)
                zsys_warning ("broker: refused READY from '%s': its key belongs to '%s'", id, key_name);
            else
                zsys_warning ("broker: refused READY for unknown service '%s'", service);
        }
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
        s_redispatch_from (self, holder);
    }
    //  Dead records of the id are forgotten now rather than in 10 minutes
    for (size_t i = 0; i < workers_size (self->workers); i++) {
        worker_t *old = workers_at (self->workers, i);
        if (!old->alive && old != w && strcmp (old->id, *id? id: "") == 0)
            workers_displace (old, zclock_mono ());
    }
    if (w && w->alive) {
        //  A node that restarted under the same identity has forgotten
        //  what it was doing: hand its requests to someone else
        workers_declare_dead (w, zclock_mono ());
        s_redispatch_from (self, w);
    }
    w = workers_register (self->workers, zmq_msg_data (&frames [NODE_IDENTITY]), zmq_msg_size (&frames [NODE_IDENTITY]),
                          service, id);
    if (!w)
        return;
    w->registered = w->last_seen = zclock_mono ();
    w->expiry = w->registered + (int64_t) self->options.heartbeat_ms * self->options.liveness;
    if (w->expiry < self->next_expiry)
        self->next_expiry = w->expiry;
    w->fd = zmq_msg_get (&frames [NODE_COMMAND], ZMQ_SRCFD);
    feed_event (self->feed, "joined", w->id, w->service, 0, "joined service %s", w->service);
    if (count >= 7)
        workers_apply_status (w, zmq_msg_data (&frames [6]), zmq_msg_size (&frames [6]));
    if (!peer_active (self->peer)) {
        peer_state_t before = peer_state (self->peer);
        if (peer_node_turns (self->peer, s_serving_nodes (self)))
            s_peer_changed (self, before);
    }
    s_control (self, true);
}

//  REPLY [token] [empty] [body]: answers the client whose request the token
//  names, at most once, and only when it comes from the registration (the
//  connection, and the node on it) the request was last sent to: a late
//  reply from a node declared dead still answers a client waiting for it,
//  but no other connection can answer, whatever token it guesses.  Stale
//  tokens (a freed or reused slot, or another broker incarnation's) and
//  replies from elsewhere are dropped and counted.  w is NULL for an
//  unregistered connection, or dead for a node declared dead.
static void
s_node_reply (broker_t *self, worker_t *w, zmq_msg_t *frames, int total)
{
    uint32_t index;
    request_t *req = total == 7? requests_by_token (self->requests, &frames [4], &index): NULL;
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
    char service [REQUEST_SERVICE_MAX];
    wire_to_client (req->from_node? self->node_sock: self->client_sock, &req->client,
                    s_request_service (self, req, service, sizeof service), &frames [6]);
    requests_free (self->requests, index);
}

//  HEARTBEAT [status]: the node's status report rides on its heartbeat
static void
s_node_heartbeat (broker_t *self, worker_t *w, zmq_msg_t *frames, int count)
{
    if (count != 5)
        return;
    workers_apply_status (w, zmq_msg_data (&frames [4]), zmq_msg_size (&frames [4]));
    s_control (self, false);
}

//  A message from a node that is not registered (or was declared dead): it
//  is told to register again, unless it is saying goodbye itself
static void
s_node_stranger (broker_t *self, zmq_msg_t *identity, uint8_t command)
{
    if (command == BS_MDPW_DISCONNECT)
        return;
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
    if (peer_client_verdict (self->peer) == PEER_REFUSE) {
        char message [384];
        snprintf (message, sizeof message, "this broker is %s in a pair; the active one is %s",
                  peer_state_name (peer_state (self->peer)),
                  *peer_endpoint (self->peer)? peer_endpoint (self->peer): "its peer");
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
    s_dispatch (self, index);
}

//  One message on the node socket, handed to its command's function
static void
s_node_message (broker_t *self)
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
    //  A passive broker whose peer is alive sends nodes on to it.  While
    //  the peer is silent it keeps the nodes that turn to it, and takes over
    //  once enough have (see peer.h).
    if (s_verdict (self) == PEER_REFUSE) {
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
            s_node_stranger (self, &frames [NODE_IDENTITY], command);
        //  A late reply from a node declared dead may still answer a client
        //  whose request is waiting: deliver it once
        if (command == BS_MDPW_REPLY)
            s_node_reply (self, w, frames, total);
        else
        if (command == BS_MDPW_HEARTBEAT && known)
            s_node_heartbeat (self, w, frames, count);
        else
        if (command == BS_MDPW_DISCONNECT && known)
            s_worker_dead (self, w, "said DISCONNECT");
    }
    bs_frames_close (frames, count);
}

//  --------------------------------------------------------------------------
//  Timers

//  A node silent past its liveness window is dead.  Checked when the
//  earliest expiry comes, not only on heartbeat ticks, so that a frozen
//  node is caught within its window.
static void
s_check_expiry (broker_t *self, int64_t now)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < workers_size (self->workers); i++) {
        worker_t *w = workers_at (self->workers, i);
        if (w->alive && now > w->expiry)
            s_worker_dead (self, w, "missed heartbeats");
        else
        if (w->alive && w->expiry < next)
            next = w->expiry;
    }
    self->next_expiry = next;
}

static void
s_on_tick (broker_t *self)
{
    int64_t now = zclock_mono ();
    if (self->options.mute_file && *self->options.mute_file) {
        bool muted = access (self->options.mute_file, F_OK) == 0;
        if (muted != self->muted)
            zsys_warning ("broker: test switch: invalidations %s", muted? "unanswered": "answered again");
        self->muted = muted;
    }
    peer_state_t before = peer_state (self->peer);
    worker_t *primary = peer_active (self->peer)? controller_catalog_primary (self->controller, self->workers): NULL;
    if (peer_tick (self->peer, controller_max_epoch (self->controller), s_serving_nodes (self),
                   primary? primary->id: ""))
        s_peer_changed (self, before);
    //  Held for a takeover that did not come: the peer is back and active
    if (s_verdict (self) == PEER_REFUSE) {
        s_release_nodes (self);
        s_release_all (self);
    }
    s_control (self, now >= self->next_assign);
    s_check_expiry (self, now);
    //  Here no worker pointer is held, and a dead worker holds no request
    //  (they were taken back when it died)
    workers_forget (self->workers, now);
    for (size_t i = 0; i < workers_size (self->workers); i++) {
        worker_t *w = workers_at (self->workers, i);
        if (w->alive && wire_to_worker (self->node_sock, w, BS_MDPW_HEARTBEAT, NULL, NULL) != 0)
            s_worker_dead (self, w, "unreachable");
    }
    bs_msg_t *status = s_status_msg (self);
    feed_status (self->feed, status);
    bs_msg_destroy (&status);
    //  Requests that waited too long for a worker get a clear error
    for (int s = 0; s < requests_service_count (self->requests); s++) {
        const char *name = requests_service_name (self->requests, s);
        uint32_t index;
        while ((index = requests_pop_expired (self->requests, s, now)) != NO_REQUEST) {
            request_t *req = requests_at (self->requests, index);
            char message [128];
            char service [REQUEST_SERVICE_MAX];
            if (req->target [0])
                snprintf (message, sizeof message, "node '%s' of service '%s' is not available", req->target, name);
            else
                snprintf (message, sizeof message, "no replica of service '%s' is available", name);
            wire_error (req->from_node? self->node_sock: self->client_sock, &req->client,
                        s_request_service (self, req, service, sizeof service), &req->body, BS_ERR_unavailable,
                        message);
            requests_free (self->requests, index);
        }
    }
    //  Forget requests whose worker never answered and whose client has long
    //  since given up, so that memory stays bounded
    for (uint32_t i = 0; i < requests_cap (self->requests); i++) {
        request_t *req = requests_at (self->requests, i);
        if (req->used && req->worker && now - req->created > REQUEST_MAX_AGE_MS) {
            if (req->worker->outstanding > 0)
                req->worker->outstanding--;
            requests_free (self->requests, i);
        }
    }
}

//  --------------------------------------------------------------------------

broker_t *
broker_new (const broker_options_t *options)
{
    broker_t *self = calloc (1, sizeof (broker_t));
    if (!self)
        abort ();
    self->options = *options;
    self->quota = quota_new ((uint32_t) options->max_per_client, (uint32_t) options->max_inflight);
    self->requests = requests_new (options->services, self->quota);
    self->catalog = requests_service_find (self->requests, "catalog");
    self->cache = cache_new (options->cache_entries, options->cache_bytes, options->cache_ttl_ms);
    self->workers = workers_new ();
    //  Wait a few heartbeats for nodes to report before the first election
    self->controller = controller_new (options->heartbeat_ms * (options->liveness + 1));
    if (options->etcd && *options->etcd) {
        self->store = ctlplane_new (options->etcd, options->cluster? options->cluster: "default",
                                    options->etcd_timeout_ms > 0? options->etcd_timeout_ms: 1000);
        if (!self->store) {
            zsys_error ("broker: cannot use etcd at '%s' for cluster '%s': --etcd takes http:// or https:// "
                        "URLs, comma-separated, at most 8; --cluster is 1-64 letters, digits, '-' or '_'",
                        options->etcd, options->cluster? options->cluster: "default");
            broker_destroy (&self);
            return NULL;
        }
        controller_use_store (self->controller, self->store);
        zsys_info ("broker: the partition map lives in etcd at %s under %s", options->etcd,
                   ctlplane_prefix (self->store));
        //  Only a broker with a peer needs the active lease: alone, no
        //  other broker can serve while it is paused or cut off
        if (options->peer_connect && *options->peer_connect)
            self->fence = fence_new (options->etcd, options->cluster? options->cluster: "default",
                                     options->etcd_timeout_ms > 0? options->etcd_timeout_ms: 1000,
                                     options->id && *options->id? options->id: "broker",
                                     options->advertise && *options->advertise? options->advertise
                                                                              : options->client_endpoint);
    }

    self->clients = zsock_new (ZMQ_ROUTER);
    self->nodes = zsock_new (ZMQ_ROUTER);
    self->invalidations = zsock_new (ZMQ_REP);
    zsock_set_maxmsgsize (self->invalidations, BS_MAX_BODY);
    zsock_set_linger (self->invalidations, 0);
    bs_keys_serve (options->keys, self->clients, "clients");
    bs_keys_serve (options->keys, self->nodes, "nodes");
    bs_keys_serve (options->keys, self->invalidations, "nodes");
    zsock_set_maxmsgsize (self->clients, BS_MAX_BODY);
    zsock_set_maxmsgsize (self->nodes, BS_MAX_BODY);
    //  Finite queues everywhere, in messages of at most BS_MAX_BODY.  A
    //  client has at most --max-per-client requests in flight, so a client
    //  that reads never has more replies waiting than that plus as many
    //  cache hits; one that does not read loses its own replies past it
    //  (ROUTER_MANDATORY: wire_to_client counts them), never the broker's
    //  memory.  The same bound on what the broker takes from one client
    //  before TCP pushes back.  A node never holds more requests than
    //  --max-inflight, besides a few control messages; past that it is
    //  stuck and is declared unreachable.
    int client_hwm = options->max_per_client < INT32_MAX / 2? 2 * options->max_per_client: INT32_MAX;
    if (client_hwm < 10000)
        client_hwm = 10000;     //  room for a burst of immediate answers
                                //  (refusals, cache hits) to a small quota
    int node_hwm = options->max_inflight < INT32_MAX - 1000? options->max_inflight + 1000: INT32_MAX;
    zsock_set_sndhwm (self->clients, client_hwm);
    zsock_set_rcvhwm (self->clients, client_hwm);
    zsock_set_router_mandatory (self->clients, 1);
    zsock_set_sndhwm (self->nodes, node_hwm);
    zsock_set_rcvhwm (self->nodes, node_hwm);
    zsock_set_router_mandatory (self->nodes, 1);
    //  One catalog primary sends one invalidation at a time (REQ); a few
    //  more around a failover
    zsock_set_sndhwm (self->invalidations, 100);
    zsock_set_rcvhwm (self->invalidations, 100);
    //  No handover: nodes let the broker choose their routing id, one per
    //  connection, so no connection can take over another's; a node that
    //  connects again registers again and displaces its old record
    //  (s_node_ready)
    zsock_set_router_handover (self->nodes, 0);
    zsock_set_linger (self->clients, 0);
    zsock_set_linger (self->nodes, 0);
    if (zsock_bind (self->clients, "%s", options->client_endpoint) < 0
    ||  zsock_bind (self->nodes, "%s", options->worker_endpoint) < 0
    ||  zsock_bind (self->invalidations, "%s", options->invalidate_endpoint) < 0) {
        zsys_error ("broker: cannot bind %s / %s / %s: %s", options->client_endpoint,
                    options->worker_endpoint, options->invalidate_endpoint, zmq_strerror (zmq_errno ()));
        broker_destroy (&self);
        return NULL;
    }
    self->client_sock = zsock_resolve (self->clients);
    self->node_sock = zsock_resolve (self->nodes);
    self->feed = feed_new (options->feed_endpoint, options->keys);
    self->disconnects = bs_monitor_new (self->node_sock, ZMQ_EVENT_DISCONNECTED);
    peer_options_t peer = {
        .id = options->id, .backup = options->backup, .bind = options->peer_bind,
        .connect = options->peer_connect, .advertise = options->advertise,
        .heartbeat_ms = options->heartbeat_ms, .liveness = options->liveness,
        .mute_file = options->peer_mute_file, .keys = options->keys,
    };
    self->peer = peer_new (&peer);
    if (!self->feed || !self->disconnects || !self->peer) {
        broker_destroy (&self);
        return NULL;
    }
    return self;
}

void
broker_destroy (broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_t *self = *self_p;
    requests_destroy (&self->requests);
    workers_destroy (&self->workers);
    controller_destroy (&self->controller);
    fence_destroy (&self->fence);
    ctlplane_destroy (&self->store);
    cache_destroy (&self->cache);
    quota_destroy (&self->quota);
    bs_monitor_destroy (&self->disconnects);
    peer_destroy (&self->peer);
    feed_destroy (&self->feed);
    zsock_destroy (&self->clients);
    zsock_destroy (&self->nodes);
    zsock_destroy (&self->invalidations);
    free (self);
    *self_p = NULL;
}

void
broker_run (broker_t *self)
{
    zsys_info ("broker: clients on %s, nodes on %s, invalidations on %s", self->options.client_endpoint,
               self->options.worker_endpoint, self->options.invalidate_endpoint);
    if (cache_enabled (self->cache))
        zsys_info ("broker: cache of %zu entries, %zu bytes, TTL %d ms", self->options.cache_entries,
                   self->options.cache_bytes, self->options.cache_ttl_ms);
    else
        zsys_info ("broker: cache off");
    self->next_heartbeat = zclock_mono () + self->options.heartbeat_ms;
    feed_event (self->feed, "started", NULL, NULL, 0, "broker started");
    zmq_pollitem_t items [8] = {
        { self->node_sock, 0, ZMQ_POLLIN, 0 },
        { self->client_sock, 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->invalidations), 0, ZMQ_POLLIN, 0 },
        { bs_monitor_socket (self->disconnects), 0, ZMQ_POLLIN, 0 },
        { peer_socket (self->peer), 0, ZMQ_POLLIN, 0 },
        { peer_monitor (self->peer), 0, ZMQ_POLLIN, 0 },
    };
    bool paired = !peer_alone (self->peer);
    int item_count = paired? 6: 4;
    int store_item = -1;
    if (self->store) {
        items [item_count] = (zmq_pollitem_t) { zsock_resolve (ctlplane_socket (self->store)), 0, ZMQ_POLLIN, 0 };
        store_item = item_count++;
    }
    int fence_item = -1;
    if (self->fence) {
        items [item_count] = (zmq_pollitem_t) { zsock_resolve (fence_socket (self->fence)), 0, ZMQ_POLLIN, 0 };
        fence_item = item_count++;
    }
    while (!zsys_interrupted) {
        int64_t now = zclock_mono ();
        int64_t wake = self->next_heartbeat;
        if (self->next_expiry < wake)
            wake = self->next_expiry + 1;
        int64_t wait = wake - now;
        if (self->fence && wait > fence_interval_ms (self->fence))
            wait = fence_interval_ms (self->fence);
        if (wait < 0)
            wait = 0;
        items [2].events = self->muted? 0: ZMQ_POLLIN;
        if (zmq_poll (items, item_count, (long) wait) < 0)
            break;
        if (fence_item >= 0) {
            if (items [fence_item].revents & ZMQ_POLLIN)
                fence_recv (self->fence, zclock_mono ());
            fence_step (self->fence, peer_active (self->peer), zclock_mono ());
            if (peer_active (self->peer) && fence_outranked (self->fence, zclock_mono ())) {
                peer_state_t before = peer_state (self->peer);
                if (peer_yield (self->peer, "another broker holds the active lease in etcd"))
                    s_peer_changed (self, before);
            }
            s_fenced (self);
        }
        if (store_item >= 0 && (items [store_item].revents & ZMQ_POLLIN)) {
            //  The control plane answered: what it holds is the map
            uint64_t epoch_before = 0, epoch_after = 0;
            const char *primary = NULL;
            char insync_before [1024] = "", insync_after [1024] = "";
            int64_t revision = 0;
            bool known = controller_stored (self->controller, &epoch_before, &primary,
                                            insync_before, sizeof insync_before, &revision);
            ctlplane_result_t *result = ctlplane_recv (self->store);
            bool changed = result && controller_on_store (self->controller, result);
            ctlplane_result_destroy (&result);
            if (changed && controller_stored (self->controller, &epoch_after, &primary,
                                              insync_after, sizeof insync_after, &revision)) {
                if (known && epoch_after != epoch_before)
                    feed_event (self->feed, "elected", primary, "catalog", epoch_after,
                                "is primary of catalog in etcd (revision %lld)", (long long) revision);
                else
                if (known && strcmp (insync_before, insync_after))
                    feed_event (self->feed, "insync", NULL, "catalog", epoch_after,
                                "in-sync set of catalog in etcd: %s (revision %lld)", insync_after,
                                (long long) revision);
            }
            if (changed)
                s_control (self, false);
        }
        if (paired && (items [5].revents & ZMQ_POLLIN))
            peer_recv_monitor (self->peer);
        if (paired && (items [4].revents & ZMQ_POLLIN)) {
            peer_state_t before = peer_state (self->peer);
            while (peer_recv (self->peer))
                ;
            if (peer_state (self->peer) != before)
                s_peer_changed (self, before);
        }
        if (items [3].revents & ZMQ_POLLIN)
            s_disconnects (self);
        //  Invalidations first: a catalog write is waiting on each
        if (items [2].revents & ZMQ_POLLIN)
            cache_io_invalidation (self->cache, self->peer, zsock_resolve (self->invalidations));
        //  Drain in batches so one busy side cannot starve the other
        for (int n = 0; n < 1000 && (items [0].revents & ZMQ_POLLIN); n++) {
            int events;
            size_t len = sizeof events;
            s_node_message (self);
            zmq_getsockopt (self->node_sock, ZMQ_EVENTS, &events, &len);
            if (!(events & ZMQ_POLLIN))
                break;
        }
        for (int n = 0; n < 1000 && (items [1].revents & ZMQ_POLLIN); n++) {
            int events;
            size_t len = sizeof events;
            s_client_message (self);
            zmq_getsockopt (self->client_sock, ZMQ_EVENTS, &events, &len);
            if (!(events & ZMQ_POLLIN))
                break;
        }
        //  Silence is judged after reading what waits: a broker that was
        //  stopped or starved past a node's window finds that node's
        //  heartbeats queued, and must not declare it dead (and drop it
        //  from the in-sync set) for messages it could not read
        if (zclock_mono () > self->next_expiry)
            s_check_expiry (self, zclock_mono ());
        if (zclock_mono () >= self->next_heartbeat) {
            s_on_tick (self);
            self->next_heartbeat = zclock_mono () + self->options.heartbeat_ms;
        }
    }
    zsys_info ("broker: stopping");
}
