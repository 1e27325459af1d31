/*  test_repl - the replication core, driven with time passed in and a fake
 *  network in place of sockets.
 *
 *  Each node is a real journal on its own LMDB store in a temp dir and a
 *  real repl core; its repl_io_t puts every message on one queue, and the
 *  test delivers them (all, one at a time, or not at all) to the node
 *  they are meant for: fetches and acks by sync endpoint, answers by node
 *  id, stream messages to the nodes that hear the partition from that
 *  publisher.  Nothing here reads a clock: each test sets s_now.
 *
 *  A follower takes a reply (entries, snapshot parts) only from the source
 *  it fetches from now, answering its latest fetch, made at the epoch it
 *  follows now.  Taking any reply from any link let a deposed primary that
 *  answered a fetch late hand over its unreplicated tail: the follower
 *  applied it, acked it to the new primary, which then counted it in sync
 *  and released its own, different entry at that seq, which the follower
 *  skipped as applied: the two diverged for good.
 */
#include "repl.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

static char s_dir [256];
static const char *s_dbs [] = { "books", NULL };
static int64_t s_now;

#define NODES_MAX 4
#define SUBS_MAX 8

typedef enum { TO_SYNC, TO_PEER, TO_STREAM } route_t;

typedef struct {
    route_t route;
    char from [64];             //  TO_SYNC: sender's id; TO_PEER: sender's sync endpoint; TO_STREAM: its pub
    char to [64];               //  TO_SYNC: a sync endpoint; TO_PEER: a node id
    char partition [BS_ID_MAX + 1];     //  TO_STREAM
    int kind;
    uint8_t *data;
    size_t size;
} packet_t;

typedef struct {
    char id [32], pub [64], sync [64];
    char path [300];            //  its store's directory
    bool mergeable;             //  an order node's: snapshots merge
    int min_insync;
    store_t *store;
    journal_t *journal;
    MDB_dbi books;
    repl_t *repl;
    char heard_partition [SUBS_MAX][BS_ID_MAX + 1], heard_pub [SUBS_MAX][64];
    int heard;
    int released;               //  replies released so far
    char last_release [64];
} node_t;

static node_t *s_nodes [NODES_MAX];
static int s_node_count;
static zlistx_t *s_queue;       //  packet_t, in order sent

static void
s_packet_destroy (packet_t **packet_p)
{
    free ((*packet_p)->data);
    free (*packet_p);
    *packet_p = NULL;
}

static void
s_queue_add (route_t route, const char *from, const char *to, const char *partition, int kind,
             const void *data, size_t size)
{
    packet_t *packet = calloc (1, sizeof (packet_t));
    packet->route = route;
    snprintf (packet->from, sizeof packet->from, "%s", from);
    snprintf (packet->to, sizeof packet->to, "%s", to? to: "");
    snprintf (packet->partition, sizeof packet->partition, "%s", partition? partition: "");
    packet->kind = kind;
    packet->data = malloc (size? size: 1);
    memcpy (packet->data, data, size);
    packet->size = size;
    zlistx_add_end (s_queue, packet);
}

static void
s_io_send_sync (void *arg, const char *endpoint, const char *server, const void *data, size_t size)
{
    (void) server;
    s_queue_add (TO_SYNC, ((node_t *) arg)->id, endpoint, NULL, 0, data, size);
}

static void
s_io_answer (void *arg, const char *peer, const void *data, size_t size)
{
    s_queue_add (TO_PEER, ((node_t *) arg)->sync, peer, NULL, 0, data, size);
}

static void
s_io_publish (void *arg, const char *partition, int kind, const void *data, size_t size)
{
    s_queue_add (TO_STREAM, ((node_t *) arg)->pub, NULL, partition, kind, data, size);
}

static void
s_io_subscribe (void *arg, const char *partition, const char *pub, const char *primary)
{
    (void) primary;
    node_t *node = (node_t *) arg;
    if (node->heard < SUBS_MAX) {
        snprintf (node->heard_partition [node->heard], BS_ID_MAX + 1, "%s", partition);
        snprintf (node->heard_pub [node->heard], 64, "%s", pub);
        node->heard++;
    }
}

static void
s_io_unsubscribe (void *arg, const char *partition, const char *pub)
{
    node_t *node = (node_t *) arg;
    for (int i = 0; i < node->heard; i++)
        if (streq (node->heard_partition [i], partition) && streq (node->heard_pub [i], pub)) {
            node->heard--;
            memmove (node->heard_partition [i], node->heard_partition [node->heard], BS_ID_MAX + 1);
            memmove (node->heard_pub [i], node->heard_pub [node->heard], 64);
            break;
        }
}

static void
s_io_release (void *arg, zmq_msg_t *token, const void *data, size_t size)
{
    node_t *node = (node_t *) arg;
    node->released++;
    snprintf (node->last_release, sizeof node->last_release, "%.*s", (int) size, (const char *) data);
    zmq_msg_close (token);
}

//  Opens node's store at node->path, its journal and its core
static void
s_start (node_t *node)
{
    node->store = store_new (node->path, 64 << 20, 64 << 20);
    node->journal = journal_new (node->store);
    CHECK (journal_db (node->journal, "books", 0, true, &node->books));
    repl_options_t options = {
        .id = node->id, .pub_endpoint = node->pub, .sync_endpoint = node->sync,
        .dbs = s_dbs, .mergeable = node->mergeable, .heartbeat_ms = 100, .insync_timeout_ms = 1000,
        .min_insync = node->min_insync, .log_keep = 1000,
    };
    repl_io_t io = {
        .arg = node, .send_sync = s_io_send_sync, .answer = s_io_answer, .publish = s_io_publish,
        .subscribe = s_io_subscribe, .unsubscribe = s_io_unsubscribe, .release = s_io_release,
    };
    node->repl = repl_new (node->journal, &options, &io);
    CHECK (node->repl);
}

static void
s_stop (node_t *node)
{
    repl_destroy (&node->repl);
    journal_destroy (&node->journal);
    store_destroy (&node->store);
    node->heard = 0;
}

static node_t *
s_open_as (const char *name, int min_insync, bool mergeable)
{
    node_t *node = calloc (1, sizeof (node_t));
    snprintf (node->id, sizeof node->id, "%s", name);
    snprintf (node->pub, sizeof node->pub, "%s-pub", name);
    snprintf (node->sync, sizeof node->sync, "%s-sync", name);
    //  A store of its own, never one an earlier test left
    static int stores;
    snprintf (node->path, sizeof node->path, "%s/%s.%d", s_dir, name, ++stores);
    node->mergeable = mergeable;
    node->min_insync = min_insync;
    s_start (node);
    s_nodes [s_node_count++] = node;
    return node;
}

static node_t *
s_open (const char *name, int min_insync)
{
    return s_open_as (name, min_insync, false);
}

static void
s_drop_all (void)
{
    packet_t *packet;
    while ((packet = zlistx_detach (s_queue, NULL)))
        s_packet_destroy (&packet);
}

//  Closes every node of the test and forgets what is still in flight
static void
s_close_all (void)
{
    s_drop_all ();
    for (int i = 0; i < s_node_count; i++) {
        node_t *node = s_nodes [i];
        s_stop (node);
        free (node);
    }
    s_node_count = 0;
}

//  The op of an encoded message ("" when it is not one)
static const char *
s_op (const packet_t *packet)
{
    static char op [32];
    bs_err_t err;
    char reason [128];
    bs_msg_t *msg = bs_msg_decode (packet->data, packet->size, &err, reason, sizeof reason);
    snprintf (op, sizeof op, "%s", msg? bs_msg_str (msg, BS_FIELD_op): "");
    bs_msg_destroy (&msg);
    return op;
}

//  Delivers the oldest packet in flight; false when there is none
static bool
s_step (void)
{
    packet_t *packet = zlistx_detach (s_queue, NULL);
    if (!packet)
        return false;
    for (int i = 0; i < s_node_count; i++) {
        node_t *node = s_nodes [i];
        if (packet->route == TO_SYNC && streq (node->sync, packet->to))
            repl_on_request (node->repl, packet->from, packet->data, packet->size, s_now);
        else
        if (packet->route == TO_PEER && streq (node->id, packet->to))
            repl_on_answer (node->repl, packet->from, packet->data, packet->size, s_now);
        else
        if (packet->route == TO_STREAM)
            for (int k = 0; k < node->heard; k++)
                if (streq (node->heard_pub [k], packet->from) && streq (node->heard_partition [k], packet->partition))
                    repl_on_stream (node->repl, packet->partition, packet->kind, packet->data, packet->size, s_now);
    }
    s_packet_destroy (&packet);
    return true;
}

