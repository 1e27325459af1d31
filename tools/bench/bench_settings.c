/*  bench_settings - bookstore-bench's settings, read and checked  */
#include "bench_settings.h"
#include "bench_tmpl.h"
#include "bs_alloc.h"
#include "bs_endpoints.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const bs_setting_t bench_settings_table [] = {
    { "endpoint",     "tcp://127.0.0.1:5555", "the broker's client endpoint, or a pair's, comma-separated", 0, 0 },
    { "workload",     "",      "pingpong, lookup-hot, lookup-cold, search, buy, mixed, write-mix or load-catalog", 0, 0 },
    { "clients",      "",      "closed loop: clients with one operation outstanding each (default 1); "
                               "open loop: most operations outstanding (default 1000); load-catalog: requests outstanding (default 1000)", 1, BENCH_MAX_CLIENTS },
    { "rate",         "0",     "open loop: operations started per second, on a fixed schedule (0: closed loop)", 0, 0 },
    { "seconds",      "10",    "how long to measure", 0, 0 },
    { "warmup",       "1",     "seconds to run before measuring", 0, 0 },
    { "items",        "",      "items to use: a list (666,321), a range (1000001-1001000) or both; default: the bench's own books", 0, 0 },
    { "topics",       "",      "topics to search, comma-separated; default: the topics of the items", 0, 0 },
    { "hot",          "8",     "lookup-hot: how many items (the first ones) are looked up", 1, BENCH_MAX_BOOKS },
    { "catalog-size", "64",    "books in the bench's own catalog (items 1000001 on), added when missing", 1, BENCH_MAX_BOOKS },
    { "sockets",      "0",     "DEALER sockets the clients share (0: one per 25 clients, at most 8)", 0, BENCH_MAX_SOCKETS },
    { "timeout-ms",   "5000",  "a request not answered within this time counts as an error", 1, 3600000 },
    { "seed",         "1",     "seed for the random choice of items and topics", 0, 0 },
    { "json",         NULL,    "print exactly one JSON object", 0, 0 },
    { "progress",     NULL,    "show progress on stderr even when it is not a terminal", 0, 0 },
    { "pingpong-server", "",   "internal: echo every message arriving on these endpoints (comma-separated)", 0, 0 },
    { NULL, NULL, NULL, 0, 0 }
};

const char *bench_settings_usage =
    "usage: bookstore-bench [--endpoint EP[,EP2]] --workload NAME [--clients N | --rate R] [--seconds S] [--json]\n"
    "workloads:\n"
    "  pingpong       bare ZeroMQ round trips to a child process: the baseline, no cluster\n"
    "  lookup-hot     lookups of a few items, over and over (--hot)\n"
    "  lookup-cold    lookups of items drawn from the whole catalog\n"
    "  search         searches of topics\n"
    "  buy            buys (of books with a huge stock)\n"
    "  mixed          search, lookup and buy of one book per operation, like a shopper\n"
    "  write-mix      buys 60%, restocks 20%, price changes 20%\n"
    "  load-catalog   adds the bench's catalog (--catalog-size books) as fast as it can\n"
    "The workload may also be given as the first argument (load-catalog N).\n";

static const char *s_workload_names [W_COUNT] = {
    "pingpong", "lookup-hot", "lookup-cold", "search", "buy", "mixed", "write-mix", "load-catalog"
};

const char *
bench_workload_name (workload_t workload)
{
    return workload < W_COUNT? s_workload_names [workload]: "";
}

//  Parses "666,321,1000001-1001000" into a new array
static bool
s_parse_items (const char *text, int64_t **items_p, size_t *count_p, char *reason, size_t reason_size)
{
    size_t count = 0, cap = 64;
    int64_t *items = bs_alloc (cap, sizeof (int64_t));
    char *copy = bs_strdup (text), *save = NULL;
    bool ok = true;
    for (char *tok = strtok_r (copy, ",", &save); tok && ok; tok = strtok_r (NULL, ",", &save)) {
        char given [48];
        snprintf (given, sizeof given, "%s", tok);
        char *dash = strchr (tok, '-');
        int64_t lo, hi;
        if (dash)
            *dash = 0;
        ok = bs_parse_int (tok, 1, 999999999, &lo);
        hi = lo;
        if (ok && dash)
            ok = bs_parse_int (dash + 1, lo, 999999999, &hi);
        if (!ok) {
            snprintf (reason, reason_size, "--items: '%s' is not an item (1 to 999999999) or a rising range of them", given);
            break;
        }
        if ((int64_t) count + (hi - lo + 1) > BENCH_MAX_BOOKS) {
            snprintf (reason, reason_size, "--items: more than %lld items", (long long) BENCH_MAX_BOOKS);
            ok = false;
            break;
        }
        while (count + (size_t) (hi - lo + 1) > cap)
            cap *= 2;
        items = bs_realloc (items, cap, sizeof (int64_t));
        for (int64_t v = lo; v <= hi; v++)
            items [count++] = v;
    }
    free (copy);
    if (ok && count == 0) {
        snprintf (reason, reason_size, "--items: no items given");
        ok = false;
    }
    if (!ok) {
        free (items);
        return false;
    }
    *items_p = items;
    *count_p = count;
    return true;
}

static bool
s_parse_number (bs_settings_t *settings, const char *name, double min, double max, double *value_p,
                char *reason, size_t reason_size)
{
    const char *text = bs_settings_get (settings, name);
    char *end;
    errno = 0;
    double v = strtod (text, &end);
    if (!*text || *end || errno || !isfinite (v) || v < min || v > max) {
        snprintf (reason, reason_size, "--%s must be a number from %g to %g, not '%.40s'", name, min, max, text);
        return false;
    }
    *value_p = v;
    return true;
}

