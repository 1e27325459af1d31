/*  cache - LRU cache of catalog replies with per-key invalidation floors.
 *
 *  One hash table of slots.  A slot holds a key's floor and, when the key is
 *  cached, its reply; slots with a reply are also on the LRU list.  Slots
 *  that hold only a floor are bounded in number: past the bound they are
 *  dropped and the base floor rises to the highest of them, which is
 *  conservative (it can only refuse replies, never accept a stale one).
 */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

//  Bookkeeping charged to each entry on top of its key and reply
#define SLOT_OVERHEAD 96

typedef struct _slot_t slot_t;
struct _slot_t {
    slot_t *chain;              //  next in the hash bucket
    slot_t *newer, *older;      //  LRU links, while the slot holds a reply
    uint64_t hash;
    uint64_t floor;
    uint8_t *reply;             //  NULL: floor only
    size_t reply_size;
    size_t rid_offset;
    int64_t stored_at;
    size_t key_size;
    uint8_t key [];
};

struct _cache_t {
    slot_t **buckets;
    size_t bucket_count;        //  a power of two
    size_t slot_count;
    size_t floor_only;          //  slots without a reply
    size_t max_floor_only;
    slot_t *newest, *oldest;
    size_t max_entries, max_bytes;
    int64_t ttl_ms;
    uint64_t base_floor;
    uint64_t trimmed_floor;     //  highest floor folded away so far
    cache_stats_t stats;
};

static uint64_t
s_hash (const uint8_t *key, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ULL;         //  FNV-1a
    for (size_t i = 0; i < size; i++)
        h = (h ^ key [i]) * 0x100000001b3ULL;
    return h;
}

cache_t *
cache_new (size_t max_entries, size_t max_bytes, int64_t ttl_ms)
{
    cache_t *self = calloc (1, sizeof (cache_t));
    if (!self)
        abort ();
    self->max_entries = max_entries;
    self->max_bytes = max_bytes;
    self->ttl_ms = ttl_ms;
    self->max_floor_only = max_entries > 65536? max_entries: 65536;
    self->base_floor = UINT64_MAX;
    self->bucket_count = 1024;
    self->buckets = calloc (self->bucket_count, sizeof (slot_t *));
    if (!self->buckets)
        abort ();
    self->stats.capacity = max_entries;
    return self;
}

static void
s_free_all (cache_t *self)
{
    for (size_t b = 0; b < self->bucket_count; b++) {
        slot_t *slot = self->buckets [b];
        while (slot) {
            slot_t *next = slot->chain;
            free (slot->reply);
            free (slot);
            slot = next;
        }
        self->buckets [b] = NULL;
    }
}

void
cache_destroy (cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cache_t *self = *self_p;
    s_free_all (self);
    free (self->buckets);
    free (self);
    *self_p = NULL;
}

bool
cache_enabled (cache_t *self)
{
    return self->max_entries > 0;
}

//  --------------------------------------------------------------------------
//  Slots

static slot_t **
s_find (cache_t *self, const void *key, size_t key_size, uint64_t hash)
{
    slot_t **link = &self->buckets [hash & (self->bucket_count - 1)];
    while (*link) {
        slot_t *slot = *link;
        if (slot->hash == hash && slot->key_size == key_size && memcmp (slot->key, key, key_size) == 0)
            return link;
        link = &slot->chain;
    }
    return link;
}

static void
s_grow (cache_t *self)
{
    size_t count = self->bucket_count * 2;
    slot_t **buckets = calloc (count, sizeof (slot_t *));
    if (!buckets)
        abort ();
    for (size_t b = 0; b < self->bucket_count; b++) {
        slot_t *slot = self->buckets [b];
        while (slot) {
            slot_t *next = slot->chain;
            slot_t **head = &buckets [slot->hash & (count - 1)];
            slot->chain = *head;
            *head = slot;
            slot = next;
        }
    }
    free (self->buckets);
    self->buckets = buckets;
    self->bucket_count = count;
}

