/*  broker - Majordomo broker with least-outstanding load balancing and
 *  re-dispatch of in-flight requests.  The forwarding path works on raw
 *  zmq_msg_t frames: bodies are passed along without being copied or parsed.
 */
#include "broker.h"
#include "bs_alloc.h"
#include "cache.h"
#include "controller.h"
#include "bs_monitor.h"
#include "feed.h"
#include "peer.h"
#include "quota.h"
#include "workers.h"
#include "bs_frames.h"
#include "bs_mdp.h"
#include "bs_msg.h"

#include <czmq.h>
#include <string.h>
#include <unistd.h>

#define MAX_FRAMES      8
#define MAX_SERVICES    8
#define TOKEN_SIZE      8
#define NO_REQUEST      UINT32_MAX
//  Requests are capped in size well below the socket limit so that an
//  oversized one still gets an answer
#define MAX_REQUEST     65536
//  An in-flight request older than this is forgotten (its client gave up)
#define REQUEST_MAX_AGE_MS 60000

typedef struct {
    bool used;
    uint32_t gen;               //  bumped on reuse; part of the token
    zmq_msg_t client;           //  client routing id
    zmq_msg_t body;
    int service;                //  index in broker->services
    bs_op_t op;                 //  peeked from the body, for routing
    char target [65];           //  "service@node": only this node
    worker_t *worker;           //  NULL while waiting for a worker
    int64_t deadline;           //  while waiting: when to give up
    int64_t created;
    uint32_t next;              //  pending queue link, or free-list link
    //  A catalog read whose reply may be cached under this key, if it was
    //  read at a seq no lower than the key's floor and the catalog epoch
    //  has not changed meanwhile
    bool cacheable;
    uint8_t cache_key_size;
    uint8_t cache_key [CACHE_KEY_MAX];
    uint64_t cache_epoch;
    uint64_t client_key;        //  its client's quota
} request_t;

typedef struct {
    char name [33];
    uint32_t head, tail;        //  requests waiting for a worker
} service_t;

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
    char catalog_primary [65];  //  as last announced on the feed
    int catalog;                //  index of the catalog service, or -1
    uint64_t catalog_epoch;     //  the cache holds replies of this epoch
    bool cache_ready;           //  the cache's base floor is known
    bool muted;                 //  test switch: invalidations unanswered
    workers_t *workers;
    controller_t *controller;
    ctlplane_t *store;          //  the control plane (etcd), or NULL
    peer_t *peer;               //  the other broker of a pair, if any
    int expected_nodes;         //  after a takeover: nodes the peer served
    char expected_primary [65]; //  ...and its catalog primary
    int64_t next_assign;        //  periodic refresh of the partition map
    service_t services [MAX_SERVICES];
    int service_count;
    request_t *requests;
    uint32_t request_cap;
    uint32_t free_head;
    uint32_t inflight;
    int64_t next_heartbeat;
    int64_t next_expiry;        //  no node expires before this
};

//  --------------------------------------------------------------------------
//  Request slab

static uint32_t
s_request_alloc (broker_t *self)
{
    if (self->free_head == NO_REQUEST) {
        uint32_t old = self->request_cap;
        uint32_t cap = old? old * 2: 1024;
        self->requests = realloc (self->requests, cap * sizeof (request_t));
        if (!self->requests)
            abort ();
        memset (self->requests + old, 0, (cap - old) * sizeof (request_t));
        for (uint32_t i = old; i < cap; i++)
            self->requests [i].next = i + 1 < cap? i + 1: NO_REQUEST;
        self->free_head = old;
        self->request_cap = cap;
    }
    uint32_t index = self->free_head;
    request_t *req = &self->requests [index];
    self->free_head = req->next;
    req->used = true;
    req->gen++;
    req->next = NO_REQUEST;
    req->worker = NULL;
    self->inflight++;
    return index;
}

static void
s_request_free (broker_t *self, uint32_t index)
{
    request_t *req = &self->requests [index];
    quota_give (self->quota, req->client_key);
    zmq_msg_close (&req->client);
    zmq_msg_close (&req->body);
    req->used = false;
    req->worker = NULL;
    req->next = self->free_head;
    self->free_head = index;
    self->inflight--;
}

static void
s_token_encode (uint8_t *token, uint32_t index, uint32_t gen)
{
    memcpy (token, &index, 4);
    memcpy (token + 4, &gen, 4);
}

static request_t *
s_token_decode (broker_t *self, const zmq_msg_t *frame, uint32_t *index_p)
{
    if (zmq_msg_size ((zmq_msg_t *) frame) != TOKEN_SIZE)
        return NULL;
    uint32_t index, gen;
    memcpy (&index, zmq_msg_data ((zmq_msg_t *) frame), 4);
    memcpy (&gen, (uint8_t *) zmq_msg_data ((zmq_msg_t *) frame) + 4, 4);
    if (index >= self->request_cap)
        return NULL;
    request_t *req = &self->requests [index];
    if (!req->used || req->gen != gen)
        return NULL;
    *index_p = index;
    return req;
}