//  Delivers until nothing is in flight; counts the answers by op
typedef struct {
    int snapshots, entries;
} seen_t;

static seen_t
s_pump (void)
{
    seen_t seen = { 0, 0 };
    for (int n = 0; n < 10000; n++) {
        packet_t *next = zlistx_first (s_queue);
        if (!next)
            break;
        if (next->route == TO_PEER) {
            seen.snapshots += streq (s_op (next), "snapshot");
            seen.entries += streq (s_op (next), "entries");
        }
        s_step ();
    }
    return seen;
}

//  Seals one write into partition at epoch on node's journal and publishes
//  it before committing it, as a catalog node does (the commit is not
//  reported to replication: s_committed); returns its seq
static uint64_t
s_write_uncommitted (node_t *node, const char *partition, uint64_t epoch, const char *key)
{
    MDB_txn *txn = journal_begin (node->journal);
    CHECK (txn);
    //  0: the epoch the node already writes at (an owner's, from its claim)
    if (epoch)
        CHECK_EQ (journal_set_epoch (node->journal, txn, partition, epoch), 0);
    MDB_val k = { strlen (key), (void *) key }, v = { 5, (void *) "value" };
    CHECK_EQ (journal_put (node->journal, txn, node->books, &k, &v), 0);
    uint64_t seq = 0;
    CHECK_EQ (journal_seal (node->journal, txn, partition, &seq), 0);
    if (node->repl)
        repl_publish (node->repl, s_now);
    CHECK_EQ (journal_commit (node->journal, txn), 0);
    return seq;
}

static void
s_committed (node_t *node, const char *partition)
{
    if (node->repl)
        repl_committed (node->repl, partition, journal_seq (node->journal, partition), s_now);
}

//  The same, and the commit reported
static uint64_t
s_write (node_t *node, const char *partition, uint64_t epoch, const char *key)
{
    uint64_t seq = s_write_uncommitted (node, partition, epoch, key);
    s_committed (node, partition);
    return seq;
}

//  The log entry seq of a partition on node (the caller frees it)
static uint8_t *
s_entry (node_t *node, const char *partition, uint64_t seq, size_t *size_p)
{
    MDB_txn *read = store_begin (node->store, false);
    MDB_val entry;
    CHECK_EQ (journal_read (node->journal, read, partition, seq, &entry), 0);
    uint8_t *data = malloc (entry.mv_size);
    memcpy (data, entry.mv_data, entry.mv_size);
    *size_p = entry.mv_size;
    mdb_txn_abort (read);
    return data;
}

//  Seals count records (prefix-00000...) into one log entry of partition,
//  as one write would, publishes and commits it; returns its seq
static uint64_t
s_write_many (node_t *node, const char *partition, const char *prefix, int count)
{
    MDB_txn *txn = journal_begin (node->journal);
    CHECK (txn);
    for (int i = 0; i < count; i++) {
        char key [64], value [96];
        snprintf (key, sizeof key, "%.40s-%05d", prefix, i);
        snprintf (value, sizeof value, "value of %s", key);
        MDB_val k = { strlen (key), key }, v = { strlen (value), value };
        CHECK_EQ (journal_put (node->journal, txn, node->books, &k, &v), 0);
    }
    uint64_t seq = 0;
    CHECK_EQ (journal_seal (node->journal, txn, partition, &seq), 0);
    repl_publish (node->repl, s_now);
    CHECK_EQ (journal_commit (node->journal, txn), 0);
    s_committed (node, partition);
    return seq;
}

//  Answers in flight to node id to with op ("": any) and, when rid is not
//  NULL, that rid; field_p (when not NULL) gets field of the last one
static int
s_answers (const char *to, const char *op, const uint8_t *rid, bs_field_t field, int64_t *field_p)
{
    int n = 0;
    for (packet_t *p = zlistx_first (s_queue); p; p = zlistx_next (s_queue)) {
        if (p->route != TO_PEER || !streq (p->to, to))
            continue;
        bs_err_t err;
        char reason [128];
        bs_msg_t *msg = bs_msg_decode (p->data, p->size, &err, reason, sizeof reason);
        size_t size = 0;
        const uint8_t *bin = msg? bs_msg_bin (msg, BS_FIELD_rid, &size): NULL;
        if (msg && (!*op || streq (bs_msg_str (msg, BS_FIELD_op), op))
        &&  (!rid || (bin && size == BS_RID_SIZE && memcmp (bin, rid, BS_RID_SIZE) == 0))) {
            n++;
            if (field_p)
                *field_p = bs_msg_int (msg, field);
        }
        bs_msg_destroy (&msg);
    }
    return n;
}

//  Whether two nodes hold the same records
static bool
s_same_digest (node_t *a, node_t *b)
{
    char digest_a [65], digest_b [65];
    journal_digest (a->journal, digest_a);
    journal_digest (b->journal, digest_b);
    return streq (digest_a, digest_b);
}

//  The broker's map for one partition: primary writes it, source serves it
static void
s_assign (node_t *node, const char *partition, uint64_t epoch, const char *primary, const char *source)
{
    char pub [64] = "", sync [64] = "";
    if (*primary)
        snprintf (pub, sizeof pub, "%s-pub", primary);
    if (*source)
        snprintf (sync, sizeof sync, "%s-sync", source);
    bs_msg_t *assign = bs_msg_new ();
    bs_msg_set_str (assign, BS_FIELD_op, "assign");
    bs_msg_set_list (assign, BS_FIELD_partitions);
    bs_msg_t *entry = bs_msg_new ();
    bs_msg_set_str (entry, BS_FIELD_partition, partition);
    bs_msg_set_int (entry, BS_FIELD_epoch, (int64_t) epoch);
    bs_msg_set_str (entry, BS_FIELD_primary, primary);
    bs_msg_set_str (entry, BS_FIELD_source, source);
    bs_msg_set_str (entry, BS_FIELD_pub, pub);
    bs_msg_set_str (entry, BS_FIELD_sync, sync);
    bs_msg_set_str (entry, BS_FIELD_isr, "");
    bs_msg_append (assign, BS_FIELD_partitions, &entry);
    repl_assign (node->repl, assign, s_now);
    bs_msg_destroy (&assign);
}

//  A follower's ack or fetch as it arrives on node's sync socket from peer
static void
s_request (node_t *node, const char *peer, const char *op, const char *partition, uint64_t epoch, uint64_t seq)
{
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, op);
    bs_msg_set_str (msg, BS_FIELD_partition, partition);
    bs_msg_set_int (msg, BS_FIELD_epoch, (int64_t) epoch);
    bs_msg_set_int (msg, BS_FIELD_seq, (int64_t) seq);
    size_t size;
    uint8_t *data = bs_msg_encode (msg, &size);
    repl_on_request (node->repl, peer, data, size, s_now);
    free (data);
    bs_msg_destroy (&msg);
}

//  A source's answer with one entry to a follower, carrying rid back
static void
s_answer_entries (node_t *follower, const char *from_sync, const char *partition, const uint8_t *rid,
                  const uint8_t *data, size_t size, uint64_t head)
{
    bs_msg_t *reply = bs_msg_new ();
    bs_msg_set_str (reply, BS_FIELD_op, "entries");
    bs_msg_set_str (reply, BS_FIELD_partition, partition);
    bs_msg_set_int (reply, BS_FIELD_head, (int64_t) head);
    bs_msg_set_bin (reply, BS_FIELD_rid, rid, BS_RID_SIZE);
    bs_msg_set_list (reply, BS_FIELD_entries);
    bs_msg_t *item = bs_msg_new ();
    bs_msg_set_bin (item, BS_FIELD_data, data, size);
    bs_msg_append (reply, BS_FIELD_entries, &item);
    size_t encoded_size;
    uint8_t *encoded = bs_msg_encode (reply, &encoded_size);
    repl_on_answer (follower->repl, from_sync, encoded, encoded_size, s_now);
    free (encoded);
    bs_msg_destroy (&reply);
}

