/*  sim_clock - virtual time and the seeded generator.  Linked into
 *  bookstore-sim ahead of libbookstore.a, its bs_clock_* replace
 *  lib/bs_clock.c's (see bs_clock.h): the controller, journal and catalog
 *  read the simulator's clock and draw from its generator.  */
#include "sim.h"
#include "bs_clock.h"

int64_t sim_now;
static uint64_t s_state [4];

static uint64_t
s_splitmix (uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void
sim_seed (uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        s_state [i] = s_splitmix (&x);
    sim_now = 0;
}

static uint64_t
s_rotl (uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

//  xoshiro256**
uint64_t
sim_rand (void)
{
    uint64_t result = s_rotl (s_state [1] * 5, 7) * 9;
    uint64_t t = s_state [1] << 17;
    s_state [2] ^= s_state [0];
    s_state [3] ^= s_state [1];
    s_state [1] ^= s_state [2];
    s_state [0] ^= s_state [3];
    s_state [2] ^= t;
    s_state [3] = s_rotl (s_state [3], 45);
    return result;
}

int64_t
sim_range (int64_t low, int64_t high)
{
    if (high <= low)
        return low;
    return low + (int64_t) (sim_rand () % (uint64_t) (high - low + 1));
}

bool
sim_chance (int per_mille)
{
    return (int) (sim_rand () % 1000) < per_mille;
}

int64_t
bs_clock_mono (void)
{
    return sim_now;
}

//  A fixed wall-clock origin (2026-01-01): the same run every time
int64_t
bs_clock_wall (void)
{
    return INT64_C (1767225600000) + sim_now;
}

uint64_t
bs_random64 (void)
{
    return sim_rand ();
}
