/*  test_peer - the Binary Star rules between two brokers' peer objects,
 *  talking over real PUB/SUB sockets with a short heartbeat  */
#include "peer.h"
#include "testing.h"

#include <czmq.h>
#include <unistd.h>

#define HEARTBEAT_MS 20
#define LIVENESS 3

static char s_mute [64];

static peer_t *
s_peer (const char *id, bool backup, const char *bind, const char *connect)
{
    peer_options_t options = {
        .id = id, .backup = backup, .bind = bind, .connect = connect,
        .advertise = backup? "tcp://b:2": "tcp://a:1",
        .heartbeat_ms = HEARTBEAT_MS, .liveness = LIVENESS, .mute_file = s_mute,
    };
    return peer_new (&options);
}

//  Runs both peers (either may be NULL) for ms milliseconds, each saying it
//  serves the given number of nodes
static void
s_run (peer_t *a, int a_nodes, peer_t *b, int b_nodes, int ms)
{
    int64_t end = zclock_mono () + ms, next_tick = 0;
    while (zclock_mono () < end) {
        if (zclock_mono () >= next_tick) {
            if (a)
                peer_tick (a, 7, a_nodes, "catalog-1");
            if (b)
                peer_tick (b, 9, b_nodes, "");
            next_tick = zclock_mono () + HEARTBEAT_MS;
        }
        zmq_pollitem_t items [4];
        int n = 0;
        peer_t *owners [4];
        peer_t *peers [2] = { a, b };
        for (int i = 0; i < 2; i++)
            if (peers [i]) {
                items [n] = (zmq_pollitem_t) { peer_socket (peers [i]), 0, ZMQ_POLLIN, 0 };
                owners [n++] = peers [i];
                items [n] = (zmq_pollitem_t) { peer_monitor (peers [i]), 0, ZMQ_POLLIN, 0 };
                owners [n++] = peers [i];
            }
        zmq_poll (items, n, 5);
        for (int i = 0; i < n; i++)
            if (items [i].revents & ZMQ_POLLIN) {
                if (i % 2 == 0)
                    while (peer_recv (owners [i]))
                        ;
                else
                    peer_recv_monitor (owners [i]);
            }
    }
}

static void
test_alone (void)
{
    peer_t *alone = s_peer ("solo", false, NULL, NULL);
    CHECK (alone && peer_alone (alone) && peer_active (alone));
    CHECK (peer_client_verdict (alone) == PEER_SERVE);
    CHECK (peer_node_turns (alone, 1));
    bs_msg_t *status = bs_msg_new ();
    peer_describe (alone, status);
    CHECK (bs_msg_count (status, BS_FIELD_brokers) == 1);
    bs_msg_destroy (&status);
    peer_destroy (&alone);
    CHECK (alone == NULL);
}

//  The primary becomes active, the backup passive and sends clients on
static void
test_pair_starts (void)
{
    peer_t *a = s_peer ("a", false, "inproc://peer-31", "inproc://peer-32");
    peer_t *b = s_peer ("b", true, "inproc://peer-32", "inproc://peer-31");
    CHECK (a && b);
    CHECK (peer_state (a) == PEER_STATE_PRIMARY && peer_state (b) == PEER_STATE_BACKUP);
    CHECK (peer_client_verdict (a) == PEER_HOLD);
    s_run (a, 0, b, 0, 300);
    CHECK (peer_state (a) == PEER_STATE_ACTIVE);
    CHECK (peer_state (b) == PEER_STATE_PASSIVE);
    CHECK (peer_client_verdict (b) == PEER_REFUSE);
    CHECK (!peer_node_turns (b, 3));            //  the active one is alive
    CHECK (strcmp (peer_endpoint (b), "tcp://a:1") == 0);
    CHECK (peer_epoch (b) == 7);
    CHECK (strcmp (peer_primary (b), "catalog-1") == 0 && strcmp (peer_primary (a), "") == 0);
    bs_msg_t *status = bs_msg_new ();
    peer_describe (b, status);
    CHECK (bs_msg_count (status, BS_FIELD_brokers) == 2);
    bs_msg_t *first = bs_msg_at (status, BS_FIELD_brokers, 0);
    bs_msg_t *second = bs_msg_at (status, BS_FIELD_brokers, 1);
    CHECK (strcmp (bs_msg_str (first, BS_FIELD_id), "b") == 0 && !bs_msg_int (first, BS_FIELD_active));
    CHECK (strcmp (bs_msg_str (second, BS_FIELD_id), "a") == 0 && bs_msg_int (second, BS_FIELD_active));
    bs_msg_destroy (&status);
    peer_destroy (&a);
    peer_destroy (&b);
}

//  The active one dies: the backup holds clients, and takes over once half
//  the nodes the dead one served have turned to it; the old primary comes
//  back passive
static void
test_takeover (void)
{
    peer_t *a = s_peer ("a", false, "inproc://peer-33", "inproc://peer-34");
    peer_t *b = s_peer ("b", true, "inproc://peer-34", "inproc://peer-33");
    s_run (a, 4, b, 0, 300);
    CHECK (peer_active (a) && peer_state (b) == PEER_STATE_PASSIVE);
    CHECK (peer_nodes (b) == 4);
    peer_destroy (&a);
    s_run (NULL, 0, b, 0, HEARTBEAT_MS * LIVENESS + 60);
    CHECK (peer_client_verdict (b) == PEER_HOLD);
    CHECK (!peer_node_turns (b, 1));            //  one of four is not enough
    CHECK (peer_state (b) == PEER_STATE_PASSIVE);
    CHECK (peer_node_turns (b, 2));
    CHECK (peer_active (b) && peer_client_verdict (b) == PEER_SERVE);
    a = s_peer ("a", false, "inproc://peer-33", "inproc://peer-34");
    s_run (a, 0, b, 2, 300);
    CHECK (peer_state (a) == PEER_STATE_PASSIVE);
    CHECK (peer_active (b));
    peer_destroy (&a);
    peer_destroy (&b);
}

//  The brokers cannot hear each other: no node turns to the passive one,
//  so it stays passive; it holds clients meanwhile
static void
test_partition (void)
{
    snprintf (s_mute, sizeof s_mute, "/tmp/test_peer_mute.%d", (int) getpid ());
    peer_t *a = s_peer ("a", false, "inproc://peer-35", "inproc://peer-36");
    peer_t *b = s_peer ("b", true, "inproc://peer-36", "inproc://peer-35");
    s_run (a, 4, b, 0, 300);
    CHECK (peer_active (a) && peer_state (b) == PEER_STATE_PASSIVE);
    FILE *mute = fopen (s_mute, "w");
    CHECK (mute);
    if (mute)
        fclose (mute);
    s_run (a, 4, b, 0, 300);
    CHECK (peer_active (a));
    CHECK (peer_state (b) == PEER_STATE_PASSIVE);
    CHECK (peer_client_verdict (b) == PEER_HOLD);
    //  Two nodes lost the active one after all: both active now...
    CHECK (peer_node_turns (b, 2));
    CHECK (peer_active (a) && peer_active (b));
    //  ...until they hear each other: the one with fewer nodes yields
    unlink (s_mute);
    s_run (a, 3, b, 2, 300);
    CHECK (peer_active (a));
    CHECK (peer_state (b) == PEER_STATE_PASSIVE);
    peer_destroy (&a);
    peer_destroy (&b);
    s_mute [0] = 0;
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    RUN (test_alone);
    RUN (test_pair_starts);
    RUN (test_takeover);
    RUN (test_partition);
    return DONE ();
}
