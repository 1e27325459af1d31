/*  gw_metrics - request counters and latency histograms  */
#include "gw_metrics.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Upper bounds of the latency buckets, in seconds (+Inf is implicit)
static const double s_bounds [] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define BUCKETS (sizeof s_bounds / sizeof s_bounds [0])
//  Series are bounded by the route table; these caps only guard against a
//  caller passing labels that are not from it
#define MAX_SERIES   64
#define MAX_STATUSES 16

typedef struct {
    const char *route;
    const char *method;
    uint64_t buckets [BUCKETS + 1];     //  not cumulative; the last is +Inf
    uint64_t count;
    double sum;
    int statuses;
    int status [MAX_STATUSES];
    uint64_t by_status [MAX_STATUSES];
} series_t;

struct _gw_metrics_t {
    pthread_mutex_t lock;
    series_t series [MAX_SERIES];
    int count;
    int64_t connections;
    uint64_t connections_total;
};

gw_metrics_t *
gw_metrics_new (void)
{
    gw_metrics_t *self = calloc (1, sizeof (gw_metrics_t));
    if (!self)
        abort ();
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
gw_metrics_destroy (gw_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pthread_mutex_destroy (&(*self_p)->lock);
    free (*self_p);
    *self_p = NULL;
}

static series_t *
s_series (gw_metrics_t *self, const char *route, const char *method)
{
    for (int i = 0; i < self->count; i++)
        if (strcmp (self->series [i].route, route) == 0 && strcmp (self->series [i].method, method) == 0)
            return &self->series [i];
    if (self->count == MAX_SERIES)
        return NULL;
    series_t *series = &self->series [self->count++];
    series->route = route;
    series->method = method;
    return series;
}

void
gw_metrics_record (gw_metrics_t *self, const char *route, const char *method,
                   int status, double seconds)
{
    pthread_mutex_lock (&self->lock);
    series_t *series = s_series (self, route, method);
    if (series) {
        size_t bucket = 0;
        while (bucket < BUCKETS && seconds > s_bounds [bucket])
            bucket++;
        series->buckets [bucket]++;
        series->count++;
        series->sum += seconds;
        int i = 0;
        while (i < series->statuses && series->status [i] != status)
            i++;
        if (i == series->statuses && i < MAX_STATUSES)
            series->status [series->statuses++] = status;
        if (i < MAX_STATUSES)
            series->by_status [i]++;
    }
    pthread_mutex_unlock (&self->lock);
}

void
gw_metrics_connection (gw_metrics_t *self, int delta)
{
    pthread_mutex_lock (&self->lock);
    self->connections += delta;
    if (delta > 0)
        self->connections_total += (uint64_t) delta;
    pthread_mutex_unlock (&self->lock);
}

//  A growing text buffer
typedef struct {
    char *data;
    size_t size;
    size_t max;
} text_t;

static void
s_printf (text_t *text, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    va_list copy;
    va_copy (copy, args);
    int n = vsnprintf (NULL, 0, format, copy);
    va_end (copy);
    if (n > 0) {
        if (text->size + (size_t) n + 1 > text->max) {
            text->max = (text->size + (size_t) n + 1) * 2;
            text->data = realloc (text->data, text->max);
            if (!text->data)
                abort ();
        }
        vsnprintf (text->data + text->size, (size_t) n + 1, format, args);
        text->size += (size_t) n;
    }
    va_end (args);
}

//  Label values here are route patterns, methods and service names, but a
//  service name comes from the cluster: escape it as the format requires
static void
s_label (text_t *text, const char *value)
{
    for (const char *s = value; *s; s++) {
        if (*s == '\\' || *s == '"')
            s_printf (text, "\\%c", *s);
        else
        if (*s == '\n')
            s_printf (text, "\\n");
        else
            s_printf (text, "%c", *s);
    }
}

static void
s_render_requests (gw_metrics_t *self, text_t *text)
{
    s_printf (text, "# HELP bookstore_gateway_requests_total HTTP requests answered, by route, method and status.\n"
                    "# TYPE bookstore_gateway_requests_total counter\n");
    for (int i = 0; i < self->count; i++) {
        series_t *s = &self->series [i];
        for (int k = 0; k < s->statuses; k++)
            s_printf (text, "bookstore_gateway_requests_total{route=\"%s\",method=\"%s\",code=\"%d\"} %llu\n",
                      s->route, s->method, s->status [k], (unsigned long long) s->by_status [k]);
    }
    s_printf (text, "# HELP bookstore_gateway_request_duration_seconds Time from a request's arrival to its answer.\n"
                    "# TYPE bookstore_gateway_request_duration_seconds histogram\n");
    for (int i = 0; i < self->count; i++) {
        series_t *s = &self->series [i];
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= BUCKETS; b++) {
            cumulative += s->buckets [b];
            char bound [32];
            if (b < BUCKETS)
                snprintf (bound, sizeof bound, "%g", s_bounds [b]);
            else
                snprintf (bound, sizeof bound, "+Inf");
            s_printf (text, "bookstore_gateway_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"%s\"} %llu\n",
                      s->route, s->method, bound, (unsigned long long) cumulative);
        }
        s_printf (text, "bookstore_gateway_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n",
                  s->route, s->method, s->sum);
        s_printf (text, "bookstore_gateway_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
                  s->route, s->method, (unsigned long long) s->count);
    }
    s_printf (text, "# HELP bookstore_gateway_connections Open HTTP connections.\n"
                    "# TYPE bookstore_gateway_connections gauge\n"
                    "bookstore_gateway_connections %lld\n"
                    "# HELP bookstore_gateway_connections_total HTTP connections accepted.\n"
                    "# TYPE bookstore_gateway_connections_total counter\n"
                    "bookstore_gateway_connections_total %llu\n",
              (long long) self->connections, (unsigned long long) self->connections_total);
}

