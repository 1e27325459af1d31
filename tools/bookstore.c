/*  bookstore - the command-line client
 *
 *  Exit codes: 0 success, 1 the store said no, 2 usage error, 3 the cluster
 *  was unreachable or timed out.
 */
#include "bs_client.h"
#include "bs_keys.h"
#include "bs_msg.h"
#include "bs_request.h"
#include "bs_settings.h"
#include "bs_etcd.h"
#include "election.h"

#include <czmq.h>
#include <string.h>

#define EXIT_REFUSED     1
#define EXIT_USAGE       2
#define EXIT_UNREACHABLE 3

static const bs_setting_t s_table [] = {
    { "endpoint",   "tcp://127.0.0.1:5555", "the broker's client endpoint, or several brokers', comma-separated", 0, 0 },
    { "json",       NULL,   "print exactly one JSON object", 0, 0 },
    { "timeout-ms", "2500", "how long to wait for each attempt", 1, 3600000 },
    { "attempts",   "3",    "how many times to send a request (same request id)", 1, 1000 },
    { "rid",        "",     "request id as 32 hex digits (to retry a request by hand)", 0, 0 },
    { "item",       "",     "orders: only the orders of this item", 0, 0 },
    { "page",       "",     "orders: ask for this many at a time (the store gives at most 20000 a request); every page is fetched", 0, 0 },
    { "node",       "",     "ask this node (by id) instead of letting the broker choose", 0, 0 },
    { "keys",       "",     "keys directory of a CURVE cluster (see keygen)", 0, 0 },
    { "cert",       "",     "your certificate (default <keys>/clients/client; admins/... may change the catalog)", 0, 0 },
    { "etcd",       "http://127.0.0.1:2379", "unclean-election: the control plane's etcd client URLs, comma-separated", 0, 0 },
    { "cluster",    "default", "unclean-election: the cluster's name in etcd (its keys live under /bookstore/<name>/)", 0, 0 },
    { "wait-ms",    "15000", "unclean-election: how long to wait for the election", 0, 3600000 },
    { NULL, NULL, NULL, 0, 0 }
};

static const char *s_usage_text =
    "usage: bookstore [--endpoint EP[,EP2]] [--json] [--node ID] COMMAND\n"
    "commands:\n"
    "  search TOPIC                           books on a topic\n"
    "  lookup ITEM                            price and stock of a book\n"
    "  list                                   every book\n"
    "  buy ITEM                               buy one copy\n"
    "  orders [--item ITEM] [--page N]        list orders (in order id order), every page\n"
    "  set-price ITEM COST                    change a price\n"
    "  restock ITEM COUNT                     add copies\n"
    "  add-book ITEM TOPIC TITLE COST STOCK   add a book\n"
    "  status                                 the cluster's nodes (and brokers, if several)\n"
    "  keygen DIR [nodes/ID|admins/NAME|clients/NAME ...]\n"
    "                                         write CURVE certificates into DIR\n"
    "  unclean-election catalog               when no replica of the in-sync set is alive:\n"
    "                                         elect the most advanced live one, LOSING every\n"
    "                                         write the in-sync set acknowledged beyond it\n"
    "                                         (talks to etcd: --etcd, --cluster)\n"
    "  keys-export DIR NAME OUT               OUT gets what the process NAME needs: every\n"
    "                                         public certificate and NAME's secret alone\n"
    "The endpoint may also come from BOOKSTORE_ENDPOINT.  With several brokers give\n"
    "them all, comma-separated: the request goes to the active one, and is sent to\n"
    "the next, with the same request id, when it fails.\n";

typedef struct {
    const char *name;
    bs_op_t op;
    int argc;                   //  positional arguments after the command
    bs_field_t fields [5];      //  what each argument fills in
} command_t;

static const command_t s_commands [] = {
    { "search",    BS_OP_search,    1, { BS_FIELD_topic } },
    { "lookup",    BS_OP_lookup,    1, { BS_FIELD_item } },
    { "list",      BS_OP_list,      0, { 0 } },
    { "buy",       BS_OP_buy,       1, { BS_FIELD_item } },
    { "orders",    BS_OP_orders,    0, { 0 } },
    { "set-price", BS_OP_set_price, 2, { BS_FIELD_item, BS_FIELD_cost } },
    { "restock",   BS_OP_restock,   2, { BS_FIELD_item, BS_FIELD_count } },
    { "add-book",  BS_OP_add_book,  5, { BS_FIELD_item, BS_FIELD_topic, BS_FIELD_title, BS_FIELD_cost, BS_FIELD_stock } },
    { "status",    BS_OP_status,    0, { 0 } },
};

