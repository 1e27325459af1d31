/*  sim_client - clients that write to the catalog and buy through the
 *  broker, retrying with the same request id on a timeout as bs_client
 *  does, and the ledger of every write they made  */
#include "sim_cluster.h"
#include "bs_alloc.h"
#include "bs_msg.h"

#include <string.h>

#define CLIENT_TIMEOUT_MS 1000

typedef struct {
    bool busy;
    int64_t serial;             //  of the message in flight (a reply to an older one is late)
    size_t write;               //  ledger index
    uint8_t *body;
    size_t size;
    int attempts;
} client_t;

static client_t s_clients [SIM_PROCS];
static sim_write_t *s_ledger;
static size_t s_ledger_size, s_ledger_cap;
static int64_t s_faults_until;
//  Copies sold (acknowledged), restocked (asked: it may take effect
//  unacknowledged) and the largest first stock asked for (one add_book
//  of an item succeeds)
static int64_t s_sold [SIM_ITEMS + 1], s_restocked [SIM_ITEMS + 1], s_first_stock [SIM_ITEMS + 1];
static bool s_probe_acked;
static int s_setup;          //  books the first client added
static size_t s_acked, s_buys_acked;

size_t sim_ledger_size (void) { return s_ledger_size; }
sim_write_t *sim_ledger_at (size_t index) { return &s_ledger [index]; }
size_t sim_clients_acked (void) { return s_acked; }
size_t sim_clients_buys_acked (void) { return s_buys_acked; }
bool sim_probe_acked (void) { return s_probe_acked; }

//  Request ids: "sim!" and the ledger index, so a rid finds its write
sim_write_t *
sim_ledger_find (const uint8_t *rid)
{
    if (memcmp (rid, "sim!", 4) != 0)
        return NULL;
    uint64_t index;
    memcpy (&index, rid + 8, sizeof index);
    return index < s_ledger_size? &s_ledger [index]: NULL;
}

void
sim_clients_reset (void)
{
    for (int i = 0; i < SIM_PROCS; i++)
        free (s_clients [i].body);
    memset (s_clients, 0, sizeof s_clients);
    free (s_ledger);
    s_ledger = NULL;
    s_ledger_size = s_ledger_cap = 0;
    memset (s_sold, 0, sizeof s_sold);
    memset (s_restocked, 0, sizeof s_restocked);
    memset (s_first_stock, 0, sizeof s_first_stock);
    s_probe_acked = false;
    s_acked = 0;
    s_buys_acked = 0;
}

static void s_on_timer (sim_event_t *event);

static void
s_transmit (int client)
{
    client_t *c = &s_clients [client];
    c->serial++;
    c->attempts++;
    //  A buy goes to the client's usual order node, sometimes (a retry on
    //  another broker connection, a load balancer) to the other
    int order_node = -1;
    if (s_ledger [c->write].op == BS_OP_buy) {
        order_node = SIM_NODES + client % SIM_ORDERS;
        if (sim_chance (300))
            order_node = SIM_NODES + (client + 1) % SIM_ORDERS;
    }
    sim_broker_request_from (client, c->serial, order_node, c->body, c->size);
    sim_event_t *timer = sim_event_new (CLIENT_TIMEOUT_MS, s_on_timer);
    timer->to = client;
    timer->number = c->serial;
    sim_schedule (timer);
}

//  A new write: what it is, its rid, into the ledger, out
static void
s_write (int client, bs_op_t op, int64_t item, int64_t amount)
{
    if (s_ledger_size == s_ledger_cap) {
        s_ledger_cap = s_ledger_cap? s_ledger_cap * 2: 256;
        s_ledger = bs_realloc (s_ledger, s_ledger_cap, sizeof (sim_write_t));
    }
    uint64_t index = s_ledger_size++;
    sim_write_t *w = &s_ledger [index];
    memset (w, 0, sizeof *w);
    memcpy (w->rid, "sim!", 4);
    w->rid [4] = (uint8_t) client;
    memcpy (w->rid + 8, &index, sizeof index);
    w->op = op;
    w->item = item;
    w->amount = amount;
    bs_msg_t *request = bs_msg_new ();
    bs_msg_set_str (request, BS_FIELD_op, bs_op_name (op));
    bs_msg_set_bin (request, BS_FIELD_rid, w->rid, sizeof w->rid);
    bs_msg_set_int (request, BS_FIELD_item, item);
    if (op == BS_OP_set_price)
        bs_msg_set_int (request, BS_FIELD_cost, amount);
    if (op == BS_OP_restock) {
        bs_msg_set_int (request, BS_FIELD_count, amount);
        s_restocked [item] += amount;
    }
    if (op == BS_OP_add_book) {
        char title [32];
        snprintf (title, sizeof title, "Book %lld", (long long) item);
        bs_msg_set_str (request, BS_FIELD_title, title);
        bs_msg_set_str (request, BS_FIELD_topic, item % 2? "systems": "fiction");
        bs_msg_set_int (request, BS_FIELD_cost, 1000 + item);
        bs_msg_set_int (request, BS_FIELD_stock, amount);
        if (amount > s_first_stock [item])
            s_first_stock [item] = amount;
    }
    client_t *c = &s_clients [client];
    free (c->body);
    c->body = bs_msg_encode (request, &c->size);
    bs_msg_destroy (&request);
    c->busy = true;
    c->write = index;
    c->attempts = 0;
    sim_trace ("%s sends %s item %lld (%lld) rid #%llu", sim_proc_name (client), bs_op_name (op), (long long) item,
               (long long) amount, (unsigned long long) index);
    s_transmit (client);
}

