/*
 * discovery: the DHCP option's parser and the DNS-SD lookup (discovery.h).
 * DNS messages are parsed and built by ldns; only the V-I option, which no
 * Debian library parses, is read by hand here.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldns/ldns.h>

#include "discovery.h"

#define MAX_SRV		16	/* candidates considered per lookup */
#define MAX_INSTANCES	4	/* PTR targets followed */

int
disc_valid_hostname(const char *s, size_t len, int single_label_ok)
{
	size_t i, label = 0, dots = 0;

	if (len == 0 || len > DISC_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			dots++;
			continue;
		}
		if (!(isascii(ch) && (isalnum(ch) || ch == '-')))
			return 0;
		if (label == 0 && ch == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	if (label == 0 || s[len - 1] == '-')	/* empty or trailing dot */
		return 0;
	return single_label_ok || dots > 0;
}

static void
lowercase(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/*
 * A name under .local (RFC 6762) may be answered by multicast DNS even when
 * asked of a unicast resolver (systemd-resolved, nss-mdns behind it): such
 * names are never looked up here.
 */
static int
is_mdns_name(const char *name, size_t len)
{
	if (len > 0 && name[len - 1] == '.')
		len--;
	return (len == 5 && strncasecmp(name, "local", 5) == 0) ||
	    (len > 5 && strncasecmp(name + len - 6, ".local", 6) == 0);
}

/* The name in one sub-option's data: text, no NUL, a host name. */
static int
take_name(const uint8_t *data, size_t len, char name[DISC_NAME_MAX + 1],
    char *err, size_t errlen)
{
	if (len == 0) {
		snprintf(err, errlen, "DHCP option 125: the server name is empty");
		return -1;
	}
	if (memchr(data, '\0', len) != NULL) {
		snprintf(err, errlen, "DHCP option 125: the server name has a NUL byte");
		return -1;
	}
	if (len > DISC_NAME_MAX) {
		snprintf(err, errlen, "DHCP option 125: the server name is %zu "
		    "bytes, more than %d", len, DISC_NAME_MAX);
		return -1;
	}
	if (!disc_valid_hostname((const char *)data, len, 0)) {
		snprintf(err, errlen, "DHCP option 125: \"%.*s\" is not a "
		    "fully-qualified host name", (int)len, (const char *)data);
		/* Do not echo control characters into a log. */
		for (char *p = err; *p != '\0'; p++)
			if (!isprint((unsigned char)*p))
				*p = '?';
		return -1;
	}
	memcpy(name, data, len);
	name[len] = '\0';
	lowercase(name);
	return 1;
}

int
disc_parse_vivso(const uint8_t *p, size_t len, uint32_t enterprise,
    uint8_t subopt, char name[DISC_NAME_MAX + 1], char *err, size_t errlen)
{
	size_t off = 0;
	int found = 0, seen_enterprise = 0;

	name[0] = '\0';
	if (len == 0) {
		snprintf(err, errlen, "DHCP option 125 is empty");
		return -1;
	}
	while (off < len) {
		uint32_t ent;
		size_t dlen, d, end;

		if (len - off < 5) {
			snprintf(err, errlen, "DHCP option 125: %zu stray bytes "
			    "after the last enterprise", len - off);
			return -1;
		}
		ent = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 |
		    (uint32_t)p[off + 2] << 8 | p[off + 3];
		dlen = p[off + 4];
		d = off + 5;
		if (dlen > len - d) {
			snprintf(err, errlen, "DHCP option 125: enterprise %u's "
			    "data length %zu runs past the end", ent, dlen);
			return -1;
		}
		end = d + dlen;
		if (ent == enterprise) {
			seen_enterprise = 1;
			while (d < end) {
				uint8_t code;
				size_t slen;

				if (end - d < 2) {
					snprintf(err, errlen, "DHCP option 125: a "
					    "truncated sub-option in enterprise %u", ent);
					return -1;
				}
				code = p[d];
				slen = p[d + 1];
				if (slen > end - d - 2) {
					snprintf(err, errlen, "DHCP option 125: sub-option "
					    "%u's length %zu runs past its enterprise's "
					    "data", code, slen);
					return -1;
				}
				if (code == subopt) {
					if (found) {
						snprintf(err, errlen, "DHCP option 125: "
						    "sub-option %u given twice", code);
						return -1;
					}
					if (take_name(p + d + 2, slen, name, err,
					    errlen) == -1)
						return -1;
					found = 1;
				}
				d += 2 + slen;
			}
		}
		off = end;
	}
	if (!found)
		snprintf(err, errlen, seen_enterprise ?
		    "DHCP option 125: enterprise %u has no sub-option %u" :
		    "DHCP option 125: no enterprise %u (sub-option %u)",
		    enterprise, subopt);
	return found;
}

int
disc_addr_is_local(const struct sockaddr *sa)
{
	const uint8_t *a;

	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		a = in6->s6_addr;
		if (IN6_IS_ADDR_LOOPBACK(in6) || IN6_IS_ADDR_LINKLOCAL(in6))
			return 1;
		if ((a[0] & 0xfe) == 0xfc)	/* fc00::/7 */
			return 1;
		if (!IN6_IS_ADDR_V4MAPPED(in6))
			return 0;
		a += 12;
	} else if (sa->sa_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else
		return 0;
	return a[0] == 127 || a[0] == 10 ||
	    (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	    (a[0] == 192 && a[1] == 168) ||
	    (a[0] == 169 && a[1] == 254) ||
	    (a[0] == 100 && (a[1] & 0xc0) == 64);
}

/* ------------------------------------------------------------------ */
/* DNS-SD */

struct lookup {
	ldns_resolver	*res;	/* NULL: only what the packets in hand say */
	ldns_pkt	*pkt;	/* the SRV answer (owned) */
	char		*err;
	size_t		 errlen;
};

struct srv {
	uint16_t	 prio, weight, port;
	ldns_rdf	*target;	/* points into the packet */
	ldns_rdf	*owner;
	int		 used;
};

static void
addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

/* ldns rdf (a dname) as a host name without the trailing dot; -1 if it is
 * not one (escapes, root). */
static int
dname_text(const ldns_rdf *d, char *out, size_t outlen, int single_label_ok)
{
	char *s = ldns_rdf2str(d);
	size_t n;
	int rc = -1;

	if (s == NULL)
		return -1;
	n = strlen(s);
	if (n > 0 && s[n - 1] == '.')
		s[--n] = '\0';
	if (n < outlen && disc_valid_hostname(s, n, single_label_ok)) {
		memcpy(out, s, n + 1);
		lowercase(out);
		rc = 0;
	}
	free(s);
	return rc;
}

/*
 * Send one query; NULL and err unless NOERROR, NXDOMAIN or REFUSED.  A
 * resolver with no upstream (dnsmasq serving local records) refuses names
 * it has nothing for: that is "no such record" here, not a failure.
 */
static ldns_pkt *
query(struct lookup *lk, const ldns_rdf *name, ldns_rr_type type)
{
	ldns_pkt *p = NULL;
	ldns_status st;
	char *qn;

	st = ldns_resolver_send(&p, lk->res, name, type, LDNS_RR_CLASS_IN, LDNS_RD);
	if (st != LDNS_STATUS_OK || p == NULL) {
		qn = ldns_rdf2str(name);
		snprintf(lk->err, lk->errlen, "DNS query %s %s: %s",
		    qn ? qn : "?", type == LDNS_RR_TYPE_SRV ? "SRV" :
		    type == LDNS_RR_TYPE_TXT ? "TXT" : type == LDNS_RR_TYPE_PTR ?
		    "PTR" : type == LDNS_RR_TYPE_A ? "A" : "AAAA",
		    ldns_get_errorstr_by_id(st));
		free(qn);
		ldns_pkt_free(p);
		return NULL;
	}
	if (ldns_pkt_get_rcode(p) != LDNS_RCODE_NOERROR &&
	    ldns_pkt_get_rcode(p) != LDNS_RCODE_NXDOMAIN &&
	    ldns_pkt_get_rcode(p) != LDNS_RCODE_REFUSED) {
		ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes,
		    ldns_pkt_get_rcode(p));

		qn = ldns_rdf2str(name);
		snprintf(lk->err, lk->errlen, "DNS query %s: the server "
		    "answered %s", qn ? qn : "?", rc ? rc->name : "an error");
		free(qn);
		ldns_pkt_free(p);
		return NULL;
	}
	return p;
}

/* Records of type at owner in section list (case-insensitive owner). */
static size_t
rrs_at(const ldns_rr_list *l, const ldns_rdf *owner, ldns_rr_type type,
    ldns_rr **out, size_t max)
{
	size_t i, n = 0;

	for (i = 0; l != NULL && i < ldns_rr_list_rr_count(l) && n < max; i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);

		if (ldns_rr_get_type(rr) == type &&
		    ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
		    ldns_dname_compare(ldns_rr_owner(rr), owner) == 0)
			out[n++] = rr;
	}
	return n;
}

static void
add_addrs(struct disc_server *s, const ldns_rr_list *l, const ldns_rdf *owner)
{
	ldns_rr *rr[DISC_MAX_ADDRS];
	size_t n, i;
	int t;

	for (t = 0; t < 2; t++) {
		n = rrs_at(l, owner, t == 0 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA,
		    rr, DISC_MAX_ADDRS);
		for (i = 0; i < n && s->naddrs < DISC_MAX_ADDRS; i++) {
			ldns_rdf *a = ldns_rr_rdf(rr[i], 0);
			struct sockaddr_storage *ss = &s->addrs[s->naddrs];

			if (a == NULL)
				continue;
			memset(ss, 0, sizeof(*ss));
			if (t == 0 && ldns_rdf_size(a) == 4) {
				struct sockaddr_in *sin = (struct sockaddr_in *)ss;

				sin->sin_family = AF_INET;
				memcpy(&sin->sin_addr, ldns_rdf_data(a), 4);
			} else if (t == 1 && ldns_rdf_size(a) == 16) {
				struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

				sin6->sin6_family = AF_INET6;
				memcpy(&sin6->sin6_addr, ldns_rdf_data(a), 16);
			} else
				continue;
			s->naddrs++;
		}
	}
}

/*
 * The target's addresses: from the packet's additional section, else (with
 * a resolver) A and AAAA queries.  1 if there are some and all are local;
 * 0 none; -1 a public one (err says which).
 */
static int
target_addrs(struct lookup *lk, const ldns_pkt *pkt, const ldns_rdf *target,
    struct disc_server *s)
{
	char txt[INET6_ADDRSTRLEN];
	size_t i;

	s->naddrs = 0;
	if (pkt != NULL)
		add_addrs(s, ldns_pkt_additional(pkt), target);
	if (s->naddrs == 0 && lk->res != NULL) {
		ldns_rr_type types[2] = { LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA };

		for (i = 0; i < 2; i++) {
			ldns_pkt *p = query(lk, target, types[i]);

			if (p == NULL)
				return -2;
			add_addrs(s, ldns_pkt_answer(p), target);
			ldns_pkt_free(p);
		}
	}
	if (s->naddrs == 0) {
		snprintf(lk->err, lk->errlen, "%s has no address", s->name);
		return 0;
	}
	for (i = 0; i < s->naddrs; i++) {
		if (!disc_addr_is_local((const struct sockaddr *)&s->addrs[i])) {
			addr_text(&s->addrs[i], txt, sizeof(txt));
			snprintf(lk->err, lk->errlen, "refused: %s has the public "
			    "address %s (a local ACME server must have a "
			    "private, link-local or loopback address)", s->name, txt);
			return -1;
		}
	}
	return 1;
}

/* RFC 2782: the lowest priority first; within it, a weighted random pick. */
static struct srv *
next_srv(struct srv *v, size_t n)
{
	uint32_t total = 0, pick;
	int best = -1;
	size_t i;

	for (i = 0; i < n; i++)
		if (!v[i].used && (best == -1 || v[i].prio < v[best].prio))
			best = (int)i;
	if (best == -1)
		return NULL;
	for (i = 0; i < n; i++)
		if (!v[i].used && v[i].prio == v[best].prio)
			total += v[i].weight;
	if (total == 0) {
		v[best].used = 1;
		return &v[best];
	}
	pick = arc4random_uniform(total + 1);
	for (i = 0; i < n; i++) {
		if (v[i].used || v[i].prio != v[best].prio)
			continue;
		if (v[i].weight >= pick || total == v[i].weight) {
			v[i].used = 1;
			return &v[i];
		}
		pick -= v[i].weight;
		total -= v[i].weight;
	}
	v[best].used = 1;
	return &v[best];
}

/* TXT path= at owner (from pkt's answer or additional, else a query). */
static int
txt_path(struct lookup *lk, const ldns_pkt *pkt, const ldns_rdf *owner,
    struct disc_server *s)
{
	ldns_rr *rr[8];
	ldns_pkt *own = NULL;
	size_t n, i, j;
	int rc = 0;

	snprintf(s->path, sizeof(s->path), "%s", DISC_DEFAULT_PATH);
	n = rrs_at(ldns_pkt_answer(pkt), owner, LDNS_RR_TYPE_TXT, rr, 8);
	if (n == 0)
		n = rrs_at(ldns_pkt_additional(pkt), owner, LDNS_RR_TYPE_TXT, rr, 8);
	if (n == 0 && lk->res != NULL) {
		if ((own = query(lk, owner, LDNS_RR_TYPE_TXT)) == NULL)
			return -1;
		n = rrs_at(ldns_pkt_answer(own), owner, LDNS_RR_TYPE_TXT, rr, 8);
	}
	for (i = 0; i < n && rc == 0; i++) {
		for (j = 0; j < ldns_rr_rd_count(rr[i]); j++) {
			const ldns_rdf *d = ldns_rr_rdf(rr[i], j);
			const uint8_t *b = ldns_rdf_data(d);
			size_t len, k;

			/* A character-string: one length byte, then text. */
			if (ldns_rdf_get_type(d) != LDNS_RDF_TYPE_STR ||
			    ldns_rdf_size(d) < 1 || b[0] != ldns_rdf_size(d) - 1)
				continue;
			len = b[0];
			if (len < 5 || strncasecmp((const char *)b + 1, "path=", 5) != 0)
				continue;
			b += 6;
			len -= 5;
			if (len == 0 || len > DISC_PATH_MAX || b[0] != '/') {
				snprintf(lk->err, lk->errlen, "refused: the TXT "
				    "record's path= is not an absolute path");
				rc = -1;
				break;
			}
			for (k = 0; k < len; k++)
				if (b[k] <= 0x20 || b[k] >= 0x7f || b[k] == '?' ||
				    b[k] == '#' || b[k] == '\\')
					break;
			if (k != len) {
				snprintf(lk->err, lk->errlen, "refused: the TXT "
				    "record's path= has a character not allowed "
				    "in a URL path");
				rc = -1;
				break;
			}
			memcpy(s->path, b, len);
			s->path[len] = '\0';
			rc = 1;
			break;
		}
	}
	ldns_pkt_free(own);
	return rc < 0 ? -1 : 0;
}

/*
 * Choose among the SRV records at owner in pkt.  1 found, 0 none at all,
 * -1 refused or failed (err).
 */
static int
choose_srv(struct lookup *lk, const ldns_pkt *pkt, const ldns_rdf *owner,
    struct disc_server *out)
{
	ldns_rr *rr[MAX_SRV];
	struct srv v[MAX_SRV];
	struct srv *c;
	size_t n, i, nv = 0, root = 0;
	int rc;

	n = rrs_at(ldns_pkt_answer(pkt), owner, LDNS_RR_TYPE_SRV, rr, MAX_SRV);
	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		ldns_rdf *f[4];
		size_t k;

		if (ldns_rr_rd_count(rr[i]) != 4)
			continue;
		for (k = 0; k < 4; k++)
			f[k] = ldns_rr_rdf(rr[i], k);
		if (ldns_rdf_get_type(f[0]) != LDNS_RDF_TYPE_INT16 ||
		    ldns_rdf_get_type(f[1]) != LDNS_RDF_TYPE_INT16 ||
		    ldns_rdf_get_type(f[2]) != LDNS_RDF_TYPE_INT16 ||
		    ldns_rdf_get_type(f[3]) != LDNS_RDF_TYPE_DNAME)
			continue;
		if (ldns_dname_label_count(f[3]) == 0) {
			root++;	/* "." : no service here (RFC 2782) */
			continue;
		}
		v[nv].prio = ldns_rdf2native_int16(f[0]);
		v[nv].weight = ldns_rdf2native_int16(f[1]);
		v[nv].port = ldns_rdf2native_int16(f[2]);
		v[nv].target = f[3];
		v[nv].owner = ldns_rr_owner(rr[i]);
		v[nv].used = 0;
		if (v[nv].port != 0)
			nv++;
	}
	if (nv == 0) {
		snprintf(lk->err, lk->errlen, root > 0 ?
		    "refused: the SRV record's target is \".\" (the domain "
		    "says it has no ACME server)" :
		    "refused: no usable SRV record (malformed or port 0)");
		return -1;
	}
	while ((c = next_srv(v, nv)) != NULL) {
		memset(out, 0, sizeof(*out));
		if (dname_text(c->target, out->name, sizeof(out->name), 0) == -1) {
			snprintf(lk->err, lk->errlen, "refused: an SRV target "
			    "is not a fully-qualified host name");
			continue;
		}
		if (is_mdns_name(out->name, strlen(out->name))) {
			snprintf(lk->err, lk->errlen, "refused: the SRV target %s "
			    "is an mDNS name", out->name);
			continue;
		}
		out->port = c->port;
		out->source = "dns-sd";
		rc = target_addrs(lk, pkt, c->target, out);
		if (rc == -2)
			return -1;
		if (rc != 1)
			continue;
		if (txt_path(lk, pkt, c->owner, out) == -1)
			return -1;
		return 1;
	}
	return -1;	/* err holds the last candidate's reason */
}

