/*  buyer - asynchronous buys: decrement at the catalog, then record  */
#include "buyer.h"
#include "bs_client.h"
#include "bs_failover.h"
#include "orders.h"
#include "bs_stream.h"

#include <czmq.h>
#include <string.h>

#define MAX_WAITERS 8

typedef struct {
    uint8_t rid [BS_RID_SIZE];
    int64_t item;
    bs_msg_t *decrement;        //  the request sent to the catalog
    zmq_msg_t tokens [MAX_WAITERS];
    int waiters;
    int attempts;
    int64_t deadline;
    bool paused;                //  the deadline ends a pause after an answer,
                                //  not a wait for one: no reason to fail over
    bool direct;                //  the decrement in flight went the direct path
    bs_failover_t failover;     //  "not_active" answers in a row
} buy_t;

//  The catalog said "unavailable" (no primary this instant): ask again soon
#define RETRY_SOON_MS 100
//  How long the direct path rests after it failed a buy, unless the
//  assignment names another primary first
#define DIRECT_REST_MS 1000

struct _buyer_t {
    bs_client_t *client;
    buyer_grant_fn *grant;
    void *grant_arg;
    mdpworker_t *link;
    zhashx_t *pending;          //  rid (hex) -> buy_t
    int timeout_ms, attempts;
    bs_keys_t *keys;
    //  The direct path: on when id is set; a DEALER to the primary's sync
    //  socket when one is known
    char id [BS_ID_MAX + 1];
    char primary [BS_ID_MAX + 1];
    char sync [BS_ENDPOINT_MAX + 1];
    uint64_t epoch;
    zsock_t *direct;
    int64_t direct_rest_until;
    uint64_t direct_sent, direct_fallbacks;
};

static void
s_rid_key (const uint8_t *rid, char *key)
{
    for (int i = 0; i < BS_RID_SIZE; i++)
        snprintf (key + 2 * i, 3, "%02x", rid [i]);
}

static void
s_buy_destroy (void **item_p)
{
    buy_t *buy = *item_p;
    if (!buy)
        return;
    for (int i = 0; i < buy->waiters; i++)
        zmq_msg_close (&buy->tokens [i]);
    bs_msg_destroy (&buy->decrement);
    free (buy);
    *item_p = NULL;
}

buyer_t *
buyer_new (const char *broker_endpoint, bs_keys_t *keys, mdpworker_t *link, int timeout_ms,
           int attempts, buyer_grant_fn *grant, void *arg)
{
    buyer_t *self = calloc (1, sizeof (buyer_t));
    if (!self)
        abort ();
    self->client = bs_client_new_secure (broker_endpoint, keys);
    if (!self->client) {
        free (self);
        return NULL;
    }
    self->grant = grant;
    self->grant_arg = arg;
    self->link = link;
    self->timeout_ms = timeout_ms;
    self->attempts = attempts;
    self->keys = keys;
    self->pending = zhashx_new ();
    zhashx_set_destructor (self->pending, s_buy_destroy);
    return self;
}

void
buyer_destroy (buyer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    buyer_t *self = *self_p;
    zhashx_destroy (&self->pending);
    zsock_destroy (&self->direct);
    bs_client_destroy (&self->client);
    free (self);
    *self_p = NULL;
}

//  Answers everyone waiting for the buy and forgets it
static void
s_finish (buyer_t *self, buy_t *buy, bs_msg_t *reply)
{
    bs_msg_set_bin (reply, BS_FIELD_rid, buy->rid, BS_RID_SIZE);
    size_t size;
    uint8_t *data = bs_msg_encode (reply, &size);
    for (int i = 0; i < buy->waiters; i++)
        mdpworker_reply (self->link, &buy->tokens [i], data, size);
    free (data);
    char key [2 * BS_RID_SIZE + 1];
    s_rid_key (buy->rid, key);
    zhashx_delete (self->pending, key);
}

