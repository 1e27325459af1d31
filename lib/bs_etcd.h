/*  bs_etcd - a small client of etcd's v3 API, over etcd's JSON gateway.
 *
 *  The control plane keeps who leads what (epochs, primaries, in-sync sets,
 *  the active broker's lease) in etcd, and every change there is a
 *  transaction conditioned on a key's revision.  This module is the one
 *  place that speaks to etcd: HTTP POSTs of JSON bodies to /v3/kv/...,
 *  /v3/lease/... with libcurl, answers parsed with jansson, keys and
 *  values base64-encoded as the gateway wants them.  Debian ships etcd 3.4
 *  but no C client of its v3 API; the gateway is part of every etcd
 *  server, so no further daemon or code generator is needed.
 *
 *  Every call is synchronous and bounded: each HTTP exchange gives up
 *  after the timeout given to bs_etcd_new.  A caller that must never block
 *  (the broker's event loop) runs its client in a thread of its own.
 *
 *  Endpoints: a comma-separated list of etcd client URLs.  A call goes to
 *  the endpoint that answered last; when it cannot connect there, it tries
 *  the next ones.  A write whose request may have reached etcd (a timeout,
 *  a connection cut mid-answer) is never sent again: it returns
 *  BS_ETCD_UNKNOWN and the caller reads the key to learn what happened,
 *  since resending a compare-and-swap that took effect would report a lost
 *  race for a race that was won.
 *
 *  Ownership: bs_etcd_new returns a client the caller destroys with
 *  bs_etcd_destroy.  Lists and key-values returned are the caller's, freed
 *  with bs_etcd_kvs_destroy.  Not thread-safe: one thread per client.
 */
#ifndef BS_ETCD_H_INCLUDED
#define BS_ETCD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _bs_etcd_t bs_etcd_t;

typedef enum {
    BS_ETCD_OK = 0,
    BS_ETCD_COMPARE_FAILED = 1,     //  a transaction's condition was false
    BS_ETCD_UNREACHABLE = -1,       //  no endpoint could be reached: nothing happened
    BS_ETCD_UNKNOWN = -2,           //  a write may or may not have taken effect
    BS_ETCD_ERROR = -3              //  etcd refused the request (bad lease, ...)
} bs_etcd_rc_t;

//  One key and its value as etcd holds them.  Values are bytes; value is
//  NUL-terminated for convenience (the control plane stores JSON text).
typedef struct {
    char *key;
    char *value;
    size_t value_size;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} bs_etcd_kv_t;

//  A range's answer: its key-values, and the store's revision it was read at
typedef struct {
    size_t count;
    bs_etcd_kv_t *kv;
    int64_t revision;
} bs_etcd_kvs_t;

//  Parses the endpoint list (http://host:port, comma-separated, at most 8)
//  and sets each exchange's timeout.  NULL on an empty or malformed list.
bs_etcd_t *bs_etcd_new (const char *endpoints, int timeout_ms);
void bs_etcd_destroy (bs_etcd_t **self_p);

//  The sentence describing the last failure (never NULL; "" after success)
const char *bs_etcd_error (bs_etcd_t *self);

//  The store's revision in the last answer's header (0 before any)
int64_t bs_etcd_revision (bs_etcd_t *self);

//  Reads one key: *kv_p is a list of 0 or 1 key-values
bs_etcd_rc_t bs_etcd_get (bs_etcd_t *self, const char *key, bs_etcd_kvs_t **kvs_p);

//  Reads every key that starts with prefix, in key order
bs_etcd_rc_t bs_etcd_get_prefix (bs_etcd_t *self, const char *prefix, bs_etcd_kvs_t **kvs_p);

void bs_etcd_kvs_destroy (bs_etcd_kvs_t **kvs_p);

//  Writes key = value unconditionally (lease 0: none)
bs_etcd_rc_t bs_etcd_put (bs_etcd_t *self, const char *key, const char *value, int64_t lease);

//  Compare-and-swap: writes key = value only if the key's mod revision is
//  still mod_revision (0: only if the key does not exist).  BS_ETCD_OK
//  with *revision_p the new mod revision, or BS_ETCD_COMPARE_FAILED.
bs_etcd_rc_t bs_etcd_put_if (bs_etcd_t *self, const char *key, const char *value,
                             int64_t mod_revision, int64_t lease, int64_t *revision_p);

//  Deletes the key only if its mod revision is still mod_revision
bs_etcd_rc_t bs_etcd_delete_if (bs_etcd_t *self, const char *key, int64_t mod_revision);

//  Leases: a key written with a lease goes when the lease expires or is
//  revoked.  Keep-alive sets *ttl_p to the seconds the lease now has left,
//  0 when it has expired (or never existed).
bs_etcd_rc_t bs_etcd_lease_grant (bs_etcd_t *self, int ttl_seconds, int64_t *lease_p);
bs_etcd_rc_t bs_etcd_lease_keepalive (bs_etcd_t *self, int64_t lease, int64_t *ttl_p);
bs_etcd_rc_t bs_etcd_lease_revoke (bs_etcd_t *self, int64_t lease);

#endif
