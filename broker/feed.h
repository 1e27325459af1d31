/*  feed - the broker's cluster feed: a PUB socket that publishes events
 *  (a node joined, was declared dead, caught up; a primary was elected; the
 *  cache was cleared) the moment they happen, and the cluster's status
 *  every heartbeat.  The heartbeat monitor and tests subscribe to it.
 *
 *  Frames: topic ("event" or "status"), then one msgpack body: an event
 *  {op: "event", kind, time, id, service, epoch, message} or the same map
 *  the broker's status request returns.
 *
 *  Ownership: feed_new returns a feed the caller destroys with
 *  feed_destroy.  feed_status borrows the message.
 */
#ifndef FEED_H_INCLUDED
#define FEED_H_INCLUDED

#include "bs_keys.h"
#include "bs_msg.h"

typedef struct _feed_t feed_t;

//  Returns NULL (logged) when the endpoint cannot be bound.  keys (borrowed,
//  NULL for plain): subscribers need a known key.
feed_t *feed_new (const char *endpoint, bs_keys_t *keys);
void feed_destroy (feed_t **self_p);

//  Publishes an event and logs it.  id and service may be NULL; epoch 0 is
//  left out.  kind: joined, dead, caught_up, elected, insync, cache_cleared,
//  started
void feed_event (feed_t *self, const char *kind, const char *id, const char *service,
                 uint64_t epoch, const char *format, ...) __attribute__ ((format (printf, 6, 7)));

void feed_status (feed_t *self, const bs_msg_t *status);

#endif
