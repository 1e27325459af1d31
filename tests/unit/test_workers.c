/*  test_workers - the broker's registry and least-outstanding choice  */
#include "workers.h"
#include "testing.h"

#include <string.h>

static worker_t *
s_add (workers_t *workers, const char *identity, const char *service)
{
    return workers_register (workers, identity, strlen (identity), service, identity);
}

static void
test_least_outstanding_wins (void)
{
    workers_t *workers = workers_new ();
    worker_t *a = s_add (workers, "catalog-1", "catalog");
    worker_t *b = s_add (workers, "catalog-2", "catalog");
    worker_t *c = s_add (workers, "catalog-3", "catalog");
    s_add (workers, "order-1", "order");
    a->outstanding = 5;
    b->outstanding = 1;
    c->outstanding = 3;
    CHECK (workers_choose (workers, "catalog", NULL, NULL) == b);
    b->outstanding = 9;
    CHECK (workers_choose (workers, "catalog", NULL, NULL) == c);
    CHECK (strcmp (workers_choose (workers, "order", NULL, NULL)->id, "order-1") == 0);
    CHECK (workers_choose (workers, "shipping", NULL, NULL) == NULL);
    workers_destroy (&workers);
    CHECK (workers == NULL);
}

static void
test_idle_workers_share_load (void)
{
    workers_t *workers = workers_new ();
    worker_t *w [3] = {
        s_add (workers, "order-1", "order"),
        s_add (workers, "order-2", "order"),
        s_add (workers, "order-3", "order"),
    };
    //  Each request is answered before the next: all stay at 0 outstanding,
    //  yet every worker must get its turn
    int hits [3] = { 0, 0, 0 };
    for (int i = 0; i < 30; i++) {
        worker_t *chosen = workers_choose (workers, "order", NULL, NULL);
        for (int k = 0; k < 3; k++)
            hits [k] += chosen == w [k];
    }
    CHECK (hits [0] == 10 && hits [1] == 10 && hits [2] == 10);
    workers_destroy (&workers);
}

static void
test_dead_workers_are_skipped (void)
{
    workers_t *workers = workers_new ();
    worker_t *a = s_add (workers, "catalog-1", "catalog");
    worker_t *b = s_add (workers, "catalog-2", "catalog");
    a->alive = false;
    for (int i = 0; i < 5; i++)
        CHECK (workers_choose (workers, "catalog", NULL, NULL) == b);
    CHECK (workers_alive (workers, "catalog") == 1);
    b->alive = false;
    CHECK (workers_choose (workers, "catalog", NULL, NULL) == NULL);
    //  Registering again brings it back with a clean slate
    a->outstanding = 7;
    CHECK (s_add (workers, "catalog-1", "catalog") == a);
    CHECK (a->alive && a->outstanding == 0);
    CHECK (workers_size (workers) == 2);
    workers_destroy (&workers);
}

//  A dead worker is listed (status shows it) for WORKERS_FORGET_MS, then
//  forgotten; a live one never is, however long since it registered
static void
test_dead_workers_are_forgotten (void)
{
    workers_t *workers = workers_new ();
    worker_t *a = s_add (workers, "catalog-1", "catalog");
    worker_t *b = s_add (workers, "catalog-2", "catalog");
    worker_t *c = s_add (workers, "catalog-3", "catalog");
    int64_t t0 = 5000;
    workers_declare_dead (a, t0);
    workers_declare_dead (b, t0 + WORKERS_FORGET_MS / 2);
    CHECK (!a->alive && !b->alive);
    //  Dead for exactly the time, not longer: all still listed
    CHECK_EQ (workers_forget (workers, t0 + WORKERS_FORGET_MS), 0);
    CHECK_EQ (workers_size (workers), 3);
    CHECK (workers_by_id (workers, "catalog-1") == a);
    //  a is past it; b, dead for less, stays, and the order is kept
    CHECK_EQ (workers_forget (workers, t0 + WORKERS_FORGET_MS + 1), 1);
    CHECK_EQ (workers_size (workers), 2);
    CHECK (workers_at (workers, 0) == b && workers_at (workers, 1) == c);
    CHECK (workers_by_id (workers, "catalog-1") == NULL);
    CHECK (workers_find (workers, "catalog-1", strlen ("catalog-1")) == NULL);
    CHECK (workers_id_holder (workers, "catalog-1", "other", 5) == NULL);
    //  Much later: b goes too, the live c stays
    CHECK_EQ (workers_forget (workers, t0 + 100 * (int64_t) WORKERS_FORGET_MS), 1);
    CHECK_EQ (workers_size (workers), 1);
    CHECK (workers_at (workers, 0) == c && c->alive);
    CHECK (workers_choose (workers, "catalog", NULL, NULL) == c);
    //  The forgotten id registers afresh, as a new worker
    worker_t *again = s_add (workers, "catalog-1", "catalog");
    CHECK (again && again->alive && again->served == 0 && again->outstanding == 0);
    CHECK_EQ (workers_size (workers), 2);
    CHECK (workers_by_id (workers, "catalog-1") == again);
    CHECK_EQ (workers_alive (workers, "catalog"), 2);
    //  Registering again clears the death: it is not forgotten while alive
    workers_declare_dead (c, t0);
    CHECK (s_add (workers, "catalog-3", "catalog") == c);
    CHECK_EQ (workers_forget (workers, t0 + 100 * (int64_t) WORKERS_FORGET_MS), 0);
    CHECK_EQ (workers_size (workers), 2);
    workers_destroy (&workers);
}

