/*  bookstore-monitor - the heartbeat monitor: a live view of the cluster
 *  from the broker's feed (events and status snapshots on a PUB socket).
 *
 *    bookstore-monitor                  live table and event feed
 *    bookstore-monitor --once --json    one status snapshot as JSON
 *    bookstore-monitor --events --json  one JSON line per event
 *
 *  Exit codes: 0 done, 2 usage error, 3 no snapshot from the broker in time.
 */
#include "bs_keys.h"
#include "bs_msg.h"
#include "bs_settings.h"

#include <czmq.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 64
#define EVENTS_SHOWN 12

static const bs_setting_t s_table [] = {
    { "endpoint",   "tcp://127.0.0.1:5555", "the broker's client endpoint (the feed is on its port + 3)" },
    { "feed",       "",     "the broker's feed endpoint, when not on the client port + 3" },
    { "once",       NULL,   "print one status snapshot and exit" },
    { "events",     NULL,   "print events as they happen" },
    { "json",       NULL,   "JSON output (with --once or --events)" },
    { "seconds",    "0",    "stop after this many seconds (0: run until interrupted)" },
    { "timeout-ms", "3000", "how long --once waits for a snapshot" },
    { "keys",       "",     "keys directory of a CURVE cluster" },
    { "cert",       "",     "your certificate (default <keys>/clients/client)" },
    { NULL, NULL, NULL }
};

typedef struct {
    char id [65];
    uint64_t requests;
    int64_t at;
    double rate;                //  requests per second, smoothed
} rate_t;

typedef struct {
    rate_t rates [MAX_NODES];
    int rate_count;
    char events [EVENTS_SHOWN][200];
    int event_count;
    bool tty;
} view_t;

//  The feed endpoint: given, or the client endpoint's port + 3
static void
s_feed_endpoint (const char *client, const char *given, char *out, size_t size)
{
    const char *colon = strrchr (client, ':');
    int64_t port;
    if (*given)
        snprintf (out, size, "%s", given);
    else
    if (colon && bs_parse_int (colon + 1, 1, 65532, &port))
        snprintf (out, size, "%.*s:%d", (int) (colon - client), client, (int) port + 3);
    else
        snprintf (out, size, "%s", client);
}

//  Receives one feed message: its topic into topic[], its body decoded
static bs_msg_t *
s_recv (zsock_t *sub, char *topic, size_t topic_size)
{
    zmsg_t *msg = zmsg_recv (sub);
    if (!msg)
        return NULL;
    bs_msg_t *body = NULL;
    if (zmsg_size (msg) == 2) {
        zframe_t *t = zmsg_first (msg);
        zframe_t *b = zmsg_next (msg);
        size_t n = zframe_size (t) < topic_size - 1? zframe_size (t): topic_size - 1;
        memcpy (topic, zframe_data (t), n);
        topic [n] = 0;
        bs_err_t err;
        body = bs_msg_decode (zframe_data (b), zframe_size (b), &err, NULL, 0);
    }
    zmsg_destroy (&msg);
    return body;
}

static void
s_print_json (const bs_msg_t *msg)
{
    char *json = bs_msg_to_json (msg);
    printf ("%s\n", json);
    fflush (stdout);
    free (json);
}

//  --------------------------------------------------------------------------
//  Live view

static double
s_rate (view_t *view, const char *id, uint64_t requests, int64_t now)
{
    rate_t *r = NULL;
    for (int i = 0; i < view->rate_count && !r; i++)
        if (strcmp (view->rates [i].id, id) == 0)
            r = &view->rates [i];
    if (!r) {
        if (view->rate_count == MAX_NODES)
            return 0;
        r = &view->rates [view->rate_count++];
        snprintf (r->id, sizeof r->id, "%s", id);
        r->requests = requests;
        r->at = now;
        return 0;
    }
    if (now > r->at) {
        double instant = requests >= r->requests? (double) (requests - r->requests) * 1000.0 / (double) (now - r->at): 0;
        r->rate = r->rate * 0.5 + instant * 0.5;
        r->requests = requests;
        r->at = now;
    }
    return r->rate;
}

