/*  sim_node - a catalog node in the simulator: the real store, journal,
 *  catalog and replication core; its sockets are simulated links  */
#include "sim_cluster.h"
#include "node_status.h"
#include "bs_alloc.h"
#include "bs_clock.h"
#include "bs_msg.h"

#include <czmq.h>
#include <string.h>

#define BATCH_MAX 64
#define SUBS_MAX 8
#define MAP_SIZE (8u << 20)

typedef struct {
    zmq_msg_t token;
    bs_msg_t *request;
} write_t;

typedef struct {
    char partition [BS_ID_MAX + 1];
    char pub [BS_ENDPOINT_MAX + 1];
    int64_t active_at;          //  a subscription takes a moment to reach the publisher
} sub_t;

struct _sim_node_t {
    int index;
    char id [BS_ID_MAX + 1];
    char dir [256];
    char pub [BS_ENDPOINT_MAX + 1], sync [BS_ENDPOINT_MAX + 1];
    store_t *store;
    journal_t *journal;
    catalog_t *catalog;
    repl_t *repl;
    write_t batch [BATCH_MAX];
    int batch_count;
    bool flush_due;
    sub_t subs [SUBS_MAX];
    int sub_count;
    int64_t wake_at;            //  the loop's next turn (INT64_MAX: none set)
    int64_t next_status, next_trim;
    enum { COMMIT_OK, COMMIT_CRASH, COMMIT_FAIL } commit_fault;     //  armed for the next batch
};

sim_node_t *sim_nodes [SIM_NODES];

enum { IN_REQUEST = SIM_NODE_REQUEST, IN_ASSIGN = SIM_NODE_ASSIGN, IN_SYNC, IN_STREAM, IN_ANSWER };

static void s_loop (sim_node_t *self);

sim_node_t *
sim_node_new (int index, const char *dir)
{
    sim_node_t *self = bs_alloc (1, sizeof (sim_node_t));
    self->index = index;
    snprintf (self->id, sizeof self->id, "%s", sim_proc_name (index));
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    snprintf (self->pub, sizeof self->pub, "sim://%s/pub", self->id);
    snprintf (self->sync, sizeof self->sync, "sim://%s/sync", self->id);
    return self;
}

bool sim_node_up (sim_node_t *self) { return self->repl != NULL; }

bool
sim_node_arm_commit_fault (sim_node_t *self, bool crash)
{
    if (!self->repl || !repl_is_primary (self->repl, CATALOG_PARTITION))
        return false;
    self->commit_fault = crash? COMMIT_CRASH: COMMIT_FAIL;
    sim_trace ("%s's next batch %s after publishing, before its commit", self->id,
               crash? "crashes the process": "fails its commit");
    return true;
}

void sim_node_disarm (sim_node_t *self) { self->commit_fault = COMMIT_OK; }
const char *sim_node_id (sim_node_t *self) { return self->id; }
journal_t *sim_node_journal (sim_node_t *self) { return self->repl? self->journal: NULL; }
catalog_t *sim_node_catalog (sim_node_t *self) { return self->repl? self->catalog: NULL; }
repl_t *sim_node_repl (sim_node_t *self) { return self->repl; }

static sim_node_t *
s_by_endpoint (const char *endpoint, bool pub)
{
    for (int i = 0; i < SIM_NODES; i++)
        if (strcmp (pub? sim_nodes [i]->pub: sim_nodes [i]->sync, endpoint) == 0)
            return sim_nodes [i];
    return NULL;
}

static sim_node_t *
s_by_id (const char *id)
{
    for (int i = 0; i < SIM_NODES; i++)
        if (strcmp (sim_nodes [i]->id, id) == 0)
            return sim_nodes [i];
    return NULL;
}

//  --------------------------------------------------------------------------
//  Inputs: every message for the node lands here, then the loop turns

