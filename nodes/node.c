/*  node - a catalog or order replica: its modules and its event loop  */
#include "node.h"
#include "node_status.h"
#include "bs_alloc.h"
#include "bs_msg.h"
#include "bs_name.h"
#include "bs_stream.h"
#include "buyer.h"
#include "catalog.h"
#include "invalidator.h"
#include "journal.h"
#include "mdpworker.h"
#include "orders.h"
#include "repl_zmq.h"
#include "store.h"

#include <czmq.h>
#include <string.h>

#define BATCH_MAX 512           //  writes per transaction
#define TRIM_MAX 20000          //  log entries deleted per turn at most

//  The event loop's phases, for --profile-seconds
enum { PHASE_WAIT, PHASE_REQUESTS, PHASE_BUYER, PHASE_EXECUTE, PHASE_INVALIDATE, PHASE_COMMIT,
       PHASE_REPLICATE, PHASE_REPLY, PHASE_OTHER, PHASE_WRITES, PHASE_COUNT };
static const char *s_phases [PHASE_COUNT] = {
    "wait", "requests", "buyer", "execute", "invalidate", "commit", "replicate", "reply", "other", "writes"
};

typedef struct {
    zmq_msg_t token;            //  empty for internal writes (seed, restock)
    bs_msg_t *request;          //  catalog writes
    uint8_t rid [BS_RID_SIZE];  //  order records
    bs_msg_t *decrement;
    bool has_token;
} write_t;

struct _node_t {
    char service [BS_SERVICE_MAX + 1];
    char id [BS_ID_MAX + 1];
    char partition [BS_ID_MAX + 1];     //  catalog: "catalog"; order: this node's own
    mdpworker_t *link;
    store_t *store;
    journal_t *journal;
    catalog_t *catalog;
    orders_t *orders;
    buyer_t *buyer;
    invalidator_t *invalidator; //  catalog: announces changes to the cache
    bs_keys_t *keys;            //  CURVE, or NULL for plain
    repl_zmq_t *repl_zmq;       //  replication's sockets
    repl_t *repl;               //  ...and its core (the shell's)
    char *seed;                 //  catalog file for an empty primary, "" for none
    bool seeded;
    write_t batch [BATCH_MAX];
    int batch_count;
    zlistx_t *internal;         //  bs_msg_t requests made by the node itself
    zlistx_t *seed_books;       //  catalog: the initial books, read at start
                                //  while the store is empty (NULL: none)
    int heartbeat_ms;
    int64_t next_status;
    uint64_t log_keep;          //  log entries kept per partition
    int64_t next_trim;
    bs_profile_t *profile;      //  NULL unless --profile-seconds
    int64_t restock_period_ms;  //  catalog: 0 for never
    int64_t restock_amount;
    //  Publish a batch's entries before its own commit, so that followers
    //  commit in parallel with us (s_flush).  Safe because a primary never
    //  writes again at an epoch it may have published uncommitted entries
    //  at (the catalog: s_may_lead; an order node: a new claim each start
    //  and after a failed commit), and because a follower whose order
    //  snapshot drops such a tail keeps its records as orphans for its own
    //  partition to re-record (journal_adopt_orphans).  --early-publish 0
    //  turns it off, for comparison.
    bool early_publish;
    int64_t next_claim;         //  order node: when to try again to claim
                                //  its partition after a failed claim
    //  Catalog: direct requests on the sync socket served, and refused
    uint64_t direct_served, direct_refused;
    int64_t direct_warned;
    //  The broker link, its monitor, the buyer's sockets, replication's
    zmq_pollitem_t *poll_items;
    int poll_cap;
};

//  --------------------------------------------------------------------------
//  Replies

//  A token for a reply held until its write is replicated: it says which
//  way the reply goes (the broker link, or a peer on the sync socket) and
//  to whom.  An address too long for one (none is) leaves it empty: the
//  reply is then dropped, and the asker's retry gets the stored one.
static void
s_held_token (zmq_msg_t *held, int kind, const void *address, size_t size)
{
    uint8_t token [1 + BS_TOKEN_ADDRESS_MAX];
    size_t token_size = bs_stream_token (kind, address, size, token);
    zmq_msg_init_size (held, token_size);
    memcpy (zmq_msg_data (held), token, token_size);
}

