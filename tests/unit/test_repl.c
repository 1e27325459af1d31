/*  test_repl - a follower's handling of fetch replies, and the size of the
 *  replication tables.
 *
 *  A follower takes a reply (entries, snapshot parts) only from the source
 *  it fetches from now, answering its latest fetch, made at the epoch it
 *  follows now.  Taking any reply from any link let a deposed primary that
 *  answered a fetch late hand over its unreplicated tail: the follower
 *  applied it, acked it to the new primary, which then counted it in sync
 *  and released its own, different entry at that seq, which the follower
 *  skipped as applied: the two diverged for good.
 *
 *  Its tables (partitions, followers, sources) have no fixed size.
 *
 *  A real repl_t follows over inproc; ROUTER sockets of the test play the
 *  sources, and a second journal seals the entries they send.  */
#include "repl.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

static char s_dir [256];
static const char *s_dbs [] = { "books", NULL };

typedef struct {
    store_t *store;
    journal_t *journal;
    MDB_dbi books;
    repl_t *repl;
} node_t;

static void
s_no_send (void *arg, zmq_msg_t *token, const void *data, size_t size)
{
    (void) arg; (void) data; (void) size;
    zmq_msg_close (token);
}

static void
s_open (node_t *node, const char *name, bool with_repl)
{
    char path [300];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    node->store = store_new (path, 64 << 20, 64 << 20);
    node->journal = journal_new (node->store);
    CHECK (journal_db (node->journal, "books", 0, true, &node->books));
    node->repl = NULL;
    if (with_repl) {
        char pub [64], sync [64];
        snprintf (pub, sizeof pub, "inproc://%s-pub", name);
        snprintf (sync, sizeof sync, "inproc://%s-sync", name);
        repl_options_t options = {
            .id = name, .pub_bind = pub, .sync_bind = sync, .pub_endpoint = pub, .sync_endpoint = sync,
            .dbs = s_dbs, .heartbeat_ms = 100, .insync_timeout_ms = 1000, .min_insync = 1, .hwm = 1000,
            .log_keep = 1000,
        };
        node->repl = repl_new (node->journal, &options, s_no_send, NULL);
        CHECK (node->repl);
    }
}

static void
s_close (node_t *node)
{
    repl_destroy (&node->repl);
    journal_destroy (&node->journal);
    store_destroy (&node->store);
}

//  Seals one write into partition at epoch on a source's journal; returns
//  the log entry's bytes (the caller frees them)
static uint8_t *
s_seal (node_t *node, const char *partition, uint64_t epoch, const char *key, size_t *size_p)
{
    MDB_txn *txn = journal_begin (node->journal);
    CHECK (txn);
    CHECK (journal_set_epoch (node->journal, txn, partition, epoch) == 0);
    MDB_val k = { strlen (key), (void *) key }, v = { 5, (void *) "value" };
    CHECK (journal_put (node->journal, txn, node->books, &k, &v) == 0);
    uint64_t seq;
    CHECK (journal_seal (node->journal, txn, partition, &seq) == 0);
    CHECK (journal_commit (node->journal, txn) == 0);
    MDB_txn *read = store_begin (node->store, false);
    MDB_val entry;
    CHECK (journal_read (node->journal, read, partition, seq, &entry) == 0);
    uint8_t *data = malloc (entry.mv_size);
    memcpy (data, entry.mv_data, entry.mv_size);
    *size_p = entry.mv_size;
    mdb_txn_abort (read);
    return data;
}

//  The broker's map for one partition
static void
s_assign (repl_t *repl, const char *partition, uint64_t epoch, const char *primary, const char *sync)
{
    bs_msg_t *assign = bs_msg_new ();
    bs_msg_set_str (assign, BS_FIELD_op, "assign");
    bs_msg_set_list (assign, BS_FIELD_partitions);
    bs_msg_t *entry = bs_msg_new ();
    bs_msg_set_str (entry, BS_FIELD_partition, partition);
    bs_msg_set_int (entry, BS_FIELD_epoch, (int64_t) epoch);
    bs_msg_set_str (entry, BS_FIELD_primary, primary);
    bs_msg_set_str (entry, BS_FIELD_source, primary);
    bs_msg_set_str (entry, BS_FIELD_pub, "");
    bs_msg_set_str (entry, BS_FIELD_sync, sync);
    bs_msg_set_str (entry, BS_FIELD_isr, "");
    bs_msg_append (assign, BS_FIELD_partitions, &entry);
    repl_assign (repl, assign);
    bs_msg_destroy (&assign);
}

