/*
 * keycache: account keys by thumbprint (see keycache.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "keycache.h"

#define THUMB_MAX	64	/* base64url of SHA-256 is 43 characters */

struct slot {
	char		 thumb[THUMB_MAX];
	EVP_PKEY	*key;
	char		*pem;		/* key's PEM, once asked for */
};

struct keycache {
	pthread_mutex_t	 lock;
	struct slot	 slots[KEYCACHE_SLOTS];
};

struct keycache *
keycache_new(void)
{
	struct keycache *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return NULL;
	}
	return c;
}

void
keycache_free(struct keycache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < KEYCACHE_SLOTS; i++) {
		EVP_PKEY_free(c->slots[i].key);
		free(c->slots[i].pem);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* FNV-1a: the thumbprint is already a hash, any spread will do. */
static size_t
slot_of(const char *thumb)
{
	unsigned int h = 2166136261u;

	for (; *thumb != '\0'; thumb++)
		h = (h ^ (unsigned char)*thumb) * 16777619u;
	return h % KEYCACHE_SLOTS;
}

EVP_PKEY *
keycache_get(struct keycache *c, const char *thumb)
{
	struct slot *s = &c->slots[slot_of(thumb)];
	EVP_PKEY *key = NULL;

	pthread_mutex_lock(&c->lock);
	if (s->key != NULL && strcmp(s->thumb, thumb) == 0 &&
	    EVP_PKEY_up_ref(s->key) == 1)
		key = s->key;
	pthread_mutex_unlock(&c->lock);
	return key;
}

void
keycache_put(struct keycache *c, const char *thumb, EVP_PKEY *key)
{
	struct slot *s = &c->slots[slot_of(thumb)];
	EVP_PKEY *old;
	char *old_pem;

	if (strlen(thumb) >= THUMB_MAX || EVP_PKEY_up_ref(key) != 1)
		return;
	pthread_mutex_lock(&c->lock);
	old = s->key;
	old_pem = s->pem;
	s->key = key;
	s->pem = NULL;
	memcpy(s->thumb, thumb, strlen(thumb) + 1);
	pthread_mutex_unlock(&c->lock);
	EVP_PKEY_free(old);
	free(old_pem);
}

static char *
pubkey_pem(EVP_PKEY *key)
{
	BIO *b;
	char *data, *pem = NULL;
	long len;

	if ((b = BIO_new(BIO_s_mem())) != NULL &&
	    PEM_write_bio_PUBKEY(b, key) == 1 &&
	    (len = BIO_get_mem_data(b, &data)) > 0)
		pem = strndup(data, (size_t)len);
	BIO_free(b);
	return pem;
}

char *
keycache_pem(struct keycache *c, const char *thumb)
{
	struct slot *s = &c->slots[slot_of(thumb)];
	EVP_PKEY *key;
	char *pem = NULL;

	pthread_mutex_lock(&c->lock);
	if (s->key == NULL || strcmp(s->thumb, thumb) != 0) {
		pthread_mutex_unlock(&c->lock);
		return NULL;
	}
	if (s->pem != NULL) {
		pem = strdup(s->pem);
		pthread_mutex_unlock(&c->lock);
		return pem;
	}
	key = EVP_PKEY_up_ref(s->key) == 1 ? s->key : NULL;
	pthread_mutex_unlock(&c->lock);
	/* Encoded outside the lock; the first to finish keeps its copy, and
	 * only if the slot still holds that key. */
	if (key == NULL || (pem = pubkey_pem(key)) == NULL) {
		EVP_PKEY_free(key);
		return NULL;
	}
	pthread_mutex_lock(&c->lock);
	if (s->key == key && s->pem == NULL)
		s->pem = strdup(pem);	/* NULL: nothing kept, no harm */
	pthread_mutex_unlock(&c->lock);
	EVP_PKEY_free(key);
	return pem;
}
