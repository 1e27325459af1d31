/*  bookstore-sim - runs seeds of the deterministic simulator (see sim.h)
 *
 *    bookstore-sim [--seeds N] [--first S] [--jobs J]
 *                                           seeds S..S+N-1 (1..200), in J
 *                                           processes (seed k in process k mod J)
 *    bookstore-sim --seed S [--trace]        one seed, step by step
 *    --until-failure                         every job stops at the first
 *                                            failing seed (the self-test)
 *    --single-loss                           every link drops single messages,
 *                                            not whole connections (harsher
 *                                            than ZeroMQ over TCP but for a
 *                                            ROUTER at its high-water mark)
 *    --order-late-publish                    order nodes publish a batch's
 *                                            entries after their own commit,
 *                                            as --early-publish 0 (by
 *                                            default before it, as catalog
 *                                            nodes do and bookstore-node's
 *                                            default)
 *    --no-adoption                           order nodes never re-record orphans
 *                                            (journal_adopt_orphans): what the
 *                                            adoption prevents shows
 *    --catalog-only                          no order node and no buy: the
 *                                            runs (every draw) of the simulator
 *                                            before it had order nodes, for
 *                                            seeds that replay an old finding
 *    --no-order-disk-loss                    no order node loses its disk (by
 *                                            default one may, once a run, as a
 *                                            catalog node may)
 *
 *  A run: the cluster starts, clients write while faults are injected for
 *  --faults-ms of virtual time (processes crash, restart, sometimes on an
 *  empty disk, pause; links delay, reorder, drop, duplicate and cut; the
 *  control plane loses requests and answers); then everything heals and
 *  the cluster must converge, and a write must succeed, within
 *  LIVENESS_BOUND_MS.  Invariants are checked after every step.  The last
 *  line printed is a JSON summary.
 */
#include "sim_cluster.h"
#include "sim_ctlplane.h"

#include <czmq.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIVENESS_BOUND_MS 30000
#define FULL_CHECK_MS 500

sim_config_t sim_config;

static char s_root [256];
static int64_t s_faults_until;
static int s_wipes_left;         //  catalog disks that may be lost
static int s_order_wipes_left;   //  order disks
static bool s_trace_all;
static bool s_single_loss;
static bool s_order_early_publish = true;
static bool s_order_disk_loss = true;
static bool s_catalog_only;
static bool s_no_adoption;

//  --------------------------------------------------------------------------
//  Faults

static void
s_on_restart (sim_event_t *event)
{
    if (event->kind == SIM_BROKER) {
        if (!sim_broker_up ())
            sim_broker_start ();
    }
    else
    if (event->kind >= SIM_NODES) {
        //  An order node: the crash decided whether its disk is lost
        if (!sim_node_up (sim_nodes [event->kind]))
            sim_node_start (sim_nodes [event->kind], event->number);
    }
    else
    if (!sim_node_up (sim_nodes [event->kind])) {
        //  A disk is lost only while the control plane's in-sync set names
        //  another replica: losing every in-sync copy is outside the fault
        //  model (the partition then waits for an operator, by design)
        bool wipe = event->number && s_wipes_left > 0
                 && sim_check_insync_besides (sim_node_id (sim_nodes [event->kind]));
        s_wipes_left -= wipe;
        sim_node_start (sim_nodes [event->kind], wipe);
    }
}

void
sim_restart_later (int proc, int64_t delay, bool wipe)
{
    sim_event_t *event = sim_event_new (delay, s_on_restart);
    event->kind = proc;
    event->number = wipe;
    sim_schedule (event);
}

static void
s_on_heal_link (sim_event_t *event)
{
    int a = event->kind, b = (int) event->number;
    sim_links.cut [a][b] = sim_links.cut [b][a] = false;
    sim_trace ("link %s - %s heals", sim_proc_name (a), sim_proc_name (b));
}

static void
s_cut (int a, int b, int64_t duration)
{
    sim_links.cut [a][b] = sim_links.cut [b][a] = true;
    sim_event_t *event = sim_event_new (duration, s_on_heal_link);
    event->kind = a;
    event->number = b;
    sim_schedule (event);
}

