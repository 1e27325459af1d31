/*  bookstore-node - a catalog or order replica: settings, then the node
 *  module (nodes/node.c) runs until interrupted
 */
#include "bs_endpoints.h"
#include "bs_sizes.h"
#include "bs_name.h"
#include "bs_settings.h"
#include "node.h"

#include <czmq.h>
#include <string.h>

//  The largest LMDB map, in MiB (16 TiB)
#define MAP_MAX_MB (1 << 24)

static const bs_setting_t s_table [] = {
    { "service",         "",          "catalog or order", 0, 0 },
    { "id",              "",          "node id, unique in the cluster (default <service>-1)", 0, 0 },
    { "data",            "",          "data directory (default data/<id>)", 0, 0 },
    { "broker",          "tcp://127.0.0.1:5556", "the broker's node endpoint; with several brokers, each one's, comma-separated (the node moves to the next when one is silent or not active)", 0, 0 },
    { "broker-clients",  "tcp://127.0.0.1:5555", "the broker's client endpoint, for tools that ask about this node (the image's health check); the node's own requests go through --broker, as the client port refuses node operations", 0, 0 },
    { "pub-bind",        "tcp://*:5570", "where to publish the replication log (without keys 127.0.0.1 unless --insecure)", 0, 0 },
    { "sync-bind",       "tcp://*:5571", "where followers fetch and ack (without keys 127.0.0.1 unless --insecure)", 0, 0 },
    { "pub-endpoint",    "",          "the publish endpoint others connect to (default from pub-bind on 127.0.0.1)", 0, 0 },
    { "sync-endpoint",   "",          "the sync endpoint others connect to (default from sync-bind on 127.0.0.1)", 0, 0 },
    { "heartbeat-ms",    "250",       "heartbeat interval in milliseconds", 10, 60000 },
    { "liveness",        "3",         "heartbeats the broker may miss before the node moves to the next broker of --broker (reconnects, with one)", 1, 100 },
    { "insync-timeout-ms", "1000",    "a follower this far behind leaves the in-sync set", 1, 3600000 },
    { "min-insync",      "1",         "replicas (primary included) that must be in sync to accept writes", 1, 100 },
    { "hwm",             "100000",    "high-water mark of the replication PUB/SUB sockets", 0, INT32_MAX },
    { "drop-every",      "0",         "test switch: do not publish every k-th log entry (0: off)", 0, INT32_MAX },
    { "map-size-mb",     "1024",      "LMDB map size in MiB to start with", 1, MAP_MAX_MB },
    { "map-max-mb",      "65536",     "the LMDB map grows (doubling) up to this many MiB", 1, MAP_MAX_MB },
    { "seed",            "",          "initial catalog file, loaded by a primary whose catalog is empty", 0, 0 },
    { "restock-period",  "10",        "seconds between restocks of sold-out books (0: never)", 0, 31536000 },
    { "restock-amount",  "10",        "copies added to a sold-out book", 1, 1000000 },
    { "invalidate",      "",          "catalog: the broker's invalidation endpoint, or one per broker of --broker, comma-separated in the same order (default: each broker's node port + 1)", 0, 0 },
    { "invalidate-timeout-ms", "250", "catalog: how long to wait for the broker to acknowledge an invalidation", 1, 60000 },
    { "invalidate-attempts", "2",     "catalog: how many times to send an invalidation before failing the writes", 1, 100 },
    { "keys",            "",          "keys directory: speak CURVE (see bookstore keygen); empty: plain, unauthenticated", 0, 0 },
    { "cert",            "",          "this node's certificate (default <keys>/nodes/<id>)", 0, 0 },
    { "insecure",        NULL,        "without keys, bind the addresses given even beyond loopback (anyone who reaches them is trusted)", 0, 0 },
    { "catalog-timeout-ms", "1500",   "order node: how long to wait for the catalog before resending", 1, 3600000 },
    { "catalog-attempts", "5",        "order node: how many times to ask the catalog", 1, 1000 },
    { "early-publish",   "1",         "a primary publishes a batch's entries before its own commit, so that its followers commit in parallel (1), or after it (0)", 0, 1 },
    { "direct-buys",     "1",         "order node: send a buy's decrement to the catalog primary directly (1), or through the broker (0)", 0, 1 },
    { "log-keep",        "200000",    "log entries each partition keeps for followers that fall behind; one further behind gets a snapshot (at least 100)", 100, INT64_C (1000000000000) },
    { "profile-seconds", "0",         "log every this many seconds where the event loop spent its time (0: never)", 0, 86400 },
    { NULL, NULL, NULL, 0, 0 }
};

