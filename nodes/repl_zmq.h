/*  repl_zmq - the replication core (repl) over ZeroMQ: its sockets, their
 *  options, CURVE, and the reading of frames.
 *
 *  It owns the PUB that carries our partitions' streams, the ROUTER that
 *  serves fetches and takes acks (the sync socket), the SUB that hears the
 *  primaries we follow, and one DEALER per source we fetch from or ack to.
 *  It implements the core's repl_io_t, checks under CURVE that a peer's
 *  key may ask for what it asks, and hands every input to the core with
 *  the monotonic clock's time.  The node reaches the core itself through
 *  repl_zmq_core for everything else (assign, defer, publish, status...).
 *
 *  Ownership and threading: one thread.  repl_zmq_new borrows the journal
 *  and the keys; the core it makes is its own (destroyed with it).  Tokens
 *  the core releases go to send, which closes them.
 */
#ifndef REPL_ZMQ_H_INCLUDED
#define REPL_ZMQ_H_INCLUDED

#include "repl.h"
#include "bs_keys.h"

typedef struct _repl_zmq_t repl_zmq_t;

//  Sends a reply that was held for acks; the callee closes the token
typedef void (repl_send_fn) (void *arg, zmq_msg_t *token, const void *data, size_t size);

//  A direct request came on the sync socket (bs_stream.h) from the peer of
//  that routing id.  allowed: its key may send one (bs_stream_may_request);
//  the callee answers with repl_zmq_reply, now or later, or not at all.
typedef void (repl_direct_fn) (void *arg, const void *peer, size_t peer_size, const void *data, size_t size,
                               bool allowed);

typedef struct {
    const char *pub_bind;           //  e.g. tcp://*:5570
    const char *sync_bind;
    int hwm;                        //  of the PUB and SUB sockets
    bs_keys_t *keys;                //  CURVE between nodes (borrowed), NULL: plain
    repl_direct_fn *direct;         //  takes direct requests (with send's arg); NULL: dropped
} repl_zmq_options_t;

//  NULL (logged) when a socket cannot bind
repl_zmq_t *repl_zmq_new (journal_t *journal, const repl_options_t *options, const repl_zmq_options_t *sockets,
                          repl_send_fn *send, void *arg);
void repl_zmq_destroy (repl_zmq_t **self_p);

//  Answers a direct request on the sync socket, to the peer of that routing
//  id; never blocks (an answer that cannot go out is lost, and the peer asks
//  again)
void repl_zmq_reply (repl_zmq_t *self, const void *peer, size_t peer_size, const void *data, size_t size);

//  The core it runs
repl_t *repl_zmq_core (repl_zmq_t *self);

//  How many poll items it needs now (grows with the sources it fetches
//  from: the caller sizes its array with this before each poll)
int repl_zmq_pollitem_count (repl_zmq_t *self);
//  Fills poll items for every socket it reads, at most max; returns how many
int repl_zmq_pollitems (repl_zmq_t *self, zmq_pollitem_t *items, int max);
//  Reads whatever input the poll found on those items into the core
void repl_zmq_on_poll (repl_zmq_t *self, zmq_pollitem_t *items, int count);

#endif
