/*
 * jws: RFC 8555 section 6.2 request authentication.  See jws.h.
 *
 * Every byte handled here comes from the network before any authentication,
 * so the rules are strict and the same for everyone:
 *  - Only the flattened JSON serialization, with exactly "protected",
 *    "payload" and "signature" (RFC 8555 6.2: no unprotected header, no
 *    multiple signatures, no detached payload).  Duplicate member names
 *    are refused at every level, so the header we check is the one the
 *    signature covers, whatever JSON parser the client uses.
 *  - base64url without padding, and canonical: the unused low bits of the
 *    last character must be zero.  Otherwise one signature would have
 *    several encodings, which defeats replay and key comparisons.
 *  - JWK integers without leading zero octets (RFC 7518 6.3.1.1 and 6.2.1.2
 *    fix their lengths), so one key has one JWK and one thumbprint.
 *  - "crit" is refused: we implement no extension (RFC 7515 4.1.11), and
 *    "b64":false (RFC 7797) is not allowed by RFC 8555.  Header members
 *    that name a key some other way (jku, x5u, x5c, x5t) are refused so
 *    that no reader of the header can pick a different key than we did.
 *
 * Errors carry an RFC 8555 type and one line of detail; nothing is printed
 * here, and attacker-supplied text is quoted only through quote().
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "jws.h"

#define RSA_MIN_BITS	2048
#define RSA_MAX_BITS	8192
/* OpenSSL itself refuses larger exponents for big moduli; nobody uses them. */
#define RSA_MAX_E_BYTES	8
/* How much of an untrusted string a detail line quotes. */
#define QUOTE_MAX	32

enum keykind { KEY_NONE, KEY_P256, KEY_P384, KEY_P521, KEY_RSA, KEY_ED25519 };

/* One row per supported "alg": the key it needs and how it hashes. */
struct alg {
	const char	*name;
	enum keykind	 kind;
	const char	*md;		/* NULL: the scheme hashes itself */
};

static const struct alg algs[] = {
	{ "ES256",	KEY_P256,	"SHA256" },
	{ "ES384",	KEY_P384,	"SHA384" },
	{ "ES512",	KEY_P521,	"SHA512" },
	{ "RS256",	KEY_RSA,	"SHA256" },
	{ "EdDSA",	KEY_ED25519,	NULL },
};

/* One row per supported curve: its JWK name, OpenSSL name, coordinate size. */
struct curve {
	const char	*jwk;
	const char	*ossl;
	int		 nid;
	size_t		 len;
	enum keykind	 kind;
};

static const struct curve curves[] = {
	{ "P-256", "prime256v1", NID_X9_62_prime256v1, 32, KEY_P256 },
	{ "P-384", "secp384r1", NID_secp384r1, 48, KEY_P384 },
	{ "P-521", "secp521r1", NID_secp521r1, 66, KEY_P521 },
};

#define ED25519_LEN	32
#define ED25519_SIG_LEN	64

/* Members only a private or symmetric JWK has (RFC 7518 6.2.2, 6.3.2, 6.4). */
static const char *const private_members[] = {
	"d", "p", "q", "dp", "dq", "qi", "oth", "k",
};

/* Header members that would name the key in a way we do not use. */
static const char *const foreign_key_members[] = {
	"jku", "x5u", "x5c", "x5t", "x5t#S256",
};

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * Fill err with a type and a detail line.  OpenSSL's error queue is
 * cleared so that a refused request leaves nothing behind for the next
 * caller on this thread to misread.
 */
static void __attribute__((format(printf, 3, 4)))
fail(struct jws_error *err, const char *type, const char *fmt, ...)
{
	va_list	 ap;

	ERR_clear_error();
	if (err == NULL)
		return;
	err->type = type;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
}

/* A printable, bounded copy of an untrusted string for a detail line. */
static const char *
quote(const char *s, char *buf, size_t buflen)
{
	size_t	 i;

	for (i = 0; s[i] != '\0' && i + 1 < buflen && i < QUOTE_MAX; i++)
		buf[i] = (isprint((unsigned char)s[i]) && s[i] != '"') ?
		    s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* --- base64url ------------------------------------------------------- */

char *
b64url_encode(const unsigned char *in, size_t len)
{
	char		*out, *p;
	size_t		 i, outlen;
	uint32_t	 v;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	outlen = len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
	if ((out = malloc(outlen + 1)) == NULL)
		return NULL;
	p = out;
	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*p++ = b64url_alphabet[v >> 18 & 0x3f];
		*p++ = b64url_alphabet[v >> 12 & 0x3f];
		*p++ = b64url_alphabet[v >> 6 & 0x3f];
		*p++ = b64url_alphabet[v & 0x3f];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*p++ = b64url_alphabet[v >> 18 & 0x3f];
		*p++ = b64url_alphabet[v >> 12 & 0x3f];
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*p++ = b64url_alphabet[v >> 18 & 0x3f];
		*p++ = b64url_alphabet[v >> 12 & 0x3f];
		*p++ = b64url_alphabet[v >> 6 & 0x3f];
	}
	*p = '\0';
	return out;
}

