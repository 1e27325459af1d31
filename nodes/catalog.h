/*  catalog - the book catalog in LMDB: search, lookup, conditional stock
 *  decrement, price changes, restocks and new books.
 *
 *  Databases: books (item -> record), by_topic (topic -> item, dupsort, so
 *  a search reads only its topic), applied (request id -> reply, so that a
 *  retried write takes effect once) and meta (the write sequence number).
 *  Each write and its applied entry commit in one durable transaction.
 *  Every write bumps the sequence; a book's version is the sequence of its
 *  last change.
 *
 *  Ownership: catalog_new borrows the store, which must outlive the catalog.
 *  catalog_handle borrows the request and returns a reply the caller owns.
 */
#ifndef CATALOG_H_INCLUDED
#define CATALOG_H_INCLUDED

#include "bs_msg.h"
#include "store.h"

typedef struct _catalog_t catalog_t;

catalog_t *catalog_new (store_t *store);
void catalog_destroy (catalog_t **self_p);

//  Executes a validated catalog request and returns its reply
bs_msg_t *catalog_handle (catalog_t *self, const bs_msg_t *request);

//  Loads books from a ZPL file ("book" sections with item, title, topic,
//  cost, stock) when the catalog is empty.  Returns the number of books
//  loaded, 0 when the catalog already had books, -1 on error (logged).
int catalog_seed (catalog_t *self, const char *path);

//  Adds amount to the stock of every sold-out book; returns how many
int catalog_restock_sold_out (catalog_t *self, int64_t amount);

//  Writes a hex digest of every book record into hex[41]
void catalog_digest (catalog_t *self, char *hex);

//  The sequence number of the last write
uint64_t catalog_seq (catalog_t *self);

#endif
