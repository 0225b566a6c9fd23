/*
 * Unit tests for casvc/devcert.c: device certificates issued through a
 * file-store CA key chain to the root, carry exactly the profile of
 * DESIGN.md "Policy", and the lint refuses hand-altered TBS certificates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certgen.h"
#include "keystore.h"
#include "policy.h"
#include "policy_testutil.h"

static const char *const domains[] = { "home.arpa" };

static const struct policy pol90 = {
	.server_name = "iotca-test",
	.domains = domains,
	.ndomains = 1,
	.strict_cn = 0,
	.max_days = 90,
	.crl_url = "http://iotca-test.home.arpa:8080/pki/root.crl",
	.ca_issuers_url = "http://iotca-test.home.arpa:8080/pki/root.cer",
};

static const char device_san[] = "DNS:device-12cd56.local,"
    "DNS:device-12cd56.home.arpa,IP:192.168.1.20,IP:fe80::1";

struct fx {
	char		 dir[64];
	char		 keypath[96], keypath2[96];
	struct ks	*ks;
	EVP_PKEY	*cakey, *cakey2;
	X509		*root;		/* minimal test root, cakey */
	X509		*root2;		/* minimal test root, cakey2 */
	EVP_PKEY	*devkey;	/* P-384 */
	X509_REQ	*req;
	struct csr_request creq;
};

#define FX	((struct fx *)*state)

static void
add_conf_ext(X509 *x, X509 *issuer, int nid, const char *value, int crit)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value));
	if (crit)
		assert_int_equal(X509_EXTENSION_set_critical(ext, 1), 1);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A minimal self-signed CA certificate for key, signed via the keystore. */
static X509 *
make_root(struct ks *ks, EVP_PKEY *key, const char *cn)
{
	X509		*x;
	X509_NAME	*name;
	EVP_MD_CTX	*mctx;
	char		 err[256];
	time_t		 now = time(NULL) - 3600;

	assert_non_null(x = X509_new_ex(ks_libctx(ks), NULL));
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(name = X509_NAME_new());
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	X509_NAME_free(name);
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &now));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 365, 0,
	    &now));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	add_conf_ext(x, x, NID_basic_constraints, "CA:TRUE", 1);
	add_conf_ext(x, x, NID_key_usage, "keyCertSign,cRLSign", 1);
	add_conf_ext(x, x, NID_subject_key_identifier, "hash", 0);
	mctx = ks_sign_ctx(ks, key, err, sizeof(err));
	if (mctx == NULL)
		print_error("ks_sign_ctx: %s\n", err);
	assert_non_null(mctx);
	assert_true(X509_sign_ctx(x, mctx) > 0);
	EVP_MD_CTX_free(mctx);
	return x;
}

static EVP_PKEY *
make_ca_key(struct fx *f, const char *path)
{
	EVP_PKEY	*k;
	char		 err[256];

	k = ks_generate(f->ks, KS_ALG_EC_P384, path, err, sizeof(err));
	if (k == NULL)
		print_error("ks_generate: %s\n", err);
	assert_non_null(k);
	return k;
}

static void
check_csr_ok(const struct policy *pol, X509_REQ *req,
    struct csr_request *creq)
{
	char	 reason[256];

	if (policy_check_csr(pol, req, creq, reason, sizeof(reason)) !=
	    POLICY_OK)
		print_error("policy: %s\n", reason);
	assert_string_equal(reason, "");
}

