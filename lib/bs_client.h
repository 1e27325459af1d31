/*  bs_client - a Majordomo client with request ids and Lazy Pirate retries.
 *
 *  Used by the CLI, by the order node (to reach the catalog) and by tests.
 *  One DEALER socket to the broker; a request that gets no reply within the
 *  timeout is sent again with the same request id, so a retry never takes
 *  effect twice.  Replies for earlier requests are recognised by their rid
 *  and discarded.
 *
 *  Ownership: bs_client_new returns a client the caller destroys with
 *  bs_client_destroy.  bs_client_call borrows the request and returns a reply
 *  the caller owns.
 */
#ifndef BS_CLIENT_H_INCLUDED
#define BS_CLIENT_H_INCLUDED

#include "bs_keys.h"
#include "bs_msg.h"

typedef struct _bs_client_t bs_client_t;

//  endpoint: a ZeroMQ endpoint such as tcp://127.0.0.1:5555
bs_client_t *bs_client_new (const char *endpoint);
//  The same, speaking CURVE to the broker with the process's keys (NULL:
//  plain); the keys are borrowed only during the call
bs_client_t *bs_client_new_secure (const char *endpoint, bs_keys_t *keys);
void bs_client_destroy (bs_client_t **self_p);

//  Per-attempt timeout (default 2500 ms) and total attempts (default 3)
void bs_client_set_timeout (bs_client_t *self, int timeout_ms);
void bs_client_set_attempts (bs_client_t *self, int attempts);

//  Sends the request to the service and waits for its reply.  The request
//  must carry a rid.  Returns the reply, or NULL after the last attempt timed
//  out (the error is then BS_ERR_timeout) or was interrupted.
bs_msg_t *bs_client_call (bs_client_t *self, const char *service, const bs_msg_t *request);

//  Sends a raw multi-frame message (for tests of malformed input): frames are
//  sent after the empty delimiter exactly as given.  Waits for one reply and
//  returns its body frame decoded, or NULL.
bs_msg_t *bs_client_call_raw (bs_client_t *self, const void **frames,
                              const size_t *sizes, int count);

//  Asynchronous use (the order node): send without waiting, poll the socket,
//  receive whatever reply arrived.  bs_client_recv returns NULL when the
//  frames were not a well-formed reply.
int bs_client_send (bs_client_t *self, const char *service, const bs_msg_t *request);
void *bs_client_socket (bs_client_t *self);
bs_msg_t *bs_client_recv (bs_client_t *self);

#endif
