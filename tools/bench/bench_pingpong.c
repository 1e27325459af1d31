/*  bench_pingpong - the echo process and its start  */
#include "bench_pingpong.h"
#include "bench_settings.h"
#include "bs_alloc.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

//  Room for one endpoint of a bound socket, "tcp://127.0.0.1:65535,"
#define ENDPOINT_ROOM 32

bool
bench_pingpong_serve (const char *endpoints, volatile sig_atomic_t *interrupted)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (router, 0);
    zsock_set_sndhwm (router, 100000);
    zsock_set_rcvhwm (router, 100000);
    char *copy = bs_strdup (endpoints), *save = NULL;
    bool ok = true;
    for (char *ep = strtok_r (copy, ",", &save); ep; ep = strtok_r (NULL, ",", &save))
        if (zsock_connect (router, "%s", ep) != 0) {
            fprintf (stderr, "bookstore-bench: cannot connect to %s\n", ep);
            ok = false;
        }
    free (copy);
    void *sock = zsock_resolve (router);
    zmq_msg_t part;
    zmq_msg_init (&part);
    while (ok && !*interrupted) {
        if (zmq_msg_recv (&part, sock, 0) < 0)
            continue;           //  EINTR: the loop looks at the flag
        //  Frames go back as they came, the routing id first
        zmq_msg_send (&part, sock, zmq_msg_more (&part)? ZMQ_SNDMORE: 0);
    }
    zmq_msg_close (&part);
    zsock_destroy (&router);
    return ok;
}

bool
bench_pingpong_start (zsock_t **socks, int count, volatile sig_atomic_t *interrupted, pid_t *server_p,
                      const char **error_p, char *reason, size_t size)
{
    *error_p = "internal";
    char endpoints [BENCH_MAX_SOCKETS * ENDPOINT_ROOM] = "";
    if (count > BENCH_MAX_SOCKETS) {
        snprintf (reason, size, "more than %d sockets", BENCH_MAX_SOCKETS);
        return false;
    }
    for (int i = 0; i < count; i++) {
        int port = zsock_bind (socks [i], "tcp://127.0.0.1:*");
        if (port < 0) {
            snprintf (reason, size, "cannot bind a socket on 127.0.0.1");
            return false;
        }
        size_t n = strlen (endpoints);
        snprintf (endpoints + n, sizeof endpoints - n, "%stcp://127.0.0.1:%d", i? ",": "", port);
    }
    char exe [4096];
    ssize_t len = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        snprintf (reason, size, "cannot find this program's path");
        return false;
    }
    exe [len] = 0;
    pid_t parent = getpid ();
    *server_p = fork ();
    if (*server_p < 0) {
        snprintf (reason, size, "cannot start the echo process: %s", strerror (errno));
        return false;
    }
    if (*server_p == 0) {
        //  The echo process ends with us, however we end
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        if (getppid () != parent)
            _exit (1);
        execl (exe, "bookstore-bench", "--pingpong-server", endpoints, (char *) NULL);
        _exit (127);
    }
    //  One round trip per socket before the clock starts
    *error_p = "timeout";
    for (int i = 0; i < count; i++) {
        void *sock = zsock_resolve (socks [i]);
        const char *ping = "ping";
        int64_t deadline = zclock_mono () + 5000;
        bool answered = false;
        //  A bound DEALER holds messages back until a peer connects
        zsock_set_sndtimeo (socks [i], 5000);
        if (zmq_send (sock, "", 0, ZMQ_SNDMORE) < 0) {
            snprintf (reason, size, "the echo process did not connect");
            return false;
        }
        zmq_send (sock, ping, strlen (ping), 0);
        zsock_set_sndtimeo (socks [i], -1);
        while (!answered && zclock_mono () < deadline && !*interrupted) {
            zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
            if (zmq_poll (&item, 1, 100) > 0) {
                zmsg_t *msg = zmsg_recv (socks [i]);
                answered = msg != NULL;
                zmsg_destroy (&msg);
            }
        }
        if (!answered) {
            snprintf (reason, size, "the echo process did not answer");
            return false;
        }
    }
    return true;
}

void
bench_pingpong_stop (pid_t *server_p)
{
    if (*server_p <= 0)
        return;
    kill (*server_p, SIGTERM);
    waitpid (*server_p, NULL, 0);
    *server_p = 0;
}
