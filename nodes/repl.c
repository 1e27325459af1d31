/*  repl - replication: publish, follow, fetch, snapshot, ack, in-sync set  */
#include "repl.h"
#include "bs_idlist.h"

#include <czmq.h>
#include <string.h>

#define FETCH_BATCH      2000       //  entries per catch-up reply
#define FETCH_BYTES      (2 << 20)  //  ... and at most this many bytes
#define SNAP_BATCH       2000       //  records per snapshot message
#define BUFFER_MAX       100000     //  live entries held while catching up
#define FETCH_TIMEOUT_MS 1000
#define DRAIN_MAX        2000       //  messages read per socket per poll

typedef enum { ROLE_NONE, ROLE_PRIMARY, ROLE_FOLLOWER } role_t;

typedef struct {
    char endpoint [257];
    zsock_t *sock;
} link_t;

typedef struct {
    char id [65];
    uint64_t acked;
    int64_t last_seen;
    bool insync;
    bool snapshotting;          //  we sent it a snapshot: its acks mean
                                //  nothing until it fetches from there
    uint64_t reported_at;       //  the newest of our reports naming it in
                                //  sync (0: none)
} follower_t;

typedef struct {
    uint64_t seq;
    int64_t since;
    zmq_msg_t token;
    void *data;
    size_t size;
} pending_t;

typedef struct {
    bs_entry_t *entry;
    zframe_t *frame;            //  owns the bytes the entry points into
} live_t;

typedef struct {
    char name [65];
    char topic [70];            //  name + "|", so "order-1" does not match "order-10"
    role_t role;
    uint64_t epoch;             //  the epoch we were told; older entries are fenced off
    //  follower
    char primary [65];
    char pub [257];
    link_t *source;             //  where we fetch from
    link_t *ack;                //  the primary's ROUTER
    bool fetching;
    int64_t fetch_deadline;
    uint64_t fetch_serial;      //  names our latest fetch (with the epoch, in its rid)
    bool snapshot;              //  a snapshot is being received
    uint64_t snap_epoch, snap_seq;
    zlistx_t *buffer;           //  live_t, in arrival order
    uint64_t head_seen;
    bool synced;                //  caught up since the last assignment
    bool touched;               //  live entries arrived in this poll turn
    int64_t next_ack;
    //  primary
    follower_t *followers;      //  grows: as many as fetch or ack
    int follower_count, follower_cap;
    pending_t *pending;         //  ring, in seq order
    size_t pending_head, pending_count, pending_cap;
    uint64_t published;
    uint64_t publish_count;     //  for the drop test switch
    char confirmed [512];       //  the in-sync set the broker confirmed
    uint64_t confirmed_version; //  ...built from our report of this version
    uint64_t report_version;    //  our latest status report's version
    bool home;                  //  ours to write for good (an order node's own)
} part_t;

struct _repl_t {
    journal_t *journal;
    repl_options_t options;
    char pub_endpoint [257], sync_endpoint [257];
    char id [65];
    repl_send_fn *send;
    void *send_arg;
    zsock_t *pub, *router, *sub;
    //  Both grow as the broker's map does; each element is allocated on
    //  its own, so pointers to it (a partition's source) stay valid
    link_t **links;
    int link_count, link_cap;
    part_t **parts;
    int part_count, part_cap;
    int64_t next_beat;
    bool assigned;              //  the broker has sent us our roles
};

//  --------------------------------------------------------------------------
//  Helpers

//  Makes room for one more element in a table of count (doubling)
static void
s_grow (void **table, int *cap, int count, size_t size)
{
    if (count < *cap)
        return;
    int new_cap = *cap? *cap * 2: 8;
    void *grown = realloc (*table, (size_t) new_cap * size);
    if (!grown)
        abort ();
    *table = grown;
    *cap = new_cap;
}

static part_t *
s_part (repl_t *self, const char *name, bool create)
{
    for (int i = 0; i < self->part_count; i++)
        if (strcmp (self->parts [i]->name, name) == 0)
            return self->parts [i];
    if (!create)
        return NULL;
    s_grow ((void **) &self->parts, &self->part_cap, self->part_count, sizeof (part_t *));
    part_t *part = calloc (1, sizeof (part_t));
    if (!part)
        abort ();
    self->parts [self->part_count++] = part;
    snprintf (part->name, sizeof part->name, "%s", name);
    snprintf (part->topic, sizeof part->topic, "%s|", name);
    part->epoch = journal_epoch (self->journal, name);
    part->buffer = zlistx_new ();
    return part;
}

static void
s_live_destroy (live_t **live_p)
{
    bs_entry_destroy (&(*live_p)->entry);
    zframe_destroy (&(*live_p)->frame);
    free (*live_p);
    *live_p = NULL;
}

static void
s_buffer_clear (part_t *part)
{
    live_t *live;
    while ((live = zlistx_detach (part->buffer, NULL)))
        s_live_destroy (&live);
}

//  The DEALER to a source's ROUTER (server: its node id, for CURVE)
static link_t *
s_link (repl_t *self, const char *endpoint, const char *server)
{
    if (!endpoint || !*endpoint)
        return NULL;
    for (int i = 0; i < self->link_count; i++)
        if (strcmp (self->links [i]->endpoint, endpoint) == 0)
            return self->links [i];
    s_grow ((void **) &self->links, &self->link_cap, self->link_count, sizeof (link_t *));
    link_t *link = calloc (1, sizeof (link_t));
    if (!link)
        abort ();
    self->links [self->link_count++] = link;
    snprintf (link->endpoint, sizeof link->endpoint, "%s", endpoint);
    link->sock = zsock_new (ZMQ_DEALER);
    zsock_set_identity (link->sock, self->id);
    zsock_set_linger (link->sock, 0);
    zsock_set_sndhwm (link->sock, 0);
    zsock_set_rcvhwm (link->sock, 0);
    zsock_set_maxmsgsize (link->sock, BS_MAX_BODY + 65536);
    bs_keys_connect_to (self->options.keys, link->sock, server);
    zsock_connect (link->sock, "%s", endpoint);
    return link;
}

