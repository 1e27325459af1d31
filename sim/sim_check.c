/*  sim_check - the invariants, each a small function.  The cheap ones run
 *  after every step; the state of each node is folded against the ledger
 *  every half virtual second and at the end.  */
#include "sim_cluster.h"
#include "sim_ctlplane.h"
#include "bs_alloc.h"
#include "bs_msg.h"
#include "election.h"
#include "node_status.h"

#include <string.h>

#define VARIANTS 4
#define PARTS_MAX 8             //  the catalog, each order node's, one more per lost order disk
#define META_KEY "/bookstore/sim/partitions/catalog"

typedef struct {
    uint64_t epoch [VARIANTS], hash [VARIANTS];
    int node [VARIANTS];        //  who held it first
    int count;
} seq_rec_t;

//  One partition's entries, by seq
typedef struct {
    char name [BS_ID_MAX + 1];
    seq_rec_t *seqs;
    size_t cap;
} plog_t;

typedef struct {
    char partition [BS_ID_MAX + 1];
    uint64_t epoch;
    char id [BS_ID_MAX + 1];
    uint64_t store;
} epoch_rec_t;

static struct {
    plog_t plogs [PARTS_MAX];   //  by partition, by seq: the entries seen, by epoch
    int plog_count;
    uint64_t cursor [SIM_ALL_NODES][PARTS_MAX];     //  entries up to here were compared
    uint64_t cursor_incarnation [SIM_ALL_NODES];
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
    for (int i = 0; i < C.plog_count; i++)
        free (C.plogs [i].seqs);
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
    const char *partition = sim_node_partition (n);
    if (!journal || !repl_is_primary (sim_node_repl (n), partition))
        return;
    uint64_t epoch = journal_epoch (journal, partition);
    for (size_t i = 0; i < C.epoch_count; i++)
        if (C.epochs [i].epoch == epoch && strcmp (C.epochs [i].partition, partition) == 0) {
            if (strcmp (C.epochs [i].id, sim_node_id (n)) != 0 || C.epochs [i].store != journal_incarnation (journal))
                sim_violation ("one_primary_per_epoch", "%s (store %llx) and %s (store %llx) are both primary of %s at epoch %llu",
                               C.epochs [i].id, (unsigned long long) C.epochs [i].store, sim_node_id (n),
                               (unsigned long long) journal_incarnation (journal), partition, (unsigned long long) epoch);
            return;
        }
    if (C.epoch_count == C.epoch_cap) {
        C.epoch_cap = C.epoch_cap? C.epoch_cap * 2: 16;
        C.epochs = bs_realloc (C.epochs, C.epoch_cap, sizeof (epoch_rec_t));
    }
    epoch_rec_t *rec = &C.epochs [C.epoch_count++];
    snprintf (rec->partition, sizeof rec->partition, "%s", partition);
    rec->epoch = epoch;
    snprintf (rec->id, sizeof rec->id, "%s", sim_node_id (n));
    rec->store = journal_incarnation (journal);
    sim_trace ("%s is primary of %s at epoch %llu", rec->id, partition, (unsigned long long) epoch);
}

//  Two versions of one (seq, epoch): a violation, whether or not another
//  replica still holds the first (a follower that does could not tell it
//  from the second by (seq, epoch))
static void
s_same_entry (const char *partition, seq_rec_t *rec, int v, int node, uint64_t seq, uint64_t epoch)
{
    sim_violation ("log_matching", "%s holds another %s seq %llu at epoch %llu than %s does (or did)",
                   sim_node_id (sim_nodes [node]), partition, (unsigned long long) seq, (unsigned long long) epoch,
                   sim_node_id (sim_nodes [rec->node [v]]));
}

//  The entries seen of a partition (NULL past PARTS_MAX partitions: not compared)
static plog_t *
s_plog (const char *partition, int *index_p)
{
    for (int i = 0; i < C.plog_count; i++)
        if (strcmp (C.plogs [i].name, partition) == 0) {
            *index_p = i;
            return &C.plogs [i];
        }
    if (C.plog_count == PARTS_MAX)
        return NULL;
    *index_p = C.plog_count;
    plog_t *plog = &C.plogs [C.plog_count++];
    memset (plog, 0, sizeof *plog);
    snprintf (plog->name, sizeof plog->name, "%s", partition);
    return plog;
}

//  --------------------------------------------------------------------------
//  Replicas agree on every entry they both hold: the same seq written at
//  the same epoch is the same bytes everywhere (compared as each node's log
//  grows, so every entry is read once per node)