static ldns_rdf *
service_name(const char *domain, char *err, size_t errlen)
{
	char buf[DISC_NAME_MAX + 32];
	size_t len = strlen(domain);
	ldns_rdf *d = NULL;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (!disc_valid_hostname(domain, len, 1) ||
	    len + sizeof(DISC_SERVICE) + 1 > DISC_NAME_MAX) {
		snprintf(err, errlen, "\"%s\" is not a domain name", domain);
		return NULL;
	}
	if (is_mdns_name(domain, len)) {
		snprintf(err, errlen, "refused: %s is an mDNS domain (discovery "
		    "never uses mDNS)", domain);
		return NULL;
	}
	snprintf(buf, sizeof(buf), DISC_SERVICE ".%.*s.", (int)len, domain);
	if (ldns_str2rdf_dname(&d, buf) != LDNS_STATUS_OK) {
		snprintf(err, errlen, "\"%s\" is not a domain name", domain);
		return NULL;
	}
	return d;
}

int
disc_dnssd_from_wire(const uint8_t *wire, size_t len, const char *qname,
    struct disc_server *out, char *err, size_t errlen)
{
	struct lookup lk = { NULL, NULL, err, errlen };
	ldns_rdf *owner = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (ldns_str2rdf_dname(&owner, qname) != LDNS_STATUS_OK) {
		snprintf(err, errlen, "bad query name");
		return -1;
	}
	if (ldns_wire2pkt(&lk.pkt, wire, len) != LDNS_STATUS_OK) {
		snprintf(err, errlen, "the DNS answer is malformed");
		ldns_rdf_deep_free(owner);
		return -1;
	}
	if ((rc = choose_srv(&lk, lk.pkt, owner, out)) == 0)
		snprintf(err, errlen, "no SRV record at %s", qname);
	ldns_pkt_free(lk.pkt);
	ldns_rdf_deep_free(owner);
	return rc;
}

