/*
 * ratelimit: token buckets in a fixed-size table (see ratelimit.h).
 */
#include <sys/random.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define PROBE	8	/* slots a key may live in, from its hash on */

struct bucket {
	char	 key[RATELIMIT_KEY_MAX];	/* "" when free */
	double	 tokens;
	double	 last;		/* when tokens was computed */
};

struct ratelimit {
	struct ratelimit_rule	 rule;
	pthread_mutex_t		 lock;
	uint64_t		 seed;	/* keys are chosen by clients: no
					 * fixed hash they could aim at */
	size_t			 mask;
	struct bucket		*b;
};

struct ratelimit *
ratelimit_new(const struct ratelimit_rule *rule, size_t slots)
{
	struct ratelimit *rl;
	size_t n = PROBE;

	while (n < slots && n < ((size_t)1 << 24))
		n <<= 1;
	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return NULL;
	rl->rule = *rule;
	rl->mask = n - 1;
	if (getrandom(&rl->seed, sizeof(rl->seed), 0) != sizeof(rl->seed) ||
	    (rl->b = calloc(n, sizeof(*rl->b))) == NULL) {
		free(rl);
		return NULL;
	}
	if (pthread_mutex_init(&rl->lock, NULL) != 0) {
		free(rl->b);
		free(rl);
		return NULL;
	}
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->b);
	free(rl);
}

/* FNV-1a from a secret start, finished with a 64-bit mix. */
static uint64_t
hash(uint64_t seed, const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (; *key != '\0'; key++) {
		h ^= (unsigned char)*key;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* Tokens of b at now, the refill counted in. */
static double
refilled(const struct ratelimit *rl, const struct bucket *b, double now)
{
	double t = b->tokens;

	if (now > b->last)
		t += (now - b->last) * rl->rule.burst / rl->rule.period;
	return t > rl->rule.burst ? rl->rule.burst : t;
}

/* The bucket of key, or the one it replaces (see ratelimit.h). */
static struct bucket *
find(struct ratelimit *rl, const char *key, double now)
{
	struct bucket *b, *victim = NULL;
	double best = -1, t;
	size_t i, h = (size_t)hash(rl->seed, key);

	for (i = 0; i < PROBE; i++) {
		b = &rl->b[(h + i) & rl->mask];
		if (b->key[0] == '\0') {
			if (victim == NULL || best < rl->rule.burst + 1) {
				victim = b;
				best = rl->rule.burst + 1;	/* free beats all */
			}
			continue;
		}
		if (strcmp(b->key, key) == 0)
			return b;
		if ((t = refilled(rl, b, now)) > best) {
			victim = b;
			best = t;
		}
	}
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->tokens = rl->rule.burst;
	victim->last = now;
	return victim;
}

int
ratelimit_take(struct ratelimit *rl, const char *key, double now,
    unsigned int *retry_after)
{
	struct bucket *b;
	double wait;
	int ok;

	*retry_after = 0;
	if (rl == NULL || rl->rule.burst == 0 || *key == '\0')
		return 1;
	if (pthread_mutex_lock(&rl->lock) != 0)
		return 1;	/* never refuse for our own fault */
	b = find(rl, key, now);
	b->tokens = refilled(rl, b, now);
	b->last = now;
	if ((ok = b->tokens >= 1.0))
		b->tokens -= 1.0;
	else {
		wait = (1.0 - b->tokens) * rl->rule.period / rl->rule.burst;
		*retry_after = wait > 86400 ? 86400 : (unsigned int)wait;
		if (*retry_after < wait || *retry_after == 0)
			(*retry_after)++;	/* whole seconds, rounded up */
	}
	pthread_mutex_unlock(&rl->lock);
	return ok;
}

int
ratelimit_parse_rule(const char *text, struct ratelimit_rule *r)
{
	unsigned long burst, period;
	char *end;

	memset(r, 0, sizeof(*r));
	if (strcmp(text, "off") == 0)
		return 0;
	if (*text < '0' || *text > '9')
		return -1;
	burst = strtoul(text, &end, 10);
	if (*end != '/' || end[1] < '0' || end[1] > '9')
		return -1;
	period = strtoul(end + 1, &end, 10);
	if (*end != '\0' || burst < 1 || burst > 1000000 || period < 1 ||
	    period > 86400)
		return -1;
	r->burst = (unsigned int)burst;
	r->period = (unsigned int)period;
	return 0;
}
