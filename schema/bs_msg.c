/*  bs_msg - the msgpack codec, driven by fields.def and messages.def  */
#include "bs_msg.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

typedef struct {
    const char *name;
    bs_type_t type;
    int64_t min, max;
} field_spec_t;

static const field_spec_t s_fields [BS_FIELD_COUNT] = {
#define BS_FIELD(id, type, min, max) { #id, BS_T_##type, (min), (max) },
#include "fields.def"
#undef BS_FIELD
};

typedef struct {
    const char *name;
    const char *service;
    bs_kind_t kind;
    uint64_t required;
    uint64_t optional;
} op_spec_t;

static const op_spec_t s_ops [BS_OP_COUNT] = {
#define BS_MESSAGE(id, service, kind, required, optional) { #id, #service, BS_KIND_##kind, (required), (optional) },
#include "messages.def"
#undef BS_MESSAGE
};

static const char *s_err_names [BS_ERR_COUNT] = {
    "ok",
#define BS_ERROR(id, sentence) #id,
#include "errors.def"
#undef BS_ERROR
};

static const char *s_err_sentences [BS_ERR_COUNT] = {
    "success",
#define BS_ERROR(id, sentence) sentence,
#include "errors.def"
#undef BS_ERROR
};

typedef struct {
    bs_msg_t **items;
    size_t size, cap;
} list_t;

struct _bs_msg_t {
    uint64_t present;
    int64_t ints [BS_FIELD_COUNT];
    char *bytes [BS_FIELD_COUNT];     //  STR (NUL-terminated) and BIN
    size_t sizes [BS_FIELD_COUNT];
    list_t lists [BS_FIELD_COUNT];
};

const char *bs_field_name (bs_field_t field) { return s_fields [field].name; }
bs_type_t   bs_field_type (bs_field_t field) { return s_fields [field].type; }
const char *bs_op_name (bs_op_t op) { return op < BS_OP_COUNT? s_ops [op].name: "?"; }
const char *bs_op_service (bs_op_t op) { return op < BS_OP_COUNT? s_ops [op].service: "?"; }
bs_kind_t   bs_op_kind (bs_op_t op) { return op < BS_OP_COUNT? s_ops [op].kind: BS_KIND_CONTROL; }
const char *bs_err_name (bs_err_t err) { return err < BS_ERR_COUNT? s_err_names [err]: "?"; }
const char *bs_err_sentence (bs_err_t err) { return err < BS_ERR_COUNT? s_err_sentences [err]: "?"; }

bs_op_t
bs_op_lookup (const char *name, size_t len)
{
    for (int op = 0; op < BS_OP_COUNT; op++)
        if (strlen (s_ops [op].name) == len && memcmp (s_ops [op].name, name, len) == 0)
            return (bs_op_t) op;
    return BS_OP_COUNT;
}

static bs_field_t
s_field_lookup (const char *name, size_t len)
{
    for (int f = 0; f < BS_FIELD_COUNT; f++)
        if (strlen (s_fields [f].name) == len && memcmp (s_fields [f].name, name, len) == 0)
            return (bs_field_t) f;
    return BS_FIELD_COUNT;
}

bs_msg_t *
bs_msg_new (void)
{
    bs_msg_t *self = calloc (1, sizeof (bs_msg_t));
    if (!self)
        abort ();
    return self;
}

static void
s_clear_field (bs_msg_t *self, bs_field_t field)
{
    free (self->bytes [field]);
    self->bytes [field] = NULL;
    self->sizes [field] = 0;
    list_t *list = &self->lists [field];
    for (size_t i = 0; i < list->size; i++)
        bs_msg_destroy (&list->items [i]);
    free (list->items);
    memset (list, 0, sizeof (*list));
    self->ints [field] = 0;
    self->present &= ~(UINT64_C (1) << field);
}

void
bs_msg_destroy (bs_msg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bs_msg_t *self = *self_p;
    for (int f = 0; f < BS_FIELD_COUNT; f++)
        if (self->present & (UINT64_C (1) << f))
            s_clear_field (self, (bs_field_t) f);
    free (self);
    *self_p = NULL;
}

bool
bs_msg_has (const bs_msg_t *self, bs_field_t field)
{
    return (self->present >> field) & 1;
}

