/*  journal - replicated writes on a node's store.
 *
 *  Every change to replicated data goes through journal_put / journal_del,
 *  which apply it and record it.  journal_seal closes one write: its changes
 *  become the next log entry of a partition (epoch, seq), appended to the
 *  log in the same transaction, so state and log never disagree.  The
 *  sealed entries are the caller's to publish as soon as they are sealed,
 *  before journal_commit: a primary ships them while its own commit runs.
 *  Followers apply received entries with journal_apply, which writes the same
 *  records and the same log entry.
 *
 *  The journal also keeps, per node, an order-independent digest (XOR of a
 *  64-bit hash of every record of the databases marked for it), so replicas
 *  with equal contents report equal digests.
 *
 *  Ownership: journal_new borrows the store.  Transactions returned by
 *  journal_begin end with journal_commit or journal_abort.  Sealed entries
 *  (journal_sealed) belong to the journal; they stay readable from their
 *  seal until the transaction ends in a failed commit or an abort, and
 *  after a successful commit until the next journal_begin.
 */
#ifndef JOURNAL_H_INCLUDED
#define JOURNAL_H_INCLUDED

#include "bs_entry.h"
#include "store.h"

typedef struct _journal_t journal_t;

//  How much of a partition's history a store holds.  Only a whole copy may
//  lead the partition: a fresh one may be a replica that lost its disk,
//  a partial one dropped its state for a snapshot it has not finished.
//  Kept in the store, so a restart or a change of source does not forget
//  it.
typedef enum {
    JOURNAL_WHOLE = 0,      //  a prefix of the partition's history
    JOURNAL_FRESH = 1,      //  never held: no entry, no snapshot yet
    JOURNAL_PARTIAL = 2     //  a snapshot began and has not ended
} journal_holding_t;

journal_t *journal_new (store_t *store);
void journal_destroy (journal_t **self_p);

//  The store underneath
store_t *journal_store (journal_t *self);
//  The store's identity: a random number below 2^53 drawn when the store
//  was created (0 when a read-only store has none).  A replica that lost
//  its disk comes back with another.
uint64_t journal_incarnation (journal_t *self);

//  Opens a replicated database.  digest: its records count in the digest.
bool journal_db (journal_t *self, const char *name, unsigned flags, bool digest, MDB_dbi *dbi_p);

//  Partitions (committed): the last sequence number; the epoch this node
//  writes or follows at (journal_set_epoch, never below an entry's); and
//  the epoch of the entry at seq.  (seq, last epoch) names one history: a
//  new primary that has written nothing yet holds its old last epoch.
uint64_t journal_seq (journal_t *self, const char *partition);
uint64_t journal_epoch (journal_t *self, const char *partition);
uint64_t journal_last_epoch (journal_t *self, const char *partition);
//  How much of the partition the store holds (committed); a partition
//  never held is fresh.  A copy becomes whole with a finished snapshot, its
//  first entry (seq 1), or journal_set_whole (a fetch its source answered
//  with its log, or the first primary of a new partition).
journal_holding_t journal_holding (journal_t *self, const char *partition);
int journal_set_whole (journal_t *self, MDB_txn *txn, const char *partition);
//  The sequence number the next sealed entry of the partition will get
uint64_t journal_next_seq (journal_t *self, const char *partition);
//  Names of every partition this node holds entries of
size_t journal_partitions (journal_t *self);
const char *journal_partition_at (journal_t *self, size_t index);

//  Write transactions
MDB_txn *journal_begin (journal_t *self);
int journal_put (journal_t *self, MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *value);
//  value NULL deletes the key with all its duplicates
int journal_del (journal_t *self, MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *value);
//  Closes the current write as the next entry of partition; *seq_p gets its
//  sequence number.  A write that changed nothing makes no entry (seq 0).
int journal_seal (journal_t *self, MDB_txn *txn, const char *partition, uint64_t *seq_p);
//  Forgets the changes recorded since the last seal (the write failed and
//  the caller aborts the transaction)
void journal_unseal (journal_t *self);
//  Sets a partition's epoch (inside a write transaction)
int journal_set_epoch (journal_t *self, MDB_txn *txn, const char *partition, uint64_t epoch);
int journal_commit (journal_t *self, MDB_txn *txn);
void journal_abort (journal_t *self, MDB_txn *txn);

//  Entries sealed in the current write transaction (valid from journal_seal,
//  before the commit), or by the last committed one; none after an abort or
//  a failed commit (the caller must treat any it published as never
//  written here: see nodes/node.c, the commit-failure rule)
size_t journal_sealed (journal_t *self);
const uint8_t *journal_sealed_at (journal_t *self, size_t index, size_t *size_p, uint64_t *seq_p,
                                  const char **partition_p);

//  Applies a received entry (must be the partition's next seq) inside txn
int journal_apply (journal_t *self, MDB_txn *txn, bs_entry_t *entry, const void *data, size_t size);

//  Reads the log entry seq of a partition in txn; 0 or MDB_NOTFOUND
int journal_read (journal_t *self, MDB_txn *txn, const char *partition, uint64_t seq, MDB_val *entry);
//  The oldest sequence number still in the log of a partition (0: empty)
uint64_t journal_oldest (journal_t *self, MDB_txn *txn, const char *partition);

//  Retention: deletes a partition's oldest log entries, up to max of them,
//  so that at most keep remain (the entries a fetch may still need);
//  *trimmed_p gets how many went
int journal_trim (journal_t *self, MDB_txn *txn, const char *partition, uint64_t keep, size_t max,
                  size_t *trimmed_p);

//  Snapshots: a follower replaces (or merges) its copy of a partition's
//  databases.  journal_reset drops the named databases' contents and the
//  partition's log and marks the partition partial; journal_load_record writes one record without logging
//  it; journal_finish_snapshot sets the partition's seq and last epoch to
//  the snapshot's (the epoch of its last entry), raises its epoch to
//  that when lower, and marks it whole.
int journal_reset (journal_t *self, MDB_txn *txn, const char *partition, const char **dbs, bool drop);
int journal_load_record (journal_t *self, MDB_txn *txn, const char *db, MDB_val *key, MDB_val *value);
int journal_finish_snapshot (journal_t *self, MDB_txn *txn, const char *partition, uint64_t epoch, uint64_t seq);
//  Orphans.  journal_reset of a mergeable partition (drop false: an order
//  partition, whose snapshot merges into the shared order databases) keeps
//  the records put by the newest entries of its log, those at the epoch of
//  its last entry, as orphans in a local database (neither replicated nor
//  in the digest); journal_load_record takes any record the snapshot brings
//  off that list.  What is left once the snapshot is whole is a tail its
//  owner published and never committed: records on this replica alone.
//  The owner of the partition this node writes re-records them there
//  (journal_adopt_orphans), and replication takes them to every replica.
//  True when orphans wait and no snapshot is loading
bool journal_has_orphans (journal_t *self);
//  Puts up to max orphans through the journal inside txn, takes them off
//  the list and seals them as one entry of partition (which must be this
//  node's own, led by it); call it before any other write of txn.
//  *adopted_p gets how many
int journal_adopt_orphans (journal_t *self, MDB_txn *txn, const char *partition, size_t max, size_t *adopted_p);
//  The dbi of a replicated database by name (false when unknown)
bool journal_dbi (journal_t *self, const char *name, MDB_dbi *dbi_p, unsigned *flags_p);

//  Digest of the digest databases as 16 hex digits into hex[17]
void journal_digest (journal_t *self, char *hex);

#endif