void
sim_node_on_input (sim_event_t *event)
{
    sim_node_t *self = sim_nodes [event->to];
    if (!self->repl)
        return;
    switch (event->kind) {
        case IN_REQUEST:
            sim_node_request (self, event->number, event->data, event->size);
            break;
        case IN_ASSIGN:
            sim_node_assign (self, event->data, event->size);
            break;
        case IN_SYNC:
            repl_on_request (self->repl, event->text, event->data, event->size, sim_now);
            break;
        case IN_STREAM: {
            //  Heard only while subscribed to that publisher's partition
            const char *pub = sim_nodes [event->from]->pub;
            bool heard = false;
            for (int i = 0; i < self->sub_count; i++)
                if (strcmp (self->subs [i].partition, event->text) == 0 && strcmp (self->subs [i].pub, pub) == 0)
                    heard = true;
            if (heard)
                repl_on_stream (self->repl, event->text, (int) event->number, event->data, event->size, sim_now);
            break;
        }
        case IN_ANSWER:
            repl_on_answer (self->repl, event->text, event->data, event->size, sim_now);
            break;
    }
    s_loop (self);
}

static sim_event_t *
s_input (int kind, const char *text, const void *data, size_t size)
{
    sim_event_t *event = sim_event_new (0, sim_node_on_input);
    event->kind = kind;
    if (text)
        snprintf (event->text, sizeof event->text, "%s", text);
    sim_event_set_data (event, data, size);
    return event;
}

//  --------------------------------------------------------------------------
//  The replication core's I/O

static void
s_send_sync (void *arg, const char *endpoint, const char *server, const void *data, size_t size)
{
    (void) server;
    sim_node_t *self = arg, *peer = s_by_endpoint (endpoint, false);
    if (peer)
        sim_send (self->index, peer->index, SIM_CHANNEL_SYNC, s_input (IN_SYNC, self->id, data, size));
}

static void
s_answer (void *arg, const char *peer_id, const void *data, size_t size)
{
    sim_node_t *self = arg, *peer = s_by_id (peer_id);
    if (peer)
        sim_send (self->index, peer->index, SIM_CHANNEL_SYNC, s_input (IN_ANSWER, self->sync, data, size));
}

static void
s_publish (void *arg, const char *partition, int kind, const void *data, size_t size)
{
    sim_node_t *self = arg;
    for (int i = 0; i < SIM_NODES; i++) {
        sim_node_t *peer = sim_nodes [i];
        if (peer == self || !peer->repl)
            continue;
        for (int k = 0; k < peer->sub_count; k++) {
            sub_t *sub = &peer->subs [k];
            if (strcmp (sub->pub, self->pub) == 0 && strcmp (sub->partition, partition) == 0
            &&  sub->active_at <= sim_now) {
                sim_event_t *event = s_input (IN_STREAM, partition, data, size);
                event->number = kind;
                sim_send (self->index, peer->index, SIM_CHANNEL_STREAM, event);
            }
        }
    }
}

static void
s_subscribe (void *arg, const char *partition, const char *pub, const char *primary)
{
    (void) primary;
    sim_node_t *self = arg;
    if (self->sub_count == SUBS_MAX)
        abort ();
    sub_t *sub = &self->subs [self->sub_count++];
    snprintf (sub->partition, sizeof sub->partition, "%s", partition);
    snprintf (sub->pub, sizeof sub->pub, "%s", pub);
    sub->active_at = sim_now + sim_range (1, 30);
    sim_trace ("%s subscribes to %s at %s", self->id, partition, pub);
}

static void
s_unsubscribe (void *arg, const char *partition, const char *pub)
{
    sim_node_t *self = arg;
    for (int i = 0; i < self->sub_count; i++)
        if (strcmp (self->subs [i].partition, partition) == 0 && strcmp (self->subs [i].pub, pub) == 0) {
            self->subs [i] = self->subs [--self->sub_count];
            break;
        }
}