//  A dead standard 7/MDP worker (no node id a later status could match)
//  goes at the next forget; a dead node of the same age stays listed, and a
//  worker registered again under the same routing id is a node until the
//  broker says otherwise
static void
test_standard_workers_are_forgotten_at_once (void)
{
    workers_t *workers = workers_new ();
    worker_t *node = s_add (workers, "order-1", "order");
    worker_t *echo = workers_register (workers, "\x00\x01", 2, "echo", NULL);
    CHECK (echo && !echo->standard);
    echo->standard = true;
    CHECK_EQ (workers_forget (workers, 1000), 0);          //  alive: kept
    workers_declare_dead (node, 1000);
    workers_declare_dead (echo, 1000);
    CHECK_EQ (workers_forget (workers, 1001), 1);
    CHECK_EQ (workers_size (workers), 1);
    CHECK (workers_at (workers, 0) == node && !node->alive);
    CHECK (workers_find (workers, "\x00\x01", 2) == NULL);
    worker_t *again = workers_register (workers, "\x00\x01", 2, "echo", NULL);
    CHECK (again && again->alive && !again->standard);
    workers_destroy (&workers);
}

static void
test_binary_identity (void)
{
    workers_t *workers = workers_new ();
    const uint8_t identity [5] = { 0, 0x80, 0, 0x41, 0xa7 };
    worker_t *w = workers_register (workers, identity, sizeof identity, "order", NULL);
    CHECK (w && strcmp (w->id, "00800041a7") == 0);
    CHECK (workers_find (workers, identity, sizeof identity) == w);
    CHECK (workers_find (workers, identity, 4) == NULL);
    workers_destroy (&workers);
}

//  Each registration has a serial of its own, a re-registration too; a
//  displaced record (its node registered from another connection) is
//  forgotten at the next workers_forget, the other dead ones are kept
static void
test_registrations_and_displacement (void)
{
    workers_t *workers = workers_new ();
    worker_t *a = workers_register (workers, "conn-a", 6, "catalog", "catalog-1");
    uint64_t first = a->serial;
    a = workers_register (workers, "conn-a", 6, "catalog", "catalog-1");
    CHECK (a->serial != first && a->serial != 0);
    worker_t *b = workers_register (workers, "conn-b", 6, "catalog", "catalog-1");
    CHECK (b->serial != a->serial && b->serial != first);
    CHECK (workers_id_holder (workers, "catalog-1", "conn-b", 6) == a);
    worker_t *c = workers_register (workers, "conn-c", 6, "order", "order-1");
    workers_displace (a, 1000);
    workers_declare_dead (c, 1000);
    CHECK (!a->alive && workers_id_holder (workers, "catalog-1", "conn-b", 6) == NULL);
    CHECK (workers_forget (workers, 1001) == 1);
    CHECK (workers_size (workers) == 2);
    CHECK (workers_find (workers, "conn-a", 6) == NULL);
    CHECK (workers_find (workers, "conn-c", 6) != NULL);
    workers_destroy (&workers);
}

