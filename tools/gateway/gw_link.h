/*  gw_link - the gateway's asynchronous link to the broker: one DEALER
 *  socket carries every store request at once, and replies are matched to
 *  their requests by request id.
 *
 *  The gateway's event loop sends a request with gw_link_call and goes on
 *  serving other connections; when the reply comes (gw_link_on_input), or
 *  the request runs out of attempts (gw_link_tick), the caller's function
 *  is called once with the answer or an error.  The rules are bs_client's,
 *  per request: each attempt waits timeout_ms and resends the same bytes
 *  (the same rid, so the store does it once); with a Binary Star pair the
 *  link moves to the next broker at once on "not_active" (a whole round of
 *  them pauses BS_FAILOVER_PAUSE_MS and counts as an attempt), when the
 *  broker's connection drops, and when an attempt times out, resending
 *  everything under way.  Two calls with the same rid (a client's
 *  Idempotency-Key sent twice at once) share one request and its answer.
 *
 *  The socket queues nothing while it has no connection (ZMQ_IMMEDIATE): a
 *  request the gateway gave up on, told its client 503, is never delivered
 *  later by a broker that comes back.
 *
 *  Ownership: gw_link_new returns a link the caller destroys with
 *  gw_link_destroy, which drops the calls under way without calling them
 *  back.  gw_link_call copies what it needs of the request; the answer
 *  passed to a callback is borrowed for the call.  Single-threaded: every
 *  function runs on the thread that polls the link.
 */
#ifndef GW_LINK_H_INCLUDED
#define GW_LINK_H_INCLUDED

#include "bs_keys.h"
#include "bs_msg.h"

typedef struct _gw_link_t gw_link_t;
typedef struct _gw_waiter_t gw_waiter_t;

//  Called once per call: answer is the reply (borrowed), or NULL with err
//  BS_ERR_timeout when no broker answered in time
typedef void (gw_link_fn) (void *arg, const bs_msg_t *answer, bs_err_t err);

//  endpoint: one broker, or a pair's comma-separated list (primary first);
//  keys (borrowed for the call; NULL: plain) for CURVE; each attempt waits
//  timeout_ms, attempts per call by default.  NULL when the endpoint or the
//  list is not valid.
gw_link_t *gw_link_new (const char *endpoint, bs_keys_t *keys, int timeout_ms, int attempts);
void gw_link_destroy (gw_link_t **self_p);

//  Sends the request (which carries its rid) to the service; timeout_ms and
//  attempts of 0 use the link's defaults.  Never calls fn before it returns.
//  Returns the call's handle, valid until fn is called or the call cancelled.
gw_waiter_t *gw_link_call (gw_link_t *self, const char *service, const bs_msg_t *request,
                           int timeout_ms, int attempts, gw_link_fn *fn, void *arg);

//  Forgets a call (its caller went away): fn is not called.  Sets
//  *waiter_p to NULL.
void gw_link_cancel (gw_link_t *self, gw_waiter_t **waiter_p);

//  Calls back the failures of every call under way (err as given) and
//  forgets them: for a shutdown
void gw_link_fail_all (gw_link_t *self, bs_err_t err);

//  The socket to poll for input, and the monitor's (NULL with one broker)
void *gw_link_socket (gw_link_t *self);
void *gw_link_monitor (gw_link_t *self);

//  Reads every reply waiting and calls back their calls
void gw_link_on_input (gw_link_t *self);

//  Retries, failovers and failures whose time came; returns how many
//  milliseconds the caller may wait before the next tick (-1: no call under
//  way, nothing to do until the next gw_link_call)
int gw_link_tick (gw_link_t *self);

//  Calls under way (requests, not waiters)
size_t gw_link_pending (gw_link_t *self);

//  The broker in use
const char *gw_link_endpoint (gw_link_t *self);

#endif