static void
s_release (void *arg, zmq_msg_t *token, const void *data, size_t size)
{
    sim_node_t *self = arg;
    int64_t number = 0;
    if (zmq_msg_size (token) == sizeof number)
        memcpy (&number, zmq_msg_data (token), sizeof number);
    zmq_msg_close (token);
    sim_broker_reply_from (self->index, number, data, size);
}

//  --------------------------------------------------------------------------
//  Life

void
sim_node_start (sim_node_t *self, bool wipe)
{
    sim_proc_t *proc = &sim_procs [self->index];
    if (wipe) {
        char path [300];
        snprintf (path, sizeof path, "%s/data.mdb", self->dir);
        remove (path);
        snprintf (path, sizeof path, "%s/lock.mdb", self->dir);
        remove (path);
    }
    self->store = store_new (self->dir, MAP_SIZE, MAP_SIZE * 4);
    //  A simulated crash kills a process, not the machine: what LMDB
    //  committed stays in the page cache either way, so syncing to the
    //  disk (tmpfs) would only cost time
    if (self->store)
        mdb_env_set_flags (store_env (self->store), MDB_NOSYNC, 1);
    self->journal = self->store? journal_new (self->store): NULL;
    self->catalog = self->journal? catalog_new (self->journal): NULL;
    if (!self->catalog) {
        fprintf (stderr, "bookstore-sim: cannot open %s's store in %s\n", self->id, self->dir);
        abort ();
    }
    repl_options_t options = {
        .id = self->id,
        .pub_endpoint = self->pub,
        .sync_endpoint = self->sync,
        .dbs = catalog_dbs,
        .mergeable = false,
        .heartbeat_ms = SIM_HEARTBEAT_MS,
        .insync_timeout_ms = sim_config.insync_timeout_ms,
        .min_insync = sim_config.min_insync,
        .drop_every = 0,
        .log_keep = (uint64_t) sim_config.log_keep,
    };
    repl_io_t io = {
        .arg = self, .send_sync = s_send_sync, .answer = s_answer, .publish = s_publish,
        .subscribe = s_subscribe, .unsubscribe = s_unsubscribe, .release = s_release
    };
    self->repl = repl_new (self->journal, &options, &io);
    if (!self->repl)
        abort ();
    proc->up = true;
    proc->incarnation++;
    proc->paused_until = 0;
    self->next_status = sim_now;
    self->next_trim = sim_now + 1000;
    self->wake_at = INT64_MAX;
    sim_trace ("%s starts%s (seq %llu)", self->id, wipe? " on an empty disk": "",
               (unsigned long long) journal_seq (self->journal, CATALOG_PARTITION));
    s_loop (self);
}

static void
s_drop_batch (sim_node_t *self)
{
    for (int i = 0; i < self->batch_count; i++) {
        zmq_msg_close (&self->batch [i].token);
        bs_msg_destroy (&self->batch [i].request);
    }
    self->batch_count = 0;
}

void
sim_node_crash (sim_node_t *self)
{
    if (!self->repl)
        return;
    sim_trace ("%s crashes", self->id);
    s_drop_batch (self);
    repl_destroy (&self->repl);
    catalog_destroy (&self->catalog);
    journal_destroy (&self->journal);
    store_destroy (&self->store);
    self->sub_count = 0;
    self->flush_due = false;
    self->commit_fault = COMMIT_OK;
    sim_procs [self->index].up = false;
}

