/*  store - LMDB environment wrapper  */
#include "store.h"

#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

struct _store_t {
    MDB_env *env;
    char *path;
    size_t map_size, max_size;
    bool read_only;
    bs_profile_t *profile;      //  borrowed; NULL: none
    int commit_phase;
};

store_t *
store_new (const char *path, size_t map_size, size_t max_size)
{
    if (zsys_dir_create ("%s", path) != 0 && access (path, R_OK) != 0) {
        zsys_error ("store: cannot create data directory %s", path);
        return NULL;
    }
#ifdef BS_MUTANT_FORGET_STORE
    //  A deliberately broken variant for the mutation tests: every start
    //  begins with an empty store
    char file [4096];
    snprintf (file, sizeof file, "%s/data.mdb", path);
    zsys_file_delete (file);
    snprintf (file, sizeof file, "%s/lock.mdb", path);
    zsys_file_delete (file);
#endif
    store_t *self = calloc (1, sizeof (store_t));
    if (!self)
        abort ();
    self->path = strdup (path);
    self->map_size = map_size;
    self->max_size = max_size > map_size? max_size: map_size;
    int rc = mdb_env_create (&self->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (self->env, 16);
    if (rc == 0)
        rc = mdb_env_set_mapsize (self->env, map_size);
    if (rc == 0)
        rc = mdb_env_open (self->env, path, MDB_NOTLS, 0640);
    if (rc == EROFS || rc == EACCES) {
        //  A read-only directory: serve what it holds, refuse every write.
        //  Nobody can write there, so no lock is needed.
        mdb_env_close (self->env);
        rc = mdb_env_create (&self->env);
        if (rc == 0)
            rc = mdb_env_set_maxdbs (self->env, 16);
        if (rc == 0)
            rc = mdb_env_open (self->env, path, MDB_NOTLS | MDB_RDONLY | MDB_NOLOCK, 0640);
        if (rc == 0) {
            self->read_only = true;
            zsys_warning ("store: %s is read-only: this node serves reads and refuses writes", path);
        }
    }
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED) {
        zsys_error ("store: refused %s: it holds a corrupt or foreign store (%s); "
                    "move it away to start this node empty (it then catches up from its peers)",
                    path, mdb_strerror (rc));
        store_destroy (&self);
        return NULL;
    }
    if (rc != 0) {
        zsys_error ("store: cannot open LMDB environment in %s: %s", path, mdb_strerror (rc));
        store_destroy (&self);
        return NULL;
    }
    //  A store written with a larger map keeps it
    MDB_envinfo info;
    if (mdb_env_info (self->env, &info) == 0 && info.me_mapsize > self->map_size)
        self->map_size = info.me_mapsize;
    return self;
}

void
store_destroy (store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    store_t *self = *self_p;
    if (self->env)
        mdb_env_close (self->env);
    free (self->path);
    free (self);
    *self_p = NULL;
}

MDB_env *store_env (store_t *self) { return self->env; }

bool
store_read_only (store_t *self)
{
    return self->read_only;
}

bool
store_open_db (store_t *self, const char *name, unsigned flags, MDB_dbi *dbi_p)
{
    MDB_txn *txn = store_begin (self, !self->read_only);
    if (!txn)
        return false;
    int rc = mdb_dbi_open (txn, name, flags | (self->read_only? 0: MDB_CREATE), dbi_p);
    if (rc != 0) {
        zsys_error ("store: cannot open database %s in %s: %s", name, self->path, mdb_strerror (rc));
        mdb_txn_abort (txn);
        return false;
    }
    return store_commit (self, txn) == 0;
}