//  The rid of the last fetch in flight to a sync endpoint (false: none)
static bool
s_fetch_rid (const char *sync, uint8_t *rid)
{
    bool found = false;
    for (packet_t *p = zlistx_first (s_queue); p; p = zlistx_next (s_queue)) {
        if (p->route != TO_SYNC || !streq (p->to, sync))
            continue;
        bs_err_t err;
        char reason [128];
        bs_msg_t *msg = bs_msg_decode (p->data, p->size, &err, reason, sizeof reason);
        size_t size = 0;
        const uint8_t *bin = msg && bs_msg_op (msg) == BS_OP_fetch? bs_msg_bin (msg, BS_FIELD_rid, &size): NULL;
        if (bin && size == BS_RID_SIZE) {
            memcpy (rid, bin, BS_RID_SIZE);
            found = true;
        }
        bs_msg_destroy (&msg);
    }
    return found;
}

//  The in-sync set a primary reports for partition, and its status field
static void
s_report (node_t *node, const char *partition, char *isr, size_t isr_size, char *status, size_t status_size)
{
    bs_msg_t *msg = bs_msg_new ();
    repl_status (node->repl, msg, 1);
    *isr = *status = 0;
    for (size_t i = 0; i < bs_msg_count (msg, BS_FIELD_partitions); i++) {
        bs_msg_t *entry = bs_msg_at (msg, BS_FIELD_partitions, i);
        if (streq (bs_msg_str (entry, BS_FIELD_partition), partition)) {
            snprintf (isr, isr_size, "%s", bs_msg_str (entry, BS_FIELD_isr));
            snprintf (status, status_size, "%s", bs_msg_str (entry, BS_FIELD_status));
        }
    }
    bs_msg_destroy (&msg);
}

static void
s_defer (node_t *node, const char *partition, uint64_t seq, const char *reply)
{
    zmq_msg_t token;
    zmq_msg_init_size (&token, 4);
    memcpy (zmq_msg_data (&token), "tokn", 4);
    repl_defer (node->repl, partition, seq, &token, reply, strlen (reply), s_now);
}

//  --------------------------------------------------------------------------
//  Pure parts

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

//  The stream's head is little-endian on the wire, whatever the host
static void
test_stream_head (void)
{
    uint8_t body [BS_STREAM_HEAD_SIZE];
    bs_stream_head_encode (0x0102030405060708ULL, 9, body);
    const uint8_t want [BS_STREAM_HEAD_SIZE] = { 8, 7, 6, 5, 4, 3, 2, 1, 9, 0, 0, 0, 0, 0, 0, 0 };
    CHECK (memcmp (body, want, sizeof want) == 0);
    uint64_t head = 0, epoch = 0;
    CHECK (bs_stream_head_decode (want, sizeof want, &head, &epoch));
    CHECK (head == 0x0102030405060708ULL);
    CHECK_EQ (epoch, 9);
    //  Any other size is no head, and sets nothing
    head = epoch = 77;
    CHECK (!bs_stream_head_decode (want, 15, &head, &epoch));
    CHECK (!bs_stream_head_decode (want, 17, &head, &epoch));
    CHECK_EQ (head, 77);
    CHECK_EQ (epoch, 77);
    //  Topics: the name and "|", and back
    char topic [BS_STREAM_TOPIC_MAX + 1], name [BS_ID_MAX + 1];
    CHECK_EQ (bs_stream_topic ("order-1", topic), 8);
    CHECK (streq (topic, "order-1|"));
    CHECK (bs_stream_partition ("order-1|", 8, name) && streq (name, "order-1"));
    CHECK (!bs_stream_partition ("order-1", 7, name));
    CHECK (!bs_stream_partition ("|", 1, name));
    CHECK (!bs_stream_partition ("a\0b|", 4, name));
    CHECK_EQ (bs_stream_topic ("", topic), 0);
}

//  --------------------------------------------------------------------------
//  The primary

//  A write's reply waits for every in-sync follower's ack of its seq
static void
test_held_until_all_acked (void)
{
    s_now = 1000;
    node_t *p = s_open ("p", 1);
    s_assign (p, "catalog", 1, "p", "p");
    CHECK (repl_is_primary (p->repl, "catalog"));
    s_request (p, "f1", "ack", "catalog", 1, 0);
    s_request (p, "f2", "ack", "catalog", 1, 0);
    uint64_t seq = s_write (p, "catalog", 1, "book-1");
    CHECK_EQ (seq, 1);
    s_defer (p, "catalog", seq, "reply-1");
    CHECK_EQ (p->released, 0);
    s_now += 10;
    s_request (p, "f1", "ack", "catalog", 1, 1);
    CHECK_EQ (p->released, 0);
    //  An ack of another epoch counts for nothing
    s_request (p, "f2", "ack", "catalog", 2, 1);
    CHECK_EQ (p->released, 0);
    s_request (p, "f2", "ack", "catalog", 1, 1);
    CHECK_EQ (p->released, 1);
    CHECK (streq (p->last_release, "reply-1"));
    //  Once every follower has it, a reply for that seq goes at once
    s_defer (p, "catalog", seq, "reply-again");
    CHECK_EQ (p->released, 2);
    s_close_all ();
}

//  The primary publishes before its own commit: a follower's ack may come
//  first, and releases nothing until the commit is done
static void
test_held_until_committed (void)
{
    s_now = 1000;
    node_t *p = s_open ("p", 1);
    s_assign (p, "catalog", 1, "p", "p");
    s_request (p, "f1", "ack", "catalog", 1, 0);
    uint64_t seq = s_write_uncommitted (p, "catalog", 1, "book-1");
    CHECK_EQ (seq, 1);
    s_defer (p, "catalog", seq, "reply-1");
    s_now += 10;
    s_request (p, "f1", "ack", "catalog", 1, seq);
    CHECK_EQ (p->released, 0);
    repl_tick (p->repl, s_now);
    CHECK_EQ (p->released, 0);
    s_committed (p, "catalog");
    CHECK_EQ (p->released, 1);
    CHECK (streq (p->last_release, "reply-1"));
    //  Without followers, the commit alone releases
    node_t *q = s_open ("q", 1);
    s_assign (q, "catalog", 1, "q", "q");
    seq = s_write_uncommitted (q, "catalog", 1, "book-1");
    s_defer (q, "catalog", seq, "reply-q");
    CHECK_EQ (q->released, 0);
    s_committed (q, "catalog");
    CHECK_EQ (q->released, 1);
    s_close_all ();
}

//  A new repl core on the node's store, as after a restart
static void
s_restart (node_t *node, int min_insync)
{
    repl_destroy (&node->repl);
    repl_options_t options = {
        .id = node->id, .pub_endpoint = node->pub, .sync_endpoint = node->sync,
        .dbs = s_dbs, .heartbeat_ms = 100, .insync_timeout_ms = 1000, .min_insync = min_insync,
        .log_keep = 1000,
    };
    repl_io_t io = {
        .arg = node, .send_sync = s_io_send_sync, .answer = s_io_answer, .publish = s_io_publish,
        .subscribe = s_io_subscribe, .unsubscribe = s_io_unsubscribe, .release = s_io_release,
    };
    node->repl = repl_new (node->journal, &options, &io);
    CHECK (node->repl);
}

//  A primary that may have published beyond its commit (it restarted
//  within its epoch, or a commit failed) never writes at that epoch again:
//  it refuses the role there, says so, and takes it at the next epoch
static void
test_no_second_life_at_an_epoch (void)
{
    s_now = 1000;
    node_t *p = s_open ("p", 1);
    s_assign (p, "catalog", 2, "p", "p");
    s_write (p, "catalog", 2, "book-1");
    char reason [256], isr [256], status [32];
    s_restart (p, 1);
    s_assign (p, "catalog", 2, "p", "p");
    CHECK (!repl_is_primary (p->repl, "catalog"));
    CHECK_EQ (repl_can_write (p->repl, "catalog", reason, sizeof reason), BS_ERR_unavailable);
    s_report (p, "catalog", isr, sizeof isr, status, sizeof status);
    CHECK (streq (status, "resigned"));
    s_assign (p, "catalog", 3, "p", "p");
    CHECK (repl_is_primary (p->repl, "catalog"));
    s_report (p, "catalog", isr, sizeof isr, status, sizeof status);
    CHECK (streq (status, ""));
    //  A failed commit: held replies get an error, the role goes, and
    //  epoch 3 is never led again
    s_request (p, "f1", "ack", "catalog", 3, 1);
    uint64_t seq = s_write (p, "catalog", 3, "book-2");
    s_defer (p, "catalog", seq, "reply-2");
    CHECK_EQ (p->released, 0);
    repl_resign (p->repl, s_now);
    CHECK_EQ (p->released, 1);
    CHECK (strstr (p->last_release, "unavailable"));
    CHECK (!repl_is_primary (p->repl, "catalog"));
    s_report (p, "catalog", isr, sizeof isr, status, sizeof status);
    CHECK (streq (status, "resigned"));
    s_assign (p, "catalog", 3, "p", "p");
    CHECK (!repl_is_primary (p->repl, "catalog"));
    s_assign (p, "catalog", 4, "p", "p");
    CHECK (repl_is_primary (p->repl, "catalog"));
    s_close_all ();
}

