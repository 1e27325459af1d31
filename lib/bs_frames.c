/*  bs_frames - receiving a multipart message as raw frames  */
#include "bs_frames.h"

int
bs_frames_recv (void *sock, zmq_msg_t *frames, int max, int *count_p)
{
    int count = 0, total = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&part);
            if (total == 0)
                return -1;
            break;
        }
        more = zmq_msg_more (&part);
        total++;
        if (count < max)
            frames [count++] = part;
        else
            zmq_msg_close (&part);
    }
    *count_p = count;
    return total;
}

void
bs_frames_close (zmq_msg_t *frames, int count)
{
    for (int i = 0; i < count; i++)
        zmq_msg_close (&frames [i]);
}
