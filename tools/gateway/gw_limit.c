/*  gw_limit - token buckets per client address  */
#include "gw_limit.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct _bucket_t bucket_t;
struct _bucket_t {
    bucket_t *chain;            //  next in its hash chain
    bucket_t *newer, *older;    //  neighbours on the list by last use
    uint64_t hash;
    double tokens;
    int64_t updated;            //  when tokens were last brought up to date
    char key [GW_LIMIT_KEY_MAX];
};

struct _gw_limit_t {
    pthread_mutex_t lock;
    double rate, burst;
    size_t max_clients;
    bucket_t **heads;
    size_t mask;                //  heads has mask + 1 chains, a power of two
    size_t count;
    bucket_t *newest, *oldest;  //  the list by last use
    uint64_t secret;            //  the hash's key
};

//  A keyed hash of the client key: each 8 bytes are folded into the state
//  through a strong 64-bit mixer (the finaliser of MurmurHash3), starting
//  from a random secret; without the secret, a client cannot aim addresses
//  at one chain
static uint64_t
s_mix (uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t
s_hash (gw_limit_t *self, const char *key)
{
    uint64_t h = self->secret;
    size_t n = strlen (key);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t word = 0;
        memcpy (&word, key + i, n - i < 8? n - i: 8);
        h = s_mix (h ^ word) + 0x9e3779b97f4a7c15ULL;
    }
    return s_mix (h ^ n);
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
    size_t chains = 64;
    while (chains < self->max_clients && chains < (1u << 20))
        chains *= 2;
    self->mask = chains - 1;
    self->heads = calloc (chains, sizeof (bucket_t *));
    if (!self->heads)
        abort ();
    if (getrandom (&self->secret, sizeof self->secret, 0) != sizeof self->secret) {
        struct timespec now;
        clock_gettime (CLOCK_REALTIME, &now);
        self->secret = s_mix ((uint64_t) now.tv_nsec ^ ((uint64_t) now.tv_sec << 32) ^ (uintptr_t) self);
    }
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
gw_limit_destroy (gw_limit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_limit_t *self = *self_p;
    bucket_t *bucket = self->newest;
    while (bucket) {
        bucket_t *next = bucket->older;
        free (bucket);
        bucket = next;
    }
    free (self->heads);
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

static void
s_list_remove (gw_limit_t *self, bucket_t *bucket)
{
    if (bucket->newer)
        bucket->newer->older = bucket->older;
    else
        self->newest = bucket->older;
    if (bucket->older)
        bucket->older->newer = bucket->newer;
    else
        self->oldest = bucket->newer;
    bucket->newer = bucket->older = NULL;
}

static void
s_list_push (gw_limit_t *self, bucket_t *bucket)
{
    bucket->older = self->newest;
    bucket->newer = NULL;
    if (self->newest)
        self->newest->newer = bucket;
    self->newest = bucket;
    if (!self->oldest)
        self->oldest = bucket;
}

//  Unlinks a bucket from its hash chain
static void
s_chain_remove (gw_limit_t *self, bucket_t *bucket)
{
    bucket_t **link = &self->heads [bucket->hash & self->mask];
    while (*link != bucket)
        link = &(*link)->chain;
    *link = bucket->chain;
}

bool
gw_limit_take (gw_limit_t *self, const char *client, int64_t now_us, int *retry_after_p)
{
    char key [GW_LIMIT_KEY_MAX];
    snprintf (key, sizeof key, "%s", client? client: "");
    uint64_t hash = s_hash (self, key);
    pthread_mutex_lock (&self->lock);
    bucket_t *bucket = self->heads [hash & self->mask];
    while (bucket && (bucket->hash != hash || strcmp (bucket->key, key) != 0))
        bucket = bucket->chain;
    if (bucket)
        s_list_remove (self, bucket);
    else {
        if (self->count < self->max_clients) {
            bucket = calloc (1, sizeof (bucket_t));
            if (!bucket)
                abort ();
            bucket->tokens = self->burst;
            bucket->updated = now_us;
            self->count++;
        }
        else {
            //  Full: the newcomer takes the bucket silent for longest, tokens
            //  and all (brought up to now below), never a fresh burst
            bucket = self->oldest;
            s_list_remove (self, bucket);
            s_chain_remove (self, bucket);
        }
        bucket->hash = hash;
        memcpy (bucket->key, key, sizeof key);
        bucket->chain = self->heads [hash & self->mask];
        self->heads [hash & self->mask] = bucket;
    }
    s_list_push (self, bucket);
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
gw_limit_loopback (const struct sockaddr *address)
{
    if (!address)
        return false;
    if (address->sa_family == AF_INET)
        return (ntohl (((const struct sockaddr_in *) address)->sin_addr.s_addr) >> 24) == 127;
    if (address->sa_family == AF_INET6) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *) address)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK (v6) || (IN6_IS_ADDR_V4MAPPED (v6) && v6->s6_addr [12] == 127);
    }
    return false;
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
