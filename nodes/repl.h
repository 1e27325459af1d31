/*  repl - the replication protocol core: log shipping between replicas,
 *  with acks, in-sync sets, catch-up from the log and snapshots.  No
 *  socket, no clock, no random number: time comes in as now (monotonic
 *  milliseconds) on every entry point that needs it, and every message
 *  goes out through the repl_io_t callbacks.  nodes/repl_zmq is the shell
 *  that runs it over ZeroMQ; a simulator can run it in virtual time.
 *
 *  A partition is one log with at most one primary.  The primary seals
 *  writes into log entries (journal) and publishes each entry on its stream
 *  (schema/bs_stream.h), before or after its own commit (the shell says
 *  when the commit is done: repl_committed).  Followers hear the stream, apply
 *  entries strictly in order and ack their applied seq to the primary's
 *  sync endpoint.  A follower that sees a gap, or joins, fetches what it
 *  lacks from a source's sync endpoint (served from the LMDB log), or a
 *  snapshot when it is empty, too far behind or diverged; it buffers live
 *  entries meanwhile.
 *
 *  The primary holds each write's reply until its own store holds it
 *  durable (repl_committed) and every in-sync follower has acked it.  A follower that lags past insync_timeout_ms leaves the in-sync
 *  set and rejoins when it has caught up; fewer than min_insync replicas
 *  (the primary included) in sync refuse writes.
 *
 *  Roles come from the broker (repl_assign); entries and acks carry epochs
 *  and a follower drops entries from an epoch older than it was told.
 *  Entries published before the primary's commit may outlive it (a crash,
 *  a failed commit): the primary never writes again at an epoch it may have
 *  published beyond its commit at.  So it never resumes the role at an
 *  epoch its store already holds (a restart), and gives up the role when a
 *  commit fails (repl_resign); it reports the role dropped at that epoch
 *  and the broker elects anew at a higher one, which truncates that tail
 *  wherever it is.
 *
 *  Its tables (partitions, followers) grow with the broker's map; none has
 *  a fixed size.
 *
 *  Compile-time switches for the simulator's self-test alone (never defined
 *  by the real build): REPL_BUG_EARLY_ACK (repl_defer releases at once),
 *  REPL_BUG_LATE_REPLY (a follower applies any fetch reply),
 *  REPL_BUG_SNAPSHOT_EPOCH_MAX (a loaded snapshot stores the epoch the
 *  follower was told when newer than the snapshot's), REPL_BUG_RESUME_EPOCH
 *  (a primary restarted within its epoch leads at it again).
 *
 *  Ownership and threading: one thread.  repl_new borrows the journal and
 *  copies the options and the io table.  Tokens given to repl_defer are
 *  taken over; io.release gets them back (and closes them itself).  Data
 *  given to the callbacks is lent for the call.  A callback must not call
 *  back into the core.
 */
#ifndef REPL_H_INCLUDED
#define REPL_H_INCLUDED

#include "bs_msg.h"
#include "bs_stream.h"
#include "journal.h"

#include <zmq.h>

typedef struct _repl_t repl_t;

typedef struct {
    void *arg;
    //  A fetch or an ack to a peer's sync socket (endpoint: its sync
    //  endpoint; server: its node id, for CURVE)
    void (*send_sync) (void *arg, const char *endpoint, const char *server, const void *data, size_t size);
    //  An answer on our sync socket to the peer that asked (entries,
    //  snapshot, snap_data, snap_end); peer: its node id
    void (*answer) (void *arg, const char *peer, const void *data, size_t size);
    //  One message of a partition's replication stream (kind:
    //  REPL_STREAM_ENTRY or REPL_STREAM_HEAD)
    void (*publish) (void *arg, const char *partition, int kind, const void *data, size_t size);
    //  Start / stop hearing partition's stream from a primary (pub: its
    //  stream endpoint; primary: its node id, for CURVE)
    void (*subscribe) (void *arg, const char *partition, const char *pub, const char *primary);
    void (*unsubscribe) (void *arg, const char *partition, const char *pub);
    //  A reply held for acks goes out (the callee takes and closes the token)
    void (*release) (void *arg, zmq_msg_t *token, const void *data, size_t size);
} repl_io_t;