//  Runs the repl's poll loop for ms
static void
s_pump (repl_t *repl, int ms)
{
    int64_t until = zclock_mono () + ms;
    while (zclock_mono () < until) {
        zmq_pollitem_t items [256];
        int n = repl_pollitems (repl, items, 256);
        if (zmq_poll (items, n, 10) > 0)
            repl_on_poll (repl, items, n);
    }
}

//  A fetch as a source's ROUTER receives it: the follower's identity and
//  the request; false when none came within a second
typedef struct {
    zframe_t *identity;
    bs_msg_t *request;
} fetch_t;

static bool
s_recv_fetch (zsock_t *router, repl_t *repl, fetch_t *fetch)
{
    memset (fetch, 0, sizeof *fetch);
    int64_t until = zclock_mono () + 1000;
    while (zclock_mono () < until) {
        zmsg_t *msg = zmsg_recv_nowait (router);
        if (msg) {
            fetch->identity = zmsg_pop (msg);
            zframe_t *body = zmsg_pop (msg);
            bs_err_t err;
            char reason [128];
            fetch->request = body? bs_msg_decode (zframe_data (body), zframe_size (body), &err, reason, sizeof reason): NULL;
            zframe_destroy (&body);
            zmsg_destroy (&msg);
            if (fetch->request && bs_msg_op (fetch->request) == BS_OP_fetch)
                return true;
            zframe_destroy (&fetch->identity);
            bs_msg_destroy (&fetch->request);
            continue;
        }
        s_pump (repl, 10);
    }
    return false;
}

static void
s_fetch_destroy (fetch_t *fetch)
{
    zframe_destroy (&fetch->identity);
    bs_msg_destroy (&fetch->request);
}

//  A source answers a fetch with entries; rid_of: the fetch whose rid the
//  reply carries back
static void
s_reply_entries (zsock_t *router, const fetch_t *to, const fetch_t *rid_of, const char *partition,
                 const uint8_t *data, size_t size, uint64_t head)
{
    bs_msg_t *reply = bs_msg_new ();
    bs_msg_set_str (reply, BS_FIELD_op, "entries");
    bs_msg_set_str (reply, BS_FIELD_partition, partition);
    bs_msg_set_int (reply, BS_FIELD_head, (int64_t) head);
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (rid_of->request, BS_FIELD_rid, &rid_size);
    if (rid)
        bs_msg_set_bin (reply, BS_FIELD_rid, rid, rid_size);
    bs_msg_set_list (reply, BS_FIELD_entries);
    bs_msg_t *item = bs_msg_new ();
    bs_msg_set_bin (item, BS_FIELD_data, data, size);
    bs_msg_append (reply, BS_FIELD_entries, &item);
    size_t encoded_size;
    uint8_t *encoded = bs_msg_encode (reply, &encoded_size);
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *) { zframe_dup (to->identity) });
    zmsg_addmem (msg, encoded, encoded_size);
    zmsg_send (&msg, router);
    free (encoded);
    bs_msg_destroy (&reply);
}

//  --------------------------------------------------------------------------

//  The decision itself: the current source, the latest fetch, this epoch
static void
test_reply_acceptable (void)
{
    uint8_t rid [BS_RID_SIZE];
    repl_fetch_rid (2, 7, rid);
    CHECK (repl_reply_acceptable (true, rid, sizeof rid, 2, 7));
    //  Over a link we no longer fetch from (a deposed primary)
    CHECK (!repl_reply_acceptable (false, rid, sizeof rid, 2, 7));
    //  A fetch made before the epoch moved on
    uint8_t old [BS_RID_SIZE];
    repl_fetch_rid (1, 7, old);
    CHECK (!repl_reply_acceptable (true, old, sizeof old, 2, 7));
    //  An earlier fetch of ours, answered late
    CHECK (!repl_reply_acceptable (true, rid, sizeof rid, 2, 8));
    //  No rid, or not one of ours
    CHECK (!repl_reply_acceptable (true, NULL, 0, 2, 7));
    CHECK (!repl_reply_acceptable (true, rid, 8, 2, 7));
}

