/*  test_controller - the broker's map of order partitions: each is led by
 *  its owner alone, at the epoch the owner reports (a new one each start);
 *  and the catalog's in-sync set in a real etcd: a follower the primary
 *  was told it need not wait for does not come back on an old report
 */
#include "controller.h"
#include "ctlplane.h"
#include "etcd_fixture.h"
#include "workers.h"
#include "bs_msg.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

#define OWNED "order-1.0a0b0c"

//  A node's status for one partition: role at epoch, seq; a catalog node
//  names its store; a primary may add the followers it counts in sync
//  (isr) and the report's version; state, if any, says how much of the
//  partition the node holds ("empty", "snapshot")
static void
s_status (worker_t *worker, const char *service, const char *store, const char *partition, const char *role,
          uint64_t epoch, uint64_t seq, const char *isr, uint64_t version, const char *state)
{
    bs_msg_t *status = bs_msg_new ();
    bs_msg_set_str (status, BS_FIELD_op, "node_status");
    bs_msg_set_str (status, BS_FIELD_id, worker->id);
    bs_msg_set_str (status, BS_FIELD_service, service);
    char endpoint [128];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:1/%s", worker->id);
    bs_msg_set_str (status, BS_FIELD_pub, endpoint);
    bs_msg_set_str (status, BS_FIELD_sync, endpoint);
    if (store)
        bs_msg_set_str (status, BS_FIELD_store, store);
    bs_msg_set_int (status, BS_FIELD_ready, 1);
    bs_msg_set_list (status, BS_FIELD_partitions);
    bs_msg_t *entry = bs_msg_new ();
    bs_msg_set_str (entry, BS_FIELD_partition, partition);
    bs_msg_set_str (entry, BS_FIELD_role, role);
    bs_msg_set_int (entry, BS_FIELD_epoch, (int64_t) epoch);
    bs_msg_set_int (entry, BS_FIELD_seq, (int64_t) seq);
    bs_msg_set_int (entry, BS_FIELD_head, (int64_t) seq);
    bs_msg_set_int (entry, BS_FIELD_ready, state == NULL);
    if (state)
        bs_msg_set_str (entry, BS_FIELD_status, state);
    if (isr) {
        bs_msg_set_str (entry, BS_FIELD_isr, isr);
        bs_msg_set_int (entry, BS_FIELD_version, (int64_t) version);
    }
    bs_msg_append (status, BS_FIELD_partitions, &entry);
    size_t size;
    uint8_t *data = bs_msg_encode (status, &size);
    CHECK (workers_apply_status (worker, data, size));
    free (data);
    bs_msg_destroy (&status);
}

//  An order node's status: it reports partition in role at epoch, seq
static void
s_report (worker_t *worker, const char *partition, const char *role, uint64_t epoch, uint64_t seq)
{
    s_status (worker, "order", NULL, partition, role, epoch, seq, NULL, 0, NULL);
}

//  The primary the map gives partition, for the order service ("" none)
static const char *
s_primary (controller_t *controller, const char *partition)
{
    static char primary [64];
    primary [0] = 0;
    bs_msg_t *assign = controller_assign (controller, "order");
    for (size_t i = 0; i < bs_msg_count (assign, BS_FIELD_partitions); i++) {
        bs_msg_t *entry = bs_msg_at (assign, BS_FIELD_partitions, i);
        if (strcmp (bs_msg_str (entry, BS_FIELD_partition), partition) == 0)
            snprintf (primary, sizeof primary, "%s", bs_msg_str (entry, BS_FIELD_primary));
    }
    bs_msg_destroy (&assign);
    return primary;
}

//  The owner restarts at a higher epoch each time: the map follows it, and
//  its followers are told the new epoch
static void
test_owner_restarts_at_higher_epochs (void)
{
    workers_t *workers = workers_new ();
    controller_t *controller = controller_new (0);
    worker_t *owner = workers_register (workers, "o1", 2, "order", "order-1");
    worker_t *peer = workers_register (workers, "o2", 2, "order", "order-2");
    s_report (owner, OWNED, "primary", 1, 5);
    s_report (peer, OWNED, "follower", 1, 5);
    controller_update (controller, workers);
    CHECK (streq (s_primary (controller, OWNED), "order-1"));
    CHECK_EQ (controller_epoch (controller, OWNED), 1);
    //  It dies: no primary, the epoch stays
    workers_declare_dead (owner, 0);
    controller_update (controller, workers);
    CHECK (streq (s_primary (controller, OWNED), ""));
    CHECK_EQ (controller_epoch (controller, OWNED), 1);
    //  It comes back at epoch 2, then 3
    for (uint64_t epoch = 2; epoch <= 3; epoch++) {
        owner = workers_register (workers, "o1", 2, "order", "order-1");
        s_report (owner, OWNED, "primary", epoch, 5);
        CHECK (controller_update (controller, workers));
        CHECK (streq (s_primary (controller, OWNED), "order-1"));
        CHECK_EQ (controller_epoch (controller, OWNED), epoch);
        workers_declare_dead (owner, 0);
        controller_update (controller, workers);
    }
    controller_destroy (&controller);
    workers_destroy (&workers);
}

