/*
 * jws: RFC 8555 section 6.2 request authentication.  Parses a flattened JWS
 * JSON serialization, checks the protected header's shape (alg, nonce, url,
 * exactly one of jwk and kid), verifies the signature with OpenSSL, and
 * computes RFC 7638 thumbprints.  Algorithms: ES256, ES384, ES512, RS256
 * (RSA >= 2048), EdDSA (Ed25519); never "none" nor HMAC.  No I/O: the caller
 * checks the nonce and url against its own state and looks up kid.
 *
 * On failure functions return NULL or -1 and set *problem to the RFC 8555
 * error type ("malformed", "badSignatureAlgorithm", "badPublicKey",
 * "unauthorized", ...) and detail to one human-readable line.
 */
#ifndef IOTCA_JWS_H
#define IOTCA_JWS_H

#include <stddef.h>
#include <jansson.h>
#include <openssl/evp.h>

/* Largest request body jws_parse accepts (the HTTP layer should cap it too). */
#define JWS_MAX_BODY		(64 * 1024)
/* Bytes jws_thumbprint needs: 43 base64url characters and a NUL. */
#define JWS_THUMBPRINT_LEN	44

struct jws {
	json_t		*protected_hdr;	/* decoded protected header */
	const char	*alg, *nonce, *url, *kid;	/* into protected_hdr; kid or jwk NULL */
	json_t		*jwk;		/* borrowed from protected_hdr, or NULL */
	unsigned char	*payload;	/* decoded; NUL-terminated; len 0 = POST-as-GET */
	size_t		 payload_len;
	char		*signing_input;	/* "protected.payload" as sent */
	unsigned char	*sig;
	size_t		 sig_len;
};

struct jws_error {
	const char	*type;		/* RFC 8555 error type without the URN prefix */
	char		 detail[256];
};

/* Parse body (the HTTP request body) into a jws; NULL and err on failure. */
struct jws	*jws_parse(const char *body, size_t len, struct jws_error *err);
void		 jws_free(struct jws *);

/*
 * keyChange (RFC 8555 7.3.5): parse outer's payload as the inner JWS.
 * Differences from jws_parse: "jwk" is required ("kid" refused), "nonce"
 * is ignored (inner->nonce is always NULL), and "url" must equal outer's.
 * The caller still verifies the inner JWS with jws_jwk_to_pkey(inner->jwk),
 * then checks the inner payload's "account" and "oldKey".
 */
struct jws	*jws_parse_inner(const struct jws *outer, struct jws_error *err);

/* The supported "alg" values as a new JSON array, for the "algorithms"
 * member that RFC 8555 6.2 requires in a badSignatureAlgorithm problem. */
json_t		*jws_supported_algs(void);

/* The public key of a JWK (EC P-256/384/521, RSA >= 2048, OKP Ed25519);
 * refuses JWKs with private members ("d", "p", ...). */
EVP_PKEY	*jws_jwk_to_pkey(const json_t *jwk, struct jws_error *err);

/* Verify the signature with key, checking that alg fits the key. */
int		 jws_verify(const struct jws *, EVP_PKEY *key, struct jws_error *err);

/* RFC 7638 SHA-256 thumbprint, base64url without padding, into out
 * (>= JWS_THUMBPRINT_LEN bytes). */
int		 jws_thumbprint(const json_t *jwk, char *out, size_t outlen,
		    struct jws_error *err);

/* The canonical public JWK of a key (for storage and comparison). */
json_t		*jws_pkey_to_jwk(EVP_PKEY *key);

/* base64url without padding.  decode is strict (no '=', no whitespace,
 * canonical trailing bits), NUL-terminates its result (not counted in
 * *outlen) and gives a non-NULL empty buffer for empty input. */
char		*b64url_encode(const unsigned char *in, size_t len);
unsigned char	*b64url_decode(const char *in, size_t len, size_t *outlen);

#endif
