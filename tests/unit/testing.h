/*  testing.h - a minimal test harness for the unit tests.
 *  Each test prints "ok - name" or "not ok - name"; DONE() prints the TAP
 *  plan "1..N" after them (a binary that crashes mid-way fails by its exit
 *  status and misses its plan); tests/run.sh counts them.  CHECK (cond)
 *  prints the condition when it fails; CHECK_EQ (a, b) prints both values.
 */
#ifndef TESTING_H_INCLUDED
#define TESTING_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>

static int s_test_failed;
static int s_tests_passed, s_tests_failed;

#define CHECK(cond) do { \
    if (!(cond)) { \
        fprintf (stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        s_test_failed = 1; \
    } \
} while (0)

//  Two integers that must be equal; on failure both values are printed
//  (as long long), so that the log says what came instead.  Each argument
//  is evaluated once.
#define CHECK_EQ(a, b) do { \
    long long check_a_ = (long long) (a), check_b_ = (long long) (b); \
    if (check_a_ != check_b_) { \
        fprintf (stderr, "  %s:%d: check failed: %s == %s (%lld != %lld)\n", \
                 __FILE__, __LINE__, #a, #b, check_a_, check_b_); \
        s_test_failed = 1; \
    } \
} while (0)

#define RUN(test) do { \
    s_test_failed = 0; \
    test (); \
    if (s_test_failed) { s_tests_failed++; printf ("not ok - %s\n", #test); } \
    else { s_tests_passed++; printf ("ok - %s\n", #test); } \
    fflush (stdout); \
} while (0)

#define DONE() (printf ("1..%d\n# %d passed, %d failed\n", \
                        s_tests_passed + s_tests_failed, s_tests_passed, s_tests_failed), \
                s_tests_failed? 1: 0)

#endif
