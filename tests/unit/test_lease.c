/*  test_lease - when a broker may serve: the active lease's rules  */
#include "lease.h"
#include "testing.h"

#include <string.h>

#define TTL 1           //  seconds (the rules, not fence.c's figures)
#define MARGIN 250
#define RENEW 200

//  A broker that won the key with lease 7, its grant sent at t0
static lease_t *
s_holding (int64_t t0)
{
    lease_t *lease = lease_new ("broker-1", "tcp://127.0.0.1:5555", TTL, MARGIN, RENEW);
    CHECK (lease_next (lease, true, t0) == LEASE_ASK_GRANT);
    lease_answer (lease, LEASE_ANSWER_OK, 7, NULL, t0 + 5);
    CHECK (lease_next (lease, true, t0 + 5) == LEASE_ASK_CAMPAIGN);
    CHECK (strstr (lease_value (lease), "\"lease\":7") != NULL);
    lease_answer (lease, LEASE_ANSWER_OK, 0, NULL, t0 + 10);
    return lease;
}

static void
test_serves_only_while_the_lease_is_provably_valid (void)
{
    lease_t *lease = s_holding (1000);
    CHECK (lease_serving (lease, 1010));
    //  Counted from when the grant was sent, less the margin
    CHECK (lease_serving (lease, 1000 + 1000 - MARGIN - 1));
    CHECK (!lease_serving (lease, 1000 + 1000 - MARGIN));
    lease_destroy (&lease);
}

static void
test_a_paused_broker_finds_its_lease_lapsed (void)
{
    //  Stopped for five seconds with the key: the first question after it
    //  resumes is whether it may serve, and it may not, though it still
    //  "holds" the key as far as it knows
    lease_t *lease = s_holding (1000);
    CHECK (!lease_serving (lease, 6000));
    //  Its keep-alive then finds the lease gone: it starts again
    CHECK (lease_next (lease, true, 6000) == LEASE_ASK_KEEPALIVE);
    lease_answer (lease, LEASE_ANSWER_OK, 0, NULL, 6003);
    CHECK (!lease_serving (lease, 6004));
    CHECK (lease_next (lease, true, 6004) == LEASE_ASK_GRANT);
    lease_destroy (&lease);
}

static void
test_keepalives_extend_failures_do_not (void)
{
    lease_t *lease = s_holding (1000);
    CHECK (lease_next (lease, true, 1100) == LEASE_IDLE);           //  not yet due
    CHECK (lease_next (lease, true, 1200) == LEASE_ASK_KEEPALIVE);
    lease_answer (lease, LEASE_ANSWER_OK, 1, NULL, 1210);
    CHECK (lease_serving (lease, 1200 + 1000 - MARGIN - 1));
    CHECK (!lease_serving (lease, 1200 + 1000 - MARGIN));
    //  etcd does not answer: validity runs out from the last success
    CHECK (lease_next (lease, true, 1400) == LEASE_ASK_KEEPALIVE);
    lease_answer (lease, LEASE_ANSWER_FAILED, 0, NULL, 1650);
    CHECK (lease_serving (lease, 1900));
    CHECK (!lease_serving (lease, 1950));
    //  A longer TTL from etcd never stretches ours
    CHECK (lease_next (lease, true, 1800) == LEASE_ASK_KEEPALIVE);
    lease_answer (lease, LEASE_ANSWER_OK, 30, NULL, 1805);
    CHECK (!lease_serving (lease, 1800 + 1000 - MARGIN));
    lease_destroy (&lease);
}

