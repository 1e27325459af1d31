/*  sim_ctlplane - the simulator's control plane: ctlplane.h's API (linked
 *  into bookstore-sim instead of broker/ctlplane.c) over an in-memory,
 *  linearizable key-value store with revisions, compare-and-swap on a key's
 *  mod revision and leases with TTLs in virtual time.
 *
 *  Each handle runs its requests one at a time, in order, as the real
 *  thread does: a request takes effect at one instant (its linearization
 *  point) after a simulated delay, and its answer arrives later.  Faults: a
 *  request may be lost (nothing happens; BS_ETCD_UNREACHABLE after the
 *  timeout), or take effect with its answer lost (BS_ETCD_UNKNOWN after the
 *  timeout); while the store is down every request is lost.  The store
 *  outlives handles: a broker that crashes and restarts reads what its
 *  predecessor wrote.  Single-threaded.
 */
#ifndef SIM_CTLPLANE_H_INCLUDED
#define SIM_CTLPLANE_H_INCLUDED

#include "ctlplane.h"

//  Empties the store (a new seed)
void sim_etcd_reset (void);
//  Per mille of requests that are lost or lose their answer
void sim_etcd_set_faults (int per_mille);
//  Every request sent before until is lost
void sim_etcd_down (int64_t until);
//  The value of a key (full name, relative to the prefix), or NULL
const char *sim_etcd_get (const char *relative);

//  Who is told when an answer arrives (it then calls ctlplane_recv): fn,
//  run as process proc (an answer waits while proc is paused, and is lost
//  with the incarnation that asked)
typedef void (sim_ctlplane_fn) (void *arg, ctlplane_t *ctlplane);
void sim_ctlplane_notify (ctlplane_t *self, sim_ctlplane_fn *fn, void *arg, int proc);

#endif
