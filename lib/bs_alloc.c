/*  bs_alloc - allocations that abort when memory runs out  */
#include "bs_alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *
s_check (void *memory, size_t bytes)
{
    if (!memory && bytes) {
        fprintf (stderr, "out of memory (%zu bytes)\n", bytes);
        abort ();
    }
    return memory;
}

void *
bs_alloc (size_t count, size_t size)
{
    return s_check (calloc (count, size), count * size);
}

void *
bs_realloc (void *ptr, size_t count, size_t size)
{
    //  An overflowing count would be as fatal as no memory
    if (size && count > SIZE_MAX / size)
        return s_check (NULL, SIZE_MAX);
    return s_check (realloc (ptr, count * size), count * size);
}

char *
bs_strdup (const char *text)
{
    return s_check (strdup (text), strlen (text) + 1);
}

void
bs_grow (void **table, int *cap, int count, size_t size)
{
    if (count < *cap)
        return;
    int grown = *cap? *cap * 2: 8;
    *table = bs_realloc (*table, (size_t) grown, size);
    *cap = grown;
}
