/*  election - who leads a partition, decided from the metadata the control
 *  plane (etcd) holds and what the live replicas report.
 *
 *  A partition's metadata is its epoch, its primary, its in-sync set and
 *  the first sequence number of the epoch.  The rules, in the order a
 *  reviewer would check them:
 *    - epochs only grow: every decision that names a primary raises it;
 *    - only a member of the stored in-sync set may be elected, and only
 *      the most advanced live one (highest epoch of its last entry, then
 *      highest seq; the smaller id on a tie, so two brokers deciding from
 *      the same facts decide alike);
 *    - no live member of the in-sync set: the partition waits, unless an
 *      operator asked for an unclean election, which takes the most
 *      advanced live replica and says how many entries may be lost;
 *    - the in-sync set never loses its primary, and never shrinks to
 *      nothing;
 *    - an election keeps the old in-sync set, the old primary included
 *      (the broker narrows it to what the new primary reports once that
 *      one has taken the role): if the new primary cannot lead after all,
 *      the old one is still electable.  An unclean election's set is the
 *      new primary alone.
 *  A decision is only a proposal: the broker writes it to etcd with a
 *  compare-and-swap on the revision it read, so of two brokers deciding at
 *  once, one wins and the other reads again.
 *
 *  A primary is a store, not a name: the meta records the identity of the
 *  elected primary's store, and a node that comes back under that name
 *  with another store (it lost its disk) is neither kept nor elected.
 *
 *  The metadata travels as a JSON object (the value etcd stores):
 *    {"epoch":3,"primary":"catalog-2","insync":["catalog-1","catalog-2"],
 *     "start_seq":1041,"primary_store":6254318864113871}
 *  (primary_store is left out when not recorded: meta written before it;
 *  "basis", the version of the primary's report the in-sync set was built
 *  from, is left out when 0).  A replica outside the in-sync set joins it
 *  only on a report newer than the basis: a report older than the set
 *  (it named a replica that has since been left out, and the primary has
 *  stopped waiting for it) never puts it back.
 *  election_meta_decode checks every field: a value that does not follow
 *  the rules above (a primary outside its in-sync set, a bad id) is
 *  refused, never half-believed.
 *
 *  Pure: no I/O, no clock, no allocation that outlives a call but the
 *  strings election_meta_encode returns (the caller frees them).
 */
#ifndef ELECTION_H_INCLUDED
#define ELECTION_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  A node id is 1..64 printable characters without commas or quotes
#define ELECTION_ID_MAX 64
//  The in-sync set holds at most this many replicas
#define ELECTION_REPLICAS_MAX 16

typedef struct {
    uint64_t epoch;                     //  0: never elected
    char primary [ELECTION_ID_MAX + 1]; //  "" while epoch is 0
    size_t insync_count;
    char insync [ELECTION_REPLICAS_MAX][ELECTION_ID_MAX + 1];
    uint64_t start_seq;                 //  the epoch's first sequence number
    uint64_t primary_store;             //  the elected primary's store
                                        //  identity (0: not recorded)
    uint64_t basis;                     //  the version of the primary's
                                        //  report the in-sync set was last
                                        //  built from (0: none this epoch)
} election_meta_t;

//  What a live replica reports of its log
typedef struct {
    const char *id;
    uint64_t last_epoch;                //  the epoch of its last entry
    uint64_t last_seq;                  //  its last entry's seq (0: empty)
    uint64_t store;                     //  its store's identity (0: unknown)
    bool resigned;                      //  it will not lead at the stored
                                        //  epoch again: not kept, but
                                        //  electable at the next
} election_candidate_t;

typedef enum {
    ELECTION_KEEP,          //  the primary is alive: nothing to change
    ELECTION_ELECT,         //  next holds a new primary at a higher epoch
    ELECTION_WAIT           //  no live member of the in-sync set: wait
} election_verdict_t;

//  True when id is a valid node id
bool election_id_valid (const char *id);

//  True when id is in the meta's in-sync set
bool election_insync_has (const election_meta_t *meta, const char *id);

//  Decides from the stored meta and the live replicas (count of them, ids
//  distinct).  On ELECTION_ELECT, *next is the meta to write; otherwise it
//  is a copy of *meta.  With unclean, a partition with no live in-sync
//  member elects its most advanced live replica instead of waiting: every
//  entry the old in-sync set acknowledged after that replica's last seq
//  is lost, which is why only an operator asks for it.
election_verdict_t election_decide (const election_meta_t *meta,
                                    const election_candidate_t *live, size_t count,
                                    bool unclean, election_meta_t *next);

//  The in-sync set without follower (false, *next unchanged copy, when it
//  is the primary or not a member)
bool election_shrink (const election_meta_t *meta, const char *follower, election_meta_t *next);

//  The in-sync set with follower (false when it is already a member, the
//  set is full, or the id is not valid)
bool election_expand (const election_meta_t *meta, const char *follower, election_meta_t *next);

//  The meta as JSON text (the caller frees it with free)
char *election_meta_encode (const election_meta_t *meta);

//  An operator's request for an unclean election, stored beside the meta
//  (<partition key>/unclean) as {"epoch":N}: it holds only while the meta
//  is still at epoch N, so a request an election has answered, or one
//  made before another broker elected someone, never forces a second.
//  The caller frees what encode returns; decode refuses anything else.
char *election_unclean_encode (uint64_t epoch);
bool election_unclean_decode (const char *text, uint64_t *epoch, char *reason, size_t reason_size);

//  Parses and checks a stored value.  Returns false, with a sentence in
//  reason (of reason_size bytes), when it is not a valid meta.
bool election_meta_decode (const char *text, election_meta_t *meta,
                           char *reason, size_t reason_size);

#endif
