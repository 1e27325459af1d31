/*  ctlplane - the broker's asynchronous link to etcd.  See ctlplane.h.
 *
 *  Requests on the pipe:  "GET"  tag relative
 *                         "PUT"  tag relative value mod_revision
 *  Answers:               tag op rc revision error [key value mod_revision]...
 *  Numbers travel as decimal text frames.
 */
#include "ctlplane.h"

#include <czmq.h>
#include <inttypes.h>

struct _ctlplane_t {
    zactor_t *actor;
    char prefix [96];
};

typedef struct {
    char *endpoints;
    char prefix [96];
    int timeout_ms;
} actor_args_t;

//  revision carries the op's number: a mod revision, a lease id or a TTL
static void
s_send_answer (zsock_t *pipe, const char *tag, ctlplane_op_t op, bs_etcd_rc_t rc,
               int64_t revision, const char *error, bs_etcd_kvs_t *kvs, size_t prefix_size)
{
    zmsg_t *answer = zmsg_new ();
    zmsg_addstr (answer, tag);
    zmsg_addstrf (answer, "%d", (int) op);
    zmsg_addstrf (answer, "%d", (int) rc);
    zmsg_addstrf (answer, "%" PRId64, revision);
    zmsg_addstr (answer, error);
    for (size_t index = 0; kvs && index < kvs->count; index++) {
        const char *key = kvs->kv [index].key;
        zmsg_addstr (answer, strlen (key) >= prefix_size? key + prefix_size: key);
        zmsg_addmem (answer, kvs->kv [index].value, kvs->kv [index].value_size);
        zmsg_addstrf (answer, "%" PRId64, kvs->kv [index].mod_revision);
    }
    zmsg_send (&answer, pipe);
}

static void
s_actor (zsock_t *pipe, void *arg)
{
    //  Everything taken from args before the signal: the creator frees
    //  them once zactor_new returns
    actor_args_t *args = (actor_args_t *) arg;
    bs_etcd_t *etcd = bs_etcd_new (args->endpoints, args->timeout_ms);
    char prefix [96];
    snprintf (prefix, sizeof prefix, "%s", args->prefix);
    size_t prefix_size = strlen (prefix);
    zsock_signal (pipe, 0);
    while (true) {
        zmsg_t *request = zmsg_recv (pipe);
        if (!request)
            break;
        char *command = zmsg_popstr (request);
        if (!command || streq (command, "$TERM")) {
            zstr_free (&command);
            zmsg_destroy (&request);
            break;
        }
        char *tag = zmsg_popstr (request);
        char *relative = zmsg_popstr (request);
        char key [512];
        snprintf (key, sizeof key, "%s%s", prefix, relative? relative: "");
        if (streq (command, "GET")) {
            bs_etcd_kvs_t *kvs = NULL;
            bs_etcd_rc_t rc = bs_etcd_get_prefix (etcd, key, &kvs);
            s_send_answer (pipe, tag? tag: "0", CTLPLANE_GET_PREFIX, rc, kvs? kvs->revision: 0,
                           bs_etcd_error (etcd), kvs, prefix_size);
            bs_etcd_kvs_destroy (&kvs);
        }
        else
        if (streq (command, "PUT")) {
            char *value = zmsg_popstr (request);
            char *revision_text = zmsg_popstr (request);
            int64_t revision = revision_text? strtoll (revision_text, NULL, 10): -1;
            int64_t now_revision = 0;
            bs_etcd_rc_t rc = bs_etcd_put_if (etcd, key, value? value: "", revision, 0, &now_revision);
            s_send_answer (pipe, tag? tag: "0", CTLPLANE_PUT_IF, rc, now_revision,
                           bs_etcd_error (etcd), NULL, prefix_size);
            zstr_free (&value);
            zstr_free (&revision_text);
        }
        else
        if (streq (command, "GRANT")) {
            //  relative carries the TTL in seconds
            int64_t lease = 0;
            bs_etcd_rc_t rc = bs_etcd_lease_grant (etcd, atoi (relative? relative: "0"), &lease);
            s_send_answer (pipe, tag? tag: "0", CTLPLANE_GRANT, rc, lease, bs_etcd_error (etcd), NULL, prefix_size);
        }
        else
        if (streq (command, "KEEPALIVE") || streq (command, "REVOKE")) {
            //  relative carries the lease id
            int64_t lease = strtoll (relative? relative: "0", NULL, 10), ttl = 0;
            bool renew = streq (command, "KEEPALIVE");
            bs_etcd_rc_t rc = renew? bs_etcd_lease_keepalive (etcd, lease, &ttl): bs_etcd_lease_revoke (etcd, lease);
            s_send_answer (pipe, tag? tag: "0", renew? CTLPLANE_KEEPALIVE: CTLPLANE_REVOKE, rc, ttl,
                           bs_etcd_error (etcd), NULL, prefix_size);
        }
        else
        if (streq (command, "CAMPAIGN") || streq (command, "PUTLEASED")) {
            char *value = zmsg_popstr (request);
            char *lease_text = zmsg_popstr (request);
            int64_t lease = lease_text? strtoll (lease_text, NULL, 10): 0;
            bool campaign = streq (command, "CAMPAIGN");
            int64_t now_revision = 0;
            bs_etcd_rc_t rc = campaign? bs_etcd_put_if (etcd, key, value? value: "", 0, lease, &now_revision)
                                      : bs_etcd_put (etcd, key, value? value: "", lease);
            bs_etcd_kvs_t *kvs = NULL;
            char error [256];
            snprintf (error, sizeof error, "%s", bs_etcd_error (etcd));
            //  Lost: who holds it, read at once (it may have gone since)
            if (campaign && rc == BS_ETCD_COMPARE_FAILED && bs_etcd_get (etcd, key, &kvs) != BS_ETCD_OK)
                bs_etcd_kvs_destroy (&kvs);
            s_send_answer (pipe, tag? tag: "0", campaign? CTLPLANE_CAMPAIGN: CTLPLANE_PUT_LEASED, rc, now_revision,
                           error, kvs, prefix_size);
            bs_etcd_kvs_destroy (&kvs);
            zstr_free (&value);
            zstr_free (&lease_text);
        }
        zstr_free (&command);
        zstr_free (&tag);
        zstr_free (&relative);
        zmsg_destroy (&request);
    }
    bs_etcd_destroy (&etcd);
}

