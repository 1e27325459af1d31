/*  test_tools - the programs that take a broker list (bookstore, bookstore-
 *  load, bookstore-bench, bookstore-monitor) failing over between the
 *  brokers of a Binary Star pair, run as child processes against fake
 *  brokers and fake feeds in this process.
 *
 *  The programs are looked up in $BS_BIN (tests/run.sh sets it), else
 *  beside this build's tests; without them the checks are skipped.  */
#include "fake_broker.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *s_bin;

//  Finds the directory of the programs
static bool
s_find_programs (void)
{
    char exe [4096];
    ssize_t len = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    exe [len > 0? len: 0] = 0;
    char *slash = strrchr (exe, '/');
    if (slash)
        *slash = 0;
    const char *env = getenv ("BS_BIN");
    char *candidates [3] = {
        zsys_sprintf ("%s", env? env: ""),
        zsys_sprintf ("%s/../bin", exe),            //  build/<variant>/tests
        zsys_sprintf ("%s/../../../bin", exe)       //  build/release/tests
    };
    for (int i = 0; i < 3; i++) {
        char *path = zsys_sprintf ("%s/bookstore-load", candidates [i]);
        if (!s_bin && *candidates [i] && access (path, X_OK) == 0)
            s_bin = strdup (candidates [i]);
        zstr_free (&path);
        zstr_free (&candidates [i]);
    }
    return s_bin != NULL;
}

//  Runs "$BIN/<command>" with the shell; its stdout into out, its exit code
static int
s_run (char *out, size_t size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *command = zsys_vprintf (format, args);
    va_end (args);
    char *line = zsys_sprintf ("%s/%s", s_bin, command);
    int64_t started = zclock_mono ();
    FILE *child = popen (line, "r");
    size_t got = child? fread (out, 1, size - 1, child): 0;
    out [got] = 0;
    int status = child? pclose (child): -1;
    if (getenv ("TEST_TOOLS_VERBOSE"))
        fprintf (stderr, "  %lld ms: %s\n", (long long) (zclock_mono () - started), command);
    zstr_free (&command);
    zstr_free (&line);
    return WIFEXITED (status)? WEXITSTATUS (status): -1;
}

//  The rids a broker got, as one string
static char *
s_rids (zactor_t *broker)
{
    return fake_broker_rids (broker);
}

//  Number of comma-separated entries
static int
s_count (const char *list)
{
    if (!*list)
        return 0;
    int n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    return n;
}

//  --------------------------------------------------------------------------
//  The CLI

