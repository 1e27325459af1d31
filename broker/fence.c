/*  fence - the I/O shell around the active broker's lease  */
#include "fence.h"
#include "ctlplane.h"
#include "lease.h"

#include <czmq.h>

//  etcd's leases are whole seconds, and etcd grants none shorter than
//  1.5 election timeouts (the launcher's etcd runs at 500 ms, so 1 s is
//  granted; an etcd at the default 1 s grants 2 s, and the broker still
//  counts 1 s, which is safe).  The TTL sets the failover time after a
//  broker is killed without revoking its lease: the key goes once the
//  lease runs out in etcd, plus etcd's own check (every half second).  The
//  broker stops serving 300 ms before the lease could run out, counted
//  from when the keep-alive was sent, and renews ten times a second, each
//  call bounded at 500 ms: it serves on while some keep-alive sent in the
//  last 700 ms has been answered.  The price of the short lease: an etcd
//  that stalls for longer than that stops the active broker until a
//  keep-alive gets through (with 2 s, failover took 2.5 to 3.3 s).
#define LEASE_TTL_SECONDS   1
#define LEASE_MARGIN_MS     300
#define LEASE_RENEW_MS      100
#define LEASE_CALL_MS       500
#define LEASE_KEY           "active"

struct _fence_t {
    ctlplane_t *plane;
    lease_t *lease;
};

fence_t *
fence_new (const char *etcd, const char *cluster, int timeout_ms, const char *id, const char *endpoint)
{
    //  A keep-alive answered after the lease's validity is of no use
    ctlplane_t *plane = ctlplane_new (etcd, cluster, timeout_ms < LEASE_CALL_MS? timeout_ms: LEASE_CALL_MS);
    if (!plane)
        return NULL;
    fence_t *self = (fence_t *) zmalloc (sizeof (fence_t));
    self->plane = plane;
    self->lease = lease_new (id, endpoint, LEASE_TTL_SECONDS, LEASE_MARGIN_MS, LEASE_RENEW_MS);
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
        if (zpoller_wait (poller, LEASE_MARGIN_MS)) {
            ctlplane_result_t *result = ctlplane_recv (self->plane);
            ctlplane_result_destroy (&result);
        }
        zpoller_destroy (&poller);
    }
    ctlplane_destroy (&self->plane);
    lease_destroy (&self->lease);
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
    (void) self;
    return LEASE_TTL_SECONDS * 1000 + 1000;
}

int
fence_interval_ms (fence_t *self)
{
    (void) self;
    return LEASE_RENEW_MS / 4;
}