void
bs_msg_unset (bs_msg_t *self, bs_field_t field)
{
    s_clear_field (self, field);
}

void
bs_msg_set_int (bs_msg_t *self, bs_field_t field, int64_t value)
{
    s_clear_field (self, field);
    self->ints [field] = value;
    self->present |= UINT64_C (1) << field;
}

int64_t
bs_msg_int (const bs_msg_t *self, bs_field_t field)
{
    return self->ints [field];
}

void
bs_msg_set_bin (bs_msg_t *self, bs_field_t field, const void *data, size_t size)
{
    s_clear_field (self, field);
    self->bytes [field] = malloc (size + 1);
    if (!self->bytes [field])
        abort ();
    if (size)
        memcpy (self->bytes [field], data, size);
    self->bytes [field][size] = 0;
    self->sizes [field] = size;
    self->present |= UINT64_C (1) << field;
}

void
bs_msg_set_str (bs_msg_t *self, bs_field_t field, const char *value)
{
    bs_msg_set_bin (self, field, value, strlen (value));
}

const char *
bs_msg_str (const bs_msg_t *self, bs_field_t field)
{
    return self->bytes [field]? self->bytes [field]: "";
}

const uint8_t *
bs_msg_bin (const bs_msg_t *self, bs_field_t field, size_t *size_p)
{
    if (size_p)
        *size_p = self->sizes [field];
    return (const uint8_t *) self->bytes [field];
}

void
bs_msg_set_list (bs_msg_t *self, bs_field_t field)
{
    s_clear_field (self, field);
    self->present |= UINT64_C (1) << field;
}

void
bs_msg_append (bs_msg_t *self, bs_field_t field, bs_msg_t **child_p)
{
    list_t *list = &self->lists [field];
    if (list->size == list->cap) {
        list->cap = list->cap? list->cap * 2: 8;
        list->items = realloc (list->items, list->cap * sizeof (bs_msg_t *));
        if (!list->items)
            abort ();
    }
    list->items [list->size++] = *child_p;
    *child_p = NULL;
    self->present |= UINT64_C (1) << field;
}

size_t
bs_msg_count (const bs_msg_t *self, bs_field_t field)
{
    return self->lists [field].size;
}

bs_msg_t *
bs_msg_at (const bs_msg_t *self, bs_field_t field, size_t index)
{
    return index < self->lists [field].size? self->lists [field].items [index]: NULL;
}

//  A MAP is kept as a list of exactly one child
void
bs_msg_set_map (bs_msg_t *self, bs_field_t field, bs_msg_t **child_p)
{
    s_clear_field (self, field);
    bs_msg_append (self, field, child_p);
}

bs_msg_t *
bs_msg_map (const bs_msg_t *self, bs_field_t field)
{
    return bs_msg_has (self, field)? bs_msg_at (self, field, 0): NULL;
}

bs_op_t
bs_msg_op (const bs_msg_t *self)
{
    if (!bs_msg_has (self, BS_FIELD_op))
        return BS_OP_COUNT;
    return bs_op_lookup (self->bytes [BS_FIELD_op], self->sizes [BS_FIELD_op]);
}

//  --------------------------------------------------------------------------
//  Peeking: walk the msgpack bytes without building anything

static bool
s_read_len (const uint8_t **p, const uint8_t *end, int bytes, uint32_t *len)
{
    if (end - *p < bytes)
        return false;
    uint32_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | (*p) [i];
    *p += bytes;
    *len = v;
    return true;
}

