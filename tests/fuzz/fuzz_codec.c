/*  fuzz_codec - the message codec on arbitrary bytes.
 *
 *  The input is one message body, as any socket might deliver it.  The
 *  broker's peeks (bs_peek_op, bs_peek_int, bs_peek_bytes) run on it as
 *  they do on the routing path, then the node's path: bs_msg_decode,
 *  bs_msg_validate_request, bs_msg_to_json.  Invariants:
 *
 *  - peeks stay inside the input and never crash; on a body that decodes
 *    they agree with the decoded message, field by field;
 *  - a decoded message re-encodes to bytes that decode to the same message,
 *    and encoding that again gives the same bytes;
 *  - the JSON is valid JSON (jansson reads it) with one key per field;
 *  - a refusal always names an error and a reason.
 */
#include "bs_msg.h"
#include "fuzzing.h"

#include <jansson.h>
#include <string.h>

//  Peeks every top-level field; checks they stay within the input
static void
s_peek_all (const uint8_t *data, size_t size)
{
    bs_op_t op = bs_peek_op (data, size);
    FUZZ_CHECK (op <= BS_OP_COUNT);
    for (int f = 0; f < BS_FIELD_COUNT; f++) {
        bs_type_t type = bs_field_type ((bs_field_t) f);
        if (type == BS_T_INT || type == BS_T_BOOL) {
            int64_t value;
            bs_peek_int (data, size, (bs_field_t) f, &value);
        }
        else
        if (type == BS_T_STR || type == BS_T_BIN) {
            const uint8_t *bytes = NULL;
            size_t n = 0;
            if (bs_peek_bytes (data, size, (bs_field_t) f, &bytes, &n))
                FUZZ_CHECK (bytes >= data && n <= size && (size_t) (bytes - data) <= size - n);
        }
    }
}

//  On a body that decoded to msg, every peek agrees with the message
static void
s_peeks_agree (const uint8_t *data, size_t size, const bs_msg_t *msg)
{
    FUZZ_CHECK (bs_peek_op (data, size) == (bs_msg_has (msg, BS_FIELD_op)? bs_msg_op (msg): BS_OP_COUNT));
    for (int f = 0; f < BS_FIELD_COUNT; f++) {
        bs_field_t field = (bs_field_t) f;
        bs_type_t type = bs_field_type (field);
        if (type == BS_T_INT || type == BS_T_BOOL) {
            int64_t value = -1;
            bool found = bs_peek_int (data, size, field, &value);
            FUZZ_CHECK (found == bs_msg_has (msg, field));
            FUZZ_CHECK (!found || value == bs_msg_int (msg, field));
        }
        else
        if (type == BS_T_STR || type == BS_T_BIN) {
            const uint8_t *bytes = NULL;
            size_t n = 0;
            bool found = bs_peek_bytes (data, size, field, &bytes, &n);
            FUZZ_CHECK (found == bs_msg_has (msg, field));
            if (found) {
                size_t m;
                const uint8_t *value = bs_msg_bin (msg, field, &m);
                FUZZ_CHECK (n == m && (n == 0 || memcmp (bytes, value, n) == 0));
            }
        }
    }
}

//  Two messages hold the same fields with the same values, children too
static bool
s_equal (const bs_msg_t *a, const bs_msg_t *b)
{
    for (int f = 0; f < BS_FIELD_COUNT; f++) {
        bs_field_t field = (bs_field_t) f;
        if (bs_msg_has (a, field) != bs_msg_has (b, field))
            return false;
        if (!bs_msg_has (a, field))
            continue;
        switch (bs_field_type (field)) {
            case BS_T_INT:
            case BS_T_BOOL:
                if (bs_msg_int (a, field) != bs_msg_int (b, field))
                    return false;
                break;
            case BS_T_STR:
            case BS_T_BIN: {
                size_t n, m;
                const uint8_t *x = bs_msg_bin (a, field, &n), *y = bs_msg_bin (b, field, &m);
                if (n != m || (n && memcmp (x, y, n) != 0))
                    return false;
                break;
            }
            case BS_T_LIST:
                if (bs_msg_count (a, field) != bs_msg_count (b, field))
                    return false;
                for (size_t i = 0; i < bs_msg_count (a, field); i++)
                    if (!s_equal (bs_msg_at (a, field, i), bs_msg_at (b, field, i)))
                        return false;
                break;
            case BS_T_MAP:
                if (!s_equal (bs_msg_map (a, field), bs_msg_map (b, field)))
                    return false;
                break;
        }
    }
    return true;
}

