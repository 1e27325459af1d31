/*  controller - partition map, elections and the confirmed in-sync sets  */
#include "controller.h"
#include "bs_clock.h"
#include "bs_sizes.h"
#include "bs_idlist.h"
#include "election.h"

#include <czmq.h>
#include <string.h>

#define MAX_PARTS 64
#define ELECTED_PARTITION "catalog"

typedef struct {
    char name [BS_ID_MAX + 1];
    char service [BS_SERVICE_MAX + 1];
    bool elected;               //  the controller chooses its primary
    uint64_t epoch;
    char primary [BS_ID_MAX + 1];  //  "" when none
    char insync [512];          //  confirmed in-sync followers
    bool insync_known;          //  false until a primary reported (fresh broker)
    char source [BS_ID_MAX + 1];
    char pub [BS_ENDPOINT_MAX + 1], sync [BS_ENDPOINT_MAX + 1];
    char last_primary [BS_ID_MAX + 1];  //  it holds every write it acknowledged
    uint64_t max_epoch;         //  the highest epoch any node reported or we gave
    uint64_t isr_version;       //  insync was built from the primary's
                                //  report of this version (0: none)
    char reported [512];        //  the in-sync list of that report
} cpart_t;

//  What the control plane (etcd) holds of the elected partition, when the
//  controller has one: the meta is the truth, written only by
//  compare-and-swap on the revision it was read at
typedef enum { STORE_UNREAD, STORE_READING, STORE_KNOWN } store_state_t;

struct _controller_t {
    cpart_t parts [MAX_PARTS];
    int count;
    int64_t settle_until;
    uint64_t epoch_floor;       //  the catalog's epochs start above this
    ctlplane_t *store;          //  borrowed; NULL: the map lives here alone
    uint32_t generation;        //  tags this controller's requests
    store_state_t state;
    election_meta_t meta;       //  the catalog's, as last read or written
    int64_t revision;           //  its mod revision (0: no such key)
    bool pending;               //  a write is under way
    election_meta_t proposed;   //  what it writes
    uint64_t basis;             //  the committed set reflects the primary's
                                //  report of this version (0: none yet)
    uint64_t proposed_basis;    //  ...and the one being written, once it is
    int64_t retry_at;           //  after a failure, not before this
    bool dirty;                 //  a store answer changed the map
    bool waiting_logged;
    uint64_t unclean_epoch;     //  an operator asked for an unclean
                                //  election at this epoch (0: none)
    int64_t reread_at;          //  while waiting: when to look for one
};

//  Tags: the generation in the high bits, what was asked in the low ones
#define TAG_READ 1
#define TAG_WRITE 2
#define STORE_KEY "partitions/" ELECTED_PARTITION
#define UNCLEAN_KEY STORE_KEY "/unclean"
#define STORE_RETRY_MS 200
//  While the partition waits for its in-sync set, the map is read again
//  this often: an operator's unclean election request is seen that soon
#define WAITING_REREAD_MS 1000
//  Candidates considered in one election (every live replica, in practice)
#define WORKERS_LIMIT_FOR_ELECTION 64

controller_t *
controller_new (int settle_ms)
{
    controller_t *self = calloc (1, sizeof (controller_t));
    if (!self)
        abort ();
    self->settle_until = bs_clock_mono () + settle_ms;
    return self;
}

void
controller_use_store (controller_t *self, ctlplane_t *store)
{
    static uint32_t s_generations;
    self->store = store;
    self->generation = ++s_generations & 0xFFFFFF;
    self->state = STORE_UNREAD;
}

void
controller_destroy (controller_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free (*self_p);
    *self_p = NULL;
}

static cpart_t *s_find (controller_t *self, const char *name);

void
controller_raise_epoch (controller_t *self, uint64_t epoch)
{
    if (epoch > self->epoch_floor)
        self->epoch_floor = epoch;
    cpart_t *part = s_find (self, ELECTED_PARTITION);
    if (part && part->max_epoch < epoch)
        part->max_epoch = epoch;
}

uint64_t
controller_max_epoch (controller_t *self)
{
    if (self->store)
        return self->meta.epoch;
    cpart_t *part = s_find (self, ELECTED_PARTITION);
    return part && part->max_epoch > self->epoch_floor? part->max_epoch: self->epoch_floor;
}

