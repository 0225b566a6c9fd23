/*
 * test_keycache: the account-key cache of iotca-acmed (acme/keycache.c).
 * What a front end relies on: a key comes back only under its own
 * thumbprint, an entry pushed out or replaced is never handed out again,
 * and a key handed out stays usable after the cache lets go of it; the
 * PEM kept with an entry is always that entry's key's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "keycache.h"

static EVP_PKEY *
p256(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(k);
	return k;
}

static void
test_get_under_own_thumbprint(void **state)
{
	struct keycache *c;
	EVP_PKEY *k = p256(), *got;

	(void)state;
	assert_non_null(c = keycache_new());
	assert_null(keycache_get(c, "thumb-a"));
	keycache_put(c, "thumb-a", k);
	assert_ptr_equal(got = keycache_get(c, "thumb-a"), k);
	EVP_PKEY_free(got);
	/* Another thumbprint, even one a character off, is a miss. */
	assert_null(keycache_get(c, "thumb-b"));
	assert_null(keycache_get(c, "thumb-"));
	assert_null(keycache_get(c, "thumb-aa"));
	EVP_PKEY_free(k);
	keycache_free(c);
}

/* The cache and each caller hold their own references. */
static void
test_key_outlives_the_cache(void **state)
{
	static const unsigned char msg[] = "payload";
	struct keycache *c;
	EVP_PKEY *k = p256(), *got;
	EVP_MD_CTX *md;
	unsigned char sig[128];
	size_t siglen = sizeof(sig);

	(void)state;
	assert_non_null(c = keycache_new());
	keycache_put(c, "t", k);
	EVP_PKEY_free(k);		/* the cache's reference remains */
	assert_non_null(got = keycache_get(c, "t"));
	keycache_free(c);		/* the caller's reference remains */
	assert_non_null(md = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, got), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)), 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(got);
}

/* More thumbprints than slots: every hit is the right key, the table stays
 * bounded, and whatever was pushed out is a miss, not another key. */
static void
test_bounded_and_never_wrong(void **state)
{
	enum { N = 3 * KEYCACHE_SLOTS };
	static EVP_PKEY *keys[N];
	struct keycache *c;
	char thumb[32];
	size_t i, hits = 0;
	EVP_PKEY *got;

	(void)state;
	assert_non_null(c = keycache_new());
	for (i = 0; i < N; i++) {
		keys[i] = p256();
		snprintf(thumb, sizeof(thumb), "k%zu", i);
		keycache_put(c, thumb, keys[i]);
	}
	for (i = 0; i < N; i++) {
		snprintf(thumb, sizeof(thumb), "k%zu", i);
		if ((got = keycache_get(c, thumb)) == NULL)
			continue;
		assert_ptr_equal(got, keys[i]);
		EVP_PKEY_free(got);
		hits++;
	}
	assert_true(hits > 0);
	assert_true(hits <= KEYCACHE_SLOTS);
	/* The newest entry is always there. */
	snprintf(thumb, sizeof(thumb), "k%d", N - 1);
	assert_non_null(got = keycache_get(c, thumb));
	EVP_PKEY_free(got);
	keycache_free(c);
	for (i = 0; i < N; i++)
		EVP_PKEY_free(keys[i]);
}

/* A thumbprint too long to be one (RFC 7638 SHA-256: 43 characters) is not
 * stored, and is never confused with a stored prefix. */
static void
test_overlong_thumbprint_not_kept(void **state)
{
	struct keycache *c;
	EVP_PKEY *k = p256();
	char longt[200];

	(void)state;
	memset(longt, 'x', sizeof(longt) - 1);
	longt[sizeof(longt) - 1] = '\0';
	assert_non_null(c = keycache_new());
	keycache_put(c, longt, k);
	assert_null(keycache_get(c, longt));
	EVP_PKEY_free(k);
	keycache_free(c);
}

static char *
pem_of(EVP_PKEY *k)
{
	BIO *b;
	char *data, *pem;
	long len;

	assert_non_null(b = BIO_new(BIO_s_mem()));
	assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
	assert_true((len = BIO_get_mem_data(b, &data)) > 0);
	assert_non_null(pem = strndup(data, (size_t)len));
	BIO_free(b);
	return pem;
}

/* The PEM handed out is the key's (as PEM_write_bio_PUBKEY writes it), a
 * fresh copy each time; none for a thumbprint not cached; and a slot that
 * gets another key under the same thumbprint never gives the old PEM. */
static void
test_pem_is_the_keys(void **state)
{
	struct keycache *c;
	EVP_PKEY *k = p256(), *k2 = p256();
	char *want = pem_of(k), *want2 = pem_of(k2), *a, *b;

	(void)state;
	assert_non_null(c = keycache_new());
	assert_null(keycache_pem(c, "t"));
	keycache_put(c, "t", k);
	assert_null(keycache_pem(c, "u"));
	assert_non_null(a = keycache_pem(c, "t"));	/* encoded */
	assert_non_null(b = keycache_pem(c, "t"));	/* kept */
	assert_string_equal(a, want);
	assert_string_equal(b, want);
	assert_ptr_not_equal(a, b);
	free(a);
	free(b);
	keycache_put(c, "t", k2);
	assert_non_null(a = keycache_pem(c, "t"));
	assert_string_equal(a, want2);
	free(a);
	keycache_free(c);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	free(want);
	free(want2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_under_own_thumbprint),
		cmocka_unit_test(test_key_outlives_the_cache),
		cmocka_unit_test(test_bounded_and_never_wrong),
		cmocka_unit_test(test_overlong_thumbprint_not_kept),
		cmocka_unit_test(test_pem_is_the_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
