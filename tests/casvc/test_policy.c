/*
 * Unit tests for casvc/policy.c: one refusal per rule, each checking the
 * error class and the reason line, and the accepted shapes of CSR that
 * stock ACME clients send.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "policy.h"
#include "policy_testutil.h"

static const char *const domains[] = { "home.arpa" };

static const struct policy base_policy = {
	.server_name = "iotca-test",
	.domains = domains,
	.ndomains = 1,
	.strict_cn = 0,
	.max_days = 90,
};

struct keys {
	EVP_PKEY	*p256, *p384, *p521, *rsa2048, *rsa3072, *ed25519;
};

static int
setup_keys(void **state)
{
	struct keys	*k = calloc(1, sizeof(*k));

	if (k == NULL)
		return -1;
	k->p256 = tu_key("EC:P-256");
	k->p384 = tu_key("EC:P-384");
	k->p521 = tu_key("EC:P-521");
	k->rsa2048 = tu_key("RSA:2048");
	k->rsa3072 = tu_key("RSA:3072");
	k->ed25519 = tu_key("ED25519");
	*state = k;
	return 0;
}

static int
teardown_keys(void **state)
{
	struct keys	*k = *state;

	EVP_PKEY_free(k->p256);
	EVP_PKEY_free(k->p384);
	EVP_PKEY_free(k->p521);
	EVP_PKEY_free(k->rsa2048);
	EVP_PKEY_free(k->rsa3072);
	EVP_PKEY_free(k->ed25519);
	free(k);
	return 0;
}

#define KEYS	((struct keys *)*state)

/* Check a CSR, expect class want and a reason containing substr; frees req. */
static void
expect_csr(const struct policy *pol, X509_REQ *req, enum policy_err want,
    const char *substr)
{
	struct csr_request	 out;
	char			 reason[512];
	enum policy_err		 e;

	assert_non_null(req);
	memset(&out, 0xa5, sizeof(out));
	e = policy_check_csr(pol, req, &out, reason, sizeof(reason));
	X509_REQ_free(req);
	if (e != want || strstr(reason, substr) == NULL)
		print_error("got %d (%s) \"%s\", wanted %d with \"%s\"\n", e,
		    policy_err_type(e), reason, want, substr);
	assert_int_equal(e, want);
	assert_non_null(strstr(reason, substr));
	if (want != POLICY_OK) {
		/* A refusal leaves no half-filled result behind. */
		assert_int_equal(out.ndns, 0);
		assert_int_equal(out.nip, 0);
		assert_string_equal(out.device_id, "");
	}
}

static void
refuse_csr(void **state, X509_REQ *req, enum policy_err want,
    const char *substr)
{
	(void)state;
	expect_csr(&base_policy, req, want, substr);
}

static struct csr_request
accept_csr(const struct policy *pol, X509_REQ *req)
{
	struct csr_request	 out;
	char			 reason[512];
	enum policy_err		 e;

	assert_non_null(req);
	e = policy_check_csr(pol, req, &out, reason, sizeof(reason));
	X509_REQ_free(req);
	if (e != POLICY_OK)
		print_error("refused: %s\n", reason);
	assert_int_equal(e, POLICY_OK);
	assert_string_equal(reason, "");
	return out;
}

static const char good_san[] =
    "DNS:device-12cd56.local,DNS:device-12cd56.home.arpa";

/*
 * A P-384 CSR for device-12cd56 with good_san plus one more requested
 * extension, given in openssl.cnf syntax ("critical,CA:TRUE").
 */
static X509_REQ *
csr_with_ext(EVP_PKEY *key, int nid, const char *value)
{
	STACK_OF(X509_EXTENSION)	*exts = NULL;
	X509_EXTENSION			*san, *extra;
	X509_REQ			*req;

	assert_non_null(req = X509_REQ_new());
	assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(
	    req), "CN", MBSTRING_ASC, (const unsigned char *)"device-12cd56",
	    -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_non_null(san = X509V3_EXT_conf_nid(NULL, NULL,
	    NID_subject_alt_name, good_san));
	assert_non_null(extra = X509V3_EXT_conf_nid(NULL, NULL, nid, value));
	assert_non_null(exts = sk_X509_EXTENSION_new_null());
	assert_true(sk_X509_EXTENSION_push(exts, extra) > 0);
	assert_true(sk_X509_EXTENSION_push(exts, san) > 0);
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	assert_true(X509_REQ_sign(req, key, EVP_sha384()) > 0);
	return req;
}

/* --- refusals: a CSR that asks to be a CA ------------------------------ */

static void
refuse_ca_true(void **state)
{
	refuse_csr(state, csr_with_ext(KEYS->p384, NID_basic_constraints,
	    "critical,CA:TRUE"), POLICY_BAD_CSR, "basicConstraints CA:TRUE");
}

