/*  bookstore-broker - the front end  */
#include "broker.h"
#include "bs_settings.h"

#include <czmq.h>

static const bs_setting_t s_table [] = {
    { "id",                 "broker",   "node id used in logs" },
    { "base-port",          "5555",     "client port; nodes use base-port + 1" },
    { "client-bind",        "",         "client endpoint to bind (default tcp://*:<base-port>)" },
    { "node-bind",          "",         "node endpoint to bind (default tcp://*:<base-port + 1>)" },
    { "heartbeat-ms",       "250",      "heartbeat interval in milliseconds" },
    { "liveness",           "3",        "heartbeats a node may miss before it is declared dead" },
    { "request-timeout-ms", "2000",     "how long a request may wait for a live replica" },
    { "services",           "catalog,order", "services that exist" },
    { NULL, NULL, NULL }
};

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
    int64_t port, heartbeat, liveness, timeout;
    if (!bs_settings_int (settings, "base-port", &port)
    ||  !bs_settings_int (settings, "heartbeat-ms", &heartbeat)
    ||  !bs_settings_int (settings, "liveness", &liveness)
    ||  !bs_settings_int (settings, "request-timeout-ms", &timeout)
    ||  port < 1 || port > 65534 || heartbeat < 10 || liveness < 1 || timeout < 1) {
        fprintf (stderr, "bookstore-broker: bad numeric setting\n");
        bs_settings_destroy (&settings);
        return 2;
    }
    zsys_set_logident (bs_settings_get (settings, "id"));
    char client_bind [256], node_bind [256];
    const char *cb = bs_settings_get (settings, "client-bind");
    const char *nb = bs_settings_get (settings, "node-bind");
    if (*cb)
        snprintf (client_bind, sizeof client_bind, "%s", cb);
    else
        snprintf (client_bind, sizeof client_bind, "tcp://*:%d", (int) port);
    if (*nb)
        snprintf (node_bind, sizeof node_bind, "%s", nb);
    else
        snprintf (node_bind, sizeof node_bind, "tcp://*:%d", (int) port + 1);
    broker_options_t options = {
        .client_endpoint = client_bind,
        .worker_endpoint = node_bind,
        .heartbeat_ms = (int) heartbeat,
        .liveness = (int) liveness,
        .request_timeout_ms = (int) timeout,
        .services = bs_settings_get (settings, "services"),
    };
    broker_t *broker = broker_new (&options);
    int rc = 1;
    if (broker) {
        broker_run (broker);
        broker_destroy (&broker);
        rc = 0;
    }
    bs_settings_destroy (&settings);
    return rc;
}
