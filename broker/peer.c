/*  peer - Binary Star state machine and the peer link  */
#include "peer.h"
#include "bs_monitor.h"
#include "bs_sizes.h"

#include <czmq.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    bool heard;                 //  ever
    char id [BS_ID_MAX + 1];
    char endpoint [256];
    bool backup;
    peer_state_t state;
    uint64_t epoch;
    int nodes;
    char primary [BS_ID_MAX + 1];   //  the catalog primary it named
    int64_t expiry;             //  silent from then on
} peer_view_t;

struct _peer_t {
    char id [BS_ID_MAX + 1];
    char advertise [256];
    char mute_file [256];
    bool backup;
    bool alone;
    int heartbeat_ms, liveness;
    peer_state_t state;
    int64_t started;
    zsock_t *pub, *sub;
    bs_monitor_t *disconnects;
    bool muted;
    uint64_t epoch;             //  as last published
    int nodes;
    char primary [BS_ID_MAX + 1];
    peer_view_t peer;
};

static const char *s_names [] = { "", "primary", "backup", "active", "passive" };

const char *
peer_state_name (peer_state_t state)
{
    return state >= PEER_STATE_PRIMARY && state <= PEER_STATE_PASSIVE? s_names [state]: "?";
}

static peer_state_t
s_state_parse (const char *name)
{
    for (int i = PEER_STATE_PRIMARY; i <= PEER_STATE_PASSIVE; i++)
        if (strcmp (name, s_names [i]) == 0)
            return (peer_state_t) i;
    return 0;
}

peer_t *
peer_new (const peer_options_t *options)
{
    peer_t *self = calloc (1, sizeof (peer_t));
    if (!self)
        abort ();
    snprintf (self->id, sizeof self->id, "%s", options->id? options->id: "broker");
    snprintf (self->advertise, sizeof self->advertise, "%s", options->advertise? options->advertise: "");
    snprintf (self->mute_file, sizeof self->mute_file, "%s", options->mute_file? options->mute_file: "");
    self->backup = options->backup;
    self->heartbeat_ms = options->heartbeat_ms;
    self->liveness = options->liveness;
    self->started = zclock_mono ();
    self->peer.nodes = -1;
    self->alone = !options->connect || !*options->connect;
    if (self->alone) {
        self->state = PEER_STATE_ACTIVE;
        return self;
    }
    self->state = self->backup? PEER_STATE_BACKUP: PEER_STATE_PRIMARY;
    self->pub = zsock_new (ZMQ_PUB);
    self->sub = zsock_new (ZMQ_SUB);
    zsock_set_linger (self->pub, 0);
    zsock_set_linger (self->sub, 0);
    zsock_set_maxmsgsize (self->sub, BS_MAX_BODY);
    zsock_set_subscribe (self->sub, "");
    bs_keys_serve (options->keys, self->pub, "brokers");
    if (zsock_bind (self->pub, "%s", options->bind) < 0
    ||  !bs_keys_connect_to (options->keys, self->sub, "broker")
    ||  zsock_connect (self->sub, "%s", options->connect) < 0) {
        zsys_error ("broker: cannot bind %s or connect to the peer at %s: %s", options->bind,
                    options->connect, zmq_strerror (zmq_errno ()));
        peer_destroy (&self);
        return NULL;
    }
    //  A killed peer's connection closes at once: no need to wait out its
    //  heartbeats
    self->disconnects = bs_monitor_new (zsock_resolve (self->sub), ZMQ_EVENT_DISCONNECTED);
    if (!self->disconnects) {
        peer_destroy (&self);
        return NULL;
    }
    zsys_info ("broker: %s of a pair, peer state on %s, the peer's on %s",
               self->backup? "backup": "primary", options->bind, options->connect);
    return self;
}

void
peer_destroy (peer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    peer_t *self = *self_p;
    bs_monitor_destroy (&self->disconnects);
    zsock_destroy (&self->pub);
    zsock_destroy (&self->sub);
    free (self);
    *self_p = NULL;
}

void *peer_socket (peer_t *self) { return self->sub? zsock_resolve (self->sub): NULL; }
void *peer_monitor (peer_t *self) { return self->disconnects? bs_monitor_socket (self->disconnects): NULL; }
peer_state_t peer_state (peer_t *self) { return self->state; }
bool peer_active (peer_t *self) { return self->state == PEER_STATE_ACTIVE; }
bool peer_alone (peer_t *self) { return self->alone; }
uint64_t peer_epoch (peer_t *self) { return self->peer.heard? self->peer.epoch: 0; }
int peer_nodes (peer_t *self) { return self->peer.heard? self->peer.nodes: -1; }
const char *peer_endpoint (peer_t *self) { return self->peer.endpoint; }
const char *peer_primary (peer_t *self) { return self->peer.heard? self->peer.primary: ""; }

