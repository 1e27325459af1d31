/*  fuzz_node - the nodes' request handlers on arbitrary requests.
 *
 *  The input is a sequence of frames (fuzzing.h), each one request body as
 *  a node receives it from the broker.  Each is decoded and validated as
 *  nodes/node.c does, then executed the way a node executes it:
 *
 *  - catalog reads (search, lookup, list) by catalog_read, at once;
 *  - catalog writes (decrement, set_price, restock, add_book) queued and
 *    run together by catalog_write in one write transaction (group commit),
 *    with the cache invalidation made before the commit, when a frame's
 *    flag is set, sixteen are queued, or the input ends;
 *  - buys as an order node runs them: orders_find, else a decrement with
 *    the buy's rid in the catalog's next batch, and when it is granted,
 *    orders_record in the order store;
 *  - order listings by orders_list.
 *
 *  The stores are LMDB environments in a temporary folder, made once per
 *  process: the catalog primary, a follower that applies every log entry
 *  the primary seals, and an order node.  Before each input they are put
 *  back to the seed catalog (etc/catalog.cfg) through the snapshot path
 *  (journal_reset, journal_finish_snapshot), so an input's outcome does not
 *  depend on the inputs before it.
 *
 *  A model of the catalog (books, stock, the first reply of each rid) and
 *  of the orders is kept beside them.  Invariants, after every request and
 *  every input:
 *
 *  - every reply and every invalidation is a message a client or the
 *    broker can decode; invalidations name every book a batch changed;
 *  - each reply is what the model says: stock never negative nor above its
 *    limit, never sold out of nothing, a retried rid answered with its
 *    first reply and changing nothing, one order per bought rid;
 *  - the stores hold exactly the model's books and orders, every record
 *    decodes, and by_topic matches the books;
 *  - the follower's digest, sequence number and every read equal the
 *    primary's.
 */
#include "bs_msg.h"
#include "catalog.h"
#include "fuzzing.h"
#include "journal.h"
#include "orders.h"
#include "store.h"

#include <czmq.h>
#include <string.h>

#define MAP_SIZE (256 * 1024 * 1024)
#define MAX_FRAMES 64
#define MAX_QUEUED 16
#define MAX_BOOKS 128
#define STOCK_MAX 1000000000
#define ORDER_PARTITION "order-1.f0221e"

typedef struct {
    int64_t item, cost, stock;
    char topic [65], title [201];
} book_t;

typedef struct {
    uint8_t rid [BS_RID_SIZE];
    uint8_t *reply;             //  the first reply, encoded (without rid)
    size_t size;
} applied_t;

typedef struct {
    uint8_t rid [BS_RID_SIZE];
    char order_id [ORDERS_ID_SIZE];
    int64_t item;
} order_t;

typedef struct {
    bs_msg_t *request;          //  a catalog write, or a buy's decrement
    bool buy;
} queued_t;

//  The stores, made once
static char s_dir [256];
static store_t *s_store, *s_follower_store, *s_order_store;
static journal_t *s_journal, *s_follower_journal, *s_order_journal;
static catalog_t *s_catalog, *s_follower;
static orders_t *s_orders;
static zlistx_t *s_seed;                //  add_book requests of the seed
static bool s_dirty = true;             //  an input changed the stores

//  The model of one input
static book_t s_books [MAX_BOOKS];
static size_t s_book_count;
static applied_t s_applied [MAX_FRAMES * 2 + 16];
static applied_t s_seed_applied [16];   //  the seed's writes: fixed rids, first replies
static size_t s_seed_count;
static size_t s_applied_count;
static order_t s_orders_made [MAX_FRAMES];
static size_t s_order_count;
static queued_t s_queue [MAX_QUEUED];
static size_t s_queued;

//  --------------------------------------------------------------------------
//  The model

static book_t *
s_book (int64_t item)
{
    for (size_t i = 0; i < s_book_count; i++)
        if (s_books [i].item == item)
            return &s_books [i];
    return NULL;
}

static void
s_model_add (const bs_msg_t *request)
{
    FUZZ_CHECK (s_book_count < MAX_BOOKS);
    book_t *book = &s_books [s_book_count++];
    book->item = bs_msg_int (request, BS_FIELD_item);
    book->cost = bs_msg_int (request, BS_FIELD_cost);
    book->stock = bs_msg_int (request, BS_FIELD_stock);
    snprintf (book->topic, sizeof book->topic, "%s", bs_msg_str (request, BS_FIELD_topic));
    snprintf (book->title, sizeof book->title, "%s", bs_msg_str (request, BS_FIELD_title));
}

