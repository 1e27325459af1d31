/*  test_controller - the broker's map of order partitions: each is led by
 *  its owner alone, at the epoch the owner reports (a new one each start)
 */
#include "controller.h"
#include "workers.h"
#include "bs_msg.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

#define OWNED "order-1.0a0b0c"

//  An order node's status: it reports partition in role at epoch, seq
static void
s_report (worker_t *worker, const char *partition, const char *role, uint64_t epoch, uint64_t seq)
{
    bs_msg_t *status = bs_msg_new ();
    bs_msg_set_str (status, BS_FIELD_op, "node_status");
    bs_msg_set_str (status, BS_FIELD_id, worker->id);
    bs_msg_set_str (status, BS_FIELD_service, "order");
    char endpoint [128];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:1/%s", worker->id);
    bs_msg_set_str (status, BS_FIELD_pub, endpoint);
    bs_msg_set_str (status, BS_FIELD_sync, endpoint);
    bs_msg_set_int (status, BS_FIELD_ready, 1);
    bs_msg_set_list (status, BS_FIELD_partitions);
    bs_msg_t *entry = bs_msg_new ();
    bs_msg_set_str (entry, BS_FIELD_partition, partition);
    bs_msg_set_str (entry, BS_FIELD_role, role);
    bs_msg_set_int (entry, BS_FIELD_epoch, (int64_t) epoch);
    bs_msg_set_int (entry, BS_FIELD_seq, (int64_t) seq);
    bs_msg_set_int (entry, BS_FIELD_head, (int64_t) seq);
    bs_msg_set_int (entry, BS_FIELD_ready, 1);
    bs_msg_append (status, BS_FIELD_partitions, &entry);
    size_t size;
    uint8_t *data = bs_msg_encode (status, &size);
    CHECK (workers_apply_status (worker, data, size));
    free (data);
    bs_msg_destroy (&status);
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

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    RUN (test_owner_restarts_at_higher_epochs);
    RUN (test_non_owner_cannot_lead);
    return DONE ();
}