bool controller_settling (controller_t *self) { return bs_clock_mono () < self->settle_until; }

static cpart_t *
s_find (controller_t *self, const char *name)
{
    for (int i = 0; i < self->count; i++)
        if (strcmp (self->parts [i].name, name) == 0)
            return &self->parts [i];
    return NULL;
}

static worker_t *
s_alive (workers_t *workers, const char *id)
{
    if (!*id)
        return NULL;
    worker_t *w = workers_by_id (workers, id);
    return w && w->alive && w->has_status? w: NULL;
}

//  The reported in-sync list without nodes the broker knows are dead
static void
s_filter_alive (workers_t *workers, const char *list, char *out, size_t size)
{
    out [0] = 0;
    char copy [512];
    snprintf (copy, sizeof copy, "%s", list);
    for (char *tok = strtok (copy, ","); tok; tok = strtok (NULL, ",")) {
        if (!s_alive (workers, tok))
            continue;
        size_t n = strlen (out);
        snprintf (out + n, size - n, "%s%s", n? ",": "", tok);
    }
}

static bool
s_set (char *field, size_t size, const char *value)
{
    if (strcmp (field, value) == 0)
        return false;
    snprintf (field, size, "%s", value);
    return true;
}

//  Chooses and installs a catalog primary when it has none
static bool
s_elect (cpart_t *part, workers_t *workers)
{
    worker_t *best = NULL;
    worker_partition_t *best_rep = NULL;
    //  A fresh broker first adopts a live node that still claims the role
    if (!part->insync_known) {
        for (size_t i = 0; i < workers_size (workers); i++) {
            worker_t *w = workers_at (workers, i);
            worker_partition_t *rep = w->alive && w->has_status? worker_partition (w, part->name): NULL;
            if (rep && strcmp (rep->role, "primary") == 0 && rep->epoch >= part->max_epoch
            &&  (!best_rep || rep->epoch > best_rep->epoch)) {
                best = w;
                best_rep = rep;
            }
        }
        if (best) {
            snprintf (part->primary, sizeof part->primary, "%s", best->id);
            part->epoch = best_rep->epoch;
            s_filter_alive (workers, best_rep->insync, part->insync, sizeof part->insync);
            part->insync_known = true;
            zsys_info ("broker: %s remains primary of %s at epoch %llu", best->id, part->name,
                       (unsigned long long) part->epoch);
            return true;
        }
    }
    for (size_t i = 0; i < workers_size (workers); i++) {
        worker_t *w = workers_at (workers, i);
        if (!w->alive || !w->has_status || strcmp (w->service, part->service) != 0)
            continue;
        if (part->insync_known && !bs_idlist_has (part->insync, w->id) && strcmp (w->id, part->last_primary) != 0)
            continue;       //  it may lack acknowledged writes
        worker_partition_t *rep = worker_partition (w, part->name);
        if (rep && rep->snapshot)
            continue;       //  half a snapshot: its own state is gone
        uint64_t seq = rep? rep->seq: 0, epoch = rep? rep->epoch: 0;
        if (!best || seq > (best_rep? best_rep->seq: 0)
        ||  (seq == (best_rep? best_rep->seq: 0) && epoch > (best_rep? best_rep->epoch: 0))) {
            best = w;
            best_rep = rep;
        }
    }
    if (!best)
        return false;
    //  The epoch after this one would be refused by every node (and one at
    //  the ceiling by the broker itself): no primary is better than one
    //  nobody can follow
    if (part->max_epoch >= BS_EPOCH_MAX - 1) {
        zsys_error ("broker: cannot elect a primary of %s: its epochs have reached the ceiling (%llu)",
                    part->name, (unsigned long long) part->max_epoch);
        return false;
    }
    part->epoch = ++part->max_epoch;
    snprintf (part->primary, sizeof part->primary, "%s", best->id);
    part->insync [0] = 0;
    part->insync_known = true;
    zsys_info ("broker: elected %s primary of %s at epoch %llu (seq %llu)", best->id, part->name,
               (unsigned long long) part->epoch, (unsigned long long) (best_rep? best_rep->seq: 0));
    return true;
}

// ---------------------------------------------------------------------------
//  The elected partition when the control plane holds its meta

static void
s_store_read (controller_t *self)
{
    self->state = STORE_READING;
    ctlplane_get_prefix (self->store, STORE_KEY, self->generation << 8 | TAG_READ);
}

