/*  wire - what the broker puts on its client and node sockets, frame by
 *  frame, as raw zmq_msg_t (the hot path copies no body and parses none).
 *
 *  A plain-function module: no object.  Every function takes the raw
 *  socket handle (zsock_resolve of a ROUTER) it sends on; bodies passed in
 *  are consumed when sent.  Single-threaded, as the broker.
 */
#ifndef WIRE_H_INCLUDED
#define WIRE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "bs_msg.h"
#include "workers.h"
#include "laggards.h"

//  True when the frame holds exactly this text
bool wire_frame_is (zmq_msg_t *frame, const char *text);

//  Copies a frame into buf as a string, cut to size - 1 bytes
void wire_frame_text (zmq_msg_t *frame, char *buf, size_t size);

//  Sends the reply envelope and a body frame (consumed) to a client:
//  [client] [empty] [MDPC01] [service] [body].  sock must be
//  ROUTER_MANDATORY: a client whose queue is at its high-water mark (it
//  does not read) or that is gone loses the reply (-1, counted), and the
//  broker's memory stays bounded; 0 when sent
int wire_to_client (void *sock, zmq_msg_t *client, const char *service, zmq_msg_t *body);

//  The same with count body frames (a standard service's reply may have
//  several), all consumed whether sent or not
int wire_to_client_frames (void *sock, zmq_msg_t *client, const char *service, zmq_msg_t *body, int count);

//  Tells laggards (borrowed, NULL: none) of every client whose reply was
//  refused at its full queue.  One per process, as the counter below.
void wire_watch_laggards (laggards_t *laggards);

//  Replies dropped so far because their client did not read or was gone
//  (for status).  One count per process: the broker has one client socket.
uint64_t wire_client_drops (void);

//  Sends a message (borrowed, encoded here) to a client
void wire_msg_to_client (void *sock, zmq_msg_t *client, const char *service, bs_msg_t *msg);

//  Sends a client an error.  request: the body the error answers, whose
//  rid the reply echoes so that a client with many requests outstanding
//  can match it (NULL: none)
void wire_error (void *sock, zmq_msg_t *client, const char *service, zmq_msg_t *request,
                 bs_err_t err, const char *message);

//  Sends a node [node] [empty] [MDPW01] [command], then, with a body, the
//  body (consumed), preceded with a token by [token] [empty].  Returns 0,
//  or -1 when the node cannot be reached (EHOSTUNREACH: it is gone;
//  EAGAIN: its queue is at the high-water mark) or a send failed (the body
//  is then the caller's to close).  Never blocks.
int wire_to_worker (void *sock, worker_t *w, uint8_t command, const void *token, zmq_msg_t *body);

//  Sends a node a REQUEST: [node] [empty] [MDPW01] [REQUEST] [token]
//  [empty] and count body frames, all consumed whether sent or not.
//  Returns 0, or -1 when the node cannot be reached (as wire_to_worker).
int wire_request_to_worker (void *sock, worker_t *w, const void *token, zmq_msg_t *body, int count);

//  DISCONNECT "backup" to a node: this broker is passive, register with
//  the other
void wire_backup (void *sock, const void *identity, size_t size);

#endif
