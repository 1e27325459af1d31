/*  fuzz_gateway - the HTTP gateway's request parsing on arbitrary requests.
 *
 *  The input is an HTTP request as the gateway's routes see it once
 *  libmicrohttpd has read it (a decoded path, arguments, headers, a body):
 *
 *      METHOD SP PATH[?NAME=VALUE&...] LF
 *      NAME: VALUE LF        (headers, any number)
 *      LF
 *      BODY                  (the rest)
 *
 *  A first byte '!' parses with a gateway that has no admin token; any
 *  other input with one whose token is FUZZ_TOKEN.  gw_api_parse runs on
 *  it (no network, no store), and gw_api_handle with no broker behind it
 *  (every store call fails as unavailable), once with a loose rate limit
 *  and once with a tight one (2 a second) for the client an X-Client
 *  header names, over at most 4 addresses.  Invariants:
 *
 *  - a request that parses builds a store request the codec accepts, of
 *    the op its route sends;
 *  - a change to the catalog (set_price, restock, add_book) parses only
 *    with the gateway's token, sent as a Bearer token;
 *  - every other request is answered at once with a status from 200 to
 *    599 and, unless it is a storefront file, a JSON error object with a
 *    code and a sentence, whose status is the code's;
 *  - answering without a broker never crashes and always answers; a 429,
 *    and only a 429, says when to retry.
 */
#include "bs_request.h"
#include "fuzzing.h"
#include "gw_api.h"

#include <czmq.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>

#define FUZZ_TOKEN "fuzz-admin-token-0123456789abcdef"
#define MAX_PAIRS 32

typedef struct {
    char *name, *value;
} pair_t;

typedef struct {
    pair_t args [MAX_PAIRS], headers [MAX_PAIRS];
    int arg_count, header_count;
} fields_t;

static const char *
s_lookup (void *ctx, gw_kind_t kind, const char *name)
{
    fields_t *fields = ctx;
    pair_t *pairs = kind == GW_ARG? fields->args: fields->headers;
    int count = kind == GW_ARG? fields->arg_count: fields->header_count;
    for (int i = 0; i < count; i++)
        //  Headers are matched without case, arguments exactly, as by libmicrohttpd
        if (kind == GW_ARG? strcmp (pairs [i].name, name) == 0: strcasecmp (pairs [i].name, name) == 0)
            return pairs [i].value;
    return NULL;
}

static gw_api_t *s_with_token, *s_without_token, *s_limited, *s_tight;

static void
s_cleanup (void)
{
    gw_api_destroy (&s_with_token);
    gw_api_destroy (&s_without_token);
    gw_api_destroy (&s_limited);
    gw_api_destroy (&s_tight);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc, (void) argv;
    zsys_handler_set (NULL);
    zsys_init ();
    if (!getenv ("FUZZ_VERBOSE"))
        zsys_set_logstream (fopen ("/dev/null", "w"));
    gw_api_options_t options = { .health_timeout_ms = 100, .admin_token = FUZZ_TOKEN };
    s_with_token = gw_api_new (&options);
    options.admin_token = NULL;
    s_without_token = gw_api_new (&options);
    options.admin_token = FUZZ_TOKEN;
    options.rate_limit = 1000000;
    options.rate_clients = 4;
    s_limited = gw_api_new (&options);
    //  A tight limit over few addresses: 429s, and addresses forgotten
    options.rate_limit = 2;
    options.rate_burst = 3;
    s_tight = gw_api_new (&options);
    atexit (s_cleanup);
    return 0;
}