//  Sends the buy's decrement: the direct path when it is up, else through
//  the broker; its answer is due by the deadline
static void
s_send (buyer_t *self, buy_t *buy)
{
    int64_t now = zclock_mono ();
    buy->deadline = now + self->timeout_ms;
    buy->direct = false;
    if (self->direct && now >= self->direct_rest_until) {
        size_t size;
        uint8_t *data = bs_msg_encode (buy->decrement, &size);
        uint8_t kind = REPL_STREAM_REQUEST;
        void *sock = zsock_resolve (self->direct);
        buy->direct = zmq_send (sock, &kind, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 1
                   && zmq_send (sock, data, size, ZMQ_DONTWAIT) == (int) size;
        free (data);
        if (buy->direct) {
            self->direct_sent++;
            return;
        }
    }
    bs_client_send (self->client, "catalog", buy->decrement);
}

//  The direct path failed the buy: the broker carries the same decrement,
//  and other buys use it too for a while
static void
s_fall_back (buyer_t *self, buy_t *buy)
{
    self->direct_fallbacks++;
    self->direct_rest_until = zclock_mono () + DIRECT_REST_MS;
    buy->direct = false;
    buy->deadline = zclock_mono () + self->timeout_ms;
    bs_client_send (self->client, "catalog", buy->decrement);
}

void
buyer_start (buyer_t *self, zmq_msg_t *token, const bs_msg_t *request)
{
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    char key [2 * BS_RID_SIZE + 1];
    s_rid_key (rid, key);
    buy_t *buy = zhashx_lookup (self->pending, key);
    if (buy) {
        if (buy->waiters < MAX_WAITERS) {
            zmq_msg_init (&buy->tokens [buy->waiters]);
            zmq_msg_move (&buy->tokens [buy->waiters++], token);
        }
        zmq_msg_close (token);
        return;
    }
    buy = calloc (1, sizeof (buy_t));
    if (!buy)
        abort ();
    memcpy (buy->rid, rid, BS_RID_SIZE);
    buy->item = bs_msg_int (request, BS_FIELD_item);
    zmq_msg_init (&buy->tokens [0]);
    zmq_msg_move (&buy->tokens [0], token);
    zmq_msg_close (token);
    buy->waiters = 1;
    buy->decrement = bs_msg_new ();
    bs_msg_set_str (buy->decrement, BS_FIELD_op, bs_op_name (BS_OP_decrement));
    bs_msg_set_bin (buy->decrement, BS_FIELD_rid, rid, BS_RID_SIZE);
    bs_msg_set_int (buy->decrement, BS_FIELD_item, buy->item);
    buy->attempts = 1;
    zhashx_insert (self->pending, key, buy);
    s_send (self, buy);
}

//  Moves to the next broker of the pair.  Every buy sent to the previous one
//  and not answered is lost with its connection, so each is sent again,
//  with its own rid, except those pausing (sent when their pause ends).
static void
s_failover (buyer_t *self)
{
    if (bs_client_endpoint_count (self->client) < 2)
        return;                 //  one broker: nowhere to move
    bs_client_failover (self->client);
    zsys_info ("buyer: asking the catalog through %s now", bs_client_endpoint (self->client));
    int64_t now = zclock_mono ();
    for (buy_t *buy = zhashx_first (self->pending); buy; buy = zhashx_next (self->pending))
        if (!buy->paused && !buy->direct) {
            buy->deadline = now + self->timeout_ms;
            bs_client_send (self->client, "catalog", buy->decrement);
        }
}

static bool
s_error_is (const bs_msg_t *reply, bs_err_t err)
{
    return !bs_msg_int (reply, BS_FIELD_ok) && strcmp (bs_msg_str (reply, BS_FIELD_error), bs_err_name (err)) == 0;
}

void *
buyer_socket (buyer_t *self)
{
    return bs_client_socket (self->client);
}

//  The buy an answer names, or NULL (a late answer to a finished buy)
static buy_t *
s_buy_of (buyer_t *self, const bs_msg_t *reply)
{
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (reply, BS_FIELD_rid, &rid_size);
    if (!rid || rid_size != BS_RID_SIZE)
        return NULL;
    char key [2 * BS_RID_SIZE + 1];
    s_rid_key (rid, key);
    return zhashx_lookup (self->pending, key);
}

//  Whether the catalog granted the buy (whichever way the answer came)
static bool
s_granted (const buy_t *buy, const bs_msg_t *reply)
{
    char order_id [ORDERS_ID_SIZE];
    orders_id_for (buy->rid, order_id);
    return bs_msg_int (reply, BS_FIELD_ok) && strcmp (bs_msg_str (reply, BS_FIELD_order_id), order_id) == 0;
}

//  The catalog's answer to a buy's decrement
static void
s_on_reply (buyer_t *self, buy_t *buy, bs_msg_t *reply)
{
    char order_id [ORDERS_ID_SIZE];
    orders_id_for (buy->rid, order_id);
    if (bs_msg_int (reply, BS_FIELD_ok) && strcmp (bs_msg_str (reply, BS_FIELD_order_id), order_id) != 0) {
        //  The catalog answered with the stored reply of another write that
        //  used this request id first: no copy was taken for this buy
        bs_msg_t *refusal = bs_msg_new_error (BS_ERR_bad_field, "this request id was already used by another request");
        s_finish (self, buy, refusal);
        bs_msg_destroy (&refusal);
    }
    else
    if (bs_msg_int (reply, BS_FIELD_ok)) {
        self->grant (self->grant_arg, buy->rid, reply, buy->tokens, buy->waiters);
        buy->waiters = 0;           //  the tokens went with the grant
        char key [2 * BS_RID_SIZE + 1];
        s_rid_key (buy->rid, key);
        zhashx_delete (self->pending, key);
    }
    else
    if (bs_failover_is_not_active (reply)) {
        //  The passive broker of a pair: the next one should serve.  A whole
        //  round of them in a row (a takeover under way) pauses and counts
        //  as an attempt, like "unavailable".  Whoever waits for the buy is
        //  never answered not_active: their own client would take it for
        //  their broker's word and fail over.
        if (bs_failover_not_active (&buy->failover, bs_client_endpoint_count (self->client)) == BS_FAILOVER_NOW)
            s_failover (self);
        else
        if (buy->attempts < self->attempts) {
            buy->paused = true;
            buy->deadline = zclock_mono () + BS_FAILOVER_PAUSE_MS;
            s_failover (self);
        }
        else {
            bs_msg_t *refusal = bs_msg_new_error (BS_ERR_unavailable,
                "no broker serves the catalog now; retry the buy with the same request id");
            s_finish (self, buy, refusal);
            bs_msg_destroy (&refusal);
        }
    }
    else
    if (s_error_is (reply, BS_ERR_unavailable) && buy->attempts < self->attempts) {
        //  No catalog primary this instant (an election): try again shortly
        bs_failover_reset (&buy->failover);
        buy->paused = true;
        buy->deadline = zclock_mono () + RETRY_SOON_MS;
    }
    else
        s_finish (self, buy, reply);
}

void
buyer_on_input (buyer_t *self)
{
    bs_msg_t *reply = bs_client_recv (self->client);
    if (!reply)
        return;
    buy_t *buy = s_buy_of (self, reply);
    //  A broker's answer to a buy now on the direct path: its grant is the
    //  one the direct path will bring; anything else is stale
    if (buy && (!buy->direct || s_granted (buy, reply)))
        s_on_reply (self, buy, reply);
    bs_msg_destroy (&reply);
}

bool
buyer_direct_falls_back (const bs_msg_t *reply)
{
    return s_error_is (reply, BS_ERR_unavailable) || s_error_is (reply, BS_ERR_forbidden)
        || s_error_is (reply, BS_ERR_unknown_op) || s_error_is (reply, BS_ERR_bad_frame)
        || s_error_is (reply, BS_ERR_overloaded) || s_error_is (reply, BS_ERR_internal);
}

void
buyer_on_direct_input (buyer_t *self)
{
    if (!self->direct)
        return;
    zmq_msg_t frames [2];
    int count = 0;
    bool more = true;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, zsock_resolve (self->direct), count? 0: ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&frame);
            break;
        }
        more = zmq_msg_more (&frame);
        if (count < 2)
            frames [count++] = frame;
        else
            zmq_msg_close (&frame);
    }
    bs_msg_t *reply = NULL;
    if (count == 2 && zmq_msg_size (&frames [0]) == 1 && *(uint8_t *) zmq_msg_data (&frames [0]) == REPL_STREAM_REPLY) {
        bs_err_t err;
        reply = bs_msg_decode (zmq_msg_data (&frames [1]), zmq_msg_size (&frames [1]), &err, NULL, 0);
    }
    for (int i = 0; i < count; i++)
        zmq_msg_close (&frames [i]);
    if (!reply)
        return;
    buy_t *buy = s_buy_of (self, reply);
    if (buy && buy->direct && buyer_direct_falls_back (reply)) {
        zsys_info ("buyer: the catalog primary %s said '%s' on the direct path: going through the broker",
                   self->primary, bs_msg_str (reply, BS_FIELD_error));
        s_fall_back (self, buy);
    }
    else
    //  A late direct answer to a buy that went to the broker since counts
    //  only if it is the grant
    if (buy && (buy->direct || s_granted (buy, reply)))
        s_on_reply (self, buy, reply);
    bs_msg_destroy (&reply);
}

