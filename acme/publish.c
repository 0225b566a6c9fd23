/*
 * publish: the CRL and the root for relying parties (see publish.h).
 * The root comes with iotca-acmed's TLS certificate; the CRL is read from
 * the signer in pages (crlfetch.h) and kept, and a relying party's request
 * asks the signer again only when the copy is older than
 * PUBLISH_CRL_CHECK_MS, so a flood of CRL fetches costs the signer at
 * most one small request a second.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "crlfetch.h"
#include "listener.h"
#include "log.h"
#include "publish.h"

#define PUBLISH_MEMORY_LIMIT	(16 * 1024)	/* per connection: headers */
#define PUBLISH_MAX_DAEMONS	(2 * ACME_MAX_LISTEN)
#define CTYPE_CRL		"application/pkix-crl"
#define CTYPE_CERT		"application/pkix-cert"

struct publish {
	pthread_mutex_t		 lock;
	char			*crl_path;	/* prefix + CONFIG_PUBLISH_CRL_PATH */
	char			*root_path;
	char			*signer_sock;
	/* The root, DER */
	unsigned char		*root_der;
	size_t			 root_len;
	time_t			 root_mtime;	/* its notBefore */
	char			 root_etag[64];
	/* The CRL as last read from the signer (der NULL: none yet) */
	struct crl_copy		 crl;
	char			 crl_etag[64];
	uint64_t		 crl_checked;	/* monotonic ms of the last ask */
	int			 crl_failing;	/* logged that the signer fails */
	struct MHD_Daemon	*d[PUBLISH_MAX_DAEMONS];
	size_t			 nd;
	char			 first[80];
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct publish *
publish_new(const char *publish_url, const char *signer_sock)
{
	struct publish *p;
	const char *path = "";

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	/* http://host[:port][/path]: the validated form (config.h). */
	if (strncmp(publish_url, "http://", 7) == 0 &&
	    (path = strchr(publish_url + 7, '/')) == NULL)
		path = "";
	if (pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p);
		return NULL;
	}
	if (asprintf(&p->crl_path, "%s%s", path, CONFIG_PUBLISH_CRL_PATH) == -1)
		p->crl_path = NULL;
	if (asprintf(&p->root_path, "%s%s", path, CONFIG_PUBLISH_ROOT_PATH) == -1)
		p->root_path = NULL;
	if (p->crl_path == NULL || p->root_path == NULL ||
	    (p->signer_sock = strdup(signer_sock)) == NULL) {
		publish_free(p);
		return NULL;
	}
	return p;
}

void
publish_free(struct publish *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nd; i++)
		MHD_stop_daemon(p->d[i]);
	free(p->crl_path);
	free(p->root_path);
	free(p->signer_sock);
	free(p->root_der);
	crl_copy_clear(&p->crl);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* A strong validator: the first 16 bytes of the SHA-256 of der, quoted. */
static int
digest_etag(const unsigned char *der, size_t len, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	size_t o;

	if (EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < 16 || outlen < 2 * 16 + 3)
		return -1;
	out[0] = '"';
	for (i = 0, o = 1; i < 16; i++, o += 2)
		snprintf(out + o, outlen - o, "%02x", md[i]);
	snprintf(out + o, outlen - o, "\"");
	return 0;
}

int
publish_set_root(struct publish *p, const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = NULL;
	unsigned char *der = NULL, *copy = NULL;
	struct tm tm;
	char etag[64];
	int len = 0, rc = -1;

	if (b == NULL || (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL ||
	    (len = i2d_X509(x, &der)) <= 0 ||
	    ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) != 1 ||
	    digest_etag(der, (size_t)len, etag, sizeof(etag)) == -1 ||
	    (copy = malloc((size_t)len)) == NULL)
		goto out;
	memcpy(copy, der, (size_t)len);
	if (pthread_mutex_lock(&p->lock) != 0)
		goto out;
	free(p->root_der);
	p->root_der = copy;
	copy = NULL;
	p->root_len = (size_t)len;
	p->root_mtime = timegm(&tm);
	snprintf(p->root_etag, sizeof(p->root_etag), "%s", etag);
	pthread_mutex_unlock(&p->lock);
	rc = 0;
out:
	free(copy);
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(b);
	return rc;
}

int
publish_path(const struct publish *p, const char *path)
{
	return p != NULL && path != NULL && (strcmp(path, p->crl_path) == 0 ||
	    strcmp(path, p->root_path) == 0);
}

/* Bring the CRL up to date if it was last asked for long enough ago;
 * with the lock held.  A signer that fails leaves the last copy served:
 * it is signed and says itself until when it is good. */
