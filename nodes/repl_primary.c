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

static void s_stream_cancel (repl_t *self, const char *peer, const char *partition, const char *why);

static follower_t *
s_follower (repl_t *self, part_t *part, const char *id)
{
    for (int i = 0; i < part->follower_count; i++)
        if (strcmp (part->followers [i].id, id) == 0)
            return &part->followers [i];
    follower_t *f = NULL;
    if (part->follower_count < FOLLOWERS_MAX) {
        bs_grow ((void **) &part->followers, &part->follower_cap, part->follower_count, sizeof (follower_t));
        f = &part->followers [part->follower_count++];
    }
    else {
        for (int i = 0; i < part->follower_count; i++)
            if (!part->followers [i].insync && (!f || part->followers [i].last_seen < f->last_seen))
                f = &part->followers [i];
        if (f)
            //  Forgotten: whatever we still send it is for a follower we
            //  no longer track
            s_stream_cancel (self, f->id, part->name, "the follower table dropped it");
    }
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
    follower_t *f = s_follower (self, part, id);
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

//  --------------------------------------------------------------------------
//  Snapshots, a part per turn.  Sent in one go, a catalog of 56,000
//  records kept a source's loop busy for 5 s under the sanitizers: it
//  missed its heartbeats, the broker declared it dead, and writes waited.
//  Each snapshot keeps its read transaction (the env is opened with
//  MDB_NOTLS, so it may stay open across turns beside others): the
//  follower gets the very records, seq and epoch one transaction saw.

static void
s_stream_end (repl_t *self, snap_stream_t *stream, const char *why)
{
    if (why)
        zsys_info ("%s: stopped sending a snapshot of %s to %s after %llu records: %s", self->id,
                   stream->partition, stream->peer, (unsigned long long) stream->records, why);
    mdb_txn_abort (stream->txn);
    memset (stream, 0, sizeof *stream);
}

//  Ends the snapshot under way to peer of partition (NULL: of any)
static void
s_stream_cancel (repl_t *self, const char *peer, const char *partition, const char *why)
{
    for (int i = 0; i < SNAP_STREAMS_MAX; i++) {
        snap_stream_t *stream = &self->streams [i];
        if (stream->active && strcmp (stream->peer, peer) == 0
        &&  (!partition || strcmp (stream->partition, partition) == 0))
            s_stream_end (self, stream, why);
    }
}

static bs_msg_t *
s_stream_msg (snap_stream_t *stream, const char *op)
{
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, op);
    bs_msg_set_str (msg, BS_FIELD_partition, stream->partition);
    //  Every part carries the fetch's rid back, so that the follower can
    //  tell it from replies to its older fetches
    if (stream->rid_size)
        bs_msg_set_bin (msg, BS_FIELD_rid, stream->rid, stream->rid_size);
    return msg;
}