//  A reply (or a listed book) shows the model's book
static bool
s_shows (const bs_msg_t *reply, const book_t *book, bool with_topic)
{
    return bs_msg_int (reply, BS_FIELD_item) == book->item
        && bs_msg_int (reply, BS_FIELD_cost) == book->cost
        && bs_msg_int (reply, BS_FIELD_stock) == book->stock
        && strcmp (bs_msg_str (reply, BS_FIELD_title), book->title) == 0
        && (!with_topic || strcmp (bs_msg_str (reply, BS_FIELD_topic), book->topic) == 0);
}

static bool
s_is_error (const bs_msg_t *reply, bs_err_t err)
{
    return !bs_msg_int (reply, BS_FIELD_ok) && strcmp (bs_msg_str (reply, BS_FIELD_error), bs_err_name (err)) == 0;
}

//  A reply as the node sends it: with the request's rid, and decodable
static void
s_check_sendable (bs_msg_t *reply, const bs_msg_t *request)
{
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    if (rid)
        bs_msg_set_bin (reply, BS_FIELD_rid, rid, rid_size);
    size_t size;
    uint8_t *data = bs_msg_encode (reply, &size);
    bs_err_t err;
    char reason [160];
    bs_msg_t *copy = bs_msg_decode (data, size, &err, reason, sizeof reason);
    if (!copy)
        fprintf (stderr, "fuzz: a reply the client cannot decode: %s\n", reason);
    FUZZ_CHECK (copy);
    FUZZ_CHECK (bs_msg_has (copy, BS_FIELD_ok));
    FUZZ_CHECK (bs_msg_int (copy, BS_FIELD_ok) || (bs_msg_has (copy, BS_FIELD_error) && bs_msg_has (copy, BS_FIELD_message)));
    bs_msg_destroy (&copy);
    free (data);
}

//  Checks a catalog write's reply against the model, and applies it
static void
s_model_write (const bs_msg_t *request, const bs_msg_t *reply)
{
    size_t rid_size, size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    FUZZ_CHECK (rid && rid_size == BS_RID_SIZE);
    uint8_t *data = bs_msg_encode (reply, &size);
    //  A retried rid: the first reply, and nothing changes
    for (size_t i = 0; i < s_applied_count; i++)
        if (memcmp (s_applied [i].rid, rid, BS_RID_SIZE) == 0) {
            FUZZ_CHECK (size == s_applied [i].size && memcmp (data, s_applied [i].reply, size) == 0);
            free (data);
            return;
        }
    FUZZ_CHECK (s_applied_count < sizeof s_applied / sizeof s_applied [0]);
    applied_t *applied = &s_applied [s_applied_count++];
    memcpy (applied->rid, rid, BS_RID_SIZE);
    applied->reply = data;
    applied->size = size;

    bs_op_t op = bs_msg_op (request);
    int64_t item = bs_msg_int (request, BS_FIELD_item);
    book_t *book = s_book (item);
    if (op == BS_OP_add_book) {
        if (book) {
            FUZZ_CHECK (s_is_error (reply, BS_ERR_exists));
            return;
        }
        s_model_add (request);
        book = s_book (item);
    }
    else
    if (!book) {
        FUZZ_CHECK (s_is_error (reply, BS_ERR_unknown_item));
        return;
    }
    else
    if (op == BS_OP_decrement) {
        if (book->stock == 0) {
            FUZZ_CHECK (s_is_error (reply, BS_ERR_out_of_stock));
            return;
        }
        book->stock--;
        char order_id [ORDERS_ID_SIZE];
        orders_id_for (rid, order_id);
        FUZZ_CHECK (strcmp (bs_msg_str (reply, BS_FIELD_order_id), order_id) == 0);
        FUZZ_CHECK (bs_msg_has (reply, BS_FIELD_time));
    }
    else
    if (op == BS_OP_set_price)
        book->cost = bs_msg_int (request, BS_FIELD_cost);
    else {
        FUZZ_CHECK (op == BS_OP_restock);
        int64_t count = bs_msg_int (request, BS_FIELD_count);
        if (book->stock + count > STOCK_MAX) {
            FUZZ_CHECK (s_is_error (reply, BS_ERR_bad_field));
            return;
        }
        book->stock += count;
    }
    FUZZ_CHECK (bs_msg_int (reply, BS_FIELD_ok));
    FUZZ_CHECK (book->stock >= 0 && book->stock <= STOCK_MAX);
    if (!s_shows (reply, book, true)) {
        char *json = bs_msg_to_json (reply);
        fprintf (stderr, "fuzz: the reply %s is not the model's book %lld: cost %lld, stock %lld, '%s', '%s'\n",
                 json, (long long) book->item, (long long) book->cost, (long long) book->stock, book->title, book->topic);
        free (json);
    }
    FUZZ_CHECK (s_shows (reply, book, true));
}

