/*  test_store - catalog, orders and the journal on real LMDB stores  */
#include "catalog.h"
#include "journal.h"
#include "orders.h"
#include "store.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

static char s_dir [256];

typedef struct {
    store_t *store;
    journal_t *journal;
    catalog_t *catalog;
    orders_t *orders;
} node_t;

static void
s_open (node_t *node, const char *name)
{
    char path [300];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    node->store = store_new (path, 64 << 20, 64 << 20);
    node->journal = journal_new (node->store);
    node->catalog = catalog_new (node->journal);
    node->orders = orders_new (node->journal);
}

static void
s_close (node_t *node)
{
    catalog_destroy (&node->catalog);
    orders_destroy (&node->orders);
    journal_destroy (&node->journal);
    store_destroy (&node->store);
}

//  Runs one catalog write in its own transaction
static bs_msg_t *
s_write (node_t *node, bs_msg_t *request)
{
    MDB_txn *txn = journal_begin (node->journal);
    int rc;
    bs_msg_t *reply = catalog_write (node->catalog, txn, request, &rc);
    if (rc == 0)
        rc = journal_commit (node->journal, txn);
    else
        journal_abort (node->journal, txn);
    CHECK (rc == 0);
    return reply;
}

static bs_msg_t *
s_op (node_t *node, bs_op_t op, int64_t item, int64_t value)
{
    bs_msg_t *request = bs_msg_new_request (op);
    bs_msg_set_int (request, BS_FIELD_item, item);
    if (op == BS_OP_set_price)
        bs_msg_set_int (request, BS_FIELD_cost, value);
    if (op == BS_OP_restock)
        bs_msg_set_int (request, BS_FIELD_count, value);
    bs_msg_t *reply = bs_op_kind (op) == BS_KIND_READ? catalog_read (node->catalog, request): s_write (node, request);
    bs_msg_destroy (&request);
    return reply;
}

static int64_t
s_stock (node_t *node, int64_t item)
{
    bs_msg_t *reply = s_op (node, BS_OP_lookup, item, 0);
    int64_t stock = bs_msg_int (reply, BS_FIELD_ok)? bs_msg_int (reply, BS_FIELD_stock): -1;
    bs_msg_destroy (&reply);
    return stock;
}

static void
s_seed (node_t *node)
{
    zlistx_t *list = zlistx_new ();
    CHECK (catalog_seed_requests ("etc/catalog.cfg", list) == 7);
    bs_msg_t *request;
    while ((request = zlistx_detach (list, NULL))) {
        bs_msg_t *reply = s_write (node, request);
        CHECK (bs_msg_int (reply, BS_FIELD_ok));
        bs_msg_destroy (&reply);
        bs_msg_destroy (&request);
    }
    zlistx_destroy (&list);
}

static void
test_seed_and_search (void)
{
    node_t node;
    s_open (&node, "seed");
    CHECK (catalog_empty (node.catalog));
    s_seed (&node);
    CHECK (!catalog_empty (node.catalog));
    CHECK (journal_seq (node.journal, CATALOG_PARTITION) == 7);
    bs_msg_t *request = bs_msg_new_request (BS_OP_search);
    bs_msg_set_str (request, BS_FIELD_topic, "distributed_systems");
    bs_msg_t *reply = catalog_read (node.catalog, request);
    CHECK (bs_msg_count (reply, BS_FIELD_items) == 3);
    bs_msg_t *first = bs_msg_at (reply, BS_FIELD_items, 0);
    CHECK (first && bs_msg_int (first, BS_FIELD_item) == 321);
    CHECK (first && strcmp (bs_msg_str (first, BS_FIELD_title), "RPCs for Dummies") == 0);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    zlistx_t *list = zlistx_new ();
    CHECK (catalog_seed_requests ("/nonexistent/catalog.cfg", list) == -1);
    zlistx_destroy (&list);
    s_close (&node);
}

