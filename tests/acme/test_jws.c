/*
 * Tests for acme/jws.c: RFC 8555 6.2 request authentication.
 *
 * Good requests are made by jws_testutil (an independent client-side
 * signer); bad ones are crafted from it.  Every refusal checks both the
 * RFC 8555 error type and a piece of the detail line, so a request refused
 * for the wrong reason fails the test.  Known-answer vectors come from
 * RFC 7515 A.3 (ES256), RFC 8037 A.4 (Ed25519) and RFC 7638 3.1.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "jws.h"
#include "jws_testutil.h"

#define NONCE	"bm9uY2UtMTIzNDU2Nzg"
#define URL	"https://ca.local/acme/new-order"
#define KID	"https://ca.local/acme/acct/1"
#define PAYLOAD	"{\"identifiers\":[{\"type\":\"dns\",\"value\":\"cam1.local\"}]}"

/* Keys shared by the tests: made once, RSA keygen is slow. */
struct keys {
	EVP_PKEY	*p256, *p384, *p521, *rsa, *ed;
};

static int
keys_setup(void **state)
{
	struct keys	*k;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return -1;
	k->p256 = jws_test_key("P-256");
	k->p384 = jws_test_key("P-384");
	k->p521 = jws_test_key("P-521");
	k->rsa = jws_test_key("RSA-2048");
	k->ed = jws_test_key("Ed25519");
	*state = k;
	if (k->p256 == NULL || k->p384 == NULL || k->p521 == NULL ||
	    k->rsa == NULL || k->ed == NULL)
		return -1;
	return 0;
}

static int
keys_teardown(void **state)
{
	struct keys	*k = *state;

	if (k == NULL)
		return 0;
	EVP_PKEY_free(k->p256);
	EVP_PKEY_free(k->p384);
	EVP_PKEY_free(k->p521);
	EVP_PKEY_free(k->rsa);
	EVP_PKEY_free(k->ed);
	free(k);
	return 0;
}

static void
assert_err(const struct jws_error *err, const char *type, const char *detail)
{
	if (err->type == NULL || strcmp(err->type, type) != 0 ||
	    strstr(err->detail, detail) == NULL)
		fail_msg("want %s \"...%s...\", got %s \"%s\"", type, detail,
		    err->type ? err->type : "(none)", err->detail);
}

static struct jws *
parse_str(const char *body, struct jws_error *err)
{
	memset(err, 0, sizeof(*err));
	return jws_parse(body, strlen(body), err);
}

/* Parsing body must fail with type and detail. */
static void
parse_refused(const char *body, const char *type, const char *detail)
{
	struct jws_error	 err;
	struct jws		*jws;

	assert_non_null(body);
	jws = parse_str(body, &err);
	if (jws != NULL) {
		jws_free(jws);
		fail_msg("accepted: %s", body);
	}
	assert_err(&err, type, detail);
}

/* Parse body, take the key from its jwk and verify: the server's path. */
static int
parse_and_verify(const char *body, struct jws_error *err)
{
	struct jws	*jws;
	EVP_PKEY	*key;
	int		 rc;

	if ((jws = parse_str(body, err)) == NULL)
		return -1;
	if ((key = jws_jwk_to_pkey(jws->jwk, err)) == NULL) {
		jws_free(jws);
		return -1;
	}
	rc = jws_verify(jws, key, err);
	EVP_PKEY_free(key);
	jws_free(jws);
	return rc;
}

/* Parse and verify body against key, which must fail with type and detail. */
static void
verify_refused(const char *body, EVP_PKEY *key, const char *type,
    const char *detail)
{
	struct jws_error	 err;
	struct jws		*jws;

	assert_non_null(body);
	assert_non_null(jws = parse_str(body, &err));
	assert_int_equal(jws_verify(jws, key, &err), -1);
	assert_err(&err, type, detail);
	jws_free(jws);
}

/* A JWK as JSON text to jws_jwk_to_pkey, which must fail. */
static void
jwk_refused(const char *text, const char *type, const char *detail)
{
	struct jws_error	 err;
	json_t			*jwk;
	EVP_PKEY		*key;

	assert_non_null(jwk = json_loads(text, 0, NULL));
	memset(&err, 0, sizeof(err));
	key = jws_jwk_to_pkey(jwk, &err);
	json_decref(jwk);
	if (key != NULL) {
		EVP_PKEY_free(key);
		fail_msg("JWK accepted: %s", text);
	}
	assert_err(&err, type, detail);
}

/* Replace the first occurrence of from in s (in place, same length). */
static void
patch(char *s, const char *from, const char *to)
{
	char	*p;

	assert_int_equal(strlen(from), strlen(to));
	assert_non_null(p = strstr(s, from));
	memcpy(p, to, strlen(to));
}

/* The value of a member of a flattened body, as a new string. */
static char *
body_field(const char *body, const char *name)
{
	json_t	*o;
	char	*v;

	assert_non_null(o = json_loads(body, 0, NULL));
	assert_non_null(json_string_value(json_object_get(o, name)));
	v = strdup(json_string_value(json_object_get(o, name)));
	json_decref(o);
	assert_non_null(v);
	return v;
}

/* --- good requests --------------------------------------------------- */

