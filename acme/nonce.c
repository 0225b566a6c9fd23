/*
 * nonce: make and check single-use Replay-Nonce values (see nonce.h).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "jws.h"
#include "nonce.h"

#define NONCE_BLOCK	16

struct nonces {
	pthread_mutex_t	 lock;
	unsigned char	 key[16];		/* AES-128 */
	uint64_t	 next;			/* counter of the next nonce */
	unsigned char	 used[NONCE_WINDOW / 8];	/* bit per counter mod window */
};

struct nonces *
nonces_new(void)
{
	struct nonces *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	if (RAND_bytes(n->key, sizeof(n->key)) != 1 ||
	    pthread_mutex_init(&n->lock, NULL) != 0) {
		free(n);
		return NULL;
	}
	/* Start past the window so "counter < next - window" needs no care. */
	n->next = NONCE_WINDOW;
	return n;
}

void
nonces_free(struct nonces *n)
{
	if (n == NULL)
		return;
	OPENSSL_cleanse(n->key, sizeof(n->key));
	pthread_mutex_destroy(&n->lock);
	free(n);
}

/* One AES block, either way; the key makes it a secret permutation. */
static int
aes_block(const struct nonces *n, int enc, const unsigned char in[NONCE_BLOCK],
    unsigned char out[NONCE_BLOCK])
{
	EVP_CIPHER_CTX *ctx;
	int len = 0, ok;

	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	ok = EVP_CipherInit_ex(ctx, EVP_aes_128_ecb(), NULL, n->key, NULL, enc) == 1 &&
	    EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
	    EVP_CipherUpdate(ctx, out, &len, in, NONCE_BLOCK) == 1 &&
	    len == NONCE_BLOCK;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

static void
put_u64(unsigned char b[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (unsigned char)(v & 0xff);
}

static uint64_t
get_u64(const unsigned char b[8])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}

int
nonce_make(struct nonces *n, char out[NONCE_LEN])
{
	unsigned char plain[NONCE_BLOCK] = { 0 }, ct[NONCE_BLOCK];
	uint64_t ctr;
	char *s;

	if (pthread_mutex_lock(&n->lock) != 0)
		return -1;
	ctr = n->next++;
	/* The slot now belongs to this counter: clear what an old one left. */
	n->used[(ctr % NONCE_WINDOW) / 8] &= (unsigned char)~(1u << (ctr % 8));
	pthread_mutex_unlock(&n->lock);

	put_u64(plain, ctr);
	if (aes_block(n, 1, plain, ct) == -1)
		return -1;
	if ((s = b64url_encode(ct, sizeof(ct))) == NULL)
		return -1;
	if (strlen(s) >= NONCE_LEN) {
		free(s);
		return -1;
	}
	memcpy(out, s, strlen(s) + 1);
	free(s);
	return 0;
}

int
nonce_use(struct nonces *n, const char *nonce)
{
	static const unsigned char zero[NONCE_BLOCK - 8];
	unsigned char plain[NONCE_BLOCK], *raw;
	size_t len;
	uint64_t ctr;
	unsigned char bit;
	int ok = 0;

	if (nonce == NULL || strlen(nonce) != NONCE_LEN - 1)
		return 0;
	if ((raw = b64url_decode(nonce, strlen(nonce), &len)) == NULL)
		return 0;
	if (len != NONCE_BLOCK || aes_block(n, 0, raw, plain) == -1 ||
	    CRYPTO_memcmp(plain + 8, zero, sizeof(zero)) != 0) {
		free(raw);
		return 0;
	}
	free(raw);
	ctr = get_u64(plain);
	bit = (unsigned char)(1u << (ctr % 8));
	if (pthread_mutex_lock(&n->lock) != 0)
		return 0;
	if (ctr < n->next && ctr >= n->next - NONCE_WINDOW &&
	    !(n->used[(ctr % NONCE_WINDOW) / 8] & bit)) {
		n->used[(ctr % NONCE_WINDOW) / 8] |= bit;
		ok = 1;
	}
	pthread_mutex_unlock(&n->lock);
	return ok;
}
