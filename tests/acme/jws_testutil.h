/*
 * jws_testutil: the client side of RFC 8555 6.2 for tests.  Makes keys and
 * signs flattened JWS bodies the way an ACME client does, written apart
 * from acme/jws.c (its own JWK and base64url code) so that a mistake there
 * cannot cancel itself out in a round trip.
 *
 * Every function returns NULL on failure; strings are malloc'd (free()),
 * keys are EVP_PKEY_free()d, JSON is json_decref()d.
 */
#ifndef IOTCA_JWS_TESTUTIL_H
#define IOTCA_JWS_TESTUTIL_H

#include <stddef.h>
#include <jansson.h>
#include <openssl/evp.h>

/* A fresh key: "P-256", "P-384", "P-521", "Ed25519" or "RSA-<bits>". */
EVP_PKEY	*jws_test_key(const char *kind);

/* The alg a key naturally signs with: ES256, ES384, ES512, RS256, EdDSA. */
const char	*jws_test_alg(EVP_PKEY *key);

/* The key's public JWK (kty and the RFC 7638 members only). */
json_t		*jws_test_jwk(EVP_PKEY *key);

/*
 * A flattened JWS JSON body as an ACME client sends it.
 *   alg     NULL: jws_test_alg(key); any other text is put in the header
 *           as is (the signature is still made with the key's own alg)
 *   nonce   NULL: no "nonce" member
 *   url     NULL: no "url" member
 *   kid     NULL: embed the key as "jwk"; else "kid" (account URL)
 *   payload "" for POST-as-GET, else the JSON text to sign
 */
char		*jws_test_sign(EVP_PKEY *key, const char *alg, const char *nonce,
		    const char *url, const char *kid, const char *payload);

/*
 * For crafting bad requests: sign protected_json (header text used
 * verbatim, so duplicate or odd members survive) and payload with the
 * key's own algorithm.
 */
char		*jws_test_sign_protected(EVP_PKEY *key, const char *protected_json,
		    const char *payload);

/* The JWS signature (raw r || s for ECDSA) over input, and its length. */
unsigned char	*jws_test_signature(EVP_PKEY *key, const char *input,
		    size_t *siglen);

/* base64url without padding, written independently of acme/jws.c. */
char		*jws_test_b64(const void *in, size_t len);

/* {"protected":..,"payload":..,"signature":..} from already-encoded parts. */
char		*jws_test_flattened(const char *protected_b64,
		    const char *payload_b64, const char *signature_b64);

#endif
