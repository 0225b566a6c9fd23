/*
 * Root certificate and CRL tests: everything is checked by parsing what was
 * produced, as a client or auditor would.  Run as "test_rootca file", or
 * "test_rootca tpm2" under tests/lib/swtpm-run (skipped, exit 77, without).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certgen.h"
#include "keystore.h"

#define SKIP_CODE	77

static enum ks_store	 store;
static const char	*tcti;

struct fixture {
	struct ks	*ks;
	EVP_PKEY	*key;		/* P-384 root key in the store */
	X509		*root;
	OSSL_LIB_CTX	*plain;		/* "default" only: the relying party */
	OSSL_PROVIDER	*def;
	char		 dir[256];
	int		 nkeys;
};

static const char *const domains[] = { "home.arpa", "corp.example" };
static const char *const ips[] = { "192.168.1.10", "fd00::1" };

static struct root_params
params(int years)
{
	struct root_params p = {
		.server_name = "iotca1",
		.domains = domains,
		.ndomains = 2,
		.ips = ips,
		.nips = 2,
		.years = years,
	};
	return p;
}

static EVP_PKEY *
gen_key(struct fixture *f, enum ks_alg alg)
{
	EVP_PKEY	*k;
	char		 path[PATH_MAX], err[256];

	(void)snprintf(path, sizeof(path), "%s/%s-%d.key", f->dir,
	    ks_alg_name(alg), ++f->nkeys);
	if ((k = ks_generate(f->ks, alg, path, err, sizeof(err))) == NULL)
		fail_msg("ks_generate %s: %s", ks_alg_name(alg), err);
	return k;
}

static int
setup(void **state)
{
	struct ks_config cfg = { .store = store, .tcti = tcti };
	struct root_params p = params(5);
	struct fixture	*f;
	char		 err[256], path[PATH_MAX];

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	(void)snprintf(f->dir, sizeof(f->dir), "%s/rootca-test.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if ((f->ks = ks_new(&cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "ks_new: %s\n", err);
		return -1;
	}
	(void)snprintf(path, sizeof(path), "%s/root.key", f->dir);
	if ((f->key = ks_generate(f->ks, KS_ALG_EC_P384, path, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "ks_generate: %s\n", err);
		return -1;
	}
	if ((f->root = certgen_root(f->ks, f->key, &p, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "certgen_root: %s\n", err);
		return -1;
	}
	if ((f->plain = OSSL_LIB_CTX_new()) == NULL ||
	    (f->def = OSSL_PROVIDER_load(f->plain, "default")) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	struct dirent	*de;
	DIR		*d;
	char		 p[PATH_MAX];

	if (f == NULL)
		return 0;
	X509_free(f->root);
	EVP_PKEY_free(f->key);
	ks_free(f->ks);
	OSSL_PROVIDER_unload(f->def);
	OSSL_LIB_CTX_free(f->plain);
	if ((d = opendir(f->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (snprintf(p, sizeof(p), "%s/%s", f->dir,
			    de->d_name) < (int)sizeof(p))
				(void)unlink(p);
		}
		closedir(d);
	}
	(void)rmdir(f->dir);
	free(f);
	return 0;
}

/* The certificate as a client sees it: re-parsed from DER in plain OpenSSL. */
static X509 *
reparse(struct fixture *f, X509 *x)
{
	unsigned char		*der = NULL;
	const unsigned char	*p;
	X509			*copy;
	int			 len;

	assert_true((len = i2d_X509(x, &der)) > 0);
	assert_non_null(copy = X509_new_ex(f->plain, NULL));
	p = der;
	assert_non_null(d2i_X509(&copy, &p, len));
	OPENSSL_free(der);
	return copy;
}

static X509_CRL *
reparse_crl(struct fixture *f, X509_CRL *crl)
{
	unsigned char		*der = NULL;
	const unsigned char	*p;
	X509_CRL		*copy;
	int			 len;

	assert_true((len = i2d_X509_CRL(crl, &der)) > 0);
	assert_non_null(copy = X509_CRL_new_ex(f->plain, NULL));
	p = der;
	assert_non_null(d2i_X509_CRL(&copy, &p, len));
	OPENSSL_free(der);
	return copy;
}

static X509_EXTENSION *
ext_of(X509 *x, int nid, int want_critical)
{
	X509_EXTENSION	*ext;
	int		 i;

	i = X509_get_ext_by_NID(x, nid, -1);
	if (i < 0)
		fail_msg("extension %s missing", OBJ_nid2sn(nid));
	/* Exactly once. */
	assert_int_equal(X509_get_ext_by_NID(x, nid, i), -1);
	assert_non_null(ext = X509_get_ext(x, i));
	if (X509_EXTENSION_get_critical(ext) != want_critical)
		fail_msg("extension %s criticality %d, want %d",
		    OBJ_nid2sn(nid), X509_EXTENSION_get_critical(ext),
		    want_critical);
	return ext;
}

static void
name_entry_is(const X509_NAME *name, int nid, const char *want)
{
	char	 buf[256];

	assert_true(X509_NAME_get_text_by_NID(name, nid, buf,
	    sizeof(buf)) > 0);
	assert_string_equal(buf, want);
}

/* Days from a to b, checking seconds too. */
static int
days_between(const ASN1_TIME *a, const ASN1_TIME *b, int *secs)
{
	int	 days;

	assert_int_equal(ASN1_TIME_diff(&days, secs, a, b), 1);
	return days;
}

static void
check_validity_years(X509 *x, int years)
{
	time_t		 now = time(NULL);
	int		 days, secs;

	/* notBefore is now (give or take a slow TPM). */
	assert_true(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x),
	    now - 120) >= 0);
	assert_true(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), now) <= 0);
	days = days_between(X509_get0_notBefore(x), X509_get0_notAfter(x),
	    &secs);
	assert_int_equal(secs, 0);
	assert_in_range(days, 365 * years - 1, 365 * years + years / 4 + 1);
}

