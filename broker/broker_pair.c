/*  broker_pair - the broker's side of a Binary Star pair (peer.h) and of
 *  the active lease in etcd (fence.h): taking over (relearning the cluster
 *  from the nodes, with a cold cache), yielding (nodes and requests sent
 *  on to the peer), and the not_active answers of a broker that may not
 *  serve.  Part of the broker object (broker_internal.h).
 */
#include "broker_internal.h"
#include "cache.h"
#include "wire.h"

#include <string.h>


//  Answers every request this broker holds "not_active", so that its
//  clients resend them (same rids) to the active broker
void
broker_release_all (broker_t *self)
{
    int released = 0;
    for (uint32_t i = 0; i < requests_cap (self->requests); i++) {
        request_t *req = requests_at (self->requests, i);
        if (!req->used)
            continue;
        if (req->worker && req->worker->outstanding > 0)
            req->worker->outstanding--;
        char service [REQUEST_SERVICE_MAX];
        broker_request_service (self, req, service, sizeof service);
        if (req->from_node)
            wire_error (self->node_sock, &req->client, service, &req->body, BS_ERR_not_active,
                        "this broker is no longer active in its pair");
        else
            broker_refuse_passive (self, &req->client, service, &req->body);
        requests_free (self->requests, i);
        released++;
    }
    requests_clear_queues (self->requests);
    if (released)
        zsys_info ("broker: sent %d request(s) on to the active broker", released);
}

int
broker_serving_nodes (broker_t *self)
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
    broker_control (self, true);
    feed_event (self->feed, "active", self->options.id, NULL, 0, "is active (catalog epochs above %llu)",
                (unsigned long long) epoch);
}

//  Sends every node this broker holds on to its peer
void
broker_release_nodes (broker_t *self)
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
    broker_release_nodes (self);
    broker_release_all (self);
    cache_clear (self->cache);
    self->cache_ready = false;
    feed_event (self->feed, "passive", self->options.id, NULL, 0, "is passive: its peer is active");
}

void
broker_peer_changed (broker_t *self, peer_state_t before)
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
bool
broker_fenced (broker_t *self)
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
peer_verdict_t
broker_verdict (broker_t *self)
{
    peer_verdict_t verdict = peer_client_verdict (self->peer);
    if (verdict == PEER_HOLD && self->fence && *fence_holder (self->fence))
        verdict = PEER_REFUSE;
    return verdict;
}

void
broker_refuse_unfenced (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body)
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

//  The not_active answer of a passive broker, naming the active one
void
broker_refuse_passive (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body)
{
    char message [384];
    snprintf (message, sizeof message, "this broker is %s in a pair; the active one is %s",
              peer_state_name (peer_state (self->peer)),
              *peer_endpoint (self->peer)? peer_endpoint (self->peer): "its peer");
    wire_error (self->client_sock, client, service, body, BS_ERR_not_active, message);
}

//  An error for a request whose service frame may be anything: the reply
//  repeats the frame as it came (NULL: the request had none), and the rid

//  The lease's link after each poll: answers read, renewals sent.  A
//  broker active by Binary Star's rules that finds the lease held by
//  another yields; then whether it may serve is looked at again.
void
broker_fence_step (broker_t *self, bool readable)
{
    if (readable)
        fence_recv (self->fence, zclock_mono ());
    fence_step (self->fence, peer_active (self->peer), zclock_mono ());
    if (peer_active (self->peer) && fence_outranked (self->fence, zclock_mono ())) {
        peer_state_t before = peer_state (self->peer);
        if (peer_yield (self->peer, "another broker holds the active lease in etcd"))
            broker_peer_changed (self, before);
    }
    broker_fenced (self);
}
