/*  workers - the broker's registry of nodes and its load-balancing choice.
 *
 *  Every node that sent READY is a worker of one service.  A worker is alive
 *  until it misses its heartbeats (or says DISCONNECT); a dead bookstore
 *  node stays in the registry, marked not alive, so status can show it,
 *  for WORKERS_FORGET_MS, then workers_forget drops it: otherwise every
 *  node that ever came under a new routing id would stay listed, and
 *  scanned, for good.  A dead standard 7/MDP worker (one that sent READY
 *  with the service alone: it has no node id a later status could match
 *  it by) goes at the next workers_forget.  The module
 *  also holds the broker's rule for node ids (workers_id_valid,
 *  workers_id_holder) and reads nodes' status reports into their records
 *  (workers_apply_status), so that tests and fuzz targets run the broker's
 *  own code.
 *
 *  Ownership: workers_new returns a registry the caller destroys with
 *  workers_destroy.  A worker_t pointer stays valid until workers_forget
 *  forgets that worker (dead for longer than WORKERS_FORGET_MS, or a dead
 *  standard worker) or the
 *  registry is destroyed.  The caller calls workers_forget where it holds
 *  no worker pointer, and keeps none to a dead worker across calls: the
 *  broker takes back a worker's requests when it declares it dead, and the
 *  controller names workers by id.  Single-threaded.
 */
#ifndef WORKERS_H_INCLUDED
#define WORKERS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bs_sizes.h"

typedef struct _workers_t workers_t;

#define WORKER_MAX_PARTITIONS 16
//  A partition role as a node reports it (field role's bound in fields.def)
#define WORKER_ROLE_MAX 16

//  How long a dead worker stays listed.  Long enough that status (and the
//  chaos reports built on it) still shows a node killed a few minutes ago
//  as down rather than as never there; a node that comes back registers
//  afresh anyway, so nothing is lost when it is forgotten.  Each
//  connection has its own routing id; a node that registers again from a
//  new connection displaces its old record, which the broker then forgets
//  at once (workers_displace), so the registry grows only with ids seen in
//  this window.
#define WORKERS_FORGET_MS   (10 * 60 * 1000)

//  A node whose queue at the broker was full (a send to it failed with
//  EAGAIN: its loop does not read) is held out: its READY is not taken,
//  and it is not told to register again, until its hold ends.  Otherwise
//  each READY of a node that reads slowly brings it back, the next send
//  fails at once, it dies again and its requests move again, as fast as
//  it speaks.  The hold is the broker's own evidence, never the node's
//  word: 1 s, twice as long each time the node is caught again within a
//  minute of its last hold's end, up to 30 s.  Holds are kept by node id
//  (a node that connects again is held too), at most WORKERS_HOLDS_MAX
//  at once (the one that ended first makes room).
#define WORKERS_HOLD_MIN_MS     1000
#define WORKERS_HOLD_MAX_MS     30000
#define WORKERS_HOLD_RESET_MS   60000
#define WORKERS_HOLDS_MAX       64

//  A partition as the node reported it in its last status
typedef struct {
    char name [BS_ID_MAX + 1];
    char role [WORKER_ROLE_MAX + 1];    //  primary, follower, none
    uint64_t epoch, seq, head;
    uint64_t version;           //  primary only: the report's version
    bool ready;
    bool snapshot;              //  loading a snapshot: its state is partial
    bool empty;                 //  it never held the partition: it may
                                //  lead only the partition's first epoch
    bool resigned;              //  it will not lead at its reported epoch
                                //  again (restarted within it, or a
                                //  commit failed): elect at a new one
    char insync [512];          //  primary only: followers it sees in sync
} worker_partition_t;

