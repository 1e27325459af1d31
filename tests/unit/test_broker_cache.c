/*  test_broker_cache - the broker's reply cache: LRU bounds, TTL, floors  */
#include "cache.h"
#include "testing.h"

#include <stdio.h>
#include <string.h>

static const char reply [] = "0123456789abcdefREPLY";

static bool
s_put (cache_t *cache, const char *key, uint64_t seq, int64_t now)
{
    return cache_put (cache, key, strlen (key), now, reply, sizeof reply, 0, seq);
}

static bool
s_has (cache_t *cache, const char *key, int64_t now)
{
    size_t size, rid;
    return cache_get (cache, key, strlen (key), now, &size, &rid) != NULL;
}

static void
test_hit_and_miss (void)
{
    cache_t *cache = cache_new (100, 1 << 20, 0);
    cache_set_base_floor (cache, 0);
    CHECK (!s_has (cache, "l666", 0));
    CHECK (s_put (cache, "l666", 5, 0));
    size_t size = 0, rid = 99;
    const uint8_t *data = cache_get (cache, "l666", 4, 0, &size, &rid);
    CHECK (data && size == sizeof reply && rid == 0 && memcmp (data, reply, size) == 0);
    cache_stats_t stats;
    cache_stats (cache, &stats);
    CHECK (stats.hits == 1 && stats.misses == 1 && stats.size == 1 && stats.capacity == 100);
    cache_destroy (&cache);
    CHECK (cache == NULL);
}

static void
test_nothing_stored_before_base_floor (void)
{
    cache_t *cache = cache_new (100, 1 << 20, 0);
    CHECK (!s_put (cache, "l1", 1000000, 0));
    cache_set_base_floor (cache, 10);
    CHECK (!s_put (cache, "l1", 9, 0));
    CHECK (s_put (cache, "l1", 10, 0));
    cache_stats_t stats;
    cache_stats (cache, &stats);
    CHECK_EQ (stats.stale, 2);
    cache_destroy (&cache);
}

static void
test_invalidation_floors (void)
{
    cache_t *cache = cache_new (100, 1 << 20, 0);
    cache_set_base_floor (cache, 0);
    CHECK (s_put (cache, "l7", 3, 0));
    cache_invalidate (cache, "l7", 2, 8);
    CHECK (!s_has (cache, "l7", 0));
    CHECK_EQ (cache_floor (cache, "l7", 2), 8);
    CHECK_EQ (cache_floor (cache, "l8", 2), 0);
    //  A reply that was on its way when the invalidation came is refused
    CHECK (!s_put (cache, "l7", 7, 0));
    CHECK (!s_has (cache, "l7", 0));
    CHECK (s_put (cache, "l7", 8, 0));
    CHECK (s_has (cache, "l7", 0));
    //  Floors only rise
    cache_invalidate (cache, "l7", 2, 4);
    CHECK_EQ (cache_floor (cache, "l7", 2), 8);
    //  Clearing drops entries, not floors
    CHECK (s_put (cache, "l9", 1, 0));
    cache_clear (cache);
    CHECK (!s_has (cache, "l9", 0));
    CHECK_EQ (cache_floor (cache, "l7", 2), 8);
    cache_stats_t stats;
    cache_stats (cache, &stats);
    CHECK (stats.invalidations == 2 && stats.size == 0 && stats.bytes == 0);
    cache_destroy (&cache);
}

static void
test_lru_order (void)
{
    cache_t *cache = cache_new (3, 1 << 20, 0);
    cache_set_base_floor (cache, 0);
    s_put (cache, "a", 1, 0);
    s_put (cache, "b", 1, 0);
    s_put (cache, "c", 1, 0);
    CHECK (s_has (cache, "a", 0));      //  a is now the most recent
    s_put (cache, "d", 1, 0);           //  evicts b
    CHECK (s_has (cache, "a", 0) && !s_has (cache, "b", 0) && s_has (cache, "c", 0) && s_has (cache, "d", 0));
    cache_stats_t stats;
    cache_stats (cache, &stats);
    CHECK_EQ (stats.size, 3);
    CHECK_EQ (stats.evictions, 1);
    cache_destroy (&cache);
}

static void
test_byte_budget (void)
{
    cache_t *cache = cache_new (1000, 2000, 0);
    cache_set_base_floor (cache, 0);
    char big [600];
    memset (big, 'x', sizeof big);
    char key [16];
    for (int i = 0; i < 20; i++) {
        snprintf (key, sizeof key, "s%d", i);
        cache_put (cache, key, strlen (key), 0, big, sizeof big, 0, 1);
        cache_stats_t stats;
        cache_stats (cache, &stats);
        CHECK (stats.bytes <= 2000);
    }
    //  A reply larger than the whole budget is not stored
    char huge [4000] = { 0 };
    CHECK (!cache_put (cache, "huge", 4, 0, huge, sizeof huge, 0, 1));
    cache_destroy (&cache);
}

static void
test_ttl (void)
{
    cache_t *cache = cache_new (10, 1 << 20, 100);
    cache_set_base_floor (cache, 0);
    s_put (cache, "l1", 1, 1000);
    CHECK (s_has (cache, "l1", 1100));
    CHECK (!s_has (cache, "l1", 1101));
    cache_destroy (&cache);
}

static void
test_off (void)
{
    cache_t *cache = cache_new (0, 1 << 20, 0);
    cache_set_base_floor (cache, 0);
    CHECK (!cache_enabled (cache));
    CHECK (!s_put (cache, "l1", 1, 0));
    CHECK (!s_has (cache, "l1", 0));
    cache_destroy (&cache);
}

//  A million distinct lookups: the cache stays within its bounds
static void
test_million_distinct_keys (void)
{
    cache_t *cache = cache_new (10000, 4 << 20, 0);
    cache_set_base_floor (cache, 0);
    char key [16];
    for (int i = 0; i < 1000000; i++) {
        snprintf (key, sizeof key, "l%d", i);
        if (!s_has (cache, key, 0))
            s_put (cache, key, 1, 0);
    }
    cache_stats_t stats;
    cache_stats (cache, &stats);
    CHECK_EQ (stats.size, 10000);
    CHECK (stats.bytes <= 4 << 20);
    CHECK_EQ (stats.misses, 1000000);
    CHECK_EQ (stats.evictions, 990000);
    CHECK (s_has (cache, "l999999", 0) && !s_has (cache, "l0", 0));
    cache_destroy (&cache);
}

//  A million distinct invalidations: floors are folded into the base floor,
//  which keeps refusing what each key's own floor refused
static void
test_million_floors (void)
{
    cache_t *cache = cache_new (1000, 1 << 20, 0);
    cache_set_base_floor (cache, 0);
    char key [16];
    for (int i = 1; i <= 1000000; i++) {
        snprintf (key, sizeof key, "l%d", i);
        cache_invalidate (cache, key, strlen (key), (uint64_t) i);
    }
    for (int i = 1; i <= 1000000; i += 999) {
        snprintf (key, sizeof key, "l%d", i);
        CHECK (cache_floor (cache, key, strlen (key)) >= (uint64_t) i);
    }
    CHECK (!s_put (cache, "l5", 4, 0));
    cache_destroy (&cache);
}

int
main (void)
{
    RUN (test_hit_and_miss);
    RUN (test_nothing_stored_before_base_floor);
    RUN (test_invalidation_floors);
    RUN (test_lru_order);
    RUN (test_byte_budget);
    RUN (test_ttl);
    RUN (test_off);
    RUN (test_million_distinct_keys);
    RUN (test_million_floors);
    return DONE ();
}
