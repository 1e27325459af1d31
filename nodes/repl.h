/*  repl - log shipping between replicas over PUB/SUB, with acks, in-sync
 *  sets, catch-up from the log and snapshots.
 *
 *  A partition is one log with at most one primary.  The primary seals
 *  writes into log entries (journal), commits, and publishes each entry on
 *  its PUB socket.  Followers subscribe, apply entries strictly in order and
 *  ack their applied seq to the primary's ROUTER over a DEALER.  A follower
 *  that sees a gap, or joins, fetches what it lacks from a source's ROUTER
 *  (served from the LMDB log), or a snapshot when it is empty, too far behind
 *  or diverged; it buffers live entries meanwhile.
 *
 *  The primary holds each write's reply until every in-sync follower has
 *  acked it.  A follower that lags past insync_timeout_ms leaves the in-sync
 *  set and rejoins when it has caught up; fewer than min_insync replicas
 *  (the primary included) in sync refuse writes.
 *
 *  Roles come from the broker (repl_assign); entries and acks carry epochs
 *  and a follower drops entries from an epoch older than it was told.
 *
 *  Its tables (partitions, sources, followers) grow with the broker's map;
 *  none has a fixed size.
 *
 *  Ownership: repl_new borrows the journal.  Tokens given to repl_defer are
 *  taken over; the send callback gets them back (and closes them itself).
 */
#ifndef REPL_H_INCLUDED
#define REPL_H_INCLUDED

#include "bs_msg.h"
#include "bs_keys.h"
#include "journal.h"

#include <zmq.h>

typedef struct _repl_t repl_t;

//  Sends a reply that was held for acks; the callee closes the token
typedef void (repl_send_fn) (void *arg, zmq_msg_t *token, const void *data, size_t size);

typedef struct {
    const char *id;                 //  this node's id
    const char *pub_bind;           //  e.g. tcp://*:5570
    const char *sync_bind;
    const char *pub_endpoint;       //  what others connect to
    const char *sync_endpoint;
    const char **dbs;               //  databases of this node's partitions
    bool mergeable;                 //  snapshots merge (orders) or replace (catalog)
    int heartbeat_ms;
    int insync_timeout_ms;
    int min_insync;
    int hwm;
    int drop_every;                 //  test switch: do not publish every k-th entry
    uint64_t log_keep;              //  entries each log keeps; a follower further behind gets a snapshot
    bs_keys_t *keys;                //  CURVE between nodes (borrowed), NULL: plain
} repl_options_t;

repl_t *repl_new (journal_t *journal, const repl_options_t *options, repl_send_fn *send, void *arg);
void repl_destroy (repl_t **self_p);

//  Applies the broker's partition map: become primary or follower
void repl_assign (repl_t *self, const bs_msg_t *assign);

//  Makes this node primary of partition at epoch (order nodes, for their
//  own partition); persists the epoch when it grows.  -1 when the role
//  cannot be taken (logged): the node must not run without it.
int repl_claim (repl_t *self, const char *partition, uint64_t epoch);

bool repl_is_primary (repl_t *self, const char *partition);

//  BS_OK when the partition takes writes here; otherwise an error and a
//  sentence (not primary, too few replicas in sync)
bs_err_t repl_can_write (repl_t *self, const char *partition, char *reason, size_t size);

//  Publishes the entries the journal sealed in its last commit
void repl_publish (repl_t *self);

//  Sends the reply once every in-sync follower has acked seq (at once when
//  seq is 0 or the partition has no follower in sync)
void repl_defer (repl_t *self, const char *partition, uint64_t seq, zmq_msg_t *token,
                 const void *data, size_t size);

//  How many poll items it needs now (grows with the sources it fetches
//  from: the caller sizes its array with this before each poll)
int repl_pollitem_count (repl_t *self);
//  Fills poll items for every socket it reads, at most max; returns how many
int repl_pollitems (repl_t *self, zmq_pollitem_t *items, int max);
//  Handles whatever input the poll found on those items
void repl_on_poll (repl_t *self, zmq_pollitem_t *items, int count);
//  Heartbeats, ack timeouts, fetch retries; returns ms until needed again
int64_t repl_tick (repl_t *self);

//  True when this node may serve reads: the broker has assigned its roles,
//  every partition it holds has one, none is loading a snapshot, and every
//  followed partition with a primary has caught up with it.  A node that
//  has not been told its roles is not ready.
bool repl_caught_up (repl_t *self);

//  Fetch ids.  Each fetch carries a rid naming the epoch the follower
//  followed at when it asked and a serial; every reply (entries, snapshot
//  parts) carries it back.  repl_fetch_rid writes that rid (BS_RID_SIZE
//  bytes).  repl_reply_acceptable: whether a follower takes a reply; only
//  one that came over the link it fetches from now (from_source) and
//  answers its latest fetch (serial) made at the epoch it follows now.
//  Anything else (a deposed primary answering late, a fetch from before
//  the epoch changed) is ignored: applying it could take in entries the
//  new primary never had.
void repl_fetch_rid (uint64_t epoch, uint64_t serial, uint8_t *rid);
bool repl_reply_acceptable (bool from_source, const uint8_t *rid, size_t rid_size, uint64_t epoch, uint64_t serial);

//  Pure, for the unit tests: whether a primary's writes wait for a
//  follower's ack.  insync: the primary sees it in sync now; confirmed: the
//  broker's confirmed set lists it; reported_at: the version of the
//  primary's newest status report naming it in sync (0: none);
//  confirmed_version: the version of the report the confirmed set was built
//  from (the assignment echoes it).  A follower reported in sync may be
//  added to the stored in-sync set on that report's word at any moment
//  until a confirmation built from a newer report leaves it out.
bool repl_waits_for (bool insync, bool confirmed, uint64_t reported_at, uint64_t confirmed_version);

//  Appends this node's partitions to a node_status message
void repl_status (repl_t *self, bs_msg_t *status);

#endif