static int
setup(void **state)
{
	struct ks_config	 cfg = { .store = KS_STORE_FILE };
	struct fx		*f;
	char			 err[256];

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/iotca-devcert-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->keypath, sizeof(f->keypath), "%s/ca.key", f->dir);
	snprintf(f->keypath2, sizeof(f->keypath2), "%s/ca2.key", f->dir);
	if ((f->ks = ks_new(&cfg, err, sizeof(err))) == NULL) {
		print_error("ks_new: %s\n", err);
		return -1;
	}
	f->cakey = make_ca_key(f, f->keypath);
	f->cakey2 = make_ca_key(f, f->keypath2);
	f->root = make_root(f->ks, f->cakey, "iotca-test test root");
	f->root2 = make_root(f->ks, f->cakey2, "another test root");
	f->devkey = tu_key("EC:P-384");
	f->req = tu_csr(f->devkey, "SHA384", "device-12cd56", device_san);
	check_csr_ok(&pol90, f->req, &f->creq);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx	*f = *state;

	X509_REQ_free(f->req);
	EVP_PKEY_free(f->devkey);
	X509_free(f->root);
	X509_free(f->root2);
	EVP_PKEY_free(f->cakey);
	EVP_PKEY_free(f->cakey2);
	ks_free(f->ks);
	unlink(f->keypath);
	unlink(f->keypath2);
	rmdir(f->dir);
	free(f);
	return 0;
}

static X509 *
issue(struct fx *f, const struct policy *pol, X509 *root, int days)
{
	X509	*x;
	char	 err[256];

	x = certgen_device(f->ks, f->cakey, root, pol, f->req, &f->creq,
	    days, err, sizeof(err));
	if (x == NULL)
		print_error("certgen_device: %s\n", err);
	assert_non_null(x);
	return x;
}

/* X509_verify_cert with root as the only trust anchor, as a TLS server. */
static int
chains(X509 *root, X509 *leaf, const char *host, int *verr)
{
	X509_STORE	*store;
	X509_STORE_CTX	*ctx;
	int		 rc;

	assert_non_null(store = X509_STORE_new());
	assert_int_equal(X509_STORE_add_cert(store, root), 1);
	assert_non_null(ctx = X509_STORE_CTX_new());
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx,
	    X509_PURPOSE_SSL_SERVER), 1);
	if (host != NULL)
		assert_int_equal(X509_VERIFY_PARAM_set1_host(
		    X509_STORE_CTX_get0_param(ctx), host, 0), 1);
	rc = X509_verify_cert(ctx);
	*verr = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

static void
assert_chains(X509 *root, X509 *leaf, const char *host)
{
	int	 verr;

	if (chains(root, leaf, host, &verr) != 1)
		print_error("verify: %s\n", X509_verify_cert_error_string(verr));
	assert_int_equal(chains(root, leaf, host, &verr), 1);
}

static long
validity_seconds(X509 *x)
{
	int	 day, sec;

	assert_int_equal(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(x),
	    X509_get0_notAfter(x)), 1);
	return (long)day * 86400 + sec;
}

/* --- issuance ----------------------------------------------------------- */

static void
issue_and_chain(void **state)
{
	X509		*x = issue(FX, &pol90, FX->root, 90);
	X509_NAME	*subj = X509_get_subject_name(x);
	char		 cn[80];
	int		 day, sec;

	assert_chains(FX->root, x, "device-12cd56.local");
	assert_chains(FX->root, x, "device-12cd56.home.arpa");
	assert_int_equal(X509_check_host(x, "device-12cd56.local", 0, 0,
	    NULL), 1);
	assert_int_equal(X509_check_host(x, "other.local", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ip_asc(x, "192.168.1.20", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "fe80::1", 0), 1);

	assert_int_equal(X509_NAME_entry_count(subj), 1);
	assert_true(X509_NAME_get_text_by_NID(subj, NID_commonName, cn,
	    sizeof(cn)) > 0);
	/* The CN is the first DNS name, so stock clients can renew it. */
	assert_string_equal(cn, "device-12cd56.local");
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x),
	    X509_get_subject_name(FX->root)), 0);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);

	/* notBefore is now - 60 s; validity exactly 90 days. */
	assert_int_equal(validity_seconds(x), 90L * 86400);
	assert_int_equal(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(x),
	    NULL), 1);
	assert_int_equal(day, 0);
	assert_in_range(sec, 55, 120);

	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), FX->devkey), 1);
	X509_free(x);
}

