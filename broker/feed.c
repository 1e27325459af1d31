/*  feed - events and status on a PUB socket  */
#include "feed.h"

#include <czmq.h>
#include <stdarg.h>

struct _feed_t {
    zsock_t *pub;
};

feed_t *
feed_new (const char *endpoint, bs_keys_t *keys)
{
    feed_t *self = calloc (1, sizeof (feed_t));
    if (!self)
        abort ();
    self->pub = zsock_new (ZMQ_PUB);
    //  Subscribers that fall behind lose status snapshots, never the broker
    zsock_set_sndhwm (self->pub, 10000);
    zsock_set_linger (self->pub, 0);
    bs_keys_serve (keys, self->pub, "clients");
    if (zsock_bind (self->pub, "%s", endpoint) < 0) {
        zsys_error ("broker: cannot bind the feed on %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        feed_destroy (&self);
    }
    return self;
}

void
feed_destroy (feed_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy (&(*self_p)->pub);
    free (*self_p);
    *self_p = NULL;
}

static void
s_publish (feed_t *self, const char *topic, const bs_msg_t *body)
{
    size_t size;
    uint8_t *data = bs_msg_encode (body, &size);
    void *sock = zsock_resolve (self->pub);
    zmq_send (sock, topic, strlen (topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (sock, data, size, ZMQ_DONTWAIT);
    free (data);
}

void
feed_event (feed_t *self, const char *kind, const char *id, const char *service,
            uint64_t epoch, const char *format, ...)
{
    char message [256];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    if (strcmp (kind, "dead") == 0)
        zsys_warning ("broker: %s%s%s", id? id: "", id? " ": "", message);
    else
        zsys_info ("broker: %s%s%s", id? id: "", id? " ": "", message);
    bs_msg_t *event = bs_msg_new ();
    bs_msg_set_str (event, BS_FIELD_op, "event");
    bs_msg_set_str (event, BS_FIELD_kind, kind);
    bs_msg_set_int (event, BS_FIELD_time, zclock_time ());
    if (id)
        bs_msg_set_str (event, BS_FIELD_id, id);
    if (service)
        bs_msg_set_str (event, BS_FIELD_service, service);
    if (epoch)
        bs_msg_set_int (event, BS_FIELD_epoch, (int64_t) epoch);
    bs_msg_set_str (event, BS_FIELD_message, message);
    s_publish (self, "event", event);
    bs_msg_destroy (&event);
}

void
feed_status (feed_t *self, const bs_msg_t *status)
{
    s_publish (self, "status", status);
}
