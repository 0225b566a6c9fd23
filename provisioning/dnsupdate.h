/*
 * dnsupdate: RFC 2136 dynamic updates signed with TSIG (RFC 8945), built,
 * signed and checked by ldns.  Used to publish the ACME server's DNS-SD
 * records and, for dns-01, to add and delete TXT records.
 *
 * An update is a list of changes to one zone, applied by the server all or
 * nothing: delete an RRset, delete one record, add a record.  It is sent
 * over TCP; the answer must carry a valid TSIG made with the same key, and
 * its rcode is turned into one line that says what to fix (REFUSED: the
 * key may not change the zone; NOTAUTH with BADKEY/BADSIG/BADTIME: the key
 * is unknown, its secret wrong, or the clocks differ; NOTZONE: a name is
 * outside the zone).
 *
 * The key's secret is kept in memory only as long as the key struct and is
 * wiped by dnsupdate_key_clear; it never appears in an error.
 */
#ifndef IOTCA_DNSUPDATE_H
#define IOTCA_DNSUPDATE_H

#include <stddef.h>
#include <stdint.h>

struct dnsupdate_key {
	char	name[256];	/* "iotca-update." (a domain name) */
	char	algorithm[32];	/* "hmac-sha256." (ldns spelling) */
	char	secret[256];	/* base64 */
};

/*
 * Read a TSIG key file: BIND's format (as tsig-keygen writes it)
 *
 *	key "NAME" { algorithm hmac-sha256; secret "BASE64"; };
 *
 * or one line "NAME ALGORITHM SECRET".  Algorithms hmac-sha256, -sha384,
 * -sha512.  The file must be a regular file only its owner can read or
 * write (0600 or stricter).  0, or -1 with a reason in err.
 */
int	dnsupdate_key_load(const char *path, struct dnsupdate_key *,
	    char *err, size_t errlen);
/* The same from text (the file's contents). */
int	dnsupdate_key_parse(const char *text, struct dnsupdate_key *,
	    char *err, size_t errlen);
void	dnsupdate_key_clear(struct dnsupdate_key *);

struct dnsupdate;

/* A new, empty update of zone ("home.arpa"); NULL if zone is not a name. */
struct dnsupdate *dnsupdate_new(const char *zone, char *err, size_t errlen);
void	dnsupdate_free(struct dnsupdate *);

/* Add a record given as a zone-file line with absolute names and a TTL:
 * "_acme-server._tcp.home.arpa. 300 IN SRV 0 0 443 ca.home.arpa." */
int	dnsupdate_add(struct dnsupdate *, const char *rr, char *err, size_t errlen);
/* Delete every record of type ("SRV", "TXT", ...) at name. */
int	dnsupdate_delete_rrset(struct dnsupdate *, const char *name,
	    const char *type, char *err, size_t errlen);
/* Delete one record (same form as dnsupdate_add; the TTL is ignored). */
int	dnsupdate_delete_rr(struct dnsupdate *, const char *rr, char *err,
	    size_t errlen);

/*
 * Send it to server ("ADDR", "ADDR:PORT" or "[V6ADDR]:PORT"; port 53 by
 * default), signed with key (NULL: unsigned, for servers that allow updates
 * by address), and wait at most timeout_ms (default 5000).  0 when the
 * server applied it; -1 with one line in err otherwise.
 */
int	dnsupdate_send(struct dnsupdate *, const char *server,
	    const struct dnsupdate_key *key, int timeout_ms, char *err,
	    size_t errlen);

/* "ADDR[:PORT]" as above into a socket address; 0 or -1. */
int	dnsupdate_parse_server(const char *text, uint16_t default_port,
	    void *sockaddr_storage, unsigned int *len);

#endif
