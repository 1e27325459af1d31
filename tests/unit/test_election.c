/*  test_election - who leads a partition: the rules of the control plane  */
#include "election.h"
#include "testing.h"

#include <stdlib.h>
#include <string.h>

//  A meta at epoch, led by primary, with the in-sync ids given
static election_meta_t
s_meta (uint64_t epoch, const char *primary, const char *insync1, const char *insync2)
{
    election_meta_t meta;
    memset (&meta, 0, sizeof meta);
    meta.epoch = epoch;
    snprintf (meta.primary, sizeof meta.primary, "%s", primary);
    if (insync1)
        snprintf (meta.insync [meta.insync_count++], ELECTION_ID_MAX + 1, "%s", insync1);
    if (insync2)
        snprintf (meta.insync [meta.insync_count++], ELECTION_ID_MAX + 1, "%s", insync2);
    meta.start_seq = 1;
    return meta;
}

static void
test_live_primary_is_kept (void)
{
    election_meta_t meta = s_meta (3, "catalog-1", "catalog-1", "catalog-2"), next;
    election_candidate_t live [] = {
        { "catalog-2", 3, 90, 0, false }, { "catalog-1", 3, 80, 0, false }
    };
    //  Even a follower further ahead does not depose a live primary
    CHECK (election_decide (&meta, live, 2, false, &next) == ELECTION_KEEP);
    CHECK (next.epoch == 3 && strcmp (next.primary, "catalog-1") == 0);
}

static void
test_resigned_primary_is_elected_anew (void)
{
    //  The primary came back within its epoch (or a commit failed): it will
    //  not lead at epoch 3 again.  It is not kept, but it is still the
    //  most advanced member: it leads at epoch 4.
    election_meta_t meta = s_meta (3, "catalog-1", "catalog-1", "catalog-2"), next;
    election_candidate_t live [] = {
        { "catalog-2", 3, 70, 0, false }, { "catalog-1", 3, 80, 0, true }
    };
    CHECK (election_decide (&meta, live, 2, false, &next) == ELECTION_ELECT);
    CHECK (next.epoch == 4 && strcmp (next.primary, "catalog-1") == 0);
    //  Alone, too
    CHECK (election_decide (&meta, live + 1, 1, false, &next) == ELECTION_ELECT);
    CHECK (next.epoch == 4 && strcmp (next.primary, "catalog-1") == 0);
}

static void
test_only_the_insync_set_is_elected (void)
{
    //  The scenario of a lost acknowledged write: catalog-2 fell out of
    //  sync, the primary acknowledged alone, then hung.  catalog-2 alone is
    //  alive: it must not be elected, however far it claims to be.
    election_meta_t meta = s_meta (1, "catalog-1", "catalog-1", NULL), next;
    election_candidate_t live [] = { { "catalog-2", 1, 1000, 0, false } };
    CHECK (election_decide (&meta, live, 1, false, &next) == ELECTION_WAIT);
    CHECK (next.epoch == 1 && strcmp (next.primary, "catalog-1") == 0);
    //  An operator's unclean election takes it, at a new epoch
    CHECK (election_decide (&meta, live, 1, true, &next) == ELECTION_ELECT);
    CHECK (next.epoch == 2 && strcmp (next.primary, "catalog-2") == 0);
    CHECK (next.insync_count == 1 && strcmp (next.insync [0], "catalog-2") == 0);
    CHECK (next.start_seq == 1001);
}

static void
test_most_advanced_member_wins (void)
{
    election_meta_t meta, next;
    meta = s_meta (4, "catalog-1", "catalog-1", "catalog-2");
    snprintf (meta.insync [meta.insync_count++], ELECTION_ID_MAX + 1, "catalog-3");
    //  catalog-4 is furthest ahead but out of sync; of the members, the
    //  later epoch beats the longer log
    election_candidate_t live [] = {
        { "catalog-4", 4, 500, 0, false }, { "catalog-2", 3, 400, 0, false }, { "catalog-3", 4, 120, 0, false }
    };
    CHECK (election_decide (&meta, live, 3, false, &next) == ELECTION_ELECT);
    CHECK (strcmp (next.primary, "catalog-3") == 0);
    CHECK (next.epoch == 5);
    CHECK (next.start_seq == 121);
    //  The set keeps its members, the old primary too (until the new one
    //  takes the role, the broker's business), and gains nobody
    CHECK (next.insync_count == 3);
    CHECK (strcmp (next.insync [0], "catalog-3") == 0);
    CHECK (election_insync_has (&next, "catalog-2") && election_insync_has (&next, "catalog-1"));
    CHECK (!election_insync_has (&next, "catalog-4"));
    //  Should catalog-3 be unable to lead, the old primary, back, is
    //  electable in its place
    election_candidate_t back [] = { { "catalog-1", 4, 130, 0, false } };
    election_meta_t again;
    CHECK (election_decide (&next, back, 1, false, &again) == ELECTION_ELECT);
    CHECK (strcmp (again.primary, "catalog-1") == 0 && again.epoch == 6);
}

