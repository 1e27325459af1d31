/*  bs_alloc - allocations that cannot fail: out of memory aborts.
 *
 *  The programs have no sensible way on from an allocation that failed, so
 *  instead of checking every result (or forgetting to), they abort at once
 *  with a message, as czmq's zmalloc does.  Use these wherever memory comes
 *  from malloc, calloc, realloc or strdup.
 *
 *  Ownership: the caller frees what they return with free.  Thread-safe.
 */
#ifndef BS_ALLOC_H_INCLUDED
#define BS_ALLOC_H_INCLUDED

#include <stddef.h>

//  count elements of size bytes, zeroed
void *bs_alloc (size_t count, size_t size);
//  ptr grown or shrunk to count elements of size bytes (new room not zeroed)
void *bs_realloc (void *ptr, size_t count, size_t size);
char *bs_strdup (const char *text);
//  Makes room for one more element in *table, which holds count of *cap
//  elements of size bytes: when full, doubles it (8 to start)
void bs_grow (void **table, int *cap, int count, size_t size);

#endif