static void
s_check_log_of (int node, journal_t *journal, const char *partition)
{
    sim_node_t *n = sim_nodes [node];
    int p;
    plog_t *plog = s_plog (partition, &p);
    if (!plog)
        return;
    uint64_t seq = journal_seq (journal, partition), *cursor = &C.cursor [node][p];
    if (seq < *cursor)
        *cursor = seq;
    if (seq <= *cursor)
        return;
    MDB_txn *txn = store_begin (journal_store (journal), false);
    if (!txn)
        return;
    uint64_t from = *cursor + 1, oldest = journal_oldest (journal, txn, partition);
    if (from < oldest)
        from = oldest;
    for (uint64_t s = from; s <= seq; s++) {
        MDB_val value;
        if (journal_read (journal, txn, partition, s, &value) != 0)
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
        if (s >= plog->cap) {
            size_t cap = plog->cap? plog->cap: 1024;
            while (cap <= s)
                cap *= 2;
            plog->seqs = bs_realloc (plog->seqs, cap, sizeof (seq_rec_t));
            memset (plog->seqs + plog->cap, 0, (cap - plog->cap) * sizeof (seq_rec_t));
            plog->cap = cap;
        }
        seq_rec_t *rec = &plog->seqs [s];
        bool known = false;
        for (int v = 0; v < rec->count; v++)
            if (rec->epoch [v] == epoch) {
                known = true;
                if (rec->hash [v] != hash)
                    s_same_entry (partition, rec, v, node, s, epoch);
            }
        if (!known && rec->count < VARIANTS) {
            rec->epoch [rec->count] = epoch;
            rec->node [rec->count] = node;
            rec->hash [rec->count++] = hash;
        }
    }
    mdb_txn_abort (txn);
    *cursor = seq;
}

