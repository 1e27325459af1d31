/*  repl - the replication core: its tables, roles, assignments, status and
 *  timers (the primary's half is in repl_primary.c, the follower's in
 *  repl_follower.c)  */
#include "repl_internal.h"
#include "bs_alloc.h"
#include "bs_idlist.h"

//  --------------------------------------------------------------------------
//  Helpers shared by the core's files

part_t *
repl_part (repl_t *self, const char *name, bool create)
{
    for (int i = 0; i < self->part_count; i++)
        if (strcmp (self->parts [i]->name, name) == 0)
            return self->parts [i];
    //  A name the stream's topic could not carry is no partition of ours
    if (!create || !*name || strlen (name) > BS_ID_MAX)
        return NULL;
    bs_grow ((void **) &self->parts, &self->part_cap, self->part_count, sizeof (part_t *));
    part_t *part = calloc (1, sizeof (part_t));
    if (!part)
        abort ();
    self->parts [self->part_count++] = part;
    snprintf (part->name, sizeof part->name, "%s", name);
    part->epoch = journal_epoch (self->journal, name);
    part->buffer = zlistx_new ();
    return part;
}

//  The epoch of the entry at seq in our own log; for our last entry, when
//  the log no longer has it (trimmed, or we loaded a snapshot), the epoch
//  the journal kept of it.  Never the epoch we were assigned: a replica
//  told a newer epoch than its last entry's still holds the old history.
uint64_t
repl_epoch_at (repl_t *self, const char *partition, uint64_t seq)
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

bool
repl_mark_whole (repl_t *self, part_t *part)
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

void
repl_send_msg (repl_t *self, const char *endpoint, const char *server, bs_msg_t *msg)
{
    size_t size;
    uint8_t *data = bs_msg_encode (msg, &size);
    self->io.send_sync (self->io.arg, endpoint, server, data, size);
    free (data);
}

void
repl_answer_msg (repl_t *self, const char *peer, bs_msg_t *msg)
{
    size_t size;
    uint8_t *data = bs_msg_encode (msg, &size);
    self->io.answer (self->io.arg, peer, data, size);
    free (data);
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
    if (holding == JOURNAL_FRESH && !repl_mark_whole (self, part)) {
        zsys_error ("%s: cannot lead %s: its store refused the write", self->id, part->name);
        return;
    }
    if (part->role == ROLE_FOLLOWER && part->pub [0])
        self->io.unsubscribe (self->io.arg, part->name, part->pub);
    repl_follower_clear (part);
    part->role = ROLE_PRIMARY;
    part->pub [0] = 0;
    part->source [0] = 0;
    part->source_id [0] = 0;
    part->ack = false;
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
    part->led_epoch = epoch;
    part->published = part->committed = journal_seq (self->journal, part->name);
    //  Followers must prove themselves again under the new epoch
    part->follower_count = 0;
    part->confirmed [0] = 0;
    part->confirmed_version = 0;
    zsys_info ("%s: primary of %s at epoch %llu, seq %llu", self->id, part->name,
               (unsigned long long) epoch, (unsigned long long) part->published);
}

//  Whether we may take the primary role the broker assigns at epoch.  A
//  primary publishes its entries before its own commit, so at an epoch it
//  led in an earlier life (it crashed, or restarted) or gave up (a failed
//  commit), followers may hold seqs its store never got: writing those
//  seqs again at that epoch would give one (epoch, seq) two contents.  It
//  leads only at a new epoch; the status says so (repl_status) and the
//  broker elects anew.
static bool
s_may_lead (repl_t *self, part_t *part, uint64_t epoch)
{
    if (part->role == ROLE_PRIMARY && part->epoch == epoch)
        return true;
    const char *why = NULL;
    if (epoch <= part->resigned_epoch)
        why = "it gave up the role at that epoch";
    else
#ifndef REPL_BUG_RESUME_EPOCH
    if (epoch <= journal_epoch (self->journal, part->name) && epoch != part->led_epoch)
#else
    //  Defined by the simulator's self-test alone: a restarted primary
    //  resumes its epoch
    if (false)
#endif
        why = "its store already holds that epoch, and a primary restarted within an epoch may have "
              "published entries it never committed";
    if (!why)
        return true;
    if (part->refused_epoch != epoch)
        zsys_warning ("%s: refused to lead %s at epoch %llu: %s; it leads only at a new epoch", self->id,
                      part->name, (unsigned long long) epoch, why);
    part->refused_epoch = epoch;
    if (epoch > part->resigned_epoch)
        part->resigned_epoch = epoch;
    return false;
}

