/*  test_codec - the schema-driven msgpack codec: round trips and bad input  */
#include "bs_entry.h"
#include "bs_msg.h"
#include "testing.h"

#include <czmq.h>
#include <msgpack.h>
#include <string.h>

static bs_msg_t *
s_round_trip (const bs_msg_t *msg)
{
    size_t size;
    uint8_t *data = bs_msg_encode (msg, &size);
    bs_err_t err;
    bs_msg_t *copy = bs_msg_decode (data, size, &err, NULL, 0);
    free (data);
    return copy;
}

//  Packs a map from alternating key / packer callbacks, for hand-made bodies
typedef struct { msgpack_sbuffer sbuf; msgpack_packer pk; } raw_t;

static void raw_init (raw_t *r) {
    msgpack_sbuffer_init (&r->sbuf);
    msgpack_packer_init (&r->pk, &r->sbuf, msgpack_sbuffer_write);
}
static void raw_key (raw_t *r, const char *k) { msgpack_pack_str_with_body (&r->pk, k, strlen (k)); }

static bs_err_t
s_decode_err (raw_t *r, char *reason, size_t reason_size)
{
    bs_err_t err = BS_OK;
    bs_msg_t *msg = bs_msg_decode (r->sbuf.data, r->sbuf.size, &err, reason, reason_size);
    if (msg && err == BS_OK)
        err = bs_msg_validate_request (msg, reason, reason_size);
    bs_msg_destroy (&msg);
    msgpack_sbuffer_destroy (&r->sbuf);
    return err;
}

static void
test_request_round_trip (void)
{
    bs_msg_t *msg = bs_msg_new_request (BS_OP_add_book);
    bs_msg_set_int (msg, BS_FIELD_item, 666);
    bs_msg_set_str (msg, BS_FIELD_topic, "distributed_systems");
    bs_msg_set_str (msg, BS_FIELD_title, "How to get a good grade in 677 in 20 minutes a day");
    bs_msg_set_int (msg, BS_FIELD_cost, 10);
    bs_msg_set_int (msg, BS_FIELD_stock, 10);
    bs_msg_t *copy = s_round_trip (msg);
    CHECK (copy);
    if (copy) {
        CHECK (bs_msg_validate_request (copy, NULL, 0) == BS_OK);
        CHECK (bs_msg_op (copy) == BS_OP_add_book);
        CHECK (bs_msg_int (copy, BS_FIELD_item) == 666);
        CHECK (strcmp (bs_msg_str (copy, BS_FIELD_topic), "distributed_systems") == 0);
        CHECK (bs_msg_int (copy, BS_FIELD_stock) == 10);
        size_t n1, n2;
        const uint8_t *r1 = bs_msg_bin (msg, BS_FIELD_rid, &n1);
        const uint8_t *r2 = bs_msg_bin (copy, BS_FIELD_rid, &n2);
        CHECK (n1 == 16 && n2 == 16 && memcmp (r1, r2, 16) == 0);
    }
    bs_msg_destroy (&copy);
    bs_msg_destroy (&msg);
    CHECK (msg == NULL);
}

static void
test_list_round_trip (void)
{
    bs_msg_t *msg = bs_msg_new_ok ();
    bs_msg_set_str (msg, BS_FIELD_topic, "graduate_school");
    for (int i = 0; i < 3; i++) {
        bs_msg_t *book = bs_msg_new ();
        bs_msg_set_int (book, BS_FIELD_item, 100 + i);
        bs_msg_set_str (book, BS_FIELD_title, "A \"quoted\" title");
        bs_msg_append (msg, BS_FIELD_items, &book);
        CHECK (book == NULL);
    }
    bs_msg_t *copy = s_round_trip (msg);
    CHECK (copy && bs_msg_count (copy, BS_FIELD_items) == 3);
    if (copy) {
        CHECK (bs_msg_int (bs_msg_at (copy, BS_FIELD_items, 2), BS_FIELD_item) == 102);
        char *json = bs_msg_to_json (copy);
        CHECK (strstr (json, "\"items\":[{\"item\":100,\"title\":\"A \\\"quoted\\\" title\"}") != NULL);
        CHECK (strncmp (json, "{\"ok\":true,", 11) == 0);
        free (json);
    }
    bs_msg_destroy (&copy);
    bs_msg_destroy (&msg);
}

