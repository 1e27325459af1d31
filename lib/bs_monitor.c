/*  bs_monitor - the connection events of one ZeroMQ socket  */
#include "bs_monitor.h"

#include <czmq.h>
#include <stdatomic.h>
#include <string.h>

struct _bs_monitor_t {
    void *watched;
    zsock_t *events;            //  PAIR fed by the monitor
};

//  A counter names the inproc endpoints: a closed monitor frees its name
//  only later, so an address could be met again too soon
static atomic_uint s_count;

bs_monitor_t *
bs_monitor_new (void *socket, int events)
{
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://bs-monitor-%u", atomic_fetch_add (&s_count, 1));
    if (zmq_socket_monitor (socket, endpoint, events) != 0)
        return NULL;
    bs_monitor_t *self = calloc (1, sizeof (bs_monitor_t));
    if (!self)
        abort ();
    self->watched = socket;
    self->events = zsock_new (ZMQ_PAIR);
    if (!self->events || zsock_connect (self->events, "%s", endpoint) != 0)
        bs_monitor_destroy (&self);
    return self;
}

void
bs_monitor_destroy (bs_monitor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bs_monitor_t *self = *self_p;
    zmq_socket_monitor (self->watched, NULL, 0);
    zsock_destroy (&self->events);
    free (self);
    *self_p = NULL;
}

void *
bs_monitor_socket (bs_monitor_t *self)
{
    return zsock_resolve (self->events);
}

bool
bs_monitor_track (bs_monitor_t *self, const char *endpoint, bool *connected, bool *lost)
{
    bool dropped = false;
    bs_monitor_event_t event;
    while (bs_monitor_next (self, &event)) {
        if (strcmp (event.endpoint, endpoint) != 0)
            continue;
        if (event.event == ZMQ_EVENT_DISCONNECTED)
            dropped = *lost = true;
        else
        if (event.event == ZMQ_EVENT_CONNECTED) {
            *lost = false;
            *connected = true;
        }
        else
        if (event.event == ZMQ_EVENT_CONNECT_RETRIED && !*connected)
            dropped = *lost = true;
    }
    return dropped;
}

bool
bs_monitor_next (bs_monitor_t *self, bs_monitor_event_t *event)
{
    //  [event: uint16, value: uint32] [endpoint]
    void *sock = zsock_resolve (self->events);
    while (true) {
        zmq_msg_t head, endpoint;
        zmq_msg_init (&head);
        if (zmq_msg_recv (&head, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&head);
            return false;
        }
        zmq_msg_init (&endpoint);
        bool whole = zmq_msg_size (&head) == 6 && zmq_msg_more (&head)
                  && zmq_msg_recv (&endpoint, sock, 0) >= 0;
        if (whole) {
            uint16_t kind;
            uint32_t value;
            memcpy (&kind, zmq_msg_data (&head), 2);
            memcpy (&value, (uint8_t *) zmq_msg_data (&head) + 2, 4);
            event->event = kind;
            event->value = (int) value;
            size_t size = zmq_msg_size (&endpoint) < sizeof event->endpoint - 1?
                          zmq_msg_size (&endpoint): sizeof event->endpoint - 1;
            memcpy (event->endpoint, zmq_msg_data (&endpoint), size);
            event->endpoint [size] = 0;
        }
        //  Whatever else came with it
        zmq_msg_t *last = whole? &endpoint: &head;
        while (zmq_msg_more (last)) {
            zmq_msg_close (last);
            zmq_msg_init (last);
            if (zmq_msg_recv (last, sock, 0) < 0)
                break;
        }
        zmq_msg_close (&head);
        zmq_msg_close (&endpoint);
        if (whole)
            return true;
    }
}