static void
s_send_msg (void *sock, const void *identity, size_t identity_size, bs_msg_t *msg)
{
    size_t size;
    uint8_t *data = bs_msg_encode (msg, &size);
    //  Never blocks: a fetch or ack that cannot go out now is sent again
    //  on the next heartbeat
    if (identity)
        zmq_send (sock, identity, identity_size, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (sock, data, size, ZMQ_DONTWAIT);
    free (data);
}

//  The epoch of the entry at seq in our own log; for our last entry, when
//  the log no longer has it (trimmed, or we loaded a snapshot), the epoch
//  the journal kept of it.  Never the epoch we were assigned: a replica
//  told a newer epoch than its last entry's still holds the old history.
static uint64_t
s_epoch_at (repl_t *self, const char *partition, uint64_t seq)
{
    uint64_t epoch = journal_last_epoch (self->journal, partition);
    if (seq == 0)
        return 0;
    MDB_txn *txn = store_begin (journal_store (self->journal), false);
    if (!txn)
        return epoch;
    MDB_val value;
    if (journal_read (self->journal, txn, partition, seq, &value) == 0) {
        bs_entry_t *entry = bs_entry_parse (value.mv_data, value.mv_size);
        if (entry)
            epoch = bs_entry_epoch (entry);
        bs_entry_destroy (&entry);
    }
    mdb_txn_abort (txn);
    return epoch;
}

//  --------------------------------------------------------------------------
//  Fetch ids: which fetch a reply answers

void
repl_fetch_rid (uint64_t epoch, uint64_t serial, uint8_t *rid)
{
    for (int i = 0; i < 8; i++) {
        rid [i] = (uint8_t) (epoch >> (56 - 8 * i));
        rid [8 + i] = (uint8_t) (serial >> (56 - 8 * i));
    }
}

bool
repl_reply_acceptable (bool from_source, const uint8_t *rid, size_t rid_size, uint64_t epoch, uint64_t serial)
{
    if (!from_source || !rid || rid_size != BS_RID_SIZE)
        return false;
    uint8_t want [BS_RID_SIZE];
    repl_fetch_rid (epoch, serial, want);
    return memcmp (rid, want, BS_RID_SIZE) == 0;
}

//  --------------------------------------------------------------------------
//  Primary: held replies and the in-sync set

static int
s_insync_count (part_t *part)
{
    int n = 0;
    for (int i = 0; i < part->follower_count; i++)
        n += part->followers [i].insync;
    return n;
}

//  At most this many followers per partition, far more replicas than a
//  partition has: a name past them takes the place of the one longest
//  silent that is not in sync, or is not tracked
#define FOLLOWERS_MAX 64

static follower_t *
s_follower (part_t *part, const char *id)
{
    for (int i = 0; i < part->follower_count; i++)
        if (strcmp (part->followers [i].id, id) == 0)
            return &part->followers [i];
    follower_t *f = NULL;
    if (part->follower_count < FOLLOWERS_MAX) {
        s_grow ((void **) &part->followers, &part->follower_cap, part->follower_count, sizeof (follower_t));
        f = &part->followers [part->follower_count++];
    }
    else
        for (int i = 0; i < part->follower_count; i++)
            if (!part->followers [i].insync && (!f || part->followers [i].last_seen < f->last_seen))
                f = &part->followers [i];
    if (!f)
        return NULL;
    memset (f, 0, sizeof *f);
    snprintf (f->id, sizeof f->id, "%s", id);
    return f;
}

//  Whether a write waits for this follower.  It counts while we see it in
//  sync, while the broker's confirmed set lists it, and while a report of
//  ours named it in sync that the confirmed set is not yet built from: the
//  broker may be adding it to the stored set on that report's word, and
//  once that lands the follower is electable, so it must hold every write
//  acknowledged meanwhile.  We stop waiting for a follower only once a
//  confirmation built from a report at least as new as our last one
//  naming it leaves it out.
bool
repl_waits_for (bool insync, bool confirmed, uint64_t reported_at, uint64_t confirmed_version)
{
    return insync || confirmed || reported_at > confirmed_version;
}

//  The highest seq every follower we wait for has
static uint64_t
s_acked_by_all (part_t *part)
{
    uint64_t low = UINT64_MAX;
    for (int i = 0; i < part->follower_count; i++) {
        follower_t *f = &part->followers [i];
        if (repl_waits_for (f->insync, bs_idlist_has (part->confirmed, f->id), f->reported_at,
                            part->confirmed_version)
        &&  f->acked < low)
            low = f->acked;
    }
    //  Listed by the broker but never heard from since we became primary
    char copy [512];
    snprintf (copy, sizeof copy, "%s", part->confirmed);
    for (char *tok = strtok (copy, ","); tok; tok = strtok (NULL, ",")) {
        bool known = false;
        for (int i = 0; i < part->follower_count && !known; i++)
            known = strcmp (part->followers [i].id, tok) == 0;
        if (!known)
            low = 0;
    }
    return low;
}

static void
s_release (repl_t *self, part_t *part)
{
    uint64_t acked = s_acked_by_all (part);
    while (part->pending_count) {
        pending_t *p = &part->pending [part->pending_head];
        if (p->seq > acked)
            break;
        self->send (self->send_arg, &p->token, p->data, p->size);
        free (p->data);
        part->pending_head = (part->pending_head + 1) % part->pending_cap;
        part->pending_count--;
    }
}

//  Answers every held reply with an error (we stopped being primary)
static void
s_fail_pending (repl_t *self, part_t *part)
{
    if (!part->pending_count)
        return;
    bs_msg_t *error = bs_msg_new_error (BS_ERR_unavailable,
        "the replica lost its primary role before the write was replicated; retry with the same request id");
    size_t size;
    uint8_t *data = bs_msg_encode (error, &size);
    while (part->pending_count) {
        pending_t *p = &part->pending [part->pending_head];
        self->send (self->send_arg, &p->token, data, size);
        free (p->data);
        part->pending_head = (part->pending_head + 1) % part->pending_cap;
        part->pending_count--;
    }
    free (data);
    bs_msg_destroy (&error);
}

void
repl_defer (repl_t *self, const char *partition, uint64_t seq, zmq_msg_t *token, const void *data, size_t size)
{
    part_t *part = seq? s_part (self, partition, false): NULL;
    if (!part || part->role != ROLE_PRIMARY || s_acked_by_all (part) >= seq) {
        self->send (self->send_arg, token, data, size);
        return;
    }
    if (part->pending_count == part->pending_cap) {
        size_t cap = part->pending_cap? part->pending_cap * 2: 1024;
        pending_t *ring = malloc (cap * sizeof (pending_t));
        if (!ring)
            abort ();
        for (size_t i = 0; i < part->pending_count; i++)
            ring [i] = part->pending [(part->pending_head + i) % part->pending_cap];
        free (part->pending);
        part->pending = ring;
        part->pending_head = 0;
        part->pending_cap = cap;
    }
    pending_t *p = &part->pending [(part->pending_head + part->pending_count++) % part->pending_cap];
    p->seq = seq;
    p->since = zclock_mono ();
    zmq_msg_init (&p->token);
    zmq_msg_move (&p->token, token);
    p->data = malloc (size);
    if (!p->data)
        abort ();
    memcpy (p->data, data, size);
    p->size = size;
}

static void
s_on_ack (repl_t *self, part_t *part, const char *id, uint64_t seq)
{
    follower_t *f = s_follower (part, id);
    if (!f || f->snapshotting)
        return;
    f->acked = seq > f->acked? seq: f->acked;
    f->last_seen = zclock_mono ();
    if (!f->insync && f->acked >= part->published) {
        f->insync = true;
        zsys_info ("%s: %s is in sync on %s at seq %llu", self->id, id, part->name,
                   (unsigned long long) f->acked);
    }
    s_release (self, part);
}

static void
s_evict_laggards (repl_t *self, part_t *part, int64_t now)
{
    int64_t timeout = self->options.insync_timeout_ms;
    uint64_t oldest = part->pending_count? part->pending [part->pending_head].seq: 0;
    bool overdue = part->pending_count && now - part->pending [part->pending_head].since > timeout;
    for (int i = 0; i < part->follower_count; i++) {
        follower_t *f = &part->followers [i];
        if (!f->insync)
            continue;
        const char *why = NULL;
        //  Followers ack every heartbeat even when idle
        if (now - f->last_seen > timeout)
            why = "silent";
        else
        if (overdue && f->acked < oldest)
            why = "lagging";
        if (why) {
            f->insync = false;
            zsys_warning ("%s: %s left the in-sync set of %s (%s, acked %llu of %llu)", self->id, f->id,
                          part->name, why, (unsigned long long) f->acked, (unsigned long long) part->published);
        }
    }
    s_release (self, part);
}

//  --------------------------------------------------------------------------
//  Serving fetches (any node that holds the partition)

//  Every reply to a fetch carries the fetch's rid back, so that the
//  follower can tell it from replies to its older fetches
static void
s_echo_rid (bs_msg_t *msg, const bs_msg_t *request)
{
    size_t size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &size);
    if (rid)
        bs_msg_set_bin (msg, BS_FIELD_rid, rid, size);
}