//  --------------------------------------------------------------------------
//  The stores

//  Applies the entries the primary's last commit sealed to the follower
static void
s_ship (void)
{
    size_t count = journal_sealed (s_journal);
    if (count == 0)
        return;
    MDB_txn *txn = journal_begin (s_follower_journal);
    FUZZ_CHECK (txn);
    for (size_t i = 0; i < count; i++) {
        size_t size;
        uint64_t seq;
        const char *partition;
        const uint8_t *data = journal_sealed_at (s_journal, i, &size, &seq, &partition);
        FUZZ_CHECK (data && strcmp (partition, CATALOG_PARTITION) == 0);
        bs_entry_t *entry = bs_entry_parse (data, size);
        FUZZ_CHECK (entry);
        FUZZ_CHECK (bs_entry_seq (entry) == seq && seq == journal_next_seq (s_follower_journal, partition));
        FUZZ_CHECK (journal_apply (s_follower_journal, txn, entry, data, size) == 0);
        bs_entry_destroy (&entry);
    }
    FUZZ_CHECK (journal_commit (s_follower_journal, txn) == 0);
}

//  Drops a partition's databases and log inside a fresh transaction
static MDB_txn *
s_reset_partition (journal_t *journal, const char *partition, const char **dbs)
{
    MDB_txn *txn = journal_begin (journal);
    FUZZ_CHECK (txn);
    FUZZ_CHECK (journal_reset (journal, txn, partition, dbs, true) == 0);
    FUZZ_CHECK (journal_finish_snapshot (journal, txn, partition, 1, 0) == 0);
    return txn;
}

//  The rest of a reset: the primary's commit, the follower and the orders
static void
s_reset_stores (MDB_txn *txn)
{
    bs_msg_t *invalidation = catalog_invalidation (s_catalog, journal_next_seq (s_journal, CATALOG_PARTITION) - 1);
    bs_msg_destroy (&invalidation);
    FUZZ_CHECK (journal_commit (s_journal, txn) == 0);
    FUZZ_CHECK (journal_commit (s_follower_journal,
                s_reset_partition (s_follower_journal, CATALOG_PARTITION, catalog_dbs)) == 0);
    s_ship ();
    FUZZ_CHECK (journal_commit (s_order_journal,
                s_reset_partition (s_order_journal, ORDER_PARTITION, orders_dbs)) == 0);
    s_dirty = false;
}

//  Puts every store back to the seed catalog and no orders
static void
s_reset (void)
{
    s_book_count = 0;
    for (size_t i = 0; i < s_applied_count; i++)
        free (s_applied [i].reply);
    s_applied_count = 0;
    s_order_count = 0;
    for (bs_msg_t *request = zlistx_first (s_seed); request; request = zlistx_next (s_seed))
        s_model_add (request);
    if (s_dirty) {
        MDB_txn *txn = s_reset_partition (s_journal, CATALOG_PARTITION, catalog_dbs);
        s_seed_count = 0;
        for (bs_msg_t *request = zlistx_first (s_seed); request; request = zlistx_next (s_seed)) {
            int rc;
            bs_msg_t *reply = catalog_write (s_catalog, txn, request, &rc);
            FUZZ_CHECK (rc == 0 && reply && bs_msg_int (reply, BS_FIELD_ok));
            //  The seed's rids are in the store's applied table too (and
            //  inputs find them: libFuzzer learns compared bytes)
            FUZZ_CHECK (s_seed_count < sizeof s_seed_applied / sizeof s_seed_applied [0]);
            applied_t *applied = &s_seed_applied [s_seed_count++];
            free (applied->reply);
            memcpy (applied->rid, bs_msg_bin (request, BS_FIELD_rid, NULL), BS_RID_SIZE);
            applied->reply = bs_msg_encode (reply, &applied->size);
            bs_msg_destroy (&reply);
        }
        s_reset_stores (txn);
    }
    for (size_t i = 0; i < s_seed_count; i++) {
        applied_t *applied = &s_applied [s_applied_count++];
        *applied = s_seed_applied [i];
        applied->reply = malloc (applied->size);
        FUZZ_CHECK (applied->reply);
        memcpy (applied->reply, s_seed_applied [i].reply, applied->size);
    }
}

