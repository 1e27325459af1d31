/*  requests - the broker's table of requests in flight, and the queue of
 *  each service's requests waiting for a worker.
 *
 *  A request lives in a slot of one growing array from the moment a client
 *  sends it until it is answered (or given up on); the broker keeps its
 *  client's routing id and its body as raw zmq_msg_t so that it can send
 *  the same body again when its worker dies.  Workers see a request as a
 *  16-byte token: its slot index, the slot's generation, and the table's
 *  incarnation, 64 random bits chosen at requests_new.  A reply whose token
 *  names a freed or reused slot is a stale one and is dropped; so is one
 *  whose token another incarnation handed out.  Generations start again
 *  at 1 when the broker restarts, and a node keeps its socket across a
 *  quick restart: without the incarnation, a late reply from before the
 *  restart could name a live request of the new broker and answer it with
 *  an unrelated body.
 *
 *  The services the broker knows are named at start, and more may be
 *  added while it runs (requests_service_add: a standard worker offering
 *  a service the allow-list's "*" admits), up to REQUESTS_MAX_SERVICES;
 *  each has a FIFO of its requests that no worker can take yet, linked
 *  through the requests' next fields.
 *
 *  Ownership: requests_new returns a table the caller destroys with
 *  requests_destroy, which frees the requests still in it.  The quota is
 *  borrowed: every freed request gives its client's place back.  A
 *  request_t pointer stays valid until the next requests_alloc (the array
 *  may move): keep indexes, not pointers, across allocations.
 *  Single-threaded.
 */
#ifndef REQUESTS_H_INCLUDED
#define REQUESTS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "bs_msg.h"
#include "bs_sizes.h"
#include "cache.h"
#include "quota.h"
#include "workers.h"

#define REQUEST_TOKEN_SIZE  16          //  slot index, generation, incarnation
#define REQUESTS_MAX_SERVICES 32
//  Body frames a request of a standard (non-bookstore) service may carry;
//  the bookstore's own services take exactly one
#define REQUEST_BODY_FRAMES_MAX 8
#define NO_REQUEST          UINT32_MAX  //  end of a queue or free list

typedef struct {
    bool used;
    uint32_t gen;               //  bumped on reuse; part of the token
    zmq_msg_t client;           //  client routing id
    zmq_msg_t body;             //  the first body frame
    zmq_msg_t *more;            //  a standard service's further body frames
    int more_count;             //  (allocated; NULL and 0 for one frame)
    int service;                //  index of its service (requests_service_name)
    bs_op_t op;                 //  peeked from the body, for routing
    char target [BS_ID_MAX + 1];           //  "service@node": only this node
    worker_t *worker;           //  NULL while waiting for a worker
    uint64_t sent_to;           //  serial of the registration it was last
                                //  sent to (0: none): the one whose reply
                                //  it takes, even late
    bool from_node;             //  a node's request (decrement), which came
                                //  on the node socket and is answered there
    int64_t deadline;           //  while waiting: when to give up
    int64_t created;
    uint32_t next;              //  pending queue link, or free-list link
    //  A catalog read whose reply may be cached under this key, if it was
    //  read at a seq no lower than the key's floor and the catalog epoch
    //  has not changed meanwhile
    bool cacheable;
    uint8_t cache_key_size;
    uint8_t cache_key [CACHE_KEY_MAX];
    uint64_t cache_epoch;
    uint32_t cache_round;       //  the broker's serving round it was read in
    uint64_t client_key;        //  its client's quota
} request_t;

typedef struct _requests_t requests_t;

//  services: comma-separated names (the first REQUESTS_MAX_SERVICES; an
//  entry "*" names none)
requests_t *requests_new (const char *services, quota_t *quota);
void requests_destroy (requests_t **self_p);

//  Takes a free slot (growing the table when none is left) and returns
//  its index; the request is used, has a new generation, and no worker
uint32_t requests_alloc (requests_t *self);

//  Closes the request's frames (the further body frames too), gives its quota back and frees its slot
void requests_free (requests_t *self, uint32_t index);

//  The request in a slot (used or not); index < requests_cap
request_t *requests_at (requests_t *self, uint32_t index);

//  Slots in the table, and requests in flight
uint32_t requests_cap (requests_t *self);
uint32_t requests_inflight (requests_t *self);

//  Writes the token of a request into token (REQUEST_TOKEN_SIZE bytes)
void requests_token (requests_t *self, uint32_t index, uint8_t *token);

//  The request a token frame names, with its index in *index_p; NULL when
//  the frame is no token, is another incarnation's, or its slot was freed
//  or reused since
request_t *requests_by_token (requests_t *self, const zmq_msg_t *frame, uint32_t *index_p);

//  The services: their count, the index of one by name (-1: none), a name
int requests_service_count (requests_t *self);
int requests_service_find (requests_t *self, const char *name);
const char *requests_service_name (requests_t *self, int service);

//  Adds a service (a name of 1 to BS_SERVICE_MAX bytes) and returns its
//  index, or that of the service already by that name; -1 when the table
//  holds REQUESTS_MAX_SERVICES already
int requests_service_add (requests_t *self, const char *name);

//  Appends a request to its service's queue (it has no worker then)
void requests_enqueue (requests_t *self, uint32_t index);

//  Takes a request out of its service's queue, if it is there
void requests_unqueue (requests_t *self, uint32_t index);

//  Empties a service's queue and returns its former head (NO_REQUEST when
//  it was empty); the caller walks the former queue through the requests'
//  next fields, reading each next before handling the request
uint32_t requests_take_queue (requests_t *self, int service);

//  Takes the head of a service's queue if its deadline has come (<= now);
//  NO_REQUEST otherwise
uint32_t requests_pop_expired (requests_t *self, int service, int64_t now);

//  Forgets every queue (their requests were freed)
void requests_clear_queues (requests_t *self);

#endif