//  The interleaving: we fetch from P1 at epoch 1; N is elected at epoch 2
//  and we fetch from it; P1 answers our old fetch with an entry N never
//  had.  It is not applied; nor is the same stale answer sent over N's own
//  link; N's answer to our current fetch is.
static void
test_late_reply_not_applied (void)
{
    node_t follower, p1, n;
    s_open (&follower, "follower", true);
    s_open (&p1, "p1", false);
    s_open (&n, "n", false);
    zsock_t *p1_router = zsock_new_router ("inproc://p1-sync");
    zsock_t *n_router = zsock_new_router ("inproc://n-sync");
    CHECK (p1_router && n_router);

    s_assign (follower.repl, "catalog", 1, "p1", "inproc://p1-sync");
    fetch_t old_fetch, new_fetch;
    CHECK (s_recv_fetch (p1_router, follower.repl, &old_fetch));
    s_assign (follower.repl, "catalog", 2, "n", "inproc://n-sync");
    CHECK (s_recv_fetch (n_router, follower.repl, &new_fetch));
    CHECK (old_fetch.request && bs_msg_bin (old_fetch.request, BS_FIELD_rid, NULL));

    size_t tail_size, entry_size;
    uint8_t *tail = s_seal (&p1, "catalog", 1, "unreplicated", &tail_size);
    uint8_t *entry = s_seal (&n, "catalog", 2, "written-by-n", &entry_size);
    if (old_fetch.request && new_fetch.request) {
        //  P1, deposed, answers the fetch we made of it
        s_reply_entries (p1_router, &old_fetch, &old_fetch, "catalog", tail, tail_size, 1);
        s_pump (follower.repl, 200);
        CHECK (journal_seq (follower.journal, "catalog") == 0);
        //  The same stale answer over the current source's link
        s_reply_entries (n_router, &new_fetch, &old_fetch, "catalog", tail, tail_size, 1);
        s_pump (follower.repl, 200);
        CHECK (journal_seq (follower.journal, "catalog") == 0);
        //  The current source answering the current fetch is taken
        s_reply_entries (n_router, &new_fetch, &new_fetch, "catalog", entry, entry_size, 1);
        s_pump (follower.repl, 200);
        CHECK (journal_seq (follower.journal, "catalog") == 1);
        CHECK (journal_last_epoch (follower.journal, "catalog") == 2);
    }
    free (tail);
    free (entry);
    s_fetch_destroy (&old_fetch);
    s_fetch_destroy (&new_fetch);
    zsock_destroy (&p1_router);
    zsock_destroy (&n_router);
    s_close (&follower);
    s_close (&p1);
    s_close (&n);
}

//  Past 32 partitions, 16 followers of one partition and 16 sources, the
//  tables used to be full: a claim failed (ignored), a follower's acks
//  were dropped and it never counted in sync, a partition whose source
//  found no room never fetched.  They grow now.
#define MANY 40

//  The in-sync set's expansion window: the primary reported F in sync (its
//  report of version 20), the broker is adding F to the stored set on that
//  word, and F falls behind before the confirmation arrives.  The primary
//  must keep waiting for F: once the write lands, F is electable.
static void
test_waits_for_a_follower_it_reported (void)
{
    //  In sync now, or listed by the broker: always
    CHECK (repl_waits_for (true, false, 0, 0));
    CHECK (repl_waits_for (false, true, 0, 0));
    //  Evicted here, not confirmed, but reported at 20 while the broker's
    //  set is built from report 10: it may still be added
    CHECK (repl_waits_for (false, false, 20, 10));
    //  A set built from report 20 or newer leaves it out: no longer
    CHECK (!repl_waits_for (false, false, 20, 20));
    CHECK (!repl_waits_for (false, false, 20, 35));
    //  Never reported in sync: nothing to wait for
    CHECK (!repl_waits_for (false, false, 0, 0));
    //  A broker that knows no report yet (a fresh one, 0) leaves the
    //  primary waiting for every follower it ever reported
    CHECK (repl_waits_for (false, false, 5, 0));
}

