/*  gw_limit - token buckets per client address  */
#include "gw_limit.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct _bucket_t bucket_t;
struct _bucket_t {
    bucket_t *chain;
    uint64_t hash;
    double tokens;
    int64_t updated;            //  when tokens were last brought up to date
    char key [GW_LIMIT_KEY_MAX];
};

struct _gw_limit_t {
    pthread_mutex_t lock;
    double rate, burst;
    size_t max_clients;
    bucket_t **buckets;
    size_t bucket_count;        //  a power of two
    size_t count;
};

static uint64_t
s_hash (const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL;         //  FNV-1a
    for (const unsigned char *p = (const unsigned char *) key; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h;
}

gw_limit_t *
gw_limit_new (double rate, double burst, size_t max_clients)
{
    gw_limit_t *self = calloc (1, sizeof (gw_limit_t));
    if (!self)
        abort ();
    self->rate = rate > 0? rate: 1;
    self->burst = burst >= 1? burst: 1;
    self->max_clients = max_clients? max_clients: 1;
    //  About one bucket per chain when the table is full
    self->bucket_count = 64;
    while (self->bucket_count < self->max_clients && self->bucket_count < (1u << 20))
        self->bucket_count *= 2;
    self->buckets = calloc (self->bucket_count, sizeof (bucket_t *));
    if (!self->buckets)
        abort ();
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
gw_limit_destroy (gw_limit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_limit_t *self = *self_p;
    for (size_t b = 0; b < self->bucket_count; b++) {
        bucket_t *bucket = self->buckets [b];
        while (bucket) {
            bucket_t *next = bucket->chain;
            free (bucket);
            bucket = next;
        }
    }
    free (self->buckets);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

//  Brings a bucket's tokens up to now
static void
s_refill (gw_limit_t *self, bucket_t *bucket, int64_t now_us)
{
    if (now_us > bucket->updated) {
        bucket->tokens += (double) (now_us - bucket->updated) / 1e6 * self->rate;
        if (bucket->tokens > self->burst)
            bucket->tokens = self->burst;
        bucket->updated = now_us;
    }
}

//  Makes room for one more client: drops every bucket that refilled, or
//  else the one silent for longest
static void
s_make_room (gw_limit_t *self, int64_t now_us)
{
    bucket_t **oldest = NULL;
    for (size_t b = 0; b < self->bucket_count; b++) {
        bucket_t **link = &self->buckets [b];
        while (*link) {
            bucket_t *bucket = *link;
            s_refill (self, bucket, now_us);
            if (bucket->tokens >= self->burst) {
                //  Only a kept bucket's link is ever remembered as the
                //  oldest, and removing this one changes no such link
                *link = bucket->chain;
                free (bucket);
                self->count--;
                continue;
            }
            if (!oldest || bucket->updated < (*oldest)->updated)
                oldest = link;
            link = &bucket->chain;
        }
    }
    if (self->count >= self->max_clients && oldest) {
        bucket_t *bucket = *oldest;
        *oldest = bucket->chain;
        free (bucket);
        self->count--;
    }
}

bool
gw_limit_take (gw_limit_t *self, const char *client, int64_t now_us, int *retry_after_p)
{
    char key [GW_LIMIT_KEY_MAX];
    snprintf (key, sizeof key, "%s", client? client: "");
    uint64_t hash = s_hash (key);
    pthread_mutex_lock (&self->lock);
    bucket_t **link = &self->buckets [hash & (self->bucket_count - 1)];
    while (*link && ((*link)->hash != hash || strcmp ((*link)->key, key) != 0))
        link = &(*link)->chain;
    bucket_t *bucket = *link;
    if (!bucket) {
        if (self->count >= self->max_clients) {
            s_make_room (self, now_us);
            //  The chains changed: find the end of ours again
            link = &self->buckets [hash & (self->bucket_count - 1)];
            while (*link)
                link = &(*link)->chain;
        }
        bucket = calloc (1, sizeof (bucket_t));
        if (!bucket)
            abort ();
        bucket->hash = hash;
        bucket->tokens = self->burst;
        bucket->updated = now_us;
        memcpy (bucket->key, key, sizeof key);
        *link = bucket;
        self->count++;
    }
    s_refill (self, bucket, now_us);
    bool admitted = bucket->tokens >= 1;
    if (admitted)
        bucket->tokens -= 1;
    else
    if (retry_after_p) {
        //  (a hair under a whole second is that second, not the next)
        double wait = ceil ((1 - bucket->tokens) / self->rate - 1e-6);
        *retry_after_p = wait < 1? 1: wait > 86400? 86400: (int) wait;
    }
    pthread_mutex_unlock (&self->lock);
    return admitted;
}

size_t
gw_limit_clients (gw_limit_t *self)
{
    pthread_mutex_lock (&self->lock);
    size_t count = self->count;
    pthread_mutex_unlock (&self->lock);
    return count;
}

bool
gw_limit_key (const struct sockaddr *address, char *key)
{
    key [0] = 0;
    if (!address)
        return false;
    if (address->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *) address;
        return inet_ntop (AF_INET, &v4->sin_addr, key, GW_LIMIT_KEY_MAX) != NULL;
    }
    if (address->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *) address;
        if (IN6_IS_ADDR_V4MAPPED (&v6->sin6_addr))
            return inet_ntop (AF_INET, v6->sin6_addr.s6_addr + 12, key, GW_LIMIT_KEY_MAX) != NULL;
        struct in6_addr prefix = v6->sin6_addr;
        memset (prefix.s6_addr + 8, 0, 8);
        if (!inet_ntop (AF_INET6, &prefix, key, GW_LIMIT_KEY_MAX - 4))
            return false;
        strcat (key, "/64");
        return true;
    }
    return false;
}