static void
test_decrement_is_conditional_and_idempotent (void)
{
    node_t node;
    s_open (&node, "decrement");
    s_seed (&node);
    //  684 has 6 copies; the same request three times takes one
    bs_msg_t *request = bs_msg_new_request (BS_OP_decrement);
    bs_msg_set_int (request, BS_FIELD_item, 684);
    char first_order [64] = "";
    for (int i = 0; i < 3; i++) {
        bs_msg_t *reply = s_write (&node, request);
        CHECK (bs_msg_int (reply, BS_FIELD_ok) && bs_msg_int (reply, BS_FIELD_stock) == 5);
        if (i == 0)
            snprintf (first_order, sizeof first_order, "%s", bs_msg_str (reply, BS_FIELD_order_id));
        else
            CHECK (strcmp (first_order, bs_msg_str (reply, BS_FIELD_order_id)) == 0);
        bs_msg_destroy (&reply);
    }
    //  The order id comes from the request id
    char expected [ORDERS_ID_SIZE];
    orders_id_for (bs_msg_bin (request, BS_FIELD_rid, NULL), expected);
    CHECK (strcmp (first_order, expected) == 0);
    bs_msg_destroy (&request);
    CHECK (s_stock (&node, 684) == 5);
    int sold = 0, refused = 0;
    for (int i = 0; i < 10; i++) {
        bs_msg_t *reply = s_op (&node, BS_OP_decrement, 684, 0);
        if (bs_msg_int (reply, BS_FIELD_ok))
            sold++;
        else
        if (strcmp (bs_msg_str (reply, BS_FIELD_error), "out_of_stock") == 0)
            refused++;
        bs_msg_destroy (&reply);
    }
    CHECK (sold == 5 && refused == 5);
    CHECK (s_stock (&node, 684) == 0);
    bs_msg_t *reply = s_op (&node, BS_OP_decrement, 5, 0);
    CHECK (strcmp (bs_msg_str (reply, BS_FIELD_error), "unknown_item") == 0);
    bs_msg_destroy (&reply);
    s_close (&node);
}

static void
test_writes_and_versions (void)
{
    node_t node;
    s_open (&node, "writes");
    s_seed (&node);
    bs_msg_t *reply = s_op (&node, BS_OP_set_price, 321, 42);
    CHECK (bs_msg_int (reply, BS_FIELD_cost) == 42 && bs_msg_int (reply, BS_FIELD_version) == 8);
    bs_msg_destroy (&reply);
    reply = s_op (&node, BS_OP_restock, 321, 1000);
    CHECK (bs_msg_int (reply, BS_FIELD_stock) == 1008 && bs_msg_int (reply, BS_FIELD_version) == 9);
    bs_msg_destroy (&reply);
    //  Restocking stops at the stock limit with a clear error
    bool refused = false;
    for (int i = 0; i < 1100 && !refused; i++) {
        reply = s_op (&node, BS_OP_restock, 321, 1000000);
        refused = !bs_msg_int (reply, BS_FIELD_ok);
        if (refused)
            CHECK (strcmp (bs_msg_str (reply, BS_FIELD_error), "bad_field") == 0);
        bs_msg_destroy (&reply);
    }
    CHECK (refused && s_stock (&node, 321) <= 1000000000);
    //  Sold-out books get restock requests, others not
    for (int i = 0; i < 6; i++) {
        reply = s_op (&node, BS_OP_decrement, 684, 0);
        bs_msg_destroy (&reply);
    }
    zlistx_t *list = zlistx_new ();
    catalog_sold_out_requests (node.catalog, 10, list);
    CHECK (zlistx_size (list) == 1);
    bs_msg_t *request = zlistx_first (list);
    CHECK (request && bs_msg_int (request, BS_FIELD_item) == 684 && bs_msg_int (request, BS_FIELD_count) == 10);
    while ((request = zlistx_detach (list, NULL)))
        bs_msg_destroy (&request);
    zlistx_destroy (&list);
    char d1 [17], d2 [17];
    journal_digest (node.journal, d1);
    s_close (&node);
    //  Everything survives closing and reopening, digest included
    s_open (&node, "writes");
    CHECK (s_stock (&node, 684) == 0);
    CHECK (journal_seq (node.journal, CATALOG_PARTITION) > 1000);
    journal_digest (node.journal, d2);
    CHECK (strcmp (d1, d2) == 0);
    s_close (&node);
}

