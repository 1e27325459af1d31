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
