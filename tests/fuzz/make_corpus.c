/*  make_corpus - writes the seed corpus of every fuzz target.
 *
 *      make_corpus CORPUS [CRASHES]
 *
 *  writes CORPUS/<target>/<name> for each target, and the inputs of the
 *  known bugs of modules the fuzzing may not change to CRASHES/<target>/.
 *
 *  Seeds are small valid inputs of every kind each target reads (every
 *  request op, replies, control messages, log entries, cache scripts, node
 *  reports, HTTP requests of every route) and edge cases: limits, bad
 *  types, truncation, and inputs that once found bugs.  Request ids are
 *  fixed, so the corpus is the same each time it is written.
 */
#include "bs_entry.h"
#include "bs_msg.h"
#include "cache.h"              //  CACHE_KEY_MAX

#include <czmq.h>
#include <string.h>

static const char *s_root;
static int s_written;

//  --------------------------------------------------------------------------
//  Files

static void
s_write (const char *target, const char *name, const void *data, size_t size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", s_root, target);
    zsys_dir_create ("%s", path);
    snprintf (path, sizeof path, "%s/%s/%s", s_root, target, name);
    FILE *file = fopen (path, "wb");
    if (!file || fwrite (data, 1, size, file) != size) {
        fprintf (stderr, "make_corpus: cannot write %s\n", path);
        exit (1);
    }
    fclose (file);
    s_written++;
}

//  A growing buffer of frames (fuzzing.h's format) or raw bytes
typedef struct {
    uint8_t data [65536];
    size_t size;
} buffer_t;

static void
s_bytes (buffer_t *buffer, const void *data, size_t size)
{
    if (buffer->size + size > sizeof buffer->data) {
        fprintf (stderr, "make_corpus: a seed outgrew its buffer\n");
        exit (1);
    }
    memcpy (buffer->data + buffer->size, data, size);
    buffer->size += size;
}

static void
s_byte (buffer_t *buffer, uint8_t byte)
{
    s_bytes (buffer, &byte, 1);
}

static void
s_frame (buffer_t *buffer, const void *data, size_t size, bool flag)
{
    s_byte (buffer, (uint8_t) ((size >> 8) | (flag? 0x80: 0)));
    s_byte (buffer, (uint8_t) size);
    s_bytes (buffer, data, size);
}

//  A message as one frame (destroys it)
static void
s_frame_msg (buffer_t *buffer, bs_msg_t **msg_p, bool flag)
{
    size_t size;
    uint8_t *data = bs_msg_encode (*msg_p, &size);
    s_frame (buffer, data, size, flag);
    free (data);
    bs_msg_destroy (msg_p);
}

static void
s_write_msg (const char *target, const char *name, bs_msg_t **msg_p)
{
    size_t size;
    uint8_t *data = bs_msg_encode (*msg_p, &size);
    s_write (target, name, data, size);
    free (data);
    bs_msg_destroy (msg_p);
}

//  --------------------------------------------------------------------------
//  Messages

//  A request with a fixed rid: seed n
static bs_msg_t *
s_request (bs_op_t op, int n)
{
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, bs_op_name (op));
    if (bs_op_kind (op) != BS_KIND_CONTROL) {
        uint8_t rid [BS_RID_SIZE];
        for (int i = 0; i < BS_RID_SIZE; i++)
            rid [i] = (uint8_t) (n * 16 + i);
        bs_msg_set_bin (msg, BS_FIELD_rid, rid, sizeof rid);
    }
    return msg;
}

static bs_msg_t *
s_item (bs_op_t op, int n, int64_t item)
{
    bs_msg_t *msg = s_request (op, n);
    bs_msg_set_int (msg, BS_FIELD_item, item);
    return msg;
}

static bs_msg_t *
s_add_book (int n, int64_t item, const char *topic, const char *title, int64_t cost, int64_t stock)
{
    bs_msg_t *msg = s_item (BS_OP_add_book, n, item);
    bs_msg_set_str (msg, BS_FIELD_topic, topic);
    bs_msg_set_str (msg, BS_FIELD_title, title);
    bs_msg_set_int (msg, BS_FIELD_cost, cost);
    bs_msg_set_int (msg, BS_FIELD_stock, stock);
    return msg;
}

static bs_msg_t *
s_with_int (bs_msg_t *msg, bs_field_t field, int64_t value)
{
    bs_msg_set_int (msg, field, value);
    return msg;
}

static bs_msg_t *
s_with_str (bs_msg_t *msg, bs_field_t field, const char *value)
{
    bs_msg_set_str (msg, field, value);
    return msg;
}

static bs_msg_t *
s_book (int64_t item, const char *title, const char *topic, int64_t cost, int64_t stock, int64_t version)
{
    bs_msg_t *book = bs_msg_new ();
    bs_msg_set_int (book, BS_FIELD_item, item);
    bs_msg_set_str (book, BS_FIELD_title, title);
    if (topic)
        bs_msg_set_str (book, BS_FIELD_topic, topic);
    bs_msg_set_int (book, BS_FIELD_cost, cost);
    bs_msg_set_int (book, BS_FIELD_stock, stock);
    bs_msg_set_int (book, BS_FIELD_version, version);
    return book;
}

//  A node's status report: one partition
static bs_msg_t *
s_status (const char *id, const char *service, const char *partition, const char *role,
          int64_t epoch, int64_t seq, const char *isr)
{
    bs_msg_t *msg = s_request (BS_OP_node_status, 0);
    bs_msg_set_str (msg, BS_FIELD_id, id);
    bs_msg_set_str (msg, BS_FIELD_service, service);
    bs_msg_set_str (msg, BS_FIELD_pub, "tcp://127.0.0.1:5565");
    bs_msg_set_str (msg, BS_FIELD_sync, "tcp://127.0.0.1:5566");
    bs_msg_set_str (msg, BS_FIELD_digest, "0123456789abcdef");
    bs_msg_set_int (msg, BS_FIELD_ready, 1);
    bs_msg_set_list (msg, BS_FIELD_partitions);
    bs_msg_t *part = bs_msg_new ();
    bs_msg_set_str (part, BS_FIELD_partition, partition);
    bs_msg_set_str (part, BS_FIELD_role, role);
    bs_msg_set_int (part, BS_FIELD_epoch, epoch);
    bs_msg_set_int (part, BS_FIELD_seq, seq);
    bs_msg_set_int (part, BS_FIELD_head, seq);
    bs_msg_set_int (part, BS_FIELD_ready, 1);
    if (isr)
        bs_msg_set_str (part, BS_FIELD_isr, isr);
    bs_msg_append (msg, BS_FIELD_partitions, &part);
    return msg;
}

