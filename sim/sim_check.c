/*  sim_check - the invariants, each a small function.  The cheap ones run
 *  after every step; the state of each node is folded against the ledger
 *  every half virtual second and at the end.  */
#include "sim_cluster.h"
#include "sim_ctlplane.h"
#include "bs_alloc.h"
#include "bs_msg.h"
#include "election.h"

#include <string.h>

#define VARIANTS 4
#define META_KEY "/bookstore/sim/partitions/catalog"

typedef struct {
    uint64_t epoch [VARIANTS], hash [VARIANTS];
    int node [VARIANTS];        //  who held it first
    int count;
} seq_rec_t;

typedef struct {
    uint64_t epoch;
    char id [BS_ID_MAX + 1];
    uint64_t store;
} epoch_rec_t;

static struct {
    seq_rec_t *seqs;            //  by seq: the entries seen, by epoch
    size_t seq_cap;
    uint64_t cursor [SIM_NODES];        //  entries up to here were compared
    uint64_t cursor_incarnation [SIM_NODES];
    epoch_rec_t *epochs;        //  who was primary at each epoch
    size_t epoch_count, epoch_cap;
    size_t *acked;              //  ledger indices, in the order acknowledged
    size_t acked_count, acked_cap;
    //  The primary the control plane names, and how many acknowledged
    //  writes were found on it since it took the role
    char meta_text [1024];
    election_meta_t meta;
    int authority;              //  node index, -1: none
    uint64_t authority_epoch, authority_incarnation;
    size_t verified;
} C;


void
sim_check_reset (void)
{
    free (C.seqs);
    free (C.epochs);
    free (C.acked);
    memset (&C, 0, sizeof C);
    C.authority = -1;
}

static uint64_t
s_hash (const void *data, size_t size)
{
    const uint8_t *bytes = data;
    uint64_t hash = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ bytes [i]) * 0x100000001b3ull;
    return hash;
}

//  --------------------------------------------------------------------------
//  At most one primary per partition and epoch

static void
s_check_one_primary (int node)
{
    sim_node_t *n = sim_nodes [node];
    journal_t *journal = sim_node_journal (n);
    if (!journal || !repl_is_primary (sim_node_repl (n), CATALOG_PARTITION))
        return;
    uint64_t epoch = journal_epoch (journal, CATALOG_PARTITION);
    for (size_t i = 0; i < C.epoch_count; i++)
        if (C.epochs [i].epoch == epoch) {
            if (strcmp (C.epochs [i].id, sim_node_id (n)) != 0 || C.epochs [i].store != journal_incarnation (journal))
                sim_violation ("one_primary_per_epoch", "%s (store %llx) and %s (store %llx) are both primary at epoch %llu",
                               C.epochs [i].id, (unsigned long long) C.epochs [i].store, sim_node_id (n),
                               (unsigned long long) journal_incarnation (journal), (unsigned long long) epoch);
            return;
        }
    if (C.epoch_count == C.epoch_cap) {
        C.epoch_cap = C.epoch_cap? C.epoch_cap * 2: 16;
        C.epochs = bs_realloc (C.epochs, C.epoch_cap, sizeof (epoch_rec_t));
    }
    epoch_rec_t *rec = &C.epochs [C.epoch_count++];
    rec->epoch = epoch;
    snprintf (rec->id, sizeof rec->id, "%s", sim_node_id (n));
    rec->store = journal_incarnation (journal);
    sim_trace ("%s is primary at epoch %llu", rec->id, (unsigned long long) epoch);
}

//  Two versions of one (seq, epoch): a violation, whether or not another
//  replica still holds the first (a follower that does could not tell it
//  from the second by (seq, epoch))
static void
s_same_entry (seq_rec_t *rec, int v, int node, uint64_t seq, uint64_t epoch, uint64_t hash)
{
    (void) hash;
    sim_violation ("log_matching", "%s wrote seq %llu at epoch %llu again (first written by %s)",
                   sim_node_id (sim_nodes [node]), (unsigned long long) seq, (unsigned long long) epoch,
                   sim_node_id (sim_nodes [rec->node [v]]));
}

//  --------------------------------------------------------------------------
//  Replicas agree on every entry they both hold: the same seq written at
//  the same epoch is the same bytes everywhere (compared as each node's log
//  grows, so every entry is read once per node)

