/*  bs_request - building and checking client requests  */
#include "bs_request.h"
#include "bs_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
bs_request_set_text (bs_msg_t *request, bs_field_t field, const char *text,
                     char *reason, size_t reason_size)
{
    if (bs_field_type (field) == BS_T_INT) {
        int64_t value;
        if (!bs_parse_int (text, INT64_MIN, INT64_MAX, &value)) {
            snprintf (reason, reason_size, "%s must be a whole number, not '%.40s'",
                      bs_field_name (field), text? text: "");
            return false;
        }
        bs_msg_set_int (request, field, value);
    }
    else
        bs_msg_set_str (request, field, text? text: "");
    return true;
}

bs_err_t
bs_request_check (const bs_msg_t *request, char *reason, size_t reason_size)
{
    //  The decoder is the one place that knows every limit: round-trip
    size_t size;
    uint8_t *data = bs_msg_encode (request, &size);
    bs_err_t err;
    bs_msg_t *copy = bs_msg_decode (data, size, &err, reason, reason_size);
    free (data);
    if (copy)
        err = bs_msg_validate_request (copy, reason, reason_size);
    bs_msg_destroy (&copy);
    return err;
}

static int
s_hex_digit (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool
bs_rid_parse (const char *hex, uint8_t *rid)
{
    if (!hex || strlen (hex) != 2 * BS_RID_SIZE)
        return false;
    for (int i = 0; i < BS_RID_SIZE; i++) {
        int high = s_hex_digit (hex [2 * i]);
        int low = s_hex_digit (hex [2 * i + 1]);
        if (high < 0 || low < 0)
            return false;
        rid [i] = (uint8_t) (high << 4 | low);
    }
    return true;
}
