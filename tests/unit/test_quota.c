/*  test_quota - per-client and total limits on requests in flight  */
#include "quota.h"
#include "testing.h"

static void
test_per_client_limit (void)
{
    quota_t *quota = quota_new (3, 100);
    uint64_t a = quota_key ("A", 1), b = quota_key ("B", 1);
    CHECK (quota_take (quota, a) && quota_take (quota, a) && quota_take (quota, a));
    CHECK (!quota_take (quota, a));             //  A is at its limit...
    CHECK (quota_take (quota, b));              //  ...B is not
    quota_give (quota, a);
    CHECK (quota_take (quota, a));
    CHECK_EQ (quota_of (quota, a), 3);
    CHECK_EQ (quota_of (quota, b), 1);
    CHECK_EQ (quota_total (quota), 4);
    quota_destroy (&quota);
    CHECK (quota == NULL);
}

static void
test_total_limit (void)
{
    quota_t *quota = quota_new (10, 5);
    for (int i = 0; i < 5; i++) {
        char id = (char) ('a' + i);
        CHECK (quota_take (quota, quota_key (&id, 1)));
    }
    CHECK (!quota_take (quota, quota_key ("z", 1)));
    quota_give (quota, quota_key ("c", 1));
    CHECK (quota_take (quota, quota_key ("z", 1)));
    quota_destroy (&quota);
}

//  Many clients coming and going: counts stay exact through growth and
//  removals
static void
test_churn (void)
{
    quota_t *quota = quota_new (1000, 1000000);
    for (uint32_t round = 0; round < 3; round++) {
        for (uint32_t i = 0; i < 20000; i++)
            for (uint32_t k = 0; k <= i % 3; k++)
                quota_take (quota, quota_key (&i, sizeof i));
        for (uint32_t i = 0; i < 20000; i += 2)
            for (uint32_t k = 0; k <= i % 3; k++)
                quota_give (quota, quota_key (&i, sizeof i));
        bool exact = true;
        for (uint32_t i = 1; i < 20000; i += 2)
            exact &= quota_of (quota, quota_key (&i, sizeof i)) == (round + 1) * (i % 3 + 1);
        CHECK (exact);
        for (uint32_t i = 0; i < 20000; i += 2)
            CHECK (quota_of (quota, quota_key (&i, sizeof i)) == 0);
    }
    quota_destroy (&quota);
}

int
main (void)
{
    RUN (test_per_client_limit);
    RUN (test_total_limit);
    RUN (test_churn);
    return DONE ();
}
