/*  fuzz_cache - the broker's reply cache under arbitrary sequences of
 *  gets, puts, invalidations, clears and time.
 *
 *  The input's first four bytes size the cache (entries, bytes, and a byte
 *  whose low 7 bits are the TTL and whose top bit allows op 7); the rest is
 *  a sequence of operations, each a byte and its arguments:
 *
 *      0 put       key, seq (2 bytes), reply length (1 byte)
 *      1 get       key
 *      2 invalidate key, version (2 bytes)
 *      3 base floor value (2 bytes): the broker sets it once, from
 *                  "store nothing" to the catalog's head
 *      4 clear
 *      5 time      advance the clock by a byte's worth of 7 ms steps
 *      6 floor     key
 *      7 many      invalidate up to 2,040 keys of their own at a version,
 *                  or (count byte 'Z') 69,632: past 65,536 floors the cache
 *                  folds them into its base (once per input, being slow)
 *
 *  A key is a length byte below 0xf0 and that many bytes (lengths beyond
 *  CACHE_KEY_MAX included), or one the broker's key functions make (the
 *  keys the broker caches and invalidates under):
 *
 *      0xf0-0xf3   an item (8 bytes): cache_key_item, as an invalidation
 *                  names it
 *      0xf4-0xf7   a topic (a length byte and its bytes): cache_key_topic
 *      0xf8-0xff   a catalog read (cache_key_for), as the broker gets it:
 *                  a kind byte, then for kind 0 a lookup (a rid length
 *                  byte, an item of 8 bytes), for kind 1 a search (a rid
 *                  length byte, a topic as above, cut at a NUL), for kind 2
 *                  a body of its own (a length byte and its bytes), whose
 *                  op is peeked as the broker does
 *
 *  An operation whose key the broker would not cache (an empty or too long
 *  topic, a read that is not one the cache answers) is skipped.  Each reply
 *  stored carries its key, the seq it was read at and the number of the
 *  put, so a hit can be traced to the put that stored it.  Invariants:
 *
 *  - a key function's key is at most CACHE_KEY_MAX bytes; a lookup's is
 *    the key of its item, a search's that of its topic, so that the
 *    invalidation of an item or a topic drops the replies of its reads;
 *
 *  - a hit returns exactly the reply of the key's last successful put, and
 *    never one put before the key's last invalidation, read below its
 *    floor, older than the TTL, or before a clear;
 *  - a put read below the key's floor (or before the base floor is known)
 *    is refused;
 *  - cache_floor is at least every version the key was invalidated at;
 *  - size and bytes stay within their bounds, hits and misses count gets.
 */
#include "bs_msg.h"
#include "cache.h"
#include "fuzzing.h"

#include <string.h>

#define MAX_KEYS 256
#define KEY_MAX (CACHE_KEY_MAX + 8)

typedef struct {
    uint8_t key [KEY_MAX];
    size_t size;
    uint64_t floor;             //  highest version invalidated at
    bool cached;                //  the last put succeeded and nothing dropped it since
    uint64_t put;               //  which put stored it
    uint64_t seq;
    int64_t stored_at;
} model_key_t;

static model_key_t s_keys [MAX_KEYS];
static size_t s_key_count;

static model_key_t *
s_model (const uint8_t *key, size_t size)
{
    for (size_t i = 0; i < s_key_count; i++)
        if (s_keys [i].size == size && memcmp (s_keys [i].key, key, size) == 0)
            return &s_keys [i];
    if (s_key_count == MAX_KEYS)
        return NULL;
    model_key_t *k = &s_keys [s_key_count++];
    memset (k, 0, sizeof *k);
    memcpy (k->key, key, size);
    k->size = size;
    return k;
}

