/*  test_client - bs_client's failover between the brokers of a Binary Star
 *  pair, against in-process fake brokers on TCP: a "not_active" answer moves
 *  on at once, silence after the timeout, a killed broker at once; every
 *  resend carries the same rid.  */
#include "bs_client.h"
#include "fake_broker.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

static bs_msg_t *
s_request (char *hex)
{
    bs_msg_t *request = bs_msg_new_request (BS_OP_buy);
    bs_msg_set_int (request, BS_FIELD_item, 666);
    size_t size;
    fake_hex (bs_msg_bin (request, BS_FIELD_rid, &size), BS_RID_SIZE, hex);
    return request;
}

static bool
s_ok (bs_msg_t *reply)
{
    return reply && bs_msg_int (reply, BS_FIELD_ok);
}

static void
test_lists (void)
{
    CHECK (bs_client_new ("") == NULL);
    CHECK (bs_client_new ("tcp://127.0.0.1:1,") == NULL);
    CHECK (bs_client_new (",tcp://127.0.0.1:1") == NULL);
    CHECK (bs_client_new ("nonsense") == NULL);
    CHECK (bs_client_new ("tcp://127.0.0.1:1,nonsense") == NULL);
    bs_client_t *client = bs_client_new ("tcp://127.0.0.1:1");
    CHECK (client && streq (bs_client_endpoint (client), "tcp://127.0.0.1:1"));
    CHECK (client && bs_client_endpoint_count (client) == 1);
    //  One endpoint: failover keeps it, and nothing is ever lost
    CHECK (client && bs_client_failover (client) == 0 && streq (bs_client_endpoint (client), "tcp://127.0.0.1:1"));
    CHECK (client && !bs_client_lost (client));
    bs_client_destroy (&client);
    CHECK (client == NULL);
    client = bs_client_new ("tcp://127.0.0.1:1,tcp://127.0.0.1:2");
    CHECK (client && bs_client_endpoint_count (client) == 2);
    CHECK (client && streq (bs_client_endpoint (client), "tcp://127.0.0.1:1"));
    CHECK (client && bs_client_failover (client) == 0 && streq (bs_client_endpoint (client), "tcp://127.0.0.1:2"));
    CHECK (client && bs_client_failover (client) == 0 && streq (bs_client_endpoint (client), "tcp://127.0.0.1:1"));
    bs_client_destroy (&client);
}

//  One endpoint works as it always did
static void
test_single (void)
{
    zactor_t *a = fake_broker_new (FAKE_OK);
    char *ea = fake_broker_endpoint (a);
    bs_client_t *client = bs_client_new (ea);
    char hex [2 * BS_RID_SIZE + 1];
    bs_msg_t *request = s_request (hex);
    bs_msg_t *reply = bs_client_call (client, "order", request);
    CHECK (s_ok (reply));
    CHECK (fake_broker_got (a, hex));
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    bs_client_destroy (&client);
    zstr_free (&ea);
    zactor_destroy (&a);
}

