/*  cache_io - the broker's cache on its sockets (see cache_io.h).
 */
#include "cache_io.h"
#include "bs_frames.h"
#include "bs_msg.h"
#include "wire.h"

#include <czmq.h>
#include <string.h>

//  An invalidation is one frame; room for a few more to refuse
#define MAX_FRAMES  8

bool
cache_io_serve (cache_t *cache, int ttl_ms, void *client_sock, zmq_msg_t *client,
                zmq_msg_t *request, const uint8_t *key, size_t key_size)
{
    size_t size, rid_offset;
    int64_t now = ttl_ms? zclock_mono (): 0;
    const uint8_t *cached = cache_get (cache, key, key_size, now, &size, &rid_offset);
    if (!cached)
        return false;
    const uint8_t *rid;
    size_t n;
    bs_peek_bytes (zmq_msg_data (request), zmq_msg_size (request), BS_FIELD_rid, &rid, &n);
    zmq_msg_t body;
    zmq_msg_init_size (&body, size);
    uint8_t *data = zmq_msg_data (&body);
    memcpy (data, cached, size);
    memcpy (data + rid_offset, rid, BS_RID_SIZE);
    wire_to_client (client_sock, client, "catalog", &body);
    return true;
}

void
cache_io_fill (cache_t *cache, int ttl_ms, uint64_t catalog_epoch, request_t *req,
               worker_t *worker, zmq_msg_t *reply)
{
    const uint8_t *data = zmq_msg_data (reply);
    size_t size = zmq_msg_size (reply);
    int64_t ok = 0, seq = 0;
    const uint8_t *rid;
    size_t n;
    if (!bs_peek_int (data, size, BS_FIELD_seq, &seq) || seq < 0)
        return;
    if (worker && worker == req->worker && (uint64_t) seq > worker->read_seq)
        worker->read_seq = (uint64_t) seq;
    if (!bs_peek_int (data, size, BS_FIELD_ok, &ok) || !ok
    ||  !bs_peek_bytes (data, size, BS_FIELD_rid, &rid, &n) || n != BS_RID_SIZE
    ||  req->cache_epoch != catalog_epoch)
        return;
    int64_t now = ttl_ms? zclock_mono (): 0;
    cache_put (cache, req->cache_key, req->cache_key_size, now, data, size,
               (size_t) (rid - data), (uint64_t) seq);
}

//  Catalog primary -> broker: [invalidate] on the REP socket.  Every
//  request gets exactly one reply, an error when it is malformed (and then
//  nothing is invalidated).
void
cache_io_invalidation (cache_t *cache, bool active, void *sock)
{
    zmq_msg_t frames [MAX_FRAMES];
    int count;
    int total = bs_frames_recv (sock, frames, MAX_FRAMES, &count);
    if (total < 0)
        return;
    bs_msg_t *request = NULL, *reply = NULL;
    char reason [160] = "";
    bs_err_t err = BS_ERR_bad_frame;
    if (total == 1) {
        request = bs_msg_decode (zmq_msg_data (&frames [0]), zmq_msg_size (&frames [0]), &err, reason, sizeof reason);
        if (request)
            err = bs_msg_validate_request (request, reason, sizeof reason);
        if (err == BS_OK && bs_msg_op (request) != BS_OP_invalidate) {
            err = BS_ERR_unknown_op;
            snprintf (reason, sizeof reason, "this socket only takes 'invalidate'");
        }
        for (size_t i = 0; err == BS_OK && i < bs_msg_count (request, BS_FIELD_items); i++) {
            bs_msg_t *key = bs_msg_at (request, BS_FIELD_items, i);
            if (!bs_msg_has (key, BS_FIELD_item) && !bs_msg_has (key, BS_FIELD_topic)) {
                err = BS_ERR_missing_field;
                snprintf (reason, sizeof reason, "every entry of 'items' needs an 'item' or a 'topic'");
            }
        }
    }
    else
        snprintf (reason, sizeof reason, "an invalidation is one frame");
    //  Only the active broker has a cache; a write must not count another
    //  broker's ack as the invalidation
    if (err == BS_OK && !active) {
        err = BS_ERR_not_active;
        snprintf (reason, sizeof reason, "this broker is not the active one");
    }
    if (err == BS_OK) {
        uint64_t version = (uint64_t) bs_msg_int (request, BS_FIELD_version);
        for (size_t i = 0; i < bs_msg_count (request, BS_FIELD_items); i++) {
            bs_msg_t *entry = bs_msg_at (request, BS_FIELD_items, i);
            uint8_t key [CACHE_KEY_MAX];
            size_t key_size;
            if (bs_msg_has (entry, BS_FIELD_item)) {
                key_size = cache_key_item (key, bs_msg_int (entry, BS_FIELD_item));
                cache_invalidate (cache, key, key_size, version);
            }
            if (bs_msg_has (entry, BS_FIELD_topic)) {
                const char *topic = bs_msg_str (entry, BS_FIELD_topic);
                key_size = cache_key_topic (key, topic, strlen (topic));
                if (key_size)
                    cache_invalidate (cache, key, key_size, version);
            }
        }
        reply = bs_msg_new_ok ();
    }
    else {
        zsys_warning ("broker: refused an invalidation: %s", reason);
        reply = bs_msg_new_error (err, reason);
    }
    size_t size;
    uint8_t *data = bs_msg_encode (reply, &size);
    zmq_send (sock, data, size, 0);
    free (data);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&request);
    bs_frames_close (frames, count);
}
