/*  bookstore-monitor - the heartbeat monitor: a live view of the cluster
 *  from the broker's feed (events and status snapshots on a PUB socket).
 *
 *  With several brokers (--endpoint A,B,...) it listens to every broker's
 *  feed: a line per broker (its id, endpoint, state, and which one is
 *  active), the nodes as the active broker sees them (the one whose own
 *  entry, the first of its status's "brokers", says active), and the events
 *  of all.  --once --json prints the active broker's status.
 *
 *    bookstore-monitor                  live table and event feed
 *    bookstore-monitor --once --json    one status snapshot as JSON
 *    bookstore-monitor --events --json  one JSON line per event
 *
 *  Exit codes: 0 done, 2 usage error, 3 no snapshot from the broker in time.
 */
#include "bs_endpoints.h"
#include "bs_keys.h"
#include "bs_msg.h"
#include "bs_settings.h"
#include "bs_sizes.h"

#include <czmq.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 64
#define EVENTS_SHOWN 12
//  A broker whose feed sent no status for this long is shown as silent
//  (statuses come every heartbeat, 250 ms by default)
#define SILENT_MS 1500

static const bs_setting_t s_table [] = {
    { "endpoint",   "tcp://127.0.0.1:5555", "the broker's client endpoint, or several brokers', comma-separated (each feed is on its port + 3)", 0, 0 },
    { "feed",       "",     "the broker's feed endpoint (or several brokers', comma-separated), when not on the client port + 3", 0, 0 },
    { "once",       NULL,   "print one status snapshot and exit", 0, 0 },
    { "events",     NULL,   "print events as they happen", 0, 0 },
    { "json",       NULL,   "JSON output (with --once or --events)", 0, 0 },
    { "seconds",    "0",    "stop after this many seconds (0: run until interrupted)", 0, 31536000 },
    { "timeout-ms", "3000", "how long --once waits for a snapshot", 1, 3600000 },
    { "keys",       "",     "keys directory of a CURVE cluster", 0, 0 },
    { "cert",       "",     "your certificate (default <keys>/clients/client)", 0, 0 },
    { NULL, NULL, NULL, 0, 0 }
};

typedef struct {
    char id [BS_ID_MAX + 1];
    uint64_t requests;
    int64_t at;
    double rate;                //  requests per second, smoothed
} rate_t;

//  One broker's feed and the last status it sent
typedef struct {
    char endpoint [300];        //  the feed
    char client [300];          //  the broker's client endpoint ("": unknown)
    zsock_t *sub;
    bs_msg_t *status;           //  NULL until one came
    int64_t at;                 //  when it came (monotonic ms)
} feed_t;