//  An order node's disk is lost only while the other order node is up and
//  holds, whole, every partition the lost one holds, as far as it holds it
//  (its copy of an order partition is then the only one, as a catalog
//  replica's in-sync peer is: losing both is outside the fault model)
static bool
s_order_disk_replaceable (int node)
{
    journal_t *mine = sim_node_journal (sim_nodes [node]);
    journal_t *theirs = NULL;
    for (int other = SIM_NODES; other < SIM_ALL_NODES; other++)
        if (other != node)
            theirs = sim_node_journal (sim_nodes [other]);
    if (!mine || !theirs)
        return false;
    for (size_t i = 0; i < journal_partitions (mine); i++) {
        const char *partition = journal_partition_at (mine, i);
        if (journal_seq (mine, partition) > 0
        &&  (journal_holding (theirs, partition) != JOURNAL_WHOLE
          || journal_seq (theirs, partition) < journal_seq (mine, partition)))
            return false;
    }
    return true;
}

//  Crashes a node; it restarts later, sometimes on an empty disk
static void
s_crash (int node)
{
    bool wipe;
    if (node < SIM_NODES)
        wipe = s_wipes_left > 0 && sim_chance (150);
    else {
        wipe = s_order_wipes_left > 0 && sim_chance (150) && s_order_disk_replaceable (node);
        s_order_wipes_left -= wipe;
    }
    sim_node_crash (sim_nodes [node]);
    sim_restart_later (node, sim_range (50, 3000), wipe);
}

static void
s_on_fault (sim_event_t *event)
{
    (void) event;
    if (sim_now >= s_faults_until)
        return;
    int dice = (int) sim_range (0, 99);
    int node = (int) sim_range (0, sim_node_count () - 1);
    //  Its peers: the catalog's replicas, or the order nodes
    int first = node < SIM_NODES? 0: SIM_NODES, peers = node < SIM_NODES? SIM_NODES: SIM_ORDERS;
    if (dice < 25) {
        //  Sometimes a primary's next batch instead: published, then the
        //  process dies before its commit, or the commit fails (an order
        //  node is always the primary of its own partition)
        bool armed = false;
        if (sim_chance (300)) {
            bool crash = sim_chance (600);
            for (int k = 0; k < peers && !armed; k++)
                armed = sim_node_arm_commit_fault (sim_nodes [first + (node - first + k) % peers], crash);
        }
        if (!armed && sim_node_up (sim_nodes [node]))
            s_crash (node);
    }
    else
    if (dice < 40) {
        int64_t until = sim_now + sim_range (100, 2500);
        sim_trace ("%s pauses until %lld", sim_proc_name (node), (long long) until);
        if (sim_procs [node].paused_until < until)
            sim_procs [node].paused_until = until;
    }
    else
    if (dice < 50) {
        if (sim_broker_up ()) {
            sim_broker_crash ();
            sim_restart_later (SIM_BROKER, sim_range (50, 2000), false);
        }
    }
    else
    if (dice < 55) {
        int64_t until = sim_now + sim_range (100, 1500);
        sim_trace ("broker pauses until %lld", (long long) until);
        sim_procs [SIM_BROKER].paused_until = until;
    }
    else
    if (dice < 80) {
        int64_t duration = sim_range (200, 4000);
        int kind = (int) sim_range (0, 2);
        sim_trace ("%s is cut from %s for %lld ms", sim_proc_name (node),
                   kind == 0? "everyone": kind == 1? "the broker": "another node", (long long) duration);
        if (kind == 0 || kind == 1)
            s_cut (node, SIM_BROKER, duration);
        if (kind == 0 || kind == 2)
            for (int other = 0; other < sim_node_count (); other++)
                if (other != node && (kind == 0 || other == first + (node - first + 1) % peers))
                    s_cut (node, other, duration);
    }
    else
    if (dice < 90) {
        int64_t until = sim_now + sim_range (100, 3000);
        sim_trace ("etcd is unreachable until %lld", (long long) until);
        sim_etcd_down (until);
    }
    else {
        //  A burst of a lossy network
        sim_links.drop = (int) sim_range (0, 100);
        sim_links.dup = (int) sim_range (0, 30);
        sim_links.reorder = (int) sim_range (0, 200);
        sim_trace ("links: drop %d, dup %d, reorder %d per mille", sim_links.drop, sim_links.dup, sim_links.reorder);
    }
    sim_schedule (sim_event_new (sim_range (200, 1500), s_on_fault));
}