static store_t *
s_open_store (const char *name)
{
    char path [300];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    store_t *store = store_new (path, MAP_SIZE / 4, MAP_SIZE);
    FUZZ_CHECK (store);
    //  Durability is not what is tested here: commits skip fsync
    mdb_env_set_flags (store_env (store), MDB_NOSYNC, 1);
    return store;
}

static void
s_cleanup (void)
{
    for (size_t i = 0; i < s_applied_count; i++)
        free (s_applied [i].reply);
    s_applied_count = 0;
    for (size_t i = 0; i < s_seed_count; i++)
        free (s_seed_applied [i].reply);
    s_seed_count = 0;
    catalog_destroy (&s_catalog);
    catalog_destroy (&s_follower);
    orders_destroy (&s_orders);
    journal_destroy (&s_journal);
    journal_destroy (&s_follower_journal);
    journal_destroy (&s_order_journal);
    store_destroy (&s_store);
    store_destroy (&s_follower_store);
    store_destroy (&s_order_store);
    bs_msg_t *request;
    while ((request = zlistx_detach (s_seed, NULL)))
        bs_msg_destroy (&request);
    zlistx_destroy (&s_seed);
    zdir_t *dir = zdir_new (s_dir, NULL);
    if (dir) {
        zdir_remove (dir, true);
        zdir_destroy (&dir);
    }
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc, (void) argv;
    //  libFuzzer keeps its own signal handlers, and the modules' logs (a
    //  refused write is logged) would drown its output
    zsys_handler_set (NULL);
    zsys_init ();
    if (!getenv ("FUZZ_VERBOSE"))
        zsys_set_logstream (fopen ("/dev/null", "w"));
    const char *tmp = getenv ("TMPDIR");
    snprintf (s_dir, sizeof s_dir, "%s/bookstore-fuzz-node.XXXXXX", tmp && *tmp? tmp: "/tmp");
    FUZZ_CHECK (mkdtemp (s_dir));
    s_store = s_open_store ("catalog-1");
    s_follower_store = s_open_store ("catalog-2");
    s_order_store = s_open_store ("order-1");
    s_journal = journal_new (s_store);
    s_follower_journal = journal_new (s_follower_store);
    s_order_journal = journal_new (s_order_store);
    FUZZ_CHECK (s_journal && s_follower_journal && s_order_journal);
    s_catalog = catalog_new (s_journal);
    s_follower = catalog_new (s_follower_journal);
    s_orders = orders_new (s_order_journal);
    FUZZ_CHECK (s_catalog && s_follower && s_orders);
    s_seed = zlistx_new ();
    const char *seed = getenv ("FUZZ_SEED_CATALOG");
    FUZZ_CHECK (catalog_seed_requests (seed? seed: FUZZ_SEED_FILE, s_seed) > 0);
    //  Fixed rids, so that an input does the same in every process
    int n = 0;
    for (bs_msg_t *request = zlistx_first (s_seed); request; request = zlistx_next (s_seed)) {
        uint8_t rid [BS_RID_SIZE];
        snprintf ((char *) rid, sizeof rid, "seed-rid-%06d", n++);
        bs_msg_set_bin (request, BS_FIELD_rid, rid, sizeof rid);
    }
    atexit (s_cleanup);
    return 0;
}

//  --------------------------------------------------------------------------
//  Requests