/* The 6-bit value of a base64url character, or -1. */
static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict decoding: alphabet only, no padding, no whitespace, a length that
 * a real encoding can have, and zero bits in the unused tail.  The result
 * is NUL-terminated (not counted in *outlen) so a payload can be used as a
 * C string once its length has been checked; an empty input gives an empty,
 * non-NULL buffer.
 */
unsigned char *
b64url_decode(const char *in, size_t len, size_t *outlen)
{
	unsigned char	*out;
	size_t		 i, n;
	uint32_t	 acc;
	int		 bits, v;

	if (in == NULL || len % 4 == 1)
		return NULL;
	if ((out = malloc(len / 4 * 3 + 3)) == NULL)
		return NULL;
	acc = 0;
	bits = 0;
	n = 0;
	for (i = 0; i < len; i++) {
		if ((v = b64url_value((unsigned char)in[i])) < 0)
			goto bad;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (acc >> bits) & 0xff;
		}
	}
	/* Leftover bits (2 or 4) must be zero for a canonical encoding. */
	if ((acc & ((1u << bits) - 1)) != 0)
		goto bad;
	out[n] = '\0';
	if (outlen != NULL)
		*outlen = n;
	return out;
bad:
	free(out);
	return NULL;
}

/* --- parsing --------------------------------------------------------- */

/* A flattened-JWS member as a string, or NULL and err. */
static const char *
body_member(const json_t *body, const char *name, struct jws_error *err)
{
	const json_t	*v;

	if ((v = json_object_get(body, name)) == NULL) {
		fail(err, "malformed", "JWS has no \"%s\"", name);
		return NULL;
	}
	if (!json_is_string(v)) {
		fail(err, "malformed", "JWS \"%s\" is not a string", name);
		return NULL;
	}
	return json_string_value(v);
}

/* The body holds exactly protected, payload and signature; say what else. */
static int
check_body_members(const json_t *body, struct jws_error *err)
{
	const char	*name;
	const json_t	*v;
	char		 q[QUOTE_MAX + 1];

	json_object_foreach((json_t *)body, name, v) {
		if (strcmp(name, "protected") == 0 ||
		    strcmp(name, "payload") == 0 ||
		    strcmp(name, "signature") == 0)
			continue;
		if (strcmp(name, "signatures") == 0)
			fail(err, "malformed", "JWS general serialization "
			    "(\"signatures\") not allowed: use flattened");
		else if (strcmp(name, "header") == 0)
			fail(err, "malformed",
			    "JWS unprotected \"header\" not allowed");
		else
			fail(err, "malformed", "JWS unknown member \"%s\"",
			    quote(name, q, sizeof(q)));
		return -1;
	}
	return 0;
}

static const struct alg *
alg_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(algs[i].name, name) == 0)
			return &algs[i];
	return NULL;
}

