/*  gw_api - the gateway's routes: the original REST API, the JSON API, the
 *  cluster's status, metrics, health and the storefront page.
 *
 *  It knows HTTP only as a method, a path, arguments, headers, a body and
 *  the client's address in, and a status, a type and a body out; gateway.c
 *  does the socket side (libmicrohttpd).  Answering a request has two steps:
 *
 *  - gw_api_parse, which needs neither the network nor the store: it finds
 *    the route, checks the admin token of admin routes, reads path,
 *    arguments and JSON body, and builds the store request with a fresh rid
 *    (or the client's Idempotency-Key), checked against the codec's limits.
 *    Every malformed request ends here with its 4xx.
 *  - gw_api_begin, which rate-limits the client and parses; gw_api_call,
 *    which sends the store request through the broker link (gw_link) and
 *    returns at once; and gw_api_finish, which turns the store's answer
 *    (or the link's error) into the reply; each store error code becomes
 *    an HTTP status through one table.
 *
 *  Admin routes (prices, restocks, new books, and the list of every order)
 *  take `Authorization: Bearer <token>`.  Without a configured token they
 *  are refused with 403.
 *
 *  Ownership: gw_api_new copies the token; it makes the metrics and the rate
 *  limiter it owns.  gw_api_parse, gw_api_begin, gw_api_finish and
 *  gw_api_handle fill a reply the caller releases with gw_reply_reset, and
 *  gw_api_parse and gw_api_begin a parsed request the caller releases with
 *  gw_parsed_reset.  Every function may run on many threads at once (the
 *  gateway's loops share one api); gw_api_call runs on the thread that
 *  polls the link it is given.
 */
#ifndef GW_API_H_INCLUDED
#define GW_API_H_INCLUDED

#include "gw_metrics.h"
#include "gw_link.h"

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
    const char *client;         //  the client's key for rate limiting (gw_limit_key), or NULL
} gw_request_t;

typedef struct {
    int status;
    const char *route;          //  the route's label, for metrics (static)
    const char *type;           //  Content-Type (static)
    const char *data;           //  the body: static bytes or `owned`
    size_t size;
    char *owned;                //  malloc'd body, if any
    bool page;                  //  a storefront file (page headers apply)
    bool challenge;             //  a 401: send WWW-Authenticate
    int retry_after;            //  a 429: seconds for Retry-After, else 0
    char allow [48];            //  Allow header of a 405, or ""
    char location [48];         //  Location header of a 201, or ""
} gw_reply_t;

//  What gw_api_parse made of a request that needs the store
typedef struct {
    int route;                  //  index in the route table
    bs_msg_t *msg;              //  the store request, checked (owned)
} gw_parsed_t;

typedef struct {
    int health_timeout_ms;      //  bounds the status calls of /healthz, /metrics, /cluster
    const char *admin_token;    //  NULL or "": admin routes are refused
    double rate_limit;          //  requests per second per client; 0: no limit
    double rate_burst;          //  bucket size (0: twice the rate)
    size_t rate_clients;        //  clients tracked at most (0: 10,000)
} gw_api_options_t;

typedef struct _gw_api_t gw_api_t;

gw_api_t *gw_api_new (const gw_api_options_t *options);
void gw_api_destroy (gw_api_t **self_p);

//  Reads a request without sending anything.  Returns true with *parsed
//  filled when a store request must be sent; false when the reply is
//  already complete (an error, or a storefront file).
bool gw_api_parse (gw_api_t *self, const gw_request_t *request, gw_parsed_t *parsed,
                   gw_reply_t *reply);

//  Takes a token from the client's bucket (request->client NULL: not
//  limited), then parses as gw_api_parse does
bool gw_api_begin (gw_api_t *self, const gw_request_t *request, gw_parsed_t *parsed,
                   gw_reply_t *reply);

//  Sends a parsed request through the link (the calling loop's): fn is
//  called once with the answer, as gw_link_call says
gw_waiter_t *gw_api_call (gw_api_t *self, gw_link_t *link, const gw_parsed_t *parsed,
                          gw_link_fn *fn, void *arg);

//  Turns the store's answer (NULL: the link's error err) into the reply,
//  which it fills from scratch
void gw_api_finish (gw_api_t *self, const gw_parsed_t *parsed, const bs_msg_t *answer, bs_err_t err,
                    gw_reply_t *reply);

//  Answers one request without a broker (begin, then finish as if the
//  cluster were unavailable): for fuzzing; never fails (errors are replies)
void gw_api_handle (gw_api_t *self, const gw_request_t *request, gw_reply_t *reply);

//  The metrics, owned by the api
gw_metrics_t *gw_api_metrics (gw_api_t *self);

//  The HTTP status for an error code (of the store or the gateway)
int gw_api_status (const char *error);

//  Frees the reply's owned body and clears it
void gw_reply_reset (gw_reply_t *reply);

//  Frees the parsed request and clears it
void gw_parsed_reset (gw_parsed_t *parsed);

//  Reads an admin token: the text, or else the first line of the file,
//  without surrounding white space.  Fills token [size] and returns true
//  when neither is given (token "") or the token is well formed: 16 to 256
//  printable ASCII characters without spaces.  False with a sentence in
//  reason otherwise.
bool gw_api_read_token (const char *text, const char *file, char *token, size_t size,
                        char *reason, size_t reason_size);

#endif
