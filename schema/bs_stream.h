/*  bs_stream - the frames of a partition's replication stream (a node's PUB
 *  socket; schema/PROTOCOL.md, "Log shipping").
 *
 *  Every message is three frames: the topic (the partition's name and
 *  "|", so that a subscription to "order-1" does not match "order-10"),
 *  one byte naming the kind, and the body: a log entry (REPL_STREAM_ENTRY)
 *  or the primary's head (REPL_STREAM_HEAD): its last published seq and
 *  its epoch, each an unsigned 64-bit integer, little-endian, 16 bytes in
 *  all.
 *
 *  The sync socket (a node's ROUTER, which serves fetches and acks) also
 *  takes direct requests from order nodes: a frame holding the kind byte
 *  REPL_STREAM_REQUEST, then the body (a catalog "decrement"); the answer
 *  comes back as REPL_STREAM_REPLY and its body.  A fetch or ack is one
 *  frame alone, so the two never mix.
 *
 *  A reply the node holds until its write is replicated keeps a token
 *  saying where it goes: a kind byte (BS_TOKEN_BROKER: the broker link's
 *  request token follows; BS_TOKEN_PEER: the routing id of the peer on the
 *  sync socket follows).  Pure helpers, no socket.
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
//  ...and of a direct request to the sync socket, and of its reply
#define REPL_STREAM_REQUEST 'Q'
#define REPL_STREAM_REPLY   'A'

//  A held reply's token: its kind byte, then an address of this many bytes
//  at most (a broker's request token, or a peer's routing id)
#define BS_TOKEN_BROKER 'B'
#define BS_TOKEN_PEER   'P'
#define BS_TOKEN_ADDRESS_MAX 255

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

//  Writes a token of kind (BS_TOKEN_BROKER or BS_TOKEN_PEER) for address
//  into out (1 + BS_TOKEN_ADDRESS_MAX bytes); returns its size, or 0 for an
//  unknown kind, an empty address or one longer than BS_TOKEN_ADDRESS_MAX
size_t bs_stream_token (int kind, const void *address, size_t size, uint8_t *out);
//  Reads a token: returns its kind and points *address_p (*size_p bytes)
//  into it, or returns 0 when it is no token
int bs_stream_token_kind (const void *token, size_t size, const uint8_t **address_p, size_t *size_p);

//  Whether a peer may send direct requests to the sync socket: under CURVE
//  (keyed) its key's role is "node", its name starts with "order-" and its
//  routing id is that name; in plain mode anyone who reaches the socket
//  (it listens on loopback unless the node runs --insecure)
bool bs_stream_may_request (bool keyed, const char *role, const char *name, const void *routing_id,
                            size_t routing_id_size);

#endif