//  Grows the map before it fills.  Only between transactions: a node has
//  no other transaction open when it begins a write.
static void
s_grow (store_t *self)
{
    MDB_envinfo info;
    MDB_stat stat;
    if (self->map_size >= self->max_size
    ||  mdb_env_info (self->env, &info) != 0 || mdb_env_stat (self->env, &stat) != 0)
        return;
    size_t used = (info.me_last_pgno + 1) * (size_t) stat.ms_psize;
    if (used < self->map_size / 4 * 3)
        return;
    size_t size = self->map_size * 2 < self->max_size? self->map_size * 2: self->max_size;
    int rc = mdb_env_set_mapsize (self->env, size);
    if (rc == 0) {
        zsys_info ("store: map of %s grown to %zu MiB", self->path, size >> 20);
        self->map_size = size;
    }
    else
        zsys_warning ("store: cannot grow the map of %s: %s", self->path, mdb_strerror (rc));
}

const char *
store_failure (int rc)
{
    switch (rc) {
        case MDB_MAP_FULL:
            return "the node's store reached its size limit (map-max-mb); nothing changed";
        case ENOSPC:
            return "the node's disk is full; nothing changed";
        case EROFS: case EACCES: case EPERM:
            return "the node's data directory is read-only; nothing changed";
        case EIO:
            return "the node's disk failed to write; nothing changed";
        default:
            return "the node could not store the write; nothing changed";
    }
}

MDB_txn *
store_begin (store_t *self, bool write)
{
    if (write && self->read_only)
        return NULL;
    if (write)
        s_grow (self);
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin (self->env, NULL, write? 0: MDB_RDONLY, &txn);
    if (rc != 0) {
        zsys_error ("store: cannot begin a transaction in %s: %s", self->path, mdb_strerror (rc));
        return NULL;
    }
    return txn;
}

int
store_commit (store_t *self, MDB_txn *txn)
{
    int left = bs_profile_enter (self->profile, self->commit_phase);
    int rc = mdb_txn_commit (txn);
    bs_profile_enter (self->profile, left);
    if (rc != 0)
        zsys_error ("store: commit failed in %s: %s", self->path, mdb_strerror (rc));
    return rc;
}

void
store_set_profile (store_t *self, bs_profile_t *profile, int commit_phase)
{
    self->profile = profile;
    self->commit_phase = commit_phase;
}

void
store_key_u32 (uint8_t *buf, uint32_t value)
{
    buf [0] = (uint8_t) (value >> 24);
    buf [1] = (uint8_t) (value >> 16);
    buf [2] = (uint8_t) (value >> 8);
    buf [3] = (uint8_t) value;
}

uint32_t
store_u32_key (const void *buf)
{
    const uint8_t *b = buf;
    return ((uint32_t) b [0] << 24) | ((uint32_t) b [1] << 16) | ((uint32_t) b [2] << 8) | b [3];
}

uint64_t
store_meta_get (MDB_txn *txn, MDB_dbi meta, const char *name)
{
    MDB_val key = { strlen (name), (void *) name }, val;
    uint64_t value = 0;
    if (mdb_get (txn, meta, &key, &val) == 0 && val.mv_size == sizeof value)
        memcpy (&value, val.mv_data, sizeof value);
    return value;
}

int
store_meta_put (MDB_txn *txn, MDB_dbi meta, const char *name, uint64_t value)
{
    MDB_val key = { strlen (name), (void *) name }, val = { sizeof value, &value };
    return mdb_put (txn, meta, &key, &val, 0);
}

void
store_digest (store_t *self, MDB_dbi dbi, char *hex)
{
    zdigest_t *digest = zdigest_new ();
    MDB_txn *txn = store_begin (self, false);
    if (txn) {
        MDB_cursor *cursor;
        if (mdb_cursor_open (txn, dbi, &cursor) == 0) {
            MDB_val key, val;
            int rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
            while (rc == 0) {
                zdigest_update (digest, key.mv_data, key.mv_size);
                zdigest_update (digest, val.mv_data, val.mv_size);
                rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
            }
            mdb_cursor_close (cursor);
        }
        mdb_txn_abort (txn);
    }
    snprintf (hex, 41, "%s", zdigest_string (digest));
    zdigest_destroy (&digest);
}
