/*  gw_api - routes of the HTTP gateway  */
#include "gw_api.h"
#include "gw_assets.h"
#include "gw_limit.h"
#include "bs_request.h"

#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_SEGMENTS 8
#define TOKEN_MAX 257

struct _gw_api_t {
    gw_metrics_t *metrics;
    gw_limit_t *limit;          //  NULL: no rate limit
    int health_timeout_ms;
    char admin_token [TOKEN_MAX];
};

//  Error codes, the store's (schema/errors.def) and the gateway's own, and
//  their HTTP statuses: the one place that decides them.  Codes are matched
//  by name, as they travel in replies; a code missing here answers 500, and
//  gw_api_new warns about any store code the table lacks.
static const struct {
    const char *error;
    int status;
} s_statuses [] = {
    //  The request is malformed
    { "bad_field",          400 },
    { "missing_field",      400 },
    { "bad_json",           400 },
    //  Admin routes: no token (401), or a wrong one, or none configured (403)
    { "unauthorized",       401 },
    { "forbidden",          403 },
    //  No such book, or no such route
    { "unknown_item",       404 },
    { "not_found",          404 },
    { "method_not_allowed", 405 },
    //  The store said no
    { "exists",             409 },
    { "out_of_stock",       409 },
    { "too_large",          413 },
    { "unsupported_media_type", 415 },
    { "rate_limited",       429 },
    //  The cluster could not answer now; the same request may succeed later
    { "unavailable",        503 },
    { "timeout",            503 },
    { "not_invalidated",    503 },
    { "overloaded",         503 },
    //  Every broker of the pair said it is the backup (a takeover under way)
    { "not_active",         503 },
    //  The gateway and the store disagree, or the store failed
    { "bad_frame",          500 },
    { "bad_msgpack",        500 },
    { "unknown_op",         500 },
    { "unknown_service",    500 },
    { "unknown_node",       500 },      //  the gateway never names a node
    { "storage",            500 },
    { "internal",           500 },
};

int
gw_api_status (const char *error)
{
    for (size_t i = 0; i < sizeof s_statuses / sizeof s_statuses [0]; i++)
        if (strcmp (s_statuses [i].error, error) == 0)
            return s_statuses [i].status;
    return 500;
}

gw_api_t *
gw_api_new (const gw_api_options_t *options)
{
    gw_api_t *self = calloc (1, sizeof (gw_api_t));
    if (!self)
        abort ();
    self->metrics = gw_metrics_new ();
    self->health_timeout_ms = options->health_timeout_ms;
    snprintf (self->admin_token, sizeof self->admin_token, "%s",
              options->admin_token? options->admin_token: "");
    if (options->rate_limit > 0)
        self->limit = gw_limit_new (options->rate_limit,
                                    options->rate_burst > 0? options->rate_burst: 2 * options->rate_limit,
                                    options->rate_clients? options->rate_clients: 10000);
    //  A code added to errors.def should get its own status here
    for (int err = 1; err < BS_ERR_COUNT; err++) {
        bool found = false;
        for (size_t i = 0; i < sizeof s_statuses / sizeof s_statuses [0]; i++)
            found |= strcmp (s_statuses [i].error, bs_err_name ((bs_err_t) err)) == 0;
        if (!found)
            zsys_warning ("gateway: error code '%s' has no HTTP status; it answers 500",
                          bs_err_name ((bs_err_t) err));
    }
    return self;
}

void
gw_api_destroy (gw_api_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_metrics_destroy (&(*self_p)->metrics);
    gw_limit_destroy (&(*self_p)->limit);
    free (*self_p);
    *self_p = NULL;
}

gw_metrics_t *
gw_api_metrics (gw_api_t *self)
{
    return self->metrics;
}

void
gw_reply_reset (gw_reply_t *reply)
{
    free (reply->owned);
    memset (reply, 0, sizeof *reply);
}

void
gw_parsed_reset (gw_parsed_t *parsed)
{
    bs_msg_destroy (&parsed->msg);
    parsed->route = -1;
}

//  ---------------------------------------------------------------------
//  Admin tokens