static int
gn_is_dns(const GENERAL_NAME *gn, const char *want)
{
	const ASN1_IA5STRING	*s;

	if (gn->type != GEN_DNS)
		return 0;
	s = gn->d.dNSName;
	return (size_t)ASN1_STRING_length(s) == strlen(want) &&
	    memcmp(ASN1_STRING_get0_data(s), want, strlen(want)) == 0;
}

static int
gn_is_ip(const GENERAL_NAME *gn, const unsigned char *want, size_t len)
{
	const ASN1_OCTET_STRING	*s;

	if (gn->type != GEN_IPADD)
		return 0;
	s = gn->d.iPAddress;
	return (size_t)ASN1_STRING_length(s) == len &&
	    memcmp(ASN1_STRING_get0_data(s), want, len) == 0;
}

static void
test_root_fields(void **state)
{
	struct fixture	*f = *state;
	X509		*x = reparse(f, f->root);
	const ASN1_INTEGER *serial;
	BIGNUM		*bn;

	assert_int_equal(X509_get_version(x), X509_VERSION_3);

	/* Random, positive, 128 bits wide. */
	serial = X509_get0_serialNumber(x);
	assert_int_equal(ASN1_STRING_type(serial), V_ASN1_INTEGER);
	assert_non_null(bn = ASN1_INTEGER_to_BN(serial, NULL));
	assert_in_range(BN_num_bits(bn), 120, 127);
	BN_free(bn);
	assert_int_equal(ASN1_STRING_length(serial), 16);

	name_entry_is(X509_get_subject_name(x), NID_commonName,
	    "iotca1 root CA");
	name_entry_is(X509_get_subject_name(x), NID_organizationName, "iotca");
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x),
	    X509_get_issuer_name(x)), 0);

	check_validity_years(x, 5);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA384);
	X509_free(x);
}

static void
test_root_ca_extensions(void **state)
{
	struct fixture		*f = *state;
	X509			*x = reparse(f, f->root);
	BASIC_CONSTRAINTS	*bc;
	ASN1_BIT_STRING		*ku;
	int			 crit;

	ext_of(x, NID_basic_constraints, 1);
	assert_non_null(bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit,
	    NULL));
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	BASIC_CONSTRAINTS_free(bc);

	ext_of(x, NID_key_usage, 1);
	assert_non_null(ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL));
	assert_true(ASN1_BIT_STRING_get_bit(ku, 5));	/* keyCertSign */
	assert_true(ASN1_BIT_STRING_get_bit(ku, 6));	/* cRLSign */
	ASN1_BIT_STRING_free(ku);
	/* And nothing else. */
	assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);

	/* No EKU on a root: it would restrict what it may certify. */
	assert_int_equal(X509_get_ext_by_NID(x, NID_ext_key_usage, -1), -1);

	assert_int_equal(X509_check_ca(x), 1);
	assert_int_equal(X509_check_issued(x, x), X509_V_OK);
	assert_int_equal(X509_self_signed(x, 1), 1);
	X509_free(x);
}