static void
test_error_reply (void)
{
    bs_msg_t *msg = bs_msg_new_error (BS_ERR_out_of_stock, NULL);
    char *json = bs_msg_to_json (msg);
    CHECK (strcmp (json, "{\"ok\":false,\"error\":\"out_of_stock\",\"message\":\"the book is out of stock\"}") == 0);
    free (json);
    bs_msg_destroy (&msg);
}

static void
test_malformed_msgpack (void)
{
    bs_err_t err;
    const uint8_t junk [] = { 0xc1, 0x00, 0xff };
    CHECK (bs_msg_decode (junk, sizeof junk, &err, NULL, 0) == NULL && err == BS_ERR_bad_msgpack);
    //  A truncated map: says two entries, holds one
    const uint8_t truncated [] = { 0x82, 0xa2, 'o', 'p', 0xa4, 'l', 'i', 's', 't' };
    CHECK (bs_msg_decode (truncated, sizeof truncated, &err, NULL, 0) == NULL && err == BS_ERR_bad_msgpack);
    //  Not a map at all
    const uint8_t number [] = { 0x05 };
    CHECK (bs_msg_decode (number, sizeof number, &err, NULL, 0) == NULL && err == BS_ERR_bad_msgpack);
    //  Trailing garbage after a valid map
    const uint8_t trailing [] = { 0x80, 0x00 };
    CHECK (bs_msg_decode (trailing, sizeof trailing, &err, NULL, 0) == NULL && err == BS_ERR_bad_msgpack);
    CHECK (bs_msg_decode ("", 0, &err, NULL, 0) == NULL && err == BS_ERR_bad_msgpack);
}

static void
test_wrong_types_and_limits (void)
{
    char reason [128];
    raw_t r;
    uint8_t rid [16] = { 1 };

    //  item as a string
    raw_init (&r);
    msgpack_pack_map (&r.pk, 3);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "lookup", 6);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 16);
    raw_key (&r, "item"); msgpack_pack_str_with_body (&r.pk, "666", 3);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_bad_field);
    CHECK (strstr (reason, "item") != NULL);

    //  negative restock count
    raw_init (&r);
    msgpack_pack_map (&r.pk, 4);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "restock", 7);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 16);
    raw_key (&r, "item"); msgpack_pack_int64 (&r.pk, 666);
    raw_key (&r, "count"); msgpack_pack_int64 (&r.pk, -5);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_bad_field);
    CHECK (strstr (reason, "count") != NULL);

    //  absurd price
    raw_init (&r);
    msgpack_pack_map (&r.pk, 4);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "set_price", 9);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 16);
    raw_key (&r, "item"); msgpack_pack_int64 (&r.pk, 666);
    raw_key (&r, "cost"); msgpack_pack_uint64 (&r.pk, UINT64_MAX);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_bad_field);

    //  over-long title
    char title [300];
    memset (title, 'x', sizeof title);
    raw_init (&r);
    msgpack_pack_map (&r.pk, 7);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "add_book", 8);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 16);
    raw_key (&r, "item"); msgpack_pack_int64 (&r.pk, 1);
    raw_key (&r, "topic"); msgpack_pack_str_with_body (&r.pk, "t", 1);
    raw_key (&r, "title"); msgpack_pack_str_with_body (&r.pk, title, sizeof title);
    raw_key (&r, "cost"); msgpack_pack_int64 (&r.pk, 1);
    raw_key (&r, "stock"); msgpack_pack_int64 (&r.pk, 1);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_bad_field);
    CHECK (strstr (reason, "title") != NULL);

    //  over-long topic
    raw_init (&r);
    msgpack_pack_map (&r.pk, 3);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "search", 6);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 16);
    raw_key (&r, "topic"); msgpack_pack_str_with_body (&r.pk, title, 65);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_bad_field);

    //  control characters in text
    raw_init (&r);
    msgpack_pack_map (&r.pk, 3);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "search", 6);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 16);
    raw_key (&r, "topic"); msgpack_pack_str_with_body (&r.pk, "a\nb", 3);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_bad_field);

    //  a short rid
    raw_init (&r);
    msgpack_pack_map (&r.pk, 2);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "list", 4);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 4);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_bad_field);
}

