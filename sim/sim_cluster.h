/*  sim_cluster - the simulated processes: catalog and order nodes
 *  (sim_node.c, and the order nodes' buyer in sim_order.c), the broker
 *  (sim_broker.c) and the clients with their ledger (sim_client.c), and
 *  the invariants (sim_check.c).
 *
 *  A node runs the real store, journal, catalog or orders, and replication
 *  core; only its sockets and its event loop are the simulator's (the loop
 *  does what nodes/node.c does: group commit, repl_publish, repl_defer, a
 *  node_status every heartbeat; an order node claims its own partition at
 *  every start and asks the catalog for each buy's decrement through the
 *  broker).  The broker runs the real workers registry and controller over
 *  sim_ctlplane, routes clients' writes to the catalog primary and their
 *  buys to an order node, as broker.c does.
 */
#ifndef SIM_CLUSTER_H_INCLUDED
#define SIM_CLUSTER_H_INCLUDED

#include "sim.h"
#include "bs_sizes.h"
#include "catalog.h"
#include "journal.h"
#include "orders.h"
#include "repl.h"
#include "store.h"

#define SIM_HEARTBEAT_MS 250
#define SIM_LIVENESS 3
#define SIM_REQUEST_TIMEOUT_MS 2000

//  Settings of a run that the seed draws
typedef struct {
    int64_t log_keep;           //  small, so that laggards need snapshots
    int insync_timeout_ms;
    int min_insync;
    bool order_early_publish;   //  order nodes publish before their commit
                                //  (--order-early-publish)
    bool catalog_only;          //  no order node, no buy (--catalog-only)
    bool no_adoption;           //  orphans are never re-recorded (--no-adoption)
} sim_config_t;
extern sim_config_t sim_config;
//  The nodes this run starts: the catalog's, then the order nodes unless
//  catalog_only
int sim_node_count (void);

//  --- nodes (catalog nodes 0..SIM_NODES-1, then order nodes)
typedef struct _sim_node_t sim_node_t;
//  dir: its data directory (created and emptied as needed)
sim_node_t *sim_node_new (int index, const char *dir);
void sim_node_destroy (sim_node_t **self_p);
//  Starts the process on what its disk holds; wipe: on an empty disk
void sim_node_start (sim_node_t *self, bool wipe);
//  Kills the process: what LMDB committed stays, the rest is gone
void sim_node_crash (sim_node_t *self);
bool sim_node_up (sim_node_t *self);
//  A fault in the primary's next batch, between publishing its entries and
//  committing them: crash (the process dies, its store keeps only what was
//  committed; it restarts later) or not (the commit fails).  False when the
//  node is not up and primary.  Disarmed when faults stop.
bool sim_node_arm_commit_fault (sim_node_t *self, bool crash);
void sim_node_disarm (sim_node_t *self);
const char *sim_node_id (sim_node_t *self);
journal_t *sim_node_journal (sim_node_t *self);     //  NULL while down
catalog_t *sim_node_catalog (sim_node_t *self);   //  catalog nodes
orders_t *sim_node_orders (sim_node_t *self);     //  order nodes
bool sim_node_is_order (sim_node_t *self);
//  "catalog", or the order node's own partition
const char *sim_node_partition (sim_node_t *self);
repl_t *sim_node_repl (sim_node_t *self);
//  A request from the broker (token: the broker's request number)
void sim_node_request (sim_node_t *self, int64_t token, const void *data, size_t size);
void sim_node_assign (sim_node_t *self, const void *data, size_t size);
//  Every message for a node: the broker's (these kinds: a request, an
//  assignment, the answer to an order node's decrement) and replication's
enum { SIM_NODE_REQUEST, SIM_NODE_ASSIGN, SIM_NODE_DECREMENT_REPLY };
void sim_node_on_input (sim_event_t *event);
//  An order node records a granted buy in its next batch, one write per
//  waiter (tokens: the broker's request numbers)
void sim_node_grant (int node, const uint8_t *rid, const bs_msg_t *decrement, const int64_t *tokens, int count);
extern sim_node_t *sim_nodes [SIM_ALL_NODES];

//  --- an order node's buyer (sim_order.c): nodes/buyer.c's broker path.
//  A buy asks the catalog, through the broker, to decrement with the buy's
//  own rid, resends it on a timeout, joins copies of a buy under way, and
//  hands a grant to sim_node_grant
void sim_buyer_start (int node, int64_t token, const uint8_t *rid, int64_t item);
void sim_buyer_on_reply (int node, const void *data, size_t size);
//  Resends or gives up late buys; returns when it is due next (INT64_MAX: never)
int64_t sim_buyer_tick (int node);
//  The process died: its buys are gone
void sim_buyer_reset (int node);

//  Restarts a process after delay ms (wipe: on an empty disk, when the
//  fault model allows it then)
void sim_restart_later (int proc, int64_t delay, bool wipe);

//  --- the broker
void sim_broker_start (void);
void sim_broker_crash (void);
bool sim_broker_up (void);
//  What the processes send it, through their links
void sim_broker_status_from (int node, const void *data, size_t size);
void sim_broker_reply_from (int node, int64_t token, const void *data, size_t size);
//  A request from a client, or an order node's decrement (from: an order
//  node; its own connection to the broker, apart from its worker link).
//  order_node: the order node a buy would rather go to (-1: any)
void sim_broker_request_from (int from, int64_t serial, int order_node, const void *data, size_t size);
//  The catalog primary the broker routes writes to ("" for none)
const char *sim_broker_primary (void);

//  --- clients
void sim_clients_start (int64_t faults_until);
//  A reply reached a client (number: the message it answers)
void sim_client_on_reply (sim_event_t *event);
//  Liveness: the probe sends one write; true once acknowledged
void sim_probe_send (void);
bool sim_probe_acked (void);
//  Writes acknowledged so far, and of them buys
size_t sim_clients_acked (void);
size_t sim_clients_buys_acked (void);
void sim_clients_reset (void);
//  No client waits for an answer
bool sim_clients_idle (void);

//  The ledger the invariants read
typedef struct {
    uint8_t rid [16];
    int op;                     //  bs_op_t
    int64_t item, amount;       //  restock count, add_book stock
    bool acked;                 //  an ok reply reached its client
    bool ok_seen;               //  any reply said ok
} sim_write_t;
size_t sim_ledger_size (void);
sim_write_t *sim_ledger_at (size_t index);
sim_write_t *sim_ledger_find (const uint8_t *rid);

//  --- invariants
void sim_check_reset (void);
//  After every step
void sim_check_step (void);
//  A client got an ok for this ledger entry
void sim_check_acked (size_t index);
//  The thorough checks: state of each node against the ledger
void sim_check_full (bool quiet);
//  The control plane's in-sync set names a replica other than id that is
//  up and holds the partition whole (a disk is lost only then: losing
//  every whole in-sync copy is outside the fault model)
bool sim_check_insync_besides (const char *id);
//  Once quiet: every replica equal to the primary, and every order node up
//  and holding every order partition at the same seq; false (and said) if not
bool sim_check_converged (bool report);

#endif