static slot_t *
s_insert (cache_t *self, slot_t **link, const void *key, size_t key_size, uint64_t hash)
{
    slot_t *slot = calloc (1, sizeof (slot_t) + key_size);
    if (!slot)
        abort ();
    slot->hash = hash;
    slot->key_size = key_size;
    memcpy (slot->key, key, key_size);
    *link = slot;
    self->slot_count++;
    self->floor_only++;
    if (self->slot_count > self->bucket_count)
        s_grow (self);
    return slot;
}

static void
s_unlink_lru (cache_t *self, slot_t *slot)
{
    if (slot->newer)
        slot->newer->older = slot->older;
    else
        self->newest = slot->older;
    if (slot->older)
        slot->older->newer = slot->newer;
    else
        self->oldest = slot->newer;
    slot->newer = slot->older = NULL;
}

static void
s_push_newest (cache_t *self, slot_t *slot)
{
    slot->older = self->newest;
    slot->newer = NULL;
    if (self->newest)
        self->newest->newer = slot;
    self->newest = slot;
    if (!self->oldest)
        self->oldest = slot;
}

//  Removes a slot from its bucket and frees it
static void
s_remove (cache_t *self, slot_t *slot)
{
    slot_t **link = s_find (self, slot->key, slot->key_size, slot->hash);
    *link = slot->chain;
    self->slot_count--;
    self->floor_only--;
    free (slot);
}

//  Drops a slot's reply; the slot stays only while its floor says more
//  than the base floor does
static void
s_drop_reply (cache_t *self, slot_t *slot)
{
    s_unlink_lru (self, slot);
    self->stats.size--;
    self->stats.bytes -= slot->reply_size + slot->key_size + SLOT_OVERHEAD;
    free (slot->reply);
    slot->reply = NULL;
    self->floor_only++;
    if (slot->floor <= self->base_floor || self->base_floor == UINT64_MAX)
        s_remove (self, slot);
}

//  Past the bound on floor-only slots: fold them all into the base floor
static void
s_trim_floors (cache_t *self)
{
    if (self->floor_only <= self->max_floor_only)
        return;
    uint64_t highest = self->trimmed_floor;
    for (size_t b = 0; b < self->bucket_count; b++) {
        slot_t **link = &self->buckets [b];
        while (*link) {
            slot_t *slot = *link;
            if (!slot->reply) {
                if (slot->floor > highest)
                    highest = slot->floor;
                *link = slot->chain;
                self->slot_count--;
                self->floor_only--;
                free (slot);
            }
            else
                link = &slot->chain;
        }
    }
    self->trimmed_floor = highest;
    if (self->base_floor != UINT64_MAX && highest > self->base_floor)
        self->base_floor = highest;
}

static uint64_t
s_floor_of (cache_t *self, slot_t *slot)
{
    uint64_t floor = slot && slot->floor > self->base_floor? slot->floor: self->base_floor;
    return floor;
}

//  --------------------------------------------------------------------------

const uint8_t *
cache_get (cache_t *self, const void *key, size_t key_size, int64_t now,
           size_t *size_p, size_t *rid_offset_p)
{
    if (self->max_entries == 0) {
        self->stats.misses++;
        return NULL;
    }
    slot_t *slot = *s_find (self, key, key_size, s_hash (key, key_size));
    if (slot && slot->reply && self->ttl_ms > 0 && now - slot->stored_at > self->ttl_ms) {
        s_drop_reply (self, slot);
        self->stats.evictions++;
        slot = NULL;
    }
    if (!slot || !slot->reply) {
        self->stats.misses++;
        return NULL;
    }
    self->stats.hits++;
    if (self->newest != slot) {
        s_unlink_lru (self, slot);
        s_push_newest (self, slot);
    }
    *size_p = slot->reply_size;
    *rid_offset_p = slot->rid_offset;
    return slot->reply;
}