static void
s_check_log (int node)
{
    journal_t *journal = sim_node_journal (sim_nodes [node]);
    if (!journal)
        return;
    if (sim_procs [node].incarnation != C.cursor_incarnation [node]) {
        //  Back from a crash: its whole log is compared again
        C.cursor_incarnation [node] = sim_procs [node].incarnation;
        memset (C.cursor [node], 0, sizeof C.cursor [node]);
    }
    if (!sim_node_is_order (sim_nodes [node]))
        s_check_log_of (node, journal, CATALOG_PARTITION);
    else
        for (size_t i = 0; i < journal_partitions (journal); i++)
            s_check_log_of (node, journal, journal_partition_at (journal, i));
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
    for (int i = 0; i < SIM_ALL_NODES; i++) {
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
            if (w->op == BS_OP_decrement || w->op == BS_OP_buy)
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

//  --------------------------------------------------------------------------
//  Order nodes.  An order is a pure function of the catalog's grant and the
//  buy's rid, so every order node that holds it holds the same records

static bs_msg_t *
s_get_msg (MDB_txn *txn, MDB_dbi dbi, const void *key_data, size_t key_size)
{
    MDB_val key = { key_size, (void *) key_data }, value;
    if (mdb_get (txn, dbi, &key, &value) != 0)
        return NULL;
    bs_err_t err;
    return bs_msg_decode (value.mv_data, value.mv_size, &err, NULL, 0);
}

typedef struct {
    MDB_dbi orders, by_request, by_item;
} order_dbs_t;

static bool
s_order_dbs (journal_t *journal, order_dbs_t *dbs)
{
    unsigned flags;
    return journal_dbi (journal, "orders", &dbs->orders, &flags)
        && journal_dbi (journal, "by_request", &dbs->by_request, &flags)
        && journal_dbi (journal, "by_item", &dbs->by_item, &flags);
}

//  At most once, as granted: every order on an order node is a buy a client
//  made, whose decrement the catalog granted (its applied table holds the
//  rid's reply on the primary the control plane names), with exactly the
//  grant's content, and with its by_request and by_item records
static void
s_check_grants (int node)
{
    sim_node_t *n = sim_nodes [node];
    journal_t *journal = sim_node_journal (n);
    order_dbs_t dbs;
    if (!journal || !s_order_dbs (journal, &dbs))
        return;
    int authority = s_authority ();
    journal_t *cj = authority >= 0? sim_node_journal (sim_nodes [authority]): NULL;
    MDB_dbi applied = 0;
    unsigned flags;
    if (cj && !journal_dbi (cj, "applied", &applied, &flags))
        cj = NULL;
    MDB_txn *txn = store_begin (journal_store (journal), false);
    MDB_txn *ctxn = cj? store_begin (journal_store (cj), false): NULL;
    MDB_cursor *cursor;
    if (!txn || mdb_cursor_open (txn, dbs.orders, &cursor) != 0) {
        if (txn)
            mdb_txn_abort (txn);
        if (ctxn)
            mdb_txn_abort (ctxn);
        return;
    }
    MDB_val key, value;
    int rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
    for (; rc == 0 && !sim_violated; rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT)) {
        bs_err_t err;
        bs_msg_t *order = bs_msg_decode (value.mv_data, value.mv_size, &err, NULL, 0);
        size_t rid_size = 0;
        const uint8_t *rid = order? bs_msg_bin (order, BS_FIELD_rid, &rid_size): NULL;
        sim_write_t *w = rid && rid_size == 16? sim_ledger_find (rid): NULL;
        const char *order_id = order? bs_msg_str (order, BS_FIELD_order_id): "";
        char expected [ORDERS_ID_SIZE] = "";
        if (rid && rid_size == BS_RID_SIZE)
            orders_id_for (rid, expected);
        if (!w || w->op != BS_OP_buy || bs_msg_int (order, BS_FIELD_item) != w->item
        ||  strcmp (order_id, expected) != 0 || key.mv_size != strlen (order_id)
        ||  memcmp (key.mv_data, order_id, key.mv_size) != 0)
            sim_violation ("at_most_once", "%s holds order %.*s that no client's buy makes", sim_node_id (n),
                           (int) (key.mv_size < 40? key.mv_size: 40), (const char *) key.mv_data);
        else {
            //  Its by_request and by_item records
            bs_msg_t *reply = s_get_msg (txn, dbs.by_request, rid, BS_RID_SIZE);
            MDB_val ikey, ival = { strlen (order_id), (void *) order_id };
            uint8_t ibuf [4];
            store_key_u32 (ibuf, (uint32_t) w->item);
            ikey = (MDB_val) { 4, ibuf };
            MDB_cursor *items;
            bool indexed = mdb_cursor_open (txn, dbs.by_item, &items) == 0;
            if (indexed) {
                indexed = mdb_cursor_get (items, &ikey, &ival, MDB_GET_BOTH) == 0;
                mdb_cursor_close (items);
            }
            if (!reply || !bs_msg_int (reply, BS_FIELD_ok) || strcmp (bs_msg_str (reply, BS_FIELD_order_id), order_id) != 0
            ||  !indexed)
                sim_violation ("at_most_once", "%s holds order %s of buy #%llu without its %s record", sim_node_id (n),
                               order_id, (unsigned long long) (w - sim_ledger_at (0)), indexed? "by_request": "by_item");
            bs_msg_destroy (&reply);
            //  The catalog's grant, as the catalog recorded it
            bs_msg_t *grant = ctxn? s_get_msg (ctxn, applied, rid, BS_RID_SIZE): NULL;
            if (ctxn && (!grant || !bs_msg_int (grant, BS_FIELD_ok)))
                sim_violation ("at_most_once", "%s holds order %s of buy #%llu, which the catalog (%s) never granted",
                               sim_node_id (n), order_id, (unsigned long long) (w - sim_ledger_at (0)),
                               sim_node_id (sim_nodes [authority]));
            else
            if (grant && (strcmp (bs_msg_str (grant, BS_FIELD_order_id), order_id) != 0
                      ||  bs_msg_int (grant, BS_FIELD_item) != bs_msg_int (order, BS_FIELD_item)
                      ||  bs_msg_int (grant, BS_FIELD_cost) != bs_msg_int (order, BS_FIELD_cost)))
                sim_violation ("at_most_once", "%s holds order %s (item %lld, cost %lld) but the catalog granted %s (item %lld, cost %lld)",
                               sim_node_id (n), order_id, (long long) bs_msg_int (order, BS_FIELD_item),
                               (long long) bs_msg_int (order, BS_FIELD_cost), bs_msg_str (grant, BS_FIELD_order_id),
                               (long long) bs_msg_int (grant, BS_FIELD_item), (long long) bs_msg_int (grant, BS_FIELD_cost));
            bs_msg_destroy (&grant);
        }
        bs_msg_destroy (&order);
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    if (ctxn)
        mdb_txn_abort (ctxn);
}

//  No acknowledged buy lost: once quiet, each acknowledged buy's order and
//  by_request record are on every order node (all up and caught up then)
static void
s_check_acked_buys (int node)
{
    sim_node_t *n = sim_nodes [node];
    journal_t *journal = sim_node_journal (n);
    order_dbs_t dbs;
    if (!journal || !s_order_dbs (journal, &dbs))
        return;
    MDB_txn *txn = store_begin (journal_store (journal), false);
    if (!txn)
        return;
    for (size_t i = 0; i < C.acked_count && !sim_violated; i++) {
        sim_write_t *w = sim_ledger_at (C.acked [i]);
        if (w->op != BS_OP_buy)
            continue;
        char order_id [ORDERS_ID_SIZE];
        orders_id_for (w->rid, order_id);
        bs_msg_t *reply = s_get_msg (txn, dbs.by_request, w->rid, BS_RID_SIZE);
        bs_msg_t *order = s_get_msg (txn, dbs.orders, order_id, strlen (order_id));
        if (!reply || !order)
            sim_violation ("no_acked_buy_lost", "buy #%zu (item %lld, order %s), acknowledged, has no %s on %s, caught up",
                           C.acked [i], (long long) w->item, order_id, reply? "order": "by_request record", sim_node_id (n));
        bs_msg_destroy (&reply);
        bs_msg_destroy (&order);
    }
    mdb_txn_abort (txn);
}

//  A digest of the order databases: an order-independent sum of a hash of
//  every record, per database
static void
s_order_digest (journal_t *journal, MDB_txn *txn, const order_dbs_t *dbs, uint64_t digest [3], size_t count [3])
{
    MDB_dbi dbi [3] = { dbs->orders, dbs->by_request, dbs->by_item };
    for (int d = 0; d < 3; d++) {
        digest [d] = 0;
        count [d] = 0;
        MDB_cursor *cursor;
        if (mdb_cursor_open (txn, dbi [d], &cursor) != 0)
            continue;
        MDB_val key, value;
        int rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
        for (; rc == 0; rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT)) {
            digest [d] += s_hash (key.mv_data, key.mv_size) * 31 + s_hash (value.mv_data, value.mv_size);
            count [d]++;
        }
        mdb_cursor_close (cursor);
    }
    (void) journal;
}

//  A record one node holds and the other lacks, or holds otherwise, said
//  as a sentence (for a digest that differs)
static void
s_order_difference (int a, int b, MDB_txn *ta, MDB_txn *tb, MDB_dbi da, MDB_dbi db, const char *name, char *out, size_t size)
{
    MDB_cursor *cursor;
    if (mdb_cursor_open (ta, da, &cursor) != 0)
        return;
    MDB_val key, value;
    int rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
    for (; rc == 0 && !*out; rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT)) {
        MDB_val other_key = key, other = value;
        MDB_cursor *oc;
        bool found = false;
        if (mdb_cursor_open (tb, db, &oc) == 0) {
            found = mdb_cursor_get (oc, &other_key, &other, MDB_GET_BOTH) == 0;
            mdb_cursor_close (oc);
        }
        if (!found) {
            char shown [80] = "";
            for (size_t i = 0; i < key.mv_size && i < 24; i++)
                snprintf (shown + strlen (shown), sizeof shown - strlen (shown), "%c",
                          ((const char *) key.mv_data) [i] >= 32 && ((const char *) key.mv_data) [i] < 127?
                          ((const char *) key.mv_data) [i]: '.');
            snprintf (out, size, "%s holds a record of %s (key %s) that %s lacks", sim_node_id (sim_nodes [a]), name,
                      shown, sim_node_id (sim_nodes [b]));
        }
    }
    mdb_cursor_close (cursor);
}

