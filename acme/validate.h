/*
 * validate: the ACME server's challenge validation (RFC 8555 section 8,
 * RFC 8737 tls-alpn-01, RFC 8738 IP identifiers), for a local network.
 *
 * Names are resolved by the test hosts file first (when configured), then by
 * the system resolver (getaddrinfo: mDNS for .local where nss-mdns is
 * present).  dns-01 asks the configured DNS server (or the system's) for the
 * TXT record at _acme-challenge.<name>.  Connections go only to loopback,
 * link-local and private-use addresses: any other address from DNS, the hosts
 * file or a redirect fails the validation.  Every step has a timeout; a
 * validation never takes longer than VALIDATE_MAX_SECONDS.  Validation
 * blocks; run it off the request path.
 */
#ifndef IOTCA_VALIDATE_H
#define IOTCA_VALIDATE_H

#include <stddef.h>

#define VALIDATE_MAX_SECONDS	30

enum validate_type { VALIDATE_HTTP01, VALIDATE_TLSALPN01, VALIDATE_DNS01 };
enum ident_type { IDENT_DNS, IDENT_IP };

struct validate_config {
	int		 http01_port;	/* 80 in production */
	int		 tlsalpn01_port;	/* 443 in production */
	const char	*hosts_file;	/* optional "ADDR NAME..." lines, consulted first */
	const char	*dns_server;	/* optional "ADDR" or "ADDR:PORT" for dns-01 */
	int		 timeout_ms;	/* per connection step; default 5000 */
};

struct validate_result {
	int	 ok;
	char	 problem[32];	/* RFC 8555 error type: "connection", "dns",
				   "incorrectResponse", "unauthorized", "tls" */
	char	 detail[256];
};

/*
 * Validate one challenge: ident is the identifier value (a DNS name, or an
 * IP address in text form), token the challenge token, key_authz the
 * expected key authorization "token.thumbprint".
 */
void	validate_challenge(const struct validate_config *, enum validate_type,
	    enum ident_type, const char *ident, const char *token,
	    const char *key_authz, struct validate_result *out);

#endif
