/*  load - drives a cluster with concurrent clients and accounts for every
 *  write, for the replication and fault tests.
 *
 *  usage: load ENDPOINT CLIENTS REQUESTS MIX [SEED]
 *    MIX   comma-separated op:weight, e.g. buy:60,set_price:10,restock:10,add_book:5,lookup:15
 *  Each client has one request outstanding and retries it, with the same
 *  request id, until it gets a definite answer (any reply but
 *  "unavailable"), so every write's outcome is known.  Prints one JSON
 *  object: totals, and per item the copies bought and restocked by acked
 *  requests.
 */
#include "bs_mdp.h"
#include "bs_msg.h"

#include <czmq.h>
#include <string.h>

#define ATTEMPT_MS 1000
#define GIVE_UP_MS 60000
#define MAX_ITEMS 4096

typedef struct {
    zsock_t *sock;
    bs_msg_t *request;
    uint8_t *body;
    size_t size;
    const char *service;
    int64_t first_sent, sent_at, retry_at;
    bool busy;
} client_t;

typedef struct { int64_t item, bought, restocked, initial; bool added; } tally_t;

static tally_t s_items [MAX_ITEMS];
static int s_item_count;
static const int64_t s_seed_items [] = { 666, 321, 768, 546, 684, 499, 846 };

static tally_t *
s_tally (int64_t item)
{
    for (int i = 0; i < s_item_count; i++)
        if (s_items [i].item == item)
            return &s_items [i];
    if (s_item_count == MAX_ITEMS)
        return NULL;
    s_items [s_item_count].item = item;
    return &s_items [s_item_count++];
}

typedef struct { char op [16]; int weight; } mix_t;

static void
s_send (client_t *c)
{
    void *sock = zsock_resolve (c->sock);
    zmq_send (sock, "", 0, ZMQ_SNDMORE);
    zmq_send (sock, BS_MDPC, strlen (BS_MDPC), ZMQ_SNDMORE);
    zmq_send (sock, c->service, strlen (c->service), ZMQ_SNDMORE);
    zmq_send (sock, c->body, c->size, 0);
    c->sent_at = zclock_mono ();
    c->retry_at = 0;
}