static void
s_become_follower (repl_t *self, part_t *part, uint64_t epoch, const char *primary, const char *pub,
                   const char *source_id, const char *source_sync, int64_t now)
{
    if (part->role == ROLE_PRIMARY) {
        zsys_warning ("%s: no longer primary of %s (now %s at epoch %llu)", self->id, part->name,
                      *primary? primary: "nobody", (unsigned long long) epoch);
        repl_primary_fail_pending (self, part);
        part->follower_count = 0;
    }
    bool changed = part->role != ROLE_FOLLOWER || strcmp (part->primary, primary) != 0 || epoch != part->epoch;
    bool newer = epoch > part->epoch;
    part->role = ROLE_FOLLOWER;
    if (newer)
        part->epoch = epoch;
    snprintf (part->primary, sizeof part->primary, "%s", primary);
    if (strcmp (part->pub, pub) != 0) {
        //  The shell stops hearing the old primary unless another
        //  partition still uses it
        if (part->pub [0])
            self->io.unsubscribe (self->io.arg, part->name, part->pub);
        //  Live entries buffered from the old stream belong to its
        //  primary's history: applied after what another source gives us
        //  they would join two histories (a deposed primary's seq, then
        //  the next primary's)
        repl_follower_clear (part);
        snprintf (part->pub, sizeof part->pub, "%s", pub);
        if (*pub)
            self->io.subscribe (self->io.arg, part->name, pub, primary);
    }
    //  Never fetch from ourselves (we may be the most advanced replica);
    //  known by id, since two hosts may advertise alike endpoints
    bool ourselves = *source_id? strcmp (source_id, self->id) == 0
                               : strcmp (source_sync, self->options.sync_endpoint) == 0;
    const char *source = ourselves? "": source_sync;
    //  A copy that is not whole fills itself from a primary only: a peer
    //  we catch up from while there is none may be behind, and this copy
    //  would then pass for one that holds every acknowledged write, and be
    //  elected.  Not an order partition's (mergeable): only its owner ever
    //  leads it, from its own store, and one whose owner lost its disk
    //  never has a primary again; every copy of it is a prefix of the one
    //  history its owner wrote, so a fresh one fills from the broker's
    //  source as a whole one does (later fetches bring what that source
    //  lacked; a tail its owner dropped is replaced when it comes back)
    if (!*primary && !self->options.mergeable && journal_holding (self->journal, part->name) != JOURNAL_WHOLE)
        source = "";
    if (strcmp (source, part->source) != 0 || newer) {
        //  A fetch made of another source or at another epoch is answered
        //  no more (its replies are ignored): ask again, from scratch
        snprintf (part->source, sizeof part->source, "%s", source);
        snprintf (part->source_id, sizeof part->source_id, "%s", *source? source_id: "");
        part->fetching = false;
        part->snapshot = false;
        //  The old source's heads say nothing of the new one's history
        part->head_seen = 0;
        changed = true;
    }
    part->ack = *primary && part->source [0];
    if (changed) {
        part->synced = false;
        if (*primary || part->source [0])
            zsys_info ("%s: following %s from %s at epoch %llu", self->id, part->name,
                       *primary? primary: "(no primary)", (unsigned long long) part->epoch);
        repl_follower_fetch (self, part, now);
    }
}

static void
s_confirm (repl_t *self, part_t *part, const bs_msg_t *entry)
{
    snprintf (part->confirmed, sizeof part->confirmed, "%s", bs_msg_str (entry, BS_FIELD_isr));
    part->confirmed_version = (uint64_t) bs_msg_int (entry, BS_FIELD_version);
    repl_primary_release (self, part);
}