static void
test_orders_are_deterministic (void)
{
    node_t a, b;
    s_open (&a, "orders-a");
    s_open (&b, "orders-b");
    uint8_t rid [BS_RID_SIZE];
    bs_rid_generate (rid);
    bs_msg_t *grant = bs_msg_new_ok ();
    char order_id [ORDERS_ID_SIZE];
    orders_id_for (rid, order_id);
    bs_msg_set_str (grant, BS_FIELD_order_id, order_id);
    bs_msg_set_int (grant, BS_FIELD_item, 666);
    bs_msg_set_int (grant, BS_FIELD_cost, 10);
    bs_msg_set_int (grant, BS_FIELD_time, 1700000000000);
    //  Two nodes record the same grant in their own partitions
    node_t *nodes [2] = { &a, &b };
    for (int i = 0; i < 2; i++) {
        MDB_txn *txn = journal_begin (nodes [i]->journal);
        int rc;
        bs_msg_t *reply = orders_record (nodes [i]->orders, txn, i? "order-2": "order-1", rid, sizeof rid, grant, &rc);
        CHECK (rc == 0 && journal_commit (nodes [i]->journal, txn) == 0);
        CHECK (strcmp (bs_msg_str (reply, BS_FIELD_order_id), order_id) == 0);
        bs_msg_destroy (&reply);
    }
    char da [17], db [17];
    journal_digest (a.journal, da);
    journal_digest (b.journal, db);
    CHECK (strcmp (da, db) == 0 && strcmp (da, "0000000000000000") != 0);
    //  Recording it again changes nothing and makes no log entry
    MDB_txn *txn = journal_begin (a.journal);
    int rc;
    bs_msg_t *again = orders_record (a.orders, txn, "order-1", rid, sizeof rid, grant, &rc);
    CHECK (rc == 0 && journal_commit (a.journal, txn) == 0);
    CHECK (journal_seq (a.journal, "order-1") == 1 && journal_sealed (a.journal) == 0);
    bs_msg_t *found = orders_find (a.orders, rid, sizeof rid);
    CHECK (found && strcmp (bs_msg_str (found, BS_FIELD_order_id), order_id) == 0);
    bs_msg_t *list = orders_list (a.orders, 666, NULL, 0);
    CHECK (bs_msg_count (list, BS_FIELD_orders) == 1);
    bs_msg_t *none = orders_list (a.orders, 5, NULL, 0);
    CHECK (bs_msg_count (none, BS_FIELD_orders) == 0 && bs_msg_has (none, BS_FIELD_orders));
    bs_msg_destroy (&none);
    bs_msg_destroy (&list);
    bs_msg_destroy (&found);
    bs_msg_destroy (&again);
    bs_msg_destroy (&grant);
    s_close (&a);
    s_close (&b);
}

//  Order ids come from the whole request id: rids that share a prefix
//  never share an order (one would overwrite the other)
static void
test_order_ids_are_unique_per_rid (void)
{
    uint8_t a [BS_RID_SIZE], b [BS_RID_SIZE];
    memset (a, 0x5a, sizeof a);
    memcpy (b, a, sizeof b);
    b [BS_RID_SIZE - 1] ^= 1;
    char id_a [ORDERS_ID_SIZE], id_b [ORDERS_ID_SIZE];
    orders_id_for (a, id_a);
    orders_id_for (b, id_b);
    CHECK (strcmp (id_a, id_b) != 0);
    CHECK (strlen (id_a) == 1 + 2 * BS_RID_SIZE && id_a [0] == 'o');
}