//  An invalidation must be one the broker takes, naming every changed book
static void
s_check_invalidation (bs_msg_t *invalidation, const book_t *before, size_t before_count)
{
    size_t size;
    uint8_t *data = bs_msg_encode (invalidation, &size);
    bs_err_t err;
    bs_msg_t *copy = bs_msg_decode (data, size, &err, NULL, 0);
    FUZZ_CHECK (copy && bs_msg_validate_request (copy, NULL, 0) == BS_OK && bs_msg_op (copy) == BS_OP_invalidate);
    FUZZ_CHECK ((uint64_t) bs_msg_int (copy, BS_FIELD_version) == journal_next_seq (s_journal, CATALOG_PARTITION) - 1);
    for (size_t i = 0; i < bs_msg_count (copy, BS_FIELD_items); i++) {
        bs_msg_t *key = bs_msg_at (copy, BS_FIELD_items, i);
        FUZZ_CHECK (bs_msg_has (key, BS_FIELD_item) || bs_msg_has (key, BS_FIELD_topic));
    }
    //  Every book that differs from before the batch is named, with its topic
    for (size_t b = 0; b < s_book_count; b++) {
        const book_t *book = &s_books [b];
        bool changed = true;
        for (size_t k = 0; k < before_count; k++)
            if (before [k].item == book->item)
                changed = memcmp (&before [k], book, sizeof *book) != 0;
        if (!changed)
            continue;
        bool item = false, topic = false;
        for (size_t i = 0; i < bs_msg_count (copy, BS_FIELD_items); i++) {
            bs_msg_t *key = bs_msg_at (copy, BS_FIELD_items, i);
            item |= bs_msg_has (key, BS_FIELD_item) && bs_msg_int (key, BS_FIELD_item) == book->item;
            topic |= bs_msg_has (key, BS_FIELD_topic) && strcmp (bs_msg_str (key, BS_FIELD_topic), book->topic) == 0;
        }
        FUZZ_CHECK (item && topic);
    }
    bs_msg_destroy (&copy);
    free (data);
}

//  The catalog granted (or refused) a buy: record it as the order node does
static void
s_grant (const bs_msg_t *decrement, const bs_msg_t *grant)
{
    if (!bs_msg_int (grant, BS_FIELD_ok))
        return;             //  the buyer answers the refusal
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (decrement, BS_FIELD_rid, &rid_size);
    MDB_txn *txn = journal_begin (s_order_journal);
    FUZZ_CHECK (txn);
    int rc;
    bs_msg_t *reply = orders_record (s_orders, txn, ORDER_PARTITION, rid, rid_size, grant, &rc);
    FUZZ_CHECK (reply);
    if (rc != 0) {
        //  Known bug (tests/fuzz/crashes/fuzz_node/rid_reused_by_buy): the
        //  buy's rid was first used by another catalog write, whose stored
        //  reply the buyer takes for a grant; it grants no order, and
        //  recording one fails as a storage error
        FUZZ_CHECK (!bs_msg_has (grant, BS_FIELD_order_id));
        FUZZ_CHECK (s_is_error (reply, BS_ERR_storage));
        FUZZ_CHECK (fuzz_known ("buyer-takes-any-ok-as-grant"));
        journal_abort (s_order_journal, txn);
        bs_msg_destroy (&reply);
        return;
    }
    FUZZ_CHECK (journal_commit (s_order_journal, txn) == 0);
    FUZZ_CHECK (bs_msg_int (reply, BS_FIELD_ok));
    const char *order_id = bs_msg_str (reply, BS_FIELD_order_id);
    FUZZ_CHECK (strcmp (order_id, bs_msg_str (grant, BS_FIELD_order_id)) == 0);
    bool known = false;
    for (size_t i = 0; i < s_order_count; i++)
        if (memcmp (s_orders_made [i].rid, rid, BS_RID_SIZE) == 0) {
            FUZZ_CHECK (strcmp (s_orders_made [i].order_id, order_id) == 0);
            known = true;
        }
    if (!known) {
        FUZZ_CHECK (s_order_count < MAX_FRAMES);
        order_t *order = &s_orders_made [s_order_count++];
        memcpy (order->rid, rid, BS_RID_SIZE);
        snprintf (order->order_id, sizeof order->order_id, "%s", order_id);
        order->item = bs_msg_int (reply, BS_FIELD_item);
    }
    s_check_sendable (reply, decrement);
    bs_msg_destroy (&reply);
}

