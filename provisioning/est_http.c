/*
 * est_http: the EST server (see est_http.h).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "est_http.h"
#include "log.h"

/* GnuTLS priorities: TLS 1.2 and 1.3 only. */
#define TLS_PRIORITIES	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define WELL_KNOWN	"/.well-known/est/"

struct est_http {
	struct est_ra		*ra;
	struct MHD_Daemon	*d[EST_MAX_LISTEN];
	int			 fd[EST_MAX_LISTEN];
	size_t			 n;
	char			*key_pem, *chain_pem, *trust_pem;
};

/* One request being read. */
struct est_req {
	char		*body;
	size_t		 len;
	int		 too_large;
};

enum est_op { OP_NONE, OP_CACERTS, OP_CSRATTRS, OP_ENROL, OP_REENROL,
	OP_UNSUPPORTED };

int
est_answer_text(struct est_answer *a, unsigned int status, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	free(a->body);
	a->body = NULL;
	a->status = status;
	a->ctype = "text/plain; charset=utf-8";
	if (n < 0)
		return -1;
	/* The reason and a newline. */
	a->body = s;
	a->len = (size_t)n;
	if ((s = realloc(a->body, a->len + 2)) != NULL) {
		a->body = s;
		a->body[a->len++] = '\n';
		a->body[a->len] = '\0';
	}
	return 0;
}

/* ---- client identity ----------------------------------------------------- */

/* The chain the client sent in the handshake (leaf first), or NULL. */
static STACK_OF(X509) *
peer_chain(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *certs;
	unsigned int n = 0, i;
	STACK_OF(X509) *sk;
	const unsigned char *p;
	X509 *x;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return NULL;
	certs = gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n);
	if (certs == NULL || n == 0 || (sk = sk_X509_new_null()) == NULL)
		return NULL;
	for (i = 0; i < n && i < 10; i++) {
		p = certs[i].data;
		if ((x = d2i_X509(NULL, &p, certs[i].size)) == NULL ||
		    sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			sk_X509_pop_free(sk, X509_free);
			return NULL;
		}
	}
	return sk;
}

static void
subject_text(X509 *x, char *out, size_t outlen)
{
	char buf[256];

	if (X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof(buf)) == NULL)
		snprintf(buf, sizeof(buf), "?");
	snprintf(out, outlen, "%s", buf);
}

static void
peer_addr(struct MHD_Connection *conn, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	char text[INET6_ADDRSTRLEN];
	const void *a = NULL;

	snprintf(out, outlen, "?");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (a != NULL && inet_ntop(sa->sa_family, a, text, sizeof(text)) != NULL)
		snprintf(out, outlen, "%s", text);
}

/* ---- the operations ------------------------------------------------------- */

static int
answer_body(struct est_answer *a, unsigned int status, const char *ctype,
    const char *body, size_t len)
{
	free(a->body);
	a->status = status;
	a->ctype = ctype;
	a->len = len;
	if ((a->body = malloc(len + 1)) == NULL)
		return -1;
	memcpy(a->body, body, len);
	a->body[len] = '\0';
	return 0;
}

static int
op_cacerts(struct est_ra *ra, struct est_answer *a)
{
	return answer_body(a, 200, "application/pkcs7-mime; smime-type=certs-only",
	    ra->cacerts, ra->cacerts_len);
}

static int
op_csrattrs(const char *subtree, struct est_answer *a)
{
	unsigned char *der;
	size_t len, blen;
	char reason[128], *b64;
	int rc;

	if ((der = est_csrattrs_der(subtree, &len, reason, sizeof(reason))) == NULL)
		return est_answer_text(a, 500, "%s", reason);
	b64 = est_b64_encode(der, len, &blen);
	free(der);
	if (b64 == NULL)
		return -1;
	rc = answer_body(a, 200, "application/csrattrs", b64, blen);
	free(b64);
	return rc;
}

/* Who may enrol: 0 and who filled, or an answer made (1). */
static int
authenticate(struct est_ra *ra, struct MHD_Connection *conn,
    STACK_OF(X509) *chain, int require_cert, char *who, size_t wholen,
    struct est_answer *a, char *why, size_t whylen)
{
	const char *authz;
	char reason[256], user[80], subj[256];
	int r;