json_t *
jws_supported_algs(void)
{
	json_t	*a;
	size_t	 i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (json_array_append_new(a, json_string(algs[i].name)) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* An optional header member that must be a non-empty string if present. */
static int
hdr_string(const json_t *hdr, const char *name, const char **out,
    const char *type, struct jws_error *err)
{
	const json_t	*v;

	*out = NULL;
	if ((v = json_object_get(hdr, name)) == NULL)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0) {
		fail(err, type, "protected header \"%s\" is not a non-empty "
		    "string", name);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

static int
check_alg(struct jws *jws, struct jws_error *err)
{
	char	 q[QUOTE_MAX + 1];

	if (hdr_string(jws->protected_hdr, "alg", &jws->alg, "malformed",
	    err) == -1)
		return -1;
	if (jws->alg == NULL) {
		fail(err, "malformed", "protected header has no \"alg\"");
		return -1;
	}
	if (alg_find(jws->alg) == NULL) {
		fail(err, "badSignatureAlgorithm", "alg \"%s\" not supported",
		    quote(jws->alg, q, sizeof(q)));
		return -1;
	}
	return 0;
}

/*
 * The nonce is compared by the caller against the ones it issued; here we
 * only make sure it is there and could be one of ours (base64url).  A bad
 * nonce is "badNonce" so that clients fetch a fresh one and retry.
 */
static int
check_nonce(struct jws *jws, struct jws_error *err)
{
	size_t		 len;
	unsigned char	*raw;

	if (hdr_string(jws->protected_hdr, "nonce", &jws->nonce, "badNonce",
	    err) == -1)
		return -1;
	if (jws->nonce == NULL) {
		fail(err, "badNonce", "protected header has no \"nonce\"");
		return -1;
	}
	if ((raw = b64url_decode(jws->nonce, strlen(jws->nonce), &len)) ==
	    NULL) {
		fail(err, "badNonce", "\"nonce\" is not base64url");
		return -1;
	}
	free(raw);
	return 0;
}

/* RFC 8555 6.2: exactly one of "jwk" and "kid"; nothing else names a key. */
static int
check_key_source(struct jws *jws, struct jws_error *err)
{
	const json_t	*jwk;
	size_t		 i;

	for (i = 0; i < sizeof(foreign_key_members) /
	    sizeof(foreign_key_members[0]); i++)
		if (json_object_get(jws->protected_hdr,
		    foreign_key_members[i]) != NULL) {
			fail(err, "malformed", "protected header \"%s\" not "
			    "allowed: use \"jwk\" or \"kid\"",
			    foreign_key_members[i]);
			return -1;
		}
	if (hdr_string(jws->protected_hdr, "kid", &jws->kid, "malformed",
	    err) == -1)
		return -1;
	jwk = json_object_get(jws->protected_hdr, "jwk");
	if (jwk != NULL && !json_is_object(jwk)) {
		fail(err, "malformed", "protected header \"jwk\" is not an "
		    "object");
		return -1;
	}
	if (jwk != NULL && jws->kid != NULL) {
		fail(err, "malformed", "protected header has both \"jwk\" and "
		    "\"kid\"");
		return -1;
	}
	if (jwk == NULL && jws->kid == NULL) {
		fail(err, "malformed", "protected header has neither \"jwk\" "
		    "nor \"kid\"");
		return -1;
	}
	jws->jwk = (json_t *)jwk;
	return 0;
}

/* RFC 7515 4.1.11 and RFC 7797: we understand no extension. */
static int
check_extensions(const json_t *hdr, struct jws_error *err)
{
	const json_t	*b64;

	if (json_object_get(hdr, "crit") != NULL) {
		fail(err, "malformed", "protected header \"crit\" names "
		    "extensions this server does not implement");
		return -1;
	}
	if ((b64 = json_object_get(hdr, "b64")) != NULL && !json_is_true(b64)) {
		fail(err, "malformed", "unencoded payload (\"b64\") not "
		    "allowed");
		return -1;
	}
	return 0;
}

/* Decode and check the protected header; inner relaxes it for keyChange. */
static int
parse_header(struct jws *jws, const char *b64, int inner,
    struct jws_error *err)
{
	unsigned char	*raw;
	size_t		 len;
	json_error_t	 jerr;

	if (*b64 == '\0') {
		fail(err, "malformed", "JWS \"protected\" is empty");
		return -1;
	}
	if ((raw = b64url_decode(b64, strlen(b64), &len)) == NULL) {
		fail(err, "malformed", "JWS \"protected\" is not base64url");
		return -1;
	}
	jws->protected_hdr = json_loadb((const char *)raw, len,
	    JSON_REJECT_DUPLICATES, &jerr);
	free(raw);
	if (jws->protected_hdr == NULL) {
		fail(err, "malformed", "protected header is not JSON (or has "
		    "duplicate members)");
		return -1;
	}
	if (!json_is_object(jws->protected_hdr)) {
		fail(err, "malformed", "protected header is not an object");
		return -1;
	}
	if (check_alg(jws, err) == -1 ||
	    check_extensions(jws->protected_hdr, err) == -1 ||
	    check_key_source(jws, err) == -1)
		return -1;
	if (hdr_string(jws->protected_hdr, "url", &jws->url, "malformed",
	    err) == -1)
		return -1;
	if (jws->url == NULL) {
		fail(err, "malformed", "protected header has no \"url\"");
		return -1;
	}
	if (inner) {
		/* RFC 8555 7.3.5: the inner JWS has a jwk; its nonce is ignored. */
		if (jws->jwk == NULL) {
			fail(err, "malformed", "inner JWS must carry \"jwk\", "
			    "not \"kid\"");
			return -1;
		}
		jws->nonce = NULL;
		return 0;
	}
	return check_nonce(jws, err);
}

static struct jws *
parse(const char *body, size_t len, int inner, struct jws_error *err)
{
	struct jws	*jws;
	json_t		*obj;
	json_error_t	 jerr;
	const char	*prot, *payload, *sig;
	size_t		 plen, slen;

	if (body == NULL || len == 0) {
		fail(err, "malformed", "empty request body");
		return NULL;
	}
	if (len > JWS_MAX_BODY) {
		fail(err, "malformed", "JWS larger than %d bytes",
		    JWS_MAX_BODY);
		return NULL;
	}
	obj = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL) {
		fail(err, "malformed", "JWS is not JSON (or has duplicate "
		    "members)");
		return NULL;
	}
	if ((jws = calloc(1, sizeof(*jws))) == NULL) {
		json_decref(obj);
		fail(err, "serverInternal", "out of memory");
		return NULL;
	}
	if (!json_is_object(obj)) {
		fail(err, "malformed", "JWS is not a JSON object (flattened "
		    "serialization required)");
		goto bad;
	}
	if (check_body_members(obj, err) == -1 ||
	    (prot = body_member(obj, "protected", err)) == NULL ||
	    (payload = body_member(obj, "payload", err)) == NULL ||
	    (sig = body_member(obj, "signature", err)) == NULL)
		goto bad;
	if (parse_header(jws, prot, inner, err) == -1)
		goto bad;

	plen = strlen(payload);
	if ((jws->payload = b64url_decode(payload, plen,
	    &jws->payload_len)) == NULL) {
		fail(err, "malformed", "JWS \"payload\" is not base64url");
		goto bad;
	}
	slen = strlen(sig);
	if (slen == 0 ||
	    (jws->sig = b64url_decode(sig, slen, &jws->sig_len)) == NULL) {
		fail(err, "malformed", "JWS \"signature\" is empty or not "
		    "base64url");
		goto bad;
	}
	/* Both parts are bounded by len, so this cannot overflow. */
	if (asprintf(&jws->signing_input, "%s.%s", prot, payload) == -1) {
		jws->signing_input = NULL;
		fail(err, "serverInternal", "out of memory");
		goto bad;
	}
	json_decref(obj);
	return jws;
bad:
	json_decref(obj);
	jws_free(jws);
	return NULL;
}

struct jws *
jws_parse(const char *body, size_t len, struct jws_error *err)
{
	return parse(body, len, 0, err);
}

struct jws *
jws_parse_inner(const struct jws *outer, struct jws_error *err)
{
	struct jws	*inner;

	if (outer->payload_len == 0) {
		fail(err, "malformed", "keyChange payload is empty");
		return NULL;
	}
	if ((inner = parse((const char *)outer->payload, outer->payload_len,
	    1, err)) == NULL)
		return NULL;
	if (strcmp(inner->url, outer->url) != 0) {
		fail(err, "malformed", "inner JWS \"url\" differs from the "
		    "outer one");
		jws_free(inner);
		return NULL;
	}
	return inner;
}

void
jws_free(struct jws *jws)
{
	if (jws == NULL)
		return;
	json_decref(jws->protected_hdr);
	free(jws->payload);
	free(jws->signing_input);
	free(jws->sig);
	free(jws);
}

/* --- JWK to key ------------------------------------------------------ */

/*
 * A required base64url member of a JWK, decoded.  Returns NULL and err if
 * it is missing, not a string or not canonical base64url.
 */
static unsigned char *
jwk_bytes(const json_t *jwk, const char *name, size_t *len,
    struct jws_error *err)
{
	const json_t	*v;
	unsigned char	*raw;

	v = json_object_get(jwk, name);
	if (v == NULL || !json_is_string(v)) {
		fail(err, "malformed", "JWK has no string \"%s\"", name);
		return NULL;
	}
	raw = b64url_decode(json_string_value(v), json_string_length(v), len);
	if (raw == NULL) {
		fail(err, "malformed", "JWK \"%s\" is not base64url", name);
		return NULL;
	}
	return raw;
}

/* A required string member of a JWK ("kty", "crv"). */
static const char *
jwk_string(const json_t *jwk, const char *name, struct jws_error *err)
{
	const json_t	*v;

	v = json_object_get(jwk, name);
	if (v == NULL || !json_is_string(v)) {
		fail(err, "malformed", "JWK has no string \"%s\"", name);
		return NULL;
	}
	return json_string_value(v);
}

static const struct curve *
curve_by_jwk(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (strcmp(curves[i].jwk, name) == 0)
			return &curves[i];
	return NULL;
}

static const struct curve *
curve_by_nid(int nid)
{
	size_t	 i;

	for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (curves[i].nid == nid)
			return &curves[i];
	return NULL;
}

/* Build a public key of the given type from params; NULL on failure. */
static EVP_PKEY *
key_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM	*params;
	EVP_PKEY_CTX	*ctx;
	EVP_PKEY	*key = NULL;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		return NULL;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return key;
}

/*
 * Public-key validation: coordinates reduced, on the curve, not the point at
 * infinity (EVP_PKEY_fromdata alone does not promise that).  The "quick"
 * check leaves out the multiplication by the group order, which proves
 * nothing more on P-256, P-384 and P-521: their cofactor is 1, so every point
 * on the curve is in the prime-order group (SP 800-56A 5.6.2.3.4).  The full
 * check cost a scalar multiplication on every request.
 */
static int
ec_public_ok(EVP_PKEY *key)
{
	EVP_PKEY_CTX	*ctx;
	int		 ok;

	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL)
		return 0;
	ok = EVP_PKEY_public_check_quick(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static EVP_PKEY *
jwk_ec(const json_t *jwk, struct jws_error *err)
{
	const struct curve	*c;
	const char		*crv;
	unsigned char		*x = NULL, *y = NULL, *pt = NULL;
	size_t			 xlen, ylen;
	char			 q[QUOTE_MAX + 1];
	OSSL_PARAM_BLD		*bld = NULL;
	EVP_PKEY		*key = NULL;

	if ((crv = jwk_string(jwk, "crv", err)) == NULL)
		return NULL;
	if ((c = curve_by_jwk(crv)) == NULL) {
		fail(err, "badPublicKey", "EC curve \"%s\" not supported",
		    quote(crv, q, sizeof(q)));
		return NULL;
	}
	if ((x = jwk_bytes(jwk, "x", &xlen, err)) == NULL ||
	    (y = jwk_bytes(jwk, "y", &ylen, err)) == NULL)
		goto out;
	/* RFC 7518 6.2.1.2/3: full-length coordinates, no more, no less. */
	if (xlen != c->len || ylen != c->len) {
		fail(err, "badPublicKey", "%s coordinates must be %zu bytes",
		    c->jwk, c->len);
		goto out;
	}
	/* SEC 1 uncompressed point: 0x04 || x || y. */
	if ((pt = malloc(1 + 2 * c->len)) == NULL) {
		fail(err, "serverInternal", "out of memory");
		goto out;
	}
	pt[0] = 0x04;
	memcpy(pt + 1, x, c->len);
	memcpy(pt + 1 + c->len, y, c->len);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    c->ossl, 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    pt, 1 + 2 * c->len) != 1) {
		fail(err, "serverInternal", "cannot build EC key parameters");
		goto out;
	}
	if ((key = key_fromdata("EC", bld)) == NULL || !ec_public_ok(key)) {
		EVP_PKEY_free(key);
		key = NULL;
		fail(err, "badPublicKey", "%s point is not on the curve",
		    c->jwk);
	}
out:
	OSSL_PARAM_BLD_free(bld);
	free(pt);
	free(x);
	free(y);
	return key;
}

