/*  orders - orders in LMDB, written through the journal  */
#include "orders.h"

#include <czmq.h>
#include <string.h>

//  A listing stops here so that its reply stays under the message size limit

const char *orders_dbs [] = { "orders", "by_request", "by_item", NULL };

struct _orders_t {
    journal_t *journal;
    MDB_dbi orders, by_request, by_item;
};

void
orders_id_for (const uint8_t *rid, char *order_id)
{
    //  The rid's time prefix, then a one-way digest of the whole rid: the
    //  same wherever it is computed (the catalog that takes the copy, the
    //  order node that records it), in time order for rids made by our
    //  clients (so the orders table grows at one end), yet an order id
    //  shown to others never gives away the random part of the buyer's
    //  request id, which would let them replay the buy's rid and read its
    //  reply.  128 bits in all: two buys never share an order id.
    static const char domain [] = "bookstore order id:";
    zdigest_t *digest = zdigest_new ();
    zdigest_update (digest, (const byte *) domain, sizeof domain - 1);
    zdigest_update (digest, (const byte *) rid, BS_RID_SIZE);
    const byte *hash = zdigest_data (digest);
    order_id [0] = 'o';
    for (int i = 0; i < ORDERS_ID_BYTES; i++)
        snprintf (order_id + 1 + 2 * i, 3, "%02x", i < BS_RID_TIME_SIZE? rid [i]: hash [i]);
    zdigest_destroy (&digest);
}

