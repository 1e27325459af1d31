/*  catalog - the book catalog: search, lookup, conditional stock decrement,
 *  price changes, restocks and new books.
 *
 *  Replicated databases (through the journal, partition "catalog"): books
 *  (item -> record; counted in the digest), by_topic (topic -> item,
 *  dupsort, so a search reads only its topic) and applied (request id ->
 *  reply, so a retried write takes effect once).  A book's version is the
 *  sequence number of the log entry that last changed it.
 *
 *  A decrement is the commit point of a buy: its reply carries the order
 *  that the order node records (order_id derived from the request id, the
 *  time, the price), so any order node that records the buy writes the same
 *  order.
 *
 *  Ownership: catalog_new borrows the journal, which must outlive it.
 *  Replies returned belong to the caller.
 */
#ifndef CATALOG_H_INCLUDED
#define CATALOG_H_INCLUDED

#include "bs_msg.h"
#include "journal.h"

#include <czmq.h>

#define CATALOG_PARTITION "catalog"

typedef struct _catalog_t catalog_t;

catalog_t *catalog_new (journal_t *journal);
void catalog_destroy (catalog_t **self_p);

//  The databases a catalog snapshot carries (NULL-terminated)
extern const char *catalog_dbs [];

//  Answers a read (search, lookup, list) from committed data.  The reply's
//  seq is the catalog sequence number the data was read at.
bs_msg_t *catalog_read (catalog_t *self, const bs_msg_t *request);

//  Executes a write inside the caller's write transaction and seals its log
//  entry.  A retried rid returns the first reply and changes nothing.  On a
//  storage error *rc_p is set: the caller must abort the transaction.
bs_msg_t *catalog_write (catalog_t *self, MDB_txn *txn, const bs_msg_t *request, int *rc_p);

//  The invalidate message for every item (and its topic) that writes
//  changed since the last call, at version, or NULL when none changed.
//  Call it before committing (send it, or drop it when the writes fail).
bs_msg_t *catalog_invalidation (catalog_t *self, uint64_t version);

//  True when the catalog holds no book
bool catalog_empty (catalog_t *self);

//  Reads the initial catalog (ZPL, "book" sections with item, title, topic,
//  cost, stock) as add_book requests appended to list.  Returns the number
//  read or -1 (logged) when the file is missing or malformed.
int catalog_seed_requests (const char *path, zlistx_t *list);

//  Appends restock requests (amount copies) for every sold-out book
void catalog_sold_out_requests (catalog_t *self, int64_t amount, zlistx_t *list);

#endif
