/*  election - who leads a partition.  See election.h.  */
#include "election.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

bool
election_id_valid (const char *id)
{
    if (!id)
        return false;
    size_t length = strlen (id);
    if (length == 0 || length > ELECTION_ID_MAX)
        return false;
    for (const char *c = id; *c; c++)
        if (*c <= ' ' || *c > '~' || *c == ',' || *c == '"' || *c == '\\')
            return false;
    return true;
}

bool
election_insync_has (const election_meta_t *meta, const char *id)
{
    for (size_t index = 0; index < meta->insync_count; index++)
        if (strcmp (meta->insync [index], id) == 0)
            return true;
    return false;
}

//  Is a ahead of b: a later epoch, then a longer log, then the smaller id
static bool
s_ahead (const election_candidate_t *a, const election_candidate_t *b)
{
    if (a->last_epoch != b->last_epoch)
        return a->last_epoch > b->last_epoch;
    if (a->last_seq != b->last_seq)
        return a->last_seq > b->last_seq;
    return strcmp (a->id, b->id) < 0;
}

//  The stored primary itself, on the store it was elected with
static bool
s_is_primary (const election_meta_t *meta, const election_candidate_t *candidate)
{
    return strcmp (candidate->id, meta->primary) == 0
        && (meta->primary_store == 0 || candidate->store == meta->primary_store);
}

//  The stored primary's name on another store: it lost what it led with
static bool
s_lost_store (const election_meta_t *meta, const election_candidate_t *candidate)
{
    return meta->epoch > 0 && strcmp (candidate->id, meta->primary) == 0 && !s_is_primary (meta, candidate);
}

election_verdict_t
election_decide (const election_meta_t *meta,
                 const election_candidate_t *live, size_t count,
                 bool unclean, election_meta_t *next)
{
    *next = *meta;
    for (size_t index = 0; index < count; index++)
        if (meta->epoch > 0 && s_is_primary (meta, &live [index]) && !live [index].resigned)
            return ELECTION_KEEP;

    //  A partition never elected has no in-sync set yet: every live
    //  replica is a member (they all start from nothing)
    const election_candidate_t *best = NULL;
    for (size_t index = 0; index < count; index++) {
        const election_candidate_t *candidate = &live [index];
        if (!election_id_valid (candidate->id) || (s_lost_store (meta, candidate) && !unclean))
            continue;
        bool member = meta->epoch == 0 || election_insync_has (meta, candidate->id);
        if ((member || unclean) && (!best || s_ahead (candidate, best)))
            best = candidate;
    }
    if (!best)
        return ELECTION_WAIT;

    next->epoch = meta->epoch + 1;
    snprintf (next->primary, sizeof next->primary, "%s", best->id);
    next->start_seq = best->last_seq + 1;
    next->primary_store = best->store;
    next->basis = 0;                    //  reports of the new epoch only
    //  The new in-sync set: the new primary first, then the old set, the
    //  old primary included.  Every member holds every acknowledged entry,
    //  and the old primary stays eligible until the new one has taken the
    //  role (the broker then writes the set the new primary reports): if
    //  the new one turns out unable to lead (its copy went partial since
    //  its last report), the old primary, back, is still electable,
    //  rather than the partition waiting for ever on a member that holds
    //  nothing whole
    next->insync_count = 0;
    snprintf (next->insync [next->insync_count++], ELECTION_ID_MAX + 1, "%s", best->id);
    //  An unclean election starts a history of its own: nobody else holds
    //  what the new primary will acknowledge
    bool member = meta->epoch == 0 || election_insync_has (meta, best->id);
    for (size_t index = 0; member && index < meta->insync_count; index++) {
        const char *member = meta->insync [index];
        if (strcmp (member, best->id) && next->insync_count < ELECTION_REPLICAS_MAX)
            snprintf (next->insync [next->insync_count++], ELECTION_ID_MAX + 1, "%s", member);
    }
    return ELECTION_ELECT;
}

bool
election_shrink (const election_meta_t *meta, const char *follower, election_meta_t *next)
{
    *next = *meta;
    if (strcmp (follower, meta->primary) == 0 || !election_insync_has (meta, follower))
        return false;
    next->insync_count = 0;
    for (size_t index = 0; index < meta->insync_count; index++)
        if (strcmp (meta->insync [index], follower))
            memcpy (next->insync [next->insync_count++], meta->insync [index], ELECTION_ID_MAX + 1);
    return true;
}

bool
election_expand (const election_meta_t *meta, const char *follower, election_meta_t *next)
{
    *next = *meta;
    if (!election_id_valid (follower) || election_insync_has (meta, follower)
    ||  meta->insync_count == ELECTION_REPLICAS_MAX || meta->epoch == 0)
        return false;
    snprintf (next->insync [next->insync_count++], ELECTION_ID_MAX + 1, "%s", follower);
    return true;
}

