/*  catalog - books in LMDB  */
#include "catalog.h"
#include "bs_settings.h"

#include <czmq.h>
#include <string.h>

struct _catalog_t {
    store_t *store;
    MDB_dbi books, by_topic, applied, meta;
};

catalog_t *
catalog_new (store_t *store)
{
    catalog_t *self = calloc (1, sizeof (catalog_t));
    if (!self)
        abort ();
    self->store = store;
    if (!store_open_db (store, "books", 0, &self->books)
    ||  !store_open_db (store, "by_topic", MDB_DUPSORT, &self->by_topic)
    ||  !store_open_db (store, "applied", 0, &self->applied)
    ||  !store_open_db (store, "meta", 0, &self->meta)) {
        free (self);
        return NULL;
    }
    return self;
}

void
catalog_destroy (catalog_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free (*self_p);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Records

static bs_msg_t *
s_get_book (catalog_t *self, MDB_txn *txn, int64_t item)
{
    uint8_t kbuf [4];
    store_key_u32 (kbuf, (uint32_t) item);
    MDB_val key = { 4, kbuf }, val;
    if (mdb_get (txn, self->books, &key, &val) != 0)
        return NULL;
    bs_err_t err;
    return bs_msg_decode (val.mv_data, val.mv_size, &err, NULL, 0);
}

static int
s_put_book (catalog_t *self, MDB_txn *txn, const bs_msg_t *book)
{
    uint8_t kbuf [4];
    store_key_u32 (kbuf, (uint32_t) bs_msg_int (book, BS_FIELD_item));
    size_t size;
    uint8_t *data = bs_msg_encode (book, &size);
    MDB_val key = { 4, kbuf }, val = { size, data };
    int rc = mdb_put (txn, self->books, &key, &val, 0);
    free (data);
    return rc;
}

//  The fields of a book a reply shows
static bs_msg_t *
s_book_reply (const bs_msg_t *book)
{
    bs_msg_t *reply = bs_msg_new_ok ();
    static const bs_field_t fields [] = {
        BS_FIELD_item, BS_FIELD_title, BS_FIELD_topic, BS_FIELD_cost, BS_FIELD_stock, BS_FIELD_version
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields [0]; i++) {
        if (bs_field_type (fields [i]) == BS_T_STR)
            bs_msg_set_str (reply, fields [i], bs_msg_str (book, fields [i]));
        else
            bs_msg_set_int (reply, fields [i], bs_msg_int (book, fields [i]));
    }
    return reply;
}

static bs_msg_t *
s_unknown_item (int64_t item)
{
    char message [96];
    snprintf (message, sizeof message, "no book has item number %lld", (long long) item);
    return bs_msg_new_error (BS_ERR_unknown_item, message);
}

//  --------------------------------------------------------------------------
//  Reads

static bs_msg_t *
s_search (catalog_t *self, MDB_txn *txn, const char *topic)
{
    bs_msg_t *reply = bs_msg_new_ok ();
    bs_msg_set_str (reply, BS_FIELD_topic, topic);
    bs_msg_set_list (reply, BS_FIELD_items);
    MDB_cursor *cursor;
    if (mdb_cursor_open (txn, self->by_topic, &cursor) != 0)
        return reply;
    MDB_val key = { strlen (topic), (void *) topic }, val;
    int rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_KEY);
    while (rc == 0) {
        bs_msg_t *book = s_get_book (self, txn, store_u32_key (val.mv_data));
        if (book) {
            bs_msg_t *entry = bs_msg_new ();
            bs_msg_set_int (entry, BS_FIELD_item, bs_msg_int (book, BS_FIELD_item));
            bs_msg_set_str (entry, BS_FIELD_title, bs_msg_str (book, BS_FIELD_title));
            bs_msg_set_int (entry, BS_FIELD_cost, bs_msg_int (book, BS_FIELD_cost));
            bs_msg_set_int (entry, BS_FIELD_stock, bs_msg_int (book, BS_FIELD_stock));
            bs_msg_append (reply, BS_FIELD_items, &entry);
            bs_msg_destroy (&book);
        }
        rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT_DUP);
    }
    mdb_cursor_close (cursor);
    return reply;
}

