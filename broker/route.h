/*  route - which worker may take a request: the broker's routing rule.
 *
 *  Catalog writes go to the catalog primary, reads to in-sync replicas (a
 *  read of a key that was invalidated to a replica known to have applied
 *  the invalidated version, or else to the primary, so that its reply can
 *  be cached); buys go to any reporting order node, order reads to those
 *  that have caught up; "service@node" goes to that node alone.
 *
 *  A plain-function module: no object; it reads the registry, the
 *  controller and the cache it is given and changes none of them.
 *  Single-threaded, as the broker.
 */
#ifndef ROUTE_H_INCLUDED
#define ROUTE_H_INCLUDED

#include <stdint.h>

#include "cache.h"
#include "controller.h"
#include "requests.h"
#include "workers.h"

//  The worker that should take the request of this service, or NULL when
//  none can now.  cache: the broker's cache once its base floor is known,
//  NULL before.
worker_t *route_choose (workers_t *workers, controller_t *controller, cache_t *cache,
                        const request_t *req, const char *service);

//  The highest catalog seq a node is known to have applied (reported in
//  its status, or seen in a reply it gave)
uint64_t route_catalog_seq (worker_t *worker);

#endif
