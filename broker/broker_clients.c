/*  broker_clients - the broker's client socket: each request's frames,
 *  service and body checked (the schema's services decoded once, whole),
 *  the keys' and quota's word, the cache, then filing and dispatch; and
 *  the broker's own "broker" service (status).  Part of the broker object
 *  (broker_internal.h).  The hot path stays on raw zmq_msg_t: the body is
 *  moved into the request, never copied.
 */
#include "broker_internal.h"
#include "cache_io.h"
#include "status.h"
#include "wire.h"
#include "bs_frames.h"
#include "bs_mdp.h"

#include <string.h>

//  --------------------------------------------------------------------------
//  Broker's own service

//  The cluster as status shows it, with the broker's own drop counters:
//  "stale", replies refused because they came from no connection their
//  request was sent to (late ones after a re-dispatch, and forgeries);
//  "evictions", replies dropped because their client did not read (its
//  queue was full) or was gone, and requests dropped unread from a client
//  that does not read (laggards.h)
bs_msg_t *
broker_status_msg (broker_t *self)
{
    bs_msg_t *status = status_msg (requests_inflight (self->requests), self->cache, self->workers,
                                   self->controller);
    broker_describe (self, status);
    bs_msg_set_int (status, BS_FIELD_stale, (int64_t) self->replies_refused);
    bs_msg_set_int (status, BS_FIELD_evictions,
                    (int64_t) (wire_client_drops () + laggards_dropped (self->laggards)));
    return status;
}

//  Answers "status" on service "broker" or "broker@<this broker's id>";
//  service: the request's service frame, which the reply repeats
static void
s_handle_status (broker_t *self, zmq_msg_t *client, const char *service, zmq_msg_t *body)
{
    char reason [128];
    bs_err_t err;
    bs_msg_t *request = bs_msg_decode (zmq_msg_data (body), zmq_msg_size (body), &err, reason, sizeof reason);
    if (request)
        err = bs_msg_validate_request (request, reason, sizeof reason);
    if (err == BS_OK && bs_msg_op (request) != BS_OP_status) {
        err = BS_ERR_unknown_op;
        snprintf (reason, sizeof reason, "the broker service only answers 'status'");
    }
    if (err != BS_OK) {
        wire_error (self->client_sock, client, service, body, err, reason);
        bs_msg_destroy (&request);
        return;
    }
    //  A standard worker that died since the last tick leaves status now
    //  (no worker pointer is held here)
    workers_forget (self->workers, zclock_mono ());
    bs_msg_t *reply = broker_status_msg (self);
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    bs_msg_set_bin (reply, BS_FIELD_rid, rid, rid_size);
    wire_msg_to_client (self->client_sock, client, service, reply);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
}

//  --------------------------------------------------------------------------
//  Client side
//
//  Every reply to a client repeats the service frame of its request, and
//  every error the broker makes carries the request's rid when the body
//  has one, so that any 7/MDP client, REQ or pipelining DEALER, can read
//  and match it.

//  Operations nodes send one another through the broker (an order node's
//  decrement: stock taken without an order) and the internal messages:
//  never from a client, whatever its key.  Nodes send theirs on the node
//  socket (s_node_request, broker_nodes.c).
static bool
s_node_only (bs_op_t op)
{
    return op < BS_OP_COUNT && (op == BS_OP_decrement || bs_op_kind (op) == BS_KIND_CONTROL);
}

//  Who may run what on the client socket, in every mode; with CURVE
//  (role not NULL) changing the catalog also takes an admin key.  On a
//  refusal, the sentence for the client goes into message.
static bool
s_allowed (bs_op_t op, const char *role, char *message, size_t size)
{
    if (s_node_only (op)) {
        snprintf (message, size, "'%s' is an operation between nodes, which clients may not send", bs_op_name (op));
        return false;
    }
    bool ok = !role
           || ((op == BS_OP_set_price || op == BS_OP_restock || op == BS_OP_add_book)?
               strcmp (role, "admin") == 0: *role != 0);
    if (!ok)
        snprintf (message, size, "your key may not run '%s'", bs_op_name (op));
    return ok;
}