/* The CRL Distribution Point and AIA caIssuers name pol90's URLs. */
static void
assert_publication(X509 *x)
{
	CRL_DIST_POINTS		*cdp;
	AUTHORITY_INFO_ACCESS	*aia;
	DIST_POINT		*dp;
	ACCESS_DESCRIPTION	*ad;
	GENERAL_NAME		*gn;
	int			 crit;

	assert_non_null(cdp = X509_get_ext_d2i(x, NID_crl_distribution_points,
	    &crit, NULL));
	assert_int_equal(crit, 0);
	assert_int_equal(sk_DIST_POINT_num(cdp), 1);
	dp = sk_DIST_POINT_value(cdp, 0);
	assert_int_equal(dp->distpoint->type, 0);
	gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
	assert_int_equal(gn->type, GEN_URI);
	assert_string_equal((const char *)ASN1_STRING_get0_data(
	    gn->d.uniformResourceIdentifier), pol90.crl_url);
	CRL_DIST_POINTS_free(cdp);

	assert_non_null(aia = X509_get_ext_d2i(x, NID_info_access, &crit,
	    NULL));
	assert_int_equal(crit, 0);
	assert_int_equal(sk_ACCESS_DESCRIPTION_num(aia), 1);
	ad = sk_ACCESS_DESCRIPTION_value(aia, 0);
	assert_int_equal(OBJ_obj2nid(ad->method), NID_ad_ca_issuers);
	assert_int_equal(ad->location->type, GEN_URI);
	assert_string_equal((const char *)ASN1_STRING_get0_data(
	    ad->location->d.uniformResourceIdentifier), pol90.ca_issuers_url);
	AUTHORITY_INFO_ACCESS_free(aia);
}

/* Drop the extension nid from x (it must be there). */
static void
drop_ext(X509 *x, int nid)
{
	int		 i = X509_get_ext_by_NID(x, nid, -1);
	X509_EXTENSION	*ext;

	assert_true(i >= 0);
	assert_non_null(ext = X509_delete_ext(x, i));
	X509_EXTENSION_free(ext);
}

static void
profile_extensions(void **state)
{
	X509		*x = issue(FX, &pol90, FX->root, 30);
	uint32_t	 flags;
	int		 crit;
	BASIC_CONSTRAINTS *bc;
	const ASN1_OCTET_STRING *aki;

	flags = X509_get_extension_flags(x);
	assert_true(flags & EXFLAG_BCONS);
	assert_false(flags & EXFLAG_CA);
	assert_int_equal(X509_check_ca(x), 0);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	/* An EC key signs; it has no key encipherment. */
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_non_null(X509_get0_subject_key_id(x));
	assert_non_null(aki = X509_get0_authority_key_id(x));
	assert_int_equal(ASN1_OCTET_STRING_cmp(aki,
	    X509_get0_subject_key_id(FX->root)), 0);

	assert_non_null(bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit,
	    NULL));
	assert_int_equal(crit, 1);
	assert_int_equal(bc->ca, 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_get_ext_count(x), 8);
	assert_int_equal(validity_seconds(x), 30L * 86400);
	assert_publication(x);
	X509_free(x);
}