	if (chain != NULL) {
		if (est_auth_cert(ra->auth, chain, 0, reason, sizeof(reason)) == 0) {
			subject_text(sk_X509_value(chain, 0), subj, sizeof(subj));
			snprintf(who, wholen, "cert=%s", subj);
			return 0;
		}
		if (require_cert) {
			snprintf(why, whylen, "%s", reason);
			est_answer_text(a, 403, "%s", reason);
			return 1;
		}
		/* Not one of ours: HTTP Basic may still do. */
		log_msg(LOG_INFO, "client certificate not accepted (%s); "
		    "trying HTTP Basic", reason);
	} else if (require_cert) {
		snprintf(why, whylen, "no client certificate");
		est_answer_text(a, 403, "a TLS client certificate is required "
		    "here (require_client_cert); HTTP Basic alone is not "
		    "accepted");
		return 1;
	}
	authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if (authz == NULL) {
		snprintf(why, whylen, "no authentication");
		est_answer_text(a, 401, "authentication required: a TLS client "
		    "certificate or HTTP Basic");
		return 1;
	}
	r = est_auth_basic(ra->auth, authz, user, sizeof(user), reason,
	    sizeof(reason));
	if (r == -1) {
		snprintf(why, whylen, "not Basic");
		est_answer_text(a, 401, "only HTTP Basic authentication is "
		    "accepted");
		return 1;
	}
	if (r == 0) {
		snprintf(why, whylen, "user=%s: %s", user, reason);
		est_answer_text(a, 401, "bad user name or password");
		return 1;
	}
	snprintf(who, wholen, "user=%s", user);
	return 0;
}

static void
names_text(const struct est_csr *c, char *out, size_t outlen)
{
	size_t i, used = 0;

	snprintf(out, outlen, "-");
	for (i = 0; i < c->nnames && used < outlen; i++)
		used += (size_t)snprintf(out + used, outlen - used, "%s%s",
		    i > 0 ? "," : "", c->names[i]);
}

/*
 * simpleenroll and simplereenroll: authenticate, read and check the CSR,
 * then enrol.  One log line whatever the outcome.
 */
static int
op_enrol(struct est_ra *ra, struct MHD_Connection *conn, int reenrol,
    const struct est_label *label, const struct est_req *rq,
    struct est_answer *a)
{
	const char *subtree = label != NULL ? label->subtree : ra->cfg.subtree;
	int require = ra->cfg.require_client_cert;
	STACK_OF(X509) *chain = peer_chain(conn);
	struct est_csr csr;
	char who[300] = "-", why[512] = "", reason[512], names[1024] = "-";
	char addr[INET6_ADDRSTRLEN + 1], subj[256];
	int st, rc = 0;

	memset(&csr, 0, sizeof(csr));
	if (label != NULL && label->require_client_cert != -1)
		require = label->require_client_cert;
	peer_addr(conn, addr, sizeof(addr));
	if (reenrol) {
		if (chain == NULL) {
			snprintf(why, sizeof(why), "no client certificate");
			est_answer_text(a, 403, "simplereenroll needs the TLS "
			    "client certificate being renewed");
			goto log;
		}
		if (est_auth_cert(ra->auth, chain, 1, reason, sizeof(reason)) != 0) {
			snprintf(why, sizeof(why), "%s", reason);
			est_answer_text(a, 403, "%s", reason);
			goto log;
		}
		subject_text(sk_X509_value(chain, 0), subj, sizeof(subj));
		snprintf(who, sizeof(who), "cert=%s", subj);
	} else if (authenticate(ra, conn, chain, require, who, sizeof(who), a,
	    why, sizeof(why)) == 1)
		goto log;
	if (rq->too_large) {
		snprintf(why, sizeof(why), "body too large");
		est_answer_text(a, 413, "the request body is larger than %ld "
		    "bytes", ra->cfg.max_body);
		goto log;
	}
	st = est_csr_decode(rq->body != NULL ? rq->body : "", rq->len,
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE), &csr, reason, sizeof(reason));
	if (st == 0)
		st = est_csr_check(&csr, subtree, reason, sizeof(reason));
	if (st == 0 && reenrol)
		st = est_csr_matches_cert(csr.req, sk_X509_value(chain, 0),
		    reason, sizeof(reason));
	if (st != 0) {
		snprintf(why, sizeof(why), "%s", reason);
		est_answer_text(a, (unsigned int)st, "%s", reason);
		goto log;
	}
	names_text(&csr, names, sizeof(names));
	rc = est_enrol(ra, &csr, who, label != NULL ? label->name : "", a);
log:
	if (why[0] == '\0' && a->status >= 400 && a->body != NULL)
		snprintf(why, sizeof(why), "%.*s", (int)strcspn(a->body, "\n"),
		    a->body);
	log_msg(a->status >= 400 ? LOG_NOTICE : LOG_INFO,
	    "%s %s csr=%.8s names=%s -> %u%s%s (from %s)",
	    reenrol ? "reenrol" : "enrol", who,
	    csr.hash[0] != '\0' ? csr.hash : "-", names, a->status,
	    why[0] != '\0' ? ": " : "", why, addr);
	est_csr_clear(&csr);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

