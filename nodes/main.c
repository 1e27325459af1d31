/*  bookstore-node - a catalog or order replica
 *
 *  One event loop: requests from the broker, the catalog's answers to our
 *  buys, and replication traffic.  Writes that arrive together are executed
 *  in one LMDB transaction (group commit), published to the followers, and
 *  answered once the in-sync followers have acked them.
 */
#include "bs_endpoints.h"
#include "bs_msg.h"
#include "bs_settings.h"
#include "buyer.h"
#include "catalog.h"
#include "invalidator.h"
#include "journal.h"
#include "mdpworker.h"
#include "orders.h"
#include "repl.h"
#include "store.h"

#include <czmq.h>
#include <string.h>

#define BATCH_MAX 512           //  writes per transaction
#define POLL_MAX 24
#define TRIM_MAX 20000          //  log entries deleted per turn at most

//  The event loop's phases, for --profile-seconds
enum { PHASE_WAIT, PHASE_REQUESTS, PHASE_BUYER, PHASE_EXECUTE, PHASE_INVALIDATE, PHASE_COMMIT,
       PHASE_REPLICATE, PHASE_REPLY, PHASE_OTHER, PHASE_WRITES, PHASE_COUNT };
static const char *s_phases [PHASE_COUNT] = {
    "wait", "requests", "buyer", "execute", "invalidate", "commit", "replicate", "reply", "other", "writes"
};

static const bs_setting_t s_table [] = {
    { "service",         "",          "catalog or order" },
    { "id",              "",          "node id, unique in the cluster (default <service>-1)" },
    { "data",            "",          "data directory (default data/<id>)" },
    { "broker",          "tcp://127.0.0.1:5556", "the broker's node endpoint; for a Binary Star pair, both, comma-separated, the primary first (the node moves to the other when one is silent or the backup)" },
    { "broker-clients",  "tcp://127.0.0.1:5555", "the broker's client endpoint, or the pair's, comma-separated (order nodes reach the catalog there)" },
    { "pub-bind",        "tcp://*:5570", "where to publish the replication log" },
    { "sync-bind",       "tcp://*:5571", "where followers fetch and ack" },
    { "pub-endpoint",    "",          "the publish endpoint others connect to (default from pub-bind on 127.0.0.1)" },
    { "sync-endpoint",   "",          "the sync endpoint others connect to (default from sync-bind on 127.0.0.1)" },
    { "heartbeat-ms",    "250",       "heartbeat interval in milliseconds" },
    { "liveness",        "3",         "heartbeats the broker may miss before the node moves to the next broker of --broker (reconnects, with one)" },
    { "insync-timeout-ms", "1000",    "a follower this far behind leaves the in-sync set" },
    { "min-insync",      "1",         "replicas (primary included) that must be in sync to accept writes" },
    { "hwm",             "100000",    "high-water mark of the replication PUB/SUB sockets" },
    { "drop-every",      "0",         "test switch: do not publish every k-th log entry (0: off)" },
    { "map-size-mb",     "1024",      "LMDB map size in MiB to start with" },
    { "map-max-mb",      "65536",     "the LMDB map grows (doubling) up to this many MiB" },
    { "seed",            "",          "initial catalog file, loaded by a primary whose catalog is empty" },
    { "restock-period",  "10",        "seconds between restocks of sold-out books (0: never)" },
    { "restock-amount",  "10",        "copies added to a sold-out book" },
    { "invalidate",      "",          "catalog: the broker's invalidation endpoint, or one per broker of --broker, comma-separated in the same order (default: each broker's node port + 1)" },
    { "invalidate-timeout-ms", "250", "catalog: how long to wait for the broker to acknowledge an invalidation" },
    { "invalidate-attempts", "2",     "catalog: how many times to send an invalidation before failing the writes" },
    { "keys",            "",          "keys directory: speak CURVE (see bookstore keygen); empty: plain, unauthenticated" },
    { "cert",            "",          "this node's certificate (default <keys>/nodes/<id>)" },
    { "catalog-timeout-ms", "1500",   "order node: how long to wait for the catalog before resending" },
    { "catalog-attempts", "5",        "order node: how many times to ask the catalog" },
    { "log-keep",        "200000",    "log entries each partition keeps for followers that fall behind; one further behind gets a snapshot (at least 100)" },
    { "profile-seconds", "0",         "log every this many seconds where the event loop spent its time (0: never)" },
    { NULL, NULL, NULL }
};

