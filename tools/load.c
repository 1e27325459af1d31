/*  bookstore-load - drives a cluster with concurrent clients and accounts
 *  for every write, for the fault tests and the chaos run.
 *
 *  usage: bookstore-load [options] [CLIENTS REQUESTS MIX [SEED]]
 *    MIX   comma-separated op:weight, e.g. buy:60,set_price:10,restock:10,add_book:5,lookup:15
 *  The positional form is a shorthand for --clients, --requests, --mix and
 *  --seed.  --seconds runs for a duration instead of a count of requests.
 *
 *  Each client has one request outstanding and retries it, with the same
 *  request id, until it gets a definite answer (any reply but
 *  "unavailable" or "overloaded", which turn one copy away and say nothing
 *  of an earlier copy), so every write's outcome is known.  A request still
 *  without one after --give-up-ms is given up on: a client error, whose
 *  outcome is unknown.  Latency runs from a request's first send to its
 *  definite answer.
 *
 *  --endpoint may list several brokers.  Each client
 *  connects to one at a time and fails over on its own: a "not_active"
 *  answer (a standby broker; never an answer of the store) or a request
 *  unanswered for --attempt-ms moves its socket to the next broker, and the
 *  request is sent there with the same rid.  The old connection goes with
 *  its replies, so a request is answered, and counted, once.
 *
 *  Prints one JSON object: totals, latency (p50, p99, max), counts per op
 *  and per error, and per item the copies bought and restocked by
 *  acknowledged requests (and by writes given up on, whose outcome is
 *  unknown).  --record FILE writes one line per write whose outcome the
 *  checker needs (tools/chaos/lib.sh, bs_audit), in the order the answers
 *  came to this process:
 *      buy RID ORDER_ID ITEM SENT              an acknowledged buy
 *      restock RID ITEM COUNT SENT             an acknowledged restock
 *      set_price RID ITEM COST SENT            an acknowledged price change
 *      add_book RID ITEM COST STOCK SENT       an acknowledged new book
 *      gave_up OP RID ITEM COUNT COST SENT     a write with no definite answer
 *  RID is 32 hex digits.  In gave_up lines COUNT is the copies the write
 *  would add (restock's count, add_book's stock) and COST the price it
 *  would set (set_price, add_book), 0 where the op takes none.  SENT is
 *  the number of lines the record held when the request was first sent:
 *  a line at a position (counted from 0) of at least another request's
 *  SENT was answered, or given up on, after that request was sent, so the
 *  two may have taken effect in either order; a line before it was done
 *  before that request began.  Refused writes (any other answer) changed
 *  nothing and are not recorded.  The file is written line by line, so it
 *  can be watched while the load runs.
 *
 *  Exit codes: 0 every request got a definite answer, 1 some were given up
 *  on, 2 usage error, 3 the record file could not be written.
 */
#include "bs_endpoints.h"
#include "bs_failover.h"
#include "bs_histogram.h"
#include "bs_mdp.h"
#include "bs_msg.h"
#include "bs_settings.h"

#include <czmq.h>
#include <signal.h>
#include <string.h>

#define EXIT_GAVE_UP    1
#define EXIT_USAGE      2
#define EXIT_RECORD     3

#define MAX_ITEMS       4096
#define MAX_LIST        64
#define MAX_MIX         16
#define MAX_CLIENTS     1000
//  Latencies in microseconds, up to an hour, to 3 significant figures
#define HIGHEST_US      (INT64_C (3600) * 1000000)
//  Pause before resending a request answered "unavailable" or "overloaded"
#define UNAVAILABLE_PAUSE_MS 50

static const bs_setting_t s_table [] = {
    { "endpoint",   "tcp://127.0.0.1:5555", "the broker's client endpoint, or several brokers', comma-separated", 0, 0 },
    { "clients",    "8",      "concurrent clients, each with one request outstanding", 1, 1000 },
    { "requests",   "",       "stop after this many requests (give this or --seconds)", 1, INT64_C (1000000000) },
    { "seconds",    "",       "issue requests for this long, then wait for the last answers (give this or --requests)", 1, 86400 * 365 },
    { "mix",        "buy:60,lookup:20,restock:10,set_price:10",
                              "ops and weights, op:weight,... (buy lookup search list orders restock set_price add_book)", 0, 0 },
    { "seed",       "",       "seed of the random choices (none: the process id)", 0, UINT32_MAX },
    { "items",      "666,321,768,546,684,499,846", "items to buy, look up, restock and reprice, comma-separated", 0, 0 },
    { "topics",     "distributed_systems,graduate_school", "topics to search, comma-separated", 0, 0 },
    { "record",     "",       "file for one line per acknowledged write (buy, restock, set_price, add_book) and per write given up on", 0, 0 },
    { "attempt-ms", "1000",   "resend a request (same rid) after this long without an answer", 1, 3600000 },
    { "give-up-ms", "60000",  "give up on a request (a client error) after this long without a definite answer", 1, 86400000 },
    { NULL, NULL, NULL, 0, 0 }
};