static bool s_json;

//  Reports a failure in the chosen format and returns the exit code
static int
s_fail (int code, const char *error, const char *message)
{
    if (s_json) {
        bs_msg_t *msg = bs_msg_new ();
        bs_msg_set_int (msg, BS_FIELD_ok, 0);
        bs_msg_set_str (msg, BS_FIELD_error, error);
        bs_msg_set_str (msg, BS_FIELD_message, message);
        char *json = bs_msg_to_json (msg);
        printf ("%s\n", json);
        free (json);
        bs_msg_destroy (&msg);
    }
    else
        fprintf (stderr, "bookstore: %s: %s\n", error, message);
    return code;
}

//  Fills the request from the positional arguments; false on a bad value
static bool
s_fill (bs_msg_t *request, const command_t *cmd, bs_settings_t *settings, char *reason, size_t size)
{
    for (int i = 0; i < cmd->argc; i++)
        if (!bs_request_set_text (request, cmd->fields [i], bs_settings_arg (settings, i + 1), reason, size))
            return false;
    if (cmd->op == BS_OP_orders && *bs_settings_get (settings, "item")
    &&  !bs_request_set_text (request, BS_FIELD_item, bs_settings_get (settings, "item"), reason, size))
        return false;
    if (cmd->op == BS_OP_orders && *bs_settings_get (settings, "page")
    &&  !bs_request_set_text (request, BS_FIELD_limit, bs_settings_get (settings, "page"), reason, size))
        return false;
    return bs_request_check (request, reason, size) == BS_OK;
}

//  A listing of orders comes in pages: asks for the pages after the first
//  (the same request, a new rid, after the last order so far) and gathers
//  every order into the first reply.  A page that fails fails the whole.
static bs_msg_t *
s_orders_rest (bs_client_t *client, const char *service, const bs_msg_t *first, bs_msg_t *reply)
{
    while (reply && bs_msg_int (reply, BS_FIELD_ok) && bs_msg_int (reply, BS_FIELD_more)) {
        size_t n = bs_msg_count (reply, BS_FIELD_orders);
        if (n == 0)
            break;
        bs_msg_t *next = bs_msg_new_request (BS_OP_orders);
        if (bs_msg_has (first, BS_FIELD_item))
            bs_msg_set_int (next, BS_FIELD_item, bs_msg_int (first, BS_FIELD_item));
        if (bs_msg_has (first, BS_FIELD_limit))
            bs_msg_set_int (next, BS_FIELD_limit, bs_msg_int (first, BS_FIELD_limit));
        bs_msg_set_str (next, BS_FIELD_after,
                        bs_msg_str (bs_msg_at (reply, BS_FIELD_orders, n - 1), BS_FIELD_order_id));
        bs_msg_t *page = bs_client_call (client, service, next);
        bs_msg_destroy (&next);
        if (!page || !bs_msg_int (page, BS_FIELD_ok)) {
            bs_msg_destroy (&reply);
            return page;
        }
        //  Moved over as copies: a list hands out borrowed elements
        for (size_t i = 0; i < bs_msg_count (page, BS_FIELD_orders); i++) {
            size_t size;
            uint8_t *data = bs_msg_encode (bs_msg_at (page, BS_FIELD_orders, i), &size);
            bs_err_t err;
            bs_msg_t *order = bs_msg_decode (data, size, &err, NULL, 0);
            free (data);
            if (order)
                bs_msg_append (reply, BS_FIELD_orders, &order);
        }
        bs_msg_set_int (reply, BS_FIELD_more, bs_msg_int (page, BS_FIELD_more));
        bs_msg_destroy (&page);
    }
    if (reply)
        bs_msg_unset (reply, BS_FIELD_more);
    return reply;
}