static void
s_remember_event (view_t *view, const bs_msg_t *event)
{
    time_t seconds = (time_t) (bs_msg_int (event, BS_FIELD_time) / 1000);
    struct tm tm;
    localtime_r (&seconds, &tm);
    char line [200];
    snprintf (line, sizeof line, "%02d:%02d:%02d.%03d  %-13s %-10s %s", tm.tm_hour, tm.tm_min, tm.tm_sec,
              (int) (bs_msg_int (event, BS_FIELD_time) % 1000), bs_msg_str (event, BS_FIELD_kind),
              bs_msg_str (event, BS_FIELD_id), bs_msg_str (event, BS_FIELD_message));
    if (view->event_count == EVENTS_SHOWN) {
        memmove (view->events [0], view->events [1], sizeof view->events [0] * (EVENTS_SHOWN - 1));
        view->event_count--;
    }
    snprintf (view->events [view->event_count++], sizeof view->events [0], "%s", line);
    if (!view->tty) {
        printf ("event %s\n", line);
        fflush (stdout);
    }
}

static const char *
s_colour (view_t *view, const bs_msg_t *node)
{
    if (!view->tty)
        return "";
    if (!bs_msg_int (node, BS_FIELD_alive))
        return "\033[31m";              //  red: dead
    if (!bs_msg_int (node, BS_FIELD_insync))
        return "\033[33m";              //  yellow: catching up
    if (strcmp (bs_msg_str (node, BS_FIELD_role), "primary") == 0)
        return "\033[1;32m";            //  bold green: primary
    return "\033[32m";
}

static void
s_draw (view_t *view, const bs_msg_t *status)
{
    int64_t now = zclock_mono ();
    bs_msg_t *cache = bs_msg_map (status, BS_FIELD_cache);
    if (view->tty)
        printf ("\033[H\033[2J");
    time_t t = time (NULL);
    struct tm tm;
    localtime_r (&t, &tm);
    int64_t hits = cache? bs_msg_int (cache, BS_FIELD_hits): 0;
    int64_t misses = cache? bs_msg_int (cache, BS_FIELD_misses): 0;
    printf ("bookstore cluster at %02d:%02d:%02d   in flight %lld   cache %lld/%lld entries, hit rate %.1f%% (%lld hits, %lld misses, %lld invalidations)\n\n",
            tm.tm_hour, tm.tm_min, tm.tm_sec, (long long) bs_msg_int (status, BS_FIELD_inflight),
            (long long) (cache? bs_msg_int (cache, BS_FIELD_size): 0),
            (long long) (cache? bs_msg_int (cache, BS_FIELD_capacity): 0),
            hits + misses? 100.0 * (double) hits / (double) (hits + misses): 0.0,
            (long long) hits, (long long) misses,
            (long long) (cache? bs_msg_int (cache, BS_FIELD_invalidations): 0));
    printf ("%-12s %-8s %-9s %-6s %6s %9s %6s %-7s %8s %8s %9s\n", "NODE", "SERVICE", "ROLE", "STATE",
            "EPOCH", "SEQ", "LAG", "IN-SYNC", "SILENT", "INFLIGHT", "REQ/S");
    for (size_t i = 0; i < bs_msg_count (status, BS_FIELD_nodes); i++) {
        bs_msg_t *node = bs_msg_at (status, BS_FIELD_nodes, i);
        bool alive = bs_msg_int (node, BS_FIELD_alive);
        double rate = s_rate (view, bs_msg_str (node, BS_FIELD_id), (uint64_t) bs_msg_int (node, BS_FIELD_requests), now);
        char silent [16] = "-";
        if (alive)
            snprintf (silent, sizeof silent, "%lldms", (long long) bs_msg_int (node, BS_FIELD_age));
        printf ("%s%-12s %-8s %-9s %-6s %6lld %9lld %6lld %-7s %8s %8lld %9.0f%s\n", s_colour (view, node),
                bs_msg_str (node, BS_FIELD_id), bs_msg_str (node, BS_FIELD_service),
                *bs_msg_str (node, BS_FIELD_role)? bs_msg_str (node, BS_FIELD_role): "-",
                alive? "alive": "dead", (long long) bs_msg_int (node, BS_FIELD_epoch),
                (long long) bs_msg_int (node, BS_FIELD_seq), (long long) bs_msg_int (node, BS_FIELD_lag),
                bs_msg_int (node, BS_FIELD_insync)? "yes": "no", silent,
                (long long) bs_msg_int (node, BS_FIELD_inflight), rate, view->tty? "\033[0m": "");
    }
    if (view->tty) {
        printf ("\nEVENTS\n");
        for (int i = 0; i < view->event_count; i++)
            printf ("%s\n", view->events [i]);
    }
    else
        printf ("\n");
    fflush (stdout);
}