static void
s_store_write (controller_t *self, const election_meta_t *next, uint64_t basis, const char *why)
{
    char *value = election_meta_encode (next);
    zsys_info ("broker: writing %s%s at revision %lld: %s (%s)", ctlplane_prefix (self->store), STORE_KEY,
               (long long) self->revision, value, why);
    ctlplane_put_if (self->store, STORE_KEY, value, self->revision, self->generation << 8 | TAG_WRITE);
    free (value);
    self->proposed = *next;
    self->proposed_basis = basis;
    self->pending = true;
}

//  The in-sync set as the nodes are told it: the followers of the
//  committed set
static void
s_committed_followers (controller_t *self, char *out, size_t size)
{
    out [0] = 0;
    for (size_t index = 0; index < self->meta.insync_count; index++) {
        if (strcmp (self->meta.insync [index], self->meta.primary) == 0)
            continue;
        size_t used = strlen (out);
        snprintf (out + used, size - used, "%s%s", used? ",": "", self->meta.insync [index]);
    }
}

//  Brings the elected partition's primary, epoch and in-sync set from the
//  stored meta, and proposes the changes the live cluster calls for: an
//  election when the stored primary is gone, the in-sync set the primary
//  reports.  Nothing a node says of itself is taken as the map.
static bool
s_update_stored (controller_t *self, cpart_t *part, workers_t *workers)
{
    bool changed = false;
    int64_t now = bs_clock_mono ();
    if (self->state == STORE_UNREAD && now >= self->retry_at)
        s_store_read (self);
    if (self->state != STORE_KNOWN) {
        //  Until the meta is read, no primary: one may have been elected
        //  since any node last heard
        changed |= s_set (part->primary, sizeof part->primary, "");
        return changed;
    }
    //  Live replicas that could lead: not loading a snapshot (their state
    //  is partial); once the partition has had a primary, none that never
    //  held it (a member of the in-sync set that lost its disk says so)
    //  and none that has not said what it holds
    election_candidate_t live [WORKERS_LIMIT_FOR_ELECTION];
    size_t count = 0;
    uint64_t highest_reported = 0;
    for (size_t i = 0; i < workers_size (workers) && count < WORKERS_LIMIT_FOR_ELECTION; i++) {
        worker_t *w = workers_at (workers, i);
        if (!w->alive || !w->has_status || strcmp (w->service, part->service) != 0)
            continue;
        worker_partition_t *rep = worker_partition (w, part->name);
        if (rep && rep->epoch > highest_reported)
            highest_reported = rep->epoch;
        if (rep && rep->snapshot)
            continue;
        //  The first primary of an epoch-1 partition is fresh until it
        //  takes the role: its store, which the meta names, may still lead
        bool first_primary = self->meta.epoch == 1 && self->meta.primary_store
                          && w->incarnation == self->meta.primary_store && strcmp (w->id, self->meta.primary) == 0;
        if (self->meta.epoch > 0 && (!rep || rep->empty) && !first_primary)
            continue;
        live [count++] = (election_candidate_t) { w->id, rep? rep->epoch: 0, rep? rep->seq: 0, w->incarnation,
                                                  rep && rep->resigned && rep->epoch >= self->meta.epoch };
    }
    election_meta_t base = self->meta, next;
    //  A store that never held this partition (a new etcd beside old data)
    //  starts its epochs above every one the replicas hold
    if (base.epoch == 0 && highest_reported > 0)
        base.epoch = highest_reported;
    election_verdict_t verdict = ELECTION_WAIT;
    //  Only an operator's request for this very epoch makes it unclean
    bool unclean = self->unclean_epoch && self->unclean_epoch == self->meta.epoch;
    if (!self->pending && now >= self->retry_at && now >= self->settle_until)
        verdict = election_decide (&base, live, count, unclean, &next);
    else
    if (self->meta.epoch > 0)
        for (size_t i = 0; i < count; i++)
            if (strcmp (live [i].id, self->meta.primary) == 0 && !live [i].resigned
            &&  (!self->meta.primary_store || live [i].store == self->meta.primary_store))
                verdict = ELECTION_KEEP;
    if (verdict == ELECTION_ELECT) {
        if (next.epoch >= BS_EPOCH_MAX - 1)
            zsys_error ("broker: cannot elect a primary of %s: its epochs have reached the ceiling (%llu)",
                        part->name, (unsigned long long) base.epoch);
        else
        if (unclean && !election_insync_has (&self->meta, next.primary)) {
            const election_candidate_t *chosen = NULL;
            for (size_t i = 0; i < count; i++)
                if (strcmp (live [i].id, next.primary) == 0)
                    chosen = &live [i];
            char members [512];
            s_committed_followers (self, members, sizeof members);
            zsys_warning ("broker: unclean election of %s, as an operator asked: %s (its last entry: epoch %llu, "
                          "seq %llu) leads at epoch %llu alone; every write the in-sync set (%s%s%s) "
                          "acknowledged beyond that entry is lost", part->name, next.primary,
                          (unsigned long long) (chosen? chosen->last_epoch: 0),
                          (unsigned long long) (chosen? chosen->last_seq: 0), (unsigned long long) next.epoch,
                          self->meta.primary, *members? ",": "", members);
            s_store_write (self, &next, 0, "an operator asked for an unclean election");
        }
        else
            s_store_write (self, &next, 0, "the primary is gone");
        changed |= s_set (part->primary, sizeof part->primary, "");
        return changed;
    }
    if (verdict == ELECTION_WAIT) {
        if (!self->pending && now >= self->settle_until && self->meta.epoch > 0 && !self->waiting_logged) {
            char members [512];
            s_committed_followers (self, members, sizeof members);
            zsys_warning ("broker: no live member of the in-sync set of %s (%s%s%s) holds it whole: waiting "
                          "for one; electing another could lose acknowledged writes",
                          part->name, self->meta.primary, *members? ",": "", members);
            self->waiting_logged = true;
        }
        //  Look again now and then: an operator may ask for an unclean
        //  election, or another broker may have elected meanwhile
        if (!self->pending && self->meta.epoch > 0 && now >= self->settle_until && now >= self->reread_at) {
            self->reread_at = now + WAITING_REREAD_MS;
            s_store_read (self);
        }
        changed |= s_set (part->primary, sizeof part->primary, "");
        return changed;
    }
    //  KEEP: the stored primary is alive
    self->waiting_logged = false;
    changed |= s_set (part->primary, sizeof part->primary, self->meta.primary);
    if (part->epoch != self->meta.epoch) {
        part->epoch = self->meta.epoch;
        changed = true;
    }
    if (self->meta.epoch > part->max_epoch)
        part->max_epoch = self->meta.epoch;
    //  The in-sync set: what the primary reports at this epoch, less the
    //  dead; written before it counts
    worker_t *primary = s_alive (workers, part->primary);
    worker_partition_t *rep = primary? worker_partition (primary, part->name): NULL;
    if (!self->pending && now >= self->retry_at) {
        election_meta_t want = self->meta;
        want.insync_count = 0;
        snprintf (want.insync [want.insync_count++], ELECTION_ID_MAX + 1, "%s", self->meta.primary);
        char reported [512];
        snprintf (reported, sizeof reported, "%s",
                  rep && strcmp (rep->role, "primary") == 0 && rep->epoch == self->meta.epoch? rep->insync: "");
        bool reports = rep && strcmp (rep->role, "primary") == 0 && rep->epoch == self->meta.epoch;
        //  The report version the primary was last told the set stands
        //  for: the stored one, or a newer report that named no one new
        //  (self->basis, told in the assignment).  Told so, the primary
        //  stops waiting for a follower it reported in sync up to then
        uint64_t told = self->basis > self->meta.basis? self->basis: self->meta.basis;
        if (reports) {
            //  A member stays while reported; a replica outside the stored
            //  set comes in only on a report newer than the one the set was
            //  built from: an older report may name a replica the set has
            //  left out since, and the primary, told so, stopped waiting
            //  for it (it may lack writes acknowledged meanwhile)
            for (char *tok = strtok (reported, ","); tok; tok = strtok (NULL, ","))
                if (s_alive (workers, tok) && election_id_valid (tok) && !election_insync_has (&want, tok)
                &&  want.insync_count < ELECTION_REPLICAS_MAX
                &&  (election_insync_has (&self->meta, tok) || rep->version > told))
                    snprintf (want.insync [want.insync_count++], ELECTION_ID_MAX + 1, "%s", tok);
            want.basis = rep->version > told? rep->version: told;
        }
        else
            //  Until the primary reports at this epoch, nobody leaves, not
            //  even the dead: the old primary among them may be needed
            //  again if the new one cannot lead (election.c)
            want = self->meta;
        bool same = want.insync_count == self->meta.insync_count;
        for (size_t index = 0; same && index < want.insync_count; index++)
            same = election_insync_has (&self->meta, want.insync [index]);
        if (!same)
            s_store_write (self, &want, reports? rep->version: 0, "the in-sync set changed");
        else
        if (reports)
            self->basis = rep->version;     //  the stored set is what it reports
        //  A follower the primary stopped reporting: tell it at once that
        //  the set no longer counts on it (it waits until told)
        if (reports && strcmp (rep->insync, part->reported)) {
            snprintf (part->reported, sizeof part->reported, "%s", rep->insync);
            changed = true;
        }
    }
    char insync [512];
    s_committed_followers (self, insync, sizeof insync);
    changed |= s_set (part->insync, sizeof part->insync, insync);
    part->isr_version = self->basis;
    part->insync_known = true;
    return changed;
}

