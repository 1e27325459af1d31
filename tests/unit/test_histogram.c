/*  test_histogram - the log-linear latency histogram: precision,
 *  percentiles, merging and edge cases  */
#include "bs_histogram.h"
#include "testing.h"

#include <math.h>

#define HOUR_NS INT64_C (3600000000000)

//  True when got is within one part in a thousand of want
static bool
s_close (int64_t got, int64_t want)
{
    return llabs (got - want) <= want / 1000 + 1;
}

static void
test_empty (void)
{
    bs_histogram_t *h = bs_histogram_new (HOUR_NS, 3);
    CHECK (h);
    CHECK (bs_histogram_count (h) == 0);
    CHECK (bs_histogram_percentile (h, 50) == 0);
    CHECK (bs_histogram_max (h) == 0);
    CHECK (bs_histogram_min (h) == 0);
    CHECK (bs_histogram_mean (h) == 0);
    bs_histogram_destroy (&h);
    CHECK (h == NULL);
    bs_histogram_destroy (&h);      //  destroying NULL is harmless
}

static void
test_bad_arguments (void)
{
    CHECK (bs_histogram_new (1, 3) == NULL);
    CHECK (bs_histogram_new (1000, 0) == NULL);
    CHECK (bs_histogram_new (1000, 6) == NULL);
}

static void
test_small_values_are_exact (void)
{
    bs_histogram_t *h = bs_histogram_new (HOUR_NS, 3);
    for (int v = 0; v < 2000; v++)
        bs_histogram_record (h, v);
    CHECK (bs_histogram_count (h) == 2000);
    CHECK (bs_histogram_min (h) == 0);
    CHECK (bs_histogram_max (h) == 1999);
    CHECK (bs_histogram_percentile (h, 50) == 999);
    CHECK (bs_histogram_percentile (h, 99) == 1979);
    CHECK (fabs (bs_histogram_mean (h) - 999.5) < 0.01);
    bs_histogram_destroy (&h);
}

static void
test_uniform_percentiles (void)
{
    //  1..1,000,000 microseconds in nanoseconds: each percentile is known
    bs_histogram_t *h = bs_histogram_new (HOUR_NS, 3);
    for (int64_t us = 1; us <= 1000000; us++)
        bs_histogram_record (h, us * 1000);
    CHECK (bs_histogram_count (h) == 1000000);
    CHECK (s_close (bs_histogram_percentile (h, 50), INT64_C (500000000)));
    CHECK (s_close (bs_histogram_percentile (h, 90), INT64_C (900000000)));
    CHECK (s_close (bs_histogram_percentile (h, 99), INT64_C (990000000)));
    CHECK (s_close (bs_histogram_percentile (h, 99.9), INT64_C (999000000)));
    CHECK (bs_histogram_percentile (h, 100) == INT64_C (1000000000));
    CHECK (bs_histogram_max (h) == INT64_C (1000000000));
    CHECK (bs_histogram_min (h) == 1000);
    CHECK (fabs (bs_histogram_mean (h) / 500000500.0 - 1) < 0.001);
    bs_histogram_destroy (&h);
}

static void
test_percentiles_are_ordered_and_bounded (void)
{
    //  A long tail: most values small, a few huge
    bs_histogram_t *h = bs_histogram_new (HOUR_NS, 3);
    unsigned state = 12345;
    for (int i = 0; i < 100000; i++) {
        state = state * 1103515245 + 12345;
        int64_t v = 50000 + (state >> 8) % 20000;
        if (i % 500 == 0)
            v *= 400;
        bs_histogram_record (h, v);
    }
    int64_t p50 = bs_histogram_percentile (h, 50);
    int64_t p90 = bs_histogram_percentile (h, 90);
    int64_t p99 = bs_histogram_percentile (h, 99);
    int64_t p999 = bs_histogram_percentile (h, 99.9);
    int64_t max = bs_histogram_max (h);
    CHECK (bs_histogram_min (h) <= p50);
    CHECK (p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max);
    CHECK (p50 >= 50000 && p50 < 70100);
    CHECK (p999 > 20000000);        //  the 0.2% tail shows
    bs_histogram_destroy (&h);
}

static void
test_relative_precision (void)
{
    //  One value at a time: the percentile is within 0.1% of it, never below
    bs_histogram_t *h = bs_histogram_new (HOUR_NS, 3);
    const int64_t values [] = { 1, 999, 2047, 2048, 2049, 4095, 65537, 1234567, 987654321,
                                INT64_C (123456789012), HOUR_NS };
    for (size_t i = 0; i < sizeof values / sizeof values [0]; i++) {
        bs_histogram_reset (h);
        //  Two values so that the percentile comes from the buckets, not max
        bs_histogram_record (h, values [i]);
        bs_histogram_record (h, HOUR_NS);
        int64_t p = bs_histogram_percentile (h, 50);
        CHECK (p >= values [i]);
        CHECK (s_close (p, values [i]));
    }
    bs_histogram_destroy (&h);
}

