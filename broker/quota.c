/*  quota - open addressing table of counts, with tombstone-free deletion  */
#include "quota.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t key;               //  0: empty
    uint32_t count;
} slot_t;

struct _quota_t {
    slot_t *slots;
    size_t cap;                 //  a power of two
    size_t used;
    uint32_t per_client, total, in_flight;
};

quota_t *
quota_new (uint32_t per_client, uint32_t total)
{
    quota_t *self = calloc (1, sizeof (quota_t));
    if (!self)
        abort ();
    self->per_client = per_client;
    self->total = total;
    self->cap = 1024;
    self->slots = calloc (self->cap, sizeof (slot_t));
    if (!self->slots)
        abort ();
    return self;
}

void
quota_destroy (quota_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->slots);
    free (*self_p);
    *self_p = NULL;
}

uint64_t
quota_key (const void *routing_id, size_t size)
{
    const uint8_t *bytes = routing_id;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; i++)
        h = (h ^ bytes [i]) * 0x100000001b3ULL;
    return h? h: 1;             //  0 marks an empty slot
}

static slot_t *
s_find (quota_t *self, uint64_t key)
{
    size_t i = (size_t) (key ^ (key >> 29)) & (self->cap - 1);
    while (self->slots [i].key && self->slots [i].key != key)
        i = (i + 1) & (self->cap - 1);
    return &self->slots [i];
}

static void
s_grow (quota_t *self)
{
    slot_t *old = self->slots;
    size_t old_cap = self->cap;
    self->cap *= 2;
    self->slots = calloc (self->cap, sizeof (slot_t));
    if (!self->slots)
        abort ();
    for (size_t i = 0; i < old_cap; i++)
        if (old [i].key)
            *s_find (self, old [i].key) = old [i];
    free (old);
}

//  Removes a slot, moving later entries of its run back (no tombstones)
static void
s_remove (quota_t *self, slot_t *slot)
{
    size_t i = (size_t) (slot - self->slots);
    size_t j = i;
    while (true) {
        j = (j + 1) & (self->cap - 1);
        if (!self->slots [j].key)
            break;
        size_t home = (size_t) (self->slots [j].key ^ (self->slots [j].key >> 29)) & (self->cap - 1);
        //  Move j back to i unless its home lies cyclically in (i, j]
        bool stays = i <= j? (home > i && home <= j): (home > i || home <= j);
        if (!stays) {
            self->slots [i] = self->slots [j];
            i = j;
        }
    }
    self->slots [i].key = 0;
    self->slots [i].count = 0;
    self->used--;
}

bool
quota_take (quota_t *self, uint64_t key)
{
    if (self->in_flight >= self->total)
        return false;
    slot_t *slot = s_find (self, key);
    if (slot->key && slot->count >= self->per_client)
        return false;
    if (!slot->key) {
        if ((self->used + 1) * 2 > self->cap) {
            s_grow (self);
            slot = s_find (self, key);
        }
        slot->key = key;
        slot->count = 0;
        self->used++;
    }
    slot->count++;
    self->in_flight++;
    return true;
}

void
quota_give (quota_t *self, uint64_t key)
{
    slot_t *slot = s_find (self, key);
    if (!slot->key)
        return;
    self->in_flight--;
    if (--slot->count == 0)
        s_remove (self, slot);
}

uint32_t
quota_of (quota_t *self, uint64_t key)
{
    slot_t *slot = s_find (self, key);
    return slot->key? slot->count: 0;
}

uint32_t
quota_total (quota_t *self)
{
    return self->in_flight;
}