bool
controller_on_store (controller_t *self, ctlplane_result_t *result)
{
    if (!self->store || result->tag >> 8 != self->generation)
        return false;       //  meant for a controller this one replaced
    bool changed = false;
    if ((result->tag & 0xFF) == TAG_READ) {
        if (result->rc != BS_ETCD_OK) {
            zsys_warning ("broker: cannot read the partition map from etcd: %s", result->error);
            self->state = STORE_UNREAD;
            self->retry_at = bs_clock_mono () + STORE_RETRY_MS;
            return false;
        }
        election_meta_t meta;
        memset (&meta, 0, sizeof meta);
        int64_t revision = 0;
        uint64_t unclean_epoch = 0;
        for (size_t index = 0; index < result->count; index++) {
            if (strcmp (result->keys [index], UNCLEAN_KEY) == 0) {
                char reason [200];
                if (!election_unclean_decode (result->values [index], &unclean_epoch, reason, sizeof reason))
                    zsys_warning ("broker: ignored %s%s: %s", ctlplane_prefix (self->store), UNCLEAN_KEY, reason);
                continue;
            }
            if (strcmp (result->keys [index], STORE_KEY) != 0)
                continue;
            char reason [200];
            if (!election_meta_decode (result->values [index], &meta, reason, sizeof reason)) {
                //  Never half-believed: the partition waits for an operator
                zsys_error ("broker: %s%s in etcd is not a valid partition map (%s): "
                            "no primary until it is mended", ctlplane_prefix (self->store), STORE_KEY, reason);
                self->state = STORE_UNREAD;
                self->retry_at = bs_clock_mono () + 5000;
                return false;
            }
            revision = result->mod_revisions [index];
        }
        //  Only news counts as a change: while a partition waits, the map
        //  is read again every second, and an unchanged read must not send
        //  every node the same assignment again
        bool news = self->state != STORE_KNOWN || revision != self->revision || unclean_epoch != self->unclean_epoch;
        if (self->state != STORE_KNOWN || revision != self->revision)
            zsys_info ("broker: etcd holds %s at epoch %llu, primary '%s' (revision %lld)", ELECTED_PARTITION,
                       (unsigned long long) meta.epoch, meta.primary, (long long) revision);
        //  Written by another broker, perhaps from reports we never saw
        if (revision != self->revision)
            self->basis = 0;
        self->meta = meta;
        self->revision = revision;
        self->state = STORE_KNOWN;
        if (unclean_epoch && unclean_epoch == meta.epoch && unclean_epoch != self->unclean_epoch)
            zsys_warning ("broker: an operator asked for an unclean election of %s at epoch %llu",
                          ELECTED_PARTITION, (unsigned long long) unclean_epoch);
        self->unclean_epoch = unclean_epoch;
        changed = news;
    }
    else
    if ((result->tag & 0xFF) == TAG_WRITE) {
        self->pending = false;
        if (result->rc == BS_ETCD_OK) {
            self->meta = self->proposed;
            self->basis = self->proposed_basis;
            self->revision = result->revision;
            zsys_info ("broker: etcd committed %s: epoch %llu, primary %s, %zu in sync (revision %lld)",
                       ELECTED_PARTITION, (unsigned long long) self->meta.epoch, self->meta.primary,
                       self->meta.insync_count, (long long) self->revision);
            changed = true;
        }
        else {
            //  Lost a race, or the outcome is unknown: read what etcd holds
            //  and decide again from that
            zsys_warning ("broker: etcd did not take the partition map: %s", result->error);
            self->retry_at = bs_clock_mono () + (result->rc == BS_ETCD_COMPARE_FAILED? 0: STORE_RETRY_MS);
            s_store_read (self);
        }
    }
    self->dirty |= changed;
    return changed;
}

