/*  journal - replicated writes: record, seal into log entries, apply  */
#include "journal.h"
#include "bs_alloc.h"
#include "bs_clock.h"
#include "bs_sizes.h"

#include <czmq.h>
#include <string.h>

#define MAX_DBS 16
//  A mergeable partition's log entries looked at for orphans when a
//  snapshot replaces its log: more than the newest batch its owner can
//  have published and not committed (nodes/node.c writes at most 512 a
//  transaction, one entry each)
#define ORPHAN_ENTRIES 1024
//  LMDB's default largest key
#define ORPHAN_KEY_MAX 511

typedef struct {
    char name [BS_DB_MAX + 1];
    MDB_dbi dbi;
    unsigned flags;
    bool digest;
} db_t;

typedef struct {
    char name [BS_ID_MAX + 1];
    //  epoch: the one this node writes (primary) or follows at, never
    //  lower than any entry's; last_epoch: the epoch of the entry at seq.
    //  Only (seq, last_epoch) names a history: a replica that was told a
    //  newer epoch than its last entry's still holds the old history.
    uint64_t epoch, seq, last_epoch;    //  committed
    uint64_t pending_epoch, pending_seq, pending_last_epoch;
    //  How much of the partition's history the store holds; stored: the
    //  meta knows the partition (a partition only ever held in memory is
    //  written as fresh with its first meta)
    journal_holding_t holding, pending_holding;
    bool stored, pending_stored;
} part_t;

typedef struct {
    uint8_t *data;
    size_t size;
    uint64_t seq;
    int part;
} sealed_t;

struct _journal_t {
    store_t *store;
    db_t dbs [MAX_DBS];
    int db_count;
    MDB_dbi log, meta;
    //  Orphans (journal_adopt_orphans): a local database, neither
    //  replicated nor in the digest; orphans counts its records (committed
    //  and in the open transaction); no database on a read-only store
    MDB_dbi orphans;
    bool has_orphan_db;
    size_t orphan_count, orphan_count_pending;
    part_t *parts;                      //  grows: one per partition held
    int part_count, part_cap;
    bs_entry_builder_t *builder;
    sealed_t *sealed;
    size_t sealed_count, sealed_cap;
    uint64_t digest, digest_pending;
    bool recompute_digest;
    uint64_t incarnation;               //  this store's identity; 0: unknown
};

//  --------------------------------------------------------------------------
//  Digest: XOR of a 64-bit hash per record, independent of order

