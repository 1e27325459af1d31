/*  orders - orders in LMDB  */
#include "orders.h"

#include <czmq.h>
#include <string.h>

//  A listing stops here so that its reply stays under the message size limit
#define ORDERS_LIST_MAX 20000

struct _orders_t {
    store_t *store;
    char node_id [65];
    MDB_dbi orders, by_request, by_item, meta;
};

orders_t *
orders_new (store_t *store, const char *node_id)
{
    orders_t *self = calloc (1, sizeof (orders_t));
    if (!self)
        abort ();
    self->store = store;
    snprintf (self->node_id, sizeof self->node_id, "%s", node_id);
    if (!store_open_db (store, "orders", 0, &self->orders)
    ||  !store_open_db (store, "by_request", 0, &self->by_request)
    ||  !store_open_db (store, "by_item", MDB_DUPSORT, &self->by_item)
    ||  !store_open_db (store, "meta", 0, &self->meta)) {
        free (self);
        return NULL;
    }
    return self;
}

void
orders_destroy (orders_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free (*self_p);
    *self_p = NULL;
}

bs_msg_t *
orders_find (orders_t *self, const uint8_t *rid, size_t rid_size)
{
    MDB_txn *txn = store_begin (self->store, false);
    if (!txn)
        return NULL;
    MDB_val key = { rid_size, (void *) rid }, val;
    bs_msg_t *reply = NULL;
    if (mdb_get (txn, self->by_request, &key, &val) == 0) {
        bs_err_t err;
        reply = bs_msg_decode (val.mv_data, val.mv_size, &err, NULL, 0);
    }
    mdb_txn_abort (txn);
    return reply;
}

bs_msg_t *
orders_record (orders_t *self, const uint8_t *rid, size_t rid_size, int64_t item, int64_t cost)
{
    MDB_txn *txn = store_begin (self->store, true);
    if (!txn)
        return bs_msg_new_error (BS_ERR_storage, NULL);
    MDB_val rkey = { rid_size, (void *) rid }, val;
    if (mdb_get (txn, self->by_request, &rkey, &val) == 0) {
        //  Recorded already (a retry raced the first attempt)
        bs_err_t err;
        bs_msg_t *reply = bs_msg_decode (val.mv_data, val.mv_size, &err, NULL, 0);
        mdb_txn_abort (txn);
        return reply? reply: bs_msg_new_error (BS_ERR_internal, "a stored reply is unreadable");
    }
    uint64_t number = store_meta_get (txn, self->meta, "next_order") + 1;
    char order_id [96];
    snprintf (order_id, sizeof order_id, "%s-%llu", self->node_id, (unsigned long long) number);

    bs_msg_t *order = bs_msg_new ();
    bs_msg_set_str (order, BS_FIELD_order_id, order_id);
    bs_msg_set_int (order, BS_FIELD_item, item);
    bs_msg_set_int (order, BS_FIELD_cost, cost);
    bs_msg_set_bin (order, BS_FIELD_rid, rid, rid_size);
    bs_msg_set_int (order, BS_FIELD_time, zclock_time ());
    bs_msg_set_str (order, BS_FIELD_status, "paid");

    bs_msg_t *reply = bs_msg_new_ok ();
    bs_msg_set_str (reply, BS_FIELD_order_id, order_id);
    bs_msg_set_int (reply, BS_FIELD_item, item);
    bs_msg_set_int (reply, BS_FIELD_cost, cost);

    size_t osize, rsize;
    uint8_t *odata = bs_msg_encode (order, &osize);
    uint8_t *rdata = bs_msg_encode (reply, &rsize);
    MDB_val okey = { strlen (order_id), order_id }, oval = { osize, odata }, rval = { rsize, rdata };
    uint8_t ibuf [4];
    store_key_u32 (ibuf, (uint32_t) item);
    MDB_val ikey = { 4, ibuf };
    int rc = mdb_put (txn, self->orders, &okey, &oval, MDB_NOOVERWRITE);
    if (rc == 0)
        rc = mdb_put (txn, self->by_request, &rkey, &rval, 0);
    if (rc == 0)
        rc = mdb_put (txn, self->by_item, &ikey, &okey, 0);
    if (rc == 0)
        rc = store_meta_put (txn, self->meta, "next_order", number);
    free (odata);
    free (rdata);
    bs_msg_destroy (&order);
    if (rc != 0) {
        zsys_error ("orders: cannot record order: %s", mdb_strerror (rc));
        mdb_txn_abort (txn);
        bs_msg_destroy (&reply);
        return bs_msg_new_error (BS_ERR_storage, mdb_strerror (rc));
    }
    if (store_commit (self->store, txn) != 0) {
        bs_msg_destroy (&reply);
        return bs_msg_new_error (BS_ERR_storage, "the order could not be committed");
    }
    return reply;
}

static void
s_append_order (orders_t *self, MDB_txn *txn, bs_msg_t *reply, MDB_val *key)
{
    MDB_val val;
    if (mdb_get (txn, self->orders, key, &val) != 0)
        return;
    bs_err_t err;
    bs_msg_t *order = bs_msg_decode (val.mv_data, val.mv_size, &err, NULL, 0);
    if (order)
        bs_msg_append (reply, BS_FIELD_orders, &order);
}

bs_msg_t *
orders_list (orders_t *self, int64_t item)
{
    MDB_txn *txn = store_begin (self->store, false);
    if (!txn)
        return bs_msg_new_error (BS_ERR_storage, NULL);
    bs_msg_t *reply = bs_msg_new_ok ();
    bs_msg_set_list (reply, BS_FIELD_orders);
    MDB_cursor *cursor;
    MDB_val key, val;
    if (item) {
        uint8_t ibuf [4];
        store_key_u32 (ibuf, (uint32_t) item);
        key.mv_size = 4;
        key.mv_data = ibuf;
        if (mdb_cursor_open (txn, self->by_item, &cursor) == 0) {
            int rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_KEY);
            while (rc == 0 && bs_msg_count (reply, BS_FIELD_orders) < ORDERS_LIST_MAX) {
                s_append_order (self, txn, reply, &val);
                rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT_DUP);
            }
            mdb_cursor_close (cursor);
        }
    }
    else
    if (mdb_cursor_open (txn, self->orders, &cursor) == 0) {
        int rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
        while (rc == 0 && bs_msg_count (reply, BS_FIELD_orders) < ORDERS_LIST_MAX) {
            bs_err_t err;
            bs_msg_t *order = bs_msg_decode (val.mv_data, val.mv_size, &err, NULL, 0);
            if (order)
                bs_msg_append (reply, BS_FIELD_orders, &order);
            rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    mdb_txn_abort (txn);
    return reply;
}

void
orders_digest (orders_t *self, char *hex)
{
    store_digest (self->store, self->orders, hex);
}
