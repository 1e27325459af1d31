/*  bookstore-gateway - the store over HTTP.
 *
 *  Serves the original system's REST API, a JSON API, the cluster's status,
 *  Prometheus metrics, a health check and a storefront page, and talks to
 *  the broker as an ordinary client.  libmicrohttpd runs one thread per
 *  connection, up to --max-connections; each request borrows a broker client
 *  from a small pool (gw_pool) for its store calls.  Routes live in gw_api.
 */
#include "bs_settings.h"
#include "gw_api.h"
#include "gw_limit.h"
#include "gw_pool.h"

#include <czmq.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <string.h>

static const bs_setting_t s_table [] = {
    { "listen",            "127.0.0.1:8080", "HOST:PORT to serve HTTP on (IPv6 as [::1]:PORT; port 0 picks one)", 0, 0 },
    { "endpoint",          "tcp://127.0.0.1:5555", "the broker's client endpoint, or a Binary Star pair's, comma-separated (primary first)", 0, 0 },
    { "timeout-ms",        "2500",  "how long to wait for each attempt of a store request", 1, 600000 },
    { "attempts",          "2",     "how many times to send a store request (same request id)", 1, 100 },
    { "health-timeout-ms", "1000",  "how long /healthz, /metrics and /cluster wait for the broker", 1, 600000 },
    { "clients",           "8",     "broker clients shared by the connections (store requests at once)", 1, 1024 },
    { "max-connections",   "64",    "HTTP connections at once; more are refused", 1, 10000 },
    { "max-body",          "16384", "largest request body in bytes; larger ones get 413", 0, 16 * 1024 * 1024 },
    { "idle-timeout",      "30",    "seconds an idle HTTP connection is kept", 1, 86400 },
    { "admin-token",       "",      "token admin routes require as 'Authorization: Bearer <token>' (16-256 characters)", 0, 0 },
    { "admin-token-file",  "",      "file holding the admin token (its first line); without a token admin routes answer 403", 0, 0 },
    { "rate-limit",        "100",   "requests per second each client address may make (0: no limit)", 0, 1000000 },
    { "rate-burst",        "",      "requests a client may make at once before the rate applies (default: twice the rate)", 0, 0 },
    { "verbose",           NULL,    "log every request", 0, 0 },
    { "keys",              "",      "keys directory of a CURVE cluster", 0, 0 },
    { "cert",              "",      "the gateway's certificate (default <keys>/admins/gateway)", 0, 0 },
    { NULL, NULL, NULL, 0, 0 }
};

static const char *s_usage_text =
    "usage: bookstore-gateway [--listen HOST:PORT] [--endpoint EP[,EP2]] [options]\n"
    "Serves the bookstore over HTTP; see README.md, \"HTTP gateway\", for the routes.\n";

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

typedef struct {
    gw_api_t *api;
    size_t max_body;
    bool verbose;
} gateway_t;

//  One request's state, from its first callback to its completion
typedef struct {
    int64_t started;            //  monotonic, microseconds
    char *body;
    size_t size;
    bool too_large;
    bool answered;
} exchange_t;

//  Metrics keep label strings for good: methods become static names
static const char *
s_method_label (const char *method)
{
    static const char *known [] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS" };
    for (size_t i = 0; i < sizeof known / sizeof known [0]; i++)
        if (strcmp (known [i], method) == 0)
            return known [i];
    return "other";
}

static const char *
s_lookup (void *ctx, gw_kind_t kind, const char *name)
{
    return MHD_lookup_connection_value ((struct MHD_Connection *) ctx,
                                        kind == GW_ARG? MHD_GET_ARGUMENT_KIND: MHD_HEADER_KIND, name);
}

//  Answers the request through gw_api and queues its reply
static enum MHD_Result
s_answer (gateway_t *self, struct MHD_Connection *connection, exchange_t *exchange,
          const char *method, const char *url)
{
    //  Clients are rate-limited by address (an IPv6 one by its /64)
    char client [GW_LIMIT_KEY_MAX] = "";
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (connection,
                                                                    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info)
        gw_limit_key (info->client_addr, client);
    gw_request_t request = {
        .method = method, .path = url, .lookup = s_lookup, .ctx = connection,
        .body = exchange->body, .body_size = exchange->size, .too_large = exchange->too_large,
        .client = client
    };
    gw_reply_t reply;
    gw_api_handle (self->api, &request, &reply);
    struct MHD_Response *response;
    if (reply.owned) {
        response = MHD_create_response_from_buffer (reply.size, reply.owned, MHD_RESPMEM_MUST_FREE);
        if (response)
            reply.owned = NULL;     //  the response frees it
    }
    else
        response = MHD_create_response_from_buffer (reply.size, (void *) reply.data, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result result = MHD_NO;
    if (response) {
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.type);
        MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
        if (reply.page) {
            //  The page runs only its own script and talks only to us
            MHD_add_response_header (response, "Content-Security-Policy",
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
            MHD_add_response_header (response, "Referrer-Policy", "no-referrer");
            MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        }
        else
            MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (*reply.allow)
            MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, reply.allow);
        if (*reply.location)
            MHD_add_response_header (response, MHD_HTTP_HEADER_LOCATION, reply.location);
        if (reply.challenge)
            MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"bookstore\"");
        if (reply.retry_after > 0) {
            char seconds [16];
            snprintf (seconds, sizeof seconds, "%d", reply.retry_after);
            MHD_add_response_header (response, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
        }
        result = MHD_queue_response (connection, (unsigned) reply.status, response);
        MHD_destroy_response (response);
    }
    double seconds = (double) (zclock_usecs () - exchange->started) / 1e6;
    gw_metrics_record (gw_api_metrics (self->api), reply.route, s_method_label (method),
                       reply.status, seconds);
    if (self->verbose || reply.status >= 500) {
        //  Paths are decoded: keep their control characters out of the log
        char path [201];
        snprintf (path, sizeof path, "%s", url);
        for (char *c = path; *c; c++)
            if ((unsigned char) *c < 0x20 || *c == 0x7f)
                *c = '?';
        zsys_info ("gateway: %s %s -> %d (%.1f ms)", s_method_label (method), path, reply.status,
                   seconds * 1000);
    }
    gw_reply_reset (&reply);
    exchange->answered = true;
    return result;
}