//  --------------------------------------------------------------------------

int
main (int argc, char **argv)
{
    bs_settings_t *settings = bs_settings_new ("monitor", s_table, argc, argv);
    if (!settings)
        return 2;
    if (bs_settings_help_shown (settings)) {
        bs_settings_destroy (&settings);
        return 0;
    }
    int rc = 0;
    int64_t seconds, timeout;
    if (!bs_settings_int (settings, "seconds", &seconds) || !bs_settings_int (settings, "timeout-ms", &timeout)
    ||  seconds < 0 || timeout < 1) {
        fprintf (stderr, "bookstore-monitor: --seconds and --timeout-ms take whole numbers\n");
        bs_settings_destroy (&settings);
        return 2;
    }
    bool once = bs_settings_flag (settings, "once");
    bool events = bs_settings_flag (settings, "events");
    bool json = bs_settings_flag (settings, "json");
    if (once && events) {
        fprintf (stderr, "bookstore-monitor: choose --once or --events, not both\n");
        bs_settings_destroy (&settings);
        return 2;
    }
    char feed [300];
    s_feed_endpoint (bs_settings_get (settings, "endpoint"), bs_settings_get (settings, "feed"), feed, sizeof feed);
    bs_keys_t *keys;
    if (!bs_keys_open (settings, "clients/client", true, &keys)) {
        bs_settings_destroy (&settings);
        return 2;
    }
    zsock_t *sub = zsock_new (ZMQ_SUB);
    bs_keys_connect_to (keys, sub, "broker");
    bs_keys_destroy (&keys);
    zsock_set_maxmsgsize (sub, BS_MAX_BODY);
    zsock_set_rcvhwm (sub, 100000);
    if (once)
        zsock_set_subscribe (sub, "status");
    else
    if (events)
        zsock_set_subscribe (sub, "event");
    else {
        zsock_set_subscribe (sub, "status");
        zsock_set_subscribe (sub, "event");
    }
    if (zsock_connect (sub, "%s", feed) != 0) {
        fprintf (stderr, "bookstore-monitor: cannot connect to %s\n", feed);
        zsock_destroy (&sub);
        bs_settings_destroy (&settings);
        return 2;
    }
    view_t view = { .tty = isatty (STDOUT_FILENO) };
    int64_t stop_at = seconds? zclock_mono () + seconds * 1000: INT64_MAX;
    int64_t deadline = once? zclock_mono () + timeout: INT64_MAX;
    int64_t last_plain = 0;
    zpoller_t *poller = zpoller_new (sub, NULL);
    while (!zsys_interrupted) {
        int64_t now = zclock_mono ();
        if (now >= stop_at)
            break;
        if (now >= deadline) {
            if (json)
                printf ("{\"ok\":false,\"error\":\"timeout\",\"message\":\"no status from the broker's feed at %s\"}\n", feed);
            else
                fprintf (stderr, "bookstore-monitor: no status from the broker's feed at %s\n", feed);
            rc = 3;
            break;
        }
        int64_t wait = (stop_at < deadline? stop_at: deadline) - now;
        if (!zpoller_wait (poller, (int) (wait > 500? 500: wait)))
            continue;
        char topic [16];
        bs_msg_t *msg = s_recv (sub, topic, sizeof topic);
        if (!msg)
            continue;
        if (once) {
            if (json)
                s_print_json (msg);
            else
                s_draw (&view, msg);
            bs_msg_destroy (&msg);
            break;
        }
        if (strcmp (topic, "event") == 0) {
            if (events && json)
                s_print_json (msg);
            else
                s_remember_event (&view, msg);
        }
        else
        if (strcmp (topic, "status") == 0 && !events) {
            //  A terminal redraws on every snapshot; plain text prints a
            //  table a second
            if (view.tty || now - last_plain >= 1000) {
                s_draw (&view, msg);
                last_plain = now;
            }
        }
        bs_msg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&sub);
    bs_settings_destroy (&settings);
    return rc;
}
