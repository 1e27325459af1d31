/*  fuzz_control - the broker's node registry and controller under
 *  arbitrary node reports.
 *
 *  The input is a sequence of frames (fuzzing.h).  A frame's first byte is a
 *  command, its second names one of eight node identities, and the rest is
 *  its argument:
 *
 *      0 ready      register the node (catalog-N, order-N, or the id the
 *                   argument holds when the frame's flag is set), then
 *                   apply the argument as its node_status body
 *      1 heartbeat  apply the argument as its node_status body, if alive
 *      2 dead       the node is declared dead
 *      3 choose     the broker's choice of a node for a read and a write
 *
 *  A node_status body is decoded by bs_msg_decode and validated as the
 *  broker does, and only a valid node_status is applied.  broker.c keeps
 *  that step in a static function (s_apply_status), so this target applies
 *  the report to the worker record itself, field for field, the way the
 *  broker's record is documented in broker/workers.h.  After every frame
 *  the controller updates its map, as the broker's s_control does.
 *  Invariants:
 *
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
#include "bs_msg.h"
#include "controller.h"
#include "fuzzing.h"
#include "workers.h"

#include <czmq.h>
#include <string.h>

#define NODES 8

//  Known bug (tests/fuzz/crashes/fuzz_control/node_id_not_text): the broker
//  takes a READY's node id as it comes, bytes that are not text included,
//  and passes it on in assignments (and status replies) that nobody can
//  decode.  Set when such an id registered in this input.
static bool s_bad_id;

//  Known bug (tests/fuzz/crashes/fuzz_control/node_id_twice): nothing stops
//  a second node (another routing identity) from announcing an id already
//  in use; lookups by id then find whichever registered first, so an order
//  node announcing the catalog primary's id is taken for the catalog
//  primary.  Set when that happened in this input.
static bool s_twice_id;

//  Known bug (tests/fuzz/crashes/fuzz_control/catalog_claimed_by_order_node):
//  the controller takes any node's report on any partition, so a node of
//  the order service that reports the catalog partition (as primary, say)
//  can be made or kept the catalog's primary.  Set when that happened.
static bool s_foreign_catalog;

static bool
s_in_list (const char *list, const char *id)
{
    size_t n = strlen (id);
    const char *p = list;
    while (n && *p) {
        const char *comma = strchr (p, ',');
        size_t len = comma? (size_t) (comma - p): strlen (p);
        if (len == n && memcmp (p, id, n) == 0)
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}

static bool
s_readable (void *controller, worker_t *worker)
{
    return controller_readable ((controller_t *) controller, worker);
}

//  Applies a node_status report to the worker's record
static void
s_apply (worker_t *w, const uint8_t *data, size_t size)
{
    bs_err_t err;
    bs_msg_t *status = bs_msg_decode (data, size, &err, NULL, 0);
    if (status && bs_msg_validate_request (status, NULL, 0) == BS_OK && bs_msg_op (status) == BS_OP_node_status) {
        w->has_status = true;
        snprintf (w->pub, sizeof w->pub, "%s", bs_msg_str (status, BS_FIELD_pub));
        snprintf (w->sync, sizeof w->sync, "%s", bs_msg_str (status, BS_FIELD_sync));
        snprintf (w->digest, sizeof w->digest, "%s", bs_msg_str (status, BS_FIELD_digest));
        w->ready = bs_msg_int (status, BS_FIELD_ready) != 0;
        size_t count = bs_msg_count (status, BS_FIELD_partitions);
        w->partition_count = (int) (count < WORKER_MAX_PARTITIONS? count: WORKER_MAX_PARTITIONS);
        for (int i = 0; i < w->partition_count; i++) {
            const bs_msg_t *report = bs_msg_at (status, BS_FIELD_partitions, (size_t) i);
            worker_partition_t *p = &w->partitions [i];
            snprintf (p->name, sizeof p->name, "%s", bs_msg_str (report, BS_FIELD_partition));
            snprintf (p->role, sizeof p->role, "%s", bs_msg_str (report, BS_FIELD_role));
            snprintf (p->insync, sizeof p->insync, "%s", bs_msg_str (report, BS_FIELD_isr));
            p->epoch = (uint64_t) bs_msg_int (report, BS_FIELD_epoch);
            p->seq = (uint64_t) bs_msg_int (report, BS_FIELD_seq);
            p->head = (uint64_t) bs_msg_int (report, BS_FIELD_head);
            p->ready = bs_msg_int (report, BS_FIELD_ready) != 0;
            if (strcmp (p->name, "catalog") == 0 && strcmp (w->service, "catalog") != 0)
                s_foreign_catalog = true;
        }
    }
    bs_msg_destroy (&status);
}

//  Known bug (tests/fuzz/crashes/fuzz_control/epoch_overflow): a node that
//  reports the largest epoch the protocol allows (2^53 - 1) makes the next
//  election assign one more, which no node accepts
static bool
s_epoch_overflow (const bs_msg_t *assign)
{
    for (size_t i = 0; i < bs_msg_count (assign, BS_FIELD_partitions); i++)
        if (bs_msg_int (bs_msg_at (assign, BS_FIELD_partitions, i), BS_FIELD_epoch) > 9007199254740991)
            return true;
    return false;
}


//  The assignment for a service, as a node receives it; its catalog entry's
//  primary and isr are copied out (empty when it has none).  False when a
//  known bug made it one no node can decode.
static bool
s_check_assign (controller_t *controller, const char *service, char *primary, char *isr)
{
    bs_msg_t *assign = controller_assign (controller, service);
    FUZZ_CHECK (assign);
    size_t size;
    uint8_t *data = bs_msg_encode (assign, &size);
    bs_err_t err;
    char reason [160];
    bs_msg_t *copy = bs_msg_decode (data, size, &err, reason, sizeof reason);
    if (!copy && ((s_epoch_overflow (assign) && fuzz_known ("controller-epoch-overflow"))
              ||  (s_bad_id && fuzz_known ("broker-takes-any-node-id")))) {
        if (primary)
            primary [0] = isr [0] = 0;
        bs_msg_destroy (&assign);
        free (data);
        return false;
    }
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
    return true;
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
    s_bad_id = s_twice_id = s_foreign_catalog = false;
    fuzz_input_t input = { data, size };
    const uint8_t *frame;
    size_t frame_size;
    bool flag;
    uint64_t epoch = 0;
    bool elected = false, tolerated = false;
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
            char id [65];
            if (flag) {
                //  An id of the node's own choosing: the text up to a NUL
                size_t n = 0;
                while (n < arg_size && n < 64 && arg [n])
                    n++;
                memcpy (id, arg, n);
                id [n] = 0;
                s_bad_id |= !bs_text_valid (id, n);
                arg += n < arg_size? n + 1: n;
                arg_size -= n < arg_size? n + 1: n;
            }
            else
                snprintf (id, sizeof id, "%s-%d", node < 4? "catalog": "order", node % 4 + 1);
            worker_t *holder = workers_by_id (workers, id);
            if (holder && (holder->identity_size != sizeof identity || memcmp (holder->identity, identity, sizeof identity) != 0))
                s_twice_id = true;
            w = workers_register (workers, identity, sizeof identity, node < 4? "catalog": "order", id);
            FUZZ_CHECK (w && w->alive && !w->has_status);
            if (arg_size)
                s_apply (w, arg, arg_size);
        }
        else
        if (command == 1 && w && w->alive)
            s_apply (w, arg, arg_size);
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
        //  (after a known bug, what the nodes were told is unknown: the
        //  checks of elections stop, the calls go on)
        char new_primary [65], new_isr [4097];
        tolerated |= !s_check_assign (controller, "catalog", new_primary, new_isr);
        tolerated |= !s_check_assign (controller, "order", NULL, NULL);
        if (s_twice_id && !tolerated)
            tolerated = fuzz_known ("broker-takes-a-node-id-twice");
        if (s_foreign_catalog && !tolerated)
            tolerated = fuzz_known ("controller-takes-catalog-reports-from-any-service");
        uint64_t new_epoch = controller_epoch (controller, "catalog");
        FUZZ_CHECK (new_epoch >= epoch);
        if (!tolerated && *new_primary && strcmp (new_primary, primary) != 0) {
            if (elected)
                FUZZ_CHECK (new_epoch > epoch
                            && (s_in_list (isr, new_primary) || strcmp (new_primary, last_primary) == 0));
            elected = true;
            snprintf (last_primary, sizeof last_primary, "%s", new_primary);
        }
        epoch = new_epoch;
        snprintf (primary, sizeof primary, "%s", new_primary);
        snprintf (isr, sizeof isr, "%s", new_isr);

        worker_t *catalog_primary = controller_catalog_primary (controller, workers);
        if (catalog_primary) {
            FUZZ_CHECK (catalog_primary->alive && catalog_primary->has_status);
            FUZZ_CHECK (tolerated || strcmp (catalog_primary->service, "catalog") == 0);
            worker_partition_t *report = worker_partition (catalog_primary, "catalog");
            FUZZ_CHECK (report && strcmp (report->role, "primary") == 0 && report->epoch == epoch);
            FUZZ_CHECK (tolerated || strcmp (catalog_primary->id, primary) == 0);
        }
        for (size_t i = 0; i < workers_size (workers); i++) {
            worker_t *worker = workers_at (workers, i);
            //  The primary the nodes are told of, alive and in the role at
            //  this epoch, is the one writes go to
            worker_partition_t *report = worker->alive && worker->has_status? worker_partition (worker, "catalog"): NULL;
            if (!tolerated && *primary && strcmp (worker->id, primary) == 0 && strcmp (worker->service, "catalog") == 0
            &&  report && strcmp (report->role, "primary") == 0 && report->epoch == epoch)
                FUZZ_CHECK (catalog_primary == worker);
            const char *role = controller_role (controller, worker);
            FUZZ_CHECK (strcmp (role, "primary") == 0 || strcmp (role, "follower") == 0);
            //  Of the catalog nodes, only the one named primary says so
            FUZZ_CHECK (tolerated || strcmp (worker->service, "catalog") != 0 || strcmp (role, "primary") != 0
                        || strcmp (worker->id, primary) == 0);
            FUZZ_CHECK (!controller_insync (controller, worker) || worker->alive);
            controller_lag (controller, workers, worker);
        }
    }
    controller_destroy (&controller);
    workers_destroy (&workers);
    return 0;
}
