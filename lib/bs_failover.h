/*  bs_failover - what a client does when a broker answers "not_active".
 *
 *  A standby broker (one not holding the active lease) answers every
 *  request "not_active": the
 *  client sends the same request (same bytes, so the same request id) to
 *  the next broker of its list at once.  When every broker of the list said
 *  so in a row, a takeover is under way: the client pauses
 *  BS_FAILOVER_PAUSE_MS before the next round rather than spinning.  Any
 *  other outcome (an answer, a timeout, a dropped connection) ends the run.
 *
 *  Used by the client library (bs_client), the node's buyer and the load
 *  generators, each of which moves its own socket; this module only keeps
 *  the count and says when to pause.
 *
 *  A bs_failover_t is a plain value (one per request or per socket, zeroed
 *  to start) rather than an object: it is a counter, and the callers keep
 *  it inside their own per-request state without allocating.
 *  Single-threaded like its owner.
 */
#ifndef BS_FAILOVER_H_INCLUDED
#define BS_FAILOVER_H_INCLUDED

#include "bs_msg.h"

#include <stdbool.h>
#include <stddef.h>

//  The pause after a whole round of "not_active" answers
#define BS_FAILOVER_PAUSE_MS 100

typedef struct {
    size_t not_active;          //  "not_active" answers in a row
} bs_failover_t;

typedef enum {
    BS_FAILOVER_NOW,            //  send to the next broker at once
    BS_FAILOVER_AFTER_PAUSE     //  a whole round refused: pause, then the next
} bs_failover_move_t;

//  Counts one "not_active" answer from a list of `brokers` brokers and says
//  how to move on; after a whole round the count starts again
bs_failover_move_t bs_failover_not_active (bs_failover_t *self, size_t brokers);

//  Any other outcome: the next "not_active" starts a new round
void bs_failover_reset (bs_failover_t *self);

//  True when the reply is a standby broker's "not_active" error
bool bs_failover_is_not_active (const bs_msg_t *reply);

#endif
