/*  bench_pingpong - the baseline workload: bare ZeroMQ round trips to a
 *  child process that echoes every message, no cluster.
 *
 *  The child is this program again, run with --pingpong-server and the
 *  endpoints the bench's sockets bound; it ends with its parent however
 *  the parent ends.
 *
 *  Ownership: the caller owns the sockets; bench_pingpong_stop reaps the
 *  child started.  Single-threaded; interrupted is the flag the caller's
 *  signal handler sets.
 */
#ifndef BENCH_PINGPONG_H_INCLUDED
#define BENCH_PINGPONG_H_INCLUDED

#include <czmq.h>
#include <signal.h>
#include <stdbool.h>

//  In the child: echoes every message arriving on the endpoints
//  (comma-separated) until interrupted.  False when it cannot connect.
bool bench_pingpong_serve (const char *endpoints, volatile sig_atomic_t *interrupted);

//  Binds the sockets on 127.0.0.1, starts the echo process and waits for
//  one round trip on each socket.  False with an error code name
//  ("internal", "timeout") and a sentence when it cannot.
bool bench_pingpong_start (zsock_t **socks, int count, volatile sig_atomic_t *interrupted, pid_t *server_p,
                           const char **error_p, char *reason, size_t size);

//  Stops the echo process, if one was started
void bench_pingpong_stop (pid_t *server_p);

#endif