static void
refuse_keycertsign(void **state)
{
	refuse_csr(state, csr_with_ext(KEYS->p384, NID_key_usage,
	    "critical,digitalSignature,keyCertSign"), POLICY_BAD_CSR,
	    "keyCertSign or cRLSign");
}

static void
refuse_crlsign(void **state)
{
	refuse_csr(state, csr_with_ext(KEYS->p384, NID_key_usage,
	    "cRLSign"), POLICY_BAD_CSR, "keyCertSign or cRLSign");
}

/* CA:FALSE and a leaf's key usage are harmless: python-cryptography and
 * some device SDKs send them. */
static void
accept_ca_false(void **state)
{
	struct csr_request r;

	r = accept_csr(&base_policy, csr_with_ext(KEYS->p384,
	    NID_basic_constraints, "critical,CA:FALSE"));
	assert_string_equal(r.device_id, "device-12cd56");
	r = accept_csr(&base_policy, csr_with_ext(KEYS->p384, NID_key_usage,
	    "critical,digitalSignature,keyAgreement"));
	assert_string_equal(r.device_id, "device-12cd56");
}

/* --- refusals: key and signature --------------------------------------- */

static void
refuse_p256(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p256, "SHA256", "device-12cd56",
	    good_san), POLICY_BAD_PUBLIC_KEY,
	    "key is EC P-256; only P-384, P-521 or RSA >= 3072 are accepted");
}

static void
refuse_rsa2048(void **state)
{
	refuse_csr(state, tu_csr(KEYS->rsa2048, "SHA256", "device-12cd56",
	    good_san), POLICY_BAD_PUBLIC_KEY, "key is RSA-2048;");
}

static void
refuse_ed25519(void **state)
{
	refuse_csr(state, tu_csr(KEYS->ed25519, NULL, "device-12cd56",
	    good_san), POLICY_BAD_PUBLIC_KEY, "key is ED25519;");
}

/* RSA with a public exponent other than 65537 (e = 3 was issued once). */
static void
refuse_rsa_exponent3(void **state)
{
	EVP_PKEY	*k = tu_key("RSA-E3:3072");
	char		 reason[256];

	assert_int_equal(policy_check_key(k, reason, sizeof(reason)),
	    POLICY_BAD_PUBLIC_KEY);
	assert_non_null(strstr(reason, "public exponent 3"));
	refuse_csr(state, tu_csr(k, "SHA256", "device-12cd56", good_san),
	    POLICY_BAD_PUBLIC_KEY, "RSA public exponent 3; only 65537 is "
	    "accepted");
	EVP_PKEY_free(k);
}

/*
 * The key reuse rule compares SHA-256 of the DER SubjectPublicKeyInfo: the
 * same for a key and for a CSR or certificate carrying it, different for
 * another key, and written as 64 lower-case hex digits.
 */
static void
spki_digest(void **state)
{
	X509_REQ	*req = tu_csr(KEYS->p384, "SHA384", "device-12cd56",
			    good_san);
	unsigned char	 md[32], *der = NULL;
	char		 a[POLICY_SPKI_HEX_LEN + 1], b[sizeof(a)], c[sizeof(a)];
	char		 want[sizeof(a)];
	unsigned int	 mdlen = 0, i;
	int		 len;

	assert_int_equal(policy_spki_sha256(KEYS->p384, a, sizeof(a)), 0);
	assert_int_equal(policy_spki_sha256(X509_REQ_get0_pubkey(req), b,
	    sizeof(b)), 0);
	assert_int_equal(policy_spki_sha256(KEYS->p521, c, sizeof(c)), 0);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(strlen(a), 64);
	assert_true((len = i2d_PUBKEY(KEYS->p384, &der)) > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(),
	    NULL), 1);
	for (i = 0; i < mdlen; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(a, want);
	/* Too small an output buffer or no key: refused, not overrun. */
	assert_int_equal(policy_spki_sha256(KEYS->p384, c, 64), -1);
	assert_int_equal(policy_spki_sha256(NULL, c, sizeof(c)), -1);
	OPENSSL_free(der);
	X509_REQ_free(req);
}

/* SHA-256 of i2d_PUBKEY's DER, in hex: what the digest must be. */
static void
i2d_digest(EVP_PKEY *pk, char *out)
{
	unsigned char	 md[32], *der = NULL;
	unsigned int	 mdlen = 0, i;
	int		 len;

	assert_true((len = i2d_PUBKEY(pk, &der)) > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(),
	    NULL), 1);
	for (i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	OPENSSL_free(der);
}

/*
 * EC keys are hashed without OpenSSL's encoders (policy.c): the digest is
 * still that of i2d_PUBKEY's bytes for every curve, for a key decoded from
 * a CSR, and for a key whose point is written compressed (which takes the
 * encoder's path), so no key is ever known under two digests.
 */