static void
s_send_snapshot (repl_t *self, const void *identity, size_t identity_size, const char *partition,
                 const bs_msg_t *request)
{
    void *router = zsock_resolve (self->router);
    MDB_txn *txn = store_begin (journal_store (self->journal), false);
    if (!txn)
        return;
    uint64_t seq = journal_seq (self->journal, partition);
    uint64_t epoch = s_epoch_at (self, partition, seq);
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, "snapshot");
    bs_msg_set_str (msg, BS_FIELD_partition, partition);
    s_echo_rid (msg, request);
    bs_msg_set_int (msg, BS_FIELD_epoch, (int64_t) epoch);
    bs_msg_set_int (msg, BS_FIELD_seq, (int64_t) seq);
    s_send_msg (router, identity, identity_size, msg);
    bs_msg_destroy (&msg);
    size_t records = 0;
    for (int d = 0; self->options.dbs [d]; d++) {
        MDB_dbi dbi;
        if (!journal_dbi (self->journal, self->options.dbs [d], &dbi, NULL))
            continue;
        MDB_cursor *cursor;
        if (mdb_cursor_open (txn, dbi, &cursor) != 0)
            continue;
        MDB_val key, value;
        int rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
        while (rc == 0) {
            if (!msg) {
                msg = bs_msg_new ();
                bs_msg_set_str (msg, BS_FIELD_op, "snap_data");
                bs_msg_set_str (msg, BS_FIELD_partition, partition);
                s_echo_rid (msg, request);
                bs_msg_set_list (msg, BS_FIELD_entries);
            }
            bs_msg_t *record = bs_msg_new ();
            bs_msg_set_str (record, BS_FIELD_db, self->options.dbs [d]);
            bs_msg_set_bin (record, BS_FIELD_key, key.mv_data, key.mv_size);
            bs_msg_set_bin (record, BS_FIELD_data, value.mv_data, value.mv_size);
            bs_msg_append (msg, BS_FIELD_entries, &record);
            records++;
            if (bs_msg_count (msg, BS_FIELD_entries) == SNAP_BATCH) {
                s_send_msg (router, identity, identity_size, msg);
                bs_msg_destroy (&msg);
            }
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    if (msg) {
        s_send_msg (router, identity, identity_size, msg);
        bs_msg_destroy (&msg);
    }
    mdb_txn_abort (txn);
    msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, "snap_end");
    bs_msg_set_str (msg, BS_FIELD_partition, partition);
    s_echo_rid (msg, request);
    bs_msg_set_int (msg, BS_FIELD_epoch, (int64_t) epoch);
    bs_msg_set_int (msg, BS_FIELD_seq, (int64_t) seq);
    s_send_msg (router, identity, identity_size, msg);
    bs_msg_destroy (&msg);
    zsys_info ("%s: sent a snapshot of %s (%zu records, seq %llu)", self->id, partition, records,
               (unsigned long long) seq);
}

static void
s_serve_fetch (repl_t *self, const void *identity, size_t identity_size, const bs_msg_t *request)
{
    const char *partition = bs_msg_str (request, BS_FIELD_partition);
    uint64_t seq = (uint64_t) bs_msg_int (request, BS_FIELD_seq);
    uint64_t epoch = (uint64_t) bs_msg_int (request, BS_FIELD_epoch);
    uint64_t head = journal_seq (self->journal, partition);
    part_t *part = s_part (self, partition, false);
    if (journal_holding (self->journal, partition) != JOURNAL_WHOLE) {
        //  We hold none or part of it: any answer would pass our gap for
        //  the partition's history (the fetcher times out and asks again)
        zsys_debug ("%s: a fetch of %s left unanswered: this node does not hold it whole", self->id, partition);
        return;
    }
    follower_t *fetcher = NULL;
    if (part && part->role == ROLE_PRIMARY) {
        //  Whoever fetches is not in sync until it acks our head
        char id [65];
        size_t n = identity_size < 64? identity_size: 64;
        memcpy (id, identity, n);
        id [n] = 0;
        follower_t *f = fetcher = s_follower (part, id);
        if (f) {
            if (f->insync && seq < head)
                zsys_info ("%s: %s fetches %s from %llu: out of sync", self->id, id, partition,
                           (unsigned long long) seq);
            if (seq < head)
                f->insync = false;
            f->last_seen = zclock_mono ();
        }
    }
    MDB_txn *txn = store_begin (journal_store (self->journal), false);
    if (!txn)
        return;
    bool snapshot = false;
    if (seq > head || (seq == 0 && head > 0) || head - seq > self->options.log_keep)
        snapshot = true;
    else
    if (seq > 0) {
        MDB_val value;
        if (journal_read (self->journal, txn, partition, seq, &value) == 0) {
            bs_entry_t *entry = bs_entry_parse (value.mv_data, value.mv_size);
            snapshot = !entry || bs_entry_epoch (entry) != epoch;
            bs_entry_destroy (&entry);
        }
        else
            snapshot = seq != head || s_epoch_at (self, partition, seq) != epoch;
        //  A follower whose history differs from ours at seq diverged
    }
    if (fetcher) {
        //  What a follower has is what its fetch proves it has: a snapshot
        //  drops its old state, and acks it sent before count no more
        fetcher->snapshotting = snapshot;
        fetcher->acked = snapshot? 0: seq;
        if (snapshot)
            fetcher->insync = false;
    }
    if (snapshot) {
        mdb_txn_abort (txn);
        s_send_snapshot (self, identity, identity_size, partition, request);
        return;
    }
    bs_msg_t *reply = bs_msg_new ();
    bs_msg_set_str (reply, BS_FIELD_op, "entries");
    bs_msg_set_str (reply, BS_FIELD_partition, partition);
    s_echo_rid (reply, request);
    bs_msg_set_int (reply, BS_FIELD_head, (int64_t) head);
    bs_msg_set_list (reply, BS_FIELD_entries);
    size_t bytes = 0;
    for (uint64_t s = seq + 1; s <= head && bs_msg_count (reply, BS_FIELD_entries) < FETCH_BATCH
                                && bytes < FETCH_BYTES; s++) {
        MDB_val value;
        if (journal_read (self->journal, txn, partition, s, &value) != 0)
            break;
        bs_msg_t *item = bs_msg_new ();
        bs_msg_set_bin (item, BS_FIELD_data, value.mv_data, value.mv_size);
        bs_msg_append (reply, BS_FIELD_entries, &item);
        bytes += value.mv_size;
    }
    mdb_txn_abort (txn);
    s_send_msg (zsock_resolve (self->router), identity, identity_size, reply);
    bs_msg_destroy (&reply);
}

