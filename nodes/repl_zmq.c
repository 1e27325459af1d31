/*  repl_zmq - the replication core over ZeroMQ sockets  */
#include "repl_zmq.h"
#include "bs_alloc.h"
#include "bs_sizes.h"

#include <czmq.h>
#include <string.h>

#define DRAIN_MAX        2000       //  messages read per socket per poll
#define REQUESTS_MAX     64         //  fetches and acks served per poll
//  Answers to our fetches read per source per poll.  A snapshot arrives as
//  many parts, each loaded in a transaction of its own (up to 1,000
//  records and an fsync): read in one burst, a large one kept a follower's
//  loop busy for seconds, and the broker declared it dead.  One a turn,
//  the loop turns again at once while more are queued.
#define ANSWERS_MAX      1

//  The DEALER to a source's sync socket
typedef struct {
    char endpoint [BS_ENDPOINT_MAX + 1];
    zsock_t *sock;
} link_t;

//  A partition's stream we hear, and from where
typedef struct {
    char partition [BS_ID_MAX + 1];
    char pub [BS_ENDPOINT_MAX + 1];
} hearing_t;

struct _repl_zmq_t {
    repl_t *core;
    char id [BS_ID_MAX + 1];
    bs_keys_t *keys;
    repl_send_fn *send;
    repl_direct_fn *direct;
    void *send_arg;
    zsock_t *pub, *router, *sub;
    link_t **links;             //  each allocated on its own; grows
    int link_count, link_cap;
    hearing_t *hearing;
    int hearing_count, hearing_cap;
};

//  --------------------------------------------------------------------------
//  The core's I/O

static void
s_send_sync (void *arg, const char *endpoint, const char *server, const void *data, size_t size)
{
    repl_zmq_t *self = (repl_zmq_t *) arg;
    link_t *link = NULL;
    for (int i = 0; i < self->link_count && !link; i++)
        if (strcmp (self->links [i]->endpoint, endpoint) == 0)
            link = self->links [i];
    if (!link) {
        bs_grow ((void **) &self->links, &self->link_cap, self->link_count, sizeof (link_t *));
        link = calloc (1, sizeof (link_t));
        if (!link)
            abort ();
        self->links [self->link_count++] = link;
        snprintf (link->endpoint, sizeof link->endpoint, "%s", endpoint);
        link->sock = zsock_new (ZMQ_DEALER);
        zsock_set_identity (link->sock, self->id);
        zsock_set_linger (link->sock, 0);
        zsock_set_sndhwm (link->sock, 0);
        zsock_set_rcvhwm (link->sock, 0);
        zsock_set_maxmsgsize (link->sock, BS_MAX_BODY + 65536);
        //  The server key is taken at connect time, per source
        bs_keys_connect_to (self->keys, link->sock, server);
        zsock_connect (link->sock, "%s", endpoint);
    }
    //  Never blocks: a fetch or ack that cannot go out now is sent again
    //  on the next heartbeat
    zmq_send (zsock_resolve (link->sock), data, size, ZMQ_DONTWAIT);
}