bool
controller_stored (controller_t *self, uint64_t *epoch, const char **primary,
                   char *insync, size_t insync_size, int64_t *revision)
{
    if (!self->store || self->state != STORE_KNOWN)
        return false;
    *epoch = self->meta.epoch;
    *primary = self->meta.primary;
    *revision = self->revision;
    insync [0] = 0;
    if (self->meta.epoch > 0)
        snprintf (insync, insync_size, "%s", self->meta.primary);
    for (size_t index = 0; index < self->meta.insync_count; index++) {
        if (strcmp (self->meta.insync [index], self->meta.primary) == 0)
            continue;
        size_t used = strlen (insync);
        snprintf (insync + used, insync_size - used, "%s%s", used? ",": "", self->meta.insync [index]);
    }
    return true;
}

const char *
controller_store_prefix (controller_t *self)
{
    return self->store? ctlplane_prefix (self->store): "";
}

//  An order partition is its owner's for good, named by the owner's id and
//  a suffix ("<id>.<suffix>", nodes/node.c): only that node may lead it.
//  Another node reporting the role (a bug, or a copied data directory) is
//  not taken for its primary, whatever epoch it claims.
static bool
s_owner_of (const char *partition, const char *id)
{
    size_t n = strlen (id);
    return strncmp (partition, id, n) == 0 && partition [n] == '.' && partition [n + 1]
        && !strchr (partition + n + 1, '.');
}