//  The ops a load may send: every client op but decrement (which takes a
//  copy without an order, and would break the accounts) and status
static const bs_op_t s_allowed [] = {
    BS_OP_buy, BS_OP_lookup, BS_OP_search, BS_OP_list, BS_OP_orders,
    BS_OP_restock, BS_OP_set_price, BS_OP_add_book
};

typedef struct {
    zsock_t *sock;
    bs_endpoints_t *endpoints;  //  the brokers; this client's in use current
    bs_failover_t failover;     //  "not_active" answers in a row
    bs_msg_t *request;
    uint8_t *body;
    size_t size;
    const char *service;
    int64_t first_sent, sent_at, retry_at;     //  ms, monotonic
    int64_t first_sent_us;                      //  for the latency
    long sent_mark;             //  record lines written when first sent
    bool busy;
} client_t;

typedef struct {
    int64_t item, bought, restocked, initial;
    int64_t uncertain_bought, uncertain_restocked;
    bool added;
} tally_t;

typedef struct { bs_op_t op; int weight; long ok, refused, gave_up; } mix_t;

//  Everything one run needs
typedef struct {
    client_t *clients;
    zmq_pollitem_t *poll;
    int client_count;
    mix_t mix [MAX_MIX];
    int mix_count, weight_sum;
    int64_t items [MAX_LIST];
    int item_count;
    char *topics [MAX_LIST];
    int topic_count;
    tally_t tallies [MAX_ITEMS];
    int tally_count;
    int64_t next_book;
    int64_t attempt_ms, give_up_ms;
    FILE *record;
    long record_lines;          //  lines written to the record
    bool record_failed;
    bs_histogram_t *latency;
    long issued, done, acked_buys, acked_restocks, refused, retries, gave_up, failovers;
    long errors [BS_ERR_COUNT];
} load_t;

static volatile sig_atomic_t s_signals;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_signals++;
}

static tally_t *
s_tally (load_t *self, int64_t item)
{
    for (int i = 0; i < self->tally_count; i++)
        if (self->tallies [i].item == item)
            return &self->tallies [i];
    if (self->tally_count == MAX_ITEMS)
        return NULL;
    tally_t *t = &self->tallies [self->tally_count++];
    t->item = item;
    return t;
}

static mix_t *
s_mix_of (load_t *self, bs_op_t op)
{
    for (int k = 0; k < self->mix_count; k++)
        if (self->mix [k].op == op)
            return &self->mix [k];
    return NULL;
}

//  Parses "op:weight,..."; false with a sentence on stderr
static bool
s_parse_mix (load_t *self, const char *text)
{
    char *spec = strdup (text);
    bool good = true;
    for (char *save = NULL, *tok = strtok_r (spec, ",", &save); tok && good; tok = strtok_r (NULL, ",", &save)) {
        char *colon = strchr (tok, ':');
        int64_t weight = 0;
        if (colon)
            *colon = 0;
        bs_op_t op = bs_op_lookup (tok, strlen (tok));
        bool allowed = false;
        for (size_t i = 0; i < sizeof s_allowed / sizeof s_allowed [0]; i++)
            allowed |= s_allowed [i] == op;
        if (!allowed) {
            fprintf (stderr, "bookstore-load: the mix cannot hold '%s' (see --help)\n", tok);
            good = false;
        }
        else
        if (!colon || !bs_parse_int (colon + 1, 0, 1000000, &weight)) {
            fprintf (stderr, "bookstore-load: the mix needs op:weight with a whole weight, as in buy:60\n");
            good = false;
        }
        else
        if (s_mix_of (self, op)) {
            fprintf (stderr, "bookstore-load: %s appears twice in the mix\n", tok);
            good = false;
        }
        else
        if (self->mix_count == MAX_MIX) {
            fprintf (stderr, "bookstore-load: too many ops in the mix\n");
            good = false;
        }
        else {
            self->mix [self->mix_count++] = (mix_t) { .op = op, .weight = (int) weight };
            self->weight_sum += (int) weight;
        }
    }
    free (spec);
    if (good && self->weight_sum < 1) {
        fprintf (stderr, "bookstore-load: the mix's weights add up to nothing\n");
        good = false;
    }
    return good;
}