//  An advertised endpoint from a bind endpoint: tcp://*:P -> tcp://127.0.0.1:P
static void
s_advertise (const char *bind, const char *given, char *out, size_t size)
{
    if (given && *given) {
        snprintf (out, size, "%s", given);
        return;
    }
    const char *star = strstr (bind, "://*:");
    if (star)
        snprintf (out, size, "%.*s://127.0.0.1:%s", (int) (star - bind), bind, star + 5);
    else
        snprintf (out, size, "%s", bind);
}

//  The brokers' invalidation endpoints, one per broker of the list and in
//  its order: given, or for each broker the port after its node port on
//  the same host (the broker's default layout).  False (said on stderr)
//  when a given list does not have one per broker.
static bool
s_invalidate_endpoints (const char *brokers, const char *given, char *out, size_t size)
{
    bs_endpoints_t *list = bs_endpoints_new (brokers);
    if (!list) {
        fprintf (stderr, "bookstore-node: --broker must be an endpoint or a comma-separated list of them\n");
        return false;
    }
    size_t count = bs_endpoints_size (list);
    bool ok = true;
    out [0] = 0;
    if (given && *given) {
        bs_endpoints_t *mine = bs_endpoints_new (given);
        ok = mine && bs_endpoints_size (mine) == count && strlen (given) < size;
        if (ok)
            snprintf (out, size, "%s", given);
        else
            fprintf (stderr, "bookstore-node: --invalidate needs one endpoint per broker of --broker (%zu), "
                             "comma-separated\n", count);
        bs_endpoints_destroy (&mine);
    }
    else
    for (size_t i = 0; i < count && ok; i++) {
        const char *broker = bs_endpoints_at (list, i);
        const char *colon = strrchr (broker, ':');
        int64_t port;
        size_t used = strlen (out);
        int n;
        if (colon && bs_parse_int (colon + 1, 1, 65534, &port))
            n = snprintf (out + used, size - used, "%s%.*s:%d", i? ",": "", (int) (colon - broker), broker,
                          (int) port + 1);
        else
            n = snprintf (out + used, size - used, "%s%s", i? ",": "", broker);
        ok = n >= 0 && (size_t) n < size - used;
    }
    bs_endpoints_destroy (&list);
    return ok;
}