//  Reads the next records of db into msg, at most what a part may still
//  take; 0 when it stopped at a limit, MDB_NOTFOUND at the db's end
static int
s_stream_read (repl_t *self, snap_stream_t *stream, bs_msg_t *msg, size_t *bytes_p)
{
    const char *name = self->options.dbs [stream->db];
    MDB_dbi dbi;
    unsigned flags = 0;
    MDB_cursor *cursor;
    if (!journal_dbi (self->journal, name, &dbi, &flags) || mdb_cursor_open (stream->txn, dbi, &cursor) != 0)
        return MDB_NOTFOUND;        //  as before: a database we cannot read is skipped
    bool dups = (flags & MDB_DUPSORT) != 0;
    MDB_val key, value;
    int rc;
    if (!stream->positioned)
        rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
    else {
        //  Back to the last record sent (the same transaction still holds
        //  it), then on past it
        key = (MDB_val) { stream->key_size, stream->key };
        value = (MDB_val) { stream->value_size, stream->value };
        rc = mdb_cursor_get (cursor, &key, &value, dups? MDB_GET_BOTH: MDB_SET_KEY);
        if (rc == 0)
            rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
    }
    while (rc == 0) {
        bs_msg_t *record = bs_msg_new ();
        bs_msg_set_str (record, BS_FIELD_db, name);
        bs_msg_set_bin (record, BS_FIELD_key, key.mv_data, key.mv_size);
        bs_msg_set_bin (record, BS_FIELD_data, value.mv_data, value.mv_size);
        bs_msg_append (msg, BS_FIELD_entries, &record);
        stream->records++;
        *bytes_p += key.mv_size + value.mv_size;
        if (bs_msg_count (msg, BS_FIELD_entries) >= SNAP_TURN_RECORDS || *bytes_p >= SNAP_TURN_BYTES)
            break;
        rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT);
    }
    if (rc == 0) {
        //  Stopped at a limit: remember where
        if (key.mv_size > sizeof stream->key || (dups && value.mv_size > sizeof stream->value))
            rc = EINVAL;
        else {
            memcpy (stream->key, key.mv_data, key.mv_size);
            stream->key_size = key.mv_size;
            if (dups)
                memcpy (stream->value, value.mv_data, value.mv_size);
            stream->value_size = dups? value.mv_size: 0;
            stream->positioned = true;
        }
    }
    mdb_cursor_close (cursor);
    return rc;
}

//  Sends the snapshot's next part, and its end once every record is out
static void
s_stream_step (repl_t *self, snap_stream_t *stream)
{
    bs_msg_t *msg = s_stream_msg (stream, "snap_data");
    bs_msg_set_list (msg, BS_FIELD_entries);
    //  Where its records start in the snapshot: the follower takes the
    //  parts in order, each once, or none
    bs_msg_set_int (msg, BS_FIELD_seq, (int64_t) stream->records);
    size_t bytes = 0;
    while (self->options.dbs [stream->db]) {
        int rc = s_stream_read (self, stream, msg, &bytes);
        if (rc == 0)
            break;                  //  this part is full
        if (rc != MDB_NOTFOUND) {
            //  The follower's fetch times out, and it asks again
            bs_msg_destroy (&msg);
            s_stream_end (self, stream, mdb_strerror (rc));
            return;
        }
        stream->db++;
        stream->positioned = false;
    }
    if (bs_msg_count (msg, BS_FIELD_entries)) {
        repl_answer_msg (self, stream->peer, msg);
        stream->parts++;
    }
    bs_msg_destroy (&msg);
    if (self->options.dbs [stream->db])
        return;
    msg = s_stream_msg (stream, "snap_end");
    bs_msg_set_int (msg, BS_FIELD_epoch, (int64_t) stream->epoch);
    bs_msg_set_int (msg, BS_FIELD_seq, (int64_t) stream->seq);
    //  How many records were sent: a follower that loaded fewer lost a
    //  part on the way and must not take the copy for whole
    bs_msg_set_int (msg, BS_FIELD_size, (int64_t) stream->records);
    repl_answer_msg (self, stream->peer, msg);
    bs_msg_destroy (&msg);
    zsys_info ("%s: sent a snapshot of %s to %s (%llu records in %d parts, seq %llu)", self->id,
               stream->partition, stream->peer, (unsigned long long) stream->records, stream->parts,
               (unsigned long long) stream->seq);
    s_stream_end (self, stream, NULL);
}

