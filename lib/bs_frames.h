/*  bs_frames - one multipart message off a socket as raw zmq_msg_t frames,
 *  for the hot paths that route frames without copying them (the broker's
 *  sockets, the node's broker link).
 *
 *  Ownership: the frames received belong to the caller, who closes them
 *  (bs_frames_close).  No state: any thread may call it on a socket it owns.
 */
#ifndef BS_FRAMES_H_INCLUDED
#define BS_FRAMES_H_INCLUDED

#include <zmq.h>

//  Receives one message without waiting.  Its first `max` frames land in
//  frames [0..*count_p - 1]; any beyond are read and dropped, so that a
//  message with too many frames never leaves a tail behind for the next
//  read.  Returns the message's whole frame count (which the caller checks
//  against what it expects), or -1 when no message was waiting.
int bs_frames_recv (void *sock, zmq_msg_t *frames, int max, int *count_p);

//  Closes the first count frames
void bs_frames_close (zmq_msg_t *frames, int count);

#endif
