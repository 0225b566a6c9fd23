/*
 * x509sign: put the CA's signature on a certificate or CRL through the
 * keystore, with signature AlgorithmIdentifiers we choose ourselves.
 *
 * OpenSSL takes the AlgorithmIdentifier from the provider that holds the key,
 * and tpm2-openssl 1.1.1 gives ECDSA ones with NULL parameters, which RFC
 * 5758 3.2 forbids and strict verifiers (Chromium: ERR_CERT_INVALID) reject.
 * So we write the identifiers (ECDSA: absent parameters; RSA PKCS#1 v1.5:
 * NULL, RFC 4055), encode the to-be-signed part, and sign those bytes.
 */
#ifndef IOTCA_X509SIGN_H
#define IOTCA_X509SIGN_H

#include <stddef.h>
#include <openssl/x509.h>

#include "keystore.h"

/* Sign x in place with key; -1 and one line in err on failure. */
int	x509sign_cert(struct ks *, EVP_PKEY *key, X509 *x, char *err,
	    size_t errlen);
/*
 * x509sign_cert() in two steps, for a key that signs elsewhere (the
 * signer's key thread): x509sign_cert_tbs() writes the signature
 * AlgorithmIdentifiers for key into x and returns the bytes to sign
 * (*tbs, OPENSSL_free() it); x509sign_cert_set() stores the signature made
 * over them.  Neither uses the key's private part.
 */
int	x509sign_cert_tbs(EVP_PKEY *key, X509 *x, unsigned char **tbs,
	    size_t *tbslen, char *err, size_t errlen);
int	x509sign_cert_set(X509 *x, const unsigned char *sig, size_t siglen,
	    char *err, size_t errlen);
int	x509sign_crl(struct ks *, EVP_PKEY *key, X509_CRL *crl, char *err,
	    size_t errlen);

#endif
