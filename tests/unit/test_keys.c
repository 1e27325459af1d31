/*  test_keys - what a server may bind without keys  */
#include "bs_keys.h"
#include "testing.h"

#include <string.h>

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

int
main (void)
{
    RUN (test_plain_mode_binds_loopback);
    RUN (test_plain_mode_refuses_other_addresses);
    return DONE ();
}
