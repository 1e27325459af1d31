/*  test_gw_limit - the gateway's rate limiter: token buckets per client
 *  address, Retry-After, the bound on addresses, address keys  */
#include "gw_limit.h"
#include "testing.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define SECOND 1000000

static void
test_burst_then_rate (void)
{
    gw_limit_t *limit = gw_limit_new (5, 10, 100);
    int retry = 0, taken = 0;
    for (int i = 0; i < 30; i++)
        taken += gw_limit_take (limit, "192.0.2.1", 0, &retry);
    CHECK (taken == 10);
    CHECK (retry == 1);                 //  one token in 0.2 s: rounded up to a second
    //  Half a second later: two and a half tokens, so two requests
    taken = 0;
    for (int i = 0; i < 5; i++)
        taken += gw_limit_take (limit, "192.0.2.1", SECOND / 2, NULL);
    CHECK (taken == 2);
    //  Long after, the bucket is full again, never fuller
    taken = 0;
    for (int i = 0; i < 30; i++)
        taken += gw_limit_take (limit, "192.0.2.1", 100 * SECOND, NULL);
    CHECK (taken == 10);
    gw_limit_destroy (&limit);
    CHECK (limit == NULL);
}

static void
test_clients_apart (void)
{
    gw_limit_t *limit = gw_limit_new (1, 2, 100);
    CHECK (gw_limit_take (limit, "192.0.2.1", 0, NULL));
    CHECK (gw_limit_take (limit, "192.0.2.1", 0, NULL));
    int retry = 0;
    CHECK (!gw_limit_take (limit, "192.0.2.1", 0, &retry) && retry == 1);
    //  Another address is served meanwhile
    CHECK (gw_limit_take (limit, "192.0.2.2", 0, NULL));
    CHECK (gw_limit_clients (limit) == 2);
    gw_limit_destroy (&limit);
}

static void
test_slow_rate_retry_after (void)
{
    //  One request a minute: the next comes in 60 s
    gw_limit_t *limit = gw_limit_new (1.0 / 60, 1, 100);
    int retry = 0;
    CHECK (gw_limit_take (limit, "a", 0, NULL));
    CHECK (!gw_limit_take (limit, "a", 0, &retry) && retry == 60);
    CHECK (!gw_limit_take (limit, "a", 30 * SECOND, &retry) && retry == 30);
    CHECK (gw_limit_take (limit, "a", 61 * SECOND, NULL));
    gw_limit_destroy (&limit);
}

static void
test_bounded_clients (void)
{
    gw_limit_t *limit = gw_limit_new (1, 5, 4);
    char name [32];
    //  Four busy clients fill the table, each with its bucket drained
    for (int i = 0; i < 4; i++) {
        snprintf (name, sizeof name, "busy-%d", i);
        for (int k = 0; k < 5; k++)
            CHECK (gw_limit_take (limit, name, i * 1000, NULL));
    }
    CHECK (gw_limit_clients (limit) == 4);
    CHECK (!gw_limit_take (limit, "busy-3", 4000, NULL));
    //  A fifth takes the bucket silent longest (busy-0's), drained as it was:
    //  a new address in a full table gets no fresh burst
    int retry = 0;
    CHECK (!gw_limit_take (limit, "new", 5000, &retry) && retry == 1);
    CHECK (gw_limit_clients (limit) == 4);
    //  busy-0 comes back: its bucket went to "new", and it takes the next
    //  oldest (busy-1's, as drained), so forgetting it gave it nothing either
    CHECK (!gw_limit_take (limit, "busy-0", 6000, NULL));
    //  The others are still known, still drained
    CHECK (!gw_limit_take (limit, "busy-3", 7000, NULL));
    //  Thousands of addresses never grow it past the bound
    for (int i = 0; i < 5000; i++) {
        snprintf (name, sizeof name, "flood-%d", i);
        gw_limit_take (limit, name, 8000 + i, NULL);
    }
    CHECK (gw_limit_clients (limit) == 4);
    //  Much later, a bucket taken over has refilled: a newcomer then starts
    //  with a full burst, as it would in an empty table
    int taken = 0;
    for (int i = 0; i < 10; i++)
        taken += gw_limit_take (limit, "later", 100 * SECOND, NULL);
    CHECK_EQ (taken, 5);
    gw_limit_destroy (&limit);
}

