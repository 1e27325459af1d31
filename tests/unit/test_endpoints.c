/*  test_endpoints - broker endpoint lists and moving between them  */
#include "bs_endpoints.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

static void
test_parse (void)
{
    bs_endpoints_t *list = bs_endpoints_new ("tcp://a:1,tcp://b:2");
    CHECK (list && bs_endpoints_size (list) == 2);
    CHECK (strcmp (bs_endpoints_at (list, 0), "tcp://a:1") == 0);
    CHECK (strcmp (bs_endpoints_at (list, 1), "tcp://b:2") == 0);
    CHECK (bs_endpoints_at (list, 2) == NULL);
    CHECK (strcmp (bs_endpoints_text (list), "tcp://a:1,tcp://b:2") == 0);
    bs_endpoints_destroy (&list);
    CHECK (list == NULL);
    list = bs_endpoints_new ("tcp://only:1");
    CHECK (list && bs_endpoints_size (list) == 1);
    bs_endpoints_destroy (&list);
}

static void
test_refused (void)
{
    const char *bad [] = { "", ",", "tcp://a:1,", ",tcp://a:1", "tcp://a:1,,tcp://b:2",
                           "1,2,3,4,5,6,7,8,9", NULL };
    for (int i = 0; bad [i]; i++)
        CHECK (bs_endpoints_new (bad [i]) == NULL);
    CHECK (bs_endpoints_new (NULL) == NULL);
    char longer [300];
    memset (longer, 'x', sizeof longer - 1);
    longer [sizeof longer - 1] = 0;
    CHECK (bs_endpoints_new (longer) == NULL);
}

static void
test_rotation (void)
{
    bs_endpoints_t *list = bs_endpoints_new ("tcp://a:1,tcp://b:2,tcp://c:3");
    CHECK (bs_endpoints_index (list) == 0 && strcmp (bs_endpoints_current (list), "tcp://a:1") == 0);
    CHECK (strcmp (bs_endpoints_next (list), "tcp://b:2") == 0 && bs_endpoints_index (list) == 1);
    CHECK (strcmp (bs_endpoints_next (list), "tcp://c:3") == 0);
    CHECK (strcmp (bs_endpoints_next (list), "tcp://a:1") == 0 && bs_endpoints_index (list) == 0);
    bs_endpoints_select (list, 2);
    CHECK (bs_endpoints_index (list) == 2);
    bs_endpoints_select (list, 7);              //  out of range: unchanged
    CHECK (bs_endpoints_index (list) == 2);
    bs_endpoints_destroy (&list);
}

//  Every endpoint is checked, not only the one in use
static void
test_valid (void)
{
    bs_endpoints_t *list = bs_endpoints_new ("tcp://127.0.0.1:1,inproc://endpoints-valid");
    CHECK (list && bs_endpoints_valid (list));
    bs_endpoints_destroy (&list);
    list = bs_endpoints_new ("tcp://127.0.0.1:1,nonsense");
    CHECK (list && !bs_endpoints_valid (list));
    bs_endpoints_destroy (&list);
    list = bs_endpoints_new ("tcp://127.0.0.1");        //  no port
    CHECK (list && !bs_endpoints_valid (list));
    bs_endpoints_destroy (&list);
}

//  A request sent after a switch reaches the second server, not the first
static void
test_switch (void)
{
    zsock_t *first = zsock_new_router ("inproc://endpoints-first");
    zsock_t *second = zsock_new_router ("inproc://endpoints-second");
    bs_endpoints_t *list = bs_endpoints_new ("inproc://endpoints-first,inproc://endpoints-second");
    zsock_t *client = zsock_new (ZMQ_DEALER);
    CHECK (zsock_connect (client, "%s", bs_endpoints_current (list)) == 0);
    zstr_send (client, "one");
    char *got = zstr_recv (first);      //  routing id
    zstr_free (&got);
    got = zstr_recv (first);
    CHECK (got && strcmp (got, "one") == 0);
    zstr_free (&got);
    CHECK (bs_endpoints_switch (list, client) == 0);
    CHECK (bs_endpoints_index (list) == 1);
    zstr_send (client, "two");
    zsock_set_rcvtimeo (second, 2000);
    got = zstr_recv (second);
    zstr_free (&got);
    got = zstr_recv (second);
    CHECK (got && strcmp (got, "two") == 0);
    zstr_free (&got);
    zsock_set_rcvtimeo (first, 100);
    got = zstr_recv (first);
    CHECK (got == NULL);                //  nothing went to the first
    zsock_destroy (&client);
    zsock_destroy (&first);
    zsock_destroy (&second);
    bs_endpoints_destroy (&list);
}

int
main (void)
{
    RUN (test_parse);
    RUN (test_refused);
    RUN (test_rotation);
    RUN (test_valid);
    RUN (test_switch);
    return DONE ();
}
