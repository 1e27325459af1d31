/*  invalidator - Lazy Pirate over a relaxed, correlated REQ socket  */
#include "invalidator.h"
#include "bs_endpoints.h"

#include <czmq.h>

struct _invalidator_t {
    zsock_t *req;
    int timeout_ms;
    int attempts;
    bs_keys_t *keys;            //  borrowed
    bs_endpoints_t *endpoints;  //  one per broker; the current one connected
};

static bool
s_connect (invalidator_t *self)
{
    const char *endpoint = bs_endpoints_current (self->endpoints);
    if (!bs_keys_connect_to (self->keys, self->req, "broker") || zsock_connect (self->req, "%s", endpoint) < 0) {
        zsys_error ("invalidator: cannot connect to %s", endpoint);
        return false;
    }
    return true;
}

invalidator_t *
invalidator_new (const char *endpoint, bs_keys_t *keys, int timeout_ms, int attempts)
{
    bs_endpoints_t *endpoints = bs_endpoints_new (endpoint);
    if (!endpoints) {
        zsys_error ("invalidator: '%s' is not a list of endpoints", endpoint? endpoint: "");
        return NULL;
    }
    invalidator_t *self = calloc (1, sizeof (invalidator_t));
    if (!self)
        abort ();
    self->timeout_ms = timeout_ms;
    self->attempts = attempts;
    self->keys = keys;
    self->endpoints = endpoints;
    self->req = zsock_new (ZMQ_REQ);
    //  Relaxed: may send again without a reply; correlated: replies to
    //  earlier attempts are dropped, so one socket serves every retry
    zsock_set_req_relaxed (self->req, 1);
    zsock_set_req_correlate (self->req, 1);
    zsock_set_linger (self->req, 0);
    zsock_set_maxmsgsize (self->req, BS_MAX_BODY);
    if (!s_connect (self))
        invalidator_destroy (&self);
    return self;
}

void
invalidator_destroy (invalidator_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    invalidator_t *self = *self_p;
    zsock_destroy (&self->req);
    bs_endpoints_destroy (&self->endpoints);
    free (self);
    *self_p = NULL;
}

size_t
invalidator_size (invalidator_t *self)
{
    return bs_endpoints_size (self->endpoints);
}

size_t
invalidator_index (invalidator_t *self)
{
    return bs_endpoints_index (self->endpoints);
}

bool
invalidator_select (invalidator_t *self, size_t index)
{
    if (index >= bs_endpoints_size (self->endpoints))
        return false;
    if (index == bs_endpoints_index (self->endpoints))
        return true;
    const char *from = bs_endpoints_current (self->endpoints);
    zsock_disconnect (self->req, "%s", from);
    bs_endpoints_select (self->endpoints, index);
    zsys_info ("invalidator: moving from %s to %s", from, bs_endpoints_current (self->endpoints));
    return s_connect (self);
}

bool
invalidator_send (invalidator_t *self, const bs_msg_t *invalidation)
{
#ifdef BS_MUTANT_NO_INVALIDATION
    //  A deliberately broken variant for the mutation tests: no round trip
    //  to the broker's cache, taken as acknowledged
    return true;
#endif
    size_t size;
    uint8_t *data = bs_msg_encode (invalidation, &size);
    void *sock = zsock_resolve (self->req);
    bool acked = false;
    for (int attempt = 0; attempt < self->attempts && !acked && !zsys_interrupted; attempt++) {
        zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_send (sock, data, size, ZMQ_DONTWAIT) < 0) {
            //  No connection to the broker yet: this attempt waits it out
            item.events = ZMQ_POLLOUT;
            zmq_poll (&item, 1, self->timeout_ms);
            continue;
        }
        if (zmq_poll (&item, 1, self->timeout_ms) <= 0 || !(item.revents & ZMQ_POLLIN))
            continue;
        zmq_msg_t reply;
        zmq_msg_init (&reply);
        if (zmq_msg_recv (&reply, sock, 0) >= 0) {
            int64_t ok = 0;
            acked = bs_peek_int (zmq_msg_data (&reply), zmq_msg_size (&reply), BS_FIELD_ok, &ok) && ok;
            if (!acked)
                zsys_error ("invalidator: the broker refused an invalidation");
        }
        zmq_msg_close (&reply);
        if (!acked)
            break;          //  refused: resending the same message will not help
    }
    free (data);
    if (!acked)
        zsys_warning ("invalidator: no acknowledgement from %s", bs_endpoints_current (self->endpoints));
    return acked;
}
