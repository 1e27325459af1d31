/*  disconnects - socket monitor events, DISCONNECTED only  */
#include "disconnects.h"

#include <czmq.h>
#include <string.h>

struct _disconnects_t {
    void *watched;
    zsock_t *events;            //  PAIR fed by the monitor
};

disconnects_t *
disconnects_new (void *socket)
{
    disconnects_t *self = calloc (1, sizeof (disconnects_t));
    if (!self)
        abort ();
    self->watched = socket;
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://disconnects-%p", (void *) self);
    if (zmq_socket_monitor (socket, endpoint, ZMQ_EVENT_DISCONNECTED) != 0) {
        free (self);
        return NULL;
    }
    self->events = zsock_new (ZMQ_PAIR);
    if (zsock_connect (self->events, "%s", endpoint) != 0) {
        disconnects_destroy (&self);
        return NULL;
    }
    return self;
}

void
disconnects_destroy (disconnects_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    disconnects_t *self = *self_p;
    zmq_socket_monitor (self->watched, NULL, 0);
    zsock_destroy (&self->events);
    free (self);
    *self_p = NULL;
}

void *
disconnects_socket (disconnects_t *self)
{
    return zsock_resolve (self->events);
}

int
disconnects_next (disconnects_t *self)
{
    //  [event: uint16, value: uint32] [endpoint]
    void *sock = zsock_resolve (self->events);
    int fd = -1;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    if (zmq_msg_recv (&frame, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&frame);
        return -1;
    }
    if (zmq_msg_size (&frame) == 6) {
        uint16_t event;
        uint32_t value;
        memcpy (&event, zmq_msg_data (&frame), 2);
        memcpy (&value, (uint8_t *) zmq_msg_data (&frame) + 2, 4);
        if (event == ZMQ_EVENT_DISCONNECTED)
            fd = (int) value;
    }
    while (zmq_msg_more (&frame)) {
        zmq_msg_close (&frame);
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, sock, 0) < 0)
            break;
    }
    zmq_msg_close (&frame);
    return fd;
}