static bool
s_cluster_valid (const char *cluster)
{
    size_t length = cluster? strlen (cluster): 0;
    if (length == 0 || length > 64)
        return false;
    for (const char *c = cluster; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '-' && *c != '_')
            return false;
    return true;
}

ctlplane_t *
ctlplane_new (const char *endpoints, const char *cluster, int timeout_ms)
{
    if (!s_cluster_valid (cluster))
        return NULL;
    //  Checked here, in the caller's thread, so that a bad list is refused
    //  at once rather than by a thread that could only log it
    bs_etcd_t *probe = bs_etcd_new (endpoints, timeout_ms);
    if (!probe)
        return NULL;
    bs_etcd_destroy (&probe);
    ctlplane_t *self = (ctlplane_t *) zmalloc (sizeof (ctlplane_t));
    snprintf (self->prefix, sizeof self->prefix, "/bookstore/%s/", cluster);
    actor_args_t *args = (actor_args_t *) zmalloc (sizeof (actor_args_t));
    args->endpoints = strdup (endpoints);
    snprintf (args->prefix, sizeof args->prefix, "%s", self->prefix);
    args->timeout_ms = timeout_ms;
    self->actor = zactor_new (s_actor, args);
    //  zactor_new returns once the actor signalled: it has read its args
    //  and made its client, so they can go
    free (args->endpoints);
    free (args);
    return self;
}

void
ctlplane_destroy (ctlplane_t **self_p)
{
    assert (self_p);
    ctlplane_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    free (self);
    *self_p = NULL;
}

void *
ctlplane_socket (ctlplane_t *self)
{
    return zactor_sock (self->actor);
}

const char *
ctlplane_prefix (ctlplane_t *self)
{
    return self->prefix;
}

void
ctlplane_get_prefix (ctlplane_t *self, const char *relative, uint32_t tag)
{
    char tag_text [16];
    snprintf (tag_text, sizeof tag_text, "%" PRIu32, tag);
    zstr_sendx (self->actor, "GET", tag_text, relative, NULL);
}

void
ctlplane_put_if (ctlplane_t *self, const char *relative, const char *value,
                 int64_t mod_revision, uint32_t tag)
{
    char tag_text [16], revision_text [32];
    snprintf (tag_text, sizeof tag_text, "%" PRIu32, tag);
    snprintf (revision_text, sizeof revision_text, "%" PRId64, mod_revision);
    zstr_sendx (self->actor, "PUT", tag_text, relative, value, revision_text, NULL);
}

void
ctlplane_grant (ctlplane_t *self, int ttl_seconds, uint32_t tag)
{
    char tag_text [16], ttl_text [16];
    snprintf (tag_text, sizeof tag_text, "%" PRIu32, tag);
    snprintf (ttl_text, sizeof ttl_text, "%d", ttl_seconds);
    zstr_sendx (self->actor, "GRANT", tag_text, ttl_text, NULL);
}