bool
gw_api_read_token (const char *text, const char *file, char *token, size_t size,
                   char *reason, size_t reason_size)
{
    char buffer [1024] = "";
    token [0] = 0;
    if (text && *text)
        snprintf (buffer, sizeof buffer, "%s", text);
    else
    if (file && *file) {
        //  Never through a symbolic link: one planted at the path could
        //  make any file the token
        int fd = open (file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        FILE *handle = fd >= 0? fdopen (fd, "r"): NULL;
        if (!handle) {
            int error = errno;
            if (fd >= 0)
                close (fd);
            errno = error;
            if (errno == ELOOP) {
                snprintf (reason, reason_size, "the admin token file %s is a symbolic link: refused", file);
                return false;
            }
            snprintf (reason, reason_size, "cannot read the admin token file %s: %s", file, strerror (errno));
            return false;
        }
        if (!fgets (buffer, sizeof buffer, handle))
            buffer [0] = 0;
        fclose (handle);
    }
    else
        return true;            //  no token: admin routes are refused
    char *start = buffer;
    while (*start && isspace ((unsigned char) *start))
        start++;
    size_t n = strlen (start);
    while (n && isspace ((unsigned char) start [n - 1]))
        start [--n] = 0;
    bool printable = true;
    for (size_t i = 0; i < n; i++)
        printable &= start [i] > 0x20 && start [i] < 0x7f;
    if (n < 16 || n > 256 || n >= size || !printable) {
        snprintf (reason, reason_size, "the admin token must be 16 to 256 printable characters "
                  "without spaces (%s)", text && *text? "--admin-token": file);
        return false;
    }
    memcpy (token, start, n + 1);
    return true;
}

//  Compares in time that depends on the length of what was sent, never on
//  where it first differs from the token
static bool
s_token_equal (const char *token, const char *given)
{
    size_t n = strlen (token), m = strlen (given);
    unsigned char diff = n != m;
    for (size_t i = 0; i < m; i++)
        diff |= (unsigned char) given [i] ^ (unsigned char) token [i < n? i: 0];
    return diff == 0;
}

//  ---------------------------------------------------------------------
//  Replies

//  Takes the JSON value (NULL answers 500) and makes it the reply's body
static void
s_json_reply (gw_reply_t *reply, int status, json_t *value)
{
    char *text = value? json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY): NULL;
    json_decref (value);
    free (reply->owned);
    if (!text) {
        status = 500;
        text = strdup ("{\"error\":\"internal\",\"message\":\"the gateway could not write its reply\"}");
        if (!text)
            abort ();
    }
    reply->status = status;
    reply->type = "application/json";
    reply->owned = text;
    reply->data = text;
    reply->size = strlen (text);
}

//  A JSON string from text that may hold bytes that are not UTF-8 (they
//  come from request paths): those become '?'
static json_t *
s_text (const char *text)
{
    json_t *value = json_string (text);
    if (value)
        return value;
    char *copy = strdup (text);
    if (!copy)
        abort ();
    for (char *c = copy; *c; c++)
        if ((unsigned char) *c >= 0x80)
            *c = '?';
    value = json_string (copy);
    free (copy);
    return value;
}

static void
s_error (gw_reply_t *reply, const char *error, const char *message)
{
    json_t *body = json_object ();
    json_object_set_new (body, "error", s_text (error));
    json_object_set_new (body, "message", s_text (message));
    s_json_reply (reply, gw_api_status (error), body);
}

//  A store message as JSON, without the envelope (ok, rid) clients do not need
static json_t *
s_msg_json (const bs_msg_t *msg)
{
    char *text = bs_msg_to_json (msg);
    json_t *value = text? json_loads (text, 0, NULL): NULL;
    free (text);
    if (value) {
        json_object_del (value, "ok");
        json_object_del (value, "rid");
    }
    return value;
}

//  ---------------------------------------------------------------------
//  Reading requests