//  Faults stop: every link heals, every process runs again
static void
s_on_quiet (sim_event_t *event)
{
    (void) event;
    sim_trace ("faults stop");
    memset (sim_links.cut, 0, sizeof sim_links.cut);
    sim_links.drop = sim_links.dup = sim_links.reorder = 0;
    sim_etcd_down (0);
    sim_etcd_set_faults (0);
    for (int i = 0; i < sim_node_count (); i++)
        sim_node_disarm (sim_nodes [i]);
    //  A pause runs its course (at most 2.5 s): ending it early would let
    //  new messages overtake the ones it holds
    for (int i = 0; i < sim_node_count (); i++)
        if (!sim_node_up (sim_nodes [i]))
            sim_node_start (sim_nodes [i], false);
    if (!sim_broker_up ())
        sim_broker_start ();
    sim_probe_send ();
}

static void
s_on_full_check (sim_event_t *event)
{
    (void) event;
    sim_check_full (false);
    sim_schedule (sim_event_new (FULL_CHECK_MS, s_on_full_check));
}

//  --------------------------------------------------------------------------
//  One seed

typedef struct {
    uint64_t steps, buys_acked;
    int64_t virtual_ms;
    bool violation, liveness_failure;
} outcome_t;

typedef struct {
    uint64_t seeds, steps, violations, liveness_failures, buys_acked;
    int64_t virtual_ms;
} totals_t;

static int
s_remove (const char *path, const struct stat *sb, int flag, struct FTW *ftwbuf)
{
    (void) sb; (void) flag; (void) ftwbuf;
    return remove (path);
}

static outcome_t
s_run (uint64_t seed, int64_t faults_ms, bool trace)
{
    sim_seed (seed);
    sim_world_reset (trace);
    sim_etcd_reset ();
    sim_clients_reset ();
    sim_check_reset ();
    sim_config.log_keep = sim_range (100, 300);
    sim_config.insync_timeout_ms = (int) sim_range (300, 2000);
    sim_config.min_insync = (int) sim_range (1, 2);
    sim_links.single_loss = s_single_loss;
    sim_config.order_early_publish = s_order_early_publish;
    sim_config.catalog_only = s_catalog_only;
    sim_config.no_adoption = s_no_adoption;
    sim_links.delay_min = 1;
    sim_links.delay_max = (int) sim_range (2, 10);
    sim_etcd_set_faults ((int) sim_range (0, 60));
    s_wipes_left = 1;
    s_order_wipes_left = s_order_disk_loss? 1: 0;
    s_faults_until = faults_ms;
    sim_trace ("seed %llu: log_keep %lld, insync_timeout %d ms, min_insync %d", (unsigned long long) seed,
               (long long) sim_config.log_keep, sim_config.insync_timeout_ms, sim_config.min_insync);
    char dir [300];
    snprintf (dir, sizeof dir, "%s/seed", s_root);
    nftw (dir, s_remove, 8, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < SIM_ALL_NODES; i++) {
        snprintf (dir, sizeof dir, "%s/seed/%s", s_root, sim_proc_name (i));
        sim_nodes [i] = sim_node_new (i, dir);
        if (i < sim_node_count ())
            sim_restart_later (i, sim_range (0, 300), false);
    }
    sim_restart_later (SIM_BROKER, sim_range (0, 300), false);
    sim_clients_start (faults_ms);
    sim_schedule (sim_event_new (sim_range (500, 1500), s_on_fault));
    sim_schedule (sim_event_new (faults_ms, s_on_quiet));
    sim_schedule (sim_event_new (FULL_CHECK_MS, s_on_full_check));

    outcome_t outcome = { 0 };
    int64_t deadline = faults_ms + LIVENESS_BOUND_MS;
    int64_t next_look = faults_ms;
    bool live = false;
    while (!sim_violated && sim_world_step (deadline)) {
        sim_check_step ();
        if (sim_now >= next_look) {
            next_look = sim_now + 100;
            if (sim_probe_acked () && sim_clients_idle () && sim_check_converged (false)) {
                live = true;
                break;
            }
        }
    }
    if (!sim_violated && live)
        sim_check_full (true);
    if (!sim_violated && !live) {
        sim_check_converged (true);
        sim_trace ("LIVENESS: not converged %d ms after faults stopped (probe %s, clients %s)", LIVENESS_BOUND_MS,
                   sim_probe_acked ()? "acknowledged": "not acknowledged", sim_clients_idle ()? "idle": "waiting");
        outcome.liveness_failure = true;
    }
    outcome.violation = sim_violated;
    outcome.steps = sim_steps;
    outcome.virtual_ms = sim_now;
    outcome.buys_acked = sim_clients_buys_acked ();
    if (outcome.violation || outcome.liveness_failure) {
        printf ("seed %llu: %s%s\n", (unsigned long long) seed,
                outcome.violation? "VIOLATION ": "LIVENESS FAILURE",
                outcome.violation? sim_violation_text (): "");
        if (!trace) {
            printf ("  the last events (replay: bookstore-sim --seed %llu --trace):\n", (unsigned long long) seed);
            sim_trace_dump ();
        }
    }
    else
    if (trace)
        printf ("seed %llu: ok (%llu steps, %lld virtual ms, %zu writes acknowledged, %zu of them buys)\n",
                (unsigned long long) seed, (unsigned long long) outcome.steps, (long long) outcome.virtual_ms,
                sim_clients_acked (), sim_clients_buys_acked ());
    sim_world_clear ();
    for (int i = 0; i < SIM_ALL_NODES; i++)
        sim_node_destroy (&sim_nodes [i]);
    sim_broker_crash ();
    sim_clients_reset ();
    sim_check_reset ();
    sim_etcd_reset ();
    return outcome;
}

