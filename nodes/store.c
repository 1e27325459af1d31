/*  store - LMDB environment wrapper  */
#include "store.h"

#include <czmq.h>
#include <string.h>

struct _store_t {
    MDB_env *env;
    char *path;
};

store_t *
store_new (const char *path, size_t map_size)
{
    if (zsys_dir_create ("%s", path) != 0) {
        zsys_error ("store: cannot create data directory %s", path);
        return NULL;
    }
    store_t *self = calloc (1, sizeof (store_t));
    if (!self)
        abort ();
    self->path = strdup (path);
    int rc = mdb_env_create (&self->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (self->env, 16);
    if (rc == 0)
        rc = mdb_env_set_mapsize (self->env, map_size);
    if (rc == 0)
        rc = mdb_env_open (self->env, path, MDB_NOTLS, 0640);
    if (rc != 0) {
        zsys_error ("store: cannot open LMDB environment in %s: %s", path, mdb_strerror (rc));
        store_destroy (&self);
        return NULL;
    }
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
store_open_db (store_t *self, const char *name, unsigned flags, MDB_dbi *dbi_p)
{
    MDB_txn *txn = store_begin (self, true);
    if (!txn)
        return false;
    int rc = mdb_dbi_open (txn, name, flags | MDB_CREATE, dbi_p);
    if (rc != 0) {
        zsys_error ("store: cannot open database %s in %s: %s", name, self->path, mdb_strerror (rc));
        mdb_txn_abort (txn);
        return false;
    }
    return store_commit (self, txn) == 0;
}

MDB_txn *
store_begin (store_t *self, bool write)
{
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
    int rc = mdb_txn_commit (txn);
    if (rc != 0)
        zsys_error ("store: commit failed in %s: %s", self->path, mdb_strerror (rc));
    return rc;
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