static void
s_print_human (const command_t *cmd, bs_msg_t *reply)
{
    if (cmd->op == BS_OP_search || cmd->op == BS_OP_list) {
        size_t n = bs_msg_count (reply, BS_FIELD_items);
        if (cmd->op == BS_OP_search)
            printf ("%zu book(s) on %s\n", n, bs_msg_str (reply, BS_FIELD_topic));
        for (size_t i = 0; i < n; i++) {
            bs_msg_t *b = bs_msg_at (reply, BS_FIELD_items, i);
            printf ("  %9lld  %-52s cost %5lld  stock %5lld\n", (long long) bs_msg_int (b, BS_FIELD_item),
                    bs_msg_str (b, BS_FIELD_title), (long long) bs_msg_int (b, BS_FIELD_cost),
                    (long long) bs_msg_int (b, BS_FIELD_stock));
        }
    }
    else
    if (cmd->op == BS_OP_buy)
        printf ("bought item %lld: order %s\n", (long long) bs_msg_int (reply, BS_FIELD_item),
                bs_msg_str (reply, BS_FIELD_order_id));
    else
    if (cmd->op == BS_OP_orders) {
        size_t n = bs_msg_count (reply, BS_FIELD_orders);
        printf ("%zu order(s)\n", n);
        for (size_t i = 0; i < n; i++) {
            bs_msg_t *o = bs_msg_at (reply, BS_FIELD_orders, i);
            printf ("  %-24s item %lld  %s\n", bs_msg_str (o, BS_FIELD_order_id),
                    (long long) bs_msg_int (o, BS_FIELD_item), bs_msg_str (o, BS_FIELD_status));
        }
    }
    else
    if (cmd->op == BS_OP_status) {
        //  As the monitor shows them: a node that has not reported its
        //  state yet has no role, epoch, seq, lag or in-sync ("-")
        size_t n = bs_msg_count (reply, BS_FIELD_nodes);
        printf ("%-16s %-8s %-9s %-6s %6s %9s %6s %-7s %8s %10s\n", "NODE", "SERVICE", "ROLE", "ALIVE",
                "EPOCH", "SEQ", "LAG", "IN-SYNC", "INFLIGHT", "SERVED");
        for (size_t i = 0; i < n; i++) {
            bs_msg_t *w = bs_msg_at (reply, BS_FIELD_nodes, i);
            bool reported = bs_msg_has (w, BS_FIELD_role);
            char epoch [24] = "-", seq [24] = "-", lag [24] = "-";
            if (bs_msg_has (w, BS_FIELD_epoch)) {
                snprintf (epoch, sizeof epoch, "%lld", (long long) bs_msg_int (w, BS_FIELD_epoch));
                snprintf (seq, sizeof seq, "%lld", (long long) bs_msg_int (w, BS_FIELD_seq));
            }
            if (bs_msg_has (w, BS_FIELD_lag))
                snprintf (lag, sizeof lag, "%lld", (long long) bs_msg_int (w, BS_FIELD_lag));
            printf ("%-16s %-8s %-9s %-6s %6s %9s %6s %-7s %8lld %10lld\n", bs_msg_str (w, BS_FIELD_id),
                    bs_msg_str (w, BS_FIELD_service), reported? bs_msg_str (w, BS_FIELD_role): "-",
                    bs_msg_int (w, BS_FIELD_alive)? "yes": "no", epoch, seq, lag,
                    !reported? "-": bs_msg_int (w, BS_FIELD_insync)? "yes": "no",
                    (long long) bs_msg_int (w, BS_FIELD_inflight),
                    (long long) bs_msg_int (w, BS_FIELD_requests));
        }
        //  The control plane: where the map lives and what it holds
        if (*bs_msg_str (reply, BS_FIELD_store)) {
            printf ("\ncontrol plane: etcd, keys under %s\n", bs_msg_str (reply, BS_FIELD_store));
            for (size_t i = 0; i < bs_msg_count (reply, BS_FIELD_control); i++) {
                bs_msg_t *part = bs_msg_at (reply, BS_FIELD_control, i);
                printf ("  %s: epoch %lld, primary %s, in sync %s (revision %lld)\n",
                        bs_msg_str (part, BS_FIELD_partition), (long long) bs_msg_int (part, BS_FIELD_epoch),
                        *bs_msg_str (part, BS_FIELD_primary)? bs_msg_str (part, BS_FIELD_primary): "(none)",
                        bs_msg_str (part, BS_FIELD_isr), (long long) bs_msg_int (part, BS_FIELD_revision));
            }
        }
        //  Several brokers: which one serves (the active one lists itself
        //  alone; a broker named other than the default "broker" is one
        //  of several)
        size_t brokers = bs_msg_count (reply, BS_FIELD_brokers);
        if (brokers > 1
        || (brokers == 1 && strcmp (bs_msg_str (bs_msg_at (reply, BS_FIELD_brokers, 0), BS_FIELD_id), "broker") != 0)) {
            printf ("\n%-16s %-8s %s\n", "BROKER", "STATE", "ENDPOINT");
            for (size_t i = 0; i < brokers; i++) {
                bs_msg_t *b = bs_msg_at (reply, BS_FIELD_brokers, i);
                printf ("%-16s %-8s %s\n", bs_msg_str (b, BS_FIELD_id), bs_msg_str (b, BS_FIELD_state),
                        bs_msg_str (b, BS_FIELD_endpoint));
            }
        }
    }
    else
        printf ("%lld  %s\n  topic %s, cost %lld, stock %lld\n",
                (long long) bs_msg_int (reply, BS_FIELD_item), bs_msg_str (reply, BS_FIELD_title),
                bs_msg_str (reply, BS_FIELD_topic), (long long) bs_msg_int (reply, BS_FIELD_cost),
                (long long) bs_msg_int (reply, BS_FIELD_stock));
}

