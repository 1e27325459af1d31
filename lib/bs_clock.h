/*  bs_clock - the clock and the random numbers of the replicated core.
 *
 *  The modules whose decisions the deterministic simulator (sim/) checks
 *  (the broker's controller, the node's journal and catalog) read time and
 *  draw random numbers only through these three calls.  Real programs link
 *  this module (lib/bs_clock.c, in libbookstore.a): the system's clocks and
 *  the kernel's random source.  bookstore-sim links sim/sim_clock.c instead,
 *  ahead of the library (link-time substitution: the archive's bs_clock.o is
 *  then never pulled in), which serves virtual time and a seeded generator,
 *  so that one seed always gives the same run.
 *
 *  Plain functions; thread-safe in the real build (they read the system);
 *  the simulator's version is single-threaded, as the simulator is.
 */
#ifndef BS_CLOCK_H_INCLUDED
#define BS_CLOCK_H_INCLUDED

#include <stdint.h>

//  Monotonic milliseconds (zclock_mono in the real build)
int64_t bs_clock_mono (void);
//  Wall-clock milliseconds since the Unix epoch (zclock_time)
int64_t bs_clock_wall (void);
//  64 random bits (the kernel's random source)
uint64_t bs_random64 (void);

#endif
