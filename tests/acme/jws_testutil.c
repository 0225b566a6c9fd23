/*
 * jws_testutil: see jws_testutil.h.  Test code, but still checks every
 * OpenSSL return, since a silently bad test signature would make refusal
 * tests pass for the wrong reason.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "jws_testutil.h"

EVP_PKEY *
jws_test_key(const char *kind)
{
	unsigned long	 bits;
	char		*end;

	if (strcmp(kind, "P-256") == 0)
		return EVP_EC_gen("P-256");
	if (strcmp(kind, "P-384") == 0)
		return EVP_EC_gen("P-384");
	if (strcmp(kind, "P-521") == 0)
		return EVP_EC_gen("P-521");
	if (strcmp(kind, "Ed25519") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (strncmp(kind, "RSA-", 4) == 0) {
		bits = strtoul(kind + 4, &end, 10);
		if (*end != '\0' || bits < 512 || bits > 16384)
			return NULL;
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	}
	return NULL;
}

/* Coordinate size of an EC key's curve, or 0. */
static size_t
ec_coord_len(EVP_PKEY *key)
{
	if (!EVP_PKEY_is_a(key, "EC"))
		return 0;
	switch (EVP_PKEY_get_bits(key)) {
	case 256:
		return 32;
	case 384:
		return 48;
	case 521:
		return 66;
	default:
		return 0;
	}
}

const char *
jws_test_alg(EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "RSA"))
		return "RS256";
	if (EVP_PKEY_is_a(key, "ED25519"))
		return "EdDSA";
	if (EVP_PKEY_is_a(key, "EC"))
		switch (ec_coord_len(key)) {
		case 32:
			return "ES256";
		case 48:
			return "ES384";
		case 66:
			return "ES512";
		}
	return NULL;
}

/* Digest for the key's natural alg; NULL for Ed25519 (and on error). */
static const char *
alg_md(EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "RSA"))
		return "SHA256";
	switch (ec_coord_len(key)) {
	case 32:
		return "SHA256";
	case 48:
		return "SHA384";
	case 66:
		return "SHA512";
	}
	return NULL;
}