//  A node held out for a full queue: 1 s, doubling while it is caught again
//  within a minute of its last hold's end, up to 30 s; a minute clean
//  starts again at 1 s.  Holds go by node id; an id-less worker is held by
//  its routing id in hex.
static void
test_holds_grow_and_reset (void)
{
    workers_t *workers = workers_new ();
    int64_t now = 1000000;
    CHECK (workers_held (workers, "catalog-2", NULL, 0, now) == 0);
    CHECK_EQ (workers_hold (workers, "catalog-2", now), WORKERS_HOLD_MIN_MS);
    CHECK (workers_held (workers, "catalog-2", NULL, 0, now) == WORKERS_HOLD_MIN_MS);
    CHECK (workers_held (workers, "catalog-2", NULL, 0, now + 400) == WORKERS_HOLD_MIN_MS - 400);
    CHECK (workers_held (workers, "catalog-1", NULL, 0, now) == 0);
    CHECK (workers_held (workers, "catalog-2", NULL, 0, now + WORKERS_HOLD_MIN_MS) == 0);
    //  Caught again each time it comes back: 2 s, 4 s, ... 30 s at most
    int64_t expected = WORKERS_HOLD_MIN_MS, length = 0;
    for (int i = 0; i < 8; i++) {
        now += expected + 10;
        expected = 2 * expected > WORKERS_HOLD_MAX_MS? WORKERS_HOLD_MAX_MS: 2 * expected;
        length = workers_hold (workers, "catalog-2", now);
        CHECK_EQ (length, expected);
    }
    CHECK_EQ (length, WORKERS_HOLD_MAX_MS);
    //  Forgotten a minute after the hold ended (workers_forget), so the
    //  next starts at 1 s again
    workers_forget (workers, now + length + WORKERS_HOLD_RESET_MS - 1);
    CHECK (workers_held (workers, "catalog-2", NULL, 0, now + length - 1) == 1);
    now += length + WORKERS_HOLD_RESET_MS;
    workers_forget (workers, now);
    CHECK (workers_held (workers, "catalog-2", NULL, 0, now - 1) == 0);
    CHECK_EQ (workers_hold (workers, "catalog-2", now), WORKERS_HOLD_MIN_MS);
    //  An id-less (standard) worker: its id is its routing id in hex
    worker_t *w = workers_register (workers, "\x01\x02", 2, "echo", NULL);
    CHECK (strcmp (w->id, "0102") == 0);
    workers_hold (workers, w->id, now);
    CHECK (workers_held (workers, NULL, "\x01\x02", 2, now) == WORKERS_HOLD_MIN_MS);
    CHECK (workers_held (workers, "", "\x01\x03", 2, now) == 0);
    workers_destroy (&workers);
}

//  At most WORKERS_HOLDS_MAX holds at once: the one that ends first makes
//  room, and the others stand
static void
test_holds_are_bounded (void)
{
    workers_t *workers = workers_new ();
    int64_t now = 1000000;
    char id [32];
    for (int i = 0; i < WORKERS_HOLDS_MAX; i++) {
        snprintf (id, sizeof id, "node-%d", i);
        workers_hold (workers, id, now + i);
    }
    workers_hold (workers, "newcomer", now + WORKERS_HOLDS_MAX);
    CHECK (workers_held (workers, "newcomer", NULL, 0, now + WORKERS_HOLDS_MAX) > 0);
    CHECK (workers_held (workers, "node-0", NULL, 0, now + WORKERS_HOLDS_MAX) == 0);
    for (int i = 1; i < WORKERS_HOLDS_MAX; i++) {
        snprintf (id, sizeof id, "node-%d", i);
        CHECK (workers_held (workers, id, NULL, 0, now + WORKERS_HOLDS_MAX) > 0);
    }
    workers_destroy (&workers);
}

int
main (void)
{
    RUN (test_least_outstanding_wins);
    RUN (test_idle_workers_share_load);
    RUN (test_dead_workers_are_skipped);
    RUN (test_dead_workers_are_forgotten);
    RUN (test_standard_workers_are_forgotten_at_once);
    RUN (test_binary_identity);
    RUN (test_registrations_and_displacement);
    RUN (test_holds_grow_and_reset);
    RUN (test_holds_are_bounded);
    return DONE ();
}
