/*  probe - sends hand-made, mostly malformed, messages to a running cluster
 *  and prints what came back, for the bad-input tests.
 *
 *  usage: probe CLIENT-ENDPOINT NODE-ENDPOINT CASE
 *  Prints the reply body as JSON (or "no reply") and exits 0 when a reply
 *  came, 1 when none did.
 */
#include "bs_client.h"
#include "bs_mdp.h"
#include "bs_msg.h"

#include <czmq.h>
#include <msgpack.h>
#include <string.h>

typedef struct { msgpack_sbuffer sbuf; msgpack_packer pk; } raw_t;

static void
raw_init (raw_t *r, uint32_t entries, const char *op)
{
    msgpack_sbuffer_init (&r->sbuf);
    msgpack_packer_init (&r->pk, &r->sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&r->pk, entries);
    uint8_t rid [BS_RID_SIZE];
    bs_rid_generate (rid);
    msgpack_pack_str_with_body (&r->pk, "op", 2);
    msgpack_pack_str_with_body (&r->pk, op, strlen (op));
    msgpack_pack_str_with_body (&r->pk, "rid", 3);
    msgpack_pack_bin_with_body (&r->pk, rid, sizeof rid);
}

static void raw_key (raw_t *r, const char *k) { msgpack_pack_str_with_body (&r->pk, k, strlen (k)); }
static void raw_str (raw_t *r, const char *v, size_t n) { msgpack_pack_str_with_body (&r->pk, v, n); }

static int
s_print (bs_msg_t *reply)
{
    if (!reply) {
        printf ("no reply\n");
        return 1;
    }
    char *json = bs_msg_to_json (reply);
    printf ("%s\n", json);
    free (json);
    bs_msg_destroy (&reply);
    return 0;
}

static int
s_send (bs_client_t *client, const char *service, const void *body, size_t size)
{
    const void *frames [3] = { BS_MDPC, service, body };
    const size_t sizes [3] = { strlen (BS_MDPC), strlen (service), size };
    return s_print (bs_client_call_raw (client, frames, sizes, 3));
}

static int
s_send_raw (bs_client_t *client, raw_t *r, const char *service)
{
    int rc = s_send (client, service, r->sbuf.data, r->sbuf.size);
    msgpack_sbuffer_destroy (&r->sbuf);
    return rc;
}

