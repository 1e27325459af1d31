/*  bs_settings - one place where every program reads its settings.
 *
 *  Each program declares a table of settings.  A value comes from, in order:
 *  the command line (--name value, or --name alone for a flag), the
 *  environment (BOOKSTORE_NAME with dashes as underscores), the config file
 *  named by --config or BOOKSTORE_CONFIG (ZPL, key "<section>/<name>"), then
 *  the table's default.  Arguments that are not options stay as positional
 *  arguments.
 *
 *  Ownership: bs_settings_new returns settings the caller destroys with
 *  bs_settings_destroy; returned strings belong to the settings.
 */
#ifndef BS_SETTINGS_H_INCLUDED
#define BS_SETTINGS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;       //  option name without dashes, e.g. "base-port"
    const char *fallback;   //  default value; NULL marks a flag (no value)
    const char *help;
    int64_t min, max;       //  a number's range, which bs_settings_int checks
                            //  and --help shows; both 0: any whole number
} bs_setting_t;

typedef struct _bs_settings_t bs_settings_t;

//  table ends with an entry whose name is NULL.  Returns NULL after printing
//  a usage error to stderr (unknown option, missing value, bad config file).
//  --help prints the table and sets bs_settings_help_shown.
bs_settings_t *bs_settings_new (const char *section, const bs_setting_t *table,
                                int argc, char **argv);
void bs_settings_destroy (bs_settings_t **self_p);

const char *bs_settings_get (bs_settings_t *self, const char *name);
//  Parses a whole number within the setting's range.  On a malformed or
//  out-of-range value prints a sentence naming the range to stderr
//  ("program: --liveness must be 1..100, not '0'") and returns false.
bool bs_settings_int (bs_settings_t *self, const char *name, int64_t *value_p);
//  The same without printing: on failure the sentence goes into reason,
//  without the program's name
bool bs_settings_check_int (bs_settings_t *self, const char *name, int64_t *value_p, char *reason, size_t size);
bool bs_settings_flag (bs_settings_t *self, const char *name);
//  True when --help was given (the caller should exit 0)
bool bs_settings_help_shown (bs_settings_t *self);

int bs_settings_argc (bs_settings_t *self);
const char *bs_settings_arg (bs_settings_t *self, int index);

//  Parses a whole decimal number within [min, max]; false otherwise
bool bs_parse_int (const char *text, int64_t min, int64_t max, int64_t *value_p);

#endif
