/*  test_profile - an event loop's phases, timed  */
#include "bs_profile.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

enum { WAIT, WORK, COMMIT, ITEMS };
static const char *s_names [] = { "wait", "work", "commit", "items" };

//  The share printed for a phase, from the logged line
static double
s_share (const char *line, const char *phase)
{
    char pattern [32];
    snprintf (pattern, sizeof pattern, " %s ", phase);
    const char *at = strstr (line, pattern);
    return at? atof (at + strlen (pattern)): -1;
}

static void
test_off (void)
{
    bs_profile_t *profile = bs_profile_new ("node", s_names, 4, 0);
    CHECK (profile == NULL);
    //  Every call takes NULL
    CHECK (bs_profile_enter (profile, WORK) == 0);
    bs_profile_add (profile, ITEMS, 3);
    CHECK (bs_profile_tick (profile) == NULL);
    bs_profile_destroy (&profile);
}

static void
test_shares (void)
{
    bs_profile_t *profile = bs_profile_new ("node-9", s_names, 4, 50);
    CHECK (profile != NULL);
    CHECK (bs_profile_tick (profile) == NULL);       //  the period is not over
    bs_profile_enter (profile, WORK);
    zclock_sleep (40);
    //  A nested step goes back to the phase it interrupted
    int left = bs_profile_enter (profile, COMMIT);
    CHECK (left == WORK);
    zclock_sleep (20);
    bs_profile_enter (profile, left);
    bs_profile_add (profile, ITEMS, 7);
    bs_profile_enter (profile, WAIT);
    const char *line = bs_profile_tick (profile);
    CHECK (line != NULL);
    if (!line)
        return;
    CHECK (strstr (line, "node-9: profile of") == line);
    double work = s_share (line, "work"), commit = s_share (line, "commit");
    //  40 ms of about 60 in work, 20 in commit; the rest of the line
    //  counts entries
    CHECK (work > commit && commit > 5);
    CHECK (work + commit <= 100.5);
    CHECK (strstr (line, "items 0.0% (7)") != NULL);
    CHECK (strstr (line, "work") && strstr (line, "(2)"));    //  entered twice
    //  A new period starts from zero
    zclock_sleep (60);
    line = bs_profile_tick (profile);
    CHECK (line && s_share (line, "wait") > 99);
    bs_profile_destroy (&profile);
    CHECK (profile == NULL);
}

int
main (void)
{
    RUN (test_off);
    RUN (test_shares);
    return DONE ();
}