//  when the body (NULL: none) has one
static void
s_refuse_frame (broker_t *self, zmq_msg_t *client, zmq_msg_t *service, zmq_msg_t *body,
                bs_err_t err, const char *message)
{
    bs_msg_t *msg = bs_msg_new_error (err, message);
    const uint8_t *rid;
    size_t size;
    if (body && bs_peek_bytes (zmq_msg_data (body), zmq_msg_size (body), BS_FIELD_rid, &rid, &size)
    &&  size == BS_RID_SIZE)
        bs_msg_set_bin (msg, BS_FIELD_rid, rid, size);
    uint8_t *data = bs_msg_encode (msg, &size);
    bs_msg_destroy (&msg);
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    zmq_msg_copy (&frame, client);
    zmq_msg_send (&frame, self->client_sock, ZMQ_SNDMORE);
    zmq_send (self->client_sock, "", 0, ZMQ_SNDMORE);
    zmq_send (self->client_sock, BS_MDPC, strlen (BS_MDPC), ZMQ_SNDMORE);
    zmq_msg_init (&frame);
    if (service)
        zmq_msg_copy (&frame, service);
    zmq_msg_send (&frame, self->client_sock, ZMQ_SNDMORE);
    zmq_send (self->client_sock, data, size, 0);
    free (data);
}

//  Some client operation of the schema (messages.def) belongs to the
//  service: its bodies are then checked here, whole, before the cache and
//  before any node sees them
bool
broker_bookstore_service (const char *service)
{
    for (int op = 0; op < BS_OP_COUNT; op++)
        if (bs_op_kind ((bs_op_t) op) != BS_KIND_CONTROL && strcmp (bs_op_service ((bs_op_t) op), service) == 0)
            return true;
    return false;
}

bool
broker_service_allowed (broker_t *self, const char *service)
{
    if (!*service || strcmp (service, BS_SERVICE_BROKER) == 0)
        return false;
    return self->any_service || requests_service_find (self->requests, service) >= 0;
}

//  True when the service frame names a standard service the broker knows
//  ("name" or "name@worker"), whose requests may carry several body frames
static bool
s_standard_frame (broker_t *self, zmq_msg_t *frame)
{
    char name [REQUEST_SERVICE_MAX] = "";
    if (zmq_msg_size (frame) >= sizeof name)
        return false;
    wire_frame_text (frame, name, sizeof name);
    char *at = strchr (name, '@');
    if (at)
        *at = 0;
    return requests_service_find (self->requests, name) >= 0 && !broker_bookstore_service (name);
}

//  Checks a request of a schema service as a node would: a well-formed
//  body, every field within its limits, the fields its op takes, an op of
//  this service.  BS_OK, or the error with its sentence in reason; *op_p
//  receives the op.
static bs_err_t
s_check_request (zmq_msg_t *body, const char *service, bs_op_t *op_p, char *reason, size_t size)
{
    bs_err_t err;
    bs_msg_t *request = bs_msg_decode (zmq_msg_data (body), zmq_msg_size (body), &err, reason, size);
    if (request)
        err = bs_msg_validate_request (request, reason, size);
    *op_p = request? bs_msg_op (request): BS_OP_COUNT;
    if (err == BS_OK && strcmp (bs_op_service (*op_p), service) != 0) {
        err = BS_ERR_unknown_op;
        snprintf (reason, size, "the %s service does not execute '%s'", service, bs_op_name (*op_p));
    }
    bs_msg_destroy (&request);
    return err;
}

//  "service@node": the node must exist and be of that service.  Known but
//  down, the request waits for it (and is answered "unavailable" after the
//  request timeout); unknown, it is refused at once, except while this
//  broker is still learning its nodes (just started or taking over), when
//  the node may yet register.
static bool
s_node_known (broker_t *self, const char *service, const char *id)
{
    if (!workers_id_valid (id))
        return false;
    worker_t *w = workers_by_id (self->workers, id);
    if (w)
        return strcmp (w->service, service) == 0;
    return !broker_active (self) || controller_settling (self->controller);
}