bool
controller_update (controller_t *self, workers_t *workers)
{
    bool changed = self->dirty;
    self->dirty = false;
    //  Learn partitions and epochs from every report
    for (size_t i = 0; i < workers_size (workers); i++) {
        worker_t *w = workers_at (workers, i);
        if (!w->has_status)
            continue;
        for (int k = 0; k < w->partition_count; k++) {
            worker_partition_t *rep = &w->partitions [k];
            if (!s_find (self, rep->name) && self->count < MAX_PARTS) {
                cpart_t *part = &self->parts [self->count++];
                memset (part, 0, sizeof *part);
                snprintf (part->name, sizeof part->name, "%s", rep->name);
                snprintf (part->service, sizeof part->service, "%s", w->service);
                part->elected = strcmp (rep->name, ELECTED_PARTITION) == 0;
                if (part->elected)
                    part->max_epoch = self->epoch_floor;
                changed = true;
            }
            cpart_t *part = s_find (self, rep->name);
            if (part && rep->epoch > part->max_epoch)
                part->max_epoch = rep->epoch;
        }
        //  A catalog node with nothing yet still stands for election
        if (strcmp (w->service, "catalog") == 0 && !s_find (self, ELECTED_PARTITION) && self->count < MAX_PARTS) {
            cpart_t *part = &self->parts [self->count++];
            memset (part, 0, sizeof *part);
            snprintf (part->name, sizeof part->name, "%s", ELECTED_PARTITION);
            snprintf (part->service, sizeof part->service, "catalog");
            part->elected = true;
            part->max_epoch = self->epoch_floor;
            changed = true;
        }
    }
    for (int i = 0; i < self->count; i++) {
        cpart_t *part = &self->parts [i];
        worker_t *primary = s_alive (workers, part->primary);
        worker_partition_t *primary_rep = primary? worker_partition (primary, part->name): NULL;
        if (part->elected && primary_rep && (primary_rep->snapshot || (primary_rep->empty && part->epoch > 1))) {
            //  Elected, but found loading a snapshot, or holding nothing
            //  past the partition's first epoch: it refuses to lead
            zsys_warning ("broker: %s is loading a snapshot of %s, or holds none of it: electing another",
                          part->primary, part->name);
            part->primary [0] = 0;
            primary = NULL;
            changed = true;
        }
        if (part->elected && primary_rep && primary_rep->resigned && primary_rep->epoch >= part->epoch
        &&  !self->store) {
            //  It will not lead at this epoch again, but holds the partition:
            //  still electable at the next (the stored map's path decides so
            //  in election_decide)
            zsys_warning ("broker: %s gave up the primary role of %s at epoch %llu: electing anew",
                          part->primary, part->name, (unsigned long long) part->epoch);
            memcpy (part->last_primary, part->primary, sizeof part->last_primary);
            part->primary [0] = 0;
            primary = NULL;
            changed = true;
        }
        if (part->elected && self->store) {
            changed |= s_update_stored (self, part, workers);
            primary = s_alive (workers, part->primary);
        }
        else
        if (part->elected) {
            if (!primary && part->primary [0]) {
                zsys_warning ("broker: primary %s of %s is gone", part->primary, part->name);
                memcpy (part->last_primary, part->primary, sizeof part->last_primary);
                part->primary [0] = 0;
                changed = true;
            }
            if (!primary && bs_clock_mono () >= self->settle_until && s_elect (part, workers)) {
                changed = true;
                primary = s_alive (workers, part->primary);
            }
        }
        else {
            //  The owner, when it reports the role: at a new epoch each
            //  start (its followers learn it here, and check their logs)
            worker_t *owner = NULL;
            uint64_t epoch = 0;
            for (size_t k = 0; k < workers_size (workers); k++) {
                worker_t *w = workers_at (workers, k);
                worker_partition_t *rep = w->alive && w->has_status? worker_partition (w, part->name): NULL;
                if (rep && strcmp (rep->role, "primary") == 0 && !s_owner_of (part->name, w->id))
                    continue;
                if (rep && strcmp (rep->role, "primary") == 0 && (!owner || rep->epoch > epoch)) {
                    owner = w;
                    epoch = rep->epoch;
                }
            }
            changed |= s_set (part->primary, sizeof part->primary, owner? owner->id: "");
            if (owner && epoch != part->epoch) {
                part->epoch = epoch;
                changed = true;
            }
            primary = owner;
        }
        //  Confirm the in-sync set the primary reports (minus the dead);
        //  the control plane's is confirmed only once written
        char insync [512] = "";
        if (part->elected && self->store)
            snprintf (insync, sizeof insync, "%s", part->insync);
        else
        if (primary) {
            worker_partition_t *rep = worker_partition (primary, part->name);
            if (rep && strcmp (rep->role, "primary") == 0 && rep->epoch == part->epoch) {
                s_filter_alive (workers, rep->insync, insync, sizeof insync);
                part->isr_version = rep->version;
                if (strcmp (rep->insync, part->reported)) {
                    snprintf (part->reported, sizeof part->reported, "%s", rep->insync);
                    changed = true;
                }
            }
            else {
                s_filter_alive (workers, part->insync, insync, sizeof insync);
                part->isr_version = 0;
            }
        }
        else {
            s_filter_alive (workers, part->insync, insync, sizeof insync);
            part->isr_version = 0;
        }
        changed |= s_set (part->insync, sizeof part->insync, insync);
        //  Fetch from the primary, or else from the most advanced replica
        //  that holds the partition whole (one empty or loading a snapshot
        //  answers no fetch: named source, it would leave a fresh copy
        //  with nobody to fill it from, an ownerless order partition's
        //  for good)
        worker_t *source = primary;
        if (!source) {
            uint64_t best = 0;
            bool best_whole = false;
            for (size_t k = 0; k < workers_size (workers); k++) {
                worker_t *w = workers_at (workers, k);
                worker_partition_t *rep = w->alive && w->has_status? worker_partition (w, part->name): NULL;
                if (!rep)
                    continue;
                bool whole = !rep->empty && !rep->snapshot;
                if (!source || (whole && !best_whole) || (whole == best_whole && rep->seq > best)) {
                    source = w;
                    best = rep->seq;
                    best_whole = whole;
                }
            }
        }
        changed |= s_set (part->source, sizeof part->source, source? source->id: "");
        changed |= s_set (part->pub, sizeof part->pub, primary? primary->pub: "");
        changed |= s_set (part->sync, sizeof part->sync, source? source->sync: "");
    }
    return changed;
}