static void
roundtrip(EVP_PKEY *key, const char *alg)
{
	struct jws_error	 err;
	struct jws		*jws;
	EVP_PKEY		*pub;
	json_t			*mine, *theirs;
	char			*body, tp1[JWS_THUMBPRINT_LEN];
	char			 tp2[JWS_THUMBPRINT_LEN];

	assert_string_equal(jws_test_alg(key), alg);
	assert_non_null(body = jws_test_sign(key, NULL, NONCE, URL, NULL,
	    PAYLOAD));
	assert_non_null(jws = parse_str(body, &err));
	assert_string_equal(jws->alg, alg);
	assert_string_equal(jws->nonce, NONCE);
	assert_string_equal(jws->url, URL);
	assert_null(jws->kid);
	assert_non_null(jws->jwk);
	assert_int_equal(jws->payload_len, strlen(PAYLOAD));
	assert_string_equal((char *)jws->payload, PAYLOAD);

	assert_non_null(pub = jws_jwk_to_pkey(jws->jwk, &err));
	assert_int_equal(EVP_PKEY_eq(pub, key), 1);
	assert_int_equal(jws_verify(jws, pub, &err), 0);

	/* The canonical JWK is the client's JWK, member for member. */
	assert_non_null(mine = jws_pkey_to_jwk(pub));
	assert_non_null(theirs = jws_test_jwk(key));
	assert_true(json_equal(mine, theirs));
	assert_int_equal(jws_thumbprint(mine, tp1, sizeof(tp1), &err), 0);
	assert_int_equal(jws_thumbprint(jws->jwk, tp2, sizeof(tp2), &err), 0);
	assert_string_equal(tp1, tp2);
	assert_int_equal(strlen(tp1), 43);

	json_decref(mine);
	json_decref(theirs);
	EVP_PKEY_free(pub);
	jws_free(jws);
	free(body);
}

static void
test_roundtrip_es256(void **state)
{
	roundtrip(((struct keys *)*state)->p256, "ES256");
}

static void
test_roundtrip_es384(void **state)
{
	roundtrip(((struct keys *)*state)->p384, "ES384");
}

static void
test_roundtrip_es512(void **state)
{
	roundtrip(((struct keys *)*state)->p521, "ES512");
}

static void
test_roundtrip_rs256(void **state)
{
	roundtrip(((struct keys *)*state)->rsa, "RS256");
}

static void
test_roundtrip_eddsa(void **state)
{
	roundtrip(((struct keys *)*state)->ed, "EdDSA");
}

/* An account request names its key by kid; the caller supplies the key. */
static void
test_kid(void **state)
{
	struct keys		*k = *state;
	struct jws_error	 err;
	struct jws		*jws;
	char			*body;

	assert_non_null(body = jws_test_sign(k->p256, NULL, NONCE, URL, KID,
	    PAYLOAD));
	assert_non_null(jws = parse_str(body, &err));
	assert_string_equal(jws->kid, KID);
	assert_null(jws->jwk);
	assert_int_equal(jws_verify(jws, k->p256, &err), 0);
	/* Another account's key of the same type does not verify. */
	assert_int_equal(jws_verify(jws, k->p384, &err), -1);
	jws_free(jws);
	free(body);
}

static void
test_post_as_get(void **state)
{
	struct keys		*k = *state;
	struct jws_error	 err;
	struct jws		*jws;
	char			*body, *payload;

	assert_non_null(body = jws_test_sign(k->ed, NULL, NONCE, URL, KID, ""));
	payload = body_field(body, "payload");
	assert_string_equal(payload, "");
	free(payload);
	assert_non_null(jws = parse_str(body, &err));
	assert_int_equal(jws->payload_len, 0);
	assert_non_null(jws->payload);
	assert_string_equal((char *)jws->payload, "");
	assert_int_equal(jws_verify(jws, k->ed, &err), 0);
	jws_free(jws);
	free(body);
}

/* RFC 8555 7.3.5: the inner JWS is signed by the new key. */
static void
test_keychange_nested(void **state)
{
	struct keys		*k = *state;
	struct jws_error	 err;
	struct jws		*outer, *inner;
	EVP_PKEY		*newkey;
	json_t			*oldjwk, *kc;
	char			*kctext, *inner_body, *outer_body;
	const char		*url = "https://ca.local/acme/key-change";

	/* Inner: {"account","oldKey"} signed by the new key, with its jwk,
	 * the same url and no nonce; outer: signed by the account key. */
	assert_non_null(oldjwk = jws_test_jwk(k->p256));
	assert_non_null(kc = json_pack("{s:s, s:o}", "account", KID, "oldKey",
	    oldjwk));
	assert_non_null(kctext = json_dumps(kc, JSON_COMPACT));
	json_decref(kc);
	assert_non_null(inner_body = jws_test_sign(k->rsa, NULL, NULL, url,
	    NULL, kctext));
	free(kctext);
	assert_non_null(outer_body = jws_test_sign(k->p256, NULL, NONCE, url,
	    KID, inner_body));

	assert_non_null(outer = parse_str(outer_body, &err));
	assert_int_equal(jws_verify(outer, k->p256, &err), 0);
	assert_non_null(inner = jws_parse_inner(outer, &err));
	assert_null(inner->nonce);
	assert_non_null(inner->jwk);
	assert_non_null(newkey = jws_jwk_to_pkey(inner->jwk, &err));
	assert_int_equal(EVP_PKEY_eq(newkey, k->rsa), 1);
	assert_int_equal(jws_verify(inner, newkey, &err), 0);
	/* The old key does not verify the inner JWS. */
	assert_int_equal(jws_verify(inner, k->p256, &err), -1);

	/* The payload the server checks next: account and oldKey. */
	{
		json_t		*p, *old;
		EVP_PKEY	*oldkey;

		assert_non_null(p = json_loadb((char *)inner->payload,
		    inner->payload_len, JSON_REJECT_DUPLICATES, NULL));
		assert_string_equal(json_string_value(json_object_get(p,
		    "account")), KID);
		assert_non_null(old = json_object_get(p, "oldKey"));
		assert_non_null(oldkey = jws_jwk_to_pkey(old, &err));
		assert_int_equal(EVP_PKEY_eq(oldkey, k->p256), 1);
		EVP_PKEY_free(oldkey);
		json_decref(p);
	}
	EVP_PKEY_free(newkey);
	jws_free(inner);
	jws_free(outer);
	free(outer_body);
	free(inner_body);
}

