/*
 * dnsupdate: RFC 2136 UPDATE with TSIG through ldns (dnsupdate.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "dnsupdate.h"

#define KEYFILE_MAX	4096
#define TSIG_FUDGE	300

struct dnsupdate {
	ldns_rdf	*zone;
	ldns_rr_list	*updates;
};

/* ------------------------------------------------------------------ */
/* Keys */

void
dnsupdate_key_clear(struct dnsupdate_key *k)
{
	explicit_bzero(k, sizeof(*k));
}

/* Next token of a BIND-style file: a word, a quoted string or one of {};
 * comments (#, //, and C style) skipped.  Returns the length, 0 at the
 * end, -1 on an unterminated string or an over-long token. */
static int
next_token(const char **pp, char *tok, size_t toklen)
{
	const char *p = *pp;
	size_t n = 0;

	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			while (*p != '\0' && *p != '\n')
				p++;
			continue;
		}
		if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");

			if (e == NULL)
				return -1;
			p = e + 2;
			continue;
		}
		break;
	}
	if (*p == '\0') {
		*pp = p;
		return 0;
	}
	if (*p == '{' || *p == '}' || *p == ';') {
		tok[0] = *p++;
		tok[1] = '\0';
		*pp = p;
		return 1;
	}
	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\0' || *p == '\n' || n + 1 >= toklen)
				return -1;
			tok[n++] = *p;
		}
		p++;
	} else {
		while (*p != '\0' && !isspace((unsigned char)*p) &&
		    strchr("{};\"", *p) == NULL) {
			if (n + 1 >= toklen)
				return -1;
			tok[n++] = *p++;
		}
	}
	tok[n] = '\0';
	*pp = p;
	return n == 0 ? -1 : (int)n;
}

static int
set_key(struct dnsupdate_key *k, const char *name, const char *alg,
    const char *secret, char *err, size_t errlen)
{
	static const char *const algs[] = { "hmac-sha256", "hmac-sha384",
	    "hmac-sha512" };
	size_t i, nl = strlen(name), al = strlen(alg), sl = strlen(secret);
	ldns_rdf *d = NULL;

	if (al > 0 && alg[al - 1] == '.')
		al--;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strlen(algs[i]) == al && strncasecmp(alg, algs[i], al) == 0)
			break;
	if (i == sizeof(algs) / sizeof(algs[0])) {
		snprintf(err, errlen, "TSIG algorithm \"%.32s\" not supported "
		    "(hmac-sha256, hmac-sha384 or hmac-sha512)", alg);
		return -1;
	}
	if (nl == 0 || nl + 2 > sizeof(k->name) ||
	    ldns_str2rdf_dname(&d, name) != LDNS_STATUS_OK) {
		snprintf(err, errlen, "TSIG key name is not a domain name");
		return -1;
	}
	ldns_rdf_deep_free(d);
	d = NULL;
	if (sl == 0 || sl >= sizeof(k->secret) ||
	    ldns_str2rdf_b64(&d, secret) != LDNS_STATUS_OK ||
	    ldns_rdf_size(d) < 16) {
		if (d != NULL) {
			explicit_bzero(ldns_rdf_data(d), ldns_rdf_size(d));
			ldns_rdf_deep_free(d);
		}
		snprintf(err, errlen, "TSIG secret is not base64 of at least "
		    "16 bytes");
		return -1;
	}
	explicit_bzero(ldns_rdf_data(d), ldns_rdf_size(d));
	ldns_rdf_deep_free(d);
	snprintf(k->name, sizeof(k->name), "%s%s", name,
	    name[nl - 1] == '.' ? "" : ".");
	snprintf(k->algorithm, sizeof(k->algorithm), "%s.", algs[i]);
	memcpy(k->secret, secret, sl + 1);
	return 0;
}

