/*  repl_primary - the replication core's serving half: held replies, acks
 *  and the in-sync set of the partitions we lead, answering fetches (log
 *  entries or a snapshot) for any partition we hold whole, and publishing
 *  the stream  */
#include "repl_internal.h"
#include "bs_alloc.h"
#include "bs_idlist.h"

//  --------------------------------------------------------------------------
//  Held replies and the in-sync set

int
repl_primary_insync_count (part_t *part)
{
    int n = 0;
    for (int i = 0; i < part->follower_count; i++)
        n += part->followers [i].insync;
    return n;
}

static follower_t *
s_follower (part_t *part, const char *id)
{
    for (int i = 0; i < part->follower_count; i++)
        if (strcmp (part->followers [i].id, id) == 0)
            return &part->followers [i];
    follower_t *f = NULL;
    if (part->follower_count < FOLLOWERS_MAX) {
        bs_grow ((void **) &part->followers, &part->follower_cap, part->follower_count, sizeof (follower_t));
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
    char copy [CONFIRMED_MAX + 1];
    snprintf (copy, sizeof copy, "%s", part->confirmed);
    char *rest = NULL;
    for (char *tok = strtok_r (copy, ",", &rest); tok; tok = strtok_r (NULL, ",", &rest)) {
        bool known = false;
        for (int i = 0; i < part->follower_count && !known; i++)
            known = strcmp (part->followers [i].id, tok) == 0;
        if (!known)
            low = 0;
    }
    return low;
}

static void
s_pop_pending (part_t *part)
{
    free (part->pending [part->pending_head].data);
    part->pending_head = (part->pending_head + 1) % part->pending_cap;
    part->pending_count--;
}

//  The highest seq a held reply may go out at: durable here and on every
//  follower we wait for.  A follower's ack may come before our own commit
//  is done (we publish before committing)
static uint64_t
s_releasable (part_t *part)
{
    uint64_t acked = s_acked_by_all (part);
    return acked < part->committed? acked: part->committed;
}

void
repl_primary_release (repl_t *self, part_t *part)
{
    uint64_t acked = s_releasable (part);
    while (part->pending_count) {
        pending_t *p = &part->pending [part->pending_head];
        if (p->seq > acked)
            break;
        self->io.release (self->io.arg, &p->token, p->data, p->size);
        s_pop_pending (part);
    }
}

//  Answers every held reply with an error (we stopped being primary)
void
repl_primary_fail_pending (repl_t *self, part_t *part)
{
    if (!part->pending_count)
        return;
    bs_msg_t *error = bs_msg_new_error (BS_ERR_unavailable,
        "the replica lost its primary role before the write was replicated; retry with the same request id");
    size_t size;
    uint8_t *data = bs_msg_encode (error, &size);
    while (part->pending_count) {
        self->io.release (self->io.arg, &part->pending [part->pending_head].token, data, size);
        s_pop_pending (part);
    }
    free (data);
    bs_msg_destroy (&error);
}

void
repl_defer (repl_t *self, const char *partition, uint64_t seq, zmq_msg_t *token, const void *data, size_t size,
            int64_t now)
{
    part_t *part = seq? repl_part (self, partition, false): NULL;
#ifdef REPL_BUG_EARLY_ACK
    //  Defined by the simulator's self-test alone: the old bug of answering
    //  before the followers hold the write
    part = NULL;
#endif
    if (!part || part->role != ROLE_PRIMARY || s_releasable (part) >= seq) {
        self->io.release (self->io.arg, token, data, size);
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
    p->since = now;
    zmq_msg_init (&p->token);
    zmq_msg_move (&p->token, token);
    p->data = malloc (size? size: 1);
    if (!p->data)
        abort ();
    memcpy (p->data, data, size);
    p->size = size;
}

static void
s_on_ack (repl_t *self, part_t *part, const char *id, uint64_t seq, int64_t now)
{
    follower_t *f = s_follower (part, id);
    if (!f || f->snapshotting)
        return;
    f->acked = seq > f->acked? seq: f->acked;
    f->last_seen = now;
    if (!f->insync && f->acked >= part->published) {
        f->insync = true;
        zsys_info ("%s: %s is in sync on %s at seq %llu", self->id, id, part->name,
                   (unsigned long long) f->acked);
    }
    repl_primary_release (self, part);
}

void
repl_primary_evict (repl_t *self, part_t *part, int64_t now)
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
    repl_primary_release (self, part);
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
s_send_snapshot (repl_t *self, const char *peer, const char *partition, const bs_msg_t *request)
{
    MDB_txn *txn = store_begin (journal_store (self->journal), false);
    if (!txn)
        return;
    uint64_t seq = journal_seq (self->journal, partition);
    uint64_t epoch = repl_epoch_at (self, partition, seq);
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, "snapshot");
    bs_msg_set_str (msg, BS_FIELD_partition, partition);
    s_echo_rid (msg, request);
    bs_msg_set_int (msg, BS_FIELD_epoch, (int64_t) epoch);
    bs_msg_set_int (msg, BS_FIELD_seq, (int64_t) seq);
    repl_answer_msg (self, peer, msg);
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
                //  Where its records start in the snapshot: the follower
                //  takes the parts in order, each once, or none
                bs_msg_set_int (msg, BS_FIELD_seq, (int64_t) records);
            }
            bs_msg_t *record = bs_msg_new ();
            bs_msg_set_str (record, BS_FIELD_db, self->options.dbs [d]);
            bs_msg_set_bin (record, BS_FIELD_key, key.mv_data, key.mv_size);
            bs_msg_set_bin (record, BS_FIELD_data, value.mv_data, value.mv_size);
            bs_msg_append (msg, BS_FIELD_entries, &record);
            records++;
            if (bs_msg_count (msg, BS_FIELD_entries) == SNAP_BATCH) {
                repl_answer_msg (self, peer, msg);
                bs_msg_destroy (&msg);
            }
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    if (msg) {
        repl_answer_msg (self, peer, msg);
        bs_msg_destroy (&msg);
    }
    mdb_txn_abort (txn);
    msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, "snap_end");
    bs_msg_set_str (msg, BS_FIELD_partition, partition);
    s_echo_rid (msg, request);
    bs_msg_set_int (msg, BS_FIELD_epoch, (int64_t) epoch);
    bs_msg_set_int (msg, BS_FIELD_seq, (int64_t) seq);
    //  How many records were sent: a follower that loaded fewer lost a
    //  part on the way and must not take the copy for whole
    bs_msg_set_int (msg, BS_FIELD_size, (int64_t) records);
    repl_answer_msg (self, peer, msg);
    bs_msg_destroy (&msg);
    zsys_info ("%s: sent a snapshot of %s (%zu records, seq %llu)", self->id, partition, records,
               (unsigned long long) seq);
}

