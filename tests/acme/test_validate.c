/*
 * acme/validate.c against real servers on loopback: a small HTTP server and
 * a TLS server run as threads here; dnsmasq is started by validate.sh, which
 * passes its port in IOTCA_TEST_DNS_PORT.  Nothing talks beyond loopback:
 * the public addresses below (8.8.8.8) must be refused before any connect.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "validate.h"

#define KA		"tok-ok.thumbprint_0123456789abcdefghijklmnopqrstuvwxyzABCDEF"
/* Must match validate.sh, which publishes base64url(SHA-256(KA_DNS)). */
#define KA_DNS		"dnstoken.thumbprint-dns"
#define MAX_ROUTES	16

/* ------------------------------------------------------------ HTTP server */

struct route {
	char		 path[128];
	int		 status;
	char		*body;		/* owned */
	char		 location[256];
};

struct httpd {
	int		 lfd, port, stop[2];
	pthread_t	 tid;
	struct route	 routes[MAX_ROUTES];
	size_t		 nroutes;
	pthread_mutex_t	 mtx;
	char		 last_host[256];
	int		 hits;
};

/* Bind addr on a free port; the thread starts later, once routes are set. */
static void
httpd_bind(struct httpd *h, const char *addr)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 one = 1;

	memset(h, 0, sizeof(*h));
	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
		len = sizeof(*s4);
	}
	h->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(h->lfd >= 0);
	assert_int_equal(setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)), 0);
	assert_int_equal(bind(h->lfd, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(listen(h->lfd, 64), 0);
	assert_int_equal(getsockname(h->lfd, (struct sockaddr *)&ss, &len), 0);
	h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	assert_int_equal(pipe(h->stop), 0);
	assert_int_equal(pthread_mutex_init(&h->mtx, NULL), 0);
}

static void
httpd_route(struct httpd *h, const char *path, int status, const char *body,
    const char *location)
{
	struct route	*r;

	assert_true(h->nroutes < MAX_ROUTES);
	r = &h->routes[h->nroutes++];
	snprintf(r->path, sizeof(r->path), "/.well-known/acme-challenge/%s", path);
	r->status = status;
	r->body = strdup(body);
	assert_non_null(r->body);
	snprintf(r->location, sizeof(r->location), "%s", location ? location : "");
}

static void
httpd_serve_one(struct httpd *h, int fd)
{
	struct timeval	 tv = { 2, 0 };
	char		 req[4096], resp[512], path[256] = "", *host, *eol;
	const struct route *r = NULL;
	size_t		 got = 0, i;
	ssize_t		 n;
	int		 hl;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < sizeof(req) - 1) {
		if ((n = read(fd, req + got, sizeof(req) - 1 - got)) <= 0)
			return;
		got += n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL)
			break;
	}
	if (sscanf(req, "GET %255s HTTP/1.1", path) != 1)
		return;
	pthread_mutex_lock(&h->mtx);
	h->hits++;
	h->last_host[0] = '\0';
	if ((host = strcasestr(req, "\r\nHost: ")) != NULL) {
		host += 8;
		if ((eol = strstr(host, "\r\n")) != NULL)
			snprintf(h->last_host, sizeof(h->last_host), "%.*s",
			    (int)(eol - host), host);
	}
	pthread_mutex_unlock(&h->mtx);
	for (i = 0; i < h->nroutes; i++)
		if (strcmp(h->routes[i].path, path) == 0)
			r = &h->routes[i];
	hl = snprintf(resp, sizeof(resp), "HTTP/1.1 %d Test\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s%s%s\r\n",
	    r ? r->status : 404, r ? strlen(r->body) : 9,
	    r && r->location[0] ? "Location: " : "",
	    r ? r->location : "", r && r->location[0] ? "\r\n" : "");
	if (write(fd, resp, hl) != hl)
		return;
	if (r != NULL)
		(void)!write(fd, r->body, strlen(r->body));
	else
		(void)!write(fd, "not found", 9);
}

static void *
httpd_run(void *arg)
{
	struct httpd	*h = arg;
	struct pollfd	 pfd[2];
	int		 fd;

	pfd[0].fd = h->lfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = h->stop[0];
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) == -1 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		if ((fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		httpd_serve_one(h, fd);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	return NULL;
}

static void
httpd_start(struct httpd *h)
{
	assert_int_equal(pthread_create(&h->tid, NULL, httpd_run, h), 0);
}

static void
httpd_stop(struct httpd *h)
{
	size_t	 i;

	(void)!write(h->stop[1], "x", 1);
	pthread_join(h->tid, NULL);
	close(h->lfd);
	close(h->stop[0]);
	close(h->stop[1]);
	for (i = 0; i < h->nroutes; i++)
		free(h->routes[i].body);
	pthread_mutex_destroy(&h->mtx);
}

/* ------------------------------------------------------------ test state */

struct env {
	struct httpd	 h4, h2, h6;	/* 127.0.0.1, 127.0.0.2, ::1 */
	int		 refused_fd, refused_port;	/* bound, not listening */
	int		 silent_fd, silent_port;	/* listening, never accepts */
	char		 hosts[64];
	struct validate_config cfg;
};

static long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
bound_socket(int do_listen, int *port)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, len), 0);
	if (do_listen)
		assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static int