static void
test_request_shape (void)
{
    char reason [128];
    raw_t r;
    uint8_t rid [16] = { 2 };

    //  unknown op
    raw_init (&r);
    msgpack_pack_map (&r.pk, 2);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "steal", 5);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 16);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_unknown_op);
    CHECK (strstr (reason, "steal") != NULL);

    //  missing required item
    raw_init (&r);
    msgpack_pack_map (&r.pk, 2);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "buy", 3);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 16);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_missing_field);
    CHECK (strstr (reason, "item") != NULL);

    //  missing rid
    raw_init (&r);
    msgpack_pack_map (&r.pk, 1);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "list", 4);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_missing_field);

    //  unknown field
    raw_init (&r);
    msgpack_pack_map (&r.pk, 3);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "list", 4);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 16);
    raw_key (&r, "price"); msgpack_pack_int64 (&r.pk, 3);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_bad_field);
    CHECK (strstr (reason, "price") != NULL);

    //  a known field the op does not take
    raw_init (&r);
    msgpack_pack_map (&r.pk, 4);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "lookup", 6);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 16);
    raw_key (&r, "item"); msgpack_pack_int64 (&r.pk, 666);
    raw_key (&r, "title"); msgpack_pack_str_with_body (&r.pk, "x", 1);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_bad_field);
    CHECK (strstr (reason, "title") != NULL);

    //  duplicate key
    raw_init (&r);
    msgpack_pack_map (&r.pk, 3);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "list", 4);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, rid, 16);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "list", 4);
    CHECK (s_decode_err (&r, reason, sizeof reason) == BS_ERR_bad_field);

    //  a well-formed orders request with its optional filter
    bs_msg_t *msg = bs_msg_new_request (BS_OP_orders);
    bs_msg_set_int (msg, BS_FIELD_item, 5);
    CHECK (bs_msg_validate_request (msg, reason, sizeof reason) == BS_OK);
    bs_msg_destroy (&msg);
}

static void
test_oversized (void)
{
    size_t size = BS_MAX_BODY + 1;
    uint8_t *big = calloc (1, size);
    bs_err_t err;
    CHECK (bs_msg_decode (big, size, &err, NULL, 0) == NULL && err == BS_ERR_too_large);
    free (big);
}

static void
test_table_lookups (void)
{
    CHECK (bs_op_lookup ("buy", 3) == BS_OP_buy);
    CHECK (strcmp (bs_op_service (BS_OP_buy), "order") == 0);
    CHECK (strcmp (bs_op_service (BS_OP_lookup), "catalog") == 0);
    CHECK (bs_op_lookup ("bu", 2) == BS_OP_COUNT);
    CHECK (strcmp (bs_err_name (BS_ERR_unknown_item), "unknown_item") == 0);
}

static void
test_peek_op (void)
{
    bs_msg_t *msg = bs_msg_new_request (BS_OP_set_price);
    bs_msg_set_int (msg, BS_FIELD_item, 70000);
    bs_msg_set_int (msg, BS_FIELD_cost, 5);
    size_t size;
    uint8_t *data = bs_msg_encode (msg, &size);
    CHECK (bs_peek_op (data, size) == BS_OP_set_price);
    //  Every truncation is refused, never read past the end
    for (size_t n = 0; n < size; n++) {
        uint8_t *cut = malloc (n? n: 1);
        memcpy (cut, data, n);
        bs_op_t op = bs_peek_op (cut, n);
        CHECK (op == BS_OP_COUNT || op == BS_OP_set_price);
        free (cut);
    }
    free (data);
    bs_msg_destroy (&msg);
    //  op after other fields, including nested ones
    raw_t r;
    raw_init (&r);
    msgpack_pack_map (&r.pk, 3);
    raw_key (&r, "items"); msgpack_pack_array (&r.pk, 1); msgpack_pack_map (&r.pk, 1);
    raw_key (&r, "x"); msgpack_pack_double (&r.pk, 1.5);
    raw_key (&r, "rid"); msgpack_pack_bin_with_body (&r.pk, "0123456789abcdef", 16);
    raw_key (&r, "op"); msgpack_pack_str_with_body (&r.pk, "lookup", 6);
    CHECK (bs_peek_op (r.sbuf.data, r.sbuf.size) == BS_OP_lookup);
    msgpack_sbuffer_destroy (&r.sbuf);
    CHECK (bs_peek_op ("\x93\x01\x02\x03", 4) == BS_OP_COUNT);
    CHECK (bs_peek_op ("\x81\xa2op\x05", 5) == BS_OP_COUNT);
}