//  --------------------------------------------------------------------------
//  fuzz_codec: one body each

static void
s_codec (void)
{
    const char *t = "fuzz_codec";
    bs_msg_t *msg;
    msg = s_with_str (s_request (BS_OP_search, 1), BS_FIELD_topic, "distributed_systems");
    s_write_msg (t, "search", &msg);
    msg = s_item (BS_OP_lookup, 2, 666);
    s_write_msg (t, "lookup", &msg);
    msg = s_request (BS_OP_list, 3);
    s_write_msg (t, "list", &msg);
    msg = s_item (BS_OP_decrement, 4, 321);
    s_write_msg (t, "decrement", &msg);
    msg = s_with_int (s_item (BS_OP_set_price, 5, 666), BS_FIELD_cost, 12);
    s_write_msg (t, "set_price", &msg);
    msg = s_with_int (s_item (BS_OP_restock, 6, 666), BS_FIELD_count, 5);
    s_write_msg (t, "restock", &msg);
    msg = s_add_book (7, 1000, "cooking", "Cooking in C", 3, 4);
    s_write_msg (t, "add_book", &msg);
    msg = s_item (BS_OP_buy, 8, 666);
    s_write_msg (t, "buy", &msg);
    msg = s_request (BS_OP_orders, 9);
    s_write_msg (t, "orders", &msg);
    msg = s_item (BS_OP_orders, 10, 666);
    s_write_msg (t, "orders_item", &msg);
    msg = s_request (BS_OP_status, 11);
    s_write_msg (t, "status", &msg);
    //  Limits
    char title [201], topic [65];
    memset (title, 'x', 200);
    title [200] = 0;
    msg = s_add_book (12, 999999999, "t", title, 1000000000, 1000000000);
    s_write_msg (t, "add_book_limits", &msg);
    //  64 bytes of two-byte UTF-8
    for (int i = 0; i < 64; i += 2)
        memcpy (topic + i, "\xc3\xa9", 2);
    topic [64] = 0;
    msg = s_with_str (s_request (BS_OP_search, 13), BS_FIELD_topic, topic);
    s_write_msg (t, "search_utf8", &msg);
    msg = s_with_int (s_item (BS_OP_restock, 14, 666), BS_FIELD_count, 0);
    s_write_msg (t, "restock_zero", &msg);
    msg = s_item (BS_OP_lookup, 15, 0);
    s_write_msg (t, "lookup_zero", &msg);
    msg = s_item (BS_OP_lookup, 16, -1);
    s_write_msg (t, "lookup_negative", &msg);
    msg = s_with_int (s_item (BS_OP_lookup, 17, 666), BS_FIELD_cost, 1);
    s_write_msg (t, "lookup_extra_field", &msg);
    msg = s_request (BS_OP_lookup, 18);
    s_write_msg (t, "lookup_missing_item", &msg);
    msg = s_item (BS_OP_lookup, 19, 666);
    bs_msg_set_bin (msg, BS_FIELD_rid, "short", 5);
    s_write_msg (t, "lookup_short_rid", &msg);
    msg = s_with_str (s_item (BS_OP_lookup, 20, 666), BS_FIELD_op, "frobnicate");
    s_write_msg (t, "unknown_op", &msg);
    //  Replies
    msg = bs_msg_new_ok ();
    bs_msg_set_int (msg, BS_FIELD_item, 666);
    bs_msg_set_str (msg, BS_FIELD_title, "How to get a good grade in 677 in 20 minutes a day");
    bs_msg_set_str (msg, BS_FIELD_topic, "distributed_systems");
    bs_msg_set_int (msg, BS_FIELD_cost, 10);
    bs_msg_set_int (msg, BS_FIELD_stock, 10);
    bs_msg_set_int (msg, BS_FIELD_version, 1);
    bs_msg_set_int (msg, BS_FIELD_seq, 9);
    s_write_msg (t, "reply_lookup", &msg);
    msg = bs_msg_new_ok ();
    bs_msg_set_str (msg, BS_FIELD_topic, "distributed_systems");
    bs_msg_set_int (msg, BS_FIELD_seq, 9);
    bs_msg_set_list (msg, BS_FIELD_items);
    bs_msg_t *book = s_book (666, "How to get a good grade", NULL, 10, 10, 1);
    bs_msg_append (msg, BS_FIELD_items, &book);
    book = s_book (321, "RPCs for Dummies", NULL, 5, 8, 2);
    bs_msg_append (msg, BS_FIELD_items, &book);
    s_write_msg (t, "reply_search", &msg);
    msg = bs_msg_new_ok ();
    bs_msg_set_list (msg, BS_FIELD_orders);
    bs_msg_t *order = bs_msg_new ();
    bs_msg_set_str (order, BS_FIELD_order_id, "o000102030405060708090a0b0c0d0e0f");
    bs_msg_set_int (order, BS_FIELD_item, 666);
    bs_msg_set_int (order, BS_FIELD_cost, 10);
    bs_msg_set_bin (order, BS_FIELD_rid, "0123456789abcdef", 16);
    bs_msg_set_int (order, BS_FIELD_time, 1700000000000);
    bs_msg_set_str (order, BS_FIELD_status, "paid");
    bs_msg_append (msg, BS_FIELD_orders, &order);
    s_write_msg (t, "reply_orders", &msg);
    msg = bs_msg_new_ok ();
    bs_msg_set_int (msg, BS_FIELD_inflight, 0);
    bs_msg_t *cache = bs_msg_new ();
    bs_msg_set_int (cache, BS_FIELD_capacity, 100000);
    bs_msg_set_int (cache, BS_FIELD_size, 2);
    bs_msg_set_int (cache, BS_FIELD_hits, 7);
    bs_msg_set_int (cache, BS_FIELD_misses, 3);
    bs_msg_set_map (msg, BS_FIELD_cache, &cache);
    bs_msg_set_list (msg, BS_FIELD_nodes);
    bs_msg_t *node = bs_msg_new ();
    bs_msg_set_str (node, BS_FIELD_id, "catalog-1");
    bs_msg_set_str (node, BS_FIELD_service, "catalog");
    bs_msg_set_int (node, BS_FIELD_alive, 1);
    bs_msg_set_str (node, BS_FIELD_role, "primary");
    bs_msg_set_int (node, BS_FIELD_epoch, 1);
    bs_msg_set_int (node, BS_FIELD_seq, 9);
    bs_msg_set_int (node, BS_FIELD_insync, 1);
    bs_msg_set_int (node, BS_FIELD_lag, 0);
    bs_msg_set_str (node, BS_FIELD_digest, "b9ba01c6312fbcc9");
    bs_msg_append (msg, BS_FIELD_nodes, &node);
    s_write_msg (t, "reply_status", &msg);
    msg = bs_msg_new_error (BS_ERR_out_of_stock, "item 666 is out of stock");
    s_write_msg (t, "reply_error", &msg);
    //  Control and replication messages
    msg = s_status ("catalog-1", "catalog", "catalog", "primary", 1, 9, "catalog-2");
    s_write_msg (t, "node_status", &msg);
    msg = s_request (BS_OP_assign, 0);
    bs_msg_set_list (msg, BS_FIELD_partitions);
    bs_msg_t *part = bs_msg_new ();
    bs_msg_set_str (part, BS_FIELD_partition, "catalog");
    bs_msg_set_int (part, BS_FIELD_epoch, 1);
    bs_msg_set_str (part, BS_FIELD_primary, "catalog-1");
    bs_msg_set_str (part, BS_FIELD_source, "catalog-1");
    bs_msg_set_str (part, BS_FIELD_pub, "tcp://127.0.0.1:5565");
    bs_msg_set_str (part, BS_FIELD_sync, "tcp://127.0.0.1:5566");
    bs_msg_set_str (part, BS_FIELD_isr, "catalog-2");
    bs_msg_append (msg, BS_FIELD_partitions, &part);
    s_write_msg (t, "assign", &msg);
    msg = s_request (BS_OP_fetch, 0);
    bs_msg_set_str (msg, BS_FIELD_partition, "catalog");
    bs_msg_set_int (msg, BS_FIELD_seq, 5);
    bs_msg_set_int (msg, BS_FIELD_epoch, 1);
    s_write_msg (t, "fetch", &msg);
    msg = s_request (BS_OP_entries, 0);
    bs_msg_set_str (msg, BS_FIELD_partition, "catalog");
    bs_msg_set_int (msg, BS_FIELD_head, 6);
    bs_msg_set_list (msg, BS_FIELD_entries);
    bs_msg_t *entry = bs_msg_new ();
    bs_msg_set_bin (entry, BS_FIELD_data, "\x94\xa7" "catalog\x01\x06\x90", 12);
    bs_msg_append (msg, BS_FIELD_entries, &entry);
    s_write_msg (t, "entries", &msg);
    msg = s_request (BS_OP_snap_data, 0);
    bs_msg_set_str (msg, BS_FIELD_partition, "catalog");
    bs_msg_set_int (msg, BS_FIELD_seq, 0);
    bs_msg_set_list (msg, BS_FIELD_entries);
    entry = bs_msg_new ();
    bs_msg_set_str (entry, BS_FIELD_db, "books");
    bs_msg_set_bin (entry, BS_FIELD_key, "\x00\x00\x02\x9a", 4);
    bs_msg_set_bin (entry, BS_FIELD_data, "\x80", 1);
    bs_msg_append (msg, BS_FIELD_entries, &entry);
    s_write_msg (t, "snap_data", &msg);
    msg = s_request (BS_OP_ack, 0);
    bs_msg_set_str (msg, BS_FIELD_partition, "order-1.a1b2c3");
    bs_msg_set_int (msg, BS_FIELD_epoch, 1);
    bs_msg_set_int (msg, BS_FIELD_seq, 42);
    bs_msg_set_str (msg, BS_FIELD_id, "order-2");
    s_write_msg (t, "ack", &msg);
    msg = s_request (BS_OP_invalidate, 0);
    bs_msg_set_int (msg, BS_FIELD_version, 10);
    bs_msg_set_list (msg, BS_FIELD_items);
    bs_msg_t *key = bs_msg_new ();
    bs_msg_set_int (key, BS_FIELD_item, 666);
    bs_msg_append (msg, BS_FIELD_items, &key);
    key = bs_msg_new ();
    bs_msg_set_str (key, BS_FIELD_topic, "distributed_systems");
    bs_msg_append (msg, BS_FIELD_items, &key);
    s_write_msg (t, "invalidate", &msg);
    msg = s_request (BS_OP_event, 0);
    bs_msg_set_str (msg, BS_FIELD_kind, "elected");
    bs_msg_set_int (msg, BS_FIELD_time, 1700000000000);
    bs_msg_set_str (msg, BS_FIELD_message, "is primary of the catalog at epoch 2");
    bs_msg_set_str (msg, BS_FIELD_id, "catalog-2");
    bs_msg_set_int (msg, BS_FIELD_epoch, 2);
    s_write_msg (t, "event", &msg);
    //  Malformed msgpack, by hand
    //  (string literals, so sizeof counts their NULs)
#define RAW(name, bytes) { name, bytes, sizeof bytes - 1 }
    static const struct {
        const char *name;
        const char *bytes;
        size_t size;
    } raw [] = {
        RAW ("empty_map",       "\x80"),
        RAW ("not_a_map",       "\x92\x01\x02"),
        RAW ("duplicate_key",   "\x82\xa4item\x01\xa4item\x02"),
        RAW ("key_not_string",  "\x81\x01\x02"),
        RAW ("truncated",       "\x82\xa2op\xa6lookup\xa4ite"),
        RAW ("trailing_bytes",  "\x81\xa2ok\xc3\x00"),
        RAW ("nested_deep",     "\x81\xa5items\x91\x81\xa5items\x91\x80"),
        RAW ("ext_type",        "\x81\xa4item\xd4\x01\x02"),
        RAW ("float_item",      "\x81\xa4item\xcb\x40\x84\xd0\x00\x00\x00\x00\x00"),
        RAW ("uint64_max",      "\x81\xa4item\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
        RAW ("control_char",    "\x81\xa5topic\xa2\x61\x01"),
        RAW ("overlong_utf8",   "\x81\xa5topic\xa2\xc0\xaf"),
        //  Found by fuzzing: a header claiming 2^31 pairs made msgpack-c
        //  allocate 137 GB; and 2^31 + 1 pairs counted as 2 objects
        RAW ("claims_2g_pairs", "\xdf\x86\x86\xa0\xdb"),
        RAW ("claims_pairs_overflow", "\xdf\x80\x00\x00\x01\xa2ok\xc3\xa2ok\xc3"),
        RAW ("claims_4g_items", "\x81\xa5items\xdd\xff\xff\xff\xff\x80"),
    };
#undef RAW
    for (size_t i = 0; i < sizeof raw / sizeof raw [0]; i++)
        s_write (t, raw [i].name, raw [i].bytes, raw [i].size);
}

//  --------------------------------------------------------------------------
//  fuzz_entry: log entries

static void
s_entry_write (const char *name, bs_entry_builder_t *builder, const char *partition, uint64_t epoch, uint64_t seq)
{
    size_t size;
    uint8_t *data = bs_entry_builder_finish (builder, partition, epoch, seq, &size);
    s_write ("fuzz_entry", name, data, size);
    free (data);
    bs_entry_builder_clear (builder);
}

static void
s_entry (void)
{
    bs_entry_builder_t *builder = bs_entry_builder_new ();
    bs_msg_t *book = s_book (666, "How to get a good grade", "distributed_systems", 10, 9, 3);
    size_t size;
    uint8_t *record = bs_msg_encode (book, &size);
    bs_entry_builder_put (builder, "books", "\x00\x00\x02\x9a", 4, record, size);
    bs_entry_builder_put (builder, "applied", "0123456789abcdef", 16, "\x81\xa2ok\xc3", 5);
    s_entry_write ("catalog_put", builder, "catalog", 1, 3);
    bs_entry_builder_put (builder, "by_topic", "cooking", 7, "\x00\x00\x03\xe8", 4);
    bs_entry_builder_del (builder, "by_topic", "cooking", 7, "\x00\x00\x03\xe8", 4);
    bs_entry_builder_del (builder, "books", "\x00\x00\x03\xe8", 4, NULL, 0);
    s_entry_write ("catalog_deletes", builder, "catalog", 2, 4);
    bs_entry_builder_put (builder, "orders", "o000102030405060708090a0b0c0d0e0f", 33, record, size);
    bs_entry_builder_put (builder, "by_item", "\x00\x00\x02\x9a", 4, "o000102030405060708090a0b0c0d0e0f", 33);
    s_entry_write ("order_put", builder, "order-1.a1b2c3", 1, 1);
    s_entry_write ("no_changes", builder, "catalog", 1, 1);
    bs_entry_builder_put (builder, "books", "\x00\x00\x02\x9a", 4, "", 0);
    s_entry_write ("empty_value", builder, "catalog", UINT64_MAX, UINT64_MAX);
    free (record);
    bs_msg_destroy (&book);
    bs_entry_builder_destroy (&builder);
    //  Found by fuzzing: a partition name holding a NUL was applied to the
    //  partition named by its first part (string literals, so sizeof counts
    //  their NULs)
#define RAW_ENTRY(name, bytes) s_write ("fuzz_entry", name, bytes, sizeof bytes - 1)
    RAW_ENTRY ("partition_nul", "\x94\xa9" "catalog\x00x\x01\x01\x90");
    RAW_ENTRY ("db_nul", "\x94\xa7" "catalog\x01\x01\x91\x94\x00\xa3" "b\x00s\xc4\x01k\xc4\x00");
    RAW_ENTRY ("claims_4g_changes", "\x94\xa7" "catalog\x01\x01\xdd\xff\xff\xff\xff");
#undef RAW_ENTRY
}

//  --------------------------------------------------------------------------
//  fuzz_node: sequences of requests

static void
s_node_write (const char *name, buffer_t *buffer)
{
    s_write ("fuzz_node", name, buffer->data, buffer->size);
    buffer->size = 0;
}

static void
s_node (void)
{
    buffer_t b = { .size = 0 };
    bs_msg_t *msg;
    //  One of each read
    msg = s_with_str (s_request (BS_OP_search, 1), BS_FIELD_topic, "distributed_systems");
    s_frame_msg (&b, &msg, false);
    msg = s_item (BS_OP_lookup, 2, 666);
    s_frame_msg (&b, &msg, false);
    msg = s_request (BS_OP_list, 3);
    s_frame_msg (&b, &msg, false);
    msg = s_item (BS_OP_lookup, 4, 5);
    s_frame_msg (&b, &msg, false);
    s_node_write ("reads", &b);
    //  Each write, then reads
    msg = s_item (BS_OP_decrement, 1, 321);
    s_frame_msg (&b, &msg, false);
    msg = s_with_int (s_item (BS_OP_set_price, 2, 666), BS_FIELD_cost, 12);
    s_frame_msg (&b, &msg, false);
    msg = s_with_int (s_item (BS_OP_restock, 3, 666), BS_FIELD_count, 5);
    s_frame_msg (&b, &msg, false);
    msg = s_add_book (4, 1000, "cooking", "Cooking in C", 3, 4);
    s_frame_msg (&b, &msg, true);
    msg = s_with_str (s_request (BS_OP_search, 5), BS_FIELD_topic, "cooking");
    s_frame_msg (&b, &msg, false);
    msg = s_item (BS_OP_lookup, 6, 666);
    s_frame_msg (&b, &msg, false);
    s_node_write ("writes", &b);
    //  Buys, a retried buy, the orders
    msg = s_item (BS_OP_buy, 1, 666);
    s_frame_msg (&b, &msg, true);
    msg = s_item (BS_OP_buy, 1, 666);
    s_frame_msg (&b, &msg, false);
    msg = s_item (BS_OP_buy, 2, 321);
    s_frame_msg (&b, &msg, true);
    msg = s_request (BS_OP_orders, 3);
    s_frame_msg (&b, &msg, false);
    msg = s_item (BS_OP_orders, 4, 666);
    s_frame_msg (&b, &msg, false);
    s_node_write ("buys", &b);
    //  Sold out: a book of one copy bought twice, then restocked
    msg = s_add_book (1, 2000, "rare", "The Last Copy", 2, 1);
    s_frame_msg (&b, &msg, true);
    msg = s_item (BS_OP_buy, 2, 2000);
    s_frame_msg (&b, &msg, false);
    msg = s_item (BS_OP_buy, 3, 2000);
    s_frame_msg (&b, &msg, true);
    msg = s_with_int (s_item (BS_OP_restock, 4, 2000), BS_FIELD_count, 1);
    s_frame_msg (&b, &msg, true);
    msg = s_item (BS_OP_buy, 3, 2000);
    s_frame_msg (&b, &msg, true);
    msg = s_item (BS_OP_lookup, 5, 2000);
    s_frame_msg (&b, &msg, false);
    s_node_write ("sold_out", &b);
    //  Retries: the same rid for every write (one takes effect)
    msg = s_with_int (s_item (BS_OP_restock, 7, 768), BS_FIELD_count, 3);
    s_frame_msg (&b, &msg, false);
    msg = s_with_int (s_item (BS_OP_restock, 7, 768), BS_FIELD_count, 3);
    s_frame_msg (&b, &msg, true);
    msg = s_with_int (s_item (BS_OP_restock, 7, 768), BS_FIELD_count, 3);
    s_frame_msg (&b, &msg, false);
    msg = s_item (BS_OP_decrement, 8, 768);
    s_frame_msg (&b, &msg, false);
    msg = s_item (BS_OP_decrement, 8, 768);
    s_frame_msg (&b, &msg, false);
    s_node_write ("retries", &b);
    //  Limits: restock beyond a billion copies, a book at every limit
    msg = s_with_int (s_item (BS_OP_restock, 1, 666), BS_FIELD_count, 1000000);
    s_frame_msg (&b, &msg, false);
    char title [201];
    memset (title, 'x', 200);
    title [200] = 0;
    msg = s_add_book (2, 999999999, "t", title, 1000000000, 1000000000);
    s_frame_msg (&b, &msg, true);
    msg = s_with_int (s_item (BS_OP_restock, 3, 999999999), BS_FIELD_count, 1);
    s_frame_msg (&b, &msg, false);
    msg = s_add_book (4, 999999999, "t", "again", 1, 1);
    s_frame_msg (&b, &msg, false);
    s_node_write ("limits", &b);
    //  Unknown items, ops of other services, malformed frames
    msg = s_with_int (s_item (BS_OP_set_price, 1, 5), BS_FIELD_cost, 1);
    s_frame_msg (&b, &msg, false);
    msg = s_item (BS_OP_buy, 2, 5);
    s_frame_msg (&b, &msg, true);
    msg = s_request (BS_OP_status, 3);
    s_frame_msg (&b, &msg, false);
    msg = s_status ("catalog-1", "catalog", "catalog", "primary", 1, 1, "");
    s_frame_msg (&b, &msg, false);
    s_frame (&b, "\x82\xa2op\xa6lookup\xa4ite", 15, false);
    s_frame (&b, "\xdf\x86\x86\xa0\xdb", 5, false);
    s_node_write ("refusals", &b);
    //  A rid used by a price change, then by a buy: the catalog answers the
    //  buy's decrement with the stored price change, which grants no order
    //  (a known bug, also in tests/fuzz/crashes/fuzz_node)
    msg = s_with_int (s_item (BS_OP_set_price, 9, 666), BS_FIELD_cost, 11);
    s_frame_msg (&b, &msg, true);
    msg = s_item (BS_OP_buy, 9, 666);
    s_frame_msg (&b, &msg, true);
    msg = s_request (BS_OP_orders, 3);
    s_frame_msg (&b, &msg, false);
    s_node_write ("rid_reused_by_buy", &b);
}

//  --------------------------------------------------------------------------
//  fuzz_cache: scripts (see fuzz_cache.c for the operations)

static void
s_key (buffer_t *b, const char *key, size_t size)
{
    s_byte (b, (uint8_t) size);
    s_bytes (b, key, size);
}

static void
s_cache (void)
{
    buffer_t b = { .size = 0 };
    //  16 entries, 4 KB, no TTL: base floor 5, puts, gets, invalidations
    s_bytes (&b, "\x10\x03\xf0\x00", 4);
    s_bytes (&b, "\x03\x00\x05", 3);
    s_byte (&b, 0); s_key (&b, "l\x9a\x02\0\0\0\0\0\0", 9); s_bytes (&b, "\x00\x06\x20", 3);
    s_byte (&b, 1); s_key (&b, "l\x9a\x02\0\0\0\0\0\0", 9);
    s_byte (&b, 2); s_key (&b, "l\x9a\x02\0\0\0\0\0\0", 9); s_bytes (&b, "\x00\x08", 2);
    s_byte (&b, 0); s_key (&b, "l\x9a\x02\0\0\0\0\0\0", 9); s_bytes (&b, "\x00\x07\x20", 3);
    s_byte (&b, 0); s_key (&b, "l\x9a\x02\0\0\0\0\0\0", 9); s_bytes (&b, "\x00\x08\x20", 3);
    s_byte (&b, 1); s_key (&b, "l\x9a\x02\0\0\0\0\0\0", 9);
    s_byte (&b, 6); s_key (&b, "l\x9a\x02\0\0\0\0\0\0", 9);
    s_byte (&b, 0); s_key (&b, "sdistributed_systems", 20); s_bytes (&b, "\x00\x09\x80", 3);
    s_byte (&b, 1); s_key (&b, "sdistributed_systems", 20);
    s_write ("fuzz_cache", "floors", b.data, b.size);
    b.size = 0;
    //  2 entries: eviction; a TTL of 50 ms: expiry; a clear
    s_bytes (&b, "\x02\x00\x40\x0a", 4);
    s_bytes (&b, "\x03\x00\x00", 3);
    for (int i = 0; i < 4; i++) {
        char key [2] = { 'k', (char) ('0' + i) };
        s_byte (&b, 0); s_key (&b, key, 2); s_bytes (&b, "\x00\x01\x10", 3);
        s_byte (&b, 1); s_key (&b, "k0", 2);
    }
    s_byte (&b, 5); s_byte (&b, 10);
    s_byte (&b, 1); s_key (&b, "k3", 2);
    s_byte (&b, 4);
    s_byte (&b, 1); s_key (&b, "k3", 2);
    s_write ("fuzz_cache", "evict_expire_clear", b.data, b.size);
    b.size = 0;
    //  Floors before the base floor is known, a key beyond the key limit,
    //  the cache off
    s_bytes (&b, "\x00\x01\x00\x00", 4);
    s_byte (&b, 2); s_key (&b, "a", 1); s_bytes (&b, "\x00\x09", 2);
    s_byte (&b, 0); s_key (&b, "a", 1); s_bytes (&b, "\x00\x09\x00", 3);
    s_write ("fuzz_cache", "off", b.data, b.size);
    b.size = 0;
    s_bytes (&b, "\x08\x01\x00\x00", 4);
    s_byte (&b, 2); s_key (&b, "a", 1); s_bytes (&b, "\x00\x09", 2);
    s_byte (&b, 3); s_bytes (&b, "\x00\x02", 2);
    s_byte (&b, 0); s_key (&b, "a", 1); s_bytes (&b, "\x00\x08\x00", 3);
    s_byte (&b, 0); s_key (&b, "a", 1); s_bytes (&b, "\x00\x09\x00", 3);
    char long_key [88];
    memset (long_key, 'z', sizeof long_key);
    s_byte (&b, 0); s_key (&b, long_key, sizeof long_key); s_bytes (&b, "\x00\x09\x00", 3);
    s_byte (&b, 2); s_key (&b, long_key, sizeof long_key); s_bytes (&b, "\x00\x09", 2);
    s_write ("fuzz_cache", "before_base", b.data, b.size);
    b.size = 0;
    //  Past the bound on floors, which fold into the base floor
    s_bytes (&b, "\x08\x01\x00\x80", 4);
    s_byte (&b, 3); s_bytes (&b, "\x00\x01", 2);
    s_byte (&b, 0); s_key (&b, "a", 1); s_bytes (&b, "\x00\x02\x00", 3);
    s_byte (&b, 7); s_byte (&b, 'Z'); s_bytes (&b, "\x00\x30", 2);
    s_byte (&b, 1); s_key (&b, "a", 1);
    s_byte (&b, 0); s_key (&b, "b", 1); s_bytes (&b, "\x00\x20", 2);
    s_byte (&b, 6); s_key (&b, "b", 1);
    s_write ("fuzz_cache", "floors_folded", b.data, b.size);
    b.size = 0;
    //  The broker's keys: a lookup cached, its item invalidated, the lookup
    //  misses; a search likewise by its topic; reads the cache does not
    //  answer (a short rid, a topic too long for a key, a buy's body)
    const uint8_t item [8] = { 0, 0, 0, 0, 0, 0, 0x02, 0x9a };     //  666
    const char *topic = "distributed systems";
    s_bytes (&b, "\x10\x03\xf0\x00", 4);
    s_bytes (&b, "\x03\x00\x01", 3);
    s_byte (&b, 0); s_bytes (&b, "\xf8\x00\x10", 3); s_bytes (&b, item, 8); s_bytes (&b, "\x00\x05\x20", 3);
    s_byte (&b, 1); s_byte (&b, 0xf0); s_bytes (&b, item, 8);
    s_byte (&b, 2); s_byte (&b, 0xf0); s_bytes (&b, item, 8); s_bytes (&b, "\x00\x09", 2);
    s_byte (&b, 1); s_bytes (&b, "\xf8\x00\x10", 3); s_bytes (&b, item, 8);
    s_byte (&b, 0); s_bytes (&b, "\xf9\x01\x10", 3); s_key (&b, topic, strlen (topic)); s_bytes (&b, "\x00\x09\x20", 3);
    s_byte (&b, 1); s_byte (&b, 0xf4); s_key (&b, topic, strlen (topic));
    s_byte (&b, 2); s_byte (&b, 0xf4); s_key (&b, topic, strlen (topic)); s_bytes (&b, "\x00\x0a", 2);
    s_byte (&b, 6); s_bytes (&b, "\xf9\x01\x10", 3); s_key (&b, topic, strlen (topic));
    s_byte (&b, 1); s_bytes (&b, "\xf9\x01\x0f", 3); s_key (&b, topic, strlen (topic));
    s_byte (&b, 1); s_byte (&b, 0xf4); s_key (&b, long_key, CACHE_KEY_MAX);      //  one byte too long
    bs_msg_t *msg = s_item (BS_OP_lookup, 6, 666);
    size_t size;
    uint8_t *data = bs_msg_encode (msg, &size);
    s_byte (&b, 1); s_bytes (&b, "\xfa\x02", 2); s_key (&b, (const char *) data, size);
    free (data);
    bs_msg_destroy (&msg);
    msg = s_item (BS_OP_buy, 6, 666);
    data = bs_msg_encode (msg, &size);
    s_byte (&b, 1); s_bytes (&b, "\xfa\x02", 2); s_key (&b, (const char *) data, size);
    free (data);
    bs_msg_destroy (&msg);
    s_write ("fuzz_cache", "broker_keys", b.data, b.size);
}

//  --------------------------------------------------------------------------
//  fuzz_control: node reports (see fuzz_control.c for the commands)

static void
s_report (buffer_t *b, uint8_t command, uint8_t node, bs_msg_t **status_p)
{
    buffer_t frame = { .size = 0 };
    s_byte (&frame, command);
    s_byte (&frame, node);
    if (status_p && *status_p) {
        size_t size;
        uint8_t *data = bs_msg_encode (*status_p, &size);
        s_bytes (&frame, data, size);
        free (data);
        bs_msg_destroy (status_p);
    }
    s_frame (b, frame.data, frame.size, false);
}

//  A READY with an id of the node's own choosing and a status
static void
s_ready_as (buffer_t *b, uint8_t node, const char *id, size_t id_size, bs_msg_t **status_p)
{
    buffer_t frame = { .size = 0 };
    s_byte (&frame, 0);
    s_byte (&frame, node);
    s_bytes (&frame, id, id_size);
    s_byte (&frame, 0);
    size_t size;
    uint8_t *data = bs_msg_encode (*status_p, &size);
    s_bytes (&frame, data, size);
    free (data);
    bs_msg_destroy (status_p);
    s_frame (b, frame.data, frame.size, true);
}

static void
s_control (void)
{
    buffer_t b = { .size = 0 };
    //  Two catalog and two order nodes join; the catalog elects; its
    //  primary reports the follower in sync, then dies; the follower is
    //  elected at the next epoch; the old primary returns
    bs_msg_t *status;
    status = s_status ("catalog-1", "catalog", "catalog", "follower", 0, 0, NULL);
    s_report (&b, 0, 0, &status);
    status = s_status ("catalog-2", "catalog", "catalog", "follower", 0, 0, NULL);
    s_report (&b, 0, 1, &status);
    status = s_status ("order-1", "order", "order-1.a1b2c3", "primary", 1, 3, "");
    s_report (&b, 0, 4, &status);
    status = s_status ("order-2", "order", "order-2.d4e5f6", "primary", 1, 2, "");
    s_report (&b, 0, 5, &status);
    status = s_status ("catalog-1", "catalog", "catalog", "primary", 1, 5, "catalog-2");
    s_report (&b, 1, 0, &status);
    status = s_status ("catalog-2", "catalog", "catalog", "follower", 1, 5, NULL);
    s_report (&b, 1, 1, &status);
    s_report (&b, 3, 0, NULL);
    s_report (&b, 3, 4, NULL);
    s_report (&b, 2, 0, NULL);
    status = s_status ("catalog-2", "catalog", "catalog", "primary", 2, 5, "");
    s_report (&b, 1, 1, &status);
    status = s_status ("catalog-1", "catalog", "catalog", "primary", 1, 6, "");
    s_report (&b, 0, 0, &status);
    s_report (&b, 3, 1, NULL);
    s_write ("fuzz_control", "failover", b.data, b.size);
    b.size = 0;
    //  A fresh broker: a node that still claims the role keeps it
    status = s_status ("catalog-1", "catalog", "catalog", "primary", 7, 40, "catalog-2");
    s_report (&b, 0, 0, &status);
    status = s_status ("catalog-2", "catalog", "catalog", "follower", 7, 40, NULL);
    s_report (&b, 0, 1, &status);
    s_report (&b, 2, 0, NULL);
    s_write ("fuzz_control", "restarted_broker", b.data, b.size);
    b.size = 0;
    //  A node with an id of its own, reports at the limits (one below the
    //  largest epoch: at the largest, the next election overflows, a known
    //  bug once, now refused: the epoch_overflow seed)
    buffer_t frame = { .size = 0 };
    s_byte (&frame, 0);
    s_byte (&frame, 2);
    s_bytes (&frame, "catalog-9", 10);
    status = s_status ("catalog-9", "catalog", "catalog", "primary", 9007199254740990, 9007199254740991, "catalog-1,catalog-2");
    size_t size;
    uint8_t *data = bs_msg_encode (status, &size);
    s_bytes (&frame, data, size);
    free (data);
    bs_msg_destroy (&status);
    s_frame (&b, frame.data, frame.size, true);
    status = s_status ("catalog-1", "catalog", "catalog", "follower", 9007199254740990, 1, NULL);
    s_report (&b, 0, 0, &status);
    s_report (&b, 2, 2, NULL);
    s_write ("fuzz_control", "limits", b.data, b.size);
    b.size = 0;
    //  Inputs that once found bugs (tests/fuzz/crashes/README.md), which
    //  the broker now refuses.  A node reports the largest epoch there is:
    //  the election that followed assigned one more, which every node
    //  refused
    status = s_status ("catalog-1", "catalog", "catalog", "follower", 9007199254740991, 4, NULL);
    s_report (&b, 0, 0, &status);
    status = s_status ("catalog-2", "catalog", "catalog", "follower", 1, 3, NULL);
    s_report (&b, 0, 1, &status);
    s_write ("fuzz_control", "epoch_overflow", b.data, b.size);
    b.size = 0;
    //  A node id with a control character: elected, it was in assignments
    //  no node could decode
    status = s_status ("catalog-1", "catalog", "catalog", "follower", 0, 0, NULL);
    s_ready_as (&b, 0, "catalog\x01", 8, &status);
    s_write ("fuzz_control", "node_id_not_text", b.data, b.size);
    b.size = 0;
    //  An order node announces the id catalog-1 first; the catalog node
    //  catalog-1 then claims the catalog: writes went to neither
    status = s_status ("catalog-1", "order", "catalog-1.a1b2c3", "primary", 1, 1, "");
    s_ready_as (&b, 4, "catalog-1", 9, &status);
    status = s_status ("catalog-1", "catalog", "catalog", "primary", 1, 5, "");
    s_report (&b, 0, 0, &status);
    s_write ("fuzz_control", "node_id_twice", b.data, b.size);
    b.size = 0;
    //  An order node reports the catalog partition as its primary: it
    //  became the catalog's primary
    status = s_status ("order-1", "order", "catalog", "primary", 1, 5, "");
    s_report (&b, 0, 4, &status);
    s_write ("fuzz_control", "catalog_claimed_by_order_node", b.data, b.size);
    b.size = 0;
    //  A node takes the id of a dead one; the dead one comes back under its
    //  own routing id: refused while the id is the newcomer's
    status = s_status ("catalog-7", "catalog", "catalog", "follower", 1, 1, NULL);
    s_ready_as (&b, 0, "catalog-7", 9, &status);
    s_report (&b, 2, 0, NULL);
    status = s_status ("catalog-7", "catalog", "catalog", "primary", 2, 2, "");
    s_ready_as (&b, 1, "catalog-7", 9, &status);
    status = s_status ("catalog-7", "catalog", "catalog", "primary", 1, 1, "");
    s_ready_as (&b, 0, "catalog-7", 9, &status);
    s_report (&b, 3, 0, NULL);
    s_write ("fuzz_control", "node_id_after_death", b.data, b.size);
    b.size = 0;
    //  A plain Majordomo worker (no id: its routing id in hex, 4e00) after
    //  an order node announced 4e00: refused
    status = s_status ("4e00", "order", "order-1.a1b2c3", "primary", 1, 1, "");
    s_ready_as (&b, 4, "4e00", 4, &status);
    status = s_status ("4e00", "catalog", "catalog", "primary", 1, 1, "");
    s_ready_as (&b, 0, "", 0, &status);
    s_report (&b, 3, 0, NULL);
    s_write ("fuzz_control", "plain_worker_id_taken", b.data, b.size);
    b.size = 0;
    //  A node reports one below the largest epoch there is (taken: only the
    //  largest is refused), dies and returns.  Electing it would assign the
    //  largest epoch, at which its reports are dropped, and the election
    //  after that one more, which every node refuses (a bug once, found by
    //  fuzzing): the broker elects nobody
    status = s_status ("catalog-1", "catalog", "catalog", "follower", 9007199254740990, 4, NULL);
    s_report (&b, 0, 0, &status);
    s_report (&b, 2, 0, NULL);
    status = s_status ("catalog-1", "catalog", "catalog", "follower", 9007199254740990, 4, NULL);
    s_report (&b, 0, 0, &status);
    s_write ("fuzz_control", "epoch_past_ceiling", b.data, b.size);
}

//  --------------------------------------------------------------------------
//  Known bugs of modules the fuzzing may not change: their inputs, written
//  to the crashes folder (they run clean unless FUZZ_STRICT=1)

static void
s_known (const char *crashes)
{
    const char *root = s_root;
    s_root = crashes;
    buffer_t b = { .size = 0 };
    //  A buy whose rid a price change used first: the catalog answers its
    //  decrement with the stored price change, which grants no order, and
    //  the order node answers storage
    bs_msg_t *msg = s_with_int (s_item (BS_OP_set_price, 9, 666), BS_FIELD_cost, 11);
    s_frame_msg (&b, &msg, true);
    msg = s_item (BS_OP_buy, 9, 666);
    s_frame_msg (&b, &msg, true);
    s_write ("fuzz_node", "rid_reused_by_buy", b.data, b.size);
    s_root = root;
}

//  --------------------------------------------------------------------------
//  fuzz_gateway: HTTP requests

#define TOKEN "Authorization: Bearer fuzz-admin-token-0123456789abcdef\n"
#define JSON "Content-Type: application/json\n"

static void
s_gateway (void)
{
    static const struct {
        const char *name;
        const char *text;
    } requests [] = {
        { "page",            "GET /\n\n" },
        { "static",          "GET /static/app.js\n\n" },
        { "static_missing",  "GET /static/../../etc/passwd\n\n" },
        { "legacy_search",   "GET /search/distributed_systems\n\n" },
        { "legacy_lookup",   "GET /lookup/666\n\n" },
        { "legacy_buy",      "GET /buy/666\n\n" },
        { "books",           "GET /books\n\n" },
        { "books_topic",     "GET /books?topic=graduate_school\n\n" },
        { "book",            "GET /books/666\n\n" },
        { "head_book",       "HEAD /books/666\n\n" },
        { "add_book",        "POST /books\n" JSON TOKEN "\n{\"item\": 1000, \"topic\": \"cooking\", \"title\": \"Cooking in C\", \"cost\": 3, \"stock\": 4}" },
        { "set_price",       "PUT /books/666/price\n" JSON TOKEN "\n{\"cost\": 12}" },
        { "restock",         "POST /books/666/restock\n" JSON TOKEN "\n{\"count\": 5}" },
        { "restock_no_token", "POST /books/666/restock\n" JSON "\n{\"count\": 5}" },
        { "restock_bad_token", "POST /books/666/restock\n" JSON "Authorization: Bearer fuzz-admin-token-0123456789abcdeF\n\n{\"count\": 5}" },
        { "restock_unconfigured", "!POST /books/666/restock\n" JSON TOKEN "\n{\"count\": 5}" },
        { "buy",             "POST /orders\n" JSON "\n{\"item\": 666}" },
        { "buy_idempotent",  "POST /orders\n" JSON "Idempotency-Key: 0123456789abcdef0123456789abcdef\n\n{\"item\": 666}" },
        { "buy_bad_key",     "POST /orders\n" JSON "Idempotency-Key: nothex\n\n{\"item\": 666}" },
        { "orders",          "GET /orders\n\n" },
        { "orders_item",     "GET /orders?item=666\n\n" },
        { "cluster",         "GET /cluster\n\n" },
        { "healthz",         "GET /healthz\n\n" },
        { "metrics",         "GET /metrics\n\n" },
        { "bad_json",        "POST /orders\n" JSON "\n{\"item\": " },
        { "json_array",      "POST /orders\n" JSON "\n[666]" },
        { "json_duplicate",  "POST /orders\n" JSON "\n{\"item\": 1, \"item\": 2}" },
        { "json_nul",        "POST /books\n" JSON TOKEN "\n{\"item\": 9, \"topic\": \"a\\u0000b\", \"title\": \"x\", \"cost\": 1, \"stock\": 1}" },
        { "wrong_type",      "POST /orders\n" JSON "\n{\"item\": \"666\"}" },
        { "not_json_type",   "POST /orders\nContent-Type: text/plain\n\n{\"item\": 666}" },
        { "item_text",       "GET /books/12abc\n\n" },
        { "item_huge",       "GET /books/99999999999999999999\n\n" },
        { "topic_empty",     "GET /books?topic=\n\n" },
        { "topic_binary",    "GET /search/\xff\xfe\n\n" },
        { "method",          "DELETE /books/666\n\n" },
        { "unknown",         "GET /nope/nope\n\n" },
        { "too_many_segments", "GET /a/b/c/d/e/f/g/h/i/j\n\n" },
        { "client_a",        "GET /books/666\nX-Client: 198.51.100.1\n\n" },
        { "client_b",        "GET /healthz\nX-Client: 2001:db8::/64\n\n" },
    };
    for (size_t i = 0; i < sizeof requests / sizeof requests [0]; i++)
        s_write ("fuzz_gateway", requests [i].name, requests [i].text, strlen (requests [i].text));
}

int
main (int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf (stderr, "usage: make_corpus CORPUS [CRASHES]\n");
        return 2;
    }
    s_root = argv [1];
    if (argc == 3)
        s_known (argv [2]);
    s_codec ();
    s_entry ();
    s_node ();
    s_cache ();
    s_control ();
    s_gateway ();
    printf ("make_corpus: wrote %d seeds under %s\n", s_written, s_root);
    return 0;
}