setup(void **state)
{
	struct env	*e;
	char		 loc[256], big[10001];
	FILE		*f;
	int		 fd;

	e = calloc(1, sizeof(*e));
	assert_non_null(e);
	httpd_bind(&e->h4, "127.0.0.1");
	httpd_bind(&e->h2, "127.0.0.2");
	httpd_bind(&e->h6, "::1");
	e->refused_fd = bound_socket(0, &e->refused_port);
	e->silent_fd = bound_socket(1, &e->silent_port);

	httpd_route(&e->h4, "tok-ok", 200, KA, NULL);
	httpd_route(&e->h4, "tok-ws", 200, KA "\r\n \t\n", NULL);
	httpd_route(&e->h4, "tok-lead", 200, " " KA, NULL);
	httpd_route(&e->h4, "tok-wrong", 200, "not-it\x01\xff", NULL);
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	httpd_route(&e->h4, "tok-big", 200, big, NULL);
	httpd_route(&e->h4, "tok-500", 500, KA, NULL);
	snprintf(loc, sizeof(loc), "http://dev2.home.arpa:%d/.well-known/"
	    "acme-challenge/tok-ok", e->h2.port);
	httpd_route(&e->h4, "tok-redir", 302, "", loc);
	httpd_route(&e->h4, "tok-rel", 301, "", "/.well-known/acme-challenge/tok-ok");
	httpd_route(&e->h4, "tok-pub", 302, "",
	    "http://8.8.8.8/.well-known/acme-challenge/tok-ok");
	httpd_route(&e->h4, "tok-pubname", 302, "",
	    "http://public.home.arpa/.well-known/acme-challenge/tok-ok");
	httpd_route(&e->h4, "tok-loop", 302, "", "/.well-known/acme-challenge/tok-loop");
	httpd_route(&e->h4, "tok-ftp", 302, "",
	    "ftp://127.0.0.1/.well-known/acme-challenge/tok-ok");
	snprintf(loc, sizeof(loc), "http://[::1]:%d/.well-known/"
	    "acme-challenge/tok-ok", e->h6.port);
	httpd_route(&e->h4, "tok-to6", 307, "", loc);
	httpd_route(&e->h2, "tok-ok", 200, KA "\n", NULL);
	httpd_route(&e->h6, "tok-ok", 200, KA, NULL);
	httpd_start(&e->h4);
	httpd_start(&e->h2);
	httpd_start(&e->h6);

	/*
	 * dev1 lists ::1 first, where nothing serves the http-01 port: the
	 * validator has to move on to 127.0.0.1.
	 */
	snprintf(e->hosts, sizeof(e->hosts), "/tmp/iotca-validate-hosts.XXXXXX");
	fd = mkstemp(e->hosts);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "# test hosts file\n"
	    "::1 dev1.home.arpa   # comment\n"
	    "127.0.0.1\tdev1.home.arpa alias.home.arpa\n"
	    "127.0.0.2 dev2.home.arpa\n"
	    "::1 v6.home.arpa\n"
	    "8.8.8.8 public.home.arpa\n"
	    "8.8.8.8 mixed.home.arpa\n"
	    "127.0.0.1 mixed.home.arpa\n"
	    "\n#127.0.0.1 commented.home.arpa\n");
	assert_int_equal(fclose(f), 0);

	e->cfg.http01_port = e->h4.port;
	e->cfg.hosts_file = e->hosts;
	e->cfg.timeout_ms = 3000;
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct env	*e = *state;

	httpd_stop(&e->h4);
	httpd_stop(&e->h2);
	httpd_stop(&e->h6);
	close(e->refused_fd);
	close(e->silent_fd);
	unlink(e->hosts);
	free(e);
	return 0;
}

static void
expect_ok(const struct validate_result *r)
{
	if (!r->ok)
		print_error("problem %s: %s\n", r->problem, r->detail);
	assert_true(r->ok);
	assert_string_equal(r->problem, "");
}

static void
expect_problem(const struct validate_result *r, const char *type,
    const char *in_detail)
{
	print_message("  -> %s: %s\n", r->problem, r->detail);
	assert_false(r->ok);
	assert_string_equal(r->problem, type);
	if (in_detail != NULL)
		assert_non_null(strstr(r->detail, in_detail));
	assert_null(strchr(r->detail, '\n'));
}

static void
http(const struct env *e, enum ident_type it, const char *ident,
    const char *token, struct validate_result *r)
{
	validate_challenge(&e->cfg, VALIDATE_HTTP01, it, ident, token, KA, r);
}