//  The sync socket names a follower by its routing id.  With CURVE the
//  name must be the connection's key (its ZAP User-Id "node:<name>"), and
//  only nodes of the partition's service fetch or ack it: catalog nodes
//  (keys named catalog...) the catalog, order nodes the order partitions.
//  In plain mode the socket listens on loopback alone and names are
//  believed.
static bool
s_peer_allowed (repl_t *self, zmq_msg_t *identity, zmq_msg_t *body, const char *partition)
{
    if (!self->options.keys)
        return true;
    const char *name = "";
    const char *role = bs_keys_role (body, &name);
    bool catalog_key = strncmp (name, "catalog", 7) == 0;
    bool ok = strcmp (role, "node") == 0
           && strlen (name) == zmq_msg_size (identity) && memcmp (name, zmq_msg_data (identity), strlen (name)) == 0
           && catalog_key == (strcmp (partition, "catalog") == 0);
    if (!ok) {
        static int64_t last_warning;
        if (zclock_mono () - last_warning > 5000) {
            last_warning = zclock_mono ();
            zsys_warning ("%s: refused a replication request for %s from key '%s' calling itself '%.*s'", self->id,
                          partition, name, (int) (zmq_msg_size (identity) < 64? zmq_msg_size (identity): 64),
                          (const char *) zmq_msg_data (identity));
        }
    }
    return ok;
}

static void
s_on_router (repl_t *self)
{
    void *router = zsock_resolve (self->router);
    //  Serving a fetch can be heavy: take a few per turn so that the node's
    //  own work (and its heartbeats) go on
    for (int n = 0; n < 64; n++) {
        zmq_msg_t identity, body;
        zmq_msg_init (&identity);
        if (zmq_msg_recv (&identity, router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&identity);
            return;
        }
        zmq_msg_init (&body);
        bool framed = zmq_msg_more (&identity) && zmq_msg_recv (&body, router, 0) >= 0 && !zmq_msg_more (&body);
        while (zmq_msg_more (&body)) {      //  swallow extra frames
            zmq_msg_close (&body);
            zmq_msg_init (&body);
            if (zmq_msg_recv (&body, router, 0) < 0)
                break;
        }
        bs_err_t err;
        char reason [128];
        bs_msg_t *msg = framed? bs_msg_decode (zmq_msg_data (&body), zmq_msg_size (&body), &err, reason, sizeof reason): NULL;
        if (msg && bs_msg_validate_request (msg, reason, sizeof reason) != BS_OK)
            bs_msg_destroy (&msg);
        if (!msg)
            zsys_warning ("%s: dropped a malformed replication request", self->id);
        else
        if (!s_peer_allowed (self, &identity, &body, bs_msg_str (msg, BS_FIELD_partition)))
            ;                               //  logged
        else
        if (bs_msg_op (msg) == BS_OP_fetch)
            s_serve_fetch (self, zmq_msg_data (&identity), zmq_msg_size (&identity), msg);
        else
        if (bs_msg_op (msg) == BS_OP_ack) {
            part_t *part = s_part (self, bs_msg_str (msg, BS_FIELD_partition), false);
            char id [65];
            size_t n = zmq_msg_size (&identity) < 64? zmq_msg_size (&identity): 64;
            memcpy (id, zmq_msg_data (&identity), n);
            id [n] = 0;
            if (part && part->role == ROLE_PRIMARY && (uint64_t) bs_msg_int (msg, BS_FIELD_epoch) == part->epoch)
                s_on_ack (self, part, id, (uint64_t) bs_msg_int (msg, BS_FIELD_seq));
        }
        bs_msg_destroy (&msg);
        zmq_msg_close (&identity);
        zmq_msg_close (&body);
    }
}

//  --------------------------------------------------------------------------
//  Follower: apply, ack, fetch

static void
s_send_ack (repl_t *self, part_t *part)
{
    if (!part->ack)
        return;
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, "ack");
    bs_msg_set_str (msg, BS_FIELD_partition, part->name);
    bs_msg_set_int (msg, BS_FIELD_epoch, (int64_t) part->epoch);
    bs_msg_set_int (msg, BS_FIELD_seq, (int64_t) journal_seq (self->journal, part->name));
    s_send_msg (zsock_resolve (part->ack->sock), NULL, 0, msg);
    bs_msg_destroy (&msg);
    part->next_ack = zclock_mono () + self->options.heartbeat_ms;
}

static void
s_fetch (repl_t *self, part_t *part)
{
    if (!part->source || part->fetching || part->snapshot)
        return;
    uint64_t seq = journal_seq (self->journal, part->name);
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, "fetch");
    bs_msg_set_str (msg, BS_FIELD_partition, part->name);
    bs_msg_set_int (msg, BS_FIELD_seq, (int64_t) seq);
    bs_msg_set_int (msg, BS_FIELD_epoch, (int64_t) s_epoch_at (self, part->name, seq));
    //  Only replies to this very fetch, made at the epoch we follow now,
    //  are taken (repl_reply_acceptable)
    uint8_t rid [BS_RID_SIZE];
    repl_fetch_rid (part->epoch, ++part->fetch_serial, rid);
    bs_msg_set_bin (msg, BS_FIELD_rid, rid, sizeof rid);
    s_send_msg (zsock_resolve (part->source->sock), NULL, 0, msg);
    bs_msg_destroy (&msg);
    part->fetching = true;
    part->fetch_deadline = zclock_mono () + FETCH_TIMEOUT_MS;
}

//  Applies entries in order in one transaction.  Entries already applied
//  are skipped.  A live entry from an older epoch than we were told comes
//  from a deposed primary and is fenced off; fetched entries come from the
//  source's log, which is authoritative whatever their epoch.  Returns how
//  many were applied, or -1 on a gap or error.
static int
s_apply (repl_t *self, part_t *part, bs_entry_t **entries, const zframe_t **frames,
         const void **datas, const size_t *sizes, size_t count, bool live)
{
    MDB_txn *txn = NULL;
    int applied = 0;
    bool gap = false;
    for (size_t i = 0; i < count && !gap; i++) {
        bs_entry_t *entry = entries [i];
        uint64_t next = journal_next_seq (self->journal, part->name);
        if (bs_entry_seq (entry) < next)
            continue;
        if (live && bs_entry_epoch (entry) < part->epoch)
            continue;           //  from a deposed primary
        if (bs_entry_seq (entry) > next) {
            gap = true;
            break;
        }
        if (!txn && !(txn = journal_begin (self->journal)))
            return -1;
        const void *data = frames? zframe_data ((zframe_t *) frames [i]): datas [i];
        size_t size = frames? zframe_size ((zframe_t *) frames [i]): sizes [i];
        int rc = journal_apply (self->journal, txn, entry, data, size);
        if (rc != 0) {
            zsys_error ("%s: cannot apply entry %llu of %s: %s", self->id,
                        (unsigned long long) bs_entry_seq (entry), part->name, mdb_strerror (rc));
            journal_abort (self->journal, txn);
            return -1;
        }
        if (bs_entry_epoch (entry) > part->epoch)
            part->epoch = bs_entry_epoch (entry);
        applied++;
    }
    if (txn && journal_commit (self->journal, txn) != 0)
        return -1;
    if (applied)
        s_send_ack (self, part);
    return gap? -1: applied;
}

