/*  test_frames - one multipart message as raw frames  */
#include "bs_frames.h"
#include "testing.h"

#include <czmq.h>
#include <string.h>

static void
s_send_parts (void *sock, int parts)
{
    for (int i = 0; i < parts; i++) {
        char text [16];
        snprintf (text, sizeof text, "f%d", i);
        zmq_send (sock, text, strlen (text), i < parts - 1? ZMQ_SNDMORE: 0);
    }
}

static bool
s_frame_is (zmq_msg_t *frame, const char *text)
{
    return zmq_msg_size (frame) == strlen (text) && memcmp (zmq_msg_data (frame), text, strlen (text)) == 0;
}

//  Nothing waiting: -1 at once, nothing to close
static void
test_nothing_waiting (void)
{
    zsock_t *in = zsock_new_pair ("@inproc://frames-empty");
    zmq_msg_t frames [4];
    int count;
    CHECK (bs_frames_recv (zsock_resolve (in), frames, 4, &count) == -1);
    zsock_destroy (&in);
}

//  A message that fits arrives whole, in order
static void
test_whole_message (void)
{
    zsock_t *in = zsock_new_pair ("@inproc://frames-whole");
    zsock_t *out = zsock_new_pair (">inproc://frames-whole");
    s_send_parts (zsock_resolve (out), 3);
    zmq_msg_t frames [4];
    int count = 0;
    zmq_pollitem_t item = { zsock_resolve (in), 0, ZMQ_POLLIN, 0 };
    CHECK (zmq_poll (&item, 1, 1000) == 1);
    CHECK_EQ (bs_frames_recv (zsock_resolve (in), frames, 4, &count), 3);
    CHECK_EQ (count, 3);
    CHECK (count == 3 && s_frame_is (&frames [0], "f0") && s_frame_is (&frames [2], "f2"));
    bs_frames_close (frames, count);
    zsock_destroy (&out);
    zsock_destroy (&in);
}

//  Too many frames: the count says how many there were, the first ones are
//  kept, and the tail does not leak into the next message
static void
test_too_many_frames (void)
{
    zsock_t *in = zsock_new_pair ("@inproc://frames-many");
    zsock_t *out = zsock_new_pair (">inproc://frames-many");
    s_send_parts (zsock_resolve (out), 6);
    s_send_parts (zsock_resolve (out), 1);
    zmq_pollitem_t item = { zsock_resolve (in), 0, ZMQ_POLLIN, 0 };
    CHECK (zmq_poll (&item, 1, 1000) == 1);
    zmq_msg_t frames [2];
    int count = 0;
    CHECK_EQ (bs_frames_recv (zsock_resolve (in), frames, 2, &count), 6);
    CHECK_EQ (count, 2);
    CHECK (count == 2 && s_frame_is (&frames [0], "f0") && s_frame_is (&frames [1], "f1"));
    bs_frames_close (frames, count);
    CHECK (bs_frames_recv (zsock_resolve (in), frames, 2, &count) == 1);
    CHECK (count == 1 && s_frame_is (&frames [0], "f0"));
    bs_frames_close (frames, count);
    zsock_destroy (&out);
    zsock_destroy (&in);
}

int
main (void)
{
    zsys_init ();
    RUN (test_nothing_waiting);
    RUN (test_whole_message);
    RUN (test_too_many_frames);
    return DONE ();
}
