/*
 * est_msg: the bodies of EST (RFC 7030, RFC 8951) that iotca-est-ra reads
 * and writes.  Pure functions over OpenSSL objects: no I/O, no locks, no
 * global state, so that a fuzzer can drive them (tests/fuzz/fuzz_est.c).
 *
 * Every refusal comes back as the HTTP status the RA answers with and one
 * human-readable line for the text/plain body.
 */
#ifndef IOTCA_EST_MSG_H
#define IOTCA_EST_MSG_H

#include <stddef.h>
#include <openssl/x509.h>

#define EST_MAX_NAMES		32	/* names in one CSR */
#define EST_MAX_NAME_LEN	253	/* one DNS name */
#define EST_HASH_HEX_LEN	64	/* SHA-256 of the CSR DER, in hex */

/* A CSR as read from a simpleenroll or simplereenroll body. */
struct est_csr {
	X509_REQ	*req;
	unsigned char	*der;		/* exactly the bytes of the CSR */
	size_t		 derlen;
	char		 hash[EST_HASH_HEX_LEN + 1];	/* cache key */
	size_t		 nnames;
	char		 names[EST_MAX_NAMES][EST_MAX_NAME_LEN + 1];	/* lower case */
};

void	est_csr_clear(struct est_csr *);

/*
 * Whether a Content-Type header names the media type want ("application/
 * pkcs10"): compared without case, parameters (";...") tolerated.
 */
int	est_media_type_is(const char *content_type, const char *want);

/*
 * Base64 (RFC 4648 alphabet, padding required) with any amount of white
 * space (line breaks of RFC 2045 included) anywhere.  0 and a malloc'd
 * *out, or -1 with reason.
 */
int	est_b64_decode(const char *in, size_t len, unsigned char **out,
	    size_t *outlen, char *reason, size_t reasonlen);
/* Base64 in lines of 64 characters, each ending "\n"; malloc'd, NUL-ended. */
char	*est_b64_encode(const unsigned char *in, size_t len, size_t *outlen);

/*
 * Read the body of an enrolment: Content-Type application/pkcs10, base64
 * of one DER PKCS#10 request and nothing after it.  Fills der, hash and req
 * (names are filled by est_csr_check).  0, or the HTTP status (400, 415)
 * with reason.
 */
int	est_csr_decode(const char *body, size_t len, const char *content_type,
	    struct est_csr *, char *reason, size_t reasonlen);

/*
 * What the RA checks before any ACME traffic: the self-signature, a hash of
 * SHA-256 or better, the key (EC P-384/P-521 or RSA >= 3072 with e=65537),
 * and the names: the DNS subjectAltNames (or the CN when there are none),
 * each a valid host name, none under .local, each equal to or under subtree
 * (whole labels); no other kind of subjectAltName; an extendedKeyUsage, if
 * asked for, of serverAuth and clientAuth only (never id-kp-cmcRA: a device
 * must not become a registrar).  Fills names.  0, or 400 with reason.
 */
int	est_csr_check(struct est_csr *, const char *subtree, char *reason,
	    size_t reasonlen);

/* A host name: labels of letters, digits and '-', at most 253 bytes, no
 * trailing dot.  1 or 0. */
int	est_valid_dns_name(const char *name);

/*
 * simplereenroll (RFC 7030 4.2.2): the CSR's subject and subjectAltName set
 * must be those of the certificate being renewed.  0, or 400 with reason.
 */
int	est_csr_matches_cert(X509_REQ *, X509 *, char *reason, size_t reasonlen);

/*
 * A certs-only CMS (PKCS#7 SignedData without signers, RFC 7030 4.1.3) of
 * certs, base64 as est_b64_encode.  NULL with reason.
 */
char	*est_certs_only(STACK_OF(X509) *certs, size_t *outlen, char *reason,
	    size_t reasonlen);

/* Every certificate of a PEM text, in order; NULL with reason if none or
 * one is unreadable. */
STACK_OF(X509) *est_pem_certs(const char *pem, size_t len, char *reason,
	    size_t reasonlen);

/*
 * The CsrAttrs DER (RFC 7030 4.5.2, RFC 9908): ecdsa-with-SHA384,
 * ecPublicKey with secp384r1, and an extensionRequest whose subjectAltName
 * holds the subtree as the dNSName hint.  malloc'd; NULL with reason.
 */
unsigned char *est_csrattrs_der(const char *subtree, size_t *outlen,
	    char *reason, size_t reasonlen);

#endif