static void
test_journal_replicates (void)
{
    //  Entries sealed on one store, applied on another: same contents
    node_t primary, follower;
    s_open (&primary, "primary");
    s_open (&follower, "follower");
    zlistx_t *entries = zlistx_new ();
    zlistx_set_destructor (entries, (zlistx_destructor_fn *) zframe_destroy);
    zlistx_t *list = zlistx_new ();
    catalog_seed_requests ("etc/catalog.cfg", list);
    MDB_txn *txn = journal_begin (primary.journal);
    bs_msg_t *request;
    while ((request = zlistx_detach (list, NULL))) {
        int rc;
        bs_msg_t *reply = catalog_write (primary.catalog, txn, request, &rc);
        CHECK (rc == 0);
        bs_msg_destroy (&reply);
        bs_msg_destroy (&request);
    }
    zlistx_destroy (&list);
    CHECK (journal_commit (primary.journal, txn) == 0);
    CHECK (journal_sealed (primary.journal) == 7);
    for (size_t i = 0; i < journal_sealed (primary.journal); i++) {
        size_t size;
        uint64_t seq;
        const char *partition;
        const uint8_t *data = journal_sealed_at (primary.journal, i, &size, &seq, &partition);
        CHECK (seq == i + 1 && strcmp (partition, CATALOG_PARTITION) == 0);
        zlistx_add_end (entries, zframe_new (data, size));
    }
    txn = journal_begin (follower.journal);
    for (zframe_t *frame = zlistx_first (entries); frame; frame = zlistx_next (entries)) {
        bs_entry_t *entry = bs_entry_parse (zframe_data (frame), zframe_size (frame));
        CHECK (entry != NULL);
        if (entry)
            CHECK (journal_apply (follower.journal, txn, entry, zframe_data (frame), zframe_size (frame)) == 0);
        bs_entry_destroy (&entry);
    }
    CHECK (journal_commit (follower.journal, txn) == 0);
    char dp [17], df [17];
    journal_digest (primary.journal, dp);
    journal_digest (follower.journal, df);
    CHECK (strcmp (dp, df) == 0);
    CHECK (journal_seq (follower.journal, CATALOG_PARTITION) == 7);
    CHECK (s_stock (&follower, 846) == 15);
    //  The follower's log holds the same entries, so it can serve them
    txn = store_begin (follower.store, false);
    MDB_val value;
    CHECK (journal_read (follower.journal, txn, CATALOG_PARTITION, 3, &value) == 0);
    CHECK (journal_oldest (follower.journal, txn, CATALOG_PARTITION) == 1);
    mdb_txn_abort (txn);
    //  A snapshot reset empties the partition and its log
    txn = journal_begin (follower.journal);
    CHECK (journal_reset (follower.journal, txn, CATALOG_PARTITION, catalog_dbs, true) == 0);
    CHECK (journal_finish_snapshot (follower.journal, txn, CATALOG_PARTITION, 3, 0) == 0);
    CHECK (journal_commit (follower.journal, txn) == 0);
    CHECK (catalog_empty (follower.catalog));
    journal_digest (follower.journal, df);
    CHECK (strcmp (df, "0000000000000000") == 0);
    CHECK (journal_epoch (follower.journal, CATALOG_PARTITION) == 3);
    zlistx_destroy (&entries);
    s_close (&primary);
    s_close (&follower);
}

//  Retention: the oldest entries go, the newest keep entries stay, at most
//  max a call, and the state they built stays
static void
test_log_trim (void)
{
    node_t node;
    s_open (&node, "trim");
    s_seed (&node);                         //  entries 1-7
    for (int i = 0; i < 43; i++) {          //  entries 8-50
        bs_msg_t *reply = s_op (&node, BS_OP_restock, 846, 1);
        CHECK (bs_msg_int (reply, BS_FIELD_ok));
        bs_msg_destroy (&reply);
    }
    CHECK (journal_seq (node.journal, CATALOG_PARTITION) == 50);
    char before [17], after [17];
    journal_digest (node.journal, before);
    //  At most 15 at a time: 1-15 go
    MDB_txn *txn = journal_begin (node.journal);
    size_t trimmed = 0;
    CHECK (journal_trim (node.journal, txn, CATALOG_PARTITION, 20, 15, &trimmed) == 0);
    CHECK (trimmed == 15);
    CHECK (journal_commit (node.journal, txn) == 0);
    txn = store_begin (node.store, false);
    CHECK (journal_oldest (node.journal, txn, CATALOG_PARTITION) == 16);
    mdb_txn_abort (txn);
    //  Then down to the newest 20: 31-50
    txn = journal_begin (node.journal);
    CHECK (journal_trim (node.journal, txn, CATALOG_PARTITION, 20, 1000, &trimmed) == 0);
    CHECK (trimmed == 15);
    CHECK (journal_commit (node.journal, txn) == 0);
    txn = store_begin (node.store, false);
    MDB_val value;
    CHECK (journal_oldest (node.journal, txn, CATALOG_PARTITION) == 31);
    CHECK (journal_read (node.journal, txn, CATALOG_PARTITION, 30, &value) == MDB_NOTFOUND);
    CHECK (journal_read (node.journal, txn, CATALOG_PARTITION, 31, &value) == 0);
    CHECK (journal_read (node.journal, txn, CATALOG_PARTITION, 50, &value) == 0);
    mdb_txn_abort (txn);
    //  Nothing more to do; unknown partitions have nothing to trim
    txn = journal_begin (node.journal);
    CHECK (journal_trim (node.journal, txn, CATALOG_PARTITION, 20, 1000, &trimmed) == 0 && trimmed == 0);
    CHECK (journal_trim (node.journal, txn, "order-9", 20, 1000, &trimmed) == 0 && trimmed == 0);
    journal_abort (node.journal, txn);
    //  The books and the head are as they were
    journal_digest (node.journal, after);
    CHECK (strcmp (before, after) == 0);
    CHECK (journal_seq (node.journal, CATALOG_PARTITION) == 50);
    CHECK (s_stock (&node, 846) == 15 + 43);
    s_close (&node);
}

