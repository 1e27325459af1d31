/*  registry - the node registry kept in etcd (registry.h) */
#include "registry.h"
#include "bs_sizes.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { RECORD_SENT, RECORD_WRITTEN, RECORD_FAILED } record_state_t;

typedef struct {
    char id [BS_ID_MAX + 1];
    char key [BS_ID_MAX + 16];      //  nodes/<id>
    char *value;                    //  the JSON last sent
    record_state_t state;
    int inflight;                   //  writes sent, not answered yet
    int64_t retry_at;
} record_t;

struct _registry_t {
    record_t records [REGISTRY_MAX];
    size_t count;
    bool full_logged;
};

registry_t *
registry_new (void)
{
    return calloc (1, sizeof (registry_t));
}

void
registry_destroy (registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    registry_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free (self->records [i].value);
    free (self);
    *self_p = NULL;
}

static void
s_write_of (record_t *record, size_t index, registry_write_t *write)
{
    write->key = record->key;
    write->value = record->value;
    write->tag = REGISTRY_TAG | (uint32_t) index;
}

bool
registry_note (registry_t *self, const char *id, const char *service, const char *key,
               registry_write_t *write)
{
    json_t *object = json_pack ("{s:s, s:s, s:s}", "id", id, "service", service, "key", key? key: "");
    char *value = object? json_dumps (object, JSON_COMPACT | JSON_SORT_KEYS): NULL;
    json_decref (object);
    if (!value)
        return false;
    size_t index;
    for (index = 0; index < self->count; index++)
        if (strcmp (self->records [index].id, id) == 0)
            break;
    if (index == self->count) {
        if (self->count == REGISTRY_MAX || strlen (id) > BS_ID_MAX) {
            if (!self->full_logged)
                fprintf (stderr, "registry: %d nodes recorded; '%s' and later ones are not written to etcd\n",
                         REGISTRY_MAX, id);
            self->full_logged = true;
            free (value);
            return false;
        }
        record_t *record = &self->records [self->count++];
        memset (record, 0, sizeof *record);
        snprintf (record->id, sizeof record->id, "%s", id);
        snprintf (record->key, sizeof record->key, "nodes/%s", id);
    }
    record_t *record = &self->records [index];
    //  Told already, or being told: nothing to write
    if (record->value && strcmp (record->value, value) == 0 && record->state != RECORD_FAILED) {
        free (value);
        return false;
    }
    free (record->value);
    record->value = value;
    record->state = RECORD_SENT;
    record->inflight++;
    s_write_of (record, index, write);
    return true;
}

void
registry_written (registry_t *self, uint32_t tag, bool ok, int64_t now)
{
    size_t index = tag & ~REGISTRY_TAG;
    if (!(tag & REGISTRY_TAG) || index >= self->count)
        return;
    record_t *record = &self->records [index];
    if (record->inflight > 0)
        record->inflight--;
    //  Answers come in the order the writes went: the last one answered
    //  carried the newest value
    if (!ok) {
        record->state = RECORD_FAILED;
        record->retry_at = now + REGISTRY_RETRY_MS;
    }
    else
    if (record->inflight == 0 && record->state == RECORD_SENT)
        record->state = RECORD_WRITTEN;
}

bool
registry_due (registry_t *self, int64_t now, registry_write_t *write)
{
    for (size_t index = 0; index < self->count; index++) {
        record_t *record = &self->records [index];
        if (record->state == RECORD_FAILED && now >= record->retry_at) {
            record->state = RECORD_SENT;
            record->inflight++;
            s_write_of (record, index, write);
            return true;
        }
    }
    return false;
}

size_t
registry_written_count (registry_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        n += self->records [i].state == RECORD_WRITTEN;
    return n;
}
