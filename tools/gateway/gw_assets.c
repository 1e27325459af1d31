/*  gw_assets - embedded storefront files  */
#include "gw_assets.h"

#include <string.h>

#include "gw_www.h"

const gw_asset_t *
gw_assets_find (const char *name)
{
    for (const gw_asset_t *asset = s_www; asset->name; asset++)
        if (strcmp (asset->name, name) == 0)
            return asset;
    return NULL;
}