static void
test_keychange_inner_refusals(void **state)
{
	struct keys		*k = *state;
	struct jws_error	 err;
	struct jws		*outer, *inner;
	char			*inner_body, *outer_body;
	const char		*url = "https://ca.local/acme/key-change";

	/* Inner JWS with a different url. */
	assert_non_null(inner_body = jws_test_sign(k->rsa, NULL, NULL,
	    "https://ca.local/acme/other", NULL, "{}"));
	assert_non_null(outer_body = jws_test_sign(k->p256, NULL, NONCE, url,
	    KID, inner_body));
	assert_non_null(outer = parse_str(outer_body, &err));
	assert_null(inner = jws_parse_inner(outer, &err));
	assert_err(&err, "malformed", "differs from the outer");
	jws_free(outer);
	free(outer_body);
	free(inner_body);

	/* Inner JWS naming its key by kid. */
	assert_non_null(inner_body = jws_test_sign(k->rsa, NULL, NULL, url,
	    KID, "{}"));
	assert_non_null(outer_body = jws_test_sign(k->p256, NULL, NONCE, url,
	    KID, inner_body));
	assert_non_null(outer = parse_str(outer_body, &err));
	assert_null(inner = jws_parse_inner(outer, &err));
	assert_err(&err, "malformed", "must carry \"jwk\"");
	jws_free(outer);
	free(outer_body);
	free(inner_body);

	/* POST-as-GET to key-change has no inner JWS. */
	assert_non_null(outer_body = jws_test_sign(k->p256, NULL, NONCE, url,
	    KID, ""));
	assert_non_null(outer = parse_str(outer_body, &err));
	assert_null(inner = jws_parse_inner(outer, &err));
	assert_err(&err, "malformed", "payload is empty");
	jws_free(outer);
	free(outer_body);
}

/* --- known answers --------------------------------------------------- */

/* Verify a compact JWS from an RFC, whose header has only "alg". */
static int
verify_vector(const char *jwk_text, const char *prot, const char *payload,
    const char *sig, struct jws_error *err)
{
	struct jws	 jws;
	json_t		*jwk;
	EVP_PKEY	*key;
	char		 input[512];
	int		 rc;

	memset(&jws, 0, sizeof(jws));
	assert_true((size_t)snprintf(input, sizeof(input), "%s.%s", prot,
	    payload) < sizeof(input));
	jws.alg = strstr(prot, "eyJhbGciOiJFZERTQSJ9") ? "EdDSA" : "ES256";
	jws.signing_input = input;
	assert_non_null(jws.sig = b64url_decode(sig, strlen(sig),
	    &jws.sig_len));
	assert_non_null(jwk = json_loads(jwk_text, 0, NULL));
	assert_non_null(key = jws_jwk_to_pkey(jwk, err));
	rc = jws_verify(&jws, key, err);
	EVP_PKEY_free(key);
	json_decref(jwk);
	free(jws.sig);
	return rc;
}

/* RFC 7515 A.3: checks the r || s to DER conversion against a real vector. */
static void
test_vector_rfc7515_es256(void **state)
{
	struct jws_error	 err;
	const char		*jwk = "{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
	    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
	const char		*prot = "eyJhbGciOiJFUzI1NiJ9";
	const char		*payload = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4"
	    "MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
	const char		*sig = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4Gawxae"
	    "pmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

	assert_int_equal(verify_vector(jwk, prot, payload, sig, &err), 0);
	/* Same signature, another payload. */
	assert_int_equal(verify_vector(jwk, prot, "e30", sig, &err), -1);
	assert_err(&err, "malformed", "does not verify");
}

/* RFC 8037 A.4. */
static void
test_vector_rfc8037_eddsa(void **state)
{
	struct jws_error	 err;
	const char		*jwk = "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
	const char		*prot = "eyJhbGciOiJFZERTQSJ9";
	const char		*payload = "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
	const char		*sig = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIb"
	    "QR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

	assert_int_equal(verify_vector(jwk, prot, payload, sig, &err), 0);
	assert_int_equal(verify_vector(jwk, prot, "e30", sig, &err), -1);
	assert_err(&err, "malformed", "does not verify");
}

