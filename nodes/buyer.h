/*  buyer - runs the buys of an order node without blocking it.
 *
 *  A buy asks the catalog (through the broker, with the buy's own request
 *  id) to take one copy; when the catalog says yes the order is recorded and
 *  the buy answered.  The catalog's decrement is idempotent per request id,
 *  so resending after a timeout, or a retried buy arriving on another order
 *  node, never takes two copies.  A buy that arrives again while it is under
 *  way joins the one in progress and gets the same answer.
 *
 *  The broker endpoint may be a Binary Star pair's list: a decrement
 *  answered "not_active", or unanswered in time, or sent to a broker whose
 *  connection dropped, moves the buyer to the next broker, and every buy
 *  under way is sent there again with its own rid.
 *
 *  Direct path: once told where the catalog primary is (buyer_set_catalog,
 *  from the broker's assignment), a buy's decrement goes straight to the
 *  primary's sync socket (a peer link, schema/PROTOCOL.md) instead of
 *  through the broker, saving two broker hops.  An answer that shows the
 *  path is wrong (buyer_direct_falls_back), or none in time, sends the same
 *  decrement (same rid) through the broker, and the direct path rests for a
 *  while or until the primary changes.  A late direct answer after that is
 *  harmless: a grant for a buy still under way is the grant the broker
 *  path would bring, anything else is dropped.
 *
 *  Ownership: buyer_new borrows link and keys, which must outlive it.  A granted buy
 *  is handed to the grant callback with its waiters' tokens, which the
 *  callback takes over.
 */
#ifndef BUYER_H_INCLUDED
#define BUYER_H_INCLUDED

#include "bs_msg.h"
#include "mdpworker.h"

typedef struct _buyer_t buyer_t;

//  Called when the catalog granted a buy: record it and answer the tokens
typedef void (buyer_grant_fn) (void *arg, const uint8_t *rid, const bs_msg_t *decrement,
                               zmq_msg_t *tokens, int count);

//  broker_endpoint: the broker's client endpoint, or the pair's,
//  comma-separated.  keys: CURVE to the broker and to the catalog primary
//  (NULL: plain)
buyer_t *buyer_new (const char *broker_endpoint, bs_keys_t *keys, mdpworker_t *link, int timeout_ms,
                    int attempts, buyer_grant_fn *grant, void *arg);
void buyer_destroy (buyer_t **self_p);

//  Starts (or joins) a validated buy; takes over the token
void buyer_start (buyer_t *self, zmq_msg_t *token, const bs_msg_t *request);

//  The socket that carries the catalog's answers: poll it, then call
//  buyer_on_input
void *buyer_socket (buyer_t *self);
void buyer_on_input (buyer_t *self);

//  Resends or gives up on buys whose answer is late
void buyer_tick (buyer_t *self);

//  Buys under way
size_t buyer_pending (buyer_t *self);

//  Turns the direct path on, for a node of that id (its routing id on the
//  primary's sync socket, which under CURVE must be its key's name)
void buyer_direct (buyer_t *self, const char *id);
//  Where the catalog primary is: its id, sync endpoint and epoch; an empty
//  primary or endpoint: unknown (every decrement goes through the broker).
//  Ignored unless the direct path is on.
void buyer_set_catalog (buyer_t *self, const char *primary, const char *sync, uint64_t epoch);
//  The socket of the direct path, NULL when there is none: poll it, then
//  call buyer_on_direct_input
void *buyer_direct_socket (buyer_t *self);
void buyer_on_direct_input (buyer_t *self);
//  Decrements sent and granted on the direct path, and sent again through
//  the broker after it failed them
uint64_t buyer_direct_sent (buyer_t *self);
uint64_t buyer_direct_fallbacks (buyer_t *self);

//  Whether a reply on the direct path says to use the broker instead (the
//  peer is not the primary, cannot write now, or refused the path); any
//  other answer is the catalog's word on the buy
bool buyer_direct_falls_back (const bs_msg_t *reply);

#endif
