/*  bs_etcd - a small client of etcd's v3 API, over etcd's JSON gateway.
 *  See bs_etcd.h.
 */
#include "bs_etcd.h"

#include <czmq.h>
#include <inttypes.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>

#define ENDPOINTS_MAX 8
//  An answer larger than this is refused rather than buffered: the
//  control plane's keys are small, and a runaway answer must not take the
//  broker's memory
#define ANSWER_MAX (16 * 1024 * 1024)

struct _bs_etcd_t {
    char *endpoint [ENDPOINTS_MAX];
    size_t endpoints;
    size_t current;             //  the endpoint that answered last
    int timeout_ms;
    CURL *curl;
    struct curl_slist *headers;
    zarmour_t *base64;
    char *answer;               //  the last answer's body
    size_t answer_size;
    bool answer_too_big;
    int64_t revision;
    char error [512];
};

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static void s_curl_init (void) { curl_global_init (CURL_GLOBAL_DEFAULT); }

static void
s_set_error (bs_etcd_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof self->error, format, args);
    va_end (args);
}

bs_etcd_t *
bs_etcd_new (const char *endpoints, int timeout_ms)
{
    if (!endpoints || !*endpoints || timeout_ms <= 0)
        return NULL;
    pthread_once (&s_curl_once, s_curl_init);
    bs_etcd_t *self = (bs_etcd_t *) zmalloc (sizeof (bs_etcd_t));
    self->timeout_ms = timeout_ms;
    char *list = strdup (endpoints);
    assert (list);
    bool valid = true;
    //  strtok would skip empty elements; an empty one is an error here
    for (char *start = list; valid; ) {
        char *comma = strchr (start, ',');
        if (comma)
            *comma = 0;
        size_t length = strlen (start);
        if (length == 0 || self->endpoints == ENDPOINTS_MAX
        ||  (strncmp (start, "http://", 7) && strncmp (start, "https://", 8)))
            valid = false;
        else {
            //  "http://host:port/" and "http://host:port" name the same
            while (length > 0 && start [length - 1] == '/')
                start [--length] = 0;
            self->endpoint [self->endpoints++] = strdup (start);
        }
        if (!comma)
            break;
        start = comma + 1;
    }
    free (list);
    self->curl = curl_easy_init ();
    self->base64 = zarmour_new ();
    if (!valid || !self->curl || !self->base64) {
        bs_etcd_destroy (&self);
        return NULL;
    }
    zarmour_set_mode (self->base64, ZARMOUR_MODE_BASE64_STD);
    zarmour_set_line_breaks (self->base64, false);
    self->headers = curl_slist_append (NULL, "Content-Type: application/json");
    return self;
}

void
bs_etcd_destroy (bs_etcd_t **self_p)
{
    assert (self_p);
    bs_etcd_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->endpoints; index++)
        free (self->endpoint [index]);
    if (self->curl)
        curl_easy_cleanup (self->curl);
    curl_slist_free_all (self->headers);
    zarmour_destroy (&self->base64);
    free (self->answer);
    free (self);
    *self_p = NULL;
}

const char *
bs_etcd_error (bs_etcd_t *self)
{
    return self->error;
}

int64_t
bs_etcd_revision (bs_etcd_t *self)
{
    return self->revision;
}

// ---------------------------------------------------------------------------
//  One exchange

static size_t
s_collect (char *data, size_t size, size_t count, void *arg)
{
    bs_etcd_t *self = (bs_etcd_t *) arg;
    size_t bytes = size * count;
    if (self->answer_size + bytes > ANSWER_MAX) {
        self->answer_too_big = true;
        return 0;               //  makes curl stop with an error
    }
    char *grown = (char *) realloc (self->answer, self->answer_size + bytes + 1);
    assert (grown);
    self->answer = grown;
    memcpy (self->answer + self->answer_size, data, bytes);
    self->answer_size += bytes;
    self->answer [self->answer_size] = 0;
    return bytes;
}

//  Did the request certainly not reach etcd?  Only then may a write be
//  sent to another endpoint.
static bool
s_not_sent (CURLcode code)
{
    return code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST
        || code == CURLE_COULDNT_RESOLVE_PROXY;
}

static int64_t
s_int (json_t *value)
{
    if (json_is_string (value))
        return strtoll (json_string_value (value), NULL, 10);
    if (json_is_integer (value))
        return json_integer_value (value);
    return 0;
}

//  etcd's JSON gateway takes 64-bit integers as decimal strings
static json_t *
s_int_text (int64_t value)
{
    char text [32];
    snprintf (text, sizeof text, "%" PRId64, value);
    return json_string (text);
}

