/*  orders - the order book.
 *
 *  Replicated databases (through the journal, in this node's own order
 *  partition): orders (order id -> record; counted in the digest),
 *  by_request (request id -> the buy's reply, so a retried buy returns its
 *  first result) and by_item (item -> order id, dupsort).
 *
 *  An order is a pure function of the catalog's decrement reply and the
 *  request id, and its id is derived from the request id: any order node
 *  that records the same buy writes the very same records.  The order
 *  databases are therefore a grow-only set that every order node can merge
 *  in any order, which is what lets each node write its own partition.
 *
 *  Ownership: orders_new borrows the journal.  Replies belong to the caller.
 */
#ifndef ORDERS_H_INCLUDED
#define ORDERS_H_INCLUDED

#include "bs_msg.h"
#include "journal.h"

typedef struct _orders_t orders_t;

//  An order id: "o" and 16 bytes in hex (33 characters): the request id's
//  time prefix, then a one-way digest of the whole request id, which
//  cannot be read back from it
#define ORDERS_ID_BYTES 16
#define ORDERS_ID_SIZE  (2 + 2 * ORDERS_ID_BYTES)
void orders_id_for (const uint8_t *rid, char *order_id);

//  The databases an order snapshot carries (NULL-terminated)
extern const char *orders_dbs [];

orders_t *orders_new (journal_t *journal);
void orders_destroy (orders_t **self_p);

//  The stored reply of an earlier buy with this rid, or NULL
bs_msg_t *orders_find (orders_t *self, const uint8_t *rid, size_t rid_size);

//  Records the buy the catalog granted (decrement is the catalog's reply)
//  inside the caller's transaction, sealed into partition.  Returns the
//  buy's reply; on a storage error sets *rc_p (the caller aborts).
bs_msg_t *orders_record (orders_t *self, MDB_txn *txn, const char *partition,
                         const uint8_t *rid, size_t rid_size, const bs_msg_t *decrement, int *rc_p);

//  Lists orders in order id order (time order, for rids that start with
//  the time): every one (item 0) or those of one item;
//  after: only those after this order id (NULL: from the first); at most
//  limit (0 or more than ORDERS_LIST_MAX: ORDERS_LIST_MAX).  The reply's
//  "more" says whether orders remain after the last one listed.
#define ORDERS_LIST_MAX 20000
bs_msg_t *orders_list (orders_t *self, int64_t item, const char *after, int64_t limit);

#endif
