/*  test_digest - the journal's digest tells data apart.
 *
 *  Replicas prove they converged by comparing digests alone, so the digest
 *  must differ whenever the data differ: pairs of stores are given the same
 *  writes except for one field (a price, a stock, a title, an order's
 *  status) and must report different digests, while equal data, reached in
 *  any order or recomputed from the store, must report equal digests.
 */
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
    char name [64];
    char digest [17];
} node_t;

static void
s_open (node_t *node, const char *name)
{
    char path [400];
    snprintf (node->name, sizeof node->name, "%s", name);
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    node->store = store_new (path, 64 << 20, 64 << 20);
    assert (node->store);
    node->journal = journal_new (node->store);
    node->catalog = catalog_new (node->journal);
    node->orders = orders_new (node->journal);
    assert (node->journal && node->catalog && node->orders);
}

static void
s_close (node_t *node)
{
    catalog_destroy (&node->catalog);
    orders_destroy (&node->orders);
    journal_destroy (&node->journal);
    store_destroy (&node->store);
}

//  The node's digest, as it reports it
static const char *
s_digest (node_t *node)
{
    journal_digest (node->journal, node->digest);
    return node->digest;
}

//  The digest recomputed from the store: close and reopen (the journal
//  scans every record when it opens its databases)
static const char *
s_digest_reopened (node_t *node)
{
    char name [64];
    snprintf (name, sizeof name, "%s", node->name);
    s_close (node);
    s_open (node, name);
    return s_digest (node);
}

//  One catalog write in its own transaction; true when it succeeded
static bool
s_write (node_t *node, bs_msg_t *request)
{
    MDB_txn *txn = journal_begin (node->journal);
    int rc;
    bs_msg_t *reply = catalog_write (node->catalog, txn, request, &rc);
    bool ok = rc == 0 && reply && bs_msg_int (reply, BS_FIELD_ok);
    if (rc == 0)
        rc = journal_commit (node->journal, txn);
    else
        journal_abort (node->journal, txn);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    return ok && rc == 0;
}

static bool
s_op (node_t *node, bs_op_t op, int64_t item, int64_t value)
{
    bs_msg_t *request = bs_msg_new_request (op);
    bs_msg_set_int (request, BS_FIELD_item, item);
    if (op == BS_OP_set_price)
        bs_msg_set_int (request, BS_FIELD_cost, value);
    if (op == BS_OP_restock)
        bs_msg_set_int (request, BS_FIELD_count, value);
    return s_write (node, request);
}

static bool
s_add_book (node_t *node, int64_t item, const char *title)
{
    bs_msg_t *request = bs_msg_new_request (BS_OP_add_book);
    bs_msg_set_int (request, BS_FIELD_item, item);
    bs_msg_set_str (request, BS_FIELD_topic, "cooking");
    bs_msg_set_str (request, BS_FIELD_title, title);
    bs_msg_set_int (request, BS_FIELD_cost, 9);
    bs_msg_set_int (request, BS_FIELD_stock, 4);
    return s_write (node, request);
}

static void
s_seed (node_t *node)
{
    zlistx_t *list = zlistx_new ();
    CHECK (catalog_seed_requests ("etc/catalog.cfg", list) == 7);
    bs_msg_t *request;
    while ((request = zlistx_detach (list, NULL)))
        CHECK (s_write (node, request));
    zlistx_destroy (&list);
}

//  Two freshly seeded nodes
static void
s_pair (node_t *a, node_t *b, const char *name)
{
    char name_a [64], name_b [64];
    snprintf (name_a, sizeof name_a, "%s-a", name);
    snprintf (name_b, sizeof name_b, "%s-b", name);
    s_open (a, name_a);
    s_open (b, name_b);
    s_seed (a);
    s_seed (b);
}

static void
s_close_pair (node_t *a, node_t *b)
{
    s_close (a);
    s_close (b);
}

static void
test_equal_data_gives_equal_digests (void)
{
    node_t a, b;
    s_pair (&a, &b, "equal");
    CHECK (strcmp (s_digest (&a), "0000000000000000") != 0);
    CHECK (strcmp (s_digest (&a), s_digest (&b)) == 0);
    //  The same writes: the same digest, reported and recomputed
    CHECK (s_op (&a, BS_OP_set_price, 321, 42) && s_op (&b, BS_OP_set_price, 321, 42));
    CHECK (s_op (&a, BS_OP_restock, 666, 5) && s_op (&b, BS_OP_restock, 666, 5));
    CHECK (strcmp (s_digest (&a), s_digest (&b)) == 0);
    char reported [17];
    snprintf (reported, sizeof reported, "%s", s_digest (&a));
    CHECK (strcmp (s_digest_reopened (&a), reported) == 0);
    CHECK (strcmp (s_digest (&a), s_digest (&b)) == 0);
    s_close_pair (&a, &b);
}