static void
crl_update(struct publish *p)
{
	struct crl_copy fresh;
	uint64_t now = mono_ms();
	char err[256];
	int rc;

	if (p->crl.der != NULL && now - p->crl_checked < PUBLISH_CRL_CHECK_MS)
		return;
	memset(&fresh, 0, sizeof(fresh));
	rc = crl_fetch(p->signer_sock, PUBLISH_SIGNER_SECS, p->crl.der != NULL ?
	    p->crl.number : -1, &fresh, err, sizeof(err));
	p->crl_checked = mono_ms();
	if (rc == -1) {
		if (!p->crl_failing)
			log_msg(LOG_WARNING, "CRL from the signer: %s", err);
		p->crl_failing = 1;
		return;
	}
	if (p->crl_failing)
		log_msg(LOG_INFO, "CRL from the signer: answered again");
	p->crl_failing = 0;
	if (rc == 1)
		return;
	crl_copy_clear(&p->crl);
	p->crl = fresh;
	snprintf(p->crl_etag, sizeof(p->crl_etag), "\"crl-%ld-%lld\"",
	    p->crl.number, (long long)p->crl.this_update);
}

static void
http_date(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, outlen, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		snprintf(out, outlen, "Thu, 01 Jan 1970 00:00:00 GMT");
}

/* RFC 9110 5.6.7 IMF-fixdate; -1 for anything else (then it is ignored). */
static int
parse_http_date(const char *s, time_t *t)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm)) == NULL ||
	    *end != '\0')
		return -1;
	*t = timegm(&tm);
	return *t == (time_t)-1 ? -1 : 0;
}

/* Does an If-None-Match list name etag (weak comparison, RFC 9110 13.1.2)? */
static int
etag_listed(const char *list, const char *etag)
{
	size_t n, elen = strlen(etag);
	const char *s = list;

	while (*s != '\0') {
		s += strspn(s, " \t,");
		if (*s == '\0')
			break;
		n = strcspn(s, ",");
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 1 && *s == '*')
			return 1;
		if (n > 2 && strncmp(s, "W/", 2) == 0) {
			s += 2;
			n -= 2;
		}
		if (n == elen && strncmp(s, etag, n) == 0)
			return 1;
		s += n;
	}
	return 0;
}

/* RFC 9110 13.2.2: If-None-Match first; If-Modified-Since only without it. */
static int
not_modified(const char *inm, const char *ims, const char *etag, time_t mtime)
{
	time_t t;

	if (inm != NULL)
		return etag_listed(inm, etag);
	if (ims != NULL && parse_http_date(ims, &t) == 0)
		return mtime <= t;
	return 0;
}

static int
set_text(struct pub_answer *a, unsigned int status, const char *text)
{
	if ((a->body = (unsigned char *)strdup(text)) == NULL)
		return -1;
	a->len = strlen(text);
	a->status = status;
	a->ctype = "text/plain; charset=utf-8";
	return 0;
}

int
publish_answer(struct publish *p, const char *method, const char *path,
    const char *inm, const char *ims, struct pub_answer *a)
{
	const unsigned char *obj;
	size_t len;
	time_t mtime;
	int crl = strcmp(path, p->crl_path) == 0;

	memset(a, 0, sizeof(*a));
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		a->allow = "GET, HEAD";
		return set_text(a, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and "
		    "HEAD here\n");
	}
	if (pthread_mutex_lock(&p->lock) != 0)
		return -1;
	if (crl)
		crl_update(p);
	obj = crl ? p->crl.der : p->root_der;
	len = crl ? p->crl.len : p->root_len;
	mtime = crl ? p->crl.this_update : p->root_mtime;
	if (obj == NULL) {
		pthread_mutex_unlock(&p->lock);
		return set_text(a, MHD_HTTP_SERVICE_UNAVAILABLE, crl ?
		    "the CRL cannot be had from the signer now\n" :
		    "the root certificate is not known yet\n");
	}
	snprintf(a->etag, sizeof(a->etag), "%s", crl ? p->crl_etag :
	    p->root_etag);
	http_date(mtime, a->last_modified, sizeof(a->last_modified));
	a->ctype = crl ? CTYPE_CRL : CTYPE_CERT;
	if (not_modified(inm, ims, a->etag, mtime)) {
		a->status = MHD_HTTP_NOT_MODIFIED;
		len = 0;
	} else
		a->status = MHD_HTTP_OK;
	/* One byte more, so an empty body is not NULL. */
	if ((a->body = malloc(len + 1)) != NULL) {
		memcpy(a->body, obj, len);
		a->len = len;
	}
	pthread_mutex_unlock(&p->lock);
	return a->body == NULL ? -1 : 0;
}