//  Sends a held reply (replication releases it) the way its token says
static void
s_send_reply (void *arg, zmq_msg_t *token, const void *data, size_t size)
{
    node_t *self = arg;
    const uint8_t *address;
    size_t address_size;
    int kind = bs_stream_token_kind (zmq_msg_data (token), zmq_msg_size (token), &address, &address_size);
    if (kind == BS_TOKEN_BROKER) {
        zmq_msg_t broker_token;
        zmq_msg_init_size (&broker_token, address_size);
        memcpy (zmq_msg_data (&broker_token), address, address_size);
        mdpworker_reply (self->link, &broker_token, data, size);
        zmq_msg_close (&broker_token);
    }
    else
    if (kind == BS_TOKEN_PEER)
        repl_zmq_reply (self->repl_zmq, address, address_size, data, size);
    zmq_msg_close (token);
}

//  Answers a request from the broker link at once
static void
s_reply_msg (node_t *self, zmq_msg_t *token, bs_msg_t *reply, const uint8_t *rid)
{
    if (rid)
        bs_msg_set_bin (reply, BS_FIELD_rid, rid, BS_RID_SIZE);
    size_t size;
    uint8_t *data = bs_msg_encode (reply, &size);
    mdpworker_reply (self->link, token, data, size);
    free (data);
}

//  --------------------------------------------------------------------------
//  Group commit

//  Executes every queued write in one transaction, publishes the entries,
//  and hands each reply to replication to be sent once acked.  With
//  early_publish the entries go out as soon as the cache invalidation is
//  acknowledged (nothing may become visible before), and our commit runs
//  while the followers apply theirs; a reply waits for both (repl_defer,
//  repl_committed).  If our commit then fails, followers may hold seqs we
//  never will at this epoch: we give up the primary role (repl_resign) and
//  the broker elects anew at a higher epoch, which truncates them.
//  An order node writes its own partition only while it leads it: after a
//  commit failed with its entries published it takes a new epoch
//  (repl_claim), and until its store lets it, its buys are refused
static bool
s_order_leads (node_t *self)
{
    if (repl_is_primary (self->repl, self->partition))
        return true;
    int64_t now = zclock_mono ();
    if (now < self->next_claim)
        return false;
    self->next_claim = now + 1000;
    if (repl_claim (self->repl, self->partition, NULL) != 0)
        return false;
    self->next_status = 0;
    return true;
}