//  Per service: nodes known, alive, and alive and in sync
static void
s_render_nodes (text_t *text, const json_t *nodes)
{
    const char *names [] = { "bookstore_nodes", "bookstore_nodes_alive", "bookstore_nodes_insync" };
    const char *helps [] = { "Nodes the broker knows, by service.", "Nodes alive, by service.",
                             "Nodes alive and in sync, by service." };
    for (int metric = 0; metric < 3; metric++) {
        s_printf (text, "# HELP %s %s\n# TYPE %s gauge\n", names [metric], helps [metric], names [metric]);
        //  One line per distinct service, in the order they first appear
        size_t count = json_array_size (nodes);
        for (size_t i = 0; i < count; i++) {
            const char *service = json_string_value (json_object_get (json_array_get (nodes, i), "service"));
            if (!service)
                continue;
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++) {
                const char *other = json_string_value (json_object_get (json_array_get (nodes, j), "service"));
                seen = other && strcmp (other, service) == 0;
            }
            if (seen)
                continue;
            long long n = 0;
            for (size_t j = i; j < count; j++) {
                json_t *node = json_array_get (nodes, j);
                const char *other = json_string_value (json_object_get (node, "service"));
                if (!other || strcmp (other, service) != 0)
                    continue;
                bool alive = json_is_true (json_object_get (node, "alive"));
                bool insync = json_is_true (json_object_get (node, "insync"));
                n += metric == 0 || (metric == 1 && alive) || (metric == 2 && alive && insync);
            }
            s_printf (text, "%s{service=\"", names [metric]);
            s_label (text, service);
            s_printf (text, "\"} %lld\n", n);
        }
    }
}

//  The broker's cache figures, when its status has them: counters get
//  _total, every other number is a gauge; names the table does not know are
//  passed on with a plain description
static void
s_render_cache (text_t *text, const json_t *cache)
{
    static const struct {
        const char *key;
        bool counter;
        const char *help;
    } known [] = {
        { "hits",          true,  "Reads the broker answered from its cache." },
        { "misses",        true,  "Cacheable reads the broker had to forward to a node." },
        { "evictions",     true,  "Entries the broker's cache evicted to stay within its bounds." },
        { "invalidations", true,  "Invalidations the broker's cache received." },
        { "stale",         true,  "Replies the broker's cache refused as older than an invalidation." },
        { "size",          false, "Entries in the broker's cache." },
        { "bytes",         false, "Bytes held by the broker's cache." },
        { "capacity",      false, "Entries the broker's cache may hold." },
    };
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) cache, key, value) {
        if (!json_is_integer (value) || !*key || strlen (key) > 48)
            continue;
        bool clean = true;
        for (const char *c = key; *c; c++)
            clean &= islower ((unsigned char) *c) || isdigit ((unsigned char) *c) || *c == '_';
        if (!clean)
            continue;
        bool counter = false;
        const char *help = NULL;
        for (size_t i = 0; i < sizeof known / sizeof known [0]; i++)
            if (strcmp (known [i].key, key) == 0) {
                counter = known [i].counter;
                help = known [i].help;
            }
        const char *suffix = counter? "_total": "";
        if (help)
            s_printf (text, "# HELP bookstore_cache_%s%s %s\n", key, suffix, help);
        else
            s_printf (text, "# HELP bookstore_cache_%s The broker cache's '%s' figure.\n", key, key);
        s_printf (text, "# TYPE bookstore_cache_%s%s %s\nbookstore_cache_%s%s %lld\n",
                  key, suffix, counter? "counter": "gauge", key, suffix,
                  (long long) json_integer_value (value));
    }
}

char *
gw_metrics_render (gw_metrics_t *self, const json_t *cluster)
{
    text_t text = { malloc (8192), 0, 8192 };
    if (!text.data)
        abort ();
    text.data [0] = 0;
    pthread_mutex_lock (&self->lock);
    s_render_requests (self, &text);
    pthread_mutex_unlock (&self->lock);
    s_printf (&text, "# HELP bookstore_broker_up Whether the broker answered the gateway's status request.\n"
                     "# TYPE bookstore_broker_up gauge\n"
                     "bookstore_broker_up %d\n", cluster? 1: 0);
    if (cluster) {
        json_t *inflight = json_object_get (cluster, "inflight");
        if (json_is_integer (inflight))
            s_printf (&text, "# HELP bookstore_broker_inflight Requests the broker holds unanswered.\n"
                             "# TYPE bookstore_broker_inflight gauge\n"
                             "bookstore_broker_inflight %lld\n", (long long) json_integer_value (inflight));
        s_render_nodes (&text, json_object_get (cluster, "nodes"));
        json_t *cache = json_object_get (cluster, "cache");
        if (json_is_object (cache))
            s_render_cache (&text, cache);
    }
    return text.data;
}