//  Applies whatever buffered live entries now follow on
static void
s_advance (repl_t *self, part_t *part)
{
    if (part->fetching || part->snapshot || part->role != ROLE_FOLLOWER)
        return;
    size_t count = zlistx_size (part->buffer);
    if (!count)
        return;
    bs_entry_t **entries = malloc (count * sizeof (bs_entry_t *));
    const zframe_t **frames = malloc (count * sizeof (zframe_t *));
    size_t n = 0;
    for (live_t *live = zlistx_first (part->buffer); live; live = zlistx_next (part->buffer)) {
        entries [n] = live->entry;
        frames [n++] = live->frame;
    }
    int rc = s_apply (self, part, entries, frames, NULL, NULL, n, true);
    free (entries);
    free (frames);
    //  Drop what is now applied (or fenced); keep what lies beyond a gap
    uint64_t next = journal_next_seq (self->journal, part->name);
    live_t *live = zlistx_first (part->buffer);
    while (live && (bs_entry_seq (live->entry) < next || bs_entry_epoch (live->entry) < part->epoch)) {
        live = zlistx_detach_cur (part->buffer);
        s_live_destroy (&live);
        live = zlistx_first (part->buffer);
    }
    if (rc < 0 || zlistx_size (part->buffer))
        s_fetch (self, part);
}

static void
s_on_sub (repl_t *self)
{
    void *sub = zsock_resolve (self->sub);
    for (int n = 0; n < DRAIN_MAX; n++) {
        zmsg_t *msg = zmsg_recv_nowait (self->sub);
        if (!msg)
            break;
        (void) sub;
        zframe_t *topic = zmsg_pop (msg), *kind = zmsg_pop (msg), *body = zmsg_pop (msg);
        part_t *part = NULL;
        if (topic && kind && body && zframe_size (topic) > 1 && zframe_size (topic) < 70 && zframe_size (kind) == 1) {
            char name [70];
            memcpy (name, zframe_data (topic), zframe_size (topic) - 1);
            name [zframe_size (topic) - 1] = 0;
            part = s_part (self, name, false);
        }
        if (part && part->role == ROLE_FOLLOWER) {
            char k = *(char *) zframe_data (kind);
            if (k == 'H' && zframe_size (body) == 16) {
                uint64_t head, epoch;
                memcpy (&head, zframe_data (body), 8);
                memcpy (&epoch, zframe_data (body) + 8, 8);
                if (epoch >= part->epoch && head > part->head_seen)
                    part->head_seen = head;
                //  The head's entries came before it on this stream: only
                //  a head beyond what we hold, applied or buffered, means
                //  entries were lost on the way
                live_t *last = zlistx_last (part->buffer);
                uint64_t buffered = last? bs_entry_seq (last->entry): 0;
                if (epoch >= part->epoch && head > journal_seq (self->journal, part->name) && head > buffered)
                    s_fetch (self, part);
            }
            else
            if (k == 'E') {
                bs_entry_t *entry = bs_entry_parse (zframe_data (body), zframe_size (body));
                if (entry && strcmp (bs_entry_partition (entry), part->name) == 0
                &&  zlistx_size (part->buffer) < BUFFER_MAX) {
                    live_t *live = calloc (1, sizeof (live_t));
                    live->entry = entry;
                    live->frame = body;
                    body = NULL;
                    entry = NULL;
                    zlistx_add_end (part->buffer, live);
                    if (bs_entry_seq (live->entry) > part->head_seen)
                        part->head_seen = bs_entry_seq (live->entry);
                    part->touched = true;
                }
                bs_entry_destroy (&entry);
            }
        }
        zframe_destroy (&topic);
        zframe_destroy (&kind);
        zframe_destroy (&body);
        zmsg_destroy (&msg);
    }
    for (int i = 0; i < self->part_count; i++)
        if (self->parts [i]->touched) {
            self->parts [i]->touched = false;
            s_advance (self, self->parts [i]);
        }
}

static bool
s_mark_whole (repl_t *self, part_t *part)
{
    MDB_txn *txn = journal_begin (self->journal);
    if (!txn)
        return false;
    if (journal_set_whole (self->journal, txn, part->name) != 0) {
        journal_abort (self->journal, txn);
        return false;
    }
    return journal_commit (self->journal, txn) == 0;
}

static void
s_on_entries (repl_t *self, part_t *part, bs_msg_t *msg)
{
    size_t count = bs_msg_count (msg, BS_FIELD_entries);
    bs_entry_t **entries = calloc (count + 1, sizeof (bs_entry_t *));
    const void **datas = calloc (count + 1, sizeof (void *));
    size_t *sizes = calloc (count + 1, sizeof (size_t));
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        bs_msg_t *item = bs_msg_at (msg, BS_FIELD_entries, i);
        size_t size;
        const uint8_t *data = bs_msg_bin (item, BS_FIELD_data, &size);
        bs_entry_t *entry = data? bs_entry_parse (data, size): NULL;
        if (!entry || strcmp (bs_entry_partition (entry), part->name) != 0) {
            bs_entry_destroy (&entry);
            zsys_warning ("%s: a fetched entry of %s is malformed", self->id, part->name);
            break;
        }
        entries [n] = entry;
        datas [n] = data;
        sizes [n++] = size;
    }
    part->fetching = false;
    if (journal_holding (self->journal, part->name) == JOURNAL_FRESH)
        //  Our source found our (empty) history a prefix of its own and
        //  answered from its log: from here this copy is whole
        s_mark_whole (self, part);
    s_apply (self, part, entries, NULL, datas, sizes, n, false);
    for (size_t i = 0; i < n; i++)
        bs_entry_destroy (&entries [i]);
    free (entries);
    free (datas);
    free (sizes);
    uint64_t head = (uint64_t) bs_msg_int (msg, BS_FIELD_head);
    if (head > part->head_seen)
        part->head_seen = head;
    uint64_t seq = journal_seq (self->journal, part->name);
    if (seq < head)
        s_fetch (self, part);
    else {
        if (!part->synced)
            zsys_info ("%s: caught up on %s at seq %llu", self->id, part->name, (unsigned long long) seq);
        part->synced = true;
        s_send_ack (self, part);
        s_advance (self, part);
    }
}

