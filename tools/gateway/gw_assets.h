/*  gw_assets - the storefront's files, compiled into the gateway.
 *
 *  The files under tools/gateway/www become C strings at build time
 *  (embed.awk), so the page ships inside the binary.  Look-up is by exact
 *  base name against that fixed table: a request can name only a file that
 *  was embedded, and no path ever reaches the file system.
 *
 *  Ownership: assets are static data, never freed.
 */
#ifndef GW_ASSETS_H_INCLUDED
#define GW_ASSETS_H_INCLUDED

#include <stddef.h>

typedef struct {
    const char *name;           //  base name, e.g. "app.js"
    const char *type;           //  Content-Type
    const char *data;
    size_t size;
} gw_asset_t;

//  Returns the embedded file with exactly this base name, or NULL
const gw_asset_t *gw_assets_find (const char *name);

#endif
