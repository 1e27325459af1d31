/*  test_etcd - the etcd client against a real etcd member  */
#include "bs_etcd.h"
#include "election.h"
#include "etcd_fixture.h"
#include "testing.h"

#include <pthread.h>

static etcd_fixture_t s_etcd;

static void
test_endpoint_lists (void)
{
    bs_etcd_t *client;
    CHECK (bs_etcd_new ("", 1000) == NULL);
    CHECK (bs_etcd_new ("ftp://127.0.0.1:1", 1000) == NULL);
    CHECK (bs_etcd_new ("http://127.0.0.1:1,,http://127.0.0.1:2", 1000) == NULL);
    CHECK (bs_etcd_new ("http://127.0.0.1:1", 0) == NULL);
    CHECK (bs_etcd_new ("http://a:1,http://a:2,http://a:3,http://a:4,http://a:5,"
                        "http://a:6,http://a:7,http://a:8,http://a:9", 1000) == NULL);
    client = bs_etcd_new ("http://127.0.0.1:1,https://127.0.0.1:2/", 1000);
    CHECK (client != NULL);
    bs_etcd_destroy (&client);
    CHECK (client == NULL);
}

static void
test_unreachable (void)
{
    char dead [64];
    snprintf (dead, sizeof dead, "http://127.0.0.1:%d", etcd_fixture_free_port ());
    bs_etcd_t *client = bs_etcd_new (dead, 1000);
    bs_etcd_kvs_t *kvs = NULL;
    CHECK (bs_etcd_get (client, "/unit/none", &kvs) == BS_ETCD_UNREACHABLE);
    CHECK (kvs == NULL);
    //  Nothing was sent, so a write is known not to have happened
    CHECK (bs_etcd_put (client, "/unit/none", "x", 0) == BS_ETCD_UNREACHABLE);
    CHECK (strstr (bs_etcd_error (client), dead) != NULL);
    bs_etcd_destroy (&client);
}

static void
test_put_and_get (void)
{
    bs_etcd_t *client = bs_etcd_new (s_etcd.url, 2000);
    bs_etcd_kvs_t *kvs = NULL;
    CHECK (bs_etcd_get (client, "/unit/absent", &kvs) == BS_ETCD_OK);
    CHECK (kvs && kvs->count == 0);
    bs_etcd_kvs_destroy (&kvs);

    CHECK (bs_etcd_put (client, "/unit/a", "{\"epoch\":1}", 0) == BS_ETCD_OK);
    CHECK (bs_etcd_get (client, "/unit/a", &kvs) == BS_ETCD_OK);
    CHECK (kvs && kvs->count == 1);
    if (kvs && kvs->count == 1) {
        CHECK (streq (kvs->kv [0].key, "/unit/a"));
        CHECK (streq (kvs->kv [0].value, "{\"epoch\":1}"));
        CHECK (kvs->kv [0].value_size == 11);
        CHECK (kvs->kv [0].mod_revision > 0);
        CHECK (kvs->kv [0].version == 1);
        CHECK (kvs->revision >= kvs->kv [0].mod_revision);
    }
    bs_etcd_kvs_destroy (&kvs);
    //  An empty value is a value, not an absent key
    CHECK (bs_etcd_put (client, "/unit/empty", "", 0) == BS_ETCD_OK);
    CHECK (bs_etcd_get (client, "/unit/empty", &kvs) == BS_ETCD_OK);
    CHECK (kvs && kvs->count == 1 && kvs->kv [0].value_size == 0 && streq (kvs->kv [0].value, ""));
    bs_etcd_kvs_destroy (&kvs);
    bs_etcd_destroy (&client);
}

static void
test_prefix (void)
{
    bs_etcd_t *client = bs_etcd_new (s_etcd.url, 2000);
    CHECK (bs_etcd_put (client, "/unit/p/b", "2", 0) == BS_ETCD_OK);
    CHECK (bs_etcd_put (client, "/unit/p/a", "1", 0) == BS_ETCD_OK);
    CHECK (bs_etcd_put (client, "/unit/p0", "outside", 0) == BS_ETCD_OK);
    CHECK (bs_etcd_put (client, "/unit/q", "outside", 0) == BS_ETCD_OK);
    bs_etcd_kvs_t *kvs = NULL;
    CHECK (bs_etcd_get_prefix (client, "/unit/p/", &kvs) == BS_ETCD_OK);
    CHECK (kvs && kvs->count == 2);
    if (kvs && kvs->count == 2) {
        CHECK (streq (kvs->kv [0].key, "/unit/p/a") && streq (kvs->kv [0].value, "1"));
        CHECK (streq (kvs->kv [1].key, "/unit/p/b") && streq (kvs->kv [1].value, "2"));
    }
    bs_etcd_kvs_destroy (&kvs);
    bs_etcd_destroy (&client);
}