static void
s_on_snapshot (repl_t *self, part_t *part, bs_msg_t *msg)
{
    bs_op_t op = bs_msg_op (msg);
    MDB_txn *txn = journal_begin (self->journal);
    if (!txn)
        return;
    int rc = 0;
    if (op == BS_OP_snapshot) {
        part->snapshot = true;
        part->synced = false;
        rc = journal_reset (self->journal, txn, part->name, self->options.dbs, !self->options.mergeable);
        zsys_info ("%s: receiving a snapshot of %s at seq %lld", self->id, part->name,
                   (long long) bs_msg_int (msg, BS_FIELD_seq));
    }
    else
    if (op == BS_OP_snap_data && part->snapshot) {
        for (size_t i = 0; i < bs_msg_count (msg, BS_FIELD_entries) && rc == 0; i++) {
            bs_msg_t *record = bs_msg_at (msg, BS_FIELD_entries, i);
            size_t ksize, vsize;
            const uint8_t *key = bs_msg_bin (record, BS_FIELD_key, &ksize);
            const uint8_t *value = bs_msg_bin (record, BS_FIELD_data, &vsize);
            if (!key || !value || ksize == 0) {
                rc = EINVAL;
                break;
            }
            MDB_val k = { ksize, (void *) key }, v = { vsize, (void *) value };
            rc = journal_load_record (self->journal, txn, bs_msg_str (record, BS_FIELD_db), &k, &v);
        }
    }
    else
    if (op == BS_OP_snap_end && part->snapshot) {
        //  The epoch of the snapshot's last entry, not the one we follow
        //  at: with seq it must name the source's history, or our next
        //  fetch looks diverged and gets another snapshot, and another
        rc = journal_finish_snapshot (self->journal, txn, part->name, (uint64_t) bs_msg_int (msg, BS_FIELD_epoch),
                                      (uint64_t) bs_msg_int (msg, BS_FIELD_seq));
    }
    if (rc != 0) {
        zsys_error ("%s: snapshot of %s failed: %s", self->id, part->name, mdb_strerror (rc));
        journal_abort (self->journal, txn);
        part->snapshot = false;
        part->fetching = false;
        return;
    }
    if (journal_commit (self->journal, txn) != 0) {
        part->snapshot = false;
        part->fetching = false;
        return;
    }
    if (op == BS_OP_snap_end && part->snapshot) {
        if (journal_epoch (self->journal, part->name) > part->epoch)
            part->epoch = journal_epoch (self->journal, part->name);
        part->snapshot = false;
        part->fetching = false;
        zsys_info ("%s: snapshot of %s loaded at seq %llu", self->id, part->name,
                   (unsigned long long) journal_seq (self->journal, part->name));
        s_fetch (self, part);       //  whatever was written meanwhile
    }
}

static void
s_on_link (repl_t *self, link_t *link)
{
    for (int n = 0; n < DRAIN_MAX; n++) {
        zmsg_t *msg = zmsg_recv_nowait (link->sock);
        if (!msg)
            return;
        zframe_t *body = zmsg_first (msg);
        bs_err_t err;
        char reason [128];
        bs_msg_t *reply = zmsg_size (msg) == 1?
            bs_msg_decode (zframe_data (body), zframe_size (body), &err, reason, sizeof reason): NULL;
        if (reply && bs_msg_validate_request (reply, reason, sizeof reason) != BS_OK)
            bs_msg_destroy (&reply);
        part_t *part = reply? s_part (self, bs_msg_str (reply, BS_FIELD_partition), false): NULL;
        size_t rid_size = 0;
        const uint8_t *rid = reply? bs_msg_bin (reply, BS_FIELD_rid, &rid_size): NULL;
        if (part && part->role == ROLE_FOLLOWER
        &&  !repl_reply_acceptable (link == part->source, rid, rid_size, part->epoch, part->fetch_serial))
            //  A late answer from a source we left, or to a fetch made
            //  at an older epoch: a deposed primary's unreplicated tail
            //  must not be applied
            zsys_debug ("%s: ignored a %s reply for %s from %s: not an answer to our current fetch", self->id,
                        bs_msg_str (reply, BS_FIELD_op), part->name, link->endpoint);
        else
        if (part && part->role == ROLE_FOLLOWER) {
            if (bs_msg_op (reply) == BS_OP_entries)
                s_on_entries (self, part, reply);
            else
                s_on_snapshot (self, part, reply);
        }
        else
        if (!reply)
            zsys_warning ("%s: dropped a malformed replication reply", self->id);
        bs_msg_destroy (&reply);
        zmsg_destroy (&msg);
    }
}

//  --------------------------------------------------------------------------
//  Roles

static void
s_become_primary (repl_t *self, part_t *part, uint64_t epoch)
{
    if (part->role == ROLE_PRIMARY && part->epoch == epoch)
        return;
    journal_holding_t holding = journal_holding (self->journal, part->name);
    if (part->snapshot || holding == JOURNAL_PARTIAL) {
        //  Half a snapshot is not the partition: leading from it would lose
        //  acknowledged writes.  The status says why; the broker elects
        //  someone else.
        zsys_warning ("%s: refused to lead %s while loading a snapshot of it", self->id, part->name);
        return;
    }
    if (holding == JOURNAL_FRESH && epoch != 1) {
        //  A copy that never held the partition may lead only its first
        //  epoch: at a later one it may be a replica that lost its disk,
        //  and whatever the partition held would be gone
        zsys_warning ("%s: refused to lead %s at epoch %llu: this node holds none of it", self->id,
                      part->name, (unsigned long long) epoch);
        return;
    }
    if (holding == JOURNAL_FRESH && !s_mark_whole (self, part)) {
        zsys_error ("%s: cannot lead %s: its store refused the write", self->id, part->name);
        return;
    }
    if (part->role == ROLE_FOLLOWER && part->pub [0])
        zsock_set_unsubscribe (self->sub, part->topic);
    s_buffer_clear (part);
    part->role = ROLE_PRIMARY;
    part->pub [0] = 0;
    part->source = part->ack = NULL;
    part->fetching = part->snapshot = false;
    part->synced = true;
    if (epoch > journal_epoch (self->journal, part->name)) {
        MDB_txn *txn = journal_begin (self->journal);
        if (txn && journal_set_epoch (self->journal, txn, part->name, epoch) == 0)
            journal_commit (self->journal, txn);
        else
        if (txn)
            journal_abort (self->journal, txn);
    }
    part->epoch = epoch;
    part->published = journal_seq (self->journal, part->name);
    //  Followers must prove themselves again under the new epoch
    part->follower_count = 0;
    part->confirmed [0] = 0;
    part->confirmed_version = 0;
    zsys_info ("%s: primary of %s at epoch %llu, seq %llu", self->id, part->name,
               (unsigned long long) epoch, (unsigned long long) part->published);
}

static void
s_become_follower (repl_t *self, part_t *part, uint64_t epoch, const char *primary, const char *pub,
                   const char *source_id, const char *source_sync)
{
    if (part->role == ROLE_PRIMARY) {
        zsys_warning ("%s: no longer primary of %s (now %s at epoch %llu)", self->id, part->name,
                      *primary? primary: "nobody", (unsigned long long) epoch);
        s_fail_pending (self, part);
        part->follower_count = 0;
    }
    bool changed = part->role != ROLE_FOLLOWER || strcmp (part->primary, primary) != 0 || epoch != part->epoch;
    bool newer = epoch > part->epoch;
    part->role = ROLE_FOLLOWER;
    if (newer)
        part->epoch = epoch;
    snprintf (part->primary, sizeof part->primary, "%s", primary);
    if (strcmp (part->pub, pub) != 0) {
        if (part->pub [0]) {
            zsock_set_unsubscribe (self->sub, part->topic);
            //  Stop hearing the old primary, unless another partition uses it
            bool shared = false;
            for (int i = 0; i < self->part_count; i++)
                shared |= self->parts [i] != part && strcmp (self->parts [i]->pub, part->pub) == 0;
            if (!shared)
                zsock_disconnect (self->sub, "%s", part->pub);
        }
        snprintf (part->pub, sizeof part->pub, "%s", pub);
        if (*pub) {
            //  Connecting twice to one endpoint is harmless in libzmq.  The
            //  server key is taken at connect time, per publisher.
            bs_keys_connect_to (self->options.keys, self->sub, primary);
            zsock_connect (self->sub, "%s", pub);
            zsock_set_subscribe (self->sub, part->topic);
        }
    }
    //  Never fetch from ourselves (we may be the most advanced replica);
    //  known by id, since two hosts may advertise alike endpoints
    bool ourselves = *source_id? strcmp (source_id, self->id) == 0
                               : strcmp (source_sync, self->options.sync_endpoint) == 0;
    link_t *source = ourselves? NULL: s_link (self, source_sync, source_id);
    //  A copy that is not whole fills itself from a primary only: a peer
    //  we catch up from while there is none may be behind, and this copy
    //  would then pass for one that holds every acknowledged write
    if (!*primary && journal_holding (self->journal, part->name) != JOURNAL_WHOLE)
        source = NULL;
    if (source != part->source || newer) {
        //  A fetch made of another source or at another epoch is answered
        //  no more (its replies are ignored): ask again, from scratch
        part->source = source;
        part->fetching = false;
        part->snapshot = false;
        changed = true;
    }
    part->ack = *primary? source: NULL;
    if (changed) {
        part->synced = false;
        if (*primary || source)
            zsys_info ("%s: following %s from %s at epoch %llu", self->id, part->name,
                       *primary? primary: "(no primary)", (unsigned long long) part->epoch);
        s_fetch (self, part);
    }
}