//  A follower silent for longer than insync_timeout_ms (1,000) leaves the
//  in-sync set at the first tick past it, and the writes it held go out
static void
test_silent_follower_leaves (void)
{
    s_now = 5000;
    node_t *p = s_open ("p", 3);
    s_assign (p, "catalog", 1, "p", "p");
    s_request (p, "f1", "ack", "catalog", 1, 0);
    s_request (p, "f2", "ack", "catalog", 1, 0);      //  f2's last word
    char reason [256], isr [256], status [32];
    CHECK_EQ (repl_can_write (p->repl, "catalog", reason, sizeof reason), BS_OK);
    s_now = 5100;
    uint64_t seq = s_write (p, "catalog", 1, "book-1");
    s_defer (p, "catalog", seq, "reply-1");
    s_now = 5500;
    s_request (p, "f1", "ack", "catalog", 1, seq);
    CHECK_EQ (p->released, 0);
    //  Exactly the timeout since f2 spoke: still in sync, still waited for
    s_now = 6000;
    repl_tick (p->repl, s_now);
    CHECK_EQ (p->released, 0);
    s_now = 6001;
    repl_tick (p->repl, s_now);
    CHECK_EQ (p->released, 1);
    s_report (p, "catalog", isr, sizeof isr, status, sizeof status);
    CHECK (streq (isr, "f1"));
    //  Two of three replicas in sync no longer take writes
    CHECK_EQ (repl_can_write (p->repl, "catalog", reason, sizeof reason), BS_ERR_unavailable);
    s_close_all ();
}

//  A fetch whose (seq, epoch) is not in our history gets a snapshot; one
//  that is gets the entries after it
static void
test_diverged_fetch_gets_snapshot (void)
{
    s_now = 1000;
    node_t *s = s_open ("s", 1);
    s_assign (s, "catalog", 1, "s", "s");
    for (int i = 0; i < 3; i++)
        s_write (s, "catalog", 1, i == 0? "a": i == 1? "b": "c");
    s_drop_all ();                                      //  the stream
    seen_t seen;
    s_request (s, "f", "fetch", "catalog", 1, 2);
    seen = s_pump ();
    CHECK_EQ (seen.entries, 1);
    CHECK_EQ (seen.snapshots, 0);
    //  seq 2 with another epoch: an old primary's tail
    s_request (s, "f", "fetch", "catalog", 5, 2);
    seen = s_pump ();
    CHECK_EQ (seen.entries, 0);
    CHECK_EQ (seen.snapshots, 1);
    //  Beyond our head
    s_request (s, "f", "fetch", "catalog", 1, 9);
    seen = s_pump ();
    CHECK_EQ (seen.snapshots, 1);
    s_close_all ();
}

//  --------------------------------------------------------------------------
//  The follower

//  We fetch from P1 at epoch 1; N is elected at epoch 2 and we fetch from
//  it; P1 answers our old fetch with an entry N never had.  It is not
//  applied; nor is the same stale answer sent over N's own link; N's
//  answer to our current fetch is.
static void
test_late_reply_not_applied (void)
{
    s_now = 1000;
    node_t *f = s_open ("f", 1);
    node_t *p1 = s_open ("p1", 1);
    node_t *n = s_open ("n", 1);
    s_assign (f, "catalog", 1, "p1", "p1");
    uint8_t old_rid [BS_RID_SIZE], new_rid [BS_RID_SIZE];
    CHECK (s_fetch_rid ("p1-sync", old_rid));
    s_drop_all ();
    s_assign (f, "catalog", 2, "n", "n");
    CHECK (s_fetch_rid ("n-sync", new_rid));
    s_drop_all ();

    //  p1 and n are mere journals here: their cores were told nothing
    size_t tail_size, entry_size;
    s_write (p1, "catalog", 1, "unreplicated");
    s_write (n, "catalog", 2, "written-by-n");
    uint8_t *tail = s_entry (p1, "catalog", 1, &tail_size);
    uint8_t *entry = s_entry (n, "catalog", 1, &entry_size);
    //  P1, deposed, answers the fetch we made of it
    s_answer_entries (f, "p1-sync", "catalog", old_rid, tail, tail_size, 1);
    CHECK_EQ (journal_seq (f->journal, "catalog"), 0);
    //  The same stale answer over the current source's link
    s_answer_entries (f, "n-sync", "catalog", old_rid, tail, tail_size, 1);
    CHECK_EQ (journal_seq (f->journal, "catalog"), 0);
    //  The current fetch's rid, but over the old link
    s_answer_entries (f, "p1-sync", "catalog", new_rid, tail, tail_size, 1);
    CHECK_EQ (journal_seq (f->journal, "catalog"), 0);
    //  The current source answering the current fetch is taken
    s_answer_entries (f, "n-sync", "catalog", new_rid, entry, entry_size, 1);
    CHECK_EQ (journal_seq (f->journal, "catalog"), 1);
    CHECK_EQ (journal_last_epoch (f->journal, "catalog"), 2);
    free (tail);
    free (entry);
    s_close_all ();
}

//  S wrote two entries at epoch 1 and leads at epoch 3 with nothing written
//  since.  F, empty, told epoch 3, gets a snapshot; it must then name S's
//  history (seq 2, epoch 1), so that its next fetch gets entries, not
//  another snapshot (storing the epoch it was told made every fetch look
//  diverged: a snapshot after another, never in sync).  Then a live write
//  arrives on the stream and is applied.
static void
test_snapshot_names_source_history (void)
{
    s_now = 1000;
    node_t *s = s_open ("s", 1);
    node_t *f = s_open ("f", 1);
    s_assign (s, "catalog", 1, "s", "s");
    s_write (s, "catalog", 1, "a");
    s_write (s, "catalog", 1, "b");
    s_assign (s, "catalog", 3, "s", "s");
    s_drop_all ();
    s_assign (f, "catalog", 3, "s", "s");
    seen_t seen = s_pump ();
    CHECK_EQ (seen.snapshots, 1);
    CHECK_EQ (seen.entries, 1);
    CHECK_EQ (journal_seq (f->journal, "catalog"), 2);
    CHECK_EQ (journal_last_epoch (f->journal, "catalog"), 1);
    CHECK_EQ (journal_holding (f->journal, "catalog"), JOURNAL_WHOLE);
    CHECK (repl_caught_up (f->repl));
    //  Later fetches (a fetch timeout, say) get entries too
    s_now += 2000;
    repl_tick (f->repl, s_now);
    repl_tick (s->repl, s_now);
    seen = s_pump ();
    CHECK_EQ (seen.snapshots, 0);
    //  F acked S's head: S counts it in sync
    char isr [256], status [32];
    s_report (s, "catalog", isr, sizeof isr, status, sizeof status);
    CHECK (streq (isr, "f"));
    //  A live write, held until F acks it, which F does on applying it
    uint64_t seq = s_write (s, "catalog", 3, "c");
    s_defer (s, "catalog", seq, "reply-c");
    CHECK_EQ (s->released, 0);
    s_pump ();
    CHECK_EQ (journal_seq (f->journal, "catalog"), 3);
    CHECK_EQ (s->released, 1);
    s_close_all ();
}