static void
s_flush (node_t *self)
{
    //  Orphans wait for a batch of their own when no write comes
    bool adopt = self->orders && journal_has_orphans (self->journal);
    if (self->batch_count == 0 && !adopt)
        return;
    bs_msg_t *replies [BATCH_MAX] = { NULL };
    uint64_t seqs [BATCH_MAX] = { 0 };
    int left = bs_profile_enter (self->profile, PHASE_EXECUTE);
    bs_profile_add (self->profile, PHASE_WRITES, self->batch_count);
    bs_err_t fail = BS_ERR_storage;
    const char *why = NULL;
    bool leads = !self->orders || s_order_leads (self);
    MDB_txn *txn = leads? journal_begin (self->journal): NULL;
    int rc = txn? 0: -1;
    if (!leads)
        why = "its store refuses to take a new epoch for its orders";
    if (rc == 0 && adopt) {
        size_t adopted = 0;
        rc = journal_adopt_orphans (self->journal, txn, self->partition, BATCH_MAX, &adopted);
        if (rc == 0 && adopted)
            zsys_info ("%s: re-recorded %zu records that a replaced log tail of another partition held here "
                       "alone", self->id, adopted);
    }
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
    if (!why)
        why = store_failure (store_read_only (self->store)? EROFS: rc);
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
    bs_msg_destroy (&invalidation);
    bool published = false;
    if (rc == 0 && self->early_publish) {
        bs_profile_enter (self->profile, PHASE_REPLICATE);
        repl_publish (self->repl, zclock_mono ());
        published = true;
    }
    bs_profile_enter (self->profile, PHASE_EXECUTE);
    if (rc == 0) {
        rc = journal_commit (self->journal, txn);
        if (rc != 0)
            why = store_failure (rc);
    }
    else
    if (txn)
        journal_abort (self->journal, txn);
    bs_profile_enter (self->profile, PHASE_REPLY);
    //  An order node's writes record grants the catalog made already: the
    //  copy is taken whatever happens here, and a retry with the same rid
    //  answers the order (recorded by then, or recorded by the retry)
    //  without taking another.  So never "nothing changed"
    char order_why [256];
    if (rc != 0 && self->orders && fail == BS_ERR_storage) {
        const char *cut = strstr (why, "; nothing changed");
        int length = cut? (int) (cut - why): (int) strlen (why);
        snprintf (order_why, sizeof order_why, "this order node could not record the order (%.*s); the copy "
                  "is reserved for this rid: retry with the same rid to get the order", length, why);
        fail = BS_ERR_unavailable;
        why = order_why;
    }
    if (rc == 0) {
        if (!published)
            repl_publish (self->repl, zclock_mono ());
        repl_committed (self->repl, self->partition, journal_seq (self->journal, self->partition), zclock_mono ());
        //  Report the new head at once: a broker that starts now must not
        //  learn an older one (see the broker's cache)
        self->next_status = 0;
    }
    else
    if (published) {
        //  Followers may hold entries we never will: never write those
        //  seqs again at this epoch
        repl_resign (self->repl, zclock_mono ());
        self->next_claim = 0;
        self->next_status = 0;
        if (self->orders)
            s_order_leads (self);
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
            repl_defer (self->repl, self->partition, seqs [i], &w->token, data, size, zclock_mono ());
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
        s_held_token (&w->token, BS_TOKEN_BROKER, zmq_msg_data (&tokens [i]), zmq_msg_size (&tokens [i]));
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
        s_held_token (&w->token, BS_TOKEN_BROKER, zmq_msg_data (token), zmq_msg_size (token));
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
        s_held_token (&held, BS_TOKEN_BROKER, zmq_msg_data (token), zmq_msg_size (token));
        repl_defer (self->repl, self->partition, journal_seq (self->journal, self->partition), &held, data, size,
                    zclock_mono ());
        free (data);
        bs_msg_destroy (&reply);
        bs_msg_destroy (&request);
        return;
    }
    s_reply_msg (self, token, reply, rid);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
}

//  A direct request on the sync socket (repl_zmq.h): an order node's
//  decrement, queued like one from the broker and answered on the same
//  socket once replicated.  Anything else is refused with an error, and
//  counted; it changes nothing.
static void
s_on_direct (void *arg, const void *peer, size_t peer_size, const void *data, size_t size, bool allowed)
{
    node_t *self = arg;
    char reason [160];
    bs_err_t err = BS_ERR_forbidden;
    snprintf (reason, sizeof reason, "only order nodes may send requests to a node's sync socket");
    bs_msg_t *request = NULL;
    if (allowed) {
        request = bs_msg_decode (data, size, &err, reason, sizeof reason);
        if (request)
            err = bs_msg_validate_request (request, reason, sizeof reason);
    }
    if (err == BS_OK && (!self->catalog || bs_msg_op (request) != BS_OP_decrement)) {
        err = BS_ERR_unknown_op;
        snprintf (reason, sizeof reason, "a node's sync socket takes the catalog's 'decrement' alone");
    }
    if (err == BS_OK)
        err = repl_can_write (self->repl, self->partition, reason, sizeof reason);
    if (err == BS_OK) {
        self->direct_served++;
        write_t *w = s_queue (self);
        w->request = request;
        s_held_token (&w->token, BS_TOKEN_PEER, peer, peer_size);
        w->has_token = true;
        return;
    }
    //  Not the primary (or too few in sync) is the asker's cue to go
    //  through the broker: not a refusal of the path
    if (err != BS_ERR_unavailable) {
        self->direct_refused++;
        if (zclock_mono () - self->direct_warned > 1000) {
            self->direct_warned = zclock_mono ();
            zsys_warning ("%s: refused a direct request from '%.*s' (%s: %s); %llu refused so far", self->id,
                          (int) (peer_size < 64? peer_size: 64), (const char *) peer, bs_err_name (err), reason,
                          (unsigned long long) self->direct_refused);
        }
    }
    bs_msg_t *reply = bs_msg_new_error (err, reason);
    const uint8_t *rid = request? bs_msg_bin (request, BS_FIELD_rid, NULL): NULL;
    if (rid)
        bs_msg_set_bin (reply, BS_FIELD_rid, rid, BS_RID_SIZE);
    size_t reply_size;
    uint8_t *reply_data = bs_msg_encode (reply, &reply_size);
    repl_zmq_reply (self->repl_zmq, peer, peer_size, reply_data, reply_size);
    free (reply_data);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
}