typedef struct {
    zmq_msg_t token;            //  empty for internal writes (seed, restock)
    bs_msg_t *request;          //  catalog writes
    uint8_t rid [BS_RID_SIZE];  //  order records
    bs_msg_t *decrement;
    bool has_token;
} write_t;

typedef struct {
    const char *service;
    const char *id;
    char partition [80];        //  catalog: "catalog"; order: this node's own
    mdpworker_t *link;
    store_t *store;
    journal_t *journal;
    catalog_t *catalog;
    orders_t *orders;
    buyer_t *buyer;
    invalidator_t *invalidator; //  catalog: announces changes to the cache
    bs_keys_t *keys;            //  CURVE, or NULL for plain
    repl_t *repl;
    const char *seed;
    bool seeded;
    write_t batch [BATCH_MAX];
    int batch_count;
    zlistx_t *internal;         //  bs_msg_t requests made by the node itself
    int heartbeat_ms;
    int64_t next_status;
    uint64_t log_keep;          //  log entries kept per partition
    int64_t next_trim;
    bs_profile_t *profile;      //  NULL unless --profile-seconds
} node_t;

//  --------------------------------------------------------------------------
//  Replies

static void
s_send_reply (void *arg, zmq_msg_t *token, const void *data, size_t size)
{
    node_t *self = arg;
    mdpworker_reply (self->link, token, data, size);
    zmq_msg_close (token);
}

static void
s_reply_msg (node_t *self, zmq_msg_t *token, bs_msg_t *reply, const uint8_t *rid)
{
    if (rid)
        bs_msg_set_bin (reply, BS_FIELD_rid, rid, BS_RID_SIZE);
    size_t size;
    uint8_t *data = bs_msg_encode (reply, &size);
    s_send_reply (self, token, data, size);
    free (data);
}

//  --------------------------------------------------------------------------
//  Group commit

//  Executes every queued write in one transaction, publishes the entries,
//  and hands each reply to replication to be sent once acked
static void
s_flush (node_t *self)
{
    if (self->batch_count == 0)
        return;
    bs_msg_t *replies [BATCH_MAX] = { NULL };
    uint64_t seqs [BATCH_MAX] = { 0 };
    int left = bs_profile_enter (self->profile, PHASE_EXECUTE);
    bs_profile_add (self->profile, PHASE_WRITES, self->batch_count);
    MDB_txn *txn = journal_begin (self->journal);
    int rc = txn? 0: -1;
    for (int i = 0; i < self->batch_count && rc == 0; i++) {
        write_t *w = &self->batch [i];
        uint64_t before = journal_next_seq (self->journal, self->partition);
        if (w->request)
            replies [i] = catalog_write (self->catalog, txn, w->request, &rc);
        else
            replies [i] = orders_record (self->orders, txn, self->partition, w->rid, BS_RID_SIZE, w->decrement, &rc);
        if (journal_next_seq (self->journal, self->partition) > before)
            seqs [i] = before;
    }
    //  The broker drops cached replies of what changed before the change
    //  is committed, or the writes fail
    bs_err_t fail = BS_ERR_storage;
    const char *why = store_failure (store_read_only (self->store)? EROFS: rc);
    bs_msg_t *invalidation = self->catalog?
        catalog_invalidation (self->catalog, journal_next_seq (self->journal, self->partition) - 1): NULL;
    //  The cache that matters is the active broker's: the one the node is
    //  attached to
    if (rc == 0 && invalidation)
        invalidator_select (self->invalidator, mdpworker_broker_index (self->link));
    bs_profile_enter (self->profile, PHASE_INVALIDATE);
    if (rc == 0 && invalidation && !invalidator_send (self->invalidator, invalidation)) {
        fail = BS_ERR_not_invalidated;
        why = "the broker did not acknowledge the cache invalidation in time; nothing changed";
        rc = -1;
    }
    bs_profile_enter (self->profile, PHASE_EXECUTE);
    bs_msg_destroy (&invalidation);
    if (rc == 0) {
        rc = journal_commit (self->journal, txn);
        if (rc != 0)
            why = store_failure (rc);
    }
    else
    if (txn)
        journal_abort (self->journal, txn);
    bs_profile_enter (self->profile, PHASE_REPLY);
    if (rc == 0) {
        repl_publish (self->repl);
        //  Report the new head at once: a broker that starts now must not
        //  learn an older one (see the broker's cache)
        self->next_status = 0;
    }
    //  A write that changed nothing (a retry answered from the stored
    //  reply) is answered only once everything before it is replicated: its
    //  first execution may still be waiting for acks
    uint64_t head = journal_seq (self->journal, self->partition);
    for (int i = 0; i < self->batch_count; i++) {
        write_t *w = &self->batch [i];
        if (rc != 0) {
            bs_msg_destroy (&replies [i]);
            replies [i] = bs_msg_new_error (fail, why);
            seqs [i] = 0;
        }
        else
        if (seqs [i] == 0)
            seqs [i] = head;
        if (w->has_token && replies [i]) {
            const uint8_t *rid = w->request? bs_msg_bin (w->request, BS_FIELD_rid, NULL): w->rid;
            bs_msg_set_bin (replies [i], BS_FIELD_rid, rid, BS_RID_SIZE);
            size_t size;
            uint8_t *data = bs_msg_encode (replies [i], &size);
            repl_defer (self->repl, self->partition, seqs [i], &w->token, data, size);
            free (data);
        }
        else
        if (w->has_token)
            zmq_msg_close (&w->token);
        bs_msg_destroy (&replies [i]);
        bs_msg_destroy (&w->request);
        bs_msg_destroy (&w->decrement);
    }
    self->batch_count = 0;
    bs_profile_enter (self->profile, left);
}

