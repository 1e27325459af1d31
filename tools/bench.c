/*  bookstore-bench - drives the store with a workload and measures
 *  throughput and latency
 *
 *  Closed loop (--clients N): N logical clients, each with one operation
 *  outstanding, start the next as soon as the last is answered.  Open loop
 *  (--rate R): operations start on a fixed schedule whatever the replies do,
 *  and latency counts from the scheduled start, so a stalled store shows in
 *  the percentiles instead of silently slowing the schedule down.
 *
 *  The clients share a few DEALER sockets in one thread with many requests
 *  outstanding on each.  Every request body is encoded once by the codec
 *  (one template per kind of request); sending only patches the rid, the
 *  item and the like in place.  The rid names the client and its request,
 *  so a reply finds its client by an array index.  Latencies go into a
 *  log-linear histogram.
 *
 *  --endpoint may list several brokers: the bench starts
 *  with the one that answers its status request, and a socket whose broker
 *  says "not_active" or leaves a request unanswered moves to the next one,
 *  sending what it had outstanding again with the same rids.
 *
 *  Exit codes: 0 done, 1 the store refused the preparation (an item of
 *  --items does not exist), 2 usage error, 3 the cluster is unreachable or
 *  stopped answering, 130 interrupted (what was measured is still printed).
 */
#include "bench/bench_pingpong.h"
#include "bench/bench_settings.h"
#include "bench/bench_tmpl.h"
#include "bs_alloc.h"
#include "bs_client.h"
#include "bs_endpoints.h"
#include "bs_failover.h"
#include "bs_histogram.h"
#include "bs_mdp.h"
#include "bs_msg.h"
#include "bs_settings.h"

#include <czmq.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define EXIT_REFUSED     1
#define EXIT_USAGE       2
#define EXIT_UNREACHABLE 3
#define EXIT_INTERRUPTED 130

//  The bench's books start with half the largest stock the store accepts,
//  so buys never run out and restocks (write-mix) never reach the cap: at
//  the cap itself, a restock before any buy of its item was refused
#define HUGE_STOCK      INT64_C (500000000)
//  Before a run that buys, items below this stock get RESTOCK_COUNT copies
#define RESTOCK_BELOW   INT64_C (1000000)
#define RESTOCK_COUNT   INT64_C (1000000)
//  How many items are looked up before a run (existence, stock, topics)
#define CHECK_MAX       10000
//  Requests outstanding while preparing
#define PREP_WINDOW     500
//  Attempts of one preparation request before giving up
#define PREP_ATTEMPTS   6
//  Latencies are recorded in nanoseconds, up to an hour, to 3 figures
#define HIGHEST_NS      (INT64_C (3600) * 1000000000)
#define NS_PER_S        INT64_C (1000000000)

//  What one request asks: its template and the values to patch in
typedef struct {
    tmpl_t *tmpl;
    int64_t ints [INT_FIELDS];
    int64_t topic;                  //  bench topic number, when patched
} req_t;

typedef enum {
    RES_OK, RES_OUT_OF_STOCK, RES_UNAVAILABLE, RES_EXISTS, RES_UNKNOWN_ITEM, RES_NOT_ACTIVE, RES_ERROR
} result_t;

//  One logical client
typedef struct {
    uint32_t seq;               //  in the rid; a new number for every request
    bool busy;
    bool waiting;               //  preparation: sent again at retry_at
    int step;                   //  mixed: 0 search, 1 lookup, 2 buy
    int sock;
    int attempts;               //  preparation: sends of this request
    int64_t start;              //  ns: the operation began (or was scheduled)
    int64_t sent;               //  ns: this request was sent
    int64_t retry_at;
    req_t req;
} slot_t;

//  Preparation jobs: many independent requests, each retried with its rid
//  until it has a definite answer
typedef enum { JOB_ADD, JOB_LOOKUP, JOB_RESTOCK } job_t;

typedef struct {
    bench_settings_t cfg;       //  what the bench was asked to do
    uint64_t rng;

    //  Sockets
    zsock_t *socks [BENCH_MAX_SOCKETS];
    bs_endpoints_t *endpoints [BENCH_MAX_SOCKETS];    //  each socket's broker in use
    bs_failover_t failover [BENCH_MAX_SOCKETS];   //  "not_active" answers in a row
    int64_t resume_at [BENCH_MAX_SOCKETS];    //  ns: resend after a pause (0: none)
    size_t first_broker;            //  the broker that answered the status
    void *handles [BENCH_MAX_SOCKETS];
    struct pollfd fds [BENCH_MAX_SOCKETS];
    int sock_count;
    zmq_msg_t frames [5];       //  reused for every reply
    pid_t server;               //  pingpong: the echo process

    //  Templates
    tmpl_t lookup, search, buy, restock, set_price, add_book;
    tmpl_t *search_topics;      //  one per topic of topics
    uint8_t run_id [BS_RID_SIZE];   //  random: a key, and two bytes of every rid
    uint64_t key;
    uint64_t inverse1, inverse2;

    //  Clients
    slot_t *slots;
    int slot_count;
    int *idle;                  //  open loop: stack of idle clients
    int idle_count;
    int busy_count;

    //  The run
    bool batch;                 //  preparation job rather than a timed run
    job_t job;
    int window;                 //  job requests outstanding
    int64_t job_total, job_next, job_done;
    int64_t *job_items;
    int64_t t0, measure_start, measure_end;
    int64_t next_send;          //  open loop: the next scheduled start
    int64_t scheduled;          //  open loop: starts issued
    bool stopping;

    //  Results
    bs_histogram_t *hist;       //  operations measured
    bs_histogram_t *tick;       //  operations in the current second
    int64_t tick_ops;
    int64_t ops, errors, timeouts, out_of_stock, unmatched, late, failovers;
    int64_t added, existing, missing, restock_needed;
    int64_t first_missing;
    char first_error [300];
    int64_t lowest_stock;
    char *found_topics [BENCH_MAX_TOPICS];
    size_t found_topic_count;
} bench_t;