//  The next write of a client, while faults last (and a little after)
static void
s_next (int client)
{
    s_clients [client].busy = false;
    if (client == SIM_PROBE || sim_now >= s_faults_until)
        return;
    if (client == SIM_BROKER + 1 && s_setup < SIM_ITEMS) {
        s_setup++;
        s_write (client, BS_OP_add_book, s_setup, 5);
        return;
    }
    int64_t item = sim_range (1, SIM_ITEMS);
    int dice = (int) sim_range (0, 99);
    if (dice < 20 || (dice < 45 && sim_config.catalog_only))
        s_write (client, BS_OP_decrement, item, 1);
    else
    if (dice < 45)
        s_write (client, BS_OP_buy, item, 1);
    else
    if (dice < 65)
        s_write (client, BS_OP_restock, item, sim_range (1, 3));
    else
    if (dice < 90)
        s_write (client, BS_OP_set_price, item, sim_range (1, 5000));
    else
        s_write (client, BS_OP_add_book, item, sim_range (1, 6));
}

static void
s_on_think (sim_event_t *event)
{
    s_next (event->to);
}

static void
s_think (int client)
{
    s_clients [client].busy = false;
    sim_event_t *event = sim_event_new (sim_range (5, 150), s_on_think);
    event->to = client;
    sim_schedule (event);
}

static void
s_on_timer (sim_event_t *event)
{
    client_t *c = &s_clients [event->to];
    if (!c->busy || event->number != c->serial)
        return;
    //  No answer: the same request again, same rid
    s_transmit (event->to);
}

static void
s_on_probe (sim_event_t *event)
{
    (void) event;
    sim_probe_send ();
}

void
sim_client_on_reply (sim_event_t *event)
{
    int client = event->to;
    client_t *c = &s_clients [client];
    if (!c->busy || event->number != c->serial)
        return;     //  late: a reply to an attempt given up on
    bs_err_t err;
    bs_msg_t *reply = bs_msg_decode (event->data, event->size, &err, NULL, 0);
    if (!reply) {
        sim_violation ("well_formed", "%s got a reply it cannot decode", sim_proc_name (client));
        return;
    }
    sim_write_t *w = &s_ledger [c->write];
    bool ok = bs_msg_int (reply, BS_FIELD_ok);
    const char *error = bs_msg_str (reply, BS_FIELD_error);
    sim_trace ("%s got %s for rid #%zu", sim_proc_name (client), ok? "ok": error, c->write);
    if (!ok && (strcmp (error, "unavailable") == 0 || strcmp (error, "overloaded") == 0
             || strcmp (error, "storage") == 0)) {
        //  Nothing is known to have happened: again later, same rid
        bs_msg_destroy (&reply);
        sim_event_t *retry = sim_event_new (sim_range (20, 200), s_on_timer);
        retry->to = client;
        retry->number = c->serial;
        sim_schedule (retry);
        return;
    }
    if (!ok && client == SIM_PROBE && strcmp (error, "unknown_item") == 0) {
        //  The primary answered, but the shelves are not stocked yet (the
        //  first client's add_book of item 1 still waits for its answer,
        //  as when no primary could be elected while faults lasted): a new
        //  probe later, until one is acknowledged
        bs_msg_destroy (&reply);
        c->busy = false;
        sim_event_t *again = sim_event_new (sim_range (20, 200), s_on_probe);
        again->to = client;
        sim_schedule (again);
        return;
    }
    if (ok) {
        w->acked = true;
        s_acked++;
        s_buys_acked += w->op == BS_OP_buy;
        if (client == SIM_PROBE)
            s_probe_acked = true;
        if (w->op == BS_OP_decrement || w->op == BS_OP_buy) {
            s_sold [w->item]++;
            int64_t supply = s_first_stock [w->item] + s_restocked [w->item];
            if (s_sold [w->item] > supply)
                sim_violation ("no_oversell", "%lld copies of item %lld acknowledged sold, at most %lld ever supplied",
                               (long long) s_sold [w->item], (long long) w->item, (long long) supply);
            if (w->op == BS_OP_decrement && bs_msg_int (reply, BS_FIELD_stock) < 0)
                sim_violation ("no_oversell", "a buy of item %lld left its stock at %lld", (long long) w->item,
                               (long long) bs_msg_int (reply, BS_FIELD_stock));
        }
        sim_check_acked (c->write);
    }
    bs_msg_destroy (&reply);
    s_think (client);
}

void
sim_clients_start (int64_t faults_until)
{
    s_faults_until = faults_until;
    for (int client = SIM_BROKER + 1; client < SIM_PROBE; client++) {
        sim_procs [client].up = true;
        sim_procs [client].incarnation = 1;
    }
    sim_procs [SIM_PROBE].up = true;
    sim_procs [SIM_PROBE].incarnation = 1;
    //  The first client stocks the shelves; the others start a little later
    s_setup = 0;
    s_next (SIM_BROKER + 1);
    for (int client = SIM_BROKER + 2; client < SIM_PROBE; client++) {
        sim_event_t *event = sim_event_new (sim_range (200, 600), s_on_think);
        event->to = client;
        sim_schedule (event);
    }
}

void
sim_probe_send (void)
{
    s_write (SIM_PROBE, BS_OP_set_price, 1, 4242);
}

bool
sim_clients_idle (void)
{
    for (int i = 0; i < SIM_PROCS; i++)
        if (s_clients [i].busy)
            return false;
    return true;
}