static void
s_answer (void *arg, const char *peer, const void *data, size_t size)
{
    repl_zmq_t *self = (repl_zmq_t *) arg;
    void *router = zsock_resolve (self->router);
    zmq_send (router, peer, strlen (peer), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (router, data, size, ZMQ_DONTWAIT);
}

static void
s_publish (void *arg, const char *partition, int kind, const void *data, size_t size)
{
    repl_zmq_t *self = (repl_zmq_t *) arg;
    char topic [BS_STREAM_TOPIC_MAX + 1];
    size_t topic_size = bs_stream_topic (partition, topic);
    if (!topic_size)
        return;
    uint8_t kind_byte = (uint8_t) kind;
    void *pub = zsock_resolve (self->pub);
    zmq_send (pub, topic, topic_size, ZMQ_SNDMORE);
    zmq_send (pub, &kind_byte, 1, ZMQ_SNDMORE);
    zmq_send (pub, data, size, 0);
}

static void
s_subscribe (void *arg, const char *partition, const char *pub, const char *primary)
{
    repl_zmq_t *self = (repl_zmq_t *) arg;
    char topic [BS_STREAM_TOPIC_MAX + 1];
    if (!bs_stream_topic (partition, topic))
        return;
    bs_grow ((void **) &self->hearing, &self->hearing_cap, self->hearing_count, sizeof (hearing_t));
    hearing_t *hearing = &self->hearing [self->hearing_count++];
    snprintf (hearing->partition, sizeof hearing->partition, "%s", partition);
    snprintf (hearing->pub, sizeof hearing->pub, "%s", pub);
    //  Connecting twice to one endpoint is harmless in libzmq.  The server
    //  key is taken at connect time, per publisher.
    bs_keys_connect_to (self->keys, self->sub, primary);
    zsock_connect (self->sub, "%s", pub);
    zsock_set_subscribe (self->sub, topic);
}

static void
s_unsubscribe (void *arg, const char *partition, const char *pub)
{
    repl_zmq_t *self = (repl_zmq_t *) arg;
    char topic [BS_STREAM_TOPIC_MAX + 1];
    if (!bs_stream_topic (partition, topic))
        return;
    zsock_set_unsubscribe (self->sub, topic);
    bool shared = false;
    int i = 0;
    while (i < self->hearing_count) {
        hearing_t *hearing = &self->hearing [i];
        if (strcmp (hearing->partition, partition) == 0 && strcmp (hearing->pub, pub) == 0)
            *hearing = self->hearing [--self->hearing_count];
        else {
            shared |= strcmp (hearing->pub, pub) == 0;
            i++;
        }
    }
    //  Stop hearing the old primary, unless another partition uses it
    if (!shared)
        zsock_disconnect (self->sub, "%s", pub);
}

static void
s_release (void *arg, zmq_msg_t *token, const void *data, size_t size)
{
    repl_zmq_t *self = (repl_zmq_t *) arg;
    self->send (self->send_arg, token, data, size);
}

//  --------------------------------------------------------------------------
//  Reading the sockets

//  The sync socket names a follower by its routing id.  With CURVE the
//  name must be the connection's key (its ZAP User-Id "node:<name>"), and
//  only nodes of the partition's service fetch or ack it: catalog nodes
//  (keys named catalog...) the catalog, order nodes the order partitions.
//  In plain mode the socket listens on loopback alone and names are
//  believed.
static bool
s_peer_allowed (repl_zmq_t *self, zmq_msg_t *identity, zmq_msg_t *body)
{
    if (!self->keys)
        return true;
    bs_err_t err;
    char reason [128];
    bs_msg_t *msg = bs_msg_decode (zmq_msg_data (body), zmq_msg_size (body), &err, reason, sizeof reason);
    if (!msg)
        return true;                        //  the core drops it as malformed
    const char *partition = bs_msg_str (msg, BS_FIELD_partition);
    const char *name = "";
    const char *role = bs_keys_role (body, &name);
    bool catalog_key = strncmp (name, "catalog", 7) == 0;
    bool ok = strcmp (role, "node") == 0
           && strlen (name) == zmq_msg_size (identity) && memcmp (name, zmq_msg_data (identity), strlen (name)) == 0
           && catalog_key == (strcmp (partition, "catalog") == 0);
    if (!ok) {
        static int64_t last_warning;
        if (zclock_mono () - last_warning > 5000) {
            last_warning = zclock_mono ();
            zsys_warning ("%s: refused a replication request for %s from key '%s' calling itself '%.*s'", self->id,
                          partition, name, (int) (zmq_msg_size (identity) < 64? zmq_msg_size (identity): 64),
                          (const char *) zmq_msg_data (identity));
        }
    }
    bs_msg_destroy (&msg);
    return ok;
}

//  A routing id the core can name: our DEALERs use their node id
static bool
s_peer_name (zmq_msg_t *identity, char *peer)
{
    size_t size = zmq_msg_size (identity);
    if (size == 0 || size > BS_ID_MAX || memchr (zmq_msg_data (identity), 0, size))
        return false;
    memcpy (peer, zmq_msg_data (identity), size);
    peer [size] = 0;
    return true;
}

//  A direct request: [routing id] [REPL_STREAM_REQUEST] [body].  Under
//  CURVE the key decides (bs_stream_may_request); the node answers.
static void
s_on_direct (repl_zmq_t *self, zmq_msg_t *identity, zmq_msg_t *body)
{
    const char *name = "";
    const char *role = self->keys? bs_keys_role (body, &name): "";
    bool allowed = bs_stream_may_request (self->keys != NULL, role, name, zmq_msg_data (identity),
                                          zmq_msg_size (identity));
    if (self->direct)
        self->direct (self->send_arg, zmq_msg_data (identity), zmq_msg_size (identity), zmq_msg_data (body),
                      zmq_msg_size (body), allowed);
}

static void
s_on_router (repl_zmq_t *self)
{
    void *router = zsock_resolve (self->router);
    //  Serving a fetch can be heavy: take a few per turn so that the node's
    //  own work (and its heartbeats) go on
    for (int n = 0; n < REQUESTS_MAX; n++) {
        zmq_msg_t identity, frames [2];
        zmq_msg_init (&identity);
        if (zmq_msg_recv (&identity, router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&identity);
            return;
        }
        //  One frame (a fetch or ack) or two (a direct request)
        int count = 0;
        bool more = zmq_msg_more (&identity), framed = more;
        while (more) {
            zmq_msg_t frame;
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, router, 0) < 0) {
                zmq_msg_close (&frame);
                framed = false;
                break;
            }
            more = zmq_msg_more (&frame);
            if (count < 2)
                frames [count++] = frame;
            else {
                zmq_msg_close (&frame);     //  swallow extra frames
                framed = false;
            }
        }
        char peer [BS_ID_MAX + 1];
        if (framed && count == 2 && zmq_msg_size (&frames [0]) == 1
        &&  *(uint8_t *) zmq_msg_data (&frames [0]) == REPL_STREAM_REQUEST)
            s_on_direct (self, &identity, &frames [1]);
        else
        if (!framed || count != 1 || !s_peer_name (&identity, peer))
            zsys_warning ("%s: dropped a malformed replication request", self->id);
        else
        if (s_peer_allowed (self, &identity, &frames [0]))
            repl_on_request (self->core, peer, zmq_msg_data (&frames [0]), zmq_msg_size (&frames [0]), zclock_mono ());
        zmq_msg_close (&identity);
        for (int i = 0; i < count; i++)
            zmq_msg_close (&frames [i]);
    }
}