static void
test_map_round_trip (void)
{
    bs_msg_t *reply = bs_msg_new_ok ();
    bs_msg_t *cache = bs_msg_new ();
    bs_msg_set_int (cache, BS_FIELD_hits, 41);
    bs_msg_set_int (cache, BS_FIELD_misses, 2);
    bs_msg_set_map (reply, BS_FIELD_cache, &cache);
    CHECK (cache == NULL);
    bs_msg_t *copy = s_round_trip (reply);
    CHECK (copy && bs_msg_map (copy, BS_FIELD_cache));
    if (copy && bs_msg_map (copy, BS_FIELD_cache)) {
        CHECK (bs_msg_int (bs_msg_map (copy, BS_FIELD_cache), BS_FIELD_hits) == 41);
        CHECK (bs_msg_int (bs_msg_map (copy, BS_FIELD_cache), BS_FIELD_misses) == 2);
    }
    char *json = bs_msg_to_json (reply);
    CHECK (strstr (json, "\"cache\":{\"hits\":41,\"misses\":2}") != NULL);
    free (json);
    CHECK (bs_msg_map (reply, BS_FIELD_items) == NULL);
    bs_msg_destroy (&copy);
    bs_msg_destroy (&reply);

    //  A MAP field given something else is refused
    raw_t r;
    raw_init (&r);
    msgpack_pack_map (&r.pk, 2);
    raw_key (&r, "ok"); msgpack_pack_true (&r.pk);
    raw_key (&r, "cache"); msgpack_pack_array (&r.pk, 0);
    bs_err_t err;
    bs_msg_t *bad = bs_msg_decode (r.sbuf.data, r.sbuf.size, &err, NULL, 0);
    CHECK (bad == NULL && err == BS_ERR_bad_field);
    msgpack_sbuffer_destroy (&r.sbuf);
}

static void
test_peek_fields (void)
{
    bs_msg_t *msg = bs_msg_new_request (BS_OP_lookup);
    bs_msg_set_int (msg, BS_FIELD_item, 123456);
    bs_msg_set_int (msg, BS_FIELD_seq, 5000000000LL);
    bs_msg_set_int (msg, BS_FIELD_ok, 1);
    bs_msg_set_str (msg, BS_FIELD_topic, "cooking");
    size_t size;
    uint8_t *data = bs_msg_encode (msg, &size);
    int64_t v = 0;
    CHECK (bs_peek_int (data, size, BS_FIELD_item, &v) && v == 123456);
    CHECK (bs_peek_int (data, size, BS_FIELD_seq, &v) && v == 5000000000LL);
    CHECK (bs_peek_int (data, size, BS_FIELD_ok, &v) && v == 1);
    CHECK (!bs_peek_int (data, size, BS_FIELD_cost, &v));
    CHECK (!bs_peek_int (data, size, BS_FIELD_topic, &v));
    const uint8_t *bytes;
    size_t n;
    CHECK (bs_peek_bytes (data, size, BS_FIELD_topic, &bytes, &n) && n == 7 && memcmp (bytes, "cooking", 7) == 0);
    const uint8_t *rid = bs_msg_bin (msg, BS_FIELD_rid, NULL);
    CHECK (bs_peek_bytes (data, size, BS_FIELD_rid, &bytes, &n) && n == 16 && memcmp (bytes, rid, 16) == 0);
    //  Truncated anywhere: never a read past the end
    for (size_t cut = 0; cut < size; cut++) {
        uint8_t *part = malloc (cut? cut: 1);
        memcpy (part, data, cut);
        bs_peek_int (part, cut, BS_FIELD_seq, &v);
        bs_peek_bytes (part, cut, BS_FIELD_topic, &bytes, &n);
        free (part);
    }
    free (data);
    bs_msg_destroy (&msg);
    //  Negative numbers in every width
    raw_t r;
    raw_init (&r);
    msgpack_pack_map (&r.pk, 3);
    raw_key (&r, "cost"); msgpack_pack_int8 (&r.pk, -3);
    raw_key (&r, "stock"); msgpack_pack_int32 (&r.pk, -70000);
    raw_key (&r, "seq"); msgpack_pack_int64 (&r.pk, -5000000000LL);
    CHECK (bs_peek_int (r.sbuf.data, r.sbuf.size, BS_FIELD_cost, &v) && v == -3);
    CHECK (bs_peek_int (r.sbuf.data, r.sbuf.size, BS_FIELD_stock, &v) && v == -70000);
    CHECK (bs_peek_int (r.sbuf.data, r.sbuf.size, BS_FIELD_seq, &v) && v == -5000000000LL);
    msgpack_sbuffer_destroy (&r.sbuf);
}

