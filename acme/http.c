/*
 * http: request collection, routing and response sending for iotca-acmed
 * (see http.h).  Every response gets a fresh Replay-Nonce and a Link to the
 * directory, so that clients can always retry after badNonce.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "http.h"
#include "log.h"
#include "nonce.h"
#include "ratelimit.h"
#include "publish.h"
#include "resources.h"
#include "workers.h"

#define M_GET	0x1
#define M_HEAD	0x2
#define M_POST	0x4

/* Which rate limits a route is under ([acme] ratelimit_*). */
enum limit_kind {
	LIM_NONE,
	LIM_NEWACCT,	/* per address */
	LIM_ORDERS,	/* per address and per account */
	LIM_FINALIZE,	/* the same, for .../finalize only */
};

struct route {
	const char	*path;
	int		 prefix;	/* path ends in '/' and an id follows */
	int		 methods;
	const char	*allow;
	enum auth_kind	 auth;
	int		(*fn)(struct req *, struct resp *);
	enum limit_kind	 limit;
};

static const struct route routes[] = {
	{ PATH_DIRECTORY, 0, M_GET | M_HEAD, "GET, HEAD", AUTH_NONE, res_directory, LIM_NONE },
	{ PATH_ROOT, 0, M_GET | M_HEAD, "GET, HEAD", AUTH_NONE, res_root, LIM_NONE },
	{ PATH_NONCE, 0, M_GET | M_HEAD, "GET, HEAD", AUTH_NONE, res_nonce, LIM_NONE },
	{ PATH_NEWACCT, 0, M_POST, "POST", AUTH_JWK, res_new_account, LIM_NEWACCT },
	{ PATH_NEWORDER, 0, M_POST, "POST", AUTH_KID, res_new_order, LIM_ORDERS },
	{ PATH_NEWAUTHZ, 0, M_POST, "POST", AUTH_KID, res_new_authz, LIM_ORDERS },
	{ PATH_REVOKE, 0, M_POST, "POST", AUTH_EITHER, res_revoke, LIM_NONE },
	{ PATH_KEYCHANGE, 0, M_POST, "POST", AUTH_KID, res_key_change, LIM_NONE },
	{ PATH_ARI "/", 1, M_GET | M_HEAD, "GET, HEAD", AUTH_NONE, res_renewal_info, LIM_NONE },
	{ PATH_ACCT "/", 1, M_POST, "POST", AUTH_KID, res_account, LIM_NONE },
	{ PATH_ORDER "/", 1, M_POST, "POST", AUTH_KID, res_order, LIM_FINALIZE },
	{ PATH_AUTHZ "/", 1, M_POST, "POST", AUTH_KID, res_authz, LIM_NONE },
	{ PATH_CHALL "/", 1, M_POST, "POST", AUTH_KID, res_chall, LIM_NONE },
	{ PATH_CERT "/", 1, M_POST, "POST", AUTH_KID, res_cert, LIM_NONE },
};

/* ---- response building ----------------------------------------------------- */

void
rfc3339(time_t t, char out[32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "1970-01-01T00:00:00Z");
}

static int
set_body(struct resp *rs, unsigned int status, const char *ctype, char *body,
    size_t len)
{
	free(rs->body);
	rs->body = body;
	rs->len = len;
	rs->ctype = ctype;
	rs->status = status;
	return 0;
}

int
resp_json(struct resp *rs, unsigned int status, json_t *obj)
{
	char *s;

	if (obj == NULL)
		return -1;
	s = json_dumps(obj, JSON_INDENT(2));
	json_decref(obj);
	if (s == NULL)
		return -1;
	return set_body(rs, status, "application/json", s, strlen(s));
}

int
resp_text(struct resp *rs, unsigned int status, const char *ctype,
    const char *text)
{
	char *s;

	if ((s = strdup(text)) == NULL)
		return -1;
	return set_body(rs, status, ctype, s, strlen(s));
}

