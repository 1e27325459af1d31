/*  catalog - books in LMDB, written through the journal  */
#include "catalog.h"
#include "bs_clock.h"
#include "bs_sizes.h"
#include "bs_settings.h"
#include "orders.h"

#include <string.h>

#define STOCK_MAX 1000000000

const char *catalog_dbs [] = { "books", "by_topic", "applied", NULL };

//  A book a write changed, for the cache's invalidation
typedef struct {
    int64_t item;
    char topic [BS_TOPIC_MAX + 1];
} touched_t;

struct _catalog_t {
    journal_t *journal;
    store_t *store;
    MDB_dbi books, by_topic, applied;
    touched_t *touched;
    size_t touched_count, touched_cap;
};

catalog_t *
catalog_new (journal_t *journal)
{
    catalog_t *self = calloc (1, sizeof (catalog_t));
    if (!self)
        abort ();
    self->journal = journal;
    if (!journal_db (journal, "books", 0, true, &self->books)
    ||  !journal_db (journal, "by_topic", MDB_DUPSORT, false, &self->by_topic)
    ||  !journal_db (journal, "applied", 0, false, &self->applied)) {
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
    free ((*self_p)->touched);
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

static void
s_touch (catalog_t *self, const bs_msg_t *book)
{
    if (self->touched_count == self->touched_cap) {
        self->touched_cap = self->touched_cap? self->touched_cap * 2: 64;
        self->touched = realloc (self->touched, self->touched_cap * sizeof (touched_t));
        if (!self->touched)
            abort ();
    }
    touched_t *t = &self->touched [self->touched_count++];
    t->item = bs_msg_int (book, BS_FIELD_item);
    snprintf (t->topic, sizeof t->topic, "%s", bs_msg_str (book, BS_FIELD_topic));
}

//  Every change to a book goes through here, so every change is announced
static int
s_put_book (catalog_t *self, MDB_txn *txn, const bs_msg_t *book)
{
    s_touch (self, book);
    uint8_t kbuf [4];
    store_key_u32 (kbuf, (uint32_t) bs_msg_int (book, BS_FIELD_item));
    size_t size;
    uint8_t *data = bs_msg_encode (book, &size);
    MDB_val key = { 4, kbuf }, val = { size, data };
    int rc = journal_put (self->journal, txn, self->books, &key, &val);
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
            bs_msg_set_int (entry, BS_FIELD_version, bs_msg_int (book, BS_FIELD_version));
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
    while (rc == 0 && bs_msg_count (reply, BS_FIELD_items) < 20000) {
        bs_err_t err;
        bs_msg_t *book = bs_msg_decode (val.mv_data, val.mv_size, &err, NULL, 0);
        if (book)
            bs_msg_append (reply, BS_FIELD_items, &book);
        rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    return reply;
}

static int
s_by_item (const void *a, const void *b)
{
    int64_t x = ((const touched_t *) a)->item, y = ((const touched_t *) b)->item;
    return x < y? -1: x > y;
}

static int
s_by_topic (const void *a, const void *b)
{
    return strcmp (((const touched_t *) a)->topic, ((const touched_t *) b)->topic);
}

bs_msg_t *
catalog_invalidation (catalog_t *self, uint64_t version)
{
    if (self->touched_count == 0)
        return NULL;
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, "invalidate");
    bs_msg_set_int (msg, BS_FIELD_version, (int64_t) version);
    bs_msg_set_list (msg, BS_FIELD_items);
    //  A batch may change a hot book many times: name each key once
    qsort (self->touched, self->touched_count, sizeof (touched_t), s_by_item);
    for (size_t i = 0; i < self->touched_count; i++)
        if (i == 0 || self->touched [i].item != self->touched [i - 1].item) {
            bs_msg_t *key = bs_msg_new ();
            bs_msg_set_int (key, BS_FIELD_item, self->touched [i].item);
            bs_msg_append (msg, BS_FIELD_items, &key);
        }
    qsort (self->touched, self->touched_count, sizeof (touched_t), s_by_topic);
    for (size_t i = 0; i < self->touched_count; i++)
        if (i == 0 || strcmp (self->touched [i].topic, self->touched [i - 1].topic) != 0) {
            bs_msg_t *key = bs_msg_new ();
            bs_msg_set_str (key, BS_FIELD_topic, self->touched [i].topic);
            bs_msg_append (msg, BS_FIELD_items, &key);
        }
    self->touched_count = 0;
    return msg;
}

bs_msg_t *
catalog_read (catalog_t *self, const bs_msg_t *request)
{
    MDB_txn *txn = store_begin (journal_store (self->journal), false);
    if (!txn)
        return bs_msg_new_error (BS_ERR_storage, NULL);
    bs_msg_t *reply;
    bs_op_t op = bs_msg_op (request);
    if (op == BS_OP_search)
        reply = s_search (self, txn, bs_msg_str (request, BS_FIELD_topic));
    else
    if (op == BS_OP_list)
        reply = s_list (self, txn);
    else
    if (op == BS_OP_lookup) {
        int64_t item = bs_msg_int (request, BS_FIELD_item);
        bs_msg_t *book = s_get_book (self, txn, item);
        reply = book? s_book_reply (book): s_unknown_item (item);
        bs_msg_destroy (&book);
    }
    else
        reply = bs_msg_new_error (BS_ERR_unknown_op, "the catalog does not read that way");
    mdb_txn_abort (txn);
    bs_msg_set_int (reply, BS_FIELD_seq, (int64_t) journal_seq (self->journal, CATALOG_PARTITION));
    return reply;
}

bool
catalog_empty (catalog_t *self)
{
    MDB_txn *txn = store_begin (journal_store (self->journal), false);
    if (!txn)
        return false;
    MDB_stat stat;
    mdb_stat (txn, self->books, &stat);
    mdb_txn_abort (txn);
    return stat.ms_entries == 0;
}

//  --------------------------------------------------------------------------
//  Writes; each runs inside the caller's transaction

static bs_msg_t *
s_decrement (catalog_t *self, MDB_txn *txn, const bs_msg_t *request, uint64_t seq, int *rc_p)
{
    int64_t item = bs_msg_int (request, BS_FIELD_item);
    bs_msg_t *book = s_get_book (self, txn, item);
    if (!book)
        return s_unknown_item (item);
    bs_msg_t *reply;
    int64_t stock = bs_msg_int (book, BS_FIELD_stock);
#ifdef BS_MUTANT_OVERSELL
    //  A deliberately broken variant for the mutation tests: sells a copy
    //  even when none is left
    stock = stock > 0? stock: 1;
#endif
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
        //  The order this copy belongs to, the same whoever records it
        size_t rid_size;
        const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
        char order_id [ORDERS_ID_SIZE];
        orders_id_for (rid, order_id);
        bs_msg_set_str (reply, BS_FIELD_order_id, order_id);
        bs_msg_set_int (reply, BS_FIELD_time, bs_clock_wall ());
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

static bs_msg_t *
s_restock (catalog_t *self, MDB_txn *txn, const bs_msg_t *request, uint64_t seq, int *rc_p)
{
    int64_t item = bs_msg_int (request, BS_FIELD_item);
    bs_msg_t *book = s_get_book (self, txn, item);
    if (!book)
        return s_unknown_item (item);
    int64_t stock = bs_msg_int (book, BS_FIELD_stock);
    int64_t count = bs_msg_int (request, BS_FIELD_count);
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
        rc = journal_put (self->journal, txn, self->by_topic, &key, &val);
    }
    *rc_p = rc;
    bs_msg_t *reply = s_book_reply (book);
    bs_msg_destroy (&book);
    return reply;
}

bs_msg_t *
catalog_write (catalog_t *self, MDB_txn *txn, const bs_msg_t *request, int *rc_p)
{
    *rc_p = 0;
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    MDB_val rkey = { rid_size, (void *) rid }, rval;
#ifdef BS_MUTANT_NO_DEDUP
    //  A deliberately broken variant for the mutation tests: a retry runs again
    if (false) {
#else
    if (mdb_get (txn, self->applied, &rkey, &rval) == 0) {
#endif
        bs_err_t err;
        bs_msg_t *reply = bs_msg_decode (rval.mv_data, rval.mv_size, &err, NULL, 0);
        return reply? reply: bs_msg_new_error (BS_ERR_internal, "a stored reply is unreadable");
    }
    uint64_t seq = journal_next_seq (self->journal, CATALOG_PARTITION);
    int rc = 0;
    bs_msg_t *reply = NULL;
    switch (bs_msg_op (request)) {
        case BS_OP_decrement: reply = s_decrement (self, txn, request, seq, &rc); break;
        case BS_OP_set_price: reply = s_set_price (self, txn, request, seq, &rc); break;
        case BS_OP_restock:   reply = s_restock (self, txn, request, seq, &rc); break;
        case BS_OP_add_book:  reply = s_add_book (self, txn, request, seq, &rc); break;
        default:
            return bs_msg_new_error (BS_ERR_unknown_op, "the catalog does not write that way");
    }
#ifdef BS_MUTANT_REFUSED_WRITE_APPLIED
    //  A deliberately broken variant for the mutation tests: an out-of-range
    //  price or count (let through by its codec) is applied, then refused,
    //  and its book is not invalidated
    int64_t cost = bs_msg_int (request, BS_FIELD_cost), count = bs_msg_int (request, BS_FIELD_count);
    if (rc == 0 && bs_msg_int (reply, BS_FIELD_ok) && (cost < 0 || cost > 1000000000
        || (bs_msg_has (request, BS_FIELD_count) && (count < 1 || count > 1000000)))) {
        self->touched_count--;
        bs_msg_destroy (&reply);
        reply = bs_msg_new_error (BS_ERR_bad_field, "a field is out of range");
    }
#endif
    //  The reply is remembered under the rid, refusals too, so that a retry
    //  gets the same answer whatever happened since
    if (rc == 0) {
        size_t size;
        uint8_t *data = bs_msg_encode (reply, &size);
        MDB_val val = { size, data };
        rc = journal_put (self->journal, txn, self->applied, &rkey, &val);
        free (data);
    }
    uint64_t sealed;
    if (rc == 0)
        rc = journal_seal (self->journal, txn, CATALOG_PARTITION, &sealed);
    if (rc != 0) {
        zsys_error ("catalog: write failed: %s", mdb_strerror (rc));
        journal_unseal (self->journal);
        bs_msg_destroy (&reply);
        *rc_p = rc;
        return bs_msg_new_error (BS_ERR_storage, mdb_strerror (rc));
    }
    return reply;
}

//  --------------------------------------------------------------------------

int
catalog_seed_requests (const char *path, zlistx_t *list)
{
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        zsys_error ("catalog: cannot read the initial catalog %s", path);
        return -1;
    }
    int count = 0;
    for (zconfig_t *book = zconfig_child (root); book; book = zconfig_next (book)) {
        if (strcmp (zconfig_name (book), "book") != 0)
            continue;
        int64_t item = 0, cost = 0, stock = 0;
        const char *title = zconfig_get (book, "title", "");
        const char *topic = zconfig_get (book, "topic", "");
        bool good = bs_parse_int (zconfig_get (book, "item", ""), 1, 999999999, &item)
                 && bs_parse_int (zconfig_get (book, "cost", ""), 0, 1000000000, &cost)
                 && bs_parse_int (zconfig_get (book, "stock", ""), 0, 1000000000, &stock);
        bs_msg_t *request = bs_msg_new_request (BS_OP_add_book);
        bs_msg_set_int (request, BS_FIELD_item, item);
        bs_msg_set_str (request, BS_FIELD_title, title);
        bs_msg_set_str (request, BS_FIELD_topic, topic);
        bs_msg_set_int (request, BS_FIELD_cost, cost);
        bs_msg_set_int (request, BS_FIELD_stock, stock);
        //  Through the codec, so the file meets the same limits as requests
        bs_msg_t *checked = NULL;
        if (good) {
            size_t size;
            uint8_t *data = bs_msg_encode (request, &size);
            bs_err_t err;
            checked = bs_msg_decode (data, size, &err, NULL, 0);
            free (data);
        }
        bs_msg_destroy (&request);
        if (!checked) {
            zsys_error ("catalog: %s: book %d is incomplete or out of range", path, count + 1);
            zconfig_destroy (&root);
            return -1;
        }
        zlistx_add_end (list, checked);
        count++;
    }
    zconfig_destroy (&root);
    return count;
}

void
catalog_sold_out_requests (catalog_t *self, int64_t amount, zlistx_t *list)
{
    MDB_txn *txn = store_begin (journal_store (self->journal), false);
    if (!txn)
        return;
    MDB_cursor *cursor;
    if (mdb_cursor_open (txn, self->books, &cursor) == 0) {
        MDB_val key, val;
        int rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
        while (rc == 0) {
            bs_err_t err;
            bs_msg_t *book = bs_msg_decode (val.mv_data, val.mv_size, &err, NULL, 0);
            if (book && bs_msg_int (book, BS_FIELD_stock) == 0) {
                bs_msg_t *request = bs_msg_new_request (BS_OP_restock);
                bs_msg_set_int (request, BS_FIELD_item, bs_msg_int (book, BS_FIELD_item));
                bs_msg_set_int (request, BS_FIELD_count, amount);
                zlistx_add_end (list, request);
            }
            bs_msg_destroy (&book);
            rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    mdb_txn_abort (txn);
}
