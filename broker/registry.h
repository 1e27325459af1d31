/*  registry - the node registry the active broker keeps in etcd: one key
 *  per bookstore node that ever registered with it, nodes/<id>, holding
 *
 *      {"id":"catalog-1","service":"catalog","key":"<Z85 public key>"}
 *
 *  ("key" is empty in plain mode).  An operator reads who belongs to the
 *  cluster with `etcdctl get --prefix /bookstore/<cluster>/nodes/`; a
 *  broker that takes over finds the same records.  Records are written
 *  when a node registers with something etcd was not told yet (a new
 *  node, or a new service or key), and written again later when etcd did
 *  not take them; they stay when a node goes away.
 *
 *  The table is pure: it says what to write and learns the outcome; the
 *  broker sends the writes through its ctlplane (tags with REGISTRY_TAG
 *  set are this module's).
 *
 *  Ownership: registry_new returns an object the caller destroys with
 *  registry_destroy.  Strings returned are the registry's, valid until the
 *  next call.  Single-threaded (the broker's).
 */
#ifndef REGISTRY_H_INCLUDED
#define REGISTRY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Set in the tag of every write the registry asks for; the low bits
//  name the record
#define REGISTRY_TAG 0x40000000u
//  A write etcd did not take is tried again after this long
#define REGISTRY_RETRY_MS 2000
//  Records kept (nodes that ever registered); beyond it, nothing new is
//  written (and that is logged)
#define REGISTRY_MAX 256

typedef struct _registry_t registry_t;

//  One write to make: the key (relative to the cluster's prefix), the
//  value, and the tag its answer will carry
typedef struct {
    const char *key;
    const char *value;
    uint32_t tag;
} registry_write_t;

registry_t *registry_new (void);
void registry_destroy (registry_t **self_p);

//  A node registered (id and service checked by the broker; key its public
//  key, or "" in plain mode).  True, with the write to make, when etcd has
//  not been told this yet.
bool registry_note (registry_t *self, const char *id, const char *service, const char *key,
                    registry_write_t *write);

//  etcd's answer to the write tagged tag
void registry_written (registry_t *self, uint32_t tag, bool ok, int64_t now);

//  A write due again (etcd did not take it) at now: true, with the write
bool registry_due (registry_t *self, int64_t now, registry_write_t *write);

//  Records etcd holds as this broker last wrote them
size_t registry_written_count (registry_t *self);

#endif