static void
spki_digest_ec_as_encoder(void **state)
{
	EVP_PKEY	*keys[] = { KEYS->p256, KEYS->p384, KEYS->p521,
			    KEYS->rsa3072, NULL, NULL };
	X509_REQ	*req = tu_csr(KEYS->p384, "SHA384", "device-12cd56",
			    good_san);
	EVP_PKEY	*comp;
	char		 got[POLICY_SPKI_HEX_LEN + 1], want[sizeof(got)];
	size_t		 i;

	assert_non_null(comp = EVP_PKEY_dup(KEYS->p384));
	assert_int_equal(EVP_PKEY_set_utf8_string_param(comp,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED), 1);
	keys[4] = X509_REQ_get0_pubkey(req);
	keys[5] = comp;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		assert_non_null(keys[i]);
		assert_int_equal(policy_spki_sha256(keys[i], got, sizeof(got)), 0);
		i2d_digest(keys[i], want);
		assert_string_equal(got, want);
	}
	/* The compressed form is other bytes, so another digest. */
	policy_spki_sha256(KEYS->p384, want, sizeof(want));
	policy_spki_sha256(comp, got, sizeof(got));
	assert_string_not_equal(got, want);
	EVP_PKEY_free(comp);
	X509_REQ_free(req);
}

/* P-384 spelled out as explicit parameters, as received on the wire. */
static void
refuse_explicit_curve(void **state)
{
	EVP_PKEY	*k = tu_key("EC-EXPLICIT:P-384");
	X509_REQ	*req = tu_csr(k, "SHA384", "device-12cd56", good_san);
	unsigned char	*der;
	size_t		 len;
	char		 reason[256];

	der = tu_der(req, &len);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	req = policy_parse_csr(der, len, reason, sizeof(reason));
	OPENSSL_free(der);
	refuse_csr(state, req, POLICY_BAD_PUBLIC_KEY,
	    "key is EC with explicit curve parameters");
}

static void
refuse_sha1(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA1", "device-12cd56",
	    good_san), POLICY_BAD_SIGNATURE_ALG, "signature hash SHA1 is not "
	    "accepted");
}

static void
refuse_sha224(void **state)
{
	refuse_csr(state, tu_csr(KEYS->rsa3072, "SHA224", "device-12cd56",
	    good_san), POLICY_BAD_SIGNATURE_ALG, "SHA224");
}

static void
refuse_pss_sha1(void **state)
{
	refuse_csr(state, tu_csr_pss(KEYS->rsa3072, "SHA1", "device-12cd56",
	    good_san), POLICY_BAD_SIGNATURE_ALG, "SHA1");
}

static void
accept_pss_sha256(void **state)
{
	struct csr_request r = accept_csr(&base_policy,
	    tu_csr_pss(KEYS->rsa3072, "SHA256", "device-12cd56", good_san));

	assert_string_equal(r.device_id, "device-12cd56");
}

/* Flip a bit in the last byte of the DER: inside the signature value. */
static void
refuse_bad_signature(void **state)
{
	X509_REQ	*req = tu_csr(KEYS->p384, "SHA384", "device-12cd56",
			    good_san);
	unsigned char	*der;
	size_t		 len;
	char		 reason[256];

	der = tu_der(req, &len);
	X509_REQ_free(req);
	der[len - 1] ^= 0x01;
	req = policy_parse_csr(der, len, reason, sizeof(reason));
	OPENSSL_free(der);
	refuse_csr(state, req, POLICY_BAD_CSR,
	    "CSR self-signature does not verify");
}

/* --- refusals: names ---------------------------------------------------- */

static void
refuse_no_san(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", "device-12cd56", NULL),
	    POLICY_BAD_CSR, "no subjectAltName");
}

static void
refuse_ip_only(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", "device-12cd56",
	    "IP:192.168.1.20"), POLICY_BAD_CSR, "no DNS name");
}

static void
refuse_localhost(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", NULL,
	    "DNS:localhost"), POLICY_REJECTED_IDENTIFIER,
	    "DNS name \"localhost\" is never certified");
}

static void
refuse_localhost_local(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", NULL,
	    "DNS:localhost.local"), POLICY_REJECTED_IDENTIFIER,
	    "DNS name \"localhost.local\" uses the reserved label "
	    "\"localhost\"");
}

static void
refuse_server_name(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", NULL,
	    "DNS:IOTCA-test.local"), POLICY_REJECTED_IDENTIFIER,
	    "DNS name \"iotca-test.local\" uses the server's own name");
}

static void
refuse_server_name_cn(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", "iotca-test",
	    "DNS:iotca-test.home.arpa"), POLICY_REJECTED_IDENTIFIER,
	    "server's own name \"iotca-test\"");
}