//  Parses a comma-separated list of items, or of topics (strings)
static bool
s_parse_list (load_t *self, const char *text, bool items)
{
    char *copy = strdup (text);
    bool good = true;
    for (char *save = NULL, *tok = strtok_r (copy, ",", &save); tok && good; tok = strtok_r (NULL, ",", &save)) {
        int *count = items? &self->item_count: &self->topic_count;
        int64_t item;
        if (*count == MAX_LIST) {
            fprintf (stderr, "bookstore-load: at most %d %s\n", MAX_LIST, items? "items": "topics");
            good = false;
        }
        else
        if (!items)
            self->topics [self->topic_count++] = strdup (tok);
        else
        if (bs_parse_int (tok, 1, 999999999, &item))
            self->items [self->item_count++] = item;
        else {
            fprintf (stderr, "bookstore-load: '%s' is not an item number\n", tok);
            good = false;
        }
    }
    free (copy);
    if (good && (items? self->item_count: self->topic_count) == 0) {
        fprintf (stderr, "bookstore-load: --%s needs at least one value\n", items? "items": "topics");
        good = false;
    }
    return good;
}

static void
s_send (client_t *c)
{
    void *sock = zsock_resolve (c->sock);
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    zmq_send (sock, BS_MDPC, strlen (BS_MDPC), ZMQ_SNDMORE);
    zmq_send (sock, c->service, strlen (c->service), ZMQ_SNDMORE);
    zmq_send (sock, c->body, c->size, 0);
    c->sent_at = zclock_mono ();
    c->retry_at = 0;
}

//  Moves the client's socket to the next broker of the list; what it had
//  sent to the previous one is lost with that connection, so the caller
//  sends it again.  With one broker the socket stays: ZeroMQ reconnects.
static void
s_failover (load_t *self, client_t *c)
{
    if (bs_endpoints_size (c->endpoints) < 2)
        return;
    if (bs_endpoints_switch (c->endpoints, c->sock) == 0)
        self->failovers++;
}

static void
s_rid_hex (const bs_msg_t *request, char *hex)
{
    size_t size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &size);
    hex [0] = 0;
    for (size_t i = 0; rid && i < size && i < BS_RID_SIZE; i++)
        snprintf (hex + 2 * i, 3, "%02x", rid [i]);
}

static void
s_record (load_t *self, const char *format, ...)
{
    if (!self->record)
        return;
    va_list args;
    va_start (args, format);
    if (vfprintf (self->record, format, args) < 0)
        self->record_failed = true;
    va_end (args);
    self->record_lines++;
}

//  Starts a new request on an idle client
static void
s_issue (load_t *self, client_t *c, int64_t now)
{
    int pick = rand () % self->weight_sum, k = 0;
    while (pick >= self->mix [k].weight)
        pick -= self->mix [k++].weight;
    bs_op_t op = self->mix [k].op;
    c->request = bs_msg_new_request (op);
    int64_t item = self->items [rand () % self->item_count];
    if (op == BS_OP_add_book) {
        item = self->next_book++;
        char title [64];
        snprintf (title, sizeof title, "Load book %lld", (long long) item);
        bs_msg_set_str (c->request, BS_FIELD_topic, "load");
        bs_msg_set_str (c->request, BS_FIELD_title, title);
        bs_msg_set_int (c->request, BS_FIELD_cost, 1 + rand () % 50);
        bs_msg_set_int (c->request, BS_FIELD_stock, 5);
    }
    if (op == BS_OP_search)
        bs_msg_set_str (c->request, BS_FIELD_topic, self->topics [rand () % self->topic_count]);
    else
    if (op != BS_OP_orders && op != BS_OP_list)
        bs_msg_set_int (c->request, BS_FIELD_item, item);
    if (op == BS_OP_set_price)
        bs_msg_set_int (c->request, BS_FIELD_cost, 1 + rand () % 50);
    if (op == BS_OP_restock)
        bs_msg_set_int (c->request, BS_FIELD_count, 1 + rand () % 5);
    c->body = bs_msg_encode (c->request, &c->size);
    c->service = bs_op_service (op);
    c->busy = true;
    bs_failover_reset (&c->failover);
    c->first_sent = now;
    c->first_sent_us = zclock_usecs ();
    c->sent_mark = self->record_lines;
    self->issued++;
    s_send (c);
}

