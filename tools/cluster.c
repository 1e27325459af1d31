/*  bookstore-cluster - starts a local cluster and keeps it running.
 *
 *  Starts the broker (or several brokers) and every node as
 *  child processes, writes DIR/pids/<id>.pid for each, restarts a child that
 *  dies (with a backoff that grows while it keeps dying), and stops them all
 *  on SIGINT or SIGTERM.  A file DIR/hold/<id> keeps a dead child down until
 *  the file is removed (tests and operators use it to keep a node stopped).
 *  Ports: clients base-port, nodes base-port + 1, invalidations + 2, the
 *  feed + 3.  With --brokers N above 1, "broker-1" takes those, and
 *  "broker-i" the same layout from base-port + 5 (i - 1); each campaigns for
 *  the active lease in etcd, and the one that holds it serves.  Nodes and
 *  clients get every broker's endpoint, broker-1's first.  Node number k
 *  (from 0) publishes its log on base-port + 10 + 2k (past the brokers'
 *  ports: base-port + 5N + 2k with more than 2 brokers) and serves
 *  fetches on the next.
 *  The control plane: unless --etcd names a running etcd cluster, one etcd
 *  member is started first (and stopped last) with its data in DIR/etcd,
 *  clients on base-port + 90 and peers on base-port + 91; every broker is
 *  given its URL and keeps the partition map there.
 *  The HTTP gateway, started last and stopped first, serves on base-port +
 *  80 (--gateway-port; --no-gateway leaves it out).  Its admin routes take
 *  the token in DIR/admin-token, made on the first start (--admin-token-file
 *  names another file).
 */
#include "bs_keys.h"
#include "bs_msg.h"
#include "bs_settings.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHILDREN 32
#define MAX_ARGV 64
#define BACKOFF_MIN_MS 100
//  A child that ran this long before dying is restarted without delay
#define STABLE_MS 10000

static const bs_setting_t s_table [] = {
    { "data",           "data",   "directory for node data, pid files and hold files", 0, 0 },
    { "base-port",      "5555",   "client port of the broker; nodes use base-port + 1 (with N brokers, broker-i's ports start at base-port + 5 (i - 1))", 1, 65000 },
    { "brokers",        "1",      "1: one broker (\"broker\"); N: \"broker-1\" ... \"broker-N\", of which the one holding the active lease in etcd serves", 1, 5 },
    { "catalog",        "2",      "number of catalog replicas", 1, MAX_CHILDREN - 4 },
    { "order",          "2",      "number of order replicas", 1, MAX_CHILDREN - 4 },
    { "node-args",      "",       "extra arguments for every node, space-separated (e.g. \"--drop-every 5\")", 0, 0 },
    { "broker-args",    "",       "extra arguments for the broker (each, of several), space-separated (e.g. \"--cache-entries 0\")", 0, 0 },
    { "restock-period", "10",     "seconds between restocks of sold-out books (0: never)", 0, 31536000 },
    { "heartbeat-ms",   "250",    "heartbeat interval for broker and nodes", 10, 60000 },
    { "liveness",       "3",      "heartbeats missed before a peer is declared dead", 1, 100 },
    { "seed",           "",       "initial catalog (default: etc/catalog.cfg beside the programs)", 0, 0 },
    { "bin-dir",        "",       "directory of the programs (default: this program's directory)", 0, 0 },
    { "gateway-port",   "",       "HTTP port of the gateway (default: base-port + 80)", 0, 0 },
    { "gateway-host",   "127.0.0.1", "address the gateway listens on (\"*\": every address)", 0, 0 },
    { "backoff-max-ms", "5000",   "longest wait before restarting a node that keeps dying", BACKOFF_MIN_MS, 600000 },
    { "keys",           "",       "keys directory: every process speaks CURVE (see bookstore keygen)", 0, 0 },
    { "insecure",       NULL,     "without keys, let broker and nodes listen on every address (passes --insecure on; anyone who reaches the ports is trusted)", 0, 0 },
    { "gateway-args",   "",       "extra arguments for the gateway, space-separated (e.g. \"--max-body 4096\")", 0, 0 },
    { "admin-token-file", "",     "the gateway's admin token (default: DIR/admin-token, made when missing)", 0, 0 },
    { "etcd",           "",       "etcd's client URLs, comma-separated, for the partition map (empty: start one etcd member, data in DIR/etcd, on base-port + 90 and + 91)", 0, 0 },
    { "cluster-name",   "default", "the cluster's name in etcd: its keys live under /bookstore/<name>/", 0, 0 },
    { "etcd-bin",       "etcd",   "the etcd program to start (a name is looked up in PATH)", 0, 0 },
    { "no-gateway",     NULL,     "do not start the HTTP gateway", 0, 0 },
    { NULL, NULL, NULL, 0, 0 }
};