//  A request for op with a fresh rid, or the client's Idempotency-Key (32
//  hex digits) so that a client may retry a write safely.  NULL, with the
//  reply filled, when the key is malformed.
static bs_msg_t *
s_new_request (const gw_request_t *request, bs_op_t op, gw_reply_t *reply)
{
    //  A fresh rid as bs_rid_generate makes it (the time, then random
    //  bytes), with the random bytes drawn from a pool refilled in bulk: a
    //  system call per request costs more than the rest of a cached lookup.
    //  One pool per thread: the gateway's loops share no lock for it.
    static _Thread_local uint8_t pool [4000];
    static _Thread_local size_t used = sizeof pool;
    const size_t random_size = BS_RID_SIZE - BS_RID_TIME_SIZE;
    uint8_t rid [BS_RID_SIZE];
    bs_rid_put_time (rid);
    if (used + random_size > sizeof pool) {
        bs_random_bytes (pool, sizeof pool);
        used = 0;
    }
    memcpy (rid + BS_RID_TIME_SIZE, pool + used, random_size);
    used += random_size;
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, bs_op_name (op));
    bs_msg_set_bin (msg, BS_FIELD_rid, rid, sizeof rid);
    const char *key = request->lookup (request->ctx, GW_HEADER, "Idempotency-Key");
    if (key && bs_op_kind (op) == BS_KIND_WRITE) {
        uint8_t rid [BS_RID_SIZE];
        if (!bs_rid_parse (key, rid)) {
            s_error (reply, "bad_field", "the Idempotency-Key header must be 32 hex digits");
            bs_msg_destroy (&msg);
            return NULL;
        }
        bs_msg_set_bin (msg, BS_FIELD_rid, rid, sizeof rid);
    }
    return msg;
}

//  Sets the item from text (a path segment or an argument); false, with the
//  reply filled, when it is not a number (limits are the codec's, checked
//  once the request is built)
static bool
s_set_item (bs_msg_t *msg, const char *text, gw_reply_t *reply)
{
    char reason [128];
    if (bs_request_set_text (msg, BS_FIELD_item, text, reason, sizeof reason))
        return true;
    s_error (reply, "bad_field", reason);
    return false;
}

//  Reads a JSON object body into the message, accepting only the given
//  fields with their JSON types; false, with the reply filled, otherwise
static bool
s_read_body (const gw_request_t *request, bs_msg_t *msg, const bs_field_t *fields, int count,
             gw_reply_t *reply)
{
    const char *type = request->lookup (request->ctx, GW_HEADER, "Content-Type");
    size_t n = strlen ("application/json");
    if (!type || strncasecmp (type, "application/json", n) != 0
    ||  (type [n] && type [n] != ';' && type [n] != ' ')) {
        s_error (reply, "unsupported_media_type", "send the body as application/json");
        return false;
    }
    json_error_t error;
    json_t *root = json_loadb (request->body? request->body: "", request->body_size,
                               JSON_REJECT_DUPLICATES, &error);
    char reason [256];
    if (!root) {
        snprintf (reason, sizeof reason, "the body is not valid JSON: %s", error.text);
        s_error (reply, "bad_json", reason);
        return false;
    }
    bool valid = json_is_object (root);
    if (!valid)
        s_error (reply, "bad_json", "the body must be a JSON object");
    const char *key;
    json_t *value;
    json_object_foreach (root, key, value) {
        if (!valid)
            break;
        int i = 0;
        while (i < count && strcmp (bs_field_name (fields [i]), key) != 0)
            i++;
        if (i == count) {
            snprintf (reason, sizeof reason, "unknown field '%.40s'", key);
            valid = false;
        }
        else
        if (bs_field_type (fields [i]) == BS_T_INT) {
            if (json_is_integer (value))
                bs_msg_set_int (msg, fields [i], json_integer_value (value));
            else {
                snprintf (reason, sizeof reason, "%s must be a whole number", key);
                valid = false;
            }
        }
        else
        if (json_is_string (value) && strlen (json_string_value (value)) == json_string_length (value))
            bs_msg_set_str (msg, fields [i], json_string_value (value));
        else {
            snprintf (reason, sizeof reason, "%s must be a string", key);
            valid = false;
        }
        if (!valid)
            s_error (reply, "bad_field", reason);
    }
    json_decref (root);
    return valid;
}

//  ---------------------------------------------------------------------
//  Routes.  Each has a reader, which builds its store request (or answers
//  at once), and an answerer, which turns the store's answer into the
//  reply.  An answerer gets answer NULL with err set when the cluster did
//  not answer.

