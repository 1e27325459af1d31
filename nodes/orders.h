/*  orders - the order book in LMDB.
 *
 *  Databases: orders (order id -> record: order_id, item, rid, time, status),
 *  by_request (request id -> the buy's reply, so a retried buy returns its
 *  first result), by_item (item -> order id, dupsort, for filtered listings)
 *  and meta (the next order number).  An order and its by_request entry
 *  commit in one durable transaction.
 *
 *  Ownership: orders_new borrows the store, which must outlive it.  Returned
 *  replies belong to the caller.
 */
#ifndef ORDERS_H_INCLUDED
#define ORDERS_H_INCLUDED

#include "bs_msg.h"
#include "store.h"

typedef struct _orders_t orders_t;

//  node_id prefixes order ids so that ids from different nodes never clash
orders_t *orders_new (store_t *store, const char *node_id);
void orders_destroy (orders_t **self_p);

//  The stored reply of an earlier buy with this rid, or NULL
bs_msg_t *orders_find (orders_t *self, const uint8_t *rid, size_t rid_size);

//  Records a successful buy of item (the catalog already took the copy)
//  and returns the buy's reply {ok, order_id, item, ...}; on a storage error
//  returns an error reply and records nothing.
bs_msg_t *orders_record (orders_t *self, const uint8_t *rid, size_t rid_size,
                         int64_t item, int64_t cost);

//  Lists orders, every one or those of one item (item 0)
bs_msg_t *orders_list (orders_t *self, int64_t item);

//  Hex digest of every order record into hex[41]
void orders_digest (orders_t *self, char *hex);

#endif