typedef struct {
    char id [64];
    char *argv [MAX_ARGV];
    pid_t pid;
    int64_t started;
    int64_t restart_at;         //  0: not waiting to restart
    int backoff_ms;
    int restarts;
} child_t;

static child_t s_children [MAX_CHILDREN];
static int s_count;
static char s_data [PATH_MAX];
static volatile sig_atomic_t s_stop;
static int s_backoff_max_ms = 5000;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static void
s_add (const char *id, ...)
{
    child_t *child = &s_children [s_count++];
    snprintf (child->id, sizeof child->id, "%s", id);
    va_list args;
    va_start (args, id);
    int n = 0;
    const char *arg;
    while ((arg = va_arg (args, const char *)) && n < MAX_ARGV - 1)
        child->argv [n++] = strdup (arg);
    va_end (args);
    child->argv [n] = NULL;
    child->backoff_ms = BACKOFF_MIN_MS;
}

//  Appends arguments to a child's command line
static void
s_add_args (child_t *child, ...)
{
    int n = 0;
    while (child->argv [n])
        n++;
    va_list args;
    va_start (args, child);
    const char *arg;
    while ((arg = va_arg (args, const char *)) && n < MAX_ARGV - 1)
        child->argv [n++] = strdup (arg);
    va_end (args);
    child->argv [n] = NULL;
}

static void
s_pidfile (child_t *child, bool write)
{
    char path [PATH_MAX + 80];
    snprintf (path, sizeof path, "%.3900s/pids/%.63s.pid", s_data, child->id);
    if (!write) {
        unlink (path);
        return;
    }
    char tmp [PATH_MAX + 100];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen (tmp, "w");
    if (file) {
        fprintf (file, "%d\n", (int) child->pid);
        fclose (file);
        rename (tmp, path);     //  readers never see a half-written file
    }
}

static bool
s_held (child_t *child)
{
    char path [PATH_MAX + 80];
    snprintf (path, sizeof path, "%.3900s/hold/%.63s", s_data, child->id);
    return access (path, F_OK) == 0;
}

static void
s_start (child_t *child)
{
    pid_t pid = fork ();
    if (pid < 0) {
        zsys_error ("cluster: cannot fork for %s: %s", child->id, strerror (errno));
        child->restart_at = zclock_mono () + child->backoff_ms;
        return;
    }
    if (pid == 0) {
        //  Children stop on the launcher's word, not on the terminal's
        //  Ctrl-C, so the launcher controls the order of shutdown
        setpgid (0, 0);
        execv (child->argv [0], child->argv);
        fprintf (stderr, "cluster: cannot run %s: %s\n", child->argv [0], strerror (errno));
        _exit (127);
    }
    child->pid = pid;
    child->started = zclock_mono ();
    child->restart_at = 0;
    s_pidfile (child, true);
    zsys_info ("cluster: started %s (pid %d)", child->id, (int) pid);
}