static uint64_t
s_fnv (uint64_t h, const void *data, size_t size)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < size; i++) {
        h ^= p [i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t
s_record_hash (const db_t *db, const MDB_val *key, const MDB_val *value)
{
    uint64_t h = 1469598103934665603ULL;
    h = s_fnv (h, db->name, strlen (db->name) + 1);
    uint64_t n = key->mv_size;
    h = s_fnv (h, &n, sizeof n);
    h = s_fnv (h, key->mv_data, key->mv_size);
    h = s_fnv (h, value->mv_data, value->mv_size);
    //  splitmix64 finaliser spreads FNV's weak low bits
    h ^= h >> 30; h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27; h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static uint64_t
s_scan_digest (journal_t *self, MDB_txn *txn)
{
    uint64_t digest = 0;
    for (int i = 0; i < self->db_count; i++) {
        if (!self->dbs [i].digest)
            continue;
        MDB_cursor *cursor;
        if (mdb_cursor_open (txn, self->dbs [i].dbi, &cursor) != 0)
            continue;
        MDB_val key, value;
        int rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
        while (rc == 0) {
            digest ^= s_record_hash (&self->dbs [i], &key, &value);
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    return digest;
}

//  --------------------------------------------------------------------------
//  Partitions and their meta keys

static void
s_meta_key (char *buf, size_t size, const char *what, const char *partition)
{
    snprintf (buf, size, "%s:%s", what, partition);
}

static int
s_part_find (journal_t *self, const char *name)
{
    for (int i = 0; i < self->part_count; i++)
        if (strcmp (self->parts [i].name, name) == 0)
            return i;
    return -1;
}

static int
s_part_get (journal_t *self, const char *name)
{
    int i = s_part_find (self, name);
    if (i >= 0)
        return i;
    if (self->part_count == self->part_cap) {
        int cap = self->part_cap? self->part_cap * 2: 8;
        part_t *grown = realloc (self->parts, (size_t) cap * sizeof (part_t));
        if (!grown)
            abort ();
        self->parts = grown;
        self->part_cap = cap;
    }
    i = self->part_count++;
    memset (&self->parts [i], 0, sizeof (part_t));
    snprintf (self->parts [i].name, sizeof self->parts [i].name, "%s", name);
    //  Never held here: nothing proves this copy is any prefix of the
    //  partition's history until a primary's log or snapshot says so
    self->parts [i].holding = self->parts [i].pending_holding = JOURNAL_FRESH;
    return i;
}

static size_t
s_log_key (uint8_t *buf, const char *partition, uint64_t seq)
{
    size_t n = strlen (partition);
    memcpy (buf, partition, n);
    buf [n] = 0;
    for (int i = 0; i < 8; i++)
        buf [n + 1 + i] = (uint8_t) (seq >> (56 - 8 * i));
    return n + 9;
}

//  The epoch of the log entry at seq; fallback when the log lacks it (a
//  store written before last_epoch was kept)
static uint64_t
s_log_epoch (journal_t *self, MDB_txn *txn, const char *partition, uint64_t seq, uint64_t fallback)
{
    uint8_t kbuf [80];
    MDB_val key = { s_log_key (kbuf, partition, seq), kbuf }, value;
    uint64_t epoch = fallback;
    if (mdb_get (txn, self->log, &key, &value) == 0) {
        bs_entry_t *entry = bs_entry_parse (value.mv_data, value.mv_size);
        if (entry)
            epoch = bs_entry_epoch (entry);
        bs_entry_destroy (&entry);
    }
    return epoch;
}

//  A store created empty gets an identity of its own, so that the control
//  plane can tell a replica that lost its disk from the one it elected.
//  53 bits: it travels as a JSON number.
static void
s_new_incarnation (journal_t *self)
{
    uint64_t value = bs_random64 ();
    value &= (UINT64_C (1) << 53) - 1;
    if (value == 0)
        value = 1;
    MDB_txn *txn = store_begin (self->store, true);
    if (!txn)
        return;
    if (store_meta_put (txn, self->meta, "incarnation", value) == 0 && store_commit (self->store, txn) == 0)
        self->incarnation = value;
    else
        zsys_warning ("journal: cannot record the store's identity; the broker will not elect it");
}

journal_t *
journal_new (store_t *store)
{
    journal_t *self = calloc (1, sizeof (journal_t));
    if (!self)
        abort ();
    self->store = store;
    self->builder = bs_entry_builder_new ();
    if (!store_open_db (store, "log", 0, &self->log) || !store_open_db (store, "repl", 0, &self->meta)) {
        journal_destroy (&self);
        return NULL;
    }
    //  Learn the partitions this node holds
    MDB_txn *txn = store_begin (store, false);
    if (!txn) {
        journal_destroy (&self);
        return NULL;
    }
    MDB_cursor *cursor;
    if (mdb_cursor_open (txn, self->meta, &cursor) == 0) {
        MDB_val key, value;
        int rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
        while (rc == 0) {
            if (key.mv_size > 4 && memcmp (key.mv_data, "seq:", 4) == 0 && key.mv_size < 4 + BS_ID_MAX + 1) {
                char name [BS_ID_MAX + 1];
                memcpy (name, (char *) key.mv_data + 4, key.mv_size - 4);
                name [key.mv_size - 4] = 0;
                int p = s_part_get (self, name);
                if (p >= 0) {
                    char mk [80];
                    s_meta_key (mk, sizeof mk, "seq", name);
                    self->parts [p].seq = store_meta_get (txn, self->meta, mk);
                    s_meta_key (mk, sizeof mk, "epoch", name);
                    self->parts [p].epoch = store_meta_get (txn, self->meta, mk);
                    s_meta_key (mk, sizeof mk, "last_epoch", name);
                    self->parts [p].last_epoch = store_meta_get (txn, self->meta, mk);
                    if (self->parts [p].last_epoch == 0 && self->parts [p].seq > 0)
                        self->parts [p].last_epoch = s_log_epoch (self, txn, name, self->parts [p].seq,
                                                                  self->parts [p].epoch);
                    //  Stores written before holding was kept say nothing:
                    //  they held whole partitions or were loading a
                    //  snapshot, which their seq 0 then shows
                    s_meta_key (mk, sizeof mk, "holding", name);
                    uint64_t holding = store_meta_get (txn, self->meta, mk);
                    self->parts [p].holding = holding == JOURNAL_FRESH || holding == JOURNAL_PARTIAL?
                                              (journal_holding_t) holding: JOURNAL_WHOLE;
                    self->parts [p].stored = true;
                    self->parts [p].pending_seq = self->parts [p].seq;
                    self->parts [p].pending_epoch = self->parts [p].epoch;
                    self->parts [p].pending_last_epoch = self->parts [p].last_epoch;
                    self->parts [p].pending_holding = self->parts [p].holding;
                    self->parts [p].pending_stored = true;
                }
            }
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    self->incarnation = store_meta_get (txn, self->meta, "incarnation");
    mdb_txn_abort (txn);
    if (!store_read_only (store)) {
        if (!store_open_db (store, "orphans", 0, &self->orphans)) {
            journal_destroy (&self);
            return NULL;
        }
        self->has_orphan_db = true;
        txn = store_begin (store, false);
        MDB_stat stat;
        if (txn && mdb_stat (txn, self->orphans, &stat) == 0)
            self->orphan_count = self->orphan_count_pending = stat.ms_entries;
        if (txn)
            mdb_txn_abort (txn);
    }
    if (self->incarnation == 0 && !store_read_only (store))
        s_new_incarnation (self);
    return self;
}

void
journal_destroy (journal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    journal_t *self = *self_p;
    for (size_t i = 0; i < self->sealed_count; i++)
        free (self->sealed [i].data);
    free (self->sealed);
    free (self->parts);
    bs_entry_builder_destroy (&self->builder);
    free (self);
    *self_p = NULL;
}

store_t *journal_store (journal_t *self) { return self->store; }

bool
journal_db (journal_t *self, const char *name, unsigned flags, bool digest, MDB_dbi *dbi_p)
{
    if (self->db_count == MAX_DBS || !store_open_db (self->store, name, flags, dbi_p))
        return false;
    db_t *db = &self->dbs [self->db_count++];
    snprintf (db->name, sizeof db->name, "%s", name);
    db->dbi = *dbi_p;
    db->flags = flags;
    db->digest = digest;
    if (digest) {
        MDB_txn *txn = store_begin (self->store, false);
        if (txn) {
            self->digest = self->digest_pending = s_scan_digest (self, txn);
            mdb_txn_abort (txn);
        }
    }
    return true;
}

bool
journal_dbi (journal_t *self, const char *name, MDB_dbi *dbi_p, unsigned *flags_p)
{
    for (int i = 0; i < self->db_count; i++)
        if (strcmp (self->dbs [i].name, name) == 0) {
            *dbi_p = self->dbs [i].dbi;
            if (flags_p)
                *flags_p = self->dbs [i].flags;
            return true;
        }
    return false;
}

static db_t *
s_db_by_dbi (journal_t *self, MDB_dbi dbi)
{
    for (int i = 0; i < self->db_count; i++)
        if (self->dbs [i].dbi == dbi)
            return &self->dbs [i];
    return NULL;
}

static db_t *
s_db_by_name (journal_t *self, const char *name, size_t size)
{
    for (int i = 0; i < self->db_count; i++)
        if (strlen (self->dbs [i].name) == size && memcmp (self->dbs [i].name, name, size) == 0)
            return &self->dbs [i];
    return NULL;
}

uint64_t
journal_seq (journal_t *self, const char *partition)
{
    int p = s_part_find (self, partition);
    return p < 0? 0: self->parts [p].seq;
}

uint64_t
journal_epoch (journal_t *self, const char *partition)
{
    int p = s_part_find (self, partition);
    return p < 0? 0: self->parts [p].epoch;
}

uint64_t
journal_last_epoch (journal_t *self, const char *partition)
{
    int p = s_part_find (self, partition);
    return p < 0? 0: self->parts [p].last_epoch;
}

uint64_t journal_incarnation (journal_t *self) { return self->incarnation; }

journal_holding_t
journal_holding (journal_t *self, const char *partition)
{
    int p = s_part_find (self, partition);
    return p < 0? JOURNAL_FRESH: self->parts [p].holding;
}

uint64_t
journal_next_seq (journal_t *self, const char *partition)
{
    int p = s_part_find (self, partition);
    return p < 0? 1: self->parts [p].pending_seq + 1;
}

size_t journal_partitions (journal_t *self) { return (size_t) self->part_count; }
const char *journal_partition_at (journal_t *self, size_t index) {
    return (int) index < self->part_count? self->parts [index].name: NULL;
}

//  --------------------------------------------------------------------------
//  Writes

static void
s_clear_sealed (journal_t *self)
{
    for (size_t i = 0; i < self->sealed_count; i++)
        free (self->sealed [i].data);
    self->sealed_count = 0;
}

MDB_txn *
journal_begin (journal_t *self)
{
    s_clear_sealed (self);
    bs_entry_builder_clear (self->builder);
    return store_begin (self->store, true);
}

//  Applies one change, keeping the pending digest in step
static int
s_apply_put (journal_t *self, MDB_txn *txn, db_t *db, MDB_val *key, MDB_val *value)
{
    if (db->flags & MDB_DUPSORT) {
        int rc = mdb_put (txn, db->dbi, key, value, MDB_NODUPDATA);
        return rc == MDB_KEYEXIST? 0: rc;      //  already there: idempotent
    }
    if (db->digest) {
        MDB_val old;
        if (mdb_get (txn, db->dbi, key, &old) == 0)
            self->digest_pending ^= s_record_hash (db, key, &old);
        self->digest_pending ^= s_record_hash (db, key, value);
    }
    return mdb_put (txn, db->dbi, key, value, 0);
}

static int
s_apply_del (journal_t *self, MDB_txn *txn, db_t *db, MDB_val *key, MDB_val *value)
{
    if (db->digest) {
        MDB_val old;
        if (mdb_get (txn, db->dbi, key, &old) == 0)
            self->digest_pending ^= s_record_hash (db, key, &old);
    }
    int rc = mdb_del (txn, db->dbi, key, (db->flags & MDB_DUPSORT)? value: NULL);
    return rc == MDB_NOTFOUND? 0: rc;
}

int
journal_put (journal_t *self, MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *value)
{
    db_t *db = s_db_by_dbi (self, dbi);
    if (!db)
        return EINVAL;
    int rc = s_apply_put (self, txn, db, key, value);
    if (rc == 0)
        bs_entry_builder_put (self->builder, db->name, key->mv_data, key->mv_size, value->mv_data, value->mv_size);
    return rc;
}

int
journal_del (journal_t *self, MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *value)
{
    db_t *db = s_db_by_dbi (self, dbi);
    if (!db)
        return EINVAL;
    int rc = s_apply_del (self, txn, db, key, value);
    if (rc == 0)
        bs_entry_builder_del (self->builder, db->name, key->mv_data, key->mv_size,
                              value? value->mv_data: NULL, value? value->mv_size: 0);
    return rc;
}

static int
s_put_meta (journal_t *self, MDB_txn *txn, const char *what, const char *partition, uint64_t value)
{
    char key [80];
    int p = s_part_find (self, partition);
    if (p >= 0 && !self->parts [p].pending_stored && strcmp (what, "holding") != 0) {
        //  The partition's first meta: say with it how much is held, or a
        //  restart would take an empty copy for a whole one
        s_meta_key (key, sizeof key, "holding", partition);
        int rc = store_meta_put (txn, self->meta, key, self->parts [p].pending_holding);
        if (rc != 0)
            return rc;
        self->parts [p].pending_stored = true;
    }
    s_meta_key (key, sizeof key, what, partition);
    return store_meta_put (txn, self->meta, key, value);
}

static int
s_set_holding (journal_t *self, MDB_txn *txn, int p, journal_holding_t holding)
{
    if (self->parts [p].pending_holding == holding && self->parts [p].pending_stored)
        return 0;
    self->parts [p].pending_holding = holding;
    int rc = s_put_meta (self, txn, "holding", self->parts [p].name, holding);
    if (rc == 0)
        self->parts [p].pending_stored = true;
    return rc;
}

int
journal_set_whole (journal_t *self, MDB_txn *txn, const char *partition)
{
    int p = s_part_get (self, partition);
    if (p < 0)
        return ENOSPC;
    int rc = s_set_holding (self, txn, p, JOURNAL_WHOLE);
    //  A partition is known by its seq meta (journal_new)
    if (rc == 0)
        rc = s_put_meta (self, txn, "seq", partition, self->parts [p].pending_seq);
    return rc;
}

//  Appends an entry to the log and advances the partition
static int
s_append (journal_t *self, MDB_txn *txn, int p, uint64_t epoch, uint64_t seq, const void *data, size_t size)
{
    uint8_t kbuf [80];
    MDB_val key = { s_log_key (kbuf, self->parts [p].name, seq), kbuf };
    MDB_val value = { size, (void *) data };
    int rc = mdb_put (txn, self->log, &key, &value, 0);
    //  A fresh copy that gets the first entry holds the history from its
    //  beginning
    if (rc == 0 && seq == 1 && self->parts [p].pending_holding == JOURNAL_FRESH)
        rc = s_set_holding (self, txn, p, JOURNAL_WHOLE);
    if (rc == 0)
        rc = s_put_meta (self, txn, "seq", self->parts [p].name, seq);
    if (rc == 0 && epoch != self->parts [p].pending_last_epoch)
        rc = s_put_meta (self, txn, "last_epoch", self->parts [p].name, epoch);
    if (rc == 0) {
        self->parts [p].pending_seq = seq;
        self->parts [p].pending_last_epoch = epoch;
    }
    return rc;
}

int
journal_seal (journal_t *self, MDB_txn *txn, const char *partition, uint64_t *seq_p)
{
    *seq_p = 0;
    if (bs_entry_builder_changes (self->builder) == 0)
        return 0;
    int p = s_part_get (self, partition);
    if (p < 0)
        return ENOSPC;
    uint64_t seq = self->parts [p].pending_seq + 1;
    size_t size;
    uint8_t *data = bs_entry_builder_finish (self->builder, partition, self->parts [p].pending_epoch, seq, &size);
    bs_entry_builder_clear (self->builder);
    int rc = s_append (self, txn, p, self->parts [p].pending_epoch, seq, data, size);
    if (rc != 0) {
        free (data);
        return rc;
    }
    if (self->sealed_count == self->sealed_cap) {
        self->sealed_cap = self->sealed_cap? self->sealed_cap * 2: 64;
        self->sealed = realloc (self->sealed, self->sealed_cap * sizeof (sealed_t));
        if (!self->sealed)
            abort ();
    }
    self->sealed [self->sealed_count++] = (sealed_t) { data, size, seq, p };
    *seq_p = seq;
    return 0;
}

void
journal_unseal (journal_t *self)
{
    bs_entry_builder_clear (self->builder);
}

int
journal_set_epoch (journal_t *self, MDB_txn *txn, const char *partition, uint64_t epoch)
{
    int p = s_part_get (self, partition);
    if (p < 0)
        return ENOSPC;
    int rc = s_put_meta (self, txn, "epoch", partition, epoch);
    if (rc == 0)
        rc = s_put_meta (self, txn, "seq", partition, self->parts [p].pending_seq);
    if (rc == 0)
        self->parts [p].pending_epoch = epoch;
    return rc;
}

static void
s_revert (journal_t *self)
{
    for (int i = 0; i < self->part_count; i++) {
        self->parts [i].pending_seq = self->parts [i].seq;
        self->parts [i].pending_epoch = self->parts [i].epoch;
        self->parts [i].pending_last_epoch = self->parts [i].last_epoch;
        self->parts [i].pending_holding = self->parts [i].holding;
        self->parts [i].pending_stored = self->parts [i].stored;
    }
    self->digest_pending = self->digest;
    self->orphan_count_pending = self->orphan_count;
    self->recompute_digest = false;
    bs_entry_builder_clear (self->builder);
}

int
journal_commit (journal_t *self, MDB_txn *txn)
{
    int rc = store_commit (self->store, txn);
    if (rc != 0) {
        s_revert (self);
        s_clear_sealed (self);
        return rc;
    }
    for (int i = 0; i < self->part_count; i++) {
        self->parts [i].seq = self->parts [i].pending_seq;
        self->parts [i].epoch = self->parts [i].pending_epoch;
        self->parts [i].last_epoch = self->parts [i].pending_last_epoch;
        self->parts [i].holding = self->parts [i].pending_holding;
        self->parts [i].stored = self->parts [i].pending_stored;
    }
    self->digest = self->digest_pending;
    self->orphan_count = self->orphan_count_pending;
    if (self->recompute_digest) {
        self->recompute_digest = false;
        MDB_txn *read = store_begin (self->store, false);
        if (read) {
            self->digest = self->digest_pending = s_scan_digest (self, read);
            mdb_txn_abort (read);
        }
    }
    return 0;
}

void
journal_abort (journal_t *self, MDB_txn *txn)
{
    mdb_txn_abort (txn);
    s_revert (self);
    s_clear_sealed (self);
}

size_t journal_sealed (journal_t *self) { return self->sealed_count; }

const uint8_t *
journal_sealed_at (journal_t *self, size_t index, size_t *size_p, uint64_t *seq_p, const char **partition_p)
{
    if (index >= self->sealed_count)
        return NULL;
    sealed_t *s = &self->sealed [index];
    *size_p = s->size;
    *seq_p = s->seq;
    *partition_p = self->parts [s->part].name;
    return s->data;
}

//  --------------------------------------------------------------------------
//  Followers

#ifdef BS_MUTANT_FOLLOWER_SKIPS_PRICES
#include "bs_msg.h"
//  A deliberately broken variant for the mutation tests: true for a change
//  of a book's price, which this follower then leaves out (and acks)
static bool
s_mutant_price_change (db_t *db, MDB_txn *txn, MDB_val *key, MDB_val *value)
{
    MDB_val old;
    if (strcmp (db->name, "books") != 0 || mdb_get (txn, db->dbi, key, &old) != 0)
        return false;
    bs_err_t err;
    bs_msg_t *before = bs_msg_decode (old.mv_data, old.mv_size, &err, NULL, 0);
    bs_msg_t *after = bs_msg_decode (value->mv_data, value->mv_size, &err, NULL, 0);
    bool price = before && after && bs_msg_int (before, BS_FIELD_cost) != bs_msg_int (after, BS_FIELD_cost);
    bs_msg_destroy (&before);
    bs_msg_destroy (&after);
    return price;
}
#endif

int
journal_apply (journal_t *self, MDB_txn *txn, bs_entry_t *entry, const void *data, size_t size)
{
    int p = s_part_get (self, bs_entry_partition (entry));
    if (p < 0)
        return ENOSPC;
    for (size_t i = 0; i < bs_entry_changes (entry); i++) {
        bs_change_t change;
        if (!bs_entry_change (entry, i, &change))
            return EINVAL;
        db_t *db = s_db_by_name (self, change.db, change.db_size);
        if (!db)
            return EINVAL;
        MDB_val key = { change.key_size, (void *) change.key };
        MDB_val value = { change.value_size, (void *) change.value };
#ifdef BS_MUTANT_FOLLOWER_SKIPS_PRICES
        if (!change.del && s_mutant_price_change (db, txn, &key, &value))
            continue;
#endif
        int rc = change.del? s_apply_del (self, txn, db, &key, change.value? &value: NULL)
                           : s_apply_put (self, txn, db, &key, &value);
        if (rc != 0)
            return rc;
    }
    uint64_t epoch = bs_entry_epoch (entry);
    if (epoch > self->parts [p].pending_epoch) {
        int rc = s_put_meta (self, txn, "epoch", self->parts [p].name, epoch);
        if (rc != 0)
            return rc;
        self->parts [p].pending_epoch = epoch;
    }
    return s_append (self, txn, p, epoch, bs_entry_seq (entry), data, size);
}

int
journal_read (journal_t *self, MDB_txn *txn, const char *partition, uint64_t seq, MDB_val *entry)
{
    uint8_t kbuf [80];
    MDB_val key = { s_log_key (kbuf, partition, seq), kbuf };
    return mdb_get (txn, self->log, &key, entry);
}

uint64_t
journal_oldest (journal_t *self, MDB_txn *txn, const char *partition)
{
    uint8_t kbuf [80];
    size_t n = s_log_key (kbuf, partition, 0);
    MDB_val key = { n, kbuf }, value;
    MDB_cursor *cursor;
    uint64_t oldest = 0;
    if (mdb_cursor_open (txn, self->log, &cursor) != 0)
        return 0;
    if (mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE) == 0
    &&  key.mv_size == n && memcmp (key.mv_data, kbuf, n - 8) == 0) {
        const uint8_t *b = (const uint8_t *) key.mv_data + n - 8;
        for (int i = 0; i < 8; i++)
            oldest = (oldest << 8) | b [i];
    }
    mdb_cursor_close (cursor);
    return oldest;
}

//  Deletes a partition's log entries from the oldest up to seq last, at
//  most max of them; *deleted_p gets how many went
static int
s_log_delete (journal_t *self, MDB_txn *txn, const char *partition, uint64_t last, size_t max,
              size_t *deleted_p)
{
    *deleted_p = 0;
    uint8_t kbuf [80];
    size_t n = s_log_key (kbuf, partition, 0);
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->log, &cursor);
    if (rc != 0)
        return rc;
    //  The partition's oldest entry is the first at or after its seq 0
    while (*deleted_p < max) {
        MDB_val key = { n, kbuf }, value;
        if ((rc = mdb_cursor_get (cursor, &key, &value, MDB_SET_RANGE)) != 0)
            break;
        if (key.mv_size != n || memcmp (key.mv_data, kbuf, n - 8) != 0)
            break;
        uint64_t seq = 0;
        const uint8_t *b = (const uint8_t *) key.mv_data + n - 8;
        for (int i = 0; i < 8; i++)
            seq = (seq << 8) | b [i];
        if (seq > last)
            break;
        if ((rc = mdb_cursor_del (cursor, 0)) != 0)
            break;
        (*deleted_p)++;
    }
    mdb_cursor_close (cursor);
    return rc == MDB_NOTFOUND? 0: rc;
}

int
journal_trim (journal_t *self, MDB_txn *txn, const char *partition, uint64_t keep, size_t max, size_t *trimmed_p)
{
    *trimmed_p = 0;
    int p = s_part_find (self, partition);
    if (p < 0 || self->parts [p].pending_seq <= keep)
        return 0;
    //  The newest entry to go
    return s_log_delete (self, txn, partition, self->parts [p].pending_seq - keep, max, trimmed_p);
}

//  --------------------------------------------------------------------------
//  Orphans
//
//  An order partition's snapshot merges into the shared order databases
//  rather than replacing them (another partition may hold the same
//  record), so the records of a log tail that the snapshot drops (entries
//  its owner published and never committed before it died) would stay on
//  this replica alone.  They are kept as orphans instead, and the owner of
//  the partition this node writes re-records them (journal_adopt_orphans):
//  an order is a pure function of the catalog's grant and the request id,
//  so re-recording writes the very records any order node would, and every
//  replica converges on them.

//  An orphan's key: its database's name and the record's key and, in a
//  dupsort database, its duplicate (each duplicate is a record of its
//  own); 0 when that does not fit an LMDB key
static size_t
s_orphan_key (uint8_t *buf, const db_t *db, const MDB_val *key, const MDB_val *value)
{
    size_t name = strlen (db->name);
    bool dup = (db->flags & MDB_DUPSORT) != 0;
    size_t size = 1 + name + 2 + key->mv_size + (dup? value->mv_size: 0);
    if (size > ORPHAN_KEY_MAX || key->mv_size > UINT16_MAX)
        return 0;
    buf [0] = (uint8_t) name;
    memcpy (buf + 1, db->name, name);
    buf [1 + name] = (uint8_t) (key->mv_size >> 8);
    buf [2 + name] = (uint8_t) key->mv_size;
    memcpy (buf + 3 + name, key->mv_data, key->mv_size);
    if (dup)
        memcpy (buf + 3 + name + key->mv_size, value->mv_data, value->mv_size);
    return size;
}

//  Keeps the records the newest entries of partition p's log put, those at
//  the epoch of its last entry (a lost tail is the end of one owner's
//  life, all at its epoch), before a snapshot drops the log
static int
s_collect_orphans (journal_t *self, MDB_txn *txn, int p)
{
    part_t *part = &self->parts [p];
    int rc = 0;
    uint64_t seq = part->pending_seq;
    for (int n = 0; rc == 0 && seq > 0 && n < ORPHAN_ENTRIES; n++, seq--) {
        MDB_val found;
        if (journal_read (self, txn, part->name, seq, &found) != 0)
            break;              //  trimmed, or never held
        //  A copy: what LMDB returns lasts only until the next write
        uint8_t *data = bs_alloc (1, found.mv_size);
        memcpy (data, found.mv_data, found.mv_size);
        bs_entry_t *entry = bs_entry_parse (data, found.mv_size);
        bool same_life = entry && bs_entry_epoch (entry) == part->pending_last_epoch;
        for (size_t i = 0; same_life && rc == 0 && i < bs_entry_changes (entry); i++) {
            bs_change_t change;
            if (!bs_entry_change (entry, i, &change) || change.del)
                continue;       //  order partitions only ever put
            db_t *db = s_db_by_name (self, change.db, change.db_size);
            MDB_val key = { change.key_size, (void *) change.key };
            MDB_val value = { change.value_size, (void *) change.value };
            uint8_t kbuf [ORPHAN_KEY_MAX];
            size_t ksize = db? s_orphan_key (kbuf, db, &key, &value): 0;
            if (ksize == 0)
                continue;
            MDB_val okey = { ksize, kbuf };
            rc = mdb_put (txn, self->orphans, &okey, &value, MDB_NOOVERWRITE);
            if (rc == 0)
                self->orphan_count_pending++;
            else
            if (rc == MDB_KEYEXIST)
                rc = 0;
        }
        bs_entry_destroy (&entry);
        free (data);
        if (!same_life)
            break;
    }
    return rc;
}

//  A record a snapshot brought is no orphan: the source holds it
static int
s_unorphan (journal_t *self, MDB_txn *txn, const db_t *db, MDB_val *key, MDB_val *value)
{
    uint8_t kbuf [ORPHAN_KEY_MAX];
    size_t ksize = s_orphan_key (kbuf, db, key, value);
    if (ksize == 0)
        return 0;
    MDB_val okey = { ksize, kbuf };
    int rc = mdb_del (txn, self->orphans, &okey, NULL);
    if (rc == 0)
        self->orphan_count_pending--;
    return rc == MDB_NOTFOUND? 0: rc;
}

bool
journal_has_orphans (journal_t *self)
{
    if (self->orphan_count == 0)
        return false;
    //  A snapshot still loading may yet bring them
    for (int i = 0; i < self->part_count; i++)
        if (self->parts [i].holding == JOURNAL_PARTIAL)
            return false;
    return true;
}

int
journal_adopt_orphans (journal_t *self, MDB_txn *txn, const char *partition, size_t max, size_t *adopted_p)
{
    *adopted_p = 0;
    int rc = 0;
    while (self->has_orphan_db && self->orphan_count_pending > 0 && *adopted_p < max) {
        MDB_cursor *cursor;
        if ((rc = mdb_cursor_open (txn, self->orphans, &cursor)) != 0)
            break;
        MDB_val okey, value;
        rc = mdb_cursor_get (cursor, &okey, &value, MDB_FIRST);
        mdb_cursor_close (cursor);
        if (rc != 0)
            break;
        //  Copies: the writes below move LMDB's pages
        uint8_t kbuf [ORPHAN_KEY_MAX];
        size_t ksize = okey.mv_size < sizeof kbuf? okey.mv_size: sizeof kbuf;
        memcpy (kbuf, okey.mv_data, ksize);
        uint8_t *vbuf = bs_alloc (1, value.mv_size + 1);
        memcpy (vbuf, value.mv_data, value.mv_size);
        MDB_val copy = { value.mv_size, vbuf };
        size_t name = kbuf [0];
        db_t *db = ksize >= 3 + name? s_db_by_name (self, (const char *) kbuf + 1, name): NULL;
        size_t key_size = db? (size_t) kbuf [1 + name] << 8 | kbuf [2 + name]: 0;
        if (db && 3 + name + key_size <= ksize) {
            MDB_val key = { key_size, kbuf + 3 + name };
            rc = journal_put (self, txn, db->dbi, &key, &copy);
        }
        //  else: a database this node no longer has; nothing to re-record
        free (vbuf);
        MDB_val gone = { ksize, kbuf };
        if (rc == 0)
            rc = mdb_del (txn, self->orphans, &gone, NULL);
        if (rc != 0)
            break;
        self->orphan_count_pending--;
        (*adopted_p)++;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    uint64_t seq;
    if (rc == 0 && *adopted_p > 0)
        rc = journal_seal (self, txn, partition, &seq);
    return rc;
}

int
journal_reset (journal_t *self, MDB_txn *txn, const char *partition, const char **dbs, bool drop)
{
    int p = s_part_get (self, partition);
    if (p < 0)
        return ENOSPC;
    if (drop)
        for (int i = 0; dbs [i]; i++) {
            db_t *db = s_db_by_name (self, dbs [i], strlen (dbs [i]));
            if (!db)
                return EINVAL;
            int rc = mdb_drop (txn, db->dbi, 0);
            if (rc != 0)
                return rc;
        }
    //  Merged, not dropped: what the log's lost tail wrote would stay here
    //  alone (see Orphans)
    int rc = !drop && self->has_orphan_db? s_collect_orphans (self, txn, p): 0;
    //  Forget the partition's log: the snapshot replaces it
    size_t deleted;
    if (rc == 0)
        rc = s_log_delete (self, txn, partition, UINT64_MAX, SIZE_MAX, &deleted);
    //  Until the snapshot is finished the partition holds nothing whole: a
    //  node that dies meanwhile comes back empty and asks again, rather
    //  than believing its old seq over half-replaced data
    if (rc == 0)
        rc = s_put_meta (self, txn, "seq", partition, 0);
    //  ...and says so until the snapshot ends, across restarts and changes
    //  of source: a node holding part of a partition must never lead it
    if (rc == 0)
        rc = s_set_holding (self, txn, p, JOURNAL_PARTIAL);
    self->parts [p].pending_seq = 0;
    self->parts [p].pending_last_epoch = 0;
    self->recompute_digest = true;
    return rc;
}

int
journal_load_record (journal_t *self, MDB_txn *txn, const char *db_name, MDB_val *key, MDB_val *value)
{
    db_t *db = s_db_by_name (self, db_name, strlen (db_name));
    if (!db)
        return EINVAL;
    int rc = self->orphan_count_pending > 0? s_unorphan (self, txn, db, key, value): 0;
    return rc? rc: s_apply_put (self, txn, db, key, value);
}

int
journal_finish_snapshot (journal_t *self, MDB_txn *txn, const char *partition, uint64_t epoch, uint64_t seq)
{
    int p = s_part_get (self, partition);
    if (p < 0)
        return ENOSPC;
    //  The snapshot's epoch is its last entry's: with seq it names the
    //  source's history, which the next fetch must name alike.  The epoch
    //  followed only grows.
    int rc = s_put_meta (self, txn, "last_epoch", partition, epoch);
    if (rc == 0)
        rc = s_put_meta (self, txn, "seq", partition, seq);
    if (rc == 0)
        rc = s_set_holding (self, txn, p, JOURNAL_WHOLE);
    if (rc == 0 && epoch > self->parts [p].pending_epoch)
        rc = s_put_meta (self, txn, "epoch", partition, epoch);
    if (rc == 0) {
        if (epoch > self->parts [p].pending_epoch)
            self->parts [p].pending_epoch = epoch;
        self->parts [p].pending_last_epoch = epoch;
        self->parts [p].pending_seq = seq;
    }
    return rc;
}

void
journal_digest (journal_t *self, char *hex)
{
    snprintf (hex, 17, "%016llx", (unsigned long long) self->digest);
}