static void
test_root_key_ids(void **state)
{
	struct fixture		*f = *state;
	X509			*x = reparse(f, f->root);
	const ASN1_OCTET_STRING	*ski, *akid;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen;

	ext_of(x, NID_subject_key_identifier, 0);
	ext_of(x, NID_authority_key_identifier, 0);
	assert_non_null(ski = X509_get0_subject_key_id(x));
	assert_non_null(akid = X509_get0_authority_key_id(x));
	assert_int_equal(ASN1_OCTET_STRING_cmp(ski, akid), 0);
	/* RFC 5280 4.2.1.2 method 1. */
	assert_int_equal(X509_pubkey_digest(x, EVP_sha1(), md, &mdlen), 1);
	assert_int_equal(ASN1_STRING_length(ski), (int)mdlen);
	assert_memory_equal(ASN1_STRING_get0_data(ski), md, mdlen);
	/* keyid only: no issuer name and serial in the AKI. */
	assert_null(X509_get0_authority_issuer(x));
	assert_null(X509_get0_authority_serial(x));
	X509_free(x);
}

static void
test_root_san(void **state)
{
	static const unsigned char v4[] = { 192, 168, 1, 10 };
	static const unsigned char v6[16] = { 0xfd, [15] = 1 };
	struct fixture	*f = *state;
	X509		*x = reparse(f, f->root);
	GENERAL_NAMES	*gens;
	int		 crit;

	ext_of(x, NID_subject_alt_name, 0);
	assert_non_null(gens = X509_get_ext_d2i(x, NID_subject_alt_name,
	    &crit, NULL));
	assert_int_equal(sk_GENERAL_NAME_num(gens), 5);
	assert_true(gn_is_dns(sk_GENERAL_NAME_value(gens, 0), "iotca1.local"));
	assert_true(gn_is_dns(sk_GENERAL_NAME_value(gens, 1),
	    "iotca1.home.arpa"));
	assert_true(gn_is_dns(sk_GENERAL_NAME_value(gens, 2),
	    "iotca1.corp.example"));
	assert_true(gn_is_ip(sk_GENERAL_NAME_value(gens, 3), v4, 4));
	assert_true(gn_is_ip(sk_GENERAL_NAME_value(gens, 4), v6, 16));
	GENERAL_NAMES_free(gens);

	/* What a TLS client checks: the names match, others do not. */
	assert_int_equal(X509_check_host(x, "iotca1.local", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "iotca1.home.arpa", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "other.local", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ip_asc(x, "192.168.1.10", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "fd00::1", 0), 1);
	X509_free(x);
}

static void
test_root_name_constraints(void **state)
{
	/* address, then mask, as RFC 5280 4.2.1.10 encodes them */
	static const struct {
		size_t		 len;
		unsigned char	 b[32];
	} want_ip[] = {
		{ 8,  { 10, 0, 0, 0,    255, 0, 0, 0 } },
		{ 8,  { 172, 16, 0, 0,  255, 240, 0, 0 } },
		{ 8,  { 192, 168, 0, 0, 255, 255, 0, 0 } },
		{ 8,  { 127, 0, 0, 0,   255, 0, 0, 0 } },
		{ 8,  { 169, 254, 0, 0, 255, 255, 0, 0 } },
		{ 32, { 0xfc, [16] = 0xfe } },
		{ 32, { 0xfe, 0x80, [16] = 0xff, 0xc0 } },
		{ 32, { [15] = 1, [16] = 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0xff } },
	};
	static const char *const want_dns[] = {
		"local", "home.arpa", "corp.example",
	};
	struct fixture		*f = *state;
	X509			*x = reparse(f, f->root);
	NAME_CONSTRAINTS	*nc;
	GENERAL_SUBTREE		*st;
	size_t			 i, ndns = 3, nip = 8;
	int			 crit;

	ext_of(x, NID_name_constraints, 1);
	assert_non_null(nc = X509_get_ext_d2i(x, NID_name_constraints, &crit,
	    NULL));
	assert_null(nc->excludedSubtrees);
	assert_non_null(nc->permittedSubtrees);
	assert_int_equal(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees),
	    (int)(ndns + nip));
	for (i = 0; i < ndns + nip; i++) {
		st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, (int)i);
		/* RFC 5280: minimum 0 and no maximum. */
		assert_null(st->minimum);
		assert_null(st->maximum);
		if (i < ndns)
			assert_true(gn_is_dns(st->base, want_dns[i]));
		else
			assert_true(gn_is_ip(st->base, want_ip[i - ndns].b,
			    want_ip[i - ndns].len));
	}
	NAME_CONSTRAINTS_free(nc);
	X509_free(x);
}