typedef struct {
    uint8_t identity [256];     //  ROUTER routing id of the node's connection
    size_t identity_size;       //  (the broker's choice: one per connection)
    uint64_t serial;            //  this registration's number, never reused:
                                //  a reply must come from the registration
                                //  its request was sent to
    char id [BS_ID_MAX + 1];    //  node id it announced (or its identity in hex)
    char service [BS_SERVICE_MAX + 1];
    bool alive;
    int outstanding;            //  requests sent and not yet answered
    uint64_t served;            //  replies received since registration
    uint64_t read_seq;          //  highest catalog seq it answered a read at
    int64_t expiry;             //  when it is declared dead without news
    int64_t registered;         //  when it last sent READY
    int64_t last_seen;          //  when it last sent anything
    int64_t dead_since;         //  when it was declared dead (not alive)
    bool displaced;             //  its node registered from another connection
    int fd;                     //  descriptor of its connection (-1: unknown)
    //  A standard 7/MDP worker (READY with the service alone), not a
    //  bookstore node: it gets no ASSIGN, reports no status, heartbeats at
    //  heartbeat_ms (the caller's choice) and is forgotten once dead
    bool standard;
    int heartbeat_ms;           //  the interval the broker holds it to
    int64_t next_heartbeat;     //  standard: when the broker sends its next
    bool reported_insync;       //  the feed has told it is in sync
    //  From the node's status (READY and HEARTBEAT)
    bool has_status;
    char pub [BS_ENDPOINT_MAX + 1], sync [BS_ENDPOINT_MAX + 1];
    char digest [BS_DIGEST_MAX + 1];
    uint64_t incarnation;       //  its store's identity (0: not said)
    bool ready;                 //  caught up on everything it follows
    worker_partition_t partitions [WORKER_MAX_PARTITIONS];
    int partition_count;
} worker_t;

workers_t *workers_new (void);
void workers_destroy (workers_t **self_p);

//  Finds a worker by routing id; NULL when unknown
worker_t *workers_find (workers_t *self, const void *identity, size_t size);

//  Registers (or re-registers) a worker, a bookstore node (not standard)
//  until the caller says otherwise; returns it
worker_t *workers_register (workers_t *self, const void *identity, size_t size,
                            const char *service, const char *id);

//  Declares a worker dead at now (the broker's monotonic clock, ms); its
//  forgetting time runs from then.  The caller takes back its requests.
void workers_declare_dead (worker_t *worker, int64_t now);

//  Declares a worker dead for good because its node registered again from
//  another connection: it is forgotten at the next workers_forget.  The
//  caller takes back its requests.
void workers_displace (worker_t *worker, int64_t now);

//  Holds node id out from now: for WORKERS_HOLD_MIN_MS, or twice its last
//  hold when that ended less than WORKERS_HOLD_RESET_MS before now, up to
//  WORKERS_HOLD_MAX_MS.  Returns the hold's length (ms).
int64_t workers_hold (workers_t *self, const char *id, int64_t now);

//  How long node id is still held out at now (ms); 0 when it is not.  id
//  NULL or "": the id of a node that announces none, its routing id in hex.
int64_t workers_held (workers_t *self, const char *id, const void *identity, size_t size, int64_t now);

//  Frees every worker dead for longer than WORKERS_FORGET_MS at now, and
//  every dead standard worker, and returns how many; the others keep their
//  registration order.  Pointers to the forgotten workers are invalid from
//  then on.  Holds that ended WORKERS_HOLD_RESET_MS ago go too.
size_t workers_forget (workers_t *self, int64_t now);

//  Least outstanding requests among the alive workers of a service that
//  pass the filter (NULL: all); among equals, rotates so that idle workers
//  share the load.  NULL when none.
typedef bool (workers_filter_fn) (void *arg, worker_t *worker);
worker_t *workers_choose (workers_t *self, const char *service, workers_filter_fn *filter, void *arg);

//  Number of alive workers of a service
size_t workers_alive (workers_t *self, const char *service);

//  Finds a worker by node id, an alive one before any dead one; NULL when
//  unknown
worker_t *workers_by_id (workers_t *self, const char *id);

//  The worker's report on a partition; NULL when it holds none by that name
worker_partition_t *worker_partition (worker_t *worker, const char *name);

//  True when id is a node id the broker takes: 1 to 64 of [A-Za-z0-9._-]
//  (ids travel in assignments, status replies and the feed)
bool workers_id_valid (const char *id);

//  An alive worker, other than the one with this routing id, that uses id
//  (NULL or "": the id a node that announces none gets, its routing id in
//  hex); NULL when there is none.  A READY that would give a second alive
//  worker the id is refused.
worker_t *workers_id_holder (workers_t *self, const char *id, const void *identity, size_t size);

//  Applies a node's status report (a node_status body, as the node sent
//  it: data is not kept) to the worker's record.  A report on a partition
//  outside the worker's service (catalog for catalog nodes, others for the
//  rest), or at the largest epoch there is (BS_EPOCH_MAX), is dropped and
//  logged; the rest of the status is applied.  Returns false, logs, and
//  leaves the record as it was when the body is not a valid node_status.
bool workers_apply_status (worker_t *worker, const void *data, size_t size);

//  Iteration over every worker, alive or not, in registration order
size_t workers_size (workers_t *self);
worker_t *workers_at (workers_t *self, size_t index);

#endif
