/*
 * fuzz_router: iotca-acmed's request handling, from the HTTP request to the
 * response, through the real libmicrohttpd and acme/http.c's http_handler:
 * routing, body collection and size limits, content type, JWS
 * authentication (auth.c) and the resource handlers (res_*.c) with their
 * payload parsing, on a real SQLite acme.db in a temporary directory.  The
 * signer socket is a path where nothing listens, so every call to the
 * signer fails at once.  Challenge validation is not started (no pool):
 * challenge ids are random and never substituted, so no input names one.
 *
 * One input is one request in this text form:
 *
 *   METHOD\n
 *   PATH\n              "{acct}", "{order}" and "{authz}" become this
 *                       run's account, last order and its first authz
 *   MODE\n              raw: BODY is the HTTP body as is
 *                       jwk: BODY is a payload this harness signs with its
 *                            account key, embedded as "jwk" (newAccount)
 *                       kid: the same with the account URL as "kid"
 *                       (a fresh nonce and the request's url either way)
 *   HEADER: VALUE\n ... zero or more request headers
 *   \n
 *   BODY
 *
 * Content-Length is added unless given.  Beyond "no crash, no leak, no
 * hang", each response made by acmed (it carries Replay-Nonce) is checked:
 * Link rel="index" and Cache-Control present, and every 4xx/5xx answer is
 * an RFC 7807 problem document of an ACME error type whose "status" is the
 * HTTP status.  Answers libmicrohttpd makes on its own (unparsable HTTP)
 * are not acmed's and are only required to be HTTP.
 *
 * FUZZ_ROUTER_VERBOSE=1 in the environment prints each exchange.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/err.h>

#include "acmed.h"
#include "acmedb.h"
#include "http.h"
#include "jws_testutil.h"
#include "keycache.h"
#include "nonce.h"
#include "ratelimit.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_router: invariant failed: %s (line %d)\n", \
	    #cond, __LINE__); abort(); } } while (0)

#define MAX_REQUEST	(96 * 1024)	/* fits a socket buffer: no blocking write */
#define MAX_ROUNDS	64		/* MHD_run turns per request */

static struct {
	struct acmed	 a;
	struct MHD_Daemon *d;
	char		 dir[64];
	char		 conf[128];
	EVP_PKEY	*key;
	char		 acct[ID_LEN];
	char		 order[ID_LEN];
	char		 authz[ID_LEN];
	int		 verbose;
} F;

/*
 * acmed.c (main) defines this; the harness has no root, as acmed before its
 * first certificate.  Weak, so a definition moved into the library wins.
 */
__attribute__((weak)) char *
acmed_root_pem(struct acmed *a)
{
	return NULL;
}

static void
cleanup(void)
{
	char path[256];
	static const char *const files[] = { "iotca.conf", "acme.db",
	    "acme.db-wal", "acme.db-shm" };
	size_t i;

	if (F.d != NULL)
		MHD_stop_daemon(F.d);
	if (F.a.db != NULL)
		acmedb_close(F.a.db);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", F.dir, files[i]);
		(void)unlink(path);
	}
	(void)rmdir(F.dir);
}

static void __attribute__((noreturn))
die(const char *what)
{
	fprintf(stderr, "fuzz_router: %s\n", what);
	exit(1);
}

static void
write_config(void)
{
	const char *tmp = getenv("TMPDIR");
	FILE *f;

	snprintf(F.dir, sizeof(F.dir), "%s/fuzz-router.XXXXXX",
	    tmp != NULL && strlen(tmp) < 40 ? tmp : "/tmp");
	if (mkdtemp(F.dir) == NULL)
		die("mkdtemp failed");
	snprintf(F.conf, sizeof(F.conf), "%s/iotca.conf", F.dir);
	if ((f = fopen(F.conf, "w")) == NULL)
		die("cannot write config");
	fprintf(f, "[ca]\nname = iotca\ndomains = home.arpa\n"
	    "root_cert = %s/root.pem\n"
	    "[key]\nstore = file\npath = %s/root.key\n"
	    "[signer]\ndb = %s/signer.db\nsocket = %s/signer.sock\n"
	    "admin_socket = %s/admin.sock\n"
	    "[acme]\nlisten = 127.0.0.1:8443\ndb = %s/acme.db\n",
	    F.dir, F.dir, F.dir, F.dir, F.dir, F.dir);
	if (fclose(f) != 0)
		die("cannot write config");
}

/* libmicrohttpd's complaints (TCP options on a socketpair) are noise. */
static void __attribute__((format(printf, 2, 0)))
mhd_log(void *cls, const char *fmt, va_list ap)
{
	if (F.verbose)
		vfprintf(stderr, fmt, ap);
}