//  Skips one object; false when truncated, malformed or nested too deep
static bool
s_skip (const uint8_t **p, const uint8_t *end, int depth)
{
    if (*p >= end || depth > 8)
        return false;
    uint8_t b = *(*p)++;
    uint32_t n = 0, skip = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return true;
    if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90) {
        n = (b & 0x0f) * ((b & 0xf0) == 0x80? 2: 1);
        for (uint32_t i = 0; i < n; i++)
            if (!s_skip (p, end, depth + 1))
                return false;
        return true;
    }
    //  Strings, binaries and extensions carry a length of 1, 2 or 4 bytes
    int len_bytes = 0, extra = 0;
    switch (b) {
        case 0xc4: case 0xd9: len_bytes = 1; break;
        case 0xc5: case 0xda: len_bytes = 2; break;
        case 0xc6: case 0xdb: len_bytes = 4; break;
        case 0xc7: len_bytes = 1; extra = 1; break;
        case 0xc8: len_bytes = 2; extra = 1; break;
        case 0xc9: len_bytes = 4; extra = 1; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xd4: skip = 2; break;
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: case 0xdd: case 0xde: case 0xdf:
            if (!s_read_len (p, end, (b == 0xdc || b == 0xde)? 2: 4, &n))
                return false;
            //  A map holds twice as many objects as it claims pairs: counted
            //  in 64 bits, since 2^31 pairs or more overflow 32
            uint64_t objects = b >= 0xde? 2 * (uint64_t) n: n;
            for (uint64_t i = 0; i < objects; i++)
                if (!s_skip (p, end, depth + 1))
                    return false;
            return true;
        default:
            if ((b & 0xe0) != 0xa0)
                return false;
            skip = b & 0x1f;
    }
    uint64_t total = skip;
    if (len_bytes) {
        if (!s_read_len (p, end, len_bytes, &skip))
            return false;
        total = (uint64_t) skip + (uint64_t) extra;     //  an extension's type byte
    }
    if ((uint64_t) (end - *p) < total)
        return false;
    *p += total;
    return true;
}

bool
bs_msgpack_sane (const void *data, size_t size)
{
    //  Every element takes at least one byte, so a walk that must find each
    //  one proves the counts true before msgpack-c allocates for them
    const uint8_t *p = data;
    return size > 0 && s_skip (&p, p + size, 0) && p == (const uint8_t *) data + size;
}

//  Reads a string header; false when the object is not a string
static bool
s_read_str (const uint8_t **p, const uint8_t *end, const char **str, uint32_t *len)
{
    if (*p >= end)
        return false;
    uint8_t b = **p;
    const uint8_t *q = *p + 1;
    if ((b & 0xe0) == 0xa0)
        *len = b & 0x1f;
    else
    if (b == 0xd9 || b == 0xda || b == 0xdb) {
        if (!s_read_len (&q, end, b == 0xd9? 1: b == 0xda? 2: 4, len))
            return false;
    }
    else
        return false;
    if ((uint32_t) (end - q) < *len)
        return false;
    *str = (const char *) q;
    *p = q + *len;
    return true;
}

//  Points *p at the value of a top-level key of an encoded map; false when
//  the key is absent or the bytes are malformed before it
static bool
s_find (const uint8_t **p, const uint8_t *end, const char *name)
{
    if (*p >= end)
        return false;
    uint32_t pairs;
    uint8_t b = *(*p)++;
    if ((b & 0xf0) == 0x80)
        pairs = b & 0x0f;
    else
    if (b == 0xde || b == 0xdf) {
        if (!s_read_len (p, end, b == 0xde? 2: 4, &pairs))
            return false;
    }
    else
        return false;
    size_t name_len = strlen (name);
    for (uint32_t i = 0; i < pairs; i++) {
        const char *key;
        uint32_t klen;
        if (!s_read_str (p, end, &key, &klen))
            return false;
        if (klen == name_len && memcmp (key, name, klen) == 0)
            return *p < end;
        if (!s_skip (p, end, 0))
            return false;
    }
    return false;
}

bs_op_t
bs_peek_op (const void *data, size_t size)
{
    const uint8_t *p = data;
    const char *value;
    uint32_t vlen;
    if (!s_find (&p, p + size, "op") || !s_read_str (&p, (const uint8_t *) data + size, &value, &vlen))
        return BS_OP_COUNT;
    return bs_op_lookup (value, vlen);
}