//  F holds seq 2 from a deposed primary (epoch 1); N leads epoch 2 and
//  wrote its own seq 2.  F, told to follow N, must not ack its head before
//  a fetch answered by N shows its log to be a prefix of N's: its seq 2 is
//  not N's, and N would count F as holding a write it does not.  N's
//  answer (a snapshot) brings F in; only then does F count in sync.
static void
test_unverified_head_not_acked (void)
{
    s_now = 1000;
    node_t *n = s_open ("n", 1);
    node_t *f = s_open ("f", 1);
    s_assign (n, "catalog", 1, "n", "n");
    s_write (n, "catalog", 1, "a");
    s_assign (n, "catalog", 2, "n", "n");
    CHECK_EQ (s_write (n, "catalog", 2, "b"), 2);
    s_write (f, "catalog", 1, "a");
    s_write (f, "catalog", 1, "deposed");
    s_drop_all ();
    s_assign (f, "catalog", 2, "n", "n");
    s_drop_all ();                                      //  its fetch is lost
    char isr [256], status [32];
    for (int beat = 0; beat < 5; beat++) {
        s_now += 100;
        repl_tick (f->repl, s_now);
        repl_tick (n->repl, s_now);
        s_pump ();
    }
    s_report (n, "catalog", isr, sizeof isr, status, sizeof status);
    CHECK (streq (isr, ""));
    //  The fetch asked again is answered: F takes N's history, then acks
    s_now += 2000;
    repl_tick (f->repl, s_now);
    seen_t seen = s_pump ();
    CHECK_EQ (seen.snapshots, 1);
    s_now += 100;
    repl_tick (f->repl, s_now);
    s_pump ();
    s_report (n, "catalog", isr, sizeof isr, status, sizeof status);
    CHECK (streq (isr, "f"));
    CHECK_EQ (journal_last_epoch (f->journal, "catalog"), 2);
    s_close_all ();
}

//  F follows P at epoch 2 and has P's seq 2 and 3 buffered from the
//  stream (its fetch was lost).  The broker then names no primary, and F
//  catches up from Q, whose seq 2 is another history's (epoch 1).  P's
//  buffered seq 3 must not be applied after Q's seq 2: the log would join
//  two histories.
static void
test_stream_buffer_dropped_with_its_stream (void)
{
    s_now = 1000;
    node_t *p = s_open ("p", 1);
    node_t *q = s_open ("q", 1);
    node_t *f = s_open ("f", 1);
    s_assign (p, "catalog", 1, "p", "p");
    s_assign (q, "catalog", 1, "p", "p");
    s_assign (f, "catalog", 1, "p", "p");
    s_pump ();
    s_write (p, "catalog", 1, "a");
    s_pump ();
    CHECK_EQ (journal_seq (f->journal, "catalog"), 1);
    CHECK_EQ (journal_seq (q->journal, "catalog"), 1);
    s_assign (q, "catalog", 1, "", "");
    CHECK_EQ (s_write (q, "catalog", 1, "q-only"), 2);
    s_assign (p, "catalog", 2, "p", "p");
    s_assign (f, "catalog", 2, "p", "p");
    s_drop_all ();                                      //  F's fetch is lost
    s_write (p, "catalog", 2, "p-2");
    s_write (p, "catalog", 2, "p-3");
    s_pump ();                                          //  F buffers both
    CHECK_EQ (journal_seq (f->journal, "catalog"), 1);
    s_assign (f, "catalog", 2, "", "q");
    s_pump ();
    CHECK_EQ (journal_seq (f->journal, "catalog"), 2);
    CHECK_EQ (journal_last_epoch (f->journal, "catalog"), 1);
    s_close_all ();
}

//  The primary publishes a batch, its commit fails, it gives up epoch 1
//  and is elected again at epoch 2.  A follower that holds the published
//  tail and has not been told epoch 2 yet hears epoch 2's entries on the
//  same stream: it must not stack them on that tail, but fetch, and drop
//  the tail (a snapshot); it then holds exactly what the primary holds.
static void
test_tail_of_a_given_up_epoch_is_dropped (void)
{
    s_now = 1000;
    node_t *p = s_open ("p", 1);
    node_t *f = s_open ("f", 1);
    s_assign (p, "catalog", 1, "p", "p");
    s_assign (f, "catalog", 1, "p", "p");
    s_pump ();
    s_write (p, "catalog", 1, "a");
    s_pump ();
    CHECK_EQ (journal_seq (f->journal, "catalog"), 1);
    //  Published, then the commit fails
    MDB_txn *txn = journal_begin (p->journal);
    MDB_val k = { 4, (void *) "tail" }, v = { 5, (void *) "value" };
    CHECK_EQ (journal_put (p->journal, txn, p->books, &k, &v), 0);
    uint64_t seq = 0;
    CHECK_EQ (journal_seal (p->journal, txn, "catalog", &seq), 0);
    repl_publish (p->repl, s_now);
    journal_abort (p->journal, txn);
    repl_resign (p->repl, s_now);
    s_pump ();
    CHECK_EQ (journal_seq (f->journal, "catalog"), 2);  //  the tail
    CHECK_EQ (journal_seq (p->journal, "catalog"), 1);
    s_assign (p, "catalog", 2, "p", "p");
    CHECK (repl_is_primary (p->repl, "catalog"));
    s_write (p, "catalog", 2, "b");
    s_write (p, "catalog", 2, "c");
    s_pump ();
    char digest_p [17], digest_f [17];
    journal_digest (p->journal, digest_p);
    journal_digest (f->journal, digest_f);
    CHECK_EQ (journal_seq (f->journal, "catalog"), 3);
    CHECK_EQ (journal_last_epoch (f->journal, "catalog"), 2);
    CHECK (streq (digest_p, digest_f));
    s_close_all ();
}

//  Half a snapshot is not the partition: a replica loading one refuses to
//  lead it, and says so in its status
static void
test_loading_snapshot_refuses_primary (void)
{
    s_now = 1000;
    node_t *s = s_open ("s", 1);
    node_t *f = s_open ("f", 1);
    s_assign (s, "catalog", 1, "s", "s");
    s_write (s, "catalog", 1, "a");
    s_drop_all ();
    s_assign (f, "catalog", 1, "s", "s");
    s_step ();                                          //  F's fetch: S answers with a snapshot
    packet_t *first = zlistx_first (s_queue);
    CHECK (first && streq (s_op (first), "snapshot"));
    s_step ();                                          //  ...whose first message alone arrives
    s_drop_all ();
    CHECK_EQ (journal_holding (f->journal, "catalog"), JOURNAL_PARTIAL);
    s_assign (f, "catalog", 2, "f", "f");
    CHECK (!repl_is_primary (f->repl, "catalog"));
    CHECK (!repl_caught_up (f->repl));
    char isr [256], status [32];
    s_report (f, "catalog", isr, sizeof isr, status, sizeof status);
    CHECK (streq (status, "snapshot"));
    s_close_all ();
}

//  A snapshot part lost on the way (a queue at its mark drops one) while
//  its end arrives: the copy is not taken for whole; the follower asks
//  again and gets all of it.  The end used to say nothing of how many
//  records came before it, and a copy missing books passed for whole.
static void
test_snapshot_missing_a_part_is_not_whole (void)
{
    s_now = 1000;
    node_t *s = s_open ("s", 1);
    node_t *f = s_open ("f", 1);
    s_assign (s, "catalog", 1, "s", "s");
    s_write (s, "catalog", 1, "a");
    s_write (s, "catalog", 1, "b");
    s_drop_all ();
    s_assign (f, "catalog", 1, "s", "s");
    s_step ();                                          //  F's fetch: S answers with a snapshot
    s_step ();                                          //  its start arrives
    packet_t *lost = zlistx_first (s_queue);
    CHECK (lost && streq (s_op (lost), "snap_data"));
    lost = zlistx_detach (s_queue, NULL);               //  its records do not
    s_packet_destroy (&lost);
    packet_t *end = zlistx_first (s_queue);
    CHECK (end && streq (s_op (end), "snap_end"));
    s_step ();                                          //  its end does
    CHECK_EQ (journal_holding (f->journal, "catalog"), JOURNAL_PARTIAL);
    CHECK (!repl_caught_up (f->repl));
    packet_t *again = zlistx_first (s_queue);
    CHECK (again && again->route == TO_SYNC && streq (s_op (again), "fetch"));
    seen_t seen = s_pump ();
    CHECK_EQ (seen.snapshots, 1);
    CHECK_EQ (journal_holding (f->journal, "catalog"), JOURNAL_WHOLE);
    CHECK_EQ (journal_seq (f->journal, "catalog"), 2);
    char digest_s [65], digest_f [65];
    journal_digest (s->journal, digest_s);
    journal_digest (f->journal, digest_f);
    CHECK (streq (digest_s, digest_f));
    s_close_all ();
}

//  --------------------------------------------------------------------------
//  Snapshots go out a part per turn

#define MANY_RECORDS 2500

static bool s_has_record (node_t *node, const char *key);

