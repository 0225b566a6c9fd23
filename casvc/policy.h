/*
 * policy: what iotca will certify (DESIGN.md "Policy"; draft-sweet-iot-acme
 * sections 3.4.3, 3.4.5, 4.2).  Pure functions over OpenSSL objects: no I/O,
 * no key use.  The signer runs them on every request whatever the front end
 * says, and the front end may run the identifier check early (newOrder).
 *
 * Each refusal comes back as a policy_err class (which maps onto the ACME
 * error types) and one human-readable reason line.
 */
#ifndef IOTCA_POLICY_H
#define IOTCA_POLICY_H

#include <stddef.h>
#include <openssl/x509.h>

enum policy_err {
	POLICY_OK = 0,
	POLICY_BAD_CSR,			/* unparsable, bad self-signature, bad CN */
	POLICY_BAD_PUBLIC_KEY,		/* not RSA >= 3072 with e = 65537 nor
					 * ECDSA P-384/P-521; ACME type badCSR */
	POLICY_BAD_SIGNATURE_ALG,	/* not SHA-256 or better */
	POLICY_REJECTED_IDENTIFIER,	/* a name or address policy forbids */
};

/* The ACME error type for a class: "badCSR", "rejectedIdentifier", ...
 * A CSR refused for its key is "badCSR" (RFC 8555 7.4): "badPublicKey" is
 * the JWS key's error and never comes from here. */
const char	*policy_err_type(enum policy_err);

struct policy {
	const char	*server_name;	/* leftmost label devices may not use */
	const char *const *domains;	/* configured local domains, without dots at the ends */
	size_t		 ndomains;
	int		 strict_cn;	/* demand CN == device ID (single label) */
	int		 max_days;	/* 1..90 */
	/* Where relying parties find the CRL and the root (config.h
	 * CONFIG_PUBLISH_*): device certificates carry them as CRL
	 * Distribution Point and AIA caIssuers, and the lint demands exactly
	 * these.  NULL (both): certificates without them (unit tests, fuzz). */
	const char	*crl_url;
	const char	*ca_issuers_url;
};

#define POLICY_MAX_NAMES	32
#define POLICY_MAX_NAME_LEN	253
#define POLICY_MAX_LABEL_LEN	63

/* What a CSR that passed policy asks for, already normalised (lower case). */
struct csr_request {
	char	 device_id[POLICY_MAX_LABEL_LEN + 1];
	size_t	 ndns;
	char	 dns[POLICY_MAX_NAMES][POLICY_MAX_NAME_LEN + 1];
	size_t	 nip;
	unsigned char ip[POLICY_MAX_NAMES][16];
	size_t	 iplen[POLICY_MAX_NAMES];	/* 4 or 16 */
	int	 wants_cmc_ra;	/* its extensionRequest asks for an EKU that
				 * holds id-kp-cmcRA (RFC 6402) */
	int	 grant_cmc_ra;	/* set by the signer, never by policy: the
				 * certificate gets cmcRA (approved delegation) */
};

/*
 * A subtree an account may be delegated (integrations draft, RFC 9444):
 * a valid DNS name, not "local" nor under it (mDNS names have no tree to
 * prove), equal to or under a configured domain.  The lower-cased name
 * goes to canon.
 */
enum policy_err	 policy_check_subtree(const struct policy *, const char *name,
		    char *canon, size_t canonlen, char *reason, size_t reasonlen);

/* 1 if name (lower case) is subtree or under it, whole labels compared. */
int		 policy_name_within(const char *name, const char *subtree);

/*
 * Check one DNS name against draft 4.2: a valid host name ending in ".local"
 * or a configured domain (whole labels compared), with a device label left of
 * that suffix that is neither the server's name nor "localhost".  On success
 * writes the lower-cased name to canon (if not NULL); its leftmost label, up
 * to the first dot, is the device ID.  Exactly one label may stand left of
 * the suffix: "a.b.local" is refused.
 */
enum policy_err	 policy_check_dns(const struct policy *, const char *name,
		    char *canon, size_t canonlen, char *reason, size_t reasonlen);

/*
 * Check a public key: RSA of 3072 to 8192 bits with public exponent 65537,
 * or ECDSA on P-384 or P-521.
 * Shared by the CSR check and the pre-issuance lint so the rule lives once.
 */
enum policy_err	 policy_check_key(const EVP_PKEY *,
		    char *reason, size_t reasonlen);

/*
 * The key reuse rule's fingerprint of a public key: SHA-256 of its DER
 * SubjectPublicKeyInfo, as 64 lower-case hex digits in out (outlen > 64).
 * The same for a key, a CSR and a certificate carrying it.  -1 if the key
 * cannot be encoded or out is too small.
 */
#define POLICY_SPKI_HEX_LEN	64
int		 policy_spki_sha256(const EVP_PKEY *, char *out, size_t outlen);

/* Check one IP address (4 or 16 bytes): loopback, link-local or private-use only. */
enum policy_err	 policy_check_ip(const unsigned char *addr, size_t len,
		    char *reason, size_t reasonlen);

/* Check one textual IP address, as in an ACME "ip" identifier. */
enum policy_err	 policy_check_ip_text(const char *text,
		    char *reason, size_t reasonlen);

/*
 * Check a whole CSR: its self-signature, signature hash, key, subject and
 * every subjectAltName; derive the device ID (the CN when it is a single
 * label, else the leftmost label of the first DNS name; in strict mode the CN
 * must be the single-label device ID).  All DNS names must share the device ID
 * as leftmost label.
 */
enum policy_err	 policy_check_csr(const struct policy *, X509_REQ *,
		    struct csr_request *out, char *reason, size_t reasonlen);

/* Parse a CSR given as PEM or DER bytes; NULL with reason on garbage. */
X509_REQ	*policy_parse_csr(const unsigned char *buf, size_t len,
		    char *reason, size_t reasonlen);

#endif