static bs_msg_t *
s_list (catalog_t *self, MDB_txn *txn)
{
    bs_msg_t *reply = bs_msg_new_ok ();
    bs_msg_set_list (reply, BS_FIELD_items);
    MDB_cursor *cursor;
    if (mdb_cursor_open (txn, self->books, &cursor) != 0)
        return reply;
    MDB_val key, val;
    int rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    while (rc == 0) {
        bs_err_t err;
        bs_msg_t *book = bs_msg_decode (val.mv_data, val.mv_size, &err, NULL, 0);
        if (book)
            bs_msg_append (reply, BS_FIELD_items, &book);
        rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    return reply;
}

//  --------------------------------------------------------------------------
//  Writes: each returns the reply; on success *changed is set so the caller
//  bumps the sequence.  They run inside the caller's write transaction.

static bs_msg_t *
s_decrement (catalog_t *self, MDB_txn *txn, const bs_msg_t *request, uint64_t seq, int *rc_p)
{
    int64_t item = bs_msg_int (request, BS_FIELD_item);
    bs_msg_t *book = s_get_book (self, txn, item);
    if (!book)
        return s_unknown_item (item);
    bs_msg_t *reply;
    int64_t stock = bs_msg_int (book, BS_FIELD_stock);
    if (stock <= 0) {
        char message [96];
        snprintf (message, sizeof message, "item %lld is out of stock", (long long) item);
        reply = bs_msg_new_error (BS_ERR_out_of_stock, message);
    }
    else {
        bs_msg_set_int (book, BS_FIELD_stock, stock - 1);
        bs_msg_set_int (book, BS_FIELD_version, (int64_t) seq);
        *rc_p = s_put_book (self, txn, book);
        reply = s_book_reply (book);
    }
    bs_msg_destroy (&book);
    return reply;
}

static bs_msg_t *
s_set_price (catalog_t *self, MDB_txn *txn, const bs_msg_t *request, uint64_t seq, int *rc_p)
{
    int64_t item = bs_msg_int (request, BS_FIELD_item);
    bs_msg_t *book = s_get_book (self, txn, item);
    if (!book)
        return s_unknown_item (item);
    bs_msg_set_int (book, BS_FIELD_cost, bs_msg_int (request, BS_FIELD_cost));
    bs_msg_set_int (book, BS_FIELD_version, (int64_t) seq);
    *rc_p = s_put_book (self, txn, book);
    bs_msg_t *reply = s_book_reply (book);
    bs_msg_destroy (&book);
    return reply;
}

#define STOCK_MAX 1000000000

static bs_msg_t *
s_restock (catalog_t *self, MDB_txn *txn, int64_t item, int64_t count, uint64_t seq, int *rc_p)
{
    bs_msg_t *book = s_get_book (self, txn, item);
    if (!book)
        return s_unknown_item (item);
    int64_t stock = bs_msg_int (book, BS_FIELD_stock);
    if (stock + count > STOCK_MAX) {
        bs_msg_destroy (&book);
        return bs_msg_new_error (BS_ERR_bad_field, "the stock would exceed 1000000000 copies");
    }
    bs_msg_set_int (book, BS_FIELD_stock, stock + count);
    bs_msg_set_int (book, BS_FIELD_version, (int64_t) seq);
    *rc_p = s_put_book (self, txn, book);
    bs_msg_t *reply = s_book_reply (book);
    bs_msg_destroy (&book);
    return reply;
}

static bs_msg_t *
s_add_book (catalog_t *self, MDB_txn *txn, const bs_msg_t *request, uint64_t seq, int *rc_p)
{
    int64_t item = bs_msg_int (request, BS_FIELD_item);
    bs_msg_t *existing = s_get_book (self, txn, item);
    if (existing) {
        bs_msg_destroy (&existing);
        char message [96];
        snprintf (message, sizeof message, "a book with item number %lld already exists", (long long) item);
        return bs_msg_new_error (BS_ERR_exists, message);
    }
    bs_msg_t *book = bs_msg_new ();
    bs_msg_set_int (book, BS_FIELD_item, item);
    bs_msg_set_str (book, BS_FIELD_title, bs_msg_str (request, BS_FIELD_title));
    bs_msg_set_str (book, BS_FIELD_topic, bs_msg_str (request, BS_FIELD_topic));
    bs_msg_set_int (book, BS_FIELD_cost, bs_msg_int (request, BS_FIELD_cost));
    bs_msg_set_int (book, BS_FIELD_stock, bs_msg_int (request, BS_FIELD_stock));
    bs_msg_set_int (book, BS_FIELD_version, (int64_t) seq);
    int rc = s_put_book (self, txn, book);
    if (rc == 0) {
        const char *topic = bs_msg_str (book, BS_FIELD_topic);
        uint8_t kbuf [4];
        store_key_u32 (kbuf, (uint32_t) item);
        MDB_val key = { strlen (topic), (void *) topic }, val = { 4, kbuf };
        rc = mdb_put (txn, self->by_topic, &key, &val, 0);
    }
    *rc_p = rc;
    bs_msg_t *reply = s_book_reply (book);
    bs_msg_destroy (&book);
    return reply;
}

//  Runs one write in its own durable transaction, exactly once per rid
static bs_msg_t *
s_write (catalog_t *self, const bs_msg_t *request)
{
    MDB_txn *txn = store_begin (self->store, true);
    if (!txn)
        return bs_msg_new_error (BS_ERR_storage, NULL);
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    MDB_val rkey = { rid_size, (void *) rid }, rval;
    if (mdb_get (txn, self->applied, &rkey, &rval) == 0) {
        bs_err_t err;
        bs_msg_t *reply = bs_msg_decode (rval.mv_data, rval.mv_size, &err, NULL, 0);
        mdb_txn_abort (txn);
        return reply? reply: bs_msg_new_error (BS_ERR_internal, "a stored reply is unreadable");
    }
    uint64_t seq = store_meta_get (txn, self->meta, "seq") + 1;
    int rc = 0;
    bs_msg_t *reply = NULL;
    switch (bs_msg_op (request)) {
        case BS_OP_decrement: reply = s_decrement (self, txn, request, seq, &rc); break;
        case BS_OP_set_price: reply = s_set_price (self, txn, request, seq, &rc); break;
        case BS_OP_restock:
            reply = s_restock (self, txn, bs_msg_int (request, BS_FIELD_item),
                               bs_msg_int (request, BS_FIELD_count), seq, &rc);
            break;
        case BS_OP_add_book: reply = s_add_book (self, txn, request, seq, &rc); break;
        default: reply = bs_msg_new_error (BS_ERR_unknown_op, NULL); break;
    }
    //  The sequence advances on every applied write, refused or not, so the
    //  applied table and the log stay in step
    if (rc == 0)
        rc = store_meta_put (txn, self->meta, "seq", seq);
    if (rc == 0) {
        size_t size;
        uint8_t *data = bs_msg_encode (reply, &size);
        MDB_val val = { size, data };
        rc = mdb_put (txn, self->applied, &rkey, &val, 0);
        free (data);
    }
    if (rc != 0) {
        zsys_error ("catalog: write failed: %s", mdb_strerror (rc));
        mdb_txn_abort (txn);
        bs_msg_destroy (&reply);
        return bs_msg_new_error (BS_ERR_storage, mdb_strerror (rc));
    }
    if (store_commit (self->store, txn) != 0) {
        bs_msg_destroy (&reply);
        return bs_msg_new_error (BS_ERR_storage, "the write could not be committed");
    }
    return reply;
}

bs_msg_t *
catalog_handle (catalog_t *self, const bs_msg_t *request)
{
    bs_op_t op = bs_msg_op (request);
    if (op == BS_OP_search || op == BS_OP_lookup || op == BS_OP_list) {
        MDB_txn *txn = store_begin (self->store, false);
        if (!txn)
            return bs_msg_new_error (BS_ERR_storage, NULL);
        bs_msg_t *reply;
        if (op == BS_OP_search)
            reply = s_search (self, txn, bs_msg_str (request, BS_FIELD_topic));
        else
        if (op == BS_OP_list)
            reply = s_list (self, txn);
        else {
            int64_t item = bs_msg_int (request, BS_FIELD_item);
            bs_msg_t *book = s_get_book (self, txn, item);
            reply = book? s_book_reply (book): s_unknown_item (item);
            bs_msg_destroy (&book);
        }
        mdb_txn_abort (txn);
        return reply;
    }
    if (op == BS_OP_decrement || op == BS_OP_set_price || op == BS_OP_restock || op == BS_OP_add_book)
        return s_write (self, request);
    char message [96];
    snprintf (message, sizeof message, "the catalog does not execute '%s'", bs_op_name (op));
    return bs_msg_new_error (BS_ERR_unknown_op, message);
}

//  --------------------------------------------------------------------------

int
catalog_seed (catalog_t *self, const char *path)
{
    MDB_txn *txn = store_begin (self->store, false);
    if (!txn)
        return -1;
    MDB_stat stat;
    mdb_stat (txn, self->books, &stat);
    mdb_txn_abort (txn);
    if (stat.ms_entries > 0)
        return 0;
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        zsys_error ("catalog: cannot read the initial catalog %s", path);
        return -1;
    }
    int loaded = 0;
    for (zconfig_t *book = zconfig_child (root); book; book = zconfig_next (book)) {
        if (strcmp (zconfig_name (book), "book") != 0)
            continue;
        bs_msg_t *request = bs_msg_new_request (BS_OP_add_book);
        int64_t item, cost, stock;
        const char *title = zconfig_get (book, "title", "");
        const char *topic = zconfig_get (book, "topic", "");
        bool good = bs_parse_int (zconfig_get (book, "item", ""), 1, 999999999, &item)
                 && bs_parse_int (zconfig_get (book, "cost", ""), 0, 1000000000, &cost)
                 && bs_parse_int (zconfig_get (book, "stock", ""), 0, 1000000000, &stock)
                 && *title && *topic;
        if (good) {
            bs_msg_set_int (request, BS_FIELD_item, item);
            bs_msg_set_str (request, BS_FIELD_title, title);
            bs_msg_set_str (request, BS_FIELD_topic, topic);
            bs_msg_set_int (request, BS_FIELD_cost, cost);
            bs_msg_set_int (request, BS_FIELD_stock, stock);
            //  Through the codec, so the file meets the same limits as requests
            size_t size;
            uint8_t *data = bs_msg_encode (request, &size);
            bs_err_t err;
            char reason [128];
            bs_msg_t *checked = bs_msg_decode (data, size, &err, reason, sizeof reason);
            free (data);
            if (checked) {
                bs_msg_t *reply = s_write (self, checked);
                good = bs_msg_int (reply, BS_FIELD_ok);
                bs_msg_destroy (&reply);
            }
            else
                good = false;
            bs_msg_destroy (&checked);
        }
        bs_msg_destroy (&request);
        if (!good) {
            zsys_error ("catalog: %s: a book entry is incomplete or out of range", path);
            zconfig_destroy (&root);
            return -1;
        }
        loaded++;
    }
    zconfig_destroy (&root);
    return loaded;
}