//  A snapshot of many records goes out over several turns of the source's
//  loop, which meanwhile publishes, serves other fetches and heartbeats;
//  the follower, loading it longer than its fetch timeout, does not give
//  it up, and ends with every record, at the seq the snapshot was taken
//  at, then catches up with what was written meanwhile.  Sent in one go, a
//  large catalog kept a primary's loop busy for seconds: it missed its
//  heartbeats and the broker declared it dead.
static void
test_snapshot_streams_over_turns (void)
{
    s_now = 1000;
    node_t *s = s_open ("s", 1);
    node_t *f = s_open ("f", 1);
    s_assign (s, "catalog", 1, "s", "s");
    uint64_t taken_at = s_write_many (s, "catalog", "book", MANY_RECORDS);
    s_drop_all ();
    s_assign (f, "catalog", 1, "s", "s");
    s_step ();                                          //  F's fetch: S begins a snapshot
    CHECK_EQ (s_answers ("f", "snapshot", NULL, BS_FIELD_seq, NULL), 1);
    CHECK_EQ (s_answers ("f", "snap_data", NULL, BS_FIELD_seq, NULL), 1);
    CHECK_EQ (s_answers ("f", "snap_end", NULL, BS_FIELD_seq, NULL), 0);
    //  Between two parts S takes a write and serves another fetch at once
    uint64_t written = s_write (s, "catalog", 1, "written-meanwhile");
    s_request (s, "g", "fetch", "catalog", 1, taken_at);
    CHECK_EQ (s_answers ("g", "entries", NULL, BS_FIELD_seq, NULL), 1);
    int turns = 0, snapshots = 0;
    int64_t records = -1, end_seq = -1;
    bool heads = false;
    for (; turns < 20 && s_answers ("f", "snap_end", NULL, BS_FIELD_size, &records) == 0; turns++) {
        for (packet_t *p = zlistx_first (s_queue); p; p = zlistx_next (s_queue))
            heads |= p->route == TO_STREAM && p->kind == REPL_STREAM_HEAD;
        snapshots += s_answers ("f", "snapshot", NULL, BS_FIELD_seq, NULL);
        s_pump ();
        s_now += 600;                                   //  F's fetch timeout passes meanwhile
        repl_tick (f->repl, s_now);
        //  More to send: S's loop is to call again at once
        int64_t wait = repl_tick (s->repl, s_now);
        CHECK (wait == 0 || s_answers ("f", "snap_end", NULL, BS_FIELD_seq, NULL) == 1);
    }
    s_answers ("f", "snap_end", NULL, BS_FIELD_seq, &end_seq);
    CHECK (turns >= 2);
    CHECK (heads);
    //  The snapshot is what S held when it began: the write made since is
    //  not in it, F fetches it afterwards
    CHECK_EQ (records, MANY_RECORDS);
    CHECK_EQ (end_seq, (int64_t) taken_at);
    s_pump ();
    CHECK (repl_tick (s->repl, s_now) > 0);             //  nothing under way
    CHECK_EQ (snapshots, 1);
    CHECK_EQ (journal_holding (f->journal, "catalog"), JOURNAL_WHOLE);
    CHECK_EQ (journal_seq (f->journal, "catalog"), written);
    CHECK (s_has_record (f, "book-02499") && s_has_record (f, "written-meanwhile"));
    CHECK (s_same_digest (s, f));
    s_close_all ();
}

//  A follower that fetches again (its fetch timed out) heeds only its new
//  fetch: the source stops the snapshot under way (no part of it goes out
//  any more) and sends the new one whole
static void
test_newer_fetch_ends_the_snapshot (void)
{
    s_now = 1000;
    node_t *s = s_open ("s", 1);
    node_t *f = s_open ("f", 1);
    s_assign (s, "catalog", 1, "s", "s");
    s_write_many (s, "catalog", "book", MANY_RECORDS);
    s_drop_all ();
    s_assign (f, "catalog", 1, "s", "s");
    uint8_t old_rid [BS_RID_SIZE], new_rid [BS_RID_SIZE];
    CHECK (s_fetch_rid ("s-sync", old_rid));
    s_pump ();                                          //  the fetch, the start, a part
    s_now += 1500;                                      //  then nothing for longer than F waits
    repl_tick (f->repl, s_now);
    CHECK (s_fetch_rid ("s-sync", new_rid));
    CHECK (memcmp (old_rid, new_rid, BS_RID_SIZE) != 0);
    s_step ();                                          //  the new fetch reaches S
    CHECK_EQ (s_answers ("f", "snapshot", new_rid, BS_FIELD_seq, NULL), 1);
    int old_parts = 0;
    for (int turn = 0; turn < 20; turn++) {
        old_parts += s_answers ("f", "", old_rid, BS_FIELD_seq, NULL);
        s_pump ();
        s_now += 10;
        repl_tick (f->repl, s_now);
        repl_tick (s->repl, s_now);
    }
    CHECK_EQ (old_parts, 0);
    CHECK_EQ (journal_holding (f->journal, "catalog"), JOURNAL_WHOLE);
    CHECK (s_same_digest (s, f));
    s_close_all ();
}

//  A source whose role or epoch changes stops the snapshots it is sending
//  (the fetchers, told of the change too, ask again)
static void
test_new_epoch_ends_the_snapshot (void)
{
    s_now = 1000;
    node_t *s = s_open ("s", 1);
    node_t *f = s_open ("f", 1);
    s_assign (s, "catalog", 1, "s", "s");
    s_write_many (s, "catalog", "book", MANY_RECORDS);
    s_drop_all ();
    s_assign (f, "catalog", 1, "s", "s");
    s_step ();
    CHECK_EQ (s_answers ("f", "snap_data", NULL, BS_FIELD_seq, NULL), 1);
    s_assign (s, "catalog", 2, "s", "s");
    s_now += 10;
    CHECK (repl_tick (s->repl, s_now) > 0);             //  nothing under way any more
    CHECK_EQ (s_answers ("f", "snap_data", NULL, BS_FIELD_seq, NULL), 1);
    CHECK_EQ (s_answers ("f", "snap_end", NULL, BS_FIELD_seq, NULL), 0);
    s_close_all ();
}

//  Few snapshots go out at once; a further fetcher waits its turn (its
//  fetch is not answered, it asks again), and every one ends whole
static void
test_snapshots_at_once_are_bounded (void)
{
    s_now = 1000;
    node_t *s = s_open ("s", 1);
    node_t *fs [3] = { s_open ("f1", 1), s_open ("f2", 1), s_open ("f3", 1) };
    s_assign (s, "catalog", 1, "s", "s");
    s_write_many (s, "catalog", "book", MANY_RECORDS);
    s_drop_all ();
    for (int i = 0; i < 3; i++)
        s_assign (fs [i], "catalog", 1, "s", "s");
    s_step ();                                          //  the three fetches reach S
    s_step ();
    s_step ();
    CHECK_EQ (s_answers ("f1", "snapshot", NULL, BS_FIELD_seq, NULL), 1);
    CHECK_EQ (s_answers ("f2", "snapshot", NULL, BS_FIELD_seq, NULL), 1);
    CHECK_EQ (s_answers ("f3", "", NULL, BS_FIELD_seq, NULL), 0);
    for (int turn = 0; turn < 100; turn++) {
        s_pump ();
        s_now += 50;
        for (int i = 0; i < 3; i++)
            repl_tick (fs [i]->repl, s_now);
        repl_tick (s->repl, s_now);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ (journal_holding (fs [i]->journal, "catalog"), JOURNAL_WHOLE);
        CHECK (s_same_digest (s, fs [i]));
    }
    s_close_all ();
}

//  --------------------------------------------------------------------------
//  Order partitions: an owner takes a new epoch at each start

#define OWNED "o.0a0b0c"

//  The epoch of the log entry seq of partition on node
static uint64_t
s_entry_epoch (node_t *node, const char *partition, uint64_t seq)
{
    size_t size;
    uint8_t *data = s_entry (node, partition, seq, &size);
    bs_entry_t *entry = bs_entry_parse (data, size);
    uint64_t epoch = entry? bs_entry_epoch (entry): 0;
    bs_entry_destroy (&entry);
    free (data);
    return epoch;
}

//  Whether the log entry seq of partition is the same on both nodes
static bool
s_same_entry (node_t *a, node_t *b, const char *partition, uint64_t seq)
{
    MDB_txn *ra = store_begin (a->store, false), *rb = store_begin (b->store, false);
    MDB_val ea, eb;
    bool same = journal_read (a->journal, ra, partition, seq, &ea) == 0
             && journal_read (b->journal, rb, partition, seq, &eb) == 0
             && ea.mv_size == eb.mv_size && memcmp (ea.mv_data, eb.mv_data, ea.mv_size) == 0;
    mdb_txn_abort (ra);
    mdb_txn_abort (rb);
    return same;
}