char *
jws_test_b64(const void *in, size_t len)
{
	char	*out;
	size_t	 i, j;
	int	 n;

	if (len > 1024 * 1024 || (out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return NULL;
	n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	if (n < 0) {
		free(out);
		return NULL;
	}
	for (i = j = 0; i < (size_t)n; i++) {
		if (out[i] == '=')
			break;
		out[j++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	}
	out[j] = '\0';
	return out;
}

/* Add name = base64url(BIGNUM param, left-padded to pad bytes if pad). */
static int
add_bn(json_t *jwk, const char *name, EVP_PKEY *key, const char *param,
    size_t pad)
{
	BIGNUM		*bn = NULL;
	unsigned char	 buf[1024];
	char		*b64 = NULL;
	int		 len, rc = -1;

	if (EVP_PKEY_get_bn_param(key, param, &bn) != 1)
		return -1;
	len = pad ? BN_bn2binpad(bn, buf, (int)pad) :
	    (BN_num_bytes(bn) <= (int)sizeof(buf) ? BN_bn2bin(bn, buf) : -1);
	if (len > 0 && (b64 = jws_test_b64(buf, (size_t)len)) != NULL &&
	    json_object_set_new(jwk, name, json_string(b64)) == 0)
		rc = 0;
	free(b64);
	BN_free(bn);
	return rc;
}

json_t *
jws_test_jwk(EVP_PKEY *key)
{
	json_t		*jwk;
	unsigned char	 raw[32];
	size_t		 rawlen = sizeof(raw);
	char		*b64;
	const char	*alg = jws_test_alg(key);
	int		 ok = 0;

	if (alg == NULL || (jwk = json_object()) == NULL)
		return NULL;
	if (strcmp(alg, "RS256") == 0) {
		ok = json_object_set_new(jwk, "kty", json_string("RSA")) == 0 &&
		    add_bn(jwk, "n", key, OSSL_PKEY_PARAM_RSA_N, 0) == 0 &&
		    add_bn(jwk, "e", key, OSSL_PKEY_PARAM_RSA_E, 0) == 0;
	} else if (strcmp(alg, "EdDSA") == 0) {
		if (EVP_PKEY_get_raw_public_key(key, raw, &rawlen) == 1 &&
		    (b64 = jws_test_b64(raw, rawlen)) != NULL) {
			ok = json_object_set_new(jwk, "kty",
			    json_string("OKP")) == 0 &&
			    json_object_set_new(jwk, "crv",
			    json_string("Ed25519")) == 0 &&
			    json_object_set_new(jwk, "x",
			    json_string(b64)) == 0;
			free(b64);
		}
	} else {
		const char *crv = strcmp(alg, "ES256") == 0 ? "P-256" :
		    strcmp(alg, "ES384") == 0 ? "P-384" : "P-521";

		ok = json_object_set_new(jwk, "kty", json_string("EC")) == 0 &&
		    json_object_set_new(jwk, "crv", json_string(crv)) == 0 &&
		    add_bn(jwk, "x", key, OSSL_PKEY_PARAM_EC_PUB_X,
		    ec_coord_len(key)) == 0 &&
		    add_bn(jwk, "y", key, OSSL_PKEY_PARAM_EC_PUB_Y,
		    ec_coord_len(key)) == 0;
	}
	if (!ok) {
		json_decref(jwk);
		return NULL;
	}
	return jwk;
}

/* DER ECDSA-Sig-Value to JWS r || s, each half bytes. */
static unsigned char *
der_to_raw(const unsigned char *der, size_t derlen, size_t half)
{
	ECDSA_SIG	*es;
	const BIGNUM	*r, *s;
	unsigned char	*raw;

	if ((es = d2i_ECDSA_SIG(NULL, &der, (long)derlen)) == NULL)
		return NULL;
	ECDSA_SIG_get0(es, &r, &s);
	if ((raw = malloc(2 * half)) == NULL ||
	    BN_bn2binpad(r, raw, (int)half) != (int)half ||
	    BN_bn2binpad(s, raw + half, (int)half) != (int)half) {
		free(raw);
		raw = NULL;
	}
	ECDSA_SIG_free(es);
	return raw;
}

unsigned char *
jws_test_signature(EVP_PKEY *key, const char *input, size_t *siglen)
{
	EVP_MD_CTX	*ctx;
	unsigned char	*sig = NULL, *raw;
	size_t		 len = 0, half;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return NULL;
	if (EVP_DigestSignInit_ex(ctx, NULL, alg_md(key), NULL, NULL, key,
	    NULL) != 1 ||
	    EVP_DigestSign(ctx, NULL, &len, (const unsigned char *)input,
	    strlen(input)) != 1 ||
	    (sig = malloc(len)) == NULL ||
	    EVP_DigestSign(ctx, sig, &len, (const unsigned char *)input,
	    strlen(input)) != 1) {
		free(sig);
		EVP_MD_CTX_free(ctx);
		return NULL;
	}
	EVP_MD_CTX_free(ctx);
	if (EVP_PKEY_is_a(key, "EC")) {
		half = ec_coord_len(key);
		raw = der_to_raw(sig, len, half);
		free(sig);
		if (raw == NULL)
			return NULL;
		sig = raw;
		len = 2 * half;
	}
	*siglen = len;
	return sig;
}

char *
jws_test_flattened(const char *prot, const char *payload, const char *sig)
{
	json_t	*o;
	char	*s;

	o = json_pack("{s:s, s:s, s:s}", "protected", prot, "payload",
	    payload, "signature", sig);
	if (o == NULL)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

char *
jws_test_sign_protected(EVP_PKEY *key, const char *protected_json,
    const char *payload)
{
	char		*p64 = NULL, *b64 = NULL, *input = NULL, *s64 = NULL;
	char		*body = NULL;
	unsigned char	*sig = NULL;
	size_t		 siglen;

	if ((p64 = jws_test_b64(protected_json, strlen(protected_json))) ==
	    NULL || (b64 = jws_test_b64(payload, strlen(payload))) == NULL)
		goto out;
	if (asprintf(&input, "%s.%s", p64, b64) == -1) {
		input = NULL;
		goto out;
	}
	if ((sig = jws_test_signature(key, input, &siglen)) == NULL ||
	    (s64 = jws_test_b64(sig, siglen)) == NULL)
		goto out;
	body = jws_test_flattened(p64, b64, s64);
out:
	free(p64);
	free(b64);
	free(input);
	free(sig);
	free(s64);
	return body;
}

char *
jws_test_sign(EVP_PKEY *key, const char *alg, const char *nonce,
    const char *url, const char *kid, const char *payload)
{
	json_t	*hdr, *jwk;
	char	*text, *body;
	int	 ok;

	if (alg == NULL && (alg = jws_test_alg(key)) == NULL)
		return NULL;
	if ((hdr = json_object()) == NULL)
		return NULL;
	ok = json_object_set_new(hdr, "alg", json_string(alg)) == 0;
	if (ok && nonce != NULL)
		ok = json_object_set_new(hdr, "nonce", json_string(nonce)) == 0;
	if (ok && url != NULL)
		ok = json_object_set_new(hdr, "url", json_string(url)) == 0;
	if (ok && kid != NULL)
		ok = json_object_set_new(hdr, "kid", json_string(kid)) == 0;
	else if (ok)
		ok = (jwk = jws_test_jwk(key)) != NULL &&
		    json_object_set_new(hdr, "jwk", jwk) == 0;
	text = ok ? json_dumps(hdr, JSON_COMPACT) : NULL;
	json_decref(hdr);
	if (text == NULL)
		return NULL;
	body = jws_test_sign_protected(key, text, payload);
	free(text);
	return body;
}
