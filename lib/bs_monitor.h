/*  bs_monitor - the connection events of one ZeroMQ socket, read from its
 *  socket monitor.
 *
 *  A killed process's TCP connections close at once, long before it would
 *  miss its heartbeats: this is how the broker learns of a dead node, a
 *  broker of its dead peer, and clients and nodes of a dead broker, within
 *  milliseconds.  Each monitor gets an inproc endpoint of its own.
 *
 *  Ownership: bs_monitor_new borrows the watched socket, which must outlive
 *  the monitor; destroy the monitor before closing the socket.
 */
#ifndef BS_MONITOR_H_INCLUDED
#define BS_MONITOR_H_INCLUDED

#include <stdbool.h>

typedef struct _bs_monitor_t bs_monitor_t;

typedef struct {
    int event;                  //  ZMQ_EVENT_*
    int value;                  //  DISCONNECTED: the connection's descriptor
    char endpoint [256];        //  the endpoint it concerns, as connected or bound
} bs_monitor_event_t;

//  Watches socket for the events of the mask (ZMQ_EVENT_DISCONNECTED | ...);
//  NULL when the monitor cannot be set up
bs_monitor_t *bs_monitor_new (void *socket, int events);
void bs_monitor_destroy (bs_monitor_t **self_p);

//  The socket to poll for ZMQ_POLLIN
void *bs_monitor_socket (bs_monitor_t *self);

//  The next event waiting, without blocking; false when none is
bool bs_monitor_next (bs_monitor_t *self, bs_monitor_event_t *event);

//  A client's view of the broker it uses (a monitor of CONNECTED,
//  DISCONNECTED and CONNECT_RETRIED): reads every event waiting, counting
//  only those of endpoint (one we moved away from may still report its
//  connection's end).  *connected: that connection was ever made; *lost:
//  it is down.  True when it dropped, or was refused before it ever took
//  us (that broker is down: a client started while the first broker of
//  its list is away).
bool bs_monitor_track (bs_monitor_t *self, const char *endpoint, bool *connected, bool *lost);

#endif
