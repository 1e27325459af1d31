/*  peer - this broker's half of a Binary Star pair.
 *
 *  Two brokers, one configured primary and one backup, publish their state
 *  to each other every heartbeat (peer_state, schema/messages.def) over
 *  PUB/SUB.  Exactly one is active: it serves clients and nodes.  The other
 *  is passive: it answers clients "not_active" and sends nodes on to the
 *  active one.  The rules:
 *
 *    starting as primary  active when the peer is a backup or passive, or
 *                         has not been heard for a liveness window;
 *                         passive when the peer is active
 *    starting as backup   passive when the peer is active; active only when
 *                         nodes turn to it while the peer is silent
 *    active               stays active; if the peer is active too (a healed
 *                         partition) the one serving fewer nodes yields, the
 *                         backup on a tie
 *    passive              active when the peer restarts (says primary or
 *                         backup) or when nodes turn to it while the peer
 *                         is silent; of two passives the primary takes over
 *
 *  A takeover needs nodes, not just a client: nodes move to the other
 *  broker only when theirs has gone silent to them, so two brokers that
 *  merely cannot see each other never both serve writes; the passive one
 *  gets no nodes.  It takes over once half the nodes its peer last served
 *  (at least one) have turned to it, so that a single node restarting
 *  during such a partition does not make it active.  Clients and nodes sent
 *  to a passive broker whose peer is silent are held (a takeover may be
 *  coming), not refused; once the peer is heard again they are sent on.
 *
 *  Without a peer endpoint the broker is alone and always active.
 *
 *  Ownership: peer_new returns an object the caller destroys with
 *  peer_destroy; the options' strings are copied, the keys borrowed.
 *  peer_describe adds entries to a message the caller owns.
 */
#ifndef PEER_H_INCLUDED
#define PEER_H_INCLUDED

#include "bs_keys.h"
#include "bs_msg.h"

typedef enum {
    PEER_STATE_PRIMARY = 1,     //  started as primary, peer not yet known
    PEER_STATE_BACKUP,          //  started as backup, peer not yet known
    PEER_STATE_ACTIVE,
    PEER_STATE_PASSIVE
} peer_state_t;

typedef enum {
    PEER_SERVE,                 //  active: serve it
    PEER_HOLD,                  //  keep it: this broker may take over soon
    PEER_REFUSE                 //  passive with a live peer: not_active
} peer_verdict_t;

typedef struct {
    const char *id;             //  this broker's id
    bool backup;                //  configured as the backup (else primary)
    const char *bind;           //  PUB endpoint the peer subscribes to
    const char *connect;        //  the peer's PUB endpoint; NULL or "": alone
    const char *advertise;      //  this broker's client endpoint, for status
    int heartbeat_ms;
    int liveness;               //  heartbeats the peer may miss
    const char *mute_file;      //  test switch: while it exists, the peer
                                //  is neither told nor heard
    bs_keys_t *keys;            //  CURVE (borrowed) or NULL
} peer_options_t;

typedef struct _peer_t peer_t;

//  Returns NULL (logged) when the endpoint cannot be bound
peer_t *peer_new (const peer_options_t *options);
void peer_destroy (peer_t **self_p);

//  The sockets to poll for input (the peer's state; its connection
//  dropping), or NULL when alone
void *peer_socket (peer_t *self);
void *peer_monitor (peer_t *self);

//  Reads what arrived on those sockets.  Returns true when this broker's
//  state changed.
bool peer_recv (peer_t *self);
bool peer_recv_monitor (peer_t *self);

//  Every heartbeat: publishes our state (epoch: the highest catalog epoch
//  seen or given; nodes: how many this broker serves; primary: the catalog
//  primary's id, or "") and applies the timers.  Returns true when the
//  state changed.
bool peer_tick (peer_t *self, uint64_t epoch, int nodes, const char *primary);
//  Publishes our state at once (after a change)
void peer_publish (peer_t *self);

peer_state_t peer_state (peer_t *self);
const char *peer_state_name (peer_state_t state);
bool peer_active (peer_t *self);
//  Alone (no peer configured)
bool peer_alone (peer_t *self);

//  A node turned to this broker, which now holds nodes.  Returns true when
//  the broker serves them, having perhaps just become active (the state
//  changed then): a passive broker takes over when its peer is silent and
//  at least half the nodes the peer last served (or one) have come.
bool peer_node_turns (peer_t *self, int nodes);

//  Leaves the active state for passive (another broker holds the active
//  lease in etcd, which outranks these rules).  True when the state changed.
bool peer_yield (peer_t *self, const char *why);

//  What to do with a client request
peer_verdict_t peer_client_verdict (peer_t *self);

//  The highest catalog epoch and the number of nodes the peer last
//  reported (0 and -1 when never heard)
uint64_t peer_epoch (peer_t *self);
int peer_nodes (peer_t *self);
//  The peer's client endpoint and the catalog primary it last named (""
//  when never heard, or none)
const char *peer_endpoint (peer_t *self);
const char *peer_primary (peer_t *self);

//  Appends this broker and its peer to status as "brokers" entries
//  ({id, endpoint, active, state, role}), this broker first
void peer_describe (peer_t *self, bs_msg_t *status);

#endif
