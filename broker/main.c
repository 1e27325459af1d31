/*  bookstore-broker - the front end  */
#include "broker.h"
#include "bs_settings.h"

#include <czmq.h>
#include <string.h>

static const bs_setting_t s_table [] = {
    { "id",                 "broker",   "node id used in logs", 0, 0 },
    { "base-port",          "5555",     "client port; nodes use base-port + 1, invalidations + 2, the feed + 3", 1, 65531 },
    { "client-bind",        "",         "client endpoint to bind (default tcp://*:<base-port>; without keys 127.0.0.1 unless --insecure)", 0, 0 },
    { "node-bind",          "",         "node endpoint to bind (default tcp://*:<base-port + 1>)", 0, 0 },
    { "heartbeat-ms",       "250",      "heartbeat interval in milliseconds", 10, 60000 },
    { "liveness",           "3",        "heartbeats a node may miss before it is declared dead", 1, 100 },
    { "request-timeout-ms", "2000",     "how long a request may wait for a live replica", 1, 3600000 },
    { "services",           "catalog,order", "services workers may offer, comma-separated ('*': any); "
                                         "standard 7/MDP workers serve those other than catalog and order", 0, 0 },
    { "invalidate-bind",    "",         "REP endpoint for cache invalidations (default tcp://*:<base-port + 2>)", 0, 0 },
    { "feed-bind",          "",         "PUB endpoint for events and status (default tcp://*:<base-port + 3>)", 0, 0 },
    { "cache-entries",      "100000",   "most catalog replies the cache holds (0 turns it off)", 0, 100000000 },
    { "cache-mb",           "64",       "most memory the cache's entries take, in MiB", 1, 1048576 },
    { "cache-ttl-ms",       "0",        "how long a cached reply may be served (0: until invalidated or evicted)", 0, 86400000 },
    { "max-per-client",     "5000",     "requests one client may have in flight; more are refused (overloaded)", 1, 10000000 },
    { "max-inflight",       "200000",   "requests all clients together may have in flight", 1, 10000000 },
    { "keys",               "",         "keys directory: speak CURVE (see bookstore keygen); empty: plain, unauthenticated", 0, 0 },
    { "cert",               "",         "the broker's certificate (default <keys>/broker)", 0, 0 },
    { "insecure",           NULL,       "without keys, bind the addresses given even beyond loopback (anyone who reaches them is trusted)", 0, 0 },
    { "advertise",          "",         "this broker's client endpoint as clients reach it (default tcp://127.0.0.1:<base-port>)", 0, 0 },
    { "etcd",               "",         "etcd's client URLs, comma-separated: the partition map lives there (empty: in this broker alone)", 0, 0 },
    { "cluster",            "default",  "the cluster's name in etcd: its keys live under /bookstore/<cluster>/", 0, 0 },
    { "etcd-timeout-ms",    "1000",     "how long one call to etcd may take", 10, 60000 },
    { "lease-seconds",      "2",        "the active lease's TTL in etcd: a killed active broker is replaced after about this plus half a second; shorter is a faster failover and less patience with a slow etcd or a busy machine", 1, 60 },
    { "test-mute-file",     "",         "test switch: while this file exists, invalidations go unanswered", 0, 0 },
    { NULL, NULL, NULL, 0, 0 }
};

//  An endpoint setting, or by default tcp://<host>:<port> (out: 256 bytes)
static void
s_endpoint (bs_settings_t *settings, const char *name, const char *host, int port, char *out)
{
    const char *given = bs_settings_get (settings, name);
    if (*given)
        snprintf (out, 256, "%s", given);
    else
        snprintf (out, 256, "tcp://%s:%d", host, port);
}