/* ---- routing ------------------------------------------------------------------ */

static enum est_op
op_of(const char *name)
{
	if (strcmp(name, "cacerts") == 0)
		return OP_CACERTS;
	if (strcmp(name, "csrattrs") == 0)
		return OP_CSRATTRS;
	if (strcmp(name, "simpleenroll") == 0)
		return OP_ENROL;
	if (strcmp(name, "simplereenroll") == 0)
		return OP_REENROL;
	if (strcmp(name, "serverkeygen") == 0 || strcmp(name, "fullcmc") == 0)
		return OP_UNSUPPORTED;
	return OP_NONE;
}

static int
route(struct est_ra *ra, struct MHD_Connection *conn, const char *url,
    const char *method, const struct est_req *rq, struct est_answer *a,
    const char **allow)
{
	const struct est_label *label = NULL;
	char first[80];
	const char *rest, *slash;
	enum est_op op;
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	int post = strcmp(method, "POST") == 0;

	if (strncmp(url, WELL_KNOWN, strlen(WELL_KNOWN)) != 0)
		return est_answer_text(a, 404, "no such resource; EST is under "
		    "%s", WELL_KNOWN);
	rest = url + strlen(WELL_KNOWN);
	if ((slash = strchr(rest, '/')) != NULL) {
		if ((size_t)(slash - rest) >= sizeof(first) ||
		    strchr(slash + 1, '/') != NULL)
			return est_answer_text(a, 404, "no such resource");
		memcpy(first, rest, (size_t)(slash - rest));
		first[slash - rest] = '\0';
		if ((label = est_config_label(&ra->cfg, first)) == NULL)
			return est_answer_text(a, 404, "no such label: %s", first);
		rest = slash + 1;
	}
	switch ((op = op_of(rest))) {
	case OP_NONE:
		return est_answer_text(a, 404, "no such EST operation");
	case OP_UNSUPPORTED:
		return est_answer_text(a, 501, "/%s is not offered: keys are "
		    "made by the device, and only simple enrolment is "
		    "supported", rest);
	case OP_CACERTS:
	case OP_CSRATTRS:
		if (!get) {
			*allow = "GET, HEAD";
			return est_answer_text(a, 405, "%s is not allowed here "
			    "(GET, HEAD)", method);
		}
		return op == OP_CACERTS ? op_cacerts(ra, a) :
		    op_csrattrs(label != NULL ? label->subtree : ra->cfg.subtree, a);
	case OP_ENROL:
	case OP_REENROL:
		if (!post) {
			*allow = "POST";
			return est_answer_text(a, 405, "%s is not allowed here "
			    "(POST)", method);
		}
		return op_enrol(ra, conn, op == OP_REENROL, label, rq, a);
	}
	return est_answer_text(a, 404, "no such resource");
}

static enum MHD_Result
send_answer(struct MHD_Connection *conn, struct est_answer *a,
    const char *allow)
{
	struct MHD_Response *m;
	enum MHD_Result ret;
	char num[32];
	int rc = 0;

	m = MHD_create_response_from_buffer(a->len, a->body, MHD_RESPMEM_MUST_FREE);
	if (m == NULL)
		return MHD_NO;
	a->body = NULL;		/* MHD's now */
	rc |= MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE,
	    a->ctype) != MHD_YES;
	rc |= MHD_add_response_header(m, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store") != MHD_YES;
	if (strncmp(a->ctype, "application/", 12) == 0)
		rc |= MHD_add_response_header(m, "Content-Transfer-Encoding",
		    "base64") != MHD_YES;
	if (a->retry_after > 0) {
		snprintf(num, sizeof(num), "%d", a->retry_after);
		rc |= MHD_add_response_header(m, MHD_HTTP_HEADER_RETRY_AFTER,
		    num) != MHD_YES;
	}
	if (a->status == 401)
		rc |= MHD_add_response_header(m, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		    "Basic realm=\"EST\", charset=\"UTF-8\"") != MHD_YES;
	if (allow != NULL)
		rc |= MHD_add_response_header(m, MHD_HTTP_HEADER_ALLOW,
		    allow) != MHD_YES;
	if (rc != 0) {
		MHD_destroy_response(m);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, a->status, m);
	MHD_destroy_response(m);
	return ret;
}

