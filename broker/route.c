/*  route - which worker may take a request (see route.h).
 */
#include "route.h"

#include <string.h>

static bool
s_filter_readable (void *arg, worker_t *worker)
{
    return controller_readable ((controller_t *) arg, worker);
}

static bool
s_filter_reporting (void *arg, worker_t *worker)
{
    (void) arg;
    return worker->has_status;
}

uint64_t
route_catalog_seq (worker_t *worker)
{
    worker_partition_t *part = worker_partition (worker, "catalog");
    uint64_t reported = part? part->seq: 0;
    return reported > worker->read_seq? reported: worker->read_seq;
}

typedef struct {
    controller_t *controller;
    uint64_t floor;
} floor_filter_t;

static bool
s_filter_applied (void *arg, worker_t *worker)
{
    floor_filter_t *filter = arg;
    return controller_readable (filter->controller, worker) && route_catalog_seq (worker) >= filter->floor;
}

//  A catalog read of a key that was invalidated goes to a replica known to
//  have applied the invalidated version, or else to the primary, so that
//  its reply can be cached
static worker_t *
s_choose_catalog_read (workers_t *workers, controller_t *controller, cache_t *cache, const request_t *req)
{
    if (req->cacheable && cache) {
        floor_filter_t filter = {
            controller, cache_floor (cache, req->cache_key, req->cache_key_size)
        };
        if (filter.floor > 0) {
            worker_t *w = workers_choose (workers, "catalog", s_filter_applied, &filter);
            if (!w)
                w = controller_catalog_primary (controller, workers);
            if (w)
                return w;
        }
    }
    return workers_choose (workers, "catalog", s_filter_readable, controller);
}

worker_t *
route_choose (workers_t *workers, controller_t *controller, cache_t *cache,
              const request_t *req, const char *service)
{
    if (req->target [0]) {
        worker_t *w = workers_by_id (workers, req->target);
        return w && w->alive && strcmp (w->service, service) == 0? w: NULL;
    }
    if (req->op == BS_OP_COUNT)
        return workers_choose (workers, service, NULL, NULL);     //  it will say what is wrong
    bool write = bs_op_kind (req->op) == BS_KIND_WRITE;
    if (strcmp (service, "catalog") == 0)
        return write? controller_catalog_primary (controller, workers)
                    : s_choose_catalog_read (workers, controller, cache, req);
    if (strcmp (service, "order") == 0)
        return workers_choose (workers, service, write? s_filter_reporting: s_filter_readable,
                               controller);
    return workers_choose (workers, service, NULL, NULL);
}
