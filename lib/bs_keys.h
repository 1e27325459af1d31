/*  bs_keys - CURVE security for a process's sockets.
 *
 *  A keys directory (made by `bookstore keygen DIR`) holds czmq certificates
 *  (a public file NAME and a secret file NAME_secret):
 *
 *      broker                  the broker's
 *      nodes/<node-id>         one per node
 *      admins/<name>           clients that may also change the catalog
 *      clients/<name>          clients that may read and buy
 *
 *  Every process loads its own certificate.  Servers (the broker's sockets,
 *  a node's replication sockets) accept only the keys the directory lists,
 *  per ZAP domain: "nodes" takes node keys alone, "clients" takes every key
 *  (every broker of a cluster uses the one broker key).
 *  Each accepted connection carries a ZMQ User-Id "<role>:<name>" (admin,
 *  client or node), which servers read to authorise requests.
 *
 *  Every function takes a NULL bs_keys_t for plain mode and then does
 *  nothing, so call sites need no special case.
 *
 *  Ownership: bs_keys_new returns an object the caller destroys with
 *  bs_keys_destroy; it starts the process's ZAP handler on the first
 *  bs_keys_serve and stops it on destroy.  Sockets are borrowed.
 */
#ifndef BS_KEYS_H_INCLUDED
#define BS_KEYS_H_INCLUDED

#include "bs_settings.h"

#include <czmq.h>

typedef struct _bs_keys_t bs_keys_t;

//  dir: the keys directory; cert: this process's certificate (the public
//  file's path; its _secret beside it).  Returns NULL (and logs why) when
//  either cannot be read.
bs_keys_t *bs_keys_new (const char *dir, const char *cert);
void bs_keys_destroy (bs_keys_t **self_p);

//  Reads a program's "keys" and "cert" settings.  Without a keys directory
//  *keys_p is NULL: plain mode, which servers (quiet false) log loudly.
//  Otherwise loads "cert", or <keys>/<default_cert> ("broker",
//  "nodes/<id>", "clients/client"...).  False (logged) when it cannot.
bool bs_keys_open (bs_settings_t *settings, const char *default_cert, bool quiet, bs_keys_t **keys_p);

//  The path of a certificate in the keys directory: "broker",
//  "nodes/<id>", "admins/<name>" or "clients/<name>"
void bs_keys_path (const char *dir, const char *name, char *path, size_t size);

//  The endpoint a server may bind, into out.  With keys: endpoint as given.
//  In plain mode nothing authenticates a peer, so servers listen on this
//  machine alone: "*" and "0.0.0.0" become 127.0.0.1 (said in the log, once
//  per endpoint), and any other address that is not loopback (127.x,
//  localhost, ::1, lo, ipc://, inproc://) is refused: false, with the
//  sentence in reason.  insecure (the programs' --insecure) lifts the rule
//  and the caller warns at start (bs_keys_warn_insecure).
bool bs_keys_bind_endpoint (bs_keys_t *self, bool insecure, const char *endpoint,
                            char *out, size_t size, char *reason, size_t reason_size);

//  Logs, in plain mode with insecure set, that the program's ports are open
//  to whoever can reach them.  Does nothing with keys.
void bs_keys_warn_insecure (bs_keys_t *self, bool insecure, const char *program);

//  Makes sock a CURVE server for domain ("nodes" or "clients").  Call
//  before binding.
void bs_keys_serve (bs_keys_t *self, zsock_t *sock, const char *domain);

//  Makes sock a CURVE client of a server: "broker" or a node id.  Call
//  before each connect (the server key is taken at connect time).  Returns
//  false (logged) when the directory has no such certificate.
bool bs_keys_connect_to (bs_keys_t *self, zsock_t *sock, const char *server);

//  The role of the peer that sent a message on a CURVE server socket:
//  "admin", "client", "node", or "" in plain mode.  name_p (optional) gets
//  its name.
const char *bs_keys_role (const zmq_msg_t *msg, const char **name_p);

//  The public key of node NAME as the keys directory lists it (Z85, 40
//  characters) into out (at least 41 bytes).  False in plain mode (NULL)
//  or when the directory has no such node.
bool bs_keys_node_public (bs_keys_t *self, const char *name, char *out, size_t size);

//  Writes the standard set of certificates into dir (broker; nodes
//  catalog-1..3 and order-1..3; admins/admin and admins/gateway;
//  clients/client), keeping any that exist.  Extra names ("nodes/x",
//  "clients/y") add more.  Returns the number written, -1 on error.
int bs_keys_generate (const char *dir, const char **extra, int extra_count);

//  Writes into out the keys directory one process needs: every public
//  certificate of dir, and the secret of name ("broker", "nodes/<id>",
//  "admins/<name>" or "clients/<name>") alone, 0600 in a 0700 directory.
//  A secret of any other name already in out is removed, so a process
//  given out can never read another's secret key.  False, with the
//  sentence in reason, when name is not of that form, dir lacks its
//  secret, or out is not a directory this user can write (a symlink is
//  refused).
bool bs_keys_export (const char *dir, const char *name, const char *out, char *reason, size_t reason_size);

#endif