typedef bs_msg_t *(reader_t) (const gw_request_t *request, char **params, gw_reply_t *reply);
typedef void (answerer_t) (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err,
                           gw_reply_t *reply);

//  True when the store answered ok; otherwise fills the error reply
static bool
s_ok (const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    if (!answer) {
        s_error (reply, bs_err_name (err), err == BS_ERR_timeout
                 ? "the cluster did not answer in time; a retry is safe"
                 : "the gateway is busy; try again");
        return false;
    }
    if (bs_msg_int (answer, BS_FIELD_ok))
        return true;
    const char *error = bs_msg_str (answer, BS_FIELD_error);
    s_error (reply, *error? error: "internal", bs_msg_str (answer, BS_FIELD_message));
    return false;
}

//  ---- The original REST API, with its exact shapes

//  GET /search/<topic> -> {"items": {"<title>": <item>, ...}}
static bs_msg_t *
r_legacy_search (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    bs_msg_t *msg = s_new_request (request, BS_OP_search, reply);
    bs_msg_set_str (msg, BS_FIELD_topic, params [0]);
    return msg;
}

static void
a_legacy_search (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    (void) self;
    if (!s_ok (answer, err, reply))
        return;
    if (bs_msg_count (answer, BS_FIELD_items) == 0) {
        //  The original's sentence for a topic without books, status 200
        char *text = zsys_sprintf ("There is no relevant book available associated with topic- %s",
                                   bs_msg_str (msg, BS_FIELD_topic));
        s_json_reply (reply, 200, s_text (text));
        zstr_free (&text);
        return;
    }
    json_t *items = json_object ();
    for (size_t i = 0; i < bs_msg_count (answer, BS_FIELD_items); i++) {
        bs_msg_t *book = bs_msg_at (answer, BS_FIELD_items, i);
        json_object_set_new (items, bs_msg_str (book, BS_FIELD_title),
                             json_integer (bs_msg_int (book, BS_FIELD_item)));
    }
    s_json_reply (reply, 200, json_pack ("{s:o}", "items", items));
}

//  GET /lookup/<item>, GET /books/<item>
static bs_msg_t *
r_lookup (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    bs_msg_t *msg = s_new_request (request, BS_OP_lookup, reply);
    if (!s_set_item (msg, params [0], reply))
        bs_msg_destroy (&msg);
    return msg;
}

//  -> {"item_number": <item>, "cost": <cost>, "stock": <stock>, ...}
static void
a_legacy_lookup (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    (void) self;
    if (answer && !bs_msg_int (answer, BS_FIELD_ok)
    &&  strcmp (bs_msg_str (answer, BS_FIELD_error), bs_err_name (BS_ERR_unknown_item)) == 0) {
        //  The original's sentence for an unknown book, status 200
        char text [96];
        snprintf (text, sizeof text, "There is no book available of number- %lld",
                  (long long) bs_msg_int (msg, BS_FIELD_item));
        s_json_reply (reply, 200, json_string (text));
    }
    else
    if (s_ok (answer, err, reply))
        s_json_reply (reply, 200, json_pack ("{s:I,s:I,s:I,s:s,s:s}",
            "item_number", (json_int_t) bs_msg_int (answer, BS_FIELD_item),
            "cost", (json_int_t) bs_msg_int (answer, BS_FIELD_cost),
            "stock", (json_int_t) bs_msg_int (answer, BS_FIELD_stock),
            "title", bs_msg_str (answer, BS_FIELD_title),
            "topic", bs_msg_str (answer, BS_FIELD_topic)));
}

//  GET /buy/<item>
static bs_msg_t *
r_legacy_buy (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    bs_msg_t *msg = s_new_request (request, BS_OP_buy, reply);
    if (msg && !s_set_item (msg, params [0], reply))
        bs_msg_destroy (&msg);
    return msg;
}

