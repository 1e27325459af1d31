/*  sim_broker - the broker's control in the simulator: the real workers
 *  registry and controller over sim_ctlplane, routing clients' writes (and
 *  order nodes' decrements) to the catalog primary and clients' buys to an
 *  order node, as broker/broker.c does  */
#include "sim_cluster.h"
#include "sim_ctlplane.h"
#include "bs_alloc.h"
#include "bs_msg.h"
#include "controller.h"
#include "workers.h"

#include <string.h>

#define REQUESTS_MAX 64
#define TICK_MS 50

typedef struct {
    bool used;
    int64_t id;                 //  the token the node echoes
    int client;                 //  a client, or an order node's buyer
    bool order;                 //  a buy (the order service)
    int order_node;             //  the order node it would rather go to (-1: any)
    int64_t serial;             //  the client's message
    uint8_t *body;
    size_t size;
    uint64_t worker_serial;     //  the registration it went to (0: waiting)
    int64_t deadline;
} request_t;

static struct {
    workers_t *workers;
    controller_t *controller;
    ctlplane_t *store;
    request_t requests [REQUESTS_MAX];
    int64_t next_id;
    int64_t next_assign;
} B;

enum { IN_STATUS, IN_REPLY, IN_REQUEST, IN_TICK };

bool sim_broker_up (void) { return B.workers != NULL; }

static void s_control (bool force);

//  A node's identity: its id and which start of its process (a restarted
//  node comes from a new connection)
static size_t
s_identity (int node, uint64_t incarnation, char *identity, size_t size)
{
    return (size_t) snprintf (identity, size, "%s#%llu", sim_proc_name (node), (unsigned long long) incarnation);
}

static int
s_node_of (worker_t *w, uint64_t *incarnation_p)
{
    for (int i = 0; i < SIM_ALL_NODES; i++)
        if (strcmp (w->id, sim_proc_name (i)) == 0) {
            const char *hash = memchr (w->identity, '#', w->identity_size);
            *incarnation_p = hash? strtoull (hash + 1, NULL, 10): 0;
            return i;
        }
    return -1;
}

//  An order node's buyer has a connection of its own to the broker, apart
//  from its worker link: the simulator gives it the sync channel
static void
s_to_client (int client, int64_t serial, const void *data, size_t size)
{
    bool buyer = client < SIM_ALL_NODES;
    sim_event_t *event = sim_event_new (0, buyer? sim_node_on_input: sim_client_on_reply);
    sim_event_set_data (event, data, size);
    event->number = serial;
    event->kind = SIM_NODE_DECREMENT_REPLY;
    sim_send (SIM_BROKER, client, buyer? SIM_CHANNEL_SYNC: SIM_CHANNEL_BROKER, event);
}

static void
s_refuse (request_t *req, bs_err_t err, const char *why)
{
    bs_msg_t *reply = bs_msg_new_error (err, why);
    size_t size;
    uint8_t *data = bs_msg_encode (reply, &size);
    s_to_client (req->client, req->serial, data, size);
    free (data);
    bs_msg_destroy (&reply);
    free (req->body);
    memset (req, 0, sizeof *req);
}

//  --------------------------------------------------------------------------
//  Nodes

static void
s_to_node (worker_t *w, int kind, int64_t number, const void *data, size_t size)
{
    uint64_t incarnation;
    int node = s_node_of (w, &incarnation);
    if (node < 0 || incarnation != sim_procs [node].incarnation)
        return;     //  that connection is gone
    sim_event_t *event = sim_event_new (0, sim_node_on_input);
    event->kind = kind;
    event->number = number;
    sim_event_set_data (event, data, size);
    sim_send (SIM_BROKER, node, SIM_CHANNEL_BROKER, event);
}

//  A buy goes to a live order node: the one the client named if it can,
//  else the first registered
static worker_t *
s_order_worker (int order_node)
{
    worker_t *any = NULL;
    for (size_t i = 0; i < workers_size (B.workers); i++) {
        worker_t *w = workers_at (B.workers, i);
        if (!w->alive || strcmp (w->service, "order") != 0)
            continue;
        if (order_node >= 0 && strcmp (w->id, sim_proc_name (order_node)) == 0)
            return w;
        if (!any)
            any = w;
    }
    return any;
}

static void
s_dispatch (request_t *req)
{
    worker_t *primary = req->order? s_order_worker (req->order_node):
                        controller_catalog_primary (B.controller, B.workers);
    if (!primary)
        return;         //  waits for one, until its deadline
    req->worker_serial = primary->serial;
    primary->outstanding++;
    s_to_node (primary, SIM_NODE_REQUEST, req->id, req->body, req->size);
}

static void
s_drain (void)
{
    for (int i = 0; i < REQUESTS_MAX; i++)
        if (B.requests [i].used && !B.requests [i].worker_serial)
            s_dispatch (&B.requests [i]);
}