bool
bs_peek_int (const void *data, size_t size, bs_field_t field, int64_t *value_p)
{
    const uint8_t *p = data, *end = p + size;
    if (!s_find (&p, end, s_fields [field].name))
        return false;
    uint8_t b = *p++;
    if (b <= 0x7f || b >= 0xe0) {
        *value_p = (int8_t) b;
        if (b <= 0x7f)
            *value_p = b;
        return true;
    }
    if (b == 0xc2 || b == 0xc3) {
        *value_p = b == 0xc3;
        return true;
    }
    int bytes = 0;
    bool is_signed = false;
    switch (b) {
        case 0xcc: bytes = 1; break;
        case 0xcd: bytes = 2; break;
        case 0xce: bytes = 4; break;
        case 0xcf: bytes = 8; break;
        case 0xd0: bytes = 1; is_signed = true; break;
        case 0xd1: bytes = 2; is_signed = true; break;
        case 0xd2: bytes = 4; is_signed = true; break;
        case 0xd3: bytes = 8; is_signed = true; break;
        default: return false;
    }
    if (end - p < bytes)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p [i];
    if (is_signed && bytes < 8 && (v >> (bytes * 8 - 1)))
        v |= ~UINT64_C (0) << (bytes * 8);      //  sign-extend
    if (!is_signed && v > (uint64_t) INT64_MAX)
        return false;
    *value_p = (int64_t) v;
    return true;
}

bool
bs_peek_bytes (const void *data, size_t size, bs_field_t field, const uint8_t **bytes_p, size_t *size_p)
{
    const uint8_t *p = data, *end = p + size;
    if (!s_find (&p, end, s_fields [field].name))
        return false;
    uint8_t b = *p;
    uint32_t len;
    if (b == 0xc4 || b == 0xc5 || b == 0xc6) {
        p++;
        if (!s_read_len (&p, end, b == 0xc4? 1: b == 0xc5? 2: 4, &len) || (uint32_t) (end - p) < len)
            return false;
        *bytes_p = p;
        *size_p = len;
        return true;
    }
    const char *str;
    if (!s_read_str (&p, end, &str, &len))
        return false;
    *bytes_p = (const uint8_t *) str;
    *size_p = len;
    return true;
}

//  --------------------------------------------------------------------------
//  Encoding

static void
s_pack (msgpack_packer *pk, const bs_msg_t *self)
{
    uint32_t n = 0;
    for (int f = 0; f < BS_FIELD_COUNT; f++)
        n += bs_msg_has (self, (bs_field_t) f);
    msgpack_pack_map (pk, n);
    for (int f = 0; f < BS_FIELD_COUNT; f++) {
        if (!bs_msg_has (self, (bs_field_t) f))
            continue;
        const char *name = s_fields [f].name;
        msgpack_pack_str_with_body (pk, name, strlen (name));
        switch (s_fields [f].type) {
            case BS_T_INT:
                msgpack_pack_int64 (pk, self->ints [f]);
                break;
            case BS_T_BOOL:
                if (self->ints [f])
                    msgpack_pack_true (pk);
                else
                    msgpack_pack_false (pk);
                break;
            case BS_T_STR:
                msgpack_pack_str_with_body (pk, self->bytes [f], self->sizes [f]);
                break;
            case BS_T_BIN:
                msgpack_pack_bin_with_body (pk, self->bytes [f], self->sizes [f]);
                break;
            case BS_T_LIST:
                msgpack_pack_array (pk, (uint32_t) self->lists [f].size);
                for (size_t i = 0; i < self->lists [f].size; i++)
                    s_pack (pk, self->lists [f].items [i]);
                break;
            case BS_T_MAP:
                s_pack (pk, self->lists [f].items [0]);
                break;
        }
    }
}

uint8_t *
bs_msg_encode (const bs_msg_t *self, size_t *size_p)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    s_pack (&pk, self);
    *size_p = sbuf.size;
    //  The sbuffer's data is malloc'd; hand it over as it is
    return (uint8_t *) msgpack_sbuffer_release (&sbuf);
}

//  --------------------------------------------------------------------------
//  Decoding