static bool
s_has_record (node_t *node, const char *key)
{
    MDB_txn *read = store_begin (node->store, false);
    MDB_val k = { strlen (key), (void *) key }, v;
    bool found = mdb_get (read, node->books, &k, &v) == 0;
    mdb_txn_abort (read);
    return found;
}

//  The owner restarts: the same store, or (to_path) a copy of it taken
//  earlier, holding less than the store it had
static void
s_restart_owner (node_t *owner, const char *to_path, uint64_t *epoch_p)
{
    s_stop (owner);
    if (to_path)
        snprintf (owner->path, sizeof owner->path, "%s", to_path);
    s_start (owner);
    CHECK_EQ (repl_claim (owner->repl, OWNED, epoch_p), 0);
    CHECK (repl_is_primary (owner->repl, OWNED));
}

//  Whether every entry up to seq that the follower's log holds is the
//  owner's (a snapshot leaves none before its seq), and the follower has
//  seq at all
static bool
s_follows_owner (node_t *owner, node_t *follower, uint64_t seq)
{
    if (journal_seq (follower->journal, OWNED) < seq)
        return false;
    bool agrees = true;
    MDB_txn *read = store_begin (follower->store, false);
    for (uint64_t s = 1; s <= seq && agrees; s++) {
        MDB_val entry;
        if (journal_read (follower->journal, read, OWNED, s, &entry) == 0)
            agrees = s_same_entry (owner, follower, OWNED, s);
    }
    mdb_txn_abort (read);
    return agrees;
}

//  Delivers everything in flight.  Every ack the owner would count (at
//  its epoch) must come from a follower that holds the owner's history up
//  to that seq: otherwise the owner releases a write the follower does
//  not have.  Returns the answers seen, by op.
static seen_t
s_pump_acks_checked (node_t *owner, node_t *follower)
{
    seen_t seen = { 0, 0 };
    for (int n = 0; n < 10000; n++) {
        packet_t *next = zlistx_first (s_queue);
        if (!next)
            break;
        if (next->route == TO_PEER) {
            seen.snapshots += streq (s_op (next), "snapshot");
            seen.entries += streq (s_op (next), "entries");
        }
        if (next->route == TO_SYNC && streq (next->to, owner->sync) && streq (s_op (next), "ack")) {
            bs_err_t err;
            char reason [128];
            bs_msg_t *ack = bs_msg_decode (next->data, next->size, &err, reason, sizeof reason);
            uint64_t seq = (uint64_t) bs_msg_int (ack, BS_FIELD_seq);
            if ((uint64_t) bs_msg_int (ack, BS_FIELD_epoch) == journal_epoch (owner->journal, OWNED) && seq > 0)
                CHECK (s_follows_owner (owner, follower, seq));
            bs_msg_destroy (&ack);
        }
        s_step ();
    }
    return seen;
}

//  Each start claims an epoch above every one before, kept in the store:
//  also when the last start died right after its claim, writing nothing.
//  What the owner writes after a claim carries its epoch.
static void
test_owner_claims_a_new_epoch_each_start (void)
{
    s_now = 1000;
    node_t *o = s_open_as ("o", 1, true);
    uint64_t epoch = 0;
    CHECK_EQ (repl_claim (o->repl, OWNED, &epoch), 0);
    CHECK_EQ (epoch, 1);
    s_write (o, OWNED, 0, "a");
    s_write (o, OWNED, 0, "b");
    CHECK_EQ (s_entry_epoch (o, OWNED, 2), 1);
    uint64_t before = epoch;
    for (int start = 0; start < 3; start++) {
        s_restart_owner (o, NULL, &epoch);
        CHECK (epoch > before);
        CHECK_EQ (journal_epoch (o->journal, OWNED), epoch);
        before = epoch;
    }
    CHECK_EQ (epoch, 4);
    //  The log is the owner's as it was; new entries follow at the new epoch
    CHECK_EQ (journal_seq (o->journal, OWNED), 2);
    CHECK_EQ (s_write (o, OWNED, 0, "c"), 3);
    CHECK_EQ (s_entry_epoch (o, OWNED, 3), 4);
    CHECK_EQ (s_entry_epoch (o, OWNED, 2), 1);
    s_restart_owner (o, NULL, &epoch);
    CHECK_EQ (epoch, 5);
    //  The epoch the owner reports is the one it claimed
    bs_msg_t *status = bs_msg_new ();
    repl_status (o->repl, status, 1);
    CHECK_EQ (bs_msg_count (status, BS_FIELD_partitions), 1);
    bs_msg_t *entry = bs_msg_at (status, BS_FIELD_partitions, 0);
    CHECK (streq (bs_msg_str (entry, BS_FIELD_role), "primary"));
    CHECK_EQ (bs_msg_int (entry, BS_FIELD_epoch), 5);
    bs_msg_destroy (&status);
    s_close_all ();
}

//  How the follower hears that the owner came back
typedef enum { HEARS_ENTRIES, HEARS_HEAD, HEARS_BROKER } hears_t;

//  The owner published seq 3 and died before its commit: it restarts with
//  a log ending at 2, while the follower holds the old 3.  At the owner's
//  new epoch the follower's fetch shows that its 3 is not the owner's: it
//  drops it (a snapshot of the partition, merged), takes the owner's 3 and
//  4, and acks nothing of the new epoch before it holds them.
static void
s_lost_tail (hears_t hears)
{
    s_now = 1000;
    node_t *o = s_open_as ("o", 1, true);
    node_t *f = s_open_as ("f", 1, true);
    CHECK_EQ (repl_claim (o->repl, OWNED, NULL), 0);
    s_assign (f, OWNED, 1, "o", "o");
    s_pump ();                                          //  F holds the (empty) log, and hears the stream
    s_write (o, OWNED, 0, "a");
    s_write (o, OWNED, 0, "b");
    s_pump_acks_checked (o, f);
    CHECK_EQ (journal_seq (f->journal, OWNED), 2);
    //  The owner's store as it will be found after the crash
    char before [320];
    snprintf (before, sizeof before, "%.300s.before", o->path);
    zsys_dir_create ("%s", before);
    CHECK_EQ (mdb_env_copy (store_env (o->store), before), 0);
    s_write (o, OWNED, 0, "lost");
    s_pump_acks_checked (o, f);
    CHECK_EQ (journal_seq (f->journal, OWNED), 3);
    uint64_t epoch = 0;
    s_restart_owner (o, before, &epoch);
    CHECK_EQ (epoch, 2);
    CHECK_EQ (journal_seq (o->journal, OWNED), 2);
    if (hears == HEARS_HEAD) {
        repl_tick (o->repl, s_now);                     //  the owner's head: seq 2 at epoch 2
        s_pump_acks_checked (o, f);
        CHECK_EQ (journal_seq (f->journal, OWNED), 2);
    }
    else
    if (hears == HEARS_BROKER) {
        s_assign (f, OWNED, 2, "o", "o");
        s_pump_acks_checked (o, f);
        CHECK_EQ (journal_seq (f->journal, OWNED), 2);
    }
    if (hears != HEARS_ENTRIES) {
        //  Ready at the owner's head, 2, with no further write: the lost
        //  3 it had heard of is no head to wait for
        s_now += 200;
        repl_tick (o->repl, s_now);
        s_pump_acks_checked (o, f);
        CHECK (repl_caught_up (f->repl));
    }
    s_write (o, OWNED, 0, "c");
    s_write (o, OWNED, 0, "d");
    seen_t seen = s_pump_acks_checked (o, f);
    if (hears == HEARS_ENTRIES)
        CHECK_EQ (seen.snapshots, 1);
    //  The follower ends with the owner's history: seq 4 at epoch 2, the
    //  owner's records (a snapshot merges them: the order databases are
    //  shared by every partition, and nothing else of them is dropped)
    CHECK_EQ (journal_seq (f->journal, OWNED), 4);
    CHECK_EQ (journal_last_epoch (f->journal, OWNED), 2);
    CHECK (s_follows_owner (o, f, 4));
    CHECK (s_has_record (f, "a") && s_has_record (f, "b") && s_has_record (f, "c") && s_has_record (f, "d"));
    //  ...and the owner's next entries in its log
    s_write (o, OWNED, 0, "e");
    s_pump_acks_checked (o, f);
    CHECK_EQ (journal_seq (f->journal, OWNED), 5);
    CHECK (s_same_entry (o, f, OWNED, 5));
    //  It acks the new epoch again, so the owner counts it in sync
    s_now += 200;
    repl_tick (f->repl, s_now);
    s_pump_acks_checked (o, f);
    char isr [256], status [32];
    s_report (o, OWNED, isr, sizeof isr, status, sizeof status);
    CHECK (streq (isr, "f"));
    s_close_all ();
}