static const char rfc7638_n[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7"
    "aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBX"
    "Arwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c"
    "7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4l"
    "Fd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

static void
test_thumbprint_rfc7638(void **state)
{
	struct jws_error	 err;
	json_t			*jwk, *canon;
	EVP_PKEY		*key;
	char			 tp[JWS_THUMBPRINT_LEN];

	/* Members beyond the required ones do not change the thumbprint. */
	assert_non_null(jwk = json_pack("{s:s, s:s, s:s, s:s, s:s}",
	    "kty", "RSA", "n", rfc7638_n, "e", "AQAB", "alg", "RS256",
	    "kid", "2011-04-29"));
	assert_int_equal(jws_thumbprint(jwk, tp, sizeof(tp), &err), 0);
	assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");

	/* The same through a key and back. */
	assert_non_null(key = jws_jwk_to_pkey(jwk, &err));
	assert_non_null(canon = jws_pkey_to_jwk(key));
	assert_int_equal(json_object_size(canon), 3);
	memset(tp, 0, sizeof(tp));
	assert_int_equal(jws_thumbprint(canon, tp, sizeof(tp), &err), 0);
	assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");

	/* A buffer without room for the NUL is refused, not overrun. */
	assert_int_equal(jws_thumbprint(canon, tp, 43, &err), -1);
	assert_err(&err, "serverInternal", "too small");
	json_decref(canon);
	EVP_PKEY_free(key);
	json_decref(jwk);
}

static void
test_b64url(void **state)
{
	unsigned char	*d;
	char		*e;
	size_t		 len;

	/* RFC 4648 10 vectors, without padding. */
	static const char *const plain[] = { "", "f", "fo", "foo", "foob",
	    "fooba", "foobar" };
	static const char *const enc[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg",
	    "Zm9vYmE", "Zm9vYmFy" };
	size_t		 i;

	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		assert_non_null(e = b64url_encode((const unsigned char *)
		    plain[i], strlen(plain[i])));
		assert_string_equal(e, enc[i]);
		free(e);
		assert_non_null(d = b64url_decode(enc[i], strlen(enc[i]),
		    &len));
		assert_int_equal(len, strlen(plain[i]));
		assert_memory_equal(d, plain[i], len);
		assert_int_equal(d[len], '\0');
		free(d);
	}
	/* The URL-safe alphabet: 0xfb 0xff -> "-_8". */
	assert_non_null(e = b64url_encode((const unsigned char *)"\xfb\xff",
	    2));
	assert_string_equal(e, "-_8");
	free(e);
	assert_null(b64url_decode("Zg==", 4, &len));	/* padding */
	assert_null(b64url_decode("Zm9v\n", 5, &len));	/* whitespace */
	assert_null(b64url_decode("+/8", 3, &len));	/* standard alphabet */
	assert_null(b64url_decode("Z", 1, &len));	/* impossible length */
	assert_null(b64url_decode("Zh", 2, &len));	/* non-zero spare bits */
	assert_null(b64url_decode("Zm9", 3, &len));	/* non-zero spare bits */
	/* The length given is honoured: no read past it. */
	assert_non_null(d = b64url_decode("Zm9v!!!", 4, &len));
	assert_int_equal(len, 3);
	free(d);
}

static void
test_supported_algs(void **state)
{
	json_t	*a;

	assert_non_null(a = jws_supported_algs());
	assert_int_equal(json_array_size(a), 5);
	assert_string_equal(json_string_value(json_array_get(a, 0)), "ES256");
	assert_string_equal(json_string_value(json_array_get(a, 4)), "EdDSA");
	json_decref(a);
}

/* --- refused algorithms and keys ------------------------------------- */

static void
test_alg_none(void **state)
{
	struct keys	*k = *state;
	char		*body, *prot, *payload, *bare;

	body = jws_test_sign(k->p256, "none", NONCE, URL, KID, PAYLOAD);
	parse_refused(body, "badSignatureAlgorithm", "\"none\" not supported");
	/* Also with the empty signature an unsecured JWS has. */
	prot = body_field(body, "protected");
	payload = body_field(body, "payload");
	assert_non_null(bare = jws_test_flattened(prot, payload, ""));
	parse_refused(bare, "badSignatureAlgorithm", "\"none\"");
	free(bare);
	free(prot);
	free(payload);
	free(body);
}

static void
test_alg_hs256(void **state)
{
	struct keys	*k = *state;
	char		*body;

	body = jws_test_sign(k->p256, "HS256", NONCE, URL, KID, PAYLOAD);
	parse_refused(body, "badSignatureAlgorithm", "\"HS256\" not supported");
	free(body);
	/* Case matters: "es256" is not ES256. */
	body = jws_test_sign(k->p256, "es256", NONCE, URL, KID, PAYLOAD);
	parse_refused(body, "badSignatureAlgorithm", "\"es256\"");
	free(body);
}

static void
test_alg_key_mismatch(void **state)
{
	struct keys	*k = *state;
	char		*body;

	/* ES256 header, P-384 key (with its own jwk). */
	body = jws_test_sign(k->p384, "ES256", NONCE, URL, NULL, PAYLOAD);
	verify_refused(body, k->p384, "badSignatureAlgorithm",
	    "ES256 does not fit");
	free(body);
	/* RS256 header, EC key. */
	body = jws_test_sign(k->p256, "RS256", NONCE, URL, KID, PAYLOAD);
	verify_refused(body, k->p256, "badSignatureAlgorithm",
	    "RS256 does not fit");
	free(body);
	/* A good ES256 request checked against an Ed25519 account key. */
	body = jws_test_sign(k->p256, NULL, NONCE, URL, KID, PAYLOAD);
	verify_refused(body, k->ed, "badSignatureAlgorithm", "does not fit");
	free(body);
}

/* Flip one bit of the signature's last byte (after decoding). */
static char *
flip_sig_bit(const char *body)
{
	char		*prot, *payload, *sig, *s64, *out;
	unsigned char	*raw;
	size_t		 len;

	prot = body_field(body, "protected");
	payload = body_field(body, "payload");
	sig = body_field(body, "signature");
	assert_non_null(raw = b64url_decode(sig, strlen(sig), &len));
	raw[len / 2] ^= 0x01;
	assert_non_null(s64 = jws_test_b64(raw, len));
	out = jws_test_flattened(prot, payload, s64);
	free(raw);
	free(s64);
	free(sig);
	free(payload);
	free(prot);
	return out;
}

