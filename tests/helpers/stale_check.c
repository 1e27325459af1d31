/*  stale_check - proves that no read returns data older than a write that
 *  was acknowledged before the read started.
 *
 *  usage: stale_check ENDPOINT SECONDS WRITERS READERS [SEED]
 *
 *  Writer threads buy, restock and reprice the seed books; each
 *  acknowledged write carries the book's new version, and the writer
 *  raises that book's "acknowledged" mark to it as soon as the reply
 *  arrives.  Reader threads copy the marks before they send a lookup or a
 *  search, and check that every book in the reply has at least the version
 *  its mark had: a lower one is a stale read.  Prints one JSON object and
 *  exits 1 when any read was stale (or nothing was checked).
 */
#include "bs_client.h"

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define ITEMS 7

static const int64_t s_items [ITEMS] = { 666, 321, 768, 546, 684, 499, 846 };
static char s_topics [ITEMS][65];
static _Atomic int64_t s_acked [ITEMS];
static _Atomic long s_writes, s_reads, s_checked, s_stale, s_failed;
static const char *s_endpoint;
static int64_t s_deadline;
static unsigned s_seed;

static int
s_index (int64_t item)
{
    for (int i = 0; i < ITEMS; i++)
        if (s_items [i] == item)
            return i;
    return -1;
}

static void
s_raise (int index, int64_t version)
{
    int64_t seen = atomic_load (&s_acked [index]);
    while (version > seen && !atomic_compare_exchange_weak (&s_acked [index], &seen, version))
        ;
}

static bs_client_t *
s_client (void)
{
    bs_client_t *client = bs_client_new (s_endpoint);
    bs_client_set_timeout (client, 1000);
    bs_client_set_attempts (client, 10);
    return client;
}

static void *
s_writer (void *arg)
{
    unsigned seed = s_seed * 7919 + (unsigned) (uintptr_t) arg;
    bs_client_t *client = s_client ();
    while (zclock_mono () < s_deadline) {
        int index = rand_r (&seed) % ITEMS;
        int dice = rand_r (&seed) % 4;
        bs_msg_t *request;
        const char *service = "catalog";
        if (dice < 2) {
            request = bs_msg_new_request (BS_OP_buy);
            service = "order";
        }
        else
        if (dice == 2) {
            request = bs_msg_new_request (BS_OP_restock);
            bs_msg_set_int (request, BS_FIELD_count, 2);
        }
        else {
            request = bs_msg_new_request (BS_OP_set_price);
            bs_msg_set_int (request, BS_FIELD_cost, 1 + rand_r (&seed) % 100);
        }
        bs_msg_set_int (request, BS_FIELD_item, s_items [index]);
        bs_msg_t *reply = bs_client_call (client, service, request);
        if (reply && bs_msg_int (reply, BS_FIELD_ok) && bs_msg_has (reply, BS_FIELD_version)) {
            s_raise (index, bs_msg_int (reply, BS_FIELD_version));
            atomic_fetch_add (&s_writes, 1);
        }
        else
        if (!reply)
            atomic_fetch_add (&s_failed, 1);
        bs_msg_destroy (&reply);
        bs_msg_destroy (&request);
    }
    bs_client_destroy (&client);
    return NULL;
}

//  Checks one book of a reply against the mark copied before the read
static void
s_check (const bs_msg_t *book, const int64_t *marks, const char *how)
{
    int index = s_index (bs_msg_int (book, BS_FIELD_item));
    if (index < 0)
        return;
    atomic_fetch_add (&s_checked, 1);
    int64_t version = bs_msg_int (book, BS_FIELD_version);
    if (version < marks [index]) {
        atomic_fetch_add (&s_stale, 1);
        fprintf (stderr, "stale %s of item %lld: version %lld, acknowledged %lld before the read\n",
                 how, (long long) s_items [index], (long long) version, (long long) marks [index]);
    }
}