bool
cache_put (cache_t *self, const void *key, size_t key_size, int64_t now,
           const void *reply, size_t size, size_t rid_offset, uint64_t seq)
{
    if (self->max_entries == 0 || key_size > CACHE_KEY_MAX)
        return false;
    size_t charge = size + key_size + SLOT_OVERHEAD;
    if (charge > self->max_bytes)
        return false;
    uint64_t hash = s_hash (key, key_size);
    slot_t **link = s_find (self, key, key_size, hash);
    if (seq < s_floor_of (self, *link)) {
        self->stats.stale++;
        return false;
    }
    slot_t *slot = *link;
    if (slot && slot->reply)
        s_drop_reply (self, slot);
    //  Make room, oldest first
    while (self->oldest && (self->stats.size + 1 > self->max_entries
                            || self->stats.bytes + charge > self->max_bytes)) {
        slot_t *victim = self->oldest;
        s_drop_reply (self, victim);
        self->stats.evictions++;
    }
    //  Evictions may have freed (and so invalidated) our slot
    link = s_find (self, key, key_size, hash);
    slot = *link? *link: s_insert (self, link, key, key_size, hash);
    slot->reply = malloc (size);
    if (!slot->reply)
        abort ();
    memcpy (slot->reply, reply, size);
    slot->reply_size = size;
    slot->rid_offset = rid_offset;
    slot->stored_at = now;
    self->floor_only--;
    s_push_newest (self, slot);
    self->stats.size++;
    self->stats.bytes += charge;
    return true;
}

void
cache_invalidate (cache_t *self, const void *key, size_t key_size, uint64_t version)
{
    if (key_size > CACHE_KEY_MAX)
        return;
    uint64_t hash = s_hash (key, key_size);
    slot_t **link = s_find (self, key, key_size, hash);
    slot_t *slot = *link;
    if (slot && slot->reply) {
        self->stats.invalidations++;
        slot->floor = slot->floor > version? slot->floor: version;
        s_drop_reply (self, slot);
        link = s_find (self, key, key_size, hash);
        slot = *link;
    }
    //  A floor the base floor already covers needs no slot
    if (self->base_floor != UINT64_MAX && version <= self->base_floor)
        return;
    if (!slot)
        slot = s_insert (self, link, key, key_size, hash);
    if (version > slot->floor)
        slot->floor = version;
    s_trim_floors (self);
}

uint64_t
cache_floor (cache_t *self, const void *key, size_t key_size)
{
    if (key_size > CACHE_KEY_MAX)
        return self->base_floor;
    return s_floor_of (self, *s_find (self, key, key_size, s_hash (key, key_size)));
}

void
cache_set_base_floor (cache_t *self, uint64_t floor)
{
    self->base_floor = floor == UINT64_MAX || floor > self->trimmed_floor? floor: self->trimmed_floor;
}

void
cache_clear (cache_t *self)
{
    while (self->oldest)
        s_drop_reply (self, self->oldest);
}

void
cache_stats (cache_t *self, cache_stats_t *stats)
{
    *stats = self->stats;
}

size_t
cache_key_item (uint8_t *key, int64_t item)
{
    key [0] = 'l';
    memcpy (key + 1, &item, sizeof item);
    return 1 + sizeof item;
}

size_t
cache_key_topic (uint8_t *key, const void *topic, size_t size)
{
    if (size == 0 || size + 1 > CACHE_KEY_MAX)
        return 0;
    key [0] = 's';
    memcpy (key + 1, topic, size);
    return 1 + size;
}

size_t
cache_key_for (bs_op_t op, const void *body, size_t size, uint8_t *key)
{
    const uint8_t *bytes;
    size_t n;
    if (!bs_peek_bytes (body, size, BS_FIELD_rid, &bytes, &n) || n != BS_RID_SIZE)
        return 0;
    int64_t item;
    if (op == BS_OP_lookup && bs_peek_int (body, size, BS_FIELD_item, &item))
        return cache_key_item (key, item);
    if (op == BS_OP_search && bs_peek_bytes (body, size, BS_FIELD_topic, &bytes, &n))
        return cache_key_topic (key, bytes, n);
    return 0;
}