int
main (int argc, char **argv)
{
    if (argc != 4) {
        fprintf (stderr, "usage: probe CLIENT-ENDPOINT NODE-ENDPOINT CASE\n");
        return 2;
    }
    zsys_handler_set (NULL);
    const char *which = argv [3];
    bs_client_t *client = bs_client_new (argv [1]);
    bs_client_set_timeout (client, 3000);
    raw_t r;
    int rc = 2;
    if (strcmp (which, "malformed-msgpack") == 0)
        rc = s_send (client, "catalog", "\xc1\x00\xff\x93", 4);
    else
    if (strcmp (which, "not-a-map") == 0)
        rc = s_send (client, "catalog", "\x93\x01\x02\x03", 4);
    else
    if (strcmp (which, "frame-count") == 0) {
        const void *frames [2] = { BS_MDPC, "catalog" };
        const size_t sizes [2] = { strlen (BS_MDPC), 7 };
        rc = s_print (bs_client_call_raw (client, frames, sizes, 2));
    }
    else
    if (strcmp (which, "extra-frames") == 0) {
        const void *frames [5] = { BS_MDPC, "catalog", "a", "b", "c" };
        const size_t sizes [5] = { strlen (BS_MDPC), 7, 1, 1, 1 };
        rc = s_print (bs_client_call_raw (client, frames, sizes, 5));
    }
    else
    if (strcmp (which, "wrong-header") == 0) {
        const void *frames [3] = { "MDPC99", "catalog", "\x80" };
        const size_t sizes [3] = { 6, 7, 1 };
        rc = s_print (bs_client_call_raw (client, frames, sizes, 3));
    }
    else
    if (strcmp (which, "unknown-service") == 0) {
        raw_init (&r, 3, "lookup");
        raw_key (&r, "item"); msgpack_pack_int64 (&r.pk, 666);
        rc = s_send_raw (client, &r, "warehouse");
    }
    else
    if (strcmp (which, "unknown-op") == 0) {
        raw_init (&r, 2, "steal");
        rc = s_send_raw (client, &r, "catalog");
    }
    else
    if (strcmp (which, "wrong-service-op") == 0) {
        raw_init (&r, 3, "buy");
        raw_key (&r, "item"); msgpack_pack_int64 (&r.pk, 666);
        rc = s_send_raw (client, &r, "catalog");
    }
    else
    if (strcmp (which, "wrong-type") == 0) {
        raw_init (&r, 3, "buy");
        raw_key (&r, "item"); raw_str (&r, "666", 3);
        rc = s_send_raw (client, &r, "order");
    }
    else
    if (strcmp (which, "negative-count") == 0) {
        raw_init (&r, 4, "restock");
        raw_key (&r, "item"); msgpack_pack_int64 (&r.pk, 666);
        raw_key (&r, "count"); msgpack_pack_int64 (&r.pk, -3);
        rc = s_send_raw (client, &r, "catalog");
    }
    else
    if (strcmp (which, "absurd-count") == 0) {
        raw_init (&r, 4, "restock");
        raw_key (&r, "item"); msgpack_pack_int64 (&r.pk, 666);
        raw_key (&r, "count"); msgpack_pack_int64 (&r.pk, 5000000000000LL);
        rc = s_send_raw (client, &r, "catalog");
    }
    else
    if (strcmp (which, "negative-price") == 0) {
        raw_init (&r, 4, "set_price");
        raw_key (&r, "item"); msgpack_pack_int64 (&r.pk, 666);
        raw_key (&r, "cost"); msgpack_pack_int64 (&r.pk, -1);
        rc = s_send_raw (client, &r, "catalog");
    }
    else
    if (strcmp (which, "unknown-item") == 0) {
        raw_init (&r, 4, "set_price");
        raw_key (&r, "item"); msgpack_pack_int64 (&r.pk, 424242);
        raw_key (&r, "cost"); msgpack_pack_int64 (&r.pk, 3);
        rc = s_send_raw (client, &r, "catalog");
    }
    else
    if (strcmp (which, "long-title") == 0 || strcmp (which, "long-topic") == 0) {
        char text [400];
        memset (text, 'x', sizeof text);
        bool title = strcmp (which, "long-title") == 0;
        raw_init (&r, 7, "add_book");
        raw_key (&r, "item"); msgpack_pack_int64 (&r.pk, 777777);
        raw_key (&r, "topic"); raw_str (&r, text, title? 5: 65);
        raw_key (&r, "title"); raw_str (&r, text, title? 201: 5);
        raw_key (&r, "cost"); msgpack_pack_int64 (&r.pk, 1);
        raw_key (&r, "stock"); msgpack_pack_int64 (&r.pk, 1);
        rc = s_send_raw (client, &r, "catalog");
    }
    else
    if (strcmp (which, "oversized") == 0) {
        size_t size = 200 * 1024;
        char *big = calloc (1, size);
        raw_init (&r, 3, "search");
        raw_key (&r, "topic"); raw_str (&r, big, size);
        free (big);
        rc = s_send_raw (client, &r, "catalog");
    }
    else
    if (strcmp (which, "node-garbage") == 0) {
        //  A stranger on the node port: junk, a reply for nobody, a READY
        //  for a service that does not exist.  Nobody can be answered; the
        //  broker must drop them and keep serving.
        zsock_t *node = zsock_new (ZMQ_DEALER);
        zsock_connect (node, "%s", argv [2]);
        zstr_send (node, "garbage");
        zsock_send (node, "sss", "", BS_MDPW, "\x03");
        zsock_send (node, "ssbss", "", BS_MDPW, "\x03", 1, "12345678", "", "\x80");
        zsock_send (node, "ssbs", "", BS_MDPW, "\x01", 1, "warehouse");
        zsock_send (node, "ssb", "", BS_MDPW, "\x09", 1);
        zclock_sleep (200);
        zsock_destroy (&node);
        bs_msg_t *status = bs_msg_new_request (BS_OP_status);
        rc = s_print (bs_client_call (client, "broker", status));
        bs_msg_destroy (&status);
    }
    else
    if (strcmp (which, "bad-node-ids") == 0) {
        //  READY with an id that is not plain text, and with an id another
        //  live node has: neither may register
        zsock_t *odd = zsock_new (ZMQ_DEALER);
        zsock_t *twin = zsock_new (ZMQ_DEALER);
        zsock_connect (odd, "%s", argv [2]);
        zsock_connect (twin, "%s", argv [2]);
        zsock_send (odd, "ssbss", "", BS_MDPW, "\x01", 1, "catalog", "bad\x01id");
        zsock_send (twin, "ssbss", "", BS_MDPW, "\x01", 1, "catalog", "catalog-1");
        zclock_sleep (300);
        zsock_destroy (&odd);
        zsock_destroy (&twin);
        bs_msg_t *status = bs_msg_new_request (BS_OP_status);
        rc = s_print (bs_client_call (client, "broker", status));
        bs_msg_destroy (&status);
    }
    else
    if (strcmp (which, "flood") == 0) {
        //  For 3 s, keep 100 lookups outstanding on one connection; count
        //  the answers by kind: {"answered":N,"ok":N,"overloaded":N}
        bs_msg_t *lookup = bs_msg_new_request (BS_OP_lookup);
        bs_msg_set_int (lookup, BS_FIELD_item, 666);
        int sent = 0, answered = 0, good = 0, overloaded = 0;
        int64_t until = zclock_mono () + 3000;
        zpoller_t *poller = zpoller_new (bs_client_socket (client), NULL);
        while (true) {
            while (sent - answered < 100 && zclock_mono () < until) {
                uint8_t rid [BS_RID_SIZE];
                bs_rid_generate (rid);
                bs_msg_set_bin (lookup, BS_FIELD_rid, rid, sizeof rid);
                if (bs_client_send (client, "catalog", lookup) == 0)
                    sent++;
            }
            if (answered == sent || !zpoller_wait (poller, 3000))
                break;
            bs_msg_t *reply = bs_client_recv (client);
            answered++;
            if (reply && bs_msg_int (reply, BS_FIELD_ok))
                good++;
            else
            if (reply && strcmp (bs_msg_str (reply, BS_FIELD_error), "overloaded") == 0
            &&  *bs_msg_str (reply, BS_FIELD_message))
                overloaded++;
            bs_msg_destroy (&reply);
        }
        zpoller_destroy (&poller);
        bs_msg_destroy (&lookup);
        printf ("{\"sent\":%d,\"answered\":%d,\"ok\":%d,\"overloaded\":%d}\n", sent, answered, good, overloaded);
        rc = 0;
    }
    else
        fprintf (stderr, "probe: unknown case %s\n", which);
    bs_client_destroy (&client);
    return rc;
}
