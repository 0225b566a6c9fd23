/*
 * discovery: how a device finds the local ACME server (draft-sweet-iot-acme
 * 3.3), in the draft's order: the DHCP V-I Vendor-Specific Information
 * option (DHCPv4 125, RFC 3925), then DNS-SD over unicast DNS (RFC 6763).
 * Never multicast DNS: the draft forbids it, and nothing here sends to a
 * multicast address or to port 5353.
 *
 * The option's bytes (the draft leaves them open; the appliance's
 * "iotca discovery" prints the same):
 *
 *	125  len  enterprise(4, big-endian)  data-len(1)  code(1) len(1) text...
 *
 * repeated per enterprise; inside one enterprise's data, sub-option
 * DISC_DEFAULT_SUBOPT carries the server's fully-qualified host name as
 * ASCII text (no NUL, no trailing dot).
 *
 * DNS-SD: the SRV and TXT records sit at _acme-server._tcp.<domain> itself
 * (the draft's wording), and for DNS-SD browsers a PTR there names an
 * instance <label>._acme-server._tcp.<domain> with the same SRV and TXT.  A
 * lookup asks for the SRV at the service name first and follows the PTR
 * only when there is none.  The TXT key "path" (draft-tweedale-acme-
 * discovery) gives the directory's path; default "/directory".
 *
 * Every server the lookup returns has only private-use, link-local,
 * loopback or unique-local addresses: a public address is refused (the
 * draft's servers are local), as is an SRV target of "." (RFC 2782: no
 * service).  Names under .local are never looked up, not even through the
 * unicast resolver, which may hand them to mDNS (systemd-resolved).  Errors come back as one line in err; nothing is printed.
 */
#ifndef IOTCA_DISCOVERY_H
#define IOTCA_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DISC_DEFAULT_ENTERPRISE	55357u	/* the draft's prototype number */
#define DISC_DEFAULT_SUBOPT	1
#define DISC_SERVICE		"_acme-server._tcp"
#define DISC_DEFAULT_PATH	"/directory"
#define DISC_NAME_MAX		253	/* text form, no trailing dot */
#define DISC_PATH_MAX		255
#define DISC_MAX_ADDRS		8

/*
 * Find the server's name for (enterprise, subopt) in the payload of a
 * DHCPv4 option 125 (the bytes after code and length; several 125 options
 * of one message concatenated, RFC 3396).  1 and the name in name[], 0 if
 * the payload is well formed but has no such enterprise or sub-option, -1
 * with a reason in err if it is malformed or the name is not a host name.
 */
int	disc_parse_vivso(const uint8_t *payload, size_t len, uint32_t enterprise,
	    uint8_t subopt, char name[DISC_NAME_MAX + 1], char *err, size_t errlen);

/* 1 if s (len bytes, no NUL) is a host name: LDH labels of 1..63 bytes,
 * not starting or ending with "-", at most DISC_NAME_MAX bytes, at least
 * one dot unless single_label_ok; one trailing dot is not allowed. */
int	disc_valid_hostname(const char *s, size_t len, int single_label_ok);

/* 1 if the address is loopback, private-use (RFC 1918), link-local,
 * shared (RFC 6598) or, for IPv6, loopback, link-local or unique-local
 * (fc00::/7); IPv4-mapped IPv6 addresses are judged as IPv4. */
int	disc_addr_is_local(const struct sockaddr *);

struct disc_server {
	char		 name[DISC_NAME_MAX + 1];	/* host, no trailing dot */
	uint16_t	 port;
	char		 path[DISC_PATH_MAX + 1];	/* directory path, "/..." */
	size_t		 naddrs;
	struct sockaddr_storage addrs[DISC_MAX_ADDRS];
	const char	*source;	/* "dhcp" or "dns-sd" */
};

/*
 * The unicast resolver to ask: server NULL reads the system's
 * (/etc/resolv.conf), else "ADDR" or "ADDR:PORT" / "[V6ADDR]:PORT".
 * timeout_ms bounds each query (default 2000 when 0).
 */
struct disc_resolver {
	const char	*server;
	int		 timeout_ms;
};

/*
 * DNS-SD for domain: the SRV (chosen by RFC 2782 priority and weight among
 * those whose addresses are all local), TXT path= and the target's
 * addresses.  1 and *out filled, 0 if the domain announces no server, -1
 * with a reason in err (a refusal: public address, "." target, bad TXT;
 * or the resolver failing).
 */
int	disc_dnssd(const struct disc_resolver *, const char *domain,
	    struct disc_server *out, char *err, size_t errlen);

/*
 * The name a DHCP option gave: resolve it (A and AAAA) through the
 * resolver and check its addresses; port 443 and the default path.
 * 1, or -1 with a reason (unresolvable, a public address).
 */
int	disc_resolve_name(const struct disc_resolver *, const char *name,
	    struct disc_server *out, char *err, size_t errlen);

/*
 * The DNS-SD step on a DNS answer already in hand, for tests and fuzzing:
 * wire is a response to an SRV query of qname; its answer and additional
 * sections are used as the lookup would use them (no further queries:
 * addresses only from the additional section).  Same results as
 * disc_dnssd.
 */
int	disc_dnssd_from_wire(const uint8_t *wire, size_t len, const char *qname,
	    struct disc_server *out, char *err, size_t errlen);

#endif