//  Found by fuzzing: headers that claim more elements than the bytes hold
//  are refused before msgpack-c allocates for them
static void
test_claimed_counts (void)
{
    static const char map_2g [] = "\xdf\x86\x86\xa0\xdb";
    static const char map_overflow [] = "\xdf\x80\x00\x00\x01\xa2ok\xc3\xa2ok\xc3";
    static const char list_4g [] = "\x81\xa5items\xdd\xff\xff\xff\xff\x80";
    static const char entry_4g [] = "\x94\xa7" "catalog\x01\x01\xdd\xff\xff\xff\xff";
    bs_err_t err = BS_OK;
    CHECK (!bs_msg_decode (map_2g, sizeof map_2g - 1, &err, NULL, 0) && err == BS_ERR_bad_msgpack);
    CHECK (!bs_msg_decode (map_overflow, sizeof map_overflow - 1, &err, NULL, 0) && err == BS_ERR_bad_msgpack);
    CHECK (!bs_msg_decode (list_4g, sizeof list_4g - 1, &err, NULL, 0) && err == BS_ERR_bad_msgpack);
    CHECK (!bs_entry_parse (entry_4g, sizeof entry_4g - 1));
    CHECK (!bs_msgpack_sane (map_2g, sizeof map_2g - 1));
    CHECK (bs_msgpack_sane ("\x81\xa2ok\xc3", 5));
    CHECK (!bs_msgpack_sane ("\x81\xa2ok\xc3\x00", 6));
    CHECK (!bs_msgpack_sane ("", 0));
}

//  Found by fuzzing: an entry's partition and db names must be text, or a
//  name holding a NUL would stand for the name before it
static void
test_entry_names (void)
{
    static const char partition_nul [] = "\x94\xa9" "catalog\x00x\x01\x01\x90";
    static const char db_nul [] = "\x94\xa7" "catalog\x01\x01\x91\x94\x00\xa3" "b\x00s\xc4\x01k\xc4\x00";
    static const char good [] = "\x94\xa7" "catalog\x01\x01\x91\x94\x00\xa3" "bks\xc4\x01k\xc4\x00";
    CHECK (!bs_entry_parse (partition_nul, sizeof partition_nul - 1));
    bs_entry_t *entry = bs_entry_parse (db_nul, sizeof db_nul - 1);
    bs_change_t change;
    CHECK (entry && !bs_entry_change (entry, 0, &change));
    bs_entry_destroy (&entry);
    entry = bs_entry_parse (good, sizeof good - 1);
    CHECK (entry && bs_entry_change (entry, 0, &change) && change.db_size == 3 && !change.del);
    bs_entry_destroy (&entry);
    CHECK (bs_text_valid ("caf\xc3\xa9", 5));
    CHECK (!bs_text_valid ("a\x00b", 3) && !bs_text_valid ("\xff", 1));
}

//  Generated rids start with the time, so one made later sorts after
static void
test_rid_time_order (void)
{
    uint8_t a [BS_RID_SIZE], b [BS_RID_SIZE], c [BS_RID_SIZE];
    bs_rid_generate (a);
    bs_rid_generate (b);
    zclock_sleep (3);
    bs_rid_generate (c);
    CHECK (memcmp (a, c, BS_RID_SIZE) < 0);
    CHECK (memcmp (b, c, BS_RID_SIZE) < 0);
    //  Two made together still differ (the random part)
    CHECK (memcmp (a, b, BS_RID_SIZE) != 0);
    //  The front is this moment's Unix time in milliseconds
    uint64_t ms = 0;
    for (int i = 0; i < BS_RID_TIME_SIZE; i++)
        ms = ms << 8 | c [i];
    int64_t now = zclock_time ();
    CHECK ((int64_t) ms <= now && (int64_t) ms > now - 1000);
}

int
main (void)
{
    RUN (test_request_round_trip);
    RUN (test_list_round_trip);
    RUN (test_error_reply);
    RUN (test_malformed_msgpack);
    RUN (test_wrong_types_and_limits);
    RUN (test_request_shape);
    RUN (test_oversized);
    RUN (test_table_lookups);
    RUN (test_peek_op);
    RUN (test_map_round_trip);
    RUN (test_peek_fields);
    RUN (test_claimed_counts);
    RUN (test_entry_names);
    RUN (test_rid_time_order);
    return DONE ();
}