//  A snapshot cut short (reset committed, never finished) leaves a store
//  that says it holds nothing, so the node asks for the snapshot again
static void
test_snapshot_cut_short (void)
{
    node_t node;
    s_open (&node, "cut");
    s_seed (&node);
    CHECK (journal_seq (node.journal, CATALOG_PARTITION) == 7);
    MDB_txn *txn = journal_begin (node.journal);
    CHECK (journal_reset (node.journal, txn, CATALOG_PARTITION, catalog_dbs, true) == 0);
    CHECK (journal_commit (node.journal, txn) == 0);
    s_close (&node);
    //  The node dies here; started again, it reads its store
    s_open (&node, "cut");
    CHECK (journal_seq (node.journal, CATALOG_PARTITION) == 0);
    CHECK (journal_next_seq (node.journal, CATALOG_PARTITION) == 1);
    s_close (&node);
}

//  Seals the order of a granted buy (rid, item) in partition, in txn
static void
s_record_in (node_t *node, MDB_txn *txn, const char *partition, const uint8_t *rid, int64_t item)
{
    bs_msg_t *grant = bs_msg_new_ok ();
    char order_id [ORDERS_ID_SIZE];
    orders_id_for (rid, order_id);
    bs_msg_set_str (grant, BS_FIELD_order_id, order_id);
    bs_msg_set_int (grant, BS_FIELD_item, item);
    bs_msg_set_int (grant, BS_FIELD_cost, 10);
    bs_msg_set_int (grant, BS_FIELD_time, 1700000000000);
    int rc;
    bs_msg_t *reply = orders_record (node->orders, txn, partition, rid, BS_RID_SIZE, grant, &rc);
    CHECK (rc == 0);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&grant);
}

//  Records a granted buy of item with rid in a transaction of its own
static void
s_record (node_t *node, const uint8_t *rid, int64_t item)
{
    MDB_txn *txn = journal_begin (node->journal);
    s_record_in (node, txn, "order-1", rid, item);
    CHECK (journal_commit (node->journal, txn) == 0);
}

//  Follows a listing page by page (limit a page); the orders in the order
//  they came, comma-separated, into ids
static int
s_pages (node_t *node, int64_t item, int64_t limit, char *ids, size_t size)
{
    char after [ORDERS_ID_SIZE] = "";
    int pages = 0;
    *ids = 0;
    while (pages < 100) {
        bs_msg_t *page = orders_list (node->orders, item, *after? after: NULL, limit);
        pages++;
        size_t n = bs_msg_count (page, BS_FIELD_orders);
        CHECK (limit == 0 || n <= (size_t) limit);
        for (size_t i = 0; i < n; i++) {
            const char *id = bs_msg_str (bs_msg_at (page, BS_FIELD_orders, i), BS_FIELD_order_id);
            snprintf (ids + strlen (ids), size - strlen (ids), "%s%s", *ids? ",": "", id);
            snprintf (after, sizeof after, "%s", id);
        }
        bool more = bs_msg_int (page, BS_FIELD_more);
        bs_msg_destroy (&page);
        if (!more)
            break;
    }
    return pages;
}