static void
s_reaped (child_t *child, int status)
{
    char why [64];
    if (WIFSIGNALED (status))
        snprintf (why, sizeof why, "killed by signal %d (%s)", WTERMSIG (status), strsignal (WTERMSIG (status)));
    else
        snprintf (why, sizeof why, "exited with status %d", WEXITSTATUS (status));
    child->pid = 0;
    s_pidfile (child, false);
    if (s_stop) {
        zsys_info ("cluster: %s stopped (%s)", child->id, why);
        return;
    }
    int64_t now = zclock_mono ();
    if (now - child->started >= STABLE_MS)
        child->backoff_ms = BACKOFF_MIN_MS;
    child->restart_at = now + child->backoff_ms;
    zsys_warning ("cluster: %s died: %s; restarting in %d ms", child->id, why, child->backoff_ms);
    child->backoff_ms = child->backoff_ms * 2 > s_backoff_max_ms? s_backoff_max_ms: child->backoff_ms * 2;
    child->restarts++;
}

static void
s_stop_all (void)
{
    for (int i = s_count - 1; i >= 0; i--)
        if (s_children [i].pid > 0)
            kill (s_children [i].pid, SIGTERM);
    int64_t deadline = zclock_mono () + 5000;
    while (true) {
        int status;
        pid_t pid = waitpid (-1, &status, WNOHANG);
        if (pid > 0) {
            for (int i = 0; i < s_count; i++)
                if (s_children [i].pid == pid)
                    s_reaped (&s_children [i], status);
            continue;
        }
        bool any = false;
        for (int i = 0; i < s_count; i++)
            any |= s_children [i].pid > 0;
        if (!any)
            break;
        if (zclock_mono () > deadline) {
            for (int i = 0; i < s_count; i++)
                if (s_children [i].pid > 0) {
                    zsys_warning ("cluster: %s did not stop in time; killing it", s_children [i].id);
                    kill (s_children [i].pid, SIGKILL);
                }
            deadline = INT64_MAX;
        }
        zclock_sleep (20);
    }
}

static bool
s_exists (const char *path)
{
    return access (path, F_OK) == 0;
}

static bool s_insecure;         //  --insecure: passed on to broker and nodes

//  With a keys directory every child speaks CURVE, each given a view of
//  its own (<data>/keys/<child>): every public certificate and its own
//  secret alone (cert: "broker", "nodes/<id>", "admins/gateway"), so that
//  no process, the internet-facing gateway included, can read another's
//  secret key.  Without keys a child listens on loopback alone unless the
//  launcher was told --insecure.  False (said) when the view cannot be
//  made.
static bool
s_add_keys (child_t *child, const char *keys, const char *cert)
{
    if (*keys) {
        char views [PATH_MAX + 16], view [PATH_MAX + 96], reason [1200];
        snprintf (views, sizeof views, "%s/keys", s_data);
        snprintf (view, sizeof view, "%s/%s", views, child->id);
        if (mkdir (views, 0700) != 0 && errno != EEXIST) {
            fprintf (stderr, "bookstore-cluster: cannot make %s: %s\n", views, strerror (errno));
            return false;
        }
        if (!bs_keys_export (keys, cert, view, reason, sizeof reason)) {
            fprintf (stderr, "bookstore-cluster: %s\n", reason);
            return false;
        }
        s_add_args (child, "--keys", view, NULL);
    }
    else
    if (s_insecure)
        s_add_args (child, "--insecure", NULL);
    return true;
}