//  libmicrohttpd calls this first with the headers, then once per piece of
//  body, then once more with no data: the request is complete
static enum MHD_Result
s_on_request (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    gateway_t *self = (gateway_t *) cls;
    exchange_t *exchange = *con_cls;
    if (!exchange) {
        exchange = calloc (1, sizeof (exchange_t));
        if (!exchange)
            return MHD_NO;
        exchange->started = zclock_usecs ();
        *con_cls = exchange;
        //  A body announced too large is refused before it is read
        const char *length = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                          MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long announced;
        if (length && sscanf (length, "%llu", &announced) == 1 && announced > self->max_body) {
            exchange->too_large = true;
            return s_answer (self, connection, exchange, method, url);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        if (exchange->answered || exchange->too_large)
            return MHD_YES;     //  dropped: the answer is or will be 413
        if (exchange->size + size > self->max_body) {
            //  Chunked bodies announce no length: they are cut off here
            exchange->too_large = true;
            free (exchange->body);
            exchange->body = NULL;
            exchange->size = 0;
            return MHD_YES;
        }
        char *body = realloc (exchange->body, exchange->size + size);
        if (!body)
            return MHD_NO;
        memcpy (body + exchange->size, upload_data, size);
        exchange->body = body;
        exchange->size += size;
        return MHD_YES;
    }
    if (exchange->answered)
        return MHD_YES;
    return s_answer (self, connection, exchange, method, url);
}

static void
s_on_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                enum MHD_RequestTerminationCode code)
{
    (void) cls, (void) connection, (void) code;
    exchange_t *exchange = *con_cls;
    if (exchange) {
        free (exchange->body);
        free (exchange);
        *con_cls = NULL;
    }
}

static void
s_on_connection (void *cls, struct MHD_Connection *connection, void **socket_context,
                 enum MHD_ConnectionNotificationCode code)
{
    (void) connection, (void) socket_context;
    gateway_t *self = (gateway_t *) cls;
    gw_metrics_connection (gw_api_metrics (self->api), code == MHD_CONNECTION_NOTIFY_STARTED? 1: -1);
}

static void
s_on_log (void *cls, const char *format, va_list args)
{
    (void) cls;
    char line [512];
    vsnprintf (line, sizeof line, format, args);
    size_t n = strlen (line);
    while (n && line [n - 1] == '\n')
        line [--n] = 0;
    zsys_warning ("gateway: http: %s", line);
}

//  Parses HOST:PORT ([V6]:PORT, or *:PORT for every address) into address;
//  false when malformed
static bool
s_parse_listen (const char *text, struct sockaddr_storage *address, socklen_t *size_p)
{
    char host [128];
    const char *colon = strrchr (text, ':');
    if (!colon || (size_t) (colon - text) >= sizeof host)
        return false;
    memcpy (host, text, (size_t) (colon - text));
    host [colon - text] = 0;
    int64_t port;
    if (!bs_parse_int (colon + 1, 0, 65535, &port))
        return false;
    char *name = host;
    size_t n = strlen (name);
    if (n >= 2 && name [0] == '[' && name [n - 1] == ']') {
        name [n - 1] = 0;
        name++;
    }
    if (strcmp (name, "*") == 0 || *name == 0)
        name = "0.0.0.0";
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
    struct addrinfo *found = NULL;
    char service [8];
    snprintf (service, sizeof service, "%d", (int) port);
    if (getaddrinfo (name, service, &hints, &found) != 0 || !found)
        return false;
    memcpy (address, found->ai_addr, found->ai_addrlen);
    *size_p = found->ai_addrlen;
    freeaddrinfo (found);
    return true;
}