/* Re-parsed in plain OpenSSL, with the public key from the certificate. */
static void
test_root_signature(void **state)
{
	struct fixture	*f = *state;
	X509		*x = reparse(f, f->root);
	EVP_PKEY	*pub, *other;

	assert_non_null(pub = X509_get0_pubkey(x));
	assert_int_equal(X509_verify(x, pub), 1);
	assert_int_equal(EVP_PKEY_eq(pub, f->key), 1);
	assert_non_null(other = EVP_PKEY_Q_keygen(f->plain, NULL, "EC",
	    "P-384"));
	assert_int_not_equal(X509_verify(x, other), 1);
	ERR_clear_error();
	EVP_PKEY_free(other);
	X509_free(x);
}

/*
 * A leaf made here in plain OpenSSL and signed by the root's key through
 * the keystore, to see the root's constraints enforced by a verifier.
 */
static X509 *
make_leaf(struct fixture *f, const char *serial_hex, const char *dns,
    const char *ip)
{
	X509		*leaf;
	EVP_PKEY	*k;
	EVP_MD_CTX	*mctx;
	X509_EXTENSION	*ext;
	X509V3_CTX	 v3;
	BIGNUM		*bn = NULL;
	ASN1_INTEGER	*ai;
	char		 san[300], err[256];

	assert_non_null(k = EVP_PKEY_Q_keygen(f->plain, NULL, "EC", "P-384"));
	assert_non_null(leaf = X509_new_ex(ks_libctx(f->ks), NULL));
	assert_int_equal(X509_set_version(leaf, X509_VERSION_3), 1);
	assert_true(BN_hex2bn(&bn, serial_hex) > 0);
	assert_non_null(ai = BN_to_ASN1_INTEGER(bn, NULL));
	assert_int_equal(X509_set_serialNumber(leaf, ai), 1);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	assert_int_equal(X509_set_issuer_name(leaf,
	    X509_get_subject_name(f->root)), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(leaf),
	    "CN", MBSTRING_UTF8, (const unsigned char *)"leaf", -1, -1, 0), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(leaf), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(leaf), 86400));
	assert_int_equal(X509_set_pubkey(leaf, k), 1);
	(void)snprintf(san, sizeof(san), "%s:%s", dns != NULL ? "DNS" : "IP",
	    dns != NULL ? dns : ip);
	X509V3_set_ctx(&v3, f->root, leaf, NULL, NULL, 0);
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &v3,
	    NID_subject_alt_name, san));
	assert_int_equal(X509_add_ext(leaf, ext, -1), 1);
	X509_EXTENSION_free(ext);
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &v3,
	    NID_authority_key_identifier, "keyid:always"));
	assert_int_equal(X509_add_ext(leaf, ext, -1), 1);
	X509_EXTENSION_free(ext);

	if ((mctx = ks_sign_ctx(f->ks, f->key, err, sizeof(err))) == NULL)
		fail_msg("ks_sign_ctx: %s", err);
	assert_true(X509_sign_ctx(leaf, mctx) > 0);
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(k);
	return leaf;
}

/* X509_V_OK or the verifier's error for leaf under the root (and crl). */
static int
verify_leaf(struct fixture *f, X509 *leaf, X509_CRL *crl)
{
	X509_STORE	*st;
	X509_STORE_CTX	*ctx;
	X509		*root = reparse(f, f->root), *l = reparse(f, leaf);
	int		 rc;

	assert_non_null(st = X509_STORE_new());
	assert_int_equal(X509_STORE_add_cert(st, root), 1);
	if (crl != NULL) {
		assert_int_equal(X509_STORE_add_crl(st, crl), 1);
		assert_int_equal(X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK),
		    1);
	}
	assert_non_null(ctx = X509_STORE_CTX_new_ex(f->plain, NULL));
	assert_int_equal(X509_STORE_CTX_init(ctx, st, l, NULL), 1);
	rc = X509_verify_cert(ctx) == 1 ? X509_V_OK :
	    X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(l);
	X509_free(root);
	ERR_clear_error();
	return rc;
}