static void
test_out_of_range_values (void)
{
    bs_histogram_t *h = bs_histogram_new (1000000, 2);
    bs_histogram_record (h, -5);
    bs_histogram_record (h, INT64_C (5000000000));
    CHECK (bs_histogram_count (h) == 2);
    CHECK (bs_histogram_min (h) == 0);
    //  The exact max is kept even beyond the highest trackable value
    CHECK (bs_histogram_max (h) == INT64_C (5000000000));
    CHECK (bs_histogram_percentile (h, 100) == INT64_C (5000000000));
    CHECK (bs_histogram_percentile (h, 10) == 0);
    int64_t p99 = bs_histogram_percentile (h, 99);
    CHECK (p99 >= 1000000 && p99 <= INT64_C (5000000000));
    //  The widest range works too
    bs_histogram_t *wide = bs_histogram_new (INT64_MAX, 3);
    CHECK (wide);
    bs_histogram_record (wide, INT64_MAX);
    bs_histogram_record (wide, 1);
    CHECK (bs_histogram_percentile (wide, 100) == INT64_MAX);
    CHECK (bs_histogram_percentile (wide, 50) == 1);
    bs_histogram_destroy (&wide);
    bs_histogram_destroy (&h);
}

static void
test_record_n (void)
{
    bs_histogram_t *h = bs_histogram_new (HOUR_NS, 3);
    bs_histogram_record_n (h, 100, 99);
    bs_histogram_record_n (h, 100000, 1);
    bs_histogram_record_n (h, 7, 0);         //  nothing
    CHECK (bs_histogram_count (h) == 100);
    CHECK (bs_histogram_min (h) == 100);
    CHECK (bs_histogram_percentile (h, 99) == 100);
    CHECK (bs_histogram_percentile (h, 99.5) == 100000);
    bs_histogram_destroy (&h);
}

static void
test_merge (void)
{
    bs_histogram_t *a = bs_histogram_new (HOUR_NS, 3);
    bs_histogram_t *b = bs_histogram_new (HOUR_NS, 3);
    bs_histogram_t *both = bs_histogram_new (HOUR_NS, 3);
    for (int64_t v = 1; v <= 5000; v++) {
        bs_histogram_record (v % 2? a: b, v * 37);
        bs_histogram_record (both, v * 37);
    }
    CHECK (bs_histogram_merge (a, b));
    CHECK (bs_histogram_count (a) == 5000);
    CHECK (bs_histogram_count (b) == 2500);     //  the other is left as it was
    CHECK (bs_histogram_min (a) == 37);
    CHECK (bs_histogram_max (a) == 5000 * 37);
    const double percents [] = { 1, 50, 90, 99, 99.9, 100 };
    for (size_t i = 0; i < sizeof percents / sizeof percents [0]; i++)
        CHECK (bs_histogram_percentile (a, percents [i]) == bs_histogram_percentile (both, percents [i]));
    //  Merging into an empty histogram takes the other's min and max
    bs_histogram_t *empty = bs_histogram_new (HOUR_NS, 3);
    CHECK (bs_histogram_merge (empty, b));
    CHECK (bs_histogram_min (empty) == 74 && bs_histogram_max (empty) == 5000 * 37);
    //  Different layouts are refused and change nothing
    bs_histogram_t *other = bs_histogram_new (HOUR_NS, 2);
    bs_histogram_record (other, 5);
    CHECK (!bs_histogram_merge (a, other));
    CHECK (bs_histogram_count (a) == 5000);
    bs_histogram_destroy (&other);
    bs_histogram_destroy (&empty);
    bs_histogram_destroy (&a);
    bs_histogram_destroy (&b);
    bs_histogram_destroy (&both);
}

static void
test_reset (void)
{
    bs_histogram_t *h = bs_histogram_new (HOUR_NS, 3);
    bs_histogram_record (h, 123456);
    bs_histogram_reset (h);
    CHECK (bs_histogram_count (h) == 0);
    CHECK (bs_histogram_max (h) == 0);
    CHECK (bs_histogram_percentile (h, 99) == 0);
    bs_histogram_record (h, 10);
    CHECK (bs_histogram_min (h) == 10 && bs_histogram_max (h) == 10);
    bs_histogram_destroy (&h);
}

int
main (void)
{
    RUN (test_empty);
    RUN (test_bad_arguments);
    RUN (test_small_values_are_exact);
    RUN (test_uniform_percentiles);
    RUN (test_percentiles_are_ordered_and_bounded);
    RUN (test_relative_precision);
    RUN (test_out_of_range_values);
    RUN (test_record_n);
    RUN (test_merge);
    RUN (test_reset);
    return DONE ();
}