int
main (int argc, char **argv)
{
    if (argc < 5) {
        fprintf (stderr, "usage: load ENDPOINT CLIENTS REQUESTS MIX [SEED]\n");
        return 2;
    }
    zsys_handler_set (NULL);
    int clients = atoi (argv [2]);
    long total = atol (argv [3]);
    unsigned seed = argc > 5? (unsigned) atoi (argv [5]): (unsigned) getpid ();
    srand (seed);
    mix_t mix [8];
    int mix_count = 0, weight_sum = 0;
    char *spec = strdup (argv [4]);
    for (char *tok = strtok (spec, ","); tok && mix_count < 8; tok = strtok (NULL, ",")) {
        char *colon = strchr (tok, ':');
        if (!colon)
            continue;
        *colon = 0;
        snprintf (mix [mix_count].op, sizeof mix [0].op, "%s", tok);
        mix [mix_count].weight = atoi (colon + 1);
        weight_sum += mix [mix_count++].weight;
    }
    free (spec);
    if (clients < 1 || total < 1 || weight_sum < 1) {
        fprintf (stderr, "load: bad arguments\n");
        return 2;
    }
    client_t *pool = calloc ((size_t) clients, sizeof (client_t));
    zmq_pollitem_t *items = calloc ((size_t) clients, sizeof (zmq_pollitem_t));
    for (int i = 0; i < clients; i++) {
        pool [i].sock = zsock_new (ZMQ_DEALER);
        zsock_set_linger (pool [i].sock, 0);
        zsock_connect (pool [i].sock, "%s", argv [1]);
        items [i] = (zmq_pollitem_t) { zsock_resolve (pool [i].sock), 0, ZMQ_POLLIN, 0 };
    }
    long issued = 0, done = 0, acked_buys = 0, refused = 0, retries = 0, gave_up = 0;
    long counts [BS_ERR_COUNT] = { 0 };
    int64_t max_latency = 0, next_book = 500000 + (int64_t) (seed % 1000) * 1000;
    int64_t start = zclock_mono ();
    while (done < total) {
        int64_t now = zclock_mono ();
        for (int i = 0; i < clients; i++) {
            client_t *c = &pool [i];
            if (!c->busy && issued < total) {
                int pick = rand () % weight_sum, k = 0;
                while (pick >= mix [k].weight)
                    pick -= mix [k++].weight;
                bs_op_t op = bs_op_lookup (mix [k].op, strlen (mix [k].op));
                if (op == BS_OP_COUNT) {
                    fprintf (stderr, "load: unknown op %s\n", mix [k].op);
                    return 2;
                }
                c->request = bs_msg_new_request (op);
                int64_t item = s_seed_items [rand () % 7];
                if (op == BS_OP_add_book) {
                    item = next_book++;
                    char title [64];
                    snprintf (title, sizeof title, "Load book %lld", (long long) item);
                    bs_msg_set_str (c->request, BS_FIELD_topic, "load");
                    bs_msg_set_str (c->request, BS_FIELD_title, title);
                    bs_msg_set_int (c->request, BS_FIELD_cost, 1 + rand () % 50);
                    bs_msg_set_int (c->request, BS_FIELD_stock, 5);
                }
                if (op == BS_OP_search)
                    bs_msg_set_str (c->request, BS_FIELD_topic, rand () % 2? "graduate_school": "distributed_systems");
                else
                if (op != BS_OP_orders && op != BS_OP_list)
                    bs_msg_set_int (c->request, BS_FIELD_item, item);
                if (op == BS_OP_set_price)
                    bs_msg_set_int (c->request, BS_FIELD_cost, 1 + rand () % 50);
                if (op == BS_OP_restock)
                    bs_msg_set_int (c->request, BS_FIELD_count, 1 + rand () % 5);
                c->body = bs_msg_encode (c->request, &c->size);
                c->service = bs_op_service (op);
                c->busy = true;
                c->first_sent = now;
                issued++;
                s_send (c);
            }
            else
            if (c->busy && ((c->retry_at && now >= c->retry_at) || (!c->retry_at && now - c->sent_at > ATTEMPT_MS))) {
                if (now - c->first_sent > GIVE_UP_MS) {
                    //  No definite answer: the outcome of this write is unknown
                    gave_up++;
                    c->busy = false;
                    bs_msg_destroy (&c->request);
                    free (c->body);
                    done++;
                    continue;
                }
                retries++;
                s_send (c);
            }
        }
        if (zmq_poll (items, clients, 20) < 0)
            break;
        for (int i = 0; i < clients; i++) {
            if (!(items [i].revents & ZMQ_POLLIN))
                continue;
            client_t *c = &pool [i];
            zmsg_t *msg = zmsg_recv (c->sock);
            zframe_t *body = msg && zmsg_size (msg) == 4? zmsg_last (msg): NULL;
            bs_err_t err;
            bs_msg_t *reply = body? bs_msg_decode (zframe_data (body), zframe_size (body), &err, NULL, 0): NULL;
            zmsg_destroy (&msg);
            if (!reply || !c->busy)
                goto next;
            size_t n1, n2;
            const uint8_t *r1 = bs_msg_bin (reply, BS_FIELD_rid, &n1);
            const uint8_t *r2 = bs_msg_bin (c->request, BS_FIELD_rid, &n2);
            if (r1 && (n1 != n2 || memcmp (r1, r2, n1) != 0))
                goto next;          //  a late answer to an earlier attempt
            if (!bs_msg_int (reply, BS_FIELD_ok)
            &&  strcmp (bs_msg_str (reply, BS_FIELD_error), bs_err_name (BS_ERR_unavailable)) == 0) {
                c->retry_at = zclock_mono () + 50;
                goto next;
            }
            int64_t latency = zclock_mono () - c->first_sent;
            if (latency > max_latency)
                max_latency = latency;
            bs_op_t op = bs_msg_op (c->request);
            int64_t item = bs_msg_int (c->request, BS_FIELD_item);
            if (bs_msg_int (reply, BS_FIELD_ok)) {
                tally_t *t = s_tally (item);
                if (op == BS_OP_buy && t) {
                    t->bought++;
                    acked_buys++;
                }
                if (op == BS_OP_restock && t)
                    t->restocked += bs_msg_int (c->request, BS_FIELD_count);
                if (op == BS_OP_add_book && t) {
                    t->added = true;
                    t->initial = bs_msg_int (c->request, BS_FIELD_stock);
                }
            }
            else {
                refused++;
                for (int e = 0; e < BS_ERR_COUNT; e++)
                    if (strcmp (bs_err_name ((bs_err_t) e), bs_msg_str (reply, BS_FIELD_error)) == 0)
                        counts [e]++;
            }
            c->busy = false;
            bs_msg_destroy (&c->request);
            free (c->body);
            done++;
        next:
            bs_msg_destroy (&reply);
        }
    }
    double seconds = (zclock_mono () - start) / 1000.0;
    printf ("{\"requests\":%ld,\"seconds\":%.2f,\"acked_buys\":%ld,\"refused\":%ld,\"retries\":%ld,"
            "\"gave_up\":%ld,\"max_latency_ms\":%lld,\"errors\":{",
            done, seconds, acked_buys, refused, retries, gave_up, (long long) max_latency);
    bool first = true;
    for (int e = 1; e < BS_ERR_COUNT; e++)
        if (counts [e]) {
            printf ("%s\"%s\":%ld", first? "": ",", bs_err_name ((bs_err_t) e), counts [e]);
            first = false;
        }
    printf ("},\"items\":{");
    for (int i = 0; i < s_item_count; i++)
        printf ("%s\"%lld\":{\"bought\":%lld,\"restocked\":%lld,\"added\":%s,\"initial\":%lld}", i? ",": "",
                (long long) s_items [i].item, (long long) s_items [i].bought, (long long) s_items [i].restocked,
                s_items [i].added? "true": "false", (long long) s_items [i].initial);
    printf ("}}\n");
    for (int i = 0; i < clients; i++)
        zsock_destroy (&pool [i].sock);
    free (pool);
    free (items);
    return gave_up? 1: 0;
}