//  Runs the queued writes in one transaction, as a node's group commit
static void
s_flush (void)
{
    if (s_queued == 0)
        return;
    s_dirty = true;
    book_t before [MAX_BOOKS];
    size_t before_count = s_book_count;
    memcpy (before, s_books, sizeof (book_t) * s_book_count);
    bs_msg_t *replies [MAX_QUEUED];
    MDB_txn *txn = journal_begin (s_journal);
    FUZZ_CHECK (txn);
    for (size_t i = 0; i < s_queued; i++) {
        int rc = -1;
        replies [i] = catalog_write (s_catalog, txn, s_queue [i].request, &rc);
        FUZZ_CHECK (rc == 0 && replies [i]);
        s_model_write (s_queue [i].request, replies [i]);
    }
    bs_msg_t *invalidation = catalog_invalidation (s_catalog, journal_next_seq (s_journal, CATALOG_PARTITION) - 1);
    if (invalidation)
        s_check_invalidation (invalidation, before, before_count);
    else
        FUZZ_CHECK (before_count == s_book_count && memcmp (before, s_books, sizeof (book_t) * s_book_count) == 0);
    bs_msg_destroy (&invalidation);
    FUZZ_CHECK (journal_commit (s_journal, txn) == 0);
    s_ship ();
    for (size_t i = 0; i < s_queued; i++) {
        if (s_queue [i].buy)
            s_grant (s_queue [i].request, replies [i]);
        else
            s_check_sendable (replies [i], s_queue [i].request);
        bs_msg_destroy (&replies [i]);
        bs_msg_destroy (&s_queue [i].request);
    }
    s_queued = 0;
}

static void
s_queue_write (bs_msg_t *request, bool buy)
{
    if (s_queued == MAX_QUEUED)
        s_flush ();
    s_queue [s_queued].request = request;
    s_queue [s_queued].buy = buy;
    s_queued++;
}

//  A catalog read, on the primary and the follower: equal, and as the model
static void
s_read (const bs_msg_t *request)
{
    bs_msg_t *reply = catalog_read (s_catalog, request);
    bs_msg_t *follower = catalog_read (s_follower, request);
    FUZZ_CHECK (reply && follower);
    FUZZ_CHECK ((uint64_t) bs_msg_int (reply, BS_FIELD_seq) == journal_seq (s_journal, CATALOG_PARTITION));
    size_t size, follower_size;
    uint8_t *data = bs_msg_encode (reply, &size);
    uint8_t *follower_data = bs_msg_encode (follower, &follower_size);
    FUZZ_CHECK (size == follower_size && memcmp (data, follower_data, size) == 0);
    free (data);
    free (follower_data);
    bs_op_t op = bs_msg_op (request);
    if (op == BS_OP_lookup) {
        book_t *book = s_book (bs_msg_int (request, BS_FIELD_item));
        FUZZ_CHECK (book? bs_msg_int (reply, BS_FIELD_ok) && s_shows (reply, book, true)
                        : s_is_error (reply, BS_ERR_unknown_item));
    }
    else {
        const char *topic = op == BS_OP_search? bs_msg_str (request, BS_FIELD_topic): NULL;
        FUZZ_CHECK (bs_msg_int (reply, BS_FIELD_ok));
        size_t expected = 0;
        for (size_t b = 0; b < s_book_count; b++)
            if (!topic || strcmp (s_books [b].topic, topic) == 0)
                expected++;
        FUZZ_CHECK (bs_msg_count (reply, BS_FIELD_items) == expected);
        for (size_t i = 0; i < expected; i++) {
            bs_msg_t *listed = bs_msg_at (reply, BS_FIELD_items, i);
            book_t *book = s_book (bs_msg_int (listed, BS_FIELD_item));
            FUZZ_CHECK (book && s_shows (listed, book, !topic));
            FUZZ_CHECK (!topic || strcmp (book->topic, topic) == 0);
        }
    }
    s_check_sendable (reply, request);
    bs_msg_destroy (&reply);
    bs_msg_destroy (&follower);
}