static void
test_ties_decide_alike (void)
{
    election_meta_t meta = s_meta (2, "catalog-1", "catalog-1", "catalog-3"), next_a, next_b;
    snprintf (meta.insync [meta.insync_count++], ELECTION_ID_MAX + 1, "catalog-2");
    election_candidate_t one_way [] = { { "catalog-3", 2, 7, 0, false }, { "catalog-2", 2, 7, 0, false } };
    election_candidate_t other_way [] = { { "catalog-2", 2, 7, 0, false }, { "catalog-3", 2, 7, 0, false } };
    CHECK (election_decide (&meta, one_way, 2, false, &next_a) == ELECTION_ELECT);
    CHECK (election_decide (&meta, other_way, 2, false, &next_b) == ELECTION_ELECT);
    CHECK (strcmp (next_a.primary, next_b.primary) == 0);
    CHECK (strcmp (next_a.primary, "catalog-2") == 0);
}

static void
test_epochs_only_grow (void)
{
    //  Whatever the replicas report of their own epochs (a replica cannot
    //  raise the partition's epoch by claiming one), the next epoch is the
    //  stored one plus one
    election_meta_t meta = s_meta (7, "order-1", "order-1", "order-2"), next;
    election_candidate_t live [] = { { "order-2", 1000000, 3, 0, false } };
    CHECK (election_decide (&meta, live, 1, false, &next) == ELECTION_ELECT);
    CHECK (next.epoch == 8);
    //  Repeated elections climb one at a time (order-2 could not lead:
    //  the old primary, still in the set, is elected back at 9)
    election_meta_t again;
    election_candidate_t back [] = { { "order-1", 7, 3, 0, false } };
    CHECK (election_decide (&next, back, 1, false, &again) == ELECTION_ELECT);
    CHECK (again.epoch == 9 && strcmp (again.primary, "order-1") == 0);
    //  A replica outside the set is never elected
    election_candidate_t outsider [] = { { "order-3", 9, 3, 0, false } };
    CHECK (election_decide (&again, outsider, 1, false, &next) == ELECTION_WAIT);
    CHECK (next.epoch == 9);
}

static void
test_first_election (void)
{
    election_meta_t meta, next;
    memset (&meta, 0, sizeof meta);
    election_candidate_t live [] = { { "catalog-2", 0, 0, 0, false }, { "catalog-1", 0, 0, 0, false } };
    CHECK (election_decide (&meta, live, 2, false, &next) == ELECTION_ELECT);
    CHECK (next.epoch == 1 && strcmp (next.primary, "catalog-1") == 0);
    CHECK (next.insync_count == 1);
    //  No live replica at all: wait
    CHECK (election_decide (&meta, NULL, 0, false, &next) == ELECTION_WAIT);
    //  An id that is not valid is never elected
    election_candidate_t bad [] = { { "cat,alog", 0, 9, 0, false } };
    CHECK (election_decide (&meta, bad, 1, false, &next) == ELECTION_WAIT);
}

static void
test_insync_changes (void)
{
    election_meta_t meta = s_meta (2, "catalog-1", "catalog-1", "catalog-2"), next;
    CHECK (election_shrink (&meta, "catalog-2", &next));
    CHECK (next.insync_count == 1 && !election_insync_has (&next, "catalog-2"));
    //  The primary never leaves its own set, and a non-member cannot leave
    CHECK (!election_shrink (&meta, "catalog-1", &next));
    CHECK (!election_shrink (&meta, "catalog-9", &next));
    CHECK (next.insync_count == 2);
    CHECK (election_expand (&meta, "catalog-3", &next));
    CHECK (next.insync_count == 3 && election_insync_has (&next, "catalog-3"));
    CHECK (!election_expand (&meta, "catalog-2", &next));
    CHECK (!election_expand (&meta, "", &next));
    //  The set is bounded, and says no when full
    election_meta_t full = s_meta (1, "n-0", "n-0", NULL);
    for (int index = 1; index < ELECTION_REPLICAS_MAX; index++) {
        char id [16];
        snprintf (id, sizeof id, "n-%d", index);
        CHECK (election_expand (&full, id, &next));
        full = next;
    }
    CHECK (full.insync_count == ELECTION_REPLICAS_MAX);
    CHECK (!election_expand (&full, "n-99", &next));
}