static void
refuse_public_name(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", NULL,
	    "DNS:device-12cd56.local,DNS:example.org"),
	    POLICY_REJECTED_IDENTIFIER, "DNS name \"example.org\" is not "
	    "under .local or a configured domain (home.arpa)");
}

static void
refuse_unconfigured_domain(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", NULL,
	    "DNS:x.corp.example"), POLICY_REJECTED_IDENTIFIER,
	    "DNS name \"x.corp.example\" is not under .local or a configured "
	    "domain (home.arpa)");
}

static void
refuse_label_suffix_trap(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", NULL,
	    "DNS:x.evilhome.arpa"), POLICY_REJECTED_IDENTIFIER,
	    "DNS name \"x.evilhome.arpa\" is not under .local");
}

static void
refuse_sub_sub_name(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", NULL,
	    "DNS:printer.device-12cd56.home.arpa"), POLICY_REJECTED_IDENTIFIER,
	    "has more than one label left of \"home.arpa\"");
}

static void
refuse_wildcard(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", NULL,
	    "DNS:*.local"), POLICY_REJECTED_IDENTIFIER, "wildcard");
}

static void
refuse_public_ip(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", "device-12cd56",
	    "DNS:device-12cd56.local,IP:8.8.8.8"), POLICY_REJECTED_IDENTIFIER,
	    "IP address 8.8.8.8 is not loopback, link-local or private-use");
}

static void
refuse_cgnat_ip(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", "device-12cd56",
	    "DNS:device-12cd56.local,IP:100.64.0.1"),
	    POLICY_REJECTED_IDENTIFIER, "IP address 100.64.0.1 is shared "
	    "address space");
}

static void
refuse_mapped_ip(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", "device-12cd56",
	    "DNS:device-12cd56.local,IP:::ffff:8.8.8.8"),
	    POLICY_REJECTED_IDENTIFIER, "::ffff:8.8.8.8 is an IPv4-mapped");
}

static void
refuse_mixed_devices(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", NULL,
	    "DNS:device-a.local,DNS:device-b.local"),
	    POLICY_REJECTED_IDENTIFIER, "DNS name \"device-b.local\" does not "
	    "start with the device ID \"device-a\"");
}

static void
refuse_cn_other_device(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", "device-a",
	    "DNS:device-b.local"), POLICY_REJECTED_IDENTIFIER,
	    "does not start with the device ID \"device-a\"");
}

static void
refuse_cn_not_in_san(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", "device-a.home.arpa",
	    "DNS:device-a.local"), POLICY_BAD_CSR,
	    "commonName \"device-a.home.arpa\" is not among the "
	    "subjectAltName");
}

static void
refuse_bad_cn(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", "My Printer",
	    "DNS:device-a.local"), POLICY_BAD_CSR,
	    "commonName \"my printer\" is neither a host label");
}

static void
refuse_email_san(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", "device-12cd56",
	    "DNS:device-12cd56.local,email:admin@device-12cd56.local"),
	    POLICY_REJECTED_IDENTIFIER, "subjectAltName of type email");
}

static void
refuse_uri_san(void **state)
{
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", "device-12cd56",
	    "DNS:device-12cd56.local,URI:https://device-12cd56.local/"),
	    POLICY_REJECTED_IDENTIFIER, "subjectAltName of type URI");
}

/* A DNS name "device-a\0.evil.org.local": a C reader would see "device-a". */
static void
refuse_embedded_nul(void **state)
{
	static const char	 name[] = "device-a.local\0.example.org";
	GENERAL_NAMES		*gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME		*gn = GENERAL_NAME_new();
	ASN1_IA5STRING		*s = ASN1_IA5STRING_new();

	assert_non_null(gens);
	assert_non_null(gn);
	assert_non_null(s);
	assert_int_equal(ASN1_STRING_set(s, name, sizeof(name) - 1), 1);
	GENERAL_NAME_set0_value(gn, GEN_DNS, s);
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
	refuse_csr(state, tu_csr_gens(KEYS->p384, "SHA384", NULL, gens),
	    POLICY_REJECTED_IDENTIFIER, "holds a NUL");
}

static void
refuse_too_many_names(void **state)
{
	char	 san[4096];
	size_t	 o = 0;
	int	 i;

	for (i = 0; i <= POLICY_MAX_NAMES; i++)
		o += (size_t)snprintf(san + o, sizeof(san) - o,
		    "%sIP:10.0.0.%d", i ? "," : "", i + 1);
	snprintf(san + o, sizeof(san) - o, ",DNS:device-a.local");
	refuse_csr(state, tu_csr(KEYS->p384, "SHA384", NULL, san),
	    POLICY_REJECTED_IDENTIFIER, "more than 32 distinct");
}

