/*  laggards - clients that do not read their replies, and how much of the
 *  broker's time they may take.
 *
 *  A client whose reply queue is full (ROUTER_MANDATORY refused a reply
 *  with EAGAIN: it sends without reading) is a laggard for LAGGARD_MS
 *  after its last refused reply.  The broker drops a laggard's requests
 *  unread (nothing it asks is done; its replies could not be delivered
 *  anyway), and it reads all laggards' requests together at a bounded
 *  rate: when the budget is spent, the client socket rests briefly.
 *  Resting is what slows the flood at its source: the laggard's queues
 *  fill, its sends block, and it stops taking the machine's CPU from the
 *  clients that read.  A client's other requests are read in between,
 *  since ZeroMQ's ROUTER reads its connections in turn.
 *
 *  Pure logic: the caller gives the time and acts on the answers.
 *  Clients are known by their routing id, compared whole (not a hash, so
 *  no client can be mistaken for another).
 *
 *  Ownership: laggards_new returns an object the caller destroys with
 *  laggards_destroy.  Single-threaded, as the broker.
 */
#ifndef LAGGARDS_H_INCLUDED
#define LAGGARDS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  How long a client stays a laggard after its last refused reply; once
//  it is over, one request more is served and shows whether it reads now
#define LAGGARD_MS      1000
//  Laggards tracked at once; a new one replaces the one marked longest ago
#define LAGGARDS_MAX    64
//  The broker's rate: requests a second it reads from all laggards
//  together, so rests of 200 us.  Measured with one flooding client on 2
//  CPUs: at 20,000 the flood's own CPU (it sends 70% more) cost another
//  client more than the shorter rests saved; at 5,000 the rests did
#define LAGGARD_RATE    10000

typedef struct _laggards_t laggards_t;

//  rate: the laggards' requests the broker reads per second, all together;
//  the socket rests until two more may be read, 2/rate seconds
laggards_t *laggards_new (uint32_t rate);

void laggards_destroy (laggards_t **self_p);

//  A reply to this client was refused at its full queue.  Returns true
//  when the client was not a laggard until now (to be logged)
bool laggards_mark (laggards_t *self, const void *id, size_t size, int64_t now_us);

//  True when the client is a laggard: the caller drops its request, and
//  should then ask laggards_rest_until
bool laggards_match (laggards_t *self, const void *id, size_t size, int64_t now_us);

//  Takes one read from the budget for a laggard's request just dropped.
//  Returns 0 while the budget lasts, else the time (us, on now's clock)
//  until which the client socket should not be read
int64_t laggards_charge (laggards_t *self, int64_t now_us);

//  True when any client is (or was, until laggards_expire) a laggard: the
//  hot path asks the clock and laggards_match only then
bool laggards_any (laggards_t *self);

//  Forgets the laggards whose time is over (the broker's tick), so that a
//  client gone for good costs nothing on the hot path
void laggards_expire (laggards_t *self, int64_t now_us);

//  Requests dropped unread from laggards so far
uint64_t laggards_dropped (laggards_t *self);

#endif
