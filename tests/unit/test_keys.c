/*  test_keys - what a server may bind without keys; one process's view of
 *  the keys directory  */
#include "bs_keys.h"
#include "testing.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  bind ENDPOINT in plain mode: true when taken, the endpoint bound in out
static bool
s_bind (bool insecure, const char *endpoint, char *out, size_t size)
{
    char reason [400] = "";
    bool ok = bs_keys_bind_endpoint (NULL, insecure, endpoint, out, size, reason, sizeof reason);
    CHECK (ok || strstr (reason, endpoint));
    return ok;
}

//  Every address becomes loopback; loopback and local transports stay
static void
test_plain_mode_binds_loopback (void)
{
    char out [256];
    CHECK (s_bind (false, "tcp://*:5555", out, sizeof out) && strcmp (out, "tcp://127.0.0.1:5555") == 0);
    CHECK (s_bind (false, "tcp://0.0.0.0:5570", out, sizeof out) && strcmp (out, "tcp://127.0.0.1:5570") == 0);
    CHECK (s_bind (false, "tcp://127.0.0.1:5555", out, sizeof out) && strcmp (out, "tcp://127.0.0.1:5555") == 0);
    CHECK (s_bind (false, "tcp://127.1.2.3:5555", out, sizeof out));
    CHECK (s_bind (false, "tcp://localhost:5555", out, sizeof out));
    CHECK (s_bind (false, "tcp://[::1]:5555", out, sizeof out));
    CHECK (s_bind (false, "tcp://lo:5555", out, sizeof out));
    CHECK (s_bind (false, "ipc:///tmp/x", out, sizeof out) && strcmp (out, "ipc:///tmp/x") == 0);
    CHECK (s_bind (false, "inproc://x", out, sizeof out));
}

//  Another address is refused, with a sentence naming it, unless insecure
static void
test_plain_mode_refuses_other_addresses (void)
{
    char out [256];
    CHECK (!s_bind (false, "tcp://192.0.2.2:5555", out, sizeof out));
    CHECK (!s_bind (false, "tcp://eth0:5555", out, sizeof out));
    CHECK (!s_bind (false, "tcp://127.0.0.1.example.com:5555", out, sizeof out));
    CHECK (!s_bind (false, "tcp://[::]:5555", out, sizeof out));
    CHECK (!s_bind (false, "5555", out, sizeof out));
    CHECK (s_bind (true, "tcp://192.0.2.2:5555", out, sizeof out) && strcmp (out, "tcp://192.0.2.2:5555") == 0);
    CHECK (s_bind (true, "tcp://*:5555", out, sizeof out) && strcmp (out, "tcp://*:5555") == 0);
}

static bool
s_exists (const char *dir, const char *name)
{
    char path [600];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    return access (path, F_OK) == 0;
}

//  A view holds every public certificate and one secret; a view made again
//  for another name loses the first name's secret
static void
test_export_gives_one_secret (void)
{
    char root [] = "/tmp/test_keys_XXXXXX";
    CHECK (mkdtemp (root));
    char dir [300], out [300], reason [1300] = "";
    snprintf (dir, sizeof dir, "%s/keys", root);
    snprintf (out, sizeof out, "%s/view", root);
    CHECK_EQ (bs_keys_generate (dir, NULL, 0), 10);
    CHECK (bs_keys_export (dir, "nodes/catalog-2", out, reason, sizeof reason));
    CHECK (s_exists (out, "broker") && s_exists (out, "nodes/order-1") && s_exists (out, "admins/admin")
           && s_exists (out, "clients/client"));
    CHECK (s_exists (out, "nodes/catalog-2_secret"));
    CHECK (!s_exists (out, "broker_secret") && !s_exists (out, "nodes/catalog-1_secret")
           && !s_exists (out, "admins/admin_secret"));
    struct stat info;
    CHECK (stat (out, &info) == 0 && (info.st_mode & 0777) == 0700);
    //  The view serves as a keys directory for its process
    char path [400];
    bs_keys_path (out, "nodes/catalog-2", path, sizeof path);
    bs_keys_t *keys = bs_keys_new (out, path);
    CHECK (keys);
    bs_keys_destroy (&keys);
    CHECK (bs_keys_export (dir, "broker", out, reason, sizeof reason));
    CHECK (s_exists (out, "broker_secret") && !s_exists (out, "nodes/catalog-2_secret"));
    //  Names outside the layout, or without a secret, are refused
    CHECK (!bs_keys_export (dir, "nodes/../broker", out, reason, sizeof reason) && strstr (reason, "is not"));
    CHECK (!bs_keys_export (dir, "secrets/x", out, reason, sizeof reason));
    CHECK (!bs_keys_export (dir, "nodes/catalog-9", out, reason, sizeof reason)
           && strstr (reason, "no secret key for nodes/catalog-9"));
    //  A symlink in place of the view is never written through
    char link [300];
    snprintf (link, sizeof link, "%s/link", root);
    CHECK (symlink (dir, link) == 0);
    CHECK (!bs_keys_export (dir, "nodes/catalog-2", link, reason, sizeof reason));
    char cmd [400];
    snprintf (cmd, sizeof cmd, "rm -rf %s", root);
    CHECK (system (cmd) == 0);
}

int
main (void)
{
    RUN (test_plain_mode_binds_loopback);
    RUN (test_plain_mode_refuses_other_addresses);
    RUN (test_export_gives_one_secret);
    return DONE ();
}