static void
refuse_strict_no_cn(void **state)
{
	struct policy	 pol = base_policy;

	pol.strict_cn = 1;
	expect_csr(&pol, tu_csr(KEYS->p384, "SHA384", NULL, good_san),
	    POLICY_BAD_CSR, "strict mode: the commonName must be the device "
	    "ID");
}

static void
refuse_strict_dns_cn(void **state)
{
	struct policy	 pol = base_policy;

	pol.strict_cn = 1;
	expect_csr(&pol, tu_csr(KEYS->p384, "SHA384", "device-12cd56.local",
	    good_san), POLICY_BAD_CSR, "strict mode: the commonName must be "
	    "the device ID (one label), not \"device-12cd56.local\"");
}

/* --- parsing ------------------------------------------------------------ */

static void
parse_garbage(void **state)
{
	static const unsigned char junk[] = { 0x30, 0x82, 0x01, 0x00, 0xde,
	    0xad, 0xbe, 0xef };
	static const char text[] = "hello, I am not a CSR";
	char	 reason[256];

	(void)state;
	assert_null(policy_parse_csr(junk, sizeof(junk), reason,
	    sizeof(reason)));
	assert_non_null(strstr(reason, "not a DER or PEM"));
	assert_null(policy_parse_csr((const unsigned char *)text,
	    sizeof(text) - 1, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "not a DER or PEM"));
	assert_null(policy_parse_csr(junk, 0, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "empty"));
	assert_null(policy_parse_csr((const unsigned char *)
	    "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", 41, reason,
	    sizeof(reason)));
	assert_non_null(strstr(reason, "PEM"));
}

static void
parse_der_and_trailing(void **state)
{
	X509_REQ	*req = tu_csr(KEYS->p384, "SHA384", "device-12cd56",
			    good_san), *back;
	unsigned char	*der, *longer;
	size_t		 len;
	char		 reason[256];

	der = tu_der(req, &len);
	X509_REQ_free(req);
	back = policy_parse_csr(der, len, reason, sizeof(reason));
	assert_non_null(back);
	X509_REQ_free(back);

	assert_non_null(longer = malloc(len + 1));
	memcpy(longer, der, len);
	longer[len] = 0;
	assert_null(policy_parse_csr(longer, len + 1, reason,
	    sizeof(reason)));
	assert_non_null(strstr(reason, "1 trailing bytes"));
	/* Truncated by one byte: refused, and no read past the end (ASan). */
	assert_null(policy_parse_csr(der, len - 1, reason, sizeof(reason)));
	free(longer);
	OPENSSL_free(der);
}

static void
parse_pem(void **state)
{
	X509_REQ	*req = tu_csr(KEYS->p384, "SHA384", "device-12cd56",
			    good_san), *back;
	BIO		*bio = BIO_new(BIO_s_mem());
	char		*pem, *buf, reason[256];
	long		 len;

	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	X509_REQ_free(req);
	len = BIO_get_mem_data(bio, &pem);
	assert_true(len > 0);

	back = policy_parse_csr((unsigned char *)pem, (size_t)len, reason,
	    sizeof(reason));
	if (back == NULL)
		print_error("%s\n", reason);
	assert_non_null(back);
	expect_csr(&base_policy, back, POLICY_OK, "");

	/* White space around the block is fine, other data is not. */
	assert_non_null(buf = malloc((size_t)len + 16));
	memcpy(buf, "\n  ", 3);
	memcpy(buf + 3, pem, (size_t)len);
	memcpy(buf + 3 + len, "\n\n", 2);
	back = policy_parse_csr((unsigned char *)buf, (size_t)len + 5, reason,
	    sizeof(reason));
	assert_non_null(back);
	X509_REQ_free(back);
	memcpy(buf + 3 + len, "junk", 4);
	assert_null(policy_parse_csr((unsigned char *)buf, (size_t)len + 7,
	    reason, sizeof(reason)));
	assert_non_null(strstr(reason, "followed by other data"));
	/* Text before the block is refused too. */
	memcpy(buf, "x\n", 2);
	memcpy(buf + 2, pem, (size_t)len);
	assert_null(policy_parse_csr((unsigned char *)buf, (size_t)len + 2,
	    reason, sizeof(reason)));
	free(buf);
	BIO_free(bio);
}

/* --- accepted requests -------------------------------------------------- */

static void
assert_ip(const struct csr_request *r, size_t i, const char *text)
{
	unsigned char	 a[16];
	int		 v6 = strchr(text, ':') != NULL;

	assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, text, a), 1);
	assert_int_equal(r->iplen[i], v6 ? 16 : 4);
	assert_memory_equal(r->ip[i], a, r->iplen[i]);
}

