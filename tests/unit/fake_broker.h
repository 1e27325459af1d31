/*  fake_broker - an in-process broker for client tests: a ROUTER on a free
 *  TCP port in a czmq actor that answers every Majordomo client request as
 *  told (ok, not_active, nothing, or dies on the first request, closing its
 *  connections as a killed process would), and remembers the rids it got.
 *
 *  Ownership: fake_broker_new returns an actor the caller destroys with
 *  zactor_destroy; strings returned are the caller's to free.
 */
#ifndef FAKE_BROKER_H_INCLUDED
#define FAKE_BROKER_H_INCLUDED

#include "bs_mdp.h"
#include "bs_msg.h"

#include <czmq.h>
#include <string.h>

typedef enum { FAKE_OK, FAKE_NOT_ACTIVE, FAKE_SILENT, FAKE_DIE } fake_mode_t;

static inline void
fake_hex (const uint8_t *data, size_t size, char *out)
{
    for (size_t i = 0; i < size; i++)
        snprintf (out + 2 * i, 3, "%02x", data [i]);
}

//  The answer of an active broker to request: ok, with what the tools read.
//  Its order id is "o" and the rid in hex, or, in a test that defines
//  FAKE_BROKER_ORDER_ID (orders_id_for), the one an order node would give.
static inline bs_msg_t *
fake_answer (const bs_msg_t *request)
{
    bs_msg_t *reply = bs_msg_new_ok ();
    bs_op_t op = bs_msg_op (request);
    if (bs_msg_has (request, BS_FIELD_item))
        bs_msg_set_int (reply, BS_FIELD_item, bs_msg_int (request, BS_FIELD_item));
    if (op == BS_OP_buy || op == BS_OP_decrement) {
        size_t size;
        const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &size);
        char order_id [2 * BS_RID_SIZE + 2] = "o";
        if (rid && size == BS_RID_SIZE) {
#ifdef FAKE_BROKER_ORDER_ID
            FAKE_BROKER_ORDER_ID (rid, order_id);
#else
            fake_hex (rid, size, order_id + 1);
#endif
        }
        bs_msg_set_str (reply, BS_FIELD_order_id, order_id);
        bs_msg_set_int (reply, BS_FIELD_cost, 10);
    }
    if (op == BS_OP_status) {
        const char *ids [] = { "catalog-1", "order-1" };
        bs_msg_set_list (reply, BS_FIELD_nodes);
        for (int i = 0; i < 2; i++) {
            bs_msg_t *node = bs_msg_new ();
            bs_msg_set_str (node, BS_FIELD_id, ids [i]);
            bs_msg_set_str (node, BS_FIELD_service, i? "order": "catalog");
            bs_msg_set_int (node, BS_FIELD_alive, 1);
            bs_msg_append (reply, BS_FIELD_nodes, &node);
        }
    }
    return reply;
}