//  Once quiet: the order databases are equal on every order node
static void
s_check_orders_converged (void)
{
    journal_t *first = NULL;
    uint64_t digest0 [3] = { 0 };
    size_t count0 [3] = { 0 };
    int node0 = -1;
    for (int node = SIM_NODES; node < SIM_ALL_NODES && !sim_violated; node++) {
        journal_t *journal = sim_node_journal (sim_nodes [node]);
        order_dbs_t dbs;
        if (!journal || !s_order_dbs (journal, &dbs))
            continue;
        MDB_txn *txn = store_begin (journal_store (journal), false);
        if (!txn)
            continue;
        uint64_t digest [3];
        size_t count [3];
        s_order_digest (journal, txn, &dbs, digest, count);
        if (!first) {
            first = journal;
            node0 = node;
            memcpy (digest0, digest, sizeof digest0);
            memcpy (count0, count, sizeof count0);
        }
        else
        if (memcmp (digest, digest0, sizeof digest) != 0) {
            static const char *names [3] = { "orders", "by_request", "by_item" };
            order_dbs_t dbs0;
            MDB_txn *txn0 = s_order_dbs (first, &dbs0)? store_begin (journal_store (first), false): NULL;
            char why [200] = "";
            MDB_dbi d0 [3] = { dbs0.orders, dbs0.by_request, dbs0.by_item }, d1 [3] = { dbs.orders, dbs.by_request, dbs.by_item };
            for (int d = 0; d < 3 && txn0 && !*why; d++) {
                s_order_difference (node0, node, txn0, txn, d0 [d], d1 [d], names [d], why, sizeof why);
                s_order_difference (node, node0, txn, txn0, d1 [d], d0 [d], names [d], why, sizeof why);
            }
            if (txn0)
                mdb_txn_abort (txn0);
            sim_violation ("orders_converge", "the order databases differ, caught up and quiet: %s has %zu/%zu/%zu records, %s %zu/%zu/%zu (orders/by_request/by_item): %s",
                           sim_node_id (sim_nodes [node0]), count0 [0], count0 [1], count0 [2], sim_node_id (sim_nodes [node]),
                           count [0], count [1], count [2], *why? why: "the same keys, other values");
        }
        mdb_txn_abort (txn);
    }
}