bs_msg_t *
controller_assign (controller_t *self, const char *service)
{
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, "assign");
    bs_msg_set_list (msg, BS_FIELD_partitions);
    for (int i = 0; i < self->count; i++) {
        cpart_t *part = &self->parts [i];
        if (strcmp (part->service, service) != 0)
            continue;
        bs_msg_t *entry = bs_msg_new ();
        bs_msg_set_str (entry, BS_FIELD_partition, part->name);
        bs_msg_set_int (entry, BS_FIELD_epoch, (int64_t) part->epoch);
        bs_msg_set_str (entry, BS_FIELD_primary, part->primary);
        bs_msg_set_str (entry, BS_FIELD_source, part->source);
        bs_msg_set_str (entry, BS_FIELD_pub, part->pub);
        bs_msg_set_str (entry, BS_FIELD_sync, part->sync);
        bs_msg_set_str (entry, BS_FIELD_isr, part->insync);
        //  Which report of the primary's the set was built from: the
        //  primary stops waiting for a follower it reported in sync only on
        //  a set built from a report at least as new (repl_waits_for)
        bs_msg_set_int (entry, BS_FIELD_version, (int64_t) part->isr_version);
        bs_msg_append (msg, BS_FIELD_partitions, &entry);
    }
    //  Order nodes send a buy's decrement to the catalog primary directly:
    //  they learn who and where it is here (and never follow the catalog)
    cpart_t *catalog = strcmp (service, "order") == 0? s_find (self, ELECTED_PARTITION): NULL;
    if (catalog && catalog->primary [0] && strcmp (catalog->source, catalog->primary) == 0) {
        bs_msg_t *entry = bs_msg_new ();
        bs_msg_set_str (entry, BS_FIELD_partition, catalog->name);
        bs_msg_set_int (entry, BS_FIELD_epoch, (int64_t) catalog->epoch);
        bs_msg_set_str (entry, BS_FIELD_primary, catalog->primary);
        bs_msg_set_str (entry, BS_FIELD_sync, catalog->sync);
        bs_msg_append (msg, BS_FIELD_partitions, &entry);
    }
    return msg;
}