static void
test_a_price_changes_the_digest (void)
{
    node_t a, b;
    s_pair (&a, &b, "price");
    //  The same write at the same seq, one cost apart
    CHECK (s_op (&a, BS_OP_set_price, 321, 42) && s_op (&b, BS_OP_set_price, 321, 43));
    CHECK (strcmp (s_digest (&a), s_digest (&b)) != 0);
    //  Two books' prices swapped: the same multiset of prices, other data
    CHECK (s_op (&a, BS_OP_set_price, 321, 7) && s_op (&a, BS_OP_set_price, 846, 8));
    CHECK (s_op (&b, BS_OP_set_price, 321, 8) && s_op (&b, BS_OP_set_price, 846, 7));
    CHECK (strcmp (s_digest (&a), s_digest (&b)) != 0);
    //  The digest kept up to date write by write is the one recomputed
    char reported [17];
    snprintf (reported, sizeof reported, "%s", s_digest (&b));
    CHECK (strcmp (s_digest_reopened (&b), reported) == 0);
    s_close_pair (&a, &b);
}

static void
test_a_stock_changes_the_digest (void)
{
    node_t a, b;
    s_pair (&a, &b, "stock");
    CHECK (s_op (&a, BS_OP_restock, 321, 1) && s_op (&b, BS_OP_restock, 321, 2));
    CHECK (strcmp (s_digest (&a), s_digest (&b)) != 0);
    //  A sale on one, a restock of one copy on the other, at the same seq
    node_t c, d;
    s_pair (&c, &d, "sale");
    CHECK (s_op (&c, BS_OP_decrement, 846, 0) && s_op (&d, BS_OP_restock, 846, 1));
    CHECK (strcmp (s_digest (&c), s_digest (&d)) != 0);
    s_close_pair (&a, &b);
    s_close_pair (&c, &d);
}

static void
test_a_title_changes_the_digest (void)
{
    node_t a, b;
    s_pair (&a, &b, "title");
    CHECK (s_add_book (&a, 5150, "Cooking with Caches"));
    CHECK (s_add_book (&b, 5150, "Cooking with Cachets"));
    CHECK (strcmp (s_digest (&a), s_digest (&b)) != 0);
    s_close_pair (&a, &b);
}

//  Rewrites the status of the order order_id on a node, as one logged write
static void
s_set_status (node_t *node, const char *order_id, const char *status)
{
    MDB_dbi dbi;
    CHECK (journal_dbi (node->journal, "orders", &dbi, NULL));
    MDB_txn *txn = journal_begin (node->journal);
    MDB_val key = { strlen (order_id), (void *) order_id }, value;
    CHECK (mdb_get (txn, dbi, &key, &value) == 0);
    bs_err_t err;
    bs_msg_t *order = bs_msg_decode (value.mv_data, value.mv_size, &err, NULL, 0);
    CHECK (order && strcmp (bs_msg_str (order, BS_FIELD_order_id), order_id) == 0);
    bs_msg_set_str (order, BS_FIELD_status, status);
    size_t size;
    uint8_t *data = bs_msg_encode (order, &size);
    MDB_val changed = { size, data };
    uint64_t seq;
    CHECK (journal_put (node->journal, txn, dbi, &key, &changed) == 0);
    CHECK (journal_seal (node->journal, txn, "order-1", &seq) == 0);
    CHECK (journal_commit (node->journal, txn) == 0);
    free (data);
    bs_msg_destroy (&order);
}

static void
test_an_order_status_changes_the_digest (void)
{
    node_t a, b;
    s_open (&a, "status-a");
    s_open (&b, "status-b");
    uint8_t rid [BS_RID_SIZE];
    memset (rid, 7, sizeof rid);
    char order_id [ORDERS_ID_SIZE];
    orders_id_for (rid, order_id);
    bs_msg_t *grant = bs_msg_new_ok ();
    bs_msg_set_str (grant, BS_FIELD_order_id, order_id);
    bs_msg_set_int (grant, BS_FIELD_item, 666);
    bs_msg_set_int (grant, BS_FIELD_cost, 10);
    bs_msg_set_int (grant, BS_FIELD_time, 1700000000000);
    node_t *nodes [2] = { &a, &b };
    for (int i = 0; i < 2; i++) {
        MDB_txn *txn = journal_begin (nodes [i]->journal);
        int rc;
        bs_msg_t *reply = orders_record (nodes [i]->orders, txn, "order-1", rid, sizeof rid, grant, &rc);
        CHECK (rc == 0 && journal_commit (nodes [i]->journal, txn) == 0);
        bs_msg_destroy (&reply);
    }
    bs_msg_destroy (&grant);
    CHECK (strcmp (s_digest (&a), s_digest (&b)) == 0);
    s_set_status (&a, order_id, "refunded");
    CHECK (strcmp (s_digest (&a), s_digest (&b)) != 0);
    //  The digest recomputed from the store agrees with the reported one
    char reported [17];
    snprintf (reported, sizeof reported, "%s", s_digest (&a));
    CHECK (strcmp (s_digest_reopened (&a), reported) == 0);
    //  Back to the same data: the same digest again
    s_set_status (&a, order_id, "paid");
    CHECK (strcmp (s_digest (&a), s_digest (&b)) == 0);
    s_close_pair (&a, &b);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    snprintf (s_dir, sizeof s_dir, "/tmp/bookstore-unit-digest.%d", (int) getpid ());
    RUN (test_equal_data_gives_equal_digests);
    RUN (test_a_price_changes_the_digest);
    RUN (test_a_stock_changes_the_digest);
    RUN (test_a_title_changes_the_digest);
    RUN (test_an_order_status_changes_the_digest);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system (cmd) != 0)
        fprintf (stderr, "could not remove %s\n", s_dir);
    return DONE ();
}
