/*  bs_profile - where a single-threaded event loop spends its time */
#include "bs_profile.h"

#include <czmq.h>
#include <time.h>

#define PHASES_MAX 16

struct _bs_profile_t {
    char owner [64];
    const char *names [PHASES_MAX];
    int count;
    int current;
    int64_t period_us;
    int64_t started;            //  this period, in us
    int64_t entered;            //  the current phase, in us
    int64_t spent [PHASES_MAX];
    int64_t entries [PHASES_MAX];
    char line [1024];
};

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bs_profile_t *
bs_profile_new (const char *owner, const char **phases, int count, int64_t period_ms)
{
    if (period_ms <= 0 || count <= 0 || count > PHASES_MAX)
        return NULL;
    bs_profile_t *self = calloc (1, sizeof (bs_profile_t));
    if (!self)
        return NULL;
    snprintf (self->owner, sizeof self->owner, "%s", owner);
    for (int i = 0; i < count; i++)
        self->names [i] = phases [i];
    self->count = count;
    self->period_us = period_ms * 1000;
    self->started = self->entered = s_now_us ();
    return self;
}

void
bs_profile_destroy (bs_profile_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

int
bs_profile_enter (bs_profile_t *self, int phase)
{
    if (!self || phase < 0 || phase >= self->count)
        return 0;
    int left = self->current;
    if (phase != left) {
        int64_t now = s_now_us ();
        self->spent [left] += now - self->entered;
        self->entered = now;
        self->current = phase;
        self->entries [phase]++;
    }
    return left;
}

void
bs_profile_add (bs_profile_t *self, int phase, int64_t n)
{
    if (self && phase >= 0 && phase < self->count)
        self->entries [phase] += n;
}

const char *
bs_profile_tick (bs_profile_t *self)
{
    if (!self)
        return NULL;
    int64_t now = s_now_us ();
    int64_t elapsed = now - self->started;
    if (elapsed < self->period_us)
        return NULL;
    self->spent [self->current] += now - self->entered;
    self->entered = now;
    int used = snprintf (self->line, sizeof self->line, "%s: profile of %.1f s:", self->owner, elapsed / 1e6);
    for (int i = 0; i < self->count && used < (int) sizeof self->line; i++)
        used += snprintf (self->line + used, sizeof self->line - (size_t) used, " %s %.1f%% (%lld)",
                          self->names [i], 100.0 * (double) self->spent [i] / (double) elapsed,
                          (long long) self->entries [i]);
    memset (self->spent, 0, sizeof self->spent);
    memset (self->entries, 0, sizeof self->entries);
    self->started = now;
    zsys_info ("%s", self->line);
    return self->line;
}