static void
test_meta_round_trip (void)
{
    election_meta_t meta = s_meta (3, "catalog-2", "catalog-1", "catalog-2"), back;
    meta.start_seq = 1041;
    char *text = election_meta_encode (&meta);
    CHECK (text && strcmp (text, "{\"epoch\":3,\"insync\":[\"catalog-1\",\"catalog-2\"],"
                                 "\"primary\":\"catalog-2\",\"start_seq\":1041}") == 0);
    char reason [200];
    CHECK (election_meta_decode (text, &back, reason, sizeof reason));
    CHECK (back.epoch == 3 && back.start_seq == 1041 && strcmp (back.primary, "catalog-2") == 0);
    CHECK (back.insync_count == 2 && strcmp (back.insync [1], "catalog-2") == 0);
    CHECK (back.primary_store == 0);
    free (text);
    //  With the primary's store recorded
    meta.primary_store = 6254318864113871;
    text = election_meta_encode (&meta);
    CHECK (text && strstr (text, "\"primary_store\":6254318864113871"));
    CHECK (election_meta_decode (text, &back, reason, sizeof reason));
    CHECK (back.primary_store == 6254318864113871);
    free (text);
}

static void
test_a_primary_is_a_store (void)
{
    //  catalog-1 was elected on store 11 and acknowledged writes alone.  It
    //  comes back under its name with an empty disk (store 12): it is not
    //  the primary, and it may not be elected in its own place
    election_meta_t meta = s_meta (3, "catalog-1", "catalog-1", NULL), next;
    meta.primary_store = 11;
    election_candidate_t wiped [] = { { "catalog-1", 0, 0, 12, false } };
    CHECK (election_decide (&meta, wiped, 1, false, &next) == ELECTION_WAIT);
    CHECK (next.epoch == 3);
    //  Its own store is kept
    election_candidate_t same [] = { { "catalog-1", 3, 40, 11, false } };
    CHECK (election_decide (&meta, same, 1, false, &next) == ELECTION_KEEP);
    //  A member of the in-sync set is elected in its place, and the meta
    //  records the store it is elected with
    snprintf (meta.insync [meta.insync_count++], ELECTION_ID_MAX + 1, "catalog-2");
    election_candidate_t both [] = { { "catalog-1", 0, 0, 12, false }, { "catalog-2", 3, 40, 21, false } };
    CHECK (election_decide (&meta, both, 2, false, &next) == ELECTION_ELECT);
    CHECK (strcmp (next.primary, "catalog-2") == 0 && next.epoch == 4 && next.primary_store == 21);
    //  Meta written before stores were recorded keeps the primary by name
    meta.primary_store = 0;
    CHECK (election_decide (&meta, wiped, 1, false, &next) == ELECTION_KEEP);
}

