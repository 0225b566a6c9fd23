/*
 * acmeclient: the client side of ACME (RFC 8555) that iotca's device agent,
 * EST registration authority and benchmarks share.  It speaks to one server
 * (its directory URL) with one account key over one libcurl handle:
 * directory, nonces (a badNonce is retried with the nonce that came with it),
 * account by "jwk" then "kid", orders, http-01 through acme_http01 (see
 * http01.h), finalize with a CSR, polling that honours Retry-After within a
 * caller's time limit, certificate download, revocation and ARI (RFC 9773);
 * for a registration authority also pre-authorization (newAuthz with RFC
 * 9444 subdomain authorizations), dns-01 TXT values, and orders resumed by
 * URL and finalized with the caller's CSR, one step at a time.
 *
 * Threads: a struct acme_client belongs to one thread at a time; separate
 * clients may run in separate threads at once (nothing here is global).
 * Call curl_global_init(CURL_GLOBAL_DEFAULT) once in main before any client.
 *
 * Every function that can fail returns -1 (or NULL) and fills the caller's
 * struct acme_error; nothing is printed.
 */
#ifndef IOTCA_ACMECLIENT_H
#define IOTCA_ACMECLIENT_H

#include <stddef.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

struct acme_http01;

struct acme_error {
	/* HTTP status of the response that failed, 0 if there was none. */
	long	 status;
	/*
	 * The RFC 8555 problem type without "urn:ietf:params:acme:error:"
	 * ("badNonce", "rateLimited", ...; other URIs are kept whole), or ""
	 * when the failure is our own (network, TLS, time limit, bad reply).
	 */
	char	 type[96];
	char	 detail[512];
};

struct acme_client_config {
	const char	*directory_url;	/* https://host:port/directory */
	const char	*ca_file;	/* PEM trust anchors for the server; NULL: system's */
	EVP_PKEY	*account_key;	/* NULL: a new P-256 key; else borrowed (ref taken) */
	const char	*contact;	/* "mailto:..." or NULL */
	long		 request_timeout_ms;	/* per HTTP request; 0: 30000 */
	int		 nonce_retries;	/* badNonce retries per request; 0: 10 */
	long		 poll_min_ms;	/* first poll when no Retry-After; 0: 250 */
	long		 poll_max_ms;	/* longest wait between polls; 0: 10000 */
	/* "HOST:PORT:ADDR" (libcurl's CURLOPT_RESOLVE): reach the server's
	 * name at an address found by discovery, not by the system's
	 * resolver; NULL: none. */
	const char	*resolve;
};

/* Counters, for tests and benchmarks. */
struct acme_client_stats {
	unsigned long	 requests;	/* HTTP requests sent */
	unsigned long	 bad_nonces;	/* badNonce answers retried */
	unsigned long	 polls;		/* waits while polling */
};

struct acme_renewal_info {
	time_t	 start, end;		/* suggestedWindow */
	long	 retry_after;		/* seconds, from Retry-After; 0 if none */
	char	 explanation_url[256];	/* "" if none */
};

struct acme_client *acme_client_new(const struct acme_client_config *,
		    struct acme_error *);
void		 acme_client_free(struct acme_client *);
const struct acme_client_stats *acme_client_stats(const struct acme_client *);

/* Fetch the directory (done by every call below that needs it). */
int		 acme_directory(struct acme_client *, struct acme_error *);
/* Does the directory offer renewalInfo (ARI)? Fetches it if needed. */
int		 acme_has_renewal_info(struct acme_client *);

/* Register (or find) the account for the key; afterwards requests use kid. */
int		 acme_account_ensure(struct acme_client *, struct acme_error *);
const char	*acme_account_url(const struct acme_client *);
/* RFC 7638 thumbprint of the account key (for key authorizations). */
const char	*acme_account_thumbprint(const struct acme_client *);

/*
 * Orders.  names are DNS names or IP addresses (RFC 8738).  Each call that
 * waits takes timeout_ms: how long it may wait in all, Retry-After
 * included; a server that asks for more ends the call with an error.
 */
struct acme_order *acme_order_new(struct acme_client *,
		    const char *const *names, size_t nnames, struct acme_error *);
void		 acme_order_free(struct acme_order *);
const char	*acme_order_url(const struct acme_order *);
const char	*acme_order_status(const struct acme_order *);

/* Answer every pending authorization's http-01 challenge through the
 * responder and wait until all are valid. */
int		 acme_order_authorize_http01(struct acme_client *,
		    struct acme_order *, struct acme_http01 *, long timeout_ms,
		    struct acme_error *);

/* Send a CSR for the order's names signed by key (NULL: a new P-384 key,
 * then acme_order_key()) and wait while the order is "processing". */
int		 acme_order_finalize(struct acme_client *, struct acme_order *,
		    EVP_PKEY *key, long timeout_ms, struct acme_error *);
