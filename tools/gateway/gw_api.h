/*  gw_api - the gateway's routes: the original REST API, the JSON API, the
 *  cluster's status, metrics, health and the storefront page.
 *
 *  It knows HTTP only as a method, a path, arguments, headers and a body in,
 *  and a status, a type and a body out; gateway.c does the socket side
 *  (libmicrohttpd).  Each store call goes through the client pool with a
 *  fresh rid (or the client's Idempotency-Key), and each store error code
 *  becomes an HTTP status through one table.
 *
 *  Ownership: gw_api_new borrows the pool, which must outlive the api, and
 *  makes the metrics it owns.  gw_api_handle fills a reply the caller
 *  releases with gw_reply_reset.  gw_api_handle may run on many threads at
 *  once.
 */
#ifndef GW_API_H_INCLUDED
#define GW_API_H_INCLUDED

#include "gw_metrics.h"
#include "gw_pool.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum { GW_ARG, GW_HEADER } gw_kind_t;

typedef struct {
    const char *method;
    const char *path;           //  decoded, without the query string
    //  Returns a query argument (GW_ARG) or header (GW_HEADER), or NULL
    const char *(*lookup) (void *ctx, gw_kind_t kind, const char *name);
    void *ctx;
    const char *body;
    size_t body_size;
    bool too_large;             //  the body exceeded the limit (and was dropped)
} gw_request_t;

typedef struct {
    int status;
    const char *route;          //  the route's label, for metrics (static)
    const char *type;           //  Content-Type (static)
    const char *data;           //  the body: static bytes or `owned`
    size_t size;
    char *owned;                //  malloc'd body, if any
    bool page;                  //  a storefront file (page headers apply)
    char allow [48];            //  Allow header of a 405, or ""
    char location [48];         //  Location header of a 201, or ""
} gw_reply_t;

typedef struct _gw_api_t gw_api_t;

//  health_timeout_ms bounds the status calls of /healthz and /metrics
gw_api_t *gw_api_new (gw_pool_t *pool, int health_timeout_ms);
void gw_api_destroy (gw_api_t **self_p);

//  Answers one request; never fails (errors are replies)
void gw_api_handle (gw_api_t *self, const gw_request_t *request, gw_reply_t *reply);

//  The metrics, owned by the api
gw_metrics_t *gw_api_metrics (gw_api_t *self);

//  The HTTP status for an error code (of the store or the gateway)
int gw_api_status (const char *error);

//  Frees the reply's owned body and clears it
void gw_reply_reset (gw_reply_t *reply);

#endif
