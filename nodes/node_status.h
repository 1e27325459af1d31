/*  node_status - what a node tells the broker of itself: the node_status
 *  message every READY and heartbeat carries (id, service, replication
 *  roles and positions, digest, store identity, readiness).
 *
 *  Built in one place for the node's loop and the simulator's, so the
 *  broker the simulator checks hears exactly what a real node says.
 *
 *  Ownership: the journal and the replication core are borrowed; the
 *  encoded bytes returned belong to the caller (free).
 */
#ifndef NODE_STATUS_H_INCLUDED
#define NODE_STATUS_H_INCLUDED

#include "journal.h"
#include "repl.h"

//  version: the caller's wall-clock milliseconds, which version a
//  primary's report (they must grow across the node's restarts)
uint8_t *node_status_encode (const char *id, const char *service, repl_t *repl, journal_t *journal,
                             uint64_t version, size_t *size_p);

#endif
