/*  invalidator - the catalog primary's link to the broker's cache.
 *
 *  Before the primary commits writes that change what lookups or searches
 *  return, it sends the broker one invalidate message (the keys and the
 *  version, see schema/messages.def) over REQ and waits for the ack.  A lost
 *  request or reply is resent (Lazy Pirate, on a relaxed and correlated REQ
 *  socket, so a late reply to an earlier attempt is recognised and dropped);
 *  after the last attempt the caller must fail the writes.
 *
 *  With several brokers the invalidator knows each broker's
 *  invalidation endpoint and talks to one at a time: the active broker's,
 *  whose cache is the one clients read (the caller selects it by the
 *  index of the broker its worker is attached to).
 *
 *  Ownership: invalidator_new returns an object the caller destroys with
 *  invalidator_destroy.  invalidator_send borrows the message.
 */
#ifndef INVALIDATOR_H_INCLUDED
#define INVALIDATOR_H_INCLUDED

#include "bs_keys.h"
#include "bs_msg.h"

typedef struct _invalidator_t invalidator_t;

//  endpoint: the broker's invalidation REP socket, or a comma-separated
//  list of them (index i: broker i's); the first is connected.  Each
//  attempt waits timeout_ms for the ack.
//  keys: CURVE to the broker (borrowed, must outlive the invalidator; NULL:
//  plain).  Returns NULL (logged) on a malformed list or a failed connect.
invalidator_t *invalidator_new (const char *endpoint, bs_keys_t *keys, int timeout_ms, int attempts);
void invalidator_destroy (invalidator_t **self_p);

//  How many endpoints the list holds, and the index of the connected one
size_t invalidator_size (invalidator_t *self);
size_t invalidator_index (invalidator_t *self);

//  Moves the socket to the endpoint at index (disconnect, connect) when it
//  is not the connected one already.  False when the index is out of range
//  (nothing changes) or the connect failed (logged).
bool invalidator_select (invalidator_t *self, size_t index);

//  True once the broker acknowledged the invalidation
bool invalidator_send (invalidator_t *self, const bs_msg_t *invalidation);

#endif
