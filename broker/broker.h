/*  broker - the store's front end: a Majordomo (7/MDP) broker.
 *
 *  Clients talk to a ROUTER (MDPC01), nodes to another ROUTER (MDPW01).
 *  Requests go to the alive worker of their service with the fewest requests
 *  outstanding; the broker keeps every request until its reply arrives and
 *  re-dispatches it, with the same body, when its worker is declared dead.
 *  A request that no worker can take before its deadline is answered with
 *  error "unavailable".
 *
 *  Catalog lookups and searches are answered from a cache when they can
 *  be; the catalog primary invalidates entries over a REP socket before it
 *  commits any change to what they show (see cache.h).
 *
 *  Any number of brokers may run with one etcd: each campaigns for the
 *  active lease there (lease.h), and only the one that holds it, provably
 *  valid, serves; the others answer clients "not_active" and send nodes
 *  on.  A broker that takes the lease reads the map from etcd and starts
 *  with a cold cache.  Without etcd the broker is alone and serves.
 *
 *  Besides the bookstore's nodes (catalog, order), standard 7/MDP workers
 *  may offer the other services the options' allow-list names (or any,
 *  with "*"): their requests are routed to them with opaque bodies, no
 *  cache and no validation, and they heartbeat at the spec's 2.5 s.
 *
 *  With keys, every socket speaks CURVE: only node keys may register as
 *  workers (a node under its own node id, a standard worker under any),
 *  only admin keys may change the catalog, and only node keys may take
 *  stock (decrement).
 *
 *  Ownership: broker_new returns a broker the caller destroys with
 *  broker_destroy; the options struct is copied; the keys are borrowed.
 */
#ifndef BROKER_H_INCLUDED
#define BROKER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "bs_keys.h"

typedef struct {
    const char *client_endpoint;    //  bind, e.g. tcp://*:5555
    const char *worker_endpoint;    //  bind, e.g. tcp://*:5556
    int heartbeat_ms;               //  interval between heartbeats
    int liveness;                   //  heartbeats missed before a node is dead
    int request_timeout_ms;         //  how long a request may wait for a worker
    const char *services;           //  comma-separated services workers may
                                    //  offer ("*": any; see broker_services_check)
    const char *invalidate_endpoint;//  bind, REP for the catalog's invalidations
    const char *feed_endpoint;      //  bind, PUB for events and status
    size_t cache_entries;           //  0 turns the cache off
    size_t cache_bytes;
    int cache_ttl_ms;               //  0: entries do not expire
    const char *mute_file;          //  test switch: while it exists, leave
                                    //  invalidations unanswered ("" or NULL: off)
    bs_keys_t *keys;                //  CURVE (borrowed), or NULL for plain
    int max_per_client;             //  requests in flight from one client
    int max_inflight;               //  requests in flight in all
    const char *id;                 //  this broker's id
    const char *advertise;          //  this broker's client endpoint, as
                                    //  the active key in etcd names it
    //  The control plane: etcd's client URLs (NULL or "": the partition
    //  map lives in this broker alone), the cluster's name under
    //  /bookstore/, and how long one call to etcd may take
    const char *etcd;
    const char *cluster;
    int etcd_timeout_ms;
    int lease_seconds;              //  the active lease's TTL (0: 2 s)
} broker_options_t;

typedef struct _broker_t broker_t;

//  True when services is a list the broker takes: comma-separated names of
//  1 to BS_SERVICE_MAX bytes of printable text without '@' (the broker's
//  own "broker" excepted), or "*" for any, at most REQUESTS_MAX_SERVICES
//  names.  Otherwise false, with the sentence in reason.
bool broker_services_check (const char *services, char *reason, size_t size);

//  Returns NULL (and logs why) when an endpoint cannot be bound
broker_t *broker_new (const broker_options_t *options);
void broker_destroy (broker_t **self_p);

//  Runs until interrupted (SIGINT/SIGTERM)
void broker_run (broker_t *self);

#endif