static void
test_root_constrains_leaves(void **state)
{
	struct fixture	*f = *state;
	X509		*leaf;

	leaf = make_leaf(f, "1001", "ex123456abcdef.local", NULL);
	assert_int_equal(verify_leaf(f, leaf, NULL), X509_V_OK);
	X509_free(leaf);
	leaf = make_leaf(f, "1002", "cam1.corp.example", NULL);
	assert_int_equal(verify_leaf(f, leaf, NULL), X509_V_OK);
	X509_free(leaf);
	leaf = make_leaf(f, "1003", NULL, "10.1.2.3");
	assert_int_equal(verify_leaf(f, leaf, NULL), X509_V_OK);
	X509_free(leaf);

	leaf = make_leaf(f, "1004", "www.google.com", NULL);
	assert_int_equal(verify_leaf(f, leaf, NULL),
	    X509_V_ERR_PERMITTED_VIOLATION);
	X509_free(leaf);
	/* Whole labels: "notlocal" is not under "local". */
	leaf = make_leaf(f, "1005", "evil.notlocal", NULL);
	assert_int_equal(verify_leaf(f, leaf, NULL),
	    X509_V_ERR_PERMITTED_VIOLATION);
	X509_free(leaf);
	leaf = make_leaf(f, "1006", NULL, "8.8.8.8");
	assert_int_equal(verify_leaf(f, leaf, NULL),
	    X509_V_ERR_PERMITTED_VIOLATION);
	X509_free(leaf);
	leaf = make_leaf(f, "1007", NULL, "2001:db8::1");
	assert_int_equal(verify_leaf(f, leaf, NULL),
	    X509_V_ERR_PERMITTED_VIOLATION);
	X509_free(leaf);
}

static void
test_root_years(void **state)
{
	struct fixture	*f = *state;
	struct root_params p;
	X509		*x;
	char		 err[256];
	static const int bad[] = { 0, 11, -1, 100 };
	size_t		 i;

	p = params(1);
	if ((x = certgen_root(f->ks, f->key, &p, err, sizeof(err))) == NULL)
		fail_msg("1 year: %s", err);
	check_validity_years(x, 1);
	X509_free(x);

	p = params(10);
	if ((x = certgen_root(f->ks, f->key, &p, err, sizeof(err))) == NULL)
		fail_msg("10 years: %s", err);
	check_validity_years(x, 10);
	X509_free(x);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = params(bad[i]);
		err[0] = '\0';
		assert_null(certgen_root(f->ks, f->key, &p, err, sizeof(err)));
		assert_non_null(strstr(err, "1 to 10 years"));
	}
}

static void
test_root_refuses_weak_keys(void **state)
{
	struct fixture	*f = *state;
	struct root_params p = params(5);
	EVP_PKEY	*k;
	char		 err[256] = "";

	k = gen_key(f, KS_ALG_EC_P256);
	assert_null(certgen_root(f->ks, k, &p, err, sizeof(err)));
	assert_non_null(strstr(err, "P-384 or P-521"));
	EVP_PKEY_free(k);

	k = gen_key(f, KS_ALG_RSA_2048);
	err[0] = '\0';
	assert_null(certgen_root(f->ks, k, &p, err, sizeof(err)));
	assert_non_null(strstr(err, "at least 3072"));
	EVP_PKEY_free(k);

	err[0] = '\0';
	assert_null(certgen_root(f->ks, NULL, &p, err, sizeof(err)));
	assert_true(err[0] != '\0');

	/* An Ed25519 key is neither. */
	assert_non_null(k = EVP_PKEY_Q_keygen(ks_libctx(f->ks),
	    "provider=default", "ED25519"));
	err[0] = '\0';
	assert_null(certgen_root(f->ks, k, &p, err, sizeof(err)));
	assert_non_null(strstr(err, "refused"));
	EVP_PKEY_free(k);
}