json_t *
problem_new(const char *type, const char *detail)
{
	char urn[96];

	snprintf(urn, sizeof(urn), "urn:ietf:params:acme:error:%s", type);
	return json_pack("{s:s, s:s}", "type", urn, "detail", detail);
}

unsigned int
problem_status(const char *type)
{
	static const struct {
		const char	*type;
		unsigned int	 status;
	} map[] = {
		{ "unauthorized", 403 },
		{ "orderNotReady", 403 },
		{ "accountDoesNotExist", 400 },
		{ "rateLimited", 429 },
		{ "serverInternal", 500 },
		{ "alreadyReplaced", 409 },
		{ "unsupportedMediaType", 415 },
	};
	const char *p;
	size_t i;

	if (type == NULL)
		return 400;
	p = strrchr(type, ':') != NULL ? strrchr(type, ':') + 1 : type;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(p, map[i].type) == 0)
			return map[i].status;
	return 400;	/* the rest are the client's fault */
}

int
resp_problem_json(struct resp *rs, unsigned int status, json_t *problem)
{
	char *s;

	if (problem == NULL)
		return -1;
	if (json_object_set_new(problem, "status", json_integer(status)) == -1) {
		json_decref(problem);
		return -1;
	}
	s = json_dumps(problem, JSON_INDENT(2));
	json_decref(problem);
	if (s == NULL)
		return -1;
	return set_body(rs, status, "application/problem+json", s, strlen(s));
}

int
resp_problem(struct resp *rs, unsigned int status, const char *type,
    const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return resp_problem_json(rs, status, problem_new(type, detail));
}

int
resp_location(struct resp *rs, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	free(rs->location);
	rs->location = s;
	return 0;
}

int
resp_link(struct resp *rs, const char *url, const char *rel)
{
	char *s;

	if (rs->nlinks == HTTP_MAX_LINKS)
		return 0;	/* Link headers are hints; more would be a bug */
	if (asprintf(&s, "<%s>;rel=\"%s\"", url, rel) < 0)
		return -1;
	rs->links[rs->nlinks++] = s;
	return 0;
}

char *
url_of(const struct acmed *a, const char *fmt, ...)
{
	char path[1024];
	va_list ap;
	char *s;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (asprintf(&s, "%s%s", a->acme.base_url, path) < 0)
		return NULL;
	return s;
}

static void
resp_clear(struct resp *rs)
{
	size_t i;

	free(rs->body);
	free(rs->location);
	for (i = 0; i < rs->nlinks; i++)
		free(rs->links[i]);
	memset(rs, 0, sizeof(*rs));
}

/* ---- sending ---------------------------------------------------------------- */

static int
add_header(struct MHD_Response *m, const char *name, const char *value)
{
	return MHD_add_response_header(m, name, value) == MHD_YES ? 0 : -1;
}

static int
add_headers(struct acmed *a, struct MHD_Response *m, const struct resp *rs)
{
	char nonce[NONCE_LEN], num[32], *index;
	size_t i;
	int rc = 0;

	if (nonce_make(a->nonces, nonce) == -1)
		return -1;
	if ((index = url_of(a, PATH_DIRECTORY)) == NULL)
		return -1;
	rc |= add_header(m, "Replay-Nonce", nonce);
	rc |= add_header(m, MHD_HTTP_HEADER_CACHE_CONTROL,
	    rs->etag[0] != '\0' ? "no-cache" : "no-store");
	if (rs->etag[0] != '\0') {
		rc |= add_header(m, MHD_HTTP_HEADER_ETAG, rs->etag);
		rc |= add_header(m, MHD_HTTP_HEADER_LAST_MODIFIED,
		    rs->last_modified);
	}
	if (rs->ctype != NULL)
		rc |= add_header(m, MHD_HTTP_HEADER_CONTENT_TYPE, rs->ctype);
	if (rs->location != NULL)
		rc |= add_header(m, MHD_HTTP_HEADER_LOCATION, rs->location);
	for (i = 0; i < rs->nlinks; i++)
		rc |= add_header(m, MHD_HTTP_HEADER_LINK, rs->links[i]);
	{
		char link[600];

		snprintf(link, sizeof(link), "<%s>;rel=\"index\"", index);
		rc |= add_header(m, MHD_HTTP_HEADER_LINK, link);
	}
	if (rs->retry_after > 0) {
		snprintf(num, sizeof(num), "%d", rs->retry_after);
		rc |= add_header(m, MHD_HTTP_HEADER_RETRY_AFTER, num);
	}
	if (rs->allow != NULL)
		rc |= add_header(m, MHD_HTTP_HEADER_ALLOW, rs->allow);
	free(index);
	return rc == 0 ? 0 : -1;
}