//  Listings come in time order, a page at a time: after an order id, at
//  most limit, with "more" while some remain; by item too
static void
test_orders_pages (void)
{
    node_t node;
    s_open (&node, "pages");
    //  25 buys of 666 and 5 of 321, interleaved, with rids whose time
    //  prefix grows, as the clients make them
    uint8_t rids [30][BS_RID_SIZE];
    for (int i = 0; i < 30; i++) {
        memset (rids [i], 0, BS_RID_SIZE);
        rids [i][0] = 0x01;
        rids [i][BS_RID_TIME_SIZE - 1] = (uint8_t) i;
        rids [i][15] = (uint8_t) (0xFF - i);
        s_record (&node, rids [i], i % 6 == 5? 321: 666);
    }
    char all [2000], expected [2000] = "";
    for (int i = 0; i < 30; i++) {
        char id [ORDERS_ID_SIZE];
        orders_id_for (rids [i], id);
        snprintf (expected + strlen (expected), sizeof expected - strlen (expected), "%s%s", i? ",": "", id);
    }
    //  One page of everything; then pages of 7 (5 pages), 30 (1, no more), 10 (3)
    CHECK (s_pages (&node, 0, 0, all, sizeof all) == 1 && strcmp (all, expected) == 0);
    CHECK (s_pages (&node, 0, 7, all, sizeof all) == 5 && strcmp (all, expected) == 0);
    CHECK (s_pages (&node, 0, 30, all, sizeof all) == 1 && strcmp (all, expected) == 0);
    //  A full last page knows it is the last
    CHECK (s_pages (&node, 0, 10, all, sizeof all) == 3 && strcmp (all, expected) == 0);
    //  By item: the 5 of 321 in pages of 2
    char some [1000], want [1000] = "";
    for (int i = 5; i < 30; i += 6) {
        char id [ORDERS_ID_SIZE];
        orders_id_for (rids [i], id);
        snprintf (want + strlen (want), sizeof want - strlen (want), "%s%s", *want? ",": "", id);
    }
    CHECK (s_pages (&node, 321, 2, some, sizeof some) == 3 && strcmp (some, want) == 0);
    //  After a mark that is no order id: from the next one on (order 27's
    //  id and one more character sorts between 27 and 28)
    char id [ORDERS_ID_SIZE + 1];
    orders_id_for (rids [27], id);
    strcat (id, "x");
    bs_msg_t *tail = orders_list (node.orders, 0, id, 0);
    CHECK (bs_msg_count (tail, BS_FIELD_orders) == 2 && !bs_msg_int (tail, BS_FIELD_more));
    bs_msg_destroy (&tail);
    //  After the last: nothing, no more
    orders_id_for (rids [29], id);
    tail = orders_list (node.orders, 666, id, 5);
    CHECK (bs_msg_count (tail, BS_FIELD_orders) == 0 && !bs_msg_int (tail, BS_FIELD_more));
    bs_msg_destroy (&tail);
    s_close (&node);
}

static void
test_bad_directory (void)
{
    //  A data directory that cannot be created is refused with a message
    store_t *store = store_new ("/proc/no-such-place/data", 1 << 20, 1 << 20);
    CHECK (store == NULL);
}

//  Writes 1 KiB values, one per transaction, until count or a failure;
//  returns how many were written and the failure in *rc_p
static int
s_fill (store_t *store, MDB_dbi dbi, int count, int *rc_p)
{
    char value [1024];
    memset (value, 'v', sizeof value);
    *rc_p = 0;
    for (int i = 0; i < count; i++) {
        MDB_txn *txn = store_begin (store, true);
        uint8_t kbuf [4];
        store_key_u32 (kbuf, (uint32_t) i);
        MDB_val key = { 4, kbuf }, val = { sizeof value, value };
        int rc = mdb_put (txn, dbi, &key, &val, 0);
        if (rc == 0)
            rc = store_commit (store, txn);
        else
            mdb_txn_abort (txn);
        if (rc != 0) {
            *rc_p = rc;
            return i;
        }
    }
    return count;
}

static void
test_map_limit_and_growth (void)
{
    char path [300];
    //  At its limit the map refuses writes with a clear reason; reads go on
    snprintf (path, sizeof path, "%s/small", s_dir);
    store_t *store = store_new (path, 1 << 20, 1 << 20);
    MDB_dbi dbi = 0;
    CHECK (store && store_open_db (store, "data", 0, &dbi));
    int rc;
    int written = s_fill (store, dbi, 4000, &rc);
    CHECK (rc == MDB_MAP_FULL && written > 100 && written < 1000);
    CHECK (strstr (store_failure (rc), "size limit") != NULL);
    MDB_txn *txn = store_begin (store, false);
    uint8_t kbuf [4];
    store_key_u32 (kbuf, 0);
    MDB_val key = { 4, kbuf }, val;
    CHECK (txn && mdb_get (txn, dbi, &key, &val) == 0 && val.mv_size == 1024);
    mdb_txn_abort (txn);
    store_destroy (&store);
    //  With room to grow, the same writes all succeed
    snprintf (path, sizeof path, "%s/growing", s_dir);
    store = store_new (path, 1 << 20, 64 << 20);
    CHECK (store && store_open_db (store, "data", 0, &dbi));
    CHECK (s_fill (store, dbi, 4000, &rc) == 4000 && rc == 0);
    store_destroy (&store);
    //  A directory holding something that is not an LMDB store is refused
    snprintf (path, sizeof path, "%s/corrupt", s_dir);
    zsys_dir_create ("%s", path);
    char file [400];
    snprintf (file, sizeof file, "%s/data.mdb", path);
    FILE *garbage = fopen (file, "w");
    for (int i = 0; i < 16384; i++)
        fputc ((i * 7919) & 0xff, garbage);
    fclose (garbage);
    store = store_new (path, 1 << 20, 1 << 20);
    CHECK (store == NULL);
}


