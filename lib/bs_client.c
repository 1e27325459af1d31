/*  bs_client - Majordomo client with Lazy Pirate retries and failover  */
#include "bs_client.h"
#include "bs_endpoints.h"
#include "bs_failover.h"
#include "bs_mdp.h"
#include "bs_monitor.h"

#include <czmq.h>
#include <string.h>

struct _bs_client_t {
    zsock_t *sock;
    bs_endpoints_t *endpoints;  //  the brokers, the one in use current
    bs_monitor_t *monitor;      //  the socket's connections (NULL with one
                                //  endpoint: nothing to move to)
    bool lost;                  //  the current broker's connection dropped
                                //  and has not come back
    bool connected;             //  the current broker took a connection
    int timeout_ms;
    int attempts;
};

//  How one wait for a reply ended
typedef enum { AWAIT_REPLY, AWAIT_TIMEOUT, AWAIT_DROPPED, AWAIT_INTERRUPTED } await_t;

//  Watches the socket's connections: a killed broker's TCP connection closes
//  at once, long before the attempt would time out
static bool
s_monitor_start (bs_client_t *self)
{
    self->monitor = bs_monitor_new (zsock_resolve (self->sock),
                                    ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED);
    return self->monitor != NULL;
}

//  Reads the monitor's events.  Only events of the broker in use count: one
//  we moved away from may still report its connection's end.  Returns true
//  when its connection dropped.
static bool
s_read_events (bs_client_t *self)
{
    return self->monitor
        && bs_monitor_track (self->monitor, bs_endpoints_current (self->endpoints), &self->connected, &self->lost);
}

bs_client_t *
bs_client_new (const char *endpoints)
{
    return bs_client_new_secure (endpoints, NULL);
}

bs_client_t *
bs_client_new_secure (const char *endpoints, bs_keys_t *keys)
{
    bs_endpoints_t *list = bs_endpoints_new (endpoints);
    if (!list || (bs_endpoints_size (list) > 1 && !bs_endpoints_valid (list))) {
        bs_endpoints_destroy (&list);
        return NULL;
    }
    bs_client_t *self = calloc (1, sizeof (bs_client_t));
    if (!self)
        abort ();
    self->endpoints = list;
    self->sock = zsock_new (ZMQ_DEALER);
    zsock_set_linger (self->sock, 0);
    zsock_set_maxmsgsize (self->sock, BS_MAX_BODY + 1024);
    zsock_set_rcvhwm (self->sock, 100000);
    zsock_set_sndhwm (self->sock, 100000);
    //  The monitor is started before connecting so that it sees the first
    //  connection too
    bool watched = bs_endpoints_size (list) == 1 || s_monitor_start (self);
    if (!watched || !bs_keys_connect_to (keys, self->sock, "broker")
    ||  zsock_connect (self->sock, "%s", bs_endpoints_current (list)) != 0) {
        bs_client_destroy (&self);
        return NULL;
    }
    self->attempts = 3;
    bs_client_set_timeout (self, 2500);
    return self;
}

void
bs_client_destroy (bs_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bs_client_t *self = *self_p;
    bs_monitor_destroy (&self->monitor);
    zsock_destroy (&self->sock);
    bs_endpoints_destroy (&self->endpoints);
    free (self);
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

//  Waits for the reply matching rid (NULL: any reply), up to timeout_ms, or
//  until the broker's connection drops; *outcome_p says which
static bs_msg_t *
s_await (bs_client_t *self, const uint8_t *rid, int timeout_ms, await_t *outcome_p)
{
    void *sock = zsock_resolve (self->sock);
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            *outcome_p = AWAIT_TIMEOUT;
            return NULL;
        }
        zmq_pollitem_t items [2] = { { sock, 0, ZMQ_POLLIN, 0 } };
        if (self->monitor)
            items [1] = (zmq_pollitem_t) { bs_monitor_socket (self->monitor), 0, ZMQ_POLLIN, 0 };
        int rc = zmq_poll (items, self->monitor? 2: 1, (long) left);
        if (rc < 0) {
            *outcome_p = AWAIT_INTERRUPTED;
            return NULL;
        }
        if (rc == 0)
            continue;
        //  A reply that arrived before the connection dropped still counts
        if (items [0].revents & ZMQ_POLLIN) {
            bs_msg_t *reply = s_recv_reply (sock);
            if (reply && (!rid || s_same_rid (reply, rid))) {
                *outcome_p = AWAIT_REPLY;
                return reply;
            }
            bs_msg_destroy (&reply);    //  a late reply to an earlier request
        }
        else
        if (s_read_events (self)) {
            *outcome_p = AWAIT_DROPPED;
            return NULL;
        }
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
    //  The broker in use went away while we were idle: start with the next
    if (bs_client_lost (self))
        bs_client_failover (self);
    size_t count = bs_endpoints_size (self->endpoints);
    bs_failover_t failover = { 0 };
    bs_msg_t *reply = NULL;
    int attempt = 0;
    while (attempt < self->attempts) {
        //  A send that cannot go out within the timeout (no connection:
        //  the broker is down, or refused our key) is a failed attempt.
        //  Every send carries the same bytes, so the same rid.
        if (s_send_frames (zsock_resolve (self->sock), frames, sizes, 3, 0) != 0) {
            if (zsys_interrupted)
                break;
            attempt++;
            bs_failover_reset (&failover);
            bs_client_failover (self);
            continue;
        }
        await_t outcome;
        reply = s_await (self, rid_size == BS_RID_SIZE? rid: NULL, self->timeout_ms, &outcome);
        if (outcome == AWAIT_INTERRUPTED || zsys_interrupted)
            break;
        if (bs_failover_is_not_active (reply)) {
            //  A standby broker: another one should serve.  A
            //  whole round refused counts as an attempt.
            if (bs_failover_not_active (&failover, count) == BS_FAILOVER_AFTER_PAUSE) {
                if (++attempt == self->attempts)
                    break;              //  the caller learns why
                zclock_sleep (BS_FAILOVER_PAUSE_MS);
                if (zsys_interrupted)
                    break;
            }
            bs_msg_destroy (&reply);
            bs_client_failover (self);
            continue;
        }
        if (reply)
            break;
        //  No answer in time, or the broker's connection dropped
        attempt++;
        bs_failover_reset (&failover);
        bs_client_failover (self);
    }
    free (body);
    return reply;
}

bs_msg_t *
bs_client_call_raw (bs_client_t *self, const void **frames, const size_t *sizes, int count)
{
    if (s_send_frames (zsock_resolve (self->sock), frames, sizes, count, 0) != 0)
        return NULL;
    await_t outcome;
    return s_await (self, NULL, self->timeout_ms, &outcome);
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

int
bs_client_failover (bs_client_t *self)
{
    //  With one broker, keep the socket: a late reply to an earlier attempt
    //  still counts, and ZeroMQ reconnects by itself
    if (bs_endpoints_size (self->endpoints) < 2)
        return 0;
    self->lost = false;         //  nothing known yet of the next one
    self->connected = false;
    return bs_endpoints_switch (self->endpoints, self->sock);
}

bool
bs_client_lost (bs_client_t *self)
{
    s_read_events (self);
    return self->lost;
}

const char *
bs_client_endpoint (bs_client_t *self)
{
    return bs_endpoints_current (self->endpoints);
}

size_t
bs_client_endpoint_count (bs_client_t *self)
{
    return bs_endpoints_size (self->endpoints);
}
