/*
 * ratelimit: token buckets per key (a client address, an account ID) in a
 * table of fixed size, so that a hostile network cannot make it grow.
 *
 * A rule is "burst requests, refilled at burst per period seconds": a key
 * may spend its whole burst at once and then one request every
 * period/burst seconds.  The table holds at most `slots` keys; a new key
 * takes the place of a bucket that is full again (it carries nothing a
 * fresh bucket would not) and, only when none is, of the fullest one in
 * its neighbourhood, so that the buckets of busy keys are the last to go.
 * Safe to call from several threads.
 */
#ifndef IOTCA_RATELIMIT_H
#define IOTCA_RATELIMIT_H

#include <stddef.h>

#define RATELIMIT_KEY_MAX	64	/* longer keys are cut */

struct ratelimit_rule {
	unsigned int	burst;		/* 0: no limit */
	unsigned int	period;		/* seconds to refill the whole burst */
};

struct ratelimit;

/* A table of `slots` buckets (rounded up to a power of two); NULL when out
 * of memory. */
struct ratelimit	*ratelimit_new(const struct ratelimit_rule *, size_t slots);
void			 ratelimit_free(struct ratelimit *);

/*
 * Spend one request of key at time now (seconds, monotonic).  1 when it may
 * go on; 0 when it is over the limit, with *retry_after the whole seconds
 * until the key has a request again (at least 1).  Always 1 for a rule
 * without limit.
 */
int	ratelimit_take(struct ratelimit *, const char *key, double now,
	    unsigned int *retry_after);

/* Parse "BURST/PERIOD" (e.g. "20/60") or "off"; -1 if it is neither. */
int	ratelimit_parse_rule(const char *text, struct ratelimit_rule *);

#endif