static void
s_on_sub (repl_zmq_t *self)
{
    void *sub = zsock_resolve (self->sub);
    repl_batch_begin (self->core);
    for (int n = 0; n < DRAIN_MAX; n++) {
        zmq_msg_t frames [3];
        int count = 0;
        bool more = true;
        while (more) {
            zmq_msg_t frame;
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, sub, count? 0: ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&frame);
                break;
            }
            more = zmq_msg_more (&frame);
            if (count < 3)
                frames [count++] = frame;   //  extra frames are dropped
            else
                zmq_msg_close (&frame);
        }
        if (count == 0)
            break;
        char partition [BS_ID_MAX + 1];
        if (count == 3 && zmq_msg_size (&frames [1]) == 1
        &&  bs_stream_partition (zmq_msg_data (&frames [0]), zmq_msg_size (&frames [0]), partition))
            repl_on_stream (self->core, partition, *(uint8_t *) zmq_msg_data (&frames [1]),
                            zmq_msg_data (&frames [2]), zmq_msg_size (&frames [2]), zclock_mono ());
        for (int i = 0; i < count; i++)
            zmq_msg_close (&frames [i]);
    }
    //  What a burst brought is applied in one transaction per partition
    repl_batch_end (self->core, zclock_mono ());
}

static void
s_on_link (repl_zmq_t *self, link_t *link)
{
    for (int n = 0; n < ANSWERS_MAX; n++) {
        zmsg_t *msg = zmsg_recv_nowait (link->sock);
        if (!msg)
            return;
        zframe_t *body = zmsg_first (msg);
        if (zmsg_size (msg) == 1)
            repl_on_answer (self->core, link->endpoint, zframe_data (body), zframe_size (body), zclock_mono ());
        else
            zsys_warning ("%s: dropped a malformed replication reply", self->id);
        zmsg_destroy (&msg);
    }
}

//  --------------------------------------------------------------------------