static void
accept_full(void **state, EVP_PKEY *key, const char *md)
{
	struct csr_request r = accept_csr(&base_policy, tu_csr(key, md,
	    "device-12cd56", "DNS:device-12cd56.local,"
	    "DNS:device-12cd56.home.arpa,IP:192.168.1.20,IP:fe80::1"));

	(void)state;
	assert_string_equal(r.device_id, "device-12cd56");
	assert_int_equal(r.ndns, 2);
	assert_string_equal(r.dns[0], "device-12cd56.local");
	assert_string_equal(r.dns[1], "device-12cd56.home.arpa");
	assert_int_equal(r.nip, 2);
	assert_ip(&r, 0, "192.168.1.20");
	assert_ip(&r, 1, "fe80::1");
}

static void
accept_p384(void **state)
{
	accept_full(state, KEYS->p384, "SHA384");
}

static void
accept_p521(void **state)
{
	accept_full(state, KEYS->p521, "SHA512");
}

static void
accept_rsa3072(void **state)
{
	accept_full(state, KEYS->rsa3072, "SHA256");
}

/* certbot: no subject at all, names only in the SAN. */
static void
accept_certbot(void **state)
{
	struct csr_request r = accept_csr(&base_policy, tu_csr(KEYS->p384,
	    "SHA384", NULL, "DNS:printer-0042.home.arpa,"
	    "DNS:printer-0042.local"));

	assert_string_equal(r.device_id, "printer-0042");
	assert_int_equal(r.ndns, 2);
	assert_string_equal(r.dns[0], "printer-0042.home.arpa");
}

/* lego: CN is the first DNS name; upper case and duplicates normalised. */
static void
accept_lego(void **state)
{
	struct csr_request r = accept_csr(&base_policy, tu_csr(KEYS->p384,
	    "SHA384", "Printer-0042.Local", "DNS:Printer-0042.Local,"
	    "DNS:printer-0042.local,DNS:PRINTER-0042.HOME.ARPA,"
	    "IP:10.1.2.3,IP:10.1.2.3"));

	assert_string_equal(r.device_id, "printer-0042");
	assert_int_equal(r.ndns, 2);
	assert_string_equal(r.dns[0], "printer-0042.local");
	assert_string_equal(r.dns[1], "printer-0042.home.arpa");
	assert_int_equal(r.nip, 1);
}

static void
accept_strict(void **state)
{
	struct policy	 pol = base_policy;
	struct csr_request r;

	pol.strict_cn = 1;
	r = accept_csr(&pol, tu_csr(KEYS->p384, "SHA384", "Device-12CD56",
	    good_san));
	assert_string_equal(r.device_id, "device-12cd56");
}

/* --- single-identifier checks ------------------------------------------- */

static void
dns_table(void **state)
{
	static const struct {
		const char	*name;
		const char	*canon;		/* NULL: refused */
		const char	*why;
	} t[] = {
		{ "device-1.local", "device-1.local", NULL },
		{ "DEVICE-1.LOCAL", "device-1.local", NULL },
		{ "d.home.arpa", "d.home.arpa", NULL },
		{ "d.HOME.arpa", "d.home.arpa", NULL },
		{ "0123.local", "0123.local", NULL },
		{ "x.lab.home.arpa", "x.lab.home.arpa", NULL },	/* nested */
		{ "local", NULL, "no device label" },
		{ "home.arpa", NULL, "no device label" },
		{ ".local", NULL, "empty label" },
		{ "a..local", NULL, "empty label" },
		{ "a.local.", NULL, "empty label" },
		{ "-a.local", NULL, "hyphen" },
		{ "a-.local", NULL, "hyphen" },
		{ "a_b.local", NULL, "not allowed" },
		{ "a b.local", NULL, "not allowed" },
		{ "a.b.local", NULL, "more than one label left of \"local\"" },
		{ "x.arpa", NULL, "not under" },
		{ "xhome.arpa", NULL, "not under" },
		{ "localhost", NULL, "never certified" },
		{ "LocalHost.home.arpa", NULL, "reserved label" },
		{ "iotca-test.home.arpa", NULL, "server's own name" },
		{ "", NULL, "empty DNS name" },
		{ "a\n.local", NULL, "\\x0a" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  ".local", NULL, "longer than 63" },
	};
	static const char *const two[] = { "home.arpa", "lab.home.arpa" };
	struct policy	 pol = base_policy;
	char		 canon[POLICY_MAX_NAME_LEN + 1], reason[256];
	char		 big[400];
	size_t		 i;
	enum policy_err	 e;

	(void)state;
	pol.domains = two;
	pol.ndomains = 2;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		e = policy_check_dns(&pol, t[i].name, canon, sizeof(canon),
		    reason, sizeof(reason));
		if (t[i].canon != NULL) {
			if (e != POLICY_OK)
				print_error("%s: %s\n", t[i].name, reason);
			assert_int_equal(e, POLICY_OK);
			assert_string_equal(canon, t[i].canon);
		} else {
			if (e == POLICY_OK || strstr(reason, t[i].why) == NULL)
				print_error("%s: %d \"%s\"\n", t[i].name, e,
				    reason);
			assert_int_equal(e, POLICY_REJECTED_IDENTIFIER);
			assert_non_null(strstr(reason, t[i].why));
		}
	}

	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(policy_check_dns(&pol, big, canon, sizeof(canon),
	    reason, sizeof(reason)), POLICY_REJECTED_IDENTIFIER);
	assert_non_null(strstr(reason, "longer than 253"));
	assert_true(strlen(reason) < 200);	/* the quote is cut short */

	/* An empty configured domain must never match everything. */
	{
		static const char *const bad[] = { "", ".", "home..arpa" };

		pol.domains = bad;
		pol.ndomains = 3;
		assert_int_equal(policy_check_dns(&pol, "x.example.org", NULL,
		    0, reason, sizeof(reason)), POLICY_REJECTED_IDENTIFIER);
		assert_non_null(strstr(reason, "no local domain is "
		    "configured"));
		assert_int_equal(policy_check_dns(&pol, "x.local", NULL, 0,
		    NULL, 0), POLICY_OK);
	}
}