static write_t *
s_queue (node_t *self)
{
    if (self->batch_count == BATCH_MAX)
        s_flush (self);
    write_t *w = &self->batch [self->batch_count++];
    memset (w, 0, sizeof *w);
    return w;
}

//  The catalog granted a buy: record it in this batch
static void
s_on_grant (void *arg, const uint8_t *rid, const bs_msg_t *decrement, zmq_msg_t *tokens, int count)
{
    node_t *self = arg;
    for (int i = 0; i < count; i++) {
        write_t *w = s_queue (self);
        memcpy (w->rid, rid, BS_RID_SIZE);
        //  Each waiter's write records nothing new after the first
        size_t size;
        uint8_t *data = bs_msg_encode (decrement, &size);
        bs_err_t err;
        w->decrement = bs_msg_decode (data, size, &err, NULL, 0);
        free (data);
        zmq_msg_init (&w->token);
        zmq_msg_move (&w->token, &tokens [i]);
        zmq_msg_close (&tokens [i]);
        w->has_token = true;
    }
}

//  --------------------------------------------------------------------------
//  Requests

static void
s_handle (node_t *self, zmq_msg_t *token, zmq_msg_t *body)
{
    char reason [160];
    bs_err_t err;
    bs_msg_t *request = bs_msg_decode (zmq_msg_data (body), zmq_msg_size (body), &err, reason, sizeof reason);
    if (request)
        err = bs_msg_validate_request (request, reason, sizeof reason);
    bs_op_t op = request? bs_msg_op (request): BS_OP_COUNT;
    if (err == BS_OK && strcmp (bs_op_service (op), self->service) != 0) {
        err = BS_ERR_unknown_op;
        snprintf (reason, sizeof reason, "the %s service does not execute '%s'", self->service, bs_op_name (op));
    }
    const uint8_t *rid = request? bs_msg_bin (request, BS_FIELD_rid, NULL): NULL;
    bs_msg_t *reply = NULL;
    if (err == BS_OK && bs_op_kind (op) == BS_KIND_WRITE)
        err = repl_can_write (self->repl, self->partition, reason, sizeof reason);
    if (err != BS_OK)
        reply = bs_msg_new_error (err, reason);
    else
    if (self->catalog && bs_op_kind (op) == BS_KIND_READ)
        reply = catalog_read (self->catalog, request);
    else
    if (self->catalog) {
        write_t *w = s_queue (self);
        w->request = request;
        zmq_msg_init (&w->token);
        zmq_msg_move (&w->token, token);
        w->has_token = true;
        return;
    }
    else
    if (op == BS_OP_orders)
        reply = orders_list (self->orders, bs_msg_has (request, BS_FIELD_item)? bs_msg_int (request, BS_FIELD_item): 0,
                             bs_msg_has (request, BS_FIELD_after)? bs_msg_str (request, BS_FIELD_after): NULL,
                             bs_msg_has (request, BS_FIELD_limit)? bs_msg_int (request, BS_FIELD_limit): 0);
    else {
        reply = orders_find (self->orders, rid, BS_RID_SIZE);
        if (!reply) {
            buyer_start (self->buyer, token, request);      //  answered when granted
            bs_msg_destroy (&request);
            return;
        }
        //  Bought before: answer once our log up to now is replicated
        bs_msg_set_bin (reply, BS_FIELD_rid, rid, BS_RID_SIZE);
        size_t size;
        uint8_t *data = bs_msg_encode (reply, &size);
        zmq_msg_t held;
        zmq_msg_init (&held);
        zmq_msg_move (&held, token);
        repl_defer (self->repl, self->partition, journal_seq (self->journal, self->partition), &held, data, size);
        free (data);
        bs_msg_destroy (&reply);
        bs_msg_destroy (&request);
        return;
    }
    s_reply_msg (self, token, reply, rid);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
}