void
repl_assign (repl_t *self, const bs_msg_t *assign, int64_t now)
{
    self->assigned = true;
    for (size_t i = 0; i < bs_msg_count (assign, BS_FIELD_partitions); i++) {
        bs_msg_t *entry = bs_msg_at (assign, BS_FIELD_partitions, i);
        part_t *part = repl_part (self, bs_msg_str (entry, BS_FIELD_partition), true);
        if (!part)
            continue;
        uint64_t epoch = (uint64_t) bs_msg_int (entry, BS_FIELD_epoch);
        const char *primary = bs_msg_str (entry, BS_FIELD_primary);
        if (part->home) {
            //  Nobody else writes our own partition; only learn who is in sync
            if (strcmp (primary, self->id) == 0)
                s_confirm (self, part, entry);
            continue;
        }
        if (strcmp (primary, self->id) == 0) {
            if (s_may_lead (self, part, epoch))
                s_become_primary (self, part, epoch);
            if (part->role == ROLE_PRIMARY && part->epoch == epoch)
                s_confirm (self, part, entry);
        }
        else
        if (epoch >= part->epoch || part->role != ROLE_PRIMARY)
            s_become_follower (self, part, epoch, primary, bs_msg_str (entry, BS_FIELD_pub),
                               bs_msg_str (entry, BS_FIELD_source), bs_msg_str (entry, BS_FIELD_sync), now);
    }
}

int
repl_claim (repl_t *self, const char *partition, uint64_t *epoch_p)
{
    part_t *part = repl_part (self, partition, true);
    if (!part) {
        zsys_error ("%s: cannot take the primary role of %s: no such partition name", self->id, partition);
        return -1;
    }
    //  Each start leads at an epoch of its own, above every one this store
    //  ever claimed or wrote at.  A replica may hold entries we published
    //  and never committed (we died first): at our old epoch, a new entry
    //  at their seq would look like theirs.  At a new one their fetch
    //  shows they differ, and they are brought back to our history.
    uint64_t held = journal_epoch (self->journal, partition);
    uint64_t last = journal_last_epoch (self->journal, partition);
    uint64_t epoch = (held > last? held: last) + 1;
    if (epoch >= (uint64_t) BS_EPOCH_MAX) {
        zsys_error ("%s: cannot take the primary role of %s: its epochs have reached the ceiling (%llu)",
                    self->id, partition, (unsigned long long) epoch - 1);
        return -1;
    }
    //  Durable before anything is published at it, so that a crash right
    //  after the claim makes the next start claim higher still.  Our own
    //  partition's store holds every entry we ever wrote of it (a lost
    //  disk names a new partition): it is whole from its first claim.
    MDB_txn *txn = journal_begin (self->journal);
    int rc = txn? 0: EIO;
    if (rc == 0 && journal_holding (self->journal, partition) != JOURNAL_WHOLE)
        rc = journal_set_whole (self->journal, txn, partition);
    if (rc == 0)
        rc = journal_set_epoch (self->journal, txn, partition, epoch);
    if (rc == 0)
        rc = journal_commit (self->journal, txn);
    else
    if (txn)
        journal_abort (self->journal, txn);
    if (rc != 0) {
        zsys_error ("%s: cannot take the primary role of %s: its store refused the new epoch (%s)", self->id,
                    partition, mdb_strerror (rc));
        return -1;
    }
    s_become_primary (self, part, epoch);
    if (part->role != ROLE_PRIMARY || part->epoch != epoch) {
        zsys_error ("%s: cannot take the primary role of %s", self->id, partition);
        return -1;
    }
    part->home = true;
    if (epoch_p)
        *epoch_p = epoch;
    return 0;
}