static enum MHD_Result
send_resp(struct acmed *a, struct MHD_Connection *conn, struct resp *rs)
{
	struct MHD_Response *m;
	enum MHD_Result ret;

	m = MHD_create_response_from_buffer(rs->len, rs->body,
	    MHD_RESPMEM_MUST_FREE);
	if (m == NULL)
		return MHD_NO;
	rs->body = NULL;	/* MHD owns it now */
	if (add_headers(a, m, rs) == -1) {
		MHD_destroy_response(m);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, rs->status, m);
	MHD_destroy_response(m);
	return ret;
}

/* ---- routing ------------------------------------------------------------------ */

static int
method_bit(const char *method)
{
	if (strcmp(method, MHD_HTTP_METHOD_GET) == 0)
		return M_GET;
	if (strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
		return M_HEAD;
	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
		return M_POST;
	return 0;
}

/* Split "ID" or "ID/REST" after a prefix route into arg and arg2. */
static int
split_args(struct req *r, const char *tail)
{
	const char *slash = strchr(tail, '/');
	size_t n = slash != NULL ? (size_t)(slash - tail) : strlen(tail);

	if (n == 0 || n >= sizeof(r->arg))
		return -1;
	memcpy(r->arg, tail, n);
	r->arg[n] = '\0';
	if (slash != NULL) {
		if (strlen(slash + 1) >= sizeof(r->arg2))
			return -1;
		snprintf(r->arg2, sizeof(r->arg2), "%s", slash + 1);
	}
	return 0;
}

static const struct route *
find_route(struct req *r)
{
	size_t i, n;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		n = strlen(routes[i].path);
		if (!routes[i].prefix && strcmp(r->path, routes[i].path) == 0)
			return &routes[i];
		if (routes[i].prefix && strncmp(r->path, routes[i].path, n) == 0)
			return split_args(r, r->path + n) == 0 ? &routes[i] : NULL;
	}
	return NULL;
}