int
main (int argc, char *argv [])
{
    uint64_t first = 1, seeds = 200, jobs = 1;
    int64_t faults_ms = 20000;
    bool trace = false, one = false, until_failure = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--seeds") == 0 && i + 1 < argc)
            seeds = strtoull (argv [++i], NULL, 10);
        else
        if (strcmp (argv [i], "--first") == 0 && i + 1 < argc)
            first = strtoull (argv [++i], NULL, 10);
        else
        if (strcmp (argv [i], "--seed") == 0 && i + 1 < argc) {
            first = strtoull (argv [++i], NULL, 10);
            seeds = 1;
            one = true;
        }
        else
        if (strcmp (argv [i], "--jobs") == 0 && i + 1 < argc)
            jobs = strtoull (argv [++i], NULL, 10);
        else
        if (strcmp (argv [i], "--faults-ms") == 0 && i + 1 < argc)
            faults_ms = strtoll (argv [++i], NULL, 10);
        else
        if (strcmp (argv [i], "--trace") == 0)
            trace = true;
        else
        if (strcmp (argv [i], "--until-failure") == 0)
            until_failure = true;
        else
        if (strcmp (argv [i], "--single-loss") == 0)
            s_single_loss = true;
        else
        if (strcmp (argv [i], "--order-late-publish") == 0)
            s_order_early_publish = false;
        else
        if (strcmp (argv [i], "--no-order-disk-loss") == 0)
            s_order_disk_loss = false;
        else
        if (strcmp (argv [i], "--catalog-only") == 0)
            s_catalog_only = true;
        else
        if (strcmp (argv [i], "--no-adoption") == 0)
            s_no_adoption = true;
        else
        if (strcmp (argv [i], "--log") == 0)
            s_trace_all = true;
        else {
            fprintf (stderr, "usage: bookstore-sim [--seeds N] [--first S] [--jobs J] [--until-failure] [--single-loss] [--order-late-publish] [--no-order-disk-loss] [--no-adoption] [--catalog-only] [--seed S [--trace]] [--faults-ms MS] [--log]\n");
            return 2;
        }
    }
    if (seeds == 0 || faults_ms < 1000 || jobs < 1 || jobs > 64) {
        fprintf (stderr, "bookstore-sim: --seeds must be at least 1, --jobs 1 to 64 and --faults-ms at least 1000\n");
        return 2;
    }
    if (one)
        jobs = 1;
    //  The modules' own logs: only with --log (they carry wall-clock
    //  stamps).  czmq is set up in the process that runs the seeds, after
    //  any fork: a child does not free what its parent's czmq made
    FILE *devnull = fopen ("/dev/null", "w");
    snprintf (s_root, sizeof s_root, "/dev/shm/bookstore-sim.XXXXXX");
    if (!mkdtemp (s_root)) {
        snprintf (s_root, sizeof s_root, "/tmp/bookstore-sim.XXXXXX");
        if (!mkdtemp (s_root)) {
            perror ("bookstore-sim: cannot make a temporary directory");
            return 1;
        }
    }
    //  Each job runs every jobs-th seed in a process of its own and sends
    //  its sums back through a pipe; the seeds, hence the runs, are the
    //  same whatever the number of jobs
    totals_t totals = { 0 };
    int pipes [64][2];
    pid_t pids [64];
    //  --until-failure: the first job to fail a seed stops them all
    bool *stop = mmap (NULL, sizeof (bool), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (stop == MAP_FAILED) {
        perror ("bookstore-sim: cannot share memory between jobs");
        return 1;
    }
    *stop = false;
    fflush (stdout);
    for (uint64_t job = 0; job < jobs; job++) {
        if (jobs > 1) {
            if (pipe (pipes [job]) != 0 || (pids [job] = fork ()) < 0) {
                perror ("bookstore-sim: cannot start a job");
                return 1;
            }
            if (pids [job] > 0) {
                close (pipes [job][1]);
                continue;
            }
            close (pipes [job][0]);
            snprintf (s_root + strlen (s_root), sizeof s_root - strlen (s_root), "/job%llu", (unsigned long long) job);
            mkdir (s_root, 0700);
        }
        zsys_set_logstream (s_trace_all? stdout: devnull);
        zsys_set_logsystem (false);
        totals_t mine = { 0 };
        for (uint64_t seed = first + job; seed < first + seeds; seed += jobs) {
            outcome_t outcome = s_run (seed, faults_ms, trace);
            mine.steps += outcome.steps;
            mine.buys_acked += outcome.buys_acked;
            mine.virtual_ms += outcome.virtual_ms;
            mine.violations += outcome.violation;
            mine.liveness_failures += outcome.liveness_failure;
            mine.seeds++;
            fflush (stdout);
            if (until_failure && (outcome.violation || outcome.liveness_failure))
                *stop = true;
            if (*stop)
                break;
        }
        if (jobs == 1) {
            totals = mine;
            break;
        }
        int rc = write (pipes [job][1], &mine, sizeof mine) == (ssize_t) sizeof mine? 0: 3;
        close (pipes [job][1]);
        nftw (s_root, s_remove, 8, FTW_DEPTH | FTW_PHYS);
        zsys_set_logstream (NULL);
        if (devnull)
            fclose (devnull);
        exit (rc);              //  (exit, not _exit: LeakSanitizer checks each job)
    }
    bool lost = false;
    for (uint64_t job = 0; jobs > 1 && job < jobs; job++) {
        totals_t theirs;
        if (read (pipes [job][0], &theirs, sizeof theirs) == (ssize_t) sizeof theirs) {
            totals.steps += theirs.steps;
            totals.buys_acked += theirs.buys_acked;
            totals.virtual_ms += theirs.virtual_ms;
            totals.violations += theirs.violations;
            totals.liveness_failures += theirs.liveness_failures;
            totals.seeds += theirs.seeds;
        }
        else
            lost = true;        //  a job died: say so rather than undercount
        close (pipes [job][0]);
        int status;
        waitpid (pids [job], &status, 0);
        if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
            lost = true;
    }
    nftw (s_root, s_remove, 8, FTW_DEPTH | FTW_PHYS);
    munmap (stop, sizeof (bool));
    if (lost)
        fprintf (stderr, "bookstore-sim: a job died before it reported\n");
    printf ("{\"seeds\":%llu,\"steps\":%llu,\"virtual_seconds\":%.1f,\"violations\":%llu,\"liveness_failures\":%llu,"
            "\"buys_acknowledged\":%llu}\n",
            (unsigned long long) totals.seeds, (unsigned long long) totals.steps, (double) totals.virtual_ms / 1000.0,
            (unsigned long long) totals.violations, (unsigned long long) totals.liveness_failures,
            (unsigned long long) totals.buys_acked);
    if (jobs == 1)
        zsys_set_logstream (NULL);
    if (devnull)
        fclose (devnull);
    return totals.violations || totals.liveness_failures || lost? 1: 0;
}