//  Makes the gateway's admin token file when it does not exist: 64 random
//  hex digits, readable by this user alone.  The file is created with
//  O_EXCL | O_NOFOLLOW, so a file or symlink planted at the path is never
//  written through; an existing path is used only when it is a regular file
//  (never a symlink, which could point the gateway at another file).  False
//  (logged) on failure.
static bool
s_admin_token (const char *path)
{
    struct stat info;
    if (lstat (path, &info) == 0) {
        if (S_ISREG (info.st_mode))
            return true;
        zsys_error ("cluster: the admin token's path %s is %s, not a regular file: refused "
                    "(remove it, or give --admin-token-file another path)",
                    path, S_ISLNK (info.st_mode)? "a symbolic link": "something else");
        return false;
    }
    uint8_t random [2 * BS_RID_SIZE];
    bs_random_bytes (random, sizeof random);
    char text [4 * BS_RID_SIZE + 2];
    for (size_t i = 0; i < sizeof random; i++)
        snprintf (text + 2 * i, 3, "%02x", random [i]);
    strcat (text, "\n");
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool written = fd >= 0 && write (fd, text, strlen (text)) == (ssize_t) strlen (text)
                && fsync (fd) == 0;
    int error = errno;
    if (fd >= 0)
        close (fd);
    if (!written) {
        zsys_error ("cluster: cannot write the admin token to %s: %s", path, strerror (error));
        if (fd >= 0)
            unlink (path);      //  ours, half written: the next start makes it again
        return false;
    }
    zsys_info ("cluster: wrote a new admin token for the gateway to %s", path);
    return true;
}

//  Appends extra arguments given as one string, split on spaces
static void
s_add_split (child_t *child, const char *args)
{
    char *copy = strdup (args);
    for (char *tok = strtok (copy, " "); tok; tok = strtok (NULL, " "))
        s_add_args (child, tok, NULL);
    free (copy);
}

//  The full path of a program: as given when it names a path, else the
//  first executable of that name in PATH.  False when there is none.
static bool
s_find_program (const char *name, char *out, size_t size)
{
    if (strchr (name, '/')) {
        snprintf (out, size, "%s", name);
        return access (out, X_OK) == 0;
    }
    const char *path = getenv ("PATH");
    char *copy = strdup (path && *path? path: "/usr/local/bin:/usr/bin:/bin");
    bool found = false;
    for (char *dir = strtok (copy, ":"); dir && !found; dir = strtok (NULL, ":")) {
        snprintf (out, size, "%s/%s", dir, name);
        found = access (out, X_OK) == 0;
    }
    free (copy);
    return found;
}