//  -> "Transaction successful." or the original's sentence for a book out
//  of stock; both 200, as the original answered them
static void
a_legacy_buy (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    (void) self;
    if (answer && !bs_msg_int (answer, BS_FIELD_ok)
    &&  strcmp (bs_msg_str (answer, BS_FIELD_error), bs_err_name (BS_ERR_out_of_stock)) == 0) {
        char text [128];
        snprintf (text, sizeof text, "Oops! We ran out of %lld's stock. Please try again after sometime.",
                  (long long) bs_msg_int (msg, BS_FIELD_item));
        s_json_reply (reply, 200, json_string (text));
    }
    else
    if (s_ok (answer, err, reply))
        s_json_reply (reply, 200, json_string ("Transaction successful."));
}

//  ---- The JSON API

//  The store's answer as JSON, with a status
static void
s_forward (const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply, int status)
{
    if (s_ok (answer, err, reply))
        s_json_reply (reply, status, s_msg_json (answer));
}

static void
a_forward (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    (void) self, (void) msg;
    s_forward (answer, err, reply, 200);
}

//  GET /books[?topic=T]: the books on a topic, or every book
static bs_msg_t *
r_books (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    (void) params;
    const char *topic = request->lookup (request->ctx, GW_ARG, "topic");
    bs_msg_t *msg = s_new_request (request, topic? BS_OP_search: BS_OP_list, reply);
    if (topic)
        bs_msg_set_str (msg, BS_FIELD_topic, topic);
    return msg;
}

static void
a_books (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    (void) self;
    if (!s_ok (answer, err, reply))
        return;
    json_t *body = s_msg_json (answer);
    json_t *books = json_object_get (body, "items");
    json_incref (books);
    json_object_del (body, "items");
    json_object_set_new (body, "books", books);
    //  A search's books lack the topic they were found by
    size_t i;
    json_t *book;
    if (bs_msg_has (msg, BS_FIELD_topic))
        json_array_foreach (books, i, book)
            json_object_set (book, "topic", json_object_get (body, "topic"));
    s_json_reply (reply, 200, body);
}

//  POST /books {"item", "topic", "title", "cost", "stock"} -> 201
static bs_msg_t *
r_add_book (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    (void) params;
    static const bs_field_t fields [] = {
        BS_FIELD_item, BS_FIELD_topic, BS_FIELD_title, BS_FIELD_cost, BS_FIELD_stock
    };
    bs_msg_t *msg = s_new_request (request, BS_OP_add_book, reply);
    if (msg && !s_read_body (request, msg, fields, 5, reply))
        bs_msg_destroy (&msg);
    return msg;
}

static void
a_add_book (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    (void) self;
    s_forward (answer, err, reply, 201);
    if (reply->status == 201)
        snprintf (reply->location, sizeof reply->location, "/books/%lld",
                  (long long) bs_msg_int (msg, BS_FIELD_item));
}

//  PUT /books/<item>/price {"cost"} and POST /books/<item>/restock {"count"}
static bs_msg_t *
s_update (const gw_request_t *request, const char *item, bs_op_t op, bs_field_t field, gw_reply_t *reply)
{
    bs_msg_t *msg = s_new_request (request, op, reply);
    if (msg && !(s_read_body (request, msg, &field, 1, reply) && s_set_item (msg, item, reply)))
        bs_msg_destroy (&msg);
    return msg;
}

static bs_msg_t *
r_set_price (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    return s_update (request, params [0], BS_OP_set_price, BS_FIELD_cost, reply);
}

static bs_msg_t *
r_restock (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    return s_update (request, params [0], BS_OP_restock, BS_FIELD_count, reply);
}

//  POST /orders {"item"} -> 201 and the order
static bs_msg_t *
r_buy (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    (void) params;
    static const bs_field_t fields [] = { BS_FIELD_item };
    bs_msg_t *msg = s_new_request (request, BS_OP_buy, reply);
    if (msg && !s_read_body (request, msg, fields, 1, reply))
        bs_msg_destroy (&msg);
    return msg;
}

static void
a_created (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    (void) self, (void) msg;
    s_forward (answer, err, reply, 201);
}