static void
rsa_key_encipherment(void **state)
{
	EVP_PKEY		*rsa = tu_key("RSA:3072");
	X509_REQ		*req = tu_csr(rsa, "SHA256", NULL,
				    "DNS:cam-01.local");
	struct csr_request	 creq;
	X509			*x;
	char			 err[256];

	check_csr_ok(&pol90, req, &creq);
	x = certgen_device(FX->ks, FX->cakey, FX->root, &pol90, req, &creq,
	    90, err, sizeof(err));
	assert_non_null(x);
	assert_int_equal(X509_get_key_usage(x),
	    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	assert_chains(FX->root, x, "cam-01.local");
	X509_free(x);
	X509_REQ_free(req);
	EVP_PKEY_free(rsa);
}

static void
days_bounds(void **state)
{
	struct policy	 pol = pol90;
	char		 err[256];
	X509		*x;

	x = issue(FX, &pol90, FX->root, 90);
	X509_free(x);
	x = issue(FX, &pol90, FX->root, 1);
	assert_int_equal(validity_seconds(x), 86400);
	X509_free(x);

	assert_null(certgen_device(FX->ks, FX->cakey, FX->root, &pol90,
	    FX->req, &FX->creq, 91, err, sizeof(err)));
	assert_non_null(strstr(err, "validity of 91 days is outside 1..90"));
	assert_null(certgen_device(FX->ks, FX->cakey, FX->root, &pol90,
	    FX->req, &FX->creq, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "validity of 0 days"));
	assert_null(certgen_device(FX->ks, FX->cakey, FX->root, &pol90,
	    FX->req, &FX->creq, -5, err, sizeof(err)));

	/* A smaller configured maximum is honoured ... */
	pol.max_days = 30;
	assert_null(certgen_device(FX->ks, FX->cakey, FX->root, &pol,
	    FX->req, &FX->creq, 31, err, sizeof(err)));
	/* ... a larger one is a configuration error, not a licence. */
	pol.max_days = 365;
	assert_null(certgen_device(FX->ks, FX->cakey, FX->root, &pol,
	    FX->req, &FX->creq, 91, err, sizeof(err)));
	assert_non_null(strstr(err, "max_days 365"));
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
serials_unique(void **state)
{
	enum { N = 1000 };
	char		**hex;
	X509		*x;
	BIGNUM		*bn;
	int		 i, bits;

	assert_non_null(hex = calloc(N, sizeof(*hex)));
	for (i = 0; i < N; i++) {
		x = issue(FX, &pol90, FX->root, 90);
		assert_non_null(bn = ASN1_INTEGER_to_BN(
		    X509_get0_serialNumber(x), NULL));
		assert_false(BN_is_negative(bn));
		bits = BN_num_bits(bn);
		/* 16 bytes, top bit clear, first byte non-zero. */
		assert_in_range(bits, 121, 127);
		assert_non_null(hex[i] = BN_bn2hex(bn));
		BN_free(bn);
		X509_free(x);
	}
	qsort(hex, N, sizeof(*hex), cmp_str);
	for (i = 1; i < N; i++)
		assert_string_not_equal(hex[i - 1], hex[i]);
	for (i = 0; i < N; i++)
		OPENSSL_free(hex[i]);
	free(hex);
}

/* The CA certificate does not match the CA key: caught after signing. */
static void
refuse_mismatched_ca(void **state)
{
	char	 err[256];

	assert_null(certgen_device(FX->ks, FX->cakey, FX->root2, &pol90,
	    FX->req, &FX->creq, 90, err, sizeof(err)));
	assert_non_null(strstr(err, "does not verify with the CA"));
}

/* With the real root, the root's nameConstraints admit the device names. */
static void
chain_under_certgen_root(void **state)
{
	static const char *const ips[] = { "192.168.1.1" };
	struct root_params	 rp = {
		.server_name = "iotca-test",
		.domains = domains,
		.ndomains = 1,
		.ips = ips,
		.nips = 1,
		.years = 1,
	};
	X509			*root, *x;
	char			 err[256];
	int			 verr;

	root = certgen_root(FX->ks, FX->cakey, &rp, err, sizeof(err));
	if (root == NULL)
		print_error("certgen_root: %s\n", err);
	assert_non_null(root);
	x = issue(FX, &pol90, root, 90);
	assert_chains(root, x, "device-12cd56.home.arpa");
	assert_int_equal(chains(FX->root2, x, NULL, &verr), 0);
	X509_free(x);
	X509_free(root);
}

/* --- lint --------------------------------------------------------------- */

/* An issued certificate, to be altered and linted again. */
static X509 *
tbs_copy(void **state)
{
	X509	*x = issue(FX, &pol90, FX->root, 90), *copy;

	assert_non_null(copy = X509_dup(x));
	X509_free(x);
	return copy;
}

static void
expect_lint(void **state, X509 *x, const char *substr)
{
	char	 err[256] = "";
	int	 rc = certgen_lint(&pol90, x, FX->root, err, sizeof(err));

	X509_free(x);
	if (rc != -1 || strstr(err, substr) == NULL)
		print_error("lint: %d \"%s\", wanted \"%s\"\n", rc, err,
		    substr);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, substr));
}

static void
lint_accepts_issued(void **state)
{
	X509	*x = tbs_copy(state);
	char	 err[256];

	assert_int_equal(certgen_lint(&pol90, x, FX->root, err, sizeof(err)),
	    0);
	X509_free(x);
}

