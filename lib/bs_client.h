/*  bs_client - a Majordomo client with request ids and Lazy Pirate retries,
 *  and failover between brokers.
 *
 *  Used by the CLI, the gateway, the bench, the order node (to reach the
 *  catalog) and by tests.  One DEALER socket, connected to one broker of a
 *  comma-separated list at a time (lib/bs_endpoints).  A request that gets
 *  no reply within the timeout is sent again with the same request id, so a
 *  retry never takes effect twice; with a list, it is sent to the next
 *  broker.  A broker that answers "not_active" (a standby one)
 *  makes the client move to the next one at once, and a broker whose
 *  connection drops (killed) ends the attempt at once.  The client stays
 *  with the broker that last answered.  Replies for earlier requests are
 *  recognised by their rid and discarded.
 *
 *  With a single endpoint the client behaves as it always did: it resends
 *  on the same socket, and ZeroMQ reconnects by itself.
 *
 *  Ownership: bs_client_new returns a client the caller destroys with
 *  bs_client_destroy.  bs_client_call borrows the request and returns a reply
 *  the caller owns.  bs_client_endpoint returns a string the client owns.
 */
#ifndef BS_CLIENT_H_INCLUDED
#define BS_CLIENT_H_INCLUDED

#include "bs_keys.h"
#include "bs_msg.h"

typedef struct _bs_client_t bs_client_t;

//  endpoints: a ZeroMQ endpoint such as tcp://127.0.0.1:5555, or a
//  comma-separated list of them (several brokers).
//  Returns NULL when the list is malformed or an endpoint cannot be used.
bs_client_t *bs_client_new (const char *endpoints);
//  The same, speaking CURVE to the broker with the process's keys (NULL:
//  plain); the keys are borrowed only during the call
bs_client_t *bs_client_new_secure (const char *endpoints, bs_keys_t *keys);
void bs_client_destroy (bs_client_t **self_p);

//  Per-attempt timeout (default 2500 ms) and total attempts (default 3)
void bs_client_set_timeout (bs_client_t *self, int timeout_ms);
void bs_client_set_attempts (bs_client_t *self, int attempts);

//  Sends the request to the service and waits for its reply.  The request
//  must carry a rid.  An attempt ends with a reply, its timeout, a send that
//  cannot go out, or the broker's connection dropping; then the request goes
//  to the next broker.  "not_active" answers move on at once without using
//  an attempt, except that a whole round of them in a row uses one and
//  pauses 100 ms.  Returns the reply (a "not_active" one when the last
//  round said only that), or NULL after the last attempt timed out (the
//  error is then BS_ERR_timeout) or was interrupted.
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

//  Asynchronous failover: moves the socket to the next broker of the list
//  (the socket stays the same, so a poll item on it stays valid).  Whatever
//  was sent to the previous broker and not answered is lost with its
//  connection: resend it.  With one endpoint nothing changes.  Returns 0, or
//  -1 when the connect failed.
int bs_client_failover (bs_client_t *self);
//  True when the connection to the broker in use dropped (it was killed)
//  and has not come back: time to fail over.  Always false with one endpoint.
bool bs_client_lost (bs_client_t *self);

//  The endpoint in use, and how many the list holds
const char *bs_client_endpoint (bs_client_t *self);
size_t bs_client_endpoint_count (bs_client_t *self);

#endif
