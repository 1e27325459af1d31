/*  bookstore-node - a catalog or order replica  */
#include "bs_msg.h"
#include "bs_settings.h"
#include "buyer.h"
#include "catalog.h"
#include "mdpworker.h"
#include "orders.h"
#include "store.h"

#include <czmq.h>
#include <string.h>

static const bs_setting_t s_table [] = {
    { "service",         "",          "catalog or order" },
    { "id",              "",          "node id, unique in the cluster (default <service>-1)" },
    { "data",            "",          "data directory (default data/<id>)" },
    { "broker",          "tcp://127.0.0.1:5556", "the broker's node endpoint" },
    { "broker-clients",  "tcp://127.0.0.1:5555", "the broker's client endpoint (order nodes reach the catalog there)" },
    { "heartbeat-ms",    "250",       "heartbeat interval in milliseconds" },
    { "liveness",        "3",         "heartbeats the broker may miss before the node reconnects" },
    { "map-size-mb",     "1024",      "LMDB map size in MiB" },
    { "seed",            "",          "initial catalog file, loaded when the catalog is empty" },
    { "restock-period",  "10",        "seconds between restocks of sold-out books (0: never)" },
    { "restock-amount",  "10",        "copies added to a sold-out book" },
    { "catalog-timeout-ms", "1500",   "order node: how long to wait for the catalog before resending" },
    { "catalog-attempts", "3",        "order node: how many times to ask the catalog" },
    { NULL, NULL, NULL }
};

typedef struct {
    const char *service;
    const char *id;
    mdpworker_t *link;
    store_t *store;
    catalog_t *catalog;         //  catalog nodes
    orders_t *orders;           //  order nodes
    buyer_t *buyer;             //  order nodes
} node_t;

static void
s_reply (node_t *self, zmq_msg_t *token, bs_msg_t *reply, const bs_msg_t *request)
{
    if (request) {
        size_t rid_size;
        const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
        if (rid)
            bs_msg_set_bin (reply, BS_FIELD_rid, rid, rid_size);
    }
    size_t size;
    uint8_t *data = bs_msg_encode (reply, &size);
    mdpworker_reply (self->link, token, data, size);
    free (data);
}

static void
s_handle (node_t *self, zmq_msg_t *token, zmq_msg_t *body)
{
    char reason [160];
    bs_err_t err;
    bs_msg_t *request = bs_msg_decode (zmq_msg_data (body), zmq_msg_size (body), &err, reason, sizeof reason);
    if (request)
        err = bs_msg_validate_request (request, reason, sizeof reason);
    bs_op_t op = request? bs_msg_op (request): BS_OP_COUNT;
    if (err == BS_OK && strcmp (bs_op_service (op), self->service) != 0) {
        err = BS_ERR_unknown_op;
        snprintf (reason, sizeof reason, "the %s service does not execute '%s'", self->service, bs_op_name (op));
    }
    bs_msg_t *reply = NULL;
    if (err != BS_OK)
        reply = bs_msg_new_error (err, reason);
    else
    if (self->catalog)
        reply = catalog_handle (self->catalog, request);
    else
    if (op == BS_OP_orders)
        reply = orders_list (self->orders, bs_msg_has (request, BS_FIELD_item)? bs_msg_int (request, BS_FIELD_item): 0);
    else {
        size_t rid_size;
        const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
        reply = orders_find (self->orders, rid, rid_size);
        if (!reply) {
            buyer_start (self->buyer, token, request);      //  answers later
            bs_msg_destroy (&request);
            return;
        }
    }
    s_reply (self, token, reply, request);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    zmq_msg_close (token);
}