//  A buy: answered from the orders when its rid bought before, else its
//  decrement joins the catalog's next batch
static void
s_buy (bs_msg_t *request)
{
    size_t rid_size;
    const uint8_t *rid = bs_msg_bin (request, BS_FIELD_rid, &rid_size);
    bs_msg_t *known = orders_find (s_orders, rid, rid_size);
    if (known) {
        bool modelled = false;
        for (size_t i = 0; i < s_order_count; i++)
            modelled |= memcmp (s_orders_made [i].rid, rid, BS_RID_SIZE) == 0
                     && strcmp (s_orders_made [i].order_id, bs_msg_str (known, BS_FIELD_order_id)) == 0;
        FUZZ_CHECK (modelled && bs_msg_int (known, BS_FIELD_ok));
        s_check_sendable (known, request);
        bs_msg_destroy (&known);
        bs_msg_destroy (&request);
        return;
    }
    bs_msg_t *decrement = bs_msg_new ();
    bs_msg_set_str (decrement, BS_FIELD_op, bs_op_name (BS_OP_decrement));
    bs_msg_set_bin (decrement, BS_FIELD_rid, rid, rid_size);
    bs_msg_set_int (decrement, BS_FIELD_item, bs_msg_int (request, BS_FIELD_item));
    bs_msg_destroy (&request);
    s_queue_write (decrement, true);
}

//  LMDB's order of keys: bytes, then the shorter first
static int
s_key_cmp (const char *a, const char *b)
{
    size_t na = strlen (a), nb = strlen (b);
    int c = memcmp (a, b, na < nb? na: nb);
    return c? c: (na > nb) - (na < nb);
}

static void
s_orders_list (const bs_msg_t *request)
{
    int64_t item = bs_msg_has (request, BS_FIELD_item)? bs_msg_int (request, BS_FIELD_item): 0;
    const char *after = bs_msg_has (request, BS_FIELD_after)? bs_msg_str (request, BS_FIELD_after): NULL;
    int64_t limit = bs_msg_has (request, BS_FIELD_limit)? bs_msg_int (request, BS_FIELD_limit): 0;
    bs_msg_t *reply = orders_list (s_orders, item, after, limit);
    FUZZ_CHECK (reply && bs_msg_int (reply, BS_FIELD_ok));
    //  The model: the orders of the item after the mark, the first limit
    //  of them, in order id order
    size_t matching = 0;
    for (size_t i = 0; i < s_order_count; i++)
        matching += (item == 0 || s_orders_made [i].item == item)
                 && (!after || s_key_cmp (s_orders_made [i].order_id, after) > 0);
    size_t cap = limit > 0 && limit < ORDERS_LIST_MAX? (size_t) limit: ORDERS_LIST_MAX;
    size_t expected = matching < cap? matching: cap;
    FUZZ_CHECK (bs_msg_count (reply, BS_FIELD_orders) == expected);
    FUZZ_CHECK (!!bs_msg_int (reply, BS_FIELD_more) == (matching > expected));
    const char *previous = after;
    for (size_t i = 0; i < bs_msg_count (reply, BS_FIELD_orders); i++) {
        bs_msg_t *order = bs_msg_at (reply, BS_FIELD_orders, i);
        FUZZ_CHECK (item == 0 || bs_msg_int (order, BS_FIELD_item) == item);
        const char *id = bs_msg_str (order, BS_FIELD_order_id);
        FUZZ_CHECK (!previous || s_key_cmp (id, previous) > 0);
        previous = id;
        size_t rid_size;
        const uint8_t *rid = bs_msg_bin (order, BS_FIELD_rid, &rid_size);
        bool found = false;
        for (size_t k = 0; k < s_order_count && rid_size == BS_RID_SIZE; k++)
            found |= memcmp (s_orders_made [k].rid, rid, BS_RID_SIZE) == 0
                  && strcmp (s_orders_made [k].order_id, id) == 0;
        FUZZ_CHECK (found);
    }
    s_check_sendable (reply, request);
    bs_msg_destroy (&reply);
}

