/*  bs_keys - certificates, CURVE sockets and a ZAP handler with roles  */
#include "bs_keys.h"

#include <dirent.h>
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
    //  The brokers of a pair share the broker certificate
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
                            || (strcmp (domain? domain: "", "nodes") == 0 && strncmp (user, "node:", 5) == 0)
                            || (strcmp (domain? domain: "", "brokers") == 0 && strncmp (user, "broker:", 7) == 0));
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

bool
bs_keys_connect_to (bs_keys_t *self, zsock_t *sock, const char *server)
{
    if (!self)
        return true;
    char path [1100];
    if (strcmp (server, "broker") == 0)
        bs_keys_path (self->dir, "broker", path, sizeof path);
    else {
        char name [300];
        snprintf (name, sizeof name, "nodes/%s", server);
        bs_keys_path (self->dir, name, path, sizeof path);
    }
    zcert_t *peer = zcert_load (path);
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
        if (strncmp (extra [i], "nodes/", 6) != 0 && strncmp (extra [i], "admins/", 7) != 0
        &&  strncmp (extra [i], "clients/", 8) != 0)
            return -1;
        if (strstr (extra [i], "..") || strchr (extra [i] + (strchr (extra [i], '/') - extra [i]) + 1, '/'))
            return -1;
        int rc = s_generate_one (dir, extra [i]);
        if (rc < 0)
            return -1;
        written += rc;
    }
    return written;
}