//  A flood cycling through more addresses than the table holds, each
//  draining its bucket, is held to what the buckets earn, never to a burst
//  per address
static void
test_cycling_earns_no_bursts (void)
{
    const int size = 100;
    gw_limit_t *limit = gw_limit_new (10, 20, (size_t) size);
    char name [32];
    int served = 0, requests = 0;
    //  Ten rounds through 1,000 addresses within one second (1 ms apart)
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < 100; i++) {
            snprintf (name, sizeof name, "10.0.%d.%d", round, i + 1);
            int64_t now = (int64_t) (round * 100 + i) * 1000;
            for (int k = 0; k < 20; k++, requests++)
                served += gw_limit_take (limit, name, now, NULL);
        }
    //  A fresh burst each would serve 20 per address, 20,000 in all; the
    //  100 buckets hold 20 each at first and earn 10 a second
    CHECK_EQ (requests, 20000);
    CHECK (served <= size * 20 + size * 10 + 1000);
    CHECK (gw_limit_clients (limit) == (size_t) size);
    //  Many more clients than chains start with: each is still found
    gw_limit_t *large = gw_limit_new (1, 1, 20000);
    for (int i = 0; i < 20000; i++) {
        snprintf (name, sizeof name, "2001:db8:%x:%x::/64", i >> 8, i & 255);
        CHECK (gw_limit_take (large, name, 0, NULL));
    }
    int refused = 0;
    for (int i = 0; i < 20000; i++) {
        snprintf (name, sizeof name, "2001:db8:%x:%x::/64", i >> 8, i & 255);
        refused += !gw_limit_take (large, name, 0, NULL);
    }
    CHECK_EQ (refused, 20000);
    CHECK (gw_limit_clients (large) == 20000);
    gw_limit_destroy (&large);
    gw_limit_destroy (&limit);
}

static void
test_loopback (void)
{
    struct sockaddr_in v4 = { .sin_family = AF_INET };
    inet_pton (AF_INET, "127.0.0.2", &v4.sin_addr);
    CHECK (gw_limit_loopback ((struct sockaddr *) &v4));
    inet_pton (AF_INET, "128.0.0.1", &v4.sin_addr);
    CHECK (!gw_limit_loopback ((struct sockaddr *) &v4));
    struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
    inet_pton (AF_INET6, "::1", &v6.sin6_addr);
    CHECK (gw_limit_loopback ((struct sockaddr *) &v6));
    inet_pton (AF_INET6, "::ffff:127.0.0.1", &v6.sin6_addr);
    CHECK (gw_limit_loopback ((struct sockaddr *) &v6));
    inet_pton (AF_INET6, "2001:db8::1", &v6.sin6_addr);
    CHECK (!gw_limit_loopback ((struct sockaddr *) &v6));
    CHECK (!gw_limit_loopback (NULL));
}

static void
test_keys (void)
{
    char key [GW_LIMIT_KEY_MAX];
    struct sockaddr_in v4 = { .sin_family = AF_INET };
    inet_pton (AF_INET, "198.51.100.7", &v4.sin_addr);
    CHECK (gw_limit_key ((struct sockaddr *) &v4, key) && strcmp (key, "198.51.100.7") == 0);
    //  An IPv6 client counts by its /64
    struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
    inet_pton (AF_INET6, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", &v6.sin6_addr);
    CHECK (gw_limit_key ((struct sockaddr *) &v6, key) && strcmp (key, "2001:db8:1:2::/64") == 0);
    inet_pton (AF_INET6, "2001:db8:1:2::1", &v6.sin6_addr);
    char other [GW_LIMIT_KEY_MAX];
    CHECK (gw_limit_key ((struct sockaddr *) &v6, other) && strcmp (key, other) == 0);
    //  An IPv4-mapped address counts as IPv4
    inet_pton (AF_INET6, "::ffff:198.51.100.7", &v6.sin6_addr);
    CHECK (gw_limit_key ((struct sockaddr *) &v6, key) && strcmp (key, "198.51.100.7") == 0);
    struct sockaddr unix_address = { .sa_family = AF_UNIX };
    CHECK (!gw_limit_key (&unix_address, key) && key [0] == 0);
    CHECK (!gw_limit_key (NULL, key));
}

int
main (void)
{
    RUN (test_burst_then_rate);
    RUN (test_clients_apart);
    RUN (test_slow_rate_retry_after);
    RUN (test_bounded_clients);
    RUN (test_cycling_earns_no_bursts);
    RUN (test_loopback);
    RUN (test_keys);
    return DONE ();
}
