/*  store - a node's LMDB environment in its data directory.
 *
 *  Commits are durable (no MDB_NOSYNC).  Every write transaction that fails
 *  is aborted and reported.  The map grows (doubling, up to a limit) before
 *  a write transaction begins when it is three quarters used, so
 *  MDB_MAP_FULL is met only at the limit; it is then reported like any
 *  other error, and reads go on.  A data directory whose environment LMDB
 *  cannot read (corrupt, or not LMDB) is refused with a clear message.
 *
 *  Ownership: store_new returns a store the caller destroys with
 *  store_destroy, after every module that uses its environment.
 */
#ifndef STORE_H_INCLUDED
#define STORE_H_INCLUDED

#include "bs_profile.h"

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _store_t store_t;

//  Creates the directory if needed; the map starts at map_size and may grow
//  to max_size.  Returns NULL and logs why on failure.
store_t *store_new (const char *path, size_t map_size, size_t max_size);

//  True when the data directory could only be opened read-only: every
//  write then fails (store_begin returns NULL for writes), reads go on
bool store_read_only (store_t *self);

//  A sentence for a failed write, for replies: what went wrong, in words
//  (the map's limit, a full disk, a read-only directory, ...)
const char *store_failure (int rc);
void store_destroy (store_t **self_p);

MDB_env *store_env (store_t *self);

//  Opens (creating if needed) a named database; flags as mdb_dbi_open
bool store_open_db (store_t *self, const char *name, unsigned flags, MDB_dbi *dbi_p);

//  Begin a transaction; NULL (logged) on failure
MDB_txn *store_begin (store_t *self, bool write);
//  Commits; returns 0 or an LMDB error (logged); the txn is gone either way
int store_commit (store_t *self, MDB_txn *txn);

//  Counts the time of every commit in the profile's commit_phase
//  (borrowed; NULL: none)
void store_set_profile (store_t *self, bs_profile_t *profile, int commit_phase);

//  Big-endian 32-bit keys sort numerically
void store_key_u32 (uint8_t *buf, uint32_t value);
uint32_t store_u32_key (const void *buf);

//  Meta values: 64-bit counters stored under a name
uint64_t store_meta_get (MDB_txn *txn, MDB_dbi meta, const char *name);
int store_meta_put (MDB_txn *txn, MDB_dbi meta, const char *name, uint64_t value);

//  Hex SHA-1 over every key and value of a database, in key order, into
//  hex[41]: equal digests mean equal contents
void store_digest (store_t *self, MDB_dbi dbi, char *hex);

#endif
