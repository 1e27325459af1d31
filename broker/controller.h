/*  controller - the broker's map of partitions: who is primary, at which
 *  epoch, who is in sync, and where followers fetch from.
 *
 *  The catalog is one partition whose primary the controller elects: only
 *  from the in-sync set it last confirmed (any live replica on a fresh
 *  start), the most advanced first, always at a new epoch above every epoch
 *  seen.  After a broker restart, a live node that still claims the primary
 *  role at the highest epoch keeps it.  Order partitions have a fixed
 *  primary, the node that owns them.
 *
 *  The in-sync set the controller confirms is the one primaries act on: a
 *  primary stops waiting for a follower only once the broker has confirmed
 *  that the follower left, so an election can never pick a replica that
 *  misses an acknowledged write.
 *
 *  Ownership: controller_new returns an object the caller destroys.  The
 *  workers registry is borrowed in every call.  Assign messages returned
 *  belong to the caller.
 */
#ifndef CONTROLLER_H_INCLUDED
#define CONTROLLER_H_INCLUDED

#include "bs_msg.h"
#include "ctlplane.h"
#include "workers.h"

typedef struct _controller_t controller_t;

//  settle_ms: after the broker starts, how long to wait for nodes to report
//  before the first election
controller_t *controller_new (int settle_ms);
void controller_destroy (controller_t **self_p);

//  Keeps the catalog's map (epoch, primary, in-sync set) in the control
//  plane (borrowed; see ctlplane.h): it is read before anything is elected,
//  and every election and in-sync change is written there by
//  compare-and-swap before the nodes are told.  The stored primary is kept
//  while it lives; when it is gone, only the most advanced live member of
//  the stored in-sync set is elected, and with none alive the partition
//  waits.  Claims of nodes (a role, an epoch) never become the map.
void controller_use_store (controller_t *self, ctlplane_t *store);

//  An answer from the store; true when the map changed (the broker then
//  calls controller_update and tells the nodes).  Answers to a request of
//  another controller (one this replaced) are ignored.
bool controller_on_store (controller_t *self, ctlplane_result_t *result);

//  The catalog's map as the control plane last held it, for status and the
//  feed: false (nothing set) while it is not read or there is no store.
//  insync (of insync_size bytes) gets the committed set, comma-separated,
//  the primary first.
bool controller_stored (controller_t *self, uint64_t *epoch, const char **primary,
                        char *insync, size_t insync_size, int64_t *revision);

//  The control plane's prefix ("" without a store)
const char *controller_store_prefix (controller_t *self);

//  A broker taking over: no catalog epoch at or below this one is ever
//  given (its own past may have given it to a node not seen yet)
void controller_raise_epoch (controller_t *self, uint64_t epoch);
//  The highest catalog epoch seen or given
uint64_t controller_max_epoch (controller_t *self);
bool controller_settling (controller_t *self);

//  Brings the map up to date with the workers' reports and liveness.
//  Returns true when the map changed (nodes must be told).
bool controller_update (controller_t *self, workers_t *workers);

//  The map for the nodes of a service, as an assign message
bs_msg_t *controller_assign (controller_t *self, const char *service);

//  The alive primary of the catalog, or NULL
worker_t *controller_catalog_primary (controller_t *self, workers_t *workers);

//  The current epoch of a partition (0 while it has none)
uint64_t controller_epoch (controller_t *self, const char *partition);

//  May this worker answer reads?  Catalog: the primary or a confirmed
//  in-sync follower; order: a node that has caught up.
bool controller_readable (controller_t *self, worker_t *worker);

//  A node's role, epoch and whether it is in sync, for status
const char *controller_role (controller_t *self, worker_t *worker);
bool controller_insync (controller_t *self, worker_t *worker);
//  How far the node is behind the primary of its service's partition
uint64_t controller_lag (controller_t *self, workers_t *workers, worker_t *worker);

#endif