//  A node that reports the primary role of a partition it does not own is
//  not taken for its primary, at any epoch, whether the owner is up or not
static void
test_non_owner_cannot_lead (void)
{
    workers_t *workers = workers_new ();
    controller_t *controller = controller_new (0);
    worker_t *owner = workers_register (workers, "o1", 2, "order", "order-1");
    //  Ids that start like the owner's are other nodes
    worker_t *rogue = workers_register (workers, "o2", 2, "order", "order-2");
    worker_t *prefix = workers_register (workers, "o3", 2, "order", "order");
    s_report (owner, OWNED, "primary", 1, 5);
    s_report (rogue, OWNED, "primary", 9, 7);
    s_report (prefix, OWNED, "primary", 9, 7);
    controller_update (controller, workers);
    CHECK (streq (s_primary (controller, OWNED), "order-1"));
    CHECK_EQ (controller_epoch (controller, OWNED), 1);
    workers_declare_dead (owner, 0);
    controller_update (controller, workers);
    CHECK (streq (s_primary (controller, OWNED), ""));
    CHECK_EQ (controller_epoch (controller, OWNED), 1);
    controller_destroy (&controller);
    workers_destroy (&workers);
}


//  With no primary, followers fetch from the replica that holds the
//  partition whole, however far it got, never from one that holds none of
//  it (it answers no fetch): an order node that lost its disk and comes
//  back under its name follows its old partition, which only its owner
//  could lead, from the peer that has it
static void
test_source_holds_the_partition_whole (void)
{
    workers_t *workers = workers_new ();
    controller_t *controller = controller_new (0);
    worker_t *owner = workers_register (workers, "o1", 2, "order", "order-1");
    worker_t *peer = workers_register (workers, "o2", 2, "order", "order-2");
    s_report (owner, OWNED, "primary", 1, 0);
    s_report (peer, OWNED, "follower", 1, 0);
    controller_update (controller, workers);
    workers_declare_dead (owner, 0);
    //  Back on an empty disk: it holds none of its old partition, listed
    //  before the peer that holds it
    worker_t *again = workers_register (workers, "o1", 2, "order", "order-1");
    s_status (again, "order", NULL, OWNED, "follower", 1, 0, NULL, 0, "empty");
    controller_update (controller, workers);
    bs_msg_t *assign = controller_assign (controller, "order");
    const char *source = "";
    for (size_t i = 0; i < bs_msg_count (assign, BS_FIELD_partitions); i++) {
        bs_msg_t *entry = bs_msg_at (assign, BS_FIELD_partitions, i);
        if (streq (bs_msg_str (entry, BS_FIELD_partition), OWNED))
            source = bs_msg_str (entry, BS_FIELD_source);
    }
    CHECK (streq (source, "order-2"));
    CHECK (streq (s_primary (controller, OWNED), ""));
    bs_msg_destroy (&assign);
    controller_destroy (&controller);
    workers_destroy (&workers);
}

//  A catalog node's status: role at epoch, seq; a primary adds the
//  followers it counts in sync (isr) and the report's version
static void
s_catalog_report (worker_t *worker, const char *store, const char *role, uint64_t epoch, uint64_t seq,
                  const char *isr, uint64_t version)
{
    s_status (worker, "catalog", store, "catalog", role, epoch, seq, isr, version, NULL);
}