/* ---------------------------------------------------------------- http-01 */

static void
test_http_ok(void **state)
{
	struct env		*e = *state;
	struct validate_result	 r;

	http(e, IDENT_DNS, "dev1.home.arpa", "tok-ok", &r);
	expect_ok(&r);
	/* Host names the identifier (with the port, as HTTP wants off 80). */
	pthread_mutex_lock(&e->h4.mtx);
	assert_non_null(strstr(e->h4.last_host, "dev1.home.arpa:"));
	assert_int_equal(strncmp(e->h4.last_host, "dev1.home.arpa", 14), 0);
	pthread_mutex_unlock(&e->h4.mtx);
}

static void
test_http_trailing_whitespace_ok(void **state)
{
	struct validate_result	 r;

	http(*state, IDENT_DNS, "alias.home.arpa", "tok-ws", &r);
	expect_ok(&r);
}

static void
test_http_leading_whitespace(void **state)
{
	struct validate_result	 r;

	http(*state, IDENT_DNS, "dev1.home.arpa", "tok-lead", &r);
	expect_problem(&r, "incorrectResponse", "expected \"" KA);
}

static void
test_http_wrong_body(void **state)
{
	struct validate_result	 r;

	http(*state, IDENT_DNS, "dev1.home.arpa", "tok-wrong", &r);
	/* Reported from the address that answered, not the refused ::1. */
	expect_problem(&r, "incorrectResponse", "got \"not-it\\x01\\xff\"");
}

/*
 * Not 200 is incorrectResponse: the host answered, only not with the proof.
 * ("unauthorized" is kept for the address policy.)
 */
static void
test_http_404(void **state)
{
	struct validate_result	 r;

	http(*state, IDENT_DNS, "dev1.home.arpa", "tok-missing", &r);
	expect_problem(&r, "incorrectResponse", "got status 404");
}

static void
test_http_500(void **state)
{
	struct validate_result	 r;

	http(*state, IDENT_DNS, "dev1.home.arpa", "tok-500", &r);
	expect_problem(&r, "incorrectResponse", "got status 500");
}

static void
test_http_body_too_large(void **state)
{
	struct validate_result	 r;

	http(*state, IDENT_DNS, "dev1.home.arpa", "tok-big", &r);
	expect_problem(&r, "incorrectResponse", "8192");
}

static void
test_http_refused(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;

	e.cfg.http01_port = e.refused_port;
	http(&e, IDENT_DNS, "dev2.home.arpa", "tok-ok", &r);
	expect_problem(&r, "connection", "127.0.0.2");
}

static void
test_http_timeout(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;
	long			 t0 = now_ms();

	e.cfg.http01_port = e.silent_port;
	e.cfg.timeout_ms = 500;
	http(&e, IDENT_IP, "127.0.0.1", "tok-ok", &r);
	expect_problem(&r, "connection", NULL);
	assert_true(now_ms() - t0 < 3000);
}

static void
test_http_redirect_allowed(void **state)
{
	struct env		*e = *state;
	struct validate_result	 r;
	int			 before;

	pthread_mutex_lock(&e->h2.mtx);
	before = e->h2.hits;
	pthread_mutex_unlock(&e->h2.mtx);
	/* To dev2.home.arpa, which only the hosts file knows (127.0.0.2). */
	http(e, IDENT_DNS, "dev1.home.arpa", "tok-redir", &r);
	expect_ok(&r);
	pthread_mutex_lock(&e->h2.mtx);
	assert_int_equal(e->h2.hits, before + 1);
	assert_int_equal(strncmp(e->h2.last_host, "dev2.home.arpa", 14), 0);
	pthread_mutex_unlock(&e->h2.mtx);
}

static void
test_http_redirect_relative(void **state)
{
	struct validate_result	 r;

	http(*state, IDENT_DNS, "dev1.home.arpa", "tok-rel", &r);
	expect_ok(&r);
}

static void
test_http_redirect_to_ipv6(void **state)
{
	struct validate_result	 r;

	http(*state, IDENT_IP, "127.0.0.1", "tok-to6", &r);
	expect_ok(&r);
}

/*
 * The policy check comes before connect: with a long timeout a connect
 * attempt to a public address would either hang or fail as "connection";
 * being refused as "unauthorized" at once shows no connect was tried.
 */
static void
test_http_redirect_public_addr(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;
	long			 t0 = now_ms();

	e.cfg.timeout_ms = 20000;
	http(&e, IDENT_DNS, "dev1.home.arpa", "tok-pub", &r);
	expect_problem(&r, "unauthorized", "8.8.8.8");
	assert_true(now_ms() - t0 < 1000);
}

static void
test_http_redirect_public_name(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;
	long			 t0 = now_ms();

	e.cfg.timeout_ms = 20000;
	http(&e, IDENT_DNS, "dev1.home.arpa", "tok-pubname", &r);
	expect_problem(&r, "unauthorized", "public.home.arpa");
	assert_non_null(strstr(r.detail, "8.8.8.8"));
	assert_true(now_ms() - t0 < 1000);
}

