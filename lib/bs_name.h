/*  bs_name - the rule for the names nodes go by: node ids and the order
 *  partitions named after them.  A name is 1 to max bytes of letters,
 *  digits, '.', '_' and '-': safe in a log line, a file name, a JSON value
 *  and an etcd key, and never empty.
 *
 *  The broker checks every id a node announces with it, and a node checks
 *  its own at start, so that a name too long for the wire is refused with a
 *  sentence instead of being cut short.  Pure; thread-safe.
 */
#ifndef BS_NAME_H_INCLUDED
#define BS_NAME_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  The suffix an order node adds to its id to name its own partition
//  ('.' and six hex digits, chosen when its store is created)
#define BS_PARTITION_SUFFIX_LEN 7

//  True when name is 1 to max bytes of [A-Za-z0-9._-]
bool bs_name_valid (const char *name, size_t max);

#endif