repl_zmq_t *
repl_zmq_new (journal_t *journal, const repl_options_t *options, const repl_zmq_options_t *sockets,
              repl_send_fn *send, void *arg)
{
    repl_zmq_t *self = calloc (1, sizeof (repl_zmq_t));
    if (!self)
        abort ();
    snprintf (self->id, sizeof self->id, "%s", options->id);
    self->keys = sockets->keys;
    self->send = send;
    self->direct = sockets->direct;
    self->send_arg = arg;
    self->pub = zsock_new (ZMQ_PUB);
    self->router = zsock_new (ZMQ_ROUTER);
    self->sub = zsock_new (ZMQ_SUB);
    //  PUB drops silently at its high-water mark; gaps are fetched back,
    //  but a generous mark keeps that rare
    zsock_set_sndhwm (self->pub, sockets->hwm);
    zsock_set_rcvhwm (self->sub, sockets->hwm);
    zsock_set_maxmsgsize (self->sub, BS_MAX_BODY + 65536);
    zsock_set_maxmsgsize (self->router, 65536);
    //  A follower that restarts comes back under its id and takes its old
    //  connection over; under CURVE every request is checked against the
    //  connection's key (s_peer_allowed), so a takeover by another key
    //  gains nothing
    zsock_set_router_handover (self->router, 1);
    //  What waits for one follower: a fetch's reply, or a snapshot sent in
    //  one go as messages of 2,000 records, so 10,000 messages hold a
    //  partition of 20 million records; a follower that stops reading
    //  loses what is past the mark (and fetches again), never the node's
    //  memory.  It sends one fetch or ack at a time.
    zsock_set_sndhwm (self->router, 10000);
    zsock_set_rcvhwm (self->router, 1000);
    zsock_set_linger (self->pub, 0);
    zsock_set_linger (self->router, 0);
    zsock_set_linger (self->sub, 0);
    bs_keys_serve (sockets->keys, self->pub, "nodes");
    bs_keys_serve (sockets->keys, self->router, "nodes");
    if (zsock_bind (self->pub, "%s", sockets->pub_bind) < 0
    ||  zsock_bind (self->router, "%s", sockets->sync_bind) < 0) {
        zsys_error ("%s: cannot bind %s / %s: %s", self->id, sockets->pub_bind, sockets->sync_bind,
                    zmq_strerror (zmq_errno ()));
        repl_zmq_destroy (&self);
        return NULL;
    }
    repl_io_t io = {
        .arg = self, .send_sync = s_send_sync, .answer = s_answer, .publish = s_publish,
        .subscribe = s_subscribe, .unsubscribe = s_unsubscribe, .release = s_release,
    };
    self->core = repl_new (journal, options, &io);
    return self;
}

void
repl_zmq_destroy (repl_zmq_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    repl_zmq_t *self = *self_p;
    repl_destroy (&self->core);
    for (int i = 0; i < self->link_count; i++) {
        zsock_destroy (&self->links [i]->sock);
        free (self->links [i]);
    }
    free (self->links);
    free (self->hearing);
    zsock_destroy (&self->pub);
    zsock_destroy (&self->router);
    zsock_destroy (&self->sub);
    free (self);
    *self_p = NULL;
}

void
repl_zmq_reply (repl_zmq_t *self, const void *peer, size_t peer_size, const void *data, size_t size)
{
    void *router = zsock_resolve (self->router);
    uint8_t kind = REPL_STREAM_REPLY;
    if (zmq_send (router, peer, peer_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    zmq_send (router, &kind, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (router, data, size, ZMQ_DONTWAIT);
}

repl_t *
repl_zmq_core (repl_zmq_t *self)
{
    return self->core;
}

int
repl_zmq_pollitem_count (repl_zmq_t *self)
{
    return 2 + self->link_count;
}

int
repl_zmq_pollitems (repl_zmq_t *self, zmq_pollitem_t *items, int max)
{
    int n = 0;
    if (n < max)
        items [n++] = (zmq_pollitem_t) { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 };
    if (n < max)
        items [n++] = (zmq_pollitem_t) { zsock_resolve (self->sub), 0, ZMQ_POLLIN, 0 };
    for (int i = 0; i < self->link_count && n < max; i++)
        items [n++] = (zmq_pollitem_t) { zsock_resolve (self->links [i]->sock), 0, ZMQ_POLLIN, 0 };
    return n;
}

void
repl_zmq_on_poll (repl_zmq_t *self, zmq_pollitem_t *items, int count)
{
    for (int i = 0; i < count; i++) {
        if (!(items [i].revents & ZMQ_POLLIN))
            continue;
        if (items [i].socket == zsock_resolve (self->router))
            s_on_router (self);
        else
        if (items [i].socket == zsock_resolve (self->sub))
            s_on_sub (self);
        else
            for (int k = 0; k < self->link_count; k++)
                if (items [i].socket == zsock_resolve (self->links [k]->sock))
                    s_on_link (self, self->links [k]);
    }
}