int
main (int argc, char **argv)
{
    //  Our own signal handling: SIGINT and SIGTERM stop the gateway
    zsys_handler_set (NULL);
    bs_settings_t *settings = bs_settings_new ("gateway", s_table, argc, argv);
    if (!settings) {
        fputs (s_usage_text, stderr);
        return 2;
    }
    if (bs_settings_help_shown (settings)) {
        fputs (s_usage_text, stderr);
        bs_settings_destroy (&settings);
        return 0;
    }
    int64_t timeout, attempts, health, clients, connections, max_body, idle;
    struct sockaddr_storage address;
    socklen_t address_size = 0;
    if (!bs_settings_int (settings, "timeout-ms", &timeout) || !bs_settings_int (settings, "attempts", &attempts)
    ||  !bs_settings_int (settings, "health-timeout-ms", &health) || !bs_settings_int (settings, "clients", &clients)
    ||  !bs_settings_int (settings, "max-connections", &connections)
    ||  !bs_settings_int (settings, "max-body", &max_body) || !bs_settings_int (settings, "idle-timeout", &idle)) {
        bs_settings_destroy (&settings);
        return 2;
    }
    if (bs_settings_argc (settings) != 0) {
        fprintf (stderr, "bookstore-gateway: unexpected argument '%s' (see --help)\n", bs_settings_arg (settings, 0));
        bs_settings_destroy (&settings);
        return 2;
    }
    const char *listen = bs_settings_get (settings, "listen");
    if (!s_parse_listen (listen, &address, &address_size)) {
        fprintf (stderr, "bookstore-gateway: --listen must be HOST:PORT with a numeric host, not '%s'\n", listen);
        bs_settings_destroy (&settings);
        return 2;
    }
    //  The rate limit: requests per second and burst per client address
    int64_t rate = 0, burst = 0;
    const char *burst_text = bs_settings_get (settings, "rate-burst");
    if (!bs_settings_int (settings, "rate-limit", &rate)) {
        bs_settings_destroy (&settings);
        return 2;
    }
    if (*burst_text && !bs_parse_int (burst_text, 1, 10000000, &burst)) {
        fprintf (stderr, "bookstore-gateway: --rate-burst must be 1..10000000, not '%.40s'\n", burst_text);
        bs_settings_destroy (&settings);
        return 2;
    }
    //  The admin token, given or read from its file
    char token [260], reason [300];
    if (!gw_api_read_token (bs_settings_get (settings, "admin-token"), bs_settings_get (settings, "admin-token-file"),
                            token, sizeof token, reason, sizeof reason)) {
        fprintf (stderr, "bookstore-gateway: %s\n", reason);
        bs_settings_destroy (&settings);
        return 2;
    }
    const char *endpoint = bs_settings_get (settings, "endpoint");
    bs_keys_t *keys = NULL;
    if (!bs_keys_open (settings, "admins/gateway", true, &keys)) {
        bs_settings_destroy (&settings);
        return 2;
    }
    gw_pool_t *pool = gw_pool_new (endpoint, keys, (int) clients, (int) timeout, (int) attempts);
    if (!pool) {
        fprintf (stderr, "bookstore-gateway: '%s' is not a valid ZeroMQ endpoint or comma-separated list of them\n", endpoint);
        bs_keys_destroy (&keys);
        bs_settings_destroy (&settings);
        return 2;
    }
    zsys_set_logident ("gateway");
    if (!*token)
        zsys_warning ("gateway: no admin token: prices, restocks and new books answer 403 "
                      "(see --admin-token-file)");
    gw_api_options_t options = {
        .health_timeout_ms = (int) health, .admin_token = token,
        .rate_limit = (double) rate, .rate_burst = (double) burst
    };
    gateway_t gateway = {
        .api = gw_api_new (pool, &options),
        .max_body = (size_t) max_body,
        .verbose = bs_settings_flag (settings, "verbose")
    };
    struct sigaction action = { .sa_handler = s_on_signal };
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    signal (SIGPIPE, SIG_IGN);

    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL
                   | MHD_USE_ERROR_LOG;
    if (address.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *daemon = MHD_start_daemon (flags, 0, NULL, NULL, s_on_request, &gateway,
        MHD_OPTION_EXTERNAL_LOGGER, s_on_log, &gateway,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) idle,
        MHD_OPTION_NOTIFY_COMPLETED, s_on_completed, &gateway,
        MHD_OPTION_NOTIFY_CONNECTION, s_on_connection, &gateway,
        MHD_OPTION_END);
    int rc = 0;
    if (!daemon) {
        zsys_error ("gateway: cannot listen on %s (in use, or not an address of this machine?)", listen);
        rc = 1;
    }
    else {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
        zsys_info ("gateway: serving http on %s (port %u), broker(s) at %s", listen,
                   info? (unsigned) info->port: 0, endpoint);
        while (!s_stop)
            usleep (50000);
        zsys_info ("gateway: stopping");
        //  Waits for the connection threads, each within its store timeouts
        MHD_stop_daemon (daemon);
    }
    gw_api_destroy (&gateway.api);
    gw_pool_destroy (&pool);
    bs_keys_destroy (&keys);
    bs_settings_destroy (&settings);
    return rc;
}
