/*  bs_idlist - comma-separated lists of node ids, as the partition map
 *  carries them (the in-sync set: "catalog-1,catalog-3").
 *
 *  Ownership: no state; the caller owns every string.
 */
#ifndef BS_IDLIST_H_INCLUDED
#define BS_IDLIST_H_INCLUDED

#include <stdbool.h>

//  True when id is one of the list's elements (whole elements only:
//  "node-1" is not in "node-10"; the empty id is in no list)
bool bs_idlist_has (const char *list, const char *id);

#endif
