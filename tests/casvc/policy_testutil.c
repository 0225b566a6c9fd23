#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "policy_testutil.h"

/* An EC key whose SPKI will carry the curve's explicit parameters. */
static EVP_PKEY *
explicit_ec_key(const char *curve)
{
	EVP_PKEY_CTX	*ctx;
	EVP_PKEY	*k = NULL;
	OSSL_PARAM	 params[3];

	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)curve, 0);
	params[1] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PKEY_EC_ENCODING_EXPLICIT, 0);
	params[2] = OSSL_PARAM_construct_end();
	assert_non_null(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL));
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_params(ctx, params), 1);
	assert_int_equal(EVP_PKEY_generate(ctx, &k), 1);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* "3:3072": an RSA key of 3072 bits with public exponent 3. */
static EVP_PKEY *
rsa_key_exponent(const char *spec)
{
	EVP_PKEY_CTX	*ctx;
	EVP_PKEY	*k = NULL;
	BIGNUM		*e = NULL;
	unsigned long	 bits;
	char		*end;

	assert_non_null(e = BN_new());
	assert_int_equal(BN_set_word(e, strtoul(spec, &end, 10)), 1);
	assert_int_equal(*end, ':');
	bits = strtoul(end + 1, NULL, 10);
	assert_non_null(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL));
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits), 1);
	assert_int_equal(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e), 1);
	assert_int_equal(EVP_PKEY_keygen(ctx, &k), 1);
	EVP_PKEY_CTX_free(ctx);
	BN_free(e);
	return k;
}

EVP_PKEY *
tu_key(const char *spec)
{
	EVP_PKEY	*k = NULL;

	if (strncmp(spec, "EC-EXPLICIT:", 12) == 0)
		k = explicit_ec_key(spec + 12);
	else if (strncmp(spec, "EC:", 3) == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", spec + 3);
	else if (strncmp(spec, "RSA:", 4) == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
		    (size_t)strtoul(spec + 4, NULL, 10));
	else if (strncmp(spec, "RSA-E", 5) == 0)
		k = rsa_key_exponent(spec + 5);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, spec);
	assert_non_null(k);
	return k;
}

static X509_REQ *
csr_unsigned(EVP_PKEY *key, const char *cn, GENERAL_NAMES *gens)
{
	X509_REQ			*req;
	X509_NAME			*subj;
	STACK_OF(X509_EXTENSION)	*exts = NULL;

	assert_non_null(req = X509_REQ_new());
	assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
	if (cn != NULL) {
		assert_non_null(subj = X509_NAME_new());
		assert_int_equal(X509_NAME_add_entry_by_txt(subj, "CN",
		    MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0), 1);
		assert_int_equal(X509_REQ_set_subject_name(req, subj), 1);
		X509_NAME_free(subj);
	}
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	if (gens != NULL) {
		assert_int_equal(X509V3_add1_i2d(&exts, NID_subject_alt_name,
		    gens, 0, X509V3_ADD_DEFAULT), 1);
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		GENERAL_NAMES_free(gens);
	}
	return req;
}

X509_REQ *
tu_csr_gens(EVP_PKEY *key, const char *md, const char *cn, GENERAL_NAMES *gens)
{
	X509_REQ	*req = csr_unsigned(key, cn, gens);
	const EVP_MD	*d = NULL;

	if (md != NULL)
		assert_non_null(d = EVP_get_digestbyname(md));
	assert_true(X509_REQ_sign(req, key, d) > 0);
	return req;
}

static GENERAL_NAMES *
gens_from_text(const char *san)
{
	X509_EXTENSION	*ext;
	GENERAL_NAMES	*gens;

	if (san == NULL)
		return NULL;
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
	assert_non_null(ext);
	assert_non_null(gens = X509V3_EXT_d2i(ext));
	X509_EXTENSION_free(ext);
	return gens;
}

X509_REQ *
tu_csr(EVP_PKEY *key, const char *md, const char *cn, const char *san)
{
	return tu_csr_gens(key, md, cn, gens_from_text(san));
}

X509_REQ *
tu_csr_pss(EVP_PKEY *key, const char *md, const char *cn, const char *san)
{
	X509_REQ	*req = csr_unsigned(key, cn, gens_from_text(san));
	EVP_MD_CTX	*ctx;
	EVP_PKEY_CTX	*pctx = NULL;

	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL,
	    key, NULL), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx,
	    RSA_PKCS1_PSS_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
	    RSA_PSS_SALTLEN_DIGEST) > 0);
	assert_true(X509_REQ_sign_ctx(req, ctx) > 0);
	EVP_MD_CTX_free(ctx);
	return req;
}

unsigned char *
tu_der(X509_REQ *req, size_t *len)
{
	unsigned char	*der = NULL;
	int		 n;

	assert_true((n = i2d_X509_REQ(req, &der)) > 0);
	*len = (size_t)n;
	return der;
}