static void
check_root_with(struct fixture *f, enum ks_alg alg, int signature_nid)
{
	struct root_params p = params(3);
	EVP_PKEY	*k;
	X509		*x, *copy;
	char		 err[256];

	k = gen_key(f, alg);
	if ((x = certgen_root(f->ks, k, &p, err, sizeof(err))) == NULL)
		fail_msg("%s root: %s", ks_alg_name(alg), err);
	copy = reparse(f, x);
	assert_int_equal(X509_get_signature_nid(copy), signature_nid);
	assert_int_equal(X509_verify(copy, X509_get0_pubkey(copy)), 1);
	assert_int_equal(X509_check_ca(copy), 1);
	X509_free(copy);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
test_root_p521(void **state)
{
	check_root_with(*state, KS_ALG_EC_P521, NID_ecdsa_with_SHA512);
}

static void
test_root_rsa3072(void **state)
{
	check_root_with(*state, KS_ALG_RSA_3072, NID_sha384WithRSAEncryption);
}

static void
test_root_refuses_bad_names(void **state)
{
	static const char *const bad_names[] = {
		"", "bad_name", "iotca.local", "-iotca", "iotca-", "io tca",
		"a-name-that-is-far-too-long-to-fit-in-a-common-name-at-all",
	};
	static const char *const bad_domains[] = {
		"", ".home.arpa", "home.arpa.", "home..arpa", "ho_me.arpa",
		"-x.example",
	};
	static const char *const bad_ips[] = {
		"8.8.8.8", "2001:db8::1", "192.168.1", "not-an-ip",
	};
	struct fixture	*f = *state;
	struct root_params p;
	const char	*one[1];
	char		 err[256];
	size_t		 i;

	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		p = params(5);
		p.server_name = bad_names[i];
		err[0] = '\0';
		assert_null(certgen_root(f->ks, f->key, &p, err, sizeof(err)));
		assert_true(err[0] != '\0');
	}
	for (i = 0; i < sizeof(bad_domains) / sizeof(bad_domains[0]); i++) {
		p = params(5);
		one[0] = bad_domains[i];
		p.domains = one;
		p.ndomains = 1;
		err[0] = '\0';
		assert_null(certgen_root(f->ks, f->key, &p, err, sizeof(err)));
		assert_non_null(strstr(err, "domain"));
	}
	for (i = 0; i < sizeof(bad_ips) / sizeof(bad_ips[0]); i++) {
		p = params(5);
		one[0] = bad_ips[i];
		p.ips = one;
		p.nips = 1;
		err[0] = '\0';
		assert_null(certgen_root(f->ks, f->key, &p, err, sizeof(err)));
		assert_non_null(strstr(err, bad_ips[i]));
	}

	/* No domains and no IPs is fine: "<name>.local" only. */
	p = params(5);
	p.domains = NULL;
	p.ndomains = 0;
	p.ips = NULL;
	p.nips = 0;
	{
		X509 *x = certgen_root(f->ks, f->key, &p, err, sizeof(err));

		if (x == NULL)
			fail_msg("minimal root: %s", err);
		assert_int_equal(X509_check_host(x, "iotca1.local", 0, 0,
		    NULL), 1);
		X509_free(x);
	}
}