/* As iotca-acmed's main does, without listener, TLS or validation pool. */
static void
setup_acmed(void)
{
	static const struct ratelimit_rule no_limit = { 0, 0 };
	struct acmed *a = &F.a;
	char err[512];
	size_t i;

	write_config();
	if (config_load(F.conf, &a->ca, err, sizeof(err)) == -1 ||
	    acme_config_load(F.conf, &a->acme, err, sizeof(err)) == -1)
		die(err);
	for (i = 0; i < a->ca.ndomains; i++)
		a->domains[i] = a->ca.domains[i];
	a->policy.server_name = a->ca.name;
	a->policy.domains = a->domains;
	a->policy.ndomains = a->ca.ndomains;
	a->policy.strict_cn = a->ca.strict_cn;
	a->policy.max_days = a->ca.max_days;
	if (pthread_mutex_init(&a->root_lock, NULL) != 0)
		die("mutex");
	if ((a->keys = keycache_new()) == NULL ||
	    (a->nonces = nonces_new()) == NULL)
		die("out of memory");
	if (acmedb_open(a->acme.db, &a->db, err, sizeof(err)) == -1)
		die(err);
	a->vpool = NULL;	/* no challenge can be named: ids are random */
	a->workers = NULL;	/* requests run inline: deterministic */
	/* No rate limits: the same input must meet the same answer. */
	if ((a->rl_new_account = ratelimit_new(&no_limit, 64)) == NULL ||
	    (a->rl_address = ratelimit_new(&no_limit, 64)) == NULL ||
	    (a->rl_account = ratelimit_new(&no_limit, 64)) == NULL)
		die("out of memory");
	F.d = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG |
	    MHD_ALLOW_SUSPEND_RESUME,
	    0, NULL, NULL, http_handler, a,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, http_completed, NULL,
	    /* MHD's default; the listener's 128 KiB only moves where MHD
	     * itself refuses long headers, and costs an mmap per request
	     * under ASan (5 times slower). */
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
	    MHD_OPTION_END);
	if (F.d == NULL)
		die("MHD_start_daemon failed");
}

/* ---- one exchange -------------------------------------------------------- */

struct buf {
	char	*p;
	size_t	 len, cap;
};

