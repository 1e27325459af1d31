/*  invalidator - the catalog primary's link to the broker's cache.
 *
 *  Before the primary commits writes that change what lookups or searches
 *  return, it sends the broker one invalidate message (the keys and the
 *  version, see schema/messages.def) over REQ and waits for the ack.  A lost
 *  request or reply is resent (Lazy Pirate, on a relaxed and correlated REQ
 *  socket, so a late reply to an earlier attempt is recognised and dropped);
 *  after the last attempt the caller must fail the writes.
 *
 *  Ownership: invalidator_new returns an object the caller destroys with
 *  invalidator_destroy.  invalidator_send borrows the message.
 */
#ifndef INVALIDATOR_H_INCLUDED
#define INVALIDATOR_H_INCLUDED

#include "bs_keys.h"
#include "bs_msg.h"

typedef struct _invalidator_t invalidator_t;

//  endpoint: the broker's invalidation REP socket.  Each attempt waits
//  timeout_ms for the ack.
//  keys: CURVE to the broker (borrowed during the call; NULL: plain)
invalidator_t *invalidator_new (const char *endpoint, bs_keys_t *keys, int timeout_ms, int attempts);
void invalidator_destroy (invalidator_t **self_p);

//  True once the broker acknowledged the invalidation
bool invalidator_send (invalidator_t *self, const bs_msg_t *invalidation);

#endif
