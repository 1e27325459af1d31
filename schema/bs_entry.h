/*  bs_entry - the replication log entry: the changes one write made.
 *
 *  Replication ships effects, not operations: an entry lists every record
 *  the write put or deleted, so a follower applies it without re-running the
 *  write and ends up byte-for-byte equal.  Wire form (msgpack):
 *
 *      [partition: str, epoch: uint, seq: uint, changes: [change...]]
 *      change = [0, db: str, key: bin, value: bin]     put
 *             | [1, db: str, key: bin, value: bin|nil] delete (value: one
 *                                                      duplicate of a
 *                                                      dupsort key, or nil)
 *
 *  Ownership: a builder is owned by its creator; bs_entry_builder_finish
 *  returns a malloc'd buffer the caller frees.  A parsed entry's strings point
 *  into the buffer it was parsed from, which must outlive it.
 */
#ifndef BS_ENTRY_H_INCLUDED
#define BS_ENTRY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _bs_entry_builder_t bs_entry_builder_t;

bs_entry_builder_t *bs_entry_builder_new (void);
void bs_entry_builder_destroy (bs_entry_builder_t **self_p);
void bs_entry_builder_clear (bs_entry_builder_t *self);
void bs_entry_builder_put (bs_entry_builder_t *self, const char *db,
                           const void *key, size_t key_size, const void *value, size_t value_size);
//  value NULL: delete the key (every duplicate)
void bs_entry_builder_del (bs_entry_builder_t *self, const char *db,
                           const void *key, size_t key_size, const void *value, size_t value_size);
size_t bs_entry_builder_changes (bs_entry_builder_t *self);
//  Returns the whole entry; the builder keeps its changes until cleared
uint8_t *bs_entry_builder_finish (bs_entry_builder_t *self, const char *partition,
                                  uint64_t epoch, uint64_t seq, size_t *size_p);

typedef struct {
    bool del;
    const char *db;             //  not NUL-terminated
    size_t db_size;
    const void *key;
    size_t key_size;
    const void *value;          //  NULL for a whole-key delete
    size_t value_size;
} bs_change_t;

typedef struct _bs_entry_t bs_entry_t;

//  Parses an entry; NULL when malformed (the partition name, like a change's
//  db name, must be text without control characters: see bs_text_valid)
bs_entry_t *bs_entry_parse (const void *data, size_t size);
void bs_entry_destroy (bs_entry_t **self_p);
const char *bs_entry_partition (bs_entry_t *self);     //  NUL-terminated copy
uint64_t bs_entry_epoch (bs_entry_t *self);
uint64_t bs_entry_seq (bs_entry_t *self);
size_t bs_entry_changes (bs_entry_t *self);
//  Fills change number index; false when malformed or out of range (a db
//  name that is not text without control characters is malformed)
bool bs_entry_change (bs_entry_t *self, size_t index, bs_change_t *change);

#endif