static void
s_check_log (int node)
{
    sim_node_t *n = sim_nodes [node];
    journal_t *journal = sim_node_journal (n);
    if (!journal)
        return;
    uint64_t seq = journal_seq (journal, CATALOG_PARTITION);
    if (sim_procs [node].incarnation != C.cursor_incarnation [node]) {
        //  Back from a crash: its whole log is compared again
        C.cursor_incarnation [node] = sim_procs [node].incarnation;
        C.cursor [node] = 0;
    }
    if (seq < C.cursor [node])
        C.cursor [node] = seq;
    if (seq <= C.cursor [node])
        return;
    MDB_txn *txn = store_begin (journal_store (journal), false);
    if (!txn)
        return;
    uint64_t from = C.cursor [node] + 1, oldest = journal_oldest (journal, txn, CATALOG_PARTITION);
    if (from < oldest)
        from = oldest;
    for (uint64_t s = from; s <= seq; s++) {
        MDB_val value;
        if (journal_read (journal, txn, CATALOG_PARTITION, s, &value) != 0)
            continue;
        bs_entry_t *entry = bs_entry_parse (value.mv_data, value.mv_size);
        if (!entry) {
            sim_violation ("log_matching", "%s holds an unreadable entry at seq %llu", sim_node_id (n),
                           (unsigned long long) s);
            continue;
        }
        uint64_t epoch = bs_entry_epoch (entry), hash = s_hash (value.mv_data, value.mv_size);
        if (bs_entry_seq (entry) != s)
            sim_violation ("log_matching", "%s's entry at seq %llu says seq %llu", sim_node_id (n),
                           (unsigned long long) s, (unsigned long long) bs_entry_seq (entry));
        bs_entry_destroy (&entry);
        if (s >= C.seq_cap) {
            size_t cap = C.seq_cap? C.seq_cap: 1024;
            while (cap <= s)
                cap *= 2;
            C.seqs = bs_realloc (C.seqs, cap, sizeof (seq_rec_t));
            memset (C.seqs + C.seq_cap, 0, (cap - C.seq_cap) * sizeof (seq_rec_t));
            C.seq_cap = cap;
        }
        seq_rec_t *rec = &C.seqs [s];
        bool known = false;
        for (int v = 0; v < rec->count; v++)
            if (rec->epoch [v] == epoch) {
                known = true;
                if (rec->hash [v] != hash)
                    s_same_entry (rec, v, node, s, epoch, hash);
            }
        if (!known && rec->count < VARIANTS) {
            rec->epoch [rec->count] = epoch;
            rec->node [rec->count] = node;
            rec->hash [rec->count++] = hash;
        }
    }
    mdb_txn_abort (txn);
    C.cursor [node] = seq;
}

//  --------------------------------------------------------------------------
//  No acknowledged write lost: each is in the applied table (rid -> reply,
//  written in the same transaction as its effect) of the primary the
//  control plane names, once that primary has taken the role

static bool
s_applied (journal_t *journal, MDB_txn *txn, const uint8_t *rid)
{
    MDB_dbi applied;
    unsigned flags;
    if (!journal_dbi (journal, "applied", &applied, &flags))
        return false;
    MDB_val key = { 16, (void *) rid }, value;
    return mdb_get (txn, applied, &key, &value) == 0;
}

static void
s_read_meta (void)
{
    const char *text = sim_etcd_get (META_KEY);
    if (!text) {
        C.meta_text [0] = 0;
        memset (&C.meta, 0, sizeof C.meta);
        return;
    }
    if (strcmp (text, C.meta_text) != 0) {
        snprintf (C.meta_text, sizeof C.meta_text, "%s", text);
        char reason [200];
        if (!election_meta_decode (text, &C.meta, reason, sizeof reason)) {
            sim_violation ("well_formed", "the control plane holds a map that does not decode: %s", reason);
            memset (&C.meta, 0, sizeof C.meta);
        }
    }
}

bool
sim_check_insync_besides (const char *id)
{
    s_read_meta ();
    for (size_t i = 0; i < C.meta.insync_count; i++)
        for (int node = 0; node < SIM_NODES; node++) {
            journal_t *journal = sim_node_journal (sim_nodes [node]);
            if (strcmp (C.meta.insync [i], id) != 0 && strcmp (C.meta.insync [i], sim_node_id (sim_nodes [node])) == 0
            &&  journal && journal_holding (journal, CATALOG_PARTITION) == JOURNAL_WHOLE
            &&  journal_seq (journal, CATALOG_PARTITION) > 0)
                return true;
        }
    return false;
}