void
repl_resign (repl_t *self, int64_t now)
{
    (void) now;
    for (int i = 0; i < self->part_count; i++) {
        part_t *part = self->parts [i];
        //  Our own partition too: its owner claims a new epoch
        //  (repl_claim) before it writes again
        if (part->role != ROLE_PRIMARY)
            continue;
        zsys_error ("%s: gave up the primary role of %s at epoch %llu: a commit failed after its entries were "
                    "published; it leads again only at a new epoch", self->id, part->name,
                    (unsigned long long) part->epoch);
        repl_primary_fail_pending (self, part);
        part->role = ROLE_NONE;
        part->resigned_epoch = part->refused_epoch = part->epoch;
        part->led_epoch = 0;
        part->follower_count = 0;
        part->confirmed [0] = 0;
        part->confirmed_version = 0;
    }
}

bool
repl_is_primary (repl_t *self, const char *partition)
{
    part_t *part = repl_part (self, partition, false);
    return part && part->role == ROLE_PRIMARY;
}

bs_err_t
repl_can_write (repl_t *self, const char *partition, char *reason, size_t size)
{
    part_t *part = repl_part (self, partition, false);
    if (!part || part->role != ROLE_PRIMARY) {
        snprintf (reason, size, "this replica is not the primary of %s", partition);
        return BS_ERR_unavailable;
    }
    int insync = 1 + repl_primary_insync_count (part);
    if (insync < self->options.min_insync) {
        snprintf (reason, size, "only %d replica(s) of %s are in sync; %d needed", insync, partition,
                  self->options.min_insync);
        return BS_ERR_unavailable;
    }
    return BS_OK;
}

//  --------------------------------------------------------------------------

repl_t *
repl_new (journal_t *journal, const repl_options_t *options, const repl_io_t *io)
{
    repl_t *self = calloc (1, sizeof (repl_t));
    if (!self)
        abort ();
    self->journal = journal;
    self->options = *options;
    self->io = *io;
    //  Keep our own copies of the endpoints others are told
    snprintf (self->pub_endpoint, sizeof self->pub_endpoint, "%s", options->pub_endpoint);
    snprintf (self->sync_endpoint, sizeof self->sync_endpoint, "%s", options->sync_endpoint);
    self->options.pub_endpoint = self->pub_endpoint;
    self->options.sync_endpoint = self->sync_endpoint;
    snprintf (self->id, sizeof self->id, "%s", options->id);
    self->options.id = self->id;
    //  Partitions already held resume as followers until told otherwise
    for (size_t i = 0; i < journal_partitions (journal); i++) {
        part_t *part = repl_part (self, journal_partition_at (journal, i), true);
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
    repl_primary_streams_end (self);
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
        repl_follower_clear (part);
        zlistx_destroy (&part->buffer);
        free (part->followers);
        free (part);
    }
    free (self->parts);
    free (self);
    *self_p = NULL;
}

int64_t
repl_tick (repl_t *self, int64_t now)
{
    for (int i = 0; i < self->part_count; i++) {
        part_t *part = self->parts [i];
        if (part->role == ROLE_PRIMARY)
            repl_primary_evict (self, part, now);
        else
        if (part->role == ROLE_FOLLOWER) {
            if (part->fetching && now >= part->fetch_deadline) {
                part->fetching = false;
                part->snapshot = false;
                repl_follower_fetch (self, part, now);
            }
            if (now >= part->next_ack)
                repl_follower_ack (self, part, now);
        }
    }
    if (now >= self->next_beat) {
        repl_primary_heads (self);
        self->next_beat = now + self->options.heartbeat_ms;
    }
    //  A snapshot under way goes on at the next turn
    if (repl_primary_stream (self))
        return 0;
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
repl_status (repl_t *self, bs_msg_t *status, uint64_t version)
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
        else
        if (part->role != ROLE_PRIMARY && part->resigned_epoch && part->resigned_epoch >= part->epoch)
            //  We will not lead at this epoch again (s_may_lead)
            bs_msg_set_str (entry, BS_FIELD_status, "resigned");
        if (part->role == ROLE_PRIMARY) {
            //  Each report has a version the broker's confirmation echoes;
            //  it grows across our restarts too (repl_waits_for)
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