static void
s_on_assign (node_t *self, zmq_msg_t *body)
{
    bs_err_t err;
    char reason [128];
    bs_msg_t *assign = bs_msg_decode (zmq_msg_data (body), zmq_msg_size (body), &err, reason, sizeof reason);
    if (assign && bs_msg_validate_request (assign, reason, sizeof reason) == BS_OK && bs_msg_op (assign) == BS_OP_assign)
        repl_assign (self->repl, assign);
    else
        zsys_warning ("%s: dropped a malformed assignment: %s", self->id, reason);
    bs_msg_destroy (&assign);
    //  A new primary of an empty catalog loads the initial books
    if (self->catalog && !self->seeded && *self->seed && repl_is_primary (self->repl, CATALOG_PARTITION)) {
        self->seeded = true;
        if (catalog_empty (self->catalog) && journal_seq (self->journal, CATALOG_PARTITION) == 0) {
            int n = catalog_seed_requests (self->seed, self->internal);
            if (n > 0)
                zsys_info ("%s: loading %d books from %s", self->id, n, self->seed);
        }
    }
}

static void
s_run_internal (node_t *self)
{
    if (!repl_is_primary (self->repl, self->partition)) {
        bs_msg_t *request;
        while ((request = zlistx_detach (self->internal, NULL)))
            bs_msg_destroy (&request);
        return;
    }
    bs_msg_t *request;
    while ((request = zlistx_detach (self->internal, NULL))) {
        write_t *w = s_queue (self);
        w->request = request;
    }
}

static void
s_update_status (node_t *self)
{
    bs_msg_t *status = bs_msg_new ();
    bs_msg_set_str (status, BS_FIELD_op, "node_status");
    bs_msg_set_str (status, BS_FIELD_id, self->id);
    bs_msg_set_str (status, BS_FIELD_service, self->service);
    repl_status (self->repl, status);
    char digest [17];
    journal_digest (self->journal, digest);
    bs_msg_set_str (status, BS_FIELD_digest, digest);
    bs_msg_set_int (status, BS_FIELD_ready, repl_caught_up (self->repl));
    size_t size;
    uint8_t *data = bs_msg_encode (status, &size);
    mdpworker_set_status (self->link, data, size);
    free (data);
    bs_msg_destroy (&status);
}

//  Log retention: once a second, deletes the oldest entries beyond
//  log_keep of every partition, a bounded number at a time so that a long
//  log shrinks over several turns without stalling the loop
static void
s_trim (node_t *self)
{
    MDB_txn *txn = journal_begin (self->journal);
    if (!txn)
        return;
    size_t total = 0;
    int rc = 0;
    for (size_t i = 0; i < journal_partitions (self->journal) && rc == 0 && total < TRIM_MAX; i++) {
        size_t trimmed;
        rc = journal_trim (self->journal, txn, journal_partition_at (self->journal, i), self->log_keep,
                           TRIM_MAX - total, &trimmed);
        total += trimmed;
    }
    if (rc == 0 && total)
        rc = journal_commit (self->journal, txn);
    else
        journal_abort (self->journal, txn);
    if (rc != 0)
        zsys_warning ("%s: could not trim the log: %s", self->id, mdb_strerror (rc));
}