static void
buf_add(struct buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
			abort();
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static size_t
connections(void)
{
	const union MHD_DaemonInfo *i;

	i = MHD_get_daemon_info(F.d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return i != NULL ? i->num_connections : 0;
}

/* Send req on a fresh connection and collect what comes back until MHD
 * closes it (Connection: close) or stops making progress. */
static void
exchange(const char *req, size_t len, struct buf *out)
{
	struct sockaddr_in sin;
	char chunk[16384];
	int sv[2], round, idle = 0;
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		die("socketpair");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(40000);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (MHD_add_connection(F.d, sv[1], (struct sockaddr *)&sin,
	    sizeof(sin)) != MHD_YES)
		die("MHD_add_connection failed");
	if (len > 0 && write(sv[0], req, len) != (ssize_t)len)
		die("short write to the connection");
	for (round = 0; round < MAX_ROUNDS && idle < 4; round++) {
		if (MHD_run(F.d) != MHD_YES)
			die("MHD_run failed");
		n = recv(sv[0], chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n == 0)
			break;			/* answered and closed */
		if (n > 0) {
			buf_add(out, chunk, (size_t)n);
			idle = 0;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK)
			idle++;
		else
			break;			/* reset: closed by MHD */
	}
	close(sv[0]);
	for (round = 0; round < MAX_ROUNDS && connections() > 0; round++)
		(void)MHD_run(F.d);
	CHECK(connections() == 0);
}

/* ---- checks on the response ---------------------------------------------- */

static const char *
header(const char *head, size_t headlen, const char *name, size_t *vlen)
{
	size_t n = strlen(name);
	const char *p = head, *end = head + headlen, *eol;

	while (p < end && (eol = memmem(p, (size_t)(end - p), "\r\n", 2)) != NULL) {
		if ((size_t)(eol - p) > n + 1 && strncasecmp(p, name, n) == 0 &&
		    p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			*vlen = (size_t)(eol - p);
			return p;
		}
		p = eol + 2;
	}
	return NULL;
}

static void
remember_location(const char *head, size_t headlen)
{
	const char *v, *id;
	size_t vlen, n;
	char loc[512];

	if ((v = header(head, headlen, "Location", &vlen)) == NULL ||
	    vlen >= sizeof(loc))
		return;
	memcpy(loc, v, vlen);
	loc[vlen] = '\0';
	if ((id = strstr(loc, PATH_ACCT "/")) != NULL) {
		id += strlen(PATH_ACCT "/");
		if ((n = strlen(id)) > 0 && n < ID_LEN)
			memcpy(F.acct, id, n + 1);
	} else if ((id = strstr(loc, PATH_ORDER "/")) != NULL) {
		id += strlen(PATH_ORDER "/");
		if ((n = strlen(id)) > 0 && n < ID_LEN)
			memcpy(F.order, id, n + 1);
	}
}

/* The first authorization of an order in the body, for {authz}. */
static void
remember_authz(const char *body, size_t len)
{
	const char *url, *id;
	json_t *doc;
	size_t n;

	if ((doc = json_loadb(body, len, 0, NULL)) == NULL)
		return;
	url = json_string_value(json_array_get(json_object_get(doc,
	    "authorizations"), 0));
	if (url != NULL && (id = strstr(url, PATH_AUTHZ "/")) != NULL) {
		id += strlen(PATH_AUTHZ "/");
		if ((n = strlen(id)) > 0 && n < ID_LEN)
			memcpy(F.authz, id, n + 1);
	}
	json_decref(doc);
}

static void
check_response(const struct buf *rsp, int head_only)
{
	const char *end, *body, *ct;
	size_t headlen, bodylen, ctlen, vlen;
	json_t *doc;
	int status;
	const char *type;

	if (rsp->len == 0)
		return;		/* incomplete request: closed without answer */
	CHECK(rsp->len > 12 && strncmp(rsp->p, "HTTP/1.", 7) == 0);
	status = atoi(rsp->p + 9);
	CHECK(status >= 100 && status <= 599);
	CHECK((end = strstr(rsp->p, "\r\n\r\n")) != NULL);
	headlen = (size_t)(end - rsp->p) + 2;
	body = end + 4;
	bodylen = rsp->len - (size_t)(body - rsp->p);
	/*
	 * Only the first response is acmed's: a request libmicrohttpd reads
	 * as more than one (an obsolete folded header line that swallows
	 * "Connection: close", then a second "request") gets its own answer
	 * after it on the same connection.
	 */
	if ((ct = header(rsp->p, headlen, "Content-Length", &ctlen)) != NULL &&
	    (size_t)atol(ct) < bodylen)
		bodylen = (size_t)atol(ct);
	if (header(rsp->p, headlen, "Replay-Nonce", &vlen) == NULL)
		return;		/* libmicrohttpd's own answer */
	CHECK(vlen == NONCE_LEN - 1);
	CHECK(header(rsp->p, headlen, "Cache-Control", &vlen) != NULL);
	CHECK(header(rsp->p, headlen, "Link", &vlen) != NULL);
	remember_location(rsp->p, headlen);
	if (status < 400 && !head_only)
		remember_authz(body, bodylen);
	if (status < 400 || head_only)
		return;
	CHECK((ct = header(rsp->p, headlen, "Content-Type", &ctlen)) != NULL);
	CHECK(ctlen == strlen("application/problem+json") &&
	    strncmp(ct, "application/problem+json", ctlen) == 0);
	CHECK((doc = json_loadb(body, bodylen, 0, NULL)) != NULL);
	CHECK(json_integer_value(json_object_get(doc, "status")) == status);
	type = json_string_value(json_object_get(doc, "type"));
	CHECK(type != NULL &&
	    strncmp(type, "urn:ietf:params:acme:error:", 27) == 0);
	CHECK(json_is_string(json_object_get(doc, "detail")));
	json_decref(doc);
}

/* ---- building the request ------------------------------------------------ */

/* The next line of the input (without \n, \r), advancing *p. */
static size_t
next_line(const char **p, const char *end, const char **line)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n;

	*line = *p;
	n = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
	*p = nl != NULL ? nl + 1 : end;
	while (n > 0 && (*line)[n - 1] == '\r')
		n--;
	return n;
}

/* PATH with {acct}, {order} and {authz} replaced. */
static void
expand_path(const char *path, size_t n, struct buf *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (n - i >= 6 && memcmp(path + i, "{acct}", 6) == 0) {
			buf_str(out, F.acct);
			i += 5;
		} else if (n - i >= 7 && memcmp(path + i, "{order}", 7) == 0) {
			buf_str(out, F.order);
			i += 6;
		} else if (n - i >= 7 && memcmp(path + i, "{authz}", 7) == 0) {
			buf_str(out, F.authz);
			i += 6;
		} else
			buf_add(out, path + i, 1);
	}
}

