/*  sim_ctlplane - ctlplane.h over an in-memory store in virtual time  */
#include "sim_ctlplane.h"
#include "sim.h"
#include "bs_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS_MAX 64
#define LEASES_MAX 64
#define HANDLES_MAX 8

typedef struct {
    char *key, *value;          //  key: the full name
    int64_t create_revision, mod_revision, lease;
} kv_t;

typedef struct {
    int64_t id, ttl, expiry;
} lease_rec_t;

static struct {
    kv_t kv [KEYS_MAX];
    size_t count;
    lease_rec_t leases [LEASES_MAX];
    size_t lease_count;
    int64_t revision, next_lease;
    int fault_per_mille;
    int64_t down_until;
} s_store;

struct _ctlplane_t {
    uint64_t serial;
    char prefix [128];
    int timeout_ms;
    int64_t busy_until;         //  one request at a time, in order
    ctlplane_result_t **ready;  //  answers not yet read
    size_t ready_count, ready_cap;
    sim_ctlplane_fn *notify;
    void *notify_arg;
    int proc;                   //  the process it belongs to (-1: none)
    uint64_t incarnation;
};

static ctlplane_t *s_handles [HANDLES_MAX];
static uint64_t s_serials;

//  --------------------------------------------------------------------------
//  The store

static void
s_kv_free (kv_t *kv)
{
    free (kv->key);
    free (kv->value);
}

void
sim_etcd_reset (void)
{
    for (size_t i = 0; i < s_store.count; i++)
        s_kv_free (&s_store.kv [i]);
    memset (&s_store, 0, sizeof s_store);
    s_store.revision = 1;
    s_store.next_lease = 0x1000;
}

void sim_etcd_set_faults (int per_mille) { s_store.fault_per_mille = per_mille; }
void sim_etcd_down (int64_t until) { s_store.down_until = until; }

static kv_t *
s_find (const char *key)
{
    for (size_t i = 0; i < s_store.count; i++)
        if (strcmp (s_store.kv [i].key, key) == 0)
            return &s_store.kv [i];
    return NULL;
}

static void
s_delete_at (size_t index)
{
    s_kv_free (&s_store.kv [index]);
    memmove (&s_store.kv [index], &s_store.kv [index + 1], (s_store.count - index - 1) * sizeof (kv_t));
    s_store.count--;
}

static void
s_drop_lease (size_t index)
{
    int64_t id = s_store.leases [index].id;
    for (size_t i = s_store.count; i-- > 0;)
        if (s_store.kv [i].lease == id) {
            s_delete_at (i);
            s_store.revision++;
        }
    memmove (&s_store.leases [index], &s_store.leases [index + 1],
             (s_store.lease_count - index - 1) * sizeof (lease_rec_t));
    s_store.lease_count--;
}

//  Leases run out in virtual time; looked at whenever the store is used
static void
s_expire (void)
{
    for (size_t i = s_store.lease_count; i-- > 0;)
        if (s_store.leases [i].expiry <= sim_now)
            s_drop_lease (i);
}

static lease_rec_t *
s_lease (int64_t id)
{
    for (size_t i = 0; i < s_store.lease_count; i++)
        if (s_store.leases [i].id == id)
            return &s_store.leases [i];
    return NULL;
}

static int64_t
s_put (const char *key, const char *value, int64_t lease)
{
    kv_t *kv = s_find (key);
    s_store.revision++;
    if (!kv) {
        if (s_store.count == KEYS_MAX)
            abort ();
        kv = &s_store.kv [s_store.count++];
        kv->key = bs_strdup (key);
        kv->value = NULL;
        kv->create_revision = s_store.revision;
    }
    free (kv->value);
    kv->value = bs_strdup (value);
    kv->mod_revision = s_store.revision;
    kv->lease = lease;
    return s_store.revision;
}

const char *
sim_etcd_get (const char *key)
{
    kv_t *kv = s_find (key);
    return kv? kv->value: NULL;
}

//  --------------------------------------------------------------------------
//  Handles

