/*  requests - the broker's table of requests in flight and its services'
 *  queues (see requests.h).
 */
#include "requests.h"
#include "bs_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name [BS_SERVICE_MAX + 1];
    uint32_t head, tail;        //  requests waiting for a worker
} service_t;

struct _requests_t {
    quota_t *quota;             //  borrowed
    request_t *requests;
    uint32_t cap;
    uint32_t free_head;
    uint32_t inflight;
    uint64_t incarnation;       //  random, in every token of this table
    service_t services [REQUESTS_MAX_SERVICES];
    int service_count;
};

requests_t *
requests_new (const char *services, quota_t *quota)
{
    requests_t *self = calloc (1, sizeof (requests_t));
    if (!self)
        abort ();
    self->quota = quota;
    bs_random_bytes ((uint8_t *) &self->incarnation, sizeof self->incarnation);
    self->free_head = NO_REQUEST;
    for (int i = 0; i < REQUESTS_MAX_SERVICES; i++)
        self->services [i].head = self->services [i].tail = NO_REQUEST;
    char *names = bs_strdup (services);
    for (char *tok = strtok (names, ","); tok; tok = strtok (NULL, ","))
        if (strcmp (tok, "*") != 0)
            requests_service_add (self, tok);
    free (names);
    return self;
}

void
requests_destroy (requests_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    requests_t *self = *self_p;
    for (uint32_t i = 0; i < self->cap; i++)
        if (self->requests [i].used)
            requests_free (self, i);
    free (self->requests);
    free (self);
    *self_p = NULL;
}

uint32_t
requests_alloc (requests_t *self)
{
    if (self->free_head == NO_REQUEST) {
        uint32_t old = self->cap;
        uint32_t cap = old? old * 2: 1024;
        self->requests = realloc (self->requests, cap * sizeof (request_t));
        if (!self->requests)
            abort ();
        memset (self->requests + old, 0, (cap - old) * sizeof (request_t));
        for (uint32_t i = old; i < cap; i++)
            self->requests [i].next = i + 1 < cap? i + 1: NO_REQUEST;
        self->free_head = old;
        self->cap = cap;
    }
    uint32_t index = self->free_head;
    request_t *req = &self->requests [index];
    self->free_head = req->next;
    req->used = true;
    req->gen++;
    req->next = NO_REQUEST;
    req->worker = NULL;
    req->sent_to = 0;
    req->from_node = false;
    self->inflight++;
    return index;
}

void
requests_free (requests_t *self, uint32_t index)
{
    request_t *req = &self->requests [index];
    quota_give (self->quota, req->client_key);
    zmq_msg_close (&req->client);
    zmq_msg_close (&req->body);
    for (int i = 0; i < req->more_count; i++)
        zmq_msg_close (&req->more [i]);
    free (req->more);
    req->more = NULL;
    req->more_count = 0;
    req->used = false;
    req->worker = NULL;
    req->next = self->free_head;
    self->free_head = index;
    self->inflight--;
}

request_t *
requests_at (requests_t *self, uint32_t index)
{
    return &self->requests [index];
}

uint32_t
requests_cap (requests_t *self)
{
    return self->cap;
}

uint32_t
requests_inflight (requests_t *self)
{
    return self->inflight;
}

void
requests_token (requests_t *self, uint32_t index, uint8_t *token)
{
    uint32_t gen = self->requests [index].gen;
    memcpy (token, &index, 4);
    memcpy (token + 4, &gen, 4);
    memcpy (token + 8, &self->incarnation, 8);
}

request_t *
requests_by_token (requests_t *self, const zmq_msg_t *frame, uint32_t *index_p)
{
    if (zmq_msg_size ((zmq_msg_t *) frame) != REQUEST_TOKEN_SIZE)
        return NULL;
    const uint8_t *data = zmq_msg_data ((zmq_msg_t *) frame);
    uint32_t index, gen;
    uint64_t incarnation;
    memcpy (&index, data, 4);
    memcpy (&gen, data + 4, 4);
    memcpy (&incarnation, data + 8, 8);
    if (incarnation != self->incarnation || index >= self->cap)
        return NULL;
    request_t *req = &self->requests [index];
    if (!req->used || req->gen != gen)
        return NULL;
    *index_p = index;
    return req;
}

int
requests_service_count (requests_t *self)
{
    return self->service_count;
}

int
requests_service_find (requests_t *self, const char *name)
{
    for (int i = 0; i < self->service_count; i++)
        if (strcmp (self->services [i].name, name) == 0)
            return i;
    return -1;
}

const char *
requests_service_name (requests_t *self, int service)
{
    return self->services [service].name;
}

int
requests_service_add (requests_t *self, const char *name)
{
    int found = requests_service_find (self, name);
    if (found >= 0)
        return found;
    if (self->service_count == REQUESTS_MAX_SERVICES)
        return -1;
    service_t *svc = &self->services [self->service_count];
    snprintf (svc->name, sizeof svc->name, "%s", name);
    svc->head = svc->tail = NO_REQUEST;
    return self->service_count++;
}

void
requests_enqueue (requests_t *self, uint32_t index)
{
    request_t *req = &self->requests [index];
    service_t *svc = &self->services [req->service];
    req->worker = NULL;
    req->next = NO_REQUEST;
    if (svc->tail == NO_REQUEST)
        svc->head = index;
    else
        self->requests [svc->tail].next = index;
    svc->tail = index;
}

void
requests_unqueue (requests_t *self, uint32_t index)
{
    request_t *req = &self->requests [index];
    service_t *svc = &self->services [req->service];
    uint32_t prev = NO_REQUEST;
    for (uint32_t i = svc->head; i != NO_REQUEST; prev = i, i = self->requests [i].next)
        if (i == index) {
            if (prev == NO_REQUEST)
                svc->head = req->next;
            else
                self->requests [prev].next = req->next;
            if (svc->tail == index)
                svc->tail = prev;
            break;
        }
}

uint32_t
requests_take_queue (requests_t *self, int service)
{
    service_t *svc = &self->services [service];
    uint32_t head = svc->head;
    svc->head = svc->tail = NO_REQUEST;
    return head;
}

uint32_t
requests_pop_expired (requests_t *self, int service, int64_t now)
{
    service_t *svc = &self->services [service];
    if (svc->head == NO_REQUEST || self->requests [svc->head].deadline > now)
        return NO_REQUEST;
    uint32_t index = svc->head;
    svc->head = self->requests [index].next;
    if (svc->head == NO_REQUEST)
        svc->tail = NO_REQUEST;
    return index;
}

void
requests_clear_queues (requests_t *self)
{
    for (int s = 0; s < self->service_count; s++)
        self->services [s].head = self->services [s].tail = NO_REQUEST;
}
