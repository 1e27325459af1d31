/*  status - the cluster as the broker sees it, as one message: the reply to
 *  a "status" request and the snapshot the feed publishes every heartbeat
 *  (requests in flight, the cache's counters, every node the broker knows
 *  with its role, lag and partition, and the control plane's map: where it
 *  lives and what it holds; the broker adds which broker is active).
 *
 *  A plain-function module: no object; it reads what it is given.  The
 *  message it returns is the caller's to destroy.  Single-threaded, as the
 *  broker.
 */
#ifndef STATUS_H_INCLUDED
#define STATUS_H_INCLUDED

#include <stdint.h>

#include "bs_msg.h"
#include "cache.h"
#include "controller.h"
#include "workers.h"

bs_msg_t *status_msg (uint32_t inflight, cache_t *cache, workers_t *workers, controller_t *controller);

#endif
