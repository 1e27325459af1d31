/*  workers - node registry and least-outstanding-requests choice  */
#include "workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _workers_t {
    worker_t **items;
    size_t size, cap;
    size_t rotor;           //  where the next tie-break search starts
};

workers_t *
workers_new (void)
{
    workers_t *self = calloc (1, sizeof (workers_t));
    if (!self)
        abort ();
    return self;
}

void
workers_destroy (workers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    workers_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++)
        free (self->items [i]);
    free (self->items);
    free (self);
    *self_p = NULL;
}

worker_t *
workers_find (workers_t *self, const void *identity, size_t size)
{
    //  A handful of nodes per cluster: a linear scan beats hashing here
    for (size_t i = 0; i < self->size; i++) {
        worker_t *w = self->items [i];
        if (w->identity_size == size && memcmp (w->identity, identity, size) == 0)
            return w;
    }
    return NULL;
}

worker_t *
workers_register (workers_t *self, const void *identity, size_t size,
                  const char *service, const char *id)
{
    if (size > sizeof (((worker_t *) 0)->identity))
        return NULL;
    worker_t *w = workers_find (self, identity, size);
    if (!w) {
        if (self->size == self->cap) {
            self->cap = self->cap? self->cap * 2: 16;
            self->items = realloc (self->items, self->cap * sizeof (worker_t *));
            if (!self->items)
                abort ();
        }
        w = calloc (1, sizeof (worker_t));
        if (!w)
            abort ();
        memcpy (w->identity, identity, size);
        w->identity_size = size;
        self->items [self->size++] = w;
    }
    snprintf (w->service, sizeof w->service, "%s", service);
    if (id && *id)
        snprintf (w->id, sizeof w->id, "%s", id);
    else {
        const uint8_t *bytes = identity;
        size_t n = size < 32? size: 32;
        for (size_t i = 0; i < n; i++)
            snprintf (w->id + 2 * i, 3, "%02x", bytes [i]);
    }
    w->alive = true;
    w->outstanding = 0;
    w->served = 0;
    w->read_seq = 0;
    w->fd = -1;
    w->reported_insync = false;
    w->has_status = false;
    w->partition_count = 0;
    w->ready = false;
    return w;
}

worker_t *
workers_choose (workers_t *self, const char *service, workers_filter_fn *filter, void *arg)
{
    worker_t *best = NULL;
    size_t best_index = 0;
    for (size_t k = 0; k < self->size; k++) {
        size_t i = (self->rotor + k) % self->size;
        worker_t *w = self->items [i];
        if (!w->alive || strcmp (w->service, service) != 0 || (filter && !filter (arg, w)))
            continue;
        if (!best || w->outstanding < best->outstanding) {
            best = w;
            best_index = i;
        }
    }
    if (best)
        self->rotor = best_index + 1;
    return best;
}

size_t
workers_alive (workers_t *self, const char *service)
{
    size_t n = 0;
    for (size_t i = 0; i < self->size; i++)
        n += self->items [i]->alive && strcmp (self->items [i]->service, service) == 0;
    return n;
}

worker_t *
workers_by_id (workers_t *self, const char *id)
{
    for (size_t i = 0; i < self->size; i++)
        if (strcmp (self->items [i]->id, id) == 0)
            return self->items [i];
    return NULL;
}

worker_partition_t *
worker_partition (worker_t *worker, const char *name)
{
    for (int i = 0; i < worker->partition_count; i++)
        if (strcmp (worker->partitions [i].name, name) == 0)
            return &worker->partitions [i];
    return NULL;
}

size_t workers_size (workers_t *self) { return self->size; }
worker_t *workers_at (workers_t *self, size_t index) { return index < self->size? self->items [index]: NULL; }
