/*  gw_pool - a small pool of broker clients shared by the gateway's
 *  connection threads.
 *
 *  A ZeroMQ socket must not be used by two threads at once, so each call
 *  borrows one client for its whole duration; a thread that finds every
 *  client busy waits for one, up to the call's time budget.  A client whose
 *  call got no reply is replaced by a fresh one, whose socket holds no queue:
 *  a request the caller gave up on is then never delivered late.
 *
 *  With a Binary Star pair each client fails over on its own (bs_client),
 *  and a new client starts with the broker that last served a call, so a
 *  replacement does not try a dead broker first again.
 *
 *  Ownership: gw_pool_new returns a pool the caller destroys with
 *  gw_pool_destroy once no thread uses it.  gw_pool_call borrows the request
 *  and returns a reply the caller owns.
 */
#ifndef GW_POOL_H_INCLUDED
#define GW_POOL_H_INCLUDED

#include "bs_keys.h"
#include "bs_msg.h"

typedef struct _gw_pool_t gw_pool_t;

//  size clients to endpoint (one broker, or a Binary Star pair's list,
//  comma-separated: each client fails over on its own, see bs_client), each
//  attempt waiting timeout_ms, attempts per call; keys (borrowed, must
//  outlive the pool; NULL: plain) for CURVE.  Returns NULL when the
//  endpoint or the list is not valid.
gw_pool_t *gw_pool_new (const char *endpoint, bs_keys_t *keys, int size, int timeout_ms, int attempts);
void gw_pool_destroy (gw_pool_t **self_p);

//  Sends the request (which carries its rid) to the service and waits for the
//  reply.  timeout_ms and attempts of 0 use the pool's defaults.  Returns the
//  reply, or NULL with *err_p set: BS_ERR_timeout when the cluster did not
//  answer, BS_ERR_unavailable when no client was free in time.
bs_msg_t *gw_pool_call (gw_pool_t *self, const char *service, const bs_msg_t *request,
                        int timeout_ms, int attempts, bs_err_t *err_p);

#endif