static void
s_run (node_t *self, int64_t restock_period_ms, int64_t restock_amount)
{
    int64_t next_restock = restock_period_ms > 0? zclock_mono () + restock_period_ms: INT64_MAX;
    while (!zsys_interrupted) {
        bs_profile_enter (self->profile, PHASE_OTHER);
        bs_profile_tick (self->profile);
        int64_t now = zclock_mono ();
        if (now >= self->next_status) {
            s_update_status (self);
            self->next_status = now + self->heartbeat_ms / 2;
        }
        int64_t wait = mdpworker_tick (self->link);
        int64_t repl_wait = repl_tick (self->repl);
        if (repl_wait < wait)
            wait = repl_wait;
        if (self->buyer) {
            buyer_tick (self->buyer);
            if (buyer_pending (self->buyer) && wait > 20)
                wait = 20;
        }
        if (self->catalog && now >= next_restock) {
            if (repl_is_primary (self->repl, CATALOG_PARTITION))
                catalog_sold_out_requests (self->catalog, restock_amount, self->internal);
            next_restock = now + restock_period_ms;
        }
        if (zlistx_size (self->internal))
            s_run_internal (self);
        s_flush (self);
        if (now >= self->next_trim) {
            s_trim (self);
            self->next_trim = now + 1000;
        }
        if (next_restock - now < wait)
            wait = next_restock - now;
        zmq_pollitem_t items [POLL_MAX];
        int n = 0;
        items [n++] = (zmq_pollitem_t) { mdpworker_socket (self->link), 0, ZMQ_POLLIN, 0 };
        if (self->buyer)
            items [n++] = (zmq_pollitem_t) { buyer_socket (self->buyer), 0, ZMQ_POLLIN, 0 };
        //  Wakes the loop when the broker's connection drops; the tick reads it
        if (mdpworker_monitor (self->link))
            items [n++] = (zmq_pollitem_t) { mdpworker_monitor (self->link), 0, ZMQ_POLLIN, 0 };
        int first_repl = n;
        n += repl_pollitems (self->repl, items + n, POLL_MAX - n);
        bs_profile_enter (self->profile, PHASE_WAIT);
        if (zmq_poll (items, n, (long) (wait < 0? 0: wait)) < 0)
            break;
        //  Replication first: acks release replies, entries bring followers up
        bs_profile_enter (self->profile, PHASE_REPLICATE);
        repl_on_poll (self->repl, items + first_repl, n - first_repl);
        bs_profile_enter (self->profile, PHASE_REQUESTS);
        if (items [0].revents & ZMQ_POLLIN) {
            for (int k = 0; k < BATCH_MAX; k++) {
                zmq_msg_t token, body;
                int kind = mdpworker_recv (self->link, &token, &body);
                if (kind == MDPWORKER_REQUEST) {
                    s_handle (self, &token, &body);
                    zmq_msg_close (&token);
                    zmq_msg_close (&body);
                }
                else
                if (kind == MDPWORKER_ASSIGN) {
                    s_flush (self);
                    s_on_assign (self, &body);
                    zmq_msg_close (&body);
                    self->next_status = 0;
                }
                int events;
                size_t len = sizeof events;
                zmq_getsockopt (mdpworker_socket (self->link), ZMQ_EVENTS, &events, &len);
                if (!(events & ZMQ_POLLIN))
                    break;
            }
        }
        bs_profile_enter (self->profile, PHASE_BUYER);
        if (self->buyer && (items [1].revents & ZMQ_POLLIN))
            for (int k = 0; k < BATCH_MAX; k++) {
                buyer_on_input (self->buyer);
                int events;
                size_t len = sizeof events;
                zmq_getsockopt (buyer_socket (self->buyer), ZMQ_EVENTS, &events, &len);
                if (!(events & ZMQ_POLLIN))
                    break;
            }
        s_flush (self);
    }
}

