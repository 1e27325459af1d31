/*  bs_keys - certificates, CURVE sockets and a ZAP handler with roles  */
#include "bs_keys.h"
#include "bs_sizes.h"

#include <dirent.h>
#include <errno.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define RELOAD_MS 1000

struct _bs_keys_t {
    char dir [512];
    zcert_t *cert;
    zactor_t *auth;             //  the ZAP handler, once we serve
};

void
bs_keys_path (const char *dir, const char *name, char *path, size_t size)
{
    snprintf (path, size, "%s/%s", dir, name);
}

//  --------------------------------------------------------------------------
//  Known keys: public key (Z85) -> "role:name", from the directory

static void
s_load_role (zhashx_t *known, const char *dir, const char *folder, const char *role)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/%s", dir, folder);
    DIR *d = opendir (path);
    if (!d)
        return;
    struct dirent *entry;
    while ((entry = readdir (d))) {
        size_t n = strlen (entry->d_name);
        if (entry->d_name [0] == '.' || (n > 7 && strcmp (entry->d_name + n - 7, "_secret") == 0))
            continue;
        char file [1400];
        snprintf (file, sizeof file, "%s/%s", path, entry->d_name);
        zcert_t *cert = zcert_load (file);
        if (!cert)
            continue;
        char *user = zsys_sprintf ("%s:%s", role, entry->d_name);
        zhashx_update (known, zcert_public_txt (cert), user);
        zstr_free (&user);
        zcert_destroy (&cert);
    }
    closedir (d);
}

static zhashx_t *
s_load_known (const char *dir)
{
    zhashx_t *known = zhashx_new ();
    zhashx_set_destructor (known, (zhashx_destructor_fn *) zstr_free);
    zhashx_set_duplicator (known, (zhashx_duplicator_fn *) strdup);
    s_load_role (known, dir, "nodes", "node");
    s_load_role (known, dir, "admins", "admin");
    s_load_role (known, dir, "clients", "client");
    //  Every broker of a cluster uses the one broker certificate
    char path [1024];
    bs_keys_path (dir, "broker", path, sizeof path);
    zcert_t *cert = zcert_load (path);
    if (cert) {
        zhashx_update (known, zcert_public_txt (cert), "broker:broker");
        zcert_destroy (&cert);
    }
    return known;
}

//  --------------------------------------------------------------------------
//  ZAP handler (RFC 27): one actor per process, answering for its servers

static void
s_zap_reply (zsock_t *handler, const char *sequence, const char *status, const char *text, const char *user)
{
    zstr_sendm (handler, "1.0");
    zstr_sendm (handler, sequence);
    zstr_sendm (handler, status);
    zstr_sendm (handler, text);
    zstr_sendm (handler, user);
    zframe_t *metadata = zframe_new (NULL, 0);
    zframe_send (&metadata, handler, 0);
}

static void
s_zap_request (zsock_t *handler, zhashx_t **known_p, const char *dir, int64_t *loaded_at)
{
    //  version, sequence, domain, address, identity, mechanism, credentials
    zmsg_t *request = zmsg_recv (handler);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    char *sequence = zmsg_popstr (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *key = zmsg_pop (request);
    const char *user = NULL;
    if (mechanism && strcmp (mechanism, "CURVE") == 0 && key && zframe_size (key) == 32) {
        char txt [41];
        zmq_z85_encode (txt, zframe_data (key), 32);
        user = zhashx_lookup (*known_p, txt);
        //  A key added since we last looked is found on the next reload
        if (!user && zclock_mono () - *loaded_at > RELOAD_MS) {
            zhashx_destroy (known_p);
            *known_p = s_load_known (dir);
            *loaded_at = zclock_mono ();
            user = zhashx_lookup (*known_p, txt);
        }
    }
    bool allowed = user && (strcmp (domain? domain: "", "clients") == 0
                            || (strcmp (domain? domain: "", "nodes") == 0 && strncmp (user, "node:", 5) == 0));
    if (allowed)
        s_zap_reply (handler, sequence? sequence: "", "200", "OK", user);
    else {
        zsys_warning ("auth: refused a %s connection from %s to domain '%s': %s",
                      mechanism? mechanism: "?", address? address: "?", domain? domain: "",
                      user? "not allowed there": "unknown key");
        s_zap_reply (handler, sequence? sequence: "", "400", "not allowed", "");
    }
    zframe_destroy (&key);
    zstr_free (&version);
    zstr_free (&sequence);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
    zmsg_destroy (&request);
}

static void
s_auth_actor (zsock_t *pipe, void *args)
{
    const char *dir = args;
    zsock_t *handler = zsock_new (ZMQ_REP);
    if (zsock_bind (handler, ZAP_ENDPOINT) != 0) {
        zsys_error ("auth: cannot bind %s", ZAP_ENDPOINT);
        zsock_destroy (&handler);
        zsock_signal (pipe, 1);
        return;
    }
    zhashx_t *known = s_load_known (dir);
    int64_t loaded_at = zclock_mono ();
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, handler, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == handler)
            s_zap_request (handler, &known, dir, &loaded_at);
        else
            break;              //  $TERM, or interrupted
    }
    zpoller_destroy (&poller);
    zhashx_destroy (&known);
    zsock_destroy (&handler);
}

