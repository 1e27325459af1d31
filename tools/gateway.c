/*  bookstore-gateway - the store over HTTP.
 *
 *  Serves the original system's REST API, a JSON API, the cluster's status,
 *  Prometheus metrics, a health check and a storefront page, and talks to
 *  the broker as an ordinary client.  Each of --loops threads runs one
 *  event loop: a libmicrohttpd daemon of its own (its epoll set, run from
 *  the loop) and a broker link of its own (gw_link, one DEALER socket) are
 *  polled together.  The daemons listen on one address and port
 *  (SO_REUSEPORT), so the kernel spreads connections over the loops.  A
 *  request that needs the store suspends its connection, its store request
 *  goes out on its loop's link, and the reply, matched by request id,
 *  resumes it: no connection waits on another's store call, and none holds
 *  a thread.  Routes, metrics and the rate limiter (gw_api) are shared by
 *  the loops, and so are the counts of connections per address.
 *
 *  One address cannot starve the others: it may hold at most
 *  --max-connections-per-address connections (an IPv6 address counts by its
 *  /64), and a connection must finish each request's line and headers
 *  within --header-timeout seconds of opening or of its previous reply.
 *  Both hold across the loops.
 */
#include "bs_settings.h"
#include "gw_api.h"
#include "gw_limit.h"
#include "gw_link.h"

#include <czmq.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

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
    { "loops",             "4",     "event loops (threads) serving HTTP, each with its own connections and broker link", 1, 64 },
    { "verbose",           NULL,    "log every request", 0, 0 },
    { "keys",              "",      "keys directory of a CURVE cluster", 0, 0 },
    { "cert",              "",      "the gateway's certificate (default <keys>/admins/gateway)", 0, 0 },
    { NULL, NULL, NULL, 0, 0 }
};

static const char *s_usage_text =
    "usage: bookstore-gateway [--listen HOST:PORT] [--endpoint EP[,EP2]] [options]\n"
    "Serves the bookstore over HTTP; see README.md, \"HTTP gateway\", for the routes.\n";

//  Set by SIGINT or SIGTERM, read by every loop (a lock-free atomic: safe
//  in a signal handler)
static atomic_int s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    atomic_store (&s_stop, 1);
}

//  How often connections slow to send their headers are looked for
#define SWEEP_MS 250

//  One TCP connection (libmicrohttpd's socket context), from its opening to
//  its closing
typedef struct _conn_t conn_t;
struct _conn_t {
    conn_t *prev, *next;        //  every open connection, for the sweep
    int fd;
    bool counted;               //  counted in the address's connections
    char key [GW_LIMIT_KEY_MAX];    //  the client's address key
    bool limited;               //  rate-limited (not a loopback address)
    int64_t waiting_since;      //  ms: awaiting a request's headers since
                                //  then; 0 while a request is under way
};

//  What every loop shares; the fields above the lock are set before the
//  loops start and only read after
typedef struct {
    gw_api_t *api;              //  thread-safe: metrics and limiter lock
    size_t max_body;
    bool verbose;
    bool limit_loopback;
    int64_t header_timeout_ms;
    int64_t per_address;
    int64_t max_connections;
    pthread_mutex_t lock;       //  guards what follows
    zhashx_t *addresses;        //  address key -> connections open (size_t *)
    int64_t open;               //  connections open, every loop's
    int64_t refused_logged;     //  when a refused address was last logged
} gateway_t;

//  One event loop, run by one thread: its daemon, its link and its
//  connections are touched by that thread alone
typedef struct {
    gateway_t *gateway;
    gw_link_t *link;
    struct MHD_Daemon *daemon;
    int epoll_fd;
    conn_t *conns;              //  every open connection of this loop
    pthread_t thread;
    bool started;               //  the thread runs (loops other than the first)
} loop_t;

//  One request's state, from its first callback to its completion
typedef struct {
    loop_t *loop;
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
    gw_api_finish (exchange->loop->gateway->api, &exchange->parsed, answer, err, &exchange->reply);
    gw_parsed_reset (&exchange->parsed);
    exchange->ready = true;
    MHD_resume_connection (exchange->connection);
}