void
buyer_tick (buyer_t *self)
{
    int64_t now = zclock_mono ();
    //  The broker's connection dropped (killed): move on now rather than
    //  when each buy's timer runs out.  A buy unanswered in time moves on
    //  too: it may have gone to a broker that died or cannot be reached.
    bool pair = bs_client_endpoint_count (self->client) > 1;
    bool move = pair && zhashx_size (self->pending) && bs_client_lost (self->client);
    zlistx_t *late = zlistx_new ();
    for (buy_t *buy = zhashx_first (self->pending); buy; buy = zhashx_next (self->pending))
        if (now >= buy->deadline) {
            zlistx_add_end (late, buy);
            move |= pair && !buy->paused && !buy->direct;
        }
    for (buy_t *buy = zlistx_first (late); buy; buy = zlistx_next (late)) {
        if (buy->direct) {
            //  The primary did not answer on the direct path: the broker
            //  knows where the catalog is now
            zsys_info ("buyer: the catalog primary %s did not answer on the direct path: going through the broker",
                       self->primary);
            s_fall_back (self, buy);
        }
        else
        if (buy->attempts < self->attempts) {
            buy->attempts++;
            buy->deadline = now + self->timeout_ms;
            if (!buy->paused)
                bs_failover_reset (&buy->failover);
            buy->paused = false;
            //  A failover below sends it with every other buy under way
            if (!move)
                s_send (self, buy);
        }
        else {
            bs_msg_t *reply = bs_msg_new_error (BS_ERR_unavailable,
                "the catalog did not answer; retry the buy with the same request id");
            s_finish (self, buy, reply);
            bs_msg_destroy (&reply);
        }
    }
    zlistx_destroy (&late);
    if (move)
        s_failover (self);
}

