/*  bench_tmpl - request templates for bookstore-bench  */
#include "bench_tmpl.h"
#include "bs_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Every INT field a template patches is encoded with this value first: it
//  takes the 4-byte form (0xce), which holds any item, cost, count or stock
#define MARKER          INT64_C (65537)

static const bs_field_t s_int_fields [INT_FIELDS] = {
    BS_FIELD_item, BS_FIELD_cost, BS_FIELD_count, BS_FIELD_stock
};

void
bench_topic (char *buf, size_t size, int64_t topic)
{
    snprintf (buf, size, "bench-%06lld", (long long) topic);
}

void
bench_title (char *buf, size_t size, int64_t item)
{
    snprintf (buf, size, "Bench book %09lld", (long long) item);
}

int64_t
bench_topic_of (int64_t item)
{
    return (item - BENCH_BASE - 1) / BENCH_TOPIC_BOOKS;
}

//  Finds where an INT field's 4-byte value sits: encodes the request with
//  two values that differ only in their last byte.  0 when not found.
static size_t
s_int_offset (bs_msg_t *request, bs_field_t field)
{
    size_t size_a, size_b, at = 0;
    bs_msg_set_int (request, field, MARKER);
    uint8_t *a = bs_msg_encode (request, &size_a);
    bs_msg_set_int (request, field, MARKER + 1);
    uint8_t *b = bs_msg_encode (request, &size_b);
    bs_msg_set_int (request, field, MARKER);
    if (size_a == size_b)
        for (size_t i = 4; i < size_a && !at; i++)
            if (a [i] != b [i])
                at = i - 3;
    if (at && a [at - 1] != 0xce)
        at = 0;
    free (a);
    free (b);
    return at;
}

static size_t
s_bytes_offset (const tmpl_t *t, bs_field_t field, size_t *size_p)
{
    const uint8_t *bytes;
    if (!bs_peek_bytes (t->body, t->size, field, &bytes, size_p))
        return 0;
    return (size_t) (bytes - t->body);
}

bool
bench_tmpl_init (tmpl_t *t, bs_op_t op, unsigned ints, const char *topic, const char *title,
                 bool bench_text, char *reason, size_t reason_size)
{
    memset (t, 0, sizeof *t);
    t->op = op;
    t->service = bs_op_service (op);
    bs_msg_t *request = bs_msg_new_request (op);
    if (topic)
        bs_msg_set_str (request, BS_FIELD_topic, topic);
    if (title)
        bs_msg_set_str (request, BS_FIELD_title, title);
    for (int f = 0; f < INT_FIELDS; f++)
        if (ints & (1u << f))
            bs_msg_set_int (request, s_int_fields [f], MARKER);
    //  The codec's limits decide
    bool ok = bs_request_check (request, reason, reason_size) == BS_OK;
    for (int f = 0; f < INT_FIELDS && ok; f++)
        if (ints & (1u << f)) {
            t->int_at [f] = s_int_offset (request, s_int_fields [f]);
            if (!t->int_at [f]) {
                snprintf (reason, reason_size, "cannot find %s in the encoded %s", bs_field_name (s_int_fields [f]), bs_op_name (op));
                ok = false;
            }
        }
    if (ok) {
        t->body = bs_msg_encode (request, &t->size);
        size_t rid_size;
        t->rid_at = s_bytes_offset (t, BS_FIELD_rid, &rid_size);
        if (bench_text && topic)
            t->topic_at = s_bytes_offset (t, BS_FIELD_topic, &t->topic_len);
        if (bench_text && title)
            t->title_at = s_bytes_offset (t, BS_FIELD_title, &t->title_len);
        if (!t->rid_at || rid_size != BS_RID_SIZE || (bench_text && topic && !t->topic_at)
        ||  (bench_text && title && !t->title_at)) {
            snprintf (reason, reason_size, "cannot find the rid, topic or title in the encoded %s", bs_op_name (op));
            ok = false;
        }
    }
    bs_msg_destroy (&request);
    return ok;
}

void
bench_tmpl_fini (tmpl_t *t)
{
    free (t->body);
    t->body = NULL;
}