/* The resolver: the configured server or the system's, never multicast. */
static ldns_resolver *
make_resolver(const struct disc_resolver *cfg, char *err, size_t errlen)
{
	ldns_resolver *r = NULL;
	struct timeval tv;
	int ms = cfg != NULL && cfg->timeout_ms > 0 ? cfg->timeout_ms : 2000;
	size_t i;

	if (cfg == NULL || cfg->server == NULL) {
		if (ldns_resolver_new_frm_file(&r, NULL) != LDNS_STATUS_OK) {
			snprintf(err, errlen, "cannot read the system's resolver "
			    "configuration");
			return NULL;
		}
	} else {
		char host[INET6_ADDRSTRLEN + 2];
		const char *s = cfg->server, *port = NULL, *close;
		ldns_rdf *ns = NULL;
		long p = 53;
		char *end;
		size_t hl;

		if (s[0] == '[' && (close = strchr(s, ']')) != NULL) {
			hl = (size_t)(close - s - 1);
			s++;
			port = close[1] == ':' ? close + 2 : NULL;
			if (close[1] != '\0' && close[1] != ':')
				hl = sizeof(host);
		} else if ((port = strchr(s, ':')) != NULL && strchr(port + 1, ':') == NULL) {
			hl = (size_t)(port - s);
			port++;
		} else {
			hl = strlen(s);
			port = NULL;
		}
		if (port != NULL) {
			p = strtol(port, &end, 10);
			if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
				hl = sizeof(host);
		}
		if (hl == 0 || hl >= sizeof(host)) {
			snprintf(err, errlen, "resolver \"%s\": not ADDR[:PORT]",
			    cfg->server);
			return NULL;
		}
		memcpy(host, s, hl);
		host[hl] = '\0';
		if ((ns = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, host)) == NULL &&
		    (ns = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_AAAA, host)) == NULL) {
			snprintf(err, errlen, "resolver \"%s\": not an IP address",
			    cfg->server);
			return NULL;
		}
		if ((r = ldns_resolver_new()) == NULL ||
		    ldns_resolver_push_nameserver(r, ns) != LDNS_STATUS_OK) {
			ldns_rdf_deep_free(ns);
			ldns_resolver_deep_free(r);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		ldns_rdf_deep_free(ns);
		ldns_resolver_set_port(r, (uint16_t)p);
	}
	/* Never mDNS: no multicast server, no port 5353. */
	for (i = 0; i < ldns_resolver_nameserver_count(r); i++) {
		ldns_rdf *ns = ldns_resolver_nameservers(r)[i];
		const uint8_t *a = ldns_rdf_data(ns);

		if ((ldns_rdf_get_type(ns) == LDNS_RDF_TYPE_A && (a[0] & 0xf0) == 0xe0) ||
		    (ldns_rdf_get_type(ns) == LDNS_RDF_TYPE_AAAA && a[0] == 0xff) ||
		    ldns_resolver_port(r) == 5353) {
			snprintf(err, errlen, "refused: the resolver is a multicast "
			    "address or mDNS port (discovery never uses mDNS)");
			ldns_resolver_deep_free(r);
			return NULL;
		}
	}
	if (ldns_resolver_nameserver_count(r) == 0) {
		snprintf(err, errlen, "no DNS server configured");
		ldns_resolver_deep_free(r);
		return NULL;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	ldns_resolver_set_timeout(r, tv);
	ldns_resolver_set_retry(r, 2);
	ldns_resolver_set_recursive(r, true);
	ldns_resolver_set_dnssec(r, false);
	ldns_resolver_set_defnames(r, false);
	ldns_resolver_set_dnsrch(r, false);
	ldns_resolver_set_random(r, false);
	return r;
}