static inline void
fake_broker_actor (zsock_t *pipe, void *args)
{
    fake_mode_t mode = (fake_mode_t) (intptr_t) args;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (router, 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zlistx_t *rids = zlistx_new ();
    zlistx_set_destructor (rids, (zlistx_destructor_fn *) zstr_free);
    zsock_signal (pipe, 0);
    while (true) {
        zmq_pollitem_t items [2] = {
            { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
            { router? zsock_resolve (router): NULL, 0, ZMQ_POLLIN, 0 }
        };
        if (zmq_poll (items, router? 2: 1, -1) < 0)
            break;
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM")) {
                zstr_free (&command);
                break;
            }
            if (streq (command, "ENDPOINT"))
                zstr_sendf (pipe, "tcp://127.0.0.1:%d", port);
            else
            if (streq (command, "RIDS")) {
                //  Comma-separated, in the order they came
                char *all = calloc (zlistx_size (rids) + 1, 2 * BS_RID_SIZE + 1);
                char *end = all;
                for (char *rid = zlistx_first (rids); rid; rid = zlistx_next (rids))
                    end += sprintf (end, "%s%s", end == all? "": ",", rid);
                zstr_send (pipe, all);
                free (all);
            }
            else
            if (strncmp (command, "MODE ", 5) == 0) {
                mode = (fake_mode_t) atoi (command + 5);
                zsock_signal (pipe, 0);
            }
            else
            if (streq (command, "CLOSE")) {
                zsock_destroy (&router);
                zsock_signal (pipe, 0);
            }
            zstr_free (&command);
        }
        if (router && (items [1].revents & ZMQ_POLLIN)) {
            zmsg_t *msg = zmsg_recv (router);
            if (!msg)
                continue;
            zframe_t *id = zmsg_pop (msg);
            zframe_t *empty = zmsg_pop (msg);
            char *proto = zmsg_popstr (msg);
            char *service = zmsg_popstr (msg);
            zframe_t *body = zmsg_pop (msg);
            bs_err_t err;
            bs_msg_t *request = body? bs_msg_decode (zframe_data (body), zframe_size (body), &err, NULL, 0): NULL;
            size_t size = 0;
            const uint8_t *rid = request? bs_msg_bin (request, BS_FIELD_rid, &size): NULL;
            if (rid && size == BS_RID_SIZE && proto && streq (proto, BS_MDPC)) {
                char hex [2 * BS_RID_SIZE + 1];
                fake_hex (rid, size, hex);
                zlistx_add_end (rids, strdup (hex));
                bs_msg_t *reply = NULL;
                if (mode == FAKE_OK)
                    reply = fake_answer (request);
                else
                if (mode == FAKE_NOT_ACTIVE)
                    reply = bs_msg_new_error (BS_ERR_not_active, NULL);
                if (reply) {
                    bs_msg_set_bin (reply, BS_FIELD_rid, rid, size);
                    size_t reply_size;
                    uint8_t *data = bs_msg_encode (reply, &reply_size);
                    zmsg_t *out = zmsg_new ();
                    zmsg_append (out, &id);
                    zmsg_addmem (out, "", 0);
                    zmsg_addstr (out, BS_MDPC);
                    zmsg_addstr (out, service);
                    zmsg_addmem (out, data, reply_size);
                    zmsg_send (&out, router);
                    free (data);
                    bs_msg_destroy (&reply);
                }
                if (mode == FAKE_DIE)
                    zsock_destroy (&router);    //  its connections close
            }
            bs_msg_destroy (&request);
            zframe_destroy (&id);
            zframe_destroy (&empty);
            zframe_destroy (&body);
            zstr_free (&proto);
            zstr_free (&service);
            zmsg_destroy (&msg);
        }
    }
    zlistx_destroy (&rids);
    zsock_destroy (&router);
}

static inline zactor_t *
fake_broker_new (fake_mode_t mode)
{
    return zactor_new (fake_broker_actor, (void *) (intptr_t) mode);
}

static inline char *
fake_broker_endpoint (zactor_t *broker)
{
    zstr_send (broker, "ENDPOINT");
    return zstr_recv (broker);
}

//  The rids received so far, as comma-separated hex
static inline char *
fake_broker_rids (zactor_t *broker)
{
    zstr_send (broker, "RIDS");
    return zstr_recv (broker);
}

static inline void
fake_broker_mode (zactor_t *broker, fake_mode_t mode)
{
    zstr_sendf (broker, "MODE %d", (int) mode);
    zsock_wait (broker);
}

//  Closes the broker's socket: its connections drop, as when it is killed
static inline void
fake_broker_close (zactor_t *broker)
{
    zstr_send (broker, "CLOSE");
    zsock_wait (broker);
}

//  "A,B": the endpoints of two fake brokers, as a client's list (freed
//  with zstr_free)
static inline char *
fake_broker_pair (zactor_t *a, zactor_t *b)
{
    char *ea = fake_broker_endpoint (a), *eb = fake_broker_endpoint (b);
    char *list = zsys_sprintf ("%s,%s", ea, eb);
    zstr_free (&ea);
    zstr_free (&eb);
    return list;
}

//  The broker got exactly the rids listed (comma-separated); says what it
//  got when not
static inline bool
fake_broker_got (zactor_t *broker, const char *expected)
{
    char *rids = fake_broker_rids (broker);
    bool same = rids && streq (rids, expected);
    if (!same)
        fprintf (stderr, "  got '%s', expected '%s'\n", rids? rids: "(null)", expected);
    zstr_free (&rids);
    return same;
}

#endif