//  A dead worker's requests go to whoever is primary now (same body, so
//  the same rid)
static void
s_redispatch_from (worker_t *w)
{
    for (int i = 0; i < REQUESTS_MAX; i++) {
        request_t *req = &B.requests [i];
        if (req->used && req->worker_serial == w->serial) {
            req->worker_serial = 0;
            req->deadline = sim_now + SIM_REQUEST_TIMEOUT_MS;
            s_dispatch (req);
        }
    }
    w->outstanding = 0;
}

static void
s_send_assignments (void)
{
    static const char *services [] = { "catalog", "order" };
    for (int k = 0; k < 2; k++) {
        bs_msg_t *assign = controller_assign (B.controller, services [k]);
        size_t size;
        uint8_t *data = bs_msg_encode (assign, &size);
        for (size_t i = 0; i < workers_size (B.workers); i++) {
            worker_t *w = workers_at (B.workers, i);
            if (w->alive && strcmp (w->service, services [k]) == 0)
                s_to_node (w, SIM_NODE_ASSIGN, 0, data, size);
        }
        free (data);
        bs_msg_destroy (&assign);
    }
    B.next_assign = sim_now + 1000;
}

static void
s_control (bool force)
{
    bool changed = controller_update (B.controller, B.workers);
    if (changed || force) {
        worker_t *primary = controller_catalog_primary (B.controller, B.workers);
        sim_trace ("broker: map changed: catalog epoch %llu, primary %s",
                   (unsigned long long) controller_epoch (B.controller, CATALOG_PARTITION),
                   primary? primary->id: "none");
        s_send_assignments ();
        s_drain ();
    }
}

static void
s_on_status (int node, uint64_t incarnation, const void *data, size_t size)
{
    char identity [64];
    size_t identity_size = s_identity (node, incarnation, identity, sizeof identity);
    const char *id = sim_proc_name (node);
    worker_t *w = workers_find (B.workers, identity, identity_size);
    bool joined = false;
    if (!w || !w->alive) {
        //  As a READY: the node's older connection is displaced, dead
        //  records of its id forgotten (broker.c s_node_ready)
        worker_t *holder = workers_id_holder (B.workers, id, identity, identity_size);
        if (holder) {
            workers_displace (holder, sim_now);
            s_redispatch_from (holder);
        }
        for (size_t i = 0; i < workers_size (B.workers); i++) {
            worker_t *old = workers_at (B.workers, i);
            if (!old->alive && old != w && strcmp (old->id, id) == 0)
                workers_displace (old, sim_now);
        }
        w = workers_register (B.workers, identity, identity_size, node < SIM_NODES? "catalog": "order", id);
        w->registered = sim_now;
        joined = true;
    }
    w->last_seen = sim_now;
    w->expiry = sim_now + SIM_HEARTBEAT_MS * SIM_LIVENESS;
    if (!workers_apply_status (w, data, size))
        sim_violation ("well_formed", "the broker refused %s's status", id);
    s_control (joined);
}

static void
s_on_reply (int node, uint64_t incarnation, int64_t token, const void *data, size_t size)
{
    char identity [64];
    size_t identity_size = s_identity (node, incarnation, identity, sizeof identity);
    worker_t *w = workers_find (B.workers, identity, identity_size);
    for (int i = 0; i < REQUESTS_MAX; i++) {
        request_t *req = &B.requests [i];
        if (!req->used || req->id != token)
            continue;
        //  Only from the registration it was sent to
        if (!w || req->worker_serial != w->serial)
            return;
        if (w->outstanding > 0)
            w->outstanding--;
        s_to_client (req->client, req->serial, data, size);
        free (req->body);
        memset (req, 0, sizeof *req);
        return;
    }
}

static void
s_on_request (int client, int64_t serial, int order_node, const void *data, size_t size)
{
    bs_err_t err;
    bs_msg_t *request = bs_msg_decode (data, size, &err, NULL, 0);
    bool order = request && strcmp (bs_op_service (bs_msg_op (request)), "order") == 0;
    bs_msg_destroy (&request);
    for (int i = 0; i < REQUESTS_MAX; i++) {
        request_t *req = &B.requests [i];
        if (req->used)
            continue;
        req->used = true;
        req->id = ++B.next_id;
        req->client = client;
        req->serial = serial;
        req->order = order;
        req->order_node = order_node;
        req->body = bs_alloc (1, size);
        memcpy (req->body, data, size);
        req->size = size;
        req->deadline = sim_now + SIM_REQUEST_TIMEOUT_MS;
        s_dispatch (req);
        return;
    }
    request_t overflow = { .client = client, .serial = serial };
    s_refuse (&overflow, BS_ERR_overloaded, NULL);
}

static void
s_tick (void)
{
    for (size_t i = 0; i < workers_size (B.workers); i++) {
        worker_t *w = workers_at (B.workers, i);
        if (w->alive && w->expiry <= sim_now) {
            sim_trace ("broker: %s is dead (silent)", w->id);
            workers_declare_dead (w, sim_now);
            s_redispatch_from (w);
        }
    }
    workers_forget (B.workers, sim_now);
    for (int i = 0; i < REQUESTS_MAX; i++)
        if (B.requests [i].used && B.requests [i].deadline <= sim_now)
            s_refuse (&B.requests [i], BS_ERR_unavailable, NULL);
    s_control (sim_now >= B.next_assign);
}

