/*  bs_entry - replication log entries  */
#include "bs_entry.h"
#include "bs_msg.h"
#include "bs_sizes.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

struct _bs_entry_builder_t {
    msgpack_sbuffer changes;
    msgpack_packer pk;
    size_t count;
};

bs_entry_builder_t *
bs_entry_builder_new (void)
{
    bs_entry_builder_t *self = calloc (1, sizeof (bs_entry_builder_t));
    if (!self)
        abort ();
    msgpack_sbuffer_init (&self->changes);
    msgpack_packer_init (&self->pk, &self->changes, msgpack_sbuffer_write);
    return self;
}

void
bs_entry_builder_destroy (bs_entry_builder_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    msgpack_sbuffer_destroy (&(*self_p)->changes);
    free (*self_p);
    *self_p = NULL;
}

void
bs_entry_builder_clear (bs_entry_builder_t *self)
{
    msgpack_sbuffer_clear (&self->changes);
    self->count = 0;
}

static void
s_change (bs_entry_builder_t *self, int op, const char *db, const void *key, size_t key_size,
          const void *value, size_t value_size)
{
    msgpack_pack_array (&self->pk, 4);
    msgpack_pack_uint8 (&self->pk, (uint8_t) op);
    msgpack_pack_str_with_body (&self->pk, db, strlen (db));
    msgpack_pack_bin_with_body (&self->pk, key, key_size);
    if (value)
        msgpack_pack_bin_with_body (&self->pk, value, value_size);
    else
        msgpack_pack_nil (&self->pk);
    self->count++;
}

void
bs_entry_builder_put (bs_entry_builder_t *self, const char *db, const void *key, size_t key_size,
                      const void *value, size_t value_size)
{
    s_change (self, 0, db, key, key_size, value? value: "", value_size);
}

void
bs_entry_builder_del (bs_entry_builder_t *self, const char *db, const void *key, size_t key_size,
                      const void *value, size_t value_size)
{
    s_change (self, 1, db, key, key_size, value, value_size);
}

size_t
bs_entry_builder_changes (bs_entry_builder_t *self)
{
    return self->count;
}

uint8_t *
bs_entry_builder_finish (bs_entry_builder_t *self, const char *partition, uint64_t epoch,
                         uint64_t seq, size_t *size_p)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &out, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 4);
    msgpack_pack_str_with_body (&pk, partition, strlen (partition));
    msgpack_pack_uint64 (&pk, epoch);
    msgpack_pack_uint64 (&pk, seq);
    msgpack_pack_array (&pk, (uint32_t) self->count);
    msgpack_sbuffer_write (&out, self->changes.data, self->changes.size);
    *size_p = out.size;
    return (uint8_t *) msgpack_sbuffer_release (&out);
}

//  --------------------------------------------------------------------------

struct _bs_entry_t {
    msgpack_unpacked unpacked;
    char partition [BS_ID_MAX + 1];
    uint64_t epoch, seq;
    const msgpack_object *changes;
};

bs_entry_t *
bs_entry_parse (const void *data, size_t size)
{
    bs_entry_t *self = calloc (1, sizeof (bs_entry_t));
    if (!self)
        abort ();
    msgpack_unpacked_init (&self->unpacked);
    size_t offset = 0;
    const msgpack_object *root = &self->unpacked.data;
    if (!bs_msgpack_sane (data, size)
    ||  msgpack_unpack_next (&self->unpacked, data, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  offset != size || root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 4)
        goto bad;
    const msgpack_object *f = root->via.array.ptr;
    if (f [0].type != MSGPACK_OBJECT_STR || f [0].via.str.size == 0 || f [0].via.str.size > BS_ID_MAX
    ||  !bs_text_valid (f [0].via.str.ptr, f [0].via.str.size)
    ||  f [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f [2].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  f [3].type != MSGPACK_OBJECT_ARRAY)
        goto bad;
    memcpy (self->partition, f [0].via.str.ptr, f [0].via.str.size);
    self->partition [f [0].via.str.size] = 0;
    self->epoch = f [1].via.u64;
    self->seq = f [2].via.u64;
    self->changes = &f [3];
    return self;
bad:
    bs_entry_destroy (&self);
    return NULL;
}

void
bs_entry_destroy (bs_entry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    msgpack_unpacked_destroy (&(*self_p)->unpacked);
    free (*self_p);
    *self_p = NULL;
}

const char *bs_entry_partition (bs_entry_t *self) { return self->partition; }
uint64_t bs_entry_epoch (bs_entry_t *self) { return self->epoch; }
uint64_t bs_entry_seq (bs_entry_t *self) { return self->seq; }
size_t bs_entry_changes (bs_entry_t *self) { return self->changes->via.array.size; }

bool
bs_entry_change (bs_entry_t *self, size_t index, bs_change_t *change)
{
    if (index >= self->changes->via.array.size)
        return false;
    const msgpack_object *c = &self->changes->via.array.ptr [index];
    if (c->type != MSGPACK_OBJECT_ARRAY || c->via.array.size != 4)
        return false;
    const msgpack_object *f = c->via.array.ptr;
    if (f [0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f [0].via.u64 > 1
    ||  f [1].type != MSGPACK_OBJECT_STR || f [1].via.str.size == 0 || f [1].via.str.size > 32
    ||  !bs_text_valid (f [1].via.str.ptr, f [1].via.str.size)
    ||  f [2].type != MSGPACK_OBJECT_BIN || f [2].via.bin.size == 0 || f [2].via.bin.size > 511)
        return false;
    change->del = f [0].via.u64 == 1;
    change->db = f [1].via.str.ptr;
    change->db_size = f [1].via.str.size;
    change->key = f [2].via.bin.ptr;
    change->key_size = f [2].via.bin.size;
    if (f [3].type == MSGPACK_OBJECT_BIN) {
        change->value = f [3].via.bin.size? f [3].via.bin.ptr: "";
        change->value_size = f [3].via.bin.size;
    }
    else
    if (f [3].type == MSGPACK_OBJECT_NIL && change->del) {
        change->value = NULL;
        change->value_size = 0;
    }
    else
        return false;
    return true;
}
