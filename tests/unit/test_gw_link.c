/*  test_gw_link - the gateway's asynchronous broker link: many calls under
 *  way at once on one socket, each answered by its own reply; one answer for
 *  two calls with the same request id; cancelled calls never called back;
 *  a Binary Star pair whose first broker is the backup, silent or killed;
 *  and a broker that never answers: the call fails after its attempts.  */
#include "fake_broker.h"
#include "gw_link.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

#define CALLS 50

typedef struct {
    int calls;                  //  times called back
    bool ok;
    bs_err_t err;
    int64_t item;               //  the answer's item
    int64_t at;                 //  when, zclock_mono
} outcome_t;

static void
s_done (void *arg, const bs_msg_t *answer, bs_err_t err)
{
    outcome_t *outcome = arg;
    outcome->calls++;
    outcome->ok = answer && bs_msg_int (answer, BS_FIELD_ok);
    outcome->err = err;
    outcome->item = answer? bs_msg_int (answer, BS_FIELD_item): 0;
    outcome->at = zclock_mono ();
}

static bs_msg_t *
s_lookup (int64_t item)
{
    bs_msg_t *request = bs_msg_new_request (BS_OP_lookup);
    bs_msg_set_int (request, BS_FIELD_item, item);
    return request;
}

//  Runs the link's loop until every outcome was called back or the time is up
static void
s_run (gw_link_t *link, outcome_t *outcomes, int count, int ms)
{
    int64_t end = zclock_mono () + ms;
    while (zclock_mono () < end) {
        int done = 0;
        for (int i = 0; i < count; i++)
            done += outcomes [i].calls > 0;
        if (done == count)
            return;
        int wait = gw_link_tick (link);
        zmq_pollitem_t items [2] = {
            { gw_link_socket (link), 0, ZMQ_POLLIN, 0 },
            { gw_link_monitor (link), 0, ZMQ_POLLIN, 0 }
        };
        zmq_poll (items, items [1].socket? 2: 1, wait < 0 || wait > 20? 20: wait);
        if (items [0].revents & ZMQ_POLLIN)
            gw_link_on_input (link);
    }
}

static void
test_many_at_once (void)
{
    zactor_t *broker = fake_broker_new (FAKE_OK);
    char *endpoint = fake_broker_endpoint (broker);
    gw_link_t *link = gw_link_new (endpoint, NULL, 2000, 2);
    CHECK (link);
    outcome_t outcomes [CALLS] = { { 0 } };
    for (int i = 0; i < CALLS; i++) {
        bs_msg_t *request = s_lookup (1000 + i);
        CHECK (gw_link_call (link, "catalog", request, 0, 0, s_done, &outcomes [i]) != NULL);
        bs_msg_destroy (&request);
    }
    //  None is called back before the loop runs
    int early = 0;
    for (int i = 0; i < CALLS; i++)
        early += outcomes [i].calls;
    CHECK_EQ (early, 0);
    CHECK_EQ (gw_link_pending (link), CALLS);
    s_run (link, outcomes, CALLS, 5000);
    int right = 0;
    for (int i = 0; i < CALLS; i++)
        right += outcomes [i].calls == 1 && outcomes [i].ok && outcomes [i].item == 1000 + i;
    CHECK_EQ (right, CALLS);
    CHECK_EQ (gw_link_pending (link), 0);

    //  The same rid twice at once: one request, one answer for both
    outcome_t twins [2] = { { 0 } };
    bs_msg_t *request = s_lookup (7);
    gw_link_call (link, "catalog", request, 0, 0, s_done, &twins [0]);
    gw_link_call (link, "catalog", request, 0, 0, s_done, &twins [1]);
    bs_msg_destroy (&request);
    CHECK_EQ (gw_link_pending (link), 1);
    s_run (link, twins, 2, 5000);
    CHECK (twins [0].calls == 1 && twins [1].calls == 1 && twins [0].item == 7 && twins [1].item == 7);

    //  A cancelled call is never called back; its reply is dropped
    outcome_t gone = { 0 }, kept = { 0 };
    request = s_lookup (8);
    gw_waiter_t *waiter = gw_link_call (link, "catalog", request, 0, 0, s_done, &gone);
    bs_msg_destroy (&request);
    gw_link_cancel (link, &waiter);
    CHECK (waiter == NULL);
    CHECK_EQ (gw_link_pending (link), 0);
    request = s_lookup (9);
    gw_link_call (link, "catalog", request, 0, 0, s_done, &kept);
    bs_msg_destroy (&request);
    s_run (link, &kept, 1, 5000);
    CHECK (kept.calls == 1 && kept.item == 9 && gone.calls == 0);

    //  A bad endpoint or list is refused at once
    char *bad = zsys_sprintf ("%s,", endpoint);
    CHECK (gw_link_new (bad, NULL, 1000, 1) == NULL);
    zstr_free (&bad);
    gw_link_destroy (&link);
    CHECK (link == NULL);
    zstr_free (&endpoint);
    zactor_destroy (&broker);
}