static void
lint_refuses_ca_true(void **state)
{
	X509			*x = tbs_copy(state);
	BASIC_CONSTRAINTS	*bc = BASIC_CONSTRAINTS_new();

	assert_non_null(bc);
	bc->ca = 0xff;
	assert_int_equal(X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1,
	    X509V3_ADD_REPLACE), 1);
	BASIC_CONSTRAINTS_free(bc);
	expect_lint(state, x, "CA:TRUE");
}

static void
lint_refuses_91_days(void **state)
{
	X509	*x = tbs_copy(state);
	time_t	 nb = time(NULL) - 60;

	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 91, 0, &nb));
	expect_lint(state, x, "exceeds 90 days");
}

static void
lint_refuses_backdating(void **state)
{
	X509	*x = tbs_copy(state);
	time_t	 nb = time(NULL) - 30 * 86400;

	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 60, 0, &nb));
	expect_lint(state, x, "backdating");
}

static void
lint_refuses_key_cert_sign(void **state)
{
	X509		*x = tbs_copy(state);
	ASN1_BIT_STRING	*ku = ASN1_BIT_STRING_new();

	assert_non_null(ku);
	assert_int_equal(ASN1_BIT_STRING_set_bit(ku, 0, 1), 1);
	assert_int_equal(ASN1_BIT_STRING_set_bit(ku, 5, 1), 1);
	assert_int_equal(X509_add1_ext_i2d(x, NID_key_usage, ku, 1,
	    X509V3_ADD_REPLACE), 1);
	ASN1_BIT_STRING_free(ku);
	expect_lint(state, x, "keyCertSign");
}

static void
lint_refuses_extra_extension(void **state)
{
	X509	*x = tbs_copy(state);

	add_conf_ext(x, FX->root, NID_netscape_comment, "hello", 0);
	expect_lint(state, x, "unexpected extension");
}

static void
lint_refuses_public_san(void **state)
{
	X509		*x = tbs_copy(state);
	X509_EXTENSION	*ext;
	GENERAL_NAMES	*gens;

	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
	    "DNS:device-12cd56.example.org");
	assert_non_null(ext);
	assert_non_null(gens = X509V3_EXT_d2i(ext));
	X509_EXTENSION_free(ext);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_REPLACE), 1);
	GENERAL_NAMES_free(gens);
	expect_lint(state, x, "not under .local");
}

static void
lint_refuses_server_eku_missing(void **state)
{
	X509			*x = tbs_copy(state);
	EXTENDED_KEY_USAGE	*eku = sk_ASN1_OBJECT_new_null();

	assert_non_null(eku);
	assert_true(sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0,
	    X509V3_ADD_REPLACE), 1);
	sk_ASN1_OBJECT_free(eku);
	expect_lint(state, x, "lacks serverAuth");
}

static void
lint_refuses_short_serial(void **state)
{
	X509	*x = tbs_copy(state);

	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 12345), 1);
	expect_lint(state, x, "fewer than 64");
}

static void
lint_refuses_other_issuer(void **state)
{
	X509	*x = tbs_copy(state);

	assert_int_equal(X509_set_issuer_name(x,
	    X509_get_subject_name(FX->root2)), 1);
	expect_lint(state, x, "issuer is not the CA's subject");
}

static void
lint_refuses_crl_dp_missing(void **state)
{
	X509	*x = tbs_copy(state);

	drop_ext(x, NID_crl_distribution_points);
	expect_lint(state, x, "crlDistributionPoints missing");
}

static void
lint_refuses_crl_dp_elsewhere(void **state)
{
	X509	*x = tbs_copy(state);

	drop_ext(x, NID_crl_distribution_points);
	add_conf_ext(x, FX->root, NID_crl_distribution_points,
	    "URI:http://crl.example.org/root.crl", 0);
	expect_lint(state, x, "distribution point is not");
}