int
main (int argc, char **argv)
{
    bs_settings_t *settings = bs_settings_new ("node", s_table, argc, argv);
    if (!settings)
        return 2;
    if (bs_settings_help_shown (settings)) {
        bs_settings_destroy (&settings);
        return 0;
    }
    int rc = 2;
    const char *service = bs_settings_get (settings, "service");
    int64_t profile_seconds = 0, log_keep = 0, direct_buys = 1, early_publish = 1;
    int64_t heartbeat, liveness, map_mb, map_max_mb, restock_period, restock_amount, timeout, attempts;
    int64_t insync_timeout, min_insync, hwm, drop_every, inval_timeout, inval_attempts;
    bs_keys_t *keys = NULL;
    node_t *node = NULL;
    if (strcmp (service, "catalog") != 0 && strcmp (service, "order") != 0) {
        fprintf (stderr, "bookstore-node: --service must be catalog or order\n");
        goto done;
    }
    if (!bs_settings_int (settings, "heartbeat-ms", &heartbeat)
    ||  !bs_settings_int (settings, "liveness", &liveness)
    ||  !bs_settings_int (settings, "map-size-mb", &map_mb)
    ||  !bs_settings_int (settings, "map-max-mb", &map_max_mb)
    ||  !bs_settings_int (settings, "restock-period", &restock_period)
    ||  !bs_settings_int (settings, "restock-amount", &restock_amount)
    ||  !bs_settings_int (settings, "catalog-timeout-ms", &timeout)
    ||  !bs_settings_int (settings, "catalog-attempts", &attempts)
    ||  !bs_settings_int (settings, "insync-timeout-ms", &insync_timeout)
    ||  !bs_settings_int (settings, "min-insync", &min_insync)
    ||  !bs_settings_int (settings, "hwm", &hwm)
    ||  !bs_settings_int (settings, "drop-every", &drop_every)
    ||  !bs_settings_int (settings, "invalidate-timeout-ms", &inval_timeout)
    ||  !bs_settings_int (settings, "invalidate-attempts", &inval_attempts)
    ||  !bs_settings_int (settings, "profile-seconds", &profile_seconds)
    ||  !bs_settings_int (settings, "log-keep", &log_keep)
    ||  !bs_settings_int (settings, "direct-buys", &direct_buys)
    ||  !bs_settings_int (settings, "early-publish", &early_publish))
        goto done;
    if (map_max_mb < map_mb) {
        fprintf (stderr, "bookstore-node: --map-max-mb must be at least --map-size-mb (%lld)\n", (long long) map_mb);
        goto done;
    }
    bs_endpoints_t *brokers = bs_endpoints_new (bs_settings_get (settings, "broker"));
    if (!brokers) {
        fprintf (stderr, "bookstore-node: --broker must be an endpoint or a comma-separated list of them\n");
        goto done;
    }
    bs_endpoints_destroy (&brokers);
    //  An order node's partition is its id and a suffix, and both must fit
    //  the wire's bound: a longer id is refused, never cut short
    size_t id_max = strcmp (service, "order") == 0? BS_ID_MAX - BS_PARTITION_SUFFIX_LEN: BS_ID_MAX;
    char id [BS_ID_MAX + 1], data [512];
    if (*bs_settings_get (settings, "id")
    &&  !bs_name_valid (bs_settings_get (settings, "id"), id_max)) {
        fprintf (stderr, "bookstore-node: --id must be 1 to %zu letters, digits, '.', '_' or '-'\n", id_max);
        goto done;
    }
    if (*bs_settings_get (settings, "id"))
        snprintf (id, sizeof id, "%s", bs_settings_get (settings, "id"));
    else
        snprintf (id, sizeof id, "%s-1", service);
    if (*bs_settings_get (settings, "data"))
        snprintf (data, sizeof data, "%s", bs_settings_get (settings, "data"));
    else
        snprintf (data, sizeof data, "data/%s", id);
    zsys_set_logident (id);
    char invalidate [BS_ENDPOINTS_MAX * 260] = "";
    if (strcmp (service, "catalog") == 0
    &&  !s_invalidate_endpoints (bs_settings_get (settings, "broker"), bs_settings_get (settings, "invalidate"),
                                 invalidate, sizeof invalidate))
        goto done;

    rc = 1;
    char own_cert [100];
    snprintf (own_cert, sizeof own_cert, "nodes/%s", id);
    if (!bs_keys_open (settings, own_cert, false, &keys))
        goto done;
    //  Without keys nothing authenticates a peer: listen on loopback alone
    //  unless told otherwise
    bool insecure = bs_settings_flag (settings, "insecure");
    char pub_bind [300], sync_bind [300], reason [384];
    if (!bs_keys_bind_endpoint (keys, insecure, bs_settings_get (settings, "pub-bind"), pub_bind, sizeof pub_bind,
                                reason, sizeof reason)
    ||  !bs_keys_bind_endpoint (keys, insecure, bs_settings_get (settings, "sync-bind"), sync_bind, sizeof sync_bind,
                                reason, sizeof reason)) {
        fprintf (stderr, "bookstore-node: %s\n", reason);
        rc = 2;
        goto done;
    }
    bs_keys_warn_insecure (keys, insecure, "bookstore-node");
    char pub_ep [300], sync_ep [300];
    s_advertise (pub_bind, bs_settings_get (settings, "pub-endpoint"), pub_ep, sizeof pub_ep);
    s_advertise (sync_bind, bs_settings_get (settings, "sync-endpoint"), sync_ep, sizeof sync_ep);
    node_options_t options = {
        .service = service,
        .id = id,
        .data = data,
        .brokers = bs_settings_get (settings, "broker"),
        //  A node's own requests (an order node's decrement) go to the
        //  broker's node port: its client port refuses them
        .broker_clients = bs_settings_get (settings, "broker"),
        .pub_bind = pub_bind,
        .sync_bind = sync_bind,
        .pub_endpoint = pub_ep,
        .sync_endpoint = sync_ep,
        .invalidate = invalidate,
        .seed = bs_settings_get (settings, "seed"),
        .keys = keys,
        .heartbeat_ms = (int) heartbeat,
        .liveness = (int) liveness,
        .insync_timeout_ms = (int) insync_timeout,
        .min_insync = (int) min_insync,
        .hwm = (int) hwm,
        .drop_every = (int) drop_every,
        .map_size = (size_t) map_mb << 20,
        .map_max = (size_t) map_max_mb << 20,
        .restock_period_ms = restock_period * 1000,
        .restock_amount = restock_amount,
        .catalog_timeout_ms = (int) timeout,
        .catalog_attempts = (int) attempts,
        .invalidate_timeout_ms = (int) inval_timeout,
        .invalidate_attempts = (int) inval_attempts,
        .log_keep = (uint64_t) log_keep,
        .profile_ms = profile_seconds * 1000,
        .direct_buys = direct_buys != 0,
        .early_publish = early_publish != 0,
    };
    bool refused;
    node = node_new (&options, &refused);
    if (!node) {
        rc = refused? 2: 1;
        goto done;
    }
    node_run (node);
    zsys_info ("%s: stopping", id);
    rc = 0;
done:
    node_destroy (&node);
    bs_keys_destroy (&keys);
    bs_settings_destroy (&settings);
    return rc;
}