static volatile sig_atomic_t s_interrupted;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_interrupted = 1;
}

static int64_t
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

//  xorshift64*: cheap and good enough to pick items
static uint64_t
s_random (bench_t *self)
{
    self->rng ^= self->rng >> 12;
    self->rng ^= self->rng << 25;
    self->rng ^= self->rng >> 27;
    return self->rng * UINT64_C (2685821657736338717);
}

//  A keyed bijection of 64 bits.  The first 10 bytes of a rid name the order
//  a buy makes, so they must differ from one request to the next and from
//  one run to the next: the client index and sequence number go through
//  this mix, which the reply's rid is taken back through.
//  A rid is time (BS_RID_TIME_SIZE bytes), this run's mark, and the mixed
//  request name in the last 8 bytes
#define RUN_MARK_SIZE (8 - BS_RID_TIME_SIZE)
#define MIX1 UINT64_C (0xbf58476d1ce4e5b9)
#define MIX2 UINT64_C (0x94d049bb133111eb)

static uint64_t
s_inverse (uint64_t odd)
{
    uint64_t x = odd;           //  Newton's method: correct bits double each step
    for (int i = 0; i < 5; i++)
        x *= 2 - odd * x;
    return x;
}

static uint64_t
s_mix (const bench_t *self, uint64_t x)
{
    x ^= self->key;
    x *= MIX1;
    x ^= x >> 31;
    x *= MIX2;
    return x ^ (x >> 29);
}

static uint64_t
s_unmix (const bench_t *self, uint64_t x)
{
    x ^= (x >> 29) ^ (x >> 58);
    x *= self->inverse2;
    x ^= (x >> 31) ^ (x >> 62);
    x *= self->inverse1;
    return x ^ self->key;
}

static void
s_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p [i] = (uint8_t) (v >> (56 - 8 * i));
}

static uint64_t
s_get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p [i];
    return v;
}

static void
s_put32 (uint8_t *p, uint32_t v)
{
    p [0] = (uint8_t) (v >> 24);
    p [1] = (uint8_t) (v >> 16);
    p [2] = (uint8_t) (v >> 8);
    p [3] = (uint8_t) v;
}

//  Reports a failure: a sentence on stderr and, with --json, one object
static int
s_fail (bench_t *self, int code, const char *error, const char *fmt, ...)
{
    char message [400];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);
    fprintf (stderr, "bookstore-bench: %s\n", message);
    if (self && self->cfg.json) {
        bs_msg_t *msg = bs_msg_new ();
        bs_msg_set_int (msg, BS_FIELD_ok, 0);
        bs_msg_set_str (msg, BS_FIELD_error, error);
        bs_msg_set_str (msg, BS_FIELD_message, message);
        char *json = bs_msg_to_json (msg);
        printf ("%s\n", json);
        free (json);
        bs_msg_destroy (&msg);
    }
    return code;
}

//  --------------------------------------------------------------------------
//  Sending and receiving