static void
lint_refuses_crl_dp_malformed(void **state)
{
	X509	*x;

	/* Two points, then a point that is a DNS name, not a URI. */
	x = tbs_copy(state);
	drop_ext(x, NID_crl_distribution_points);
	add_conf_ext(x, FX->root, NID_crl_distribution_points,
	    "URI:http://iotca-test.home.arpa:8080/pki/root.crl,"
	    "URI:http://iotca-test.local/pki/root.crl", 0);
	expect_lint(state, x, "must hold one point");
	x = tbs_copy(state);
	drop_ext(x, NID_crl_distribution_points);
	add_conf_ext(x, FX->root, NID_crl_distribution_points,
	    "DNS:iotca-test.home.arpa", 0);
	expect_lint(state, x, "is not a URI");
	x = tbs_copy(state);
	drop_ext(x, NID_crl_distribution_points);
	add_conf_ext(x, FX->root, NID_crl_distribution_points,
	    "URI:http://iotca-test.home.arpa:8080/pki/root.crl", 1);
	expect_lint(state, x, "crlDistributionPoints is critical");
}

static void
lint_refuses_aia_missing(void **state)
{
	X509	*x = tbs_copy(state);

	drop_ext(x, NID_info_access);
	expect_lint(state, x, "authorityInfoAccess missing");
}

static void
lint_refuses_aia_malformed(void **state)
{
	X509	*x;

	/* OCSP instead of caIssuers; caIssuers elsewhere; two entries. */
	x = tbs_copy(state);
	drop_ext(x, NID_info_access);
	add_conf_ext(x, FX->root, NID_info_access,
	    "OCSP;URI:http://iotca-test.home.arpa:8080/pki/root.cer", 0);
	expect_lint(state, x, "is not caIssuers");
	x = tbs_copy(state);
	drop_ext(x, NID_info_access);
	add_conf_ext(x, FX->root, NID_info_access,
	    "caIssuers;URI:https://iotca-test.home.arpa/pki/root.cer", 0);
	expect_lint(state, x, "caIssuers location is not");
	x = tbs_copy(state);
	drop_ext(x, NID_info_access);
	add_conf_ext(x, FX->root, NID_info_access,
	    "caIssuers;URI:http://iotca-test.home.arpa:8080/pki/root.cer,"
	    "OCSP;URI:http://iotca-test.home.arpa:8080/ocsp", 0);
	expect_lint(state, x, "must hold one caIssuers");
}

static void
lint_refuses_publication_without_policy(void **state)
{
	struct policy	 pol = pol90;
	X509		*x = tbs_copy(state);
	char		 err[256] = "";

	/* A policy that names no URLs wants no such extensions. */
	pol.crl_url = pol.ca_issuers_url = NULL;
	assert_int_equal(certgen_lint(&pol, x, FX->root, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "unexpected extension"));
	X509_free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(issue_and_chain),
		cmocka_unit_test(profile_extensions),
		cmocka_unit_test(rsa_key_encipherment),
		cmocka_unit_test(days_bounds),
		cmocka_unit_test(serials_unique),
		cmocka_unit_test(refuse_mismatched_ca),
		cmocka_unit_test(chain_under_certgen_root),
		cmocka_unit_test(lint_accepts_issued),
		cmocka_unit_test(lint_refuses_ca_true),
		cmocka_unit_test(lint_refuses_91_days),
		cmocka_unit_test(lint_refuses_backdating),
		cmocka_unit_test(lint_refuses_key_cert_sign),
		cmocka_unit_test(lint_refuses_extra_extension),
		cmocka_unit_test(lint_refuses_public_san),
		cmocka_unit_test(lint_refuses_server_eku_missing),
		cmocka_unit_test(lint_refuses_short_serial),
		cmocka_unit_test(lint_refuses_other_issuer),
		cmocka_unit_test(lint_refuses_crl_dp_missing),
		cmocka_unit_test(lint_refuses_crl_dp_elsewhere),
		cmocka_unit_test(lint_refuses_crl_dp_malformed),
		cmocka_unit_test(lint_refuses_aia_missing),
		cmocka_unit_test(lint_refuses_aia_malformed),
		cmocka_unit_test(lint_refuses_publication_without_policy),
	};

	return cmocka_run_group_tests_name("devcert", tests, setup, teardown);
}