//  The backup answers not_active: the same bytes go to the next broker at
//  once, well before the timeout; the client then stays there
static void
test_not_active (void)
{
    zactor_t *a = fake_broker_new (FAKE_NOT_ACTIVE), *b = fake_broker_new (FAKE_OK);
    char *list = fake_broker_pair (a, b);
    bs_client_t *client = bs_client_new (list);
    bs_client_set_timeout (client, 5000);
    char hex [2 * BS_RID_SIZE + 1];
    bs_msg_t *request = s_request (hex);
    int64_t start = zclock_mono ();
    bs_msg_t *reply = bs_client_call (client, "order", request);
    CHECK (s_ok (reply));
    CHECK (zclock_mono () - start < 1000);
    CHECK (fake_broker_got (a, hex));
    CHECK (fake_broker_got (b, hex));
    CHECK (strstr (list, bs_client_endpoint (client)) != list);     //  the second one
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    //  The next call goes straight to the broker that answered
    char hex2 [2 * BS_RID_SIZE + 1];
    request = s_request (hex2);
    reply = bs_client_call (client, "order", request);
    CHECK (s_ok (reply));
    CHECK (fake_broker_got (a, hex));
    char both [200];
    snprintf (both, sizeof both, "%s,%s", hex, hex2);
    CHECK (fake_broker_got (b, both));
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    bs_client_destroy (&client);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

//  A silent broker: after one timeout the same rid goes to the next
static void
test_silent (void)
{
    zactor_t *a = fake_broker_new (FAKE_SILENT), *b = fake_broker_new (FAKE_OK);
    char *list = fake_broker_pair (a, b);
    bs_client_t *client = bs_client_new (list);
    bs_client_set_timeout (client, 300);
    bs_client_set_attempts (client, 3);
    char hex [2 * BS_RID_SIZE + 1];
    bs_msg_t *request = s_request (hex);
    int64_t start = zclock_mono ();
    bs_msg_t *reply = bs_client_call (client, "order", request);
    int64_t took = zclock_mono () - start;
    CHECK (s_ok (reply));
    CHECK (took >= 300 && took < 1500);
    CHECK (fake_broker_got (a, hex));
    CHECK (fake_broker_got (b, hex));
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    bs_client_destroy (&client);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

//  A broker killed with the request in hand: its connection closes and the
//  client moves on at once, not after the (long) timeout
static void
test_killed (void)
{
    zactor_t *a = fake_broker_new (FAKE_DIE), *b = fake_broker_new (FAKE_OK);
    char *list = fake_broker_pair (a, b);
    bs_client_t *client = bs_client_new (list);
    bs_client_set_timeout (client, 10000);
    char hex [2 * BS_RID_SIZE + 1];
    bs_msg_t *request = s_request (hex);
    int64_t start = zclock_mono ();
    bs_msg_t *reply = bs_client_call (client, "order", request);
    CHECK (s_ok (reply));
    CHECK (zclock_mono () - start < 2000);
    CHECK (fake_broker_got (a, hex));
    CHECK (fake_broker_got (b, hex));
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    bs_client_destroy (&client);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

//  The first broker of the list is down when the client starts: its
//  connection is refused, and the client moves on without waiting out the
//  (long) attempt
static void
test_first_down (void)
{
    zactor_t *a = fake_broker_new (FAKE_OK), *b = fake_broker_new (FAKE_OK);
    char *list = fake_broker_pair (a, b);
    fake_broker_close (a);              //  nothing listens there any more
    bs_client_t *client = bs_client_new (list);
    bs_client_set_timeout (client, 10000);
    bs_client_set_attempts (client, 2);
    char hex [2 * BS_RID_SIZE + 1];
    bs_msg_t *request = s_request (hex);
    int64_t start = zclock_mono ();
    bs_msg_t *reply = bs_client_call (client, "order", request);
    CHECK (s_ok (reply));
    CHECK (zclock_mono () - start < 5000);
    CHECK (fake_broker_got (b, hex));
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    bs_client_destroy (&client);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

//  The broker in use dies between calls: the next call starts with the
//  other one rather than waiting out a timeout first
static void
test_lost_while_idle (void)
{
    zactor_t *a = fake_broker_new (FAKE_OK), *b = fake_broker_new (FAKE_OK);
    char *list = fake_broker_pair (a, b);
    bs_client_t *client = bs_client_new (list);
    bs_client_set_timeout (client, 10000);
    char hex [2 * BS_RID_SIZE + 1];
    bs_msg_t *request = s_request (hex);
    bs_msg_t *reply = bs_client_call (client, "order", request);
    CHECK (s_ok (reply));
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    CHECK (!bs_client_lost (client));
    fake_broker_close (a);
    int64_t until = zclock_mono () + 2000;
    while (!bs_client_lost (client) && zclock_mono () < until)
        zclock_sleep (10);
    CHECK (bs_client_lost (client));
    char hex2 [2 * BS_RID_SIZE + 1];
    request = s_request (hex2);
    int64_t start = zclock_mono ();
    reply = bs_client_call (client, "order", request);
    CHECK (s_ok (reply));
    CHECK (zclock_mono () - start < 1000);
    CHECK (fake_broker_got (a, hex));
    CHECK (fake_broker_got (b, hex2));
    CHECK (!bs_client_lost (client));
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    bs_client_destroy (&client);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

//  Both brokers passive: each round of not_active uses one attempt and
//  pauses; the caller gets the not_active answer in the end
static void
test_all_not_active (void)
{
    zactor_t *a = fake_broker_new (FAKE_NOT_ACTIVE), *b = fake_broker_new (FAKE_NOT_ACTIVE);
    char *list = fake_broker_pair (a, b);
    bs_client_t *client = bs_client_new (list);
    bs_client_set_timeout (client, 5000);
    bs_client_set_attempts (client, 2);
    char hex [2 * BS_RID_SIZE + 1];
    bs_msg_t *request = s_request (hex);
    int64_t start = zclock_mono ();
    bs_msg_t *reply = bs_client_call (client, "order", request);
    int64_t took = zclock_mono () - start;
    CHECK (reply && !bs_msg_int (reply, BS_FIELD_ok));
    CHECK (reply && streq (bs_msg_str (reply, BS_FIELD_error), "not_active"));
    CHECK (took >= 100 && took < 1000);
    char twice [200];
    snprintf (twice, sizeof twice, "%s,%s", hex, hex);
    CHECK (fake_broker_got (a, twice));
    CHECK (fake_broker_got (b, twice));
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    //  A takeover: the second becomes active, and the call gets through
    fake_broker_mode (b, FAKE_OK);
    request = s_request (hex);
    reply = bs_client_call (client, "order", request);
    CHECK (s_ok (reply));
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    bs_client_destroy (&client);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

//  Asynchronous users fail over themselves and resend the same request
static void
test_async_failover (void)
{
    zactor_t *a = fake_broker_new (FAKE_SILENT), *b = fake_broker_new (FAKE_OK);
    char *list = fake_broker_pair (a, b);
    bs_client_t *client = bs_client_new (list);
    void *sock = bs_client_socket (client);
    char hex [2 * BS_RID_SIZE + 1];
    bs_msg_t *request = s_request (hex);
    CHECK (bs_client_send (client, "order", request) == 0);
    zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
    CHECK (zmq_poll (&item, 1, 200) == 0);
    CHECK (bs_client_failover (client) == 0);
    CHECK (bs_client_socket (client) == sock);          //  poll items stay valid
    CHECK (bs_client_send (client, "order", request) == 0);
    CHECK (zmq_poll (&item, 1, 2000) == 1);
    bs_msg_t *reply = bs_client_recv (client);
    CHECK (s_ok (reply));
    size_t size;
    const uint8_t *rid = reply? bs_msg_bin (reply, BS_FIELD_rid, &size): NULL;
    char got [2 * BS_RID_SIZE + 1] = "";
    if (rid && size == BS_RID_SIZE)
        fake_hex (rid, size, got);
    CHECK (streq (got, hex));
    CHECK (fake_broker_got (a, hex));
    CHECK (fake_broker_got (b, hex));
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    bs_client_destroy (&client);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

int
main (void)
{
    zsys_init ();
    RUN (test_lists);
    RUN (test_single);
    RUN (test_not_active);
    RUN (test_silent);
    RUN (test_killed);
    RUN (test_first_down);
    RUN (test_lost_while_idle);
    RUN (test_all_not_active);
    RUN (test_async_failover);
    return DONE ();
}
