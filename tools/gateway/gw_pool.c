/*  gw_pool - broker clients shared by the gateway's threads  */
#include "gw_pool.h"
#include "bs_client.h"

#include <czmq.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

struct _gw_pool_t {
    pthread_mutex_t lock;
    pthread_cond_t freed;       //  signalled when a client comes back
    char *endpoint;
    char answered [256];        //  the broker that last answered a call
                                //  (of a pair's list), where new clients start
    bs_keys_t *keys;            //  borrowed
    int timeout_ms;
    int attempts;
    int size;
    int free_count;             //  free [0 .. free_count) are lendable
    bs_client_t **free;         //  NULL entries are made on first use
};

gw_pool_t *
gw_pool_new (const char *endpoint, bs_keys_t *keys, int size, int timeout_ms, int attempts)
{
    //  Fail early on a bad endpoint rather than on the first request
    bs_client_t *probe = bs_client_new_secure (endpoint, keys);
    if (!probe)
        return NULL;
    gw_pool_t *self = calloc (1, sizeof (gw_pool_t));
    if (!self)
        abort ();
    self->endpoint = strdup (endpoint);
    self->keys = keys;
    self->size = size < 1? 1: size;
    self->timeout_ms = timeout_ms;
    self->attempts = attempts;
    self->free = calloc ((size_t) self->size, sizeof (bs_client_t *));
    if (!self->endpoint || !self->free)
        abort ();
    self->free [0] = probe;
    self->free_count = self->size;
    pthread_mutex_init (&self->lock, NULL);
    //  Waits are measured on the monotonic clock, immune to clock changes
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->freed, &attr);
    pthread_condattr_destroy (&attr);
    return self;
}

void
gw_pool_destroy (gw_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_pool_t *self = *self_p;
    for (int i = 0; i < self->free_count; i++)
        bs_client_destroy (&self->free [i]);
    pthread_cond_destroy (&self->freed);
    pthread_mutex_destroy (&self->lock);
    free (self->free);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

//  Takes a free client, waiting until deadline (CLOCK_MONOTONIC); false when
//  none came free.  *client_p may be NULL: a slot whose client is made later.
static bool
s_acquire (gw_pool_t *self, const struct timespec *deadline, bs_client_t **client_p)
{
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    while (self->free_count == 0 && rc == 0)
        rc = pthread_cond_timedwait (&self->freed, &self->lock, deadline);
    bool got = self->free_count > 0;
    if (got)
        *client_p = self->free [--self->free_count];
    pthread_mutex_unlock (&self->lock);
    return got;
}

//  A new client, on the broker that last answered: one that replaces a
//  client that timed out should not try a dead broker first again
static bs_client_t *
s_new_client (gw_pool_t *self)
{
    bs_client_t *client = bs_client_new_secure (self->endpoint, self->keys);
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; client && *self->answered && i < bs_client_endpoint_count (client)
                     && strcmp (bs_client_endpoint (client), self->answered) != 0; i++)
        bs_client_failover (client);
    pthread_mutex_unlock (&self->lock);
    return client;
}

static void
s_release (gw_pool_t *self, bs_client_t *client, bool answered)
{
    pthread_mutex_lock (&self->lock);
    if (client && answered)
        snprintf (self->answered, sizeof self->answered, "%s", bs_client_endpoint (client));
    self->free [self->free_count++] = client;
    pthread_cond_signal (&self->freed);
    pthread_mutex_unlock (&self->lock);
}

bs_msg_t *
gw_pool_call (gw_pool_t *self, const char *service, const bs_msg_t *request,
              int timeout_ms, int attempts, bs_err_t *err_p)
{
    if (timeout_ms <= 0)
        timeout_ms = self->timeout_ms;
    if (attempts <= 0)
        attempts = self->attempts;
    //  A caller waits for a client no longer than a call itself may take
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    int64_t budget_ms = (int64_t) timeout_ms * attempts;
    deadline.tv_sec += (time_t) (budget_ms / 1000);
    deadline.tv_nsec += (long) (budget_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    bs_client_t *client = NULL;
    if (!s_acquire (self, &deadline, &client)) {
        *err_p = BS_ERR_unavailable;
        return NULL;
    }
    if (!client)
        client = s_new_client (self);
    bs_msg_t *reply = NULL;
    if (client) {
        bs_client_set_timeout (client, timeout_ms);
        bs_client_set_attempts (client, attempts);
        reply = bs_client_call (client, service, request);
        if (!reply)
            bs_client_destroy (&client);    //  drops whatever it still queues
    }
    //  A broker that served the call (not one that said it is the backup)
    bool served = reply && strcmp (bs_msg_str (reply, BS_FIELD_error), bs_err_name (BS_ERR_not_active)) != 0;
    s_release (self, client, served);
    if (!reply)
        *err_p = BS_ERR_timeout;
    return reply;
}
