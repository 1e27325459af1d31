/*  sim_order - an order node's buyer in the simulator: nodes/buyer.c's
 *  broker path (as --direct-buys 0).  A buy asks the catalog, through the
 *  broker, to decrement its item with the buy's own request id; the
 *  catalog's grant goes to the node's group commit (sim_node_grant), which
 *  records the order and answers once its followers acked.  No answer in
 *  time sends the same decrement again (same rid: the catalog takes one
 *  copy whatever it is asked); copies of a buy under way join it.  */
#include "sim_cluster.h"
#include "bs_msg.h"

#include <string.h>

#define BUYS_MAX 32
#define WAITERS_MAX 8
#define TIMEOUT_MS 1500             //  --catalog-timeout-ms
#define ATTEMPTS 5                  //  --catalog-attempts
#define RETRY_SOON_MS 100           //  "unavailable": no catalog primary this instant

typedef struct {
    bool used;
    uint8_t rid [BS_RID_SIZE];
    int64_t item;
    int64_t tokens [WAITERS_MAX];   //  the broker's request numbers
    int waiters;
    int attempts;
    int64_t deadline;
    bool paused;
} buy_t;

typedef struct {
    buy_t buys [BUYS_MAX];
    int64_t serial;
} buyer_t;

static buyer_t s_buyers [SIM_ALL_NODES];

void
sim_buyer_reset (int node)
{
    memset (&s_buyers [node], 0, sizeof s_buyers [node]);
}

static buy_t *
s_find (buyer_t *self, const uint8_t *rid)
{
    for (int i = 0; i < BUYS_MAX; i++)
        if (self->buys [i].used && memcmp (self->buys [i].rid, rid, BS_RID_SIZE) == 0)
            return &self->buys [i];
    return NULL;
}

static void
s_send (int node, buy_t *buy)
{
    buy->deadline = sim_now + TIMEOUT_MS;
    bs_msg_t *decrement = bs_msg_new ();
    bs_msg_set_str (decrement, BS_FIELD_op, bs_op_name (BS_OP_decrement));
    bs_msg_set_bin (decrement, BS_FIELD_rid, buy->rid, BS_RID_SIZE);
    bs_msg_set_int (decrement, BS_FIELD_item, buy->item);
    size_t size;
    uint8_t *data = bs_msg_encode (decrement, &size);
    sim_broker_request_from (node, ++s_buyers [node].serial, -1, data, size);
    free (data);
    bs_msg_destroy (&decrement);
}

//  Answers everyone waiting for the buy and forgets it
static void
s_finish (int node, buy_t *buy, bs_msg_t *reply)
{
    bs_msg_set_bin (reply, BS_FIELD_rid, buy->rid, BS_RID_SIZE);
    size_t size;
    uint8_t *data = bs_msg_encode (reply, &size);
    for (int i = 0; i < buy->waiters; i++)
        sim_broker_reply_from (node, buy->tokens [i], data, size);
    free (data);
    memset (buy, 0, sizeof *buy);
}

void
sim_buyer_start (int node, int64_t token, const uint8_t *rid, int64_t item)
{
    buyer_t *self = &s_buyers [node];
    buy_t *buy = s_find (self, rid);
    if (buy) {
        if (buy->waiters < WAITERS_MAX)
            buy->tokens [buy->waiters++] = token;
        return;
    }
    for (int i = 0; i < BUYS_MAX && !buy; i++)
        if (!self->buys [i].used)
            buy = &self->buys [i];
    if (!buy) {
        bs_msg_t *reply = bs_msg_new_error (BS_ERR_overloaded, "too many buys under way");
        bs_msg_set_bin (reply, BS_FIELD_rid, rid, BS_RID_SIZE);
        size_t size;
        uint8_t *data = bs_msg_encode (reply, &size);
        sim_broker_reply_from (node, token, data, size);
        free (data);
        bs_msg_destroy (&reply);
        return;
    }
    buy->used = true;
    memcpy (buy->rid, rid, BS_RID_SIZE);
    buy->item = item;
    buy->tokens [0] = token;
    buy->waiters = 1;
    buy->attempts = 1;
    s_send (node, buy);
}

static bool
s_error_is (const bs_msg_t *reply, bs_err_t err)
{
    return !bs_msg_int (reply, BS_FIELD_ok) && strcmp (bs_msg_str (reply, BS_FIELD_error), bs_err_name (err)) == 0;
}

void
sim_buyer_on_reply (int node, const void *data, size_t size)
{
    bs_err_t err;
    bs_msg_t *reply = bs_msg_decode (data, size, &err, NULL, 0);
    if (!reply) {
        sim_violation ("well_formed", "%s got a decrement reply it cannot decode", sim_proc_name (node));
        return;
    }
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (reply, BS_FIELD_rid, &rid_size);
    //  A reply without the rid (the broker's own refusal) or to a buy no
    //  longer under way: the buy's deadline sends it again
    buy_t *buy = rid && rid_size == BS_RID_SIZE? s_find (&s_buyers [node], rid): NULL;
    if (!buy) {
        bs_msg_destroy (&reply);
        return;
    }
    char order_id [ORDERS_ID_SIZE];
    orders_id_for (buy->rid, order_id);
    if (bs_msg_int (reply, BS_FIELD_ok) && strcmp (bs_msg_str (reply, BS_FIELD_order_id), order_id) != 0) {
        bs_msg_t *refusal = bs_msg_new_error (BS_ERR_bad_field, "this request id was already used by another request");
        s_finish (node, buy, refusal);
        bs_msg_destroy (&refusal);
    }
    else
    if (bs_msg_int (reply, BS_FIELD_ok)) {
        sim_trace ("%s: the catalog granted %s", sim_proc_name (node), order_id);
        int64_t tokens [WAITERS_MAX];
        int count = buy->waiters;
        memcpy (tokens, buy->tokens, sizeof tokens);
        uint8_t copy [BS_RID_SIZE];
        memcpy (copy, buy->rid, BS_RID_SIZE);
        memset (buy, 0, sizeof *buy);
        sim_node_grant (node, copy, reply, tokens, count);
    }
    else
    if (s_error_is (reply, BS_ERR_unavailable) && buy->attempts < ATTEMPTS) {
        buy->paused = true;
        buy->deadline = sim_now + RETRY_SOON_MS;
    }
    else
        s_finish (node, buy, reply);
    bs_msg_destroy (&reply);
}

int64_t
sim_buyer_tick (int node)
{
    buyer_t *self = &s_buyers [node];
    int64_t due = INT64_MAX;
    for (int i = 0; i < BUYS_MAX; i++) {
        buy_t *buy = &self->buys [i];
        if (buy->used && buy->deadline <= sim_now) {
            if (buy->attempts < ATTEMPTS) {
                buy->attempts++;
                buy->paused = false;
                s_send (node, buy);
            }
            else {
                bs_msg_t *reply = bs_msg_new_error (BS_ERR_unavailable,
                    "the catalog did not answer; retry the buy with the same request id");
                s_finish (node, buy, reply);
                bs_msg_destroy (&reply);
            }
        }
        if (buy->used && buy->deadline < due)
            due = buy->deadline;
    }
    return due;
}