//  --------------------------------------------------------------------------
//  Frame helpers

static bool
s_frame_is (zmq_msg_t *frame, const char *text)
{
    size_t n = strlen (text);
    return zmq_msg_size (frame) == n && memcmp (zmq_msg_data (frame), text, n) == 0;
}

static void
s_frame_text (zmq_msg_t *frame, char *buf, size_t size)
{
    size_t n = zmq_msg_size (frame);
    if (n >= size)
        n = size - 1;
    memcpy (buf, zmq_msg_data (frame), n);
    buf [n] = 0;
}

//  Sends the reply envelope and a body frame (consumed) to a client
static void
s_send_to_client (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body)
{
    zmq_msg_t copy;
    zmq_msg_init (&copy);
    zmq_msg_copy (&copy, client);
    void *sock = self->client_sock;
    zmq_msg_send (&copy, sock, ZMQ_SNDMORE);
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    zmq_send (sock, BS_MDPC, strlen (BS_MDPC), ZMQ_SNDMORE);
    zmq_send (sock, service, strlen (service), ZMQ_SNDMORE);
    zmq_msg_send (body, sock, 0);
}

static void
s_send_msg_to_client (broker_t *self, zmq_msg_t *client, const char *service, bs_msg_t *msg)
{
    size_t size;
    uint8_t *data = bs_msg_encode (msg, &size);
    zmq_msg_t body;
    zmq_msg_init_size (&body, size);
    memcpy (zmq_msg_data (&body), data, size);
    free (data);
    s_send_to_client (self, client, service, &body);
}

//  request: the body the error answers, whose rid the reply echoes so that
//  a client with many requests outstanding can match it (NULL: none)
static void
s_send_error (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *request,
              bs_err_t err, const char *message)
{
    bs_msg_t *msg = bs_msg_new_error (err, message);
    const uint8_t *rid;
    size_t size;
    if (request && bs_peek_bytes (zmq_msg_data (request), zmq_msg_size (request), BS_FIELD_rid, &rid, &size)
    &&  size == BS_RID_SIZE)
        bs_msg_set_bin (msg, BS_FIELD_rid, rid, size);
    s_send_msg_to_client (self, client, service, msg);
    bs_msg_destroy (&msg);
}

static int
s_send_to_worker (broker_t *self, worker_t *w, uint8_t command, const void *token, zmq_msg_t *body)
{
    void *sock = self->node_sock;
    if (zmq_send (sock, w->identity, w->identity_size, ZMQ_SNDMORE) < 0)
        return -1;      //  EHOSTUNREACH: the node is gone
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    zmq_send (sock, BS_MDPW, strlen (BS_MDPW), ZMQ_SNDMORE);
    if (!body)
        return zmq_send (sock, &command, 1, 0) < 0? -1: 0;
    zmq_send (sock, &command, 1, ZMQ_SNDMORE);
    if (!token)
        return zmq_msg_send (body, sock, 0) < 0? -1: 0;
    zmq_send (sock, token, TOKEN_SIZE, ZMQ_SNDMORE);
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    return zmq_msg_send (body, sock, 0) < 0? -1: 0;
}

//  --------------------------------------------------------------------------
//  Dispatch

static int
s_service_find (broker_t *self, const char *name)
{
    for (int i = 0; i < self->service_count; i++)
        if (strcmp (self->services [i].name, name) == 0)
            return i;
    return -1;
}

static void s_worker_dead (broker_t *self, worker_t *w, const char *why);

static void
s_enqueue (broker_t *self, uint32_t index)
{
    request_t *req = &self->requests [index];
    service_t *svc = &self->services [req->service];
    req->worker = NULL;
    req->next = NO_REQUEST;
    if (svc->tail == NO_REQUEST)
        svc->head = index;
    else
        self->requests [svc->tail].next = index;
    svc->tail = index;
}

static bool
s_filter_readable (void *arg, worker_t *worker)
{
    return controller_readable ((controller_t *) arg, worker);
}

static bool
s_filter_reporting (void *arg, worker_t *worker)
{
    (void) arg;
    return worker->has_status;
}

//  The highest catalog seq a node is known to have applied
static uint64_t
s_catalog_seq (worker_t *worker)
{
    worker_partition_t *part = worker_partition (worker, "catalog");
    uint64_t reported = part? part->seq: 0;
    return reported > worker->read_seq? reported: worker->read_seq;
}

typedef struct {
    controller_t *controller;
    uint64_t floor;
} floor_filter_t;

static bool
s_filter_applied (void *arg, worker_t *worker)
{
    floor_filter_t *filter = arg;
    return controller_readable (filter->controller, worker) && s_catalog_seq (worker) >= filter->floor;
}