//  POSTs body to path and parses the answer into *answer_p.  A read is
//  tried at every endpoint; a write only moves on while nothing was sent.
static bs_etcd_rc_t
s_call (bs_etcd_t *self, const char *path, json_t *body, bool is_write, json_t **answer_p)
{
    *answer_p = NULL;
    char *text = json_dumps (body, JSON_COMPACT);
    assert (text);
    bs_etcd_rc_t rc = BS_ETCD_UNREACHABLE;
    for (size_t tried = 0; tried < self->endpoints; tried++) {
        size_t index = (self->current + tried) % self->endpoints;
        char url [512];
        snprintf (url, sizeof url, "%s%s", self->endpoint [index], path);
        free (self->answer);
        self->answer = NULL;
        self->answer_size = 0;
        self->answer_too_big = false;
        curl_easy_setopt (self->curl, CURLOPT_URL, url);
        curl_easy_setopt (self->curl, CURLOPT_HTTPHEADER, self->headers);
        curl_easy_setopt (self->curl, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt (self->curl, CURLOPT_TIMEOUT_MS, (long) self->timeout_ms);
        curl_easy_setopt (self->curl, CURLOPT_CONNECTTIMEOUT_MS, (long) self->timeout_ms);
        curl_easy_setopt (self->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt (self->curl, CURLOPT_WRITEFUNCTION, s_collect);
        curl_easy_setopt (self->curl, CURLOPT_WRITEDATA, self);
        CURLcode code = curl_easy_perform (self->curl);
        if (code != CURLE_OK) {
            s_set_error (self, "etcd at %s: %s", self->endpoint [index],
                         self->answer_too_big? "answer too large": curl_easy_strerror (code));
            if (is_write && !s_not_sent (code)) {
                rc = BS_ETCD_UNKNOWN;
                break;
            }
            continue;
        }
        long status = 0;
        curl_easy_getinfo (self->curl, CURLINFO_RESPONSE_CODE, &status);
        json_error_t parse_error;
        json_t *answer = self->answer? json_loads (self->answer, 0, &parse_error): NULL;
        if (!json_is_object (answer)) {
            json_decref (answer);
            s_set_error (self, "etcd at %s answered HTTP %ld with no JSON object", self->endpoint [index], status);
            rc = is_write? BS_ETCD_UNKNOWN: BS_ETCD_ERROR;
            if (is_write)
                break;
            continue;
        }
        self->current = index;
        json_t *error = json_object_get (answer, "error");
        if (status != 200 || error) {
            int64_t grpc = s_int (json_object_get (answer, "code"));
            const char *message = json_string_value (json_object_get (answer, "message"));
            s_set_error (self, "etcd at %s refused %s: %s", self->endpoint [index], path,
                         message? message: json_string_value (error)? json_string_value (error): "no reason given");
            json_decref (answer);
            //  gRPC's DEADLINE_EXCEEDED (4) and UNAVAILABLE (14): a proposal
            //  may still commit, as etcd's own client warns
            if (is_write && (grpc == 4 || grpc == 14))
                rc = BS_ETCD_UNKNOWN;
            else
            if (!is_write && grpc == 14)
                continue;       //  that member has no leader: ask another
            else
                rc = BS_ETCD_ERROR;
            break;
        }
        json_t *header = json_object_get (answer, "header");
        if (!header) {
            json_t *result = json_object_get (answer, "result");
            header = json_object_get (result, "header");
        }
        int64_t revision = s_int (json_object_get (header, "revision"));
        if (revision > self->revision)
            self->revision = revision;
        self->error [0] = 0;
        *answer_p = answer;
        rc = BS_ETCD_OK;
        break;
    }
    free (text);
    return rc;
}

// ---------------------------------------------------------------------------
//  Keys and values

static json_t *
s_base64 (bs_etcd_t *self, const void *data, size_t size)
{
    char *text = zarmour_encode (self->base64, (const byte *) data, size);
    assert (text);
    json_t *string = json_string (text);
    zstr_free (&text);
    return string;
}

//  Decodes a base64 string into a NUL-terminated copy; size in *size_p
static char *
s_unbase64 (bs_etcd_t *self, json_t *value, size_t *size_p)
{
    const char *text = json_string_value (value);
    *size_p = 0;
    if (!text || !*text)
        return strdup ("");
    zchunk_t *chunk = zarmour_decode (self->base64, text);
    if (!chunk)
        return NULL;
    //  czmq appends a NUL to what it decodes, inside the chunk's size: the
    //  true size follows from the text (4 characters per 3 bytes, less the
    //  padding)
    size_t length = strlen (text);
    size_t padding = (length > 0 && text [length - 1] == '=') + (length > 1 && text [length - 2] == '=');
    size_t size = length / 4 * 3 - padding;
    if (length % 4 || size > zchunk_size (chunk)) {
        zchunk_destroy (&chunk);
        return NULL;
    }
    char *copy = (char *) malloc (size + 1);
    assert (copy);
    memcpy (copy, zchunk_data (chunk), size);
    copy [size] = 0;
    zchunk_destroy (&chunk);
    *size_p = size;
    return copy;
}

//  The key one past every key that starts with prefix (etcd's range_end)
static json_t *
s_prefix_end (bs_etcd_t *self, const char *prefix)
{
    size_t size = strlen (prefix);
    unsigned char *end = (unsigned char *) malloc (size + 1);
    assert (end);
    memcpy (end, prefix, size);
    while (size > 0 && end [size - 1] == 0xFF)
        size--;
    json_t *string;
    if (size == 0)
        string = s_base64 (self, "\0", 1);      //  every key
    else {
        end [size - 1]++;
        string = s_base64 (self, end, size);
    }
    free (end);
    return string;
}

static bs_etcd_rc_t
s_range (bs_etcd_t *self, const char *key, bool prefix, bs_etcd_kvs_t **kvs_p)
{
    *kvs_p = NULL;
    json_t *body = json_object ();
    json_object_set_new (body, "key", s_base64 (self, key, strlen (key)));
    if (prefix)
        json_object_set_new (body, "range_end", s_prefix_end (self, key));
    json_t *answer;
    bs_etcd_rc_t rc = s_call (self, "/v3/kv/range", body, false, &answer);
    json_decref (body);
    if (rc != BS_ETCD_OK)
        return rc;
    json_t *kvs = json_object_get (answer, "kvs");
    bs_etcd_kvs_t *list = (bs_etcd_kvs_t *) zmalloc (sizeof (bs_etcd_kvs_t));
    list->revision = s_int (json_object_get (json_object_get (answer, "header"), "revision"));
    size_t count = json_array_size (kvs);
    list->kv = (bs_etcd_kv_t *) zmalloc (sizeof (bs_etcd_kv_t) * (count? count: 1));
    for (size_t index = 0; index < count; index++) {
        json_t *item = json_array_get (kvs, index);
        bs_etcd_kv_t *kv = &list->kv [list->count];
        size_t key_size;
        kv->key = s_unbase64 (self, json_object_get (item, "key"), &key_size);
        kv->value = s_unbase64 (self, json_object_get (item, "value"), &kv->value_size);
        if (!kv->key || !kv->value) {
            free (kv->key);
            free (kv->value);
            memset (kv, 0, sizeof *kv);
            s_set_error (self, "etcd answered a key or value that is not base64");
            bs_etcd_kvs_destroy (&list);
            json_decref (answer);
            return BS_ETCD_ERROR;
        }
        kv->create_revision = s_int (json_object_get (item, "create_revision"));
        kv->mod_revision = s_int (json_object_get (item, "mod_revision"));
        kv->version = s_int (json_object_get (item, "version"));
        kv->lease = s_int (json_object_get (item, "lease"));
        list->count++;
    }
    json_decref (answer);
    *kvs_p = list;
    return BS_ETCD_OK;
}

bs_etcd_rc_t
bs_etcd_get (bs_etcd_t *self, const char *key, bs_etcd_kvs_t **kvs_p)
{
    return s_range (self, key, false, kvs_p);
}

bs_etcd_rc_t
bs_etcd_get_prefix (bs_etcd_t *self, const char *prefix, bs_etcd_kvs_t **kvs_p)
{
    return s_range (self, prefix, true, kvs_p);
}

void
bs_etcd_kvs_destroy (bs_etcd_kvs_t **kvs_p)
{
    assert (kvs_p);
    bs_etcd_kvs_t *kvs = *kvs_p;
    if (!kvs)
        return;
    for (size_t index = 0; index < kvs->count; index++) {
        free (kvs->kv [index].key);
        free (kvs->kv [index].value);
    }
    free (kvs->kv);
    free (kvs);
    *kvs_p = NULL;
}

static json_t *
s_put_request (bs_etcd_t *self, const char *key, const char *value, int64_t lease)
{
    json_t *put = json_object ();
    json_object_set_new (put, "key", s_base64 (self, key, strlen (key)));
    json_object_set_new (put, "value", s_base64 (self, value, strlen (value)));
    if (lease)
        json_object_set_new (put, "lease", s_int_text (lease));
    return put;
}

bs_etcd_rc_t
bs_etcd_put (bs_etcd_t *self, const char *key, const char *value, int64_t lease)
{
    json_t *body = s_put_request (self, key, value, lease);
    json_t *answer;
    bs_etcd_rc_t rc = s_call (self, "/v3/kv/put", body, true, &answer);
    json_decref (body);
    json_decref (answer);
    return rc;
}

//  A transaction of one compare on key's mod revision (0: the key must not
//  exist) and one request on success
static bs_etcd_rc_t
s_txn (bs_etcd_t *self, const char *key, int64_t mod_revision,
       const char *request_name, json_t *request, int64_t *revision_p)
{
    json_t *compare = json_object ();
    json_object_set_new (compare, "key", s_base64 (self, key, strlen (key)));
    //  A key that does not exist has create revision 0; one that does has
    //  a mod revision of at least 1
    json_object_set_new (compare, "target", json_string (mod_revision? "MOD": "CREATE"));
    json_object_set_new (compare, mod_revision? "mod_revision": "create_revision", s_int_text (mod_revision));
    json_t *body = json_pack ("{s:[o], s:[{s:o}]}", "compare", compare, "success", request_name, request);
    json_t *answer;
    bs_etcd_rc_t rc = s_call (self, "/v3/kv/txn", body, true, &answer);
    json_decref (body);
    if (rc == BS_ETCD_OK) {
        //  The gateway leaves out false booleans
        if (!json_is_true (json_object_get (answer, "succeeded"))) {
            rc = BS_ETCD_COMPARE_FAILED;
            s_set_error (self, "%s changed since revision %" PRId64, key, mod_revision);
        }
        if (revision_p)
            *revision_p = s_int (json_object_get (json_object_get (answer, "header"), "revision"));
    }
    json_decref (answer);
    return rc;
}

bs_etcd_rc_t
bs_etcd_put_if (bs_etcd_t *self, const char *key, const char *value,
                int64_t mod_revision, int64_t lease, int64_t *revision_p)
{
    if (mod_revision < 0)
        return BS_ETCD_ERROR;
    return s_txn (self, key, mod_revision, "request_put",
                  s_put_request (self, key, value, lease), revision_p);
}

bs_etcd_rc_t
bs_etcd_delete_if (bs_etcd_t *self, const char *key, int64_t mod_revision)
{
    if (mod_revision <= 0)
        return BS_ETCD_ERROR;
    json_t *request = json_object ();
    json_object_set_new (request, "key", s_base64 (self, key, strlen (key)));
    return s_txn (self, key, mod_revision, "request_delete_range", request, NULL);
}

// ---------------------------------------------------------------------------
//  Leases

bs_etcd_rc_t
bs_etcd_lease_grant (bs_etcd_t *self, int ttl_seconds, int64_t *lease_p)
{
    *lease_p = 0;
    if (ttl_seconds <= 0)
        return BS_ETCD_ERROR;
    json_t *body = json_pack ("{s:o}", "TTL", s_int_text (ttl_seconds));
    json_t *answer;
    bs_etcd_rc_t rc = s_call (self, "/v3/lease/grant", body, true, &answer);
    json_decref (body);
    if (rc == BS_ETCD_OK) {
        *lease_p = s_int (json_object_get (answer, "ID"));
        if (*lease_p == 0) {
            s_set_error (self, "etcd granted no lease: %s", self->answer? self->answer: "");
            rc = BS_ETCD_ERROR;
        }
    }
    json_decref (answer);
    return rc;
}

bs_etcd_rc_t
bs_etcd_lease_keepalive (bs_etcd_t *self, int64_t lease, int64_t *ttl_p)
{
    *ttl_p = 0;
    json_t *body = json_pack ("{s:o}", "ID", s_int_text (lease));
    json_t *answer;
    //  Renewing twice is harmless, so a keep-alive counts as a read: it may
    //  be sent to the next endpoint when one does not answer
    bs_etcd_rc_t rc = s_call (self, "/v3/lease/keepalive", body, false, &answer);
    json_decref (body);
    if (rc == BS_ETCD_OK)
        *ttl_p = s_int (json_object_get (json_object_get (answer, "result"), "TTL"));
    json_decref (answer);
    return rc;
}

bs_etcd_rc_t
bs_etcd_lease_revoke (bs_etcd_t *self, int64_t lease)
{
    json_t *body = json_pack ("{s:o}", "ID", s_int_text (lease));
    json_t *answer;
    bs_etcd_rc_t rc = s_call (self, "/v3/lease/revoke", body, true, &answer);
    json_decref (body);
    json_decref (answer);
    return rc;
}