static void
s_serve_fetch (repl_t *self, const char *peer, const bs_msg_t *request, int64_t now)
{
    const char *partition = bs_msg_str (request, BS_FIELD_partition);
    uint64_t seq = (uint64_t) bs_msg_int (request, BS_FIELD_seq);
    uint64_t epoch = (uint64_t) bs_msg_int (request, BS_FIELD_epoch);
    uint64_t head = journal_seq (self->journal, partition);
    part_t *part = repl_part (self, partition, false);
    if (journal_holding (self->journal, partition) != JOURNAL_WHOLE) {
        //  We hold none or part of it: any answer would pass our gap for
        //  the partition's history (the fetcher times out and asks again)
        zsys_debug ("%s: a fetch of %s left unanswered: this node does not hold it whole", self->id, partition);
        return;
    }
    follower_t *fetcher = NULL;
    if (part && part->role == ROLE_PRIMARY) {
        //  Whoever fetches is not in sync until it acks our head
        follower_t *f = fetcher = s_follower (part, peer);
        if (f) {
            if (f->insync && seq < head)
                zsys_info ("%s: %s fetches %s from %llu: out of sync", self->id, peer, partition,
                           (unsigned long long) seq);
            if (seq < head)
                f->insync = false;
            f->last_seen = now;
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
        //  A follower whose history differs from ours at seq diverged
        MDB_val value;
        if (journal_read (self->journal, txn, partition, seq, &value) == 0) {
            bs_entry_t *entry = bs_entry_parse (value.mv_data, value.mv_size);
            snapshot = !entry || bs_entry_epoch (entry) != epoch;
            bs_entry_destroy (&entry);
        }
        else
            snapshot = seq != head || repl_epoch_at (self, partition, seq) != epoch;
    }
    //  Only the primary's history is the partition's.  A replica that is
    //  not primary (a follower catching peers up while there is none) may
    //  not make a fetcher drop what it holds: the fetcher may be ahead of
    //  us (we never had its last entries, which may be acknowledged) or
    //  hold another history whose truth only an election decides.  We
    //  snapshot only a fetcher that holds nothing, or lags past our log;
    //  else we answer nothing, and it asks again (or is told a primary).
    bool primary = part && part->role == ROLE_PRIMARY;
    if (snapshot && !primary && seq > 0 && (seq >= head || head - seq <= self->options.log_keep)) {
        mdb_txn_abort (txn);
        zsys_debug ("%s: a fetch of %s from %llu left unanswered: it may hold what we do not, and only a "
                    "primary's history replaces another", self->id, partition, (unsigned long long) seq);
        return;
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
        s_send_snapshot (self, peer, partition, request);
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
    repl_answer_msg (self, peer, reply);
    bs_msg_destroy (&reply);
}

void
repl_on_request (repl_t *self, const char *peer, const void *data, size_t size, int64_t now)
{
    bs_err_t err;
    char reason [128];
    bs_msg_t *msg = bs_msg_decode (data, size, &err, reason, sizeof reason);
    if (msg && bs_msg_validate_request (msg, reason, sizeof reason) != BS_OK)
        bs_msg_destroy (&msg);
    if (!msg) {
        zsys_warning ("%s: dropped a malformed replication request", self->id);
        return;
    }
    if (bs_msg_op (msg) == BS_OP_fetch)
        s_serve_fetch (self, peer, msg, now);
    else
    if (bs_msg_op (msg) == BS_OP_ack) {
        part_t *part = repl_part (self, bs_msg_str (msg, BS_FIELD_partition), false);
        if (part && part->role == ROLE_PRIMARY && (uint64_t) bs_msg_int (msg, BS_FIELD_epoch) == part->epoch)
            s_on_ack (self, part, peer, (uint64_t) bs_msg_int (msg, BS_FIELD_seq), now);
    }
    bs_msg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Publishing

void
repl_primary_heads (repl_t *self)
{
    for (int i = 0; i < self->part_count; i++) {
        part_t *part = self->parts [i];
        if (part->role != ROLE_PRIMARY)
            continue;
        uint8_t body [BS_STREAM_HEAD_SIZE];
        bs_stream_head_encode (part->published, part->epoch, body);
        self->io.publish (self->io.arg, part->name, REPL_STREAM_HEAD, body, sizeof body);
    }
}

void
repl_publish (repl_t *self, int64_t now)
{
    (void) now;             //  publishing needs no time today; kept for the interface
    for (size_t i = 0; i < journal_sealed (self->journal); i++) {
        size_t size;
        uint64_t seq;
        const char *partition;
        const uint8_t *data = journal_sealed_at (self->journal, i, &size, &seq, &partition);
        part_t *part = repl_part (self, partition, false);
        if (!part || part->role != ROLE_PRIMARY)
            continue;
        part->published = seq;
        part->publish_count++;
        if (self->options.drop_every > 0 && part->publish_count % (uint64_t) self->options.drop_every == 0)
            continue;       //  test switch: lose this one on the way
        self->io.publish (self->io.arg, part->name, REPL_STREAM_ENTRY, data, size);
    }
}

void
repl_committed (repl_t *self, const char *partition, uint64_t seq, int64_t now)
{
    (void) now;
    part_t *part = repl_part (self, partition, false);
    if (!part || part->role != ROLE_PRIMARY || seq <= part->committed)
        return;
    part->committed = seq;
    repl_primary_release (self, part);
}