ctlplane_t *
ctlplane_new (const char *endpoints, const char *cluster, int timeout_ms)
{
    (void) endpoints;
    if (!cluster || !*cluster)
        return NULL;
    ctlplane_t *self = bs_alloc (1, sizeof (ctlplane_t));
    self->serial = ++s_serials;
    snprintf (self->prefix, sizeof self->prefix, "/bookstore/%s/", cluster);
    self->timeout_ms = timeout_ms;
    self->proc = -1;
    for (int i = 0; i < HANDLES_MAX; i++)
        if (!s_handles [i]) {
            s_handles [i] = self;
            return self;
        }
    abort ();
}

void
ctlplane_destroy (ctlplane_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ctlplane_t *self = *self_p;
    for (int i = 0; i < HANDLES_MAX; i++)
        if (s_handles [i] == self)
            s_handles [i] = NULL;
    for (size_t i = 0; i < self->ready_count; i++)
        ctlplane_result_destroy (&self->ready [i]);
    free (self->ready);
    free (self);
    *self_p = NULL;
}

void
sim_ctlplane_notify (ctlplane_t *self, sim_ctlplane_fn *fn, void *arg, int proc)
{
    self->notify = fn;
    self->notify_arg = arg;
    self->proc = proc;
    self->incarnation = proc >= 0? sim_procs [proc].incarnation: 0;
}

//  An answer's event runs as the handle's process
static void
s_address (sim_event_t *event, ctlplane_t *self)
{
    if (self && self->proc >= 0) {
        event->to = self->proc;
        event->incarnation = self->incarnation;
    }
}
void *ctlplane_socket (ctlplane_t *self) { (void) self; return NULL; }
const char *ctlplane_prefix (ctlplane_t *self) { return self->prefix; }

static ctlplane_t *
s_handle (uint64_t serial)
{
    for (int i = 0; i < HANDLES_MAX; i++)
        if (s_handles [i] && s_handles [i]->serial == serial)
            return s_handles [i];
    return NULL;
}

//  A request on its way: what it asks
typedef struct {
    ctlplane_op_t op;
    char key [256];
    char *value;
    int64_t number;             //  mod revision, lease or ttl
    int64_t lease;
} ask_t;

static ctlplane_result_t *
s_result_new (uint32_t tag, ctlplane_op_t op)
{
    ctlplane_result_t *result = bs_alloc (1, sizeof (ctlplane_result_t));
    result->tag = tag;
    result->op = op;
    return result;
}

static void
s_result_add (ctlplane_result_t *result, const char *prefix, kv_t *kv)
{
    size_t n = result->count + 1;
    result->keys = bs_realloc (result->keys, n, sizeof (char *));
    result->values = bs_realloc (result->values, n, sizeof (char *));
    result->mod_revisions = bs_realloc (result->mod_revisions, n, sizeof (int64_t));
    result->keys [result->count] = bs_strdup (kv->key + strlen (prefix));
    result->values [result->count] = bs_strdup (kv->value);
    result->mod_revisions [result->count] = kv->mod_revision;
    result->count = n;
}

