/*  sim - the deterministic simulator's shared world: virtual time, the
 *  seeded generator, the event queue, the processes and their links.
 *
 *  One process (bookstore-sim) runs a whole cluster: three catalog nodes
 *  (each a real store, journal, catalog and replication core on its own
 *  LMDB environment), two order nodes (a real store, journal, orders and
 *  replication core each, owning a partition), the broker's control (the real controller and
 *  workers registry over an in-memory control plane, sim_ctlplane.c) and a
 *  few clients.  Nothing reads a clock or an unseeded random source:
 *  bs_clock_mono/bs_clock_wall/bs_random64 are served by sim_clock.c, so a
 *  seed always replays the same run.  Everything is single-threaded.
 *
 *  Processes are numbered: catalog nodes 0..SIM_NODES-1, order nodes up to
 *  SIM_ALL_NODES-1, the broker SIM_BROKER, the clients after it.  A message goes from one process to another through a
 *  link that may delay, reorder, drop, duplicate or cut it (sim_send); it
 *  is delivered only to the incarnation of the process it was sent to (a
 *  process that crashed and restarted never sees what was meant for its
 *  predecessor), and waits while its process is paused.
 */
#ifndef SIM_H_INCLUDED
#define SIM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_NODES 3             //  catalog nodes: processes 0..SIM_NODES-1
#define SIM_ORDERS 2            //  order nodes: the processes after them
#define SIM_ALL_NODES (SIM_NODES + SIM_ORDERS)
#define SIM_BROKER SIM_ALL_NODES
#define SIM_CLIENTS 3
#define SIM_PROCS (SIM_ALL_NODES + 1 + SIM_CLIENTS + 1)    //  the last client is the liveness probe
#define SIM_PROBE (SIM_PROCS - 1)
#define SIM_ITEMS 4

//  Virtual time and the generator (sim_clock.c)
extern int64_t sim_now;
void sim_seed (uint64_t seed);
uint64_t sim_rand (void);
//  A number in [low, high]
int64_t sim_range (int64_t low, int64_t high);
//  True with probability per_mille / 1000
bool sim_chance (int per_mille);

//  Events
typedef struct _sim_event_t sim_event_t;
typedef void (sim_handler_fn) (sim_event_t *event);
struct _sim_event_t {
    int64_t at;
    uint64_t order;             //  ties run in the order they were made
    sim_handler_fn *fn;
    int from, to;               //  processes (-1: none)
    uint64_t incarnation;       //  of to when sent (0: whichever runs)
    int kind;
    int64_t number;
    char text [260];             //  a partition, an endpoint or a peer
    uint8_t *data;              //  owned by the event
    size_t size;
    sim_handler_fn *dispose;    //  frees what data points to, for an event
                                //  that never runs (the run ended first)
    int channel;                //  a message: its link's channel
    uint64_t connection;        //  ...and that channel's connection
};

//  A new event to run delay ms from now (fill it, then sim_schedule)
sim_event_t *sim_event_new (int64_t delay, sim_handler_fn *fn);
void sim_schedule (sim_event_t *event);
//  A copy of data for the event
void sim_event_set_data (sim_event_t *event, const void *data, size_t size);

//  Processes
typedef struct {
    bool up;
    uint64_t incarnation;       //  grows at every start
    int64_t paused_until;       //  0: running
} sim_proc_t;
extern sim_proc_t sim_procs [SIM_PROCS];

//  Sends an event from process from to process to through their link on
//  a channel (one connection: the broker's, a replication stream, a sync
//  link): the link's faults apply, and fn runs at to when (and if) it
//  arrives.  A channel delivers in order, as a TCP connection does;
//  messages on different channels may overtake each other.  Loss follows
//  ZeroMQ: a stream (PUB) drops single messages (its high-water mark); the
//  other channels lose messages when their connection breaks, and then
//  every message in flight on it is lost with it (both ways), while the
//  next ones go through on a new connection.
enum { SIM_CHANNEL_BROKER, SIM_CHANNEL_STREAM, SIM_CHANNEL_SYNC, SIM_CHANNELS };
void sim_send (int from, int to, int channel, sim_event_t *event);

//  The trace: a ring of the last lines, printed when a seed fails, and
//  printed as it goes with --trace
void sim_trace (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
//  An invariant failed: recorded once per seed with its name and sentence
void sim_violation (const char *invariant, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
extern bool sim_violated;

//  Names for traces
const char *sim_proc_name (int proc);

//  The links' faults (sim_world.c); all zero in the quiet period
typedef struct {
    int delay_min, delay_max;   //  ms, every message
    int drop, dup, reorder;     //  per mille of messages (reorder: a longer
                                //  delay, overtaken on other channels)
    bool cut [SIM_PROCS][SIM_PROCS];
    int64_t last [SIM_PROCS][SIM_PROCS][SIM_CHANNELS];     //  in order per channel
    uint64_t connection [SIM_PROCS][SIM_PROCS][SIM_CHANNELS];   //  grows when one breaks
    bool single_loss;           //  every channel drops single messages (as a
                                //  ROUTER at its high-water mark): --single-loss
} sim_links_t;
extern sim_links_t sim_links;

//  The world between seeds
void sim_world_reset (bool trace_live);
//  Runs the earliest event; false when none is left or it is past until
bool sim_world_step (int64_t until);
//  Frees every event left (the run ended)
void sim_world_clear (void);
//  Prints the last lines of the trace to stdout
void sim_trace_dump (void);
//  Steps run since the reset
extern uint64_t sim_steps;
//  The first violation of this seed: "invariant: sentence"
const char *sim_violation_text (void);

#endif