static void
ip_table(void **state)
{
	static const struct {
		const char	*text;
		int		 ok;
	} t[] = {
		{ "10.0.0.1", 1 }, { "10.255.255.255", 1 },
		{ "172.16.0.1", 1 }, { "172.31.255.255", 1 },
		{ "172.15.255.255", 0 }, { "172.32.0.0", 0 },
		{ "192.168.1.20", 1 }, { "192.169.0.1", 0 },
		{ "127.0.0.1", 1 }, { "127.255.0.9", 1 },
		{ "169.254.10.10", 1 }, { "169.253.0.1", 0 },
		{ "8.8.8.8", 0 }, { "100.64.0.1", 0 }, { "0.0.0.0", 0 },
		{ "255.255.255.255", 0 }, { "224.0.0.251", 0 },
		{ "::1", 1 }, { "::", 0 }, { "fe80::1", 1 },
		{ "febf:ffff::1", 1 }, { "fec0::1", 0 },
		{ "fc00::1", 1 }, { "fd12:3456::1", 1 }, { "fe00::1", 0 },
		{ "2001:db8::1", 0 }, { "2606:4700::1111", 0 },
		{ "::ffff:8.8.8.8", 0 }, { "::ffff:192.168.1.1", 0 },
		{ "ff02::fb", 0 },
	};
	char		 reason[256];
	size_t		 i;
	enum policy_err	 e;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		e = policy_check_ip_text(t[i].text, reason, sizeof(reason));
		if ((e == POLICY_OK) != t[i].ok)
			print_error("%s: %d \"%s\"\n", t[i].text, e, reason);
		assert_int_equal(e == POLICY_OK, t[i].ok);
		if (!t[i].ok)
			assert_int_equal(e, POLICY_REJECTED_IDENTIFIER);
	}
	assert_int_equal(policy_check_ip_text("8.8.8.8", reason,
	    sizeof(reason)), POLICY_REJECTED_IDENTIFIER);
	assert_string_equal(reason, "IP address 8.8.8.8 is not loopback, "
	    "link-local or private-use");
	assert_int_equal(policy_check_ip_text("fe80::1%eth0", reason,
	    sizeof(reason)), POLICY_REJECTED_IDENTIFIER);
	assert_non_null(strstr(reason, "is not an IPv4 or IPv6 address"));
	assert_int_equal(policy_check_ip_text("192.168.001.020", reason,
	    sizeof(reason)), POLICY_REJECTED_IDENTIFIER);
	assert_int_equal(policy_check_ip((const unsigned char *)"\x0a\0\0\1\1",
	    5, reason, sizeof(reason)), POLICY_REJECTED_IDENTIFIER);
	assert_non_null(strstr(reason, "5 bytes"));
	/* A tiny reason buffer is cut, not overrun. */
	assert_int_equal(policy_check_ip_text("8.8.8.8", reason, 4),
	    POLICY_REJECTED_IDENTIFIER);
	assert_int_equal(strlen(reason), 3);
}

static void
err_types(void **state)
{
	(void)state;
	assert_string_equal(policy_err_type(POLICY_BAD_CSR), "badCSR");
	/* RFC 8555 7.4: a CSR refused for its key is a bad CSR;
	 * badPublicKey is for the key that signed the JWS. */
	assert_string_equal(policy_err_type(POLICY_BAD_PUBLIC_KEY),
	    "badCSR");
	assert_string_equal(policy_err_type(POLICY_BAD_SIGNATURE_ALG),
	    "badSignatureAlgorithm");
	assert_string_equal(policy_err_type(POLICY_REJECTED_IDENTIFIER),
	    "rejectedIdentifier");
}