int
dnsupdate_key_parse(const char *text, struct dnsupdate_key *k, char *err,
    size_t errlen)
{
	char t[6][300];
	const char *p = text;
	int n, i, rc = -1;

	memset(k, 0, sizeof(*k));
	/* Up to three leading tokens decide the format. */
	for (i = 0; i < 3; i++)
		if ((n = next_token(&p, t[i], sizeof(t[i]))) <= 0)
			break;
	if (i == 3 && strcmp(t[0], "key") != 0) {
		if (next_token(&p, t[3], sizeof(t[3])) != 0) {
			snprintf(err, errlen, "TSIG key file: expected \"NAME "
			    "ALGORITHM SECRET\" or a BIND key statement");
			goto out;
		}
		rc = set_key(k, t[0], t[1], t[2], err, errlen);
		goto out;
	}
	if (i < 3 || strcmp(t[0], "key") != 0 || strcmp(t[2], "{") != 0) {
		snprintf(err, errlen, "TSIG key file: expected \"NAME ALGORITHM "
		    "SECRET\" or key \"NAME\" { algorithm ...; secret \"...\"; };");
		goto out;
	}
	t[3][0] = t[4][0] = '\0';
	for (;;) {
		if (next_token(&p, t[5], sizeof(t[5])) <= 0) {
			snprintf(err, errlen, "TSIG key file: unterminated key "
			    "statement");
			goto out;
		}
		if (strcmp(t[5], "}") == 0)
			break;
		if (strcmp(t[5], "algorithm") != 0 && strcmp(t[5], "secret") != 0) {
			snprintf(err, errlen, "TSIG key file: unknown clause "
			    "\"%.32s\"", t[5]);
			goto out;
		}
		i = t[5][0] == 'a' ? 3 : 4;
		if (next_token(&p, t[i], sizeof(t[i])) <= 0 ||
		    next_token(&p, t[5], sizeof(t[5])) != 1 || t[5][0] != ';') {
			snprintf(err, errlen, "TSIG key file: \"%s\" needs a "
			    "value and \";\"", i == 3 ? "algorithm" : "secret");
			goto out;
		}
	}
	n = next_token(&p, t[5], sizeof(t[5]));
	if (n == 1 && t[5][0] == ';')
		n = next_token(&p, t[5], sizeof(t[5]));
	if (n != 0) {
		snprintf(err, errlen, "TSIG key file: one key statement only");
		goto out;
	}
	if (t[3][0] == '\0' || t[4][0] == '\0') {
		snprintf(err, errlen, "TSIG key file: the key has no %s",
		    t[3][0] == '\0' ? "algorithm" : "secret");
		goto out;
	}
	rc = set_key(k, t[1], t[3], t[4], err, errlen);
out:
	explicit_bzero(t, sizeof(t));
	if (rc == -1)
		dnsupdate_key_clear(k);
	return rc;
}

