/*  bs_name - the rule for node ids and partition names (bs_name.h) */
#include "bs_name.h"

#include <string.h>

bool
bs_name_valid (const char *name, size_t max)
{
    if (!name)
        return false;
    size_t n = strlen (name);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}