static int
declared_length(struct MHD_Connection *conn, unsigned long long *n)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (cl == NULL)
		return 0;
	*n = strtoull(cl, NULL, 10);
	return 1;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct est_http *h = cls;
	struct est_ra *ra = h->ra;
	struct est_req *rq = *con_cls;
	struct est_answer a;
	const char *allow = NULL;
	unsigned long long cl;
	enum MHD_Result ret;
	char *nb;

	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		*con_cls = rq;
		/* Far too large to be worth reading: answer now (MHD then
		 * closes the connection).  A little too large is read and
		 * dropped, so that the client reads the answer. */
		if (!declared_length(conn, &cl) ||
		    cl <= (unsigned long long)ra->cfg.max_body * 4)
			return MHD_YES;
		rq->too_large = 1;
	} else if (*upload_data_size > 0) {
		if (rq->too_large || rq->len + *upload_data_size >
		    (size_t)ra->cfg.max_body) {
			rq->too_large = 1;
			free(rq->body);
			rq->body = NULL;
			rq->len = 0;
		} else {
			if ((nb = realloc(rq->body, rq->len + *upload_data_size + 1)) == NULL)
				return MHD_NO;
			memcpy(nb + rq->len, upload_data, *upload_data_size);
			rq->len += *upload_data_size;
			nb[rq->len] = '\0';
			rq->body = nb;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	memset(&a, 0, sizeof(a));
	if (route(ra, conn, url, method, rq, &a, &allow) == -1 || a.body == NULL) {
		free(a.body);
		memset(&a, 0, sizeof(a));
		if (est_answer_text(&a, 500, "the RA failed; see its log") == -1)
			return MHD_NO;
	}
	ret = send_answer(conn, &a, allow);
	free(a.body);
	return ret;
}

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct est_req *rq = *con_cls;

	if (rq != NULL) {
		free(rq->body);
		free(rq);
	}
	*con_cls = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t len;

	vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	while (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	log_msg(LOG_INFO, "httpd: %s", line);
}

static int
bind_one(const struct est_listen *l, char *err, size_t errlen)
{
	int fd, on = 1;

	if ((fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "%s: socket: %s", l->text, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    (l->addr.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)) {
		snprintf(err, errlen, "%s: setsockopt: %s", l->text,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) == -1 ||
	    listen(fd, 256) == -1) {
		snprintf(err, errlen, "listen %s: %s", l->text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct est_http *
est_http_start(struct est_ra *ra, const char *key_pem, const char *chain_pem,
    const char *trust_pem, char *err, size_t errlen)
{
	struct est_http *h;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_TLS | MHD_USE_ERROR_LOG;
	size_t i;

	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->key_pem = strdup(key_pem)) == NULL ||
	    (h->chain_pem = strdup(chain_pem)) == NULL ||
	    (h->trust_pem = strdup(trust_pem)) == NULL) {
		snprintf(err, errlen, "out of memory");
		est_http_stop(h);
		return NULL;
	}
	h->ra = ra;
	for (i = 0; i < EST_MAX_LISTEN; i++)
		h->fd[i] = -1;
	for (i = 0; i < ra->cfg.nlisten; i++) {
		if ((h->fd[i] = bind_one(&ra->cfg.listen[i], err, errlen)) == -1) {
			est_http_stop(h);
			return NULL;
		}
		h->n = i + 1;
		h->d[i] = MHD_start_daemon(flags, 0, NULL, NULL, handler, h,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd[i],
		    MHD_OPTION_HTTPS_MEM_KEY, h->key_pem,
		    MHD_OPTION_HTTPS_MEM_CERT, h->chain_pem,
		    MHD_OPTION_HTTPS_MEM_TRUST, h->trust_pem,
		    MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)EST_MAX_CONNECTIONS,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)EST_CONN_TIMEOUT,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
		    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		    MHD_OPTION_END);
		if (h->d[i] == NULL) {
			snprintf(err, errlen, "listen %s: cannot start the HTTPS "
			    "server (is the TLS key the certificate's?)",
			    ra->cfg.listen[i].text);
			est_http_stop(h);
			return NULL;
		}
	}
	return h;
}

void
est_http_stop(struct est_http *h)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->n; i++) {
		/* A running daemon closes its listening socket itself. */
		if (h->d[i] != NULL)
			MHD_stop_daemon(h->d[i]);
		else if (h->fd[i] != -1)
			close(h->fd[i]);
	}
	if (h->key_pem != NULL) {
		OPENSSL_cleanse(h->key_pem, strlen(h->key_pem));
		free(h->key_pem);
	}
	free(h->chain_pem);
	free(h->trust_pem);
	free(h);
}
