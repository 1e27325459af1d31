/*  mdpworker - a node's Majordomo worker connection to the broker.
 *
 *  Registers with READY (service, node id), answers heartbeats, sends its
 *  own, and re-registers when the broker asks (DISCONNECT).  The endpoint
 *  is a comma-separated list of brokers (one endpoint is a single
 *  broker).  When the broker in use
 *  has been silent for `liveness` heartbeats, the worker opens a fresh
 *  socket to the next broker of the list (to the same one when there is
 *  one), so a node finds a restarted broker, or the one that took over,
 *  by itself.  A standby broker answers with DISCONNECT plus a frame
 *  "backup": the worker then moves to the next broker too (at most once per
 *  heartbeat).  The first try at each broker waits one liveness window; once
 *  every broker of the list was tried in a row without an answer, each
 *  round waits twice as long, up to 8 s.  With two brokers or more, a
 *  closed connection to a broker that was serving us (its process died)
 *  moves the worker on at once, without waiting out the silence.  The socket's routing id is the
 *  node id, so the broker recognises a restarted node as the same one.
 *
 *  Ownership: mdpworker_new returns an object the caller destroys with
 *  mdpworker_destroy.  Tokens and bodies received belong to the caller
 *  (zmq_msg_t it must close).
 */
#ifndef MDPWORKER_H_INCLUDED
#define MDPWORKER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "bs_keys.h"

typedef struct _mdpworker_t mdpworker_t;

//  endpoint: one broker's node endpoint, or a comma-separated list of them.
//  keys: CURVE to the broker (borrowed, must outlive the worker; NULL: plain)
//  Returns NULL (logged) when the endpoint list is malformed.
mdpworker_t *mdpworker_new (const char *endpoint, const char *service, const char *id,
                            int heartbeat_ms, int liveness, bs_keys_t *keys);
void mdpworker_destroy (mdpworker_t **self_p);

//  The socket to poll for input (it changes after a reconnect: fetch it
//  before every poll)
void *mdpworker_socket (mdpworker_t *self);

//  With two brokers or more: the socket monitor of the broker connection,
//  to poll beside mdpworker_socket (NULL otherwise; it also changes after a
//  reconnect).  Its events are read by mdpworker_tick.
void *mdpworker_monitor (mdpworker_t *self);

//  The index in the endpoint list of the broker in use (0 at first), and
//  its endpoint (owned by the worker)
size_t mdpworker_broker_index (mdpworker_t *self);
const char *mdpworker_broker (mdpworker_t *self);

//  Reads one message.  Returns MDPWORKER_REQUEST with a request's token and
//  body filled in (both initialised by the callee), MDPWORKER_ASSIGN with
//  the broker's partition map in body (token untouched), or -1 for anything
//  else (heartbeats and protocol traffic are handled here; malformed input is
//  logged and dropped).
#define MDPWORKER_REQUEST 0
#define MDPWORKER_ASSIGN 1
int mdpworker_recv (mdpworker_t *self, zmq_msg_t *token, zmq_msg_t *body);

//  The node's status (a node_status body) sent with READY and every
//  HEARTBEAT from now on; the data is copied
void mdpworker_set_status (mdpworker_t *self, const void *data, size_t size);

//  Sends a reply for the request that came with token
int mdpworker_reply (mdpworker_t *self, zmq_msg_t *token, const void *body, size_t size);

//  Sends heartbeats and moves to the next broker when the one in use went
//  silent or said it is the backup.  Returns the milliseconds until it next
//  needs to run.
int64_t mdpworker_tick (mdpworker_t *self);

//  Says DISCONNECT to the broker (on a clean shutdown)
void mdpworker_disconnect (mdpworker_t *self);

#endif
