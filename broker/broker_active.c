/*  broker_active - which broker serves: the active lease in etcd (fence.h).
 *  Taking over (a cold cache, the map read again from etcd), stepping down
 *  (nodes and requests sent on), and the not_active answers of a broker
 *  that may not serve.  Part of the broker object (broker_internal.h).
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
                        "this broker is no longer the active one");
        else
            broker_refuse_inactive (self, &req->client, service, &req->body);
        requests_free (self->requests, i);
        released++;
    }
    requests_clear_queues (self->requests);
    if (released)
        zsys_info ("broker: sent %d request(s) on to the active broker", released);
}

bool
broker_active (broker_t *self)
{
    return !self->fence || self->serving;
}

//  This broker took the lease: it reads the map from etcd again (another
//  broker may have changed it meanwhile), never gives an epoch its own past
//  could have used, and starts with a cold cache
static void
s_activate (broker_t *self)
{
    uint64_t epoch = controller_max_epoch (self->controller);
    controller_destroy (&self->controller);
    self->controller = controller_new (self->options.heartbeat_ms * (self->options.liveness + 1));
    if (self->store)
        controller_use_store (self->controller, self->store);
    controller_raise_epoch (self->controller, epoch);
    self->catalog_epoch = 0;
    self->catalog_primary [0] = 0;
    self->next_assign = 0;
    broker_control (self, true);
    feed_event (self->feed, "active", self->options.id, NULL, 0, "holds the active lease in etcd: it serves");
}

//  Sends every node this broker holds on to the active broker
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

//  Whether this broker may serve: it holds the active lease, provably
//  valid now.  Whenever that changes the cache goes (replies cached while
//  another broker may have served writes are stale, and so is what a
//  broker cached before a pause), and the requests it holds are sent on.
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
            s_activate (self);
        else {
            broker_release_all (self);
            feed_event (self->feed, "lease_lost", self->options.id, NULL, 0,
                        "cannot prove it holds the active lease in etcd: it stops serving");
        }
    }
    return !serving;
}

//  A broker that does not serve sends nodes on to the one etcd names, once
//  that one is known to be alive.  Nodes leave a broker only when it has
//  gone silent to them, so nodes that come here hint that the holder etcd
//  still names may be dead, its key not yet gone: they are kept (this
//  broker may be the next to serve) until the key is seen held by a lease
//  taken after they came, or by the same one for longer than a dead
//  holder could keep it.  Knowing of no holder (etcd out of reach, or the
//  key free), it keeps them too.
broker_verdict_t
broker_verdict (broker_t *self)
{
    if (broker_active (self))
        return BROKER_SERVE;
    int64_t since = fence_holder_since (self->fence);
    if (!since)
        return BROKER_HOLD;
    if (!self->hold_since || since > self->hold_since
    ||  zclock_mono () - self->hold_since >= fence_grace_ms (self->fence))
        return BROKER_REFUSE;
    return BROKER_HOLD;
}

void
broker_send_on (broker_t *self)
{
    //  Held for a takeover that did not come: another broker is active
    if (broker_verdict (self) == BROKER_REFUSE) {
        broker_release_nodes (self);
        broker_release_all (self);
    }
    bool holding = false;
    for (size_t i = 0; i < workers_size (self->workers) && !holding; i++)
        holding = workers_at (self->workers, i)->alive;
    if (broker_active (self) || !holding)
        self->hold_since = 0;
}

void
broker_node_came (broker_t *self)
{
    if (!broker_active (self) && !self->hold_since)
        self->hold_since = zclock_mono ();
}

//  The not_active answer, naming the active broker when etcd does
void
broker_refuse_inactive (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body)
{
    char message [384];
    const char *holder = self->fence? fence_holder (self->fence): "";
    if (*holder)
        snprintf (message, sizeof message, "this broker does not hold the active lease in etcd; the active one is %s",
                  holder);
    else
        snprintf (message, sizeof message, "this broker cannot prove it holds the active lease in etcd "
                  "(another may be taking over, or etcd is out of reach); try the next broker");
    wire_error (self->client_sock, client, service, body, BS_ERR_not_active, message);
}

//  The lease's link after each poll: answers read, renewals and campaigns
//  sent; then whether the broker may serve is looked at again
void
broker_fence_step (broker_t *self, bool readable)
{
    if (readable)
        fence_recv (self->fence, zclock_mono ());
    fence_step (self->fence, true, zclock_mono ());
    broker_fenced (self);
    //  Nodes kept here go as soon as a live holder is known
    if (readable && self->hold_since)
        broker_send_on (self);
}

//  Appends this broker, and the active one when etcd names another, to
//  status as "brokers" entries ({id, endpoint, active, state}), this
//  broker first
void
broker_describe (broker_t *self, bs_msg_t *status)
{
    const char *endpoint = self->options.advertise && *self->options.advertise? self->options.advertise
                                                                               : self->options.client_endpoint;
    bool active = broker_active (self);
    bs_msg_t *entry = bs_msg_new ();
    bs_msg_set_str (entry, BS_FIELD_id, self->options.id && *self->options.id? self->options.id: "broker");
    bs_msg_set_str (entry, BS_FIELD_endpoint, endpoint);
    bs_msg_set_int (entry, BS_FIELD_active, active);
    bs_msg_set_str (entry, BS_FIELD_state, active? "active": "standby");
    bs_msg_append (status, BS_FIELD_brokers, &entry);
    const char *holder = self->fence && !active? fence_holder (self->fence): "";
    if (*holder) {
        entry = bs_msg_new ();
        const char *id = fence_holder_id (self->fence);
        bs_msg_set_str (entry, BS_FIELD_id, *id? id: "?");
        bs_msg_set_str (entry, BS_FIELD_endpoint, holder);
        bs_msg_set_int (entry, BS_FIELD_active, 1);
        bs_msg_set_str (entry, BS_FIELD_state, "active");
        bs_msg_append (status, BS_FIELD_brokers, &entry);
    }
}
