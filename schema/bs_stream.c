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