static void
test_a_held_key_is_not_taken (void)
{
    lease_t *lease = lease_new ("broker-2", "tcp://127.0.0.1:5560", TTL, MARGIN, RENEW);
    CHECK (lease_next (lease, true, 0) == LEASE_ASK_GRANT);
    lease_answer (lease, LEASE_ANSWER_OK, 9, NULL, 1);
    CHECK (lease_next (lease, true, 1) == LEASE_ASK_CAMPAIGN);
    lease_answer (lease, LEASE_ANSWER_TAKEN, 0,
                  "{\"endpoint\":\"tcp://127.0.0.1:5555\",\"id\":\"broker-1\",\"lease\":7}", 2);
    CHECK (!lease_serving (lease, 3));
    CHECK (strcmp (lease_holder_endpoint (lease, 3), "tcp://127.0.0.1:5555") == 0);
    CHECK (strcmp (lease_holder_id (lease, 3), "broker-1") == 0);
    CHECK (lease_holder_since (lease, 3) == 2);
    //  Found again with the same lease: held since the first time; with
    //  another lease (a new holder): since then
    CHECK (lease_next (lease, true, 110) == LEASE_ASK_CAMPAIGN);
    lease_answer (lease, LEASE_ANSWER_TAKEN, 0,
                  "{\"endpoint\":\"tcp://127.0.0.1:5555\",\"id\":\"broker-1\",\"lease\":7}", 111);
    CHECK (lease_holder_since (lease, 112) == 2);
    CHECK (lease_next (lease, true, 200) == LEASE_ASK_KEEPALIVE);
    lease_answer (lease, LEASE_ANSWER_OK, 1, NULL, 201);
    CHECK (lease_next (lease, true, 212) == LEASE_ASK_CAMPAIGN);
    lease_answer (lease, LEASE_ANSWER_TAKEN, 0,
                  "{\"endpoint\":\"tcp://127.0.0.1:5565\",\"id\":\"broker-3\",\"lease\":8}", 213);
    CHECK (lease_holder_since (lease, 214) == 213);
    CHECK (strcmp (lease_holder_id (lease, 214), "broker-3") == 0);
    //  Not seen for longer than a lease and a second: perhaps gone
    CHECK (strcmp (lease_holder_endpoint (lease, 213 + 2001), "") == 0);
    CHECK (lease_holder_since (lease, 213 + 2001) == 0);
    //  It tries again a little later, and keeps its own lease alive
    CHECK (lease_next (lease, true, 223) == LEASE_IDLE);
    CHECK (lease_next (lease, true, 330) == LEASE_ASK_CAMPAIGN);
    lease_answer (lease, LEASE_ANSWER_OK, 0, NULL, 331);
    CHECK (lease_serving (lease, 332));
    CHECK (strcmp (lease_holder_endpoint (lease, 332), "") == 0);
    CHECK (lease_holder_since (lease, 332) == 0);
    lease_destroy (&lease);
}

static void
test_a_lost_answer_is_settled_by_the_key (void)
{
    //  The campaign's answer is lost: the next campaign finds the key made
    //  with its own lease, so it holds it; one made with another lease
    //  (an older one of its own) is not its
    lease_t *lease = lease_new ("broker-1", "tcp://127.0.0.1:5555", TTL, MARGIN, RENEW);
    lease_next (lease, true, 0);
    lease_answer (lease, LEASE_ANSWER_OK, 7, NULL, 1);
    lease_next (lease, true, 1);
    lease_answer (lease, LEASE_ANSWER_FAILED, 0, NULL, 2);
    CHECK (!lease_serving (lease, 3));
    CHECK (lease_next (lease, true, 150) == LEASE_ASK_CAMPAIGN);
    lease_answer (lease, LEASE_ANSWER_TAKEN, 0, "{\"endpoint\":\"tcp://127.0.0.1:5555\",\"id\":\"broker-1\",\"lease\":6}", 151);
    CHECK (!lease_serving (lease, 152));
    CHECK (lease_next (lease, true, 300) == LEASE_ASK_KEEPALIVE);
    lease_answer (lease, LEASE_ANSWER_OK, 1, NULL, 301);
    CHECK (lease_next (lease, true, 302) == LEASE_ASK_CAMPAIGN);
    lease_answer (lease, LEASE_ANSWER_TAKEN, 0, "{\"endpoint\":\"tcp://127.0.0.1:5555\",\"id\":\"broker-1\",\"lease\":7}", 303);
    CHECK (lease_serving (lease, 304));
    //  A lease etcd no longer knows is dropped
    CHECK (lease_next (lease, true, 500) == LEASE_ASK_KEEPALIVE);
    lease_answer (lease, LEASE_ANSWER_REFUSED, 0, NULL, 501);
    CHECK (!lease_serving (lease, 502));
    CHECK (lease_next (lease, true, 700) == LEASE_ASK_GRANT);
    lease_destroy (&lease);
}

static void
test_yielding_gives_the_lease_up (void)
{
    lease_t *lease = s_holding (0);
    CHECK (lease_next (lease, false, 50) == LEASE_ASK_REVOKE);
    lease_answer (lease, LEASE_ANSWER_FAILED, 0, NULL, 60);
    CHECK (!lease_serving (lease, 61));
    CHECK (lease_id (lease) == 0);
    CHECK (lease_next (lease, false, 100) == LEASE_IDLE);
    //  One question at a time
    CHECK (lease_next (lease, true, 200) == LEASE_ASK_GRANT);
    CHECK (lease_next (lease, true, 200) == LEASE_IDLE);
    lease_destroy (&lease);
}

int
main (void)
{
    RUN (test_serves_only_while_the_lease_is_provably_valid);
    RUN (test_a_paused_broker_finds_its_lease_lapsed);
    RUN (test_keepalives_extend_failures_do_not);
    RUN (test_a_held_key_is_not_taken);
    RUN (test_a_lost_answer_is_settled_by_the_key);
    RUN (test_yielding_gives_the_lease_up);
    return DONE ();
}
