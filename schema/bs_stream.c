/*  bs_stream - the frames of a partition's replication stream  */
#include "bs_stream.h"

#include <string.h>

static void
s_put_le (uint64_t value, uint8_t *out)
{
    for (int i = 0; i < 8; i++)
        out [i] = (uint8_t) (value >> (8 * i));
}

static uint64_t
s_get_le (const uint8_t *in)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value |= (uint64_t) in [i] << (8 * i);
    return value;
}

void
bs_stream_head_encode (uint64_t head, uint64_t epoch, uint8_t *out)
{
    s_put_le (head, out);
    s_put_le (epoch, out + 8);
}

bool
bs_stream_head_decode (const void *data, size_t size, uint64_t *head_p, uint64_t *epoch_p)
{
    if (!data || size != BS_STREAM_HEAD_SIZE)
        return false;
    *head_p = s_get_le (data);
    *epoch_p = s_get_le ((const uint8_t *) data + 8);
    return true;
}

size_t
bs_stream_topic (const char *partition, char *topic)
{
    size_t n = strlen (partition);
    if (n == 0 || n > BS_ID_MAX)
        return 0;
    memcpy (topic, partition, n);
    topic [n] = '|';
    topic [n + 1] = 0;
    return n + 1;
}

bool
bs_stream_partition (const void *topic, size_t size, char *partition)
{
    if (size < 2 || size > BS_STREAM_TOPIC_MAX || ((const char *) topic) [size - 1] != '|')
        return false;
    memcpy (partition, topic, size - 1);
    partition [size - 1] = 0;
    //  A name holds no NUL: a frame with one names no partition
    return strlen (partition) == size - 1;
}

size_t
bs_stream_token (int kind, const void *address, size_t size, uint8_t *out)
{
    if ((kind != BS_TOKEN_BROKER && kind != BS_TOKEN_PEER) || size == 0 || size > BS_TOKEN_ADDRESS_MAX)
        return 0;
    out [0] = (uint8_t) kind;
    memcpy (out + 1, address, size);
    return size + 1;
}

int
bs_stream_token_kind (const void *token, size_t size, const uint8_t **address_p, size_t *size_p)
{
    const uint8_t *bytes = token;
    if (!token || size < 2 || size > 1 + BS_TOKEN_ADDRESS_MAX
    ||  (bytes [0] != BS_TOKEN_BROKER && bytes [0] != BS_TOKEN_PEER))
        return 0;
    *address_p = bytes + 1;
    *size_p = size - 1;
    return bytes [0];
}

bool
bs_stream_may_request (bool keyed, const char *role, const char *name, const void *routing_id,
                       size_t routing_id_size)
{
    if (!keyed)
        return true;
    return role && name && strcmp (role, "node") == 0 && strncmp (name, "order-", 6) == 0
        && strlen (name) == routing_id_size && memcmp (name, routing_id, routing_id_size) == 0;
}
