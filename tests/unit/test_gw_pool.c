/*  test_gw_pool - the gateway's pool of broker clients with a Binary Star
 *  pair: calls get through when the first broker is the backup or silent,
 *  and a client made to replace one that failed starts with the broker that
 *  last answered instead of trying a dead one first again.  */
#include "fake_broker.h"
#include "gw_pool.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

static bs_msg_t *
s_call (gw_pool_t *pool, int timeout_ms, int attempts, int64_t *took_p)
{
    bs_msg_t *request = bs_msg_new_request (BS_OP_lookup);
    bs_msg_set_int (request, BS_FIELD_item, 666);
    bs_err_t err = BS_OK;
    int64_t start = zclock_mono ();
    bs_msg_t *reply = gw_pool_call (pool, "catalog", request, timeout_ms, attempts, &err);
    *took_p = zclock_mono () - start;
    bs_msg_destroy (&request);
    return reply;
}

static void
test_not_active (void)
{
    zactor_t *a = fake_broker_new (FAKE_NOT_ACTIVE), *b = fake_broker_new (FAKE_OK);
    char *ea = fake_broker_endpoint (a), *eb = fake_broker_endpoint (b);
    char *list = zsys_sprintf ("%s,%s", ea, eb);
    gw_pool_t *pool = gw_pool_new (list, NULL, 2, 5000, 2);
    CHECK (pool);
    int64_t took;
    bs_msg_t *reply = s_call (pool, 0, 0, &took);
    CHECK (reply && bs_msg_int (reply, BS_FIELD_ok));
    CHECK (took < 1000);
    bs_msg_destroy (&reply);
    gw_pool_destroy (&pool);
    //  A malformed list is refused at once
    char *bad = zsys_sprintf ("%s,", list);
    CHECK (gw_pool_new (bad, NULL, 2, 5000, 2) == NULL);
    zstr_free (&bad);
    zstr_free (&list);
    zstr_free (&ea);
    zstr_free (&eb);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

static void
test_new_client_starts_where_answered (void)
{
    zactor_t *a = fake_broker_new (FAKE_SILENT), *b = fake_broker_new (FAKE_OK);
    char *ea = fake_broker_endpoint (a), *eb = fake_broker_endpoint (b);
    char *list = zsys_sprintf ("%s,%s", ea, eb);
    gw_pool_t *pool = gw_pool_new (list, NULL, 1, 300, 2);
    int64_t took;
    //  The first broker is silent: the call gets through after one timeout
    bs_msg_t *reply = s_call (pool, 0, 0, &took);
    CHECK (reply && bs_msg_int (reply, BS_FIELD_ok));
    CHECK (took >= 300 && took < 1500);
    bs_msg_destroy (&reply);
    //  A call that fails costs the pool its client
    fake_broker_mode (b, FAKE_SILENT);
    reply = s_call (pool, 200, 1, &took);
    CHECK (reply == NULL);
    //  Its replacement starts with the broker that answered last
    fake_broker_mode (b, FAKE_OK);
    reply = s_call (pool, 2000, 2, &took);
    CHECK (reply && bs_msg_int (reply, BS_FIELD_ok));
    CHECK (took < 1000);
    bs_msg_destroy (&reply);
    gw_pool_destroy (&pool);
    zstr_free (&list);
    zstr_free (&ea);
    zstr_free (&eb);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

int
main (void)
{
    zsys_init ();
    RUN (test_not_active);
    RUN (test_new_client_starts_where_answered);
    return DONE ();
}