//  GET /orders[?item=N][&after=ORDER_ID][&limit=N]: a page of orders,
//  oldest first; "more" says whether the next page (after the last order
//  listed) has any
static bs_msg_t *
r_orders (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    (void) params;
    bs_msg_t *msg = s_new_request (request, BS_OP_orders, reply);
    const bs_field_t fields [] = { BS_FIELD_item, BS_FIELD_after, BS_FIELD_limit };
    for (size_t i = 0; msg && i < sizeof fields / sizeof fields [0]; i++) {
        const char *text = request->lookup (request->ctx, GW_ARG, bs_field_name (fields [i]));
        char reason [128];
        if (text && !bs_request_set_text (msg, fields [i], text, reason, sizeof reason)) {
            s_error (reply, "bad_field", reason);
            bs_msg_destroy (&msg);
        }
    }
    return msg;
}

static void
a_orders (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    (void) self, (void) msg;
    if (!s_ok (answer, err, reply))
        return;
    json_t *body = s_msg_json (answer);
    //  Request ids are each buyer's own business
    size_t i;
    json_t *order;
    json_array_foreach (json_object_get (body, "orders"), i, order)
        json_object_del (order, "rid");
    s_json_reply (reply, 200, body);
}

//  ---- The cluster, health and metrics: one status request each

static bs_msg_t *
r_status (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    (void) params;
    return s_new_request (request, BS_OP_status, reply);
}

//  GET /cluster: the broker's status (nodes, roles, cache)
static void
a_cluster (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    (void) self, (void) msg;
    s_forward (answer, err, reply, 200);
}

//  GET /healthz: 200 when the broker answers
static void
a_healthz (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    (void) self, (void) msg;
    if (!s_ok (answer, err, reply))
        return;
    json_int_t alive = 0;
    size_t count = bs_msg_count (answer, BS_FIELD_nodes);
    for (size_t i = 0; i < count; i++)
        alive += bs_msg_int (bs_msg_at (answer, BS_FIELD_nodes, i), BS_FIELD_alive) != 0;
    s_json_reply (reply, 200, json_pack ("{s:s,s:I,s:I}", "status", "ok",
                  "nodes", (json_int_t) count, "alive", alive));
}

//  GET /metrics: Prometheus text; the gateway's own metrics even when the
//  broker does not answer
static void
a_metrics (gw_api_t *self, const bs_msg_t *msg, const bs_msg_t *answer, bs_err_t err, gw_reply_t *reply)
{
    (void) msg, (void) err;
    json_t *status = answer && bs_msg_int (answer, BS_FIELD_ok)? s_msg_json (answer): NULL;
    char *text = gw_metrics_render (self->metrics, status);
    json_decref (status);
    free (reply->owned);
    reply->status = 200;
    reply->type = "text/plain; version=0.0.4; charset=utf-8";
    reply->owned = text;
    reply->data = text;
    reply->size = strlen (text);
}

//  ---- The storefront: answered at once

static void
s_asset (const char *name, gw_reply_t *reply)
{
    const gw_asset_t *asset = gw_assets_find (name);
    if (!asset) {
        s_error (reply, "not_found", "no such file");
        return;
    }
    reply->status = 200;
    reply->type = asset->type;
    reply->data = asset->data;
    reply->size = asset->size;
    reply->page = true;
}

static bs_msg_t *
r_page (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    (void) request, (void) params;
    s_asset ("index.html", reply);
    return NULL;
}

static bs_msg_t *
r_static (const gw_request_t *request, char **params, gw_reply_t *reply)
{
    (void) request;
    s_asset (params [0], reply);
    return NULL;
}

//  ---------------------------------------------------------------------
//  Routing

typedef struct {
    const char *method;
    const char *pattern;        //  "*" matches one non-empty segment
    const char *label;          //  for metrics
    bool safe;                  //  no effect: HEAD is answered too
    bool admin;                 //  changes the catalog, or lists everyone's
                                //  orders: takes the admin token
    bool health;                //  a status call: --health-timeout-ms, one attempt
    reader_t *reader;
    answerer_t *answerer;
} route_t;