static bool
s_valid_text (const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s [i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t extra;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) { extra = 1; cp = c & 0x1f; }
        else
        if ((c & 0xf0) == 0xe0) { extra = 2; cp = c & 0x0f; }
        else
        if ((c & 0xf8) == 0xf0) { extra = 3; cp = c & 0x07; }
        else
            return false;
        if (i + extra >= n)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s [i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s [i + k] & 0x3f);
        }
        //  Overlong forms, surrogates and out-of-range code points
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800)
        ||  (extra == 3 && cp < 0x10000) || cp > 0x10ffff
        ||  (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

bool
bs_text_valid (const void *text, size_t size)
{
    return s_valid_text (text, size);
}

typedef struct {
    bs_err_t err;
    char *reason;
    size_t reason_size;
} decode_ctx_t;

static bool
s_fail (decode_ctx_t *ctx, bs_err_t err, const char *fmt, const char *name)
{
    ctx->err = err;
    if (ctx->reason && ctx->reason_size)
        snprintf (ctx->reason, ctx->reason_size, fmt, name);
    return false;
}

static bool s_unpack_map (decode_ctx_t *ctx, const msgpack_object *obj, bs_msg_t *msg, int depth);

static bool
s_unpack_field (decode_ctx_t *ctx, bs_field_t f, const msgpack_object *val, bs_msg_t *msg, int depth)
{
    const field_spec_t *spec = &s_fields [f];
    const char *name = spec->name;
    switch (spec->type) {
        case BS_T_INT: {
            int64_t v;
            if (val->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                if (val->via.u64 > (uint64_t) INT64_MAX)
                    return s_fail (ctx, BS_ERR_bad_field, "field '%s' is out of range", name);
                v = (int64_t) val->via.u64;
            }
            else
            if (val->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                v = val->via.i64;
            else
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' must be an integer", name);
            if (v < spec->min || v > spec->max)
#ifdef BS_MUTANT_REFUSED_WRITE_APPLIED
                //  A deliberately broken variant for the mutation tests: the
                //  catalog's own check of these comes after the change
                if (f != BS_FIELD_cost && f != BS_FIELD_count)
#endif
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' is out of range", name);
            bs_msg_set_int (msg, f, v);
            return true;
        }
        case BS_T_BOOL:
            if (val->type != MSGPACK_OBJECT_BOOLEAN)
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' must be true or false", name);
            bs_msg_set_int (msg, f, val->via.boolean? 1: 0);
            return true;
        case BS_T_STR:
            if (val->type != MSGPACK_OBJECT_STR)
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' must be a string", name);
            if ((int64_t) val->via.str.size < spec->min || (int64_t) val->via.str.size > spec->max)
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' has a length outside its limits", name);
            if (!s_valid_text ((const uint8_t *) val->via.str.ptr, val->via.str.size))
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' is not printable UTF-8 text", name);
            bs_msg_set_bin (msg, f, val->via.str.ptr, val->via.str.size);
            return true;
        case BS_T_BIN:
            if (val->type != MSGPACK_OBJECT_BIN)
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' must be a byte string", name);
            if ((int64_t) val->via.bin.size < spec->min || (int64_t) val->via.bin.size > spec->max)
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' has a length outside its limits", name);
            bs_msg_set_bin (msg, f, val->via.bin.ptr, val->via.bin.size);
            return true;
        case BS_T_LIST:
            if (val->type != MSGPACK_OBJECT_ARRAY)
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' must be an array", name);
            if (depth > 0)
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' is nested too deeply", name);
            if ((int64_t) val->via.array.size < spec->min || (int64_t) val->via.array.size > spec->max)
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' has too many elements", name);
            bs_msg_set_list (msg, f);
            for (uint32_t i = 0; i < val->via.array.size; i++) {
                bs_msg_t *child = bs_msg_new ();
                if (!s_unpack_map (ctx, &val->via.array.ptr [i], child, depth + 1)) {
                    bs_msg_destroy (&child);
                    return false;
                }
                bs_msg_append (msg, f, &child);
            }
            return true;
        case BS_T_MAP: {
            if (val->type != MSGPACK_OBJECT_MAP)
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' must be a map", name);
            if (depth > 0)
                return s_fail (ctx, BS_ERR_bad_field, "field '%s' is nested too deeply", name);
            bs_msg_t *child = bs_msg_new ();
            if (!s_unpack_map (ctx, val, child, depth + 1)) {
                bs_msg_destroy (&child);
                return false;
            }
            bs_msg_set_map (msg, f, &child);
            return true;
        }
    }
    return s_fail (ctx, BS_ERR_internal, "field '%s' has no type", name);
}

static bool
s_unpack_map (decode_ctx_t *ctx, const msgpack_object *obj, bs_msg_t *msg, int depth)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return s_fail (ctx, BS_ERR_bad_msgpack, "%sthe body is not a msgpack map", "");
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        const msgpack_object *val = &obj->via.map.ptr [i].val;
        if (key->type != MSGPACK_OBJECT_STR)
            return s_fail (ctx, BS_ERR_bad_field, "%sa map key is not a string", "");
        bs_field_t f = s_field_lookup (key->via.str.ptr, key->via.str.size);
        if (f == BS_FIELD_COUNT) {
            char name [40];
            size_t n = key->via.str.size < 32? key->via.str.size: 32;
            for (size_t k = 0; k < n; k++) {
                char c = key->via.str.ptr [k];
                name [k] = (c >= 0x20 && c < 0x7f)? c: '?';
            }
            name [n] = 0;
            return s_fail (ctx, BS_ERR_bad_field, "unknown field '%s'", name);
        }
        if (bs_msg_has (msg, f))
            return s_fail (ctx, BS_ERR_bad_field, "field '%s' appears twice", s_fields [f].name);
        if (!s_unpack_field (ctx, f, val, msg, depth))
            return false;
    }
    return true;
}