static int
is_jose(struct MHD_Connection *conn)
{
	const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	size_t n = strlen("application/jose+json");

	/* Parameters (";charset=...") are tolerated, other types are not. */
	return ct != NULL && strncasecmp(ct, "application/jose+json", n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static double
monotonic(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 429 rateLimited with Retry-After (RFC 8555 6.6). */
static int
answer_limited(struct resp *rs, unsigned int retry, const char *what)
{
	rs->retry_after = (int)retry;
	log_msg(LOG_NOTICE, "rate limited: %s; retry after %u s", what, retry);
	return resp_problem(rs, MHD_HTTP_TOO_MANY_REQUESTS, "rateLimited",
	    "too many requests %s; retry after %u seconds", what, retry);
}

static int
limited_kind(const struct route *rt, const struct req *r)
{
	if (rt->limit == LIM_FINALIZE)
		return strcmp(r->arg2, "finalize") == 0 ? LIM_ORDERS : LIM_NONE;
	return rt->limit;
}

/* Per address, before the JWS is even checked: 1 when answered. */
static int
limit_address(struct req *r, const struct route *rt, struct resp *rs)
{
	struct ratelimit *rl;
	unsigned int retry;
	char what[128];

	switch (limited_kind(rt, r)) {
	case LIM_NEWACCT:
		rl = r->a->rl_new_account;
		break;
	case LIM_ORDERS:
		rl = r->a->rl_address;
		break;
	default:
		return 0;
	}
	if (ratelimit_take(rl, r->peer, monotonic(), &retry))
		return 0;
	snprintf(what, sizeof(what), "from %s to %s", r->peer,
	    rt->limit == LIM_NEWACCT ? "newAccount" : "newOrder and finalize");
	return answer_limited(rs, retry, what) == 0 ? 1 : -1;
}

/* Per account, once it is known: 1 when answered. */
static int
limit_account(struct req *r, const struct route *rt, struct resp *rs)
{
	unsigned int retry;
	char what[128];

	if (limited_kind(rt, r) != LIM_ORDERS || !r->have_acct ||
	    ratelimit_take(r->a->rl_account, r->acct.id, monotonic(), &retry))
		return 0;
	snprintf(what, sizeof(what), "of account %s to newOrder and finalize",
	    r->acct.id);
	return answer_limited(rs, retry, what) == 0 ? 1 : -1;
}

/* Route, check and run one request; the response is in rs. */
/* The CRL or the root (publish.h), as over plain HTTP. */
static int
published(struct req *r, struct resp *rs)
{
	struct pub_answer pa;

	if (publish_answer(r->a->pub, r->method, r->path,
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_NONE_MATCH),
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_MODIFIED_SINCE), &pa) == -1)
		return -1;
	set_body(rs, pa.status, pa.ctype, (char *)pa.body, pa.len);
	pa.body = NULL;
	rs->allow = pa.allow;
	snprintf(rs->etag, sizeof(rs->etag), "%s", pa.etag);
	snprintf(rs->last_modified, sizeof(rs->last_modified), "%s",
	    pa.last_modified);
	return 0;
}

static int
dispatch(struct req *r, struct resp *rs)
{
	int rc;
	const struct route *rt;
	int m = method_bit(r->method);

	if (publish_path(r->a->pub, r->path))
		return published(r, rs);
	if ((rt = find_route(r)) == NULL)
		return resp_problem(rs, MHD_HTTP_NOT_FOUND, "malformed",
		    "no such resource");
	if (!(rt->methods & m)) {
		rs->allow = rt->allow;
		return resp_problem(rs, MHD_HTTP_METHOD_NOT_ALLOWED, "malformed",
		    "%s is not allowed here (%s)%s", r->method, rt->allow,
		    rt->methods == M_POST ? "; use POST-as-GET" : "");
	}
	if (r->too_large)
		return resp_problem(rs, MHD_HTTP_CONTENT_TOO_LARGE, "malformed",
		    "request body larger than %d bytes", HTTP_MAX_BODY);
	if (m == M_POST) {
		if (!is_jose(r->conn))
			return resp_problem(rs, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
			    "unsupportedMediaType",
			    "POST bodies must be application/jose+json");
		if ((rc = limit_address(r, rt, rs)) != 0)
			return rc == 1 ? 0 : -1;
		if (auth_request(r, rt->auth, rs) == -1)
			return rs->body != NULL ? 0 : -1;
		if ((rc = limit_account(r, rt, rs)) != 0)
			return rc == 1 ? 0 : -1;
	}
	return rt->fn(r, rs);
}

static void
req_free(struct req *r)
{
	if (r == NULL)
		return;
	free(r->body);
	resp_clear(&r->rs);
	jws_free(r->jws);
	json_decref(r->payload);
	EVP_PKEY_free(r->key);
	acct_clear(&r->acct);
	free(r);
}

/*
 * A body too large to be worth reading: answer 413 at once and let MHD close
 * the connection.  Bodies a little over the limit are read and dropped
 * instead, because closing while the client still sends can reset the
 * connection before it reads the answer.
 */
static int
declared_huge(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);

	return cl != NULL && strtoull(cl, NULL, 10) > HTTP_DRAIN_MAX;
}

