/*  sim_node - a node in the simulator: a catalog node (the real store,
 *  journal, catalog and replication core) or an order node (the real
 *  store, journal, orders and replication core, owning a partition of its
 *  own; its buys are sim_order.c's); its sockets are simulated links  */
#include "sim_cluster.h"
#include "node_status.h"
#include "orders.h"
#include "bs_name.h"
#include "bs_alloc.h"
#include "bs_clock.h"
#include "bs_msg.h"

#include <czmq.h>
#include <string.h>

#define BATCH_MAX 64
#define SUBS_MAX 16
#define MAP_SIZE (8u << 20)

typedef struct {
    zmq_msg_t token;
    bs_msg_t *request;          //  a catalog write
    uint8_t rid [BS_RID_SIZE];  //  ...or an order to record: the buy's rid
    bs_msg_t *decrement;        //  and the catalog's grant
} write_t;

typedef struct {
    char partition [BS_ID_MAX + 1];
    char pub [BS_ENDPOINT_MAX + 1];
    int64_t active_at;          //  a subscription takes a moment to reach the publisher
} sub_t;

struct _sim_node_t {
    int index;
    bool order;                 //  an order node (else a catalog node)
    char id [BS_ID_MAX + 1];
    char partition [BS_ID_MAX + 1];     //  "catalog", or the order node's own
    char dir [256];
    char pub [BS_ENDPOINT_MAX + 1], sync [BS_ENDPOINT_MAX + 1];
    store_t *store;
    journal_t *journal;
    catalog_t *catalog;
    orders_t *orders;
    repl_t *repl;
    write_t batch [BATCH_MAX];
    int batch_count;
    bool flush_due;
    sub_t subs [SUBS_MAX];
    int sub_count;
    int64_t wake_at;            //  the loop's next turn (INT64_MAX: none set)
    int64_t next_status, next_trim;
    int64_t next_claim;         //  order node: when to try again to claim its
                                //  partition after a failed claim
    enum { COMMIT_OK, COMMIT_CRASH, COMMIT_FAIL } commit_fault;     //  armed for the next batch
};

sim_node_t *sim_nodes [SIM_ALL_NODES];

int sim_node_count (void) { return sim_config.catalog_only? SIM_NODES: SIM_ALL_NODES; }

enum { IN_REQUEST = SIM_NODE_REQUEST, IN_ASSIGN = SIM_NODE_ASSIGN, IN_DECREMENT_REPLY = SIM_NODE_DECREMENT_REPLY,
       IN_SYNC, IN_STREAM, IN_ANSWER };

static void s_loop (sim_node_t *self);

//  A node publishes a batch's entries before its own commit, as
//  nodes/node.c's early_publish; an order node too, unless
//  --order-late-publish (as bookstore-node --early-publish 0)
static bool
s_early_publish (sim_node_t *self)
{
    return !self->order || sim_config.order_early_publish;
}

//  An order node writes its own partition only while it leads it: after a
//  commit failed with its entries published it takes a new epoch
//  (repl_claim), and until its store lets it, its buys are refused
//  (nodes/node.c s_order_leads)
static bool
s_order_leads (sim_node_t *self)
{
    if (repl_is_primary (self->repl, self->partition))
        return true;
    if (sim_now < self->next_claim)
        return false;
    self->next_claim = sim_now + 1000;
    uint64_t epoch = 0;
    if (repl_claim (self->repl, self->partition, &epoch) != 0)
        return false;
    sim_trace ("%s claims %s anew at epoch %llu", self->id, self->partition, (unsigned long long) epoch);
    self->next_status = sim_now;
    return true;
}

sim_node_t *
sim_node_new (int index, const char *dir)
{
    sim_node_t *self = bs_alloc (1, sizeof (sim_node_t));
    self->index = index;
    self->order = index >= SIM_NODES;
    snprintf (self->partition, sizeof self->partition, "%s", CATALOG_PARTITION);
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
    if (!self->repl || !repl_is_primary (self->repl, self->partition))
        return false;
    self->commit_fault = crash? COMMIT_CRASH: COMMIT_FAIL;
    sim_trace ("%s's next batch %s", self->id,
               crash? (s_early_publish (self)? "crashes the process after publishing, before its commit":
                                                "crashes the process before its commit (and its publishing)"):
                      (s_early_publish (self)? "fails its commit after publishing": "fails its commit"));
    return true;
}