/* SRV at name: 1 chosen, 0 none there, -1 refused or failed. */
static int
srv_at(struct lookup *lk, const ldns_rdf *name, struct disc_server *out)
{
	ldns_pkt *p;
	int rc;

	if ((p = query(lk, name, LDNS_RR_TYPE_SRV)) == NULL)
		return -1;
	rc = choose_srv(lk, p, name, out);
	ldns_pkt_free(p);
	return rc;
}

int
disc_dnssd(const struct disc_resolver *cfg, const char *domain,
    struct disc_server *out, char *err, size_t errlen)
{
	struct lookup lk = { NULL, NULL, err, errlen };
	ldns_rdf *svc;
	ldns_pkt *p = NULL;
	ldns_rr *ptr[MAX_INSTANCES];
	size_t n, i;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((svc = service_name(domain, err, errlen)) == NULL)
		return -1;
	if ((lk.res = make_resolver(cfg, err, errlen)) == NULL) {
		ldns_rdf_deep_free(svc);
		return -1;
	}
	rc = srv_at(&lk, svc, out);
	if (rc == 0) {
		/* DNS-SD browsing: PTR to instances, each with its SRV. */
		if ((p = query(&lk, svc, LDNS_RR_TYPE_PTR)) == NULL)
			rc = -1;
		else {
			n = rrs_at(ldns_pkt_answer(p), svc, LDNS_RR_TYPE_PTR, ptr,
			    MAX_INSTANCES);
			for (i = 0; i < n && rc != 1; i++) {
				ldns_rdf *inst = ldns_rr_rdf(ptr[i], 0);

				if (inst == NULL ||
				    ldns_rdf_get_type(inst) != LDNS_RDF_TYPE_DNAME ||
				    !ldns_dname_is_subdomain(inst, svc))
					continue;
				rc = srv_at(&lk, inst, out);
			}
			ldns_pkt_free(p);
		}
		if (rc == 0)
			snprintf(err, errlen, "%s announces no ACME server (no "
			    DISC_SERVICE " SRV record)", domain);
	}
	ldns_resolver_deep_free(lk.res);
	ldns_rdf_deep_free(svc);
	return rc;
}