/* Bits in a big-endian integer whose first byte is non-zero. */
static size_t
be_bits(const unsigned char *v, size_t len)
{
	size_t		 bits = len * 8;
	unsigned char	 top = v[0];

	while ((top & 0x80) == 0) {
		top <<= 1;
		bits--;
	}
	return bits;
}

/*
 * RSA: we check the numbers ourselves rather than with
 * EVP_PKEY_public_check, which runs a primality test on n and would let
 * anyone make us spend real CPU per request with an 8192-bit modulus.
 */
static int
rsa_numbers_ok(const unsigned char *n, size_t nlen, const unsigned char *e,
    size_t elen, struct jws_error *err)
{
	size_t	 bits;

	if (nlen == 0 || n[0] == 0 || elen == 0 || e[0] == 0) {
		fail(err, "badPublicKey", "RSA \"n\" and \"e\" must have no "
		    "leading zero octets");
		return -1;
	}
	bits = be_bits(n, nlen);
	if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
		fail(err, "badPublicKey", "RSA modulus of %zu bits: %d to %d "
		    "required", bits, RSA_MIN_BITS, RSA_MAX_BITS);
		return -1;
	}
	if ((n[nlen - 1] & 1) == 0) {
		fail(err, "badPublicKey", "RSA modulus is even");
		return -1;
	}
	if (elen > RSA_MAX_E_BYTES || (e[elen - 1] & 1) == 0 ||
	    (elen == 1 && e[0] == 1)) {
		fail(err, "badPublicKey", "RSA exponent must be odd, greater "
		    "than 1 and at most 64 bits");
		return -1;
	}
	return 0;
}