typedef struct {
    const char *id;                 //  this node's id
    const char *pub_endpoint;       //  what others connect to
    const char *sync_endpoint;
    const char **dbs;               //  databases of this node's partitions
    bool mergeable;                 //  snapshots merge (orders) or replace (catalog)
    int heartbeat_ms;
    int insync_timeout_ms;
    int min_insync;
    int drop_every;                 //  test switch: do not publish every k-th entry
    uint64_t log_keep;              //  entries each log keeps; a follower further behind gets a snapshot
} repl_options_t;

//  Partitions the journal already holds resume without a role until told
repl_t *repl_new (journal_t *journal, const repl_options_t *options, const repl_io_t *io);
//  Closes held tokens without answering them
void repl_destroy (repl_t **self_p);

//  Inputs.  A fetch or ack that came on our sync socket from peer (its
//  node id, a string of 1 to BS_ID_MAX bytes, which answers go back to;
//  the shell has checked that its key may ask)
void repl_on_request (repl_t *self, const char *peer, const void *data, size_t size, int64_t now);
//  One message of partition's stream.  Outside a batch a live entry is
//  applied at once (when it follows on); inside one, at repl_batch_end.
void repl_on_stream (repl_t *self, const char *partition, int kind, const void *data, size_t size, int64_t now);
//  Optional.  Stream messages given between these two are applied
//  together, in one transaction per partition, at repl_batch_end: a shell
//  that reads a burst brackets it (one commit per burst, not per entry)
void repl_batch_begin (repl_t *self);
void repl_batch_end (repl_t *self, int64_t now);
//  A reply to one of our fetches, from the source at that sync endpoint
void repl_on_answer (repl_t *self, const char *endpoint, const void *data, size_t size, int64_t now);
//  Heartbeats, ack timeouts, fetch retries; returns ms until needed again
int64_t repl_tick (repl_t *self, int64_t now);

//  Applies the broker's partition map: become primary or follower
void repl_assign (repl_t *self, const bs_msg_t *assign, int64_t now);

//  Makes this node primary of its own partition for good (order nodes) at
//  a new epoch: one above every epoch the store ever claimed or wrote at
//  for it, stored durably before the call returns (*epoch_p gets it when
//  not NULL).  Its first entry is the store's seq + 1.  A replica holding
//  entries we published and never committed finds at that epoch that its
//  history differs, and drops them.  -1 when the role cannot be taken
//  (logged): the node must not run without it.
int repl_claim (repl_t *self, const char *partition, uint64_t *epoch_p);

bool repl_is_primary (repl_t *self, const char *partition);

//  BS_OK when the partition takes writes here; otherwise an error and a
//  sentence (not primary, too few replicas in sync)
bs_err_t repl_can_write (repl_t *self, const char *partition, char *reason, size_t size);

//  Publishes the entries the journal sealed in the current write
//  transaction (before its commit) or its last committed one
void repl_publish (repl_t *self, int64_t now);

//  Our own store holds partition durable up to seq (after journal_commit);
//  releases held replies that every in-sync follower has acked too
void repl_committed (repl_t *self, const char *partition, uint64_t seq, int64_t now);

//  A commit failed after its entries were published: followers may hold
//  seqs we never will at this epoch.  Gives up the primary role of every
//  partition we lead, answers their held replies with an error, and
//  refuses to lead them again at the epoch: the status reports the role
//  dropped and the broker elects anew at a higher epoch.  Our own (home)
//  partition, which nobody else leads, is led again once we claim a new
//  epoch for it (repl_claim).
void repl_resign (repl_t *self, int64_t now);

//  Releases the reply once our own store holds seq durable and every
//  in-sync follower has acked it (at once when seq is 0 or the partition
//  is not ours to lead)
void repl_defer (repl_t *self, const char *partition, uint64_t seq, zmq_msg_t *token,
                 const void *data, size_t size, int64_t now);

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

//  Appends this node's partitions to a node_status message.  version
//  numbers a primary's report; it must grow across restarts (the node
//  passes wall-clock milliseconds; a smaller one is raised past the last)
void repl_status (repl_t *self, bs_msg_t *status, uint64_t version);

#endif
