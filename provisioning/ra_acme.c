/*
 * ra_acme: pre-authorization of a subtree and step-by-step orders for a
 * registration authority (see ra_acme.h).  ACME through acmeclient, dns-01
 * records through dnsupdate.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "acmeclient.h"
#include "dnsupdate.h"
#include "ra_acme.h"

#define DEFAULT_TIMEOUT_MS	60000
#define TXT_TTL			60
#define DNS_TIMEOUT_MS		5000

struct ra_acme {
	struct acme_client	*client;
	char			*subtree, *dns_server, *dns_zone;
	struct dnsupdate_key	 key;
	long			 dns_wait_ms;
};

static void __attribute__((format(printf, 3, 4)))
set_err(struct acme_error *err, const char *type, const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL)
		return;
	err->status = 0;
	snprintf(err->type, sizeof(err->type), "%s", type);
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* name equal to or under the domain dom (whole labels, any case). */
static int
name_within(const char *name, const char *dom)
{
	size_t	n = strlen(name), d = strlen(dom);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (d > 0 && dom[d - 1] == '.')
		d--;
	if (d == 0 || n < d || strncasecmp(name + n - d, dom, d) != 0)
		return 0;
	return n == d || name[n - d - 1] == '.';
}

/* A host name in letters, digits, '-' and '_' (labels 1..63, 253 in all):
 * what the server names goes into a zone-file line for the update. */
static int
is_dns_name(const char *s)
{
	size_t	label = 0, n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_') {
			if (++label > 63)
				return 0;
		} else
			return 0;
	}
	return 1;
}

/* ----------------------------------------------------------- account key */