static void
test_crl(void **state)
{
	struct fixture		*f = *state;
	time_t			 now = time(NULL);
	const struct crl_entry	 entries[] = {
		{ "0A1B2C3D4E5F", now - 3600, CRL_REASON_KEY_COMPROMISE },
		{ "01", now - 60, CRL_REASON_UNSPECIFIED },
		{ "7fffffffffffffffffffffffffffffff", now, CRL_REASON_SUPERSEDED },
	};
	X509_CRL		*crl, *copy;
	X509_REVOKED		*rev;
	ASN1_INTEGER		*ai, *num;
	ASN1_ENUMERATED		*reason;
	AUTHORITY_KEYID		*akid;
	BIGNUM			*bn = NULL;
	X509			*leaf, *root;
	int			 crit, days, secs;
	char			 err[256];

	crl = certgen_crl(f->ks, f->key, f->root, entries, 3, 7, 30, err,
	    sizeof(err));
	if (crl == NULL)
		fail_msg("certgen_crl: %s", err);
	copy = reparse_crl(f, crl);

	assert_int_equal(X509_CRL_get_version(copy), X509_CRL_VERSION_2);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(copy),
	    X509_get_subject_name(f->root)), 0);
	assert_true(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(copy),
	    now - 120) >= 0);
	days = days_between(X509_CRL_get0_lastUpdate(copy),
	    X509_CRL_get0_nextUpdate(copy), &secs);
	assert_int_equal(days, 30);
	assert_int_equal(secs, 0);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(copy)), 3);

	/* The revoked serial is there, when and why. */
	assert_true(BN_hex2bn(&bn, "0A1B2C3D4E5F") > 0);
	assert_non_null(ai = BN_to_ASN1_INTEGER(bn, NULL));
	BN_free(bn);
	assert_int_equal(X509_CRL_get0_by_serial(copy, &rev, ai), 1);
	ASN1_INTEGER_free(ai);
	assert_int_equal(ASN1_TIME_cmp_time_t(
	    X509_REVOKED_get0_revocationDate(rev), now - 3600), 0);
	assert_non_null(reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason,
	    &crit, NULL));
	assert_int_equal(crit, 0);
	assert_int_equal(ASN1_ENUMERATED_get(reason), CRL_REASON_KEY_COMPROMISE);
	ASN1_ENUMERATED_free(reason);

	/* "unspecified" is said by leaving the reason out. */
	bn = NULL;
	assert_true(BN_hex2bn(&bn, "01") > 0);
	assert_non_null(ai = BN_to_ASN1_INTEGER(bn, NULL));
	BN_free(bn);
	assert_int_equal(X509_CRL_get0_by_serial(copy, &rev, ai), 1);
	ASN1_INTEGER_free(ai);
	assert_null(X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL));
	assert_int_equal(crit, -1);

	/* CRL number and AKI (the root's SKI). */
	assert_non_null(num = X509_CRL_get_ext_d2i(copy, NID_crl_number, &crit,
	    NULL));
	assert_int_equal(crit, 0);
	assert_int_equal(ASN1_INTEGER_get(num), 7);
	ASN1_INTEGER_free(num);
	assert_non_null(akid = X509_CRL_get_ext_d2i(copy,
	    NID_authority_key_identifier, &crit, NULL));
	assert_int_equal(crit, 0);
	assert_non_null(akid->keyid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid,
	    X509_get0_subject_key_id(f->root)), 0);
	AUTHORITY_KEYID_free(akid);

	/* Signed by the root key; a verifier with the CRL rejects the leaf. */
	root = reparse(f, f->root);
	assert_int_equal(X509_CRL_verify(copy, X509_get0_pubkey(root)), 1);
	X509_free(root);
	leaf = make_leaf(f, "0A1B2C3D4E5F", "cam1.local", NULL);
	assert_int_equal(verify_leaf(f, leaf, copy), X509_V_ERR_CERT_REVOKED);
	X509_free(leaf);
	leaf = make_leaf(f, "0A1B2C3D4E60", "cam2.local", NULL);
	assert_int_equal(verify_leaf(f, leaf, copy), X509_V_OK);
	X509_free(leaf);

	X509_CRL_free(copy);
	X509_CRL_free(crl);
}

static void
test_crl_empty(void **state)
{
	struct fixture	*f = *state;
	X509_CRL	*crl, *copy;
	X509		*root;
	ASN1_INTEGER	*num;
	char		 err[256];

	crl = certgen_crl(f->ks, f->key, f->root, NULL, 0, 0, 1, err,
	    sizeof(err));
	if (crl == NULL)
		fail_msg("certgen_crl: %s", err);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0,
	    1);
	assert_non_null(num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL,
	    NULL));
	assert_int_equal(ASN1_INTEGER_get(num), 0);
	ASN1_INTEGER_free(num);
	root = reparse(f, f->root);
	copy = reparse_crl(f, crl);
	assert_int_equal(X509_CRL_verify(copy, X509_get0_pubkey(root)), 1);
	X509_CRL_free(copy);
	X509_free(root);
	X509_CRL_free(crl);
}