static int
s_authority (void)
{
    s_read_meta ();
    if (!C.meta.epoch)
        return -1;
    for (int i = 0; i < SIM_NODES; i++) {
        journal_t *journal = sim_node_journal (sim_nodes [i]);
        if (journal && strcmp (sim_node_id (sim_nodes [i]), C.meta.primary) == 0
        &&  repl_is_primary (sim_node_repl (sim_nodes [i]), CATALOG_PARTITION)
        &&  journal_epoch (journal, CATALOG_PARTITION) == C.meta.epoch)
            return i;
    }
    return -1;
}

static void
s_check_acked_on_primary (void)
{
    int node = s_authority ();
    if (node < 0)
        return;
    if (node != C.authority || C.meta.epoch != C.authority_epoch
    ||  sim_procs [node].incarnation != C.authority_incarnation) {
        C.authority = node;
        C.authority_epoch = C.meta.epoch;
        C.authority_incarnation = sim_procs [node].incarnation;
        C.verified = 0;
    }
    if (C.verified == C.acked_count)
        return;
    journal_t *journal = sim_node_journal (sim_nodes [node]);
    MDB_txn *txn = store_begin (journal_store (journal), false);
    if (!txn)
        return;
    for (; C.verified < C.acked_count; C.verified++) {
        sim_write_t *w = sim_ledger_at (C.acked [C.verified]);
        if (!s_applied (journal, txn, w->rid)) {
            sim_violation ("no_acked_write_lost", "write #%zu (%s item %lld), acknowledged, is not on %s, primary at epoch %llu",
                           C.acked [C.verified], bs_op_name ((bs_op_t) w->op), (long long) w->item,
                           sim_node_id (sim_nodes [node]), (unsigned long long) C.meta.epoch);
            break;      //  the first says it; the run ends
        }
    }
    mdb_txn_abort (txn);
}

void
sim_check_acked (size_t index)
{
    if (C.acked_count == C.acked_cap) {
        C.acked_cap = C.acked_cap? C.acked_cap * 2: 256;
        C.acked = bs_realloc (C.acked, C.acked_cap, sizeof (size_t));
    }
    C.acked [C.acked_count++] = index;
}

void
sim_check_step (void)
{
    for (int i = 0; i < SIM_NODES; i++) {
        s_check_one_primary (i);
        s_check_log (i);
    }
    s_check_acked_on_primary ();
}

//  --------------------------------------------------------------------------
//  Each request id takes effect at most once, and stock never goes below
//  zero: a node's stock of each book is what the writes its applied table
//  records make of it (a write applied twice, or applied without its
//  record, shows as a difference)

