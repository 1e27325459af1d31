/*  test_mdpworker - the node's broker link moving between the brokers of a
 *  Binary Star pair: on DISCONNECT + "backup", on silence, and backing off
 *  when every broker says it is the backup; against in-process ROUTERs
 *  playing the brokers.  */
#include "bs_mdp.h"
#include "invalidator.h"
#include "mdpworker.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

#define HEARTBEAT 20
#define LIVENESS 3
#define WINDOW (HEARTBEAT * LIVENESS)

//  One command a broker received: who sent it and which
typedef struct {
    char id [32];
    int command;
} got_t;

//  The routing id the broker gave the node's connection, per broker socket
//  (nodes set none: the broker's ROUTER chooses one per connection)
static struct {
    zsock_t *broker;
    uint8_t id [256];
    size_t size;
} s_ids [4];

static void
s_remember_id (zsock_t *broker, zframe_t *id)
{
    int slot = 0;
    while (slot < 3 && s_ids [slot].broker && s_ids [slot].broker != broker)
        slot++;
    s_ids [slot].broker = broker;
    s_ids [slot].size = zframe_size (id) < sizeof s_ids [slot].id? zframe_size (id): sizeof s_ids [slot].id;
    memcpy (s_ids [slot].id, zframe_data (id), s_ids [slot].size);
}

//  Adds the routing id of the node's connection at broker to msg
static void
s_add_node_id (zmsg_t *msg, zsock_t *broker)
{
    int slot = 0;
    while (slot < 3 && s_ids [slot].broker != broker)
        slot++;
    zmsg_addmem (msg, s_ids [slot].id, s_ids [slot].broker == broker? s_ids [slot].size: 0);
}

//  Runs the worker's loop for up to ms, as nodes/main.c does, and returns
//  as soon as the broker socket has a message; then reads it into got.
//  False when nothing came.
static bool
s_pump (mdpworker_t *worker, zsock_t *broker, int ms, got_t *got)
{
    int64_t until = zclock_mono () + ms;
    while (zclock_mono () < until) {
        int64_t wait = mdpworker_tick (worker);
        if (wait > 5)
            wait = 5;
        zmq_pollitem_t items [2] = {
            { mdpworker_socket (worker), 0, ZMQ_POLLIN, 0 },
            { broker? zsock_resolve (broker): NULL, 0, ZMQ_POLLIN, 0 },
        };
        zmq_poll (items, broker? 2: 1, (long) wait);
        if (items [0].revents & ZMQ_POLLIN) {
            zmq_msg_t token, body;
            int kind = mdpworker_recv (worker, &token, &body);
            if (kind == MDPWORKER_REQUEST) {
                mdpworker_reply (worker, &token, zmq_msg_data (&body), zmq_msg_size (&body));
                zmq_msg_close (&token);
                zmq_msg_close (&body);
            }
            else
            if (kind == MDPWORKER_ASSIGN)
                zmq_msg_close (&body);
        }
        if (broker && (items [1].revents & ZMQ_POLLIN)) {
            zmsg_t *msg = zmsg_recv (broker);
            s_remember_id (broker, zmsg_first (msg));
            char *id = zmsg_popstr (msg);
            zframe_t *empty = zmsg_pop (msg);
            char *proto = zmsg_popstr (msg);
            zframe_t *command = zmsg_pop (msg);
            snprintf (got->id, sizeof got->id, "%s", id? id: "");
            got->command = command && zframe_size (command) == 1 && proto && strcmp (proto, BS_MDPW) == 0?
                *zframe_data (command): -1;
            zstr_free (&id);
            zstr_free (&proto);
            zframe_destroy (&empty);
            zframe_destroy (&command);
            zmsg_destroy (&msg);
            return true;
        }
    }
    return false;
}

//  Waits up to ms for the worker's next command at broker, skipping
//  heartbeats when skip_heartbeats; its command, or -1
static int
s_next (mdpworker_t *worker, zsock_t *broker, int ms, bool skip_heartbeats)
{
    int64_t until = zclock_mono () + ms;
    got_t got;
    while (zclock_mono () < until) {
        if (!s_pump (worker, broker, (int) (until - zclock_mono ()) + 1, &got))
            return -1;
        if (!(skip_heartbeats && got.command == BS_MDPW_HEARTBEAT))
            return got.command;
    }
    return -1;
}