static void
test_tables_grow (void)
{
    node_t node;
    s_open (&node, "many", true);
    char name [32];
    //  Partitions: MANY of our own
    int claimed = 0;
    for (int i = 0; i < MANY; i++) {
        snprintf (name, sizeof name, "p-%d", i);
        claimed += repl_claim (node.repl, name, 1) == 0 && repl_is_primary (node.repl, name);
    }
    CHECK (claimed == MANY);

    //  Followers: MANY replicas ack p-0, each is in sync
    zsock_t *dealers [MANY];
    for (int i = 0; i < MANY; i++) {
        dealers [i] = zsock_new (ZMQ_DEALER);
        snprintf (name, sizeof name, "f-%d", i);
        zsock_set_identity (dealers [i], name);
        zsock_connect (dealers [i], "inproc://many-sync");
        bs_msg_t *ack = bs_msg_new ();
        bs_msg_set_str (ack, BS_FIELD_op, "ack");
        bs_msg_set_str (ack, BS_FIELD_partition, "p-0");
        bs_msg_set_int (ack, BS_FIELD_epoch, 1);
        bs_msg_set_int (ack, BS_FIELD_seq, 0);
        size_t size;
        uint8_t *data = bs_msg_encode (ack, &size);
        zsock_send (dealers [i], "b", data, size);
        free (data);
        bs_msg_destroy (&ack);
    }
    s_pump (node.repl, 300);
    bs_msg_t *status = bs_msg_new ();
    repl_status (node.repl, status);
    int insync = -1, parts = (int) bs_msg_count (status, BS_FIELD_partitions);
    for (int i = 0; i < parts; i++) {
        bs_msg_t *entry = bs_msg_at (status, BS_FIELD_partitions, i);
        if (streq (bs_msg_str (entry, BS_FIELD_partition), "p-0")) {
            const char *isr = bs_msg_str (entry, BS_FIELD_isr);
            insync = *isr? 1: 0;
            for (const char *c = isr; *c; c++)
                insync += *c == ',';
        }
    }
    bs_msg_destroy (&status);
    CHECK (parts == MANY);
    CHECK (insync == MANY);
    for (int i = 0; i < MANY; i++)
        zsock_destroy (&dealers [i]);

    //  Sources: MANY partitions to follow, each from a source of its own;
    //  every source gets a fetch
    zsock_t *sources [MANY];
    for (int i = 0; i < MANY; i++) {
        char sync [64], primary [32];
        snprintf (sync, sizeof sync, "inproc://s-%d", i);
        snprintf (primary, sizeof primary, "s-%d", i);
        snprintf (name, sizeof name, "q-%d", i);
        sources [i] = zsock_new_router (sync);
        s_assign (node.repl, name, 1, primary, sync);
    }
    CHECK (repl_pollitem_count (node.repl) == 2 + MANY);
    int fetched = 0;
    for (int i = 0; i < MANY; i++) {
        fetch_t fetch;
        if (s_recv_fetch (sources [i], node.repl, &fetch))
            fetched++;
        s_fetch_destroy (&fetch);
        zsock_destroy (&sources [i]);
    }
    CHECK (fetched == MANY);
    s_close (&node);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    snprintf (s_dir, sizeof s_dir, "/tmp/bookstore-unit-repl.%d", (int) getpid ());
    zsys_dir_create ("%s", s_dir);
    RUN (test_reply_acceptable);
    RUN (test_late_reply_not_applied);
    RUN (test_waits_for_a_follower_it_reported);
    RUN (test_tables_grow);
    zsys_dir_delete ("%s", s_dir);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system (cmd) != 0)
        fprintf (stderr, "could not remove %s\n", s_dir);
    return DONE ();
}