int
disc_resolve_name(const struct disc_resolver *cfg, const char *name,
    struct disc_server *out, char *err, size_t errlen)
{
	struct lookup lk = { NULL, NULL, err, errlen };
	char buf[DISC_NAME_MAX + 2];
	ldns_rdf *d = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!disc_valid_hostname(name, strlen(name), 0)) {
		snprintf(err, errlen, "\"%s\" is not a host name", name);
		return -1;
	}
	if (is_mdns_name(name, strlen(name))) {
		snprintf(err, errlen, "refused: %s is an mDNS name (discovery "
		    "never uses mDNS)", name);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s.", name);
	if (ldns_str2rdf_dname(&d, buf) != LDNS_STATUS_OK) {
		snprintf(err, errlen, "\"%s\" is not a host name", name);
		return -1;
	}
	if ((lk.res = make_resolver(cfg, err, errlen)) == NULL) {
		ldns_rdf_deep_free(d);
		return -1;
	}
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->port = 443;
	snprintf(out->path, sizeof(out->path), "%s", DISC_DEFAULT_PATH);
	out->source = "dhcp";
	rc = target_addrs(&lk, NULL, d, out);
	ldns_resolver_deep_free(lk.res);
	ldns_rdf_deep_free(d);
	return rc == 1 ? 1 : -1;
}