/* The JWS body for payload (NUL-free text), signed by the harness key. */
static char *
signed_body(const char *path, int kid, const char *payload)
{
	char nonce[NONCE_LEN], *url, *acct = NULL, *body;

	if (nonce_make(F.a.nonces, nonce) == -1)
		die("nonce_make failed");
	if (asprintf(&url, "%s%s", F.a.acme.base_url, path) < 0)
		die("out of memory");
	if (kid && asprintf(&acct, "%s" PATH_ACCT "/%s", F.a.acme.base_url,
	    F.acct) < 0)
		die("out of memory");
	body = jws_test_sign(F.key, NULL, nonce, url, acct, payload);
	free(url);
	free(acct);
	return body;
}

static void
one_request(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *line;
	const char *method, *mode;
	size_t mlen, plen, modelen, n;
	struct buf req = { 0 }, path = { 0 }, rsp = { 0 };
	char *payload = NULL, *body = NULL, num[32];
	int has_cl = 0, head_only;
	size_t bodylen;
	const char *pathp;

	mlen = next_line(&p, end, &method);
	plen = next_line(&p, end, &pathp);
	modelen = next_line(&p, end, &mode);
	if (mlen == 0) {
		method = "GET";
		mlen = 3;
	}
	expand_path(pathp, plen, &path);
	if (path.len == 0)
		buf_str(&path, "/");
	/*
	 * The server reads the method up to the first space or tab, so
	 * "HEAD x" is a HEAD request with the rest taken as the target.
	 */
	head_only = mlen >= 4 && memcmp(method, "HEAD", 4) == 0 &&
	    (mlen == 4 || method[4] == ' ' || method[4] == '\t');

	buf_add(&req, method, mlen);
	buf_str(&req, " ");
	buf_add(&req, path.p, path.len);
	buf_str(&req, " HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nConnection: close\r\n");
	while (p < end) {
		n = next_line(&p, end, &line);
		if (n == 0)
			break;
		if (n >= 15 && strncasecmp(line, "Content-Length:", 15) == 0)
			has_cl = 1;
		buf_add(&req, line, n);
		buf_str(&req, "\r\n");
	}
	bodylen = (size_t)(end - p);
	if ((modelen == 3 && memcmp(mode, "jwk", 3) == 0) ||
	    (modelen == 3 && memcmp(mode, "kid", 3) == 0)) {
		if ((payload = strndup(p, bodylen)) == NULL)
			die("out of memory");
		body = signed_body(path.p, mode[0] == 'k', payload);
		if (body == NULL)
			goto out;	/* not text the signer can take */
		p = body;
		bodylen = strlen(body);
	}
	if (!has_cl) {
		snprintf(num, sizeof(num), "Content-Length: %zu\r\n", bodylen);
		buf_str(&req, num);
	}
	buf_str(&req, "\r\n");
	buf_add(&req, p, bodylen);
	if (req.len > MAX_REQUEST)
		goto out;

	exchange(req.p, req.len, &rsp);
	if (F.verbose)
		fprintf(stderr, "---- request\n%s\n---- response\n%s\n", req.p,
		    rsp.p != NULL ? rsp.p : "(none)");
	check_response(&rsp, head_only);
out:
	free(payload);
	free(body);
	free(req.p);
	free(path.p);
	free(rsp.p);
}

/* The harness's account: made once, through the router itself. */
static void
make_account(void)
{
	static const char req[] = "POST\n" PATH_NEWACCT "\njwk\n"
	    "Content-Type: application/jose+json\n\n"
	    "{\"termsOfServiceAgreed\":true}";

	one_request((const uint8_t *)req, sizeof(req) - 1);
	if (F.acct[0] == '\0')
		die("could not make the harness account");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *v = getenv("FUZZ_ROUTER_VERBOSE");

	F.verbose = v != NULL && strcmp(v, "1") == 0;
	setup_acmed();
	if (atexit(cleanup) != 0)
		die("atexit");
	/* A throwaway key made per run: nothing secret is kept anywhere. */
	if ((F.key = jws_test_key("Ed25519")) == NULL)
		die("cannot make the harness key");
	make_account();
	snprintf(F.order, sizeof(F.order), "none");
	snprintf(F.authz, sizeof(F.authz), "none");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one_request(data, size);
	/* The input may have deactivated the account: put it back. */
	if (acct_set_status(F.a.db, F.acct, "valid") != 0)
		die("cannot reset the harness account");
	ERR_clear_error();
	return 0;
}