int
main (int argc, char **argv)
{
    bs_settings_t *settings = bs_settings_new ("cluster", s_table, argc, argv);
    if (!settings)
        return 2;
    if (bs_settings_help_shown (settings)) {
        bs_settings_destroy (&settings);
        return 0;
    }
    int64_t port, catalogs, orders, restock, heartbeat, liveness, backoff_max, brokers;
    s_insecure = bs_settings_flag (settings, "insecure");
    if (!bs_settings_int (settings, "base-port", &port) || !bs_settings_int (settings, "catalog", &catalogs)
    ||  !bs_settings_int (settings, "brokers", &brokers)
    ||  !bs_settings_int (settings, "backoff-max-ms", &backoff_max)
    ||  !bs_settings_int (settings, "order", &orders) || !bs_settings_int (settings, "restock-period", &restock)
    ||  !bs_settings_int (settings, "heartbeat-ms", &heartbeat)
    ||  !bs_settings_int (settings, "liveness", &liveness)) {
        bs_settings_destroy (&settings);
        return 2;
    }
    //  Room for etcd, the gateway and the brokers
    if (catalogs + orders > MAX_CHILDREN - 2 - brokers) {
        fprintf (stderr, "bookstore-cluster: --catalog and --order together must be at most %d with %d broker(s)\n",
                 MAX_CHILDREN - 2 - (int) brokers, (int) brokers);
        bs_settings_destroy (&settings);
        return 2;
    }
    s_backoff_max_ms = (int) backoff_max;
    //  Programs and the initial catalog are found beside this program
    char exe [PATH_MAX], bin [PATH_MAX], seed [PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    exe [n > 0? n: 0] = 0;
    if (*bs_settings_get (settings, "bin-dir"))
        snprintf (bin, sizeof bin, "%s", bs_settings_get (settings, "bin-dir"));
    else {
        snprintf (bin, sizeof bin, "%s", exe);
        char *slash = strrchr (bin, '/');
        if (slash)
            *slash = 0;
    }
    if (*bs_settings_get (settings, "seed"))
        snprintf (seed, sizeof seed, "%s", bs_settings_get (settings, "seed"));
    else {
        const char *candidates [] = { "../etc/catalog.cfg", "../../../etc/catalog.cfg", "../share/bookstore/catalog.cfg" };
        seed [0] = 0;
        for (size_t i = 0; i < 3 && !seed [0]; i++) {
            char path [PATH_MAX + 64];
            snprintf (path, sizeof path, "%s/%s", bin, candidates [i]);
            if (s_exists (path) && realpath (path, seed) == NULL)
                seed [0] = 0;
        }
        if (!seed [0]) {
            fprintf (stderr, "bookstore-cluster: no initial catalog found; give --seed FILE\n");
            bs_settings_destroy (&settings);
            return 2;
        }
    }
    const char *data = bs_settings_get (settings, "data");
    if (zsys_dir_create ("%s/pids", data) != 0 || zsys_dir_create ("%s/hold", data) != 0
    ||  realpath (data, s_data) == NULL) {
        fprintf (stderr, "bookstore-cluster: cannot create %s\n", data);
        bs_settings_destroy (&settings);
        return 1;
    }
    zsys_set_logident ("cluster");

    char broker_prog [PATH_MAX + 32], node_prog [PATH_MAX + 32];
    snprintf (broker_prog, sizeof broker_prog, "%s/bookstore-broker", bin);
    snprintf (node_prog, sizeof node_prog, "%s/bookstore-node", bin);
    char hb_s [16], live_s [16], restock_s [16], node_ep [160], client_ep [160], invalidate_ep [160];
    snprintf (live_s, sizeof live_s, "%d", (int) liveness);
    snprintf (hb_s, sizeof hb_s, "%d", (int) heartbeat);
    snprintf (restock_s, sizeof restock_s, "%d", (int) restock);
    //  The control plane: one etcd member of our own unless the operator
    //  named a cluster; it comes first so that it starts first and stops
    //  last.  Its ports lie within the hundred the base port opens.
    char etcd_urls [512];
    const char *cluster_name = bs_settings_get (settings, "cluster-name");
    if (*bs_settings_get (settings, "etcd"))
        snprintf (etcd_urls, sizeof etcd_urls, "%s", bs_settings_get (settings, "etcd"));
    else {
        char etcd_prog [PATH_MAX];
        if (!s_find_program (bs_settings_get (settings, "etcd-bin"), etcd_prog, sizeof etcd_prog)) {
            fprintf (stderr, "bookstore-cluster: no etcd program '%s' (Debian: apt-get install etcd-server); "
                     "or give --etcd URL of a running etcd\n", bs_settings_get (settings, "etcd-bin"));
            bs_settings_destroy (&settings);
            return 2;
        }
        char client_url [64], peer_url [64], initial [96], etcd_dir [PATH_MAX + 16];
        snprintf (client_url, sizeof client_url, "http://127.0.0.1:%d", (int) port + 90);
        snprintf (peer_url, sizeof peer_url, "http://127.0.0.1:%d", (int) port + 91);
        snprintf (initial, sizeof initial, "etcd=%s", peer_url);
        snprintf (etcd_dir, sizeof etcd_dir, "%s/etcd", s_data);
        snprintf (etcd_urls, sizeof etcd_urls, "%s", client_url);
        //  Short heartbeats let leases as short as a second be granted
        s_add ("etcd", etcd_prog, "--name", "etcd", "--data-dir", etcd_dir,
               "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
               "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
               "--initial-cluster", initial, "--heartbeat-interval", "50", "--election-timeout", "500",
               "--logger", "zap", "--log-level", "warn", NULL);
    }
    bool keys_ok = true;            //  every child's keys view was made
    if (brokers == 1) {
        //  One broker, as ever: nodes find its invalidation port themselves
        char port_s [16];
        snprintf (port_s, sizeof port_s, "%d", (int) port);
        snprintf (client_ep, sizeof client_ep, "tcp://127.0.0.1:%d", (int) port);
        snprintf (node_ep, sizeof node_ep, "tcp://127.0.0.1:%d", (int) port + 1);
        invalidate_ep [0] = 0;
        s_add ("broker", broker_prog, "--base-port", port_s, "--heartbeat-ms", hb_s, "--liveness", live_s,
               "--etcd", etcd_urls, "--cluster", cluster_name, NULL);
        keys_ok &= s_add_keys (&s_children [s_count - 1], bs_settings_get (settings, "keys"), "broker");
        s_add_split (&s_children [s_count - 1], bs_settings_get (settings, "broker-args"));
    }
    else {
        //  N brokers, each five ports above the one before; each campaigns
        //  for the active lease in etcd.  Every list names broker-1 first.
        client_ep [0] = node_ep [0] = invalidate_ep [0] = 0;
        for (int i = 0; i < brokers; i++) {
            int base = (int) port + 5 * i;
            const char *comma = i? ",": "";
            size_t n = strlen (client_ep);
            snprintf (client_ep + n, sizeof client_ep - n, "%stcp://127.0.0.1:%d", comma, base);
            n = strlen (node_ep);
            snprintf (node_ep + n, sizeof node_ep - n, "%stcp://127.0.0.1:%d", comma, base + 1);
            n = strlen (invalidate_ep);
            snprintf (invalidate_ep + n, sizeof invalidate_ep - n, "%stcp://127.0.0.1:%d", comma, base + 2);
        }
        for (int i = 0; i < brokers; i++) {
            char id [32], port_s [16], advertise [64];
            int base = (int) port + 5 * i;
            snprintf (id, sizeof id, "broker-%d", i + 1);
            snprintf (port_s, sizeof port_s, "%d", base);
            snprintf (advertise, sizeof advertise, "tcp://127.0.0.1:%d", base);
            s_add (id, broker_prog, "--id", id, "--base-port", port_s,
                   "--advertise", advertise, "--heartbeat-ms", hb_s, "--liveness", live_s,
                   "--etcd", etcd_urls, "--cluster", cluster_name, NULL);
            keys_ok &= s_add_keys (&s_children [s_count - 1], bs_settings_get (settings, "keys"), "broker");
            s_add_split (&s_children [s_count - 1], bs_settings_get (settings, "broker-args"));
        }
    }
    const char *node_args = bs_settings_get (settings, "node-args");
    for (int k = 0; k < catalogs + orders; k++) {
        bool catalog = k < catalogs;
        char id [32], dir [PATH_MAX + 40], pub [64], sync [64];
        snprintf (id, sizeof id, "%s-%d", catalog? "catalog": "order", catalog? k + 1: (int) (k - catalogs + 1));
        snprintf (dir, sizeof dir, "%s/%s", s_data, id);
        //  Every address with keys (or --insecure); loopback alone without
        const char *host = *bs_settings_get (settings, "keys") || s_insecure? "*": "127.0.0.1";
        //  Past the brokers' ports: base-port + 10 up to 2 brokers
        int node_base = (int) port + 5 * (brokers > 2? (int) brokers: 2);
        snprintf (pub, sizeof pub, "tcp://%s:%d", host, node_base + 2 * k);
        snprintf (sync, sizeof sync, "tcp://%s:%d", host, node_base + 1 + 2 * k);
        s_add (id, node_prog, "--service", catalog? "catalog": "order", "--id", id, "--data", dir,
               "--broker", node_ep, "--broker-clients", client_ep, "--heartbeat-ms", hb_s,
               "--liveness", live_s, "--pub-bind", pub, "--sync-bind", sync, NULL);
        if (catalog)
            s_add_args (&s_children [s_count - 1], "--seed", seed, "--restock-period", restock_s, NULL);
        if (catalog && *invalidate_ep)
            s_add_args (&s_children [s_count - 1], "--invalidate", invalidate_ep, NULL);
        char cert [48];
        snprintf (cert, sizeof cert, "nodes/%s", id);
        keys_ok &= s_add_keys (&s_children [s_count - 1], bs_settings_get (settings, "keys"), cert);
        s_add_split (&s_children [s_count - 1], node_args);
    }
    //  The HTTP gateway comes last, so that it stops first: before the store
    //  it fronts
    if (!bs_settings_flag (settings, "no-gateway")) {
        int64_t gateway_port = port + 80;
        const char *given = bs_settings_get (settings, "gateway-port");
        if (*given && !bs_parse_int (given, 1, 65535, &gateway_port)) {
            fprintf (stderr, "bookstore-cluster: --gateway-port must be a port number\n");
            bs_settings_destroy (&settings);
            return 2;
        }
        char gateway_prog [PATH_MAX + 32], listen [300];
        snprintf (gateway_prog, sizeof gateway_prog, "%s/bookstore-gateway", bin);
        snprintf (listen, sizeof listen, "%.200s:%d", bs_settings_get (settings, "gateway-host"), (int) gateway_port);
        //  A build without the gateway still runs the store
        if (access (gateway_prog, X_OK) != 0)
            zsys_warning ("cluster: no gateway program at %s; starting without it", gateway_prog);
        else {
            //  Admin routes take the token in this file (made on the first start)
            char token_file [PATH_MAX + 32];
            if (*bs_settings_get (settings, "admin-token-file"))
                snprintf (token_file, sizeof token_file, "%s", bs_settings_get (settings, "admin-token-file"));
            else
                snprintf (token_file, sizeof token_file, "%s/admin-token", s_data);
            if (!s_admin_token (token_file)) {
                bs_settings_destroy (&settings);
                return 1;
            }
            s_add ("gateway", gateway_prog, "--listen", listen, "--endpoint", client_ep,
                   "--admin-token-file", token_file, NULL);
            //  A client of the broker: keys, never --insecure (its listen
            //  address is --gateway-host)
            if (*bs_settings_get (settings, "keys"))
                keys_ok &= s_add_keys (&s_children [s_count - 1], bs_settings_get (settings, "keys"),
                                       "admins/gateway");
            s_add_split (&s_children [s_count - 1], bs_settings_get (settings, "gateway-args"));
            zsys_info ("cluster: the HTTP gateway serves http://%s/ (admin token in %s)", listen, token_file);
        }
    }
    bs_settings_destroy (&settings);
    if (!keys_ok)
        return 2;

    //  Our own signal handling: SIGINT and SIGTERM stop the cluster
    zsys_handler_set (NULL);
    struct sigaction action = { .sa_handler = s_on_signal };
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);

    char pidpath [PATH_MAX + 40];
    snprintf (pidpath, sizeof pidpath, "%s/pids/bookstore-cluster.pid", s_data);
    FILE *pidfile = fopen (pidpath, "w");
    if (pidfile) {
        fprintf (pidfile, "%d\n", (int) getpid ());
        fclose (pidfile);
    }
    zsys_info ("cluster: %d broker(s)%s, %d catalog and %d order node(s); clients connect to %s; data in %s",
               (int) brokers, brokers > 1? " (the one holding the active lease in etcd serves)": "",
               (int) catalogs, (int) orders, client_ep, s_data);
    for (int i = 0; i < s_count; i++)
        s_start (&s_children [i]);

    while (!s_stop) {
        int status;
        pid_t pid;
        while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
            for (int i = 0; i < s_count; i++)
                if (s_children [i].pid == pid)
                    s_reaped (&s_children [i], status);
        int64_t now = zclock_mono ();
        for (int i = 0; i < s_count && !s_stop; i++) {
            child_t *child = &s_children [i];
            if (child->pid == 0 && child->restart_at && now >= child->restart_at) {
                if (s_held (child))
                    child->restart_at = now + 50;
                else
                    s_start (child);
            }
        }
        usleep (20000);
    }
    zsys_info ("cluster: stopping");
    s_stop_all ();
    unlink (pidpath);
    for (int i = 0; i < s_count; i++)
        for (int k = 0; s_children [i].argv [k]; k++)
            free (s_children [i].argv [k]);
    return 0;
}