static void
s_send_lease_command (ctlplane_t *self, const char *command, int64_t lease, uint32_t tag)
{
    char tag_text [16], lease_text [32];
    snprintf (tag_text, sizeof tag_text, "%" PRIu32, tag);
    snprintf (lease_text, sizeof lease_text, "%" PRId64, lease);
    zstr_sendx (self->actor, command, tag_text, lease_text, NULL);
}

void
ctlplane_keepalive (ctlplane_t *self, int64_t lease, uint32_t tag)
{
    s_send_lease_command (self, "KEEPALIVE", lease, tag);
}

void
ctlplane_revoke (ctlplane_t *self, int64_t lease, uint32_t tag)
{
    s_send_lease_command (self, "REVOKE", lease, tag);
}

static void
s_send_leased_put (ctlplane_t *self, const char *command, const char *relative, const char *value,
                   int64_t lease, uint32_t tag)
{
    char tag_text [16], lease_text [32];
    snprintf (tag_text, sizeof tag_text, "%" PRIu32, tag);
    snprintf (lease_text, sizeof lease_text, "%" PRId64, lease);
    zstr_sendx (self->actor, command, tag_text, relative, value, lease_text, NULL);
}

void
ctlplane_campaign (ctlplane_t *self, const char *relative, const char *value, int64_t lease, uint32_t tag)
{
    s_send_leased_put (self, "CAMPAIGN", relative, value, lease, tag);
}

void
ctlplane_put_leased (ctlplane_t *self, const char *relative, const char *value, int64_t lease, uint32_t tag)
{
    s_send_leased_put (self, "PUTLEASED", relative, value, lease, tag);
}

ctlplane_result_t *
ctlplane_recv (ctlplane_t *self)
{
    zmsg_t *answer = zmsg_recv (self->actor);
    if (!answer)
        return NULL;
    if (zmsg_size (answer) < 5 || (zmsg_size (answer) - 5) % 3) {
        zsys_error ("broker: a control-plane answer of %zu frames", zmsg_size (answer));
        zmsg_destroy (&answer);
        return NULL;
    }
    ctlplane_result_t *result = (ctlplane_result_t *) zmalloc (sizeof (ctlplane_result_t));
    char *text;
    text = zmsg_popstr (answer);
    result->tag = (uint32_t) strtoul (text, NULL, 10);
    zstr_free (&text);
    text = zmsg_popstr (answer);
    result->op = (ctlplane_op_t) atoi (text);
    zstr_free (&text);
    text = zmsg_popstr (answer);
    result->rc = (bs_etcd_rc_t) atoi (text);
    zstr_free (&text);
    text = zmsg_popstr (answer);
    result->revision = strtoll (text, NULL, 10);
    zstr_free (&text);
    if (result->op == CTLPLANE_GRANT)
        result->lease = result->revision;
    if (result->op == CTLPLANE_KEEPALIVE)
        result->ttl = result->revision;
    if (result->op == CTLPLANE_GRANT || result->op == CTLPLANE_KEEPALIVE || result->op == CTLPLANE_REVOKE)
        result->revision = 0;
    text = zmsg_popstr (answer);
    snprintf (result->error, sizeof result->error, "%s", text);
    zstr_free (&text);
    result->count = zmsg_size (answer) / 3;
    if (result->count) {
        result->keys = (char **) zmalloc (sizeof (char *) * result->count);
        result->values = (char **) zmalloc (sizeof (char *) * result->count);
        result->mod_revisions = (int64_t *) zmalloc (sizeof (int64_t) * result->count);
    }
    for (size_t index = 0; index < result->count; index++) {
        result->keys [index] = zmsg_popstr (answer);
        result->values [index] = zmsg_popstr (answer);
        text = zmsg_popstr (answer);
        result->mod_revisions [index] = strtoll (text, NULL, 10);
        zstr_free (&text);
    }
    zmsg_destroy (&answer);
    return result;
}

void
ctlplane_result_destroy (ctlplane_result_t **result_p)
{
    assert (result_p);
    ctlplane_result_t *result = *result_p;
    if (!result)
        return;
    for (size_t index = 0; index < result->count; index++) {
        zstr_free (&result->keys [index]);
        zstr_free (&result->values [index]);
    }
    free (result->keys);
    free (result->values);
    free (result->mod_revisions);
    free (result);
    *result_p = NULL;
}