orders_t *
orders_new (journal_t *journal)
{
    orders_t *self = calloc (1, sizeof (orders_t));
    if (!self)
        abort ();
    self->journal = journal;
    if (!journal_db (journal, "orders", 0, true, &self->orders)
    ||  !journal_db (journal, "by_request", 0, false, &self->by_request)
    ||  !journal_db (journal, "by_item", MDB_DUPSORT, false, &self->by_item)) {
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

static bs_msg_t *
s_find (orders_t *self, MDB_txn *txn, const uint8_t *rid, size_t rid_size)
{
    MDB_val key = { rid_size, (void *) rid }, val;
    if (mdb_get (txn, self->by_request, &key, &val) != 0)
        return NULL;
    bs_err_t err;
    return bs_msg_decode (val.mv_data, val.mv_size, &err, NULL, 0);
}

bs_msg_t *
orders_find (orders_t *self, const uint8_t *rid, size_t rid_size)
{
    MDB_txn *txn = store_begin (journal_store (self->journal), false);
    if (!txn)
        return NULL;
    bs_msg_t *reply = s_find (self, txn, rid, rid_size);
    mdb_txn_abort (txn);
    return reply;
}

bs_msg_t *
orders_record (orders_t *self, MDB_txn *txn, const char *partition, const uint8_t *rid,
               size_t rid_size, const bs_msg_t *decrement, int *rc_p)
{
    *rc_p = 0;
    bs_msg_t *known = s_find (self, txn, rid, rid_size);
    if (known)
        return known;           //  recorded already: by us, or replicated
    const char *order_id = bs_msg_str (decrement, BS_FIELD_order_id);
    int64_t item = bs_msg_int (decrement, BS_FIELD_item);

    bs_msg_t *order = bs_msg_new ();
    bs_msg_set_str (order, BS_FIELD_order_id, order_id);
    bs_msg_set_int (order, BS_FIELD_item, item);
    bs_msg_set_int (order, BS_FIELD_cost, bs_msg_int (decrement, BS_FIELD_cost));
    bs_msg_set_bin (order, BS_FIELD_rid, rid, rid_size);
    bs_msg_set_int (order, BS_FIELD_time, bs_msg_int (decrement, BS_FIELD_time));
    bs_msg_set_str (order, BS_FIELD_status, "paid");

    bs_msg_t *reply = bs_msg_new_ok ();
    bs_msg_set_str (reply, BS_FIELD_order_id, order_id);
    bs_msg_set_int (reply, BS_FIELD_item, item);
    bs_msg_set_int (reply, BS_FIELD_cost, bs_msg_int (decrement, BS_FIELD_cost));
    //  The book's version after this copy was taken
    bs_msg_set_int (reply, BS_FIELD_version, bs_msg_int (decrement, BS_FIELD_version));

    size_t osize, rsize;
    uint8_t *odata = bs_msg_encode (order, &osize);
    uint8_t *rdata = bs_msg_encode (reply, &rsize);
    MDB_val okey = { strlen (order_id), (void *) order_id }, oval = { osize, odata };
    MDB_val rkey = { rid_size, (void *) rid }, rval = { rsize, rdata };
    uint8_t ibuf [4];
    store_key_u32 (ibuf, (uint32_t) item);
    MDB_val ikey = { 4, ibuf }, ival = { strlen (order_id), (void *) order_id };
    int rc = journal_put (self->journal, txn, self->orders, &okey, &oval);
    if (rc == 0)
        rc = journal_put (self->journal, txn, self->by_request, &rkey, &rval);
    if (rc == 0)
        rc = journal_put (self->journal, txn, self->by_item, &ikey, &ival);
    uint64_t seq;
    if (rc == 0)
        rc = journal_seal (self->journal, txn, partition, &seq);
    free (odata);
    free (rdata);
    bs_msg_destroy (&order);
    if (rc != 0) {
        zsys_error ("orders: cannot record order: %s", mdb_strerror (rc));
        journal_unseal (self->journal);
        bs_msg_destroy (&reply);
        *rc_p = rc;
        return bs_msg_new_error (BS_ERR_storage, mdb_strerror (rc));
    }
    return reply;
}

bs_msg_t *
orders_list (orders_t *self, int64_t item, const char *after, int64_t limit)
{
    MDB_txn *txn = store_begin (journal_store (self->journal), false);
    if (!txn)
        return bs_msg_new_error (BS_ERR_storage, NULL);
    bs_msg_t *reply = bs_msg_new_ok ();
    bs_msg_set_list (reply, BS_FIELD_orders);
    size_t max = limit > 0 && limit < ORDERS_LIST_MAX? (size_t) limit: ORDERS_LIST_MAX;
    bool by_item = item != 0;
    uint8_t ibuf [4];
    store_key_u32 (ibuf, (uint32_t) item);
    //  Order ids sort in time (they hold the buy's rid, time first), in
    //  both the orders and each item's duplicates
    MDB_val mark = { after? strlen (after): 0, (void *) after };
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, by_item? self->by_item: self->orders, &cursor);
    if (rc == 0) {
        MDB_val key = { 4, ibuf }, val = mark;
        if (by_item)
            rc = mdb_cursor_get (cursor, &key, &val, after? MDB_GET_BOTH_RANGE: MDB_SET_KEY);
        else {
            key = mark;
            rc = mdb_cursor_get (cursor, &key, &val, after? MDB_SET_RANGE: MDB_FIRST);
        }
        MDB_cursor_op next = by_item? MDB_NEXT_DUP: MDB_NEXT;
        //  The page starts after the given order
        const MDB_val *id = by_item? &val: &key;
        if (rc == 0 && after && id->mv_size == mark.mv_size && memcmp (id->mv_data, after, mark.mv_size) == 0)
            rc = mdb_cursor_get (cursor, &key, &val, next);
        while (rc == 0 && bs_msg_count (reply, BS_FIELD_orders) < max) {
            MDB_val record = val;
            if (by_item && mdb_get (txn, self->orders, &val, &record) != 0)
                record.mv_size = 0;
            bs_err_t err;
            bs_msg_t *order = record.mv_size? bs_msg_decode (record.mv_data, record.mv_size, &err, NULL, 0): NULL;
            if (order)
                bs_msg_append (reply, BS_FIELD_orders, &order);
            rc = mdb_cursor_get (cursor, &key, &val, next);
        }
        mdb_cursor_close (cursor);
    }
    //  Stopped by the limit with an order left to give
    bs_msg_set_int (reply, BS_FIELD_more, rc == 0);
    mdb_txn_abort (txn);
    return reply;
}
