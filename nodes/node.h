/*  node - a catalog or order replica: its modules and its event loop
 *
 *  One event loop: requests from the broker, the catalog's answers to our
 *  buys, and replication traffic.  Writes that arrive together are executed
 *  in one LMDB transaction (group commit), published to the followers, and
 *  answered once the in-sync followers have acked them.
 *
 *  Ownership: node_new returns a node the caller destroys with
 *  node_destroy.  The options' strings are copied; the keys are borrowed
 *  and must outlive the node.
 *  Threading: single-threaded; node_run returns once zsys_interrupted is
 *  set (SIGINT or SIGTERM).
 */
#ifndef NODE_H_INCLUDED
#define NODE_H_INCLUDED

#include "bs_keys.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _node_t node_t;

typedef struct {
    const char *service;        //  "catalog" or "order"
    const char *id;             //  unique in the cluster
    const char *data;           //  data directory
    const char *brokers;        //  the broker's node endpoint, or several brokers', comma-separated
    const char *broker_clients; //  order node: where it reaches the catalog
    const char *pub_bind;       //  replication log
    const char *sync_bind;      //  fetches and acks
    const char *pub_endpoint;   //  pub_bind as others reach it
    const char *sync_endpoint;  //  sync_bind as others reach it
    const char *invalidate;     //  catalog: one invalidation endpoint per broker, comma-separated
    const char *seed;           //  catalog file for an empty primary ("": none)
    bs_keys_t *keys;            //  CURVE, or NULL for plain
    int heartbeat_ms;
    int liveness;
    int insync_timeout_ms;
    int min_insync;
    int hwm;
    int drop_every;             //  test switch (0: off)
    size_t map_size;            //  LMDB map size in bytes to start with
    size_t map_max;             //  ...and to grow up to
    int64_t restock_period_ms;  //  catalog: 0 for never
    int64_t restock_amount;
    int catalog_timeout_ms;     //  order node's buys
    int catalog_attempts;
    bool direct_buys;           //  order node: decrements straight to the catalog primary
    bool early_publish;         //  primaries publish before their own commit
    int invalidate_timeout_ms;  //  catalog primary's invalidations
    int invalidate_attempts;
    uint64_t log_keep;          //  log entries kept per partition
    int64_t profile_ms;         //  0: no event-loop profile
} node_options_t;

//  Opens the store and starts every module.  Returns NULL (logged) on
//  failure; *refused_p is then true when the options are at fault (the data
//  directory belongs to another node, an endpoint list is malformed) rather
//  than the system.
node_t *node_new (const node_options_t *options, bool *refused_p);
void node_destroy (node_t **self_p);

//  Serves until interrupted, then says goodbye to the broker
void node_run (node_t *self);

#endif
