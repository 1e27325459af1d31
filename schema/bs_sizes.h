/*  bs_sizes - the longest names the store passes around, in bytes, without
 *  the terminating NUL: a buffer that holds one is [BS_..._MAX + 1].
 *
 *  They are the bounds schema/fields.def puts on the same fields (id,
 *  partition, primary: 64; service: 32; digest: 64; pub, sync: 256; topic:
 *  64; db: 32), so
 *  that whatever the codec accepts fits.  A header of constants alone.
 */
#ifndef BS_SIZES_H_INCLUDED
#define BS_SIZES_H_INCLUDED

//  A node id, or a partition name (fields id, partition, primary)
#define BS_ID_MAX       64
//  A service name (field service): catalog, order, broker
#define BS_SERVICE_MAX  32
//  A replica's digest, in hex (field digest)
#define BS_DIGEST_MAX   64
//  An endpoint a node advertises to its followers (fields pub, sync)
#define BS_ENDPOINT_MAX 256
//  A book's topic (field topic)
#define BS_TOPIC_MAX    64
//  A database's name in a snapshot record (field db)
#define BS_DB_MAX       32

#endif