static EVP_PKEY *
jwk_rsa(const json_t *jwk, struct jws_error *err)
{
	unsigned char	*n = NULL, *e = NULL;
	size_t		 nlen, elen;
	BIGNUM		*bn = NULL, *be = NULL;
	OSSL_PARAM_BLD	*bld = NULL;
	EVP_PKEY	*key = NULL;

	if ((n = jwk_bytes(jwk, "n", &nlen, err)) == NULL ||
	    (e = jwk_bytes(jwk, "e", &elen, err)) == NULL)
		goto out;
	if (rsa_numbers_ok(n, nlen, e, elen, err) == -1)
		goto out;
	if ((bn = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (be = BN_bin2bn(e, (int)elen, NULL)) == NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1) {
		fail(err, "serverInternal", "cannot build RSA key parameters");
		goto out;
	}
	if ((key = key_fromdata("RSA", bld)) == NULL)
		fail(err, "badPublicKey", "RSA key refused by OpenSSL");
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	free(n);
	free(e);
	return key;
}

static EVP_PKEY *
jwk_okp(const json_t *jwk, struct jws_error *err)
{
	const char	*crv;
	unsigned char	*x;
	size_t		 xlen;
	char		 q[QUOTE_MAX + 1];
	OSSL_PARAM_BLD	*bld = NULL;
	EVP_PKEY	*key = NULL;

	if ((crv = jwk_string(jwk, "crv", err)) == NULL)
		return NULL;
	if (strcmp(crv, "Ed25519") != 0) {
		fail(err, "badPublicKey", "OKP curve \"%s\" not supported",
		    quote(crv, q, sizeof(q)));
		return NULL;
	}
	if ((x = jwk_bytes(jwk, "x", &xlen, err)) == NULL)
		return NULL;
	if (xlen != ED25519_LEN) {
		fail(err, "badPublicKey", "Ed25519 \"x\" must be %d bytes",
		    ED25519_LEN);
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    x, xlen) != 1) {
		fail(err, "serverInternal", "cannot build Ed25519 parameters");
		goto out;
	}
	if ((key = key_fromdata("ED25519", bld)) == NULL)
		fail(err, "badPublicKey", "Ed25519 key refused by OpenSSL");
out:
	OSSL_PARAM_BLD_free(bld);
	free(x);
	return key;
}