void
repl_assign (repl_t *self, const bs_msg_t *assign)
{
    self->assigned = true;
    for (size_t i = 0; i < bs_msg_count (assign, BS_FIELD_partitions); i++) {
        bs_msg_t *entry = bs_msg_at (assign, BS_FIELD_partitions, i);
        part_t *part = s_part (self, bs_msg_str (entry, BS_FIELD_partition), true);
        if (!part)
            continue;
        uint64_t epoch = (uint64_t) bs_msg_int (entry, BS_FIELD_epoch);
        const char *primary = bs_msg_str (entry, BS_FIELD_primary);
        if (part->home) {
            //  Nobody else writes our own partition; only learn who is in sync
            if (strcmp (primary, self->id) == 0) {
                snprintf (part->confirmed, sizeof part->confirmed, "%s", bs_msg_str (entry, BS_FIELD_isr));
                part->confirmed_version = (uint64_t) bs_msg_int (entry, BS_FIELD_version);
                s_release (self, part);
            }
            continue;
        }
        if (strcmp (primary, self->id) == 0) {
            s_become_primary (self, part, epoch);
            if (part->role == ROLE_PRIMARY && part->epoch == epoch) {
                snprintf (part->confirmed, sizeof part->confirmed, "%s", bs_msg_str (entry, BS_FIELD_isr));
                part->confirmed_version = (uint64_t) bs_msg_int (entry, BS_FIELD_version);
                s_release (self, part);
            }
        }
        else
        if (epoch >= part->epoch || part->role != ROLE_PRIMARY)
            s_become_follower (self, part, epoch, primary, bs_msg_str (entry, BS_FIELD_pub),
                               bs_msg_str (entry, BS_FIELD_source), bs_msg_str (entry, BS_FIELD_sync));
    }
}

int
repl_claim (repl_t *self, const char *partition, uint64_t epoch)
{
    part_t *part = s_part (self, partition, true);
    s_become_primary (self, part, epoch);
    if (part->role != ROLE_PRIMARY) {
        zsys_error ("%s: cannot take the primary role of %s", self->id, partition);
        return -1;
    }
    part->home = true;
    return 0;
}

bool
repl_is_primary (repl_t *self, const char *partition)
{
    part_t *part = s_part (self, partition, false);
    return part && part->role == ROLE_PRIMARY;
}

bs_err_t
repl_can_write (repl_t *self, const char *partition, char *reason, size_t size)
{
    part_t *part = s_part (self, partition, false);
    if (!part || part->role != ROLE_PRIMARY) {
        snprintf (reason, size, "this replica is not the primary of %s", partition);
        return BS_ERR_unavailable;
    }
    int insync = 1 + s_insync_count (part);
    if (insync < self->options.min_insync) {
        snprintf (reason, size, "only %d replica(s) of %s are in sync; %d needed", insync, partition,
                  self->options.min_insync);
        return BS_ERR_unavailable;
    }
    return BS_OK;
}

//  --------------------------------------------------------------------------
//  Publishing

static void
s_publish_heads (repl_t *self)
{
    void *pub = zsock_resolve (self->pub);
    for (int i = 0; i < self->part_count; i++) {
        part_t *part = self->parts [i];
        if (part->role != ROLE_PRIMARY)
            continue;
        uint64_t body [2] = { part->published, part->epoch };
        zmq_send (pub, part->topic, strlen (part->topic), ZMQ_SNDMORE);
        zmq_send (pub, "H", 1, ZMQ_SNDMORE);
        zmq_send (pub, body, sizeof body, 0);
    }
}

void
repl_publish (repl_t *self)
{
    void *pub = zsock_resolve (self->pub);
    for (size_t i = 0; i < journal_sealed (self->journal); i++) {
        size_t size;
        uint64_t seq;
        const char *partition;
        const uint8_t *data = journal_sealed_at (self->journal, i, &size, &seq, &partition);
        part_t *part = s_part (self, partition, false);
        if (!part || part->role != ROLE_PRIMARY)
            continue;
        part->published = seq;
        part->publish_count++;
        if (self->options.drop_every > 0 && part->publish_count % (uint64_t) self->options.drop_every == 0)
            continue;       //  test switch: lose this one on the way
        zmq_send (pub, part->topic, strlen (part->topic), ZMQ_SNDMORE);
        zmq_send (pub, "E", 1, ZMQ_SNDMORE);
        zmq_send (pub, data, size, 0);
    }
}

//  --------------------------------------------------------------------------

repl_t *
repl_new (journal_t *journal, const repl_options_t *options, repl_send_fn *send, void *arg)
{
    repl_t *self = calloc (1, sizeof (repl_t));
    if (!self)
        abort ();
    self->journal = journal;
    self->options = *options;
    //  Keep our own copies of the endpoints others are told
    snprintf (self->pub_endpoint, sizeof self->pub_endpoint, "%s", options->pub_endpoint);
    snprintf (self->sync_endpoint, sizeof self->sync_endpoint, "%s", options->sync_endpoint);
    self->options.pub_endpoint = self->pub_endpoint;
    self->options.sync_endpoint = self->sync_endpoint;
    snprintf (self->id, sizeof self->id, "%s", options->id);
    self->send = send;
    self->send_arg = arg;
    self->pub = zsock_new (ZMQ_PUB);
    self->router = zsock_new (ZMQ_ROUTER);
    self->sub = zsock_new (ZMQ_SUB);
    //  PUB drops silently at its high-water mark; gaps are fetched back,
    //  but a generous mark keeps that rare
    zsock_set_sndhwm (self->pub, options->hwm);
    zsock_set_rcvhwm (self->sub, options->hwm);
    zsock_set_maxmsgsize (self->sub, BS_MAX_BODY + 65536);
    zsock_set_maxmsgsize (self->router, 65536);
    //  A follower that restarts comes back under its id and takes its old
    //  connection over; under CURVE every request is checked against the
    //  connection's key (s_peer_allowed), so a takeover by another key
    //  gains nothing
    zsock_set_router_handover (self->router, 1);
    //  What waits for one follower: a fetch's reply, or a snapshot sent in
    //  one go as messages of SNAP_BATCH records, so 10,000 messages hold a
    //  partition of 20 million records; a follower that stops reading
    //  loses what is past the mark (and fetches again), never the node's
    //  memory.  It sends one fetch or ack at a time.
    zsock_set_sndhwm (self->router, 10000);
    zsock_set_rcvhwm (self->router, 1000);
    zsock_set_linger (self->pub, 0);
    zsock_set_linger (self->router, 0);
    zsock_set_linger (self->sub, 0);
    bs_keys_serve (options->keys, self->pub, "nodes");
    bs_keys_serve (options->keys, self->router, "nodes");
    if (zsock_bind (self->pub, "%s", options->pub_bind) < 0
    ||  zsock_bind (self->router, "%s", options->sync_bind) < 0) {
        zsys_error ("%s: cannot bind %s / %s: %s", self->id, options->pub_bind, options->sync_bind,
                    zmq_strerror (zmq_errno ()));
        repl_destroy (&self);
        return NULL;
    }
    //  Partitions already held resume as followers until told otherwise
    for (size_t i = 0; i < journal_partitions (journal); i++) {
        part_t *part = s_part (self, journal_partition_at (journal, i), true);
        if (part)
            part->role = ROLE_NONE;
    }
    return self;
}