//  A catalog read as the broker gets it: an encoded lookup or search, or a
//  body of the input's own, and the key the broker caches it under (see
//  the top of this file).  False when it is not one the cache answers.
static bool
s_read_key (fuzz_input_t *input, uint8_t *key, size_t *size_p)
{
    uint8_t kind = fuzz_byte (input) % 3;
    uint8_t body [256];
    size_t body_size;
    uint8_t *encoded = NULL;
    size_t expected_size = 0;
    uint8_t expected [CACHE_KEY_MAX];
    if (kind < 2) {
        size_t rid_size = fuzz_byte (input) % (BS_RID_SIZE + 4);
        uint8_t rid [BS_RID_SIZE + 4];
        memset (rid, 0x5a, sizeof rid);
        bs_msg_t *msg = bs_msg_new ();
        bs_msg_set_str (msg, BS_FIELD_op, kind == 0? "lookup": "search");
        bs_msg_set_bin (msg, BS_FIELD_rid, rid, rid_size);
        if (kind == 0) {
            int64_t item = (int64_t) fuzz_uint (input, 8);
            bs_msg_set_int (msg, BS_FIELD_item, item);
            expected_size = cache_key_item (expected, item);
        }
        else {
            char topic [CACHE_KEY_MAX + 9];
            size_t n = fuzz_bytes (input, (uint8_t *) topic, sizeof topic - 1);
            topic [n] = 0;
            bs_msg_set_str (msg, BS_FIELD_topic, topic);
            expected_size = cache_key_topic (expected, topic, strlen (topic));
        }
        if (rid_size != BS_RID_SIZE)
            expected_size = 0;
        encoded = bs_msg_encode (msg, &body_size);
        bs_msg_destroy (&msg);
        FUZZ_CHECK (bs_peek_op (encoded, body_size) == (kind == 0? BS_OP_lookup: BS_OP_search));
    }
    else
        body_size = fuzz_bytes (input, body, sizeof body);
    const uint8_t *data = encoded? encoded: body;
    size_t size = cache_key_for (bs_peek_op (data, body_size), data, body_size, key);
    FUZZ_CHECK (size <= CACHE_KEY_MAX);
    if (encoded)
        FUZZ_CHECK (size == expected_size && memcmp (key, expected, size) == 0);
    else
        FUZZ_CHECK (size == 0 || (key [0] == 'l' && size == 9) || (key [0] == 's' && size >= 2));
    free (encoded);
    *size_p = size;
    return size > 0;
}

//  The next key (see the top of this file); false when the broker would
//  not cache under it
static bool
s_key (fuzz_input_t *input, uint8_t *key, size_t *size_p)
{
    if (input->size == 0 || input->data [0] < 0xf0) {
        *size_p = fuzz_bytes (input, key, KEY_MAX);
        return true;
    }
    uint8_t form = fuzz_byte (input);
    if (form < 0xf4) {
        int64_t item = (int64_t) fuzz_uint (input, 8);
        *size_p = cache_key_item (key, item);
        FUZZ_CHECK (*size_p == 9 && key [0] == 'l' && memcmp (key + 1, &item, 8) == 0);
        return true;
    }
    if (form < 0xf8) {
        uint8_t topic [KEY_MAX];
        size_t n = fuzz_bytes (input, topic, sizeof topic);
        *size_p = cache_key_topic (key, topic, n);
        if (n == 0 || n + 1 > CACHE_KEY_MAX)
            FUZZ_CHECK (*size_p == 0);
        else
            FUZZ_CHECK (*size_p == n + 1 && key [0] == 's' && memcmp (key + 1, topic, n) == 0);
        return *size_p > 0;
    }
    return s_read_key (input, key, size_p);
}