EVP_PKEY *
jws_jwk_to_pkey(const json_t *jwk, struct jws_error *err)
{
	const char	*kty;
	char		 q[QUOTE_MAX + 1];
	size_t		 i;

	if (jwk == NULL || !json_is_object(jwk)) {
		fail(err, "malformed", "JWK is not an object");
		return NULL;
	}
	/* An account key is public; a JWK with secrets is a client bug. */
	for (i = 0; i < sizeof(private_members) / sizeof(private_members[0]);
	    i++)
		if (json_object_get(jwk, private_members[i]) != NULL) {
			fail(err, "badPublicKey", "JWK has private member "
			    "\"%s\"", private_members[i]);
			return NULL;
		}
	if ((kty = jwk_string(jwk, "kty", err)) == NULL)
		return NULL;
	if (strcmp(kty, "EC") == 0)
		return jwk_ec(jwk, err);
	if (strcmp(kty, "RSA") == 0)
		return jwk_rsa(jwk, err);
	if (strcmp(kty, "OKP") == 0)
		return jwk_okp(jwk, err);
	fail(err, "badPublicKey", "JWK kty \"%s\" not supported",
	    quote(kty, q, sizeof(q)));
	return NULL;
}

/* --- verification ---------------------------------------------------- */

/* Which of our key kinds key is; for EC also its curve row. */
static enum keykind
key_kind(EVP_PKEY *key, const struct curve **curve)
{
	char	 name[64];
	int	 nid;

	*curve = NULL;
	if (EVP_PKEY_is_a(key, "RSA"))
		return KEY_RSA;
	if (EVP_PKEY_is_a(key, "ED25519"))
		return KEY_ED25519;
	if (!EVP_PKEY_is_a(key, "EC"))
		return KEY_NONE;
	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
	    name, sizeof(name), NULL) != 1)
		return KEY_NONE;
	if ((nid = OBJ_sn2nid(name)) == NID_undef)
		nid = EC_curve_nist2nid(name);
	if ((*curve = curve_by_nid(nid)) == NULL)
		return KEY_NONE;
	return (*curve)->kind;
}

/*
 * JWS ECDSA signatures are r || s, each the curve's size (RFC 7518 3.4);
 * OpenSSL wants DER.  Returns the DER length, or -1.
 */
static int
ecdsa_raw_to_der(const unsigned char *sig, size_t siglen, size_t half,
    unsigned char **der)
{
	ECDSA_SIG	*es;
	BIGNUM		*r, *s;
	int		 len;

	*der = NULL;
	if (siglen != 2 * half)
		return -1;
	r = BN_bin2bn(sig, (int)half, NULL);
	s = BN_bin2bn(sig + half, (int)half, NULL);
	if (r == NULL || s == NULL || (es = ECDSA_SIG_new()) == NULL) {
		BN_free(r);
		BN_free(s);
		return -1;
	}
	if (ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return -1;
	}
	/* es now owns r and s. */
	len = i2d_ECDSA_SIG(es, der);
	ECDSA_SIG_free(es);
	if (len <= 0) {
		*der = NULL;
		return -1;
	}
	return len;
}

/* One EVP_DigestVerify; 1 only for a good signature. */
static int
digest_verify(EVP_PKEY *key, const char *md, int rsa,
    const unsigned char *sig, size_t siglen, const char *tbs)
{
	EVP_MD_CTX	*ctx;
	EVP_PKEY_CTX	*pctx = NULL;
	int		 ok = 0;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	if (EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, key,
	    NULL) != 1)
		goto out;
	if (rsa && EVP_PKEY_CTX_set_rsa_padding(pctx,
	    RSA_PKCS1_PADDING) <= 0)
		goto out;
	ok = EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)tbs,
	    strlen(tbs)) == 1;
out:
	EVP_MD_CTX_free(ctx);
	return ok;
}

