/*  fence - the I/O shell around the active broker's lease  */
#include "fence.h"
#include "ctlplane.h"
#include "lease.h"

#include <czmq.h>
#include <jansson.h>

//  etcd's leases are whole seconds, and etcd grants none shorter than
//  1.5 election timeouts (the launcher's etcd runs at 500 ms, so 1 s is
//  granted; an etcd at the default 1 s grants 2 s where 1 is asked, and
//  the broker still counts its own, which is safe).  The TTL
//  (--lease-seconds, default 2) sets the failover time after a broker is
//  killed without revoking its lease: the key goes once the lease runs out
//  in etcd, plus etcd's own check (every half second).  The broker stops
//  serving a margin before the lease could run out, counted from when the
//  keep-alive was sent (300 ms for a 1 s lease, 500 ms otherwise), and
//  renews ten times a second, each call bounded by what is left: it serves
//  on while some keep-alive sent within the TTL less the margin has been
//  answered.  The price of a short lease: an etcd, or a machine, that
//  stalls for longer than that stops the active broker until a keep-alive
//  gets through.  With 1 s, the suite's heaviest tests on this 2-core
//  machine under ASan (a client flooding the broker, 40 HTTP requests at
//  once) saw the active broker stop serving for moments; 2 s is the
//  default, and 1 s a choice for a quiet machine and a dedicated etcd.
#define LEASE_RENEW_MS      100
#define LEASE_KEY           "active"
//  The tag of the write that registers this broker (the lease's calls are
//  tagged 0)
#define TAG_REGISTER        1

struct _fence_t {
    ctlplane_t *plane;
    lease_t *lease;
    int ttl_seconds;
    int margin_ms;
    //  brokers/<id>, bound to this broker's lease: every live broker and
    //  its endpoint, for operators (it goes with the lease)
    char register_key [128];
    char *id, *endpoint;
    int64_t registered_lease;   //  the lease it was last written with
    bool register_pending;
};

fence_t *
fence_new (const char *etcd, const char *cluster, int timeout_ms, int ttl_seconds, const char *id,
           const char *endpoint)
{
    if (ttl_seconds < 1)
        ttl_seconds = 1;
    int margin_ms = ttl_seconds == 1? 300: 500;
    //  A keep-alive answered after the lease's validity is of no use
    int call_ms = ttl_seconds * 1000 - margin_ms - LEASE_RENEW_MS;
    if (call_ms > 1000)
        call_ms = 1000;
    ctlplane_t *plane = ctlplane_new (etcd, cluster, timeout_ms < call_ms? timeout_ms: call_ms);
    if (!plane)
        return NULL;
    fence_t *self = (fence_t *) zmalloc (sizeof (fence_t));
    self->plane = plane;
    self->ttl_seconds = ttl_seconds;
    self->margin_ms = margin_ms;
    self->lease = lease_new (id, endpoint, ttl_seconds, margin_ms, LEASE_RENEW_MS);
    snprintf (self->register_key, sizeof self->register_key, "brokers/%.100s", id);
    self->id = strdup (id);
    self->endpoint = strdup (endpoint);
    return self;
}

void
fence_destroy (fence_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fence_t *self = *self_p;
    //  Give the key up at once rather than make the next broker wait for
    //  the TTL (bounded by the call's timeout)
    if (lease_id (self->lease)) {
        ctlplane_revoke (self->plane, lease_id (self->lease), 0);
        zpoller_t *poller = zpoller_new (ctlplane_socket (self->plane), NULL);
        if (zpoller_wait (poller, self->margin_ms)) {
            ctlplane_result_t *result = ctlplane_recv (self->plane);
            ctlplane_result_destroy (&result);
        }
        zpoller_destroy (&poller);
    }
    ctlplane_destroy (&self->plane);
    lease_destroy (&self->lease);
    free (self->id);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

void *
fence_socket (fence_t *self)
{
    return ctlplane_socket (self->plane);
}

void
fence_recv (fence_t *self, int64_t now)
{
    ctlplane_result_t *result = ctlplane_recv (self->plane);
    if (!result)
        return;
    if (result->tag == TAG_REGISTER) {
        self->register_pending = false;
        if (result->rc != BS_ETCD_OK) {
            self->registered_lease = 0;         //  written again at the next step
            zsys_debug ("broker: etcd did not take this broker's record: %s", result->error);
        }
        ctlplane_result_destroy (&result);
        return;
    }
    bool was = lease_serving (self->lease, now);
    lease_answer_t answer = result->rc == BS_ETCD_OK? LEASE_ANSWER_OK:
                            result->rc == BS_ETCD_COMPARE_FAILED? LEASE_ANSWER_TAKEN:
                            result->rc == BS_ETCD_ERROR? LEASE_ANSWER_REFUSED: LEASE_ANSWER_FAILED;
    int64_t number = result->op == CTLPLANE_GRANT? result->lease: result->ttl;
    const char *holder = result->count? result->values [0]: "";
    lease_answer (self->lease, answer, number, holder, now);
    bool serving = lease_serving (self->lease, now);
    if (serving && !was)
        zsys_info ("broker: holds the active lease in etcd");
    if (answer == LEASE_ANSWER_FAILED)
        zsys_debug ("broker: etcd did not answer about the active lease: %s", result->error);
    ctlplane_result_destroy (&result);
}

void
fence_step (fence_t *self, bool want, int64_t now)
{
    //  Each lease this broker holds, active or not, carries its record
    int64_t lease = lease_id (self->lease);
    if (lease && lease != self->registered_lease && !self->register_pending) {
        json_t *value = json_pack ("{s:s, s:s, s:I}", "endpoint", self->endpoint, "id", self->id,
                                   "lease", (json_int_t) lease);
        char *text = value? json_dumps (value, JSON_COMPACT | JSON_SORT_KEYS): NULL;
        json_decref (value);
        if (text) {
            ctlplane_put_leased (self->plane, self->register_key, text, lease, TAG_REGISTER);
            self->registered_lease = lease;
            self->register_pending = true;
        }
        free (text);
    }
    switch (lease_next (self->lease, want, now)) {
        case LEASE_ASK_GRANT:
            ctlplane_grant (self->plane, lease_ttl_seconds (self->lease), 0);
            break;
        case LEASE_ASK_CAMPAIGN:
            ctlplane_campaign (self->plane, LEASE_KEY, lease_value (self->lease), lease_id (self->lease), 0);
            break;
        case LEASE_ASK_KEEPALIVE:
            ctlplane_keepalive (self->plane, lease_id (self->lease), 0);
            break;
        case LEASE_ASK_REVOKE:
            ctlplane_revoke (self->plane, lease_id (self->lease), 0);
            zsys_info ("broker: gives up the active lease in etcd");
            break;
        case LEASE_IDLE:
            break;
    }
}

bool
fence_serving (fence_t *self, int64_t now)
{
    return lease_serving (self->lease, now);
}


const char *
fence_holder (fence_t *self)
{
    return lease_holder_endpoint (self->lease, zclock_mono ());
}

const char *
fence_holder_id (fence_t *self)
{
    return lease_holder_id (self->lease, zclock_mono ());
}

int64_t
fence_holder_since (fence_t *self)
{
    return lease_holder_since (self->lease, zclock_mono ());
}

int
fence_grace_ms (fence_t *self)
{
    return self->ttl_seconds * 1000 + 1000;
}

int
fence_interval_ms (fence_t *self)
{
    (void) self;
    return LEASE_RENEW_MS / 4;
}