int
main (int argc, char **argv)
{
    bs_settings_t *settings = bs_settings_new ("broker", s_table, argc, argv);
    if (!settings)
        return 2;
    if (bs_settings_help_shown (settings)) {
        bs_settings_destroy (&settings);
        return 0;
    }
    int64_t port, heartbeat, liveness, timeout, cache_entries, cache_mb, cache_ttl, per_client, inflight;
    int64_t etcd_timeout, lease_seconds;
    if (!bs_settings_int (settings, "base-port", &port)
    ||  !bs_settings_int (settings, "etcd-timeout-ms", &etcd_timeout)
    ||  !bs_settings_int (settings, "lease-seconds", &lease_seconds)
    ||  !bs_settings_int (settings, "heartbeat-ms", &heartbeat)
    ||  !bs_settings_int (settings, "liveness", &liveness)
    ||  !bs_settings_int (settings, "request-timeout-ms", &timeout)
    ||  !bs_settings_int (settings, "cache-entries", &cache_entries)
    ||  !bs_settings_int (settings, "cache-mb", &cache_mb)
    ||  !bs_settings_int (settings, "cache-ttl-ms", &cache_ttl)
    ||  !bs_settings_int (settings, "max-per-client", &per_client)
    ||  !bs_settings_int (settings, "max-inflight", &inflight)) {
        bs_settings_destroy (&settings);
        return 2;
    }
    char reason [256];
    if (!broker_services_check (bs_settings_get (settings, "services"), reason, sizeof reason)) {
        fprintf (stderr, "bookstore-broker: %s\n", reason);
        bs_settings_destroy (&settings);
        return 2;
    }
    zsys_set_logident (bs_settings_get (settings, "id"));
    char client_bind [256], node_bind [256], invalidate_bind [256], feed_bind [256];
    char advertise [256];
    s_endpoint (settings, "client-bind", "*", (int) port, client_bind);
    s_endpoint (settings, "node-bind", "*", (int) port + 1, node_bind);
    s_endpoint (settings, "invalidate-bind", "*", (int) port + 2, invalidate_bind);
    s_endpoint (settings, "feed-bind", "*", (int) port + 3, feed_bind);
    s_endpoint (settings, "advertise", "127.0.0.1", (int) port, advertise);
    broker_options_t options = {
        .client_endpoint = client_bind,
        .worker_endpoint = node_bind,
        .heartbeat_ms = (int) heartbeat,
        .liveness = (int) liveness,
        .request_timeout_ms = (int) timeout,
        .services = bs_settings_get (settings, "services"),
        .invalidate_endpoint = invalidate_bind,
        .feed_endpoint = feed_bind,
        .cache_entries = (size_t) cache_entries,
        .cache_bytes = (size_t) cache_mb << 20,
        .cache_ttl_ms = (int) cache_ttl,
        .max_per_client = (int) per_client,
        .max_inflight = (int) inflight,
        .mute_file = bs_settings_get (settings, "test-mute-file"),
        .id = bs_settings_get (settings, "id"),
        .advertise = advertise,
        .etcd = bs_settings_get (settings, "etcd"),
        .cluster = bs_settings_get (settings, "cluster"),
        .etcd_timeout_ms = (int) etcd_timeout,
        .lease_seconds = (int) lease_seconds,
    };
    int rc = 1;
    bs_keys_t *keys = NULL;
    if (!bs_keys_open (settings, "broker", false, &keys)) {
        bs_settings_destroy (&settings);
        return 1;
    }
    options.keys = keys;
    //  Without keys nothing authenticates a client or node: listen on
    //  loopback alone unless told otherwise
    bool insecure = bs_settings_flag (settings, "insecure");
    char *binds [] = { client_bind, node_bind, invalidate_bind, feed_bind };
    for (size_t i = 0; i < sizeof binds / sizeof binds [0]; i++) {
        char checked [256], reason [384];
        if (!bs_keys_bind_endpoint (keys, insecure, binds [i], checked, sizeof checked, reason, sizeof reason)) {
            fprintf (stderr, "bookstore-broker: %s\n", reason);
            bs_keys_destroy (&keys);
            bs_settings_destroy (&settings);
            return 2;
        }
        snprintf (binds [i], 256, "%s", checked);
    }
    bs_keys_warn_insecure (keys, insecure, "bookstore-broker");
    broker_t *broker = broker_new (&options);
    if (broker) {
        broker_run (broker);
        broker_destroy (&broker);
        rc = 0;
    }
    bs_keys_destroy (&keys);
    bs_settings_destroy (&settings);
    return rc;
}
