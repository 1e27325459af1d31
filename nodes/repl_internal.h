/*  repl_internal - the replication core's shared state, for its own files
 *  alone (repl.c: tables, roles, status; repl_primary.c: held replies,
 *  acks, the in-sync set, serving fetches, publishing; repl_follower.c: the
 *  stream buffer, applying, fetching, loading snapshots).  Nothing here
 *  touches a socket or a clock: time comes in as now, I/O goes out through
 *  the repl_io_t table.
 */
#ifndef REPL_INTERNAL_H_INCLUDED
#define REPL_INTERNAL_H_INCLUDED

#include "repl.h"
#include "bs_sizes.h"
#include "bs_stream.h"

#include <czmq.h>
#include <string.h>

#define FETCH_BATCH      2000       //  entries per catch-up reply
#define FETCH_BYTES      (2 << 20)  //  ... and at most this many bytes
//  A snapshot goes out a part per loop turn (repl_tick), each part one
//  message of at most this many records and bytes, so that the source
//  keeps heartbeating, serving and replicating while it sends one
#define SNAP_TURN_RECORDS 1000
#define SNAP_TURN_BYTES  (1 << 20)
//  Snapshots sent at once: each holds a read transaction open (the store
//  keeps every page it sees, and grows meanwhile) and costs each turn a part
#define SNAP_STREAMS_MAX 2
#define BUFFER_MAX       100000     //  live entries held while catching up
#define FETCH_TIMEOUT_MS 1000

//  At most this many followers per partition, far more replicas than a
//  partition has: a name past them takes the place of the one longest
//  silent that is not in sync, or is not tracked
#define FOLLOWERS_MAX    64

//  The broker's confirmed in-sync set, a comma-separated list of ids
#define CONFIRMED_MAX    511

typedef enum { ROLE_NONE, ROLE_PRIMARY, ROLE_FOLLOWER } role_t;

typedef struct {
    char id [BS_ID_MAX + 1];
    uint64_t acked;
    int64_t last_seen;
    bool insync;
    bool snapshotting;          //  we sent it a snapshot: its acks mean
                                //  nothing until it fetches from there
    uint64_t reported_at;       //  the newest of our reports naming it in
                                //  sync (0: none)
} follower_t;

typedef struct {
    uint64_t seq;
    int64_t since;
    zmq_msg_t token;
    void *data;
    size_t size;
} pending_t;

typedef struct {
    bs_entry_t *entry;          //  points into data
    uint8_t *data;
    size_t size;
} live_t;

typedef struct {
    char name [BS_ID_MAX + 1];
    role_t role;
    uint64_t epoch;             //  the epoch we were told; older entries are fenced off
    //  follower
    char primary [BS_ID_MAX + 1];
    char pub [BS_ENDPOINT_MAX + 1];
    char source [BS_ENDPOINT_MAX + 1];      //  the sync endpoint we fetch from ("": none)
    char source_id [BS_ID_MAX + 1];         //  ... its node id (CURVE)
    bool ack;                   //  acks go to the source (it is the primary)
    bool fetching;
    int64_t fetch_deadline;
    uint64_t fetch_serial;      //  names our latest fetch (with the epoch, in its rid)
    bool snapshot;              //  a snapshot is being received
    uint64_t snap_loaded;       //  ...and how many of its records so far
    zlistx_t *buffer;           //  live_t, in arrival order
    uint64_t head_seen;
    bool synced;                //  caught up since the last assignment
    bool touched;               //  live entries arrived in this batch
    int64_t next_ack;
    //  primary
    follower_t *followers;      //  grows: as many as fetch or ack
    int follower_count, follower_cap;
    pending_t *pending;         //  ring, in seq order
    size_t pending_head, pending_count, pending_cap;
    uint64_t published;         //  sent on the stream (may be ahead of committed)
    uint64_t committed;         //  durable in our own store (repl_committed)
    uint64_t led_epoch;         //  the epoch this process took the role at (0: none)
    uint64_t resigned_epoch;    //  we gave up the role at this epoch: never lead at it again
    uint64_t refused_epoch;     //  the last epoch we refused to lead at (logged once)
    uint64_t publish_count;     //  for the drop test switch
    char confirmed [CONFIRMED_MAX + 1];     //  the in-sync set the broker confirmed
    uint64_t confirmed_version; //  ...built from our report of this version
    uint64_t report_version;    //  our latest status report's version
    bool home;                  //  ours to write for good (an order node's own)
} part_t;

//  A snapshot being sent to one fetcher, from one read transaction, a
//  part per turn.  Where it stands is a key (and, in a sorted-duplicates
//  database, a value), not a cursor: a write between two turns may grow
//  the store's map, which moves every page (store.c)
typedef struct {
    bool active;
    char peer [BS_ID_MAX + 1];
    char partition [BS_ID_MAX + 1];
    uint8_t rid [BS_RID_SIZE];  //  of the fetch it answers
    size_t rid_size;
    role_t role;                //  the partition's role and epoch when it
    uint64_t part_epoch;        //  began: a change ends it
    MDB_txn *txn;
    uint64_t seq, epoch;        //  the snapshot's: its last entry
    int db;                     //  index in options.dbs
    bool positioned;            //  key (value) is the last record sent of db
    uint8_t key [512], value [512];     //  LMDB keys, and sorted duplicates, are at most 511 bytes
    size_t key_size, value_size;
    uint64_t records;           //  sent so far
    int parts;
} snap_stream_t;

struct _repl_t {
    journal_t *journal;
    repl_options_t options;
    repl_io_t io;
    char pub_endpoint [BS_ENDPOINT_MAX + 1], sync_endpoint [BS_ENDPOINT_MAX + 1];
    char id [BS_ID_MAX + 1];
    //  Grows as the broker's map does; each partition is allocated on its
    //  own, so pointers to it stay valid
    part_t **parts;
    int part_count, part_cap;
    int64_t next_beat;
    bool assigned;              //  the broker has sent us our roles
    bool batching;              //  between repl_batch_begin and repl_batch_end
    snap_stream_t streams [SNAP_STREAMS_MAX];
};

//  repl.c
part_t *repl_part (repl_t *self, const char *name, bool create);
uint64_t repl_epoch_at (repl_t *self, const char *partition, uint64_t seq);
bool repl_mark_whole (repl_t *self, part_t *part);
//  Encodes msg and hands it to send_sync (peer NULL) or answer
void repl_send_msg (repl_t *self, const char *endpoint, const char *server, bs_msg_t *msg);
void repl_answer_msg (repl_t *self, const char *peer, bs_msg_t *msg);

//  repl_primary.c
void repl_primary_release (repl_t *self, part_t *part);
void repl_primary_fail_pending (repl_t *self, part_t *part);
void repl_primary_evict (repl_t *self, part_t *part, int64_t now);
void repl_primary_heads (repl_t *self);
int repl_primary_insync_count (part_t *part);
//  Sends the next part of every snapshot under way; true while any is
bool repl_primary_stream (repl_t *self);
//  Ends every snapshot under way (repl_destroy)
void repl_primary_streams_end (repl_t *self);

//  repl_follower.c
void repl_follower_fetch (repl_t *self, part_t *part, int64_t now);
void repl_follower_ack (repl_t *self, part_t *part, int64_t now);
void repl_follower_advance (repl_t *self, part_t *part, int64_t now);
void repl_follower_clear (part_t *part);

#endif