void
sim_check_full (bool quiet)
{
    for (int i = 0; i < SIM_NODES; i++)
        s_fold (i, quiet);
    for (int i = SIM_NODES; i < SIM_ALL_NODES && !sim_violated; i++)
        s_check_grants (i);
    if (quiet && !sim_violated)
        s_check_orders_converged ();
    for (int i = SIM_NODES; i < SIM_ALL_NODES && quiet && !sim_violated; i++)
        s_check_acked_buys (i);
}
//  --------------------------------------------------------------------------
//  Liveness: once faults stop, every replica holds what the primary holds
//  and says it has caught up

//  What a node reports of each partition it holds (its node_status)
static void
s_trace_partitions (int node)
{
    sim_node_t *n = sim_nodes [node];
    size_t size;
    uint8_t *data = node_status_encode (sim_node_id (n), sim_node_is_order (n)? "order": "catalog", sim_node_repl (n),
                                        sim_node_journal (n), 0, &size);
    bs_err_t err;
    bs_msg_t *status = bs_msg_decode (data, size, &err, NULL, 0);
    free (data);
    for (size_t i = 0; status && i < bs_msg_count (status, BS_FIELD_partitions); i++) {
        const bs_msg_t *part = bs_msg_at (status, BS_FIELD_partitions, i);
        sim_trace ("  %s: %s %s at epoch %lld, seq %lld, head %lld, %s", sim_node_id (n),
                   bs_msg_str (part, BS_FIELD_partition), bs_msg_str (part, BS_FIELD_role),
                   (long long) bs_msg_int (part, BS_FIELD_epoch), (long long) bs_msg_int (part, BS_FIELD_seq),
                   (long long) bs_msg_int (part, BS_FIELD_head), bs_msg_int (part, BS_FIELD_ready)? "ready": "not ready");
    }
    bs_msg_destroy (&status);
}

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
    //  Every order node up, caught up, and holding each order partition
    //  at the seq the others hold it
    for (int i = SIM_NODES; i < sim_node_count (); i++) {
        journal_t *journal = sim_node_journal (sim_nodes [i]);
        if (!journal || !repl_caught_up (sim_node_repl (sim_nodes [i]))) {
            if (report)
                sim_trace ("not converged: %s is %s", sim_node_id (sim_nodes [i]), journal? "not caught up": "down");
            if (report && journal)
                s_trace_partitions (i);
            return false;
        }
        for (int k = SIM_NODES; k < SIM_ALL_NODES; k++) {
            journal_t *other = sim_node_journal (sim_nodes [k]);
            for (size_t p = 0; k != i && other && p < journal_partitions (journal); p++) {
                const char *partition = journal_partition_at (journal, p);
                if (journal_seq (journal, partition) != journal_seq (other, partition)) {
                    if (report)
                        sim_trace ("not converged: %s holds %s at seq %llu, %s at %llu", sim_node_id (sim_nodes [i]),
                                   partition, (unsigned long long) journal_seq (journal, partition),
                                   sim_node_id (sim_nodes [k]), (unsigned long long) journal_seq (other, partition));
                    return false;
                }
            }
        }
    }
    return true;
}