static const route_t s_routes [] = {
    { "GET",  "/",                "/",                     true,  false, false, r_page,          NULL },
    { "GET",  "/static/*",        "/static/{file}",        true,  false, false, r_static,        NULL },
    { "GET",  "/search/*",        "/search/{topic}",       true,  false, false, r_legacy_search, a_legacy_search },
    { "GET",  "/lookup/*",        "/lookup/{item}",        true,  false, false, r_lookup,        a_legacy_lookup },
    { "GET",  "/buy/*",           "/buy/{item}",           false, false, false, r_legacy_buy,    a_legacy_buy },
    { "GET",  "/books",           "/books",                true,  false, false, r_books,         a_books },
    { "POST", "/books",           "/books",                false, true,  false, r_add_book,      a_add_book },
    { "GET",  "/books/*",         "/books/{item}",         true,  false, false, r_lookup,        a_forward },
    { "PUT",  "/books/*/price",   "/books/{item}/price",   false, true,  false, r_set_price,     a_forward },
    { "POST", "/books/*/restock", "/books/{item}/restock", false, true,  false, r_restock,       a_forward },
    { "GET",  "/orders",          "/orders",               true,  true,  false, r_orders,        a_orders },
    { "POST", "/orders",          "/orders",               false, false, false, r_buy,           a_created },
    { "GET",  "/cluster",         "/cluster",              true,  false, true,  r_status,        a_cluster },
    { "GET",  "/healthz",         "/healthz",              true,  false, true,  r_status,        a_healthz },
    { "GET",  "/metrics",         "/metrics",              true,  false, true,  r_status,        a_metrics },
};
#define ROUTES (sizeof s_routes / sizeof s_routes [0])

//  Splits a path "/a/b" in place into its segments; -1 when it does not
//  start with '/' or has more than MAX_SEGMENTS.  "/" has none.
static int
s_split (char *path, char **segments)
{
    if (*path != '/')
        return -1;
    if (path [1] == 0)
        return 0;
    int count = 0;
    char *s = path + 1;
    while (true) {
        if (count == MAX_SEGMENTS)
            return -1;
        segments [count++] = s;
        char *slash = strchr (s, '/');
        if (!slash)
            return count;
        *slash = 0;
        s = slash + 1;
    }
}

//  True when the segments match the route's pattern; params get the values
//  of its "*" segments
static bool
s_match (const route_t *route, char **segments, int count, char **params)
{
    char pattern [64];
    snprintf (pattern, sizeof pattern, "%s", route->pattern);
    char *parts [MAX_SEGMENTS];
    if (s_split (pattern, parts) != count)
        return false;
    int n = 0;
    for (int i = 0; i < count; i++) {
        if (strcmp (parts [i], "*") == 0 && *segments [i])
            params [n++] = segments [i];
        else
        if (strcmp (parts [i], segments [i]) != 0)
            return false;
    }
    return true;
}

//  An admin route's check: a token must be configured and sent, as
//  "Authorization: Bearer <token>"
static bool
s_authorized (gw_api_t *self, const gw_request_t *request, gw_reply_t *reply)
{
    if (!self->admin_token [0]) {
        s_error (reply, "forbidden", "admin routes are off: start the gateway with --admin-token-file FILE "
                 "(or --admin-token, or BOOKSTORE_ADMIN_TOKEN); bookstore-cluster writes one to "
                 "<data>/admin-token");
        return false;
    }
    const char *header = request->lookup (request->ctx, GW_HEADER, "Authorization");
    size_t n = strlen ("Bearer");
    if (!header || strncasecmp (header, "Bearer", n) != 0 || (header [n] != ' ' && header [n] != '\t')) {
        s_error (reply, "unauthorized", "this route takes an admin token: send 'Authorization: Bearer <token>'");
        reply->challenge = true;
        return false;
    }
    const char *given = header + n;
    while (*given == ' ' || *given == '\t')
        given++;
    char token [TOKEN_MAX];
    size_t length = strcspn (given, " \t");
    if (length >= sizeof token || given [length]) {
        s_error (reply, "forbidden", "the admin token is wrong");
        return false;
    }
    memcpy (token, given, length + 1);
    if (!s_token_equal (self->admin_token, token)) {
        s_error (reply, "forbidden", "the admin token is wrong");
        return false;
    }
    return true;
}