char *
election_meta_encode (const election_meta_t *meta)
{
    json_t *insync = json_array ();
    for (size_t index = 0; index < meta->insync_count; index++)
        json_array_append_new (insync, json_string (meta->insync [index]));
    json_t *object = json_pack ("{s:I, s:s, s:o, s:I}",
                                "epoch", (json_int_t) meta->epoch,
                                "primary", meta->primary,
                                "insync", insync,
                                "start_seq", (json_int_t) meta->start_seq);
    if (meta->primary_store)
        json_object_set_new (object, "primary_store", json_integer ((json_int_t) meta->primary_store));
    if (meta->basis)
        json_object_set_new (object, "basis", json_integer ((json_int_t) meta->basis));
    char *text = json_dumps (object, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (object);
    return text;
}

#define REFUSE(...) do { snprintf (reason, reason_size, __VA_ARGS__); json_decref (object); return false; } while (0)

//  Epochs and seqs fit in a JSON integer that every reader keeps exact
#define COUNTER_MAX INT64_C (9007199254740991)

bool
election_meta_decode (const char *text, election_meta_t *meta, char *reason, size_t reason_size)
{
    memset (meta, 0, sizeof *meta);
    json_error_t error;
    json_t *object = json_loads (text? text: "", JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object (object))
        REFUSE ("not a JSON object: %s", error.text);
    json_t *epoch = json_object_get (object, "epoch");
    json_t *primary = json_object_get (object, "primary");
    json_t *insync = json_object_get (object, "insync");
    json_t *start_seq = json_object_get (object, "start_seq");
    json_t *primary_store = json_object_get (object, "primary_store");
    json_t *basis = json_object_get (object, "basis");
    if (json_object_size (object) != 4u + (primary_store? 1: 0) + (basis? 1: 0)
    ||  !epoch || !primary || !insync || !start_seq)
        REFUSE ("a partition's meta has exactly epoch, primary, insync, start_seq and "
                "perhaps primary_store and basis");
    if (basis && (!json_is_integer (basis) || json_integer_value (basis) < 1
              ||  json_integer_value (basis) > COUNTER_MAX))
        REFUSE ("basis must be a whole number from 1 to 2^53-1");
    meta->basis = basis? (uint64_t) json_integer_value (basis): 0;
    if (primary_store && (!json_is_integer (primary_store) || json_integer_value (primary_store) < 1
                      ||  json_integer_value (primary_store) > COUNTER_MAX))
        REFUSE ("primary_store must be a whole number from 1 to 2^53-1");
    meta->primary_store = primary_store? (uint64_t) json_integer_value (primary_store): 0;
    if (!json_is_integer (epoch) || json_integer_value (epoch) < 0
    ||  json_integer_value (epoch) > COUNTER_MAX)
        REFUSE ("epoch must be a whole number from 0 to 2^53-1");
    if (!json_is_integer (start_seq) || json_integer_value (start_seq) < 0
    ||  json_integer_value (start_seq) > COUNTER_MAX)
        REFUSE ("start_seq must be a whole number from 0 to 2^53-1");
    meta->epoch = (uint64_t) json_integer_value (epoch);
    meta->start_seq = (uint64_t) json_integer_value (start_seq);
    if (!json_is_string (primary))
        REFUSE ("primary must be a node id");
    const char *primary_id = json_string_value (primary);
    if (meta->epoch == 0? *primary_id != 0: !election_id_valid (primary_id))
        REFUSE ("primary '%.64s' is not a valid node id for epoch %llu",
                primary_id, (unsigned long long) meta->epoch);
    snprintf (meta->primary, sizeof meta->primary, "%s", primary_id);
    if (!json_is_array (insync) || json_array_size (insync) > ELECTION_REPLICAS_MAX)
        REFUSE ("insync must be a list of at most %d node ids", ELECTION_REPLICAS_MAX);
    for (size_t index = 0; index < json_array_size (insync); index++) {
        const char *id = json_string_value (json_array_get (insync, index));
        if (!election_id_valid (id))
            REFUSE ("insync holds something that is not a node id");
        if (election_insync_has (meta, id))
            REFUSE ("insync names %s twice", id);
        snprintf (meta->insync [meta->insync_count++], ELECTION_ID_MAX + 1, "%s", id);
    }
    if (meta->epoch > 0 && !election_insync_has (meta, meta->primary))
        REFUSE ("the primary %s is not in its own in-sync set", meta->primary);
    if (meta->epoch == 0 && meta->insync_count > 0)
        REFUSE ("a partition never elected has no in-sync set");
    json_decref (object);
    if (reason_size)
        reason [0] = 0;
    return true;
}

char *
election_unclean_encode (uint64_t epoch)
{
    json_t *object = json_pack ("{s:I}", "epoch", (json_int_t) epoch);
    char *text = json_dumps (object, JSON_COMPACT);
    json_decref (object);
    return text;
}

bool
election_unclean_decode (const char *text, uint64_t *epoch, char *reason, size_t reason_size)
{
    *epoch = 0;
    json_error_t error;
    json_t *object = json_loads (text? text: "", JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object (object))
        REFUSE ("not a JSON object: %s", error.text);
    json_t *value = json_object_get (object, "epoch");
    if (json_object_size (object) != 1 || !json_is_integer (value) || json_integer_value (value) < 1
    ||  json_integer_value (value) > COUNTER_MAX)
        REFUSE ("an unclean election request is {\"epoch\": N}, N the epoch whose in-sync set is gone");
    *epoch = (uint64_t) json_integer_value (value);
    json_decref (object);
    return true;
}
