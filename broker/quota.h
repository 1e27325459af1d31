/*  quota - requests in flight per client, so that a flood from one client
 *  is refused for that client alone while others are served.
 *
 *  Clients are known by a 64-bit hash of their routing id.  A client may
 *  have at most per_client requests in flight, and all clients together
 *  at most total.
 *
 *  Ownership: quota_new returns an object the caller destroys with
 *  quota_destroy.
 */
#ifndef QUOTA_H_INCLUDED
#define QUOTA_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _quota_t quota_t;

quota_t *quota_new (uint32_t per_client, uint32_t total);
void quota_destroy (quota_t **self_p);

//  The key of a client's routing id
uint64_t quota_key (const void *routing_id, size_t size);

//  Counts a request in; false (nothing counted) when the client or the
//  whole broker is at its limit
bool quota_take (quota_t *self, uint64_t key);

//  Counts a request out (answered or forgotten)
void quota_give (quota_t *self, uint64_t key);

//  Requests in flight: of one client, and in all
uint32_t quota_of (quota_t *self, uint64_t key);
uint32_t quota_total (quota_t *self);

#endif