void
sim_node_destroy (sim_node_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sim_node_crash (*self_p);
    free (*self_p);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Writes: the group commit of nodes/node.c

static void
s_flush (sim_node_t *self)
{
    self->flush_due = false;
    if (self->batch_count == 0 || !self->repl)
        return;
    bs_msg_t *replies [BATCH_MAX] = { NULL };
    uint64_t seqs [BATCH_MAX] = { 0 };
    MDB_txn *txn = journal_begin (self->journal);
    int rc = txn? 0: -1;
    for (int i = 0; i < self->batch_count && rc == 0; i++) {
        uint64_t before = journal_next_seq (self->journal, CATALOG_PARTITION);
        replies [i] = catalog_write (self->catalog, txn, self->batch [i].request, &rc);
        if (journal_next_seq (self->journal, CATALOG_PARTITION) > before)
            seqs [i] = before;
    }
    //  (The broker's cache is not simulated: no invalidation to send)
    bs_msg_t *invalidation = catalog_invalidation (self->catalog, 0);
    bs_msg_destroy (&invalidation);
    //  The entries go out before our own commit, as a catalog node's do
    bool published = false;
    if (rc == 0) {
        repl_publish (self->repl, sim_now);
        published = true;
    }
    if (rc == 0 && self->commit_fault == COMMIT_CRASH) {
        sim_trace ("%s crashes after publishing up to seq %llu, before its commit", self->id,
                   (unsigned long long) (journal_next_seq (self->journal, CATALOG_PARTITION) - 1));
        journal_abort (self->journal, txn);
        for (int i = 0; i < self->batch_count; i++)
            bs_msg_destroy (&replies [i]);
        sim_node_crash (self);
        sim_restart_later (self->index, sim_range (50, 3000), false);
        return;
    }
    if (rc == 0 && self->commit_fault == COMMIT_FAIL) {
        self->commit_fault = COMMIT_OK;
        sim_trace ("%s's commit fails after publishing up to seq %llu", self->id,
                   (unsigned long long) (journal_next_seq (self->journal, CATALOG_PARTITION) - 1));
        journal_abort (self->journal, txn);
        rc = EIO;
    }
    else
    if (rc == 0)
        rc = journal_commit (self->journal, txn);
    else
    if (txn)
        journal_abort (self->journal, txn);
    if (rc == 0)
        repl_committed (self->repl, CATALOG_PARTITION, journal_seq (self->journal, CATALOG_PARTITION), sim_now);
    else
    if (published)
        repl_resign (self->repl, sim_now);
    uint64_t head = journal_seq (self->journal, CATALOG_PARTITION);
    for (int i = 0; i < self->batch_count; i++) {
        write_t *w = &self->batch [i];
        if (rc != 0) {
            bs_msg_destroy (&replies [i]);
            replies [i] = bs_msg_new_error (BS_ERR_storage, "the write failed");
            seqs [i] = 0;
        }
        else
        if (seqs [i] == 0)
            seqs [i] = head;
        bs_msg_set_bin (replies [i], BS_FIELD_rid, bs_msg_bin (w->request, BS_FIELD_rid, NULL), BS_RID_SIZE);
        size_t size;
        uint8_t *data = bs_msg_encode (replies [i], &size);
        repl_defer (self->repl, CATALOG_PARTITION, seqs [i], &w->token, data, size, sim_now);
        free (data);
        bs_msg_destroy (&replies [i]);
        bs_msg_destroy (&w->request);
    }
    self->batch_count = 0;
}

static void
s_on_flush (sim_event_t *event)
{
    sim_node_t *self = sim_nodes [event->to];
    s_flush (self);
    s_loop (self);
}

void
sim_node_request (sim_node_t *self, int64_t token, const void *data, size_t size)
{
    char reason [160] = "";
    bs_err_t err;
    bs_msg_t *request = bs_msg_decode (data, size, &err, reason, sizeof reason);
    if (request)
        err = bs_msg_validate_request (request, reason, sizeof reason);
    bs_op_t op = request? bs_msg_op (request): BS_OP_COUNT;
    if (err == BS_OK && bs_op_kind (op) != BS_KIND_WRITE) {
        err = BS_ERR_unknown_op;
        snprintf (reason, sizeof reason, "the simulator's nodes take writes only");
    }
    if (err == BS_OK)
        err = repl_can_write (self->repl, CATALOG_PARTITION, reason, sizeof reason);
    if (err != BS_OK) {
        bs_msg_t *reply = bs_msg_new_error (err, reason);
        const uint8_t *rid = request? bs_msg_bin (request, BS_FIELD_rid, NULL): NULL;
        if (rid)
            bs_msg_set_bin (reply, BS_FIELD_rid, rid, BS_RID_SIZE);
        size_t reply_size;
        uint8_t *body = bs_msg_encode (reply, &reply_size);
        sim_broker_reply_from (self->index, token, body, reply_size);
        free (body);
        bs_msg_destroy (&reply);
        bs_msg_destroy (&request);
        return;
    }
    if (self->batch_count == BATCH_MAX)
        s_flush (self);
    if (!self->repl) {
        //  The flush crashed the process (a commit fault): this request dies with it
        bs_msg_destroy (&request);
        return;
    }
    write_t *w = &self->batch [self->batch_count++];
    w->request = request;
    zmq_msg_init_size (&w->token, sizeof token);
    memcpy (zmq_msg_data (&w->token), &token, sizeof token);
    //  Requests that arrive within the same millisecond share a commit
    if (!self->flush_due) {
        self->flush_due = true;
        sim_event_t *event = sim_event_new (1, s_on_flush);
        event->to = self->index;
        event->incarnation = sim_procs [self->index].incarnation;
        sim_schedule (event);
    }
}

void
sim_node_assign (sim_node_t *self, const void *data, size_t size)
{
    bs_err_t err;
    char reason [128] = "";
    bs_msg_t *assign = bs_msg_decode (data, size, &err, reason, sizeof reason);
    if (assign && bs_msg_validate_request (assign, reason, sizeof reason) == BS_OK && bs_msg_op (assign) == BS_OP_assign) {
        s_flush (self);
        //  The flush may have crashed the process (a commit fault)
        if (self->repl)
            repl_assign (self->repl, assign, sim_now);
    }
    else
        sim_violation ("well_formed", "%s got a malformed assignment: %s", self->id, reason);
    bs_msg_destroy (&assign);
}

//  --------------------------------------------------------------------------
//  The loop's turn: replication's timers, the status, log retention

static void
s_status (sim_node_t *self)
{
    size_t size;
    uint8_t *data = node_status_encode (self->id, "catalog", self->repl, self->journal,
                                        (uint64_t) bs_clock_wall (), &size);
    sim_broker_status_from (self->index, data, size);
    free (data);
}

static void
s_trim (sim_node_t *self)
{
    MDB_txn *txn = journal_begin (self->journal);
    if (!txn)
        return;
    size_t trimmed = 0;
    int rc = journal_trim (self->journal, txn, CATALOG_PARTITION, (uint64_t) sim_config.log_keep, 20000, &trimmed);
    if (rc == 0 && trimmed)
        journal_commit (self->journal, txn);
    else
        journal_abort (self->journal, txn);
}

static void
s_on_wake (sim_event_t *event)
{
    sim_node_t *self = sim_nodes [event->to];
    if (event->number != self->wake_at)
        return;         //  superseded by an earlier turn
    self->wake_at = INT64_MAX;
    s_loop (self);
}

static void
s_loop (sim_node_t *self)
{
    if (!self->repl)
        return;
    int64_t wait = repl_tick (self->repl, sim_now);
    if (sim_now >= self->next_status) {
        s_status (self);
        self->next_status = sim_now + SIM_HEARTBEAT_MS;
    }
    if (sim_now >= self->next_trim) {
        s_trim (self);
        self->next_trim = sim_now + 1000;
    }
    int64_t at = sim_now + (wait < 1? 1: wait);
    if (self->next_status < at)
        at = self->next_status;
    if (self->next_trim < at)
        at = self->next_trim;
    if (at <= sim_now)
        at = sim_now + 1;
    if (at < self->wake_at) {
        self->wake_at = at;
        sim_event_t *event = sim_event_new (at - sim_now, s_on_wake);
        event->to = self->index;
        event->incarnation = sim_procs [self->index].incarnation;
        event->number = at;
        sim_schedule (event);
    }
}