static void
test_crl_refusals(void **state)
{
	struct fixture		*f = *state;
	time_t			 now = time(NULL);
	struct crl_entry	 e = { "0A", now, CRL_REASON_KEY_COMPROMISE };
	static const char *const bad_serials[] = {
		"", "xyz", "0x0A", "0A ", "00", "-1",
		"0123456789abcdef0123456789abcdef012345678",	/* 41 digits */
	};
	static const int bad_reasons[] = {
		CRL_REASON_CERTIFICATE_HOLD, CRL_REASON_REMOVE_FROM_CRL, 7, 11,
		-1,
	};
	EVP_PKEY	*other;
	char		 err[256];
	size_t		 i;

	for (i = 0; i < sizeof(bad_serials) / sizeof(bad_serials[0]); i++) {
		e.serial_hex = bad_serials[i];
		err[0] = '\0';
		assert_null(certgen_crl(f->ks, f->key, f->root, &e, 1, 1, 30,
		    err, sizeof(err)));
		assert_non_null(strstr(err, "serial"));
	}
	e.serial_hex = "0A";
	for (i = 0; i < sizeof(bad_reasons) / sizeof(bad_reasons[0]); i++) {
		e.reason = bad_reasons[i];
		err[0] = '\0';
		assert_null(certgen_crl(f->ks, f->key, f->root, &e, 1, 1, 30,
		    err, sizeof(err)));
		assert_non_null(strstr(err, "reason"));
	}
	e.reason = CRL_REASON_SUPERSEDED;
	err[0] = '\0';
	assert_null(certgen_crl(f->ks, f->key, f->root, &e, 1, 1, 0, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "days"));
	err[0] = '\0';
	assert_null(certgen_crl(f->ks, f->key, f->root, &e, 1, -1, 30, err,
	    sizeof(err)));
	assert_true(err[0] != '\0');

	/* Another key than the root's. */
	other = gen_key(f, KS_ALG_EC_P384);
	err[0] = '\0';
	assert_null(certgen_crl(f->ks, other, f->root, &e, 1, 1, 30, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "does not match"));
	EVP_PKEY_free(other);
}

static void
test_reasons(void **state)
{
	static const char *const names[] = {
		"unspecified", "keyCompromise", "cACompromise",
		"affiliationChanged", "superseded", "cessationOfOperation",
		"certificateHold", NULL, "removeFromCRL", "privilegeWithdrawn",
		"aACompromise",
	};
	int	 i;

	for (i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
		if (names[i] == NULL) {
			assert_null(certgen_reason_name(i));
			continue;
		}
		assert_string_equal(certgen_reason_name(i), names[i]);
		/* Revocations are final: no hold, no removal. */
		if (i == CRL_REASON_CERTIFICATE_HOLD ||
		    i == CRL_REASON_REMOVE_FROM_CRL)
			assert_int_equal(certgen_reason_parse(names[i]), -1);
		else
			assert_int_equal(certgen_reason_parse(names[i]), i);
	}
	assert_int_equal(certgen_reason_parse("keycompromise"),
	    CRL_REASON_KEY_COMPROMISE);
	assert_int_equal(certgen_reason_parse("compromised"), -1);
	assert_int_equal(certgen_reason_parse(""), -1);
	assert_int_equal(certgen_reason_parse(NULL), -1);
	assert_null(certgen_reason_name(-1));
	assert_null(certgen_reason_name(11));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_root_fields),
		cmocka_unit_test(test_root_ca_extensions),
		cmocka_unit_test(test_root_key_ids),
		cmocka_unit_test(test_root_san),
		cmocka_unit_test(test_root_name_constraints),
		cmocka_unit_test(test_root_signature),
		cmocka_unit_test(test_root_constrains_leaves),
		cmocka_unit_test(test_root_years),
		cmocka_unit_test(test_root_refuses_weak_keys),
		cmocka_unit_test(test_root_refuses_bad_names),
		cmocka_unit_test(test_root_p521),
		cmocka_unit_test(test_root_rsa3072),
		cmocka_unit_test(test_crl),
		cmocka_unit_test(test_crl_empty),
		cmocka_unit_test(test_crl_refusals),
	};

	if (argc != 2 || ks_store_parse(argv[1], &store) == -1 ||
	    store == KS_STORE_PROVIDER) {
		fprintf(stderr, "usage: %s file|tpm2\n", argv[0]);
		return 2;
	}
	if (store == KS_STORE_TPM2 &&
	    (tcti = getenv("IOTCA_TEST_TCTI")) == NULL) {
		fprintf(stderr, "%s: IOTCA_TEST_TCTI not set (run under "
		    "tests/lib/swtpm-run); skipping\n", argv[0]);
		return SKIP_CODE;
	}
	cmocka_set_message_output(CM_OUTPUT_STDOUT);
	return cmocka_run_group_tests_name(argv[1], tests, setup, teardown);
}
