/*  disconnects - which peer connections of a socket dropped, from
 *  ZeroMQ's socket monitor.  The connection of a killed process closes at
 *  once, long before it would miss its heartbeats, so this is how the broker
 *  notices a dead node within milliseconds.  Peers are known by the file
 *  descriptor their messages arrive on (zmq_msg_get ZMQ_SRCFD).
 *
 *  Ownership: disconnects_new borrows the watched socket, which must
 *  outlive the object; the caller destroys it with disconnects_destroy.
 */
#ifndef DISCONNECTS_H_INCLUDED
#define DISCONNECTS_H_INCLUDED

typedef struct _disconnects_t disconnects_t;

disconnects_t *disconnects_new (void *socket);
void disconnects_destroy (disconnects_t **self_p);

//  The socket to poll for ZMQ_POLLIN
void *disconnects_socket (disconnects_t *self);

//  The descriptor of the next connection that dropped, or -1 when none is
//  waiting
int disconnects_next (disconnects_t *self);

#endif
