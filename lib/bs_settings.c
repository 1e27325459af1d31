/*  bs_settings - command line, environment, config file, defaults  */
#include "bs_settings.h"
#include "bs_alloc.h"

#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETTINGS 64
#define MAX_ARGS 64

struct _bs_settings_t {
    const bs_setting_t *table;
    int count;
    char *values [MAX_SETTINGS];    //  NULL: not given (use the fallback)
    char *args [MAX_ARGS];
    int argc;
    bool help;
    const char *program;            //  for messages: argv [0] without its folder
};

static int
s_find (const bs_settings_t *self, const char *name)
{
    for (int i = 0; i < self->count; i++)
        if (strcmp (self->table [i].name, name) == 0)
            return i;
    return -1;
}

static bool
s_ranged (const bs_setting_t *setting)
{
    return setting->min != 0 || setting->max != 0;
}

static void
s_usage (const bs_settings_t *self, const char *program)
{
    fprintf (stderr, "usage: %s [options]\n", program);
    for (int i = 0; i < self->count; i++) {
        const bs_setting_t *s = &self->table [i];
        char range [64] = "";
        if (s_ranged (s))
            snprintf (range, sizeof range, ", %lld..%lld", (long long) s->min, (long long) s->max);
        if (s->fallback)
            fprintf (stderr, "  --%-22s %s (default: %s%s)\n", s->name, s->help,
                     *s->fallback? s->fallback: "none", range);
        else
            fprintf (stderr, "  --%-22s %s\n", s->name, s->help);
    }
}

bool
bs_parse_int (const char *text, int64_t min, int64_t max, int64_t *value_p)
{
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || *end || isspace ((unsigned char) *text) || v < min || v > max)
        return false;
    *value_p = v;
    return true;
}

bs_settings_t *
bs_settings_new (const char *section, const bs_setting_t *table, int argc, char **argv)
{
    bs_settings_t *self = calloc (1, sizeof (bs_settings_t));
    if (!self)
        abort ();
    self->table = table;
    const char *slash = argc > 0? strrchr (argv [0], '/'): NULL;
    self->program = argc > 0? (slash? slash + 1: argv [0]): section;
    while (table [self->count].name && self->count < MAX_SETTINGS)
        self->count++;
    const char *config_file = getenv ("BOOKSTORE_CONFIG");
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        if (!options_done && strcmp (arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (options_done || strncmp (arg, "--", 2) != 0 || arg [2] == 0) {
            if (self->argc == MAX_ARGS) {
                fprintf (stderr, "%s: too many arguments\n", argv [0]);
                bs_settings_destroy (&self);
                return NULL;
            }
            self->args [self->argc++] = bs_strdup (arg);
            continue;
        }
        const char *name = arg + 2;
        if (strcmp (name, "help") == 0) {
            s_usage (self, argv [0]);
            self->help = true;
            return self;
        }
        if (strcmp (name, "config") == 0) {
            if (i + 1 >= argc) {
                fprintf (stderr, "%s: --config needs a file name\n", argv [0]);
                bs_settings_destroy (&self);
                return NULL;
            }
            config_file = argv [++i];
            continue;
        }
        int k = s_find (self, name);
        if (k < 0) {
            fprintf (stderr, "%s: unknown option --%s (try --help)\n", argv [0], name);
            bs_settings_destroy (&self);
            return NULL;
        }
        free (self->values [k]);
        if (!table [k].fallback)
            self->values [k] = bs_strdup ("1");
        else {
            if (i + 1 >= argc) {
                fprintf (stderr, "%s: --%s needs a value\n", argv [0], name);
                bs_settings_destroy (&self);
                return NULL;
            }
            self->values [k] = bs_strdup (argv [++i]);
        }
    }
    //  Environment, then config file, for what the command line left unset
    zconfig_t *config = NULL;
    if (config_file && *config_file) {
        config = zconfig_load (config_file);
        if (!config) {
            fprintf (stderr, "%s: cannot read config file %s\n", argv [0], config_file);
            bs_settings_destroy (&self);
            return NULL;
        }
    }
    for (int k = 0; k < self->count; k++) {
        if (self->values [k])
            continue;
        char env [96] = "BOOKSTORE_";
        size_t n = strlen (env);
        for (const char *c = table [k].name; *c && n < sizeof env - 1; c++)
            env [n++] = *c == '-'? '_': (char) toupper ((unsigned char) *c);
        env [n] = 0;
        const char *value = getenv (env);
        if (!value && config) {
            char path [128];
            snprintf (path, sizeof path, "%s/%s", section, table [k].name);
            value = zconfig_get (config, path, NULL);
        }
        if (value)
            self->values [k] = bs_strdup (value);
    }
    zconfig_destroy (&config);
    return self;
}

void
bs_settings_destroy (bs_settings_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bs_settings_t *self = *self_p;
    for (int k = 0; k < MAX_SETTINGS; k++)
        free (self->values [k]);
    for (int i = 0; i < self->argc; i++)
        free (self->args [i]);
    free (self);
    *self_p = NULL;
}

const char *
bs_settings_get (bs_settings_t *self, const char *name)
{
    int k = s_find (self, name);
    if (k < 0) {
        fprintf (stderr, "internal: no setting named %s\n", name);
        abort ();
    }
    return self->values [k]? self->values [k]: self->table [k].fallback;
}

bool
bs_settings_check_int (bs_settings_t *self, const char *name, int64_t *value_p, char *reason, size_t size)
{
    const char *text = bs_settings_get (self, name);
    const bs_setting_t *setting = &self->table [s_find (self, name)];
    bool ranged = s_ranged (setting);
    if (bs_parse_int (text, ranged? setting->min: INT64_MIN, ranged? setting->max: INT64_MAX, value_p))
        return true;
    if (ranged)
        snprintf (reason, size, "--%s must be %lld..%lld, not '%.40s'", name,
                  (long long) setting->min, (long long) setting->max, text? text: "");
    else
        snprintf (reason, size, "--%s must be a whole number, not '%.40s'", name, text? text: "");
    return false;
}

bool
bs_settings_int (bs_settings_t *self, const char *name, int64_t *value_p)
{
    char reason [200];
    if (bs_settings_check_int (self, name, value_p, reason, sizeof reason))
        return true;
    fprintf (stderr, "%s: %s\n", self->program, reason);
    return false;
}

bool
bs_settings_flag (bs_settings_t *self, const char *name)
{
    const char *value = bs_settings_get (self, name);
    return value && (strcmp (value, "1") == 0 || strcmp (value, "true") == 0 || strcmp (value, "yes") == 0);
}

bool bs_settings_help_shown (bs_settings_t *self) { return self->help; }
int bs_settings_argc (bs_settings_t *self) { return self->argc; }
const char *bs_settings_arg (bs_settings_t *self, int index) { return index < self->argc? self->args [index]: NULL; }
