/*  bs_stream - the frames of a partition's replication stream (a node's PUB
 *  socket; schema/PROTOCOL.md, "Log shipping").
 *
 *  Every message is three frames: the topic (the partition's name and
 *  "|", so that a subscription to "order-1" does not match "order-10"),
 *  one byte naming the kind, and the body: a log entry (REPL_STREAM_ENTRY)
 *  or the primary's head (REPL_STREAM_HEAD): its last published seq and
 *  its epoch, each an unsigned 64-bit integer, little-endian, 16 bytes in
 *  all.  Pure helpers, no socket.
 */
#ifndef BS_STREAM_H_INCLUDED
#define BS_STREAM_H_INCLUDED

#include "bs_sizes.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The kind frame's one byte
#define REPL_STREAM_ENTRY 'E'
#define REPL_STREAM_HEAD  'H'

//  A head's body, in bytes
#define BS_STREAM_HEAD_SIZE 16
//  A topic frame at most: a partition name and "|"
#define BS_STREAM_TOPIC_MAX (BS_ID_MAX + 1)

//  Writes a head's body into out (BS_STREAM_HEAD_SIZE bytes)
void bs_stream_head_encode (uint64_t head, uint64_t epoch, uint8_t *out);
//  Reads a head's body; false (and nothing set) unless size is exactly
//  BS_STREAM_HEAD_SIZE
bool bs_stream_head_decode (const void *data, size_t size, uint64_t *head_p, uint64_t *epoch_p);

//  The topic frame of partition into topic (BS_STREAM_TOPIC_MAX + 1 bytes);
//  returns its length, or 0 when the name is empty or longer than BS_ID_MAX
size_t bs_stream_topic (const char *partition, char *topic);
//  The partition a topic frame names, into partition (BS_ID_MAX + 1
//  bytes); false when the frame is not a name and "|"
bool bs_stream_partition (const void *topic, size_t size, char *partition);

#endif
