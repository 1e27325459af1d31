/*  bs_endpoints - the brokers a program may talk to, and the one in use.
 *
 *  Every program that reaches a broker takes a comma-separated list of
 *  endpoints ("tcp://a:5555,tcp://b:5560"): the brokers of the cluster.  Only one is connected at a time; when it stops
 *  answering, or answers that it is not active, the program moves to the
 *  next one (and wraps round), resending what was unanswered with the same
 *  request ids.
 *
 *  Ownership: bs_endpoints_new returns a list the caller destroys with
 *  bs_endpoints_destroy.  Strings returned belong to the list.
 */
#ifndef BS_ENDPOINTS_H_INCLUDED
#define BS_ENDPOINTS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define BS_ENDPOINTS_MAX 8

typedef struct _bs_endpoints_t bs_endpoints_t;

//  Parses the list.  Returns NULL when it is empty, has an empty element,
//  an element of 256 characters or more, or more than BS_ENDPOINTS_MAX.
bs_endpoints_t *bs_endpoints_new (const char *list);
void bs_endpoints_destroy (bs_endpoints_t **self_p);

size_t bs_endpoints_size (bs_endpoints_t *self);
const char *bs_endpoints_at (bs_endpoints_t *self, size_t index);

//  True when ZeroMQ accepts every endpoint of the list (each is connected
//  once on a scratch socket), so that a failover never meets one it refuses
bool bs_endpoints_valid (bs_endpoints_t *self);

//  The endpoint in use (the first one to begin with) and its index
const char *bs_endpoints_current (bs_endpoints_t *self);
size_t bs_endpoints_index (bs_endpoints_t *self);

//  Makes the next endpoint (wrapping round) or a given one current
const char *bs_endpoints_next (bs_endpoints_t *self);
void bs_endpoints_select (bs_endpoints_t *self, size_t index);

//  Moves a connected czmq socket (a zsock_t *) from the current endpoint to
//  the next: disconnects, advances, connects.  Messages queued for the old
//  one are dropped with its pipe.  Returns 0, or -1 if the connect failed.
int bs_endpoints_switch (bs_endpoints_t *self, void *zsock);

//  The list again, comma-separated, for logs (owned by the list)
const char *bs_endpoints_text (bs_endpoints_t *self);

#endif