//  The linearization point: the request takes effect now
static ctlplane_result_t *
s_apply (const char *prefix, ask_t *ask, uint32_t tag)
{
    s_expire ();
    ctlplane_result_t *result = s_result_new (tag, ask->op);
    result->rc = BS_ETCD_OK;
    switch (ask->op) {
        case CTLPLANE_GET_PREFIX:
            for (size_t i = 0; i < s_store.count; i++)
                if (strncmp (s_store.kv [i].key, ask->key, strlen (ask->key)) == 0)
                    s_result_add (result, prefix, &s_store.kv [i]);
            break;
        case CTLPLANE_PUT_IF: {
            kv_t *kv = s_find (ask->key);
            if ((kv? kv->mod_revision: 0) != ask->number) {
                result->rc = BS_ETCD_COMPARE_FAILED;
                snprintf (result->error, sizeof result->error, "the key changed since revision %lld",
                          (long long) ask->number);
            }
            else
                result->revision = s_put (ask->key, ask->value, 0);
            break;
        }
        case CTLPLANE_GRANT:
            if (s_store.lease_count == LEASES_MAX) {
                result->rc = BS_ETCD_ERROR;
                snprintf (result->error, sizeof result->error, "too many leases");
                break;
            }
            s_store.leases [s_store.lease_count++] = (lease_rec_t) {
                ++s_store.next_lease, ask->number, sim_now + ask->number * 1000 };
            result->lease = s_store.next_lease;
            break;
        case CTLPLANE_KEEPALIVE: {
            lease_rec_t *lease = s_lease (ask->lease);
            if (lease) {
                lease->expiry = sim_now + lease->ttl * 1000;
                result->ttl = lease->ttl;
            }
            break;
        }
        case CTLPLANE_CAMPAIGN:
        case CTLPLANE_PUT_LEASED: {
            if (!s_lease (ask->lease)) {
                result->rc = BS_ETCD_ERROR;
                snprintf (result->error, sizeof result->error, "requested lease not found");
                break;
            }
            kv_t *kv = s_find (ask->key);
            if (ask->op == CTLPLANE_CAMPAIGN && kv) {
                result->rc = BS_ETCD_COMPARE_FAILED;
                s_result_add (result, prefix, kv);
                snprintf (result->error, sizeof result->error, "the key is held");
            }
            else
                result->revision = s_put (ask->key, ask->value, ask->lease);
            break;
        }
        case CTLPLANE_REVOKE:
            for (size_t i = 0; i < s_store.lease_count; i++)
                if (s_store.leases [i].id == ask->lease) {
                    s_drop_lease (i);
                    break;
                }
            break;
    }
    return result;
}

static void
s_dispose_answer (sim_event_t *event)
{
    ctlplane_result_t *result;
    memcpy (&result, event->data, sizeof result);
    ctlplane_result_destroy (&result);
}

static void
s_dispose_ask (sim_event_t *event)
{
    free (((ask_t *) event->data)->value);
}

static void
s_on_answer (sim_event_t *event)
{
    ctlplane_t *self = s_handle ((uint64_t) event->number);
    ctlplane_result_t *result;
    memcpy (&result, event->data, sizeof result);
    if (!self) {
        ctlplane_result_destroy (&result);
        return;     //  its broker is gone
    }
    if (self->ready_count == self->ready_cap) {
        self->ready_cap = self->ready_cap? self->ready_cap * 2: 8;
        self->ready = bs_realloc (self->ready, self->ready_cap, sizeof (ctlplane_result_t *));
    }
    self->ready [self->ready_count++] = result;
    sim_trace ("etcd answers %s tag %u: rc %d%s%s", result->op == CTLPLANE_GET_PREFIX? "get": "write",
               result->tag, result->rc, *result->error? ": ": "", result->error);
    if (self->notify)
        self->notify (self->notify_arg, self);
}

//  A request in flight reaching its linearization point
static void
s_on_apply (sim_event_t *event)
{
    ask_t *ask = (ask_t *) event->data;
    ctlplane_t *self = s_handle ((uint64_t) event->number);
    char prefix [128];
    snprintf (prefix, sizeof prefix, "%s", self? self->prefix: "/");
    ctlplane_result_t *result = s_apply (prefix, ask, (uint32_t) event->kind);
    int64_t delay = sim_range (1, 8);
    if (strcmp (event->text, "unknown") == 0) {
        //  It took effect; the answer is lost
        uint32_t tag = result->tag;
        ctlplane_op_t op = result->op;
        ctlplane_result_destroy (&result);
        result = s_result_new (tag, op);
        result->rc = BS_ETCD_UNKNOWN;
        snprintf (result->error, sizeof result->error, "timed out; the request may have taken effect");
        delay = self? self->timeout_ms: 1000;
    }
    sim_event_t *answer = sim_event_new (delay, s_on_answer);
    answer->number = event->number;
    s_address (answer, self);
    sim_event_set_data (answer, &result, sizeof result);
    answer->dispose = s_dispose_answer;
    sim_schedule (answer);
    free (ask->value);
}