//  Builds a reply that names its key's model slot, its put and its seq; the
//  rid sits after them
static size_t
s_reply (uint8_t *reply, size_t length, size_t slot, uint64_t put, uint64_t seq, size_t *rid_offset_p)
{
    size_t size = 40 + length;
    memset (reply, 0xab, size);
    memcpy (reply, &slot, 8);
    memcpy (reply + 8, &put, 8);
    memcpy (reply + 16, &seq, 8);
    *rid_offset_p = 24;
    return size;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    fuzz_input_t input = { data, size };
    size_t max_entries = fuzz_byte (&input) % 33;               //  0 turns the cache off
    size_t max_bytes = 64 + (size_t) fuzz_uint (&input, 2) * 4;
    uint8_t config = fuzz_byte (&input);
    int64_t ttl = (int64_t) (config & 0x7f) * 5;                //  0: no expiry
    bool bulk_done = !(config & 0x80);                          //  op 7 allowed
    cache_t *cache = cache_new (max_entries, max_bytes, ttl);
    s_key_count = 0;
    bool base_known = false;
    uint64_t base = 0;
    int64_t now = 1000;
    uint64_t puts = 0, gets = 0;
    uint8_t key [KEY_MAX], reply [40 + 256];
    int steps = 0;
    while (input.size > 0 && steps++ < 4096) {
        uint8_t op = fuzz_byte (&input) % 8;
        if (op == 0) {
            size_t key_size;
            bool usable = s_key (&input, key, &key_size);
            uint64_t seq = fuzz_uint (&input, 2);
            size_t length = fuzz_byte (&input);
            model_key_t *k = usable? s_model (key, key_size): NULL;
            if (!k)
                continue;
            size_t rid_offset;
            size_t reply_size = s_reply (reply, length, (size_t) (k - s_keys), ++puts, seq, &rid_offset);
            bool stored = cache_put (cache, key, key_size, now, reply, reply_size, rid_offset, seq);
            if (stored) {
                //  Never below a floor, never before the base floor is known
                FUZZ_CHECK (base_known && seq >= base && seq >= k->floor);
                FUZZ_CHECK (max_entries > 0 && key_size <= CACHE_KEY_MAX);
                k->cached = true;
                k->put = puts;
                k->seq = seq;
                k->stored_at = now;
            }
            else
            if (max_entries > 0 && key_size <= CACHE_KEY_MAX && base_known && seq >= base && seq >= k->floor
            &&  reply_size + key_size + 96 <= max_bytes)
                //  Refused although fresh: only floors folded into the base may do that
                FUZZ_CHECK (seq < cache_floor (cache, key, key_size));
        }
        else
        if (op == 1) {
            size_t key_size;
            if (!s_key (&input, key, &key_size))
                continue;
            model_key_t *k = s_model (key, key_size);
            size_t got_size = 0, rid_offset = 0;
            const uint8_t *got = cache_get (cache, key, key_size, now, &got_size, &rid_offset);
            gets++;
            if (got) {
                FUZZ_CHECK (k && k->cached);
                FUZZ_CHECK (got_size >= 40 && rid_offset == 24);
                uint64_t slot, put, seq;
                memcpy (&slot, got, 8);
                memcpy (&put, got + 8, 8);
                memcpy (&seq, got + 16, 8);
                FUZZ_CHECK (slot == (size_t) (k - s_keys) && put == k->put && seq == k->seq);
                FUZZ_CHECK (seq >= k->floor);
                FUZZ_CHECK (ttl == 0 || now - k->stored_at <= ttl);
            }
            else
            if (k && k->cached && ttl > 0 && now - k->stored_at > ttl)
                k->cached = false;      //  expired: gone for good
        }
        else
        if (op == 2) {
            size_t key_size;
            bool usable = s_key (&input, key, &key_size);
            uint64_t version = fuzz_uint (&input, 2);
            if (!usable)
                continue;
            model_key_t *k = s_model (key, key_size);
            cache_invalidate (cache, key, key_size, version);
            if (k && key_size <= CACHE_KEY_MAX) {
                if (version > k->floor)
                    k->floor = version;
                k->cached = false;
                FUZZ_CHECK (cache_floor (cache, key, key_size) >= k->floor);
            }
        }
        else
        if (op == 3) {
            uint64_t floor = fuzz_uint (&input, 2);
            if (!base_known) {
                cache_set_base_floor (cache, floor);
                base_known = true;
                base = floor;
            }
        }
        else
        if (op == 4) {
            cache_clear (cache);
            for (size_t i = 0; i < s_key_count; i++)
                s_keys [i].cached = false;
        }
        else
        if (op == 5)
            now += (int64_t) fuzz_byte (&input) * 7;
        else
        if (op == 6) {
            size_t key_size;
            if (!s_key (&input, key, &key_size))
                continue;
            model_key_t *k = s_model (key, key_size);
            uint64_t floor = cache_floor (cache, key, key_size);
            FUZZ_CHECK (!k || key_size > CACHE_KEY_MAX || floor >= k->floor);
            FUZZ_CHECK (base_known? floor >= base: floor == UINT64_MAX);
        }
        else {
            //  Up to 2,040 keys, or (a count byte of 'Z') past the bound on
            //  floors: slow, so once per input
            uint8_t many = fuzz_byte (&input);
            size_t count = many == 'Z'? 65536 + 4096: (size_t) many * 8;
            uint64_t version = fuzz_uint (&input, 2);
            if (bulk_done)
                count = 0;
            bulk_done = true;
            uint8_t bulk [5] = { 0xfe };
            for (size_t i = 0; i < count; i++) {
                memcpy (bulk + 1, &i, 4);
                cache_invalidate (cache, bulk, sizeof bulk, version);
            }
        }
        cache_stats_t stats;
        cache_stats (cache, &stats);
        FUZZ_CHECK (stats.capacity == max_entries);
        FUZZ_CHECK (stats.size <= max_entries && stats.bytes <= max_bytes);
        FUZZ_CHECK (stats.hits + stats.misses == gets);
        FUZZ_CHECK (stats.size > 0 || stats.bytes == 0);
    }
    //  Whatever is still cached is served as the model says
    for (size_t i = 0; i < s_key_count; i++) {
        size_t got_size, rid_offset;
        const uint8_t *got = cache_get (cache, s_keys [i].key, s_keys [i].size, now, &got_size, &rid_offset);
        if (got) {
            uint64_t put;
            memcpy (&put, got + 8, 8);
            FUZZ_CHECK (s_keys [i].cached && put == s_keys [i].put);
        }
    }
    cache_destroy (&cache);
    FUZZ_CHECK (cache == NULL);
    return 0;
}