//  The name of this order node's own partition: its id, plus a suffix
//  chosen when its store was created, so that a node restarted with an
//  empty store starts a new partition instead of rewriting an old one
static bool
s_home_partition (node_t *self, char *partition, size_t size)
{
    MDB_dbi local;
    if (!store_open_db (self->store, "local", 0, &local))
        return false;
    MDB_txn *txn = store_begin (self->store, true);
    if (!txn)
        return false;
    MDB_val key = { 4, "home" }, value;
    if (mdb_get (txn, local, &key, &value) == 0 && value.mv_size < size) {
        memcpy (partition, value.mv_data, value.mv_size);
        partition [value.mv_size] = 0;
        mdb_txn_abort (txn);
        return true;
    }
    uint8_t random [BS_RID_SIZE];
    bs_random_bytes (random, sizeof random);
    snprintf (partition, size, "%s.%02x%02x%02x", self->id, random [0], random [1], random [2]);
    value.mv_size = strlen (partition);
    value.mv_data = partition;
    if (mdb_put (txn, local, &key, &value, 0) != 0) {
        mdb_txn_abort (txn);
        return false;
    }
    return store_commit (self->store, txn) == 0;
}

//  A data directory belongs to one node: started as another (a copied or
//  mistyped directory) it would write someone else's partition.  The first
//  start records who it is; later starts must match.
static bool
s_check_identity (node_t *self)
{
    MDB_dbi local;
    bool writable = !store_read_only (self->store);
    MDB_txn *txn = store_open_db (self->store, "local", 0, &local)? store_begin (self->store, writable): NULL;
    if (!txn)
        return false;
    char identity [128];
    snprintf (identity, sizeof identity, "%s %s", self->service, self->id);
    MDB_val key = { 8, "identity" }, value;
    bool ok = true;
    if (mdb_get (txn, local, &key, &value) == 0) {
        ok = value.mv_size == strlen (identity) && memcmp (value.mv_data, identity, value.mv_size) == 0;
        if (!ok)
            zsys_error ("%s: refused the data directory: it belongs to %.*s, not to %s "
                        "(move it away to start this node empty)", self->id,
                        (int) (value.mv_size < 100? value.mv_size: 100), (const char *) value.mv_data, identity);
        mdb_txn_abort (txn);
        return ok;
    }
    value.mv_size = strlen (identity);
    value.mv_data = identity;
    if (!writable) {
        mdb_txn_abort (txn);
        return true;
    }
    if (mdb_put (txn, local, &key, &value, 0) != 0) {
        mdb_txn_abort (txn);
        return false;
    }
    return store_commit (self->store, txn) == 0;
}

//  An advertised endpoint from a bind endpoint: tcp://*:P -> tcp://127.0.0.1:P
static void
s_advertise (const char *bind, const char *given, char *out, size_t size)
{
    if (given && *given) {
        snprintf (out, size, "%s", given);
        return;
    }
    const char *star = strstr (bind, "://*:");
    if (star)
        snprintf (out, size, "%.*s://127.0.0.1:%s", (int) (star - bind), bind, star + 5);
    else
        snprintf (out, size, "%s", bind);
}

//  The brokers' invalidation endpoints, one per broker of the list and in
//  its order: given, or for each broker the port after its node port on
//  the same host (the broker's default layout).  False (said on stderr)
//  when a given list does not have one per broker.
static bool
s_invalidate_endpoints (const char *brokers, const char *given, char *out, size_t size)
{
    bs_endpoints_t *list = bs_endpoints_new (brokers);
    if (!list) {
        fprintf (stderr, "bookstore-node: --broker must be an endpoint or a comma-separated list of them\n");
        return false;
    }
    size_t count = bs_endpoints_size (list);
    bool ok = true;
    out [0] = 0;
    if (given && *given) {
        bs_endpoints_t *mine = bs_endpoints_new (given);
        ok = mine && bs_endpoints_size (mine) == count && strlen (given) < size;
        if (ok)
            snprintf (out, size, "%s", given);
        else
            fprintf (stderr, "bookstore-node: --invalidate needs one endpoint per broker of --broker (%zu), "
                             "comma-separated\n", count);
        bs_endpoints_destroy (&mine);
    }
    else
    for (size_t i = 0; i < count && ok; i++) {
        const char *broker = bs_endpoints_at (list, i);
        const char *colon = strrchr (broker, ':');
        int64_t port;
        size_t used = strlen (out);
        int n;
        if (colon && bs_parse_int (colon + 1, 1, 65534, &port))
            n = snprintf (out + used, size - used, "%s%.*s:%d", i? ",": "", (int) (colon - broker), broker,
                          (int) port + 1);
        else
            n = snprintf (out + used, size - used, "%s%s", i? ",": "", broker);
        ok = n >= 0 && (size_t) n < size - used;
    }
    bs_endpoints_destroy (&list);
    return ok;
}