static void
test_bad_signature(void **state)
{
	struct keys	*k = *state;
	EVP_PKEY	*keys[] = { k->p256, k->p384, k->p521, k->rsa, k->ed };
	char		*body, *bad;
	size_t		 i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		body = jws_test_sign(keys[i], NULL, NONCE, URL, KID, PAYLOAD);
		assert_non_null(bad = flip_sig_bit(body));
		verify_refused(bad, keys[i], "malformed", "does not verify");
		free(bad);
		free(body);
	}
}

/* A payload changed after signing does not verify. */
static void
test_payload_swapped(void **state)
{
	struct keys	*k = *state;
	char		*body, *prot, *sig, *other, *bad;

	body = jws_test_sign(k->p256, NULL, NONCE, URL, KID, PAYLOAD);
	prot = body_field(body, "protected");
	sig = body_field(body, "signature");
	assert_non_null(other = jws_test_b64("{}", 2));
	assert_non_null(bad = jws_test_flattened(prot, other, sig));
	verify_refused(bad, k->p256, "malformed", "does not verify");
	free(bad);
	free(other);
	free(sig);
	free(prot);
	free(body);
}

static void
test_truncated_signature(void **state)
{
	struct keys	*k = *state;
	EVP_PKEY	*keys[] = { k->p256, k->rsa, k->ed };
	const char	*want[] = { "64 bytes (r || s)", "256 bytes", "64 bytes" };
	char		*body, *prot, *payload, *sig, *s64, *bad;
	unsigned char	*raw;
	size_t		 len, i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		body = jws_test_sign(keys[i], NULL, NONCE, URL, KID, PAYLOAD);
		prot = body_field(body, "protected");
		payload = body_field(body, "payload");
		sig = body_field(body, "signature");
		assert_non_null(raw = b64url_decode(sig, strlen(sig), &len));
		assert_non_null(s64 = jws_test_b64(raw, len - 1));
		assert_non_null(bad = jws_test_flattened(prot, payload, s64));
		verify_refused(bad, keys[i], "malformed", want[i]);
		free(bad);
		free(s64);
		free(raw);
		free(sig);
		free(payload);
		free(prot);
		free(body);
	}
}

static void
test_jwk_private_member(void **state)
{
	struct keys	*k = *state;
	json_t		*jwk;
	char		*text;
	const char	*priv[] = { "d", "p", "q", "dp", "dq", "qi", "k" };
	size_t		 i;

	for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
		char want[32];

		assert_non_null(jwk = jws_test_jwk(k->p256));
		assert_int_equal(json_object_set_new(jwk, priv[i],
		    json_string("AQAB")), 0);
		assert_non_null(text = json_dumps(jwk, JSON_COMPACT));
		snprintf(want, sizeof(want), "private member \"%s\"", priv[i]);
		jwk_refused(text, "badPublicKey", want);
		free(text);
		json_decref(jwk);
	}
}

static void
test_jwk_rsa_1024(void **state)
{
	struct jws_error err;
	struct jws	*jws;
	EVP_PKEY	*small;
	json_t		*jwk;
	char		*text, *body;

	assert_non_null(small = jws_test_key("RSA-1024"));
	assert_non_null(jwk = jws_test_jwk(small));
	assert_non_null(text = json_dumps(jwk, JSON_COMPACT));
	jwk_refused(text, "badPublicKey", "1024 bits");
	/* And through a whole request. */
	assert_non_null(body = jws_test_sign(small, NULL, NONCE, URL, NULL,
	    PAYLOAD));
	assert_int_equal(parse_and_verify(body, &err), -1);
	assert_err(&err, "badPublicKey", "1024 bits");
	/* A stored key of that size is refused by jws_verify too. */
	assert_non_null(jws = parse_str(body, &err));
	assert_int_equal(jws_verify(jws, small, &err), -1);
	assert_err(&err, "badPublicKey", "1024 bits");
	jws_free(jws);
	free(body);
	free(text);
	json_decref(jwk);
	EVP_PKEY_free(small);
}

static void
test_jwk_rsa_shape(void **state)
{
	struct keys	*k = *state;
	json_t		*jwk;
	char		*text, *n, *zn, *b;
	unsigned char	*raw, *padded;
	size_t		 len;

	assert_non_null(jwk = jws_test_jwk(k->rsa));
	/* A leading zero octet on n would give the key a second thumbprint. */
	n = strdup(json_string_value(json_object_get(jwk, "n")));
	assert_non_null(raw = b64url_decode(n, strlen(n), &len));
	assert_non_null(padded = calloc(1, len + 1));
	memcpy(padded + 1, raw, len);
	assert_non_null(zn = jws_test_b64(padded, len + 1));
	json_object_set_new(jwk, "n", json_string(zn));
	assert_non_null(text = json_dumps(jwk, JSON_COMPACT));
	jwk_refused(text, "badPublicKey", "leading zero");
	free(text);
	/* An even exponent. */
	json_object_set_new(jwk, "n", json_string(n));
	json_object_set_new(jwk, "e", json_string("AQAA"));
	assert_non_null(text = json_dumps(jwk, JSON_COMPACT));
	jwk_refused(text, "badPublicKey", "exponent must be odd");
	free(text);
	/* e = 1. */
	json_object_set_new(jwk, "e", json_string("AQ"));
	assert_non_null(text = json_dumps(jwk, JSON_COMPACT));
	jwk_refused(text, "badPublicKey", "greater than 1");
	free(text);
	/* An even modulus. */
	raw[len - 1] &= 0xfe;
	assert_non_null(b = jws_test_b64(raw, len));
	json_object_set_new(jwk, "n", json_string(b));
	json_object_set_new(jwk, "e", json_string("AQAB"));
	assert_non_null(text = json_dumps(jwk, JSON_COMPACT));
	jwk_refused(text, "badPublicKey", "modulus is even");
	free(text);
	free(b);
	free(zn);
	free(padded);
	free(raw);
	free(n);
	json_decref(jwk);
}