//  A catalog read of a key that was invalidated goes to a replica known to
//  have applied the invalidated version, or else to the primary, so that
//  its reply can be cached
static worker_t *
s_choose_catalog_read (broker_t *self, request_t *req)
{
    if (req->cacheable && self->cache_ready) {
        floor_filter_t filter = {
            self->controller, cache_floor (self->cache, req->cache_key, req->cache_key_size)
        };
        if (filter.floor > 0) {
            worker_t *w = workers_choose (self->workers, "catalog", s_filter_applied, &filter);
            if (!w)
                w = controller_catalog_primary (self->controller, self->workers);
            if (w)
                return w;
        }
    }
    return workers_choose (self->workers, "catalog", s_filter_readable, self->controller);
}

//  Who may take the request: catalog writes go to the primary, reads to
//  in-sync replicas; buys to any reporting order node, order reads to
//  those that have caught up; "service@node" to that node alone
static worker_t *
s_choose (broker_t *self, request_t *req)
{
    const char *service = self->services [req->service].name;
    if (req->target [0]) {
        worker_t *w = workers_by_id (self->workers, req->target);
        return w && w->alive && strcmp (w->service, service) == 0? w: NULL;
    }
    if (req->op == BS_OP_COUNT)
        return workers_choose (self->workers, service, NULL, NULL);     //  it will say what is wrong
    bool write = bs_op_kind (req->op) == BS_KIND_WRITE;
    if (strcmp (service, "catalog") == 0)
        return write? controller_catalog_primary (self->controller, self->workers)
                    : s_choose_catalog_read (self, req);
    if (strcmp (service, "order") == 0)
        return workers_choose (self->workers, service, write? s_filter_reporting: s_filter_readable,
                               self->controller);
    return workers_choose (self->workers, service, NULL, NULL);
}

//  Sends the request to the best worker, or queues it until one can take it
static void
s_dispatch (broker_t *self, uint32_t index)
{
    request_t *req = &self->requests [index];
    worker_t *w;
    //  A broker that is not active holds requests for its takeover
    while (peer_active (self->peer) && (w = s_choose (self, req))) {
        uint8_t token [TOKEN_SIZE];
        s_token_encode (token, index, req->gen);
        zmq_msg_t copy;
        zmq_msg_init (&copy);
        zmq_msg_copy (&copy, &req->body);
        if (s_send_to_worker (self, w, BS_MDPW_REQUEST, token, &copy) == 0) {
            req->worker = w;
            w->outstanding++;
            return;
        }
        zmq_msg_close (&copy);
        s_worker_dead (self, w, "unreachable");
    }
    s_enqueue (self, index);
}

//  Offers queued requests of a service to workers again
static void
s_drain_pending (broker_t *self, int service)
{
    service_t *svc = &self->services [service];
    uint32_t head = svc->head;
    svc->head = svc->tail = NO_REQUEST;
    while (head != NO_REQUEST) {
        uint32_t index = head;
        head = self->requests [index].next;
        s_dispatch (self, index);
    }
}

static void
s_drain_all (broker_t *self)
{
    for (int s = 0; s < self->service_count; s++)
        s_drain_pending (self, s);
}