bs_msg_t *
bs_msg_decode (const void *data, size_t size, bs_err_t *err_p, char *reason, size_t reason_size)
{
    decode_ctx_t ctx = { BS_OK, reason, reason_size };
    if (reason && reason_size)
        reason [0] = 0;
    if (size > BS_MAX_BODY) {
        s_fail (&ctx, BS_ERR_too_large, "%sthe body is larger than the size limit", "");
        *err_p = ctx.err;
        return NULL;
    }
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t offset = 0;
    bs_msg_t *msg = NULL;
    //  Checked first: a header claiming 2^32 elements must not make msgpack-c
    //  allocate for them
    msgpack_unpack_return rc = bs_msgpack_sane (data, size)
                             ? msgpack_unpack_next (&result, data, size, &offset): MSGPACK_UNPACK_PARSE_ERROR;
    if (rc != MSGPACK_UNPACK_SUCCESS || offset != size)
        s_fail (&ctx, BS_ERR_bad_msgpack, "%sthe body is not exactly one msgpack object", "");
    else {
        msg = bs_msg_new ();
        if (!s_unpack_map (&ctx, &result.data, msg, 0))
            bs_msg_destroy (&msg);
    }
    msgpack_unpacked_destroy (&result);
    *err_p = ctx.err;
    return msg;
}

bs_err_t
bs_msg_validate_request (const bs_msg_t *self, char *reason, size_t reason_size)
{
    decode_ctx_t ctx = { BS_OK, reason, reason_size };
    if (!bs_msg_has (self, BS_FIELD_op)) {
        s_fail (&ctx, BS_ERR_missing_field, "%sthe request has no 'op' field", "");
        return ctx.err;
    }
    bs_op_t op = bs_msg_op (self);
    if (op == BS_OP_COUNT) {
        s_fail (&ctx, BS_ERR_unknown_op, "unknown operation '%s'", bs_msg_str (self, BS_FIELD_op));
        return ctx.err;
    }
    uint64_t required = s_ops [op].required | BS_F (op)
                      | (s_ops [op].kind == BS_KIND_CONTROL? 0: BS_F (rid));
    uint64_t allowed = required | s_ops [op].optional;
    for (int f = 0; f < BS_FIELD_COUNT; f++) {
        uint64_t bit = UINT64_C (1) << f;
        if ((required & bit) && !(self->present & bit)) {
            s_fail (&ctx, BS_ERR_missing_field, "the request lacks field '%s'", s_fields [f].name);
            return ctx.err;
        }
        if ((self->present & bit) && !(allowed & bit)) {
            s_fail (&ctx, BS_ERR_bad_field, "operation does not take field '%s'", s_fields [f].name);
            return ctx.err;
        }
    }
    return BS_OK;
}

//  --------------------------------------------------------------------------
//  Constructors

void
bs_random_bytes (uint8_t *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t rc = getrandom (buf + got, size - got, 0);
        if (rc > 0)
            got += (size_t) rc;
    }
}

void
bs_rid_put_time (uint8_t *buf)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
    for (int i = 0; i < BS_RID_TIME_SIZE; i++)
        buf [i] = (uint8_t) (ms >> (8 * (BS_RID_TIME_SIZE - 1 - i)));
}

void
bs_rid_generate (uint8_t *buf)
{
    //  Time first, so that ids made one after another sort together: every
    //  table keyed by rid (the catalog's applied writes, the orders) then
    //  grows at one end and a commit writes a few pages, not one per id
    bs_rid_put_time (buf);
    bs_random_bytes (buf + BS_RID_TIME_SIZE, BS_RID_SIZE - BS_RID_TIME_SIZE);
}