void sim_node_disarm (sim_node_t *self) { self->commit_fault = COMMIT_OK; }
const char *sim_node_id (sim_node_t *self) { return self->id; }
journal_t *sim_node_journal (sim_node_t *self) { return self->repl? self->journal: NULL; }
catalog_t *sim_node_catalog (sim_node_t *self) { return self->repl? self->catalog: NULL; }
orders_t *sim_node_orders (sim_node_t *self) { return self->repl? self->orders: NULL; }
bool sim_node_is_order (sim_node_t *self) { return self->order; }
const char *sim_node_partition (sim_node_t *self) { return self->partition; }
repl_t *sim_node_repl (sim_node_t *self) { return self->repl; }

static sim_node_t *
s_by_endpoint (const char *endpoint, bool pub)
{
    for (int i = 0; i < SIM_ALL_NODES; i++)
        if (strcmp (pub? sim_nodes [i]->pub: sim_nodes [i]->sync, endpoint) == 0)
            return sim_nodes [i];
    return NULL;
}

static sim_node_t *
s_by_id (const char *id)
{
    for (int i = 0; i < SIM_ALL_NODES; i++)
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
        case IN_DECREMENT_REPLY:
            if (self->order)
                sim_buyer_on_reply (self->index, event->data, event->size);
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
    for (int i = 0; i < SIM_ALL_NODES; i++) {
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

//  The name of an order node's own partition, as nodes/node.c names it:
//  its id and a suffix drawn when its store was created (a node restarted
//  on an empty disk starts a new partition), kept in the store's local
//  database.  The suffix comes from the seeded generator.
static bool
s_home_partition (sim_node_t *self)
{
    MDB_dbi local;
    if (!store_open_db (self->store, "local", 0, &local))
        return false;
    MDB_txn *txn = store_begin (self->store, true);
    if (!txn)
        return false;
    MDB_val key = { 4, "home" }, value;
    if (mdb_get (txn, local, &key, &value) == 0 && value.mv_size < sizeof self->partition) {
        memcpy (self->partition, value.mv_data, value.mv_size);
        self->partition [value.mv_size] = 0;
        mdb_txn_abort (txn);
        return true;
    }
    uint64_t random = sim_rand ();
    snprintf (self->partition, sizeof self->partition, "%.*s.%02x%02x%02x",
              (int) (BS_ID_MAX - BS_PARTITION_SUFFIX_LEN), self->id,
              (unsigned) (random & 0xff), (unsigned) ((random >> 8) & 0xff), (unsigned) ((random >> 16) & 0xff));
    value.mv_size = strlen (self->partition);
    value.mv_data = self->partition;
    if (mdb_put (txn, local, &key, &value, 0) != 0) {
        mdb_txn_abort (txn);
        return false;
    }
    return store_commit (self->store, txn) == 0;
}

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
    if (self->journal && self->order) {
        self->orders = orders_new (self->journal);
        if (self->orders && !s_home_partition (self))
            orders_destroy (&self->orders);
    }
    else
    if (self->journal)
        self->catalog = catalog_new (self->journal);
    if (!self->catalog && !self->orders) {
        fprintf (stderr, "bookstore-sim: cannot open %s's store in %s\n", self->id, self->dir);
        abort ();
    }
    repl_options_t options = {
        .id = self->id,
        .pub_endpoint = self->pub,
        .sync_endpoint = self->sync,
        .dbs = self->order? orders_dbs: catalog_dbs,
        .mergeable = self->order,
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
    //  An order node writes its own partition, at a new epoch each start
    //  (nodes/node.c: repl_claim says why)
    uint64_t epoch = 0;
    if (self->order && repl_claim (self->repl, self->partition, &epoch) != 0) {
        fprintf (stderr, "bookstore-sim: %s cannot take the primary role of %s\n", self->id, self->partition);
        abort ();
    }
    proc->up = true;
    proc->incarnation++;
    proc->paused_until = 0;
    self->next_status = sim_now;
    self->next_trim = sim_now + 1000;
    self->wake_at = INT64_MAX;
    if (self->order)
        sim_trace ("%s starts%s: %s at epoch %llu from seq %llu", self->id, wipe? " on an empty disk": "",
                   self->partition, (unsigned long long) epoch,
                   (unsigned long long) journal_seq (self->journal, self->partition));
    else
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
        bs_msg_destroy (&self->batch [i].decrement);
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
    if (self->order)
        sim_buyer_reset (self->index);
    catalog_destroy (&self->catalog);
    orders_destroy (&self->orders);
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
    if (!self->repl)
        return;
    //  Orphans wait for a batch of their own when no write comes
    bool adopt = self->order && !sim_config.no_adoption && journal_has_orphans (self->journal);
    if (self->batch_count == 0 && !adopt)
        return;
    const char *partition = self->partition;
    bs_msg_t *replies [BATCH_MAX] = { NULL };
    uint64_t seqs [BATCH_MAX] = { 0 };
    bool leads = !self->order || s_order_leads (self);
    MDB_txn *txn = leads? journal_begin (self->journal): NULL;
    int rc = txn? 0: -1;
    //  An order node re-records, inside this transaction and before the
    //  batch's writes, the records a snapshot of another partition left it
    //  with alone (journal_adopt_orphans)
    if (rc == 0 && adopt) {
        size_t adopted = 0;
        rc = journal_adopt_orphans (self->journal, txn, partition, BATCH_MAX, &adopted);
        if (rc == 0 && adopted)
            sim_trace ("%s re-records %zu orphan records in %s", self->id, adopted, partition);
    }
    for (int i = 0; i < self->batch_count && rc == 0; i++) {
        write_t *w = &self->batch [i];
        uint64_t before = journal_next_seq (self->journal, partition);
        if (w->request)
            replies [i] = catalog_write (self->catalog, txn, w->request, &rc);
        else
            replies [i] = orders_record (self->orders, txn, partition, w->rid, BS_RID_SIZE, w->decrement, &rc);
        if (journal_next_seq (self->journal, partition) > before)
            seqs [i] = before;
    }
    //  (The broker's cache is not simulated: no invalidation to send)
    if (self->catalog) {
        bs_msg_t *invalidation = catalog_invalidation (self->catalog, 0);
        bs_msg_destroy (&invalidation);
    }
    //  The entries go out before our own commit, as a catalog node's do
    //  (and an order node's, unless --order-late-publish)
    bool published = false;
    if (rc == 0 && s_early_publish (self)) {
        repl_publish (self->repl, sim_now);
        published = true;
    }
    if (rc == 0 && self->commit_fault == COMMIT_CRASH) {
        sim_trace ("%s crashes %s up to seq %llu, before its commit", self->id,
                   published? "after publishing": "with a batch", (unsigned long long) (journal_next_seq (self->journal, partition) - 1));
        journal_abort (self->journal, txn);
        for (int i = 0; i < self->batch_count; i++)
            bs_msg_destroy (&replies [i]);
        sim_node_crash (self);
        sim_restart_later (self->index, sim_range (50, 3000), false);
        return;
    }
    if (rc == 0 && self->commit_fault == COMMIT_FAIL) {
        self->commit_fault = COMMIT_OK;
        sim_trace ("%s's commit fails %s up to seq %llu", self->id, published? "after publishing": "with a batch",
                   (unsigned long long) (journal_next_seq (self->journal, partition) - 1));
        journal_abort (self->journal, txn);
        rc = EIO;
    }
    else
    if (rc == 0)
        rc = journal_commit (self->journal, txn);
    else
    if (txn)
        journal_abort (self->journal, txn);
    if (rc == 0) {
        if (!published)
            repl_publish (self->repl, sim_now);
        repl_committed (self->repl, partition, journal_seq (self->journal, partition), sim_now);
    }
    else
    if (published) {
        //  Followers may hold entries we never will: never write those
        //  seqs again at this epoch (an order node claims a new one)
        repl_resign (self->repl, sim_now);
        self->next_claim = 0;
        if (self->order)
            s_order_leads (self);
    }
    uint64_t head = journal_seq (self->journal, partition);
    for (int i = 0; i < self->batch_count; i++) {
        write_t *w = &self->batch [i];
        if (rc != 0) {
            //  An order node's writes record grants the catalog made
            //  already: the copy is reserved for the rid, a retry gets it
            bs_msg_destroy (&replies [i]);
            replies [i] = self->order?
                bs_msg_new_error (BS_ERR_unavailable, "this order node could not record the order; retry with the same rid"):
                bs_msg_new_error (BS_ERR_storage, "the write failed");
            seqs [i] = 0;
        }
        else
        if (seqs [i] == 0)
            seqs [i] = head;
        const uint8_t *rid = w->request? bs_msg_bin (w->request, BS_FIELD_rid, NULL): w->rid;
        bs_msg_set_bin (replies [i], BS_FIELD_rid, rid, BS_RID_SIZE);
        size_t size;
        uint8_t *data = bs_msg_encode (replies [i], &size);
        repl_defer (self->repl, partition, seqs [i], &w->token, data, size, sim_now);
        free (data);
        bs_msg_destroy (&replies [i]);
        bs_msg_destroy (&w->request);
        bs_msg_destroy (&w->decrement);
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

//  A slot in the batch, or NULL when the flush that made room crashed the
//  process (a commit fault); requests that arrive within the same
//  millisecond share a commit
static write_t *
s_queue (sim_node_t *self, int64_t token)
{
    if (self->batch_count == BATCH_MAX)
        s_flush (self);
    if (!self->repl)
        return NULL;
    write_t *w = &self->batch [self->batch_count++];
    memset (w, 0, sizeof *w);
    zmq_msg_init_size (&w->token, sizeof token);
    memcpy (zmq_msg_data (&w->token), &token, sizeof token);
    if (!self->flush_due) {
        self->flush_due = true;
        sim_event_t *event = sim_event_new (1, s_on_flush);
        event->to = self->index;
        event->incarnation = sim_procs [self->index].incarnation;
        sim_schedule (event);
    }
    return w;
}

static void
s_reply_now (sim_node_t *self, int64_t token, bs_msg_t *reply, const uint8_t *rid)
{
    if (rid)
        bs_msg_set_bin (reply, BS_FIELD_rid, rid, BS_RID_SIZE);
    size_t size;
    uint8_t *body = bs_msg_encode (reply, &size);
    sim_broker_reply_from (self->index, token, body, size);
    free (body);
}

//  An order node's buy (nodes/node.c s_handle): answered from by_request
//  once our log up to now is replicated, or started at the catalog
static void
s_buy (sim_node_t *self, int64_t token, bs_msg_t *request)
{
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, NULL);
    bs_msg_t *reply = orders_find (self->orders, rid, BS_RID_SIZE);
    if (!reply) {
        sim_buyer_start (self->index, token, rid, bs_msg_int (request, BS_FIELD_item));
        return;
    }
    bs_msg_set_bin (reply, BS_FIELD_rid, rid, BS_RID_SIZE);
    size_t size;
    uint8_t *data = bs_msg_encode (reply, &size);
    zmq_msg_t held;
    zmq_msg_init_size (&held, sizeof token);
    memcpy (zmq_msg_data (&held), &token, sizeof token);
    repl_defer (self->repl, self->partition, journal_seq (self->journal, self->partition), &held, data, size, sim_now);
    free (data);
    bs_msg_destroy (&reply);
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
    if (err == BS_OK && (bs_op_kind (op) != BS_KIND_WRITE || strcmp (bs_op_service (op), self->order? "order": "catalog"))) {
        err = BS_ERR_unknown_op;
        snprintf (reason, sizeof reason, "the simulator's %s nodes take %s only", self->order? "order": "catalog",
                  self->order? "buys": "writes");
    }
    if (err == BS_OK)
        err = repl_can_write (self->repl, self->partition, reason, sizeof reason);
    if (err != BS_OK) {
        bs_msg_t *reply = bs_msg_new_error (err, reason);
        s_reply_now (self, token, reply, request? bs_msg_bin (request, BS_FIELD_rid, NULL): NULL);
        bs_msg_destroy (&reply);
        bs_msg_destroy (&request);
        return;
    }
    if (self->order) {
        s_buy (self, token, request);
        bs_msg_destroy (&request);
        return;
    }
    write_t *w = s_queue (self, token);
    if (w)
        w->request = request;
    else
        bs_msg_destroy (&request);
}

void
sim_node_grant (int node, const uint8_t *rid, const bs_msg_t *decrement, const int64_t *tokens, int count)
{
    sim_node_t *self = sim_nodes [node];
    for (int i = 0; i < count && self->repl; i++) {
        write_t *w = s_queue (self, tokens [i]);
        if (!w)
            return;
        memcpy (w->rid, rid, BS_RID_SIZE);
        size_t size;
        uint8_t *data = bs_msg_encode (decrement, &size);
        bs_err_t err;
        w->decrement = bs_msg_decode (data, size, &err, NULL, 0);
        free (data);
    }
}

//  An order node's assignment also names the catalog's primary (for the
//  direct path, which the simulated order nodes do not take: they send
//  every decrement through the broker, as --direct-buys 0); it is taken
//  out before replication reads the map, as nodes/node.c does
static bs_msg_t *
s_without_catalog (const bs_msg_t *assign)
{
    bs_msg_t *rest = bs_msg_new ();
    bs_msg_set_str (rest, BS_FIELD_op, bs_op_name (BS_OP_assign));
    bs_msg_set_list (rest, BS_FIELD_partitions);
    for (size_t i = 0; i < bs_msg_count (assign, BS_FIELD_partitions); i++) {
        const bs_msg_t *entry = bs_msg_at (assign, BS_FIELD_partitions, i);
        if (strcmp (bs_msg_str (entry, BS_FIELD_partition), CATALOG_PARTITION) == 0)
            continue;
        size_t size;
        uint8_t *data = bs_msg_encode (entry, &size);
        bs_err_t err;
        bs_msg_t *copy = bs_msg_decode (data, size, &err, NULL, 0);
        free (data);
        if (copy)
            bs_msg_append (rest, BS_FIELD_partitions, &copy);
    }
    return rest;
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
        if (self->repl) {
            bs_msg_t *rest = self->order? s_without_catalog (assign): NULL;
            repl_assign (self->repl, rest? rest: assign, sim_now);
            bs_msg_destroy (&rest);
        }
    }
    else
        sim_violation ("well_formed", "%s got a malformed assignment: %s", self->id, reason);
    bs_msg_destroy (&assign);
}

//  --------------------------------------------------------------------------
//  The loop's turn: replication's timers, the buyer's, the status, log
//  retention

static void
s_status (sim_node_t *self)
{
    size_t size;
    uint8_t *data = node_status_encode (self->id, self->order? "order": "catalog", self->repl, self->journal,
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
    size_t total = 0;
    int rc = 0;
    for (size_t i = 0; i < journal_partitions (self->journal) && rc == 0; i++) {
        size_t trimmed = 0;
        rc = journal_trim (self->journal, txn, journal_partition_at (self->journal, i),
                           (uint64_t) sim_config.log_keep, 20000, &trimmed);
        total += trimmed;
    }
    if (rc == 0 && total)
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
    if (self->order) {
        int64_t due = sim_buyer_tick (self->index);
        if (!self->repl)
            return;
        if (due - sim_now < wait)
            wait = due - sim_now;
    }
    if (sim_now >= self->next_status) {
        s_status (self);
        self->next_status = sim_now + SIM_HEARTBEAT_MS;
    }
    if (sim_now >= self->next_trim) {
        s_trim (self);
        self->next_trim = sim_now + 1000;
    }
    //  Orphans left by a snapshot: a batch of their own, as node.c's loop
    //  flushes at every turn
    if (self->order && !sim_config.no_adoption && !self->flush_due && journal_has_orphans (self->journal)) {
        self->flush_due = true;
        sim_event_t *event = sim_event_new (1, s_on_flush);
        event->to = self->index;
        event->incarnation = sim_procs [self->index].incarnation;
        sim_schedule (event);
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