//  --------------------------------------------------------------------------
//  Events

static void
s_on_input (sim_event_t *event)
{
    if (!B.workers)
        return;
    switch (event->kind) {
        case IN_STATUS:
            s_on_status (event->from, (uint64_t) event->number, event->data, event->size);
            break;
        case IN_REPLY: {
            int64_t token;
            memcpy (&token, event->data, sizeof token);
            s_on_reply (event->from, (uint64_t) atoll (event->text), token, event->data + sizeof token,
                        event->size - sizeof token);
            break;
        }
        case IN_REQUEST:
            s_on_request (event->from, event->number, atoi (event->text), event->data, event->size);
            break;
        case IN_TICK: {
            //  As broker.c's loop, silence is judged after reading what
            //  waits: a tick that came late (the broker was paused) goes
            //  behind the messages that waited with it, made before it
            bool late = sim_now > event->number;
            if (!late)
                s_tick ();
            sim_event_t *next = sim_event_new (late? 0: TICK_MS, s_on_input);
            next->kind = IN_TICK;
            next->number = sim_now + (late? 0: TICK_MS);
            next->to = SIM_BROKER;
            next->incarnation = sim_procs [SIM_BROKER].incarnation;
            sim_schedule (next);
            break;
        }
    }
}

void
sim_broker_status_from (int node, const void *data, size_t size)
{
    sim_event_t *event = sim_event_new (0, s_on_input);
    event->kind = IN_STATUS;
    event->number = (int64_t) sim_procs [node].incarnation;
    sim_event_set_data (event, data, size);
    sim_send (node, SIM_BROKER, SIM_CHANNEL_BROKER, event);
}

void
sim_broker_reply_from (int node, int64_t token, const void *data, size_t size)
{
    sim_event_t *event = sim_event_new (0, s_on_input);
    event->kind = IN_REPLY;
    snprintf (event->text, sizeof event->text, "%llu", (unsigned long long) sim_procs [node].incarnation);
    uint8_t *buffer = bs_alloc (1, sizeof token + size);
    memcpy (buffer, &token, sizeof token);
    memcpy (buffer + sizeof token, data, size);
    event->data = buffer;
    event->size = sizeof token + size;
    sim_send (node, SIM_BROKER, SIM_CHANNEL_BROKER, event);
}

void
sim_broker_request_from (int from, int64_t serial, int order_node, const void *data, size_t size)
{
    sim_event_t *event = sim_event_new (0, s_on_input);
    event->kind = IN_REQUEST;
    event->number = serial;
    snprintf (event->text, sizeof event->text, "%d", order_node);
    sim_event_set_data (event, data, size);
    sim_send (from, SIM_BROKER, from < SIM_ALL_NODES? SIM_CHANNEL_SYNC: SIM_CHANNEL_BROKER, event);
}

static void
s_on_store (void *arg, ctlplane_t *store)
{
    (void) arg;
    if (!B.workers || store != B.store)
        return;
    ctlplane_result_t *result;
    while ((result = ctlplane_recv (store))) {
        bool changed = controller_on_store (B.controller, result);
        ctlplane_result_destroy (&result);
        if (changed)
            s_control (false);
    }
}

const char *
sim_broker_primary (void)
{
    worker_t *w = B.workers? controller_catalog_primary (B.controller, B.workers): NULL;
    return w? w->id: "";
}

void
sim_broker_start (void)
{
    sim_proc_t *proc = &sim_procs [SIM_BROKER];
    proc->up = true;
    proc->incarnation++;
    proc->paused_until = 0;
    B.workers = workers_new ();
    B.controller = controller_new (SIM_HEARTBEAT_MS * (SIM_LIVENESS + 1));
    B.store = ctlplane_new ("sim://etcd", "sim", 1000);
    sim_ctlplane_notify (B.store, s_on_store, NULL, SIM_BROKER);
    controller_use_store (B.controller, B.store);
    B.next_assign = sim_now + 1000;
    sim_trace ("broker starts");
    sim_event_t *tick = sim_event_new (TICK_MS, s_on_input);
    tick->kind = IN_TICK;
    tick->number = sim_now + TICK_MS;      //  when it is due
    tick->to = SIM_BROKER;
    tick->incarnation = proc->incarnation;
    sim_schedule (tick);
}

void
sim_broker_crash (void)
{
    if (!B.workers)
        return;
    sim_trace ("broker crashes");
    for (int i = 0; i < REQUESTS_MAX; i++)
        free (B.requests [i].body);
    controller_destroy (&B.controller);
    workers_destroy (&B.workers);
    ctlplane_destroy (&B.store);
    memset (B.requests, 0, sizeof B.requests);
    sim_procs [SIM_BROKER].up = false;
}