void
repl_destroy (repl_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    repl_t *self = *self_p;
    for (int i = 0; i < self->part_count; i++) {
        part_t *part = self->parts [i];
        while (part->pending_count) {
            pending_t *p = &part->pending [part->pending_head];
            zmq_msg_close (&p->token);
            free (p->data);
            part->pending_head = (part->pending_head + 1) % part->pending_cap;
            part->pending_count--;
        }
        free (part->pending);
        s_buffer_clear (part);
        zlistx_destroy (&part->buffer);
        free (part->followers);
        free (part);
    }
    free (self->parts);
    for (int i = 0; i < self->link_count; i++) {
        zsock_destroy (&self->links [i]->sock);
        free (self->links [i]);
    }
    free (self->links);
    zsock_destroy (&self->pub);
    zsock_destroy (&self->router);
    zsock_destroy (&self->sub);
    free (self);
    *self_p = NULL;
}

int
repl_pollitem_count (repl_t *self)
{
    return 2 + self->link_count;
}

int
repl_pollitems (repl_t *self, zmq_pollitem_t *items, int max)
{
    int n = 0;
    if (n < max)
        items [n++] = (zmq_pollitem_t) { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 };
    if (n < max)
        items [n++] = (zmq_pollitem_t) { zsock_resolve (self->sub), 0, ZMQ_POLLIN, 0 };
    for (int i = 0; i < self->link_count && n < max; i++)
        items [n++] = (zmq_pollitem_t) { zsock_resolve (self->links [i]->sock), 0, ZMQ_POLLIN, 0 };
    return n;
}

void
repl_on_poll (repl_t *self, zmq_pollitem_t *items, int count)
{
    for (int i = 0; i < count; i++) {
        if (!(items [i].revents & ZMQ_POLLIN))
            continue;
        if (items [i].socket == zsock_resolve (self->router))
            s_on_router (self);
        else
        if (items [i].socket == zsock_resolve (self->sub))
            s_on_sub (self);
        else
            for (int k = 0; k < self->link_count; k++)
                if (items [i].socket == zsock_resolve (self->links [k]->sock))
                    s_on_link (self, self->links [k]);
    }
}

int64_t
repl_tick (repl_t *self)
{
    int64_t now = zclock_mono ();
    for (int i = 0; i < self->part_count; i++) {
        part_t *part = self->parts [i];
        if (part->role == ROLE_PRIMARY)
            s_evict_laggards (self, part, now);
        else
        if (part->role == ROLE_FOLLOWER) {
            if (part->fetching && now >= part->fetch_deadline) {
                part->fetching = false;
                part->snapshot = false;
                s_fetch (self, part);
            }
            if (now >= part->next_ack)
                s_send_ack (self, part);
        }
    }
    if (now >= self->next_beat) {
        s_publish_heads (self);
        self->next_beat = now + self->options.heartbeat_ms;
    }
    int64_t wait = self->next_beat - now;
    return wait < 0? 0: wait;
}

bool
repl_caught_up (repl_t *self)
{
    //  Until the broker has told us our roles we cannot know what we lack:
    //  a partition we hold without a role may be far behind its primary
    if (!self->assigned)
        return false;
    for (int i = 0; i < self->part_count; i++) {
        part_t *part = self->parts [i];
        if (part->role == ROLE_NONE || part->snapshot
        ||  journal_holding (self->journal, part->name) != JOURNAL_WHOLE)
            return false;
        if (part->role == ROLE_FOLLOWER && part->primary [0]
        &&  (!part->synced || journal_seq (self->journal, part->name) < part->head_seen))
            return false;
    }
    return true;
}

void
repl_status (repl_t *self, bs_msg_t *status)
{
    bs_msg_set_str (status, BS_FIELD_pub, self->options.pub_endpoint);
    bs_msg_set_str (status, BS_FIELD_sync, self->options.sync_endpoint);
    bs_msg_set_list (status, BS_FIELD_partitions);
    for (int i = 0; i < self->part_count; i++) {
        part_t *part = self->parts [i];
        bs_msg_t *entry = bs_msg_new ();
        uint64_t seq = journal_seq (self->journal, part->name);
        bs_msg_set_str (entry, BS_FIELD_partition, part->name);
        bs_msg_set_str (entry, BS_FIELD_role, part->role == ROLE_PRIMARY? "primary":
                                              part->role == ROLE_FOLLOWER? "follower": "none");
        bs_msg_set_int (entry, BS_FIELD_epoch, (int64_t) part->epoch);
        bs_msg_set_int (entry, BS_FIELD_seq, (int64_t) seq);
        uint64_t head = part->role == ROLE_PRIMARY? part->published: part->head_seen;
        bs_msg_set_int (entry, BS_FIELD_head, (int64_t) (head > seq? head: seq));
        journal_holding_t holding = journal_holding (self->journal, part->name);
        bs_msg_set_int (entry, BS_FIELD_ready, (part->role == ROLE_PRIMARY || part->synced) && !part->snapshot
                                               && holding == JOURNAL_WHOLE);
        //  What the broker must know before it elects us: a partial copy
        //  may never lead, a fresh one only the partition's first epoch
        if (part->snapshot || holding == JOURNAL_PARTIAL)
            bs_msg_set_str (entry, BS_FIELD_status, "snapshot");
        else
        if (holding == JOURNAL_FRESH)
            bs_msg_set_str (entry, BS_FIELD_status, "empty");
        if (part->role == ROLE_PRIMARY) {
            //  Each report has a version the broker's confirmation echoes:
            //  wall-clock milliseconds, so that it grows across our
            //  restarts too (repl_waits_for)
            uint64_t version = (uint64_t) zclock_time ();
            part->report_version = version > part->report_version? version: part->report_version + 1;
            char insync [1024] = "";
            for (int k = 0; k < part->follower_count; k++)
                if (part->followers [k].insync) {
                    size_t n = strlen (insync);
                    snprintf (insync + n, sizeof insync - n, "%s%s", n? ",": "", part->followers [k].id);
                    part->followers [k].reported_at = part->report_version;
                }
            bs_msg_set_str (entry, BS_FIELD_isr, insync);
            bs_msg_set_int (entry, BS_FIELD_version, (int64_t) part->report_version);
        }
        bs_msg_append (status, BS_FIELD_partitions, &entry);
    }
}
