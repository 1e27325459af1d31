/*  cache - the broker's cache of catalog read replies (lookups, searches).
 *
 *  An entry maps a key (which read, of what) to the encoded reply a catalog
 *  replica gave and the catalog sequence number that replica had applied
 *  when it answered.  Entries are evicted least recently used first, to
 *  stay within a count and a byte budget, and may expire after a TTL.
 *
 *  Every key also has a floor: the highest version any invalidation named
 *  for it.  A reply read at a lower sequence number is never stored, so an
 *  invalidation cannot be undone by a reply that was already on its way.
 *  Keys without a floor of their own share a base floor, which starts at
 *  "store nothing" until the broker knows the catalog's head, and rises
 *  when floors are trimmed to keep memory bounded.
 *
 *  Ownership: cache_new returns a cache the caller destroys with
 *  cache_destroy.  Keys and replies passed in are copied.  A reply returned
 *  by cache_get belongs to the cache and stays valid until the next call.
 */
#ifndef CACHE_H_INCLUDED
#define CACHE_H_INCLUDED

#include "bs_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _cache_t cache_t;

typedef struct {
    uint64_t capacity;          //  most entries; 0: the cache is off
    uint64_t size;              //  entries held
    uint64_t bytes;             //  bytes held, keys and bookkeeping included
    uint64_t hits, misses;
    uint64_t evictions;         //  entries dropped for room or age
    uint64_t invalidations;     //  entries dropped by invalidations
    uint64_t stale;             //  replies refused: read before a floor
} cache_stats_t;

#define CACHE_KEY_MAX 80

//  max_entries 0 turns the cache off (every get misses, nothing is stored);
//  ttl_ms 0: entries do not expire
cache_t *cache_new (size_t max_entries, size_t max_bytes, int64_t ttl_ms);
void cache_destroy (cache_t **self_p);

bool cache_enabled (cache_t *self);

//  The stored reply for key, or NULL (counted as a hit or a miss).
//  *rid_offset_p: where in the reply the 16-byte request id sits.
const uint8_t *cache_get (cache_t *self, const void *key, size_t key_size, int64_t now,
                          size_t *size_p, size_t *rid_offset_p);

//  Stores a reply read at seq, unless seq is below the key's floor.
//  Returns true when stored.
bool cache_put (cache_t *self, const void *key, size_t key_size, int64_t now,
                const void *reply, size_t size, size_t rid_offset, uint64_t seq);

//  Drops the key's entry and raises its floor to version
void cache_invalidate (cache_t *self, const void *key, size_t key_size, uint64_t version);

//  The lowest sequence number a reply for key must have been read at
uint64_t cache_floor (cache_t *self, const void *key, size_t key_size);

//  Sets the floor of keys that have none of their own (UINT64_MAX: store
//  nothing)
void cache_set_base_floor (cache_t *self, uint64_t floor);

//  Drops every entry; floors stay
void cache_clear (cache_t *self);

void cache_stats (cache_t *self, cache_stats_t *stats);

//  Keys: "l" and the item (8 bytes, host order) for a lookup, "s" and the
//  topic's bytes for a search.  Each writes the key into key (room for
//  CACHE_KEY_MAX bytes) and returns its size; 0 when there is none.

//  The key of a lookup of item (always 9 bytes)
size_t cache_key_item (uint8_t *key, int64_t item);

//  The key of a search of a topic; 0 when the topic is empty or too long
//  for a key (such searches are not cached)
size_t cache_key_topic (uint8_t *key, const void *topic, size_t size);

//  The key of an encoded catalog read whose op is op, as the broker peeks
//  it (the body is not decoded); 0 when the request is not one the cache
//  answers: not a lookup or a search, no 16-byte rid, no item or topic
size_t cache_key_for (bs_op_t op, const void *body, size_t size, uint8_t *key);

#endif
