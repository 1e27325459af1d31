/*  bs_idlist - comma-separated lists of node ids  */
#include "bs_idlist.h"

#include <string.h>

bool
bs_idlist_has (const char *list, const char *id)
{
    size_t n = strlen (id);
    if (n == 0)
        return false;           //  an empty id is no node's
    for (const char *p = list; *p; ) {
        const char *comma = strchr (p, ',');
        size_t len = comma? (size_t) (comma - p): strlen (p);
        if (len == n && memcmp (p, id, n) == 0)
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}