static void
s_finish (load_t *self, client_t *c)
{
    c->busy = false;
    bs_msg_destroy (&c->request);
    free (c->body);
    c->body = NULL;
    self->done++;
}

//  No definite answer in time: the outcome of this request is unknown
static void
s_give_up (load_t *self, client_t *c)
{
    bs_op_t op = bs_msg_op (c->request);
    self->gave_up++;
    s_mix_of (self, op)->gave_up++;
    if (bs_op_kind (op) == BS_KIND_WRITE) {
        int64_t item = bs_msg_int (c->request, BS_FIELD_item);
        int64_t count = op == BS_OP_restock? bs_msg_int (c->request, BS_FIELD_count)
                      : op == BS_OP_add_book? bs_msg_int (c->request, BS_FIELD_stock): 0;
        int64_t cost = op == BS_OP_set_price || op == BS_OP_add_book? bs_msg_int (c->request, BS_FIELD_cost): 0;
        tally_t *t = s_tally (self, item);
        if (t && op == BS_OP_buy)
            t->uncertain_bought++;
        if (t && op == BS_OP_restock)
            t->uncertain_restocked += count;
        char rid [2 * BS_RID_SIZE + 1];
        s_rid_hex (c->request, rid);
        s_record (self, "gave_up %s %s %lld %lld %lld %ld\n", bs_op_name (op), rid, (long long) item,
                  (long long) count, (long long) cost, c->sent_mark);
    }
    s_finish (self, c);
}

//  A definite answer to the client's request
static void
s_answered (load_t *self, client_t *c, bs_msg_t *reply)
{
    bs_histogram_record (self->latency, zclock_usecs () - c->first_sent_us);
    bs_op_t op = bs_msg_op (c->request);
    mix_t *mix = s_mix_of (self, op);
    int64_t item = bs_msg_int (c->request, BS_FIELD_item);
    char rid [2 * BS_RID_SIZE + 1];
    s_rid_hex (c->request, rid);
    if (bs_msg_int (reply, BS_FIELD_ok)) {
        mix->ok++;
        //  Only writes change what the accounts count.  The record has
        //  every write, the summary's items only the first MAX_ITEMS.
        tally_t *t = bs_op_kind (op) == BS_KIND_WRITE? s_tally (self, item): NULL;
        if (op == BS_OP_buy) {
            if (t)
                t->bought++;
            self->acked_buys++;
            s_record (self, "buy %s %s %lld %ld\n", rid, bs_msg_str (reply, BS_FIELD_order_id),
                      (long long) item, c->sent_mark);
        }
        if (op == BS_OP_restock) {
            int64_t count = bs_msg_int (c->request, BS_FIELD_count);
            if (t)
                t->restocked += count;
            self->acked_restocks++;
            s_record (self, "restock %s %lld %lld %ld\n", rid, (long long) item, (long long) count, c->sent_mark);
        }
        if (op == BS_OP_set_price)
            s_record (self, "set_price %s %lld %lld %ld\n", rid, (long long) item,
                      (long long) bs_msg_int (c->request, BS_FIELD_cost), c->sent_mark);
        if (op == BS_OP_add_book) {
            int64_t stock = bs_msg_int (c->request, BS_FIELD_stock);
            if (t) {
                t->added = true;
                t->initial = stock;
            }
            s_record (self, "add_book %s %lld %lld %lld %ld\n", rid, (long long) item,
                      (long long) bs_msg_int (c->request, BS_FIELD_cost), (long long) stock, c->sent_mark);
        }
    }
    else {
        mix->refused++;
        self->refused++;
        for (int e = 0; e < BS_ERR_COUNT; e++)
            if (strcmp (bs_err_name ((bs_err_t) e), bs_msg_str (reply, BS_FIELD_error)) == 0)
                self->errors [e]++;
    }
    s_finish (self, c);
}

