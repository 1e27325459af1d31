/*  gw_limit - per-client rate limiting: one token bucket per source address.
 *
 *  Each client starts with a full bucket of `burst` tokens; a request takes
 *  one, and tokens come back at `rate` per second up to `burst`.  A request
 *  that finds the bucket empty is refused, and told how many seconds to wait
 *  for the next token.
 *
 *  Clients are told apart by address: an IPv4 address, or the /64 prefix of
 *  an IPv6 one (a single host commonly owns a whole /64, and could otherwise
 *  rotate through it).  Buckets live in a hash table (keyed with a secret
 *  chosen at start, so that clients cannot pick addresses that collide) and
 *  on a list by last use, so each request costs O(1) whatever the number of
 *  clients.  The table holds at most `max_clients` buckets; a new client
 *  that finds it full takes over the bucket silent for longest *with its
 *  tokens*: had it refilled, that is a fresh bucket; if not, the newcomer
 *  inherits its deficit.  So cycling through more addresses than the table
 *  holds never earns a fresh burst per address, and memory stays bounded.
 *
 *  Ownership: gw_limit_new returns a limiter the caller destroys with
 *  gw_limit_destroy.  Every function may be called from any thread.
 */
#ifndef GW_LIMIT_H_INCLUDED
#define GW_LIMIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct _gw_limit_t gw_limit_t;

//  Longest client key gw_limit_key writes, with its NUL
#define GW_LIMIT_KEY_MAX 48

//  rate: tokens per second (> 0); burst: bucket size (>= 1)
gw_limit_t *gw_limit_new (double rate, double burst, size_t max_clients);
void gw_limit_destroy (gw_limit_t **self_p);

//  Takes a token for the client at now_us (a monotonic clock, microseconds).
//  True when the request may go on; false when the client is over its rate,
//  with *retry_after_p the whole seconds (>= 1) until its next token.
bool gw_limit_take (gw_limit_t *self, const char *client, int64_t now_us, int *retry_after_p);

//  Number of clients tracked now
size_t gw_limit_clients (gw_limit_t *self);

//  True for a loopback address (127.0.0.0/8, ::1, or IPv4-mapped
//  127.0.0.0/8): the machine itself
bool gw_limit_loopback (const struct sockaddr *address);

//  Writes the client key of a socket address into key [GW_LIMIT_KEY_MAX]:
//  the IPv4 address, or the /64 prefix of an IPv6 address ("2001:db8:1:2::/64";
//  IPv4-mapped IPv6 addresses count as IPv4).  False for other families.
bool gw_limit_key (const struct sockaddr *address, char *key);

#endif
