/*  test_store - catalog and order operations on a real LMDB store  */
#include "catalog.h"
#include "orders.h"
#include "store.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

static char s_dir [256];

static store_t *
s_open (const char *name)
{
    char path [300];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    return store_new (path, 64 << 20);
}

static bs_msg_t *
s_request (catalog_t *catalog, bs_op_t op, int64_t item, int64_t value)
{
    bs_msg_t *request = bs_msg_new_request (op);
    bs_msg_set_int (request, BS_FIELD_item, item);
    if (op == BS_OP_set_price)
        bs_msg_set_int (request, BS_FIELD_cost, value);
    if (op == BS_OP_restock)
        bs_msg_set_int (request, BS_FIELD_count, value);
    bs_msg_t *reply = catalog_handle (catalog, request);
    bs_msg_destroy (&request);
    return reply;
}

static int64_t
s_stock (catalog_t *catalog, int64_t item)
{
    bs_msg_t *reply = s_request (catalog, BS_OP_lookup, item, 0);
    int64_t stock = bs_msg_int (reply, BS_FIELD_ok)? bs_msg_int (reply, BS_FIELD_stock): -1;
    bs_msg_destroy (&reply);
    return stock;
}

static void
test_seed_and_search (void)
{
    store_t *store = s_open ("seed");
    catalog_t *catalog = catalog_new (store);
    CHECK (catalog_seed (catalog, "etc/catalog.cfg") == 7);
    CHECK (catalog_seed (catalog, "etc/catalog.cfg") == 0);     //  not twice
    bs_msg_t *request = bs_msg_new_request (BS_OP_search);
    bs_msg_set_str (request, BS_FIELD_topic, "distributed_systems");
    bs_msg_t *reply = catalog_handle (catalog, request);
    CHECK (bs_msg_count (reply, BS_FIELD_items) == 3);
    bs_msg_t *first = bs_msg_at (reply, BS_FIELD_items, 0);
    CHECK (first && bs_msg_int (first, BS_FIELD_item) == 321);
    CHECK (first && strcmp (bs_msg_str (first, BS_FIELD_title), "RPCs for Dummies") == 0);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    catalog_destroy (&catalog);
    store_destroy (&store);
}

static void
test_decrement_is_conditional_and_idempotent (void)
{
    store_t *store = s_open ("decrement");
    catalog_t *catalog = catalog_new (store);
    catalog_seed (catalog, "etc/catalog.cfg");
    //  684 has 6 copies
    bs_msg_t *request = bs_msg_new_request (BS_OP_decrement);
    bs_msg_set_int (request, BS_FIELD_item, 684);
    for (int i = 0; i < 3; i++) {
        bs_msg_t *reply = catalog_handle (catalog, request);     //  same rid
        CHECK (bs_msg_int (reply, BS_FIELD_ok) && bs_msg_int (reply, BS_FIELD_stock) == 5);
        bs_msg_destroy (&reply);
    }
    bs_msg_destroy (&request);
    CHECK (s_stock (catalog, 684) == 5);
    int sold = 0, refused = 0;
    for (int i = 0; i < 10; i++) {
        bs_msg_t *reply = s_request (catalog, BS_OP_decrement, 684, 0);
        if (bs_msg_int (reply, BS_FIELD_ok))
            sold++;
        else
        if (strcmp (bs_msg_str (reply, BS_FIELD_error), "out_of_stock") == 0)
            refused++;
        bs_msg_destroy (&reply);
    }
    CHECK (sold == 5 && refused == 5);
    CHECK (s_stock (catalog, 684) == 0);
    bs_msg_t *reply = s_request (catalog, BS_OP_decrement, 5, 0);
    CHECK (strcmp (bs_msg_str (reply, BS_FIELD_error), "unknown_item") == 0);
    bs_msg_destroy (&reply);
    catalog_destroy (&catalog);
    store_destroy (&store);
}

