/*  broker - Majordomo broker with least-outstanding load balancing and
 *  re-dispatch of in-flight requests.  The forwarding path works on raw
 *  zmq_msg_t frames: bodies are passed along without being copied or parsed.
 *
 *  This file holds the event loop and the wiring between the broker's
 *  modules: dispatch and re-dispatch, following the partition map, and
 *  the heartbeat tick.  The client path is in broker_clients.c, the node
 *  commands in broker_nodes.c, the active lease (taking over, stepping
 *  down) in broker_active.c (the shared state:
 *  broker_internal.h).  The pieces live apart: requests (the table of
 *  requests in flight and the services' queues), route (which worker takes
 *  a request), wire (the frames on the sockets), cache_io (cached replies
 *  and invalidations), status (the cluster as one message), and workers,
 *  controller, fence, cache, quota, feed.
 */
#include "broker.h"
#include "broker_internal.h"
#include "cache_io.h"
#include "route.h"
#include "wire.h"
#include "bs_mdp.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <time.h>
#include <sys/timerfd.h>

//  --------------------------------------------------------------------------
//  Dispatch

//  The service frame a request came with, which its reply repeats: the
//  service, and "@node" when it asked one node.  buf holds the latter.
const char *
broker_request_service (broker_t *self, const request_t *req, char *buf, size_t size)
{
    const char *name = requests_service_name (self->requests, req->service);
    if (!req->target [0])
        return name;
    snprintf (buf, size, "%s@%s", name, req->target);
    return buf;
}

//  Sends the request to the best worker, or queues it until one can take it
void
broker_dispatch (broker_t *self, uint32_t index)
{
    request_t *req = requests_at (self->requests, index);
    const char *service = requests_service_name (self->requests, req->service);
    worker_t *w;
    //  A broker that is not active sends no request to a node; the cache's
    //  floors count once its base floor is known
    while (broker_active (self)
       &&  (w = route_choose (self->workers, self->controller, self->cache_ready? self->cache: NULL,
                              req, service))) {
        uint8_t token [REQUEST_TOKEN_SIZE];
        requests_token (self->requests, index, token);
        //  The body goes by reference (zmq_msg_copy), as many frames as
        //  it came in
        zmq_msg_t copy [1 + REQUEST_BODY_FRAMES_MAX];
        int frames = 1 + req->more_count;
        for (int i = 0; i < frames; i++) {
            zmq_msg_init (&copy [i]);
            zmq_msg_copy (&copy [i], i? &req->more [i - 1]: &req->body);
        }
        if (wire_request_to_worker (self->node_sock, w, token, copy, frames) == 0) {
            req->worker = w;
            req->sent_to = w->serial;
            w->outstanding++;
            return;
        }
        broker_worker_unreachable (self, w, zmq_errno ());
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
        broker_dispatch (self, index);
    }
}

static void
s_drain_all (broker_t *self)
{
    for (int s = 0; s < requests_service_count (self->requests); s++)
        s_drain_pending (self, s);
}