static void
test_compare_and_swap (void)
{
    bs_etcd_t *client = bs_etcd_new (s_etcd.url, 2000);
    int64_t first = 0, second = 0, ignored = 0;
    //  Create-only: the second creation loses
    CHECK (bs_etcd_put_if (client, "/unit/cas", "one", 0, 0, &first) == BS_ETCD_OK);
    CHECK (first > 0);
    CHECK (bs_etcd_put_if (client, "/unit/cas", "two", 0, 0, &ignored) == BS_ETCD_COMPARE_FAILED);
    CHECK (strstr (bs_etcd_error (client), "/unit/cas") != NULL);
    //  At the revision read: wins once, then that revision is stale
    CHECK (bs_etcd_put_if (client, "/unit/cas", "three", first, 0, &second) == BS_ETCD_OK);
    CHECK (second > first);
    CHECK (bs_etcd_put_if (client, "/unit/cas", "four", first, 0, &ignored) == BS_ETCD_COMPARE_FAILED);
    bs_etcd_kvs_t *kvs = NULL;
    CHECK (bs_etcd_get (client, "/unit/cas", &kvs) == BS_ETCD_OK);
    CHECK (kvs && kvs->count == 1 && streq (kvs->kv [0].value, "three")
           && kvs->kv [0].mod_revision == second);
    bs_etcd_kvs_destroy (&kvs);
    //  Deleting at a stale revision changes nothing; at the current one, deletes
    CHECK (bs_etcd_delete_if (client, "/unit/cas", first) == BS_ETCD_COMPARE_FAILED);
    CHECK (bs_etcd_delete_if (client, "/unit/cas", second) == BS_ETCD_OK);
    CHECK (bs_etcd_get (client, "/unit/cas", &kvs) == BS_ETCD_OK);
    CHECK (kvs && kvs->count == 0);
    bs_etcd_kvs_destroy (&kvs);
    bs_etcd_destroy (&client);
}

//  Two brokers elect at once, as after a failover both might: each reads
//  the partition's meta, decides from it (the primary it names is taken
//  for dead) and writes its decision by compare-and-swap on the revision
//  it read.  Every epoch must have exactly one winner.
#define RACE_ROUNDS 150
typedef struct {
    const char *name;
    int wins [RACE_ROUNDS + 2];
    int errors;
    int lost;                   //  races lost: the other wrote first
} racer_t;

static void *
s_race (void *arg)
{
    racer_t *racer = (racer_t *) arg;
    bs_etcd_t *client = bs_etcd_new (s_etcd.url, 5000);
    const char *replicas [] = { "catalog-1", "catalog-2", "catalog-3" };
    for (int attempt = 0; attempt < RACE_ROUNDS * 4; attempt++) {
        bs_etcd_kvs_t *kvs = NULL;
        if (bs_etcd_get (client, "/unit/race/catalog", &kvs) != BS_ETCD_OK) {
            racer->errors++;
            continue;
        }
        election_meta_t meta, next;
        char reason [200];
        memset (&meta, 0, sizeof meta);
        if (kvs->count && !election_meta_decode (kvs->kv [0].value, &meta, reason, sizeof reason)) {
            fprintf (stderr, "  %s read a bad meta: %s\n", racer->name, reason);
            racer->errors++;
        }
        int64_t revision = kvs->count? kvs->kv [0].mod_revision: 0;
        bs_etcd_kvs_destroy (&kvs);
        if (meta.epoch >= RACE_ROUNDS)
            break;
        election_candidate_t live [3];
        size_t count = 0;
        for (size_t index = 0; index < 3; index++)
            if (strcmp (replicas [index], meta.primary))
                live [count++] = (election_candidate_t) { replicas [index], meta.epoch, meta.epoch * 10, 0, false };
        if (election_decide (&meta, live, count, false, &next) != ELECTION_ELECT) {
            racer->errors++;
            continue;
        }
        //  Keep every replica in the set so that the next round can elect
        for (size_t index = 0; index < 3; index++) {
            election_meta_t grown;
            if (election_expand (&next, replicas [index], &grown))
                next = grown;
        }
        char *value = election_meta_encode (&next);
        bs_etcd_rc_t rc = bs_etcd_put_if (client, "/unit/race/catalog", value, revision, 0, NULL);
        free (value);
        if (rc == BS_ETCD_OK)
            racer->wins [next.epoch]++;
        else
        if (rc == BS_ETCD_COMPARE_FAILED)
            racer->lost++;
        else
            racer->errors++;
    }
    bs_etcd_destroy (&client);
    return NULL;
}

static void
test_one_winner_per_epoch (void)
{
    racer_t one = { .name = "broker-1" }, two = { .name = "broker-2" };
    pthread_t thread_one, thread_two;
    pthread_create (&thread_one, NULL, s_race, &one);
    pthread_create (&thread_two, NULL, s_race, &two);
    pthread_join (thread_one, NULL);
    pthread_join (thread_two, NULL);
    CHECK (one.errors == 0 && two.errors == 0);
    int both = 0, none = 0;
    for (int epoch = 1; epoch <= RACE_ROUNDS; epoch++) {
        int winners = one.wins [epoch] + two.wins [epoch];
        if (winners > 1)
            both++;
        if (winners == 0)
            none++;
    }
    if (both || none)
        fprintf (stderr, "  epochs with two winners: %d, with none: %d\n", both, none);
    CHECK (both == 0);
    CHECK (none == 0);
    //  They did race: a run in which neither ever lost shows nothing
    fprintf (stderr, "  races lost: %s %d, %s %d\n", one.name, one.lost, two.name, two.lost);
    CHECK (one.lost + two.lost > 0);
}

