/*  workers - node registry and least-outstanding-requests choice  */
#include "workers.h"
#include "bs_name.h"
#include "bs_msg.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A node held out (see workers_hold)
typedef struct {
    char id [BS_ID_MAX + 1];
    int64_t until;          //  held before then
    int64_t length;         //  the hold's length (ms)
} hold_t;

struct _workers_t {
    hold_t holds [WORKERS_HOLDS_MAX];
    size_t hold_count;
    worker_t **items;
    size_t size, cap;
    size_t rotor;           //  where the next tie-break search starts
    uint64_t serial;        //  the last registration's number
};

workers_t *
workers_new (void)
{
    workers_t *self = calloc (1, sizeof (workers_t));
    if (!self)
        abort ();
    return self;
}

void
workers_destroy (workers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    workers_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++)
        free (self->items [i]);
    free (self->items);
    free (self);
    *self_p = NULL;
}

worker_t *
workers_find (workers_t *self, const void *identity, size_t size)
{
    //  A handful of nodes per cluster: a linear scan beats hashing here
    for (size_t i = 0; i < self->size; i++) {
        worker_t *w = self->items [i];
        if (w->identity_size == size && memcmp (w->identity, identity, size) == 0)
            return w;
    }
    return NULL;
}

//  The id of a node that announced none: its routing id in hex (up to 32
//  bytes of it)
static void
s_identity_id (const void *identity, size_t size, char *id)
{
    const uint8_t *bytes = identity;
    size_t n = size < 32? size: 32;
    id [0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf (id + 2 * i, 3, "%02x", bytes [i]);
}

worker_t *
workers_register (workers_t *self, const void *identity, size_t size,
                  const char *service, const char *id)
{
    if (size > sizeof (((worker_t *) 0)->identity))
        return NULL;
    worker_t *w = workers_find (self, identity, size);
    if (!w) {
        if (self->size == self->cap) {
            self->cap = self->cap? self->cap * 2: 16;
            self->items = realloc (self->items, self->cap * sizeof (worker_t *));
            if (!self->items)
                abort ();
        }
        w = calloc (1, sizeof (worker_t));
        if (!w)
            abort ();
        memcpy (w->identity, identity, size);
        w->identity_size = size;
        self->items [self->size++] = w;
    }
    w->serial = ++self->serial;
    snprintf (w->service, sizeof w->service, "%s", service);
    if (id && *id)
        snprintf (w->id, sizeof w->id, "%s", id);
    else
        s_identity_id (identity, size, w->id);
    w->alive = true;
    w->displaced = false;
    w->dead_since = 0;
    w->outstanding = 0;
    w->served = 0;
    w->read_seq = 0;
    w->fd = -1;
    w->reported_insync = false;
    w->has_status = false;
    w->partition_count = 0;
    w->ready = false;
    w->standard = false;
    w->heartbeat_ms = 0;
    w->next_heartbeat = 0;
    return w;
}

void
workers_declare_dead (worker_t *worker, int64_t now)
{
    worker->alive = false;
    worker->dead_since = now;
}

void
workers_displace (worker_t *worker, int64_t now)
{
    worker->alive = false;
    worker->displaced = true;
    worker->dead_since = now - WORKERS_FORGET_MS - 1;
}

int64_t
workers_hold (workers_t *self, const char *id, int64_t now)
{
    hold_t *hold = NULL;
    for (size_t i = 0; !hold && i < self->hold_count; i++)
        if (strcmp (self->holds [i].id, id) == 0)
            hold = &self->holds [i];
    if (!hold && self->hold_count < WORKERS_HOLDS_MAX)
        hold = &self->holds [self->hold_count++];
    else
    if (!hold) {
        //  Full: the hold that ended first gives way
        hold = &self->holds [0];
        for (size_t i = 1; i < self->hold_count; i++)
            if (self->holds [i].until < hold->until)
                hold = &self->holds [i];
        hold->id [0] = 0;
    }
    bool again = hold->id [0] && now - hold->until < WORKERS_HOLD_RESET_MS;
    int64_t length = again? 2 * hold->length: WORKERS_HOLD_MIN_MS;
    if (length > WORKERS_HOLD_MAX_MS)
        length = WORKERS_HOLD_MAX_MS;
    snprintf (hold->id, sizeof hold->id, "%s", id);
    hold->length = length;
    hold->until = now + length;
    return length;
}

int64_t
workers_held (workers_t *self, const char *id, const void *identity, size_t size, int64_t now)
{
    char own [BS_ID_MAX + 1];
    if (!id || !*id) {
        s_identity_id (identity, size, own);
        id = own;
    }
    for (size_t i = 0; i < self->hold_count; i++)
        if (strcmp (self->holds [i].id, id) == 0)
            return self->holds [i].until > now? self->holds [i].until - now: 0;
    return 0;
}

size_t
workers_forget (workers_t *self, int64_t now)
{
    size_t held = 0;
    for (size_t i = 0; i < self->hold_count; i++)
        if (now - self->holds [i].until < WORKERS_HOLD_RESET_MS)
            self->holds [held++] = self->holds [i];
    self->hold_count = held;
    size_t kept = 0, forgotten = 0;
    for (size_t i = 0; i < self->size; i++) {
        worker_t *w = self->items [i];
        if (!w->alive && (w->standard || now - w->dead_since > WORKERS_FORGET_MS)) {
            if (w->standard)
                zsys_debug ("broker: forgot worker %s of service %s", w->id, w->service);
            else
            if (w->displaced)
                zsys_debug ("broker: forgot a former connection of node %s (%s)", w->id, w->service);
            else
                zsys_info ("broker: forgot node %s (%s), dead for %lld s", w->id, w->service,
                           (long long) (now - w->dead_since) / 1000);
            free (w);
            forgotten++;
        }
        else
            self->items [kept++] = w;
    }
    self->size = kept;
    if (self->rotor >= self->size)
        self->rotor = 0;
    return forgotten;
}

worker_t *
workers_choose (workers_t *self, const char *service, workers_filter_fn *filter, void *arg)
{
    worker_t *best = NULL;
    size_t best_index = 0;
    for (size_t k = 0; k < self->size; k++) {
        size_t i = (self->rotor + k) % self->size;
        worker_t *w = self->items [i];
        if (!w->alive || strcmp (w->service, service) != 0 || (filter && !filter (arg, w)))
            continue;
        if (!best || w->outstanding < best->outstanding) {
            best = w;
            best_index = i;
        }
    }
    if (best)
        self->rotor = best_index + 1;
    return best;
}

size_t
workers_alive (workers_t *self, const char *service)
{
    size_t n = 0;
    for (size_t i = 0; i < self->size; i++)
        n += self->items [i]->alive && strcmp (self->items [i]->service, service) == 0;
    return n;
}

worker_t *
workers_by_id (workers_t *self, const char *id)
{
    //  A dead worker's id may since have been taken by a node of another
    //  routing id: the alive one is the node
    worker_t *found = NULL;
    for (size_t i = 0; i < self->size; i++)
        if (strcmp (self->items [i]->id, id) == 0) {
            if (self->items [i]->alive)
                return self->items [i];
            if (!found)
                found = self->items [i];
        }
    return found;
}

worker_partition_t *
worker_partition (worker_t *worker, const char *name)
{
    for (int i = 0; i < worker->partition_count; i++)
        if (strcmp (worker->partitions [i].name, name) == 0)
            return &worker->partitions [i];
    return NULL;
}

size_t workers_size (workers_t *self) { return self->size; }
worker_t *workers_at (workers_t *self, size_t index) { return index < self->size? self->items [index]: NULL; }

bool
workers_id_valid (const char *id)
{
    return bs_name_valid (id, BS_ID_MAX);
}

worker_t *
workers_id_holder (workers_t *self, const char *id, const void *identity, size_t size)
{
    char own [BS_ID_MAX + 1];
    if (!id || !*id) {
        s_identity_id (identity, size, own);
        id = own;
    }
    //  Every worker by that id, not the first only: a dead one's id may
    //  have been taken meanwhile
    for (size_t i = 0; i < self->size; i++) {
        worker_t *w = self->items [i];
        if (w->alive && strcmp (w->id, id) == 0
        &&  (w->identity_size != size || memcmp (w->identity, identity, size) != 0))
            return w;
    }
    return NULL;
}

bool
workers_apply_status (worker_t *worker, const void *data, size_t size)
{
    bs_err_t err;
    char reason [128];
    bs_msg_t *status = bs_msg_decode (data, size, &err, reason, sizeof reason);
    bool valid = status && bs_msg_validate_request (status, reason, sizeof reason) == BS_OK;
    if (valid && bs_msg_op (status) != BS_OP_node_status) {
        snprintf (reason, sizeof reason, "a %s request, not a node_status", bs_op_name (bs_msg_op (status)));
        valid = false;
    }
    if (!valid) {
        zsys_warning ("broker: node %s sent a bad status: %s", worker->id, reason);
        bs_msg_destroy (&status);
        return false;
    }
    worker->has_status = true;
    snprintf (worker->pub, sizeof worker->pub, "%s", bs_msg_str (status, BS_FIELD_pub));
    snprintf (worker->sync, sizeof worker->sync, "%s", bs_msg_str (status, BS_FIELD_sync));
    snprintf (worker->digest, sizeof worker->digest, "%s", bs_msg_str (status, BS_FIELD_digest));
    //  16 hex digits, or nothing; anything else is no identity at all
    const char *store = bs_msg_str (status, BS_FIELD_store);
    char *end = NULL;
    unsigned long long incarnation = strlen (store) == 16? strtoull (store, &end, 16): 0;
    worker->incarnation = end && *end == 0? (uint64_t) incarnation: 0;
    worker->ready = bs_msg_int (status, BS_FIELD_ready);
    worker->partition_count = 0;
    bool catalog_node = strcmp (worker->service, "catalog") == 0;
    for (size_t i = 0; i < bs_msg_count (status, BS_FIELD_partitions)
                       && worker->partition_count < WORKER_MAX_PARTITIONS; i++) {
        bs_msg_t *p = bs_msg_at (status, BS_FIELD_partitions, i);
        //  A node speaks for its own service's partitions only, and an
        //  epoch at the protocol's ceiling could never be followed by a
        //  higher one: such reports are dropped
        bool catalog_part = strcmp (bs_msg_str (p, BS_FIELD_partition), "catalog") == 0;
        if (catalog_part != catalog_node || bs_msg_int (p, BS_FIELD_epoch) >= BS_EPOCH_MAX) {
            zsys_warning ("broker: node %s reported partition %s it cannot hold", worker->id,
                          bs_msg_str (p, BS_FIELD_partition));
            continue;
        }
        worker_partition_t *wp = &worker->partitions [worker->partition_count++];
        snprintf (wp->name, sizeof wp->name, "%s", bs_msg_str (p, BS_FIELD_partition));
        snprintf (wp->role, sizeof wp->role, "%s", bs_msg_str (p, BS_FIELD_role));
        snprintf (wp->insync, sizeof wp->insync, "%s", bs_msg_str (p, BS_FIELD_isr));
        wp->epoch = (uint64_t) bs_msg_int (p, BS_FIELD_epoch);
        wp->seq = (uint64_t) bs_msg_int (p, BS_FIELD_seq);
        wp->head = (uint64_t) bs_msg_int (p, BS_FIELD_head);
        wp->version = (uint64_t) bs_msg_int (p, BS_FIELD_version);
        wp->ready = bs_msg_int (p, BS_FIELD_ready);
        wp->snapshot = strcmp (bs_msg_str (p, BS_FIELD_status), "snapshot") == 0;
        wp->empty = strcmp (bs_msg_str (p, BS_FIELD_status), "empty") == 0;
        wp->resigned = strcmp (bs_msg_str (p, BS_FIELD_status), "resigned") == 0;
    }
    bs_msg_destroy (&status);
    return true;
}