//  Tells every alive bookstore node the partition map of its service; a
//  standard worker gets no ASSIGN, which 7/MDP does not have
static void
s_send_assignments (broker_t *self)
{
    for (int s = 0; s < requests_service_count (self->requests); s++) {
        const char *service = requests_service_name (self->requests, s);
        if (!broker_bookstore_service (service))
            continue;
        bs_msg_t *assign = controller_assign (self->controller, service);
        size_t size;
        uint8_t *data = bs_msg_encode (assign, &size);
        for (size_t i = 0; i < workers_size (self->workers); i++) {
            worker_t *w = workers_at (self->workers, i);
            if (!w->alive || w->standard || strcmp (w->service, service) != 0)
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

void
broker_control (broker_t *self, bool force)
{
    if (!broker_active (self))
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
void
broker_redispatch_from (broker_t *self, worker_t *w)
{
    int moved = 0;
    for (uint32_t i = 0; i < requests_cap (self->requests); i++) {
        request_t *req = requests_at (self->requests, i);
        if (req->used && req->worker == w) {
            req->worker = NULL;
            req->deadline = zclock_mono () + self->options.request_timeout_ms;
            broker_dispatch (self, i);
            moved++;
        }
    }
    w->outstanding = 0;
    if (moved)
        zsys_info ("broker: re-dispatched %d request(s) held by %s", moved, w->id);
}

void
broker_worker_dead (broker_t *self, worker_t *w, const char *why)
{
    if (!w->alive)
        return;
    workers_declare_dead (w, zclock_mono ());
    feed_event (self->feed, "dead", w->id, w->service, 0, "declared dead: %s", why);
    broker_control (self, false);
    broker_redispatch_from (self, w);
}

//  --------------------------------------------------------------------------
//  Timers

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
    broker_send_on (self);
    broker_control (self, now >= self->next_assign);
    registry_write_t write;
    if (self->registry && registry_due (self->registry, now, &write))
        broker_registry_write (self, &write);
    broker_check_expiry (self, now);
    broker_send_refusals (self, now);
    //  Here no worker pointer is held, and a dead worker holds no request
    //  (they were taken back when it died)
    workers_forget (self->workers, now);
    //  Nodes hear from the broker every tick; a standard worker at the
    //  7/MDP interval it was registered with
    for (size_t i = 0; i < workers_size (self->workers); i++) {
        worker_t *w = workers_at (self->workers, i);
        if (!w->alive || (w->standard && now < w->next_heartbeat))
            continue;
        if (w->standard)
            w->next_heartbeat = now + w->heartbeat_ms;
        if (wire_to_worker (self->node_sock, w, BS_MDPW_HEARTBEAT, NULL, NULL) != 0)
            broker_worker_unreachable (self, w, zmq_errno ());
    }
    bs_msg_t *status = broker_status_msg (self);
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
                        broker_request_service (self, req, service, sizeof service), &req->body, BS_ERR_unavailable,
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

//  The control plane answered: what it holds is the map.  Changes of the
//  catalog's primary or in-sync set seen there go on the feed.
static void
s_store_answer (broker_t *self)
{
    uint64_t epoch_before = 0, epoch_after = 0;
    const char *primary = NULL;
    char insync_before [1024] = "", insync_after [1024] = "";
    int64_t revision = 0;
    bool known = controller_stored (self->controller, &epoch_before, &primary,
                                    insync_before, sizeof insync_before, &revision);
    ctlplane_result_t *result = ctlplane_recv (self->store);
    if (result && (result->tag & REGISTRY_TAG)) {
        if (result->rc != BS_ETCD_OK)
            zsys_warning ("broker: etcd did not take a node's record: %s", result->error);
        registry_written (self->registry, result->tag, result->rc == BS_ETCD_OK, zclock_mono ());
        ctlplane_result_destroy (&result);
        return;
    }
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
        broker_control (self, false);
}

void
broker_registry_write (broker_t *self, registry_write_t *write)
{
    ctlplane_put_leased (self->store, write->key, write->value, 0, write->tag);
}

//  --------------------------------------------------------------------------

bool
broker_services_check (const char *services, char *reason, size_t size)
{
    int names = 0;
    const char *s = services? services: "";
    do {
        const char *end = strchr (s, ',');
        size_t n = end? (size_t) (end - s): strlen (s);
        bool text = n > 0 && n <= BS_SERVICE_MAX;
        for (size_t i = 0; text && i < n; i++)
            text = s [i] > 0x20 && s [i] < 0x7f && s [i] != '@';
        if (!text || (n == strlen (BS_SERVICE_BROKER) && memcmp (s, BS_SERVICE_BROKER, n) == 0)) {
            snprintf (reason, size, "--services takes comma-separated service names of 1 to %d printable "
                      "characters without '@' or spaces, other than '%s', or '*' for any: '%.*s' is not one",
                      BS_SERVICE_MAX, BS_SERVICE_BROKER, (int) (n < 64? n: 64), s);
            return false;
        }
        if (!(n == 1 && *s == '*') && ++names > REQUESTS_MAX_SERVICES) {
            snprintf (reason, size, "--services names at most %d services", REQUESTS_MAX_SERVICES);
            return false;
        }
        s = end? end + 1: NULL;
    } while (s);
    return true;
}

broker_t *
broker_new (const broker_options_t *options)
{
    broker_t *self = calloc (1, sizeof (broker_t));
    if (!self)
        abort ();
    self->options = *options;
    self->quota = quota_new ((uint32_t) options->max_per_client, (uint32_t) options->max_inflight);
    self->laggards = laggards_new (LAGGARD_RATE);
    wire_watch_laggards (self->laggards);
    self->rest_timer = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (self->rest_timer < 0) {
        zsys_error ("broker: cannot make a timer: %s", strerror (errno));
        broker_destroy (&self);
        return NULL;
    }
    self->requests = requests_new (options->services, self->quota);
    //  "*" among the services: a worker may offer any service
    for (const char *s = options->services; s && (s = strchr (s, '*')); s++)
        if ((s == options->services || s [-1] == ',') && (s [1] == ',' || s [1] == 0))
            self->any_service = true;
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
        self->registry = registry_new ();
        if (!self->registry)
            abort ();
        zsys_info ("broker: the partition map lives in etcd at %s under %s", options->etcd,
                   ctlplane_prefix (self->store));
        //  Every broker with etcd campaigns for the active lease: the one
        //  that holds it serves, any other sends clients and nodes on
        self->fence = fence_new (options->etcd, options->cluster? options->cluster: "default",
                                 options->etcd_timeout_ms > 0? options->etcd_timeout_ms: 1000,
                                 options->lease_seconds > 0? options->lease_seconds: 2,
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
    zsock_set_rcvhwm (self->clients, CLIENT_RCVHWM);
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
    //  (s_node_ready in broker_nodes.c)
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
    if (!self->feed || !self->disconnects) {
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
    registry_destroy (&self->registry);
    cache_destroy (&self->cache);
    quota_destroy (&self->quota);
    wire_watch_laggards (NULL);
    laggards_destroy (&self->laggards);
    if (self->rest_timer >= 0)
        close (self->rest_timer);
    bs_monitor_destroy (&self->disconnects);
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
    };
    int item_count = 4;
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
    //  The timer that ends a rest of the client socket (see below), on
    //  time: the kernel may otherwise let it run 50 us late, half a rest
    prctl (PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    //  (the poll set's last item)
    items [item_count] = (zmq_pollitem_t) { NULL, self->rest_timer, ZMQ_POLLIN, 0 };
    int rest_item = item_count++;
    while (!zsys_interrupted) {
        //  A rest (clients that do not read spent their budget): the
        //  client socket is left unread until the timer ends it, so their
        //  queues fill and their sends block; nodes are served meanwhile
        bool resting = false;
        if (self->clients_rest_until) {
            int64_t left = self->clients_rest_until - zclock_usecs ();
            if (left > 0) {
                struct itimerspec when = { .it_value = { left / 1000000, (left % 1000000) * 1000 } };
                timerfd_settime (self->rest_timer, 0, &when, NULL);
                resting = true;
            }
            else
                self->clients_rest_until = 0;
        }
        items [1].events = resting? 0: ZMQ_POLLIN;
        items [rest_item].events = resting? ZMQ_POLLIN: 0;
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
        if (items [rest_item].revents & ZMQ_POLLIN) {
            uint64_t expirations;
            if (read (self->rest_timer, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                zsys_warning ("broker: rest timer: %s", strerror (errno));
        }
        if (fence_item >= 0)
            broker_fence_step (self, items [fence_item].revents & ZMQ_POLLIN);
        if (store_item >= 0 && (items [store_item].revents & ZMQ_POLLIN))
            s_store_answer (self);
        if (items [3].revents & ZMQ_POLLIN)
            broker_disconnects (self);
        //  Invalidations first: a catalog write is waiting on each
        if (items [2].revents & ZMQ_POLLIN)
            cache_io_invalidation (self->cache, broker_active (self), zsock_resolve (self->invalidations));
        //  Drain in batches so one busy side cannot starve the other
        for (int n = 0; n < 1000 && (items [0].revents & ZMQ_POLLIN); n++) {
            int events;
            size_t len = sizeof events;
            broker_node_message (self);
            zmq_getsockopt (self->node_sock, ZMQ_EVENTS, &events, &len);
            if (!(events & ZMQ_POLLIN))
                break;
        }
        int64_t slept = 0;
        for (int n = 0; n < 1000 && (items [1].revents & ZMQ_POLLIN); n++) {
            int events;
            size_t len = sizeof events;
            broker_client_message (self);
            if (self->clients_rest_until) {
                //  The laggards' budget is spent: short rests are slept
                //  here, up to a millisecond a turn (a turn through the
                //  poll costs tens of microseconds of system calls, as
                //  much as the rest itself); then the poll's timer
                int64_t left = self->clients_rest_until - zclock_usecs ();
                if (slept + left > REST_INLINE_US)
                    break;
                if (left > 0) {
                    struct timespec nap = { 0, (long) left * 1000 };
                    nanosleep (&nap, NULL);
                    slept += left;
                }
                self->clients_rest_until = 0;
            }
            zmq_getsockopt (self->client_sock, ZMQ_EVENTS, &events, &len);
            if (!(events & ZMQ_POLLIN))
                break;
        }
        //  Silence is judged after reading what waits: a broker that was
        //  stopped or starved past a node's window finds that node's
        //  heartbeats queued, and must not declare it dead (and drop it
        //  from the in-sync set) for messages it could not read
        if (zclock_mono () > self->next_expiry)
            broker_check_expiry (self, zclock_mono ());
        if (zclock_mono () >= self->next_heartbeat) {
            s_on_tick (self);
            laggards_expire (self->laggards, zclock_usecs ());
            self->next_heartbeat = zclock_mono () + self->options.heartbeat_ms;
        }
    }
    zsys_info ("broker: stopping");
}
