/*  bs_msg - one message body: a msgpack map whose fields come from
 *  schema/fields.def, validated against the limits there.
 *
 *  Ownership: bs_msg_new and bs_msg_decode return a message the caller owns
 *  and frees with bs_msg_destroy.  Strings and byte strings passed to setters
 *  are copied.  A child message appended to a LIST field is owned by its
 *  parent from then on.  Getters return pointers owned by the message.
 */
#ifndef BS_MSG_H_INCLUDED
#define BS_MSG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    BS_T_INT, BS_T_BOOL, BS_T_STR, BS_T_BIN, BS_T_LIST, BS_T_MAP
} bs_type_t;

typedef enum {
#define BS_FIELD(id, type, min, max) BS_FIELD_##id,
#include "fields.def"
#undef BS_FIELD
    BS_FIELD_COUNT
} bs_field_t;

#define BS_F(id) (UINT64_C (1) << BS_FIELD_##id)
//  Field sets are 64-bit masks
_Static_assert (BS_FIELD_COUNT <= 64, "fields.def holds more than 64 fields");

typedef enum {
#define BS_MESSAGE(id, service, kind, required, optional) BS_OP_##id,
#include "messages.def"
#undef BS_MESSAGE
    BS_OP_COUNT
} bs_op_t;

typedef enum {
    BS_KIND_READ, BS_KIND_WRITE, BS_KIND_CONTROL
} bs_kind_t;

typedef enum {
    BS_OK = 0,
#define BS_ERROR(id, sentence) BS_ERR_##id,
#include "errors.def"
#undef BS_ERROR
    BS_ERR_COUNT
} bs_err_t;

#define BS_RID_SIZE 16
#define BS_RID_TIME_SIZE 6       //  the time at the front of a generated rid
//  The largest epoch, sequence number or version (fields.def)
#define BS_EPOCH_MAX INT64_C (9007199254740991)
//  Largest message body any socket accepts (ZMQ_MAXMSGSIZE as well)
#define BS_MAX_BODY (4 * 1024 * 1024)

typedef struct _bs_msg_t bs_msg_t;

//  Table look-ups
const char *bs_field_name (bs_field_t field);
bs_type_t   bs_field_type (bs_field_t field);
const char *bs_op_name (bs_op_t op);
const char *bs_op_service (bs_op_t op);
bs_kind_t   bs_op_kind (bs_op_t op);
//  Returns BS_OP_COUNT when the name is not an op
bs_op_t     bs_op_lookup (const char *name, size_t len);
const char *bs_err_name (bs_err_t err);
const char *bs_err_sentence (bs_err_t err);

bs_msg_t *bs_msg_new (void);
void      bs_msg_destroy (bs_msg_t **self_p);

bool     bs_msg_has (const bs_msg_t *self, bs_field_t field);
//  Removes a field (and, for a LIST, its elements)
void     bs_msg_unset (bs_msg_t *self, bs_field_t field);
void     bs_msg_set_int (bs_msg_t *self, bs_field_t field, int64_t value);
int64_t  bs_msg_int (const bs_msg_t *self, bs_field_t field);
void     bs_msg_set_str (bs_msg_t *self, bs_field_t field, const char *value);
//  Returns "" when absent
const char *bs_msg_str (const bs_msg_t *self, bs_field_t field);
void     bs_msg_set_bin (bs_msg_t *self, bs_field_t field, const void *data, size_t size);
//  Returns NULL when absent; *size_p receives the length
const uint8_t *bs_msg_bin (const bs_msg_t *self, bs_field_t field, size_t *size_p);
//  Marks a LIST field present and empty (an empty array on the wire)
void     bs_msg_set_list (bs_msg_t *self, bs_field_t field);
//  Takes ownership of *child_p and sets it to NULL
void     bs_msg_append (bs_msg_t *self, bs_field_t field, bs_msg_t **child_p);
size_t   bs_msg_count (const bs_msg_t *self, bs_field_t field);
bs_msg_t *bs_msg_at (const bs_msg_t *self, bs_field_t field, size_t index);

//  A MAP field holds one child message: set takes ownership of *child_p and
//  sets it to NULL; get returns NULL when absent
void     bs_msg_set_map (bs_msg_t *self, bs_field_t field, bs_msg_t **child_p);
bs_msg_t *bs_msg_map (const bs_msg_t *self, bs_field_t field);

//  Request helpers: the op of a validated request
bs_op_t  bs_msg_op (const bs_msg_t *self);

//  Finds the op of an encoded request without decoding it (the broker's
//  routing path); BS_OP_COUNT when the body has no recognisable op
bs_op_t  bs_peek_op (const void *data, size_t size);
//  Reads a top-level INT or BOOL field of an encoded map without decoding
//  it; false when absent, of another type or malformed
bool     bs_peek_int (const void *data, size_t size, bs_field_t field, int64_t *value_p);
//  Finds a top-level STR or BIN field: *bytes_p points into data
bool     bs_peek_bytes (const void *data, size_t size, bs_field_t field,
                        const uint8_t **bytes_p, size_t *size_p);

//  True when data is exactly one msgpack object, nested at most 8 deep, and
//  every array, map and string it holds fits in the bytes that follow its
//  header.  Decoders check this before msgpack-c allocates: a few bytes
//  claiming billions of elements are refused, never allocated for.
bool     bs_msgpack_sane (const void *data, size_t size);

//  True when the bytes are UTF-8 text without control characters (NUL
//  included): the rule every STR field follows
bool     bs_text_valid (const void *text, size_t size);

//  Encodes to msgpack.  Returns a malloc'd buffer the caller frees.
uint8_t *bs_msg_encode (const bs_msg_t *self, size_t *size_p);

//  Decodes a msgpack map, checking every field's type and limits.  On error
//  returns NULL and sets *err_p (and, when reason is not NULL, writes a
//  sentence naming the offending field into reason[reason_size]).
bs_msg_t *bs_msg_decode (const void *data, size_t size, bs_err_t *err_p,
                         char *reason, size_t reason_size);

//  Checks that a decoded message is a well-formed request: a known op, a rid
//  (for READ and WRITE kinds), all required fields, and no field the op does
//  not take.  Returns BS_OK or
//  an error, with a sentence in reason as for decode.
bs_err_t bs_msg_validate_request (const bs_msg_t *self, char *reason, size_t reason_size);

//  Builds a request with op and a fresh random rid
bs_msg_t *bs_msg_new_request (bs_op_t op);
//  Builds a reply {ok:true}
bs_msg_t *bs_msg_new_ok (void);
//  Builds a reply {ok:false, error, message}; message NULL uses the default
bs_msg_t *bs_msg_new_error (bs_err_t err, const char *message);

//  Writes the message as one JSON object; returns a malloc'd string.
//  BIN fields print as lowercase hex strings.
char *bs_msg_to_json (const bs_msg_t *self);

//  Fills buf with a new request id: a big-endian millisecond Unix time in
//  the first BS_RID_TIME_SIZE bytes, random bytes after it (like a UUIDv7).
//  Any 16 bytes are a valid rid; time-ordered ones are cheaper to store.
void bs_rid_generate (uint8_t *buf);

//  Writes the time part of a rid (the first BS_RID_TIME_SIZE bytes), for
//  callers that fill the rest themselves
void bs_rid_put_time (uint8_t *buf);

//  Fills buf with size random bytes (tokens, names)
void bs_random_bytes (uint8_t *buf, size_t size);

#endif
