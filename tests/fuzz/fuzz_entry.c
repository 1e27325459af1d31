/*  fuzz_entry - the replication log entry codec on arbitrary bytes.
 *
 *  The input is one log entry, as a follower receives it from a primary's
 *  PUB socket or a fetch reply.  It is parsed and every change read, as
 *  journal_apply does.  Invariants:
 *
 *  - parsing and reading changes never crash, and what they return stays
 *    inside the input;
 *  - the partition and db names have their stated lengths and limits;
 *  - an entry whose every change reads is rebuilt by the builder into bytes
 *    that parse to the same partition, epoch, seq and changes, and building
 *    those again gives the same bytes.
 */
#include "bs_entry.h"
#include "fuzzing.h"

#include <string.h>

static bool
s_inside (const void *p, size_t n, const uint8_t *data, size_t size)
{
    const uint8_t *b = p;
    return n == 0 || (b >= data && n <= size && (size_t) (b - data) <= size - n);
}

static bool
s_same_change (const bs_change_t *a, const bs_change_t *b)
{
    return a->del == b->del && a->db_size == b->db_size && memcmp (a->db, b->db, a->db_size) == 0
        && a->key_size == b->key_size && memcmp (a->key, b->key, a->key_size) == 0
        && (a->value == NULL) == (b->value == NULL)
        && a->value_size == b->value_size
        && (a->value_size == 0 || memcmp (a->value, b->value, a->value_size) == 0);
}

//  Rebuilds an entry with the builder; NULL when a name cannot be given to
//  it (the builder takes C strings)
static uint8_t *
s_rebuild (bs_entry_t *entry, size_t *size_p)
{
    bs_entry_builder_t *builder = bs_entry_builder_new ();
    for (size_t i = 0; i < bs_entry_changes (entry); i++) {
        bs_change_t change;
        FUZZ_CHECK (bs_entry_change (entry, i, &change));
        char db [33];
        FUZZ_CHECK (change.db_size < sizeof db);
        memcpy (db, change.db, change.db_size);
        db [change.db_size] = 0;
        if (strlen (db) != change.db_size) {
            bs_entry_builder_destroy (&builder);
            return NULL;
        }
        if (change.del)
            bs_entry_builder_del (builder, db, change.key, change.key_size, change.value, change.value_size);
        else
            bs_entry_builder_put (builder, db, change.key, change.key_size, change.value, change.value_size);
    }
    FUZZ_CHECK (bs_entry_builder_changes (builder) == bs_entry_changes (entry));
    uint8_t *data = bs_entry_builder_finish (builder, bs_entry_partition (entry), bs_entry_epoch (entry),
                                             bs_entry_seq (entry), size_p);
    bs_entry_builder_destroy (&builder);
    return data;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    bs_entry_t *entry = bs_entry_parse (data, size);
    if (!entry)
        return 0;
    size_t length = strlen (bs_entry_partition (entry));
    FUZZ_CHECK (length >= 1 && length <= 64);
    size_t count = bs_entry_changes (entry);
    bool readable = true;
    for (size_t i = 0; i < count; i++) {
        bs_change_t change;
        if (!bs_entry_change (entry, i, &change)) {
            readable = false;
            continue;
        }
        FUZZ_CHECK (change.db_size >= 1 && change.db_size <= 32 && s_inside (change.db, change.db_size, data, size));
        FUZZ_CHECK (change.key_size >= 1 && change.key_size <= 511 && s_inside (change.key, change.key_size, data, size));
        FUZZ_CHECK (change.value || change.del);
        FUZZ_CHECK (!change.value || change.value_size == 0 || s_inside (change.value, change.value_size, data, size));
    }
    bs_change_t beyond;
    FUZZ_CHECK (!bs_entry_change (entry, count, &beyond));

    size_t size1 = 0, size2 = 0;
    uint8_t *bytes1 = readable? s_rebuild (entry, &size1): NULL;
    if (bytes1) {
        bs_entry_t *copy = bs_entry_parse (bytes1, size1);
        FUZZ_CHECK (copy);
        FUZZ_CHECK (strcmp (bs_entry_partition (copy), bs_entry_partition (entry)) == 0);
        FUZZ_CHECK (bs_entry_epoch (copy) == bs_entry_epoch (entry) && bs_entry_seq (copy) == bs_entry_seq (entry));
        FUZZ_CHECK (bs_entry_changes (copy) == count);
        for (size_t i = 0; i < count; i++) {
            bs_change_t a, b;
            FUZZ_CHECK (bs_entry_change (entry, i, &a) && bs_entry_change (copy, i, &b));
            FUZZ_CHECK (s_same_change (&a, &b));
        }
        uint8_t *bytes2 = s_rebuild (copy, &size2);
        FUZZ_CHECK (bytes2 && size1 == size2 && memcmp (bytes1, bytes2, size1) == 0);
        free (bytes2);
        bs_entry_destroy (&copy);
    }
    free (bytes1);
    bs_entry_destroy (&entry);
    return 0;
}