//  Reads one reply on a client's socket
static void
s_receive (load_t *self, client_t *c)
{
    zmsg_t *msg = zmsg_recv (c->sock);
    zframe_t *body = msg && zmsg_size (msg) == 4? zmsg_last (msg): NULL;
    bs_err_t err;
    bs_msg_t *reply = body? bs_msg_decode (zframe_data (body), zframe_size (body), &err, NULL, 0): NULL;
    zmsg_destroy (&msg);
    if (!reply || !c->busy) {
        bs_msg_destroy (&reply);
        return;
    }
    size_t n1, n2;
    const uint8_t *r1 = bs_msg_bin (reply, BS_FIELD_rid, &n1);
    const uint8_t *r2 = bs_msg_bin (c->request, BS_FIELD_rid, &n2);
    if (r1 && (n1 != n2 || memcmp (r1, r2, n1) != 0))
        ;                   //  a late answer to an earlier request
    else
    if (bs_failover_is_not_active (reply)) {
        //  A standby broker: send to the next one at once, or,
        //  when every one said so in a row (a takeover under way), shortly
        s_failover (self, c);
        if (bs_failover_not_active (&c->failover, bs_endpoints_size (c->endpoints)) == BS_FAILOVER_NOW) {
            self->retries++;
            s_send (c);
        }
        else
            c->retry_at = zclock_mono () + BS_FAILOVER_PAUSE_MS;
    }
    else
    if (!bs_msg_int (reply, BS_FIELD_ok)
    &&  (strcmp (bs_msg_str (reply, BS_FIELD_error), bs_err_name (BS_ERR_unavailable)) == 0
    ||   strcmp (bs_msg_str (reply, BS_FIELD_error), bs_err_name (BS_ERR_overloaded)) == 0)) {
        //  The broker turned this copy away, which says nothing of an
        //  earlier copy of the same request still in flight: wait and send
        //  again, so that the outcome comes from the node's record
        bs_failover_reset (&c->failover);
        c->retry_at = zclock_mono () + UNAVAILABLE_PAUSE_MS;
    }
    else
        s_answered (self, c, reply);
    bs_msg_destroy (&reply);
}

static void
s_print_summary (load_t *self, double seconds)
{
    printf ("{\"requests\":%ld,\"seconds\":%.2f,\"acked_buys\":%ld,\"acked_restocks\":%ld,\"refused\":%ld,"
            "\"retries\":%ld,\"failovers\":%ld,\"gave_up\":%ld,\"max_latency_ms\":%lld,\"p50_latency_ms\":%lld,"
            "\"p99_latency_ms\":%lld,\"errors\":{",
            self->done, seconds, self->acked_buys, self->acked_restocks, self->refused, self->retries,
            self->failovers, self->gave_up, (long long) (bs_histogram_max (self->latency) / 1000),
            (long long) (bs_histogram_percentile (self->latency, 50) / 1000),
            (long long) (bs_histogram_percentile (self->latency, 99) / 1000));
    bool first = true;
    for (int e = 1; e < BS_ERR_COUNT; e++)
        if (self->errors [e]) {
            printf ("%s\"%s\":%ld", first? "": ",", bs_err_name ((bs_err_t) e), self->errors [e]);
            first = false;
        }
    printf ("},\"ops\":{");
    for (int k = 0; k < self->mix_count; k++)
        printf ("%s\"%s\":{\"ok\":%ld,\"refused\":%ld,\"gave_up\":%ld}", k? ",": "",
                bs_op_name (self->mix [k].op), self->mix [k].ok, self->mix [k].refused, self->mix [k].gave_up);
    printf ("},\"items\":{");
    for (int i = 0; i < self->tally_count; i++) {
        tally_t *t = &self->tallies [i];
        printf ("%s\"%lld\":{\"bought\":%lld,\"restocked\":%lld,\"added\":%s,\"initial\":%lld,"
                "\"uncertain_bought\":%lld,\"uncertain_restocked\":%lld}", i? ",": "",
                (long long) t->item, (long long) t->bought, (long long) t->restocked,
                t->added? "true": "false", (long long) t->initial,
                (long long) t->uncertain_bought, (long long) t->uncertain_restocked);
    }
    printf ("}}\n");
    fflush (stdout);
}