static void
test_leases (void)
{
    bs_etcd_t *client = bs_etcd_new (s_etcd.url, 2000);
    int64_t lease = 0, ttl = 0;
    CHECK (bs_etcd_lease_grant (client, 0, &lease) == BS_ETCD_ERROR);
    CHECK (bs_etcd_lease_grant (client, 5, &lease) == BS_ETCD_OK);
    CHECK (lease != 0);
    CHECK (bs_etcd_put_if (client, "/unit/active", "broker-1", 0, lease, NULL) == BS_ETCD_OK);
    CHECK (bs_etcd_lease_keepalive (client, lease, &ttl) == BS_ETCD_OK);
    CHECK (ttl > 0 && ttl <= 5);
    bs_etcd_kvs_t *kvs = NULL;
    CHECK (bs_etcd_get (client, "/unit/active", &kvs) == BS_ETCD_OK);
    CHECK (kvs && kvs->count == 1 && kvs->kv [0].lease == lease);
    bs_etcd_kvs_destroy (&kvs);
    //  A key under a lease goes with it, and the lease cannot be renewed
    CHECK (bs_etcd_lease_revoke (client, lease) == BS_ETCD_OK);
    CHECK (bs_etcd_get (client, "/unit/active", &kvs) == BS_ETCD_OK);
    CHECK (kvs && kvs->count == 0);
    bs_etcd_kvs_destroy (&kvs);
    CHECK (bs_etcd_lease_keepalive (client, lease, &ttl) == BS_ETCD_OK);
    CHECK (ttl == 0);
    //  A key cannot be written under a lease that does not exist
    CHECK (bs_etcd_put (client, "/unit/orphan", "x", lease) == BS_ETCD_ERROR);
    CHECK (strstr (bs_etcd_error (client), "lease") != NULL);
    bs_etcd_destroy (&client);
}

static void
test_moves_past_a_dead_endpoint (void)
{
    char list [160];
    snprintf (list, sizeof list, "http://127.0.0.1:%d,%s", etcd_fixture_free_port (), s_etcd.url);
    bs_etcd_t *client = bs_etcd_new (list, 2000);
    //  The write was refused at the dead endpoint's door, so it is safe to
    //  send on
    CHECK (bs_etcd_put (client, "/unit/moved", "yes", 0) == BS_ETCD_OK);
    bs_etcd_kvs_t *kvs = NULL;
    CHECK (bs_etcd_get (client, "/unit/moved", &kvs) == BS_ETCD_OK);
    CHECK (kvs && kvs->count == 1 && streq (kvs->kv [0].value, "yes"));
    bs_etcd_kvs_destroy (&kvs);
    bs_etcd_destroy (&client);
}

static void
test_paused_etcd_is_a_bounded_wait (void)
{
    bs_etcd_t *client = bs_etcd_new (s_etcd.url, 300);
    kill (s_etcd.pid, SIGSTOP);
    //  As its parent, see it stopped before asking anything
    int status = 0;
    CHECK (waitpid (s_etcd.pid, &status, WUNTRACED) == s_etcd.pid && WIFSTOPPED (status));
    //  The request reached a process that may act on it later: unknown
    CHECK (bs_etcd_put (client, "/unit/paused", "x", 0) == BS_ETCD_UNKNOWN);
    bs_etcd_kvs_t *kvs = NULL;
    CHECK (bs_etcd_get (client, "/unit/paused", &kvs) == BS_ETCD_UNREACHABLE);
    CHECK (kvs == NULL);
    bs_etcd_kvs_destroy (&kvs);
    CHECK (strstr (bs_etcd_error (client), s_etcd.url) != NULL);
    kill (s_etcd.pid, SIGCONT);
    CHECK (etcd_fixture_wait (&s_etcd, zclock_mono () + 10000));
    bs_etcd_destroy (&client);
}

int
main (void)
{
    RUN (test_endpoint_lists);
    RUN (test_unreachable);
    if (!etcd_fixture_start (&s_etcd)) {
        printf ("not ok - a real etcd member started for the tests\n");
        etcd_fixture_stop (&s_etcd);
        return 1;
    }
    RUN (test_put_and_get);
    RUN (test_prefix);
    RUN (test_compare_and_swap);
    RUN (test_one_winner_per_epoch);
    RUN (test_leases);
    RUN (test_moves_past_a_dead_endpoint);
    RUN (test_paused_etcd_is_a_bounded_wait);
    etcd_fixture_stop (&s_etcd);
    return DONE ();
}