bs_msg_t *
bs_msg_new_request (bs_op_t op)
{
    bs_msg_t *self = bs_msg_new ();
    bs_msg_set_str (self, BS_FIELD_op, s_ops [op].name);
    uint8_t rid [BS_RID_SIZE];
    bs_rid_generate (rid);
    bs_msg_set_bin (self, BS_FIELD_rid, rid, sizeof rid);
    return self;
}

bs_msg_t *
bs_msg_new_ok (void)
{
    bs_msg_t *self = bs_msg_new ();
    bs_msg_set_int (self, BS_FIELD_ok, 1);
    return self;
}

bs_msg_t *
bs_msg_new_error (bs_err_t err, const char *message)
{
    bs_msg_t *self = bs_msg_new ();
    bs_msg_set_int (self, BS_FIELD_ok, 0);
    bs_msg_set_str (self, BS_FIELD_error, bs_err_name (err));
    bs_msg_set_str (self, BS_FIELD_message, message && *message? message: bs_err_sentence (err));
    return self;
}

//  --------------------------------------------------------------------------
//  JSON

typedef struct {
    char *data;
    size_t size, cap;
} strbuf_t;

static void
s_put (strbuf_t *b, const char *s, size_t n)
{
    if (b->size + n + 1 > b->cap) {
        while (b->size + n + 1 > b->cap)
            b->cap = b->cap? b->cap * 2: 256;
        b->data = realloc (b->data, b->cap);
        if (!b->data)
            abort ();
    }
    memcpy (b->data + b->size, s, n);
    b->size += n;
    b->data [b->size] = 0;
}

static void
s_puts (strbuf_t *b, const char *s)
{
    s_put (b, s, strlen (s));
}

static void
s_put_json_string (strbuf_t *b, const char *s, size_t n)
{
    s_put (b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s [i];
        if (c == '"' || c == '\\') {
            char esc [2] = { '\\', (char) c };
            s_put (b, esc, 2);
        }
        else
        if (c < 0x20 || c == 0x7f) {
            char esc [8];
            snprintf (esc, sizeof esc, "\\u%04x", c);
            s_puts (b, esc);
        }
        else
            s_put (b, (const char *) &c, 1);
    }
    s_put (b, "\"", 1);
}

static void
s_json (strbuf_t *b, const bs_msg_t *self)
{
    bool first = true;
    s_put (b, "{", 1);
    for (int f = 0; f < BS_FIELD_COUNT; f++) {
        if (!bs_msg_has (self, (bs_field_t) f))
            continue;
        if (!first)
            s_put (b, ",", 1);
        first = false;
        s_put_json_string (b, s_fields [f].name, strlen (s_fields [f].name));
        s_put (b, ":", 1);
        char num [32];
        switch (s_fields [f].type) {
            case BS_T_INT:
                snprintf (num, sizeof num, "%" PRId64, self->ints [f]);
                s_puts (b, num);
                break;
            case BS_T_BOOL:
                s_puts (b, self->ints [f]? "true": "false");
                break;
            case BS_T_STR:
                s_put_json_string (b, self->bytes [f], self->sizes [f]);
                break;
            case BS_T_BIN:
                s_put (b, "\"", 1);
                for (size_t i = 0; i < self->sizes [f]; i++) {
                    snprintf (num, sizeof num, "%02x", (uint8_t) self->bytes [f][i]);
                    s_puts (b, num);
                }
                s_put (b, "\"", 1);
                break;
            case BS_T_LIST:
                s_put (b, "[", 1);
                for (size_t i = 0; i < self->lists [f].size; i++) {
                    if (i)
                        s_put (b, ",", 1);
                    s_json (b, self->lists [f].items [i]);
                }
                s_put (b, "]", 1);
                break;
            case BS_T_MAP:
                s_json (b, self->lists [f].items [0]);
                break;
        }
    }
    s_put (b, "}", 1);
}

char *
bs_msg_to_json (const bs_msg_t *self)
{
    strbuf_t b = { NULL, 0, 0 };
    s_json (&b, self);
    return b.data;
}