static int
append_body(struct req *r, const char *data, size_t n)
{
	char *nb;

	if (r->too_large || r->len + n > HTTP_MAX_BODY) {
		r->too_large = 1;	/* keep reading, answer at the end */
		return 0;
	}
	if ((nb = realloc(r->body, r->len + n + 1)) == NULL)
		return -1;
	memcpy(nb + r->len, data, n);
	r->len += n;
	nb[r->len] = '\0';
	r->body = nb;
	return 0;
}

/*
 * The rate-limit key of the client: its IPv4 address, or the /64 of its
 * IPv6 address (one host may take any address of its /64).
 */
static void
peer_key(struct MHD_Connection *conn, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	struct in6_addr a6;
	char text[INET6_ADDRSTRLEN];

	snprintf(out, outlen, "unknown");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		if (inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    text, sizeof(text)) != NULL)
			snprintf(out, outlen, "%s", text);
		return;
	}
	if (sa->sa_family != AF_INET6)
		return;
	a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		if (inet_ntop(AF_INET, &a6.s6_addr[12], text, sizeof(text)) != NULL)
			snprintf(out, outlen, "%s", text);
		return;
	}
	memset(&a6.s6_addr[8], 0, 8);
	if (inet_ntop(AF_INET6, &a6, text, sizeof(text)) != NULL)
		snprintf(out, outlen, "%s/64", text);
}

/* Run the request; the answer is in r->rs, never empty. */
static void
run_request(struct req *r)
{
	if (dispatch(r, &r->rs) == -1 || r->rs.body == NULL) {
		resp_clear(&r->rs);
		(void)resp_problem(&r->rs, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "serverInternal", "the server failed; see its log");
	}
	r->state = REQ_ANSWERED;
}

/* A worker's job: run it, then hand the connection back to MHD (last: the
 * poll thread may answer and free r at once). */
static void
work(void *arg)
{
	struct req *r = arg;

	run_request(r);
	MHD_resume_connection(r->conn);
}

/*
 * A request is read on MHD's poll thread, then suspended while a worker
 * runs it (JWS checks, the database, the signer), then resumed: MHD calls
 * here once more and the answer is queued.  When the workers take no more
 * jobs (stopping) the request runs here instead.
 */
enum MHD_Result
http_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct acmed *a = cls;
	struct req *r = *con_cls;
	const union MHD_ConnectionInfo *ci;

	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		r->a = a;
		r->conn = conn;
		r->method = method;
		snprintf(r->path, sizeof(r->path), "%s", url);
		if (strlen(url) >= sizeof(r->path))
			r->too_large = 1;
		peer_key(conn, r->peer, sizeof(r->peer));
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
		r->daemon = ci != NULL ? ci->daemon : NULL;
		*con_cls = r;
		if (!declared_huge(conn))
			return MHD_YES;		/* come back with the body */
		r->too_large = 1;
	} else if (*upload_data_size > 0) {
		if (r->state != REQ_READING)
			return MHD_NO;
		if (append_body(r, upload_data, *upload_data_size) == -1)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}

	switch (r->state) {
	case REQ_READING:
		r->state = REQ_WORKING;
		MHD_suspend_connection(conn);
		if (a->workers != NULL &&
		    workers_submit(a->workers, work, r, r->daemon) == 0)
			return MHD_YES;
		run_request(r);
		MHD_resume_connection(conn);
		return MHD_YES;
	case REQ_WORKING:
		return MHD_YES;		/* not ours to answer yet */
	case REQ_ANSWERED:
		break;
	}
	return send_resp(a, conn, &r->rs);
}

void
http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	req_free(*con_cls);
	*con_cls = NULL;
}