//  Begins a snapshot of partition for peer and sends its first part; false
//  when SNAP_STREAMS_MAX are under way already
static bool
s_stream_begin (repl_t *self, const char *peer, const char *partition, part_t *part, const bs_msg_t *request)
{
    snap_stream_t *stream = NULL;
    for (int i = 0; i < SNAP_STREAMS_MAX && !stream; i++)
        if (!self->streams [i].active)
            stream = &self->streams [i];
    if (!stream)
        return false;
    MDB_txn *txn = store_begin (journal_store (self->journal), false);
    if (!txn)
        return true;                //  logged; the fetcher asks again
    stream->active = true;
    stream->txn = txn;
    snprintf (stream->peer, sizeof stream->peer, "%s", peer);
    snprintf (stream->partition, sizeof stream->partition, "%s", partition);
    size_t rid_size = 0;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    if (rid && rid_size <= sizeof stream->rid) {
        memcpy (stream->rid, rid, rid_size);
        stream->rid_size = rid_size;
    }
    stream->role = part? part->role: ROLE_NONE;
    stream->part_epoch = part? part->epoch: 0;
    stream->seq = journal_seq (self->journal, partition);
    stream->epoch = repl_epoch_at (self, partition, stream->seq);
    bs_msg_t *msg = s_stream_msg (stream, "snapshot");
    bs_msg_set_int (msg, BS_FIELD_epoch, (int64_t) stream->epoch);
    bs_msg_set_int (msg, BS_FIELD_seq, (int64_t) stream->seq);
    repl_answer_msg (self, peer, msg);
    bs_msg_destroy (&msg);
    //  A small snapshot is sent whole at once
    s_stream_step (self, stream);
    return true;
}

bool
repl_primary_stream (repl_t *self)
{
    bool busy = false;
    for (int i = 0; i < SNAP_STREAMS_MAX; i++) {
        snap_stream_t *stream = &self->streams [i];
        if (!stream->active)
            continue;
        //  What we sent was our history when we took it; a new role or
        //  epoch, or a copy of our own being replaced, may make it not the
        //  partition's (the fetcher, moved on too, would ignore it anyway)
        part_t *part = repl_part (self, stream->partition, false);
        if ((part? part->role: ROLE_NONE) != stream->role || (part? part->epoch: 0) != stream->part_epoch)
            s_stream_end (self, stream, "the partition's role or epoch changed");
        else
        if (journal_holding (self->journal, stream->partition) != JOURNAL_WHOLE)
            s_stream_end (self, stream, "this node no longer holds it whole");
        else
            s_stream_step (self, stream);
        busy |= stream->active;
    }
    return busy;
}

void
repl_primary_streams_end (repl_t *self)
{
    for (int i = 0; i < SNAP_STREAMS_MAX; i++)
        if (self->streams [i].active)
            s_stream_end (self, &self->streams [i], NULL);
}

static void
s_serve_fetch (repl_t *self, const char *peer, const bs_msg_t *request, int64_t now)
{
    const char *partition = bs_msg_str (request, BS_FIELD_partition);
    uint64_t seq = (uint64_t) bs_msg_int (request, BS_FIELD_seq);
    uint64_t epoch = (uint64_t) bs_msg_int (request, BS_FIELD_epoch);
    uint64_t head = journal_seq (self->journal, partition);
    part_t *part = repl_part (self, partition, false);
    //  A follower heeds only its latest fetch: a snapshot we are still
    //  sending it is lost work (and a read transaction held) from here
    s_stream_cancel (self, peer, partition, "it fetched again");
    if (journal_holding (self->journal, partition) != JOURNAL_WHOLE) {
        //  We hold none or part of it: any answer would pass our gap for
        //  the partition's history (the fetcher times out and asks again)
        zsys_debug ("%s: a fetch of %s left unanswered: this node does not hold it whole", self->id, partition);
        return;
    }
    follower_t *fetcher = NULL;
    if (part && part->role == ROLE_PRIMARY) {
        //  Whoever fetches is not in sync until it acks our head
        follower_t *f = fetcher = s_follower (self, part, peer);
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
        if (!s_stream_begin (self, peer, partition, part, request))
            //  It waits its turn: its fetch times out and it asks again
            zsys_debug ("%s: a fetch of %s from %s left unanswered: %d snapshots are under way", self->id,
                        partition, peer, SNAP_STREAMS_MAX);
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
