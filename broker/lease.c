/*  lease - whether this broker may serve: the active broker's lease in etcd  */
#include "lease.h"
#include "bs_sizes.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _lease_t {
    char id [BS_ID_MAX + 1];
    char endpoint [256];
    int ttl_seconds, margin_ms, renew_ms;
    lease_ask_t out;            //  the question etcd has not answered
    int64_t sent_at;            //  when it was sent
    int64_t lease;              //  0: none
    int64_t valid_until;        //  our lease is valid before this
    int64_t renewed_at;         //  when the last keep-alive (or grant) was sent
    int64_t next_campaign;
    bool holding;               //  the key was created with our lease
    char value [512];
    char holder_endpoint [256];
    char holder_id [BS_ID_MAX + 1];
    int64_t holder_seen;        //  when a campaign last found it held
    int64_t holder_lease;       //  ...with this lease (0: none known)
    int64_t holder_since;       //  held with that lease since
};

#define RETRY_MS 100            //  after a failure, or between campaigns

lease_t *
lease_new (const char *id, const char *endpoint, int ttl_seconds, int margin_ms, int renew_ms)
{
    lease_t *self = (lease_t *) calloc (1, sizeof (lease_t));
    if (!self)
        abort ();
    snprintf (self->id, sizeof self->id, "%s", id? id: "");
    snprintf (self->endpoint, sizeof self->endpoint, "%s", endpoint? endpoint: "");
    self->ttl_seconds = ttl_seconds;
    self->margin_ms = margin_ms;
    self->renew_ms = renew_ms;
    self->out = LEASE_IDLE;
    return self;
}

void
lease_destroy (lease_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free (*self_p);
    *self_p = NULL;
}

static void
s_forget_lease (lease_t *self)
{
    self->lease = 0;
    self->holding = false;
    self->valid_until = 0;
}

lease_ask_t
lease_next (lease_t *self, bool want, int64_t now)
{
    if (self->out != LEASE_IDLE)
        return LEASE_IDLE;
    lease_ask_t ask = LEASE_IDLE;
    if (!want) {
        ask = self->lease? LEASE_ASK_REVOKE: LEASE_IDLE;
    }
    else
    if (!self->lease)
        ask = now >= self->next_campaign? LEASE_ASK_GRANT: LEASE_IDLE;
    else
    if (now - self->renewed_at >= self->renew_ms)
        ask = LEASE_ASK_KEEPALIVE;
    else
    if (!self->holding && now >= self->next_campaign)
        ask = LEASE_ASK_CAMPAIGN;
    if (ask == LEASE_ASK_CAMPAIGN) {
        //  jansson escapes what an endpoint or id may hold
        json_t *value = json_pack ("{s:s, s:s, s:I}", "endpoint", self->endpoint, "id", self->id,
                                   "lease", (json_int_t) self->lease);
        char *text = value? json_dumps (value, JSON_COMPACT | JSON_SORT_KEYS): NULL;
        snprintf (self->value, sizeof self->value, "%s", text? text: "{}");
        free (text);
        json_decref (value);
    }
    if (ask != LEASE_IDLE) {
        self->out = ask;
        self->sent_at = now;
    }
    return ask;
}

int lease_ttl_seconds (lease_t *self) { return self->ttl_seconds; }
int64_t lease_id (lease_t *self) { return self->lease; }
const char *lease_value (lease_t *self) { return self->value; }