//  --------------------------------------------------------------------------

bs_keys_t *
bs_keys_new (const char *dir, const char *cert)
{
    bs_keys_t *self = calloc (1, sizeof (bs_keys_t));
    if (!self)
        abort ();
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    char secret [1100];
    snprintf (secret, sizeof secret, "%s_secret", cert);
    self->cert = zcert_load (secret);
    if (!self->cert) {
        zsys_error ("keys: cannot read the certificate %s (make one with: bookstore keygen %s)", secret, dir);
        free (self);
        return NULL;
    }
    return self;
}

bool
bs_keys_open (bs_settings_t *settings, const char *default_cert, bool quiet, bs_keys_t **keys_p)
{
    *keys_p = NULL;
    const char *dir = bs_settings_get (settings, "keys");
    if (!dir || !*dir) {
        if (!quiet)
            zsys_warning ("PLAIN MODE: no keys directory, so nothing is encrypted or authenticated; servers "
                          "listen on loopback alone (unless --insecure), and anyone on this machine can join or "
                          "change the catalog (see bookstore keygen)");
        return true;
    }
    const char *cert = bs_settings_get (settings, "cert");
    char path [1100];
    if (cert && *cert)
        snprintf (path, sizeof path, "%s", cert);
    else
        bs_keys_path (dir, default_cert, path, sizeof path);
    *keys_p = bs_keys_new (dir, path);
    if (*keys_p && !quiet)
        zsys_info ("CURVE: keys from %s, certificate %s", dir, path);
    return *keys_p != NULL;
}

void
bs_keys_destroy (bs_keys_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bs_keys_t *self = *self_p;
    zactor_destroy (&self->auth);
    zcert_destroy (&self->cert);
    free (self);
    *self_p = NULL;
}

//  True for a host that only this machine can reach
static bool
s_loopback_host (const char *host, size_t n)
{
    if ((n == 9 && memcmp (host, "localhost", 9) == 0) || (n == 2 && memcmp (host, "lo", 2) == 0)
    ||  (n == 5 && memcmp (host, "[::1]", 5) == 0) || (n == 3 && memcmp (host, "::1", 3) == 0))
        return true;
    //  127.0.0.0/8: "127." then digits and dots only
    if (n < 5 || memcmp (host, "127.", 4) != 0)
        return false;
    for (size_t i = 4; i < n; i++)
        if (!((host [i] >= '0' && host [i] <= '9') || host [i] == '.'))
            return false;
    return true;
}

bool
bs_keys_bind_endpoint (bs_keys_t *self, bool insecure, const char *endpoint,
                       char *out, size_t size, char *reason, size_t reason_size)
{
    snprintf (out, size, "%s", endpoint);
    if (self || insecure || strncmp (endpoint, "ipc://", 6) == 0 || strncmp (endpoint, "inproc://", 9) == 0)
        return true;
    //  tcp://host:port; the port is after the last colon
    const char *host = strncmp (endpoint, "tcp://", 6) == 0? endpoint + 6: NULL;
    const char *colon = host? strrchr (host, ':'): NULL;
    if (!host || !colon) {
        snprintf (reason, reason_size, "'%s' is not a tcp://host:port endpoint", endpoint);
        return false;
    }
    size_t n = (size_t) (colon - host);
    if ((n == 1 && host [0] == '*') || (n == 7 && memcmp (host, "0.0.0.0", 7) == 0)) {
        snprintf (out, size, "tcp://127.0.0.1%s", colon);
        zsys_info ("PLAIN MODE: %s binds %s only: without keys, servers listen on this machine alone "
                   "(--insecure to listen on every address)", endpoint, out);
        return true;
    }
    if (s_loopback_host (host, n))
        return true;
    snprintf (reason, reason_size, "'%s' would listen beyond this machine without keys: give --keys DIR "
              "(see bookstore keygen), a 127.0.0.1 address, or --insecure", endpoint);
    return false;
}