static bool
s_peer_silent (peer_t *self, int64_t now)
{
    if (!self->peer.heard)
        return now >= self->started + (int64_t) self->heartbeat_ms * self->liveness;
    return now >= self->peer.expiry;
}

static bool
s_become (peer_t *self, peer_state_t state, const char *why)
{
    if (state == self->state)
        return false;
    zsys_info ("broker: %s -> %s: %s", peer_state_name (self->state), peer_state_name (state), why);
    self->state = state;
    peer_publish (self);
    return true;
}

//  The peer said its state: the Binary Star rules
static bool
s_on_peer_state (peer_t *self, peer_state_t theirs)
{
    switch (self->state) {
        case PEER_STATE_PRIMARY:
            if (theirs == PEER_STATE_BACKUP || theirs == PEER_STATE_PASSIVE)
                return s_become (self, PEER_STATE_ACTIVE, "the backup is there and passive");
            if (theirs == PEER_STATE_ACTIVE)
                return s_become (self, PEER_STATE_PASSIVE, "the peer is active");
            if (theirs == PEER_STATE_PRIMARY)
                zsys_error ("broker: both brokers are configured primary: one must be --ha-role backup");
            return false;
        case PEER_STATE_BACKUP:
            if (theirs == PEER_STATE_ACTIVE)
                return s_become (self, PEER_STATE_PASSIVE, "the primary is active");
            return false;
        case PEER_STATE_ACTIVE:
            if (theirs == PEER_STATE_ACTIVE) {
                //  Both active (a partition healed): the one with more nodes
                //  keeps serving; on a tie, the primary
                bool yield = self->peer.nodes > self->nodes
                          || (self->peer.nodes == self->nodes && self->backup);
                if (yield)
                    return s_become (self, PEER_STATE_PASSIVE, "the peer is active too and serves more nodes");
            }
            return false;
        case PEER_STATE_PASSIVE:
            if (theirs == PEER_STATE_PRIMARY || theirs == PEER_STATE_BACKUP)
                return s_become (self, PEER_STATE_ACTIVE, "the peer restarted");
            if (theirs == PEER_STATE_PASSIVE && !self->backup)
                return s_become (self, PEER_STATE_ACTIVE, "both were passive");
            return false;
    }
    return false;
}

bool
peer_recv (peer_t *self)
{
    void *sock = zsock_resolve (self->sub);
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    if (zmq_msg_recv (&frame, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&frame);
        return false;
    }
    bool single = !zmq_msg_more (&frame);
    while (zmq_msg_more (&frame)) {         //  one frame expected: drop the rest
        zmq_msg_close (&frame);
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, sock, ZMQ_DONTWAIT) < 0)
            break;
    }
    bool changed = false;
    bs_err_t err;
    char reason [128] = "";
    bs_msg_t *state = self->muted || !single? NULL
                    : bs_msg_decode (zmq_msg_data (&frame), zmq_msg_size (&frame), &err, reason, sizeof reason);
    peer_state_t theirs = 0;
    if (state && bs_msg_validate_request (state, reason, sizeof reason) == BS_OK
    &&  bs_msg_op (state) == BS_OP_peer_state
    &&  (theirs = s_state_parse (bs_msg_str (state, BS_FIELD_state)))) {
        peer_view_t *peer = &self->peer;
        bool was_silent = peer->heard && s_peer_silent (self, zclock_mono ());
        peer->heard = true;
        snprintf (peer->id, sizeof peer->id, "%s", bs_msg_str (state, BS_FIELD_id));
        snprintf (peer->endpoint, sizeof peer->endpoint, "%s", bs_msg_str (state, BS_FIELD_endpoint));
        peer->backup = strcmp (bs_msg_str (state, BS_FIELD_role), "backup") == 0;
        peer->state = theirs;
        peer->epoch = (uint64_t) bs_msg_int (state, BS_FIELD_epoch);
        peer->nodes = (int) bs_msg_int (state, BS_FIELD_size);
        snprintf (peer->primary, sizeof peer->primary, "%s", bs_msg_str (state, BS_FIELD_primary));
        peer->expiry = zclock_mono () + (int64_t) self->heartbeat_ms * self->liveness;
        if (was_silent)
            zsys_info ("broker: hearing the peer %s (%s) again", peer->id, peer_state_name (theirs));
        changed = s_on_peer_state (self, theirs);
    }
    else
    if (!self->muted)
        zsys_warning ("broker: dropped a malformed message from the peer %s", reason);
    bs_msg_destroy (&state);
    zmq_msg_close (&frame);
    return changed;
}

