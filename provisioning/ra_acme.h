/*
 * ra_acme: the ACME side of a registration authority (EST RA) that enrols
 * devices under one DNS subtree it controls (draft-ietf-acme-integrations).
 *
 * It pre-authorizes the subtree once with newAuthz and "subdomainAuthAllowed"
 * (RFC 8555 7.4.1, RFC 9444), proving control by dns-01 (RFC 8555 8.4): the
 * TXT record goes to a DNS server by an RFC 2136 update signed with TSIG
 * (dnsupdate.h) at _acme-challenge.<subtree> and is deleted again afterwards,
 * also when validation fails.  Orders are then driven one idempotent step
 * at a time by URL, so that a caller that stores the URL before finalize can
 * restart and resume without a second certificate.  Where the server has no
 * newAuthz (Pebble), each pending authorization of an order is answered by
 * dns-01 the same way.
 *
 * Threads: a struct ra_acme belongs to one thread; several may share one
 * account key file (it is created once, atomically).  Call
 * curl_global_init(CURL_GLOBAL_DEFAULT) in main first.  Nothing is printed:
 * errors come back in struct acme_error, one line in detail.
 */
#ifndef IOTCA_RA_ACME_H
#define IOTCA_RA_ACME_H

#include <stddef.h>
#include <time.h>

#include "acmeclient.h"

struct ra_acme_config {
	const char	*directory_url;		/* ACME directory */
	const char	*ca_file;		/* PEM anchors for the ACME server's TLS */
	const char	*account_key_file;	/* PEM; created (P-256, 0600) if absent */
	const char	*subtree;		/* "est.home.arpa" */
	const char	*dns_server;		/* "ADDR[:PORT]" for RFC 2136 updates */
	const char	*dns_zone;		/* "home.arpa": the zone the TXT goes in */
	const char	*tsig_key_file;		/* dnsupdate_key_load format */
	long		 request_timeout_ms;	/* 0: default */
	long		 dns_wait_ms;		/* pause after publishing TXT; 0: none */
};

struct ra_acme;

struct ra_acme	*ra_acme_new(const struct ra_acme_config *, struct acme_error *);
void		 ra_acme_free(struct ra_acme *);

/*
 * newAuthz {dns, subtree, subdomainAuthAllowed:true}, dns-01 published at
 * _acme-challenge.<subtree> by RFC 2136+TSIG, answered, polled to valid,
 * TXT removed (also on failure).  1: pre-authorized (until *expires, 0 if
 * the server gave no expiry); 0: server has no newAuthz or does not offer
 * subdomain authorizations (meta.subdomainAuthAllowed): per-order dns-01
 * will be used; -1: failed, err says why in one line (e.g. the DNS
 * server's REFUSED).  timeout_ms 0: 60 s.
 */
int		 ra_acme_preauthorize(struct ra_acme *, long timeout_ms,
		    time_t *expires, struct acme_error *);

/*
 * newOrder for names (DNS names, each equal to or under the subtree);
 * *url_out gets the order URL (the caller stores it BEFORE any finalize, so
 * a crash never orphans a certificate).  0 or -1.
 */
int		 ra_acme_order_open(struct ra_acme *, const char *const *names,
		    size_t n, char *url_out, size_t url_len, struct acme_error *);

/*
 * One idempotent step of an order by URL: pending authzs -> dns-01 each
 * (per-order fallback); ready -> finalize with csr_der; processing ->
 * RA_STEP_WAIT with *retry_after (s, at least 1); valid -> RA_STEP_DONE,
 * *pem_chain malloc'd (leaf first; free()); invalid, an order the server
 * no longer knows, or a refused finalize (badCSR, rejectedIdentifier...)
 * -> RA_STEP_FAILED with err->type/detail from the problem.  -1: transient
 * failure (network, DNS server, 5xx, rateLimited...), retry later.
 * timeout_ms bounds the step (dns-01 validation included); 0: 60 s.
 */
enum { RA_STEP_WAIT = 1, RA_STEP_DONE = 2, RA_STEP_FAILED = 3 };
int		 ra_acme_order_step(struct ra_acme *, const char *order_url,
		    const unsigned char *csr_der, size_t csr_len, long timeout_ms,
		    long *retry_after, char **pem_chain, struct acme_error *);

#endif
