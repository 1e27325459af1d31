/*  fuzzing.h - what the libFuzzer targets of tests/fuzz share: reading an
 *  input as a sequence of frames and bytes, and checking invariants.
 *
 *  Frames: a 2-byte big-endian header, whose top bit is a flag (each target
 *  says what it means) and whose other 15 bits are the frame's length, then
 *  that many bytes (fewer when the input ends first).  Seeds are written in
 *  the same form by tests/fuzz/make_corpus.c.
 *
 *  A broken invariant prints what broke and aborts, which libFuzzer reports
 *  as a crash with the input that caused it.
 *
 *  A known bug of a module the fuzzing may not change (reported, with its
 *  input under tests/fuzz/crashes/<target>/) is tolerated, so that the
 *  target goes on finding others: fuzz_known says so once per bug.  With
 *  FUZZ_STRICT=1 in the environment it is a crash like any other, to
 *  reproduce it or to check a fix.
 */
#ifndef FUZZING_H_INCLUDED
#define FUZZING_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond) do { \
    if (!(cond)) { \
        fprintf (stderr, "fuzz: invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        abort (); \
    } \
} while (0)

//  True (the caller tolerates the known bug) unless FUZZ_STRICT is set;
//  names each bug once on stderr
static inline bool
fuzz_known (const char *bug)
{
    static const char *told [16];
    const char *strict = getenv ("FUZZ_STRICT");
    bool tolerated = !strict || *strict == 0 || *strict == '0';
    size_t i = 0;
    while (i < 16 && told [i] && told [i] != bug)
        i++;
    if (i < 16 && !told [i]) {
        told [i] = bug;
        fprintf (stderr, "fuzz: known bug %s: %s\n", bug, tolerated? "tolerated (FUZZ_STRICT=1 stops here)": "stopping");
    }
    return tolerated;
}

typedef struct {
    const uint8_t *data;
    size_t size;
} fuzz_input_t;

//  The next frame; false when the input is used up
static inline bool
fuzz_frame (fuzz_input_t *input, const uint8_t **frame_p, size_t *size_p, bool *flag_p)
{
    if (input->size < 2)
        return false;
    size_t header = (size_t) input->data [0] << 8 | input->data [1];
    size_t size = header & 0x7fff;
    input->data += 2;
    input->size -= 2;
    if (size > input->size)
        size = input->size;
    *frame_p = input->data;
    *size_p = size;
    if (flag_p)
        *flag_p = (header & 0x8000) != 0;
    input->data += size;
    input->size -= size;
    return true;
}

//  The next byte, or 0 when the input is used up
static inline uint8_t
fuzz_byte (fuzz_input_t *input)
{
    if (input->size == 0)
        return 0;
    input->size--;
    return *input->data++;
}

//  The next n (up to 8) bytes as a big-endian number
static inline uint64_t
fuzz_uint (fuzz_input_t *input, int n)
{
    uint64_t value = 0;
    for (int i = 0; i < n; i++)
        value = value << 8 | fuzz_byte (input);
    return value;
}

//  Up to max bytes, their count first (one byte)
static inline size_t
fuzz_bytes (fuzz_input_t *input, uint8_t *buffer, size_t max)
{
    size_t n = fuzz_byte (input);
    if (n > max)
        n = max;
    if (n > input->size)
        n = input->size;
    for (size_t i = 0; i < n; i++)
        buffer [i] = input->data [i];
    input->data += n;
    input->size -= n;
    return n;
}

#endif
