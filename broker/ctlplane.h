/*  ctlplane - the broker's asynchronous link to the control plane (etcd).
 *
 *  The broker's event loop must never wait on etcd: a slow or dead etcd
 *  would stall every client.  So the calls run in a thread of their own (a
 *  czmq actor holding one bs_etcd client), one at a time, in the order
 *  they were asked; each answer comes back as a message on the actor's
 *  pipe, which the event loop polls (ctlplane_socket) and reads with
 *  ctlplane_recv.  Every request carries a tag chosen by the caller, so an
 *  answer finds what it answers, and a caller that was replaced meanwhile
 *  (a new controller after a takeover) can tell an answer meant for its
 *  predecessor.
 *
 *  Keys are named relative to the cluster's prefix, "/bookstore/<cluster>/"
 *  (partitions/catalog, ...): the prefix is this module's alone.
 *
 *  Ownership: ctlplane_new returns an object the caller destroys with
 *  ctlplane_destroy (which stops the thread, waiting at most for the call
 *  under way, itself bounded by the timeout).  Results returned by
 *  ctlplane_recv are the caller's, destroyed with ctlplane_result_destroy.
 *  The object is used from one thread (the broker's); the actor thread is
 *  internal.
 */
#ifndef CTLPLANE_H_INCLUDED
#define CTLPLANE_H_INCLUDED

#include "bs_etcd.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct _ctlplane_t ctlplane_t;

typedef enum {
    CTLPLANE_GET_PREFIX,        //  every key under a relative prefix
    CTLPLANE_PUT_IF,            //  compare-and-swap on one key's mod revision
    CTLPLANE_GRANT,             //  a new lease (result: lease)
    CTLPLANE_KEEPALIVE,         //  renews a lease (result: ttl, 0: gone)
    CTLPLANE_CAMPAIGN,          //  creates a key bound to a lease if absent;
                                //  else the key as it is (count 1)
    CTLPLANE_PUT_LEASED,        //  writes a key bound to a lease
    CTLPLANE_REVOKE             //  ends a lease (its keys go)
} ctlplane_op_t;

typedef struct {
    uint32_t tag;
    ctlplane_op_t op;
    bs_etcd_rc_t rc;
    int64_t revision;           //  PUT_IF: the key's new mod revision
    int64_t lease;              //  GRANT: the lease's id
    int64_t ttl;                //  KEEPALIVE: seconds the lease has left
    size_t count;               //  GET_PREFIX: key-values read
    char **keys;                //  relative to the prefix
    char **values;
    int64_t *mod_revisions;
    char error [256];           //  why, when rc is not BS_ETCD_OK
} ctlplane_result_t;

//  endpoints: etcd's client URLs, comma-separated; cluster: the name under
//  /bookstore/ (letters, digits, '-', '_', at most 64).  NULL when either
//  is not valid.
ctlplane_t *ctlplane_new (const char *endpoints, const char *cluster, int timeout_ms);
void ctlplane_destroy (ctlplane_t **self_p);

//  The socket to poll for answers (a zsock_t *)
void *ctlplane_socket (ctlplane_t *self);

//  The prefix every key lives under, for logs and status
const char *ctlplane_prefix (ctlplane_t *self);

//  Asks; the answer comes later through ctlplane_recv
void ctlplane_get_prefix (ctlplane_t *self, const char *relative, uint32_t tag);
void ctlplane_put_if (ctlplane_t *self, const char *relative, const char *value,
                      int64_t mod_revision, uint32_t tag);

//  Leases.  GRANT's answer carries the lease id (result lease); KEEPALIVE's
//  the seconds left (result ttl; 0 when the lease is gone); CAMPAIGN writes
//  value under the key bound to the lease only if the key does not exist
//  (rc BS_ETCD_OK), and otherwise answers BS_ETCD_COMPARE_FAILED with the
//  key as it is (count 1, or 0 if it went meanwhile).
void ctlplane_grant (ctlplane_t *self, int ttl_seconds, uint32_t tag);
void ctlplane_keepalive (ctlplane_t *self, int64_t lease, uint32_t tag);
void ctlplane_campaign (ctlplane_t *self, const char *relative, const char *value, int64_t lease, uint32_t tag);
void ctlplane_put_leased (ctlplane_t *self, const char *relative, const char *value, int64_t lease,
                          uint32_t tag);
void ctlplane_revoke (ctlplane_t *self, int64_t lease, uint32_t tag);

//  Reads one answer (the socket is readable); NULL when the message was
//  not an answer (it is logged)
ctlplane_result_t *ctlplane_recv (ctlplane_t *self);
void ctlplane_result_destroy (ctlplane_result_t **result_p);

#endif