//  Tells every alive node the partition map of its service
static void
s_send_assignments (broker_t *self)
{
    for (int s = 0; s < self->service_count; s++) {
        bs_msg_t *assign = controller_assign (self->controller, self->services [s].name);
        size_t size;
        uint8_t *data = bs_msg_encode (assign, &size);
        for (size_t i = 0; i < workers_size (self->workers); i++) {
            worker_t *w = workers_at (self->workers, i);
            if (!w->alive || strcmp (w->service, self->services [s].name) != 0)
                continue;
            zmq_msg_t body;
            zmq_msg_init_size (&body, size);
            memcpy (zmq_msg_data (&body), data, size);
            if (s_send_to_worker (self, w, BS_MDPW_ASSIGN, NULL, &body) != 0)
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
    if (!self->cache_ready && primary) {
        uint64_t head = 0;
        for (size_t i = 0; i < workers_size (self->workers); i++) {
            worker_t *w = workers_at (self->workers, i);
            if (w->alive && strcmp (w->service, "catalog") == 0 && s_catalog_seq (w) > head)
                head = s_catalog_seq (w);
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
    for (uint32_t i = 0; i < self->request_cap; i++) {
        request_t *req = &self->requests [i];
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
    w->alive = false;
    feed_event (self->feed, "dead", w->id, w->service, 0, "declared dead: %s", why);
    s_control (self, false);
    s_redispatch_from (self, w);
}

//  --------------------------------------------------------------------------
//  Broker pairs

//  DISCONNECT "backup": this broker is passive, register with the other
static void
s_send_backup_to (broker_t *self, const void *identity, size_t size)
{
    void *sock = self->node_sock;
    uint8_t command = BS_MDPW_DISCONNECT;
    if (zmq_send (sock, identity, size, ZMQ_SNDMORE) < 0)
        return;
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    zmq_send (sock, BS_MDPW, strlen (BS_MDPW), ZMQ_SNDMORE);
    zmq_send (sock, &command, 1, ZMQ_SNDMORE);
    zmq_send (sock, "backup", 6, 0);
}

static void s_refuse_passive (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body);

//  Answers every request this broker holds "not_active", so that its
//  clients resend them (same rids) to the active broker
static void
s_release_all (broker_t *self)
{
    int released = 0;
    for (uint32_t i = 0; i < self->request_cap; i++) {
        request_t *req = &self->requests [i];
        if (!req->used)
            continue;
        if (req->worker && req->worker->outstanding > 0)
            req->worker->outstanding--;
        s_refuse_passive (self, &req->client, self->services [req->service].name, &req->body);
        s_request_free (self, i);
        released++;
    }
    for (int s = 0; s < self->service_count; s++)
        self->services [s].head = self->services [s].tail = NO_REQUEST;
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
        s_send_backup_to (self, w->identity, w->identity_size);
        w->alive = false;
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

//  --------------------------------------------------------------------------
//  Broker's own service

//  The cluster as the broker sees it: the status reply and the feed's
//  snapshot
static bs_msg_t *
s_status_msg (broker_t *self)
{
    bs_msg_t *reply = bs_msg_new_ok ();
    int64_t now = zclock_mono ();
    bs_msg_set_int (reply, BS_FIELD_inflight, self->inflight);
    cache_stats_t stats;
    cache_stats (self->cache, &stats);
    bs_msg_t *cache = bs_msg_new ();
    bs_msg_set_int (cache, BS_FIELD_capacity, (int64_t) stats.capacity);
    bs_msg_set_int (cache, BS_FIELD_size, (int64_t) stats.size);
    bs_msg_set_int (cache, BS_FIELD_bytes, (int64_t) stats.bytes);
    bs_msg_set_int (cache, BS_FIELD_hits, (int64_t) stats.hits);
    bs_msg_set_int (cache, BS_FIELD_misses, (int64_t) stats.misses);
    bs_msg_set_int (cache, BS_FIELD_evictions, (int64_t) stats.evictions);
    bs_msg_set_int (cache, BS_FIELD_invalidations, (int64_t) stats.invalidations);
    bs_msg_set_int (cache, BS_FIELD_stale, (int64_t) stats.stale);
    bs_msg_set_map (reply, BS_FIELD_cache, &cache);
    for (size_t i = 0; i < workers_size (self->workers); i++) {
        worker_t *w = workers_at (self->workers, i);
        bs_msg_t *node = bs_msg_new ();
        bs_msg_set_str (node, BS_FIELD_id, w->id);
        bs_msg_set_str (node, BS_FIELD_service, w->service);
        bs_msg_set_int (node, BS_FIELD_alive, w->alive);
        bs_msg_set_int (node, BS_FIELD_inflight, w->outstanding);
        bs_msg_set_int (node, BS_FIELD_requests, (int64_t) w->served);
        if (w->alive)
            bs_msg_set_int (node, BS_FIELD_age, now - w->last_seen);
        if (w->has_status) {
            bs_msg_set_str (node, BS_FIELD_role, controller_role (self->controller, w));
            bs_msg_set_int (node, BS_FIELD_insync, controller_insync (self->controller, w));
            bs_msg_set_int (node, BS_FIELD_ready, w->ready);
            bs_msg_set_int (node, BS_FIELD_lag, (int64_t) controller_lag (self->controller, self->workers, w));
            bs_msg_set_str (node, BS_FIELD_digest, w->digest);
            //  The partition the node writes (order) or the catalog's
            worker_partition_t *main = NULL;
            for (int k = 0; k < w->partition_count && !main; k++)
                if (strcmp (w->service, "catalog") == 0 || strcmp (w->partitions [k].role, "primary") == 0)
                    main = &w->partitions [k];
            if (main) {
                bs_msg_set_str (node, BS_FIELD_partition, main->name);
                bs_msg_set_int (node, BS_FIELD_epoch, (int64_t) main->epoch);
                bs_msg_set_int (node, BS_FIELD_seq, (int64_t) main->seq);
            }
        }
        bs_msg_append (reply, BS_FIELD_nodes, &node);
    }
    peer_describe (self->peer, reply);
    return reply;
}

static void
s_handle_status (broker_t *self, zmq_msg_t *client, zmq_msg_t *body)
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
        s_send_error (self, client, BS_SERVICE_BROKER, body, err, reason);
        bs_msg_destroy (&request);
        return;
    }
    bs_msg_t *reply = s_status_msg (self);
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    bs_msg_set_bin (reply, BS_FIELD_rid, rid, rid_size);
    s_send_msg_to_client (self, client, BS_SERVICE_BROKER, reply);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
}

//  --------------------------------------------------------------------------
//  Cache (keys: cache_key_item, cache_key_topic, cache_key_for)

//  Answers a request from the cache: the stored reply with this request's
//  id in place of the one it was first read for
static bool
s_serve_from_cache (broker_t *self, zmq_msg_t *client, zmq_msg_t *request,
                    const uint8_t *key, size_t key_size)
{
    size_t size, rid_offset;
    int64_t now = self->options.cache_ttl_ms? zclock_mono (): 0;
    const uint8_t *cached = cache_get (self->cache, key, key_size, now, &size, &rid_offset);
    if (!cached)
        return false;
    const uint8_t *rid;
    size_t n;
    bs_peek_bytes (zmq_msg_data (request), zmq_msg_size (request), BS_FIELD_rid, &rid, &n);
    zmq_msg_t body;
    zmq_msg_init_size (&body, size);
    uint8_t *data = zmq_msg_data (&body);
    memcpy (data, cached, size);
    memcpy (data + rid_offset, rid, BS_RID_SIZE);
    s_send_to_client (self, client, "catalog", &body);
    return true;
}

//  A catalog node answered a cacheable read: note how far it has applied
//  the catalog, and keep the reply if it is fresh enough
static void
s_cache_fill (broker_t *self, request_t *req, worker_t *worker, zmq_msg_t *reply)
{
    const uint8_t *data = zmq_msg_data (reply);
    size_t size = zmq_msg_size (reply);
    int64_t ok = 0, seq = 0;
    const uint8_t *rid;
    size_t n;
    if (!bs_peek_int (data, size, BS_FIELD_seq, &seq) || seq < 0)
        return;
    if (worker && worker == req->worker && (uint64_t) seq > worker->read_seq)
        worker->read_seq = (uint64_t) seq;
    if (!bs_peek_int (data, size, BS_FIELD_ok, &ok) || !ok
    ||  !bs_peek_bytes (data, size, BS_FIELD_rid, &rid, &n) || n != BS_RID_SIZE
    ||  req->cache_epoch != self->catalog_epoch)
        return;
    int64_t now = self->options.cache_ttl_ms? zclock_mono (): 0;
    cache_put (self->cache, req->cache_key, req->cache_key_size, now, data, size,
               (size_t) (rid - data), (uint64_t) seq);
}

//  Catalog primary -> broker: [invalidate] on the REP socket.  Every
//  request gets exactly one reply, an error when it is malformed (and then
//  nothing is invalidated).
static void
s_invalidation_message (broker_t *self)
{
    void *sock = zsock_resolve (self->invalidations);
    zmq_msg_t frames [MAX_FRAMES];
    int count;
    int total = bs_frames_recv (sock, frames, MAX_FRAMES, &count);
    if (total < 0)
        return;
    bs_msg_t *request = NULL, *reply = NULL;
    char reason [160] = "";
    bs_err_t err = BS_ERR_bad_frame;
    if (total == 1) {
        request = bs_msg_decode (zmq_msg_data (&frames [0]), zmq_msg_size (&frames [0]), &err, reason, sizeof reason);
        if (request)
            err = bs_msg_validate_request (request, reason, sizeof reason);
        if (err == BS_OK && bs_msg_op (request) != BS_OP_invalidate) {
            err = BS_ERR_unknown_op;
            snprintf (reason, sizeof reason, "this socket only takes 'invalidate'");
        }
        for (size_t i = 0; err == BS_OK && i < bs_msg_count (request, BS_FIELD_items); i++) {
            bs_msg_t *key = bs_msg_at (request, BS_FIELD_items, i);
            if (!bs_msg_has (key, BS_FIELD_item) && !bs_msg_has (key, BS_FIELD_topic)) {
                err = BS_ERR_missing_field;
                snprintf (reason, sizeof reason, "every entry of 'items' needs an 'item' or a 'topic'");
            }
        }
    }
    else
        snprintf (reason, sizeof reason, "an invalidation is one frame");
    //  Only the active broker's cache matters; a write must not count a
    //  passive broker's ack as the invalidation
    if (err == BS_OK && !peer_active (self->peer)) {
        err = BS_ERR_not_active;
        snprintf (reason, sizeof reason, "this broker is not the active one of its pair");
    }
    if (err == BS_OK) {
        uint64_t version = (uint64_t) bs_msg_int (request, BS_FIELD_version);
        for (size_t i = 0; i < bs_msg_count (request, BS_FIELD_items); i++) {
            bs_msg_t *entry = bs_msg_at (request, BS_FIELD_items, i);
            uint8_t key [CACHE_KEY_MAX];
            size_t key_size;
            if (bs_msg_has (entry, BS_FIELD_item)) {
                key_size = cache_key_item (key, bs_msg_int (entry, BS_FIELD_item));
                cache_invalidate (self->cache, key, key_size, version);
            }
            if (bs_msg_has (entry, BS_FIELD_topic)) {
                const char *topic = bs_msg_str (entry, BS_FIELD_topic);
                key_size = cache_key_topic (key, topic, strlen (topic));
                if (key_size)
                    cache_invalidate (self->cache, key, key_size, version);
            }
        }
        reply = bs_msg_new_ok ();
    }
    else {
        zsys_warning ("broker: refused an invalidation: %s", reason);
        reply = bs_msg_new_error (err, reason);
    }
    size_t size;
    uint8_t *data = bs_msg_encode (reply, &size);
    zmq_send (sock, data, size, 0);
    free (data);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    bs_frames_close (frames, count);
}

//  --------------------------------------------------------------------------
//  Client side

//  With CURVE: who may run what.  Changing the catalog takes an admin key;
//  taking stock without an order is for order nodes alone.
static bool
s_allowed (bs_op_t op, const char *role)
{
    if (op == BS_OP_set_price || op == BS_OP_restock || op == BS_OP_add_book)
        return strcmp (role, "admin") == 0;
    if (op == BS_OP_decrement)
        return strcmp (role, "node") == 0;
    return *role != 0;
}

//  The not_active answer of a passive broker, naming the active one
static void
s_refuse_passive (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body)
{
    char message [384];
    snprintf (message, sizeof message, "this broker is %s in a pair; the active one is %s",
              peer_state_name (peer_state (self->peer)),
              *peer_endpoint (self->peer)? peer_endpoint (self->peer): "its peer");
    s_send_error (self, client, service, body, BS_ERR_not_active, message);
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
    char service [64] = "";
    if (count >= 4)
        s_frame_text (&frames [3], service, sizeof service);
    if (total != 5 || zmq_msg_size (&frames [1]) != 0 || !s_frame_is (&frames [2], BS_MDPC)) {
        if (count >= 1)
            s_send_error (self, &frames [0], service, NULL, BS_ERR_bad_frame,
                          "a request must be [empty] \"MDPC01\" service body");
        bs_frames_close (frames, count);
        return;
    }
    if (zmq_msg_size (&frames [4]) > MAX_REQUEST) {
        s_send_error (self, &frames [0], service, NULL, BS_ERR_too_large,
                      "the request is larger than the 64 KiB limit");
        bs_frames_close (frames, count);
        return;
    }
    //  "broker" is the active broker's view: a passive one sends clients
    //  on; "broker@<id>" asks that broker itself, whatever its state
    char own [80];
    snprintf (own, sizeof own, "%s@%s", BS_SERVICE_BROKER, self->options.id? self->options.id: "");
    bool own_status = strcmp (service, own) == 0;
    if (own_status || (strcmp (service, BS_SERVICE_BROKER) == 0 && peer_client_verdict (self->peer) != PEER_REFUSE)) {
        s_handle_status (self, &frames [0], &frames [4]);
        bs_frames_close (frames, count);
        return;
    }
    //  A passive broker sends clients to the active one, unless the
    //  active one has gone silent: then it holds them for its takeover
    peer_verdict_t verdict = peer_client_verdict (self->peer);
    if (verdict == PEER_REFUSE) {
        s_refuse_passive (self, &frames [0], service, &frames [4]);
        bs_frames_close (frames, count);
        return;
    }
    //  "service@node" asks for one node by id (for operators and tests)
    char *at = strchr (service, '@');
    char target [65] = "";
    if (at) {
        snprintf (target, sizeof target, "%s", at + 1);
        *at = 0;
    }
    int svc = zmq_msg_size (&frames [3]) < sizeof service? s_service_find (self, service): -1;
    if (svc < 0) {
        char message [128];
        snprintf (message, sizeof message, "no service named '%.40s'", service);
        s_send_error (self, &frames [0], "", &frames [4], BS_ERR_unknown_service, message);
        bs_frames_close (frames, count);
        return;
    }
    bs_op_t op = bs_peek_op (zmq_msg_data (&frames [4]), zmq_msg_size (&frames [4]));
    if (self->options.keys && !s_allowed (op, bs_keys_role (&frames [4], NULL))) {
        char message [128];
        snprintf (message, sizeof message, "your key may not run '%s'", bs_op_name (op));
        s_send_error (self, &frames [0], service, &frames [4], BS_ERR_forbidden, message);
        bs_frames_close (frames, count);
        return;
    }
    uint8_t key [CACHE_KEY_MAX];
    size_t key_size = 0;
    if (svc == self->catalog && !target [0] && cache_enabled (self->cache) && verdict == PEER_SERVE)
        key_size = cache_key_for (op, zmq_msg_data (&frames [4]), zmq_msg_size (&frames [4]), key);
    if (key_size && s_serve_from_cache (self, &frames [0], &frames [4], key, key_size)) {
        bs_frames_close (frames, count);
        return;
    }
    //  A client that floods the broker is refused alone
    uint64_t client_key = quota_key (zmq_msg_data (&frames [0]), zmq_msg_size (&frames [0]));
    if (!quota_take (self->quota, client_key)) {
        s_send_error (self, &frames [0], service, &frames [4], BS_ERR_overloaded,
                      quota_total (self->quota) >= (uint32_t) self->options.max_inflight?
                      "the broker has too many requests in flight; retry shortly":
                      "you have too many requests in flight; wait for answers before sending more");
        bs_frames_close (frames, count);
        return;
    }
    uint32_t index = s_request_alloc (self);
    request_t *req = &self->requests [index];
    req->client_key = client_key;
    zmq_msg_init (&req->client);
    zmq_msg_move (&req->client, &frames [0]);
    zmq_msg_init (&req->body);
    zmq_msg_move (&req->body, &frames [4]);
    req->service = svc;
    req->op = op;
    req->cacheable = key_size > 0;
    if (key_size) {
        memcpy (req->cache_key, key, key_size);
        req->cache_key_size = (uint8_t) key_size;
        req->cache_epoch = self->catalog_epoch;
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
    s_send_backup_to (self, zmq_msg_data (node), zmq_msg_size (node));
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
    char service [33] = "", id [65] = "";
    if (count >= 5)
        s_frame_text (&frames [4], service, sizeof service);
    if (count >= 6)
        s_frame_text (&frames [5], id, sizeof id);
    int svc = s_service_find (self, service);
    //  The id names the node everywhere (assignments, status, the
    //  feed): plain text, and not another live node's
    //  (a plain Majordomo worker sends no id: it is known by its routing
    //  id in hex, which must not be another live node's either)
    bool bad_id = (count >= 6 && (zmq_msg_size (&frames [5]) >= sizeof id || !workers_id_valid (id)))
               || workers_id_holder (self->workers, id, zmq_msg_data (&frames [NODE_IDENTITY]),
                                     zmq_msg_size (&frames [NODE_IDENTITY]));
    if (bad_id) {
        static int64_t last_id_warning;
        if (zclock_mono () - last_id_warning > 5000) {
            last_id_warning = zclock_mono ();
            zsys_warning ("broker: refused READY: node id '%.64s' is not plain text or is taken", id);
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
    if (w && w->alive) {
        //  A node that restarted under the same identity has forgotten
        //  what it was doing: hand its requests to someone else
        w->alive = false;
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

//  A request answered while queued for re-dispatch leaves its service's
//  queue
static void
s_request_unqueue (broker_t *self, request_t *req, uint32_t index)
{
    service_t *svc = &self->services [req->service];
    uint32_t prev = NO_REQUEST;
    for (uint32_t i = svc->head; i != NO_REQUEST; prev = i, i = self->requests [i].next)
        if (i == index) {
            if (prev == NO_REQUEST)
                svc->head = req->next;
            else
                self->requests [prev].next = req->next;
            if (svc->tail == index)
                svc->tail = prev;
            break;
        }
}

//  REPLY [token] [empty] [body]: answers the client whose request the token
//  names, at most once (a stale token, a reused slot, is dropped).  w is
//  NULL or dead for a late reply from a node declared dead.
static void
s_node_reply (broker_t *self, worker_t *w, zmq_msg_t *frames, int total)
{
    uint32_t index;
    request_t *req = total == 7? s_token_decode (self, &frames [4], &index): NULL;
    if (!req)
        return;
    if (req->worker && req->worker->outstanding > 0)
        req->worker->outstanding--;
    if (w && w->alive)
        w->served++;
    if (!req->worker)
        s_request_unqueue (self, req, index);
    if (req->cacheable)
        s_cache_fill (self, req, w, &frames [6]);
    s_send_to_client (self, &req->client, self->services [req->service].name, &frames [6]);
    s_request_free (self, index);
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
        s_send_to_worker (self, &stranger, BS_MDPW_DISCONNECT, NULL, NULL);
    }
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
    if (total < 4 || zmq_msg_size (&frames [1]) != 0 || !s_frame_is (&frames [2], BS_MDPW)
    ||  zmq_msg_size (&frames [NODE_COMMAND]) != 1) {
        zsys_warning ("broker: dropped a malformed message from a node (%d frames)", total);
        bs_frames_close (frames, count);
        return;
    }
    uint8_t command = *(uint8_t *) zmq_msg_data (&frames [NODE_COMMAND]);
    //  A passive broker whose peer is alive sends nodes on to it.  While
    //  the peer is silent it keeps the nodes that turn to it, and takes over
    //  once enough have (see peer.h).
    if (peer_client_verdict (self->peer) == PEER_REFUSE) {
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
    if (peer_client_verdict (self->peer) == PEER_REFUSE) {
        s_release_nodes (self);
        s_release_all (self);
    }
    s_control (self, now >= self->next_assign);
    s_check_expiry (self, now);
    for (size_t i = 0; i < workers_size (self->workers); i++) {
        worker_t *w = workers_at (self->workers, i);
        if (w->alive && s_send_to_worker (self, w, BS_MDPW_HEARTBEAT, NULL, NULL) != 0)
            s_worker_dead (self, w, "unreachable");
    }
    bs_msg_t *status = s_status_msg (self);
    feed_status (self->feed, status);
    bs_msg_destroy (&status);
    //  Requests that waited too long for a worker get a clear error
    for (int s = 0; s < self->service_count; s++) {
        service_t *svc = &self->services [s];
        while (svc->head != NO_REQUEST && self->requests [svc->head].deadline <= now) {
            uint32_t index = svc->head;
            svc->head = self->requests [index].next;
            if (svc->head == NO_REQUEST)
                svc->tail = NO_REQUEST;
            char message [128];
            snprintf (message, sizeof message, "no replica of service '%s' is available", svc->name);
            s_send_error (self, &self->requests [index].client, svc->name, &self->requests [index].body,
                          BS_ERR_unavailable, message);
            s_request_free (self, index);
        }
    }
    //  Forget requests whose worker never answered and whose client has long
    //  since given up, so that memory stays bounded
    for (uint32_t i = 0; i < self->request_cap; i++) {
        request_t *req = &self->requests [i];
        if (req->used && req->worker && now - req->created > REQUEST_MAX_AGE_MS) {
            if (req->worker->outstanding > 0)
                req->worker->outstanding--;
            s_request_free (self, i);
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
    self->free_head = NO_REQUEST;
    for (int i = 0; i < MAX_SERVICES; i++)
        self->services [i].head = self->services [i].tail = NO_REQUEST;
    char *names = bs_strdup (options->services);
    for (char *tok = strtok (names, ","); tok && self->service_count < MAX_SERVICES; tok = strtok (NULL, ","))
        snprintf (self->services [self->service_count++].name, 33, "%s", tok);
    free (names);
    self->catalog = s_service_find (self, "catalog");
    self->cache = cache_new (options->cache_entries, options->cache_bytes, options->cache_ttl_ms);
    self->quota = quota_new ((uint32_t) options->max_per_client, (uint32_t) options->max_inflight);
    self->workers = workers_new ();
    //  Wait a few heartbeats for nodes to report before the first election
    self->controller = controller_new (options->heartbeat_ms * (options->liveness + 1));
    if (options->etcd && *options->etcd) {
        self->store = ctlplane_new (options->etcd, options->cluster? options->cluster: "default",
                                    options->etcd_timeout_ms > 0? options->etcd_timeout_ms: 1000);
        if (!self->store) {
            zsys_error ("broker: cannot use etcd at '%s' for cluster '%s'", options->etcd,
                        options->cluster? options->cluster: "default");
            broker_destroy (&self);
            return NULL;
        }
        controller_use_store (self->controller, self->store);
        zsys_info ("broker: the partition map lives in etcd at %s under %s", options->etcd,
                   ctlplane_prefix (self->store));
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
    zsock_set_sndhwm (self->clients, 0);
    zsock_set_rcvhwm (self->clients, 0);
    zsock_set_sndhwm (self->nodes, 0);
    zsock_set_rcvhwm (self->nodes, 0);
    zsock_set_router_mandatory (self->nodes, 1);
    //  A node that restarts reuses its routing id; let it take the pipe over
    zsock_set_router_handover (self->nodes, 1);
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
    for (uint32_t i = 0; i < self->request_cap; i++)
        if (self->requests [i].used)
            s_request_free (self, i);
    free (self->requests);
    workers_destroy (&self->workers);
    controller_destroy (&self->controller);
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
    zmq_pollitem_t items [7] = {
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
    while (!zsys_interrupted) {
        int64_t now = zclock_mono ();
        if (now > self->next_expiry)
            s_check_expiry (self, now);
        int64_t wake = self->next_heartbeat;
        if (self->next_expiry < wake)
            wake = self->next_expiry + 1;
        int64_t wait = wake - now;
        if (wait < 0)
            wait = 0;
        items [2].events = self->muted? 0: ZMQ_POLLIN;
        if (zmq_poll (items, item_count, (long) wait) < 0)
            break;
        if (store_item >= 0 && (items [store_item].revents & ZMQ_POLLIN)) {
            //  The control plane answered: what it holds is the map
            ctlplane_result_t *result = ctlplane_recv (self->store);
            bool changed = result && controller_on_store (self->controller, result);
            ctlplane_result_destroy (&result);
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
            s_invalidation_message (self);
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
        if (zclock_mono () >= self->next_heartbeat) {
            s_on_tick (self);
            self->next_heartbeat = zclock_mono () + self->options.heartbeat_ms;
        }
    }
    zsys_info ("broker: stopping");
}