//  Reads the settings into the load; returns 0 or an exit code
static int
s_configure (load_t *self, bs_settings_t *settings, int64_t *requests_p, int64_t *seconds_p,
             unsigned *seed_p, const char **record_p)
{
    const char *clients = bs_settings_get (settings, "clients");
    const char *requests = bs_settings_get (settings, "requests");
    const char *mix = bs_settings_get (settings, "mix");
    const char *seed = bs_settings_get (settings, "seed");
    int argc = bs_settings_argc (settings);
    if (argc != 0 && argc != 3 && argc != 4) {
        fprintf (stderr, "bookstore-load: give CLIENTS REQUESTS MIX [SEED] or options (see --help)\n");
        return EXIT_USAGE;
    }
    if (argc) {
        clients = bs_settings_arg (settings, 0);
        requests = bs_settings_arg (settings, 1);
        mix = bs_settings_arg (settings, 2);
        if (argc == 4)
            seed = bs_settings_arg (settings, 3);
    }
    int64_t count;
    if (!bs_parse_int (clients, 1, MAX_CLIENTS, &count)) {
        fprintf (stderr, "bookstore-load: clients must be a whole number from 1 to %d\n", MAX_CLIENTS);
        return EXIT_USAGE;
    }
    self->client_count = (int) count;
    const char *seconds = bs_settings_get (settings, "seconds");
    if (!*requests == !*seconds) {
        fprintf (stderr, "bookstore-load: give either a number of requests or --seconds\n");
        return EXIT_USAGE;
    }
    if (*requests && !bs_parse_int (requests, 1, INT64_C (1000000000), requests_p)) {
        fprintf (stderr, "bookstore-load: requests must be a whole number from 1\n");
        return EXIT_USAGE;
    }
    if (*seconds && !bs_parse_int (seconds, 1, 86400 * 365, seconds_p)) {
        fprintf (stderr, "bookstore-load: --seconds must be a whole number from 1\n");
        return EXIT_USAGE;
    }
    int64_t value = getpid ();
    if (*seed && !bs_parse_int (seed, 0, UINT32_MAX, &value)) {
        fprintf (stderr, "bookstore-load: the seed must be a whole number from 0 to %u\n", UINT32_MAX);
        return EXIT_USAGE;
    }
    *seed_p = (unsigned) value;
    if (!bs_settings_int (settings, "attempt-ms", &self->attempt_ms)
    ||  !bs_settings_int (settings, "give-up-ms", &self->give_up_ms))
        return EXIT_USAGE;
    if (self->attempt_ms < 10 || self->give_up_ms < self->attempt_ms) {
        fprintf (stderr, "bookstore-load: --attempt-ms must be at least 10 and --give-up-ms at least that\n");
        return EXIT_USAGE;
    }
    if (!s_parse_mix (self, mix)
    ||  !s_parse_list (self, bs_settings_get (settings, "items"), true)
    ||  !s_parse_list (self, bs_settings_get (settings, "topics"), false))
        return EXIT_USAGE;
    *record_p = bs_settings_get (settings, "record");
    return 0;
}