//  A broker that never answers: the call fails with timeout after its
//  attempts, each resending the same rid
static void
test_silent (void)
{
    zactor_t *broker = fake_broker_new (FAKE_SILENT);
    char *endpoint = fake_broker_endpoint (broker);
    gw_link_t *link = gw_link_new (endpoint, NULL, 200, 2);
    outcome_t outcome = { 0 };
    bs_msg_t *request = s_lookup (1);
    int64_t start = zclock_mono ();
    gw_link_call (link, "catalog", request, 0, 0, s_done, &outcome);
    bs_msg_destroy (&request);
    s_run (link, &outcome, 1, 5000);
    CHECK (outcome.calls == 1 && !outcome.ok && outcome.err == BS_ERR_timeout);
    CHECK (outcome.at - start >= 400);
    char *rids = fake_broker_rids (broker);
    //  Two attempts, the same rid: "hex,hex"
    CHECK (rids && strlen (rids) == 2 * (2 * BS_RID_SIZE) + 1
           && memcmp (rids, rids + 2 * BS_RID_SIZE + 1, 2 * BS_RID_SIZE) == 0);
    zstr_free (&rids);
    gw_link_destroy (&link);
    zstr_free (&endpoint);
    zactor_destroy (&broker);
}

//  A pair: the first broker says not_active, or is silent, or is killed
static void
test_pair (void)
{
    fake_mode_t modes [] = { FAKE_NOT_ACTIVE, FAKE_SILENT, FAKE_DIE };
    for (size_t m = 0; m < sizeof modes / sizeof modes [0]; m++) {
        zactor_t *a = fake_broker_new (modes [m]), *b = fake_broker_new (FAKE_OK);
        char *ea = fake_broker_endpoint (a), *eb = fake_broker_endpoint (b);
        char *list = zsys_sprintf ("%s,%s", ea, eb);
        gw_link_t *link = gw_link_new (list, NULL, 300, 3);
        CHECK (link);
        outcome_t outcomes [4] = { { 0 } };
        int64_t start = zclock_mono ();
        for (int i = 0; i < 4; i++) {
            bs_msg_t *request = s_lookup (100 + i);
            gw_link_call (link, "catalog", request, 0, 0, s_done, &outcomes [i]);
            bs_msg_destroy (&request);
        }
        s_run (link, outcomes, 4, 5000);
        int right = 0;
        for (int i = 0; i < 4; i++)
            right += outcomes [i].calls == 1 && outcomes [i].ok && outcomes [i].item == 100 + i;
        CHECK_EQ (right, 4);
        //  not_active and a killed broker move on at once, silence after
        //  one attempt's timeout
        int64_t took = outcomes [3].at - start;
        if (modes [m] == FAKE_SILENT)
            CHECK (took >= 300 && took < 2000);
        else
            CHECK (took < 300);
        CHECK (strcmp (gw_link_endpoint (link), eb) == 0);
        gw_link_destroy (&link);
        zstr_free (&list);
        zstr_free (&ea);
        zstr_free (&eb);
        zactor_destroy (&a);
        zactor_destroy (&b);
    }
}

//  A shutdown answers every call under way
static void
test_fail_all (void)
{
    zactor_t *broker = fake_broker_new (FAKE_SILENT);
    char *endpoint = fake_broker_endpoint (broker);
    gw_link_t *link = gw_link_new (endpoint, NULL, 5000, 1);
    outcome_t outcomes [3] = { { 0 } };
    for (int i = 0; i < 3; i++) {
        bs_msg_t *request = s_lookup (i + 1);
        gw_link_call (link, "catalog", request, 0, 0, s_done, &outcomes [i]);
        bs_msg_destroy (&request);
    }
    gw_link_fail_all (link, BS_ERR_unavailable);
    int failed = 0;
    for (int i = 0; i < 3; i++)
        failed += outcomes [i].calls == 1 && outcomes [i].err == BS_ERR_unavailable;
    CHECK_EQ (failed, 3);
    CHECK_EQ (gw_link_pending (link), 0);
    gw_link_destroy (&link);
    zstr_free (&endpoint);
    zactor_destroy (&broker);
}

int
main (void)
{
    zsys_init ();
    RUN (test_many_at_once);
    RUN (test_silent);
    RUN (test_pair);
    RUN (test_fail_all);
    return DONE ();
}
