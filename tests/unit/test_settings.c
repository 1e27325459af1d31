/*  test_settings - settings check their own range and say it  */
#include "bs_settings.h"
#include "testing.h"

#include <string.h>

static const bs_setting_t s_table [] = {
    { "liveness",  "3",  "heartbeats missed", 1, 100 },
    { "cache-mb",  "0",  "a default outside its range", 1, 64 },
    { "offset",    "0",  "any whole number", 0, 0 },
    { "id",        "",   "text", 0, 0 },
    { NULL, NULL, NULL, 0, 0 }
};

static bs_settings_t *
s_settings (int argc, char **argv)
{
    return bs_settings_new ("test", s_table, argc, argv);
}

//  Values within the range are taken, the bounds included
static void
test_in_range (void)
{
    char *argv [] = { "prog", "--liveness", "100", "--offset", "-7", NULL };
    bs_settings_t *settings = s_settings (5, argv);
    CHECK (settings);
    int64_t value = 0;
    char reason [200];
    CHECK (bs_settings_check_int (settings, "liveness", &value, reason, sizeof reason) && value == 100);
    CHECK (bs_settings_check_int (settings, "offset", &value, reason, sizeof reason) && value == -7);
    bs_settings_destroy (&settings);
}

//  A value outside the range is refused, and the sentence names the range
//  and the value given
static void
test_out_of_range_says_the_range (void)
{
    char *argv [] = { "prog", "--liveness", "0", NULL };
    bs_settings_t *settings = s_settings (3, argv);
    int64_t value = 42;
    char reason [200] = "";
    CHECK (!bs_settings_check_int (settings, "liveness", &value, reason, sizeof reason));
    CHECK (strcmp (reason, "--liveness must be 1..100, not '0'") == 0);
    CHECK (value == 42);                //  untouched
    CHECK (!bs_settings_int (settings, "liveness", &value));
    bs_settings_destroy (&settings);
}

//  Not a number at all: the same sentence
static void
test_malformed_says_the_range (void)
{
    char *argv [] = { "prog", "--liveness", "3x", NULL };
    bs_settings_t *settings = s_settings (3, argv);
    int64_t value;
    char reason [200] = "";
    CHECK (!bs_settings_check_int (settings, "liveness", &value, reason, sizeof reason));
    CHECK (strcmp (reason, "--liveness must be 1..100, not '3x'") == 0);
    bs_settings_destroy (&settings);
}

//  A setting without a range takes any whole number, but only one
static void
test_unranged_needs_a_number (void)
{
    char *argv [] = { "prog", "--offset", "1.5", NULL };
    bs_settings_t *settings = s_settings (3, argv);
    int64_t value;
    char reason [200] = "";
    CHECK (!bs_settings_check_int (settings, "offset", &value, reason, sizeof reason));
    CHECK (strcmp (reason, "--offset must be a whole number, not '1.5'") == 0);
    bs_settings_destroy (&settings);
}

//  Defaults, and values from the environment, are checked the same way
static void
test_defaults_and_environment_checked (void)
{
    char *argv [] = { "prog", NULL };
    setenv ("BOOKSTORE_LIVENESS", "101", 1);
    bs_settings_t *settings = s_settings (1, argv);
    int64_t value;
    char reason [200] = "";
    CHECK (!bs_settings_check_int (settings, "cache-mb", &value, reason, sizeof reason));
    CHECK (strcmp (reason, "--cache-mb must be 1..64, not '0'") == 0);
    CHECK (!bs_settings_check_int (settings, "liveness", &value, reason, sizeof reason));
    CHECK (strcmp (reason, "--liveness must be 1..100, not '101'") == 0);
    unsetenv ("BOOKSTORE_LIVENESS");
    bs_settings_destroy (&settings);
}

int
main (void)
{
    unsetenv ("BOOKSTORE_CONFIG");
    unsetenv ("BOOKSTORE_LIVENESS");
    unsetenv ("BOOKSTORE_OFFSET");
    unsetenv ("BOOKSTORE_CACHE_MB");
    RUN (test_in_range);
    RUN (test_out_of_range_says_the_range);
    RUN (test_malformed_says_the_range);
    RUN (test_unranged_needs_a_number);
    RUN (test_defaults_and_environment_checked);
    return DONE ();
}