static void
test_http_redirect_loop(void **state)
{
	struct env		*e = *state;
	struct validate_result	 r;
	int			 before;

	pthread_mutex_lock(&e->h4.mtx);
	before = e->h4.hits;
	pthread_mutex_unlock(&e->h4.mtx);
	http(e, IDENT_IP, "127.0.0.1", "tok-loop", &r);
	expect_problem(&r, "connection", "more than 10 redirects");
	pthread_mutex_lock(&e->h4.mtx);
	assert_int_equal(e->h4.hits - before, 11);	/* the first + 10 */
	pthread_mutex_unlock(&e->h4.mtx);
}

static void
test_http_redirect_ftp(void **state)
{
	struct validate_result	 r;

	http(*state, IDENT_IP, "127.0.0.1", "tok-ftp", &r);
	expect_problem(&r, "unauthorized", "only http and https");
}

static void
test_http_hosts_public(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;
	long			 t0 = now_ms();

	e.cfg.timeout_ms = 20000;
	http(&e, IDENT_DNS, "public.home.arpa", "tok-ok", &r);
	expect_problem(&r, "unauthorized",
	    "no address of public.home.arpa is loopback, link-local or "
	    "private-use (got 8.8.8.8)");
	assert_true(now_ms() - t0 < 1000);
}

static void
test_http_hosts_mixed(void **state)
{
	struct validate_result	 r;

	http(*state, IDENT_DNS, "mixed.home.arpa", "tok-ok", &r);
	expect_ok(&r);
}

static void
test_http_hosts_127_0_0_2(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;

	e.cfg.http01_port = e.h2.port;
	http(&e, IDENT_DNS, "dev2.home.arpa", "tok-ok", &r);
	expect_ok(&r);
	http(&e, IDENT_DNS, "DEV2.home.arpa", "tok-ok", &r);	/* no case */
	expect_ok(&r);
}

static void
test_http_hosts_v6(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;

	e.cfg.http01_port = e.h6.port;
	http(&e, IDENT_DNS, "v6.home.arpa", "tok-ok", &r);
	expect_ok(&r);
}

/* Not in the hosts file: getaddrinfo(), which finds it in /etc/hosts. */
static void
test_http_system_resolver(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;

	e.cfg.hosts_file = NULL;
	http(&e, IDENT_DNS, "localhost", "tok-ok", &r);
	expect_ok(&r);
}

static void
test_http_ip_v4(void **state)
{
	struct env		*e = *state;
	struct validate_result	 r;
	char			 want[64];

	http(e, IDENT_IP, "127.0.0.1", "tok-ok", &r);
	expect_ok(&r);
	snprintf(want, sizeof(want), "127.0.0.1:%d", e->h4.port);
	pthread_mutex_lock(&e->h4.mtx);
	assert_string_equal(e->h4.last_host, want);
	pthread_mutex_unlock(&e->h4.mtx);
}

static void
test_http_ip_v6(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;
	struct httpd		*h6;
	char			 want[64];

	e.cfg.http01_port = e.h6.port;
	http(&e, IDENT_IP, "::1", "tok-ok", &r);
	expect_ok(&r);
	snprintf(want, sizeof(want), "[::1]:%d", e.h6.port);
	h6 = &((struct env *)*state)->h6;	/* the one its thread updates */
	pthread_mutex_lock(&h6->mtx);
	assert_string_equal(h6->last_host, want);
	pthread_mutex_unlock(&h6->mtx);
}

static void
test_http_ip_public(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;
	long			 t0 = now_ms();

	e.cfg.timeout_ms = 20000;
	http(&e, IDENT_IP, "8.8.8.8", "tok-ok", &r);
	expect_problem(&r, "unauthorized", "8.8.8.8");
	assert_true(now_ms() - t0 < 1000);
	http(&e, IDENT_IP, "::ffff:8.8.8.8", "tok-ok", &r);
	expect_problem(&r, "unauthorized", "8.8.8.8");
	http(&e, IDENT_IP, "2001:db8::1", "tok-ok", &r);
	expect_problem(&r, "unauthorized", "2001:db8::1");
}

static void
test_bad_input(void **state)
{
	struct validate_result	 r;

	http(*state, IDENT_DNS, "dev1.home.arpa", "../../etc/passwd", &r);
	expect_problem(&r, "malformed", "token");
	http(*state, IDENT_DNS, "dev1.home.arpa/x?", "tok-ok", &r);
	expect_problem(&r, "malformed", NULL);
	http(*state, IDENT_IP, "dev1.home.arpa", "tok-ok", &r);
	expect_problem(&r, "malformed", NULL);
}

/* ------------------------------------------------------------- TLS server */