static void
test_jwk_ec_not_on_curve(void **state)
{
	struct keys	*k = *state;
	json_t		*jwk;
	char		*text, *y;
	unsigned char	*raw;
	size_t		 len;

	assert_non_null(jwk = jws_test_jwk(k->p256));
	y = (char *)json_string_value(json_object_get(jwk, "y"));
	assert_non_null(raw = b64url_decode(y, strlen(y), &len));
	raw[len - 1] ^= 0x01;
	assert_non_null(y = jws_test_b64(raw, len));
	json_object_set_new(jwk, "y", json_string(y));
	assert_non_null(text = json_dumps(jwk, JSON_COMPACT));
	jwk_refused(text, "badPublicKey", "not on the curve");
	free(text);
	free(y);
	free(raw);
	json_decref(jwk);

	/* Coordinates of the wrong size for the curve. */
	assert_non_null(jwk = jws_test_jwk(k->p384));
	json_object_set_new(jwk, "crv", json_string("P-256"));
	assert_non_null(text = json_dumps(jwk, JSON_COMPACT));
	jwk_refused(text, "badPublicKey", "must be 32 bytes");
	free(text);
	json_decref(jwk);
}

static void
test_jwk_unsupported(void **state)
{
	jwk_refused("{\"kty\":\"oct\",\"x\":\"AQAB\"}", "badPublicKey",
	    "kty \"oct\" not supported");
	jwk_refused("{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AA\","
	    "\"y\":\"AA\"}", "badPublicKey", "\"secp256k1\" not supported");
	jwk_refused("{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AA\"}",
	    "badPublicKey", "\"Ed448\" not supported");
	jwk_refused("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}",
	    "badPublicKey", "must be 32 bytes");
	jwk_refused("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":1}", "malformed",
	    "no string \"x\"");
	jwk_refused("{\"crv\":\"P-256\"}", "malformed", "no string \"kty\"");
	jwk_refused("[]", "malformed", "not an object");
}

/* --- refused shapes -------------------------------------------------- */

/* A body whose protected header is text (verbatim), signed by key. */
static char *
with_header(EVP_PKEY *key, const char *hdr)
{
	char	*body;

	assert_non_null(body = jws_test_sign_protected(key, hdr, PAYLOAD));
	return body;
}

static void
test_padding(void **state)
{
	struct keys	*k = *state;
	char		*body, *prot, *payload, *sig, *p, *bad;
	const char	*which[] = { "protected", "payload", "signature" };
	size_t		 i;

	/* PAYLOAD's length is not a multiple of 3, so '=' would be padding. */
	assert_int_not_equal(strlen(PAYLOAD) % 3, 0);
	body = jws_test_sign(k->p256, NULL, NONCE, URL, KID, PAYLOAD);
	prot = body_field(body, "protected");
	payload = body_field(body, "payload");
	sig = body_field(body, "signature");
	for (i = 0; i < 3; i++) {
		char *f[3] = { prot, payload, sig };
		char want[64];

		assert_true(asprintf(&p, "%s=", f[i]) > 0);
		f[i] = p;
		assert_non_null(bad = jws_test_flattened(f[0], f[1], f[2]));
		snprintf(want, sizeof(want), "\"%s\"", which[i]);
		parse_refused(bad, "malformed", want);
		parse_refused(bad, "malformed", "base64url");
		free(bad);
		free(p);
	}
	free(sig);
	free(payload);
	free(prot);
	free(body);
}

static void
test_non_base64(void **state)
{
	struct keys	*k = *state;
	char		*body, *bad;

	body = jws_test_sign(k->p256, NULL, NONCE, URL, KID, PAYLOAD);
	/* Standard-alphabet characters. */
	assert_non_null(bad = strdup(body));
	patch(bad, "\"payload\":\"ey", "\"payload\":\"+/");
	parse_refused(bad, "malformed", "\"payload\" is not base64url");
	free(bad);
	/* Whitespace inside an encoded member. */
	{
		char *prot = body_field(body, "protected");
		char *payload = body_field(body, "payload");
		char *sig = body_field(body, "signature");
		char *spaced;

		assert_true(asprintf(&spaced, " %s", sig) > 0);
		assert_non_null(bad = jws_test_flattened(prot, payload,
		    spaced));
		parse_refused(bad, "malformed", "\"signature\" is empty or "
		    "not base64url");
		free(bad);
		free(spaced);
		free(sig);
		free(payload);
		free(prot);
	}
	/* A character from neither alphabet. */
	assert_non_null(bad = strdup(body));
	patch(bad, "\"protected\":\"ey", "\"protected\":\"e.");
	parse_refused(bad, "malformed", "\"protected\" is not base64url");
	free(bad);
	free(body);

	/* A nonce that is not base64url cannot be one of ours. */
	body = jws_test_sign(k->p256, NULL, "abc+def", URL, KID, PAYLOAD);
	parse_refused(body, "badNonce", "not base64url");
	free(body);
}

static void
test_jwk_and_kid(void **state)
{
	struct keys	*k = *state;
	json_t		*jwk;
	char		*jwktext, *hdr, *body;

	assert_non_null(jwk = jws_test_jwk(k->p256));
	assert_non_null(jwktext = json_dumps(jwk, JSON_COMPACT));
	assert_true(asprintf(&hdr, "{\"alg\":\"ES256\",\"nonce\":\"%s\","
	    "\"url\":\"%s\",\"jwk\":%s,\"kid\":\"%s\"}", NONCE, URL, jwktext,
	    KID) > 0);
	body = with_header(k->p256, hdr);
	parse_refused(body, "malformed", "both \"jwk\" and \"kid\"");
	free(body);
	free(hdr);
	free(jwktext);
	json_decref(jwk);
}