size_t
buyer_pending (buyer_t *self)
{
    return zhashx_size (self->pending);
}

void
buyer_direct (buyer_t *self, const char *id)
{
    snprintf (self->id, sizeof self->id, "%s", id);
}

static void s_connect (buyer_t *self);

void
buyer_set_catalog (buyer_t *self, const char *primary, const char *sync, uint64_t epoch)
{
    if (!*self->id)
        return;
    if (!primary || !sync)
        primary = sync = "";
    if (strcmp (primary, self->primary) == 0 && strcmp (sync, self->sync) == 0 && epoch == self->epoch)
        return;
    snprintf (self->primary, sizeof self->primary, "%s", primary);
    snprintf (self->sync, sizeof self->sync, "%s", sync);
    self->epoch = epoch;
    self->direct_rest_until = 0;
    zsock_destroy (&self->direct);
    if (*primary && *sync)
        s_connect (self);
    //  Buys in flight to the old primary go to the new one (or through the
    //  broker) with their own rid
    for (buy_t *buy = zhashx_first (self->pending); buy; buy = zhashx_next (self->pending))
        if (buy->direct)
            s_send (self, buy);
}

//  A DEALER to the primary's sync socket
static void
s_connect (buyer_t *self)
{
    const char *primary = self->primary, *sync = self->sync;
    self->direct = zsock_new (ZMQ_DEALER);
    //  The primary believes our routing id only when it is our key's name
    zsock_set_identity (self->direct, self->id);
    zsock_set_linger (self->direct, 0);
    zsock_set_sndhwm (self->direct, 100000);
    if ((self->keys && !bs_keys_connect_to (self->keys, self->direct, primary))
    ||  zsock_connect (self->direct, "%s", sync) < 0) {
        zsys_warning ("buyer: cannot reach the catalog primary %s at %s directly; going through the broker",
                      primary, sync);
        zsock_destroy (&self->direct);
        return;
    }
    zsys_info ("buyer: the catalog primary is %s at epoch %llu: decrements go to %s directly", primary,
               (unsigned long long) self->epoch, sync);
}

void *
buyer_direct_socket (buyer_t *self)
{
    return self->direct? zsock_resolve (self->direct): NULL;
}

uint64_t
buyer_direct_sent (buyer_t *self)
{
    return self->direct_sent;
}

uint64_t
buyer_direct_fallbacks (buyer_t *self)
{
    return self->direct_fallbacks;
}