//  Answers the request: at once when it needs no store call, else sends
//  the call and suspends the connection until its answer
static enum MHD_Result
s_answer (loop_t *loop, struct MHD_Connection *connection, exchange_t *exchange,
          const char *method, const char *url)
{
    gateway_t *self = loop->gateway;
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
    exchange->waiter = gw_api_call (self->api, loop->link, &exchange->parsed, s_on_answer, exchange);
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
    loop_t *loop = (loop_t *) cls;
    gateway_t *self = loop->gateway;
    exchange_t *exchange = *con_cls;
    if (!exchange) {
        exchange = calloc (1, sizeof (exchange_t));
        if (!exchange)
            abort ();
        exchange->loop = loop;
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
            return s_answer (loop, connection, exchange, method, url);
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
    return s_answer (loop, connection, exchange, method, url);
}

static void
s_on_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                enum MHD_RequestTerminationCode code)
{
    (void) code;
    loop_t *loop = (loop_t *) cls;
    exchange_t *exchange = *con_cls;
    if (exchange) {
        gw_link_cancel (loop->link, &exchange->waiter);
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

//  True when one more connection from key would exceed a limit: the
//  address's share, or the gateway's; logs a refused address now and then.
//  Caller holds the lock.
static bool
s_over_limit (gateway_t *self, const char *key)
{
    size_t *open = zhashx_lookup (self->addresses, key);
    bool full = self->open >= self->max_connections;
    if (!full && (!open || (int64_t) *open < self->per_address))
        return false;
    int64_t now = zclock_mono ();
    if (now - self->refused_logged >= 10000) {
        self->refused_logged = now;
        if (full)
            zsys_warning ("gateway: %lld connections open (--max-connections): refusing more",
                          (long long) self->open);
        else
            zsys_warning ("gateway: %s holds %zu connections already (--max-connections-per-address): "
                          "refusing more", key, *open);
    }
    return true;
}

//  Refuses a connection from an address that holds its share already,
//  before libmicrohttpd takes it on.  Another loop may accept one from the
//  same address meanwhile: s_on_connection decides for good.
static enum MHD_Result
s_on_accept (void *cls, const struct sockaddr *address, socklen_t size)
{
    (void) size;
    gateway_t *self = ((loop_t *) cls)->gateway;
    char key [GW_LIMIT_KEY_MAX];
    gw_limit_key (address, key);
    pthread_mutex_lock (&self->lock);
    bool over = s_over_limit (self, key);
    pthread_mutex_unlock (&self->lock);
    return over? MHD_NO: MHD_YES;
}

//  Counts the connection in, or shuts down one over a limit (a race
//  between loops passed s_on_accept): counting and checking under one lock
//  keeps the limits exact across loops
static bool
s_count_in (gateway_t *self, const char *key)
{
    pthread_mutex_lock (&self->lock);
    bool over = s_over_limit (self, key);
    if (!over) {
        size_t *open = zhashx_lookup (self->addresses, key);
        if (!open) {
            open = calloc (1, sizeof (size_t));
            if (!open)
                abort ();
            zhashx_insert (self->addresses, key, open);
        }
        (*open)++;
        self->open++;
    }
    pthread_mutex_unlock (&self->lock);
    return !over;
}

static void
s_count_out (gateway_t *self, const char *key)
{
    pthread_mutex_lock (&self->lock);
    size_t *open = zhashx_lookup (self->addresses, key);
    if (open && --*open == 0)
        zhashx_delete (self->addresses, key);
    self->open--;
    pthread_mutex_unlock (&self->lock);
}

static void
s_on_connection (void *cls, struct MHD_Connection *connection, void **socket_context,
                 enum MHD_ConnectionNotificationCode code)
{
    loop_t *loop = (loop_t *) cls;
    gateway_t *self = loop->gateway;
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
        conn->counted = s_count_in (self, conn->key);
        if (!conn->counted && conn->fd >= 0) {
            //  Refused: libmicrohttpd sees it closed and cleans up
            shutdown (conn->fd, SHUT_RDWR);
            conn->waiting_since = 0;
        }
        conn->next = loop->conns;
        if (loop->conns)
            loop->conns->prev = conn;
        loop->conns = conn;
        *socket_context = conn;
    }
    else {
        conn_t *conn = *socket_context;
        if (!conn)
            return;
        if (conn->counted)
            s_count_out (self, conn->key);
        if (conn->prev)
            conn->prev->next = conn->next;
        else
            loop->conns = conn->next;
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
s_sweep (loop_t *loop, int64_t now)
{
    int64_t timeout = loop->gateway->header_timeout_ms;
    for (conn_t *conn = loop->conns; conn; conn = conn->next)
        if (conn->waiting_since && now - conn->waiting_since > timeout && conn->fd >= 0) {
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
s_run_once (loop_t *loop, long wait_ms)
{
    MHD_UNSIGNED_LONG_LONG mhd_wait;
    if (MHD_get_timeout (loop->daemon, &mhd_wait) == MHD_YES && (long long) mhd_wait < wait_ms)
        wait_ms = (long) mhd_wait;
    zmq_pollitem_t items [3] = {
        { NULL, loop->epoll_fd, ZMQ_POLLIN, 0 },
        { gw_link_socket (loop->link), 0, ZMQ_POLLIN, 0 },
        { gw_link_monitor (loop->link), 0, ZMQ_POLLIN, 0 }
    };
    int count = items [2].socket? 3: 2;
    if (zmq_poll (items, count, wait_ms) > 0) {
        if (items [1].revents & ZMQ_POLLIN)
            gw_link_on_input (loop->link);
        if (count == 3 && (items [2].revents & ZMQ_POLLIN))
            gw_link_tick (loop->link);      //  reads the events: a broker gone
    }
    //  Resumed connections and new input alike
    MHD_run (loop->daemon);
}

//  Runs one loop until SIGINT or SIGTERM, then lets it answer what is
//  under way and stops its daemon
static void *
s_loop_run (void *arg)
{
    loop_t *loop = (loop_t *) arg;
    int64_t next_tick = 0, next_sweep = 0;
    bool link_idle = true;
    while (!atomic_load (&s_stop)) {
        int64_t now = zclock_mono ();
        //  The link's timers; at once when calls started while it was idle
        if (now >= next_tick || (link_idle && gw_link_pending (loop->link))) {
            int wait = gw_link_tick (loop->link);
            link_idle = wait < 0;
            next_tick = now + (wait < 0? SWEEP_MS: wait);
        }
        if (now >= next_sweep) {
            s_sweep (loop, now);
            next_sweep = now + SWEEP_MS;
        }
        //  At most SWEEP_MS: a loop that did not get the signal sees it soon
        int64_t due = next_tick < next_sweep? next_tick: next_sweep;
        s_run_once (loop, due > now? (long) (due - now): 0);
    }
    if (!loop->started)
        zsys_info ("gateway: stopping");
    //  Requests still waiting for the store are answered 503 and sent
    //  for a moment; libmicrohttpd then closes every connection
    gw_link_fail_all (loop->link, BS_ERR_unavailable);
    int64_t until = zclock_mono () + 200;
    while (zclock_mono () < until)
        s_run_once (loop, 10);
    MHD_stop_daemon (loop->daemon);
    loop->daemon = NULL;
    return NULL;
}

//  True when nothing else listens on the address: with SO_REUSEPORT, our
//  daemons would otherwise share a port another process of ours serves
static bool
s_port_free (const struct sockaddr_storage *address, socklen_t size)
{
    int fd = socket (address->ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    int on = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    bool free_ = bind (fd, (const struct sockaddr *) address, size) == 0;
    close (fd);
    return free_;
}

//  Starts a loop's daemon on address; reuse: it shares the port with the
//  other loops' daemons
static bool
s_loop_listen (loop_t *loop, struct sockaddr_storage *address, int64_t connections, int64_t idle,
               bool reuse)
{
    //  No thread of libmicrohttpd's own: its epoll set is polled by the
    //  loop, with the broker link
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    if (address->ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    loop->daemon = MHD_start_daemon (flags, 0, s_on_accept, loop, s_on_request, loop,
        MHD_OPTION_EXTERNAL_LOGGER, s_on_log, loop,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) address,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned) (reuse? 1: 0),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) idle,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned) 1024,
        MHD_OPTION_NOTIFY_COMPLETED, s_on_completed, loop,
        MHD_OPTION_NOTIFY_CONNECTION, s_on_connection, loop,
        MHD_OPTION_END);
    const union MHD_DaemonInfo *epoll = loop->daemon
        ? MHD_get_daemon_info (loop->daemon, MHD_DAEMON_INFO_EPOLL_FD): NULL;
    if (!epoll) {
        if (loop->daemon)
            MHD_stop_daemon (loop->daemon);
        loop->daemon = NULL;
        return false;
    }
    loop->epoll_fd = epoll->epoll_fd;
    return true;
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
    int64_t timeout, attempts, health, connections, per_address, max_body, header, idle, loops;
    struct sockaddr_storage address;
    socklen_t address_size = 0;
    if (!bs_settings_int (settings, "timeout-ms", &timeout) || !bs_settings_int (settings, "attempts", &attempts)
    ||  !bs_settings_int (settings, "health-timeout-ms", &health)
    ||  !bs_settings_int (settings, "max-connections", &connections)
    ||  !bs_settings_int (settings, "max-connections-per-address", &per_address)
    ||  !bs_settings_int (settings, "max-body", &max_body) || !bs_settings_int (settings, "header-timeout", &header)
    ||  !bs_settings_int (settings, "idle-timeout", &idle) || !bs_settings_int (settings, "loops", &loops)) {
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
    //  Each loop's link: its own DEALER (a ZeroMQ socket belongs to one
    //  thread), made here so that a bad endpoint is told at once
    loop_t *loop = calloc ((size_t) loops, sizeof (loop_t));
    if (!loop)
        abort ();
    for (int64_t i = 0; i < loops; i++) {
        loop [i].link = gw_link_new (endpoint, keys, (int) timeout, (int) attempts);
        if (!loop [i].link) {
            fprintf (stderr, "bookstore-gateway: '%s' is not a valid ZeroMQ endpoint or comma-separated list of them\n", endpoint);
            while (i > 0)
                gw_link_destroy (&loop [--i].link);
            free (loop);
            bs_keys_destroy (&keys);
            bs_settings_destroy (&settings);
            return 2;
        }
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
        .max_body = (size_t) max_body,
        .verbose = bs_settings_flag (settings, "verbose"),
        .limit_loopback = bs_settings_flag (settings, "rate-limit-loopback"),
        .header_timeout_ms = header * 1000,
        .per_address = per_address,
        .max_connections = connections,
        .addresses = zhashx_new ()
    };
    pthread_mutex_init (&gateway.lock, NULL);
    gateway.api = gw_api_new (&options);
    zhashx_set_destructor (gateway.addresses, s_free_count);
    struct sigaction action = { .sa_handler = s_on_signal };
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    signal (SIGPIPE, SIG_IGN);

    //  The daemons: the first takes the port (port 0: picks one), the others
    //  share it; the kernel spreads new connections over them
    bool listening = loops == 1 || s_port_free (&address, address_size);
    for (int64_t i = 0; i < loops && listening; i++) {
        loop [i].gateway = &gateway;
        listening = s_loop_listen (&loop [i], &address, connections, idle, loops > 1);
        if (listening && i == 0) {
            const union MHD_DaemonInfo *info = MHD_get_daemon_info (loop [0].daemon, MHD_DAEMON_INFO_BIND_PORT);
            uint16_t port = htons (info? info->port: 0);
            if (address.ss_family == AF_INET6)
                ((struct sockaddr_in6 *) &address)->sin6_port = port;
            else
                ((struct sockaddr_in *) &address)->sin_port = port;
        }
    }
    int rc = 0;
    if (!listening) {
        zsys_error ("gateway: cannot listen on %s (in use, or not an address of this machine?)", listen);
        for (int64_t i = 0; i < loops; i++)
            if (loop [i].daemon)
                MHD_stop_daemon (loop [i].daemon);
        rc = 1;
    }
    else {
        unsigned port = ntohs (address.ss_family == AF_INET6
                               ? ((struct sockaddr_in6 *) &address)->sin6_port
                               : ((struct sockaddr_in *) &address)->sin_port);
        zsys_info ("gateway: serving http on %s (port %u), broker(s) at %s, %lld loops", listen,
                   port, endpoint, (long long) loops);
        //  Signals go to the first loop's thread (this one): the others
        //  see the stop flag within SWEEP_MS
        sigset_t signals, previous;
        sigemptyset (&signals);
        sigaddset (&signals, SIGINT);
        sigaddset (&signals, SIGTERM);
        pthread_sigmask (SIG_BLOCK, &signals, &previous);
        for (int64_t i = 1; i < loops; i++) {
            loop [i].started = pthread_create (&loop [i].thread, NULL, s_loop_run, &loop [i]) == 0;
            if (!loop [i].started) {
                zsys_error ("gateway: cannot start a thread for loop %lld: stopping", (long long) i);
                atomic_store (&s_stop, 1);
            }
        }
        pthread_sigmask (SIG_SETMASK, &previous, NULL);
        s_loop_run (&loop [0]);
        for (int64_t i = 1; i < loops; i++) {
            if (loop [i].started)
                pthread_join (loop [i].thread, NULL);
            else
            if (loop [i].daemon)
                MHD_stop_daemon (loop [i].daemon);
        }
    }
    for (int64_t i = 0; i < loops; i++)
        gw_link_destroy (&loop [i].link);
    free (loop);
    gw_api_destroy (&gateway.api);
    zhashx_destroy (&gateway.addresses);
    pthread_mutex_destroy (&gateway.lock);
    bs_keys_destroy (&keys);
    bs_settings_destroy (&settings);
    return rc;
}