int
jws_verify(const struct jws *jws, EVP_PKEY *key, struct jws_error *err)
{
	const struct alg	*a;
	const struct curve	*c;
	enum keykind		 kind;
	unsigned char		*der = NULL;
	int			 derlen, bits, ok;
	char			 q[QUOTE_MAX + 1];

	if (jws == NULL || key == NULL || jws->alg == NULL ||
	    jws->signing_input == NULL || jws->sig == NULL) {
		fail(err, "serverInternal", "jws_verify: missing argument");
		return -1;
	}
	if ((a = alg_find(jws->alg)) == NULL) {
		fail(err, "badSignatureAlgorithm", "alg \"%s\" not supported",
		    quote(jws->alg, q, sizeof(q)));
		return -1;
	}
	kind = key_kind(key, &c);
	if (kind == KEY_NONE) {
		fail(err, "badPublicKey", "key type not supported");
		return -1;
	}
	if (kind != a->kind) {
		fail(err, "badSignatureAlgorithm", "alg %s does not fit the "
		    "key", a->name);
		return -1;
	}
	switch (kind) {
	case KEY_P256:
	case KEY_P384:
	case KEY_P521:
		if ((derlen = ecdsa_raw_to_der(jws->sig, jws->sig_len, c->len,
		    &der)) == -1) {
			fail(err, "malformed", "%s signature must be %zu bytes "
			    "(r || s)", a->name, 2 * c->len);
			return -1;
		}
		ok = digest_verify(key, a->md, 0, der, (size_t)derlen,
		    jws->signing_input);
		OPENSSL_free(der);
		break;
	case KEY_RSA:
		/* Keys from storage were checked once; check size again anyway. */
		bits = EVP_PKEY_get_bits(key);
		if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
			fail(err, "badPublicKey", "RSA key of %d bits", bits);
			return -1;
		}
		if (jws->sig_len != (size_t)EVP_PKEY_get_size(key)) {
			fail(err, "malformed", "RS256 signature must be %d "
			    "bytes", EVP_PKEY_get_size(key));
			return -1;
		}
		ok = digest_verify(key, a->md, 1, jws->sig, jws->sig_len,
		    jws->signing_input);
		break;
	case KEY_ED25519:
		if (jws->sig_len != ED25519_SIG_LEN) {
			fail(err, "malformed", "EdDSA signature must be %d "
			    "bytes", ED25519_SIG_LEN);
			return -1;
		}
		ok = digest_verify(key, NULL, 0, jws->sig, jws->sig_len,
		    jws->signing_input);
		break;
	default:
		ok = 0;
		break;
	}
	if (!ok) {
		fail(err, "malformed", "JWS signature does not verify");
		return -1;
	}
	return 0;
}

/* --- thumbprint and canonical JWK ------------------------------------ */

/*
 * A JWK member copied for the thumbprint: it must be a string of the
 * base64url alphabet, so that RFC 7638's "no escaping" holds and the
 * canonical JSON is exactly what every other implementation hashes.
 */
static int
copy_b64_member(json_t *dst, const json_t *jwk, const char *name,
    struct jws_error *err)
{
	const json_t	*v;
	const char	*s;
	size_t		 len, i;

	v = json_object_get(jwk, name);
	if (v == NULL || !json_is_string(v) || json_string_length(v) == 0) {
		fail(err, "malformed", "JWK has no string \"%s\"", name);
		return -1;
	}
	s = json_string_value(v);
	len = json_string_length(v);
	for (i = 0; i < len; i++)
		if (b64url_value((unsigned char)s[i]) < 0) {
			fail(err, "malformed", "JWK \"%s\" is not base64url",
			    name);
			return -1;
		}
	if (json_object_set_new(dst, name, json_stringn(s, len)) != 0) {
		fail(err, "serverInternal", "out of memory");
		return -1;
	}
	return 0;
}

/* The RFC 7638 required members of jwk, in a new object; NULL and err. */
static json_t *
thumbprint_members(const json_t *jwk, struct jws_error *err)
{
	const char	*kty, *crv = NULL;
	json_t		*m;
	char		 q[QUOTE_MAX + 1];
	int		 rc;

	if (jwk == NULL || !json_is_object(jwk)) {
		fail(err, "malformed", "JWK is not an object");
		return NULL;
	}
	if ((kty = jwk_string(jwk, "kty", err)) == NULL)
		return NULL;
	if (strcmp(kty, "EC") == 0 || strcmp(kty, "OKP") == 0) {
		if ((crv = jwk_string(jwk, "crv", err)) == NULL)
			return NULL;
		if ((strcmp(kty, "EC") == 0 && curve_by_jwk(crv) == NULL) ||
		    (strcmp(kty, "OKP") == 0 && strcmp(crv, "Ed25519") != 0)) {
			fail(err, "badPublicKey", "curve \"%s\" not supported",
			    quote(crv, q, sizeof(q)));
			return NULL;
		}
	} else if (strcmp(kty, "RSA") != 0) {
		fail(err, "badPublicKey", "JWK kty \"%s\" not supported",
		    quote(kty, q, sizeof(q)));
		return NULL;
	}
	if ((m = json_object()) == NULL ||
	    json_object_set_new(m, "kty", json_string(kty)) != 0 ||
	    (crv != NULL && json_object_set_new(m, "crv",
	    json_string(crv)) != 0)) {
		json_decref(m);
		fail(err, "serverInternal", "out of memory");
		return NULL;
	}
	if (strcmp(kty, "RSA") == 0)
		rc = copy_b64_member(m, jwk, "e", err) == 0 &&
		    copy_b64_member(m, jwk, "n", err) == 0;
	else if (strcmp(kty, "EC") == 0)
		rc = copy_b64_member(m, jwk, "x", err) == 0 &&
		    copy_b64_member(m, jwk, "y", err) == 0;
	else
		rc = copy_b64_member(m, jwk, "x", err) == 0;
	if (!rc) {
		json_decref(m);
		return NULL;
	}
	return m;
}