void
bs_keys_warn_insecure (bs_keys_t *self, bool insecure, const char *program)
{
    if (!self && insecure)
        zsys_warning ("INSECURE: %s runs without keys on the addresses it was given: anyone who reaches its "
                      "ports can read, change the catalog, buy, and pose as a node", program);
}

void
bs_keys_serve (bs_keys_t *self, zsock_t *sock, const char *domain)
{
    if (!self)
        return;
    if (!self->auth)
        self->auth = zactor_new (s_auth_actor, self->dir);
    zcert_apply (self->cert, sock);
    zsock_set_zap_domain (sock, domain);
    zsock_set_curve_server (sock, 1);
}

//  The public certificate of "broker" or of node NAME
static zcert_t *
s_load_public (bs_keys_t *self, const char *server, char *path, size_t size)
{
    if (strcmp (server, "broker") == 0)
        bs_keys_path (self->dir, "broker", path, size);
    else {
        char name [300];
        snprintf (name, sizeof name, "nodes/%s", server);
        bs_keys_path (self->dir, name, path, size);
    }
    return zcert_load (path);
}

bool
bs_keys_node_public (bs_keys_t *self, const char *name, char *out, size_t size)
{
    if (!self || size < 41 || strcmp (name, "broker") == 0)
        return false;
    char path [1100];
    zcert_t *cert = s_load_public (self, name, path, sizeof path);
    if (!cert)
        return false;
    snprintf (out, size, "%s", zcert_public_txt (cert));
    zcert_destroy (&cert);
    return true;
}

bool
bs_keys_connect_to (bs_keys_t *self, zsock_t *sock, const char *server)
{
    if (!self)
        return true;
    char path [1100];
    zcert_t *peer = s_load_public (self, server, path, sizeof path);
    if (!peer) {
        zsys_error ("keys: no certificate for %s at %s", server, path);
        return false;
    }
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, zcert_public_txt (peer));
    zcert_destroy (&peer);
    return true;
}

const char *
bs_keys_role (const zmq_msg_t *msg, const char **name_p)
{
    const char *user = zmq_msg_gets ((zmq_msg_t *) msg, "User-Id");
    static __thread char role [16];
    role [0] = 0;
    if (name_p)
        *name_p = "";
    if (!user || !*user)
        return role;
    const char *colon = strchr (user, ':');
    if (!colon || colon - user >= (long) sizeof role)
        return role;
    memcpy (role, user, (size_t) (colon - user));
    role [colon - user] = 0;
    if (name_p)
        *name_p = colon + 1;
    return role;
}

//  --------------------------------------------------------------------------

static int
s_generate_one (const char *dir, const char *name)
{
    char path [1100], secret [1200];
    bs_keys_path (dir, name, path, sizeof path);
    snprintf (secret, sizeof secret, "%s_secret", path);
    struct stat st;
    if (stat (secret, &st) == 0)
        return 0;               //  keep what exists
    //  The folder of the certificate
    char folder [1100];
    snprintf (folder, sizeof folder, "%s", path);
    char *slash = strrchr (folder, '/');
    if (slash) {
        *slash = 0;
        zsys_dir_create ("%s", folder);
    }
    zcert_t *cert = zcert_new ();
    zcert_set_meta (cert, "name", "%s", name);
    int rc = zcert_save (cert, path);
    zcert_destroy (&cert);
    if (rc != 0)
        return -1;
    chmod (secret, 0600);
    return 1;
}

//  "broker", or one of the three folders, a slash and a plain name
static bool
s_name_valid (const char *name)
{
    if (strcmp (name, "broker") == 0)
        return true;
    const char *slash = strchr (name, '/');
    if (!slash || strchr (slash + 1, '/') || !slash [1] || slash [1] == '.' || strlen (slash + 1) > BS_ID_MAX)
        return false;
    size_t folder = (size_t) (slash - name);
    return (folder == 5 && strncmp (name, "nodes", 5) == 0) || (folder == 6 && strncmp (name, "admins", 6) == 0)
        || (folder == 7 && strncmp (name, "clients", 7) == 0);
}

