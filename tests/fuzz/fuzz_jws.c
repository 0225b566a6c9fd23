/*
 * fuzz_jws: acme/jws.c as a hostile client reaches it.  One input is one
 * HTTP request body: parse it as a flattened JWS, turn its JWK into a key,
 * verify the signature, compute the thumbprint, and parse the payload as
 * a keyChange inner JWS and verify that too.
 *
 * Beyond "no crash, no leak", it checks what the rest of acmed relies on:
 *   - an accepted JWK and the canonical JWK of the same key name the same
 *     key and have the same thumbprint (an account is found by thumbprint,
 *     so two thumbprints for one key would let one key hold two accounts);
 *   - b64url_decode(b64url_encode(x)) == x, and decode accepts only what
 *     encode can produce.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "jws.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_jws: invariant failed: %s (line %d)\n", \
	    #cond, __LINE__); abort(); } } while (0)

static void
check_key(const json_t *jwk)
{
	struct jws_error e;
	char t1[JWS_THUMBPRINT_LEN], t2[JWS_THUMBPRINT_LEN];
	EVP_PKEY *key, *key2;
	json_t *canon;

	if ((key = jws_jwk_to_pkey(jwk, &e)) == NULL) {
		CHECK(e.type != NULL);
		return;
	}
	CHECK((canon = jws_pkey_to_jwk(key)) != NULL);
	CHECK((key2 = jws_jwk_to_pkey(canon, &e)) != NULL);
	CHECK(EVP_PKEY_eq(key, key2) == 1);
	CHECK(jws_thumbprint(canon, t2, sizeof(t2), &e) == 0);
	if (jws_thumbprint(jwk, t1, sizeof(t1), &e) == 0)
		CHECK(strcmp(t1, t2) == 0);
	json_decref(canon);
	EVP_PKEY_free(key2);
	EVP_PKEY_free(key);
}

static void
verify(const struct jws *j)
{
	struct jws_error e;
	EVP_PKEY *key;

	if (j->jwk == NULL)
		return;
	check_key(j->jwk);
	if ((key = jws_jwk_to_pkey(j->jwk, &e)) == NULL)
		return;
	if (jws_verify(j, key, &e) == -1)
		CHECK(e.type != NULL);
	EVP_PKEY_free(key);
}

static void
check_b64(const uint8_t *data, size_t size)
{
	unsigned char *dec, *dec2;
	size_t n, n2;
	char *enc;

	/* Decode the input as text; whatever decodes must re-encode to it. */
	if ((dec = b64url_decode((const char *)data, size, &n)) != NULL) {
		CHECK((enc = b64url_encode(dec, n)) != NULL);
		CHECK(strlen(enc) == size && memcmp(enc, data, size) == 0);
		free(enc);
		free(dec);
	}
	/* Encode the input as bytes; it must decode back. */
	CHECK((enc = b64url_encode(data, size)) != NULL);
	CHECK((dec2 = b64url_decode(enc, strlen(enc), &n2)) != NULL);
	CHECK(n2 == size && memcmp(dec2, data, size) == 0);
	free(dec2);
	free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jws_error e;
	struct jws *j, *inner;
	char *body;

	/* The HTTP layer hands over a NUL-terminated copy of the body. */
	if ((body = malloc(size + 1)) == NULL)
		return 0;
	memcpy(body, data, size);
	body[size] = '\0';
	if ((j = jws_parse(body, size, &e)) == NULL)
		CHECK(e.type != NULL);
	else {
		CHECK(j->alg != NULL && j->url != NULL);
		CHECK((j->jwk == NULL) != (j->kid == NULL));
		verify(j);
		if ((inner = jws_parse_inner(j, &e)) != NULL) {
			CHECK(inner->jwk != NULL && inner->nonce == NULL);
			verify(inner);
			jws_free(inner);
		}
		jws_free(j);
	}
	free(body);
	if (size <= 4096)
		check_b64(data, size);
	ERR_clear_error();
	return 0;
}
