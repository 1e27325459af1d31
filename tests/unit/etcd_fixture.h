/*  etcd_fixture.h - a real, throwaway etcd member for unit tests.
 *
 *  etcd_fixture_start runs Debian's etcd on two free loopback ports with
 *  its data in a fresh temporary folder and waits until it answers;
 *  etcd_fixture_stop kills that process (by the pid it started) and
 *  removes the folder.  The tests that use it talk to the real server, so
 *  what they show holds for the control plane's store, not for a model.
 */
#ifndef ETCD_FIXTURE_H_INCLUDED
#define ETCD_FIXTURE_H_INCLUDED

#include <czmq.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

typedef struct {
    pid_t pid;
    int client_port;
    int peer_port;
    char dir [64];
    char url [64];              //  http://127.0.0.1:<client port>
} etcd_fixture_t;

//  A port the kernel has just handed out and nobody holds now
static int
etcd_fixture_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t size = sizeof address;
    int port = -1;
    if (fd >= 0 && bind (fd, (struct sockaddr *) &address, sizeof address) == 0
    &&  getsockname (fd, (struct sockaddr *) &address, &size) == 0)
        port = ntohs (address.sin_port);
    if (fd >= 0)
        close (fd);
    return port;
}

//  True when etcd answers a health check within the deadline
static bool
etcd_fixture_wait (etcd_fixture_t *self, int64_t deadline_ms)
{
    char command [256];
    snprintf (command, sizeof command,
              "curl -sf -m 1 -X POST -d '{}' %s/v3/maintenance/status > /dev/null 2>&1", self->url);
    while (zclock_mono () < deadline_ms) {
        int status;
        if (waitpid (self->pid, &status, WNOHANG) == self->pid)
            return false;       //  it died
        if (system (command) == 0)
            return true;
        zclock_sleep (50);
    }
    return false;
}

static bool
etcd_fixture_start (etcd_fixture_t *self)
{
    memset (self, 0, sizeof *self);
    snprintf (self->dir, sizeof self->dir, "/tmp/bookstore-etcd.XXXXXX");
    if (!mkdtemp (self->dir))
        return false;
    self->client_port = etcd_fixture_free_port ();
    self->peer_port = etcd_fixture_free_port ();
    if (self->client_port <= 0 || self->peer_port <= 0 || self->client_port == self->peer_port)
        return false;
    snprintf (self->url, sizeof self->url, "http://127.0.0.1:%d", self->client_port);
    char data [128], log [128], peer [64], cluster [96];
    snprintf (data, sizeof data, "%s/data", self->dir);
    snprintf (log, sizeof log, "%s/etcd.log", self->dir);
    snprintf (peer, sizeof peer, "http://127.0.0.1:%d", self->peer_port);
    snprintf (cluster, sizeof cluster, "unit=%s", peer);
    self->pid = fork ();
    if (self->pid == 0) {
        FILE *out = freopen (log, "w", stdout);
        (void) out;
        dup2 (fileno (stdout), fileno (stderr));
        execlp ("etcd", "etcd", "--name", "unit", "--data-dir", data,
                "--listen-client-urls", self->url, "--advertise-client-urls", self->url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", cluster, (char *) NULL);
        _exit (127);
    }
    if (self->pid < 0)
        return false;
    if (!etcd_fixture_wait (self, zclock_mono () + 20000)) {
        fprintf (stderr, "  etcd did not start on %s; its log is %s\n", self->url, log);
        return false;
    }
    return true;
}

static void
etcd_fixture_stop (etcd_fixture_t *self)
{
    if (self->pid > 0) {
        kill (self->pid, SIGCONT);
        kill (self->pid, SIGKILL);
        waitpid (self->pid, NULL, 0);
        self->pid = 0;
    }
    if (self->dir [0]) {
        char command [128];
        snprintf (command, sizeof command, "rm -rf '%s'", self->dir);
        if (system (command) != 0)
            fprintf (stderr, "  could not remove %s\n", self->dir);
        self->dir [0] = 0;
    }
}

#endif
