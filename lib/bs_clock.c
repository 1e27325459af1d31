/*  bs_clock - the system's clocks and random source (see bs_clock.h; the
 *  simulator links sim/sim_clock.c instead)  */
#include "bs_clock.h"

#include <czmq.h>
#include <sys/random.h>

int64_t
bs_clock_mono (void)
{
    return zclock_mono ();
}

int64_t
bs_clock_wall (void)
{
    return zclock_time ();
}

uint64_t
bs_random64 (void)
{
    uint64_t value = 0;
    size_t got = 0;
    while (got < sizeof value) {
        ssize_t rc = getrandom ((uint8_t *) &value + got, sizeof value - got, 0);
        if (rc > 0)
            got += (size_t) rc;
        else
        if (rc < 0 && errno != EINTR)
            break;
    }
    if (got < sizeof value)
        //  No random source at all: still different across processes
        value ^= (uint64_t) zclock_time () * 2654435761u ^ (uint64_t) getpid ();
    return value;
}