EVP_PKEY	*acme_order_key(const struct acme_order *);	/* borrowed */
/* The order's "expires" (RFC 3339, UTC) as a time; 0 if it has none. */
time_t		 acme_order_expires(const struct acme_order *);

/* Download the issued chain (application/pem-certificate-chain) into a
 * malloc'd NUL-terminated string. */
int		 acme_order_certificate(struct acme_client *,
		    struct acme_order *, char **pem, struct acme_error *);

/*
 * Orders driven one step at a time by a caller that keeps only the order's
 * URL (a registration authority that may restart between steps).
 */
/* POST-as-GET an existing order of this account by its URL. */
struct acme_order *acme_order_load(struct acme_client *, const char *url,
		    struct acme_error *);
/* POST-as-GET the order again (status, authorizations, certificate). */
int		 acme_order_refresh(struct acme_client *, struct acme_order *,
		    struct acme_error *);
size_t		 acme_order_authz_count(const struct acme_order *);
const char	*acme_order_authz_url(const struct acme_order *, size_t i);
/* Retry-After (seconds) of the latest response about the order; -1 if none. */
long		 acme_order_retry_after(const struct acme_order *);
/* Send csr (DER, made by the caller) to the order's finalize URL once,
 * without waiting; the order then holds the server's answer (usually
 * "processing" or "valid").  An error answer fills err (its problem). */
int		 acme_order_finalize_csr(struct acme_client *,
		    struct acme_order *, const unsigned char *csr_der,
		    size_t csr_len, struct acme_error *);
/* The problem of an "invalid" order (its "error" member) into err. */
void		 acme_order_problem(const struct acme_order *,
		    struct acme_error *);

/*
 * Authorizations by themselves: pre-authorization (RFC 8555 7.4.1) with
 * subdomain authorizations (RFC 9444), and dns-01 (RFC 8555 8.4), whose
 * TXT record the caller publishes.
 */
struct acme_authz;

/* Does the directory offer newAuthz?  And meta.subdomainAuthAllowed too? */
int		 acme_has_new_authz(struct acme_client *);
int		 acme_has_subdomain_auth(struct acme_client *);
/* newAuthz for a DNS name; subdomains asks "subdomainAuthAllowed": true,
 * and then an authorization that does not echo it is an error. */
struct acme_authz *acme_authz_new(struct acme_client *, const char *name,
		    int subdomains, struct acme_error *);
/* POST-as-GET an authorization by URL (one listed by an order). */
struct acme_authz *acme_authz_load(struct acme_client *, const char *url,
		    struct acme_error *);
void		 acme_authz_free(struct acme_authz *);
const char	*acme_authz_url(const struct acme_authz *);
const char	*acme_authz_status(const struct acme_authz *);
const char	*acme_authz_name(const struct acme_authz *);	/* identifier */
int		 acme_authz_subdomains(const struct acme_authz *);
int		 acme_authz_wildcard(const struct acme_authz *);
time_t		 acme_authz_expires(const struct acme_authz *);	/* 0: none */
/* The authorization's dns-01 challenge: the TXT value to publish at
 * _acme-challenge.NAME, base64url(SHA-256(token "." thumbprint)).  -1 if
 * it offers no dns-01 challenge. */
int		 acme_authz_dns01_txt(struct acme_client *,
		    const struct acme_authz *, char *txt, size_t txtlen,
		    struct acme_error *);
/* Ask the server to validate the challenge of type ("dns-01"). */
int		 acme_authz_respond(struct acme_client *, struct acme_authz *,
		    const char *type, struct acme_error *);
/* Poll while "pending", within timeout_ms: 0 once valid, else -1 with
 * the failed challenge's problem in err. */
int		 acme_authz_wait(struct acme_client *, struct acme_authz *,
		    long timeout_ms, struct acme_error *);
/* The dns-01 TXT value for a token: base64url(SHA-256(key authorization)).
 * txtlen >= 44. */
int		 acme_dns01_txt(const struct acme_client *, const char *token,
		    char *txt, size_t txtlen);

/* Revoke the first certificate of pem, signed by the account key; reason
 * is an RFC 5280 CRLReason code, or -1 to send none. */
int		 acme_revoke(struct acme_client *, const char *pem, int reason,
		    struct acme_error *);

/* RFC 9773 certificate identifier: base64url(AKI keyIdentifier) "."
 * base64url(serial DER content).  malloc'd; NULL if the cert has no AKI. */
char		*acme_cert_id(X509 *);

/* GET the server's renewal window for the first certificate of pem.
 * Fails cleanly (err->detail says so) when acme_has_renewal_info is 0. */
int		 acme_renewal_info(struct acme_client *, const char *pem,
		    struct acme_renewal_info *, struct acme_error *);

#endif