static void *
s_reader (void *arg)
{
    unsigned seed = s_seed * 104729 + (unsigned) (uintptr_t) arg;
    bs_client_t *client = s_client ();
    while (zclock_mono () < s_deadline) {
        int index = rand_r (&seed) % ITEMS;
        bool search = rand_r (&seed) % 5 < 2;
        int64_t marks [ITEMS];
        for (int i = 0; i < ITEMS; i++)
            marks [i] = atomic_load (&s_acked [i]);
        bs_msg_t *request = bs_msg_new_request (search? BS_OP_search: BS_OP_lookup);
        if (search)
            bs_msg_set_str (request, BS_FIELD_topic, s_topics [index]);
        else
            bs_msg_set_int (request, BS_FIELD_item, s_items [index]);
        bs_msg_t *reply = bs_client_call (client, "catalog", request);
        if (reply && bs_msg_int (reply, BS_FIELD_ok)) {
            atomic_fetch_add (&s_reads, 1);
            if (search)
                for (size_t i = 0; i < bs_msg_count (reply, BS_FIELD_items); i++)
                    s_check (bs_msg_at (reply, BS_FIELD_items, i), marks, "search");
            else
                s_check (reply, marks, "lookup");
        }
        else
            atomic_fetch_add (&s_failed, 1);
        bs_msg_destroy (&reply);
        bs_msg_destroy (&request);
    }
    bs_client_destroy (&client);
    return NULL;
}

int
main (int argc, char **argv)
{
    if (argc < 5) {
        fprintf (stderr, "usage: stale_check ENDPOINT SECONDS WRITERS READERS [SEED]\n");
        return 2;
    }
    zsys_handler_set (NULL);
    s_endpoint = argv [1];
    int seconds = atoi (argv [2]), writers = atoi (argv [3]), readers = atoi (argv [4]);
    s_seed = argc > 5? (unsigned) atoi (argv [5]): (unsigned) getpid ();
    if (seconds < 1 || writers < 1 || readers < 1 || writers + readers > 256) {
        fprintf (stderr, "stale_check: SECONDS, WRITERS and READERS must be positive\n");
        return 2;
    }
    //  Learn each book's topic (and its version now) first
    bs_client_t *client = s_client ();
    for (int i = 0; i < ITEMS; i++) {
        bs_msg_t *request = bs_msg_new_request (BS_OP_lookup);
        bs_msg_set_int (request, BS_FIELD_item, s_items [i]);
        bs_msg_t *reply = bs_client_call (client, "catalog", request);
        if (!reply || !bs_msg_int (reply, BS_FIELD_ok)) {
            fprintf (stderr, "stale_check: cannot look up item %lld\n", (long long) s_items [i]);
            return 2;
        }
        snprintf (s_topics [i], sizeof s_topics [i], "%s", bs_msg_str (reply, BS_FIELD_topic));
        bs_msg_destroy (&reply);
        bs_msg_destroy (&request);
    }
    bs_client_destroy (&client);

    s_deadline = zclock_mono () + seconds * 1000LL;
    pthread_t threads [256];
    int count = 0;
    for (int i = 0; i < writers; i++)
        pthread_create (&threads [count++], NULL, s_writer, (void *) (uintptr_t) i);
    for (int i = 0; i < readers; i++)
        pthread_create (&threads [count++], NULL, s_reader, (void *) (uintptr_t) i);
    for (int i = 0; i < count; i++)
        pthread_join (threads [i], NULL);
    printf ("{\"seconds\":%d,\"writes\":%ld,\"reads\":%ld,\"checked\":%ld,\"stale\":%ld,\"failed\":%ld}\n",
            seconds, atomic_load (&s_writes), atomic_load (&s_reads), atomic_load (&s_checked),
            atomic_load (&s_stale), atomic_load (&s_failed));
    return atomic_load (&s_stale) == 0 && atomic_load (&s_checked) > 0 && atomic_load (&s_writes) > 0? 0: 1;
}