//  The broker says to the node: [node][empty][MDPW01][command] and extra;
//  false when the node is not connected to this broker
static bool
s_say (zsock_t *broker, int command, const char *extra)
{
    zmsg_t *msg = zmsg_new ();
    s_add_node_id (msg, broker);
    zmsg_addmem (msg, "", 0);
    zmsg_addstr (msg, BS_MDPW);
    uint8_t byte = (uint8_t) command;
    zmsg_addmem (msg, &byte, 1);
    if (extra)
        zmsg_addstr (msg, extra);
    if (zmsg_send (&msg, broker) == 0)
        return true;
    zmsg_destroy (&msg);
    return false;
}

static zsock_t *
s_broker (const char *endpoint)
{
    zsock_t *sock = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (sock, 1);
    zsock_set_linger (sock, 0);
    if (zsock_bind (sock, "%s", endpoint) < 0) {
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

//  One endpoint works as before: READY, requests answered, a plain
//  DISCONNECT makes the node register again at the same broker
static void
test_single (void)
{
    zsock_t *a = s_broker ("inproc://mdpw-single");
    mdpworker_t *worker = mdpworker_new ("inproc://mdpw-single", "catalog", "node-1", HEARTBEAT, LIVENESS, NULL);
    CHECK (a && worker);
    CHECK (mdpworker_broker_index (worker) == 0);
    CHECK (strcmp (mdpworker_broker (worker), "inproc://mdpw-single") == 0);
    CHECK (s_next (worker, a, 500, false) == BS_MDPW_READY);
    CHECK (s_say (a, BS_MDPW_DISCONNECT, NULL));
    CHECK (s_next (worker, a, 500, true) == BS_MDPW_READY);
    CHECK (mdpworker_broker_index (worker) == 0);
    mdpworker_destroy (&worker);
    zsock_destroy (&a);
}

//  A malformed list is refused
static void
test_bad_list (void)
{
    CHECK (mdpworker_new ("", "catalog", "node-1", HEARTBEAT, LIVENESS, NULL) == NULL);
    CHECK (mdpworker_new ("inproc://x,,inproc://y", "catalog", "node-1", HEARTBEAT, LIVENESS, NULL) == NULL);
    CHECK (invalidator_new ("inproc://x,", NULL, 10, 1) == NULL);
}

//  DISCONNECT + "backup": READY at the next broker, not again at this one,
//  no sooner than a heartbeat after the first connect
static void
test_backup_moves_on (void)
{
    zsock_t *a = s_broker ("inproc://mdpw-a1");
    zsock_t *b = s_broker ("inproc://mdpw-b1");
    mdpworker_t *worker = mdpworker_new ("inproc://mdpw-a1,inproc://mdpw-b1", "catalog", "node-1",
                                         HEARTBEAT, LIVENESS, NULL);
    CHECK (a && b && worker);
    int64_t start = zclock_mono ();
    CHECK (s_next (worker, a, 500, false) == BS_MDPW_READY);
    CHECK (s_say (a, BS_MDPW_DISCONNECT, "backup"));
    CHECK (s_next (worker, b, 500, false) == BS_MDPW_READY);
    int64_t moved = zclock_mono () - start;
    CHECK (moved >= HEARTBEAT && moved < WINDOW);
    CHECK (mdpworker_broker_index (worker) == 1);
    CHECK (strcmp (mdpworker_broker (worker), "inproc://mdpw-b1") == 0);
    //  Nothing more at the first broker (it may still see a heartbeat sent
    //  before the move), while the second keeps it there
    CHECK (s_say (b, BS_MDPW_HEARTBEAT, NULL));
    got_t got;
    while (s_pump (worker, a, 2 * HEARTBEAT, &got))
        CHECK (got.command == BS_MDPW_HEARTBEAT);
    //  The active broker serves it: a plain DISCONNECT keeps it there
    CHECK (s_say (b, BS_MDPW_DISCONNECT, NULL));
    CHECK (s_next (worker, b, 500, true) == BS_MDPW_READY);
    CHECK (mdpworker_broker_index (worker) == 1);
    //  A request is answered there
    zmsg_t *msg = zmsg_new ();
    s_add_node_id (msg, b);
    zmsg_addmem (msg, "", 0);
    zmsg_addstr (msg, BS_MDPW);
    uint8_t request = BS_MDPW_REQUEST;
    zmsg_addmem (msg, &request, 1);
    zmsg_addstr (msg, "token");
    zmsg_addmem (msg, "", 0);
    zmsg_addstr (msg, "body");
    CHECK (zmsg_send (&msg, b) == 0);
    zmsg_destroy (&msg);
    CHECK (s_next (worker, b, 500, true) == BS_MDPW_REPLY);
    mdpworker_destroy (&worker);
    zsock_destroy (&a);
    zsock_destroy (&b);
}

//  A silent broker: the node moves to the next one after one liveness
//  window, not more, and back again the same way
static void
test_silence_moves_on (void)
{
    zsock_t *a = s_broker ("inproc://mdpw-a2");
    zsock_t *b = s_broker ("inproc://mdpw-b2");
    mdpworker_t *worker = mdpworker_new ("inproc://mdpw-a2,inproc://mdpw-b2", "order", "node-1",
                                         HEARTBEAT, LIVENESS, NULL);
    CHECK (a && b && worker);
    CHECK (s_next (worker, a, 500, false) == BS_MDPW_READY);
    //  a answers heartbeats for a while, then falls silent
    for (int i = 0; i < 5; i++) {
        CHECK (s_say (a, BS_MDPW_HEARTBEAT, NULL));
        CHECK (s_next (worker, a, 500, false) == BS_MDPW_HEARTBEAT);
    }
    int64_t silent_since = zclock_mono ();
    CHECK (s_next (worker, b, 10 * WINDOW, false) == BS_MDPW_READY);
    int64_t took = zclock_mono () - silent_since;
    CHECK (took >= WINDOW - HEARTBEAT && took < WINDOW + 3 * HEARTBEAT);
    CHECK (mdpworker_broker_index (worker) == 1);
    //  b serves, then dies too (the pair's backup after a failover, then
    //  the primary back): after one window the node is at a again
    for (int i = 0; i < 3; i++) {
        CHECK (s_say (b, BS_MDPW_HEARTBEAT, NULL));
        CHECK (s_next (worker, b, 500, false) == BS_MDPW_HEARTBEAT);
    }
    zsock_destroy (&b);
    silent_since = zclock_mono ();
    CHECK (s_next (worker, a, 10 * WINDOW, true) == BS_MDPW_READY);
    took = zclock_mono () - silent_since;
    CHECK (took >= WINDOW - HEARTBEAT && took < WINDOW + 3 * HEARTBEAT);
    CHECK (mdpworker_broker_index (worker) == 0);
    mdpworker_destroy (&worker);
    zsock_destroy (&a);
}

//  A broker that served the node, whose connection then closes (its
//  process was killed): the node moves to the next broker at once, not
//  after a liveness window of silence (5 s here)
static void
test_closed_connection_moves_on (void)
{
    zsock_t *a = s_broker ("tcp://127.0.0.1:*");
    zsock_t *b = s_broker ("tcp://127.0.0.1:*");
    CHECK (a && b);
    if (!a || !b)
        return;
    char list [300];
    snprintf (list, sizeof list, "%s,%s", zsock_endpoint (a), zsock_endpoint (b));
    mdpworker_t *worker = mdpworker_new (list, "order", "node-1", 100, 50, NULL);
    CHECK (worker && mdpworker_monitor (worker) != NULL);
    CHECK (s_next (worker, a, 2000, false) == BS_MDPW_READY);
    //  a serves: the node hears from it (its next heartbeat comes after
    //  the loop read ours)
    CHECK (s_say (a, BS_MDPW_HEARTBEAT, NULL));
    CHECK (s_next (worker, a, 2000, false) == BS_MDPW_HEARTBEAT);
    CHECK (s_next (worker, a, 2000, false) == BS_MDPW_HEARTBEAT);
    int64_t closed_at = zclock_mono ();
    zsock_destroy (&a);
    CHECK (s_next (worker, b, 4000, false) == BS_MDPW_READY);
    CHECK (zclock_mono () - closed_at < 2500);
    CHECK (mdpworker_broker_index (worker) == 1);
    mdpworker_destroy (&worker);
    zsock_destroy (&b);
}

//  Every broker says it is the backup: the node goes round, each round
//  slower than the one before
static void
test_all_backup_backs_off (void)
{
    zsock_t *a = s_broker ("inproc://mdpw-a3");
    zsock_t *b = s_broker ("inproc://mdpw-b3");
    mdpworker_t *worker = mdpworker_new ("inproc://mdpw-a3,inproc://mdpw-b3", "catalog", "node-1",
                                         HEARTBEAT, LIVENESS, NULL);
    CHECK (a && b && worker);
    zsock_t *brokers [2] = { a, b };
    int64_t gaps [6] = { 0 };
    int64_t last = zclock_mono ();
    for (int i = 0; i < 6; i++) {
        zsock_t *here = brokers [i % 2];
        CHECK (s_next (worker, here, 20 * WINDOW, true) == BS_MDPW_READY);
        CHECK ((int) mdpworker_broker_index (worker) == i % 2);
        int64_t now = zclock_mono ();
        gaps [i] = now - last;
        last = now;
        CHECK (s_say (here, BS_MDPW_DISCONNECT, "backup"));
    }
    //  The first move after the first backup answer is one heartbeat; once
    //  both said backup, a window; then twice that per round
    CHECK (gaps [1] >= HEARTBEAT - 5 && gaps [1] < WINDOW);
    CHECK (gaps [2] >= WINDOW - 5 && gaps [2] < 2 * WINDOW);
    CHECK (gaps [4] >= 2 * WINDOW - 5);
    CHECK (gaps [4] > gaps [2]);
    //  An active broker resets the backoff: its backup answer after serving
    //  is followed by a move within a heartbeat or so again
    CHECK (s_say (b, BS_MDPW_HEARTBEAT, NULL));         //  not an answer that counts
    CHECK (s_next (worker, a, 40 * WINDOW, true) == BS_MDPW_READY);
    CHECK (s_say (a, BS_MDPW_DISCONNECT, NULL));        //  a is active now
    CHECK (s_next (worker, a, 500, true) == BS_MDPW_READY);
    int64_t start = zclock_mono ();
    CHECK (s_say (a, BS_MDPW_DISCONNECT, "backup"));
    CHECK (s_next (worker, b, 500, true) == BS_MDPW_READY);
    CHECK (zclock_mono () - start < WINDOW);
    mdpworker_destroy (&worker);
    zsock_destroy (&a);
    zsock_destroy (&b);
}

//  The invalidator moves its REQ socket to the selected broker
static void
test_invalidator_select (void)
{
    zsock_t *a = zsock_new (ZMQ_REP);
    zsock_t *b = zsock_new (ZMQ_REP);
    CHECK (zsock_bind (a, "inproc://inv-a") == 0 && zsock_bind (b, "inproc://inv-b") == 0);
    invalidator_t *inv = invalidator_new ("inproc://inv-a,inproc://inv-b", NULL, 200, 1);
    CHECK (inv && invalidator_size (inv) == 2 && invalidator_index (inv) == 0);
    CHECK (!invalidator_select (inv, 2));
    CHECK (invalidator_index (inv) == 0);
    CHECK (invalidator_select (inv, 0));
    CHECK (invalidator_select (inv, 1) && invalidator_index (inv) == 1);
    //  A request now reaches b, not a
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, "invalidate");
    zpoller_t *poller = zpoller_new (a, b, NULL);
    //  Nobody answers here, so the invalidation times out; where it went
    //  is what counts
    CHECK (!invalidator_send (inv, msg));
    void *which = zpoller_wait (poller, 500);
    CHECK (which == b);
    if (which) {
        zmsg_t *got = zmsg_recv (which);
        zmsg_destroy (&got);
    }
    CHECK (zpoller_wait (poller, 50) == NULL);
    zpoller_destroy (&poller);
    bs_msg_destroy (&msg);
    invalidator_destroy (&inv);
    zsock_destroy (&a);
    zsock_destroy (&b);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    RUN (test_single);
    RUN (test_bad_list);
    RUN (test_backup_moves_on);
    RUN (test_silence_moves_on);
    RUN (test_closed_connection_moves_on);
    RUN (test_all_backup_backs_off);
    RUN (test_invalidator_select);
    zsys_shutdown ();
    return DONE ();
}