static size_t
s_field_count (const bs_msg_t *msg)
{
    size_t n = 0;
    for (int f = 0; f < BS_FIELD_COUNT; f++)
        n += bs_msg_has (msg, (bs_field_t) f);
    return n;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_peek_all (data, size);

    char reason [160];
    memset (reason, 'x', sizeof reason);
    bs_err_t err = BS_OK;
    bs_msg_t *msg = bs_msg_decode (data, size, &err, reason, sizeof reason);
    FUZZ_CHECK (memchr (reason, 0, sizeof reason) != NULL);
    if (!msg) {
        FUZZ_CHECK (err != BS_OK && err < BS_ERR_COUNT && reason [0]);
        return 0;
    }
    FUZZ_CHECK (err == BS_OK);
    s_peeks_agree (data, size, msg);

    //  The node's next step: is it a well-formed request?
    //  (a valid request leaves reason as it was)
    memset (reason, 'x', sizeof reason);
    reason [sizeof reason - 1] = 0;
    bs_err_t valid = bs_msg_validate_request (msg, reason, sizeof reason);
    FUZZ_CHECK (valid < BS_ERR_COUNT && memchr (reason, 0, sizeof reason) != NULL);
    FUZZ_CHECK (valid == BS_OK || (reason [0] && reason [0] != 'x'));
    if (valid == BS_OK) {
        bs_op_t op = bs_msg_op (msg);
        FUZZ_CHECK (op < BS_OP_COUNT);
        FUZZ_CHECK (bs_op_kind (op) == BS_KIND_CONTROL || bs_msg_has (msg, BS_FIELD_rid));
    }

    //  JSON, as the CLI and the gateway print it
    char *json = bs_msg_to_json (msg);
    FUZZ_CHECK (json);
    json_error_t error;
    json_t *root = json_loads (json, JSON_REJECT_DUPLICATES, &error);
    if (!root)
        fprintf (stderr, "fuzz: not JSON (%s): %s\n", error.text, json);
    FUZZ_CHECK (root && json_is_object (root) && json_object_size (root) == s_field_count (msg));
    json_decref (root);

    //  Round trip: encode, decode, encode again
    size_t size1, size2;
    uint8_t *bytes1 = bs_msg_encode (msg, &size1);
    bs_msg_t *copy = bs_msg_decode (bytes1, size1, &err, reason, sizeof reason);
    if (!copy)
        fprintf (stderr, "fuzz: the re-encoded message does not decode: %s\n", reason);
    FUZZ_CHECK (copy);
    FUZZ_CHECK (s_equal (msg, copy));
    s_peeks_agree (bytes1, size1, copy);
    uint8_t *bytes2 = bs_msg_encode (copy, &size2);
    FUZZ_CHECK (size1 == size2 && memcmp (bytes1, bytes2, size1) == 0);
    char *json2 = bs_msg_to_json (copy);
    FUZZ_CHECK (strcmp (json, json2) == 0);
    FUZZ_CHECK (bs_msg_validate_request (copy, NULL, 0) == valid);

    free (json2);
    free (bytes2);
    free (bytes1);
    free (json);
    bs_msg_destroy (&copy);
    bs_msg_destroy (&msg);
    return 0;
}