//  keygen DIR [names]: certificates for a CURVE cluster
static int
s_keygen (bs_settings_t *settings)
{
    if (bs_settings_argc (settings) < 2)
        return s_fail (EXIT_USAGE, "usage", "keygen takes a directory");
    const char *extra [32];
    int count = 0;
    for (int i = 2; i < bs_settings_argc (settings) && count < 32; i++)
        extra [count++] = bs_settings_arg (settings, i);
    const char *dir = bs_settings_arg (settings, 1);
    int written = bs_keys_generate (dir, extra, count);
    if (written < 0)
        return s_fail (EXIT_USAGE, "usage", "cannot write there, or a name is not nodes/ID, admins/NAME or clients/NAME");
    if (s_json)
        printf ("{\"ok\":true,\"written\":%d}\n", written);
    else
        printf ("%d certificate(s) written to %s (existing ones kept)\n", written, dir);
    return 0;
}

//  keys-export DIR NAME OUT: one process's view of the keys directory
static int
s_keys_export (bs_settings_t *settings)
{
    if (bs_settings_argc (settings) != 4)
        return s_fail (EXIT_USAGE, "usage", "keys-export takes DIR NAME OUT");
    char reason [1200];
    if (!bs_keys_export (bs_settings_arg (settings, 1), bs_settings_arg (settings, 2), bs_settings_arg (settings, 3),
                         reason, sizeof reason))
        return s_fail (EXIT_USAGE, "bad_value", reason);
    if (s_json)
        printf ("{\"ok\":true}\n");
    else
        printf ("%s holds the keys of %s\n", bs_settings_arg (settings, 3), bs_settings_arg (settings, 2));
    return 0;
}

//  The catalog's map as etcd holds it; false with a sentence when it
//  cannot be read or is not valid
static bool
s_read_meta (bs_etcd_t *etcd, const char *key, election_meta_t *meta, char *reason, size_t size)
{
    bs_etcd_kvs_t *kvs = NULL;
    if (bs_etcd_get (etcd, key, &kvs) != BS_ETCD_OK) {
        snprintf (reason, size, "cannot read %s from etcd: %s", key, bs_etcd_error (etcd));
        return false;
    }
    bool ok = kvs->count == 1;
    if (!ok)
        snprintf (reason, size, "etcd holds no %s: the cluster has no catalog map there (check --etcd and --cluster)",
                  key);
    else {
        char why [200];
        ok = election_meta_decode (kvs->kv [0].value, meta, why, sizeof why);
        if (!ok)
            snprintf (reason, size, "%s in etcd is not a valid map: %s", key, why);
    }
    bs_etcd_kvs_destroy (&kvs);
    return ok;
}