//  The owner lost the only entry of its partition (published, never
//  committed): its log is empty at its new epoch.  A follower that held
//  that entry gets a snapshot; the snapshot is cut short after its start
//  (the copy is partial, at seq 0), and the fetch it makes again is
//  answered with entries (there is no log to snapshot past): that answer
//  makes the copy whole, and the follower caught up, instead of partial
//  for good
static void
test_partial_copy_of_an_empty_log_becomes_whole (void)
{
    s_now = 1000;
    node_t *o = s_open_as ("o", 1, true);
    node_t *f = s_open_as ("f", 1, true);
    CHECK_EQ (repl_claim (o->repl, OWNED, NULL), 0);
    s_assign (f, OWNED, 1, "o", "o");
    s_pump ();
    char before [320];
    snprintf (before, sizeof before, "%.300s.before", o->path);
    zsys_dir_create ("%s", before);
    CHECK_EQ (mdb_env_copy (store_env (o->store), before), 0);
    s_write (o, OWNED, 0, "lost");
    s_pump_acks_checked (o, f);
    CHECK_EQ (journal_seq (f->journal, OWNED), 1);
    uint64_t epoch = 0;
    s_restart_owner (o, before, &epoch);
    CHECK_EQ (journal_seq (o->journal, OWNED), 0);
    s_drop_all ();
    s_assign (f, OWNED, epoch, "o", "o");
    //  The snapshot's start arrives, nothing after it
    bool started = false;
    for (int n = 0; n < 100 && !started; n++) {
        packet_t *next = zlistx_first (s_queue);
        if (!next)
            break;
        started = next->route == TO_PEER && streq (s_op (next), "snapshot");
        s_step ();
    }
    CHECK (started);
    packet_t *packet = zlistx_first (s_queue);
    while (packet) {
        if (packet->route == TO_PEER && (streq (s_op (packet), "snap_data") || streq (s_op (packet), "snap_end"))) {
            packet_t *lost = zlistx_detach_cur (s_queue);
            s_packet_destroy (&lost);
            packet = zlistx_first (s_queue);
        }
        else
            packet = zlistx_next (s_queue);
    }
    s_pump ();
    CHECK_EQ (journal_holding (f->journal, OWNED), JOURNAL_PARTIAL);
    CHECK (!repl_caught_up (f->repl));
    //  Its fetch times out and it asks again
    s_now += 1500;
    repl_tick (f->repl, s_now);
    s_pump ();
    CHECK_EQ (journal_holding (f->journal, OWNED), JOURNAL_WHOLE);
    CHECK_EQ (journal_seq (f->journal, OWNED), 0);
    CHECK (repl_caught_up (f->repl));
    s_close_all ();
}

static void test_lost_tail_dropped_on_the_owners_entries (void) { s_lost_tail (HEARS_ENTRIES); }
static void test_lost_tail_dropped_on_the_owners_head (void) { s_lost_tail (HEARS_HEAD); }
static void test_lost_tail_dropped_when_the_broker_tells (void) { s_lost_tail (HEARS_BROKER); }

//  A follower that holds exactly the owner's log keeps all of it across
//  the owner's restart: its fetch at the new epoch matches, and it gets
//  the new entries, no snapshot
static void
test_owners_log_kept_across_its_restart (void)
{
    s_now = 1000;
    node_t *o = s_open_as ("o", 1, true);
    node_t *f = s_open_as ("f", 1, true);
    CHECK_EQ (repl_claim (o->repl, OWNED, NULL), 0);
    s_assign (f, OWNED, 1, "o", "o");
    s_pump ();                                          //  F holds the (empty) log, and hears the stream
    s_write (o, OWNED, 0, "a");
    s_write (o, OWNED, 0, "b");
    s_pump_acks_checked (o, f);
    s_restart_owner (o, NULL, NULL);
    s_write (o, OWNED, 0, "c");
    seen_t seen = s_pump_acks_checked (o, f);
    CHECK_EQ (seen.snapshots, 0);
    CHECK (seen.entries >= 1);
    CHECK_EQ (journal_seq (f->journal, OWNED), 3);
    for (uint64_t seq = 1; seq <= 3; seq++)
        CHECK (s_same_entry (o, f, OWNED, seq));
    CHECK_EQ (s_entry_epoch (f, OWNED, 2), 1);
    CHECK_EQ (s_entry_epoch (f, OWNED, 3), 2);
    s_close_all ();
}

//  Past 32 partitions, 16 followers of one partition and 16 sources, the
//  tables used to be full: a claim failed (ignored), a follower's acks
//  were dropped and it never counted in sync, a partition whose source
//  found no room never fetched.  They grow now.
#define MANY 40

static void
test_tables_grow (void)
{
    s_now = 1000;
    node_t *node = s_open ("many", 1);
    char name [32];
    //  Partitions: MANY of our own
    int claimed = 0;
    for (int i = 0; i < MANY; i++) {
        snprintf (name, sizeof name, "p-%d", i);
        claimed += repl_claim (node->repl, name, NULL) == 0 && repl_is_primary (node->repl, name);
    }
    CHECK_EQ (claimed, MANY);
    //  Followers: MANY replicas ack p-0, each is in sync
    for (int i = 0; i < MANY; i++) {
        snprintf (name, sizeof name, "f-%d", i);
        s_request (node, name, "ack", "p-0", 1, 0);
    }
    char isr [1024], status [32];
    s_report (node, "p-0", isr, sizeof isr, status, sizeof status);
    int insync = *isr? 1: 0;
    for (const char *c = isr; *c; c++)
        insync += *c == ',';
    CHECK_EQ (insync, MANY);
    //  Sources: MANY partitions to follow, each from a source of its own;
    //  every source gets a fetch
    for (int i = 0; i < MANY; i++) {
        char primary [32];
        snprintf (primary, sizeof primary, "s-%d", i);
        snprintf (name, sizeof name, "q-%d", i);
        s_assign (node, name, 1, primary, primary);
    }
    int fetched = 0;
    for (int i = 0; i < MANY; i++) {
        char sync [64];
        uint8_t rid [BS_RID_SIZE];
        snprintf (sync, sizeof sync, "s-%d-sync", i);
        fetched += s_fetch_rid (sync, rid);
    }
    CHECK_EQ (fetched, MANY);
    s_close_all ();
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    s_queue = zlistx_new ();
    snprintf (s_dir, sizeof s_dir, "/tmp/bookstore-unit-repl.%d", (int) getpid ());
    zsys_dir_create ("%s", s_dir);
    RUN (test_reply_acceptable);
    RUN (test_waits_for_a_follower_it_reported);
    RUN (test_stream_head);
    RUN (test_held_until_all_acked);
    RUN (test_held_until_committed);
    RUN (test_no_second_life_at_an_epoch);
    RUN (test_silent_follower_leaves);
    RUN (test_diverged_fetch_gets_snapshot);
    RUN (test_snapshot_missing_a_part_is_not_whole);
    RUN (test_late_reply_not_applied);
    RUN (test_snapshot_names_source_history);
    RUN (test_unverified_head_not_acked);
    RUN (test_stream_buffer_dropped_with_its_stream);
    RUN (test_tail_of_a_given_up_epoch_is_dropped);
    RUN (test_loading_snapshot_refuses_primary);
    RUN (test_snapshot_streams_over_turns);
    RUN (test_newer_fetch_ends_the_snapshot);
    RUN (test_new_epoch_ends_the_snapshot);
    RUN (test_snapshots_at_once_are_bounded);
    RUN (test_tables_grow);
    RUN (test_owner_claims_a_new_epoch_each_start);
    RUN (test_lost_tail_dropped_on_the_owners_entries);
    RUN (test_lost_tail_dropped_on_the_owners_head);
    RUN (test_lost_tail_dropped_when_the_broker_tells);
    RUN (test_owners_log_kept_across_its_restart);
    RUN (test_partial_copy_of_an_empty_log_becomes_whole);
    zlistx_destroy (&s_queue);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system (cmd) != 0)
        fprintf (stderr, "could not remove %s\n", s_dir);
    return DONE ();
}