//  Runs the controller against etcd for up to ms: decides, and reads
//  etcd's answers.  Returns true as soon as the stored in-sync set is
//  want (when want is given).
static bool
s_pump (controller_t *controller, ctlplane_t *store, workers_t *workers, int ms, const char *want)
{
    int64_t deadline = zclock_mono () + ms;
    while (zclock_mono () < deadline) {
        controller_update (controller, workers);
        zmq_pollitem_t item = { zsock_resolve (ctlplane_socket (store)), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 20) == 1) {
            ctlplane_result_t *result = ctlplane_recv (store);
            if (result)
                controller_on_store (controller, result);
            ctlplane_result_destroy (&result);
        }
        uint64_t epoch;
        const char *primary;
        char insync [256];
        int64_t revision;
        if (want && controller_stored (controller, &epoch, &primary, insync, sizeof insync, &revision)
        &&  strcmp (insync, want) == 0)
            return true;
    }
    return false;
}

//  The interleaving: the follower dies and the set shrinks; the primary,
//  not yet having noticed, reports it in sync once more, and is told the
//  set stands for that report too, so it stops waiting for the follower
//  and acknowledges writes without it.  The follower restarts and
//  registers before the primary's next report (the primary hangs, say).
//  That last report must not bring it back: elected, it would lose those
//  writes.
static void
test_an_old_report_does_not_bring_a_follower_back (void)
{
    etcd_fixture_t etcd;
    if (!etcd_fixture_start (&etcd)) {
        printf ("# etcd did not start: skipped\n");
        return;
    }
    ctlplane_t *store = ctlplane_new (etcd.url, "unit", 1000);
    CHECK (store);
    workers_t *workers = workers_new ();
    controller_t *controller = controller_new (0);
    controller_use_store (controller, store);
    worker_t *primary = workers_register (workers, "c1", 2, "catalog", "catalog-1");
    worker_t *follower = workers_register (workers, "c2", 2, "catalog", "catalog-2");
    s_catalog_report (primary, "000000000000000a", "follower", 0, 0, NULL, 0);
    s_catalog_report (follower, "000000000000000b", "follower", 0, 0, NULL, 0);
    s_pump (controller, store, workers, 500, NULL);
    CHECK_EQ (controller_epoch (controller, "catalog"), 1);
    uint64_t epoch;
    const char *leader;
    char insync [256];
    int64_t revision;
    CHECK (controller_stored (controller, &epoch, &leader, insync, sizeof insync, &revision)
           && strcmp (leader, "catalog-1") == 0);
    //  Leading, it counts the follower in sync (report 100)
    s_catalog_report (primary, "000000000000000a", "primary", 1, 7, "catalog-2", 100);
    s_catalog_report (follower, "000000000000000b", "follower", 1, 7, NULL, 0);
    CHECK (s_pump (controller, store, workers, 3000, "catalog-1,catalog-2"));
    //  The follower dies: the set shrinks
    workers_declare_dead (follower, zclock_mono ());
    CHECK (s_pump (controller, store, workers, 3000, "catalog-1"));
    //  The primary's next report (200) still names it; the set stays, and
    //  the primary is told it stands for report 200
    s_catalog_report (primary, "000000000000000a", "primary", 1, 8, "catalog-2", 200);
    s_pump (controller, store, workers, 300, NULL);
    bs_msg_t *assign = controller_assign (controller, "catalog");
    int64_t told = 0;
    for (size_t i = 0; i < bs_msg_count (assign, BS_FIELD_partitions); i++)
        told = bs_msg_int (bs_msg_at (assign, BS_FIELD_partitions, i), BS_FIELD_version);
    bs_msg_destroy (&assign);
    CHECK_EQ (told, 200);
    //  The follower is back, behind; the primary's last report is still 200
    follower = workers_register (workers, "c3", 2, "catalog", "catalog-2");
    s_catalog_report (follower, "000000000000000b", "follower", 1, 7, NULL, 0);
    CHECK (!s_pump (controller, store, workers, 1000, "catalog-1,catalog-2"));
    //  A newer report naming it (it caught up) brings it back
    s_catalog_report (primary, "000000000000000a", "primary", 1, 8, "catalog-2", 300);
    s_catalog_report (follower, "000000000000000b", "follower", 1, 8, NULL, 0);
    CHECK (s_pump (controller, store, workers, 3000, "catalog-1,catalog-2"));
    controller_destroy (&controller);
    ctlplane_destroy (&store);
    workers_destroy (&workers);
    etcd_fixture_stop (&etcd);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    RUN (test_owner_restarts_at_higher_epochs);
    RUN (test_non_owner_cannot_lead);
    RUN (test_source_holds_the_partition_whole);
    RUN (test_an_old_report_does_not_bring_a_follower_back);
    return DONE ();
}