void
broker_client_message (broker_t *self)
{
    zmq_msg_t frames [MAX_FRAMES];
    int count;
    int total = bs_frames_recv (self->client_sock, frames, MAX_FRAMES, &count);
    if (total < 0)
        return;
    //  A client that does not read its replies: its request is dropped
    //  unread, and such requests are read at a bounded rate
    if (count >= 1 && laggards_any (self->laggards)
    &&  laggards_match (self->laggards, zmq_msg_data (&frames [0]), zmq_msg_size (&frames [0]), zclock_usecs ())) {
        self->clients_rest_until = laggards_charge (self->laggards, zclock_usecs ());
        bs_frames_close (frames, count);
        return;
    }
    //  [client] [empty] [MDPC01] [service] [body]; a standard service's
    //  body may have several frames, as 7/MDP allows
    bool framed = total >= 5 && zmq_msg_size (&frames [1]) == 0 && wire_frame_is (&frames [2], BS_MDPC);
    if (framed && total > 5)
        framed = total <= 4 + REQUEST_BODY_FRAMES_MAX && s_standard_frame (self, &frames [3]);
    if (!framed) {
        char why [160];
        snprintf (why, sizeof why, "a request must be [empty] \"MDPC01\" service body (one body frame; "
                  "a standard service's body may have up to %d)", REQUEST_BODY_FRAMES_MAX);
        if (count >= 1)
            s_refuse_frame (self, &frames [0], count >= 4? &frames [3]: NULL, count >= 5? &frames [4]: NULL,
                            BS_ERR_bad_frame, why);
        bs_frames_close (frames, count);
        return;
    }
    zmq_msg_t *client = &frames [0], *body = &frames [4];
    size_t body_size = 0;
    for (int i = 4; i < count; i++)
        body_size += zmq_msg_size (&frames [i]);
    if (body_size > MAX_REQUEST) {
        s_refuse_frame (self, client, &frames [3], body, BS_ERR_too_large,
                        "the request is larger than the 64 KiB limit");
        bs_frames_close (frames, count);
        return;
    }
    //  The service frame: "service", or "service@node" to ask one node.
    //  The reply repeats it, so it must be text the broker can hold.
    char service [REQUEST_SERVICE_MAX] = "", message [256];
    size_t frame_size = zmq_msg_size (&frames [3]);
    if (frame_size < sizeof service && bs_text_valid (zmq_msg_data (&frames [3]), frame_size))
        wire_frame_text (&frames [3], service, sizeof service);
    char *at = strchr (service, '@');
    const char *target = at? at + 1: "";
    if (at)
        *at = 0;
    int svc = *service? requests_service_find (self->requests, service): -1;
    bool own_broker = strcmp (service, BS_SERVICE_BROKER) == 0;
    if (svc < 0 && !own_broker) {
        snprintf (message, sizeof message, "no service named '%.40s'", service);
        s_refuse_frame (self, client, &frames [3], body, BS_ERR_unknown_service, message);
        bs_frames_close (frames, count);
        return;
    }
    if (at)
        *at = '@';      //  service is the whole frame again, for replies
    //  "broker" is the active broker's view: a passive one sends clients
    //  on; "broker@<id>" asks that broker itself, whatever its state
    if (own_broker && at && strcmp (target, self->options.id? self->options.id: "") != 0) {
        snprintf (message, sizeof message, "this broker is '%.64s': ask broker '%.64s' itself",
                  self->options.id? self->options.id: "", target);
        wire_error (self->client_sock, client, service, body, BS_ERR_unknown_node, message);
        bs_frames_close (frames, count);
        return;
    }
    if (own_broker && (at || broker_verdict (self) != BROKER_REFUSE)) {
        s_handle_status (self, client, service, body);
        bs_frames_close (frames, count);
        return;
    }
    //  Checked as each request is read, after any pause: a broker that was
    //  stopped past its lease answers nothing, not even from its cache.  A
    //  broker that does not serve sends clients on (not_active).
    if (broker_fenced (self)) {
        broker_refuse_inactive (self, client, service, body);
        bs_frames_close (frames, count);
        return;
    }
    const char *name = requests_service_name (self->requests, svc);
    if (at && !s_node_known (self, name, target)) {
        snprintf (message, sizeof message, "no node '%.64s' serves '%s'", target, name);
        wire_error (self->client_sock, client, service, body, BS_ERR_unknown_node, message);
        bs_frames_close (frames, count);
        return;
    }
    //  The schema's services get every request checked whole here, so that
    //  a cache hit and a miss get the same answer, and every refusal
    //  carries the rid (a node could not read it from a body it cannot
    //  decode).  Standard services' bodies are opaque.
    bs_op_t op;
    if (broker_bookstore_service (name)) {
        char reason [160];
        bs_err_t err = s_check_request (body, name, &op, reason, sizeof reason);
        if (err != BS_OK) {
            wire_error (self->client_sock, client, service, body, err, reason);
            bs_frames_close (frames, count);
            return;
        }
    }
    else
        op = BS_OP_COUNT;       //  a standard service's body is opaque
    if (!s_allowed (op, self->options.keys? bs_keys_role (body, NULL): NULL, message, sizeof message)) {
        wire_error (self->client_sock, client, service, body, BS_ERR_forbidden, message);
        bs_frames_close (frames, count);
        return;
    }
    uint8_t key [CACHE_KEY_MAX];
    size_t key_size = 0;
    if (svc == self->catalog && !at && cache_enabled (self->cache))
        key_size = cache_key_for (op, zmq_msg_data (body), zmq_msg_size (body), key);
    //  A client that floods the broker is refused alone, cache hits included
    uint64_t client_key = quota_key (zmq_msg_data (client), zmq_msg_size (client));
    if (!quota_take (self->quota, client_key)) {
        wire_error (self->client_sock, client, service, body, BS_ERR_overloaded,
                      quota_total (self->quota) >= (uint32_t) self->options.max_inflight?
                      "the broker has too many requests in flight; retry shortly":
                      "you have too many requests in flight; wait for answers before sending more");
        bs_frames_close (frames, count);
        return;
    }
    //  A cache hit holds its place only while it is answered
    if (key_size && cache_io_serve (self->cache, self->options.cache_ttl_ms, self->client_sock, &frames [0],
                                     &frames [4], key, key_size)) {
        quota_give (self->quota, client_key);
        bs_frames_close (frames, count);
        return;
    }
    uint32_t index = requests_alloc (self->requests);
    request_t *req = requests_at (self->requests, index);
    req->client_key = client_key;
    zmq_msg_init (&req->client);
    zmq_msg_move (&req->client, client);
    zmq_msg_init (&req->body);
    zmq_msg_move (&req->body, body);
    if (count > 5) {
        req->more_count = count - 5;
        req->more = calloc ((size_t) req->more_count, sizeof (zmq_msg_t));
        if (!req->more)
            abort ();
        for (int i = 0; i < req->more_count; i++) {
            zmq_msg_init (&req->more [i]);
            zmq_msg_move (&req->more [i], &frames [5 + i]);
        }
    }
    req->service = svc;
    req->op = op;
    req->cacheable = key_size > 0;
    if (key_size) {
        memcpy (req->cache_key, key, key_size);
        req->cache_key_size = (uint8_t) key_size;
        req->cache_epoch = self->catalog_epoch;
        req->cache_round = self->serving_round;
    }
    snprintf (req->target, sizeof req->target, "%s", target);
    req->created = zclock_mono ();
    req->deadline = req->created + self->options.request_timeout_ms;
    bs_frames_close (frames, count);
    broker_dispatch (self, index);
}
