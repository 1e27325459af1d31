/*  sim_world - the event queue, the links and the trace  */
#include "sim.h"
#include "bs_alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_LINES 400
#define TRACE_WIDTH 240

sim_proc_t sim_procs [SIM_PROCS];
sim_links_t sim_links;
bool sim_violated;
uint64_t sim_steps;

static sim_event_t **s_heap;
static size_t s_count, s_cap;
static uint64_t s_order;
static char s_trace [TRACE_LINES][TRACE_WIDTH];
static size_t s_trace_next;
static bool s_trace_live;

void
sim_world_reset (bool trace_live)
{
    sim_world_clear ();
    memset (sim_procs, 0, sizeof sim_procs);
    memset (&sim_links, 0, sizeof sim_links);
    memset (s_trace, 0, sizeof s_trace);
    s_trace_next = 0;
    s_trace_live = trace_live;
    s_order = 0;
    sim_steps = 0;
    sim_violated = false;
}

static bool
s_before (sim_event_t *a, sim_event_t *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void
s_event_free (sim_event_t *event)
{
    free (event->data);
    free (event);
}

void
sim_world_clear (void)
{
    for (size_t i = 0; i < s_count; i++) {
        if (s_heap [i]->dispose)
            s_heap [i]->dispose (s_heap [i]);
        s_event_free (s_heap [i]);
    }
    free (s_heap);
    s_heap = NULL;
    s_count = s_cap = 0;
}

sim_event_t *
sim_event_new (int64_t delay, sim_handler_fn *fn)
{
    sim_event_t *event = bs_alloc (1, sizeof (sim_event_t));
    event->at = sim_now + (delay > 0? delay: 0);
    event->fn = fn;
    event->from = event->to = -1;
    return event;
}

void
sim_event_set_data (sim_event_t *event, const void *data, size_t size)
{
    free (event->data);
    event->data = bs_alloc (1, size? size: 1);
    if (size)
        memcpy (event->data, data, size);
    event->size = size;
}

void
sim_schedule (sim_event_t *event)
{
    if (s_count == s_cap) {
        s_cap = s_cap? s_cap * 2: 1024;
        s_heap = bs_realloc (s_heap, s_cap, sizeof (sim_event_t *));
    }
    event->order = ++s_order;
    size_t i = s_count++;
    while (i > 0 && s_before (event, s_heap [(i - 1) / 2])) {
        s_heap [i] = s_heap [(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s_heap [i] = event;
}

static sim_event_t *
s_pop (void)
{
    sim_event_t *top = s_heap [0];
    sim_event_t *last = s_heap [--s_count];
    size_t i = 0;
    while (true) {
        size_t child = 2 * i + 1;
        if (child >= s_count)
            break;
        if (child + 1 < s_count && s_before (s_heap [child + 1], s_heap [child]))
            child++;
        if (!s_before (s_heap [child], last))
            break;
        s_heap [i] = s_heap [child];
        i = child;
    }
    if (s_count)
        s_heap [i] = last;
    return top;
}

bool
sim_world_step (int64_t until)
{
    if (s_count == 0 || s_heap [0]->at > until)
        return false;
    sim_event_t *event = s_pop ();
    sim_now = event->at;
    if (event->to >= 0) {
        sim_proc_t *proc = &sim_procs [event->to];
        bool broken = event->from >= 0
                   && sim_links.connection [event->from][event->to][event->channel] != event->connection;
        if (broken || !proc->up || (event->incarnation && event->incarnation != proc->incarnation)) {
            if (event->dispose)
                event->dispose (event);
            s_event_free (event);
            return true;        //  its process died, or its connection broke, meanwhile: lost
        }
        if (proc->paused_until > sim_now) {
            //  A paused process reads nothing: it waits, in order
            event->at = proc->paused_until;
            sim_schedule (event);
            return true;
        }
    }
    sim_steps++;
    event->fn (event);
    s_event_free (event);
    return true;
}

//  --------------------------------------------------------------------------
//  Links

static void
s_deliver (int from, int to, int channel, sim_event_t *event, int64_t delay)
{
    event->at = sim_now + delay;
    event->from = from;
    event->to = to;
    event->channel = channel;
    event->connection = sim_links.connection [from][to][channel];
    event->incarnation = sim_procs [to].incarnation;
    sim_schedule (event);
}

void
sim_send (int from, int to, int channel, sim_event_t *event)
{
    sim_links_t *l = &sim_links;
    if (!sim_procs [to].up || l->cut [from][to] || sim_chance (l->drop)) {
        if (channel != SIM_CHANNEL_STREAM && !l->single_loss) {
            l->connection [from][to][channel]++;
            l->connection [to][from][channel]++;
        }
        if (event->dispose)
            event->dispose (event);
        s_event_free (event);
        return;
    }
    int64_t delay = sim_range (l->delay_min, l->delay_max);
    if (sim_chance (l->reorder))
        delay += sim_range (1, 40);
    //  In order on its channel: never before what went earlier
    int64_t *last = &l->last [from][to][channel];
    if (sim_now + delay < *last)
        delay = *last - sim_now;
    *last = sim_now + delay;
    bool dup = sim_chance (l->dup);
    sim_event_t *copy = NULL;
    if (dup) {
        copy = bs_alloc (1, sizeof (sim_event_t));
        *copy = *event;
        copy->data = NULL;
        sim_event_set_data (copy, event->data, event->size);
    }
    s_deliver (from, to, channel, event, delay);
    if (copy)
        s_deliver (from, to, channel, copy, delay);
}

//  --------------------------------------------------------------------------
//  The trace

const char *
sim_proc_name (int proc)
{
    static const char *names [SIM_PROCS] = {
        "catalog-1", "catalog-2", "catalog-3", "order-1", "order-2", "broker", "client-1", "client-2", "client-3", "probe"
    };
    return proc >= 0 && proc < SIM_PROCS? names [proc]: "-";
}

void
sim_trace (const char *format, ...)
{
    char *line = s_trace [s_trace_next++ % TRACE_LINES];
    int n = snprintf (line, TRACE_WIDTH, "%8lld.%03lld ", (long long) (sim_now / 1000), (long long) (sim_now % 1000));
    va_list args;
    va_start (args, format);
    vsnprintf (line + n, TRACE_WIDTH - (size_t) n, format, args);
    va_end (args);
    if (s_trace_live)
        printf ("%s\n", line);
}

void
sim_trace_dump (void)
{
    size_t first = s_trace_next > TRACE_LINES? s_trace_next - TRACE_LINES: 0;
    for (size_t i = first; i < s_trace_next; i++)
        printf ("  %s\n", s_trace [i % TRACE_LINES]);
}

static char s_first_violation [512];

void
sim_violation (const char *invariant, const char *format, ...)
{
    char sentence [400];
    va_list args;
    va_start (args, format);
    vsnprintf (sentence, sizeof sentence, format, args);
    va_end (args);
    sim_trace ("VIOLATION %s: %s", invariant, sentence);
    if (!sim_violated)
        snprintf (s_first_violation, sizeof s_first_violation, "%s: %s", invariant, sentence);
    sim_violated = true;
}

const char *
sim_violation_text (void)
{
    return s_first_violation;
}