static void
test_neither_jwk_nor_kid(void **state)
{
	struct keys	*k = *state;
	char		*body;

	body = with_header(k->p256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE
	    "\",\"url\":\"" URL "\"}");
	parse_refused(body, "malformed", "neither \"jwk\" nor \"kid\"");
	free(body);
	/* Wrong types count as absent-or-bad, never as present. */
	body = with_header(k->p256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE
	    "\",\"url\":\"" URL "\",\"jwk\":\"x\"}");
	parse_refused(body, "malformed", "\"jwk\" is not an object");
	free(body);
	body = with_header(k->p256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE
	    "\",\"url\":\"" URL "\",\"kid\":7}");
	parse_refused(body, "malformed", "\"kid\" is not a non-empty string");
	free(body);
	/* A key named by URL or certificate instead. */
	body = with_header(k->p256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE
	    "\",\"url\":\"" URL "\",\"kid\":\"" KID "\","
	    "\"jku\":\"https://evil.example/k\"}");
	parse_refused(body, "malformed", "\"jku\" not allowed");
	free(body);
}

static void
test_missing_nonce(void **state)
{
	struct keys	*k = *state;
	char		*body;

	body = jws_test_sign(k->p256, NULL, NULL, URL, KID, PAYLOAD);
	parse_refused(body, "badNonce", "no \"nonce\"");
	free(body);
	body = jws_test_sign(k->p256, NULL, "", URL, KID, PAYLOAD);
	parse_refused(body, "badNonce", "\"nonce\" is not a non-empty string");
	free(body);
}

static void
test_missing_url(void **state)
{
	struct keys	*k = *state;
	char		*body;

	body = jws_test_sign(k->p256, NULL, NONCE, NULL, KID, PAYLOAD);
	parse_refused(body, "malformed", "no \"url\"");
	free(body);
	body = with_header(k->p256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE
	    "\",\"url\":[],\"kid\":\"" KID "\"}");
	parse_refused(body, "malformed", "\"url\" is not a non-empty string");
	free(body);
}

static void
test_unknown_member(void **state)
{
	struct keys	*k = *state;
	char		*body, *bad;

	body = jws_test_sign(k->p256, NULL, NONCE, URL, KID, PAYLOAD);
	assert_true(asprintf(&bad, "{\"extra\":1,%s", body + 1) > 0);
	parse_refused(bad, "malformed", "unknown member \"extra\"");
	free(bad);
	/* Unprotected header. */
	assert_true(asprintf(&bad, "{\"header\":{\"kid\":\"x\"},%s",
	    body + 1) > 0);
	parse_refused(bad, "malformed", "unprotected \"header\"");
	free(bad);
	/* An untrusted member name is quoted safely. */
	assert_true(asprintf(&bad, "{\"a\\n\\\"b\":1,%s", body + 1) > 0);
	parse_refused(bad, "malformed", "unknown member \"a??b\"");
	free(bad);
	free(body);
}

static void
test_general_serialization(void **state)
{
	struct keys	*k = *state;
	char		*body, *prot, *payload, *sig, *bad;

	body = jws_test_sign(k->p256, NULL, NONCE, URL, KID, PAYLOAD);
	prot = body_field(body, "protected");
	payload = body_field(body, "payload");
	sig = body_field(body, "signature");
	assert_true(asprintf(&bad, "{\"payload\":\"%s\",\"signatures\":"
	    "[{\"protected\":\"%s\",\"signature\":\"%s\"}]}", payload, prot,
	    sig) > 0);
	parse_refused(bad, "malformed", "general serialization");
	free(bad);
	/* Compact serialization is not JSON at all. */
	assert_true(asprintf(&bad, "%s.%s.%s", prot, payload, sig) > 0);
	parse_refused(bad, "malformed", "not JSON");
	free(bad);
	/* A JSON string holding the compact form is not an object. */
	assert_true(asprintf(&bad, "[\"%s.%s.%s\"]", prot, payload, sig) > 0);
	parse_refused(bad, "malformed", "not a JSON object");
	free(bad);
	free(sig);
	free(payload);
	free(prot);
	free(body);
}

static void
test_duplicate_keys(void **state)
{
	struct keys	*k = *state;
	char		*body, *bad;

	/* In the body: a second "payload" besides the signed one. */
	body = jws_test_sign(k->p256, NULL, NONCE, URL, KID, PAYLOAD);
	assert_true(asprintf(&bad, "{\"payload\":\"e30\",%s", body + 1) > 0);
	parse_refused(bad, "malformed", "duplicate");
	free(bad);
	free(body);
	/* In the protected header: two urls, as some parsers keep the last. */
	body = with_header(k->p256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE
	    "\",\"url\":\"" URL "\",\"url\":\"https://x/\",\"kid\":\"" KID
	    "\"}");
	parse_refused(body, "malformed", "duplicate");
	free(body);
	/* Inside the jwk. */
	body = with_header(k->p256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE
	    "\",\"url\":\"" URL "\",\"jwk\":{\"kty\":\"EC\",\"kty\":\"RSA\"}}");
	parse_refused(body, "malformed", "duplicate");
	free(body);
}