//  An order node's assignment also names the catalog's primary and its sync
//  endpoint, for the buyer's direct path.  Returns the assignment without
//  that entry (an order node keeps no copy of the catalog), or NULL when it
//  had none.
static bs_msg_t *
s_take_catalog_entry (node_t *self, const bs_msg_t *assign)
{
    size_t count = bs_msg_count (assign, BS_FIELD_partitions);
    bool found = false;
    for (size_t i = 0; i < count && !found; i++)
        found = strcmp (bs_msg_str (bs_msg_at (assign, BS_FIELD_partitions, i), BS_FIELD_partition),
                        CATALOG_PARTITION) == 0;
    if (!found) {
        buyer_set_catalog (self->buyer, "", "", 0);
        return NULL;
    }
    bs_msg_t *rest = bs_msg_new ();
    bs_msg_set_str (rest, BS_FIELD_op, bs_op_name (BS_OP_assign));
    bs_msg_set_list (rest, BS_FIELD_partitions);
    for (size_t i = 0; i < count; i++) {
        const bs_msg_t *entry = bs_msg_at (assign, BS_FIELD_partitions, i);
        if (strcmp (bs_msg_str (entry, BS_FIELD_partition), CATALOG_PARTITION) == 0) {
            buyer_set_catalog (self->buyer, bs_msg_str (entry, BS_FIELD_primary), bs_msg_str (entry, BS_FIELD_sync),
                               (uint64_t) bs_msg_int (entry, BS_FIELD_epoch));
            continue;
        }
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

//  Destroys a list of requests and what it holds
static void
s_drop_requests (zlistx_t **list_p)
{
    if (!*list_p)
        return;
    bs_msg_t *request;
    while ((request = zlistx_detach (*list_p, NULL)))
        bs_msg_destroy (&request);
    zlistx_destroy (list_p);
}

static void
s_on_assign (node_t *self, zmq_msg_t *body)
{
    bs_err_t err;
    char reason [128];
    bs_msg_t *assign = bs_msg_decode (zmq_msg_data (body), zmq_msg_size (body), &err, reason, sizeof reason);
    if (assign && bs_msg_validate_request (assign, reason, sizeof reason) == BS_OK && bs_msg_op (assign) == BS_OP_assign) {
        bs_msg_t *rest = self->buyer? s_take_catalog_entry (self, assign): NULL;
        repl_assign (self->repl, rest? rest: assign, zclock_mono ());
        bs_msg_destroy (&rest);
    }
    else
        zsys_warning ("%s: dropped a malformed assignment: %s", self->id, reason);
    bs_msg_destroy (&assign);
    //  A new primary of an empty catalog loads the initial books
    if (self->catalog && !self->seeded && *self->seed && repl_is_primary (self->repl, CATALOG_PARTITION)) {
        self->seeded = true;
        if (catalog_empty (self->catalog) && journal_seq (self->journal, CATALOG_PARTITION) == 0) {
            int n = 0;
            if (self->seed_books) {
                bs_msg_t *request;
                while ((request = zlistx_detach (self->seed_books, NULL))) {
                    zlistx_add_end (self->internal, request);
                    n++;
                }
            }
            else
                n = catalog_seed_requests (self->seed, self->internal);
            if (n > 0)
                zsys_info ("%s: loading %d books from %s", self->id, n, self->seed);
        }
    }
    //  Read at start in case we would lead an empty catalog: not needed
    //  once we seeded it or it holds anything
    if (self->seed_books && (self->seeded || journal_seq (self->journal, CATALOG_PARTITION) > 0))
        s_drop_requests (&self->seed_books);
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
    //  One batch a turn: a large seed catalog queued whole would keep the
    //  loop in its commits for seconds (25,000 books: 22 s under the
    //  sanitizers), deaf to heartbeats, replication and reads, and the
    //  broker would declare the primary dead; between batches the loop
    //  polls (without waiting while more are queued)
    bs_msg_t *request;
    while (self->batch_count < BATCH_MAX && (request = zlistx_detach (self->internal, NULL))) {
        write_t *w = s_queue (self);
        w->request = request;
    }
}

static void
s_update_status (node_t *self)
{
    //  A primary's report is versioned in wall-clock milliseconds, so that
    //  the version grows across our restarts too
    size_t size;
    uint8_t *data = node_status_encode (self->id, self->service, self->repl, self->journal,
                                        (uint64_t) zclock_time (), &size);
    mdpworker_set_status (self->link, data, size);
    free (data);
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
    //  The id fits (bookstore-node refuses a longer one); the precision
    //  says so to the compiler too
    snprintf (partition, size, "%.*s.%02x%02x%02x", (int) (BS_ID_MAX - BS_PARTITION_SUFFIX_LEN), self->id,
              random [0], random [1], random [2]);
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

//  --------------------------------------------------------------------------
//  Construction

node_t *
node_new (const node_options_t *options, bool *refused_p)
{
    *refused_p = false;
    node_t *self = bs_alloc (1, sizeof (node_t));
    snprintf (self->service, sizeof self->service, "%s", options->service);
    snprintf (self->id, sizeof self->id, "%s", options->id);
    self->seed = bs_strdup (options->seed? options->seed: "");
    self->internal = zlistx_new ();
    self->keys = options->keys;
    self->heartbeat_ms = options->heartbeat_ms;
    self->log_keep = options->log_keep;
    self->restock_amount = options->restock_amount;
    bool catalog = strcmp (self->service, "catalog") == 0;
    self->restock_period_ms = catalog? options->restock_period_ms: 0;
    self->early_publish = options->early_publish;
    const char *id = self->id;

    self->store = store_new (options->data, options->map_size, options->map_max);
    if (self->store && !s_check_identity (self)) {
        *refused_p = true;
        goto fail;
    }
    self->profile = bs_profile_new (id, s_phases, PHASE_COUNT, options->profile_ms);
    if (self->store)
        store_set_profile (self->store, self->profile, PHASE_COMMIT);
    self->journal = self->store? journal_new (self->store): NULL;
    if (!self->journal)
        goto fail;
    if (catalog) {
        self->catalog = catalog_new (self->journal);
        snprintf (self->partition, sizeof self->partition, "%s", CATALOG_PARTITION);
        //  A large initial catalog takes seconds to read (25,000 books:
        //  about 2 s): read it now, before we register, rather than in the
        //  loop when we are elected, where the broker would miss our
        //  heartbeats meanwhile and declare us dead
        if (self->catalog && *self->seed && catalog_empty (self->catalog)
        &&  journal_seq (self->journal, CATALOG_PARTITION) == 0) {
            self->seed_books = zlistx_new ();
            if (catalog_seed_requests (self->seed, self->seed_books) < 0)
                s_drop_requests (&self->seed_books);
        }
        self->invalidator = invalidator_new (options->invalidate, self->keys, options->invalidate_timeout_ms,
                                             options->invalidate_attempts);
        if (!self->invalidator)
            goto fail;
    }
    else {
        self->orders = orders_new (self->journal);
        if (!s_home_partition (self, self->partition, sizeof self->partition))
            goto fail;
    }
    if (!self->catalog && !self->orders)
        goto fail;
    repl_options_t repl_options = {
        .id = id,
        .pub_endpoint = options->pub_endpoint,
        .sync_endpoint = options->sync_endpoint,
        .dbs = self->catalog? catalog_dbs: orders_dbs,
        .mergeable = self->orders != NULL,
        .heartbeat_ms = options->heartbeat_ms,
        .insync_timeout_ms = options->insync_timeout_ms,
        .min_insync = options->min_insync,
        .drop_every = options->drop_every,
        .log_keep = options->log_keep,
    };
    repl_zmq_options_t repl_sockets = {
        .pub_bind = options->pub_bind,
        .sync_bind = options->sync_bind,
        .hwm = options->hwm,
        .keys = self->keys,
        .direct = s_on_direct,
    };
    self->repl_zmq = repl_zmq_new (self->journal, &repl_options, &repl_sockets, s_send_reply, self);
    if (!self->repl_zmq)
        goto fail;
    self->repl = repl_zmq_core (self->repl_zmq);
    self->link = mdpworker_new (options->brokers, self->service, id, options->heartbeat_ms, options->liveness,
                                self->keys);
    if (!self->link) {
        fprintf (stderr, "bookstore-node: --broker must be an endpoint or a comma-separated list of them\n");
        *refused_p = true;
        goto fail;
    }
    if (self->orders) {
        //  An order node always writes its own partition, at a new epoch
        //  each start (repl_claim says why)
        if (repl_claim (self->repl, self->partition, NULL) != 0) {
            fprintf (stderr, "bookstore-node: cannot take the primary role of its own partition %s\n",
                     self->partition);
            goto fail;
        }
        self->buyer = buyer_new (options->broker_clients, self->keys, self->link, options->catalog_timeout_ms,
                                 options->catalog_attempts, s_on_grant, self);
        if (!self->buyer)
            goto fail;
        if (options->direct_buys)
            buyer_direct (self->buyer, id);
    }
    //  The status carries the endpoints, so set it before READY goes out
    s_update_status (self);
    zsys_info ("%s: %s node serving from %s (log on %s, sync on %s; brokers %s)", id, self->service,
               options->data, options->pub_endpoint, options->sync_endpoint, options->brokers);
    return self;
fail:
    node_destroy (&self);
    return NULL;
}

void
node_destroy (node_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    node_t *self = *self_p;
    buyer_destroy (&self->buyer);
    invalidator_destroy (&self->invalidator);
    mdpworker_destroy (&self->link);
    repl_zmq_destroy (&self->repl_zmq);
    self->repl = NULL;
    catalog_destroy (&self->catalog);
    orders_destroy (&self->orders);
    journal_destroy (&self->journal);
    store_destroy (&self->store);
    bs_profile_destroy (&self->profile);
    s_drop_requests (&self->internal);
    s_drop_requests (&self->seed_books);
    free (self->seed);
    free (self->poll_items);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  The event loop

void
node_run (node_t *self)
{
    int64_t restock_period_ms = self->restock_period_ms, restock_amount = self->restock_amount;
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
        int64_t repl_wait = repl_tick (self->repl, now);
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
        if (zlistx_size (self->internal))
            wait = 0;
        //  Replication's sockets grow with the sources it fetches from
        int need = 4 + repl_zmq_pollitem_count (self->repl_zmq);
        if (need > self->poll_cap) {
            zmq_pollitem_t *grown = realloc (self->poll_items, (size_t) need * sizeof (zmq_pollitem_t));
            if (!grown)
                abort ();
            self->poll_items = grown;
            self->poll_cap = need;
        }
        zmq_pollitem_t *items = self->poll_items;
        int n = 0;
        items [n++] = (zmq_pollitem_t) { mdpworker_socket (self->link), 0, ZMQ_POLLIN, 0 };
        if (self->buyer)
            items [n++] = (zmq_pollitem_t) { buyer_socket (self->buyer), 0, ZMQ_POLLIN, 0 };
        int direct_item = -1;
        if (self->buyer && buyer_direct_socket (self->buyer)) {
            direct_item = n;
            items [n++] = (zmq_pollitem_t) { buyer_direct_socket (self->buyer), 0, ZMQ_POLLIN, 0 };
        }
        //  Wakes the loop when the broker's connection drops; the tick reads it
        if (mdpworker_monitor (self->link))
            items [n++] = (zmq_pollitem_t) { mdpworker_monitor (self->link), 0, ZMQ_POLLIN, 0 };
        int first_repl = n;
        n += repl_zmq_pollitems (self->repl_zmq, items + n, self->poll_cap - n);
        bs_profile_enter (self->profile, PHASE_WAIT);
        if (zmq_poll (items, n, (long) (wait < 0? 0: wait)) < 0)
            break;
        //  Replication first: acks release replies, entries bring followers up
        bs_profile_enter (self->profile, PHASE_REPLICATE);
        repl_zmq_on_poll (self->repl_zmq, items + first_repl, n - first_repl);
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
        //  The socket polled is the one read: an assignment read above may
        //  have replaced it
        if (direct_item >= 0 && (items [direct_item].revents & ZMQ_POLLIN)
        &&  items [direct_item].socket == buyer_direct_socket (self->buyer))
            for (int k = 0; k < BATCH_MAX; k++) {
                buyer_on_direct_input (self->buyer);
                int events;
                size_t len = sizeof events;
                zmq_getsockopt (buyer_direct_socket (self->buyer), ZMQ_EVENTS, &events, &len);
                if (!(events & ZMQ_POLLIN))
                    break;
            }
        s_flush (self);
    }
    mdpworker_disconnect (self->link);
}