typedef struct {
    rate_t rates [MAX_NODES];
    int rate_count;
    char events [EVENTS_SHOWN][200];
    int event_count;
    bool tty;
    feed_t *feeds;              //  one per broker
    int feed_count;
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

//  A status from an active broker: its own entry (the first of "brokers")
//  says so.  A broker that lists no brokers is alone, so active.
static bool
s_is_active (const bs_msg_t *status)
{
    if (bs_msg_count (status, BS_FIELD_brokers) == 0)
        return true;
    return bs_msg_int (bs_msg_at (status, BS_FIELD_brokers, 0), BS_FIELD_active) != 0;
}

//  The status whose nodes to show: the freshest of a broker that says it
//  is active, else (none is, or the active one went silent) the freshest of
//  any.  NULL before any came.  *active_p says which case.
static feed_t *
s_shown_feed (view_t *view, int64_t now, bool *active_p)
{
    feed_t *active = NULL, *any = NULL;
    for (int i = 0; i < view->feed_count; i++) {
        feed_t *feed = &view->feeds [i];
        if (!feed->status)
            continue;
        if (s_is_active (feed->status) && now - feed->at < SILENT_MS && (!active || feed->at > active->at))
            active = feed;
        if (!any || feed->at > any->at)
            any = feed;
    }
    *active_p = active != NULL;
    return active? active: any;
}

//  One broker's line.  A broker whose feed went silent is shown silent
//  whatever it last said: a dead broker's last status still says active.
static void
s_broker_line (view_t *view, const bs_msg_t *entry, const char *endpoint, bool silent, const char *note)
{
    bool active = entry && bs_msg_int (entry, BS_FIELD_active) && !silent;
    const char *state = entry && *bs_msg_str (entry, BS_FIELD_state)? bs_msg_str (entry, BS_FIELD_state): "-";
    printf ("%s%-12s %-30s %-8s %s%s%s%s\n", view->tty && active? "\033[1;32m": "",
            entry? bs_msg_str (entry, BS_FIELD_id): "?",
            entry && *bs_msg_str (entry, BS_FIELD_endpoint)? bs_msg_str (entry, BS_FIELD_endpoint): endpoint,
            entry && *bs_msg_str (entry, BS_FIELD_role)? bs_msg_str (entry, BS_FIELD_role): "-",
            silent? "silent": state, active? "  ACTIVE": "", note, view->tty && active? "\033[0m": "");
}

//  A line per broker: each feed's own entry (or, for a feed not heard,
//  what the shown status says of that broker), then the brokers the shown
//  status lists that no feed stands for (several brokers watched through one feed).
//  Nothing for a broker that is alone, so a lone broker looks as it did.
static void
s_draw_brokers (view_t *view, const bs_msg_t *status, int64_t now)
{
    size_t listed = bs_msg_count (status, BS_FIELD_brokers);
    const char *seer = listed? bs_msg_str (bs_msg_at (status, BS_FIELD_brokers, 0), BS_FIELD_id): "";
    //  Which entry of the shown status each feed stands for
    bool covered [2 * BS_ENDPOINTS_MAX] = { false };
    bs_msg_t *seen [BS_ENDPOINTS_MAX] = { NULL };
    for (int i = 0; i < view->feed_count; i++) {
        feed_t *feed = &view->feeds [i];
        bs_msg_t *own = feed->status? bs_msg_at (feed->status, BS_FIELD_brokers, 0): NULL;
        for (size_t k = 0; k < listed && k < 2 * BS_ENDPOINTS_MAX; k++) {
            bs_msg_t *entry = bs_msg_at (status, BS_FIELD_brokers, k);
            bool same = own? strcmp (bs_msg_str (own, BS_FIELD_id), bs_msg_str (entry, BS_FIELD_id)) == 0
                           : *feed->client && strcmp (feed->client, bs_msg_str (entry, BS_FIELD_endpoint)) == 0;
            if (same && !covered [k]) {
                covered [k] = true;
                if (!own)
                    seen [i] = entry;
            }
        }
    }
    int extra = 0;
    for (size_t k = 1; k < listed && k < 2 * BS_ENDPOINTS_MAX; k++)
        extra += !covered [k];
    if (view->feed_count + extra < 2)
        return;
    printf ("%-12s %-30s %-8s %s\n", "BROKER", "ENDPOINT", "ROLE", "STATE");
    for (int i = 0; i < view->feed_count; i++) {
        feed_t *feed = &view->feeds [i];
        bs_msg_t *own = feed->status? bs_msg_at (feed->status, BS_FIELD_brokers, 0): NULL;
        char note [200] = "";
        if (!own && seen [i])
            snprintf (note, sizeof note, "  (no status on its feed; as %.64s sees it)", seer);
        else
        if (!feed->status)
            snprintf (note, sizeof note, "  (no status on its feed)");
        else
        if (now - feed->at >= SILENT_MS)
            snprintf (note, sizeof note, "  (for %lld ms; it last said %.16s)", (long long) (now - feed->at),
                      own? bs_msg_str (own, BS_FIELD_state): "?");
        bool silent = own? now - feed->at >= SILENT_MS: !seen [i];
        s_broker_line (view, own? own: seen [i], *feed->client? feed->client: feed->endpoint, silent, note);
    }
    for (size_t k = 1; k < listed && k < 2 * BS_ENDPOINTS_MAX; k++) {
        char note [100];
        snprintf (note, sizeof note, "  (as %.64s sees it)", seer);
        if (!covered [k])
            s_broker_line (view, bs_msg_at (status, BS_FIELD_brokers, k), "", false, note);
    }
    printf ("\n");
}

//  Draws the cluster from status (as the active broker sees it, when one is)
static void
s_draw (view_t *view, const bs_msg_t *status, bool active)
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
    s_draw_brokers (view, status, now);
    if (!active) {
        //  Watching a standby broker alone, or none is active (now)
        size_t listed = bs_msg_count (status, BS_FIELD_brokers);
        const char *seer = listed? bs_msg_str (bs_msg_at (status, BS_FIELD_brokers, 0), BS_FIELD_id): "the broker";
        bs_msg_t *other = NULL;
        for (size_t k = 1; k < listed && !other; k++)
            if (bs_msg_int (bs_msg_at (status, BS_FIELD_brokers, k), BS_FIELD_active))
                other = bs_msg_at (status, BS_FIELD_brokers, k);
        if (other)
            printf ("%s is not active; %s at %s is (give both brokers' endpoints to see the nodes it serves)\n\n",
                    seer, bs_msg_str (other, BS_FIELD_id), bs_msg_str (other, BS_FIELD_endpoint));
        else
            printf ("no active broker: the nodes as %s last reported them\n\n", seer);
    }
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

//  The feeds: --feed's list, or each broker's client port + 3.  Returns the
//  number, or 0 when a list is malformed.
static int
s_feeds (bs_settings_t *settings, feed_t *feeds)
{
    const char *given = bs_settings_get (settings, "feed");
    bs_endpoints_t *list = bs_endpoints_new (*given? given: bs_settings_get (settings, "endpoint"));
    if (!list)
        return 0;
    int count = (int) bs_endpoints_size (list);
    for (int i = 0; i < count; i++) {
        s_feed_endpoint (bs_endpoints_at (list, i), *given? bs_endpoints_at (list, i): "",
                         feeds [i].endpoint, sizeof feeds [i].endpoint);
        snprintf (feeds [i].client, sizeof feeds [i].client, "%s", *given? "": bs_endpoints_at (list, i));
    }
    bs_endpoints_destroy (&list);
    return count;
}

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
    if (!bs_settings_int (settings, "seconds", &seconds) || !bs_settings_int (settings, "timeout-ms", &timeout)) {
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
    feed_t feeds [BS_ENDPOINTS_MAX];
    memset (feeds, 0, sizeof feeds);
    int feed_count = s_feeds (settings, feeds);
    if (feed_count == 0) {
        fprintf (stderr, "bookstore-monitor: --endpoint and --feed take an endpoint or a comma-separated list\n");
        bs_settings_destroy (&settings);
        return 2;
    }
    bs_keys_t *keys;
    if (!bs_keys_open (settings, "clients/client", true, &keys)) {
        bs_settings_destroy (&settings);
        return 2;
    }
    zpoller_t *poller = zpoller_new (NULL);
    for (int i = 0; i < feed_count && rc == 0; i++) {
        zsock_t *sub = feeds [i].sub = zsock_new (ZMQ_SUB);
        bs_keys_connect_to (keys, sub, "broker");
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
        if (zsock_connect (sub, "%s", feeds [i].endpoint) != 0) {
            fprintf (stderr, "bookstore-monitor: cannot connect to %s\n", feeds [i].endpoint);
            rc = 2;
        }
        zpoller_add (poller, sub);
    }
    bs_keys_destroy (&keys);
    //  For messages: the feeds, comma-separated
    char feed_text [(sizeof feeds [0].endpoint + 1) * BS_ENDPOINTS_MAX] = "";
    for (int i = 0; i < feed_count; i++) {
        if (i)
            strcat (feed_text, ",");
        strcat (feed_text, feeds [i].endpoint);     //  each fits: see the size
    }
    view_t view = { .tty = isatty (STDOUT_FILENO), .feeds = feeds, .feed_count = feed_count };
    int64_t stop_at = seconds? zclock_mono () + seconds * 1000: INT64_MAX;
    int64_t deadline = once? zclock_mono () + timeout: INT64_MAX;
    int64_t last_plain = 0;
    int64_t started = zclock_mono ();
    while (!zsys_interrupted && rc == 0) {
        int64_t now = zclock_mono ();
        if (now >= stop_at)
            break;
        if (now >= deadline) {
            const char *what = feed_count > 1? "no status from an active broker's feed at": "no status from the broker's feed at";
            if (json)
                printf ("{\"ok\":false,\"error\":\"timeout\",\"message\":\"%s %s\"}\n", what, feed_text);
            else
                fprintf (stderr, "bookstore-monitor: %s %s\n", what, feed_text);
            rc = 3;
            break;
        }
        int64_t wait = (stop_at < deadline? stop_at: deadline) - now;
        zsock_t *ready = zpoller_wait (poller, (int) (wait > 500? 500: wait));
        feed_t *feed = NULL;
        for (int i = 0; i < feed_count && ready; i++)
            if (feeds [i].sub == ready)
                feed = &feeds [i];
        if (!feed)
            continue;
        char topic [16];
        bs_msg_t *msg = s_recv (feed->sub, topic, sizeof topic);
        if (!msg)
            continue;
        now = zclock_mono ();
        if (strcmp (topic, "event") == 0) {
            if (events && json)
                s_print_json (msg);
            else
                s_remember_event (&view, msg);
            bs_msg_destroy (&msg);
            continue;
        }
        if (strcmp (topic, "status") != 0 || events) {
            bs_msg_destroy (&msg);
            continue;
        }
        bs_msg_destroy (&feed->status);
        feed->status = msg;
        feed->at = now;
        if (once) {
            //  Only the active broker's word on the nodes is printed
            if (!s_is_active (msg))
                continue;
            if (json)
                s_print_json (msg);
            else
                s_draw (&view, msg, true);
            break;
        }
        //  A terminal redraws on every snapshot; plain text prints a
        //  table a second
        //  Until an active broker is heard, or long enough to know none is,
        //  a standby one's view of the nodes would mislead
        bool active;
        feed_t *shown = s_shown_feed (&view, now, &active);
        if (shown && !active && now - started < SILENT_MS)
            shown = NULL;
        if (shown && (view.tty || now - last_plain >= 1000)) {
            s_draw (&view, shown->status, active);
            last_plain = now;
        }
    }
    zpoller_destroy (&poller);
    for (int i = 0; i < feed_count; i++) {
        zsock_destroy (&feeds [i].sub);
        bs_msg_destroy (&feeds [i].status);
    }
    bs_settings_destroy (&settings);
    return rc;
}