//  Applies the entries sealed by the last commit of from to to
static void
s_ship (node_t *from, node_t *to)
{
    MDB_txn *txn = journal_begin (to->journal);
    for (size_t i = 0; i < journal_sealed (from->journal); i++) {
        size_t size;
        uint64_t seq;
        const char *partition;
        const uint8_t *data = journal_sealed_at (from->journal, i, &size, &seq, &partition);
        bs_entry_t *entry = bs_entry_parse (data, size);
        CHECK (entry && journal_apply (to->journal, txn, entry, data, size) == 0);
        bs_entry_destroy (&entry);
    }
    CHECK (journal_commit (to->journal, txn) == 0);
}

//  A merged order snapshot of partition from from into to, as a follower
//  loads one: reset, every record of the order databases, finish
static void
s_order_snapshot (node_t *from, node_t *to, const char *partition)
{
    MDB_txn *txn = journal_begin (to->journal);
    CHECK (journal_reset (to->journal, txn, partition, orders_dbs, false) == 0);
    CHECK (journal_commit (to->journal, txn) == 0);
    //  Loading: nothing is adopted before the snapshot is whole
    CHECK (!journal_has_orphans (to->journal));
    MDB_txn *read = store_begin (from->store, false);
    txn = journal_begin (to->journal);
    for (int i = 0; orders_dbs [i]; i++) {
        MDB_dbi dbi;
        unsigned flags;
        CHECK (journal_dbi (from->journal, orders_dbs [i], &dbi, &flags));
        MDB_cursor *cursor;
        CHECK (mdb_cursor_open (read, dbi, &cursor) == 0);
        MDB_val key, value;
        int rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
        while (rc == 0) {
            CHECK (journal_load_record (to->journal, txn, orders_dbs [i], &key, &value) == 0);
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    mdb_txn_abort (read);
    CHECK (journal_finish_snapshot (to->journal, txn, partition, journal_last_epoch (from->journal, partition),
                                    journal_seq (from->journal, partition)) == 0);
    CHECK (journal_commit (to->journal, txn) == 0);
}

//  An order owner published an entry and died before committing it; a
//  follower applied it.  The owner's next life writes that seq anew at a
//  new epoch, the follower's snapshot drops its tail, and the order the
//  tail wrote, on the follower alone, is re-recorded by the follower in its
//  own partition: every replica ends with the same orders
static void
test_orphans_are_adopted (void)
{
    node_t owner, follower, peer;
    s_open (&owner, "orphan-owner");
    s_open (&follower, "orphan-follower");
    s_open (&peer, "orphan-peer");
    uint8_t rids [4][BS_RID_SIZE];
    for (int i = 0; i < 4; i++)
        bs_rid_generate (rids [i]);
    //  Epoch 1: two orders committed and replicated to both
    MDB_txn *txn = journal_begin (owner.journal);
    CHECK (journal_set_epoch (owner.journal, txn, "order-1", 1) == 0);
    s_record_in (&owner, txn, "order-1", rids [0], 7);
    s_record_in (&owner, txn, "order-1", rids [1], 8);
    CHECK (journal_commit (owner.journal, txn) == 0);
    s_ship (&owner, &follower);
    s_ship (&owner, &peer);
    //  A third published to the follower alone, never committed
    txn = journal_begin (owner.journal);
    s_record_in (&owner, txn, "order-1", rids [2], 9);
    CHECK (journal_sealed (owner.journal) == 1);
    MDB_txn *ftxn = journal_begin (follower.journal);
    size_t size;
    uint64_t seq;
    const char *partition;
    const uint8_t *data = journal_sealed_at (owner.journal, 0, &size, &seq, &partition);
    bs_entry_t *entry = bs_entry_parse (data, size);
    CHECK (seq == 3 && entry && journal_apply (follower.journal, ftxn, entry, data, size) == 0);
    bs_entry_destroy (&entry);
    CHECK (journal_commit (follower.journal, ftxn) == 0);
    journal_abort (owner.journal, txn);
    //  The owner's next life: epoch 2, seq 3 is another order
    txn = journal_begin (owner.journal);
    CHECK (journal_set_epoch (owner.journal, txn, "order-1", 2) == 0);
    s_record_in (&owner, txn, "order-1", rids [3], 10);
    CHECK (journal_commit (owner.journal, txn) == 0);
    s_ship (&owner, &peer);
    CHECK (journal_seq (owner.journal, "order-1") == 3 && journal_last_epoch (owner.journal, "order-1") == 2);
    //  The follower's copy differs at seq 3: it gets a merged snapshot
    s_order_snapshot (&owner, &follower, "order-1");
    CHECK (journal_seq (follower.journal, "order-1") == 3);
    //  The lost order stays, on the follower alone, as an orphan; the
    //  list survives a restart
    bs_msg_t *lost = orders_find (follower.orders, rids [2], BS_RID_SIZE);
    CHECK (lost != NULL);
    bs_msg_destroy (&lost);
    CHECK (orders_find (owner.orders, rids [2], BS_RID_SIZE) == NULL);
    s_close (&follower);
    s_open (&follower, "orphan-follower");
    CHECK (journal_has_orphans (follower.journal));
    //  The follower re-records it in its own partition, one entry of its
    //  three records (the order, its request, its item's list)
    txn = journal_begin (follower.journal);
    size_t adopted = 0;
    CHECK (journal_adopt_orphans (follower.journal, txn, "order-2", 512, &adopted) == 0);
    CHECK (adopted == 3 && journal_sealed (follower.journal) == 1);
    CHECK (journal_commit (follower.journal, txn) == 0);
    CHECK (!journal_has_orphans (follower.journal));
    CHECK (journal_seq (follower.journal, "order-2") == 1);
    //  ...which reaches every replica: all three hold the same four orders
    s_ship (&follower, &owner);
    s_ship (&follower, &peer);
    char d_owner [17], d_follower [17], d_peer [17];
    journal_digest (owner.journal, d_owner);
    journal_digest (follower.journal, d_follower);
    journal_digest (peer.journal, d_peer);
    CHECK (strcmp (d_owner, d_follower) == 0 && strcmp (d_owner, d_peer) == 0);
    for (int i = 0; i < 4; i++) {
        bs_msg_t *found = orders_find (owner.orders, rids [i], BS_RID_SIZE);
        CHECK (found != NULL);
        bs_msg_destroy (&found);
    }
    bs_msg_t *list = orders_list (peer.orders, 9, NULL, 0);
    CHECK (bs_msg_count (list, BS_FIELD_orders) == 1);
    bs_msg_destroy (&list);
    //  A snapshot that brings back all a replica held leaves no orphan:
    //  the peer's copy matches the owner's, nothing is re-recorded
    s_order_snapshot (&owner, &peer, "order-1");
    CHECK (!journal_has_orphans (peer.journal));
    txn = journal_begin (peer.journal);
    CHECK (journal_adopt_orphans (peer.journal, txn, "order-3", 512, &adopted) == 0);
    CHECK (adopted == 0 && journal_sealed (peer.journal) == 0);
    journal_abort (peer.journal, txn);
    s_close (&owner);
    s_close (&follower);
    s_close (&peer);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    snprintf (s_dir, sizeof s_dir, "/tmp/bookstore-unit.%d", (int) getpid ());
    RUN (test_seed_and_search);
    RUN (test_log_trim);
    RUN (test_snapshot_cut_short);
    RUN (test_orders_pages);
    RUN (test_decrement_is_conditional_and_idempotent);
    RUN (test_writes_and_versions);
    RUN (test_orders_are_deterministic);
    RUN (test_orphans_are_adopted);
    RUN (test_order_ids_are_unique_per_rid);
    RUN (test_journal_replicates);
    RUN (test_bad_directory);
    RUN (test_map_limit_and_growth);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system (cmd) != 0)
        fprintf (stderr, "could not remove %s\n", s_dir);
    return DONE ();
}
