/*  broker_internal - the broker's state and the functions its files share.
 *
 *  Private to broker/broker*.c: broker.h keeps broker_t opaque.  The
 *  broker is one object in four files:
 *
 *  - broker.c: the event loop, dispatch and re-dispatch, the partition
 *    map's follow-up (broker_control), the heartbeat tick, new/destroy;
 *  - broker_clients.c: the client socket (checks, cache, quota, filing a
 *    request) and the broker's own "broker" service (status);
 *  - broker_nodes.c: the node socket, one handler per MDPW command, and
 *    the nodes' liveness;
 *  - broker_active.c: the active lease in etcd (fence): taking over,
 *    stepping down, sending clients and nodes on.
 *
 *  Single-threaded, as the broker: every function runs on its loop.
 */
#ifndef BROKER_INTERNAL_H_INCLUDED
#define BROKER_INTERNAL_H_INCLUDED

#include "broker.h"
#include "cache.h"
#include "controller.h"
#include "registry.h"
#include "bs_monitor.h"
#include "feed.h"
#include "fence.h"
#include "laggards.h"
#include "quota.h"
#include "requests.h"
#include "workers.h"
#include "bs_msg.h"
#include "bs_sizes.h"

#include <czmq.h>

//  Requests are capped in size well below the socket limit so that an
//  oversized one still gets an answer
#define MAX_REQUEST     65536
//  An in-flight request older than this is forgotten (its client gave up)
#define REQUEST_MAX_AGE_MS 60000
//  A request's service frame: "service" or "service@node"
#define REQUEST_SERVICE_MAX (BS_SERVICE_MAX + 1 + BS_ID_MAX + 1)
//  Frames of a message the broker reads: a standard worker's REPLY is the
//  longest, [worker] [empty] [MDPW01] [REPLY] [address] [empty] and up to
//  REQUEST_BODY_FRAMES_MAX body frames
#define MAX_FRAMES      (6 + REQUEST_BODY_FRAMES_MAX)
//  A standard 7/MDP worker's heartbeat: the interval and liveness of the
//  spec's reference worker and broker (mdwrkapi, mdbroker), which such
//  workers use unchanged: one every 2.5 s, dead after 3 silent intervals
//  (7.5 s).  Bookstore nodes keep the broker's --heartbeat-ms (250 ms).
#define MDP_HEARTBEAT_MS 2500
#define MDP_LIVENESS    3

//  A worker whose READY was refused, waiting for its DISCONNECT
#define REFUSED_MAX     64
//  Requests the broker's socket takes from one client before TCP pushes
//  back.  Small, because ZeroMQ's I/O thread refills a drained queue in
//  one go (from half full): a flooding client's refill holds up the
//  others' messages on that thread for as long as it takes
#define CLIENT_RCVHWM   1000
//  Rests of the client socket slept within one turn of the loop, at most
//  (us): nodes wait that long at worst while a client floods
#define REST_INLINE_US  1000
typedef struct {
    uint8_t identity [256];     //  its routing id (as worker_t's)
    size_t size;
    int64_t due;                //  when the DISCONNECT goes
} refused_t;

struct _broker_t {
    broker_options_t options;
    zsock_t *clients;
    zsock_t *nodes;
    zsock_t *invalidations;     //  REP: the catalog primary's invalidations
    void *client_sock;          //  raw handles for the hot path
    void *node_sock;
    cache_t *cache;
    quota_t *quota;             //  requests in flight per client
    laggards_t *laggards;       //  clients that do not read their replies
    int64_t clients_rest_until; //  the client socket is not read before
                                //  then (us, zclock_usecs; 0: read it)
    int rest_timer;             //  timerfd that ends such a rest
    feed_t *feed;               //  events and status for the monitor
    bs_monitor_t *disconnects;  //  dropped node connections
    char catalog_primary [BS_ID_MAX + 1];   //  as last announced on the feed
    int catalog;                //  index of the catalog service, or -1
    uint64_t catalog_epoch;     //  the cache holds replies of this epoch
    bool cache_ready;           //  the cache's base floor is known
    bool muted;                 //  test switch: invalidations unanswered
    workers_t *workers;
    controller_t *controller;
    ctlplane_t *store;          //  the control plane (etcd), or NULL
    registry_t *registry;       //  the node registry in etcd (with store alone)
    fence_t *fence;             //  with etcd: the active broker's lease
    bool serving;               //  ...held and provably valid (last seen)
    uint32_t serving_round;     //  counts the changes of serving: a reply to
                                //  a request of another round is not cached
    int64_t hold_since;         //  not serving: keeps nodes since (0: none)
    int64_t next_assign;        //  periodic refresh of the partition map
    requests_t *requests;       //  in flight, and queued per service
    int64_t next_heartbeat;
    int64_t next_expiry;        //  no node expires before this
    uint64_t replies_refused;   //  replies from no request's registration
    bool any_service;           //  the services setting holds "*"
    refused_t refused [REFUSED_MAX];
    size_t refused_count;
};