//  The key's value names who holds it and with which lease
static void
s_read_holder (lease_t *self, const char *holder, int64_t now)
{
    self->holder_seen = now;
    self->holder_endpoint [0] = 0;
    self->holder_id [0] = 0;
    json_t *value = json_loads (holder? holder: "", 0, NULL);
    const char *endpoint = json_string_value (json_object_get (value, "endpoint"));
    const char *id = json_string_value (json_object_get (value, "id"));
    json_t *lease = json_object_get (value, "lease");
    if (endpoint)
        snprintf (self->holder_endpoint, sizeof self->holder_endpoint, "%s", endpoint);
    if (id)
        snprintf (self->holder_id, sizeof self->holder_id, "%s", id);
    int64_t holder_lease = json_is_integer (lease)? json_integer_value (lease): 0;
    if (holder_lease != self->holder_lease || !holder_lease) {
        self->holder_lease = holder_lease;
        self->holder_since = now;
    }
    //  Created with our lease by a campaign whose answer was lost: ours
    if (json_is_integer (lease) && self->lease && json_integer_value (lease) == self->lease) {
        self->holding = true;
        self->holder_endpoint [0] = 0;
        self->holder_id [0] = 0;
    }
    json_decref (value);
}

void
lease_answer (lease_t *self, lease_answer_t answer, int64_t number, const char *holder, int64_t now)
{
    lease_ask_t asked = self->out;
    int64_t sent_at = self->sent_at;
    self->out = LEASE_IDLE;
    int64_t ttl_ms = (int64_t) self->ttl_seconds * 1000;
    switch (asked) {
        case LEASE_ASK_GRANT:
            if (answer == LEASE_ANSWER_OK && number > 0) {
                s_forget_lease (self);
                self->lease = number;
                self->renewed_at = sent_at;
                self->valid_until = sent_at + ttl_ms - self->margin_ms;
                self->next_campaign = now;
            }
            else
                self->next_campaign = now + RETRY_MS;
            break;
        case LEASE_ASK_KEEPALIVE:
            if (answer == LEASE_ANSWER_OK && number > 0) {
                //  etcd may keep a lease longer than asked, never shorter
                int64_t left = number * 1000 < ttl_ms? number * 1000: ttl_ms;
                self->renewed_at = sent_at;
                self->valid_until = sent_at + left - self->margin_ms;
            }
            else
            if (answer == LEASE_ANSWER_OK || answer == LEASE_ANSWER_REFUSED)
                s_forget_lease (self);          //  it has expired: start again
            else
                //  No answer: the lease runs out on its own unless a later
                //  keep-alive gets through
                self->renewed_at = now - self->renew_ms + RETRY_MS;
            break;
        case LEASE_ASK_CAMPAIGN:
            if (answer == LEASE_ANSWER_OK) {
                self->holding = true;
                self->holder_endpoint [0] = 0;
                self->holder_id [0] = 0;
                self->holder_lease = 0;
            }
            else
            if (answer == LEASE_ANSWER_TAKEN) {
                s_read_holder (self, holder, now);
                if (self->holding || !holder || !*holder)
                    self->holder_lease = 0;
            }
            else
            if (answer == LEASE_ANSWER_REFUSED)
                s_forget_lease (self);          //  our lease expired meanwhile
            self->next_campaign = now + RETRY_MS;
            break;
        case LEASE_ASK_REVOKE:
            //  Whatever the answer, the lease is given up: unrevoked, it
            //  runs out on its own
            s_forget_lease (self);
            break;
        case LEASE_IDLE:
            break;
    }
}

bool
lease_serving (lease_t *self, int64_t now)
{
    return self->holding && self->lease && now < self->valid_until;
}

const char *
lease_holder_endpoint (lease_t *self, int64_t now)
{
    //  A holder seen longer ago than a lease may be gone
    if (now - self->holder_seen > (int64_t) self->ttl_seconds * 1000 + 1000)
        return "";
    return self->holder_endpoint;
}

int64_t
lease_holder_since (lease_t *self, int64_t now)
{
    return *lease_holder_endpoint (self, now)? self->holder_since: 0;
}

const char *
lease_holder_id (lease_t *self, int64_t now)
{
    if (now - self->holder_seen > (int64_t) self->ttl_seconds * 1000 + 1000)
        return "";
    return self->holder_id;
}

int64_t
lease_left_ms (lease_t *self, int64_t now)
{
    return lease_serving (self, now)? self->valid_until - now: 0;
}
