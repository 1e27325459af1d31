/*  test_buyer - the order node's asynchronous buys moving between the
 *  brokers of a Binary Star pair: on "not_active", on silence, and when the
 *  broker in use is killed; every resend carries the buy's own rid, and a
 *  buy's waiters never see "not_active".  Fake brokers on TCP play the pair;
 *  a ROUTER plays the order node's own broker link.  */
#include "buyer.h"
#include "mdpworker.h"
#include "orders.h"
//  The fake catalog grants the order id an order node expects
#define FAKE_BROKER_ORDER_ID orders_id_for
#include "fake_broker.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

typedef struct {
    int grants;
    char rids [8][2 * BS_RID_SIZE + 1];
} granted_t;

static void
s_on_grant (void *arg, const uint8_t *rid, const bs_msg_t *decrement, zmq_msg_t *tokens, int count)
{
    granted_t *granted = arg;
    char order_id [ORDERS_ID_SIZE];
    orders_id_for (rid, order_id);
    if (granted->grants < 8 && streq (bs_msg_str (decrement, BS_FIELD_order_id), order_id))
        fake_hex (rid, BS_RID_SIZE, granted->rids [granted->grants++]);
    for (int i = 0; i < count; i++)
        zmq_msg_close (&tokens [i]);
}

//  The order node's side: its broker link (to a ROUTER of ours) and a buyer
typedef struct {
    zsock_t *link_broker;
    mdpworker_t *link;
    buyer_t *buyer;
    granted_t granted;
    zactor_t *a, *b;
} node_t;

static void
s_node_start (node_t *node, fake_mode_t a, fake_mode_t b, int timeout_ms, int attempts)
{
    memset (node, 0, sizeof *node);
    node->link_broker = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (node->link_broker, "tcp://127.0.0.1:*");
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    node->link = mdpworker_new (endpoint, "order", "order-t", 1000, 3, NULL);
    node->a = fake_broker_new (a);
    node->b = fake_broker_new (b);
    char *ea = fake_broker_endpoint (node->a), *eb = fake_broker_endpoint (node->b);
    char *list = zsys_sprintf ("%s,%s", ea, eb);
    node->buyer = buyer_new (list, NULL, node->link, timeout_ms, attempts, s_on_grant, &node->granted);
    zstr_free (&ea);
    zstr_free (&eb);
    zstr_free (&list);
}

static void
s_node_stop (node_t *node)
{
    buyer_destroy (&node->buyer);
    mdpworker_destroy (&node->link);
    zsock_destroy (&node->link_broker);
    zactor_destroy (&node->a);
    zactor_destroy (&node->b);
}

//  Starts a buy of item 666 as a client's request would; its rid in hex
static void
s_buy (node_t *node, char *hex)
{
    bs_msg_t *request = bs_msg_new_request (BS_OP_buy);
    bs_msg_set_int (request, BS_FIELD_item, 666);
    size_t size;
    fake_hex (bs_msg_bin (request, BS_FIELD_rid, &size), BS_RID_SIZE, hex);
    zmq_msg_t token;
    zmq_msg_init_size (&token, 8);
    memset (zmq_msg_data (&token), 7, 8);
    buyer_start (node->buyer, &token, request);
    bs_msg_destroy (&request);
}

//  Runs the buyer as nodes/main.c does until no buy is pending or ms pass
static void
s_run (node_t *node, int ms)
{
    int64_t until = zclock_mono () + ms;
    while (buyer_pending (node->buyer) && zclock_mono () < until) {
        buyer_tick (node->buyer);
        zmq_pollitem_t item = { buyer_socket (node->buyer), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 10) > 0)
            buyer_on_input (node->buyer);
    }
}

//  The error the buy's waiter was answered with, through the link ("" if
//  none came within a second)
static void
s_waiter_answer (node_t *node, char *error, size_t size)
{
    *error = 0;
    zsock_set_rcvtimeo (node->link_broker, 1000);
    zmsg_t *msg;
    while (!*error && (msg = zmsg_recv (node->link_broker))) {
        zframe_t *body = zmsg_last (msg);
        bs_err_t err;
        bs_msg_t *reply = body? bs_msg_decode (zframe_data (body), zframe_size (body), &err, NULL, 0): NULL;
        if (reply && bs_msg_has (reply, BS_FIELD_error))
            snprintf (error, size, "%s", bs_msg_str (reply, BS_FIELD_error));
        bs_msg_destroy (&reply);
        zmsg_destroy (&msg);
    }
}