struct certspec {
	const char	*dns;		/* SAN dNSName, or NULL */
	const char	*ip;		/* SAN iPAddress, or NULL */
	const char	*extra_dns;	/* a second SAN */
	const char	*digest_of;	/* acmeIdentifier = SHA-256(this), NULL: none */
	int		 critical;
};

struct tlsd {
	int		 lfd, port, stop[2];
	pthread_t	 tid;
	SSL_CTX		*ctx;
	int		 alpn;
	pthread_mutex_t	 mtx;
	char		 sni[256];
};

static void
add_san(STACK_OF(GENERAL_NAME) *gens, const char *dns, const char *ip)
{
	GENERAL_NAME	*g = GENERAL_NAME_new();

	assert_non_null(g);
	if (dns != NULL) {
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		assert_non_null(s);
		assert_int_equal(ASN1_STRING_set(s, dns, -1), 1);
		GENERAL_NAME_set0_value(g, GEN_DNS, s);
	} else {
		ASN1_OCTET_STRING *o = a2i_IPADDRESS(ip);
		assert_non_null(o);
		GENERAL_NAME_set0_value(g, GEN_IPADD, o);
	}
	assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
}

/* A self-signed tls-alpn-01 certificate as RFC 8737 3 describes. */
static X509 *
make_cert(EVP_PKEY *key, const struct certspec *cs)
{
	X509			*x = X509_new();
	STACK_OF(GENERAL_NAME)	*gens = sk_GENERAL_NAME_new_null();
	X509_NAME		*name = X509_NAME_new();

	assert_non_null(x);
	assert_non_null(gens);
	assert_non_null(name);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"acme-tls test", -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	X509_NAME_free(name);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_set_pubkey(x, key), 1);

	if (cs->dns != NULL)
		add_san(gens, cs->dns, NULL);
	if (cs->ip != NULL)
		add_san(gens, NULL, cs->ip);
	if (cs->extra_dns != NULL)
		add_san(gens, cs->extra_dns, NULL);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_APPEND), 1);
	GENERAL_NAMES_free(gens);

	if (cs->digest_of != NULL) {
		unsigned char		 md[SHA256_DIGEST_LENGTH], *der = NULL;
		ASN1_OCTET_STRING	*inner = ASN1_OCTET_STRING_new();
		ASN1_OCTET_STRING	*wrap = ASN1_OCTET_STRING_new();
		ASN1_OBJECT		*oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
		X509_EXTENSION		*ext;
		int			 len;

		assert_non_null(inner);
		assert_non_null(wrap);
		assert_non_null(oid);
		SHA256((const unsigned char *)cs->digest_of,
		    strlen(cs->digest_of), md);
		assert_int_equal(ASN1_OCTET_STRING_set(inner, md, sizeof(md)), 1);
		len = i2d_ASN1_OCTET_STRING(inner, &der);
		assert_true(len > 0);
		assert_int_equal(ASN1_OCTET_STRING_set(wrap, der, len), 1);
		ext = X509_EXTENSION_create_by_OBJ(NULL, oid, cs->critical, wrap);
		assert_non_null(ext);
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
		ASN1_OBJECT_free(oid);
		OPENSSL_free(der);
		ASN1_OCTET_STRING_free(inner);
		ASN1_OCTET_STRING_free(wrap);
	}
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char want[] = "\x0a" "acme-tls/1";

	if (SSL_select_next_proto((unsigned char **)out, outlen, want,
	    sizeof(want) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

static void *
tlsd_run(void *arg)
{
	struct tlsd	*t = arg;
	struct pollfd	 pfd[2];
	struct timeval	 tv = { 2, 0 };
	const char	*sni;
	char		 buf[64];
	SSL		*ssl;
	int		 fd;

	pfd[0].fd = t->lfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = t->stop[0];
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) == -1 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		if ((fd = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if ((ssl = SSL_new(t->ctx)) != NULL && SSL_set_fd(ssl, fd) == 1 &&
		    SSL_accept(ssl) == 1) {
			sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
			pthread_mutex_lock(&t->mtx);
			snprintf(t->sni, sizeof(t->sni), "%s", sni ? sni : "");
			pthread_mutex_unlock(&t->mtx);
			/* Until the validator hangs up. */
			while (SSL_read(ssl, buf, sizeof(buf)) > 0)
				;
		}
		SSL_free(ssl);
		close(fd);
	}
	return NULL;
}

static void
tlsd_start(struct tlsd *t, const struct certspec *cs, int alpn)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	EVP_PKEY		*key;
	X509			*cert;

	memset(t, 0, sizeof(*t));
	key = EVP_EC_gen("P-256");
	assert_non_null(key);
	cert = make_cert(key, cs);
	t->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(t->ctx);
	assert_int_equal(SSL_CTX_use_certificate(t->ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(t->ctx, key), 1);
	if (alpn)
		SSL_CTX_set_alpn_select_cb(t->ctx, alpn_select, NULL);
	X509_free(cert);
	EVP_PKEY_free(key);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(t->lfd >= 0);
	assert_int_equal(bind(t->lfd, (struct sockaddr *)&sin, len), 0);
	assert_int_equal(listen(t->lfd, 64), 0);
	assert_int_equal(getsockname(t->lfd, (struct sockaddr *)&sin, &len), 0);
	t->port = ntohs(sin.sin_port);
	assert_int_equal(pipe(t->stop), 0);
	assert_int_equal(pthread_mutex_init(&t->mtx, NULL), 0);
	assert_int_equal(pthread_create(&t->tid, NULL, tlsd_run, t), 0);
}

static void
tlsd_stop(struct tlsd *t)
{
	(void)!write(t->stop[1], "x", 1);
	pthread_join(t->tid, NULL);
	close(t->lfd);
	close(t->stop[0]);
	close(t->stop[1]);
	SSL_CTX_free(t->ctx);
	pthread_mutex_destroy(&t->mtx);
}

/* Serve cs, validate ident against it, return the result. */
static void
tls_case(struct env *e0, const struct certspec *cs, int alpn,
    enum ident_type it, const char *ident, struct validate_result *r,
    char *sni, size_t snisz)
{
	struct env	 e = *e0;
	struct tlsd	 t;

	tlsd_start(&t, cs, alpn);
	e.cfg.tlsalpn01_port = t.port;
	validate_challenge(&e.cfg, VALIDATE_TLSALPN01, it, ident, "tok-ok",
	    KA, r);
	tlsd_stop(&t);
	if (sni != NULL)
		snprintf(sni, snisz, "%s", t.sni);
}

static void
test_tls_ok(void **state)
{
	const struct certspec	 cs = { "dev1.home.arpa", NULL, NULL, KA, 1 };
	struct validate_result	 r;
	char			 sni[256];

	tls_case(*state, &cs, 1, IDENT_DNS, "dev1.home.arpa", &r, sni,
	    sizeof(sni));
	expect_ok(&r);
	assert_string_equal(sni, "dev1.home.arpa");
}

static void
test_tls_ip_ok(void **state)
{
	const struct certspec	 cs = { NULL, "127.0.0.1", NULL, KA, 1 };
	struct validate_result	 r;
	char			 sni[256];

	tls_case(*state, &cs, 1, IDENT_IP, "127.0.0.1", &r, sni, sizeof(sni));
	expect_ok(&r);
	assert_string_equal(sni, "1.0.0.127.in-addr.arpa");	/* RFC 8738 6 */
}

static void
test_tls_wrong_digest(void **state)
{
	const struct certspec	 cs = { "dev1.home.arpa", NULL, NULL,
	    "other.key-authorization", 1 };
	struct validate_result	 r;

	tls_case(*state, &cs, 1, IDENT_DNS, "dev1.home.arpa", &r, NULL, 0);
	expect_problem(&r, "incorrectResponse", "not SHA-256 of the key");
}

static void
test_tls_no_alpn(void **state)
{
	const struct certspec	 cs = { "dev1.home.arpa", NULL, NULL, KA, 1 };
	struct validate_result	 r;

	tls_case(*state, &cs, 0, IDENT_DNS, "dev1.home.arpa", &r, NULL, 0);
	expect_problem(&r, "tls", "expected ALPN \"acme-tls/1\", got none");
}

static void
test_tls_not_critical(void **state)
{
	const struct certspec	 cs = { "dev1.home.arpa", NULL, NULL, KA, 0 };
	struct validate_result	 r;

	tls_case(*state, &cs, 1, IDENT_DNS, "dev1.home.arpa", &r, NULL, 0);
	expect_problem(&r, "incorrectResponse", "not critical");
}

static void
test_tls_no_extension(void **state)
{
	const struct certspec	 cs = { "dev1.home.arpa", NULL, NULL, NULL, 1 };
	struct validate_result	 r;

	tls_case(*state, &cs, 1, IDENT_DNS, "dev1.home.arpa", &r, NULL, 0);
	expect_problem(&r, "incorrectResponse", "no acmeIdentifier");
}

static void
test_tls_two_sans(void **state)
{
	const struct certspec	 cs = { "dev1.home.arpa", NULL,
	    "other.home.arpa", KA, 1 };
	struct validate_result	 r;

	tls_case(*state, &cs, 1, IDENT_DNS, "dev1.home.arpa", &r, NULL, 0);
	expect_problem(&r, "incorrectResponse", "2 subjectAltNames");
}

static void
test_tls_wrong_san(void **state)
{
	const struct certspec	 cs = { "alias.home.arpa", NULL, NULL, KA, 1 };
	const struct certspec	 ip = { "127.0.0.1", NULL, NULL, KA, 1 };
	struct validate_result	 r;

	tls_case(*state, &cs, 1, IDENT_DNS, "dev1.home.arpa", &r, NULL, 0);
	expect_problem(&r, "incorrectResponse", "not dNSName dev1.home.arpa");
	/* An IP identifier wants an iPAddress SAN, not the text as a name. */
	tls_case(*state, &ip, 1, IDENT_IP, "127.0.0.1", &r, NULL, 0);
	expect_problem(&r, "incorrectResponse", "not iPAddress 127.0.0.1");
}

static void
test_tls_refused(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;

	e.cfg.tlsalpn01_port = e.refused_port;
	validate_challenge(&e.cfg, VALIDATE_TLSALPN01, IDENT_IP, "127.0.0.1",
	    "tok-ok", KA, &r);
	expect_problem(&r, "connection", "refused");
}

static void
test_tls_not_tls(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;

	/* An HTTP server where TLS is expected: a handshake failure. */
	e.cfg.tlsalpn01_port = e.h4.port;
	validate_challenge(&e.cfg, VALIDATE_TLSALPN01, IDENT_IP, "127.0.0.1",
	    "tok-ok", KA, &r);
	expect_problem(&r, "tls", "handshake");
}

static void
test_tls_public(void **state)
{
	struct env		 e = *(struct env *)*state;
	struct validate_result	 r;
	long			 t0 = now_ms();

	e.cfg.tlsalpn01_port = 443;
	e.cfg.timeout_ms = 20000;
	validate_challenge(&e.cfg, VALIDATE_TLSALPN01, IDENT_DNS,
	    "public.home.arpa", "tok-ok", KA, &r);
	expect_problem(&r, "unauthorized", "8.8.8.8");
	validate_challenge(&e.cfg, VALIDATE_TLSALPN01, IDENT_IP, "8.8.8.8",
	    "tok-ok", KA, &r);
	expect_problem(&r, "unauthorized", "8.8.8.8");
	assert_true(now_ms() - t0 < 1000);
}

/* ----------------------------------------------------------------- dns-01 */

static int
dns_port(void)
{
	const char	*p = getenv("IOTCA_TEST_DNS_PORT");

	return p != NULL ? atoi(p) : 0;
}

static void
dns(const char *ident, const char *ka, const char *server,
    struct validate_result *r)
{
	struct validate_config	 cfg;
	char			 srv[64];

	memset(&cfg, 0, sizeof(cfg));
	snprintf(srv, sizeof(srv), "127.0.0.1:%d", dns_port());
	cfg.dns_server = server != NULL ? server : srv;
	cfg.timeout_ms = 2000;
	validate_challenge(&cfg, VALIDATE_DNS01, IDENT_DNS, ident, "tok-ok",
	    ka, r);
}

#define NEED_DNS() do {							\
	if (dns_port() == 0) {						\
		print_message("no DNS server (IOTCA_TEST_DNS_PORT)\n");	\
		skip();							\
	}								\
} while (0)

static void
test_dns_ok(void **state)
{
	struct validate_result	 r;

	NEED_DNS();
	dns("dev1.home.arpa", KA_DNS, NULL, &r);
	expect_ok(&r);
}

static void
test_dns_split_strings_ok(void **state)
{
	struct validate_result	 r;

	NEED_DNS();
	dns("split.home.arpa", KA_DNS, NULL, &r);	/* two character-strings */
	expect_ok(&r);
}

static void
test_dns_several_records_ok(void **state)
{
	struct validate_result	 r;

	NEED_DNS();
	dns("multi.home.arpa", KA_DNS, NULL, &r);
	expect_ok(&r);
}

static void
test_dns_wrong_value(void **state)
{
	struct validate_result	 r;

	NEED_DNS();
	dns("dev2.home.arpa", KA_DNS, NULL, &r);
	expect_problem(&r, "incorrectResponse", "got \"wrong-value\"");
	dns("dev1.home.arpa", "other.key-authorization", NULL, &r);
	expect_problem(&r, "incorrectResponse", "_acme-challenge.dev1.home.arpa");
}

static void
test_dns_missing(void **state)
{
	struct validate_result	 r;

	NEED_DNS();
	dns("nx.home.arpa", KA_DNS, NULL, &r);
	expect_problem(&r, "dns", "NXDOMAIN");
	dns("nodata.home.arpa", KA_DNS, NULL, &r);
	expect_problem(&r, "dns", "no TXT record at _acme-challenge.nodata");
}

static void
test_dns_server_down(void **state)
{
	struct env		*e = *state;
	struct validate_result	 r;
	char			 srv[64];
	long			 t0 = now_ms();

	/* A TCP port number is as good as any for a dead UDP server. */
	snprintf(srv, sizeof(srv), "127.0.0.1:%d", e->refused_port);
	dns("dev1.home.arpa", KA_DNS, srv, &r);
	expect_problem(&r, "dns", "no answer");
	assert_true(now_ms() - t0 < 10000);
	dns("dev1.home.arpa", KA_DNS, "[::1]:53", &r);
	expect_problem(&r, "serverInternal", "dns_server");
}

static void
test_dns_ip_identifier(void **state)
{
	struct validate_result	 r;
	struct validate_config	 cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.dns_server = "127.0.0.1:1";
	validate_challenge(&cfg, VALIDATE_DNS01, IDENT_IP, "127.0.0.1",
	    "tok-ok", KA, &r);
	expect_problem(&r, "malformed", "IP identifier");
}

/* ------------------------------------------------------------ concurrency */

struct worker {
	struct env	*e;
	int		 tls_port;
	int		 n, failures;
};

static void *
worker_run(void *arg)
{
	struct worker		*w = arg;
	struct validate_config	 cfg = w->e->cfg;
	struct validate_result	 r;
	char			 srv[64];
	int			 i;

	cfg.tlsalpn01_port = w->tls_port;
	snprintf(srv, sizeof(srv), "127.0.0.1:%d", dns_port());
	cfg.dns_server = srv;
	for (i = 0; i < 6; i++) {
		switch ((w->n + i) % 4) {
		case 0:
			validate_challenge(&cfg, VALIDATE_HTTP01, IDENT_DNS,
			    "dev1.home.arpa", "tok-redir", KA, &r);
			w->failures += !r.ok;
			break;
		case 1:
			validate_challenge(&cfg, VALIDATE_TLSALPN01, IDENT_DNS,
			    "dev1.home.arpa", "tok-ok", KA, &r);
			w->failures += !r.ok;
			break;
		case 2:
			validate_challenge(&cfg, VALIDATE_HTTP01, IDENT_DNS,
			    "dev1.home.arpa", "tok-wrong", KA, &r);
			w->failures += r.ok ||
			    strcmp(r.problem, "incorrectResponse") != 0;
			break;
		default:
			if (dns_port() == 0)
				break;
			validate_challenge(&cfg, VALIDATE_DNS01, IDENT_DNS,
			    "dev1.home.arpa", "tok-ok", KA_DNS, &r);
			w->failures += !r.ok;
			break;
		}
	}
	return NULL;
}

static void
test_threads(void **state)
{
	const struct certspec	 cs = { "dev1.home.arpa", NULL, NULL, KA, 1 };
	struct worker		 w[8];
	pthread_t		 tid[8];
	struct tlsd		 t;
	int			 i;

	tlsd_start(&t, &cs, 1);
	for (i = 0; i < 8; i++) {
		w[i].e = *state;
		w[i].tls_port = t.port;
		w[i].n = i;
		w[i].failures = 0;
		assert_int_equal(pthread_create(&tid[i], NULL, worker_run,
		    &w[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
	tlsd_stop(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_ok),
		cmocka_unit_test(test_http_trailing_whitespace_ok),
		cmocka_unit_test(test_http_leading_whitespace),
		cmocka_unit_test(test_http_wrong_body),
		cmocka_unit_test(test_http_404),
		cmocka_unit_test(test_http_500),
		cmocka_unit_test(test_http_body_too_large),
		cmocka_unit_test(test_http_refused),
		cmocka_unit_test(test_http_timeout),
		cmocka_unit_test(test_http_redirect_allowed),
		cmocka_unit_test(test_http_redirect_relative),
		cmocka_unit_test(test_http_redirect_to_ipv6),
		cmocka_unit_test(test_http_redirect_public_addr),
		cmocka_unit_test(test_http_redirect_public_name),
		cmocka_unit_test(test_http_redirect_loop),
		cmocka_unit_test(test_http_redirect_ftp),
		cmocka_unit_test(test_http_hosts_public),
		cmocka_unit_test(test_http_hosts_mixed),
		cmocka_unit_test(test_http_hosts_127_0_0_2),
		cmocka_unit_test(test_http_hosts_v6),
		cmocka_unit_test(test_http_system_resolver),
		cmocka_unit_test(test_http_ip_v4),
		cmocka_unit_test(test_http_ip_v6),
		cmocka_unit_test(test_http_ip_public),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_tls_ok),
		cmocka_unit_test(test_tls_ip_ok),
		cmocka_unit_test(test_tls_wrong_digest),
		cmocka_unit_test(test_tls_no_alpn),
		cmocka_unit_test(test_tls_not_critical),
		cmocka_unit_test(test_tls_no_extension),
		cmocka_unit_test(test_tls_two_sans),
		cmocka_unit_test(test_tls_wrong_san),
		cmocka_unit_test(test_tls_refused),
		cmocka_unit_test(test_tls_not_tls),
		cmocka_unit_test(test_tls_public),
		cmocka_unit_test(test_dns_ok),
		cmocka_unit_test(test_dns_split_strings_ok),
		cmocka_unit_test(test_dns_several_records_ok),
		cmocka_unit_test(test_dns_wrong_value),
		cmocka_unit_test(test_dns_missing),
		cmocka_unit_test(test_dns_server_down),
		cmocka_unit_test(test_dns_ip_identifier),
		cmocka_unit_test(test_threads),
	};

	/* The test's own servers write to peers that may have hung up. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