static void
s_run (node_t *self, int64_t restock_period_ms, int64_t restock_amount)
{
    int64_t next_restock = restock_period_ms > 0? zclock_mono () + restock_period_ms: INT64_MAX;
    while (!zsys_interrupted) {
        int64_t wait = mdpworker_tick (self->link);
        if (self->buyer)
            buyer_tick (self->buyer);
        int64_t now = zclock_mono ();
        if (now >= next_restock) {
            catalog_restock_sold_out (self->catalog, restock_amount);
            next_restock = now + restock_period_ms;
        }
        if (next_restock - now < wait)
            wait = next_restock - now;
        if (self->buyer && buyer_pending (self->buyer) && wait > 50)
            wait = 50;
        zmq_pollitem_t items [2] = {
            { mdpworker_socket (self->link), 0, ZMQ_POLLIN, 0 },
            { self->buyer? buyer_socket (self->buyer): NULL, 0, ZMQ_POLLIN, 0 },
        };
        int rc = zmq_poll (items, self->buyer? 2: 1, (long) (wait < 0? 0: wait));
        if (rc < 0)
            break;
        if (items [0].revents & ZMQ_POLLIN) {
            zmq_msg_t token, body;
            if (mdpworker_recv (self->link, &token, &body) == 0) {
                s_handle (self, &token, &body);
                zmq_msg_close (&body);
            }
        }
        if (self->buyer && (items [1].revents & ZMQ_POLLIN))
            buyer_on_input (self->buyer);
    }
}

int
main (int argc, char **argv)
{
    bs_settings_t *settings = bs_settings_new ("node", s_table, argc, argv);
    if (!settings)
        return 2;
    if (bs_settings_help_shown (settings)) {
        bs_settings_destroy (&settings);
        return 0;
    }
    int rc = 2;
    node_t node = { .service = bs_settings_get (settings, "service") };
    int64_t heartbeat, liveness, map_mb, restock_period, restock_amount, timeout, attempts;
    if (strcmp (node.service, "catalog") != 0 && strcmp (node.service, "order") != 0) {
        fprintf (stderr, "bookstore-node: --service must be catalog or order\n");
        goto done;
    }
    if (!bs_settings_int (settings, "heartbeat-ms", &heartbeat)
    ||  !bs_settings_int (settings, "liveness", &liveness)
    ||  !bs_settings_int (settings, "map-size-mb", &map_mb)
    ||  !bs_settings_int (settings, "restock-period", &restock_period)
    ||  !bs_settings_int (settings, "restock-amount", &restock_amount)
    ||  !bs_settings_int (settings, "catalog-timeout-ms", &timeout)
    ||  !bs_settings_int (settings, "catalog-attempts", &attempts))
        goto done;
    if (heartbeat < 10 || liveness < 1 || map_mb < 1 || restock_period < 0
    ||  restock_amount < 1 || restock_amount > 1000000 || timeout < 1 || attempts < 1) {
        fprintf (stderr, "bookstore-node: a numeric setting is out of range\n");
        goto done;
    }
    char id [65], data [512];
    if (*bs_settings_get (settings, "id"))
        snprintf (id, sizeof id, "%s", bs_settings_get (settings, "id"));
    else
        snprintf (id, sizeof id, "%s-1", node.service);
    if (*bs_settings_get (settings, "data"))
        snprintf (data, sizeof data, "%s", bs_settings_get (settings, "data"));
    else
        snprintf (data, sizeof data, "data/%s", id);
    node.id = id;
    zsys_set_logident (id);

    rc = 1;
    node.store = store_new (data, (size_t) map_mb << 20);
    if (!node.store)
        goto done;
    if (strcmp (node.service, "catalog") == 0) {
        node.catalog = catalog_new (node.store);
        if (!node.catalog)
            goto done;
        const char *seed = bs_settings_get (settings, "seed");
        if (*seed) {
            int loaded = catalog_seed (node.catalog, seed);
            if (loaded < 0)
                goto done;
            if (loaded > 0)
                zsys_info ("%s: loaded %d books from %s", id, loaded, seed);
        }
    }
    else {
        node.orders = orders_new (node.store, id);
        if (!node.orders)
            goto done;
    }
    node.link = mdpworker_new (bs_settings_get (settings, "broker"), node.service, id,
                               (int) heartbeat, (int) liveness);
    if (node.orders) {
        node.buyer = buyer_new (bs_settings_get (settings, "broker-clients"), node.orders,
                                node.link, (int) timeout, (int) attempts);
        if (!node.buyer)
            goto done;
    }
    zsys_info ("%s: %s node serving from %s", id, node.service, data);
    s_run (&node, node.catalog? restock_period * 1000: 0, restock_amount);
    mdpworker_disconnect (node.link);
    zsys_info ("%s: stopping", id);
    rc = 0;
done:
    buyer_destroy (&node.buyer);
    mdpworker_destroy (&node.link);
    catalog_destroy (&node.catalog);
    orders_destroy (&node.orders);
    store_destroy (&node.store);
    bs_settings_destroy (&settings);
    return rc;
}