bool
gw_api_parse (gw_api_t *self, const gw_request_t *request, gw_parsed_t *parsed, gw_reply_t *reply)
{
    memset (reply, 0, sizeof *reply);
    parsed->route = -1;
    parsed->msg = NULL;
    reply->route = "unmatched";
    char *path = strdup (request->path);
    if (!path)
        abort ();
    char *segments [MAX_SEGMENTS];
    int count = s_split (path, segments);
    int found = -1;
    bool head = strcmp (request->method, "HEAD") == 0;
    char *params [MAX_SEGMENTS];
    for (size_t i = 0; i < ROUTES && count >= 0; i++) {
        const route_t *route = &s_routes [i];
        if (!s_match (route, segments, count, params))
            continue;
        reply->route = route->label;
        //  The routes that share this path, for a 405's Allow header
        if (*reply->allow)
            strcat (reply->allow, ", ");
        strcat (reply->allow, route->method);
        if (route->safe)
            strcat (reply->allow, ", HEAD");
        if (strcmp (route->method, request->method) == 0 || (head && route->safe)) {
            found = (int) i;
            break;
        }
    }
    bs_msg_t *msg = NULL;
    if (found >= 0) {
        const route_t *route = &s_routes [found];
        reply->allow [0] = 0;
        if (route->admin && !s_authorized (self, request, reply))
            ;
        else
        if (request->too_large)
            s_error (reply, "too_large", "the request body is larger than the gateway accepts");
        else
            msg = route->reader (request, params, reply);
        if (msg) {
            //  Checked with the codec's own limits: a bad value is a 400
            //  now, never a round trip
            char reason [256];
            bs_err_t err = bs_request_check (msg, reason, sizeof reason);
            if (err != BS_OK) {
                s_error (reply, bs_err_name (err), reason);
                bs_msg_destroy (&msg);
            }
        }
        if (!msg && reply->status == 0)     //  a reader that left no answer is a bug
            s_error (reply, "internal", "the gateway could not answer");
    }
    else
    if (*reply->allow)
        s_error (reply, "method_not_allowed", "this path does not take that method");
    else
        s_error (reply, "not_found", "no such route");
    free (path);
    if (!msg)
        return false;
    parsed->route = found;
    parsed->msg = msg;
    return true;
}

bool
gw_api_begin (gw_api_t *self, const gw_request_t *request, gw_parsed_t *parsed, gw_reply_t *reply)
{
    int retry_after = 0;
    parsed->route = -1;
    parsed->msg = NULL;
    if (self->limit && request->client
    &&  !gw_limit_take (self->limit, request->client, zclock_usecs (), &retry_after)) {
        memset (reply, 0, sizeof *reply);
        reply->route = "unmatched";
        s_error (reply, "rate_limited", "too many requests from your address; retry after the "
                 "number of seconds in Retry-After");
        reply->retry_after = retry_after;
        return false;
    }
    return gw_api_parse (self, request, parsed, reply);
}

gw_waiter_t *
gw_api_call (gw_api_t *self, gw_link_t *link, const gw_parsed_t *parsed, gw_link_fn *fn, void *arg)
{
    const route_t *route = &s_routes [parsed->route];
    return gw_link_call (link, bs_op_service (bs_msg_op (parsed->msg)), parsed->msg,
                         route->health? self->health_timeout_ms: 0, route->health? 1: 0, fn, arg);
}

void
gw_api_finish (gw_api_t *self, const gw_parsed_t *parsed, const bs_msg_t *answer, bs_err_t err,
               gw_reply_t *reply)
{
    const route_t *route = &s_routes [parsed->route];
    memset (reply, 0, sizeof *reply);
    reply->route = route->label;
    route->answerer (self, parsed->msg, answer, err, reply);
    if (reply->status == 0)         //  an answerer that left no answer is a bug
        s_error (reply, "internal", "the gateway could not answer");
}

void
gw_api_handle (gw_api_t *self, const gw_request_t *request, gw_reply_t *reply)
{
    gw_parsed_t parsed;
    if (!gw_api_begin (self, request, &parsed, reply))
        return;
    gw_api_finish (self, &parsed, NULL, BS_ERR_unavailable, reply);
    gw_parsed_reset (&parsed);
}
