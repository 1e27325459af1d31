/*  laggards - clients that do not read their replies (see laggards.h).
 */
#include "laggards.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t id [256];           //  routing ids are at most 255 bytes
    size_t size;                //  0: a free slot
    int64_t until_us;           //  a laggard until then
} laggard_t;

struct _laggards_t {
    laggard_t slots [LAGGARDS_MAX];
    size_t live;                //  slots in use, expired or not
    double tokens;              //  reads left in the budget
    double rate;                //  reads a microsecond
    double burst;               //  the budget's ceiling
    int64_t refilled_us;        //  when tokens was last brought up to date
    uint64_t dropped;
};

laggards_t *
laggards_new (uint32_t rate)
{
    laggards_t *self = calloc (1, sizeof (laggards_t));
    if (!self)
        abort ();
    self->rate = (rate? rate: 1) / 1e6;
    //  A burst of a hundredth of a second's reads: short enough that the
    //  laggards' queues fill and their sends block within milliseconds
    self->burst = rate / 100 > 2? rate / 100: 2;
    self->tokens = self->burst;
    return self;
}

void
laggards_destroy (laggards_t **self_p)
{
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

static laggard_t *
s_find (laggards_t *self, const void *id, size_t size)
{
    for (size_t i = 0; i < LAGGARDS_MAX && size; i++) {
        laggard_t *l = &self->slots [i];
        if (l->size == size && memcmp (l->id, id, size) == 0)
            return l;
    }
    return NULL;
}

bool
laggards_mark (laggards_t *self, const void *id, size_t size, int64_t now_us)
{
    if (size == 0 || size > sizeof self->slots [0].id)
        return false;
    laggard_t *l = s_find (self, id, size);
    bool fresh = !l || l->until_us <= now_us;
    if (!l) {
        //  A free or expired slot, else the one marked longest ago
        l = &self->slots [0];
        for (size_t i = 0; i < LAGGARDS_MAX; i++) {
            laggard_t *s = &self->slots [i];
            if (s->size == 0 || s->until_us <= now_us) {
                l = s;
                break;
            }
            if (s->until_us < l->until_us)
                l = s;
        }
        if (l->size == 0)
            self->live++;
        memcpy (l->id, id, size);
        l->size = size;
    }
    l->until_us = now_us + (int64_t) LAGGARD_MS * 1000;
    return fresh;
}

bool
laggards_match (laggards_t *self, const void *id, size_t size, int64_t now_us)
{
    if (self->live == 0)
        return false;
    laggard_t *l = s_find (self, id, size);
    if (!l)
        return false;
    if (l->until_us <= now_us) {
        l->size = 0;            //  expired: its next request shows whether
        self->live--;           //  it reads now
        return false;
    }
    self->dropped++;
    return true;
}

int64_t
laggards_charge (laggards_t *self, int64_t now_us)
{
    if (now_us > self->refilled_us) {
        self->tokens += (double) (now_us - self->refilled_us) * self->rate;
        if (self->tokens > self->burst)
            self->tokens = self->burst;
        self->refilled_us = now_us;
    }
    self->tokens -= 1;
    if (self->tokens >= 1)
        return 0;
    //  Rest until two reads are due: one for the laggard, one at least for
    //  whoever else is waiting (the socket reads its connections in turn)
    return now_us + (int64_t) ((2 - self->tokens) / self->rate) + 1;
}

bool
laggards_any (laggards_t *self)
{
    return self->live > 0;
}

void
laggards_expire (laggards_t *self, int64_t now_us)
{
    for (size_t i = 0; i < LAGGARDS_MAX && self->live; i++) {
        laggard_t *l = &self->slots [i];
        if (l->size && l->until_us <= now_us) {
            l->size = 0;
            self->live--;
        }
    }
}

uint64_t
laggards_dropped (laggards_t *self)
{
    return self->dropped;
}
