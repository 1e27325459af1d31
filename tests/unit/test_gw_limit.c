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
    //  Four busy clients fill the table
    for (int i = 0; i < 4; i++) {
        snprintf (name, sizeof name, "busy-%d", i);
        for (int k = 0; k < 5; k++)
            gw_limit_take (limit, name, i * 1000, NULL);
    }
    CHECK (gw_limit_clients (limit) == 4);
    CHECK (!gw_limit_take (limit, "busy-3", 4000, NULL));
    //  A fifth pushes out the one silent longest, and stays within the bound
    CHECK (gw_limit_take (limit, "new", 5000, NULL));
    CHECK (gw_limit_clients (limit) == 4);
    //  busy-0 was forgotten: it starts over with a full bucket
    CHECK (gw_limit_take (limit, "busy-0", 6000, NULL));
    //  Much later every bucket has refilled: they are all dropped for room
    CHECK (gw_limit_take (limit, "later", 100 * SECOND, NULL));
    CHECK (gw_limit_clients (limit) == 1);
    //  Thousands of addresses never grow it past the bound
    for (int i = 0; i < 5000; i++) {
        snprintf (name, sizeof name, "flood-%d", i);
        gw_limit_take (limit, name, 100 * SECOND + i, NULL);
    }
    CHECK (gw_limit_clients (limit) <= 4);
    gw_limit_destroy (&limit);
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
    RUN (test_keys);
    return DONE ();
}