bool
peer_recv_monitor (peer_t *self)
{
    bool dropped = false;
    bs_monitor_event_t event;
    while (bs_monitor_next (self->disconnects, &event))
        dropped |= event.event == ZMQ_EVENT_DISCONNECTED;
    if (dropped && self->peer.heard && !self->muted) {
        zsys_info ("broker: the connection to the peer closed");
        self->peer.expiry = zclock_mono ();
    }
    return false;
}

void
peer_publish (peer_t *self)
{
    if (self->alone || self->muted)
        return;
    bs_msg_t *msg = bs_msg_new ();
    bs_msg_set_str (msg, BS_FIELD_op, "peer_state");
    bs_msg_set_str (msg, BS_FIELD_id, self->id);
    bs_msg_set_str (msg, BS_FIELD_role, self->backup? "backup": "primary");
    bs_msg_set_str (msg, BS_FIELD_state, peer_state_name (self->state));
    bs_msg_set_str (msg, BS_FIELD_endpoint, self->advertise);
    bs_msg_set_int (msg, BS_FIELD_epoch, (int64_t) self->epoch);
    bs_msg_set_int (msg, BS_FIELD_size, self->nodes);
    if (*self->primary)
        bs_msg_set_str (msg, BS_FIELD_primary, self->primary);
    size_t size;
    uint8_t *data = bs_msg_encode (msg, &size);
    zmq_send (zsock_resolve (self->pub), data, size, ZMQ_DONTWAIT);
    free (data);
    bs_msg_destroy (&msg);
}

bool
peer_tick (peer_t *self, uint64_t epoch, int nodes, const char *primary)
{
    self->epoch = epoch;
    self->nodes = nodes;
    snprintf (self->primary, sizeof self->primary, "%s", primary? primary: "");
    if (self->alone)
        return false;
    if (*self->mute_file) {
        bool muted = access (self->mute_file, F_OK) == 0;
        if (muted != self->muted)
            zsys_warning ("broker: test switch: the peer is %s", muted? "cut off": "reachable again");
        if (muted && !self->muted)
            self->peer.expiry = zclock_mono ();
        self->muted = muted;
    }
    peer_publish (self);
    //  A primary that hears nothing from its backup serves alone
    if (self->state == PEER_STATE_PRIMARY && s_peer_silent (self, zclock_mono ()))
        return s_become (self, PEER_STATE_ACTIVE, "no peer heard: serving alone");
    return false;
}

bool
peer_node_turns (peer_t *self, int nodes)
{
    if (self->state == PEER_STATE_ACTIVE)
        return true;
    if (self->state != PEER_STATE_PASSIVE && self->state != PEER_STATE_BACKUP)
        return false;
    if (!s_peer_silent (self, zclock_mono ()))
        return false;
    //  Half the nodes the peer last served (at least one) must have come:
    //  one node restarting while the brokers cannot see each other does not
    //  make a second active broker
    int quorum = self->peer.heard && self->peer.nodes > 1? (self->peer.nodes + 1) / 2: 1;
    if (nodes < quorum)
        return false;
    char why [96];
    snprintf (why, sizeof why, "%d node(s) turned to us and the peer is silent", nodes);
    s_become (self, PEER_STATE_ACTIVE, why);
    return true;
}

bool
peer_yield (peer_t *self, const char *why)
{
    return self->state == PEER_STATE_ACTIVE && s_become (self, PEER_STATE_PASSIVE, why);
}

peer_verdict_t
peer_client_verdict (peer_t *self)
{
    if (self->state == PEER_STATE_ACTIVE)
        return PEER_SERVE;
    if (self->state == PEER_STATE_PRIMARY || s_peer_silent (self, zclock_mono ()))
        return PEER_HOLD;
    return PEER_REFUSE;
}

static void
s_describe (bs_msg_t *status, const char *id, const char *endpoint, bool active, const char *state, bool backup)
{
    bs_msg_t *entry = bs_msg_new ();
    bs_msg_set_str (entry, BS_FIELD_id, id);
    bs_msg_set_str (entry, BS_FIELD_endpoint, *endpoint? endpoint: "?");
    bs_msg_set_int (entry, BS_FIELD_active, active);
    bs_msg_set_str (entry, BS_FIELD_state, state);
    bs_msg_set_str (entry, BS_FIELD_role, backup? "backup": "primary");
    bs_msg_append (status, BS_FIELD_brokers, &entry);
}

void
peer_describe (peer_t *self, bs_msg_t *status)
{
    s_describe (status, self->id, self->advertise, peer_active (self), peer_state_name (self->state), self->backup);
    if (self->peer.heard) {
        bool silent = s_peer_silent (self, zclock_mono ());
        s_describe (status, self->peer.id, self->peer.endpoint, !silent && self->peer.state == PEER_STATE_ACTIVE,
                    silent? "silent": peer_state_name (self->peer.state), self->peer.backup);
    }
}