static EVP_PKEY *
key_read(const char *path, struct acme_error *err)
{
	struct stat	 st;
	EVP_PKEY	*k = NULL;
	FILE		*f;

	if ((f = fopen(path, "r")) == NULL) {
		set_err(err, "", "account key %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode)) {
		set_err(err, "", "account key %s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		set_err(err, "", "account key %s: readable by others "
		    "(chmod 600)", path);
		goto out;
	}
	if ((k = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL) {
		ERR_clear_error();
		set_err(err, "", "account key %s: not a PEM private key", path);
	}
out:
	fclose(f);
	return k;
}

/*
 * The key in path, or a new P-256 key written there 0600.  A new key is
 * written to a temporary file and linked into place, so that several
 * threads or processes starting at once all end up with the one key that
 * won, and nobody reads a half-written file.
 */
static EVP_PKEY *
account_key(const char *path, struct acme_error *err)
{
	EVP_PKEY	*k;
	FILE		*f = NULL;
	char		*tmp = NULL;
	int		 fd, ok;

	if (access(path, F_OK) == 0 || errno != ENOENT)
		return key_read(path, err);
	if ((k = EVP_EC_gen("P-256")) == NULL) {
		ERR_clear_error();
		set_err(err, "", "account key generation failed");
		return NULL;
	}
	if (asprintf(&tmp, "%s.XXXXXX", path) == -1) {
		tmp = NULL;
		set_err(err, "", "out of memory");
		goto fail;
	}
	if ((fd = mkstemp(tmp)) == -1) {	/* mode 0600 */
		set_err(err, "", "account key %s: %s", tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto fail;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		set_err(err, "", "account key %s: %s", tmp, strerror(errno));
		close(fd);
		goto fail;
	}
	ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1 &&
	    fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0 || !ok) {
		ERR_clear_error();
		set_err(err, "", "account key %s: cannot write it", tmp);
		goto fail;
	}
	if (link(tmp, path) == -1) {
		if (errno != EEXIST) {
			set_err(err, "", "account key %s: %s", path,
			    strerror(errno));
			goto fail;
		}
		/* Someone else's key won the race: use it. */
		EVP_PKEY_free(k);
		k = key_read(path, err);
	}
	(void)unlink(tmp);
	free(tmp);
	return k;
fail:
	if (tmp != NULL)
		(void)unlink(tmp);
	free(tmp);
	EVP_PKEY_free(k);
	return NULL;
}

/* ------------------------------------------------------------ lifecycle */

struct ra_acme *
ra_acme_new(const struct ra_acme_config *cfg, struct acme_error *err)
{
	struct acme_client_config	 cc;
	struct ra_acme			*ra;
	struct sockaddr_storage		 ss;
	unsigned int			 sslen = sizeof(ss);
	EVP_PKEY			*k = NULL;
	char				 e[512];

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (cfg == NULL || cfg->directory_url == NULL ||
	    cfg->account_key_file == NULL || cfg->subtree == NULL ||
	    cfg->dns_server == NULL || cfg->dns_zone == NULL ||
	    cfg->tsig_key_file == NULL) {
		set_err(err, "", "ra_acme: directory, account key, subtree, "
		    "DNS server, zone and TSIG key are all needed");
		return NULL;
	}
	if (!name_within(cfg->subtree, cfg->dns_zone)) {
		set_err(err, "", "subtree %s is not in DNS zone %s",
		    cfg->subtree, cfg->dns_zone);
		return NULL;
	}
	if (dnsupdate_parse_server(cfg->dns_server, 53, &ss, &sslen) == -1) {
		set_err(err, "", "DNS server \"%s\": expected ADDR[:PORT]",
		    cfg->dns_server);
		return NULL;
	}
	if ((ra = calloc(1, sizeof(*ra))) == NULL) {
		set_err(err, "", "out of memory");
		return NULL;
	}
	ra->dns_wait_ms = cfg->dns_wait_ms > 0 ? cfg->dns_wait_ms : 0;
	if ((ra->subtree = strdup(cfg->subtree)) == NULL ||
	    (ra->dns_server = strdup(cfg->dns_server)) == NULL ||
	    (ra->dns_zone = strdup(cfg->dns_zone)) == NULL) {
		set_err(err, "", "out of memory");
		goto fail;
	}
	if (dnsupdate_key_load(cfg->tsig_key_file, &ra->key, e,
	    sizeof(e)) == -1) {
		set_err(err, "", "%s", e);
		goto fail;
	}
	if ((k = account_key(cfg->account_key_file, err)) == NULL)
		goto fail;
	memset(&cc, 0, sizeof(cc));
	cc.directory_url = cfg->directory_url;
	cc.ca_file = cfg->ca_file;
	cc.account_key = k;
	cc.request_timeout_ms = cfg->request_timeout_ms;
	if ((ra->client = acme_client_new(&cc, err)) == NULL)
		goto fail;
	EVP_PKEY_free(k);	/* the client holds its own reference */
	return ra;
fail:
	EVP_PKEY_free(k);
	ra_acme_free(ra);
	return NULL;
}

void
ra_acme_free(struct ra_acme *ra)
{
	if (ra == NULL)
		return;
	acme_client_free(ra->client);
	dnsupdate_key_clear(&ra->key);
	free(ra->subtree);
	free(ra->dns_server);
	free(ra->dns_zone);
	free(ra);
}

/* ---------------------------------------------------------------- dns-01 */

/* Add (or delete) the one TXT record value at _acme-challenge.name.  Only
 * this value is deleted: another validation of the same name may be using
 * the name at the same time. */
static int
txt_update(struct ra_acme *ra, const char *name, const char *value, int add,
    struct acme_error *err)
{
	struct dnsupdate	*u;
	char			*rr = NULL, e[512];
	int			 rc = -1;

	if (asprintf(&rr, "_acme-challenge.%s. %d IN TXT \"%s\"", name,
	    TXT_TTL, value) == -1) {
		set_err(err, "", "out of memory");
		return -1;
	}
	if ((u = dnsupdate_new(ra->dns_zone, e, sizeof(e))) != NULL &&
	    (add ? dnsupdate_add(u, rr, e, sizeof(e)) :
	    dnsupdate_delete_rr(u, rr, e, sizeof(e))) == 0 &&
	    dnsupdate_send(u, ra->dns_server, &ra->key, DNS_TIMEOUT_MS, e,
	    sizeof(e)) == 0)
		rc = 0;
	else
		set_err(err, "", "cannot %s the TXT record _acme-challenge.%s "
		    "(zone %s, DNS server %s): %s", add ? "publish" : "remove",
		    name, ra->dns_zone, ra->dns_server, e);
	dnsupdate_free(u);
	free(rr);
	return rc;
}

/* Prove control of a pending authorization's name by dns-01; the record is
 * removed whatever happens.  0 once valid. */
static int
solve_dns01(struct ra_acme *ra, struct acme_authz *a, long long deadline,
    struct acme_error *err)
{
	char			 name[256], txt[128];
	struct acme_error	 rmerr;
	int			 rc;
	long long		 left;

	/* A copy: the authorization object is replaced while polling. */
	if (snprintf(name, sizeof(name), "%s", acme_authz_name(a)) >=
	    (int)sizeof(name) || !is_dns_name(name)) {
		set_err(err, "", "%s: the identifier is not a DNS name",
		    acme_authz_url(a));
		return -1;
	}
	if (!name_within(name, ra->dns_zone)) {
		set_err(err, "", "%s is outside DNS zone %s: cannot publish "
		    "its dns-01 record", name, ra->dns_zone);
		return -1;
	}
	if (acme_authz_dns01_txt(ra->client, a, txt, sizeof(txt), err) == -1 ||
	    txt_update(ra, name, txt, 1, err) == -1)
		return -1;
	if (ra->dns_wait_ms > 0)
		sleep_ms(ra->dns_wait_ms);
	left = deadline - now_ms();
	rc = acme_authz_respond(ra->client, a, "dns-01", err);
	if (rc == 0 && acme_authz_wait(ra->client, a, left > 0 ? (long)left :
	    1, err) == -1) {
		struct acme_error server = *err;

		/* Say which validation failed; keep the server's words. */
		set_err(err, server.type, "dns-01 validation of %s failed%s%s%s: "
		    "%s", name, server.type[0] ? " (" : "", server.type,
		    server.type[0] ? ")" : "", server.detail);
		rc = -1;
	}
	if (txt_update(ra, name, txt, 0, &rmerr) == -1 && rc == 0) {
		*err = rmerr;
		rc = -1;
	}
	return rc;
}

/* ------------------------------------------------------ pre-authorization */

int
ra_acme_preauthorize(struct ra_acme *ra, long timeout_ms, time_t *expires,
    struct acme_error *err)
{
	struct acme_authz	*a;
	long long		 deadline;
	const char		*st;
	int			 rc = -1;

	memset(err, 0, sizeof(*err));
	if (expires != NULL)
		*expires = 0;
	deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
	if (acme_directory(ra->client, err) == -1)
		return -1;
	if (!acme_has_subdomain_auth(ra->client))
		return 0;
	if ((a = acme_authz_new(ra->client, ra->subtree, 1, err)) == NULL)
		return -1;
	st = acme_authz_status(a);
	if (strcmp(st, "pending") == 0) {
		if (solve_dns01(ra, a, deadline, err) == -1)
			goto out;
	} else if (strcmp(st, "valid") != 0) {
		set_err(err, "", "the authorization %s is %s", acme_authz_url(a),
		    st);
		goto out;
	}
	if (expires != NULL)
		*expires = acme_authz_expires(a);
	rc = 1;
out:
	acme_authz_free(a);
	return rc;
}

/* ----------------------------------------------------------------- orders */

int
ra_acme_order_open(struct ra_acme *ra, const char *const *names, size_t n,
    char *url_out, size_t url_len, struct acme_error *err)
{
	struct acme_order	*o;
	size_t			 i;
	int			 rc = -1;

	memset(err, 0, sizeof(*err));
	if (n == 0) {
		set_err(err, "", "an order needs at least one name");
		return -1;
	}
	for (i = 0; i < n; i++)
		if (!is_dns_name(names[i])) {
			set_err(err, "rejectedIdentifier", "\"%.64s\" is not a "
			    "DNS name", names[i]);
			return -1;
		} else if (!name_within(names[i], ra->subtree)) {
			set_err(err, "rejectedIdentifier", "%s is not within "
			    "the subtree %s", names[i], ra->subtree);
			return -1;
		}
	if ((o = acme_order_new(ra->client, names, n, err)) == NULL)
		return -1;
	if (strlen(acme_order_url(o)) >= url_len)
		set_err(err, "", "order URL longer than %zu bytes", url_len);
	else {
		memcpy(url_out, acme_order_url(o), strlen(acme_order_url(o)) + 1);
		rc = 0;
	}
	acme_order_free(o);
	return rc;
}

/* A problem the server will answer the same way next time: a 4xx other
 * than the ones that ask to come back. */
static int
is_final(const struct acme_error *err)
{
	if (err->status < 400 || err->status >= 500)
		return 0;
	return strcmp(err->type, "badNonce") != 0 &&
	    strcmp(err->type, "rateLimited") != 0 &&
	    strcmp(err->type, "orderNotReady") != 0;
}

static int
status_is(const struct acme_order *o, const char *s)
{
	const char *st = acme_order_status(o);

	return st != NULL && strcmp(st, s) == 0;
}

/* Answer every pending authorization of the order by dns-01. */
static int
authorize_pending(struct ra_acme *ra, struct acme_order *o, long long deadline,
    struct acme_error *err)
{
	struct acme_authz	*a;
	size_t			 i;
	int			 rc;

	for (i = 0; i < acme_order_authz_count(o); i++) {
		if (acme_order_authz_url(o, i) == NULL) {
			set_err(err, "", "%s: bad authorization URL",
			    acme_order_url(o));
			return -1;
		}
		if ((a = acme_authz_load(ra->client, acme_order_authz_url(o, i),
		    err)) == NULL)
			return -1;
		rc = strcmp(acme_authz_status(a), "pending") == 0 ?
		    solve_dns01(ra, a, deadline, err) : 0;
		acme_authz_free(a);
		if (rc == -1)
			return -1;
	}
	return 0;
}

static long
wait_of(const struct acme_order *o)
{
	return acme_order_retry_after(o) > 0 ? acme_order_retry_after(o) : 1;
}

int
ra_acme_order_step(struct ra_acme *ra, const char *order_url,
    const unsigned char *csr_der, size_t csr_len, long timeout_ms,
    long *retry_after, char **pem_chain, struct acme_error *err)
{
	struct acme_order	*o;
	long long		 deadline;
	int			 round, rc = -1;

	memset(err, 0, sizeof(*err));
	*retry_after = 0;
	*pem_chain = NULL;
	deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
	if ((o = acme_order_load(ra->client, order_url, err)) == NULL)
		return is_final(err) ? RA_STEP_FAILED : -1;
	/* pending -> ready -> processing/valid: at most one pass each. */
	for (round = 0; round < 4; round++) {
		if (status_is(o, "valid")) {
			rc = acme_order_certificate(ra->client, o, pem_chain,
			    err) == 0 ? RA_STEP_DONE : -1;
			goto out;
		}
		if (status_is(o, "invalid")) {
			acme_order_problem(o, err);
			rc = RA_STEP_FAILED;
			goto out;
		}
		if (status_is(o, "processing")) {
			*retry_after = wait_of(o);
			rc = RA_STEP_WAIT;
			goto out;
		}
		if (status_is(o, "pending")) {
			if (authorize_pending(ra, o, deadline, err) == -1) {
				struct acme_error e2;

				/* A failed validation makes the order invalid:
				 * that is final, the rest is not. */
				if (acme_order_refresh(ra->client, o, &e2) == 0 &&
				    status_is(o, "invalid")) {
					acme_order_problem(o, err);
					rc = RA_STEP_FAILED;
				}
				goto out;
			}
			if (acme_order_refresh(ra->client, o, err) == -1)
				goto out;
			if (status_is(o, "pending")) {
				/* The server has not caught up yet. */
				*retry_after = 1;
				rc = RA_STEP_WAIT;
				goto out;
			}
			continue;
		}
		if (status_is(o, "ready")) {
			if (acme_order_finalize_csr(ra->client, o, csr_der,
			    csr_len, err) == 0)
				continue;
			if (strcmp(err->type, "orderNotReady") == 0 &&
			    acme_order_refresh(ra->client, o, err) == 0)
				continue;	/* finalized by another step */
			if (is_final(err))
				rc = RA_STEP_FAILED;
			goto out;
		}
		set_err(err, "", "order %s has status \"%s\"", order_url,
		    acme_order_status(o) ? acme_order_status(o) : "");
		goto out;
	}
	*retry_after = wait_of(o);
	rc = RA_STEP_WAIT;
out:
	acme_order_free(o);
	return rc;
}