int
catalog_restock_sold_out (catalog_t *self, int64_t amount)
{
    //  Collect first, then restock each through the ordinary write path
    MDB_txn *txn = store_begin (self->store, false);
    if (!txn)
        return 0;
    bs_msg_t *all = s_list (self, txn);
    mdb_txn_abort (txn);
    int restocked = 0;
    for (size_t i = 0; i < bs_msg_count (all, BS_FIELD_items); i++) {
        bs_msg_t *book = bs_msg_at (all, BS_FIELD_items, i);
        if (bs_msg_int (book, BS_FIELD_stock) > 0)
            continue;
        bs_msg_t *request = bs_msg_new_request (BS_OP_restock);
        bs_msg_set_int (request, BS_FIELD_item, bs_msg_int (book, BS_FIELD_item));
        bs_msg_set_int (request, BS_FIELD_count, amount);
        bs_msg_t *reply = s_write (self, request);
        if (bs_msg_int (reply, BS_FIELD_ok)) {
            zsys_info ("catalog: restocked sold-out item %lld with %lld copies",
                       (long long) bs_msg_int (book, BS_FIELD_item), (long long) amount);
            restocked++;
        }
        bs_msg_destroy (&reply);
        bs_msg_destroy (&request);
    }
    bs_msg_destroy (&all);
    return restocked;
}

void
catalog_digest (catalog_t *self, char *hex)
{
    store_digest (self->store, self->books, hex);
}

uint64_t
catalog_seq (catalog_t *self)
{
    MDB_txn *txn = store_begin (self->store, false);
    if (!txn)
        return 0;
    uint64_t seq = store_meta_get (txn, self->meta, "seq");
    mdb_txn_abort (txn);
    return seq;
}