worker_t *
controller_catalog_primary (controller_t *self, workers_t *workers)
{
    cpart_t *part = s_find (self, ELECTED_PARTITION);
    worker_t *w = part? s_alive (workers, part->primary): NULL;
    if (!w)
        return NULL;
    //  Only once it has taken the role at the current epoch
    worker_partition_t *rep = worker_partition (w, part->name);
    return rep && strcmp (rep->role, "primary") == 0 && rep->epoch == part->epoch? w: NULL;
}

uint64_t
controller_epoch (controller_t *self, const char *partition)
{
    cpart_t *part = s_find (self, partition);
    return part? part->epoch: 0;
}

bool
controller_readable (controller_t *self, worker_t *worker)
{
    if (!worker->has_status)
        return false;
    if (strcmp (worker->service, "catalog") == 0) {
        cpart_t *part = s_find (self, ELECTED_PARTITION);
        if (!part)
            return false;
        if (strcmp (part->primary, worker->id) == 0) {
            worker_partition_t *rep = worker_partition (worker, part->name);
            return rep && strcmp (rep->role, "primary") == 0 && rep->epoch == part->epoch;
        }
        return bs_idlist_has (part->insync, worker->id);
    }
    return worker->ready;
}

const char *
controller_role (controller_t *self, worker_t *worker)
{
    for (int i = 0; i < self->count; i++)
        if (strcmp (self->parts [i].service, worker->service) == 0
        &&  strcmp (self->parts [i].primary, worker->id) == 0
        &&  (self->parts [i].elected || strcmp (worker->service, "order") == 0))
            return "primary";
    return "follower";
}

bool
controller_insync (controller_t *self, worker_t *worker)
{
    return worker->alive && controller_readable (self, worker);
}

uint64_t
controller_lag (controller_t *self, workers_t *workers, worker_t *worker)
{
    uint64_t lag = 0;
    for (int i = 0; i < self->count; i++) {
        cpart_t *part = &self->parts [i];
        worker_t *primary = s_alive (workers, part->primary);
        worker_partition_t *mine = worker_partition (worker, part->name);
        worker_partition_t *theirs = primary? worker_partition (primary, part->name): NULL;
        if (mine && theirs && theirs->seq > mine->seq && theirs->seq - mine->seq > lag)
            lag = theirs->seq - mine->seq;
    }
    return lag;
}