int
main (int argc, char **argv)
{
    bs_settings_t *settings = bs_settings_new ("node", s_table, argc, argv);
    if (!settings)
        return 2;
    if (bs_settings_help_shown (settings)) {
        bs_settings_destroy (&settings);
        return 0;
    }
    int rc = 2;
    node_t node = { .service = bs_settings_get (settings, "service") };
    int64_t profile_seconds = 0, log_keep = 0;
    int64_t heartbeat, liveness, map_mb, map_max_mb, restock_period, restock_amount, timeout, attempts;
    int64_t insync_timeout, min_insync, hwm, drop_every, inval_timeout, inval_attempts;
    if (strcmp (node.service, "catalog") != 0 && strcmp (node.service, "order") != 0) {
        fprintf (stderr, "bookstore-node: --service must be catalog or order\n");
        goto done;
    }
    if (!bs_settings_int (settings, "heartbeat-ms", &heartbeat)
    ||  !bs_settings_int (settings, "liveness", &liveness)
    ||  !bs_settings_int (settings, "map-size-mb", &map_mb)
    ||  !bs_settings_int (settings, "map-max-mb", &map_max_mb)
    ||  !bs_settings_int (settings, "restock-period", &restock_period)
    ||  !bs_settings_int (settings, "restock-amount", &restock_amount)
    ||  !bs_settings_int (settings, "catalog-timeout-ms", &timeout)
    ||  !bs_settings_int (settings, "catalog-attempts", &attempts)
    ||  !bs_settings_int (settings, "insync-timeout-ms", &insync_timeout)
    ||  !bs_settings_int (settings, "min-insync", &min_insync)
    ||  !bs_settings_int (settings, "hwm", &hwm)
    ||  !bs_settings_int (settings, "drop-every", &drop_every)
    ||  !bs_settings_int (settings, "invalidate-timeout-ms", &inval_timeout)
    ||  !bs_settings_int (settings, "invalidate-attempts", &inval_attempts)
    ||  !bs_settings_int (settings, "profile-seconds", &profile_seconds)
    ||  !bs_settings_int (settings, "log-keep", &log_keep))
        goto done;
    if (heartbeat < 10 || liveness < 1 || map_mb < 1 || map_max_mb < map_mb || map_max_mb > (1 << 24)
    ||  restock_period < 0
    ||  restock_amount < 1 || restock_amount > 1000000 || timeout < 1 || attempts < 1
    ||  insync_timeout < 1 || min_insync < 1 || hwm < 0 || drop_every < 0
    ||  inval_timeout < 1 || inval_attempts < 1 || profile_seconds < 0 || profile_seconds > 86400
    ||  log_keep < 100) {
        fprintf (stderr, "bookstore-node: a numeric setting is out of range\n");
        goto done;
    }
    bs_endpoints_t *brokers = bs_endpoints_new (bs_settings_get (settings, "broker"));
    if (!brokers) {
        fprintf (stderr, "bookstore-node: --broker must be an endpoint or a comma-separated list of them\n");
        goto done;
    }
    bs_endpoints_destroy (&brokers);
    char id [65], data [512];
    if (*bs_settings_get (settings, "id"))
        snprintf (id, sizeof id, "%s", bs_settings_get (settings, "id"));
    else
        snprintf (id, sizeof id, "%s-1", node.service);
    if (*bs_settings_get (settings, "data"))
        snprintf (data, sizeof data, "%s", bs_settings_get (settings, "data"));
    else
        snprintf (data, sizeof data, "data/%s", id);
    node.id = id;
    node.heartbeat_ms = (int) heartbeat;
    node.log_keep = (uint64_t) log_keep;
    node.seed = bs_settings_get (settings, "seed");
    node.internal = zlistx_new ();
    zsys_set_logident (id);

    rc = 1;
    char own_cert [100];
    snprintf (own_cert, sizeof own_cert, "nodes/%s", id);
    if (!bs_keys_open (settings, own_cert, false, &node.keys))
        goto done;
    node.store = store_new (data, (size_t) map_mb << 20, (size_t) map_max_mb << 20);
    if (node.store && !s_check_identity (&node)) {
        rc = 2;
        goto done;
    }
    node.profile = bs_profile_new (id, s_phases, PHASE_COUNT, profile_seconds * 1000);
    if (node.store)
        store_set_profile (node.store, node.profile, PHASE_COMMIT);
    node.journal = node.store? journal_new (node.store): NULL;
    if (!node.journal)
        goto done;
    if (strcmp (node.service, "catalog") == 0) {
        node.catalog = catalog_new (node.journal);
        snprintf (node.partition, sizeof node.partition, "%s", CATALOG_PARTITION);
        char endpoint [BS_ENDPOINTS_MAX * 260];
        if (!s_invalidate_endpoints (bs_settings_get (settings, "broker"), bs_settings_get (settings, "invalidate"),
                                     endpoint, sizeof endpoint)) {
            rc = 2;
            goto done;
        }
        node.invalidator = invalidator_new (endpoint, node.keys, (int) inval_timeout, (int) inval_attempts);
        if (!node.invalidator)
            goto done;
    }
    else {
        node.orders = orders_new (node.journal);
        if (!s_home_partition (&node, node.partition, sizeof node.partition))
            goto done;
    }
    if (!node.catalog && !node.orders)
        goto done;
    char pub_ep [300], sync_ep [300];
    s_advertise (bs_settings_get (settings, "pub-bind"), bs_settings_get (settings, "pub-endpoint"), pub_ep, sizeof pub_ep);
    s_advertise (bs_settings_get (settings, "sync-bind"), bs_settings_get (settings, "sync-endpoint"), sync_ep, sizeof sync_ep);
    repl_options_t options = {
        .id = id,
        .pub_bind = bs_settings_get (settings, "pub-bind"),
        .sync_bind = bs_settings_get (settings, "sync-bind"),
        .pub_endpoint = pub_ep,
        .sync_endpoint = sync_ep,
        .dbs = node.catalog? catalog_dbs: orders_dbs,
        .mergeable = node.orders != NULL,
        .heartbeat_ms = (int) heartbeat,
        .insync_timeout_ms = (int) insync_timeout,
        .min_insync = (int) min_insync,
        .hwm = (int) hwm,
        .drop_every = (int) drop_every,
        .log_keep = (uint64_t) log_keep,
        .keys = node.keys,
    };
    node.repl = repl_new (node.journal, &options, s_send_reply, &node);
    if (!node.repl)
        goto done;
    node.link = mdpworker_new (bs_settings_get (settings, "broker"), node.service, id,
                               (int) heartbeat, (int) liveness, node.keys);
    if (!node.link) {
        fprintf (stderr, "bookstore-node: --broker must be an endpoint or a comma-separated list of them\n");
        rc = 2;
        goto done;
    }
    if (node.orders) {
        //  An order node always writes its own partition
        repl_claim (node.repl, node.partition, 1);
        node.buyer = buyer_new (bs_settings_get (settings, "broker-clients"), node.keys, node.link,
                                (int) timeout, (int) attempts, s_on_grant, &node);
        if (!node.buyer)
            goto done;
    }
    //  The status carries the endpoints, so set it before READY goes out
    s_update_status (&node);
    zsys_info ("%s: %s node serving from %s (log on %s, sync on %s; brokers %s)", id, node.service, data, pub_ep,
               sync_ep, bs_settings_get (settings, "broker"));
    s_run (&node, node.catalog? restock_period * 1000: 0, restock_amount);
    mdpworker_disconnect (node.link);
    zsys_info ("%s: stopping", id);
    rc = 0;
done:
    buyer_destroy (&node.buyer);
    invalidator_destroy (&node.invalidator);
    mdpworker_destroy (&node.link);
    repl_destroy (&node.repl);
    catalog_destroy (&node.catalog);
    orders_destroy (&node.orders);
    journal_destroy (&node.journal);
    store_destroy (&node.store);
    bs_profile_destroy (&node.profile);
    if (node.internal) {
        bs_msg_t *request;
        while ((request = zlistx_detach (node.internal, NULL)))
            bs_msg_destroy (&request);
        zlistx_destroy (&node.internal);
    }
    bs_keys_destroy (&node.keys);
    bs_settings_destroy (&settings);
    return rc;
}
