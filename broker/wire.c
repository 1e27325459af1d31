/*  wire - the broker's frames on its client and node sockets (see wire.h).
 */
#include "wire.h"
#include "bs_mdp.h"
#include "requests.h"

#include <czmq.h>
#include <errno.h>

#include <stdlib.h>
#include <string.h>

bool
wire_frame_is (zmq_msg_t *frame, const char *text)
{
    size_t n = strlen (text);
    return zmq_msg_size (frame) == n && memcmp (zmq_msg_data (frame), text, n) == 0;
}

void
wire_frame_text (zmq_msg_t *frame, char *buf, size_t size)
{
    size_t n = zmq_msg_size (frame);
    if (n >= size)
        n = size - 1;
    memcpy (buf, zmq_msg_data (frame), n);
    buf [n] = 0;
}

//  Replies dropped because their client's queue was full or it was gone
static uint64_t s_client_drops;
//  Told of each client whose queue was full (borrowed; NULL: none)
static laggards_t *s_laggards;

void
wire_watch_laggards (laggards_t *laggards)
{
    s_laggards = laggards;
}

uint64_t
wire_client_drops (void)
{
    return s_client_drops;
}

int
wire_to_client (void *sock, zmq_msg_t *client, const char *service, zmq_msg_t *body)
{
    return wire_to_client_frames (sock, client, service, body, 1);
}

int
wire_to_client_frames (void *sock, zmq_msg_t *client, const char *service, zmq_msg_t *body, int count)
{
    zmq_msg_t copy;
    zmq_msg_init (&copy);
    zmq_msg_copy (&copy, client);
    //  The client socket is ROUTER_MANDATORY: a client whose queue is full
    //  (it does not read) or that is gone refuses the routing id, and the
    //  reply is dropped whole, never queued without bound
    if (zmq_msg_send (&copy, sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        //  EAGAIN: the queue is full, the client sends without reading;
        //  EHOSTUNREACH: it is gone
        if (s_laggards && zmq_errno () == EAGAIN
        &&  laggards_mark (s_laggards, zmq_msg_data (client), zmq_msg_size (client), zclock_usecs ())) {
            char hex [2 * 16 + 1] = "";
            size_t n = zmq_msg_size (client) < 16? zmq_msg_size (client): 16;
            for (size_t i = 0; i < n; i++)
                snprintf (hex + 2 * i, 3, "%02x", ((uint8_t *) zmq_msg_data (client)) [i]);
            zsys_info ("broker: client %s does not read its replies: its requests are dropped unread "
                       "for %d ms, at most %d a second with any other such client's", hex, LAGGARD_MS,
                       LAGGARD_RATE);
        }
        zmq_msg_close (&copy);
        for (int i = 0; i < count; i++)
            zmq_msg_close (&body [i]);
        s_client_drops++;
        return -1;
    }
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    zmq_send (sock, BS_MDPC, strlen (BS_MDPC), ZMQ_SNDMORE);
    zmq_send (sock, service, strlen (service), ZMQ_SNDMORE);
    for (int i = 0; i < count; i++)
        zmq_msg_send (&body [i], sock, i + 1 < count? ZMQ_SNDMORE: 0);
    return 0;
}

void
wire_msg_to_client (void *sock, zmq_msg_t *client, const char *service, bs_msg_t *msg)
{
    size_t size;
    uint8_t *data = bs_msg_encode (msg, &size);
    zmq_msg_t body;
    zmq_msg_init_size (&body, size);
    memcpy (zmq_msg_data (&body), data, size);
    free (data);
    wire_to_client (sock, client, service, &body);
}

void
wire_error (void *sock, zmq_msg_t *client, const char *service, zmq_msg_t *request,
            bs_err_t err, const char *message)
{
    bs_msg_t *msg = bs_msg_new_error (err, message);
    const uint8_t *rid;
    size_t size;
    if (request && bs_peek_bytes (zmq_msg_data (request), zmq_msg_size (request), BS_FIELD_rid, &rid, &size)
    &&  size == BS_RID_SIZE)
        bs_msg_set_bin (msg, BS_FIELD_rid, rid, size);
    wire_msg_to_client (sock, client, service, msg);
    bs_msg_destroy (&msg);
}

int
wire_to_worker (void *sock, worker_t *w, uint8_t command, const void *token, zmq_msg_t *body)
{
    //  Never blocks: a node whose queue is full is as unreachable as a
    //  gone one
    if (zmq_send (sock, w->identity, w->identity_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;      //  EHOSTUNREACH: the node is gone; EAGAIN: it is stuck
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    zmq_send (sock, BS_MDPW, strlen (BS_MDPW), ZMQ_SNDMORE);
    if (!body)
        return zmq_send (sock, &command, 1, 0) < 0? -1: 0;
    zmq_send (sock, &command, 1, ZMQ_SNDMORE);
    if (!token)
        return zmq_msg_send (body, sock, 0) < 0? -1: 0;
    zmq_send (sock, token, REQUEST_TOKEN_SIZE, ZMQ_SNDMORE);
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    return zmq_msg_send (body, sock, 0) < 0? -1: 0;
}

int
wire_request_to_worker (void *sock, worker_t *w, const void *token, zmq_msg_t *body, int count)
{
    uint8_t command = BS_MDPW_REQUEST;
    if (zmq_send (sock, w->identity, w->identity_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        for (int i = 0; i < count; i++)
            zmq_msg_close (&body [i]);
        return -1;
    }
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    zmq_send (sock, BS_MDPW, strlen (BS_MDPW), ZMQ_SNDMORE);
    zmq_send (sock, &command, 1, ZMQ_SNDMORE);
    zmq_send (sock, token, REQUEST_TOKEN_SIZE, ZMQ_SNDMORE);
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    int rc = 0;
    for (int i = 0; i < count; i++) {
        if (zmq_msg_send (&body [i], sock, i + 1 < count? ZMQ_SNDMORE: 0) < 0)
            rc = -1;
        zmq_msg_close (&body [i]);      //  empty once sent
    }
    return rc;
}

void
wire_backup (void *sock, const void *identity, size_t size)
{
    uint8_t command = BS_MDPW_DISCONNECT;
    if (zmq_send (sock, identity, size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    zmq_send (sock, BS_MDPW, strlen (BS_MDPW), ZMQ_SNDMORE);
    zmq_send (sock, &command, 1, ZMQ_SNDMORE);
    zmq_send (sock, "backup", 6, 0);
}
