/*
 * certgen: the certificates and CRLs iotca signs, built field by field from
 * policy, linted before signing, signed through the keystore.  Used by the
 * signer for device certificates and CRLs, and by "iotca init" for the root.
 *
 * Functions return 0 or a non-NULL pointer on success; on failure -1 or NULL
 * and one human-readable line in err.
 */
#ifndef IOTCA_CERTGEN_H
#define IOTCA_CERTGEN_H

#include <stddef.h>
#include <time.h>
#include <openssl/x509.h>

#include "keystore.h"
#include "policy.h"

struct root_params {
	const char	*server_name;
	const char *const *domains;
	size_t		 ndomains;
	const char *const *ips;		/* optional textual IP SANs of the server */
	size_t		 nips;
	int		 years;		/* 1..10 inclusive, else refused */
};

/*
 * The self-signed root (DESIGN.md "Policy"): subject CN "<name> root CA",
 * SANs DNS:<name>.local and DNS:<name>.<domain> (and IPs), basicConstraints
 * CA critical, keyUsage keyCertSign+cRLSign critical, SKI, and critical
 * nameConstraints permitting only "local", the domains, and the IPv4/IPv6
 * private-use, link-local and loopback ranges.  Key must be P-384, P-521 or
 * RSA >= 3072; the hash SHA-384 (SHA-512 for P-521).
 */
X509	*certgen_root(struct ks *, EVP_PKEY *key, const struct root_params *,
	    char *err, size_t errlen);

/*
 * A device certificate for a request that passed policy_check_csr(): random
 * 128-bit positive serial, subject CN=<device ID>, SAN as requested, EKU
 * serverAuth+clientAuth, basicConstraints CA:FALSE critical, keyUsage
 * digitalSignature (+keyEncipherment for RSA), SKI/AKI, and when the policy
 * names them a CRL Distribution Point (pol->crl_url) and an AIA caIssuers
 * (pol->ca_issuers_url), notBefore now-60s,
 * validity days (1..pol->max_days).  The TBS certificate is linted with
 * certgen_lint() before it is signed.
 */
X509	*certgen_device(struct ks *, EVP_PKEY *cakey, X509 *cacert,
	    const struct policy *, X509_REQ *, const struct csr_request *,
	    int days, char *err, size_t errlen);

/*
 * certgen_device() in two halves, for a signer whose key signs in another
 * thread: certgen_device_tbs() builds and lints the certificate and gives
 * the bytes to sign (*tbs, OPENSSL_free() it; cakey only names the
 * signature algorithm); certgen_device_seal() puts the signature made over
 * them into x and checks it against cacert's key.
 */
X509	*certgen_device_tbs(struct ks *, EVP_PKEY *cakey, X509 *cacert,
	    const struct policy *, X509_REQ *, const struct csr_request *,
	    int days, unsigned char **tbs, size_t *tbslen, char *err,
	    size_t errlen);
int	 certgen_device_seal(X509 *x, X509 *cacert, const unsigned char *sig,
	    size_t siglen, char *err, size_t errlen);

/*
 * Pre-issuance lint: re-check an unsigned device certificate against the
 * invariants whatever built it: not a CA, validity <= max_days, EKU, SANs all
 * within policy, key within policy, serial positive and >= 64 random bits,
 * issuer equals the root's subject; the CRL Distribution Point and AIA
 * caIssuers present, well formed (one non-critical fullName URI each) and
 * equal to the policy's URLs, or both absent when the policy has none.
 */
int	 certgen_lint(const struct policy *, X509 *tbs, X509 *cacert,
	    char *err, size_t errlen);

struct crl_entry {
	const char	*serial_hex;	/* upper-case hex, no 0x */
	time_t		 revoked_at;
	int		 reason;	/* CRL_REASON_* (0 unspecified) */
};

/* A CRL v2 signed by the root with CRL number and AKI, valid for days. */
X509_CRL *certgen_crl(struct ks *, EVP_PKEY *cakey, X509 *cacert,
	    const struct crl_entry *, size_t n, long crl_number, int days,
	    char *err, size_t errlen);

/* Map "keyCompromise", "superseded", ... (RFC 5280 names) to a code; -1 if unknown. */
int	 certgen_reason_parse(const char *name);
const char *certgen_reason_name(int code);

#endif