//  Patches the request into its template and sends it.  A full queue leaves
//  the request unsent: it times out like a lost one.
static void
s_send (bench_t *self, slot_t *slot, int64_t now)
{
    req_t *req = &slot->req;
    tmpl_t *t = req->tmpl;
    uint8_t *rid = t->body + t->rid_at;
    //  Time first like every generated rid (the tables keyed by rid grow at
    //  one end), then this run's mark, then which request this is, mixed
    bs_rid_put_time (rid);
    memcpy (rid + BS_RID_TIME_SIZE, self->run_id + BS_RID_TIME_SIZE, RUN_MARK_SIZE);
    s_put64 (rid + 8, s_mix (self, (uint64_t) (slot - self->slots) << 32 | slot->seq));
    for (int f = 0; f < INT_FIELDS; f++)
        if (t->int_at [f])
            s_put32 (t->body + t->int_at [f], (uint32_t) req->ints [f]);
    char text [32];
    if (t->topic_at) {
        bench_topic (text, sizeof text, req->topic);
        memcpy (t->body + t->topic_at, text, t->topic_len);
    }
    if (t->title_at) {
        bench_title (text, sizeof text, req->ints [INT_ITEM]);
        memcpy (t->body + t->title_at, text, t->title_len);
    }
    void *sock = self->handles [slot->sock];
    slot->sent = now;
    if (zmq_send (sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    //  Once the first frame is queued, the rest of the message always is
    zmq_send (sock, BS_MDPC, strlen (BS_MDPC), ZMQ_SNDMORE);
    zmq_send (sock, t->service, strlen (t->service), ZMQ_SNDMORE);
    zmq_send (sock, t->body, t->size, 0);
}

//  Keeps the first error reply's code and sentence, to show with the counts
static void
s_note_error (bench_t *self, const char *what, const uint8_t *data, size_t size)
{
    if (*self->first_error)
        return;
    const uint8_t *error = NULL, *message = NULL;
    size_t error_size = 0, message_size = 0;
    bs_peek_bytes (data, size, BS_FIELD_error, &error, &error_size);
    bs_peek_bytes (data, size, BS_FIELD_message, &message, &message_size);
    snprintf (self->first_error, sizeof self->first_error, "%s%.*s: %.*s", what,
              (int) error_size, error? (const char *) error: "?", (int) message_size,
              message? (const char *) message: "");
}

static result_t
s_classify (bench_t *self, const uint8_t *data, size_t size)
{
    if (self->cfg.workload == W_PINGPONG)
        return RES_OK;            //  the echo of the request itself
    int64_t ok;
    if (!bs_peek_int (data, size, BS_FIELD_ok, &ok)) {
        if (!*self->first_error)
            snprintf (self->first_error, sizeof self->first_error, "a reply without 'ok'");
        return RES_ERROR;
    }
    if (ok)
        return RES_OK;
    const uint8_t *error = NULL;
    size_t error_size = 0;
    bs_peek_bytes (data, size, BS_FIELD_error, &error, &error_size);
    const struct { bs_err_t err; result_t result; } known [] = {
        { BS_ERR_out_of_stock, RES_OUT_OF_STOCK }, { BS_ERR_unavailable, RES_UNAVAILABLE },
        { BS_ERR_exists, RES_EXISTS }, { BS_ERR_unknown_item, RES_UNKNOWN_ITEM },
        { BS_ERR_not_active, RES_NOT_ACTIVE }
    };
    for (size_t i = 0; i < sizeof known / sizeof known [0]; i++) {
        const char *name = bs_err_name (known [i].err);
        if (error && error_size == strlen (name) && memcmp (error, name, error_size) == 0)
            return known [i].result;
    }
    s_note_error (self, "", data, size);
    return RES_ERROR;
}

static void s_on_reply (bench_t *self, slot_t *slot, result_t result, const uint8_t *data, size_t size, int64_t now);

//  Sends again every request outstanding on socket i (same rids)
static void
s_resend (bench_t *self, int i, int64_t now)
{
    self->resume_at [i] = 0;
    for (int k = 0; k < self->slot_count; k++) {
        slot_t *slot = &self->slots [k];
        if (slot->busy && slot->sock == i && !(self->batch && slot->waiting))
            s_send (self, slot, now);
    }
}

//  Moves socket i to the next broker of the list.  What it had outstanding
//  went with the old connection: sent again now, or after a pause when
//  every broker said "not_active" in a row.  False with one broker.
static bool
s_failover (bench_t *self, int i, bool pause, int64_t now)
{
    if (!self->endpoints [i] || bs_endpoints_size (self->endpoints [i]) < 2)
        return false;
    bs_endpoints_switch (self->endpoints [i], self->socks [i]);
    self->failovers++;
    if (pause)
        self->resume_at [i] = now + BS_FAILOVER_PAUSE_MS * INT64_C (1000000);
    else
        s_resend (self, i, now);
    return true;
}

//  Receives one message from the socket.  Returns false when none waits.
static bool
s_recv_one (bench_t *self, void *sock)
{
    int count = 0, more = 1;
    while (more) {
        zmq_msg_t *part = &self->frames [count < 4? count: 4];
        if (zmq_msg_recv (part, sock, count? 0: ZMQ_DONTWAIT) < 0)
            return count > 0;
        more = zmq_msg_more (part);
        count++;
    }
    if (count != 4) {
        self->unmatched++;
        return true;
    }
    const uint8_t *data = zmq_msg_data (&self->frames [3]);
    size_t size = zmq_msg_size (&self->frames [3]);
    const uint8_t *rid;
    size_t rid_size;
    //  A reply without our rid cannot be matched (the broker's own errors
    //  may lack it): its request will time out
    uint64_t name = UINT64_MAX;
    if (bs_peek_bytes (data, size, BS_FIELD_rid, &rid, &rid_size) && rid_size == BS_RID_SIZE
    &&  memcmp (rid + BS_RID_TIME_SIZE, self->run_id + BS_RID_TIME_SIZE, RUN_MARK_SIZE) == 0)
        name = s_unmix (self, s_get64 (rid + 8));
    if ((name >> 32) >= (uint64_t) self->slot_count) {
        self->unmatched++;
        if (self->cfg.workload != W_PINGPONG)
            s_note_error (self, "a reply without its request id: ", data, size);
        return true;
    }
    slot_t *slot = &self->slots [name >> 32];
    if (!slot->busy || slot->seq != (uint32_t) name) {
        self->late++;           //  answered after it timed out
        return true;
    }
    int64_t now = s_now ();
    result_t result = s_classify (self, data, size);
    int i = slot->sock;
    if (result == RES_NOT_ACTIVE) {
        //  A standby broker: not an answer of the store
        bool round = !self->endpoints [i]
                  || bs_failover_not_active (&self->failover [i], bs_endpoints_size (self->endpoints [i]))
                     == BS_FAILOVER_AFTER_PAUSE;
        if (s_failover (self, i, round, now))
            return true;
        s_note_error (self, "", data, size);
        result = RES_ERROR;         //  one broker, and it is the backup
    }
    bs_failover_reset (&self->failover [i]);
    s_on_reply (self, slot, result, data, size, now);
    return true;
}

//  Waits until a socket may have input or the time comes.  ZMQ_FD only
//  signals changes, so it is waited on only once ZMQ_EVENTS shows no input.
static void
s_wait (bench_t *self, int64_t until)
{
    for (int i = 0; i < self->sock_count; i++) {
        int events = 0;
        size_t len = sizeof events;
        zmq_getsockopt (self->handles [i], ZMQ_EVENTS, &events, &len);
        if (events & ZMQ_POLLIN)
            return;
    }
    int64_t wait = until - s_now ();
    if (wait <= 0)
        return;
    struct timespec ts = { (time_t) (wait / NS_PER_S), (long) (wait % NS_PER_S) };
    ppoll (self->fds, (nfds_t) self->sock_count, &ts, NULL);
}

//  --------------------------------------------------------------------------
//  Timed runs

static bool
s_in_window (bench_t *self, int64_t start)
{
    return start >= self->measure_start && start < self->measure_end;
}

//  Fills the slot's request for the current step of its operation
static void
s_choose_step (bench_t *self, slot_t *slot)
{
    req_t *req = &slot->req;
    int64_t item = req->ints [INT_ITEM];
    if (slot->step == 0) {
        if (self->cfg.topics)
            req->tmpl = &self->search_topics [s_random (self) % self->cfg.topic_count];
        else {
            req->tmpl = &self->search;
            req->topic = bench_topic_of (item);
        }
    }
    else
        req->tmpl = slot->step == 1? &self->lookup: &self->buy;
}

//  Starts a new operation on the slot
static void
s_begin (bench_t *self, slot_t *slot, int64_t start, int64_t now)
{
    req_t *req = &slot->req;
    uint64_t r = s_random (self);
    int64_t item = self->cfg.items [r % self->cfg.item_count];
    req->ints [INT_ITEM] = item;
    slot->step = 0;
    switch (self->cfg.workload) {
        case W_PINGPONG:
        case W_LOOKUP_COLD:
            req->tmpl = &self->lookup;
            break;
        case W_LOOKUP_HOT:
            req->ints [INT_ITEM] = self->cfg.items [r % self->cfg.hot];
            req->tmpl = &self->lookup;
            break;
        case W_SEARCH:
            s_choose_step (self, slot);
            if (!self->cfg.topics)
                req->topic = (int64_t) (r % (uint64_t) ((self->cfg.catalog_size + BENCH_TOPIC_BOOKS - 1) / BENCH_TOPIC_BOOKS));
            break;
        case W_BUY:
            req->tmpl = &self->buy;
            break;
        case W_MIXED:
            s_choose_step (self, slot);
            break;
        case W_WRITE_MIX: {
            uint64_t pick = s_random (self) % 10;
            if (pick < 6)
                req->tmpl = &self->buy;
            else
            if (pick < 8) {
                req->tmpl = &self->restock;
                req->ints [INT_COUNT] = 1;
            }
            else {
                req->tmpl = &self->set_price;
                req->ints [INT_COST] = 1 + (int64_t) (s_random (self) % 100);
            }
            break;
        }
        default:
            break;
    }
    slot->seq++;
    slot->busy = true;
    slot->start = start;
    self->busy_count++;
    s_send (self, slot, now);
}

//  An operation ended (answered, refused or timed out)
static void
s_finish (bench_t *self, slot_t *slot, result_t result, bool timed_out, int64_t now)
{
    if (s_in_window (self, slot->start)) {
        if (timed_out || (result != RES_OK && result != RES_OUT_OF_STOCK)) {
            self->errors++;
            self->timeouts += timed_out;
        }
        else {
            self->ops++;
            self->out_of_stock += result == RES_OUT_OF_STOCK;
            bs_histogram_record (self->hist, now - slot->start);
        }
    }
    if (!timed_out && (result == RES_OK || result == RES_OUT_OF_STOCK)) {
        self->tick_ops++;
        bs_histogram_record (self->tick, now - slot->start);
    }
    slot->busy = false;
    slot->seq++;                //  a late reply to it is now recognised
    self->busy_count--;
    if (self->cfg.rate > 0)
        self->idle [self->idle_count++] = (int) (slot - self->slots);
    else
    if (!self->stopping)
        s_begin (self, slot, now, now);
}

//  --------------------------------------------------------------------------
//  Preparation jobs

static void
s_remember_topic (bench_t *self, const uint8_t *topic, size_t size)
{
    for (size_t i = 0; i < self->found_topic_count; i++)
        if (strlen (self->found_topics [i]) == size && memcmp (self->found_topics [i], topic, size) == 0)
            return;
    if (self->found_topic_count < BENCH_MAX_TOPICS)
        self->found_topics [self->found_topic_count++] = strndup ((const char *) topic, size);
}

//  Gives the slot the job's next request; false when none is left
static bool
s_job_begin (bench_t *self, slot_t *slot, int64_t now)
{
    if (self->job_next >= self->job_total || self->stopping)
        return false;
    int64_t k = self->job_next++;
    req_t *req = &slot->req;
    slot->attempts = 1;
    slot->waiting = false;
    switch (self->job) {
        case JOB_ADD:
            req->tmpl = &self->add_book;
            req->ints [INT_ITEM] = BENCH_BASE + 1 + k;
            req->ints [INT_COST] = 1 + k % 100;
            req->ints [INT_STOCK] = HUGE_STOCK;
            req->topic = k / BENCH_TOPIC_BOOKS;
            break;
        case JOB_LOOKUP:
            req->tmpl = &self->lookup;
            req->ints [INT_ITEM] = self->job_items [k];
            break;
        case JOB_RESTOCK:
            req->tmpl = &self->restock;
            req->ints [INT_ITEM] = self->job_items [k];
            req->ints [INT_COUNT] = RESTOCK_COUNT;
            break;
    }
    slot->seq++;
    slot->busy = true;
    slot->start = now;
    self->busy_count++;
    s_send (self, slot, now);
    return true;
}

static void
s_job_reply (bench_t *self, slot_t *slot, result_t result, const uint8_t *data, size_t size, int64_t now)
{
    if (result == RES_UNAVAILABLE) {
        //  A definite "not now": ask again shortly with the same rid
        slot->waiting = true;
        slot->retry_at = now + 100 * INT64_C (1000000);
        return;
    }
    int64_t item = slot->req.ints [INT_ITEM];
    if (self->job == JOB_ADD && (result == RES_OK || result == RES_EXISTS)) {
        self->added += result == RES_OK;
        self->existing += result == RES_EXISTS;
        self->ops++;
        bs_histogram_record (self->hist, now - slot->start);
    }
    else
    if (self->job == JOB_LOOKUP && result == RES_OK) {
        int64_t stock = 0;
        const uint8_t *topic;
        size_t topic_size;
        if (bs_peek_int (data, size, BS_FIELD_stock, &stock) && stock < self->lowest_stock)
            self->lowest_stock = stock;
        if (stock < RESTOCK_BELOW)
            self->job_items [self->restock_needed++] = item;  //  reuses the slots already read
        if (bs_peek_bytes (data, size, BS_FIELD_topic, &topic, &topic_size))
            s_remember_topic (self, topic, topic_size);
    }
    else
    if (self->job == JOB_LOOKUP && result == RES_UNKNOWN_ITEM) {
        if (!self->missing++)
            self->first_missing = item;
    }
    else
    if (self->job == JOB_RESTOCK && result == RES_OK)
        ;
    else
        self->errors++;
    self->tick_ops++;
    slot->busy = false;
    self->busy_count--;
    self->job_done++;
    s_job_begin (self, slot, now);
}

static void
s_on_reply (bench_t *self, slot_t *slot, result_t result, const uint8_t *data, size_t size, int64_t now)
{
    if (self->batch) {
        s_job_reply (self, slot, result, data, size, now);
        return;
    }
    if (result == RES_OK && self->cfg.workload == W_MIXED && slot->step < 2) {
        slot->step++;
        s_choose_step (self, slot);
        slot->seq++;
        s_send (self, slot, now);
        return;
    }
    s_finish (self, slot, result, false, now);
}

//  --------------------------------------------------------------------------
//  The loop

static void
s_progress (bench_t *self, int64_t now)
{
    double elapsed = (double) (now - self->t0) / NS_PER_S;
    if (self->batch)
        fprintf (stderr, "bookstore-bench: %s  %lld/%lld  %lld/s\n",
                 self->job == JOB_ADD? "adding books": self->job == JOB_LOOKUP? "looking up items": "restocking",
                 (long long) self->job_done, (long long) self->job_total, (long long) self->tick_ops);
    else
        fprintf (stderr, "bookstore-bench: %s  %5.1f s%s  %lld ops/s  p50 %.0f us  p99 %.0f us  errors %lld\n",
                 bench_workload_name (self->cfg.workload), elapsed, now < self->measure_start? " (warm-up)": "",
                 (long long) self->tick_ops, bs_histogram_percentile (self->tick, 50) / 1e3,
                 bs_histogram_percentile (self->tick, 99) / 1e3, (long long) self->errors);
    self->tick_ops = 0;
    bs_histogram_reset (self->tick);
}

//  Looks for requests that waited too long.  Returns false when a
//  preparation request ran out of attempts.
static bool
s_check_timeouts (bench_t *self, int64_t now)
{
    int64_t timeout = (int64_t) self->cfg.timeout_ms * 1000000;
    for (int i = 0; i < self->sock_count; i++)
        if (self->resume_at [i] && now >= self->resume_at [i])
            s_resend (self, i, now);
    for (int i = 0; i < self->slot_count; i++) {
        slot_t *slot = &self->slots [i];
        if (!slot->busy || self->resume_at [slot->sock])
            continue;
        //  A request unanswered in time moves its socket to the next broker
        //  (which sends it again, with whatever else the socket had out, so
        //  the others are not late in this pass)
        if (self->batch) {
            if (slot->waiting? now < slot->retry_at: now - slot->sent < timeout)
                continue;
            if (!slot->waiting && ++slot->attempts > PREP_ATTEMPTS)
                return false;
            bool silent = !slot->waiting;
            slot->waiting = false;
            if (!silent || !s_failover (self, slot->sock, false, now))
                s_send (self, slot, now);   //  same rid: takes effect once
        }
        else
        if (now - slot->sent >= timeout) {
            int sock = slot->sock;
            s_finish (self, slot, RES_ERROR, true, now);
            s_failover (self, sock, false, now);
        }
    }
    return true;
}

//  Runs until the job is done or the measurement is over and every
//  operation in flight ended.  Returns an exit code.
static int
s_loop (bench_t *self)
{
    int64_t now = s_now ();
    int64_t next_check = now + 10000000, next_tick = now + NS_PER_S;
    self->t0 = now;
    self->tick_ops = 0;
    bs_histogram_reset (self->tick);
    self->stopping = false;
    if (self->batch) {
        for (int i = 0; i < self->window && i < self->slot_count; i++)
            if (!s_job_begin (self, &self->slots [i], now))
                break;
    }
    else {
        self->measure_start = now + (int64_t) (self->cfg.warmup * NS_PER_S);
        self->measure_end = self->measure_start + (int64_t) (self->cfg.seconds * NS_PER_S);
        self->next_send = now;
        if (self->cfg.rate > 0) {
            self->idle_count = 0;
            for (int i = self->cfg.clients - 1; i >= 0; i--)
                self->idle [self->idle_count++] = i;
        }
        else
            for (int i = 0; i < self->cfg.clients; i++)
                s_begin (self, &self->slots [i], now, now);
    }
    int code = 0;
    while (true) {
        //  Replies first: in closed loop each one sends the next request
        for (int i = 0; i < self->sock_count; i++)
            for (int n = 0; n < 4096 && s_recv_one (self, self->handles [i]); n++)
                ;
        now = s_now ();
        if (s_interrupted && !self->stopping) {
            self->stopping = true;
            if (!self->batch && now < self->measure_end)
                self->measure_end = now;
            code = EXIT_INTERRUPTED;
        }
        if (!self->batch && !self->stopping && now >= self->measure_end)
            self->stopping = true;
        //  Open loop: start every operation whose time has come
        if (self->cfg.rate > 0 && !self->stopping) {
            while (self->next_send <= now && self->idle_count > 0) {
                slot_t *slot = &self->slots [self->idle [--self->idle_count]];
                s_begin (self, slot, self->next_send, now);
                self->scheduled++;
                self->next_send = self->t0 + (int64_t) ((double) self->scheduled * NS_PER_S / self->cfg.rate);
            }
        }
        if (now >= next_check) {
            if (!s_check_timeouts (self, now))
                return EXIT_UNREACHABLE;
            next_check = now + 10000000;
        }
        if (now >= next_tick) {
            if (self->cfg.progress)
                s_progress (self, now);
            next_tick += NS_PER_S;
        }
        if (self->batch? self->job_done == self->job_total || (self->stopping && self->busy_count == 0)
                       : self->stopping && self->busy_count == 0)
            break;
        if (s_interrupted && self->batch)
            break;
        int64_t until = next_check < next_tick? next_check: next_tick;
        if (self->cfg.rate > 0 && !self->stopping && self->idle_count > 0 && self->next_send < until)
            until = self->next_send;
        if (!self->stopping && !self->batch && self->measure_end < until)
            until = self->measure_end;
        s_wait (self, until);
    }
    return code;
}

//  Runs a job of count requests with window of them outstanding.  Returns
//  an exit code: EXIT_UNREACHABLE (said here) or EXIT_INTERRUPTED.
static int
s_job (bench_t *self, job_t job, int64_t count, int window)
{
    self->batch = true;
    self->job = job;
    self->window = window;
    self->job_total = count;
    self->job_next = self->job_done = 0;
    self->ops = self->errors = 0;
    bs_histogram_reset (self->hist);
    int code = s_loop (self);
    self->batch = false;
    if (code == EXIT_UNREACHABLE)
        return s_fail (self, code, "timeout", "the cluster stopped answering while %s",
                       job == JOB_ADD? "adding books": job == JOB_LOOKUP? "looking up items": "restocking");
    return code;
}

//  A preparation job: an interruption ends the program
static int
s_prep_job (bench_t *self, job_t job, int64_t count)
{
    int code = s_job (self, job, count, PREP_WINDOW);
    if (code == EXIT_INTERRUPTED)
        return s_fail (self, code, "interrupted", "interrupted while preparing");
    return code;
}

//  --------------------------------------------------------------------------
//  Setup

static bool
s_make_search_topics (bench_t *self, char *reason, size_t size)
{
    self->search_topics = bs_alloc (self->cfg.topic_count, sizeof (tmpl_t));
    for (size_t i = 0; i < self->cfg.topic_count; i++)
        if (!bench_tmpl_init (&self->search_topics [i], BS_OP_search, 0, self->cfg.topics [i], NULL, false, reason, size)) {
            char why [300];
            snprintf (why, sizeof why, "%s", reason);
            snprintf (reason, size, "topic '%.40s': %.200s", self->cfg.topics [i], why);
            return false;
        }
    return true;
}

static bool
s_make_templates (bench_t *self, char *reason, size_t size)
{
    char topic [32], title [32];
    bench_topic (topic, sizeof topic, 0);
    bench_title (title, sizeof title, BENCH_BASE + 1);
    const unsigned item = 1u << INT_ITEM;
    if (!bench_tmpl_init (&self->lookup, BS_OP_lookup, item, NULL, NULL, false, reason, size)
    ||  !bench_tmpl_init (&self->search, BS_OP_search, 0, topic, NULL, true, reason, size)
    ||  !bench_tmpl_init (&self->buy, BS_OP_buy, item, NULL, NULL, false, reason, size)
    ||  !bench_tmpl_init (&self->restock, BS_OP_restock, item | 1u << INT_COUNT, NULL, NULL, false, reason, size)
    ||  !bench_tmpl_init (&self->set_price, BS_OP_set_price, item | 1u << INT_COST, NULL, NULL, false, reason, size)
    ||  !bench_tmpl_init (&self->add_book, BS_OP_add_book, item | 1u << INT_COST | 1u << INT_STOCK,
                      topic, title, true, reason, size))
        return false;
    if (self->cfg.topics)
        return s_make_search_topics (self, reason, size);
    return true;
}

static void
s_open_sockets (bench_t *self)
{
    for (int i = 0; i < self->sock_count; i++) {
        self->socks [i] = zsock_new (ZMQ_DEALER);
        zsock_set_linger (self->socks [i], 0);
        zsock_set_sndhwm (self->socks [i], 100000);
        zsock_set_rcvhwm (self->socks [i], 100000);
        self->handles [i] = zsock_resolve (self->socks [i]);
        self->fds [i] = (struct pollfd) { zsock_fd (self->socks [i]), POLLIN, 0 };
    }
    for (int i = 0; i < 5; i++)
        zmq_msg_init (&self->frames [i]);
}

//  Asks the broker for its status: is the cluster there, with the services
//  the workload needs?  Returns an exit code.
static int
s_check_cluster (bench_t *self)
{
    bs_client_t *client = bs_client_new (self->cfg.endpoint);
    if (!client)
        return s_fail (self, EXIT_USAGE, "usage", "'%s' is not a valid ZeroMQ endpoint or comma-separated list of them",
                       self->cfg.endpoint);
    bs_client_set_timeout (client, 2000);
    bs_client_set_attempts (client, 2);
    bs_msg_t *request = bs_msg_new_request (BS_OP_status);
    bs_msg_t *reply = bs_client_call (client, BS_SERVICE_BROKER, request);
    bs_msg_destroy (&request);
    //  The sockets start with the broker that answered: of several,
    //  the active one
    for (size_t i = 0; i < bs_client_endpoint_count (client); i++)
        if (bs_endpoints_at (self->endpoints [0], i)
        &&  strcmp (bs_endpoints_at (self->endpoints [0], i), bs_client_endpoint (client)) == 0)
            self->first_broker = i;
    bs_client_destroy (&client);
    if (!reply)
        return s_fail (self, EXIT_UNREACHABLE, "timeout",
                       "the cluster at %s did not answer; is the broker running there?", self->cfg.endpoint);
    if (bs_failover_is_not_active (reply)) {
        bs_msg_destroy (&reply);
        return s_fail (self, EXIT_UNREACHABLE, "not_active", "no broker at %s is active", self->cfg.endpoint);
    }
    int catalogs = 0, orders = 0;
    for (size_t i = 0; i < bs_msg_count (reply, BS_FIELD_nodes); i++) {
        bs_msg_t *node = bs_msg_at (reply, BS_FIELD_nodes, i);
        if (!bs_msg_int (node, BS_FIELD_alive))
            continue;
        catalogs += strcmp (bs_msg_str (node, BS_FIELD_service), "catalog") == 0;
        orders += strcmp (bs_msg_str (node, BS_FIELD_service), "order") == 0;
    }
    bs_msg_destroy (&reply);
    bool buys = self->cfg.workload == W_BUY || self->cfg.workload == W_MIXED || self->cfg.workload == W_WRITE_MIX;
    if (catalogs == 0)
        return s_fail (self, EXIT_UNREACHABLE, "unavailable", "no catalog node is alive at %s", self->cfg.endpoint);
    if (buys && orders == 0)
        return s_fail (self, EXIT_UNREACHABLE, "unavailable", "no order node is alive at %s", self->cfg.endpoint);
    return 0;
}

//  Makes sure the items exist (adding the bench's books when missing), that
//  a workload that buys will not run out, and knows the topics to search.
//  Returns an exit code.
static int
s_prepare (bench_t *self)
{
    int code;
    if (self->cfg.bench_books) {
        //  Are the first and last book there?  Then the catalog was loaded.
        self->job_items = bs_alloc (2, sizeof (int64_t));
        self->job_items [0] = BENCH_BASE + 1;
        self->job_items [1] = BENCH_BASE + self->cfg.catalog_size;
        self->missing = 0;
        if ((code = s_prep_job (self, JOB_LOOKUP, 2)))
            return code;
        free (self->job_items);
        self->job_items = NULL;
        if (self->missing) {
            if (self->cfg.progress)
                fprintf (stderr, "bookstore-bench: adding the bench's %lld books\n", (long long) self->cfg.catalog_size);
            if ((code = s_prep_job (self, JOB_ADD, self->cfg.catalog_size)))
                return code;
            if (self->errors)
                return s_fail (self, EXIT_REFUSED, "refused", "the store refused %lld of the bench's books (%s)",
                               (long long) self->errors, self->first_error);
        }
    }
    bool buys = self->cfg.workload == W_BUY || self->cfg.workload == W_MIXED || self->cfg.workload == W_WRITE_MIX;
    bool need_topics = !self->cfg.topics && !self->cfg.bench_books
                    && (self->cfg.workload == W_SEARCH || self->cfg.workload == W_MIXED);
    if (!self->cfg.bench_books || buys) {
        //  Look the items up: do they exist, how many copies, which topics
        size_t count = self->cfg.item_count < CHECK_MAX? self->cfg.item_count: CHECK_MAX;
        self->job_items = bs_alloc (count, sizeof (int64_t));
        memcpy (self->job_items, self->cfg.items, count * sizeof (int64_t));
        self->missing = self->restock_needed = 0;
        self->lowest_stock = INT64_MAX;
        if ((code = s_prep_job (self, JOB_LOOKUP, (int64_t) count)))
            return code;
        if (self->missing)
            return s_fail (self, EXIT_REFUSED, "unknown_item", "item %lld%s is not in the catalog",
                           (long long) self->first_missing,
                           self->missing > 1? " (and others of --items)": "");
        if (self->errors)
            return s_fail (self, EXIT_REFUSED, "refused", "looking up the items failed: %s", self->first_error);
        if (buys && self->restock_needed) {
            if ((code = s_prep_job (self, JOB_RESTOCK, self->restock_needed)))
                return code;
            if (self->errors)
                return s_fail (self, EXIT_REFUSED, "refused", "restocking the items failed: %s", self->first_error);
        }
        free (self->job_items);
        self->job_items = NULL;
    }
    if (need_topics) {
        if (!self->found_topic_count)
            return s_fail (self, EXIT_USAGE, "usage", "no topics to search: give --topics");
        self->cfg.topics = bs_alloc (BENCH_MAX_TOPICS, sizeof (char *));
        for (size_t i = 0; i < self->found_topic_count; i++)
            self->cfg.topics [self->cfg.topic_count++] = bs_strdup (self->found_topics [i]);
        char reason [300];
        if (!s_make_search_topics (self, reason, sizeof reason))
            return s_fail (self, EXIT_USAGE, "usage", "%s", reason);
    }
    return 0;
}

//  Binds the sockets, starts the echo process and waits until it answers
static int
s_start_pingpong (bench_t *self)
{
    const char *error;
    char reason [300];
    if (!bench_pingpong_start (self->socks, self->sock_count, &s_interrupted, &self->server, &error, reason,
                               sizeof reason))
        return s_fail (self, EXIT_UNREACHABLE, error, "%s", reason);
    return 0;
}

//  --------------------------------------------------------------------------
//  Results

static void
s_report (bench_t *self, double seconds)
{
    const char *name = bench_workload_name (self->cfg.workload);
    double ops_per_s = seconds > 0? (double) self->ops / seconds: 0;
    double p50 = bs_histogram_percentile (self->hist, 50) / 1e3;
    double p90 = bs_histogram_percentile (self->hist, 90) / 1e3;
    double p99 = bs_histogram_percentile (self->hist, 99) / 1e3;
    double p999 = bs_histogram_percentile (self->hist, 99.9) / 1e3;
    double max = bs_histogram_max (self->hist) / 1e3;
    double mean = bs_histogram_mean (self->hist) / 1e3;
    if (self->cfg.json) {
        printf ("{\"ok\":true,\"workload\":\"%s\",\"clients\":%d,\"rate\":%.0f,\"seconds\":%.3f,"
                "\"ops\":%lld,\"ops_per_s\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
                "\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"errors\":%lld,\"timeouts\":%lld,"
                "\"out_of_stock\":%lld,\"failovers\":%lld,\"sockets\":%d,\"items\":%zu",
                name, self->cfg.clients, self->cfg.rate, seconds, (long long) self->ops, ops_per_s, p50, p90, p99,
                p999, max, mean, (long long) self->errors, (long long) self->timeouts,
                (long long) self->out_of_stock, (long long) self->failovers, self->sock_count, self->cfg.item_count);
        if (self->cfg.workload == W_LOAD_CATALOG)
            printf (",\"added\":%lld,\"existing\":%lld", (long long) self->added, (long long) self->existing);
        printf ("}\n");
        return;
    }
    if (self->cfg.rate > 0)
        printf ("%s: open loop at %.0f operations/s, at most %d outstanding, %.1f s measured\n",
                name, self->cfg.rate, self->cfg.clients, seconds);
    else
    if (self->cfg.workload == W_LOAD_CATALOG)
        printf ("%s: %lld books, %d requests outstanding, %.1f s\n",
                name, (long long) self->cfg.catalog_size, self->cfg.clients, seconds);
    else
        printf ("%s: %d client(s), %.1f s measured\n", name, self->cfg.clients, seconds);
    if (self->cfg.workload == W_LOAD_CATALOG)
        printf ("  books      %lld added, %lld already there\n", (long long) self->added, (long long) self->existing);
    printf ("  ops        %lld (%.0f/s)\n", (long long) self->ops, ops_per_s);
    printf ("  latency    p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us\n",
            p50, p90, p99, p999, max);
    printf ("  errors     %lld (timeouts %lld)  out of stock %lld\n", (long long) self->errors,
            (long long) self->timeouts, (long long) self->out_of_stock);
    if (*self->first_error && self->errors)
        printf ("  first error: %s\n", self->first_error);
    if (self->failovers)
        printf ("  failovers  %lld (a socket moved to the next broker)\n", (long long) self->failovers);
    if (self->unmatched || self->late)
        printf ("  replies    %lld without a request id of this run, %lld after their request timed out\n",
                (long long) self->unmatched, (long long) self->late);
}

static void
s_destroy (bench_t *self)
{
    bench_pingpong_stop (&self->server);
    for (int i = 0; i < self->sock_count; i++) {
        zsock_destroy (&self->socks [i]);
        bs_endpoints_destroy (&self->endpoints [i]);
    }
    for (int i = 0; i < 5; i++)
        zmq_msg_close (&self->frames [i]);
    tmpl_t *templates [] = { &self->lookup, &self->search, &self->buy, &self->restock, &self->set_price, &self->add_book };
    for (size_t i = 0; i < sizeof templates / sizeof templates [0]; i++)
        bench_tmpl_fini (templates [i]);
    if (self->search_topics)
        for (size_t i = 0; i < self->cfg.topic_count; i++)
            bench_tmpl_fini (&self->search_topics [i]);
    free (self->search_topics);
    for (size_t i = 0; i < self->found_topic_count; i++)
        free (self->found_topics [i]);
    bench_settings_fini (&self->cfg);
    free (self->job_items);
    free (self->slots);
    free (self->idle);
    bs_histogram_destroy (&self->hist);
    bs_histogram_destroy (&self->tick);
}

static int
s_run (bench_t *self, bs_settings_t *settings)
{
    char reason [300];
    if (!bench_settings_read (&self->cfg, settings, reason, sizeof reason)
    ||  !s_make_templates (self, reason, sizeof reason))
        return s_fail (self, EXIT_USAGE, "usage", "%s", reason);
    self->rng = self->cfg.rng_seed;
    self->sock_count = self->cfg.sockets;
    //  Each socket keeps its own place in the list of brokers (pingpong
    //  talks to no broker; the list was checked)
    for (int i = 0; i < self->sock_count && self->cfg.workload != W_PINGPONG; i++)
        self->endpoints [i] = bs_endpoints_new (self->cfg.endpoint);
    //  Open loop sends on a schedule: wake up on time, not up to the
    //  kernel's default 50 us late
    if (self->cfg.rate > 0)
        prctl (PR_SET_TIMERSLACK, 1000UL);
    int code;
    if (self->cfg.workload != W_PINGPONG && (code = s_check_cluster (self)))
        return code;
    bs_rid_generate (self->run_id);
    self->key = s_get64 (self->run_id);
    self->inverse1 = s_inverse (MIX1);
    self->inverse2 = s_inverse (MIX2);
    self->slot_count = self->cfg.clients > PREP_WINDOW? self->cfg.clients: PREP_WINDOW;
    self->slots = bs_alloc ((size_t) self->slot_count, sizeof (slot_t));
    self->idle = bs_alloc ((size_t) self->slot_count, sizeof (int));
    for (int i = 0; i < self->slot_count; i++)
        self->slots [i].sock = i % self->sock_count;
    self->hist = bs_histogram_new (HIGHEST_NS, 3);
    self->tick = bs_histogram_new (HIGHEST_NS, 3);
    s_open_sockets (self);
    if (self->cfg.workload == W_PINGPONG)
        code = s_start_pingpong (self);
    else {
        for (int i = 0; i < self->sock_count; i++) {
            bs_endpoints_select (self->endpoints [i], self->first_broker);
            zsock_connect (self->socks [i], "%s", bs_endpoints_current (self->endpoints [i]));
        }
        if (self->cfg.workload != W_LOAD_CATALOG)
            code = s_prepare (self);
    }
    if (code)
        return code;
    self->ops = self->errors = self->timeouts = self->out_of_stock = self->unmatched = self->late = 0;
    *self->first_error = 0;
    if (self->cfg.workload == W_LOAD_CATALOG) {
        //  Each logical client is one add_book outstanding
        int64_t start = s_now ();
        code = s_job (self, JOB_ADD, self->cfg.catalog_size, self->cfg.clients);
        if (code != EXIT_UNREACHABLE)
            s_report (self, (double) (s_now () - start) / NS_PER_S);
        return code;
    }
    code = s_loop (self);
    int64_t end = self->measure_end;
    double seconds = (double) (end - self->measure_start) / NS_PER_S;
    if (seconds < 0)
        seconds = 0;
    s_report (self, seconds);
    if (code)
        return code;
    if (self->ops == 0 && self->timeouts > 0)
        return s_fail (NULL, EXIT_UNREACHABLE, "timeout", "no request was answered: the cluster stopped answering");
    return 0;
}

int
main (int argc, char **argv)
{
    //  Ctrl-C ends the run early and still prints what was measured
    zsys_handler_set (NULL);
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    bs_settings_t *settings = bs_settings_new ("bench", bench_settings_table, argc, argv);
    if (!settings) {
        fputs (bench_settings_usage, stderr);
        return EXIT_USAGE;
    }
    int rc = 0;
    if (bs_settings_help_shown (settings))
        fputs (bench_settings_usage, stderr);
    else
    if (*bs_settings_get (settings, "pingpong-server"))
        rc = bench_pingpong_serve (bs_settings_get (settings, "pingpong-server"), &s_interrupted)? 0: EXIT_USAGE;
    else {
        bench_t bench;
        memset (&bench, 0, sizeof bench);
        rc = s_run (&bench, settings);
        s_destroy (&bench);
    }
    bs_settings_destroy (&settings);
    return rc;
}
