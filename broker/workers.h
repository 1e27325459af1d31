/*  workers - the broker's registry of nodes and its load-balancing choice.
 *
 *  Every node that sent READY is a worker of one service.  A worker is alive
 *  until it misses its heartbeats (or says DISCONNECT); dead workers stay in
 *  the registry, marked not alive, so status can show them.
 *
 *  Ownership: workers_new returns a registry the caller destroys with
 *  workers_destroy.  worker_t pointers stay valid until the registry is
 *  destroyed (workers are never freed while the registry lives).
 */
#ifndef WORKERS_H_INCLUDED
#define WORKERS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _workers_t workers_t;

typedef struct {
    uint8_t identity [256];     //  ROUTER routing id of the node's socket
    size_t identity_size;
    char id [65];               //  node id it announced (or its identity in hex)
    char service [33];
    bool alive;
    int outstanding;            //  requests sent and not yet answered
    uint64_t served;            //  replies received since registration
    int64_t expiry;             //  when it is declared dead without news
    int64_t registered;         //  when it last sent READY
} worker_t;

workers_t *workers_new (void);
void workers_destroy (workers_t **self_p);

//  Finds a worker by routing id; NULL when unknown
worker_t *workers_find (workers_t *self, const void *identity, size_t size);

//  Registers (or re-registers) a worker; returns it
worker_t *workers_register (workers_t *self, const void *identity, size_t size,
                            const char *service, const char *id);

//  Least outstanding requests among the alive workers of a service; among
//  equals, rotates so that idle workers share the load.  NULL when none.
worker_t *workers_choose (workers_t *self, const char *service);

//  Number of alive workers of a service
size_t workers_alive (workers_t *self, const char *service);

//  Iteration over every worker, alive or not, in registration order
size_t workers_size (workers_t *self);
worker_t *workers_at (workers_t *self, size_t index);

#endif
