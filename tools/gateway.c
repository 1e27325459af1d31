/*  bookstore-gateway - the store over HTTP.
 *
 *  Serves the original system's REST API, a JSON API, the cluster's status,
 *  Prometheus metrics, a health check and a storefront page, and talks to
 *  the broker as an ordinary client.  One thread runs one event loop:
 *  libmicrohttpd's connections (its epoll set, run from here) and the
 *  broker link (gw_link, one DEALER socket) are polled together.  A request
 *  that needs the store suspends its connection, its store request goes out
 *  on the link, and the reply, matched by request id, resumes it: no
 *  connection waits on another's store call, and none holds a thread.
 *  Routes live in gw_api.
 *
 *  One address cannot starve the others: it may hold at most
 *  --max-connections-per-address connections (an IPv6 address counts by its
 *  /64), and a connection must finish each request's line and headers
 *  within --header-timeout seconds of opening or of its previous reply.
 */
#include "bs_settings.h"
#include "gw_api.h"
#include "gw_limit.h"
#include "gw_link.h"

#include <czmq.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

static const bs_setting_t s_table [] = {
    { "listen",            "127.0.0.1:8080", "HOST:PORT to serve HTTP on (IPv6 as [::1]:PORT; port 0 picks one)", 0, 0 },
    { "endpoint",          "tcp://127.0.0.1:5555", "the broker's client endpoint, or several brokers', comma-separated", 0, 0 },
    { "timeout-ms",        "2500",  "how long to wait for each attempt of a store request", 1, 600000 },
    { "attempts",          "2",     "how many times to send a store request (same request id)", 1, 100 },
    { "health-timeout-ms", "1000",  "how long /healthz, /metrics and /cluster wait for the broker", 1, 600000 },
    { "max-connections",   "4096",  "HTTP connections at once; more are refused", 1, 100000 },
    { "max-connections-per-address", "256", "HTTP connections one client address (an IPv6 one by its /64) may hold; more are refused", 1, 100000 },
    { "max-body",          "16384", "largest request body in bytes; larger ones get 413", 0, 16 * 1024 * 1024 },
    { "header-timeout",    "10",    "seconds a connection has to send a request's line and headers, from its opening or its previous reply", 1, 3600 },
    { "idle-timeout",      "30",    "seconds an HTTP connection may send nothing while a request is read", 1, 86400 },
    { "admin-token",       "",      "token admin routes require as 'Authorization: Bearer <token>' (16-256 characters)", 0, 0 },
    { "admin-token-file",  "",      "file holding the admin token (its first line); without a token admin routes answer 403", 0, 0 },
    { "rate-limit",        "1000",  "requests per second each client address may make (0: no limit)", 0, 1000000 },
    { "rate-burst",        "",      "requests a client may make at once before the rate applies (default: twice the rate)", 0, 0 },
    { "rate-limit-loopback", NULL,  "rate-limit loopback addresses too (by default the machine's own clients are not limited)", 0, 0 },
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

//  How often connections slow to send their headers are looked for
#define SWEEP_MS 250

//  One TCP connection (libmicrohttpd's socket context), from its opening to
//  its closing
typedef struct _conn_t conn_t;
struct _conn_t {
    conn_t *prev, *next;        //  every open connection, for the sweep
    int fd;
    char key [GW_LIMIT_KEY_MAX];    //  the client's address key
    bool limited;               //  rate-limited (not a loopback address)
    int64_t waiting_since;      //  ms: awaiting a request's headers since
                                //  then; 0 while a request is under way
};

typedef struct {
    gw_api_t *api;
    gw_link_t *link;
    struct MHD_Daemon *daemon;
    size_t max_body;
    bool verbose;
    bool limit_loopback;
    int64_t header_timeout_ms;
    int64_t per_address;
    zhashx_t *addresses;        //  address key -> connections open (size_t *)
    conn_t *conns;              //  every open connection
    int64_t refused_logged;     //  when a refused address was last logged
} gateway_t;

//  One request's state, from its first callback to its completion
typedef struct {
    gateway_t *gateway;
    struct MHD_Connection *connection;
    int64_t started;            //  monotonic, microseconds
    char *body;
    size_t size;
    bool too_large;
    bool answered;              //  its response is queued
    gw_parsed_t parsed;         //  the store request, while one is under way
    gw_waiter_t *waiter;        //  the store call under way, or NULL
    bool ready;                 //  reply holds the answer: resume and send it
    gw_reply_t reply;
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

static conn_t *
s_conn (struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (connection,
                                                                    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info? (conn_t *) info->socket_context: NULL;
}

//  Queues the reply as the connection's response, counts and logs it
static enum MHD_Result
s_respond (gateway_t *self, struct MHD_Connection *connection, exchange_t *exchange,
           const char *method, const char *url, gw_reply_t *reply)
{
    struct MHD_Response *response;
    if (reply->owned) {
        response = MHD_create_response_from_buffer (reply->size, reply->owned, MHD_RESPMEM_MUST_FREE);
        if (response)
            reply->owned = NULL;    //  the response frees it
    }
    else
        response = MHD_create_response_from_buffer (reply->size, (void *) reply->data, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result result = MHD_NO;
    if (response) {
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, reply->type);
        MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
        if (reply->page) {
            //  The page runs only its own script and talks only to us
            MHD_add_response_header (response, "Content-Security-Policy",
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
            MHD_add_response_header (response, "Referrer-Policy", "no-referrer");
            MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        }
        else
            MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (*reply->allow)
            MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, reply->allow);
        if (*reply->location)
            MHD_add_response_header (response, MHD_HTTP_HEADER_LOCATION, reply->location);
        if (reply->challenge)
            MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"bookstore\"");
        if (reply->retry_after > 0) {
            char seconds [16];
            snprintf (seconds, sizeof seconds, "%d", reply->retry_after);
            MHD_add_response_header (response, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
        }
        result = MHD_queue_response (connection, (unsigned) reply->status, response);
        MHD_destroy_response (response);
    }
    double seconds = (double) (zclock_usecs () - exchange->started) / 1e6;
    gw_metrics_record (gw_api_metrics (self->api), reply->route, s_method_label (method),
                       reply->status, seconds);
    if (self->verbose || reply->status >= 500) {
        //  Paths are decoded: keep their control characters out of the log
        char path [201];
        snprintf (path, sizeof path, "%s", url);
        for (char *c = path; *c; c++)
            if ((unsigned char) *c < 0x20 || *c == 0x7f)
                *c = '?';
        zsys_info ("gateway: %s %s -> %d (%.1f ms)", s_method_label (method), path, reply->status,
                   seconds * 1000);
    }
    gw_reply_reset (reply);
    exchange->answered = true;
    return result;
}

//  The store's answer (or the link's error) for a suspended request: the
//  reply is made now, and sent once libmicrohttpd calls the request again
static void
s_on_answer (void *arg, const bs_msg_t *answer, bs_err_t err)
{
    exchange_t *exchange = (exchange_t *) arg;
    exchange->waiter = NULL;
    gw_api_finish (exchange->gateway->api, &exchange->parsed, answer, err, &exchange->reply);
    gw_parsed_reset (&exchange->parsed);
    exchange->ready = true;
    MHD_resume_connection (exchange->connection);
}

//  Answers the request: at once when it needs no store call, else sends
//  the call and suspends the connection until its answer
static enum MHD_Result
s_answer (gateway_t *self, struct MHD_Connection *connection, exchange_t *exchange,
          const char *method, const char *url)
{
    conn_t *conn = s_conn (connection);
    gw_request_t request = {
        .method = method, .path = url, .lookup = s_lookup, .ctx = connection,
        .body = exchange->body, .body_size = exchange->size, .too_large = exchange->too_large,
        .client = conn && conn->limited? conn->key: NULL
    };
    gw_reply_t reply;
    if (!gw_api_begin (self->api, &request, &exchange->parsed, &reply))
        return s_respond (self, connection, exchange, method, url, &reply);
    //  Suspended before the call goes out: its answer can only come later
    MHD_suspend_connection (connection);
    exchange->waiter = gw_api_call (self->api, &exchange->parsed, s_on_answer, exchange);
    return MHD_YES;
}

//  libmicrohttpd calls this first with the headers, then once per piece of
//  body, then once more with no data: the request is complete.  A request
//  suspended for its store call is called again once resumed.
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
            abort ();
        exchange->gateway = self;
        exchange->connection = connection;
        exchange->started = zclock_usecs ();
        exchange->parsed.route = -1;
        *con_cls = exchange;
        //  The headers are in: the header deadline is met
        conn_t *conn = s_conn (connection);
        if (conn)
            conn->waiting_since = 0;
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
    if (exchange->ready) {
        exchange->ready = false;
        return s_respond (self, connection, exchange, method, url, &exchange->reply);
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
            abort ();
        memcpy (body + exchange->size, upload_data, size);
        exchange->body = body;
        exchange->size += size;
        return MHD_YES;
    }
    if (exchange->answered || exchange->waiter)
        return MHD_YES;
    return s_answer (self, connection, exchange, method, url);
}

static void
s_on_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                enum MHD_RequestTerminationCode code)
{
    (void) code;
    gateway_t *self = (gateway_t *) cls;
    exchange_t *exchange = *con_cls;
    if (exchange) {
        gw_link_cancel (self->link, &exchange->waiter);
        gw_parsed_reset (&exchange->parsed);
        gw_reply_reset (&exchange->reply);
        free (exchange->body);
        free (exchange);
        *con_cls = NULL;
    }
    //  A kept-alive connection now awaits its next request's headers
    conn_t *conn = s_conn (connection);
    if (conn)
        conn->waiting_since = zclock_mono ();
}

static void
s_free_count (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  Refuses a connection from an address that holds its share already
static enum MHD_Result
s_on_accept (void *cls, const struct sockaddr *address, socklen_t size)
{
    (void) size;
    gateway_t *self = (gateway_t *) cls;
    char key [GW_LIMIT_KEY_MAX];
    gw_limit_key (address, key);
    size_t *open = zhashx_lookup (self->addresses, key);
    if (!open || (int64_t) *open < self->per_address)
        return MHD_YES;
    int64_t now = zclock_mono ();
    if (now - self->refused_logged >= 10000) {
        self->refused_logged = now;
        zsys_warning ("gateway: %s holds %zu connections already (--max-connections-per-address): "
                      "refusing more", key, *open);
    }
    return MHD_NO;
}

static void
s_on_connection (void *cls, struct MHD_Connection *connection, void **socket_context,
                 enum MHD_ConnectionNotificationCode code)
{
    gateway_t *self = (gateway_t *) cls;
    gw_metrics_connection (gw_api_metrics (self->api), code == MHD_CONNECTION_NOTIFY_STARTED? 1: -1);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_t *conn = calloc (1, sizeof (conn_t));
        if (!conn)
            abort ();
        const union MHD_ConnectionInfo *info = MHD_get_connection_info (connection,
                                                                        MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (info) {
            gw_limit_key (info->client_addr, conn->key);
            conn->limited = self->limit_loopback || !gw_limit_loopback (info->client_addr);
        }
        info = MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn->fd = info? info->connect_fd: -1;
        conn->waiting_since = zclock_mono ();
        size_t *open = zhashx_lookup (self->addresses, conn->key);
        if (!open) {
            open = calloc (1, sizeof (size_t));
            if (!open)
                abort ();
            zhashx_insert (self->addresses, conn->key, open);
        }
        (*open)++;
        conn->next = self->conns;
        if (self->conns)
            self->conns->prev = conn;
        self->conns = conn;
        *socket_context = conn;
    }
    else {
        conn_t *conn = *socket_context;
        if (!conn)
            return;
        size_t *open = zhashx_lookup (self->addresses, conn->key);
        if (open && --*open == 0)
            zhashx_delete (self->addresses, conn->key);
        if (conn->prev)
            conn->prev->next = conn->next;
        else
            self->conns = conn->next;
        if (conn->next)
            conn->next->prev = conn->prev;
        free (conn);
        *socket_context = NULL;
    }
}

//  Ends connections that did not send a request's headers in time (one
//  byte at a time, or nothing): shutting the socket down makes
//  libmicrohttpd see it closed and clean up as for any other
static void
s_sweep (gateway_t *self, int64_t now)
{
    for (conn_t *conn = self->conns; conn; conn = conn->next)
        if (conn->waiting_since && now - conn->waiting_since > self->header_timeout_ms && conn->fd >= 0) {
            shutdown (conn->fd, SHUT_RDWR);
            conn->waiting_since = 0;
        }
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

//  One pass of the loop: waits up to wait_ms for the connections or the
//  link, then serves what is ready
static void
s_run_once (gateway_t *self, int mhd_fd, long wait_ms)
{
    MHD_UNSIGNED_LONG_LONG mhd_wait;
    if (MHD_get_timeout (self->daemon, &mhd_wait) == MHD_YES && (long long) mhd_wait < wait_ms)
        wait_ms = (long) mhd_wait;
    zmq_pollitem_t items [3] = {
        { NULL, mhd_fd, ZMQ_POLLIN, 0 },
        { gw_link_socket (self->link), 0, ZMQ_POLLIN, 0 },
        { gw_link_monitor (self->link), 0, ZMQ_POLLIN, 0 }
    };
    int count = items [2].socket? 3: 2;
    if (zmq_poll (items, count, wait_ms) > 0) {
        if (items [1].revents & ZMQ_POLLIN)
            gw_link_on_input (self->link);
        if (count == 3 && (items [2].revents & ZMQ_POLLIN))
            gw_link_tick (self->link);      //  reads the events: a broker gone
    }
    //  Resumed connections and new input alike
    MHD_run (self->daemon);
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
    int64_t timeout, attempts, health, connections, per_address, max_body, header, idle;
    struct sockaddr_storage address;
    socklen_t address_size = 0;
    if (!bs_settings_int (settings, "timeout-ms", &timeout) || !bs_settings_int (settings, "attempts", &attempts)
    ||  !bs_settings_int (settings, "health-timeout-ms", &health)
    ||  !bs_settings_int (settings, "max-connections", &connections)
    ||  !bs_settings_int (settings, "max-connections-per-address", &per_address)
    ||  !bs_settings_int (settings, "max-body", &max_body) || !bs_settings_int (settings, "header-timeout", &header)
    ||  !bs_settings_int (settings, "idle-timeout", &idle)) {
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
    gw_link_t *link = gw_link_new (endpoint, keys, (int) timeout, (int) attempts);
    if (!link) {
        fprintf (stderr, "bookstore-gateway: '%s' is not a valid ZeroMQ endpoint or comma-separated list of them\n", endpoint);
        bs_keys_destroy (&keys);
        bs_settings_destroy (&settings);
        return 2;
    }
    zsys_set_logident ("gateway");
    if (!*token)
        zsys_warning ("gateway: no admin token: prices, restocks, new books and the list of orders "
                      "answer 403 (see --admin-token-file)");
    //  Each connection is a descriptor: make room for them all
    struct rlimit files;
    rlim_t wanted = (rlim_t) connections + 256;
    if (getrlimit (RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < wanted) {
        files.rlim_cur = files.rlim_max < wanted? files.rlim_max: wanted;
        setrlimit (RLIMIT_NOFILE, &files);
        if (files.rlim_cur < wanted) {
            connections = files.rlim_cur > 512? (int64_t) files.rlim_cur - 256: 256;
            zsys_warning ("gateway: this process may open %llu files: serving at most %lld connections",
                          (unsigned long long) files.rlim_cur, (long long) connections);
        }
    }
    gw_api_options_t options = {
        .health_timeout_ms = (int) health, .admin_token = token,
        .rate_limit = (double) rate, .rate_burst = (double) burst
    };
    gateway_t gateway = {
        .link = link,
        .max_body = (size_t) max_body,
        .verbose = bs_settings_flag (settings, "verbose"),
        .limit_loopback = bs_settings_flag (settings, "rate-limit-loopback"),
        .header_timeout_ms = header * 1000,
        .per_address = per_address,
        .addresses = zhashx_new ()
    };
    gateway.api = gw_api_new (link, &options);
    zhashx_set_destructor (gateway.addresses, s_free_count);
    struct sigaction action = { .sa_handler = s_on_signal };
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    signal (SIGPIPE, SIG_IGN);

    //  No thread of libmicrohttpd's own: its epoll set is polled here, with
    //  the broker link
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    if (address.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    gateway.daemon = MHD_start_daemon (flags, 0, s_on_accept, &gateway, s_on_request, &gateway,
        MHD_OPTION_EXTERNAL_LOGGER, s_on_log, &gateway,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) idle,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned) 1024,
        MHD_OPTION_NOTIFY_COMPLETED, s_on_completed, &gateway,
        MHD_OPTION_NOTIFY_CONNECTION, s_on_connection, &gateway,
        MHD_OPTION_END);
    const union MHD_DaemonInfo *epoll = gateway.daemon
        ? MHD_get_daemon_info (gateway.daemon, MHD_DAEMON_INFO_EPOLL_FD): NULL;
    int rc = 0;
    if (!gateway.daemon || !epoll) {
        zsys_error ("gateway: cannot listen on %s (in use, or not an address of this machine?)", listen);
        rc = 1;
    }
    else {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info (gateway.daemon, MHD_DAEMON_INFO_BIND_PORT);
        zsys_info ("gateway: serving http on %s (port %u), broker(s) at %s", listen,
                   info? (unsigned) info->port: 0, endpoint);
        int64_t next_tick = 0, next_sweep = 0;
        bool link_idle = true;
        while (!s_stop) {
            int64_t now = zclock_mono ();
            //  The link's timers; at once when calls started while it was idle
            if (now >= next_tick || (link_idle && gw_link_pending (link))) {
                int wait = gw_link_tick (link);
                link_idle = wait < 0;
                next_tick = now + (wait < 0? SWEEP_MS: wait);
            }
            if (now >= next_sweep) {
                s_sweep (&gateway, now);
                next_sweep = now + SWEEP_MS;
            }
            int64_t due = next_tick < next_sweep? next_tick: next_sweep;
            s_run_once (&gateway, epoll->epoll_fd, due > now? (long) (due - now): 0);
        }
        zsys_info ("gateway: stopping");
        //  Requests still waiting for the store are answered 503 and sent
        //  for a moment; libmicrohttpd then closes every connection
        gw_link_fail_all (link, BS_ERR_unavailable);
        int64_t until = zclock_mono () + 200;
        while (zclock_mono () < until)
            s_run_once (&gateway, epoll->epoll_fd, 10);
        MHD_stop_daemon (gateway.daemon);
    }
    gw_api_destroy (&gateway.api);
    zhashx_destroy (&gateway.addresses);
    gw_link_destroy (&link);
    bs_keys_destroy (&keys);
    bs_settings_destroy (&settings);
    return rc;
}