static void
test_crit_and_b64(void **state)
{
	struct keys	*k = *state;
	char		*body;

	body = with_header(k->p256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE
	    "\",\"url\":\"" URL "\",\"kid\":\"" KID "\",\"crit\":[\"exp\"],"
	    "\"exp\":1}");
	parse_refused(body, "malformed", "\"crit\"");
	free(body);
	body = with_header(k->p256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE
	    "\",\"url\":\"" URL "\",\"kid\":\"" KID "\",\"crit\":[]}");
	parse_refused(body, "malformed", "\"crit\"");
	free(body);
	body = with_header(k->p256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE
	    "\",\"url\":\"" URL "\",\"kid\":\"" KID "\",\"b64\":false}");
	parse_refused(body, "malformed", "unencoded payload");
	free(body);
}

static void
test_header_shape(void **state)
{
	struct keys	*k = *state;
	char		*body;

	body = with_header(k->p256, "[\"ES256\"]");
	parse_refused(body, "malformed", "header is not an object");
	free(body);
	body = with_header(k->p256, "{\"nonce\":\"" NONCE "\",\"url\":\""
	    URL "\",\"kid\":\"" KID "\"}");
	parse_refused(body, "malformed", "no \"alg\"");
	free(body);
	body = with_header(k->p256, "{\"alg\":256,\"nonce\":\"" NONCE
	    "\",\"url\":\"" URL "\",\"kid\":\"" KID "\"}");
	parse_refused(body, "malformed", "\"alg\" is not a non-empty string");
	free(body);
	/* An embedded NUL would cut the header short as a C string. */
	body = with_header(k->p256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE
	    "\",\"url\":\"" URL "\\u0000x\",\"kid\":\"" KID "\"}");
	parse_refused(body, "malformed", "not JSON");
	free(body);
	/* Empty protected header and empty signature. */
	parse_refused("{\"protected\":\"\",\"payload\":\"\",\"signature\":"
	    "\"AA\"}", "malformed", "\"protected\" is empty");
	body = jws_test_sign(k->p256, NULL, NONCE, URL, KID, PAYLOAD);
	{
		char *prot = body_field(body, "protected");
		char *bad = jws_test_flattened(prot, "", "");

		parse_refused(bad, "malformed", "\"signature\" is empty");
		free(bad);
		free(prot);
	}
	free(body);
	/* Members of the wrong type and missing members. */
	parse_refused("{\"protected\":1,\"payload\":\"\",\"signature\":\"AA\"}",
	    "malformed", "\"protected\" is not a string");
	parse_refused("{\"protected\":\"e30\",\"signature\":\"AA\"}",
	    "malformed", "no \"payload\"");
}

static void
test_body_limits(void **state)
{
	struct keys		*k = *state;
	struct jws_error	 err;
	struct jws		*jws;
	char			*big, *body;
	size_t			 n = JWS_MAX_BODY + 1;

	parse_refused("", "malformed", "empty");
	memset(&err, 0, sizeof(err));
	assert_null(jws_parse(NULL, 0, &err));
	assert_err(&err, "malformed", "empty");

	/* One byte over the limit is refused before JSON parsing. */
	assert_non_null(big = malloc(n));
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	memset(&err, 0, sizeof(err));
	assert_null(jws_parse(big, n, &err));
	assert_err(&err, "malformed", "larger than 65536");
	free(big);

	/* The length is honoured: bytes after it are not read. */
	body = jws_test_sign(k->p256, NULL, NONCE, URL, KID, PAYLOAD);
	assert_non_null(big = malloc(strlen(body) + 8));
	memcpy(big, body, strlen(body));
	memcpy(big + strlen(body), "garbage", 8);
	assert_non_null(jws = jws_parse(big, strlen(body), &err));
	jws_free(jws);
	/* Trailing garbage inside the length is refused. */
	assert_null(jws = jws_parse(big, strlen(body) + 7, &err));
	assert_err(&err, "malformed", "not JSON");
	free(big);
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_es256),
		cmocka_unit_test(test_roundtrip_es384),
		cmocka_unit_test(test_roundtrip_es512),
		cmocka_unit_test(test_roundtrip_rs256),
		cmocka_unit_test(test_roundtrip_eddsa),
		cmocka_unit_test(test_kid),
		cmocka_unit_test(test_post_as_get),
		cmocka_unit_test(test_keychange_nested),
		cmocka_unit_test(test_keychange_inner_refusals),
		cmocka_unit_test(test_vector_rfc7515_es256),
		cmocka_unit_test(test_vector_rfc8037_eddsa),
		cmocka_unit_test(test_thumbprint_rfc7638),
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_supported_algs),
		cmocka_unit_test(test_alg_none),
		cmocka_unit_test(test_alg_hs256),
		cmocka_unit_test(test_alg_key_mismatch),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_payload_swapped),
		cmocka_unit_test(test_truncated_signature),
		cmocka_unit_test(test_jwk_private_member),
		cmocka_unit_test(test_jwk_rsa_1024),
		cmocka_unit_test(test_jwk_rsa_shape),
		cmocka_unit_test(test_jwk_ec_not_on_curve),
		cmocka_unit_test(test_jwk_unsupported),
		cmocka_unit_test(test_padding),
		cmocka_unit_test(test_non_base64),
		cmocka_unit_test(test_jwk_and_kid),
		cmocka_unit_test(test_neither_jwk_nor_kid),
		cmocka_unit_test(test_missing_nonce),
		cmocka_unit_test(test_missing_url),
		cmocka_unit_test(test_unknown_member),
		cmocka_unit_test(test_general_serialization),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_crit_and_b64),
		cmocka_unit_test(test_header_shape),
		cmocka_unit_test(test_body_limits),
	};

	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