int
bs_keys_generate (const char *dir, const char **extra, int extra_count)
{
    static const char *standard [] = {
        "broker", "nodes/catalog-1", "nodes/catalog-2", "nodes/catalog-3",
        "nodes/order-1", "nodes/order-2", "nodes/order-3",
        "admins/admin", "admins/gateway", "clients/client", NULL
    };
    if (zsys_dir_create ("%s", dir) != 0)
        return -1;
    int written = 0;
    for (int i = 0; standard [i]; i++) {
        int rc = s_generate_one (dir, standard [i]);
        if (rc < 0)
            return -1;
        written += rc;
    }
    for (int i = 0; i < extra_count; i++) {
        if (!s_name_valid (extra [i]) || strcmp (extra [i], "broker") == 0)
            return -1;
        int rc = s_generate_one (dir, extra [i]);
        if (rc < 0)
            return -1;
        written += rc;
    }
    return written;
}

//  --------------------------------------------------------------------------
//  A process's own view of the keys directory

//  A directory this user made and may write; never a symlink
static bool
s_private_dir (const char *path)
{
    if (mkdir (path, 0700) != 0 && errno != EEXIST)
        return false;
    struct stat info;
    return lstat (path, &info) == 0 && S_ISDIR (info.st_mode) && info.st_uid == geteuid ()
        && chmod (path, 0700) == 0;
}

//  Copies the public certificates of one folder ("" for the broker's) and
//  removes every secret in out's folder that is not keep's
static bool
s_export_folder (const char *dir, const char *folder, const char *out, const char *keep)
{
    char from [1100], to [1100];
    snprintf (from, sizeof from, "%s/%s", dir, folder);
    snprintf (to, sizeof to, "%s/%s", out, folder);
    if (*folder && !s_private_dir (to))
        return false;
    //  Stale secrets first: a view made earlier for another name
    DIR *d = opendir (to);
    if (!d)
        return false;
    struct dirent *entry;
    while ((entry = readdir (d))) {
        size_t n = strlen (entry->d_name);
        if (n > 7 && strcmp (entry->d_name + n - 7, "_secret") == 0) {
            char own [1200], path [1400];
            snprintf (own, sizeof own, "%s%s%.*s", folder, *folder? "/": "", (int) (n - 7), entry->d_name);
            snprintf (path, sizeof path, "%s/%s", to, entry->d_name);
            if (strcmp (own, keep) != 0 && unlink (path) != 0)
                return closedir (d), false;
        }
    }
    closedir (d);
    d = opendir (from);
    if (!d)
        return !*folder;        //  a missing folder has nothing to copy
    bool ok = true;
    while (ok && (entry = readdir (d))) {
        size_t n = strlen (entry->d_name);
        if (entry->d_name [0] == '.' || (n > 7 && strcmp (entry->d_name + n - 7, "_secret") == 0)
        ||  (!*folder && strcmp (entry->d_name, "broker") != 0))
            continue;
        char src [1400], dst [1400];
        snprintf (src, sizeof src, "%s/%s", from, entry->d_name);
        snprintf (dst, sizeof dst, "%s/%s", to, entry->d_name);
        zcert_t *cert = zcert_load (src);
        if (!cert)
            continue;           //  not a certificate
        ok = zcert_save_public (cert, dst) == 0;
        zcert_destroy (&cert);
    }
    closedir (d);
    return ok;
}

bool
bs_keys_export (const char *dir, const char *name, const char *out, char *reason, size_t reason_size)
{
    if (!s_name_valid (name)) {
        snprintf (reason, reason_size, "'%.80s' is not broker, nodes/ID, admins/NAME or clients/NAME", name);
        return false;
    }
    char path [1100], secret [1200];
    bs_keys_path (dir, name, path, sizeof path);
    snprintf (secret, sizeof secret, "%s_secret", path);
    zcert_t *own = zcert_load (secret);
    if (!own) {
        snprintf (reason, reason_size, "%.900s has no secret key for %.80s", dir, name);
        return false;
    }
    static const char *folders [] = { "", "nodes", "admins", "clients", NULL };
    errno = 0;
    bool ok = s_private_dir (out);
    for (int i = 0; ok && folders [i]; i++)
        ok = s_export_folder (dir, folders [i], out, name);
    if (ok) {
        char to [1100], to_secret [1200];
        bs_keys_path (out, name, to, sizeof to);
        snprintf (to_secret, sizeof to_secret, "%s_secret", to);
        ok = zcert_save (own, to) == 0 && chmod (to_secret, 0600) == 0;
    }
    zcert_destroy (&own);
    if (!ok)
        snprintf (reason, reason_size, "cannot write the keys of %.80s into %.900s (%s)", name, out,
                  errno? strerror (errno): "not a private directory");
    return ok;
}