int
main (int argc, char **argv)
{
    bs_settings_t *settings = bs_settings_new ("load", s_table, argc, argv);
    if (!settings)
        return EXIT_USAGE;
    if (bs_settings_help_shown (settings)) {
        fprintf (stderr, "\nor: %s [options] CLIENTS REQUESTS MIX [SEED]\n"
                 "Prints one JSON object; --record FILE also writes a line per write, in the order\n"
                 "the answers came (a write refused changed nothing and has none):\n"
                 "  buy RID ORDER_ID ITEM SENT            an acknowledged buy\n"
                 "  restock RID ITEM COUNT SENT           an acknowledged restock\n"
                 "  set_price RID ITEM COST SENT          an acknowledged price change\n"
                 "  add_book RID ITEM COST STOCK SENT     an acknowledged new book\n"
                 "  gave_up OP RID ITEM COUNT COST SENT   no definite answer: it may or may not have\n"
                 "                                        taken effect (COUNT: copies it adds, COST: the\n"
                 "                                        price it sets, else 0)\n"
                 "SENT: the lines the record held when the request was first sent.\n"
                 "Exit codes: 0 every request answered, 1 some given up on, 2 usage, 3 record not\n"
                 "written in full (the record cannot be trusted).\n",
                 argv [0]);
        bs_settings_destroy (&settings);
        return 0;
    }
    load_t *self = calloc (1, sizeof (load_t));
    if (!self)
        abort ();
    int64_t requests = 0, seconds = 0;
    unsigned seed = 0;
    const char *record = NULL;
    int rc = s_configure (self, settings, &requests, &seconds, &seed, &record);
    if (rc == 0 && *record && !(self->record = fopen (record, "w"))) {
        fprintf (stderr, "bookstore-load: cannot write %s: %s\n", record, strerror (errno));
        rc = EXIT_RECORD;
    }
    //  A line at a time, so that a test can watch the acknowledgements come
    if (self->record)
        setvbuf (self->record, NULL, _IOLBF, 0);
    if (rc) {
        for (int i = 0; i < self->topic_count; i++)
            free (self->topics [i]);
        free (self);
        bs_settings_destroy (&settings);
        return rc;
    }
    srand (seed);
    self->next_book = 500000 + (int64_t) (seed % 1000) * 1000;
    self->latency = bs_histogram_new (HIGHEST_US, 3);

    //  SIGINT or SIGTERM: issue nothing more and wait for the answers still
    //  due; a second one gives up on them
    zsys_handler_set (NULL);
    struct sigaction action = { .sa_handler = s_on_signal };
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);

    const char *endpoint = bs_settings_get (settings, "endpoint");
    self->clients = calloc ((size_t) self->client_count, sizeof (client_t));
    self->poll = calloc ((size_t) self->client_count, sizeof (zmq_pollitem_t));
    for (int i = 0; i < self->client_count; i++) {
        client_t *c = &self->clients [i];
        c->sock = zsock_new (ZMQ_DEALER);
        zsock_set_linger (c->sock, 0);
        c->endpoints = bs_endpoints_new (endpoint);
        //  Every endpoint of the list is checked once, so that a failover
        //  never meets one ZeroMQ refuses
        if (!c->endpoints || (i == 0 && !bs_endpoints_valid (c->endpoints))
        ||  zsock_connect (c->sock, "%s", bs_endpoints_current (c->endpoints)) != 0) {
            fprintf (stderr, "bookstore-load: bad endpoint %s\n", endpoint);
            rc = EXIT_USAGE;
            break;
        }
        self->poll [i] = (zmq_pollitem_t) { zsock_resolve (c->sock), 0, ZMQ_POLLIN, 0 };
    }
    int64_t start = zclock_mono ();
    int64_t stop_issuing = seconds? start + seconds * 1000: INT64_MAX;
    int64_t busy = 0;
    while (rc == 0) {
        int64_t now = zclock_mono ();
        bool issuing = s_signals == 0 && now < stop_issuing && (!requests || self->issued < requests);
        busy = 0;
        for (int i = 0; i < self->client_count; i++) {
            client_t *c = &self->clients [i];
            if (!c->busy && issuing && (!requests || self->issued < requests))
                s_issue (self, c, now);
            else
            if (c->busy && s_signals > 1)
                s_give_up (self, c);
            else
            if (c->busy && ((c->retry_at && now >= c->retry_at)
                        ||  (!c->retry_at && now - c->sent_at > self->attempt_ms))) {
                if (now - c->first_sent > self->give_up_ms)
                    s_give_up (self, c);
                else {
                    //  Unanswered (not a pause after an answer): the
                    //  broker may be gone; try the next one
                    if (!c->retry_at) {
                        s_failover (self, c);
                        bs_failover_reset (&c->failover);
                    }
                    self->retries++;
                    s_send (c);
                }
            }
            busy += c->busy;
        }
        if (!busy && !issuing)
            break;
        if (zmq_poll (self->poll, self->client_count, 20) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < self->client_count; i++)
            if (self->poll [i].revents & ZMQ_POLLIN)
                s_receive (self, &self->clients [i]);
    }
    if (rc == 0)
        s_print_summary (self, (zclock_mono () - start) / 1000.0);
    if (self->record && (fclose (self->record) != 0 || self->record_failed)) {
        fprintf (stderr, "bookstore-load: could not write all of %s\n", record);
        rc = EXIT_RECORD;
    }
    if (rc == 0 && self->gave_up)
        rc = EXIT_GAVE_UP;
    for (int i = 0; i < self->client_count; i++) {
        bs_msg_destroy (&self->clients [i].request);
        free (self->clients [i].body);
        zsock_destroy (&self->clients [i].sock);
        bs_endpoints_destroy (&self->clients [i].endpoints);
    }
    for (int i = 0; i < self->topic_count; i++)
        free (self->topics [i]);
    bs_histogram_destroy (&self->latency);
    free (self->clients);
    free (self->poll);
    free (self);
    bs_settings_destroy (&settings);
    return rc;
}
