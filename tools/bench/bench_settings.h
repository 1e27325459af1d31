/*  bench_settings - what bookstore-bench is asked to do: its settings
 *  table, its usage text, and the checked values read from them.
 *
 *  Ownership: bench_settings_read fills a caller's bench_settings_t whose
 *  items and topics it allocates; bench_settings_fini frees them (also the
 *  topics the bench adds when it found them in the catalog).  Strings
 *  without an owner said belong to the bs_settings_t read.
 *  Single-threaded.
 */
#ifndef BENCH_SETTINGS_H_INCLUDED
#define BENCH_SETTINGS_H_INCLUDED

#include "bs_settings.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_TOPICS    1024
#define BENCH_MAX_SOCKETS   64
#define BENCH_MAX_CLIENTS   100000

typedef enum {
    W_PINGPONG, W_LOOKUP_HOT, W_LOOKUP_COLD, W_SEARCH, W_BUY, W_MIXED, W_WRITE_MIX, W_LOAD_CATALOG, W_COUNT
} workload_t;

typedef struct {
    workload_t workload;
    const char *endpoint;       //  one broker or a pair, comma-separated (checked)
    int clients;
    double rate;                //  0: closed loop
    double seconds, warmup;
    int timeout_ms;
    int sockets;                //  DEALER sockets the clients share
    bool json, progress;
    int64_t *items;             //  the items used
    size_t item_count;
    bool bench_books;           //  items are the bench's own catalog
    int64_t catalog_size;
    size_t hot;
    char **topics;              //  topics searched (NULL: bench topics), room for BENCH_MAX_TOPICS
    size_t topic_count;
    uint64_t rng_seed;          //  never 0
} bench_settings_t;

//  The table for bs_settings_new, and what --help adds to it
extern const bs_setting_t bench_settings_table [];
extern const char *bench_settings_usage;

//  The name of a workload, as --workload takes it
const char *bench_workload_name (workload_t workload);

//  Reads and checks the settings; false with a reason on a bad value (what
//  was allocated before is still freed by bench_settings_fini)
bool bench_settings_read (bench_settings_t *self, bs_settings_t *settings, char *reason, size_t size);
void bench_settings_fini (bench_settings_t *self);

#endif
