/*  bs_request - building client requests from text, for every client (the
 *  CLI, the HTTP gateway).
 *
 *  A request is checked as a node would check it (field types and limits,
 *  required and allowed fields) before it is sent, so a client reports a bad
 *  value at once and never spends a round trip, or a rid, on it.
 *
 *  Ownership: no state of its own; every function works on a message or
 *  buffer the caller owns.
 */
#ifndef BS_REQUEST_H_INCLUDED
#define BS_REQUEST_H_INCLUDED

#include "bs_msg.h"

//  Sets a field from text: an INT field parses a whole decimal number, a
//  STR field takes the text as it is.  Returns false, with a sentence in
//  reason, when an INT field's text is not a whole number.  Limits are left
//  to bs_request_check.
bool bs_request_set_text (bs_msg_t *request, bs_field_t field, const char *text,
                          char *reason, size_t reason_size);

//  Checks a request against the codec's limits by encoding and decoding it,
//  then against its op's fields.  Returns BS_OK, or the error a node would
//  answer (bad_field, missing_field, ...) with a sentence in reason.
bs_err_t bs_request_check (const bs_msg_t *request, char *reason, size_t reason_size);

//  Parses a request id written as 32 hex digits; false when malformed
bool bs_rid_parse (const char *hex, uint8_t *rid);

#endif
