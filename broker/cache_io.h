/*  cache_io - the broker's cache on its sockets: answering a catalog read
 *  from a stored reply, storing a node's reply, and the catalog primary's
 *  invalidations on their REP socket.
 *
 *  The keys are cache.h's (cache_key_item, cache_key_topic,
 *  cache_key_for); this module moves raw zmq_msg_t bodies in and out and
 *  peeks into them (bs_peek_*) rather than decode them.
 *
 *  A plain-function module: no object; the cache, request, worker and
 *  sockets are borrowed.  Single-threaded, as the broker.
 */
#ifndef CACHE_IO_H_INCLUDED
#define CACHE_IO_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "cache.h"
#include "requests.h"
#include "workers.h"

//  Answers a catalog read from the cache, on the client socket: the stored
//  reply with this request's rid in place of the one it was first read
//  for.  False (nothing sent) on a miss.  ttl_ms: the cache's TTL (0: none)
bool cache_io_serve (cache_t *cache, int ttl_ms, void *client_sock, zmq_msg_t *client,
                     zmq_msg_t *request, const uint8_t *key, size_t key_size);

//  A catalog node answered a cacheable read: note how far it has applied
//  the catalog (worker may be NULL, for a node declared dead), and keep the
//  reply if it is fresh enough and the catalog is still at the epoch the
//  request was made in
void cache_io_fill (cache_t *cache, int ttl_ms, uint64_t catalog_epoch, request_t *req,
                    worker_t *worker, zmq_msg_t *reply);

//  Takes one message from the invalidation REP socket and answers it:
//  "ok" once the keys are invalidated, or an error when it is malformed or
//  this broker is not the active one (nothing is invalidated then)
void cache_io_invalidation (cache_t *cache, bool active, void *sock);

#endif
