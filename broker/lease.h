/*  lease - whether this broker may serve: the active broker's lease in etcd.
 *
 *  Any number of brokers may run; the lease alone says which one serves.
 *  Every broker with etcd takes a lease and campaigns for the key "active",
 *  bound to that lease: it creates the key only if nobody holds it (a
 *  compare on its creation), so exactly one broker holds it.  That broker
 *  serves clients only while it holds the key and its lease is provably
 *  valid: until the lease's TTL, less a safety margin, counted on its own
 *  monotonic clock from the moment it *sent* the last keep-alive etcd
 *  answered.  etcd cannot let the key go, and another broker cannot create
 *  it, before that moment, so at most one broker serves at any instant,
 *  whatever the brokers think of each other: a broker paused past its
 *  lease finds it lapsed the moment it resumes, before it answers anything
 *  from its cache; brokers cut from each other cannot both serve.
 *
 *  A broker that stops (or stops wanting to serve) revokes its lease, so
 *  the key goes at once and another need not wait for the TTL.  A campaign
 *  whose outcome was unknown is settled by the next one: the key's value
 *  names the lease it was created with.

 *  Pure: no I/O and no clock of its own.  The caller asks etcd what
 *  lease_next says (through ctlplane), at most one question at a time, and
 *  hands each answer back with the time it arrived; times are monotonic
 *  milliseconds.
 *
 *  Ownership: lease_new returns an object the caller destroys with
 *  lease_destroy.  Single-threaded.
 */
#ifndef LEASE_H_INCLUDED
#define LEASE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct _lease_t lease_t;

typedef enum {
    LEASE_IDLE,             //  nothing to ask now
    LEASE_ASK_GRANT,        //  a new lease of lease_ttl_seconds
    LEASE_ASK_CAMPAIGN,     //  create the active key with lease_value, bound
                            //  to lease_id, if it does not exist
    LEASE_ASK_KEEPALIVE,    //  renew lease_id
    LEASE_ASK_REVOKE        //  end lease_id (this broker yielded)
} lease_ask_t;

typedef enum {
    LEASE_ANSWER_OK,
    LEASE_ANSWER_TAKEN,     //  a campaign found the key held (holder given)
    LEASE_ANSWER_REFUSED,   //  etcd refused (the lease is unknown to it)
    LEASE_ANSWER_FAILED     //  no answer, or one whose effect is unknown
} lease_answer_t;

//  id and endpoint name this broker in the key's value.  ttl_seconds is the
//  lease asked for (etcd's are whole seconds); the broker stops serving
//  margin_ms before it runs out and renews every renew_ms.
lease_t *lease_new (const char *id, const char *endpoint, int ttl_seconds, int margin_ms, int renew_ms);
void lease_destroy (lease_t **self_p);

//  What to ask etcd now (LEASE_IDLE while a question is out).  want: this
//  broker wants to be active.  The question counts as sent at now.
lease_ask_t lease_next (lease_t *self, bool want, int64_t now);
int lease_ttl_seconds (lease_t *self);
int64_t lease_id (lease_t *self);
//  The key's value for a campaign: {"id":..., "endpoint":..., "lease":...}
const char *lease_value (lease_t *self);

//  The answer to the question out.  GRANT: number is the new lease's id;
//  KEEPALIVE: the seconds it has left (0: gone); CAMPAIGN: holder is the
//  key's value when TAKEN ("" if it went meanwhile).
void lease_answer (lease_t *self, lease_answer_t answer, int64_t number, const char *holder, int64_t now);

//  This broker holds the key and its lease is provably valid at now
bool lease_serving (lease_t *self, int64_t now);
//  The active broker's endpoint as the key last named it, within a lease
//  and a second of now ("" unknown, too old, or this broker)
const char *lease_holder_endpoint (lease_t *self, int64_t now);
//  ...and its id, as the key named it (same rules)
const char *lease_holder_id (lease_t *self, int64_t now);
//  Since when campaigns have found the key held by that same lease (0:
//  no holder known).  A holder dead at t loses the key by t + TTL and
//  etcd's check (half a second): one found since before t - TTL - 1 s, and
//  still, has renewed its lease since t.
int64_t lease_holder_since (lease_t *self, int64_t now);
//  How long, at now, this broker may still serve (0 when it may not)
int64_t lease_left_ms (lease_t *self, int64_t now);

#endif
