/*
 * x509sign: signatures on certificates and CRLs with our own
 * AlgorithmIdentifiers (see x509sign.h for why).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "x509sign.h"

static int
fail(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char ossl[160] = "";

	if (e != 0)
		ERR_error_string_n(e, ossl, sizeof(ossl));
	snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", ossl);
	ERR_clear_error();
	return -1;
}

/* The signature algorithm for key and the keystore's digest for it. */
static int
sig_algor(EVP_PKEY *key, int *nid, int *paramtype)
{
	int md = OBJ_sn2nid(ks_digest_for(key));
	int base = EVP_PKEY_is_a(key, "EC") ? EVP_PKEY_EC :
	    EVP_PKEY_is_a(key, "RSA") ? EVP_PKEY_RSA : NID_undef;

	if (md == NID_undef || base == NID_undef ||
	    !OBJ_find_sigid_by_algs(nid, md, base))
		return -1;
	*paramtype = base == EVP_PKEY_RSA ? V_ASN1_NULL : V_ASN1_UNDEF;
	return 0;
}

static int
set_algor(X509_ALGOR *a, int nid, int paramtype)
{
	return X509_ALGOR_set0(a, OBJ_nid2obj(nid), paramtype, NULL);
}

/* Store a signature as the bit string of a certificate or CRL. */
static int
set_sig(ASN1_BIT_STRING *sig, const unsigned char *buf, size_t len, char *err,
    size_t errlen)
{
	if (len > INT_MAX || ASN1_BIT_STRING_set(sig, (unsigned char *)buf,
	    (int)len) != 1)
		return fail(err, errlen, "cannot store the signature");
	/* A signature is whole bytes: no unused bits (as X509_sign does). */
	sig->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	sig->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	return 0;
}

/* Sign tbs with key and store the result as the signature bit string. */
static int
sign_bytes(struct ks *ks, EVP_PKEY *key, const unsigned char *tbs,
    size_t tbslen, ASN1_BIT_STRING *sig, char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc;

	if (ks_sign(ks, key, tbs, tbslen, &buf, &len, err, errlen) == -1)
		return -1;
	rc = set_sig(sig, buf, len, err, errlen);
	free(buf);
	return rc;
}

int
x509sign_cert_tbs(EVP_PKEY *key, X509 *x, unsigned char **tbs, size_t *tbslen,
    char *err, size_t errlen)
{
	const ASN1_BIT_STRING *csig;
	const X509_ALGOR *calg;
	unsigned char *der = NULL;
	int nid, paramtype, len;

	if (sig_algor(key, &nid, &paramtype) == -1)
		return fail(err, errlen, "no signature algorithm for this key");
	X509_get0_signature(&csig, &calg, x);
	/*
	 * OpenSSL offers no setter for these two fields but X509_sign(); they
	 * belong to x, which we own and are building.
	 */
	if (set_algor((X509_ALGOR *)X509_get0_tbs_sigalg(x), nid,
	    paramtype) != 1 || set_algor((X509_ALGOR *)calg, nid,
	    paramtype) != 1)
		return fail(err, errlen, "cannot set the signature algorithm");
	if ((len = i2d_re_X509_tbs(x, &der)) <= 0)
		return fail(err, errlen, "cannot encode the certificate");
	*tbs = der;
	*tbslen = (size_t)len;
	return 0;
}

int
x509sign_cert_set(X509 *x, const unsigned char *sig, size_t siglen, char *err,
    size_t errlen)
{
	const ASN1_BIT_STRING *csig;
	const X509_ALGOR *calg;

	X509_get0_signature(&csig, &calg, x);
	return set_sig((ASN1_BIT_STRING *)csig, sig, siglen, err, errlen);
}

int
x509sign_cert(struct ks *ks, EVP_PKEY *key, X509 *x, char *err, size_t errlen)
{
	unsigned char *tbs = NULL, *sig = NULL;
	size_t len, siglen = 0;
	int rc = -1;

	if (x509sign_cert_tbs(key, x, &tbs, &len, err, errlen) == -1)
		return -1;
	if (ks_sign(ks, key, tbs, len, &sig, &siglen, err, errlen) == 0)
		rc = x509sign_cert_set(x, sig, siglen, err, errlen);
	free(sig);
	OPENSSL_free(tbs);
	return rc;
}

/*
 * OpenSSL 3.0 has no way at all to reach a CRL's inner AlgorithmIdentifier,
 * so a throwaway software key of the same type stamps both identifiers
 * (X509_CRL_sign_ctx), and the CA key then signs the re-encoded TBS.  Only
 * EC keys need it; CRLs are signed rarely, so the extra key costs little.
 */
int
x509sign_crl(struct ks *ks, EVP_PKEY *key, X509_CRL *crl, char *err,
    size_t errlen)
{
	const ASN1_BIT_STRING *csig;
	const X509_ALGOR *calg;
	EVP_PKEY *stamp = NULL;
	EVP_MD_CTX *ctx = NULL;
	unsigned char *tbs = NULL;
	int nid, paramtype, len, rc = -1;

	if (sig_algor(key, &nid, &paramtype) == -1)
		return fail(err, errlen, "no signature algorithm for this key");
	if (paramtype == V_ASN1_NULL) {
		/* RSA: the provider's identifier is the right one. */
		if ((ctx = ks_sign_ctx(ks, key, err, errlen)) == NULL)
			return -1;
		rc = X509_CRL_sign_ctx(crl, ctx) > 0 ? 0 :
		    fail(err, errlen, "signing the CRL failed");
		EVP_MD_CTX_free(ctx);
		return rc;
	}
	if ((stamp = EVP_PKEY_Q_keygen(ks_libctx(ks), "provider=default", "EC",
	    "P-256")) == NULL ||
	    (ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(ctx, NULL, ks_digest_for(key), ks_libctx(ks),
	    "provider=default", stamp, NULL) != 1 ||
	    X509_CRL_sign_ctx(crl, ctx) <= 0) {
		fail(err, errlen, "cannot prepare the CRL's signature fields");
		goto out;
	}
	X509_CRL_get0_signature(crl, &csig, &calg);
	if (OBJ_obj2nid(calg->algorithm) != nid) {
		fail(err, errlen, "unexpected CRL signature algorithm");
		goto out;
	}
	if ((len = i2d_re_X509_CRL_tbs(crl, &tbs)) <= 0) {
		fail(err, errlen, "cannot encode the CRL");
		goto out;
	}
	rc = sign_bytes(ks, key, tbs, (size_t)len, (ASN1_BIT_STRING *)csig,
	    err, errlen);
out:
	OPENSSL_free(tbs);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(stamp);
	return rc;
}