//  One request body, as a node's s_handle takes it
static void
s_request (const uint8_t *data, size_t size)
{
    char reason [160];
    bs_err_t err;
    bs_msg_t *request = bs_msg_decode (data, size, &err, reason, sizeof reason);
    if (request)
        err = bs_msg_validate_request (request, reason, sizeof reason);
    bs_op_t op = request? bs_msg_op (request): BS_OP_COUNT;
    if (err != BS_OK || bs_op_kind (op) == BS_KIND_CONTROL
    ||  (strcmp (bs_op_service (op), "catalog") != 0 && strcmp (bs_op_service (op), "order") != 0)) {
        //  The node answers an error, which the client must be able to read
        bs_msg_t *reply = bs_msg_new_error (err != BS_OK? err: BS_ERR_unknown_op, err != BS_OK? reason: NULL);
        s_check_sendable (reply, request? request: reply);
        bs_msg_destroy (&reply);
        bs_msg_destroy (&request);
        return;
    }
    if (op == BS_OP_buy)
        s_buy (request);
    else
    if (op == BS_OP_orders) {
        s_orders_list (request);
        bs_msg_destroy (&request);
    }
    else
    if (bs_op_kind (op) == BS_KIND_WRITE)
        s_queue_write (request, false);
    else {
        s_read (request);
        bs_msg_destroy (&request);
    }
}

//  The stores hold exactly the model
static void
s_check_stores (void)
{
    MDB_dbi books, by_topic, orders_db;
    FUZZ_CHECK (journal_dbi (s_journal, "books", &books, NULL) && journal_dbi (s_journal, "by_topic", &by_topic, NULL));
    FUZZ_CHECK (journal_dbi (s_order_journal, "orders", &orders_db, NULL));
    MDB_txn *txn = store_begin (s_store, false);
    FUZZ_CHECK (txn);
    MDB_cursor *cursor;
    MDB_val key, value;
    size_t count = 0;
    FUZZ_CHECK (mdb_cursor_open (txn, books, &cursor) == 0);
    int rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT), count++) {
        bs_err_t err;
        bs_msg_t *record = bs_msg_decode (value.mv_data, value.mv_size, &err, NULL, 0);
        FUZZ_CHECK (record && key.mv_size == 4);
        int64_t item = bs_msg_int (record, BS_FIELD_item);
        FUZZ_CHECK (store_u32_key (key.mv_data) == (uint32_t) item);
        int64_t stock = bs_msg_int (record, BS_FIELD_stock);
        FUZZ_CHECK (bs_msg_has (record, BS_FIELD_stock) && stock >= 0 && stock <= STOCK_MAX);
        FUZZ_CHECK ((uint64_t) bs_msg_int (record, BS_FIELD_version) <= journal_seq (s_journal, CATALOG_PARTITION));
        book_t *book = s_book (item);
        FUZZ_CHECK (book && s_shows (record, book, true));
        bs_msg_destroy (&record);
    }
    mdb_cursor_close (cursor);
    FUZZ_CHECK (count == s_book_count);
    //  by_topic: one (topic, item) per book
    count = 0;
    FUZZ_CHECK (mdb_cursor_open (txn, by_topic, &cursor) == 0);
    for (rc = mdb_cursor_get (cursor, &key, &value, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get (cursor, &key, &value, MDB_NEXT), count++) {
        FUZZ_CHECK (value.mv_size == 4);
        book_t *book = s_book (store_u32_key (value.mv_data));
        FUZZ_CHECK (book && strlen (book->topic) == key.mv_size && memcmp (book->topic, key.mv_data, key.mv_size) == 0);
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    FUZZ_CHECK (count == s_book_count);
    //  The follower is the primary's equal
    char digest [17], follower_digest [17];
    journal_digest (s_journal, digest);
    journal_digest (s_follower_journal, follower_digest);
    FUZZ_CHECK (strcmp (digest, follower_digest) == 0);
    FUZZ_CHECK (journal_seq (s_journal, CATALOG_PARTITION) == journal_seq (s_follower_journal, CATALOG_PARTITION));
    //  One order per bought rid
    txn = store_begin (s_order_store, false);
    FUZZ_CHECK (txn);
    MDB_stat stat;
    FUZZ_CHECK (mdb_stat (txn, orders_db, &stat) == 0);
    FUZZ_CHECK (stat.ms_entries == s_order_count);
    mdb_txn_abort (txn);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_reset ();
    fuzz_input_t input = { data, size };
    const uint8_t *frame;
    size_t frame_size;
    bool flush;
    for (int n = 0; n < MAX_FRAMES && fuzz_frame (&input, &frame, &frame_size, &flush); n++) {
        s_request (frame, frame_size);
        if (flush)
            s_flush ();
    }
    s_flush ();
    if (s_dirty)
        s_check_stores ();
    return 0;
}