//  Checks an answer made without the store
static void
s_check_reply (const gw_reply_t *reply)
{
    FUZZ_CHECK (reply->status >= 200 && reply->status <= 599);
    FUZZ_CHECK (reply->route && reply->type && reply->data);
    if (reply->page) {
        FUZZ_CHECK (reply->status == 200);
        return;
    }
    json_error_t error;
    json_t *body = json_loadb (reply->data, reply->size, JSON_DECODE_ANY, &error);
    FUZZ_CHECK (body);
    if (reply->status >= 400) {
        const char *code = json_string_value (json_object_get (body, "error"));
        const char *message = json_string_value (json_object_get (body, "message"));
        FUZZ_CHECK (code && message && *message);
        FUZZ_CHECK (gw_api_status (code) == reply->status);
        FUZZ_CHECK ((reply->status == 401) == reply->challenge);
    }
    json_decref (body);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  A NUL-terminated copy to cut into strings
    char *text = malloc (size + 1);
    FUZZ_CHECK (text);
    memcpy (text, data, size);
    text [size] = 0;
    gw_api_t *api = s_with_token;
    char *p = text;
    if (*p == '!') {
        api = s_without_token;
        p++;
    }
    //  The request line
    char *line_end = strchr (p, '\n');
    if (line_end)
        *line_end = 0;
    char *method = p, *space = strchr (p, ' ');
    char *path = space? space + 1: (char *) "/";
    if (space)
        *space = 0;
    fields_t fields = { .arg_count = 0 };
    char *query = strchr (path, '?');
    if (query) {
        *query++ = 0;
        for (char *arg = query; arg && fields.arg_count < MAX_PAIRS; ) {
            char *next = strchr (arg, '&');
            if (next)
                *next++ = 0;
            char *equals = strchr (arg, '=');
            if (equals)
                *equals++ = 0;
            fields.args [fields.arg_count++] = (pair_t) { arg, equals? equals: (char *) "" };
            arg = next;
        }
    }
    //  Headers up to an empty line, then the body
    const char *body = "";
    size_t body_size = 0;
    char *line = line_end? line_end + 1: NULL;
    while (line) {
        char *end = strchr (line, '\n');
        if (end)
            *end = 0;
        if (*line == 0) {
            //  The body may hold NULs: it runs to the end of the input
            if (end) {
                body = end + 1;
                body_size = (size_t) (text + size - body);
            }
            break;
        }
        char *colon = strchr (line, ':');
        if (colon && fields.header_count < MAX_PAIRS) {
            *colon = 0;
            char *value = colon + 1;
            while (*value == ' ')
                value++;
            fields.headers [fields.header_count++] = (pair_t) { line, value };
        }
        line = end? end + 1: NULL;
    }

    gw_request_t request = {
        .method = method, .path = path, .lookup = s_lookup, .ctx = &fields,
        .body = body, .body_size = body_size, .too_large = false, .client = "192.0.2.1"
    };
    //  The rate limiter's client key, when the request names one
    const char *client = s_lookup (&fields, GW_HEADER, "X-Client");
    if (client)
        request.client = client;
    gw_parsed_t parsed;
    gw_reply_t reply;
    bool store = gw_api_parse (api, &request, &parsed, &reply);
    if (store) {
        FUZZ_CHECK (parsed.msg && parsed.route >= 0);
        FUZZ_CHECK (reply.status == 0 && reply.owned == NULL);
        char reason [256];
        FUZZ_CHECK (bs_request_check (parsed.msg, reason, sizeof reason) == BS_OK);
        bs_op_t op = bs_msg_op (parsed.msg);
        if (op == BS_OP_set_price || op == BS_OP_restock || op == BS_OP_add_book) {
            const char *authorization = s_lookup (&fields, GW_HEADER, "Authorization");
            FUZZ_CHECK (api == s_with_token && authorization && strstr (authorization, FUZZ_TOKEN));
            FUZZ_CHECK (strncasecmp (authorization, "bearer", 6) == 0);
        }
        FUZZ_CHECK (op != BS_OP_decrement);
        gw_parsed_reset (&parsed);
        FUZZ_CHECK (parsed.msg == NULL);
    }
    else {
        FUZZ_CHECK (parsed.msg == NULL);
        s_check_reply (&reply);
    }
    gw_reply_reset (&reply);

    //  The whole answer, with no broker: store calls fail as unavailable
    gw_api_handle (s_limited, &request, &reply);
    FUZZ_CHECK (reply.status >= 200 && reply.status <= 599 && reply.route);
    gw_reply_reset (&reply);
    gw_api_handle (s_tight, &request, &reply);
    FUZZ_CHECK (reply.status >= 200 && reply.status <= 599 && reply.route);
    FUZZ_CHECK ((reply.status == 429) == (reply.retry_after > 0));
    FUZZ_CHECK (reply.retry_after <= 1);        //  2 a second: the next token within a second
    gw_reply_reset (&reply);
    free (text);
    return 0;
}