/* The subtrees an account may be delegated, and whole-label containment. */
static void
subtree_table(void **state)
{
	static const struct {
		const char	*name;
		int		 ok;
		const char	*why;
	} t[] = {
		{ "home.arpa", 1, NULL },
		{ "EST.Home.Arpa", 1, NULL },
		{ "a.b.home.arpa", 1, NULL },
		{ "local", 0, ".local" },
		{ "lab.local", 0, ".local" },
		{ "corp.example", 0, "not within a configured domain" },
		{ "xhome.arpa", 0, "not within a configured domain" },
		{ "arpa", 0, "not within a configured domain" },
		{ "bad..home.arpa", 0, "bad..home.arpa" },
		{ "", 0, "1 to 253" },
	};
	char canon[POLICY_MAX_NAME_LEN + 1], reason[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		enum policy_err e = policy_check_subtree(&base_policy, t[i].name,
		    canon, sizeof(canon), reason, sizeof(reason));

		if (t[i].ok && e != POLICY_OK)
			fail_msg("%s refused: %s", t[i].name, reason);
		if (!t[i].ok && (e != POLICY_REJECTED_IDENTIFIER ||
		    strstr(reason, t[i].why) == NULL))
			fail_msg("%s: got %d \"%s\", want \"%s\"", t[i].name,
			    (int)e, reason, t[i].why);
	}
	assert_int_equal(policy_check_subtree(&base_policy, "EST.Home.Arpa",
	    canon, sizeof(canon), reason, sizeof(reason)), POLICY_OK);
	assert_string_equal(canon, "est.home.arpa");
	assert_true(policy_name_within("dev.est.home.arpa", "est.home.arpa"));
	assert_true(policy_name_within("est.home.arpa", "est.home.arpa"));
	assert_false(policy_name_within("dev.xest.home.arpa", "est.home.arpa"));
	assert_false(policy_name_within("xest.home.arpa", "est.home.arpa"));
	assert_false(policy_name_within("home.arpa", "est.home.arpa"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refuse_p256),
		cmocka_unit_test(refuse_rsa2048),
		cmocka_unit_test(refuse_ed25519),
		cmocka_unit_test(refuse_explicit_curve),
		cmocka_unit_test(refuse_rsa_exponent3),
		cmocka_unit_test(spki_digest),
		cmocka_unit_test(spki_digest_ec_as_encoder),
		cmocka_unit_test(refuse_sha1),
		cmocka_unit_test(refuse_sha224),
		cmocka_unit_test(refuse_pss_sha1),
		cmocka_unit_test(accept_pss_sha256),
		cmocka_unit_test(refuse_bad_signature),
		cmocka_unit_test(refuse_no_san),
		cmocka_unit_test(refuse_ip_only),
		cmocka_unit_test(refuse_localhost),
		cmocka_unit_test(refuse_localhost_local),
		cmocka_unit_test(refuse_server_name),
		cmocka_unit_test(refuse_server_name_cn),
		cmocka_unit_test(refuse_public_name),
		cmocka_unit_test(refuse_unconfigured_domain),
		cmocka_unit_test(refuse_label_suffix_trap),
		cmocka_unit_test(refuse_sub_sub_name),
		cmocka_unit_test(refuse_wildcard),
		cmocka_unit_test(refuse_public_ip),
		cmocka_unit_test(refuse_cgnat_ip),
		cmocka_unit_test(refuse_mapped_ip),
		cmocka_unit_test(refuse_mixed_devices),
		cmocka_unit_test(refuse_cn_other_device),
		cmocka_unit_test(refuse_cn_not_in_san),
		cmocka_unit_test(refuse_bad_cn),
		cmocka_unit_test(refuse_email_san),
		cmocka_unit_test(refuse_uri_san),
		cmocka_unit_test(refuse_embedded_nul),
		cmocka_unit_test(refuse_too_many_names),
		cmocka_unit_test(refuse_ca_true),
		cmocka_unit_test(refuse_keycertsign),
		cmocka_unit_test(refuse_crlsign),
		cmocka_unit_test(accept_ca_false),
		cmocka_unit_test(refuse_strict_no_cn),
		cmocka_unit_test(refuse_strict_dns_cn),
		cmocka_unit_test(parse_garbage),
		cmocka_unit_test(parse_der_and_trailing),
		cmocka_unit_test(parse_pem),
		cmocka_unit_test(accept_p384),
		cmocka_unit_test(accept_p521),
		cmocka_unit_test(accept_rsa3072),
		cmocka_unit_test(accept_certbot),
		cmocka_unit_test(accept_lego),
		cmocka_unit_test(accept_strict),
		cmocka_unit_test(dns_table),
		cmocka_unit_test(ip_table),
		cmocka_unit_test(err_types),
		cmocka_unit_test(subtree_table),
	};

	return cmocka_run_group_tests_name("policy", tests, setup_keys,
	    teardown_keys);
}
