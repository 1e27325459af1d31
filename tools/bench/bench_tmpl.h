/*  bench_tmpl - request templates for bookstore-bench: each kind of request
 *  encoded once by the codec, with the offsets of what changes from one
 *  request to the next, so that sending only patches bytes in place.
 *
 *  Also the bench's own books: items BENCH_BASE + 1 on, eight to a topic,
 *  with a topic and title of fixed width so that they can be patched.
 *
 *  Ownership: a template owns its body; bench_tmpl_fini frees it.
 *  Single-threaded.
 */
#ifndef BENCH_TMPL_H_INCLUDED
#define BENCH_TMPL_H_INCLUDED

#include "bs_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The bench's own books are items BENCH_BASE + 1 on, eight to a topic, so
//  that a search answers the same few books whatever the catalog's size
#define BENCH_BASE      INT64_C (1000000)
#define BENCH_TOPIC_BOOKS 8
#define BENCH_MAX_BOOKS INT64_C (10000000)

//  The INT fields a template can patch
enum { INT_ITEM, INT_COST, INT_COUNT, INT_STOCK, INT_FIELDS };

//  One request body, encoded once, with the offsets of what changes from
//  one request to the next (0: the body does not have it)
typedef struct {
    bs_op_t op;
    const char *service;
    uint8_t *body;
    size_t size;
    size_t rid_at;
    size_t int_at [INT_FIELDS];     //  4-byte big-endian values
    size_t topic_at, topic_len;     //  bench topics: "bench-NNNNNN"
    size_t title_at, title_len;     //  bench titles: "Bench book NNNNNNNNN"
} tmpl_t;

//  Encodes a template for op.  ints is a mask (1 << INT_...) of the INT
//  fields it takes; topic and title, when not NULL, are set as they are
//  (patched later when bench_text is true).  Checks the request as a node
//  would; false with a reason when it is not acceptable.
bool bench_tmpl_init (tmpl_t *t, bs_op_t op, unsigned ints, const char *topic, const char *title,
                      bool bench_text, char *reason, size_t reason_size);
void bench_tmpl_fini (tmpl_t *t);

//  The bench's books' topic and title text, and an item's topic number
void bench_topic (char *buf, size_t size, int64_t topic);
void bench_title (char *buf, size_t size, int64_t item);
int64_t bench_topic_of (int64_t item);

#endif