void
publish_answer_clear(struct pub_answer *a)
{
	free(a->body);
	memset(a, 0, sizeof(*a));
}

/* ---- the plain HTTP daemon ----------------------------------------------- */

static enum MHD_Result
queue(struct MHD_Connection *conn, struct pub_answer *a)
{
	struct MHD_Response *m;
	enum MHD_Result ret;
	int bad = 0;

	m = MHD_create_response_from_buffer(a->len, a->body,
	    MHD_RESPMEM_MUST_FREE);
	if (m == NULL)
		return MHD_NO;
	a->body = NULL;		/* MHD's now */
	if (a->ctype != NULL)
		bad |= MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE,
		    a->ctype) != MHD_YES;
	if (a->etag[0] != '\0')
		bad |= MHD_add_response_header(m, MHD_HTTP_HEADER_ETAG,
		    a->etag) != MHD_YES ||
		    MHD_add_response_header(m, MHD_HTTP_HEADER_LAST_MODIFIED,
		    a->last_modified) != MHD_YES;
	/* Kept by caches, but asked again each time: a revocation shows. */
	bad |= MHD_add_response_header(m, MHD_HTTP_HEADER_CACHE_CONTROL,
	    a->etag[0] != '\0' ? "no-cache" : "no-store") != MHD_YES;
	if (a->allow != NULL)
		bad |= MHD_add_response_header(m, MHD_HTTP_HEADER_ALLOW,
		    a->allow) != MHD_YES;
	if (bad) {
		MHD_destroy_response(m);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, a->status, m);
	MHD_destroy_response(m);
	return ret;
}

/* Answered at the first call, before any body: there is nothing to upload
 * here, and a body is never read. */
static enum MHD_Result
plain_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct publish *p = cls;
	struct pub_answer a;
	enum MHD_Result ret;

	memset(&a, 0, sizeof(a));
	if (*con_cls != NULL) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	*con_cls = p;
	if (!publish_path(p, url)) {
		if (set_text(&a, MHD_HTTP_NOT_FOUND, "not found: this port "
		    "serves only the CRL and the root certificate\n") == -1)
			return MHD_NO;
	} else if (publish_answer(p, method, url,
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_NONE_MATCH),
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_MODIFIED_SINCE), &a) == -1)
		return MHD_NO;
	ret = queue(conn, &a);
	publish_answer_clear(&a);
	return ret;
}

static void
plain_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_msg(LOG_WARNING, "http: %s", line);
}

static int
start_on(struct publish *p, int fd, char *err, size_t errlen)
{
	struct MHD_Daemon *d;

	if (p->nd == PUBLISH_MAX_DAEMONS) {
		close(fd);
		snprintf(err, errlen, "more than %d HTTP sockets",
		    PUBLISH_MAX_DAEMONS);
		return -1;
	}
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_USE_ERROR_LOG, 0, NULL, NULL, plain_handler, p,
	    MHD_OPTION_EXTERNAL_LOGGER, plain_log, p,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)PUBLISH_THREADS,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)PUBLISH_CONNECTIONS,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)PUBLISH_PER_ADDRESS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)PUBLISH_TIMEOUT,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)PUBLISH_MEMORY_LIMIT,
	    MHD_OPTION_END);
	if (d == NULL) {
		close(fd);
		snprintf(err, errlen, "cannot start the HTTP daemon");
		return -1;
	}
	p->d[p->nd++] = d;
	return 0;
}

int
publish_http_start(struct publish *p, const struct acme_config *cfg,
    const int *fds, size_t nfds, char *err, size_t errlen)
{
	size_t i;
	int fd;

	for (i = 0; i < nfds; i++) {
		if (start_on(p, fds[i], err, errlen) == -1)
			return -1;
		if (p->first[0] == '\0')
			snprintf(p->first, sizeof(p->first), "fd %d", fds[i]);
	}
	for (i = 0; i < cfg->nhttp_listen; i++) {
		if ((fd = listener_bind_address(&cfg->http_listen[i], err,
		    errlen)) == -1 || start_on(p, fd, err, errlen) == -1)
			return -1;
		if (p->first[0] == '\0')
			snprintf(p->first, sizeof(p->first), "%s",
			    cfg->http_listen[i].text);
	}
	return 0;
}

const char *
publish_http_name(const struct publish *p)
{
	return p->first[0] != '\0' ? p->first : NULL;
}