//  unclean-election catalog: asks the brokers, through etcd, to elect the
//  most advanced live replica although no member of the in-sync set is
//  alive.  The request names the epoch it is for, so it forces at most one
//  election, and lasts only while the command waits.  Says who leads and
//  what is lost.
static int
s_unclean_election (bs_settings_t *settings)
{
    if (bs_settings_argc (settings) != 2)
        return s_fail (EXIT_USAGE, "usage", "unclean-election takes a partition: catalog");
    if (strcmp (bs_settings_arg (settings, 1), "catalog") != 0)
        return s_fail (EXIT_USAGE, "bad_value", "only the catalog is elected; an order partition's primary is the node that owns it");
    const char *cluster = bs_settings_get (settings, "cluster");
    size_t length = strlen (cluster);
    if (length == 0 || length > 64 || strspn (cluster, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != length)
        return s_fail (EXIT_USAGE, "bad_value", "--cluster must be 1 to 64 letters, digits, '-' or '_'");
    int64_t wait_ms;
    char reason [600];
    if (!bs_settings_check_int (settings, "wait-ms", &wait_ms, reason, sizeof reason))
        return s_fail (EXIT_USAGE, "usage", reason);
    bs_etcd_t *etcd = bs_etcd_new (bs_settings_get (settings, "etcd"), 2000);
    if (!etcd)
        return s_fail (EXIT_USAGE, "bad_value", "--etcd must be etcd client URLs, comma-separated");
    char key [128], request_key [160];
    snprintf (key, sizeof key, "/bookstore/%s/partitions/catalog", cluster);
    snprintf (request_key, sizeof request_key, "%s/unclean", key);
    election_meta_t meta;
    if (!s_read_meta (etcd, key, &meta, reason, sizeof reason)) {
        bs_etcd_destroy (&etcd);
        return s_fail (EXIT_UNREACHABLE, "unavailable", reason);
    }
    if (meta.epoch == 0) {
        bs_etcd_destroy (&etcd);
        return s_fail (EXIT_REFUSED, "refused", "the catalog has never had a primary: its first election needs no operator");
    }
    //  The request lives only while we wait for it: bound to a lease we
    //  revoke when done, and etcd drops it by itself if we die, so that a
    //  request no election answered cannot fire when the in-sync set is
    //  lost some other day
    int64_t lease = 0;
    bs_etcd_rc_t rc = bs_etcd_lease_grant (etcd, (int) ((wait_ms + 999) / 1000) + 1, &lease);
    char *value = election_unclean_encode (meta.epoch);
    if (rc == BS_ETCD_OK)
        rc = bs_etcd_put (etcd, request_key, value, lease);
    free (value);
    if (rc != BS_ETCD_OK) {
        snprintf (reason, sizeof reason, "cannot write %s to etcd: %s", request_key, bs_etcd_error (etcd));
        bs_etcd_destroy (&etcd);
        return s_fail (EXIT_UNREACHABLE, "unavailable", reason);
    }
    char members [ELECTION_REPLICAS_MAX * (ELECTION_ID_MAX + 1) + 1] = "";
    for (size_t i = 0; i < meta.insync_count; i++)
        snprintf (members + strlen (members), sizeof members - strlen (members), "%s%s", i? ",": "", meta.insync [i]);
    if (!s_json)
        printf ("asked for an unclean election of the catalog at epoch %llu (in-sync set %s): the most advanced live\n"
                "replica will lead alone, and every write that set acknowledged beyond its log is lost\n",
                (unsigned long long) meta.epoch, members);
    //  Wait for a broker to elect (the request holds until the epoch moves)
    election_meta_t now = meta;
    int64_t deadline = zclock_mono () + wait_ms;
    while (now.epoch == meta.epoch && zclock_mono () < deadline) {
        zclock_sleep (100);
        if (!s_read_meta (etcd, key, &now, reason, sizeof reason))
            now = meta;
    }
    bs_etcd_lease_revoke (etcd, lease);
    bs_etcd_destroy (&etcd);
    if (now.epoch == meta.epoch) {
        snprintf (reason, sizeof reason, "no broker elected within %lld ms, and the request is withdrawn: a member "
                  "of the in-sync set is alive (nothing to force), or no broker runs, or no live replica holds the "
                  "catalog whole", (long long) wait_ms);
        return s_fail (EXIT_UNREACHABLE, "unavailable", reason);
    }
    if (s_json)
        printf ("{\"ok\":true,\"partition\":\"catalog\",\"old_epoch\":%llu,\"old_insync\":\"%s\",\"epoch\":%llu,"
                "\"primary\":\"%s\"}\n", (unsigned long long) meta.epoch, members, (unsigned long long) now.epoch,
                now.primary);
    else
        printf ("%s leads the catalog at epoch %llu\n", now.primary, (unsigned long long) now.epoch);
    return 0;
}

static int
s_run (bs_settings_t *settings)
{
    s_json = bs_settings_flag (settings, "json");
    const char *name = bs_settings_arg (settings, 0);
    if (!name) {
        fputs (s_usage_text, stderr);
        return s_fail (EXIT_USAGE, "usage", "no command given");
    }
    if (strcmp (name, "keygen") == 0)
        return s_keygen (settings);
    if (strcmp (name, "keys-export") == 0)
        return s_keys_export (settings);
    if (strcmp (name, "unclean-election") == 0)
        return s_unclean_election (settings);
    const command_t *cmd = NULL;
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands [0]; i++)
        if (strcmp (s_commands [i].name, name) == 0)
            cmd = &s_commands [i];
    char reason [200];
    if (!cmd) {
        fputs (s_usage_text, stderr);
        snprintf (reason, sizeof reason, "unknown command '%.40s'", name);
        return s_fail (EXIT_USAGE, "usage", reason);
    }
    if (bs_settings_argc (settings) != cmd->argc + 1) {
        fputs (s_usage_text, stderr);
        snprintf (reason, sizeof reason, "%s takes %d argument(s)", cmd->name, cmd->argc);
        return s_fail (EXIT_USAGE, "usage", reason);
    }
    int64_t timeout, attempts;
    if (!bs_settings_check_int (settings, "timeout-ms", &timeout, reason, sizeof reason)
    ||  !bs_settings_check_int (settings, "attempts", &attempts, reason, sizeof reason))
        return s_fail (EXIT_USAGE, "usage", reason);
    bs_msg_t *request = bs_msg_new_request (cmd->op);
    const char *rid_hex = bs_settings_get (settings, "rid");
    if (*rid_hex) {
        uint8_t rid [BS_RID_SIZE];
        if (!bs_rid_parse (rid_hex, rid)) {
            bs_msg_destroy (&request);
            return s_fail (EXIT_USAGE, "usage", "--rid must be 32 hex digits");
        }
        bs_msg_set_bin (request, BS_FIELD_rid, rid, sizeof rid);
    }
    if (!s_fill (request, cmd, settings, reason, sizeof reason)) {
        bs_msg_destroy (&request);
        return s_fail (EXIT_USAGE, "bad_value", reason);
    }
    bs_keys_t *keys;
    if (!bs_keys_open (settings, "clients/client", true, &keys)) {
        bs_msg_destroy (&request);
        return s_fail (EXIT_USAGE, "usage", "the certificate cannot be read");
    }
    bs_client_t *client = bs_client_new_secure (bs_settings_get (settings, "endpoint"), keys);
    bs_keys_destroy (&keys);
    if (!client) {
        bs_msg_destroy (&request);
        return s_fail (EXIT_USAGE, "usage", "the endpoint is not a valid ZeroMQ endpoint or comma-separated list of them");
    }
    bs_client_set_timeout (client, (int) timeout);
    bs_client_set_attempts (client, (int) attempts);
    char service [128];
    const char *node = bs_settings_get (settings, "node");
    if (*node)
        snprintf (service, sizeof service, "%s@%.64s", bs_op_service (cmd->op), node);
    else
        snprintf (service, sizeof service, "%s", bs_op_service (cmd->op));
    bs_msg_t *reply = bs_client_call (client, service, request);
    if (cmd->op == BS_OP_orders)
        reply = s_orders_rest (client, service, request, reply);
    bs_client_destroy (&client);
    bs_msg_destroy (&request);
    if (!reply)
        return s_fail (EXIT_UNREACHABLE, bs_err_name (BS_ERR_timeout),
                       "the cluster did not answer; is the broker running at that endpoint?");
    int code = 0;
    if (!bs_msg_int (reply, BS_FIELD_ok)) {
        const char *error = bs_msg_str (reply, BS_FIELD_error);
        //  No broker would serve (not_active) is as unreachable
        //  as a store with no node alive
        code = strcmp (error, bs_err_name (BS_ERR_unavailable)) == 0
            || strcmp (error, bs_err_name (BS_ERR_not_active)) == 0? EXIT_UNREACHABLE: EXIT_REFUSED;
        code = s_fail (code, error, bs_msg_str (reply, BS_FIELD_message));
    }
    else
    if (s_json) {
        //  The request id is the client's own business: leave it out
        bs_msg_unset (reply, BS_FIELD_rid);
        char *json = bs_msg_to_json (reply);
        printf ("%s\n", json);
        free (json);
    }
    else
        s_print_human (cmd, reply);
    bs_msg_destroy (&reply);
    return code;
}

int
main (int argc, char **argv)
{
    //  The CLI handles no signals itself: Ctrl-C simply ends it
    zsys_handler_set (NULL);
    bs_settings_t *settings = bs_settings_new ("client", s_table, argc, argv);
    if (!settings) {
        fputs (s_usage_text, stderr);
        return EXIT_USAGE;
    }
    int rc = 0;
    if (bs_settings_help_shown (settings))
        fputs (s_usage_text, stderr);
    else
        rc = s_run (settings);
    bs_settings_destroy (&settings);
    return rc;
}
