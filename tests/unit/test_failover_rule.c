/*  test_failover_rule - moving on from a passive broker: the next one at once, a
 *  pause after a whole round of them
 */
#include "bs_failover.h"
#include "testing.h"

//  A pair: the first "not_active" moves on at once, the second (the whole
//  round refused) pauses, and the third starts a new round
static void
test_pair_pauses_after_a_round (void)
{
    bs_failover_t failover = { 0 };
    CHECK (bs_failover_not_active (&failover, 2) == BS_FAILOVER_NOW);
    CHECK (bs_failover_not_active (&failover, 2) == BS_FAILOVER_AFTER_PAUSE);
    CHECK (bs_failover_not_active (&failover, 2) == BS_FAILOVER_NOW);
    CHECK (bs_failover_not_active (&failover, 2) == BS_FAILOVER_AFTER_PAUSE);
}

//  Three brokers: two moves, then the pause
static void
test_round_is_the_list_length (void)
{
    bs_failover_t failover = { 0 };
    CHECK (bs_failover_not_active (&failover, 3) == BS_FAILOVER_NOW);
    CHECK (bs_failover_not_active (&failover, 3) == BS_FAILOVER_NOW);
    CHECK (bs_failover_not_active (&failover, 3) == BS_FAILOVER_AFTER_PAUSE);
}

//  One broker, and it is passive: every answer is a whole round
static void
test_one_broker_always_pauses (void)
{
    bs_failover_t failover = { 0 };
    for (int i = 0; i < 3; i++)
        CHECK (bs_failover_not_active (&failover, 1) == BS_FAILOVER_AFTER_PAUSE);
}

//  Any other outcome between two "not_active" answers breaks the run
static void
test_other_outcome_starts_again (void)
{
    bs_failover_t failover = { 0 };
    CHECK (bs_failover_not_active (&failover, 2) == BS_FAILOVER_NOW);
    bs_failover_reset (&failover);
    CHECK (bs_failover_not_active (&failover, 2) == BS_FAILOVER_NOW);
    CHECK (bs_failover_not_active (&failover, 2) == BS_FAILOVER_AFTER_PAUSE);
}

static void
test_recognises_not_active (void)
{
    bs_msg_t *passive = bs_msg_new_error (BS_ERR_not_active, "this broker is the backup");
    bs_msg_t *unavailable = bs_msg_new_error (BS_ERR_unavailable, "no catalog node");
    bs_msg_t *answer = bs_msg_new ();
    bs_msg_set_int (answer, BS_FIELD_ok, 1);
    CHECK (bs_failover_is_not_active (passive));
    CHECK (!bs_failover_is_not_active (unavailable));
    CHECK (!bs_failover_is_not_active (answer));
    CHECK (!bs_failover_is_not_active (NULL));
    bs_msg_destroy (&passive);
    bs_msg_destroy (&unavailable);
    bs_msg_destroy (&answer);
}

int
main (void)
{
    RUN (test_pair_pauses_after_a_round);
    RUN (test_round_is_the_list_length);
    RUN (test_one_broker_always_pauses);
    RUN (test_other_outcome_starts_again);
    RUN (test_recognises_not_active);
    return DONE ();
}