bool
bench_settings_read (bench_settings_t *self, bs_settings_t *settings, char *reason, size_t size)
{
    self->json = bs_settings_flag (settings, "json");
    self->progress = bs_settings_flag (settings, "progress") || isatty (STDERR_FILENO);
    self->endpoint = bs_settings_get (settings, "endpoint");
    const char *name = bs_settings_get (settings, "workload");
    int positional = 0;
    if (!*name && bs_settings_argc (settings) > 0)
        name = bs_settings_arg (settings, positional++);
    if (!*name) {
        snprintf (reason, size, "no workload given (try --help)");
        return false;
    }
    self->workload = W_COUNT;
    for (int w = 0; w < W_COUNT; w++)
        if (strcmp (name, s_workload_names [w]) == 0)
            self->workload = (workload_t) w;
    if (self->workload == W_COUNT) {
        snprintf (reason, size, "unknown workload '%.40s' (try --help)", name);
        return false;
    }
    int64_t value;
    if (!bs_settings_check_int (settings, "catalog-size", &self->catalog_size, reason, size))
        return false;
    if (self->workload == W_LOAD_CATALOG && positional < bs_settings_argc (settings)) {
        if (!bs_parse_int (bs_settings_arg (settings, positional++), 1, BENCH_MAX_BOOKS, &self->catalog_size)) {
            snprintf (reason, size, "load-catalog takes a number of books from 1 to %lld", (long long) BENCH_MAX_BOOKS);
            return false;
        }
    }
    if (positional < bs_settings_argc (settings)) {
        snprintf (reason, size, "unexpected argument '%.40s'", bs_settings_arg (settings, positional));
        return false;
    }
    if (!s_parse_number (settings, "rate", 0, 1e8, &self->rate, reason, size)
    ||  !s_parse_number (settings, "seconds", 0.001, 1e6, &self->seconds, reason, size)
    ||  !s_parse_number (settings, "warmup", 0, 1e6, &self->warmup, reason, size))
        return false;
    if (self->rate > 0 && self->workload == W_LOAD_CATALOG) {
        snprintf (reason, size, "load-catalog runs closed loop: --rate does not apply");
        return false;
    }
    const char *clients = bs_settings_get (settings, "clients");
    if (*clients) {
        if (!bs_settings_check_int (settings, "clients", &value, reason, size))
            return false;
        self->clients = (int) value;
    }
    else
        self->clients = self->rate > 0 || self->workload == W_LOAD_CATALOG? 1000: 1;
    if (!bs_settings_check_int (settings, "timeout-ms", &value, reason, size))
        return false;
    self->timeout_ms = (int) value;
    if (!bs_settings_check_int (settings, "sockets", &value, reason, size))
        return false;
    self->sockets = (int) value;
    if (self->sockets == 0) {
        self->sockets = (self->clients + 24) / 25;
        if (self->sockets > 8)
            self->sockets = 8;
    }
    //  Pingpong talks to no broker
    if (self->workload != W_PINGPONG) {
        bs_endpoints_t *endpoints = bs_endpoints_new (self->endpoint);
        bool valid = endpoints && bs_endpoints_valid (endpoints);
        bs_endpoints_destroy (&endpoints);
        if (!valid) {
            snprintf (reason, size, "'%s' is not a valid ZeroMQ endpoint or comma-separated list of them",
                      self->endpoint);
            return false;
        }
    }
    if (!bs_settings_check_int (settings, "hot", &value, reason, size))
        return false;
    self->hot = (size_t) value;
    if (!bs_settings_check_int (settings, "seed", &value, reason, size))
        return false;
    self->rng_seed = (uint64_t) value * UINT64_C (0x9e3779b97f4a7c15) + 1;
    if (!self->rng_seed)
        self->rng_seed = 1;
    const char *items = bs_settings_get (settings, "items");
    if (*items) {
        if (self->workload == W_LOAD_CATALOG) {
            snprintf (reason, size, "load-catalog adds the bench's own books: --items does not apply");
            return false;
        }
        if (!s_parse_items (items, &self->items, &self->item_count, reason, size))
            return false;
    }
    else {
        self->bench_books = true;
        self->item_count = (size_t) self->catalog_size;
        self->items = bs_alloc (self->item_count, sizeof (int64_t));
        for (size_t i = 0; i < self->item_count; i++)
            self->items [i] = BENCH_BASE + 1 + (int64_t) i;
    }
    if (self->hot > self->item_count)
        self->hot = self->item_count;
    const char *topics = bs_settings_get (settings, "topics");
    if (*topics) {
        char *copy = bs_strdup (topics), *save = NULL;
        self->topics = bs_alloc (BENCH_MAX_TOPICS, sizeof (char *));
        for (char *tok = strtok_r (copy, ",", &save); tok && self->topic_count < BENCH_MAX_TOPICS; tok = strtok_r (NULL, ",", &save))
            self->topics [self->topic_count++] = bs_strdup (tok);
        free (copy);
        if (self->topic_count == 0) {
            snprintf (reason, size, "--topics: no topics given");
            return false;
        }
    }
    return true;
}

void
bench_settings_fini (bench_settings_t *self)
{
    if (self->topics)
        for (size_t i = 0; i < self->topic_count; i++)
            free (self->topics [i]);
    free (self->topics);
    self->topics = NULL;
    self->topic_count = 0;
    free (self->items);
    self->items = NULL;
}
