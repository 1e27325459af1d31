/*  controller - partition map, elections and the confirmed in-sync sets  */
#include "controller.h"
#include "bs_idlist.h"

#include <czmq.h>
#include <string.h>

#define MAX_PARTS 64
#define ELECTED_PARTITION "catalog"

typedef struct {
    char name [65];
    char service [33];
    bool elected;               //  the controller chooses its primary
    uint64_t epoch;
    char primary [65];          //  "" when none
    char insync [512];          //  confirmed in-sync followers
    bool insync_known;          //  false until a primary reported (fresh broker)
    char source [65];
    char pub [257], sync [257];
    char last_primary [65];     //  it holds every write it acknowledged
    uint64_t max_epoch;         //  the highest epoch any node reported or we gave
} cpart_t;

struct _controller_t {
    cpart_t parts [MAX_PARTS];
    int count;
    int64_t settle_until;
    uint64_t epoch_floor;       //  the catalog's epochs start above this
};

controller_t *
controller_new (int settle_ms)
{
    controller_t *self = calloc (1, sizeof (controller_t));
    if (!self)
        abort ();
    self->settle_until = zclock_mono () + settle_ms;
    return self;
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
    cpart_t *part = s_find (self, ELECTED_PARTITION);
    return part && part->max_epoch > self->epoch_floor? part->max_epoch: self->epoch_floor;
}

void controller_end_settle (controller_t *self) { self->settle_until = 0; }
bool controller_settling (controller_t *self) { return zclock_mono () < self->settle_until; }

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

bool
controller_update (controller_t *self, workers_t *workers)
{
    bool changed = false;
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
        if (part->elected && primary_rep && primary_rep->snapshot) {
            //  Elected, but found loading a snapshot: it refuses to lead
            zsys_warning ("broker: %s is loading a snapshot of %s: electing another", part->primary, part->name);
            part->primary [0] = 0;
            primary = NULL;
            changed = true;
        }
        if (part->elected) {
            if (!primary && part->primary [0]) {
                zsys_warning ("broker: primary %s of %s is gone", part->primary, part->name);
                memcpy (part->last_primary, part->primary, sizeof part->last_primary);
                part->primary [0] = 0;
                changed = true;
            }
            if (!primary && zclock_mono () >= self->settle_until && s_elect (part, workers)) {
                changed = true;
                primary = s_alive (workers, part->primary);
            }
        }
        else {
            //  The owner that reports the role, at the highest epoch
            worker_t *owner = NULL;
            uint64_t epoch = 0;
            for (size_t k = 0; k < workers_size (workers); k++) {
                worker_t *w = workers_at (workers, k);
                worker_partition_t *rep = w->alive && w->has_status? worker_partition (w, part->name): NULL;
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
        //  Confirm the in-sync set the primary reports (minus the dead)
        char insync [512] = "";
        if (primary) {
            worker_partition_t *rep = worker_partition (primary, part->name);
            if (rep && strcmp (rep->role, "primary") == 0 && rep->epoch == part->epoch)
                s_filter_alive (workers, rep->insync, insync, sizeof insync);
            else
                s_filter_alive (workers, part->insync, insync, sizeof insync);
        }
        else
            s_filter_alive (workers, part->insync, insync, sizeof insync);
        changed |= s_set (part->insync, sizeof part->insync, insync);
        //  Fetch from the primary, or else from the most advanced replica
        worker_t *source = primary;
        if (!source) {
            uint64_t best = 0;
            for (size_t k = 0; k < workers_size (workers); k++) {
                worker_t *w = workers_at (workers, k);
                worker_partition_t *rep = w->alive && w->has_status? worker_partition (w, part->name): NULL;
                if (rep && (!source || rep->seq > best)) {
                    source = w;
                    best = rep->seq;
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
