/*  test_requests - the broker's table of requests in flight: the tokens
 *  nodes echo in their replies
 */
#include "requests.h"
#include "testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Takes a slot for a request, as the broker does for a client's request,
//  and writes its token into token
static uint32_t
s_request (requests_t *requests, uint8_t *token)
{
    uint32_t index = requests_alloc (requests);
    request_t *req = requests_at (requests, index);
    zmq_msg_init (&req->client);
    zmq_msg_init (&req->body);
    requests_token (requests, index, token);
    return index;
}

//  The request a node's reply with this token would reach, or NULL
static request_t *
s_by_token (requests_t *requests, const uint8_t *token, size_t size, uint32_t *index_p)
{
    zmq_msg_t frame;
    zmq_msg_init_size (&frame, size);
    memcpy (zmq_msg_data (&frame), token, size);
    request_t *req = requests_by_token (requests, &frame, index_p);
    zmq_msg_close (&frame);
    return req;
}

static void
test_live_token_is_accepted (void)
{
    quota_t *quota = quota_new (100, 1000);
    requests_t *requests = requests_new ("catalog,order", quota);
    uint8_t token [REQUEST_TOKEN_SIZE];
    uint32_t index = s_request (requests, token);
    uint32_t found = NO_REQUEST;
    CHECK (s_by_token (requests, token, sizeof token, &found) == requests_at (requests, index));
    CHECK_EQ (found, index);
    //  A frame of another size is no token
    CHECK (s_by_token (requests, token, sizeof token - 1, &found) == NULL);
    requests_destroy (&requests);
    quota_destroy (&quota);
}

//  A broker that restarted hands out slot 0 at generation 1 again; a late
//  reply to the request the former broker had there must not answer the
//  new one
static void
test_other_incarnation_is_refused (void)
{
    quota_t *quota = quota_new (100, 1000);
    requests_t *before = requests_new ("catalog", quota);
    requests_t *after = requests_new ("catalog", quota);
    uint8_t old_token [REQUEST_TOKEN_SIZE], new_token [REQUEST_TOKEN_SIZE];
    uint32_t old_index = s_request (before, old_token);
    uint32_t new_index = s_request (after, new_token);
    CHECK_EQ (old_index, new_index);
    uint32_t found = NO_REQUEST;
    CHECK (s_by_token (after, old_token, sizeof old_token, &found) == NULL);
    CHECK (s_by_token (before, new_token, sizeof new_token, &found) == NULL);
    //  Each still takes its own
    CHECK (s_by_token (after, new_token, sizeof new_token, &found) == requests_at (after, new_index));
    CHECK (s_by_token (before, old_token, sizeof old_token, &found) == requests_at (before, old_index));
    requests_destroy (&before);
    requests_destroy (&after);
    quota_destroy (&quota);
}

//  A reply to a request that was answered already (its slot freed, then
//  reused) is stale
static void
test_stale_generation_is_refused (void)
{
    quota_t *quota = quota_new (100, 1000);
    requests_t *requests = requests_new ("catalog", quota);
    uint8_t first [REQUEST_TOKEN_SIZE], second [REQUEST_TOKEN_SIZE];
    uint32_t index = s_request (requests, first);
    requests_free (requests, index);
    uint32_t found = NO_REQUEST;
    CHECK (s_by_token (requests, first, sizeof first, &found) == NULL);
    CHECK_EQ (s_request (requests, second), index);
    CHECK (memcmp (first, second, sizeof first) != 0);
    CHECK (s_by_token (requests, first, sizeof first, &found) == NULL);
    CHECK (s_by_token (requests, second, sizeof second, &found) == requests_at (requests, index));
    CHECK_EQ (requests_inflight (requests), 1);
    requests_destroy (&requests);
    quota_destroy (&quota);
}

//  The services: those named at start ("*" names none), more added while
//  the broker runs up to REQUESTS_MAX_SERVICES, each once
static void
test_services_are_added_up_to_the_limit (void)
{
    quota_t *quota = quota_new (100, 1000);
    requests_t *requests = requests_new ("catalog,*,order", quota);
    CHECK_EQ (requests_service_count (requests), 2);
    CHECK_EQ (requests_service_find (requests, "*"), -1);
    CHECK_EQ (requests_service_add (requests, "order"), 1);
    CHECK_EQ (requests_service_add (requests, "echo"), 2);
    CHECK_EQ (requests_service_find (requests, "echo"), 2);
    CHECK (strcmp (requests_service_name (requests, 2), "echo") == 0);
    CHECK_EQ (requests_take_queue (requests, 2), NO_REQUEST);
    char name [16];
    for (int i = 3; i < REQUESTS_MAX_SERVICES; i++) {
        snprintf (name, sizeof name, "svc-%d", i);
        CHECK_EQ (requests_service_add (requests, name), i);
    }
    CHECK_EQ (requests_service_add (requests, "one-too-many"), -1);
    CHECK_EQ (requests_service_count (requests), REQUESTS_MAX_SERVICES);
    CHECK_EQ (requests_service_add (requests, "echo"), 2);
    requests_destroy (&requests);
    quota_destroy (&quota);
}

//  A standard service's further body frames are the table's to close
static void
test_further_body_frames_are_freed (void)
{
    quota_t *quota = quota_new (100, 1000);
    requests_t *requests = requests_new ("echo", quota);
    uint8_t token [REQUEST_TOKEN_SIZE];
    uint32_t index = s_request (requests, token);
    request_t *req = requests_at (requests, index);
    req->more_count = 2;
    req->more = calloc (2, sizeof (zmq_msg_t));
    if (!req->more)
        abort ();
    zmq_msg_init_size (&req->more [0], 100);
    zmq_msg_init_size (&req->more [1], 200);
    requests_free (requests, index);
    CHECK (req->more == NULL && req->more_count == 0);
    CHECK_EQ (requests_inflight (requests), 0);
    requests_destroy (&requests);
    quota_destroy (&quota);
}

int
main (void)
{
    RUN (test_live_token_is_accepted);
    RUN (test_other_incarnation_is_refused);
    RUN (test_stale_generation_is_refused);
    RUN (test_services_are_added_up_to_the_limit);
    RUN (test_further_body_frames_are_freed);
    return DONE ();
}
