/*  bs_profile - where a single-threaded event loop spends its time.
 *
 *  The loop names its phases once (waiting, executing, committing, ...)
 *  and says which one it enters; the profile adds the wall-clock time to
 *  the phase it leaves.  Every period it logs one line with each phase's
 *  share of the period and its count of entries, then starts over.  This
 *  is how a latency-bound process shows what it waits for: a sampling
 *  profiler sees only the time on the CPU.
 *
 *  Off by default: bs_profile_new with period 0 returns NULL, and every
 *  call accepts NULL and does nothing.
 *
 *  Ownership: the phase names are borrowed and must outlive the profile.
 */
#ifndef BS_PROFILE_H_INCLUDED
#define BS_PROFILE_H_INCLUDED

#include <stdint.h>

typedef struct _bs_profile_t bs_profile_t;

//  owner: who logs (a node id); phases[0] is the phase it starts in.
//  period_ms 0: no profile (NULL)
bs_profile_t *bs_profile_new (const char *owner, const char **phases, int count, int64_t period_ms);
void bs_profile_destroy (bs_profile_t **self_p);

//  Enters phase; returns the phase left, so that a nested step can go back
int bs_profile_enter (bs_profile_t *self, int phase);

//  Adds n to the phase's count without entering it (items in a batch)
void bs_profile_add (bs_profile_t *self, int phase, int64_t n);

//  Logs and restarts when the period is over; returns the line logged
//  (valid until the next call), or NULL
const char *bs_profile_tick (bs_profile_t *self);

#endif