static void
test_cli (void)
{
    zactor_t *a = fake_broker_new (FAKE_NOT_ACTIVE), *b = fake_broker_new (FAKE_OK);
    char *list = fake_broker_pair (a, b);
    char out [4096];
    int64_t start = zclock_mono ();
    int rc = s_run (out, sizeof out, "bookstore --endpoint %s --json --timeout-ms 5000 buy 666", list);
    CHECK (rc == 0);
    CHECK (zclock_mono () - start < 3000);          //  not after a timeout
    CHECK (strstr (out, "\"ok\":true") && strstr (out, "\"order_id\":\"o"));
    char *ra = s_rids (a), *rb = s_rids (b);
    CHECK (s_count (ra) == 1 && streq (ra, rb));    //  the same request id
    zstr_free (&ra);
    zstr_free (&rb);
    //  Both passive: the store is unreachable (3), and says why
    fake_broker_mode (b, FAKE_NOT_ACTIVE);
    rc = s_run (out, sizeof out, "bookstore --endpoint %s --json --attempts 1 status", list);
    CHECK (rc == 3);
    CHECK (strstr (out, "\"error\":\"not_active\""));
    //  A malformed list is a usage error
    rc = s_run (out, sizeof out, "bookstore --endpoint '%s,' --json status 2>/dev/null", list);
    CHECK (rc == 2);
    rc = s_run (out, sizeof out, "bookstore --endpoint '%s,nonsense' --json status 2>/dev/null", list);
    CHECK (rc == 2);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

//  --------------------------------------------------------------------------
//  The load

//  The value of a top-level JSON number field ("key":N), or -1
static long
s_json_int (const char *json, const char *key)
{
    char pattern [64];
    snprintf (pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr (json, pattern);
    return at? strtol (at + strlen (pattern), NULL, 10): -1;
}

//  The first broker is silent, then the second serves: each connection
//  moves on after --attempt-ms, resends the same rid, and every buy is
//  acknowledged and recorded once
static void
test_load_silent (void)
{
    zactor_t *a = fake_broker_new (FAKE_SILENT), *b = fake_broker_new (FAKE_OK);
    char *list = fake_broker_pair (a, b);
    char record [] = "/tmp/test_tools_record_XXXXXX";
    int fd = mkstemp (record);
    close (fd);
    char out [8192];
    int rc = s_run (out, sizeof out, "bookstore-load --endpoint %s --clients 2 --requests 10 --mix buy:1 "
                    "--attempt-ms 300 --give-up-ms 5000 --record %s", list, record);
    CHECK (rc == 0);
    CHECK (s_json_int (out, "requests") == 10 && s_json_int (out, "acked_buys") == 10);
    CHECK (s_json_int (out, "gave_up") == 0 && s_json_int (out, "refused") == 0);
    CHECK (s_json_int (out, "failovers") == 2);     //  one per connection
    CHECK (strstr (out, "\"errors\":{}"));
    //  What went to the silent broker came to the other with the same rid,
    //  and the other got each request once
    char *ra = s_rids (a), *rb = s_rids (b);
    CHECK (s_count (ra) == 2 && s_count (rb) == 10);
    char *save = NULL, *copy = strdup (ra);
    for (char *rid = strtok_r (copy, ",", &save); rid; rid = strtok_r (NULL, ",", &save))
        CHECK (strstr (rb, rid));
    free (copy);
    //  One line per acknowledged buy, each rid once, each one the broker got
    FILE *file = fopen (record, "r");
    char line [256];
    int lines = 0;
    zhashx_t *seen = zhashx_new ();
    while (file && fgets (line, sizeof line, file)) {
        char rid [64];
        if (sscanf (line, "buy %63s", rid) == 1 && strstr (rb, rid) && zhashx_insert (seen, rid, "") == 0)
            lines++;
    }
    zhashx_destroy (&seen);
    if (file)
        fclose (file);
    CHECK (lines == 10);
    unlink (record);
    zstr_free (&ra);
    zstr_free (&rb);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

//  The first broker is the backup: not_active moves each connection on at
//  once and is never counted as the store's answer
static void
test_load_not_active (void)
{
    zactor_t *a = fake_broker_new (FAKE_NOT_ACTIVE), *b = fake_broker_new (FAKE_OK);
    char *list = fake_broker_pair (a, b);
    char out [8192];
    int64_t start = zclock_mono ();
    int rc = s_run (out, sizeof out, "bookstore-load --endpoint %s --clients 3 --requests 12 --mix buy:1,lookup:1 "
                    "--attempt-ms 5000", list);
    CHECK (rc == 0);
    CHECK (zclock_mono () - start < 4000);
    CHECK (s_json_int (out, "requests") == 12 && s_json_int (out, "refused") == 0);
    CHECK (s_json_int (out, "failovers") == 3);
    CHECK (strstr (out, "\"errors\":{}"));
    char *ra = s_rids (a), *rb = s_rids (b);
    CHECK (s_count (ra) == 3 && s_count (rb) == 12);
    zstr_free (&ra);
    zstr_free (&rb);
    //  Both passive until the load gives up: given up on, not refused
    fake_broker_mode (b, FAKE_NOT_ACTIVE);
    rc = s_run (out, sizeof out, "bookstore-load --endpoint %s --clients 2 --requests 2 --mix buy:1 "
                "--attempt-ms 100 --give-up-ms 600", list);
    CHECK (rc == 1);
    CHECK (s_json_int (out, "gave_up") == 2 && s_json_int (out, "refused") == 0);
    CHECK (!strstr (out, "not_active"));
    //  Paused between rounds: a handful of requests, not thousands
    ra = s_rids (a);
    CHECK (s_count (ra) > 3 && s_count (ra) < 60);
    zstr_free (&ra);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

//  Every write has its line in the record, in one of the documented forms,
//  each answered after it was sent (SENT no later than its own position);
//  writes given up on have theirs, with the values they would have written
static void
test_load_record (void)
{
    zactor_t *a = fake_broker_new (FAKE_OK), *b = fake_broker_new (FAKE_OK);
    char *list = fake_broker_pair (a, b);
    char record [] = "/tmp/test_tools_record_XXXXXX";
    int fd = mkstemp (record);
    close (fd);
    char out [8192];
    int rc = s_run (out, sizeof out, "bookstore-load --endpoint %s --clients 3 --requests 60 "
                    "--mix buy:1,restock:1,set_price:1,add_book:1 --record %s", list, record);
    CHECK (rc == 0);
    CHECK (s_json_int (out, "requests") == 60);
    FILE *file = fopen (record, "r");
    char line [256];
    int lines = 0, good = 0, kinds [4] = { 0 };
    while (file && fgets (line, sizeof line, file)) {
        char rid [64], text [64];
        long item, value, cost, stock, sent = -1;
        if (sscanf (line, "buy %63s %63s %ld %ld", rid, text, &item, &sent) == 4 && text [0] == 'o'
        &&  streq (text + 1, rid))
            kinds [0]++;
        else
        if (sscanf (line, "restock %63s %ld %ld %ld", rid, &item, &value, &sent) == 4 && value >= 1 && value <= 5)
            kinds [1]++;
        else
        if (sscanf (line, "set_price %63s %ld %ld %ld", rid, &item, &value, &sent) == 4 && value >= 1 && value <= 50)
            kinds [2]++;
        else
        if (sscanf (line, "add_book %63s %ld %ld %ld %ld", rid, &item, &cost, &stock, &sent) == 5
        &&  cost >= 1 && cost <= 50 && stock == 5)
            kinds [3]++;
        else
            sent = -1;
        if (sent >= 0 && sent <= lines && strlen (rid) == 32)
            good++;
        lines++;
    }
    if (file)
        fclose (file);
    CHECK (lines == 60 && good == 60);
    CHECK (kinds [0] > 0 && kinds [1] > 0 && kinds [2] > 0 && kinds [3] > 0);

    //  Nothing answers: each price change is given up on, with its price
    fake_broker_mode (a, FAKE_NOT_ACTIVE);
    fake_broker_mode (b, FAKE_NOT_ACTIVE);
    rc = s_run (out, sizeof out, "bookstore-load --endpoint %s --clients 2 --requests 2 --mix set_price:1 "
                "--attempt-ms 100 --give-up-ms 400 --record %s", list, record);
    CHECK (rc == 1);
    file = fopen (record, "r");
    lines = good = 0;
    while (file && fgets (line, sizeof line, file)) {
        char rid [64];
        long item, count, cost, sent;
        if (sscanf (line, "gave_up set_price %63s %ld %ld %ld %ld", rid, &item, &count, &cost, &sent) == 5
        &&  strlen (rid) == 32 && count == 0 && cost >= 1 && cost <= 50 && sent == 0)
            good++;
        lines++;
    }
    if (file)
        fclose (file);
    CHECK (lines == 2 && good == 2);
    unlink (record);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

//  --------------------------------------------------------------------------
//  The bench

//  The bench starts with the broker that answers; when that one turns
//  passive mid-run its sockets move on and resend, with no errors
static void
test_bench (void)
{
    zactor_t *a = fake_broker_new (FAKE_NOT_ACTIVE), *b = fake_broker_new (FAKE_OK);
    char *list = fake_broker_pair (a, b);
    char out [8192];
    int rc = s_run (out, sizeof out, "bookstore-bench --endpoint %s --workload lookup-hot --items 666 "
                    "--seconds 1 --warmup 0 --clients 4 --json", list);
    CHECK (rc == 0);
    CHECK (strstr (out, "\"ok\":true") && s_json_int (out, "ops") > 0);
    CHECK (s_json_int (out, "errors") == 0 && s_json_int (out, "timeouts") == 0);
    char *ra = s_rids (a);
    CHECK (s_count (ra) == 1);                      //  only the status request
    zstr_free (&ra);
    //  Now the first is active; it hands over in the middle of the run
    fake_broker_mode (a, FAKE_OK);
    fake_broker_mode (b, FAKE_NOT_ACTIVE);
    char *line = zsys_sprintf ("%s/bookstore-bench --endpoint %s --workload lookup-hot --items 666 "
                               "--seconds 2 --warmup 0 --clients 4 --json", s_bin, list);
    FILE *child = popen (line, "r");
    zclock_sleep (1000);
    fake_broker_mode (a, FAKE_NOT_ACTIVE);
    fake_broker_mode (b, FAKE_OK);
    size_t got = child? fread (out, 1, sizeof out - 1, child): 0;
    out [got] = 0;
    rc = child? pclose (child): -1;
    CHECK (WIFEXITED (rc) && WEXITSTATUS (rc) == 0);
    CHECK (s_json_int (out, "errors") == 0 && s_json_int (out, "timeouts") == 0);
    CHECK (s_json_int (out, "failovers") >= 1);
    char *rb = s_rids (b);
    CHECK (s_count (rb) > 3);                       //  served after the handover
    zstr_free (&rb);
    zstr_free (&line);
    zstr_free (&list);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

//  --------------------------------------------------------------------------
//  The monitor

//  A fake broker feed: publishes a status every 20 ms naming itself (and
//  its peer) with the state told, and one node of its own
typedef struct {
    const char *id, *peer;
    bool active;
} feed_args_t;

static void
s_feed_actor (zsock_t *pipe, void *args)
{
    feed_args_t *feed = args;
    zsock_t *pub = zsock_new (ZMQ_PUB);
    int port = zsock_bind (pub, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    bool active = feed->active;
    while (true) {
        char *command = NULL;
        if (zsock_events (pipe) & ZMQ_POLLIN)
            command = zstr_recv (pipe);
        if (command && streq (command, "$TERM")) {
            zstr_free (&command);
            break;
        }
        if (command && streq (command, "ENDPOINT"))
            zstr_sendf (pipe, "tcp://127.0.0.1:%d", port);
        if (command && streq (command, "SWAP")) {
            active = !active;
            zsock_signal (pipe, 0);
        }
        zstr_free (&command);
        bs_msg_t *status = bs_msg_new_ok ();
        bs_msg_set_list (status, BS_FIELD_nodes);
        bs_msg_t *node = bs_msg_new ();
        char node_id [64];
        snprintf (node_id, sizeof node_id, "node-of-%s", feed->id);
        bs_msg_set_str (node, BS_FIELD_id, node_id);
        bs_msg_set_str (node, BS_FIELD_service, "catalog");
        bs_msg_set_int (node, BS_FIELD_alive, 1);
        bs_msg_append (status, BS_FIELD_nodes, &node);
        bs_msg_set_list (status, BS_FIELD_brokers);
        for (int i = 0; i < 2; i++) {
            bs_msg_t *entry = bs_msg_new ();
            bool its_active = i? !active: active;
            bs_msg_set_str (entry, BS_FIELD_id, i? feed->peer: feed->id);
            bs_msg_set_str (entry, BS_FIELD_endpoint, i? "tcp://peer:1": "tcp://self:1");
            bs_msg_set_int (entry, BS_FIELD_active, its_active);
            bs_msg_set_str (entry, BS_FIELD_state, its_active? "active": "passive");
            bs_msg_set_str (entry, BS_FIELD_role, strcmp (i? feed->peer: feed->id, "broker-a") == 0? "primary": "backup");
            bs_msg_append (status, BS_FIELD_brokers, &entry);
        }
        size_t size;
        uint8_t *data = bs_msg_encode (status, &size);
        zsock_send (pub, "sb", "status", data, size);
        free (data);
        bs_msg_destroy (&status);
        zclock_sleep (20);
    }
    zsock_destroy (&pub);
}

static void
test_monitor (void)
{
    feed_args_t args_a = { "broker-a", "broker-b", false }, args_b = { "broker-b", "broker-a", true };
    zactor_t *a = zactor_new (s_feed_actor, &args_a), *b = zactor_new (s_feed_actor, &args_b);
    zstr_send (a, "ENDPOINT");
    char *fa = zstr_recv (a);
    zstr_send (b, "ENDPOINT");
    char *fb = zstr_recv (b);
    char out [16384];
    //  --once --json: the active broker's status, whichever feed says so
    int rc = s_run (out, sizeof out, "bookstore-monitor --feed %s,%s --once --json --timeout-ms 3000", fa, fb);
    CHECK (rc == 0);
    CHECK (strstr (out, "\"brokers\":[{\"id\":\"broker-b\""));
    CHECK (strstr (out, "node-of-broker-b") && !strstr (out, "node-of-broker-a"));
    //  The table: a line per broker, the active one marked; its nodes
    rc = s_run (out, sizeof out, "bookstore-monitor --feed %s,%s --seconds 1", fa, fb);
    CHECK (rc == 0);
    CHECK (strstr (out, "\nBROKER "));
    CHECK (strstr (out, "\nbroker-a ") && strstr (out, "\nbroker-b "));
    char *line_b = strstr (out, "\nbroker-b ");
    char *line_a = strstr (out, "\nbroker-a ");
    CHECK (line_b && strstr (line_b, "ACTIVE") && strstr (line_b, "ACTIVE") < strchr (line_b + 1, '\n'));
    CHECK (line_a && (!strstr (line_a, "ACTIVE") || strstr (line_a, "ACTIVE") > strchr (line_a + 1, '\n')));
    CHECK (strstr (out, "\nnode-of-broker-b ") && !strstr (out, "node-of-broker-a"));
    //  After a takeover the other broker's view is shown
    zstr_send (a, "SWAP");
    zsock_wait (a);
    zstr_send (b, "SWAP");
    zsock_wait (b);
    rc = s_run (out, sizeof out, "bookstore-monitor --feed %s,%s --once --json --timeout-ms 3000", fa, fb);
    CHECK (rc == 0 && strstr (out, "\"brokers\":[{\"id\":\"broker-a\""));
    //  Only a passive broker to listen to (b, now): no snapshot of the nodes
    rc = s_run (out, sizeof out, "bookstore-monitor --feed %s --once --json --timeout-ms 500", fb);
    CHECK (rc == 3 && strstr (out, "\"error\":\"timeout\""));
    //  A list derived from the client endpoints, and a malformed one
    rc = s_run (out, sizeof out, "bookstore-monitor --endpoint tcp://127.0.0.1:1, --once 2>/dev/null");
    CHECK (rc == 2);
    zstr_free (&fa);
    zstr_free (&fb);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

int
main (void)
{
    zsys_init ();
    if (!s_find_programs ()) {
        printf ("# SKIP the programs were not found (set BS_BIN)\n");
        return 0;
    }
    RUN (test_cli);
    RUN (test_load_silent);
    RUN (test_load_not_active);
    RUN (test_load_record);
    RUN (test_bench);
    RUN (test_monitor);
    free (s_bin);
    return DONE ();
}