//  broker.c: dispatch and the cluster's state

//  The service frame a request came with, which its reply repeats: the
//  service, and "@node" when it asked one node.  buf holds the latter.
const char *broker_request_service (broker_t *self, const request_t *req, char *buf, size_t size);

//  Sends the request to the best worker, or queues it until one can take it
void broker_dispatch (broker_t *self, uint32_t index);

//  Re-reads the cluster's state after any change; tells the nodes and
//  retries queued requests when the map moved (or force)
void broker_control (broker_t *self, bool force);

//  Takes back every request a worker holds and dispatches it elsewhere
void broker_redispatch_from (broker_t *self, worker_t *w);

//  Declares an alive worker dead (why: for the feed) and takes back its
//  requests
void broker_worker_dead (broker_t *self, worker_t *w, const char *why);

//  A send to an alive worker failed (error: zmq_errno after it): it is
//  declared dead; EAGAIN (its queue is full: it does not read) holds its
//  node out too (workers_hold, broker_nodes.c)
void broker_worker_unreachable (broker_t *self, worker_t *w, int error);

//  Writes what the node registry has to write now (etcd only)
void broker_registry_write (broker_t *self, registry_write_t *write);

//  broker_clients.c

//  True for the bookstore's own services, those some client operation of
//  the schema (messages.def) belongs to: catalog and order.  Their
//  requests are checked whole, their workers are bookstore nodes; every
//  other service is a standard 7/MDP one, its bodies opaque.
bool broker_bookstore_service (const char *service);

//  True when the services setting lets a worker offer the service: it is
//  listed, or the list holds "*"; "broker" (this broker's own) never
bool broker_service_allowed (broker_t *self, const char *service);

//  One message on the client socket
void broker_client_message (broker_t *self);

//  The cluster as status shows it, with the broker's own counters; the
//  caller destroys it
bs_msg_t *broker_status_msg (broker_t *self);

//  broker_nodes.c

//  One message on the node socket, handed to its command's handler
void broker_node_message (broker_t *self);

//  Declares dead the nodes whose connection the socket monitor saw close
void broker_disconnects (broker_t *self);

//  Sends DISCONNECT to the workers whose READY was refused, once due
//  (<= now)
void broker_send_refusals (broker_t *self, int64_t now);

//  Declares dead the nodes silent past their liveness window, and sets
//  next_expiry to the earliest expiry left
void broker_check_expiry (broker_t *self, int64_t now);

//  broker_active.c

//  What a broker does with clients and nodes
typedef enum {
    BROKER_SERVE,               //  active: serve them
    BROKER_HOLD,                //  keep nodes (no roles, no requests): no
                                //  broker is known to be active, and this
                                //  one may be the next
    BROKER_REFUSE               //  another broker is active: send them on
} broker_verdict_t;

//  This broker serves: it has no etcd (alone), or holds the active lease,
//  provably valid, as last seen (broker_fenced looks again)
bool broker_active (broker_t *self);

//  The lease's verdict on clients and nodes
broker_verdict_t broker_verdict (broker_t *self);
//  A node said READY: a broker that does not serve starts keeping nodes
void broker_node_came (broker_t *self);
//  Sends the nodes and requests kept here on once another broker is known
//  to be active (BROKER_REFUSE); forgets when it began keeping nodes once
//  it keeps none, or serves
void broker_send_on (broker_t *self);

//  True when the broker may not serve for want of the active lease; taking
//  it over or losing it happens here (the cache goes whenever that changes)
bool broker_fenced (broker_t *self);

//  Runs the lease's link after a poll (readable: its socket had input)
void broker_fence_step (broker_t *self, bool readable);

//  Sends every node this broker holds, and every request, on to the
//  active broker
void broker_release_nodes (broker_t *self);
void broker_release_all (broker_t *self);

//  The not_active answer of a broker that may not serve
void broker_refuse_inactive (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body);

//  Appends the brokers to status (see broker_active.c)
void broker_describe (broker_t *self, bs_msg_t *status);

#endif