int
jws_thumbprint(const json_t *jwk, char *out, size_t outlen,
    struct jws_error *err)
{
	json_t		*m;
	char		*canon, *b64;
	unsigned char	 md[32];
	unsigned int	 mdlen = 0;

	if (out == NULL || outlen < JWS_THUMBPRINT_LEN) {
		fail(err, "serverInternal", "thumbprint buffer too small");
		return -1;
	}
	if ((m = thumbprint_members(jwk, err)) == NULL)
		return -1;
	/* Sorted keys, no whitespace: RFC 7638 section 3.3. */
	canon = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(m);
	if (canon == NULL) {
		fail(err, "serverInternal", "out of memory");
		return -1;
	}
	if (EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(),
	    NULL) != 1 || mdlen != sizeof(md)) {
		free(canon);
		fail(err, "serverInternal", "SHA-256 failed");
		return -1;
	}
	free(canon);
	if ((b64 = b64url_encode(md, sizeof(md))) == NULL) {
		fail(err, "serverInternal", "out of memory");
		return -1;
	}
	/* 32 bytes always encode to 43 characters, which fits. */
	memcpy(out, b64, strlen(b64) + 1);
	free(b64);
	return 0;
}

/* Set name to the base64url of the big-endian bytes of a BIGNUM param. */
static int
set_bn_member(json_t *jwk, const char *name, EVP_PKEY *key,
    const char *param, size_t padto)
{
	BIGNUM		*bn = NULL;
	unsigned char	*buf = NULL;
	char		*b64 = NULL;
	size_t		 len;
	int		 rc = -1;

	if (EVP_PKEY_get_bn_param(key, param, &bn) != 1)
		goto out;
	len = padto != 0 ? padto : (size_t)BN_num_bytes(bn);
	if (len == 0 || (size_t)BN_num_bytes(bn) > len ||
	    (buf = malloc(len)) == NULL)
		goto out;
	if (BN_bn2binpad(bn, buf, (int)len) != (int)len)
		goto out;
	if ((b64 = b64url_encode(buf, len)) == NULL)
		goto out;
	if (json_object_set_new(jwk, name, json_string(b64)) != 0)
		goto out;
	rc = 0;
out:
	BN_free(bn);
	free(buf);
	free(b64);
	return rc;
}

json_t *
jws_pkey_to_jwk(EVP_PKEY *key)
{
	const struct curve	*c;
	json_t			*jwk;
	unsigned char		 raw[ED25519_LEN];
	size_t			 rawlen = sizeof(raw);
	char			*b64;
	int			 ok = 0;

	if (key == NULL || (jwk = json_object()) == NULL)
		return NULL;
	switch (key_kind(key, &c)) {
	case KEY_P256:
	case KEY_P384:
	case KEY_P521:
		ok = json_object_set_new(jwk, "kty", json_string("EC")) == 0 &&
		    json_object_set_new(jwk, "crv", json_string(c->jwk)) == 0 &&
		    set_bn_member(jwk, "x", key, OSSL_PKEY_PARAM_EC_PUB_X,
		    c->len) == 0 &&
		    set_bn_member(jwk, "y", key, OSSL_PKEY_PARAM_EC_PUB_Y,
		    c->len) == 0;
		break;
	case KEY_RSA:
		ok = json_object_set_new(jwk, "kty", json_string("RSA")) == 0 &&
		    set_bn_member(jwk, "n", key, OSSL_PKEY_PARAM_RSA_N, 0) == 0 &&
		    set_bn_member(jwk, "e", key, OSSL_PKEY_PARAM_RSA_E, 0) == 0;
		break;
	case KEY_ED25519:
		if (EVP_PKEY_get_raw_public_key(key, raw, &rawlen) != 1 ||
		    rawlen != ED25519_LEN)
			break;
		if ((b64 = b64url_encode(raw, rawlen)) == NULL)
			break;
		ok = json_object_set_new(jwk, "kty", json_string("OKP")) == 0 &&
		    json_object_set_new(jwk, "crv",
		    json_string("Ed25519")) == 0 &&
		    json_object_set_new(jwk, "x", json_string(b64)) == 0;
		free(b64);
		break;
	default:
		break;
	}
	if (!ok) {
		ERR_clear_error();
		json_decref(jwk);
		return NULL;
	}
	return jwk;
}