int
dnsupdate_key_load(const char *path, struct dnsupdate_key *k, char *err,
    size_t errlen)
{
	char buf[KEYFILE_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, rc;

	memset(k, 0, sizeof(*k));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: a TSIG key must be readable by its "
		    "owner only (chmod 600)", path);
		close(fd);
		return -1;
	}
	while (len < sizeof(buf) - 1 &&
	    (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len >= KEYFILE_MAX) {
		snprintf(err, errlen, "%s: too large for a key file", path);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "%s: not a text file", path);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	rc = dnsupdate_key_parse(buf, k, err, errlen);
	explicit_bzero(buf, sizeof(buf));
	if (rc == -1) {
		char tmp[512];

		snprintf(tmp, sizeof(tmp), "%s: %s", path, err);
		snprintf(err, errlen, "%s", tmp);
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Updates */

struct dnsupdate *
dnsupdate_new(const char *zone, char *err, size_t errlen)
{
	struct dnsupdate *u;
	char buf[300];
	size_t len = strlen(zone);

	if (len == 0 || len > 253) {
		snprintf(err, errlen, "zone \"%s\" is not a domain name", zone);
		return NULL;
	}
	snprintf(buf, sizeof(buf), "%s%s", zone, zone[len - 1] == '.' ? "" : ".");
	if ((u = calloc(1, sizeof(*u))) == NULL ||
	    (u->updates = ldns_rr_list_new()) == NULL) {
		free(u);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (ldns_str2rdf_dname(&u->zone, buf) != LDNS_STATUS_OK) {
		snprintf(err, errlen, "zone \"%s\" is not a domain name", zone);
		dnsupdate_free(u);
		return NULL;
	}
	return u;
}

void
dnsupdate_free(struct dnsupdate *u)
{
	if (u == NULL)
		return;
	ldns_rdf_deep_free(u->zone);
	ldns_rr_list_deep_free(u->updates);
	free(u);
}

static ldns_rr *
parse_rr(const struct dnsupdate *u, const char *text, char *err, size_t errlen)
{
	ldns_rr *rr = NULL;
	ldns_status st;

	st = ldns_rr_new_frm_str(&rr, text, 3600, NULL, NULL);
	if (st != LDNS_STATUS_OK) {
		snprintf(err, errlen, "record \"%.120s\": %s", text,
		    ldns_get_errorstr_by_id(st));
		return NULL;
	}
	if (!ldns_dname_is_subdomain(ldns_rr_owner(rr), u->zone) &&
	    ldns_dname_compare(ldns_rr_owner(rr), u->zone) != 0) {
		snprintf(err, errlen, "record \"%.120s\" is outside the zone", text);
		ldns_rr_free(rr);
		return NULL;
	}
	return rr;
}

static int
push(struct dnsupdate *u, ldns_rr *rr, char *err, size_t errlen)
{
	if (!ldns_rr_list_push_rr(u->updates, rr)) {
		ldns_rr_free(rr);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
dnsupdate_add(struct dnsupdate *u, const char *text, char *err, size_t errlen)
{
	ldns_rr *rr = parse_rr(u, text, err, errlen);

	return rr == NULL ? -1 : push(u, rr, err, errlen);
}

int
dnsupdate_delete_rr(struct dnsupdate *u, const char *text, char *err,
    size_t errlen)
{
	ldns_rr *rr = parse_rr(u, text, err, errlen);

	if (rr == NULL)
		return -1;
	/* RFC 2136 2.5.4: class NONE, TTL 0, the record's data. */
	ldns_rr_set_class(rr, LDNS_RR_CLASS_NONE);
	ldns_rr_set_ttl(rr, 0);
	return push(u, rr, err, errlen);
}

int
dnsupdate_delete_rrset(struct dnsupdate *u, const char *name,
    const char *type, char *err, size_t errlen)
{
	char buf[300];
	ldns_rr_type t = ldns_get_rr_type_by_name(type);
	ldns_rdf *owner = NULL;
	ldns_rr *rr;
	size_t len = strlen(name);

	if (t == 0 || strcasecmp(type, "ANY") == 0) {
		snprintf(err, errlen, "unknown record type \"%.16s\"", type);
		return -1;
	}
	if (len == 0 || len > 253) {
		snprintf(err, errlen, "\"%.64s\" is not a domain name", name);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s%s", name, name[len - 1] == '.' ? "" : ".");
	if (ldns_str2rdf_dname(&owner, buf) != LDNS_STATUS_OK ||
	    (!ldns_dname_is_subdomain(owner, u->zone) &&
	    ldns_dname_compare(owner, u->zone) != 0)) {
		snprintf(err, errlen, "\"%.64s\" is not a name in the zone", name);
		ldns_rdf_deep_free(owner);
		return -1;
	}
	if ((rr = ldns_rr_new()) == NULL) {
		ldns_rdf_deep_free(owner);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* RFC 2136 2.5.2: class ANY, TTL 0, no data. */
	ldns_rr_set_owner(rr, owner);
	ldns_rr_set_type(rr, t);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_ANY);
	ldns_rr_set_ttl(rr, 0);
	return push(u, rr, err, errlen);
}

int
dnsupdate_parse_server(const char *text, uint16_t default_port, void *out,
    unsigned int *outlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *h = text, *port = NULL, *close;
	struct sockaddr_storage *ss = out;
	size_t hl;
	long p = default_port;
	char *end;

	if (text[0] == '[') {
		if ((close = strchr(text, ']')) == NULL)
			return -1;
		h = text + 1;
		hl = (size_t)(close - h);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return -1;
	} else if ((port = strchr(text, ':')) != NULL &&
	    strchr(port + 1, ':') == NULL) {
		hl = (size_t)(port - text);
		port++;
	} else {
		hl = strlen(text);
		port = NULL;
	}
	if (port != NULL) {
		errno = 0;
		p = strtol(port, &end, 10);
		if (*port == '\0' || *end != '\0' || errno != 0 || p < 1 || p > 65535)
			return -1;
	}
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		*outlen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		*outlen = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* Connect within ms; the socket (blocking again), or -1 with errno's text. */
static int
tcp_connect(const struct sockaddr_storage *ss, socklen_t len, int ms,
    const char *server, char *err, size_t errlen)
{
	struct pollfd pfd;
	socklen_t elen = sizeof(int);
	int fd, e = 0, fl;

	if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)ss, len) == -1) {
		if (errno != EINPROGRESS) {
			e = errno;
		} else {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			if (poll(&pfd, 1, ms) != 1)
				e = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) == -1)
				e = errno;
		}
	}
	if (e == 0 && ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1))
		e = errno;
	if (e != 0) {
		snprintf(err, errlen, "DNS server %s: %s", server, strerror(e));
		close(fd);
		return -1;
	}
	return fd;
}

static const char *
tsig_error_text(uint16_t e)
{
	switch (e) {
	case 16: return "BADSIG: the server's secret for this key differs";
	case 17: return "BADKEY: the server does not know this key name or "
		    "algorithm";
	case 18: return "BADTIME: this host's clock and the server's differ "
		    "by more than the fudge";
	case 22: return "BADTRUNC";
	default: return NULL;
	}
}

/* Why the server said no, as one line. */
static void
explain(const ldns_pkt *resp, const struct dnsupdate *u, char *err, size_t errlen)
{
	ldns_pkt_rcode rc = ldns_pkt_get_rcode(resp);
	ldns_rr *tsig = ldns_pkt_tsig(resp);
	ldns_lookup_table *lt = ldns_lookup_by_id(ldns_rcodes, (int)rc);
	const char *tsigerr = NULL;
	char *zone = ldns_rdf2str(u->zone);
	uint16_t te = 0;

	if (tsig != NULL && ldns_rr_rd_count(tsig) > 5 && ldns_rr_rdf(tsig, 5) != NULL)
		te = ldns_rdf2native_int16(ldns_rr_rdf(tsig, 5));
	tsigerr = tsig_error_text(te);
	switch (rc) {
	case LDNS_RCODE_REFUSED:
		snprintf(err, errlen, "the DNS server refused the update of zone "
		    "%s (REFUSED): this key (or this address) may not update "
		    "that zone, see allow-update / update-policy",
		    zone ? zone : "?");
		break;
	case LDNS_RCODE_NOTAUTH:
		if (tsigerr != NULL)
			snprintf(err, errlen, "the DNS server rejected the "
			    "update's signature (NOTAUTH, %s)", tsigerr);
		else
			snprintf(err, errlen, "the DNS server is not "
			    "authoritative for zone %s (NOTAUTH)", zone ? zone : "?");
		break;
	case LDNS_RCODE_NOTZONE:
		snprintf(err, errlen, "a record is outside zone %s (NOTZONE)",
		    zone ? zone : "?");
		break;
	case LDNS_RCODE_SERVFAIL:
		snprintf(err, errlen, "the DNS server failed to apply the update "
		    "(SERVFAIL): see its log");
		break;
	case LDNS_RCODE_FORMERR:
		snprintf(err, errlen, "the DNS server could not parse the update "
		    "(FORMERR)");
		break;
	case LDNS_RCODE_NOTIMPL:
		snprintf(err, errlen, "the DNS server does not support dynamic "
		    "update (NOTIMP)");
		break;
	default:
		snprintf(err, errlen, "the DNS server answered %s%s%s",
		    lt ? lt->name : "an unknown rcode",
		    tsigerr ? ", " : "", tsigerr ? tsigerr : "");
		break;
	}
	free(zone);
}

int
dnsupdate_send(struct dnsupdate *u, const char *server,
    const struct dnsupdate_key *key, int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	unsigned int sslen;
	struct timeval tv;
	ldns_pkt *q = NULL, *resp = NULL;
	ldns_buffer *qb = NULL;
	ldns_rdf *zone = NULL, *qmac = NULL;
	uint8_t *wire = NULL;
	size_t wirelen = 0;
	ldns_status st;
	int ms = timeout_ms > 0 ? timeout_ms : 5000, rc = -1, fd = -1;

	if (ldns_rr_list_rr_count(u->updates) == 0) {
		snprintf(err, errlen, "empty update");
		return -1;
	}
	if (dnsupdate_parse_server(server, 53, &ss, &sslen) == -1) {
		snprintf(err, errlen, "DNS server \"%s\": not ADDR[:PORT]", server);
		return -1;
	}
	if ((zone = ldns_rdf_clone(u->zone)) == NULL ||
	    (q = ldns_update_pkt_new(zone, LDNS_RR_CLASS_IN, NULL, u->updates,
	    NULL)) == NULL) {
		ldns_rdf_deep_free(zone);
		snprintf(err, errlen, "cannot build the update");
		return -1;
	}
	ldns_pkt_set_random_id(q);
	if (key != NULL) {
		st = ldns_pkt_tsig_sign(q, key->name, key->secret, TSIG_FUDGE,
		    key->algorithm, NULL);
		if (st != LDNS_STATUS_OK) {
			snprintf(err, errlen, "TSIG signing failed: %s",
			    ldns_get_errorstr_by_id(st));
			goto out;
		}
		qmac = ldns_rr_rdf(ldns_pkt_tsig(q), 3);
	}
	if ((qb = ldns_buffer_new(LDNS_MAX_PACKETLEN)) == NULL ||
	    ldns_pkt2buffer_wire(qb, q) != LDNS_STATUS_OK) {
		snprintf(err, errlen, "cannot encode the update");
		goto out;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if ((fd = tcp_connect(&ss, (socklen_t)sslen, ms, server, err,
	    errlen)) == -1)
		goto out;
	if (ldns_tcp_send_query(qb, fd, &ss, (socklen_t)sslen) <= 0) {
		snprintf(err, errlen, "DNS server %s: cannot send: %s", server,
		    strerror(errno));
		goto out;
	}
	if ((wire = ldns_tcp_read_wire_timeout(fd, &wirelen, tv)) == NULL) {
		snprintf(err, errlen, "DNS server %s: no answer within %d ms",
		    server, ms);
		goto out;
	}
	if (ldns_wire2pkt(&resp, wire, wirelen) != LDNS_STATUS_OK) {
		snprintf(err, errlen, "DNS server %s: malformed answer", server);
		goto out;
	}
	if (ldns_pkt_id(resp) != ldns_pkt_id(q) || !ldns_pkt_qr(resp)) {
		snprintf(err, errlen, "DNS server %s: answer to another message",
		    server);
		goto out;
	}
	if (ldns_pkt_get_rcode(resp) != LDNS_RCODE_NOERROR) {
		explain(resp, u, err, errlen);
		goto out;
	}
	if (key != NULL) {
		/* RFC 8945 5.3.4: an unsigned or badly signed answer is not one. */
		if (ldns_pkt_tsig(resp) == NULL) {
			snprintf(err, errlen, "DNS server %s: the answer is not "
			    "signed with the key", server);
			goto out;
		}
		ldns_rr *rtsig = ldns_pkt_tsig(resp);
		bool good = ldns_pkt_tsig_verify(resp, wire, wirelen, key->name,
		    key->secret, qmac);

		/* ldns may leave the TSIG detached when it cannot compute. */
		if (ldns_pkt_tsig(resp) == NULL)
			ldns_pkt_set_tsig(resp, rtsig);
		if (!good) {
			snprintf(err, errlen, "DNS server %s: the answer's TSIG "
			    "does not verify", server);
			goto out;
		}
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	free(wire);
	ldns_buffer_free(qb);
	ldns_pkt_free(resp);
	ldns_pkt_free(q);
	return rc;
}
