/*
 * Helpers for the policy and devcert tests: throwaway keys and CSRs built
 * with the OpenSSL API, so every test states exactly what it sends.
 */
#ifndef IOTCA_POLICY_TESTUTIL_H
#define IOTCA_POLICY_TESTUTIL_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* "EC:P-384", "EC-EXPLICIT:P-384", "RSA:3072", "RSA-E3:3072" (public
 * exponent 3), "ED25519"; aborts the test on failure. */
EVP_PKEY	*tu_key(const char *spec);

/*
 * A CSR signed by key with digest md ("SHA384"; NULL for Ed25519), subject
 * CN=cn (NULL: no subject at all), and the subjectAltName san in openssl.cnf
 * syntax ("DNS:a.local,IP:192.168.1.20"; NULL: no extension).
 */
X509_REQ	*tu_csr(EVP_PKEY *key, const char *md, const char *cn,
		    const char *san);

/* As tu_csr() with a ready-made GENERAL_NAMES (taken over, may be NULL). */
X509_REQ	*tu_csr_gens(EVP_PKEY *key, const char *md, const char *cn,
		    GENERAL_NAMES *gens);

/* An RSASSA-PSS signed CSR with the given message digest. */
X509_REQ	*tu_csr_pss(EVP_PKEY *rsakey, const char *md, const char *cn,
		    const char *san);

/* DER of a CSR; caller frees with OPENSSL_free. */
unsigned char	*tu_der(X509_REQ *, size_t *len);

#endif
