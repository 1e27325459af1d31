/*  fuzz_control - the broker's node registry and controller under
 *  arbitrary node reports.
 *
 *  The input is a sequence of frames (fuzzing.h).  A frame's first byte is a
 *  command, its second names one of eight node identities, and the rest is
 *  its argument:
 *
 *      0 ready      register the node (catalog-N, order-N, or when the
 *                   frame's flag is set the id the argument holds up to a
 *                   NUL; none at all when that is empty, as a plain
 *                   Majordomo worker), then apply the rest of the argument
 *                   as its node_status body
 *      1 heartbeat  apply the argument as its node_status body, if alive
 *      2 dead       the node is declared dead
 *      3 choose     the broker's choice of a node for a read and a write
 *
 *  A READY is taken or refused by the broker's rule (workers_id_valid,
 *  workers_id_holder), and a report is applied by the broker's own code
 *  (workers_apply_status).  After every frame the controller updates its
 *  map, as the broker's s_control does.  Invariants:
 *
 *  - every node id is one the broker takes, and no two alive nodes share
 *    one;
 *  - the assignments sent to each service are messages nodes accept (a
 *    node drops a malformed one and would follow nobody);
 *  - the catalog's epoch never goes back, and changes whenever a new
 *    primary is elected; a primary elected after the first is one the
 *    previous assignment listed in sync, or the previous primary;
 *  - the catalog primary is alive, reports the role at the current epoch,
 *    and no other catalog node is shown as primary; the primary the nodes
 *    are told of, once it reports the role, is the one writes go to;
 *  - a chosen node is alive and of the service asked for.
 */
#include "bs_idlist.h"
#include "bs_msg.h"
#include "controller.h"
#include "fuzzing.h"
#include "workers.h"

#include <czmq.h>
#include <string.h>

#define NODES 8

static bool
s_readable (void *controller, worker_t *worker)
{
    return controller_readable ((controller_t *) controller, worker);
}