static void
test_meta_refuses_what_breaks_the_rules (void)
{
    const char *bad [] = {
        "",
        "[]",
        "{\"epoch\":1,\"primary\":\"a\",\"insync\":[\"a\"]}",
        "{\"epoch\":1,\"primary\":\"a\",\"insync\":[\"a\"],\"start_seq\":1,\"more\":1}",
        "{\"epoch\":-1,\"primary\":\"a\",\"insync\":[\"a\"],\"start_seq\":1}",
        "{\"epoch\":1.5,\"primary\":\"a\",\"insync\":[\"a\"],\"start_seq\":1}",
        "{\"epoch\":9007199254740992,\"primary\":\"a\",\"insync\":[\"a\"],\"start_seq\":1}",
        "{\"epoch\":1,\"primary\":\"a\",\"insync\":[\"b\"],\"start_seq\":1}",
        "{\"epoch\":1,\"primary\":\"a\",\"insync\":[\"a\",\"a\"],\"start_seq\":1}",
        "{\"epoch\":1,\"primary\":\"a,b\",\"insync\":[\"a,b\"],\"start_seq\":1}",
        "{\"epoch\":1,\"primary\":\"\",\"insync\":[],\"start_seq\":1}",
        "{\"epoch\":0,\"primary\":\"a\",\"insync\":[],\"start_seq\":0}",
        "{\"epoch\":0,\"primary\":\"\",\"insync\":[\"a\"],\"start_seq\":0}",
        "{\"epoch\":1,\"epoch\":2,\"primary\":\"a\",\"insync\":[\"a\"],\"start_seq\":1}",
        "{\"epoch\":1,\"primary\":\"a\",\"insync\":[1],\"start_seq\":1}",
        "{\"epoch\":1,\"primary\":\"a\",\"insync\":[\"a\"],\"start_seq\":1,\"primary_store\":0}",
        "{\"epoch\":1,\"primary\":\"a\",\"insync\":[\"a\"],\"start_seq\":1,\"primary_store\":\"7\"}",
        "{\"epoch\":1,\"primary\":\"a\",\"insync\":[\"a\"],\"start_seq\":1,\"primary_store\":9007199254740992}",
    };
    for (size_t index = 0; index < sizeof bad / sizeof bad [0]; index++) {
        election_meta_t meta;
        char reason [200] = "";
        bool accepted = election_meta_decode (bad [index], &meta, reason, sizeof reason);
        if (accepted || !*reason)
            fprintf (stderr, "  accepted or gave no reason: %s\n", bad [index]);
        CHECK (!accepted);
        CHECK (*reason != 0);
    }
    election_meta_t meta;
    char reason [200];
    CHECK (election_meta_decode ("{\"epoch\":0,\"primary\":\"\",\"insync\":[],\"start_seq\":0}",
                                 &meta, reason, sizeof reason));
}

//  An unclean election request names one epoch, and nothing else passes
static void
test_unclean_request (void)
{
    char *text = election_unclean_encode (7);
    uint64_t epoch = 0;
    char reason [200];
    CHECK (election_unclean_decode (text, &epoch, reason, sizeof reason));
    CHECK_EQ (epoch, 7);
    free (text);
    const char *bad [] = { "", "{}", "{\"epoch\":0}", "{\"epoch\":-1}", "{\"epoch\":\"7\"}",
                           "{\"epoch\":7,\"x\":1}", "{\"epoch\":9007199254740992}", "[7]", NULL };
    for (int i = 0; bad [i]; i++) {
        CHECK (!election_unclean_decode (bad [i], &epoch, reason, sizeof reason));
        CHECK_EQ (epoch, 0);
    }
}

//  The in-sync set's basis travels with the meta, and an election resets it
static void
test_meta_basis (void)
{
    election_meta_t meta, back;
    memset (&meta, 0, sizeof meta);
    meta.epoch = 4;
    snprintf (meta.primary, sizeof meta.primary, "catalog-1");
    meta.insync_count = 1;
    snprintf (meta.insync [0], sizeof meta.insync [0], "catalog-1");
    meta.basis = 1764750000123;
    char *text = election_meta_encode (&meta);
    char reason [200];
    CHECK (election_meta_decode (text, &back, reason, sizeof reason));
    CHECK_EQ (back.basis, 1764750000123);
    free (text);
    CHECK (!election_meta_decode ("{\"epoch\":4,\"primary\":\"catalog-1\",\"insync\":[\"catalog-1\"],"
                                  "\"start_seq\":1,\"basis\":-1}", &back, reason, sizeof reason));
    CHECK (strstr (reason, "basis"));
    election_candidate_t live [] = { { "catalog-1", 4, 10, 0, false } };
    election_meta_t next;
    meta.primary [0] = 0;       //  as if catalog-1 were not the primary any more
    snprintf (meta.primary, sizeof meta.primary, "catalog-2");
    snprintf (meta.insync [1], sizeof meta.insync [1], "catalog-2");
    meta.insync_count = 2;
    CHECK_EQ (election_decide (&meta, live, 1, false, &next), ELECTION_ELECT);
    CHECK_EQ (next.basis, 0);
}

int
main (void)
{
    RUN (test_live_primary_is_kept);
    RUN (test_resigned_primary_is_elected_anew);
    RUN (test_only_the_insync_set_is_elected);
    RUN (test_most_advanced_member_wins);
    RUN (test_ties_decide_alike);
    RUN (test_epochs_only_grow);
    RUN (test_first_election);
    RUN (test_insync_changes);
    RUN (test_meta_round_trip);
    RUN (test_a_primary_is_a_store);
    RUN (test_meta_refuses_what_breaks_the_rules);
    RUN (test_unclean_request);
    RUN (test_meta_basis);
    return DONE ();
}