static void
s_ask (ctlplane_t *self, ask_t *ask, uint32_t tag)
{
    int64_t start = self->busy_until > sim_now? self->busy_until: sim_now;
    bool lost = start < s_store.down_until || sim_chance (s_store.fault_per_mille / 2);
    bool unknown = !lost && ask->op != CTLPLANE_GET_PREFIX && sim_chance (s_store.fault_per_mille / 2);
    if (lost) {
        ctlplane_result_t *result = s_result_new (tag, ask->op);
        result->rc = BS_ETCD_UNREACHABLE;
        snprintf (result->error, sizeof result->error, "etcd could not be reached");
        sim_event_t *answer = sim_event_new (start - sim_now + self->timeout_ms, s_on_answer);
        answer->number = (int64_t) self->serial;
        s_address (answer, self);
        sim_event_set_data (answer, &result, sizeof result);
        answer->dispose = s_dispose_answer;
        sim_schedule (answer);
        self->busy_until = answer->at;
        free (ask->value);
        return;
    }
    sim_event_t *event = sim_event_new (start - sim_now + sim_range (1, 8), s_on_apply);
    event->number = (int64_t) self->serial;
    event->kind = (int) tag;
    snprintf (event->text, sizeof event->text, "%s", unknown? "unknown": "");
    sim_event_set_data (event, ask, sizeof *ask);
    event->dispose = s_dispose_ask;
    sim_schedule (event);
    //  The next request waits for this answer (at most the timeout)
    self->busy_until = event->at + (unknown? self->timeout_ms: 8);
}

static void
s_ask_key (ctlplane_t *self, ctlplane_op_t op, const char *relative, const char *value, int64_t number,
           int64_t lease, uint32_t tag)
{
    ask_t ask = { .op = op, .number = number, .lease = lease };
    snprintf (ask.key, sizeof ask.key, "%s%s", self->prefix, relative? relative: "");
    ask.value = value? bs_strdup (value): NULL;
    s_ask (self, &ask, tag);
}

void ctlplane_get_prefix (ctlplane_t *self, const char *relative, uint32_t tag)
{ s_ask_key (self, CTLPLANE_GET_PREFIX, relative, NULL, 0, 0, tag); }
void ctlplane_put_if (ctlplane_t *self, const char *relative, const char *value, int64_t mod_revision, uint32_t tag)
{ s_ask_key (self, CTLPLANE_PUT_IF, relative, value, mod_revision, 0, tag); }
void ctlplane_grant (ctlplane_t *self, int ttl_seconds, uint32_t tag)
{ s_ask_key (self, CTLPLANE_GRANT, NULL, NULL, ttl_seconds, 0, tag); }
void ctlplane_keepalive (ctlplane_t *self, int64_t lease, uint32_t tag)
{ s_ask_key (self, CTLPLANE_KEEPALIVE, NULL, NULL, 0, lease, tag); }
void ctlplane_campaign (ctlplane_t *self, const char *relative, const char *value, int64_t lease, uint32_t tag)
{ s_ask_key (self, CTLPLANE_CAMPAIGN, relative, value, 0, lease, tag); }
void ctlplane_put_leased (ctlplane_t *self, const char *relative, const char *value, int64_t lease, uint32_t tag)
{ s_ask_key (self, CTLPLANE_PUT_LEASED, relative, value, 0, lease, tag); }
void ctlplane_revoke (ctlplane_t *self, int64_t lease, uint32_t tag)
{ s_ask_key (self, CTLPLANE_REVOKE, NULL, NULL, 0, lease, tag); }

ctlplane_result_t *
ctlplane_recv (ctlplane_t *self)
{
    if (self->ready_count == 0)
        return NULL;
    ctlplane_result_t *result = self->ready [0];
    memmove (self->ready, self->ready + 1, (self->ready_count - 1) * sizeof (ctlplane_result_t *));
    self->ready_count--;
    return result;
}

void
ctlplane_result_destroy (ctlplane_result_t **result_p)
{
    if (!result_p || !*result_p)
        return;
    ctlplane_result_t *result = *result_p;
    for (size_t i = 0; i < result->count; i++) {
        free (result->keys [i]);
        free (result->values [i]);
    }
    free (result->keys);
    free (result->values);
    free (result->mod_revisions);
    free (result);
    *result_p = NULL;
}