//  The broker got each of the rids exactly once, in any order (buys under
//  way are resent in the order of a hash table)
static bool
s_got_each (zactor_t *broker, char hex [][2 * BS_RID_SIZE + 1], int count)
{
    char *rids = fake_broker_rids (broker);
    bool good = rids && strlen (rids) == (size_t) count * (2 * BS_RID_SIZE + 1) - 1;
    for (int i = 0; i < count && good; i++) {
        char *at = strstr (rids, hex [i]);
        good = at && !strstr (at + 1, hex [i]);
    }
    if (!good)
        fprintf (stderr, "  got '%s'\n", rids? rids: "(null)");
    zstr_free (&rids);
    return good;
}

//  The backup says not_active: the decrement goes to the other at once
static void
test_not_active (void)
{
    node_t node;
    s_node_start (&node, FAKE_NOT_ACTIVE, FAKE_OK, 5000, 5);
    char hex [2 * BS_RID_SIZE + 1];
    int64_t start = zclock_mono ();
    s_buy (&node, hex);
    s_run (&node, 3000);
    CHECK (node.granted.grants == 1 && streq (node.granted.rids [0], hex));
    CHECK (zclock_mono () - start < 1000);
    CHECK (fake_broker_got (node.a, hex));
    CHECK (fake_broker_got (node.b, hex));
    s_node_stop (&node);
}

//  Silence: when the resend timer fires, every buy under way moves to the
//  other broker, each with its own rid, and each is granted once
static void
test_silent (void)
{
    node_t node;
    s_node_start (&node, FAKE_SILENT, FAKE_OK, 300, 5);
    char hex [3][2 * BS_RID_SIZE + 1];
    for (int i = 0; i < 3; i++)
        s_buy (&node, hex [i]);
    int64_t start = zclock_mono ();
    s_run (&node, 3000);
    int64_t took = zclock_mono () - start;
    CHECK (node.granted.grants == 3);
    CHECK (took >= 250 && took < 1500);
    char all [200];
    snprintf (all, sizeof all, "%s,%s,%s", hex [0], hex [1], hex [2]);
    CHECK (fake_broker_got (node.a, all));
    CHECK (s_got_each (node.b, hex, 3));
    s_node_stop (&node);
}

//  The broker in use is killed with the decrement in hand: the buyer moves
//  on as soon as the connection drops, not after its (long) timer
static void
test_killed (void)
{
    node_t node;
    s_node_start (&node, FAKE_DIE, FAKE_OK, 10000, 5);
    char hex [2 * BS_RID_SIZE + 1];
    int64_t start = zclock_mono ();
    s_buy (&node, hex);
    s_run (&node, 5000);
    CHECK (node.granted.grants == 1);
    CHECK (zclock_mono () - start < 2000);
    CHECK (fake_broker_got (node.a, hex));
    CHECK (fake_broker_got (node.b, hex));
    s_node_stop (&node);
}

//  Both brokers passive until the attempts run out: the waiter is told
//  "unavailable" (retry), never "not_active"
static void
test_no_active_broker (void)
{
    node_t node;
    s_node_start (&node, FAKE_NOT_ACTIVE, FAKE_NOT_ACTIVE, 5000, 2);
    char hex [2 * BS_RID_SIZE + 1];
    int64_t start = zclock_mono ();
    s_buy (&node, hex);
    s_run (&node, 3000);
    int64_t took = zclock_mono () - start;
    CHECK (buyer_pending (node.buyer) == 0 && node.granted.grants == 0);
    CHECK (took >= 100 && took < 2000);        //  paused between rounds
    char error [64];
    s_waiter_answer (&node, error, sizeof error);
    CHECK (streq (error, "unavailable"));
    s_node_stop (&node);
}

int
main (void)
{
    zsys_init ();
    RUN (test_not_active);
    RUN (test_silent);
    RUN (test_killed);
    RUN (test_no_active_broker);
    return DONE ();
}