static void
s_fold (int node, bool all_acked)
{
    sim_node_t *n = sim_nodes [node];
    journal_t *journal = sim_node_journal (n);
    if (!journal || journal_holding (journal, CATALOG_PARTITION) != JOURNAL_WHOLE)
        return;     //  down, or loading a snapshot: its tables are partial
    MDB_dbi applied, books;
    unsigned flags;
    if (!journal_dbi (journal, "applied", &applied, &flags) || !journal_dbi (journal, "books", &books, &flags))
        return;
    MDB_txn *txn = store_begin (journal_store (journal), false);
    if (!txn)
        return;
    int64_t base [SIM_ITEMS + 1] = { 0 }, delta [SIM_ITEMS + 1] = { 0 };
    bool added [SIM_ITEMS + 1] = { false };
    MDB_cursor *cursor;
    MDB_val key, value;
    if (mdb_cursor_open (txn, applied, &cursor) == 0) {
        int rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
        for (; rc == 0; rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT)) {
            sim_write_t *w = key.mv_size == 16? sim_ledger_find (key.mv_data): NULL;
            if (!w) {
                sim_violation ("at_most_once", "%s applied a write no client made", sim_node_id (n));
                continue;
            }
            bs_err_t err;
            bs_msg_t *reply = bs_msg_decode (value.mv_data, value.mv_size, &err, NULL, 0);
            bool ok = reply && bs_msg_int (reply, BS_FIELD_ok);
            bs_msg_destroy (&reply);
            if (!ok || w->item < 1 || w->item > SIM_ITEMS)
                continue;
            if (w->op == BS_OP_add_book) {
                if (added [w->item])
                    sim_violation ("at_most_once", "%s added item %lld twice", sim_node_id (n), (long long) w->item);
                added [w->item] = true;
                base [w->item] = w->amount;
            }
            else
            if (w->op == BS_OP_restock)
                delta [w->item] += w->amount;
            else
            if (w->op == BS_OP_decrement)
                delta [w->item] -= 1;
        }
        mdb_cursor_close (cursor);
    }
    for (int64_t item = 1; item <= SIM_ITEMS; item++) {
        uint8_t kbuf [4];
        store_key_u32 (kbuf, (uint32_t) item);
        key = (MDB_val) { 4, kbuf };
        bs_msg_t *book = NULL;
        if (mdb_get (txn, books, &key, &value) == 0) {
            bs_err_t err;
            book = bs_msg_decode (value.mv_data, value.mv_size, &err, NULL, 0);
        }
        if (!book != !added [item])
            sim_violation ("at_most_once", "%s %s item %lld but %s its add_book", sim_node_id (n),
                           book? "holds": "lacks", (long long) item, book? "did not apply": "applied");
        if (book) {
            int64_t stock = bs_msg_int (book, BS_FIELD_stock);
            if (stock < 0)
                sim_violation ("no_oversell", "%s holds item %lld at stock %lld", sim_node_id (n), (long long) item,
                               (long long) stock);
            if (stock != base [item] + delta [item])
                sim_violation ("at_most_once", "%s holds item %lld at stock %lld, its applied writes make %lld",
                               sim_node_id (n), (long long) item, (long long) stock,
                               (long long) (base [item] + delta [item]));
        }
        bs_msg_destroy (&book);
    }
    //  Once quiet and caught up: every acknowledged write is here too
    if (all_acked)
        for (size_t i = 0; i < C.acked_count; i++) {
            sim_write_t *w = sim_ledger_at (C.acked [i]);
            if (!s_applied (journal, txn, w->rid))
                sim_violation ("no_acked_write_lost", "write #%zu (%s item %lld), acknowledged, is not on %s, caught up",
                               C.acked [i], bs_op_name ((bs_op_t) w->op), (long long) w->item, sim_node_id (n));
        }
    mdb_txn_abort (txn);
}

void
sim_check_full (bool quiet)
{
    for (int i = 0; i < SIM_NODES; i++)
        s_fold (i, quiet);
}

//  --------------------------------------------------------------------------
//  Liveness: once faults stop, every replica holds what the primary holds
//  and says it has caught up

bool
sim_check_converged (bool report)
{
    int primary = s_authority ();
    if (primary < 0) {
        if (report)
            sim_trace ("not converged: no primary has taken the role the control plane gives (%s, epoch %llu)",
                       C.meta.primary, (unsigned long long) C.meta.epoch);
        return false;
    }
    journal_t *pj = sim_node_journal (sim_nodes [primary]);
    char pd [17];
    journal_digest (pj, pd);
    for (int i = 0; i < SIM_NODES; i++) {
        journal_t *journal = sim_node_journal (sim_nodes [i]);
        if (!journal) {
            if (report)
                sim_trace ("not converged: %s is down", sim_node_id (sim_nodes [i]));
            return false;
        }
        char digest [17];
        journal_digest (journal, digest);
        if (journal_seq (journal, CATALOG_PARTITION) != journal_seq (pj, CATALOG_PARTITION)
        ||  strcmp (digest, pd) != 0 || !repl_caught_up (sim_node_repl (sim_nodes [i]))) {
            if (report)
                sim_trace ("not converged: %s at seq %llu (digest %s, %s), primary %s at %llu (digest %s)",
                           sim_node_id (sim_nodes [i]), (unsigned long long) journal_seq (journal, CATALOG_PARTITION),
                           digest, repl_caught_up (sim_node_repl (sim_nodes [i]))? "caught up": "not caught up",
                           sim_node_id (sim_nodes [primary]), (unsigned long long) journal_seq (pj, CATALOG_PARTITION), pd);
            return false;
        }
    }
    return true;
}
