/*  bs_client - Majordomo client with Lazy Pirate retries  */
#include "bs_client.h"
#include "bs_mdp.h"

#include <czmq.h>
#include <string.h>

struct _bs_client_t {
    zsock_t *sock;
    int timeout_ms;
    int attempts;
};

bs_client_t *
bs_client_new (const char *endpoint)
{
    return bs_client_new_secure (endpoint, NULL);
}

bs_client_t *
bs_client_new_secure (const char *endpoint, bs_keys_t *keys)
{
    bs_client_t *self = calloc (1, sizeof (bs_client_t));
    if (!self)
        abort ();
    self->sock = zsock_new (ZMQ_DEALER);
    zsock_set_linger (self->sock, 0);
    zsock_set_maxmsgsize (self->sock, BS_MAX_BODY + 1024);
    zsock_set_rcvhwm (self->sock, 100000);
    zsock_set_sndhwm (self->sock, 100000);
    if (!bs_keys_connect_to (keys, self->sock, "broker")
    ||  zsock_connect (self->sock, "%s", endpoint) != 0) {
        zsock_destroy (&self->sock);
        free (self);
        return NULL;
    }
    self->timeout_ms = 2500;
    self->attempts = 3;
    zsock_set_sndtimeo (self->sock, self->timeout_ms);
    return self;
}

void
bs_client_destroy (bs_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy (&(*self_p)->sock);
    free (*self_p);
    *self_p = NULL;
}

void bs_client_set_timeout (bs_client_t *self, int timeout_ms)
{
    self->timeout_ms = timeout_ms;
    zsock_set_sndtimeo (self->sock, timeout_ms);
}
void bs_client_set_attempts (bs_client_t *self, int attempts) { self->attempts = attempts < 1? 1: attempts; }

//  Receives one reply: [empty] MDPC01 service body.  Returns the decoded
//  body or NULL when the frames are not a well-formed reply.
static bs_msg_t *
s_recv_reply (void *sock)
{
    zmq_msg_t frames [4];
    int count = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, sock, 0) < 0) {
            zmq_msg_close (&part);
            break;
        }
        more = zmq_msg_more (&part);
        if (count < 4)
            frames [count++] = part;
        else
            zmq_msg_close (&part);
    }
    bs_msg_t *reply = NULL;
    if (count == 4 && zmq_msg_size (&frames [0]) == 0
    &&  zmq_msg_size (&frames [1]) == strlen (BS_MDPC)
    &&  memcmp (zmq_msg_data (&frames [1]), BS_MDPC, strlen (BS_MDPC)) == 0) {
        bs_err_t err;
        reply = bs_msg_decode (zmq_msg_data (&frames [3]), zmq_msg_size (&frames [3]), &err, NULL, 0);
    }
    for (int i = 0; i < count; i++)
        zmq_msg_close (&frames [i]);
    return reply;
}

static bool
s_same_rid (const bs_msg_t *reply, const uint8_t *rid)
{
    size_t size;
    const uint8_t *got = bs_msg_bin (reply, BS_FIELD_rid, &size);
    //  A reply without a rid (the broker's error for a malformed request)
    //  answers the request in flight.
    return !got || (size == BS_RID_SIZE && memcmp (got, rid, BS_RID_SIZE) == 0);
}

//  flags: ZMQ_DONTWAIT, or 0 to wait up to the send timeout
static int
s_send_frames (void *sock, const void **frames, const size_t *sizes, int count, int flags)
{
    if (zmq_send (sock, "", 0, ZMQ_SNDMORE | flags) < 0)
        return -1;
    for (int i = 0; i < count; i++)
        if (zmq_send (sock, frames [i], sizes [i], i < count - 1? ZMQ_SNDMORE: 0) < 0)
            return -1;
    return 0;
}

//  Waits for the reply matching rid (NULL: any reply), up to timeout_ms
static bs_msg_t *
s_await (bs_client_t *self, const uint8_t *rid, int timeout_ms)
{
    void *sock = zsock_resolve (self->sock);
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return NULL;
        zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
        int rc = zmq_poll (&item, 1, (long) left);
        if (rc < 0)
            return NULL;        //  interrupted
        if (rc == 0)
            continue;
        bs_msg_t *reply = s_recv_reply (sock);
        if (reply && (!rid || s_same_rid (reply, rid)))
            return reply;
        bs_msg_destroy (&reply);    //  a late reply to an earlier request
    }
}

bs_msg_t *
bs_client_call (bs_client_t *self, const char *service, const bs_msg_t *request)
{
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    size_t size;
    uint8_t *body = bs_msg_encode (request, &size);
    const void *frames [3] = { BS_MDPC, service, body };
    const size_t sizes [3] = { strlen (BS_MDPC), strlen (service), size };
    bs_msg_t *reply = NULL;
    for (int attempt = 0; attempt < self->attempts && !reply; attempt++) {
        //  A send that cannot go out within the timeout (no connection:
        //  the broker is down, or refused our key) is a failed attempt
        if (s_send_frames (zsock_resolve (self->sock), frames, sizes, 3, 0) != 0) {
            if (zsys_interrupted)
                break;
            continue;
        }
        reply = s_await (self, rid_size == BS_RID_SIZE? rid: NULL, self->timeout_ms);
        if (zsys_interrupted)
            break;
    }
    free (body);
    return reply;
}

bs_msg_t *
bs_client_call_raw (bs_client_t *self, const void **frames, const size_t *sizes, int count)
{
    if (s_send_frames (zsock_resolve (self->sock), frames, sizes, count, 0) != 0)
        return NULL;
    return s_await (self, NULL, self->timeout_ms);
}

int
bs_client_send (bs_client_t *self, const char *service, const bs_msg_t *request)
{
    size_t size;
    uint8_t *body = bs_msg_encode (request, &size);
    const void *frames [3] = { BS_MDPC, service, body };
    const size_t sizes [3] = { strlen (BS_MDPC), strlen (service), size };
    //  Never blocks the caller's loop: a request that cannot go out now is
    //  resent after the caller's timeout
    int rc = s_send_frames (zsock_resolve (self->sock), frames, sizes, 3, ZMQ_DONTWAIT);
    free (body);
    return rc;
}

void *
bs_client_socket (bs_client_t *self)
{
    return zsock_resolve (self->sock);
}

bs_msg_t *
bs_client_recv (bs_client_t *self)
{
    return s_recv_reply (zsock_resolve (self->sock));
}
