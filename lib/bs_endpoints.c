/*  bs_endpoints - a list of broker endpoints, one in use  */
#include "bs_endpoints.h"

#include <czmq.h>
#include <string.h>

#define ENDPOINT_MAX 256

struct _bs_endpoints_t {
    char items [BS_ENDPOINTS_MAX][ENDPOINT_MAX];
    size_t size;
    size_t current;
    char text [BS_ENDPOINTS_MAX * ENDPOINT_MAX];
};

bs_endpoints_t *
bs_endpoints_new (const char *list)
{
    if (!list || !*list)
        return NULL;
    bs_endpoints_t *self = calloc (1, sizeof (bs_endpoints_t));
    if (!self)
        abort ();
    const char *start = list;
    while (true) {
        const char *end = strchr (start, ',');
        size_t n = end? (size_t) (end - start): strlen (start);
        if (n == 0 || n >= ENDPOINT_MAX || self->size == BS_ENDPOINTS_MAX) {
            free (self);
            return NULL;
        }
        memcpy (self->items [self->size++], start, n);
        if (!end)
            break;
        start = end + 1;
    }
    snprintf (self->text, sizeof self->text, "%s", list);
    return self;
}

void
bs_endpoints_destroy (bs_endpoints_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free (*self_p);
    *self_p = NULL;
}

size_t bs_endpoints_size (bs_endpoints_t *self) { return self->size; }

const char *
bs_endpoints_at (bs_endpoints_t *self, size_t index)
{
    return index < self->size? self->items [index]: NULL;
}

bool
bs_endpoints_valid (bs_endpoints_t *self)
{
    zsock_t *scratch = zsock_new (ZMQ_DEALER);
    zsock_set_linger (scratch, 0);
    bool valid = true;
    for (size_t i = 0; i < self->size && valid; i++)
        valid = zsock_connect (scratch, "%s", self->items [i]) == 0;
    zsock_destroy (&scratch);
    return valid;
}

const char *bs_endpoints_current (bs_endpoints_t *self) { return self->items [self->current]; }
size_t bs_endpoints_index (bs_endpoints_t *self) { return self->current; }
const char *bs_endpoints_text (bs_endpoints_t *self) { return self->text; }

const char *
bs_endpoints_next (bs_endpoints_t *self)
{
    self->current = (self->current + 1) % self->size;
    return self->items [self->current];
}

void
bs_endpoints_select (bs_endpoints_t *self, size_t index)
{
    if (index < self->size)
        self->current = index;
}

int
bs_endpoints_switch (bs_endpoints_t *self, void *zsock)
{
    zsock_t *sock = zsock;
    //  With one endpoint this is a fresh connection to the same broker
    zsock_disconnect (sock, "%s", bs_endpoints_current (self));
    return zsock_connect (sock, "%s", bs_endpoints_next (self)) < 0? -1: 0;
}
