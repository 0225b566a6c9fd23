/*
 * certid: RFC 9773 (ACME Renewal Information) certificate identifiers:
 * base64url(AuthorityKeyIdentifier keyIdentifier) "." base64url(serial
 * number DER content octets), and small certificate readers shared by
 * issuance, revocation and renewalInfo.
 */
#ifndef IOTCA_CERTID_H
#define IOTCA_CERTID_H

#include <stddef.h>
#include <time.h>
#include <openssl/x509.h>

#define CERTID_LEN	192

/* -1 if the certificate has no AKI keyIdentifier. */
int	 certid_of(const X509 *, char out[CERTID_LEN]);
/* First certificate of a PEM text, or NULL. */
X509	*cert_from_pem(const char *pem);
int	 cert_validity(const X509 *, time_t *not_before, time_t *not_after);
/*
 * The identifier and validity of the first certificate of a PEM text, read
 * with GnuTLS: the same values as certid_of and cert_validity of
 * cert_from_pem's X509, without OpenSSL 3.0's decoding of the certificate's
 * public key (a decoder context per certificate, 10 % of acmed's CPU per
 * issuance).  For certificates the signer just made; -1 if unreadable or
 * without an AKI keyIdentifier.
 */
int	 cert_facts_pem(const char *pem, char id[CERTID_LEN],
	    time_t *not_before, time_t *not_after);

#endif
