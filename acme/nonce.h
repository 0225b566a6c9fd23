/*
 * nonce: RFC 8555 section 6.5 anti-replay nonces, in memory.
 *
 * A nonce is base64url(AES-128(key, counter || 8 zero bytes)) under a random
 * key made at start: a pseudo-random permutation, so nonces look random and
 * nobody without the key can make or predict one (a forgery must hit the
 * zero bytes: 2^-64).
 * The server remembers which of the last NONCE_WINDOW counters were used in a
 * bitmap, so the set is bounded and a check is O(1); a nonce older than the
 * window, used before, forged, or from before a restart is refused.
 */
#ifndef IOTCA_NONCE_H
#define IOTCA_NONCE_H

#include <stddef.h>

#define NONCE_WINDOW	65536	/* outstanding nonces remembered */
#define NONCE_LEN	23	/* base64url of 16 bytes, NUL included */

struct nonces;

struct nonces	*nonces_new(void);
void		 nonces_free(struct nonces *);
/* A fresh nonce into out (NONCE_LEN bytes); -1 if the RNG failed. */
int		 nonce_make(struct nonces *, char out[NONCE_LEN]);
/* 1 if the nonce is ours, recent and unused (it is then used up), else 0. */
int		 nonce_use(struct nonces *, const char *nonce);

#endif
