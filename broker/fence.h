/*  fence - the I/O shell around the active broker's lease (lease.h): its
 *  own link to etcd (a ctlplane of its own, so that an election or an
 *  in-sync write waiting on etcd never delays a keep-alive), the questions
 *  lease_next asks, and the answers handed back.
 *
 *  The broker asks fence_serving before it answers any client: false means
 *  it cannot prove it is the one active broker, and must not answer from
 *  its cache or send a write on.
 *
 *  Ownership: fence_new returns an object the caller destroys with
 *  fence_destroy.  Used from the broker's thread only.
 */
#ifndef FENCE_H_INCLUDED
#define FENCE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct _fence_t fence_t;

//  etcd and cluster as for ctlplane_new; ttl_seconds the lease's (at least
//  1); id and endpoint name this broker in the active key.  NULL when
//  etcd's URLs or the cluster are not valid.
fence_t *fence_new (const char *etcd, const char *cluster, int timeout_ms, int ttl_seconds, const char *id,
                    const char *endpoint);
void fence_destroy (fence_t **self_p);

//  The socket to poll for etcd's answers (a zsock_t *)
void *fence_socket (fence_t *self);
//  Reads one answer (the socket is readable)
void fence_recv (fence_t *self, int64_t now);
//  Asks etcd whatever the lease needs now; want: this broker wants to be
//  active (false: it gives the lease up)
void fence_step (fence_t *self, bool want, int64_t now);
//  This broker holds the active key and its lease is provably valid now
bool fence_serving (fence_t *self, int64_t now);
//  The active broker's client endpoint as etcd named it lately ("" unknown)
const char *fence_holder (fence_t *self);
//  ...and its id ("" unknown)
const char *fence_holder_id (fence_t *self);
//  Since when the same lease has held the active key (lease_holder_since)
int64_t fence_holder_since (fence_t *self);
//  How long a dead holder may still seem to hold the key: its lease's TTL
//  and etcd's check
int fence_grace_ms (fence_t *self);
//  The longest a caller may wait before calling fence_step again
int fence_interval_ms (fence_t *self);

#endif
