/*
 * test_certid: RFC 9773 certificate identifiers (acme/certid.c).  acmed
 * records an issued certificate's identifier and validity with GnuTLS
 * (cert_facts_pem) and answers renewalInfo and revocation from OpenSSL's
 * reading (certid_of, cert_validity): both must give the same values, for
 * serials with and without the top bit set, and refuse a certificate
 * without an AKI keyIdentifier and text that is no certificate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certid.h"

static EVP_PKEY *
p384(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");

	assert_non_null(k);
	return k;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	assert_non_null(e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value));
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for key, signed by ca_key (self-signed when issuer is
 * NULL), with the serial given in hex; with an AKI when aki. */
static X509 *
make_cert(EVP_PKEY *key, EVP_PKEY *ca_key, X509 *issuer, const char *serial,
    int aki)
{
	X509 *x;
	BIGNUM *bn = NULL;
	X509_NAME *n;

	assert_non_null(x = X509_new());
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_true(BN_hex2bn(&bn, serial) > 0);
	assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
	BN_free(bn);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 7));
	assert_non_null(n = X509_get_subject_name(x));
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"certid test", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : n), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	add_ext(x, issuer != NULL ? issuer : x, NID_subject_key_identifier,
	    "hash");
	if (aki)
		add_ext(x, issuer != NULL ? issuer : x,
		    NID_authority_key_identifier, "keyid:always");
	assert_true(X509_sign(x, ca_key, EVP_sha384()) > 0);
	return x;
}

static char *
pem_of(X509 *x)
{
	BIO *b;
	char *data, *pem;
	long len;

	assert_non_null(b = BIO_new(BIO_s_mem()));
	assert_int_equal(PEM_write_bio_X509(b, x), 1);
	assert_true((len = BIO_get_mem_data(b, &data)) > 0);
	assert_non_null(pem = strndup(data, (size_t)len));
	BIO_free(b);
	return pem;
}

static void
test_gnutls_reading_matches_openssl(void **state)
{
	static const char *serials[] = {
		"01", "7f", "80", "ff", "00ff",
		"1234567890abcdef1234567890abcdef12345678",
		"8234567890abcdef1234567890abcdef12345678",
	};
	EVP_PKEY *ca_key = p384(), *key = p384();
	X509 *ca = make_cert(ca_key, ca_key, NULL, "01", 0), *x, *back;
	char a[CERTID_LEN], b[CERTID_LEN], *pem;
	time_t nb1, na1, nb2, na2;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(serials) / sizeof(serials[0]); i++) {
		x = make_cert(key, ca_key, ca, serials[i], 1);
		pem = pem_of(x);
		assert_non_null(back = cert_from_pem(pem));
		assert_int_equal(certid_of(back, a), 0);
		assert_int_equal(cert_validity(back, &nb1, &na1), 0);
		assert_int_equal(cert_facts_pem(pem, b, &nb2, &na2), 0);
		assert_string_equal(a, b);
		assert_int_equal(nb1, nb2);
		assert_int_equal(na1, na2);
		X509_free(back);
		X509_free(x);
		free(pem);
	}
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
}

static void
test_refusals(void **state)
{
	EVP_PKEY *ca_key = p384();
	X509 *x = make_cert(ca_key, ca_key, NULL, "02", 0);
	char id[CERTID_LEN], *pem = pem_of(x);
	time_t nb, na;

	(void)state;
	/* No AKI keyIdentifier: no identifier, from either reader. */
	assert_int_equal(certid_of(x, id), -1);
	assert_int_equal(cert_facts_pem(pem, id, &nb, &na), -1);
	assert_int_equal(cert_facts_pem("", id, &nb, &na), -1);
	assert_int_equal(cert_facts_pem("-----BEGIN CERTIFICATE-----\nAAAA\n"
	    "-----END CERTIFICATE-----\n", id, &nb, &na), -1);
	free(pem);
	X509_free(x);
	EVP_PKEY_free(ca_key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gnutls_reading_matches_openssl),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