static void
test_writes_and_versions (void)
{
    store_t *store = s_open ("writes");
    catalog_t *catalog = catalog_new (store);
    catalog_seed (catalog, "etc/catalog.cfg");
    uint64_t seq = catalog_seq (catalog);
    CHECK (seq == 7);
    bs_msg_t *reply = s_request (catalog, BS_OP_set_price, 321, 42);
    CHECK (bs_msg_int (reply, BS_FIELD_cost) == 42 && bs_msg_int (reply, BS_FIELD_version) == 8);
    bs_msg_destroy (&reply);
    reply = s_request (catalog, BS_OP_restock, 321, 1000);
    CHECK (bs_msg_int (reply, BS_FIELD_stock) == 1008);
    bs_msg_destroy (&reply);
    CHECK (catalog_seq (catalog) == 9);

    //  Restocking stops short of the stock limit with a clear error
    for (int i = 0; i < 1000; i++) {
        reply = s_request (catalog, BS_OP_restock, 321, 1000000);
        bool ok = bs_msg_int (reply, BS_FIELD_ok);
        bs_msg_destroy (&reply);
        if (!ok)
            break;
    }
    CHECK (s_stock (catalog, 321) <= 1000000000);

    //  Periodic restock touches sold-out books only
    for (int i = 0; i < 6; i++) {
        reply = s_request (catalog, BS_OP_decrement, 684, 0);
        bs_msg_destroy (&reply);
    }
    CHECK (s_stock (catalog, 684) == 0);
    CHECK (catalog_restock_sold_out (catalog, 10) == 1);
    CHECK (s_stock (catalog, 684) == 10);
    CHECK (catalog_restock_sold_out (catalog, 10) == 0);

    //  Same contents, same digest; a change moves it
    char d1 [41], d2 [41];
    catalog_digest (catalog, d1);
    catalog_digest (catalog, d2);
    CHECK (strlen (d1) == 40 && strcmp (d1, d2) == 0);
    reply = s_request (catalog, BS_OP_set_price, 846, 1);
    bs_msg_destroy (&reply);
    catalog_digest (catalog, d2);
    CHECK (strcmp (d1, d2) != 0);
    catalog_destroy (&catalog);
    store_destroy (&store);

    //  Everything survives closing and reopening the store
    store = s_open ("writes");
    catalog = catalog_new (store);
    CHECK (s_stock (catalog, 684) == 10);
    CHECK (catalog_seq (catalog) > 10);
    catalog_digest (catalog, d1);
    CHECK (strcmp (d1, d2) == 0);
    catalog_destroy (&catalog);
    store_destroy (&store);
}

static void
test_orders (void)
{
    store_t *store = s_open ("orders");
    orders_t *orders = orders_new (store, "order-7");
    uint8_t rid1 [BS_RID_SIZE], rid2 [BS_RID_SIZE];
    bs_rid_generate (rid1);
    bs_rid_generate (rid2);
    CHECK (orders_find (orders, rid1, sizeof rid1) == NULL);
    bs_msg_t *first = orders_record (orders, rid1, sizeof rid1, 666, 10);
    CHECK (bs_msg_int (first, BS_FIELD_ok));
    CHECK (strcmp (bs_msg_str (first, BS_FIELD_order_id), "order-7-1") == 0);
    //  Recording the same request again returns the first order
    bs_msg_t *again = orders_record (orders, rid1, sizeof rid1, 666, 10);
    CHECK (strcmp (bs_msg_str (again, BS_FIELD_order_id), "order-7-1") == 0);
    bs_msg_t *found = orders_find (orders, rid1, sizeof rid1);
    CHECK (found && strcmp (bs_msg_str (found, BS_FIELD_order_id), "order-7-1") == 0);
    bs_msg_t *other = orders_record (orders, rid2, sizeof rid2, 321, 5);
    CHECK (strcmp (bs_msg_str (other, BS_FIELD_order_id), "order-7-2") == 0);
    bs_msg_t *all = orders_list (orders, 0);
    CHECK (bs_msg_count (all, BS_FIELD_orders) == 2);
    bs_msg_t *some = orders_list (orders, 321);
    CHECK (bs_msg_count (some, BS_FIELD_orders) == 1);
    bs_msg_t *order = bs_msg_at (some, BS_FIELD_orders, 0);
    CHECK (order && bs_msg_int (order, BS_FIELD_item) == 321);
    CHECK (order && strcmp (bs_msg_str (order, BS_FIELD_status), "paid") == 0);
    CHECK (order && bs_msg_int (order, BS_FIELD_time) > 0);
    bs_msg_t *none = orders_list (orders, 5);
    CHECK (bs_msg_count (none, BS_FIELD_orders) == 0 && bs_msg_has (none, BS_FIELD_orders));
    bs_msg_destroy (&first);
    bs_msg_destroy (&again);
    bs_msg_destroy (&found);
    bs_msg_destroy (&other);
    bs_msg_destroy (&all);
    bs_msg_destroy (&some);
    bs_msg_destroy (&none);
    orders_destroy (&orders);
    store_destroy (&store);
}

static void
test_bad_directory (void)
{
    //  A data directory that cannot be created is refused with a message
    store_t *store = store_new ("/proc/no-such-place/data", 1 << 20);
    CHECK (store == NULL);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    snprintf (s_dir, sizeof s_dir, "/tmp/bookstore-unit.%d", (int) getpid ());
    RUN (test_seed_and_search);
    RUN (test_decrement_is_conditional_and_idempotent);
    RUN (test_writes_and_versions);
    RUN (test_orders);
    RUN (test_bad_directory);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system (cmd) != 0)
        fprintf (stderr, "could not remove %s\n", s_dir);
    return DONE ();
}