//  The assignment for a service, as a node receives it; its catalog entry's
//  primary and isr are copied out (empty when it has none)
static void
s_check_assign (controller_t *controller, const char *service, char *primary, char *isr)
{
    bs_msg_t *assign = controller_assign (controller, service);
    FUZZ_CHECK (assign);
    size_t size;
    uint8_t *data = bs_msg_encode (assign, &size);
    bs_err_t err;
    char reason [160];
    bs_msg_t *copy = bs_msg_decode (data, size, &err, reason, sizeof reason);
    if (!copy || bs_msg_validate_request (copy, reason, sizeof reason) != BS_OK)
        fprintf (stderr, "fuzz: nodes would drop this assignment: %s\n", reason);
    FUZZ_CHECK (copy && bs_msg_validate_request (copy, NULL, 0) == BS_OK && bs_msg_op (copy) == BS_OP_assign);
    if (primary) {
        primary [0] = isr [0] = 0;
        for (size_t i = 0; i < bs_msg_count (copy, BS_FIELD_partitions); i++) {
            bs_msg_t *part = bs_msg_at (copy, BS_FIELD_partitions, i);
            if (strcmp (bs_msg_str (part, BS_FIELD_partition), "catalog") == 0) {
                snprintf (primary, 65, "%s", bs_msg_str (part, BS_FIELD_primary));
                snprintf (isr, 4097, "%s", bs_msg_str (part, BS_FIELD_isr));
            }
        }
    }
    bs_msg_destroy (&copy);
    bs_msg_destroy (&assign);
    free (data);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static bool initialised;
    if (!initialised) {
        zsys_handler_set (NULL);
        zsys_init ();
        if (!getenv ("FUZZ_VERBOSE"))
            zsys_set_logstream (fopen ("/dev/null", "w"));
        initialised = true;
    }
    workers_t *workers = workers_new ();
    controller_t *controller = controller_new (0);
    fuzz_input_t input = { data, size };
    const uint8_t *frame;
    size_t frame_size;
    bool flag;
    uint64_t epoch = 0;
    bool elected = false;
    char primary [65] = "", isr [4097] = "", last_primary [65] = "";
    for (int n = 0; n < 64 && fuzz_frame (&input, &frame, &frame_size, &flag); n++) {
        if (frame_size < 2)
            continue;
        uint8_t command = frame [0] % 4;
        uint8_t node = frame [1] % NODES;
        const uint8_t *arg = frame + 2;
        size_t arg_size = frame_size - 2;
        uint8_t identity [2] = { 'N', node };
        worker_t *w = workers_find (workers, identity, sizeof identity);
        if (command == 0) {
            //  The id, refused as broker.c's READY handling refuses it: not
            //  1 to 64 of [A-Za-z0-9._-], or another live node's ("": the
            //  node sent no id frame, and is known by its routing id)
            char id [65] = "";
            bool refused = false;
            if (flag) {
                //  An id of the node's own choosing: the bytes up to a NUL
                size_t n = 0;
                while (n < arg_size && arg [n])
                    n++;
                memcpy (id, arg, n < sizeof id? n: sizeof id - 1);
                refused = n > 0 && (n >= sizeof id || !workers_id_valid (id));
                arg += n < arg_size? n + 1: n;
                arg_size -= n < arg_size? n + 1: n;
            }
            else
                snprintf (id, sizeof id, "%s-%d", node < 4? "catalog": "order", node % 4 + 1);
            refused = refused || workers_id_holder (workers, id, identity, sizeof identity);
            if (!refused) {
                if (w && w->alive)
                    w->alive = false;   //  restarted under the same identity
                w = workers_register (workers, identity, sizeof identity, node < 4? "catalog": "order", id);
                FUZZ_CHECK (w && w->alive && !w->has_status);
                if (arg_size)
                    workers_apply_status (w, arg, arg_size);
            }
        }
        else
        if (command == 1 && w && w->alive)
            workers_apply_status (w, arg, arg_size);
        else
        if (command == 2 && w)
            w->alive = false;
        else
        if (command == 3) {
            const char *service = node < 4? "catalog": "order";
            worker_t *chosen = workers_choose (workers, service, s_readable, controller);
            FUZZ_CHECK (!chosen || (chosen->alive && strcmp (chosen->service, service) == 0));
            FUZZ_CHECK (!chosen || controller_readable (controller, chosen));
            chosen = workers_choose (workers, service, NULL, NULL);
            FUZZ_CHECK (!chosen || (chosen->alive && strcmp (chosen->service, service) == 0));
        }
        controller_update (controller, workers);

        //  What the nodes are told
        char new_primary [65], new_isr [4097];
        s_check_assign (controller, "catalog", new_primary, new_isr);
        s_check_assign (controller, "order", NULL, NULL);
        uint64_t new_epoch = controller_epoch (controller, "catalog");
        FUZZ_CHECK (new_epoch >= epoch);
        if (*new_primary && strcmp (new_primary, primary) != 0) {
            if (elected)
                FUZZ_CHECK (new_epoch > epoch
                            && (bs_idlist_has (isr, new_primary) || strcmp (new_primary, last_primary) == 0));
            elected = true;
            snprintf (last_primary, sizeof last_primary, "%s", new_primary);
        }
        epoch = new_epoch;
        snprintf (primary, sizeof primary, "%s", new_primary);
        snprintf (isr, sizeof isr, "%s", new_isr);

        worker_t *catalog_primary = controller_catalog_primary (controller, workers);
        if (catalog_primary) {
            FUZZ_CHECK (catalog_primary->alive && catalog_primary->has_status);
            FUZZ_CHECK (strcmp (catalog_primary->service, "catalog") == 0);
            worker_partition_t *report = worker_partition (catalog_primary, "catalog");
            FUZZ_CHECK (report && strcmp (report->role, "primary") == 0 && report->epoch == epoch);
            FUZZ_CHECK (strcmp (catalog_primary->id, primary) == 0);
        }
        for (size_t i = 0; i < workers_size (workers); i++) {
            worker_t *worker = workers_at (workers, i);
            //  Ids the broker takes, each held by one alive node at most
            FUZZ_CHECK (workers_id_valid (worker->id));
            for (size_t j = i + 1; worker->alive && j < workers_size (workers); j++)
                FUZZ_CHECK (!workers_at (workers, j)->alive || strcmp (workers_at (workers, j)->id, worker->id) != 0);
            //  The primary the nodes are told of, alive and in the role at
            //  this epoch, is the one writes go to
            worker_partition_t *report = worker->alive && worker->has_status? worker_partition (worker, "catalog"): NULL;
            if (*primary && strcmp (worker->id, primary) == 0 && strcmp (worker->service, "catalog") == 0
            &&  report && strcmp (report->role, "primary") == 0 && report->epoch == epoch)
                FUZZ_CHECK (catalog_primary == worker);
            const char *role = controller_role (controller, worker);
            FUZZ_CHECK (strcmp (role, "primary") == 0 || strcmp (role, "follower") == 0);
            //  Of the catalog nodes, only the one named primary says so
            FUZZ_CHECK (strcmp (worker->service, "catalog") != 0 || strcmp (role, "primary") != 0
                        || strcmp (worker->id, primary) == 0);
            FUZZ_CHECK (!controller_insync (controller, worker) || worker->alive);
            controller_lag (controller, workers, worker);
        }
    }
    controller_destroy (&controller);
    workers_destroy (&workers);
    return 0;
}
