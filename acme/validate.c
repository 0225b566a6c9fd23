/*
 * Challenge validation for iotca-acmed: http-01 (RFC 8555 8.3), dns-01
 * (RFC 8555 8.4), tls-alpn-01 (RFC 8737), with IP identifiers (RFC 8738).
 *
 * The appliance only vouches for names on the local network, so it only ever
 * connects to loopback, link-local and private-use addresses.  That policy is
 * checked on the address itself, after every resolution (hosts file, system
 * resolver, redirect target) and again immediately before each socket is
 * created, so no packet leaves for any other address.
 *
 * Everything a validation needs lives on its stack or in objects it frees
 * before returning: validations run concurrently on worker threads.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "validate.h"

#define DEFAULT_TIMEOUT_MS	5000
#define MAX_ADDRS		16	/* addresses tried per name */
#define HTTP_BODY_MAX		8192	/* bytes of a challenge response we read */
#define HTTP_MAX_REDIRECTS	10
#define SHOW_UNTRUSTED		48	/* bytes of peer content quoted in a detail */
#define ACME_TLS_ALPN		"acme-tls/1"
#define OID_ACME_IDENTIFIER	"1.3.6.1.5.5.7.1.31"
#define B64URL_SHA256_LEN	43	/* base64url of 32 bytes, no padding */

struct addrlist {
	struct sockaddr_storage	 sa[MAX_ADDRS];
	socklen_t		 len[MAX_ADDRS];
	size_t			 n;
};

/* Overall end of this validation (CLOCK_MONOTONIC) and the per-step bound. */
struct clock {
	struct timespec		 end;
	int			 step_ms;
};

/* ---------------------------------------------------------------- results */

static void
set_problem(struct validate_result *out, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_problem(struct validate_result *out, const char *type, const char *fmt, ...)
{
	va_list	 ap;
	size_t	 i;

	out->ok = 0;
	snprintf(out->problem, sizeof(out->problem), "%s", type);
	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
	va_end(ap);
	/*
	 * The detail ends up in a JSON problem document and in logs: keep it
	 * one printable line even if a library message slipped something in.
	 */
	for (i = 0; out->detail[i] != '\0'; i++)
		if ((unsigned char)out->detail[i] < 0x20 ||
		    (unsigned char)out->detail[i] > 0x7e)
			out->detail[i] = '?';
}

/*
 * Of the failures on several addresses, report one from a peer that
 * answered (wrong content, TLS, policy) over one that could not be reached:
 * it is what the client needs to fix.
 */
static void
keep_failure(struct validate_result *kept, const struct validate_result *r,
    int first)
{
	int	 kept_reached, r_reached;

	kept_reached = strcmp(kept->problem, "connection") != 0;
	r_reached = strcmp(r->problem, "connection") != 0;
	if (first || (r_reached && !kept_reached))
		*kept = *r;
}

/*
 * Quote untrusted bytes for a detail: printable ASCII as is, the rest as
 * \xNN, at most SHOW_UNTRUSTED input bytes, "..." when cut.
 */
static void
quote_untrusted(const unsigned char *in, size_t inlen, char *buf, size_t bufsz)
{
	size_t	 i, o = 0;
	int	 n;

	for (i = 0; i < inlen && i < SHOW_UNTRUSTED; i++) {
		if (in[i] >= 0x20 && in[i] <= 0x7e && in[i] != '"' &&
		    in[i] != '\\')
			n = snprintf(buf + o, bufsz - o, "%c", in[i]);
		else
			n = snprintf(buf + o, bufsz - o, "\\x%02x", in[i]);
		if (n < 0 || (size_t)n >= bufsz - o)
			break;
		o += n;
	}
	if (i < inlen && o + 4 <= bufsz) {
		memcpy(buf + o, "...", 4);
		return;
	}
	buf[o < bufsz ? o : bufsz - 1] = '\0';
}

/* ------------------------------------------------------------------ time */

static void
clock_start(struct clock *c, const struct validate_config *cfg)
{
	clock_gettime(CLOCK_MONOTONIC, &c->end);
	c->end.tv_sec += VALIDATE_MAX_SECONDS;
	c->step_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
}

static long
clock_left_ms(const struct clock *c)
{
	struct timespec	 now;
	long		 ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (c->end.tv_sec - now.tv_sec) * 1000 +
	    (c->end.tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

/* Time allowed for the next step: timeout_ms, or what is left overall. */
static long
clock_step_ms(const struct clock *c)
{
	long	 left = clock_left_ms(c);

	return left < c->step_ms ? left : c->step_ms;
}

/* --------------------------------------------------------------- address */

static int
v4_allowed(uint32_t a)
{
	return (a >> 24) == 127 ||		/* loopback 127/8 */
	    (a >> 24) == 10 ||			/* private 10/8 */
	    (a >> 20) == (0xac10 >> 4) ||	/* private 172.16/12 */
	    (a >> 16) == 0xc0a8 ||		/* private 192.168/16 */
	    (a >> 16) == 0xa9fe;		/* link-local 169.254/16 */
}

/* Loopback, link-local or private-use: the only places we connect to. */
static int
addr_allowed(const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	const uint8_t			*b;
	uint32_t			 v4;

	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)sa;
		return v4_allowed(ntohl(sin->sin_addr.s_addr));
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	sin6 = (const struct sockaddr_in6 *)sa;
	b = sin6->sin6_addr.s6_addr;
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		/* ::ffff:a.b.c.d reaches a.b.c.d: judge that address. */
		v4 = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
		    (uint32_t)b[14] << 8 | b[15];
		return v4_allowed(v4);
	}
	return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
	    (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||	/* fe80::/10 */
	    (b[0] & 0xfe) == 0xfc;			/* fc00::/7 */
}

static void
addr_text(const struct sockaddr *sa, char *buf, size_t bufsz)
{
	const void	*a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (inet_ntop(sa->sa_family, a, buf, bufsz) == NULL)
		snprintf(buf, bufsz, "?");
}

static void
addr_set_port(struct sockaddr *sa, int port)
{
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

/* Same address, ignoring port (and, for IPv6, scope). */
static int
addr_same(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr,
	    sizeof(struct in6_addr)) == 0;
}

static void
addrlist_add(struct addrlist *l, const struct sockaddr *sa, socklen_t len)
{
	size_t	 i;

	if (l->n == MAX_ADDRS || len > sizeof(l->sa[0]) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return;
	for (i = 0; i < l->n; i++)
		if (addr_same((struct sockaddr *)&l->sa[i], sa))
			return;
	memcpy(&l->sa[l->n], sa, len);
	l->len[l->n] = len;
	l->n++;
}

/* Parse a numeric address (v4, v6, v6%scope) without touching the network. */
static int
parse_numeric(const char *s, struct addrlist *l)
{
	struct addrinfo	 hints, *res;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(s, NULL, &hints, &res) != 0)
		return -1;
	addrlist_add(l, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

/* Keep the allowed addresses of in; name the first refused one in refused. */
static void
addrlist_filter(const struct addrlist *in, struct addrlist *out,
    char *refused, size_t refusedsz)
{
	size_t	 i;

	memset(out, 0, sizeof(*out));
	refused[0] = '\0';
	for (i = 0; i < in->n; i++) {
		if (addr_allowed((const struct sockaddr *)&in->sa[i]))
			addrlist_add(out, (const struct sockaddr *)&in->sa[i],
			    in->len[i]);
		else if (refused[0] == '\0')
			addr_text((const struct sockaddr *)&in->sa[i],
			    refused, refusedsz);
	}
}

/* ----------------------------------------------------------- resolution */

/*
 * The hosts file: "ADDR NAME [NAME...]" lines, '#' to end of line is a
 * comment, names compared without case.  Returns how many addresses it gave.
 */
static size_t
hosts_lookup(const char *path, const char *name, struct addrlist *l)
{
	FILE	*f;
	char	*line = NULL, *p, *addr, *tok, *save;
	size_t	 cap = 0, before = l->n;

	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (getline(&line, &cap, f) != -1) {
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		if ((addr = strtok_r(line, " \t\r\n", &save)) == NULL)
			continue;
		while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL)
			if (strcasecmp(tok, name) == 0) {
				(void)parse_numeric(addr, l);
				break;
			}
	}
	free(line);
	fclose(f);
	return l->n - before;
}

/*
 * getaddrinfo() has no timeout of its own (mDNS or a dead DNS server can
 * hold it for long), so it runs on a detached thread and we wait at most
 * the step time.  Whoever finishes last, waiter or resolver, frees the job.
 */
struct gai_job {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	int		 refs;
	int		 done;
	int		 rc;
	struct addrinfo	*res;
	char		 name[NS_MAXDNAME];
};

static void
gai_job_release(struct gai_job *job)
{
	int	 last;

	pthread_mutex_lock(&job->mtx);
	last = --job->refs == 0;
	pthread_mutex_unlock(&job->mtx);
	if (!last)
		return;
	if (job->res != NULL)
		freeaddrinfo(job->res);
	pthread_cond_destroy(&job->cond);
	pthread_mutex_destroy(&job->mtx);
	free(job);
}

static void *
gai_job_run(void *arg)
{
	struct gai_job	*job = arg;
	struct addrinfo	 hints, *res = NULL;
	int		 rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(job->name, NULL, &hints, &res);
	pthread_mutex_lock(&job->mtx);
	job->rc = rc;
	job->res = rc == 0 ? res : NULL;
	job->done = 1;
	pthread_cond_signal(&job->cond);
	pthread_mutex_unlock(&job->mtx);
	gai_job_release(job);
	return NULL;
}

/* Returns 0, or -1 with a reason in err. */
static int
system_lookup(const char *name, long wait_ms, struct addrlist *l,
    char *err, size_t errsz)
{
	struct gai_job		*job;
	pthread_condattr_t	 ca;
	pthread_attr_t		 ta;
	pthread_t		 tid;
	struct timespec		 until;
	struct addrinfo		*ai;
	int			 rc = 0, started;

	if ((job = calloc(1, sizeof(*job))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	snprintf(job->name, sizeof(job->name), "%s", name);
	job->refs = 2;
	if (pthread_mutex_init(&job->mtx, NULL) != 0) {
		free(job);
		snprintf(err, errsz, "cannot start resolver");
		return -1;
	}
	if (pthread_condattr_init(&ca) != 0 ||
	    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&job->cond, &ca) != 0) {
		pthread_mutex_destroy(&job->mtx);
		free(job);
		snprintf(err, errsz, "cannot start resolver");
		return -1;
	}
	pthread_condattr_destroy(&ca);

	started = pthread_attr_init(&ta) == 0 &&
	    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED) == 0 &&
	    pthread_create(&tid, &ta, gai_job_run, job) == 0;
	pthread_attr_destroy(&ta);
	if (!started) {
		job->refs = 1;
		gai_job_release(job);
		snprintf(err, errsz, "cannot start resolver");
		return -1;
	}

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (wait_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&job->mtx);
	while (!job->done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&job->cond, &job->mtx, &until);
	if (!job->done) {
		snprintf(err, errsz, "name resolution timed out");
		rc = -1;
	} else if (job->rc != 0) {
		snprintf(err, errsz, "%s", gai_strerror(job->rc));
		rc = -1;
	} else {
		for (ai = job->res; ai != NULL; ai = ai->ai_next)
			addrlist_add(l, ai->ai_addr, ai->ai_addrlen);
		rc = 0;
	}
	pthread_mutex_unlock(&job->mtx);
	gai_job_release(job);
	return rc;
}

/*
 * The allowed addresses of host (a name or an address literal).  On failure
 * fills out and returns -1: "dns" if the name does not resolve,
 * "unauthorized" if it resolves only outside the local network.
 */
static int
resolve_allowed(const struct validate_config *cfg, const struct clock *clk,
    const char *host, struct addrlist *allowed, struct validate_result *out)
{
	struct addrlist	 all;
	char		 err[128], refused[INET6_ADDRSTRLEN];

	memset(&all, 0, sizeof(all));
	if (parse_numeric(host, &all) == 0) {
		if (addr_allowed((const struct sockaddr *)&all.sa[0])) {
			*allowed = all;
			return 0;
		}
		set_problem(out, "unauthorized", "%s is not a loopback, "
		    "link-local or private-use address", host);
		return -1;
	}
	if (
	    (cfg->hosts_file == NULL ||
	     hosts_lookup(cfg->hosts_file, host, &all) == 0) &&
	    system_lookup(host, clock_step_ms(clk), &all, err,
	     sizeof(err)) != 0) {
		set_problem(out, "dns", "cannot resolve %s: %s", host, err);
		return -1;
	}
	addrlist_filter(&all, allowed, refused, sizeof(refused));
	if (allowed->n == 0) {
		set_problem(out, "unauthorized", "no address of %s is loopback, "
		    "link-local or private-use (got %s)", host,
		    refused[0] != '\0' ? refused : "none");
		return -1;
	}
	return 0;
}

/* -------------------------------------------------------------- checks */

/* Letters, digits, '-', '_' (for _acme-challenge) and dots, sane lengths. */
static int
dns_name_ok(const char *s)
{
	size_t	 i, label = 0, len = strlen(s);

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

/* RFC 8555 8.1: tokens are base64url; anything else could alter the URL. */
static int
token_ok(const char *s)
{
	size_t	 i, len = strlen(s);

	if (len == 0 || len > 256)
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

static void
sha256_str(const char *s, unsigned char md[SHA256_DIGEST_LENGTH])
{
	SHA256((const unsigned char *)s, strlen(s), md);
}

/* base64url without padding; out must hold 4 * ceil(len / 3) + 1. */
static void
b64url(const unsigned char *in, size_t len, char *out)
{
	static const char	 a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t			 i;
	uint32_t		 v;

	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = a[v >> 18 & 63];
		*out++ = a[v >> 12 & 63];
		*out++ = a[v >> 6 & 63];
		*out++ = a[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*out++ = a[v >> 18 & 63];
		*out++ = a[v >> 12 & 63];
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*out++ = a[v >> 18 & 63];
		*out++ = a[v >> 12 & 63];
		*out++ = a[v >> 6 & 63];
	}
	*out = '\0';
}

/* ---------------------------------------------------------------- http-01 */

static pthread_once_t	 curl_once = PTHREAD_ONCE_INIT;
static CURLcode		 curl_init_rc = CURLE_FAILED_INIT;

/* curl_global_init() must run once, before any thread uses libcurl. */
static void
curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http_fetch {
	const struct addrlist	*allowed;	/* where this hop may connect */
	char			 refused[INET6_ADDRSTRLEN]; /* policy said no */
	char			 tried[INET6_ADDRSTRLEN];   /* last connect */
	long			 os_errno;
	unsigned char		 body[HTTP_BODY_MAX];
	size_t			 len;
	int			 too_large;
	long			 status;
	char			*location;	/* absolute redirect target */
	char			 errbuf[CURL_ERROR_SIZE];
};

/*
 * Every connection libcurl makes, redirects and retries included, comes
 * through here before its socket exists: the last word of the policy.
 * A link-local IPv6 address needs the scope resolution gave it, which
 * CURLOPT_RESOLVE cannot carry, so it is put back here.
 */
static curl_socket_t
http_opensocket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct http_fetch	*f = arg;
	struct sockaddr_in6	*sin6;
	const struct sockaddr	*known;
	size_t			 i;
	int			 fd;

	if (purpose != CURLSOCKTYPE_IPCXN ||
	    (a->family != AF_INET && a->family != AF_INET6) ||
	    !addr_allowed(&a->addr)) {
		if (a->family == AF_INET || a->family == AF_INET6)
			addr_text(&a->addr, f->refused, sizeof(f->refused));
		else
			snprintf(f->refused, sizeof(f->refused), "non-IP");
		return CURL_SOCKET_BAD;
	}
	if (a->family == AF_INET6) {
		sin6 = (struct sockaddr_in6 *)&a->addr;
		for (i = 0; i < f->allowed->n; i++) {
			known = (const struct sockaddr *)&f->allowed->sa[i];
			if (sin6->sin6_scope_id == 0 && addr_same(known, &a->addr))
				sin6->sin6_scope_id =
				    ((const struct sockaddr_in6 *)known)->sin6_scope_id;
		}
	}
	addr_text(&a->addr, f->tried, sizeof(f->tried));
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	return fd == -1 ? CURL_SOCKET_BAD : fd;
}

static size_t
http_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_fetch	*f = arg;
	size_t			 n = size * nmemb;

	if (n > sizeof(f->body) - f->len) {
		f->too_large = 1;
		return 0;	/* abort the transfer */
	}
	memcpy(f->body + f->len, data, n);
	f->len += n;
	return n;
}

/* "host:port:addr,addr" so libcurl connects where we resolved, not elsewhere. */
static struct curl_slist *
http_pin(const char *host, long port, const struct addrlist *l)
{
	struct curl_slist	*list;
	char			 buf[NS_MAXDNAME + 16 + MAX_ADDRS * 50], a[64];
	size_t			 i, o;
	int			 n;

	n = snprintf(buf, sizeof(buf), "%s:%ld:", host, port);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return NULL;
	o = n;
	for (i = 0; i < l->n; i++) {
		addr_text((const struct sockaddr *)&l->sa[i], a, sizeof(a));
		n = snprintf(buf + o, sizeof(buf) - o, "%s%s%s%s",
		    i > 0 ? "," : "",
		    l->sa[i].ss_family == AF_INET6 ? "[" : "", a,
		    l->sa[i].ss_family == AF_INET6 ? "]" : "");
		if (n < 0 || (size_t)n >= sizeof(buf) - o)
			return NULL;
		o += n;
	}
	list = curl_slist_append(NULL, buf);
	return list;
}

/*
 * One GET, no redirects followed by libcurl itself (we judge each target).
 * Returns the libcurl code; f holds status, body and Location.
 */
static CURLcode
http_get(const char *url, const char *host, long port,
    const struct clock *clk, struct http_fetch *f)
{
	CURL			*c;
	struct curl_slist	*pin = NULL;
	char			*loc = NULL;
	CURLcode		 rc;
	long			 ms = clock_step_ms(clk);

	if ((c = curl_easy_init()) == NULL)
		return CURLE_FAILED_INIT;
	/* Name hosts get our addresses; literals need no resolving at all. */
	if (host != NULL && (pin = http_pin(host, port, f->allowed)) == NULL) {
		curl_easy_cleanup(c);
		return CURLE_OUT_OF_MEMORY;
	}
	if ((rc = curl_easy_setopt(c, CURLOPT_URL, url)) != CURLE_OK ||
	    (rc = curl_easy_setopt(c, CURLOPT_ERRORBUFFER, f->errbuf)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https")) ||
	    (rc = curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L)) ||
	    /* A proxy from the environment would be an address we never checked. */
	    (rc = curl_easy_setopt(c, CURLOPT_PROXY, "")) ||
	    (rc = curl_easy_setopt(c, CURLOPT_NOPROXY, "*")) ||
	    (rc = curl_easy_setopt(c, CURLOPT_RESOLVE, pin)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION,
	     http_opensocket)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, f)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_WRITEDATA, f)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_MAXFILESIZE, (long)HTTP_BODY_MAX)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
	     (long)CURL_HTTP_VERSION_1_1)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_USERAGENT, "iotca-acmed")) ||
	    /*
	     * An https redirect target proves control by its content, like
	     * the http one; devices on a LAN rarely have a trusted cert.
	     */
	    (rc = curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L)) ||
	    (rc = curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L)))
		goto done;
	if (ms <= 0) {
		rc = CURLE_OPERATION_TIMEDOUT;
		goto done;
	}
	if ((rc = curl_easy_perform(c)) != CURLE_OK) {
		if (curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &f->os_errno) !=
		    CURLE_OK)
			f->os_errno = 0;
		goto done;
	}
	if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status) !=
	    CURLE_OK)
		f->status = 0;
	if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK &&
	    loc != NULL && (f->location = strdup(loc)) == NULL)
		rc = CURLE_OUT_OF_MEMORY;
done:
	curl_easy_cleanup(c);
	curl_slist_free_all(pin);
	return rc;
}

/* Map a failed transfer to a problem. */
static void
http_failure(const char *url, CURLcode rc, const struct http_fetch *f,
    struct validate_result *out)
{
	if (f->refused[0] != '\0')
		set_problem(out, "unauthorized", "%s: refused to connect to %s: "
		    "not loopback, link-local or private-use", url, f->refused);
	else if (f->too_large || rc == CURLE_FILESIZE_EXCEEDED)
		set_problem(out, "incorrectResponse", "%s: expected the key "
		    "authorization, got a body over %d bytes", url,
		    HTTP_BODY_MAX);
	else if (rc == CURLE_SSL_CONNECT_ERROR)
		set_problem(out, "tls", "%s (%s): %s", url, f->tried,
		    f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc));
	else
		set_problem(out, "connection", "%s (%s): %s%s%s", url, f->tried,
		    f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc),
		    f->os_errno ? ": " : "",
		    f->os_errno ? strerror((int)f->os_errno) : "");
}

/* The answer to the last hop: status 200 and the key authorization. */
static void
http_judge(const char *url, const struct http_fetch *f, const char *key_authz,
    struct validate_result *out)
{
	char	 got[SHOW_UNTRUSTED * 4 + 4];
	size_t	 len = f->len;

	if (f->status != 200) {
		set_problem(out, "incorrectResponse", "%s: expected status 200 "
		    "with the key authorization, got status %ld", url, f->status);
		return;
	}
	/* RFC 8555 8.3: trailing whitespace is allowed, nothing else. */
	while (len > 0 && (f->body[len - 1] == ' ' || f->body[len - 1] == '\t' ||
	    f->body[len - 1] == '\r' || f->body[len - 1] == '\n'))
		len--;
	if (len == strlen(key_authz) && memcmp(f->body, key_authz, len) == 0) {
		out->ok = 1;
		out->problem[0] = out->detail[0] = '\0';
		return;
	}
	quote_untrusted(f->body, len, got, sizeof(got));
	set_problem(out, "incorrectResponse", "%s: expected \"%.100s\", got \"%s\"",
	    url, key_authz, got);
}

/*
 * Where a redirect points: only http and https, to a host whose addresses
 * are allowed.  Fills host (without brackets), port and the addresses, or
 * out with the reason it is refused.
 */
static int
http_redirect_target(const struct validate_config *cfg, const struct clock *clk,
    const char *loc, char *host, size_t hostsz, long *port,
    struct addrlist *allowed, struct validate_result *out)
{
	CURLU	*u;
	char	*scheme = NULL, *h = NULL, *p = NULL;
	size_t	 hl;
	int	 rc = -1;

	if ((u = curl_url()) == NULL) {
		set_problem(out, "serverInternal", "out of memory");
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, loc, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) !=
	    CURLUE_OK) {
		set_problem(out, "connection", "unusable redirect to %.120s",
		    loc);
		goto done;
	}
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
		set_problem(out, "unauthorized", "redirect to %.120s: only http "
		    "and https are followed", loc);
		goto done;
	}
	hl = strlen(h);
	if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
		snprintf(host, hostsz, "%.*s", (int)(hl - 2), h + 1);
	} else if (dns_name_ok(h)) {
		snprintf(host, hostsz, "%s", h);
	} else {
		set_problem(out, "connection", "redirect to %.120s: bad host",
		    loc);
		goto done;
	}
	*port = strtol(p, NULL, 10);
	if ((rc = resolve_allowed(cfg, clk, host, allowed, out)) != 0) {
		char type[sizeof(out->problem)], why[sizeof(out->detail)];

		/* set_problem() writes where these are: copy them first. */
		memcpy(type, out->problem, sizeof(type));
		memcpy(why, out->detail, sizeof(why));
		set_problem(out, type, "redirect to %.80s: %s", loc, why);
	}
done:
	curl_free(scheme);
	curl_free(h);
	curl_free(p);
	curl_url_cleanup(u);
	return rc;
}

/* Follow one chain of redirects, starting at url on the given addresses. */
static void
http_chain(const struct validate_config *cfg, const struct clock *clk,
    const char *first_url, const char *first_host, long first_port,
    const struct addrlist *first_addrs, const char *key_authz,
    struct validate_result *out)
{
	struct http_fetch	*f;
	struct addrlist		 hop_addrs;
	const struct addrlist	*addrs = first_addrs;
	char			 url[1024], host[NS_MAXDNAME];
	const char		*pinhost = first_host;
	long			 port = first_port;
	struct sockaddr_storage	 probe;
	CURLcode		 rc;
	int			 hop;

	/* The body buffer is too large for a worker thread's stack. */
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		set_problem(out, "serverInternal", "out of memory");
		return;
	}
	snprintf(url, sizeof(url), "%s", first_url);
	for (hop = 0; ; hop++) {
		memset(f, 0, sizeof(*f));
		f->allowed = addrs;
		rc = http_get(url, pinhost, port, clk, f);
		if (rc != CURLE_OK) {
			http_failure(url, rc, f, out);
			break;
		}
		if (f->location == NULL || f->status < 300 || f->status > 399) {
			http_judge(url, f, key_authz, out);
			break;
		}
		if (hop == HTTP_MAX_REDIRECTS) {
			set_problem(out, "connection", "%s: more than %d "
			    "redirects", first_url, HTTP_MAX_REDIRECTS);
			break;
		}
		if (http_redirect_target(cfg, clk, f->location, host,
		    sizeof(host), &port, &hop_addrs, out) != 0)
			break;
		snprintf(url, sizeof(url), "%s", f->location);
		free(f->location);
		f->location = NULL;
		addrs = &hop_addrs;
		/* An address literal in the URL is used as is. */
		pinhost = inet_pton(AF_INET6, host, &probe) == 1 ||
		    inet_pton(AF_INET, host, &probe) == 1 ? NULL : host;
	}
	free(f->location);
	free(f);
}

static void
validate_http01(const struct validate_config *cfg, const struct clock *clk,
    enum ident_type itype, const char *ident, const char *token,
    const char *key_authz, struct validate_result *out)
{
	struct addrlist		 allowed, one;
	struct validate_result	 first, r;
	char			 url[1024];
	size_t			 i;

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		set_problem(out, "serverInternal", "libcurl: %s",
		    curl_easy_strerror(curl_init_rc));
		return;
	}
	if (resolve_allowed(cfg, clk, ident, &allowed, out) != 0)
		return;
	/* RFC 8738 3: an IPv6 literal goes in brackets. */
	snprintf(url, sizeof(url), "http://%s%s%s:%d/.well-known/acme-challenge/%s",
	    itype == IDENT_IP && strchr(ident, ':') ? "[" : "", ident,
	    itype == IDENT_IP && strchr(ident, ':') ? "]" : "",
	    cfg->http01_port, token);

	/* Any address that answers with the proof will do. */
	memset(&first, 0, sizeof(first));
	for (i = 0; i < allowed.n; i++) {
		memset(&one, 0, sizeof(one));
		addrlist_add(&one, (struct sockaddr *)&allowed.sa[i],
		    allowed.len[i]);
		memset(&r, 0, sizeof(r));
		http_chain(cfg, clk, url, itype == IDENT_IP ? NULL : ident,
		    cfg->http01_port, &one, key_authz, &r);
		if (r.ok) {
			*out = r;
			return;
		}
		keep_failure(&first, &r, i == 0);
		if (clock_left_ms(clk) == 0)
			break;
	}
	*out = first;
}

/* ------------------------------------------------------------ tls-alpn-01 */

/* Connect within ms; returns a non-blocking socket or -1 with errno text. */
static int
tcp_connect(const struct sockaddr *sa, socklen_t len, long ms,
    char *err, size_t errsz)
{
	struct pollfd	 pfd;
	socklen_t	 sl = sizeof(int);
	int		 fd, e = 0, n;

	if (!addr_allowed(sa)) {	/* never reached; kept as a last guard */
		snprintf(err, errsz, "address not allowed");
		return -1;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, sa, len) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		snprintf(err, errsz, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	while ((n = poll(&pfd, 1, (int)ms)) == -1 && errno == EINTR)
		;
	if (n == 0) {
		snprintf(err, errsz, "connection timed out");
		close(fd);
		return -1;
	}
	if (n == -1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) == -1 ||
	    e != 0) {
		snprintf(err, errsz, "%s", strerror(n == -1 ? errno : e));
		close(fd);
		return -1;
	}
	return fd;
}

/* RFC 8738 6: an IP identifier's SNI is its reverse-mapping name. */
static int
reverse_name(const char *ip, char *buf, size_t bufsz)
{
	unsigned char	 a[16];
	static const char hex[] = "0123456789abcdef";
	size_t		 o = 0;
	int		 i;

	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(buf, bufsz, "%u.%u.%u.%u.in-addr.arpa",
		    a[3], a[2], a[1], a[0]);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, a) != 1 || bufsz < 16 * 4 + 9)
		return -1;
	for (i = 15; i >= 0; i--) {
		buf[o++] = hex[a[i] & 0xf];
		buf[o++] = '.';
		buf[o++] = hex[a[i] >> 4];
		buf[o++] = '.';
	}
	memcpy(buf + o, "ip6.arpa", 9);
	return 0;
}

static void
ssl_err(char *buf, size_t bufsz)
{
	unsigned long	 e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, bufsz, "handshake failed");
	else
		ERR_error_string_n(e, buf, bufsz);
	ERR_clear_error();
}

/* Drive the handshake on a non-blocking socket for at most ms. */
static int
tls_handshake(SSL *ssl, int fd, long ms)
{
	struct pollfd	 pfd;
	struct timespec	 start, now;
	long		 spent;
	int		 rc, e, n;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if ((rc = SSL_connect(ssl)) == 1)
			return 0;
		e = SSL_get_error(ssl, rc);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		spent = (now.tv_sec - start.tv_sec) * 1000 +
		    (now.tv_nsec - start.tv_nsec) / 1000000;
		if (spent >= ms)
			return -2;
		pfd.fd = fd;
		pfd.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		while ((n = poll(&pfd, 1, (int)(ms - spent))) == -1 &&
		    errno == EINTR)
			;
		if (n == 0)
			return -2;
		if (n == -1)
			return -1;
	}
}

/* The first bytes of a digest in hex, enough to tell two apart. */
static void
hex_prefix(const unsigned char *p, int len, char *buf, size_t bufsz)
{
	size_t	 o = 0;
	int	 i;

	for (i = 0; i < len && o + 3 < bufsz - 3; i++, o += 2)
		snprintf(buf + o, bufsz - o, "%02x", p[i]);
	snprintf(buf + o, bufsz - o, "%s", i < len ? "..." : "");
}

/* RFC 8737 3: exactly one subjectAltName, and it is the identifier. */
static int
tls_check_san(X509 *cert, enum ident_type itype, const char *ident,
    char *why, size_t whysz)
{
	GENERAL_NAMES		*gens;
	const GENERAL_NAME	*g;
	unsigned char		 ip[16];
	int			 crit = -1, iplen, ok = 0;

	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		snprintf(why, whysz, "%s", crit == -2 ?
		    "more than one subjectAltName extension" :
		    "no subjectAltName");
		return -1;
	}
	if (sk_GENERAL_NAME_num(gens) != 1) {
		snprintf(why, whysz, "%d subjectAltNames, expected exactly 1",
		    sk_GENERAL_NAME_num(gens));
		goto done;
	}
	g = sk_GENERAL_NAME_value(gens, 0);
	if (itype == IDENT_DNS) {
		ok = g->type == GEN_DNS &&
		    (size_t)ASN1_STRING_length(g->d.dNSName) == strlen(ident) &&
		    strncasecmp((const char *)ASN1_STRING_get0_data(g->d.dNSName),
		    ident, strlen(ident)) == 0;
	} else {
		iplen = inet_pton(AF_INET, ident, ip) == 1 ? 4 :
		    inet_pton(AF_INET6, ident, ip) == 1 ? 16 : 0;
		ok = g->type == GEN_IPADD && iplen != 0 &&
		    ASN1_STRING_length(g->d.iPAddress) == iplen &&
		    memcmp(ASN1_STRING_get0_data(g->d.iPAddress), ip, iplen) == 0;
	}
	if (!ok)
		snprintf(why, whysz, "subjectAltName is not %s %s",
		    itype == IDENT_DNS ? "dNSName" : "iPAddress", ident);
done:
	GENERAL_NAMES_free(gens);
	return ok ? 0 : -1;
}

/*
 * RFC 8737 3: the critical acmeIdentifier extension holds an OCTET STRING
 * with SHA-256 of the key authorization.
 */
static int
tls_check_acmeid(X509 *cert, const char *key_authz, char *why, size_t whysz)
{
	ASN1_OBJECT		*oid;
	X509_EXTENSION		*ext;
	ASN1_OCTET_STRING	*val, *inner = NULL;
	const unsigned char	*p;
	unsigned char		 md[SHA256_DIGEST_LENGTH];
	char			 want[24], got[24];
	int			 idx, rc = -1;

	if ((oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1)) == NULL) {
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	idx = X509_get_ext_by_OBJ(cert, oid, -1);
	if (idx < 0) {
		snprintf(why, whysz, "no acmeIdentifier extension");
		goto done;
	}
	if (X509_get_ext_by_OBJ(cert, oid, idx) >= 0) {
		snprintf(why, whysz, "more than one acmeIdentifier extension");
		goto done;
	}
	ext = X509_get_ext(cert, idx);
	if (!X509_EXTENSION_get_critical(ext)) {
		snprintf(why, whysz, "acmeIdentifier extension is not critical");
		goto done;
	}
	val = X509_EXTENSION_get_data(ext);
	p = ASN1_STRING_get0_data(val);
	inner = d2i_ASN1_OCTET_STRING(NULL, &p, ASN1_STRING_length(val));
	if (inner == NULL || p != ASN1_STRING_get0_data(val) +
	    ASN1_STRING_length(val)) {
		snprintf(why, whysz, "acmeIdentifier is not a DER OCTET STRING");
		goto done;
	}
	sha256_str(key_authz, md);
	if (ASN1_STRING_length(inner) != SHA256_DIGEST_LENGTH ||
	    CRYPTO_memcmp(ASN1_STRING_get0_data(inner), md, sizeof(md)) != 0) {
		hex_prefix(md, sizeof(md), want, sizeof(want));
		hex_prefix(ASN1_STRING_get0_data(inner),
		    ASN1_STRING_length(inner), got, sizeof(got));
		snprintf(why, whysz, "acmeIdentifier is not SHA-256 of the key "
		    "authorization: expected %s, got %s (%d bytes)", want, got,
		    ASN1_STRING_length(inner));
		goto done;
	}
	rc = 0;
done:
	ASN1_OCTET_STRING_free(inner);
	ASN1_OBJECT_free(oid);
	return rc;
}

/*
 * OpenSSL writes with write(2): a peer that hangs up would raise SIGPIPE and
 * kill the daemon unless it ignores the signal.  Block it on this thread for
 * the exchange and swallow one we caused, leaving the process's disposition
 * alone.
 */
static void
sigpipe_block(sigset_t *old, int *was_pending)
{
	sigset_t	 pipe, pending;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pending);
	*was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, old);
}

static void
sigpipe_restore(const sigset_t *old, int was_pending)
{
	sigset_t		 pipe, pending;
	const struct timespec	 zero = { 0, 0 };

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	if (!was_pending && sigpending(&pending) == 0 &&
	    sigismember(&pending, SIGPIPE))
		while (sigtimedwait(&pipe, NULL, &zero) == -1 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* One address: connect, handshake, check ALPN and the certificate. */
static void
tls_try(const struct sockaddr *sa, socklen_t salen, const char *sni,
    enum ident_type itype, const char *ident, const char *key_authz,
    const struct clock *clk, struct validate_result *out)
{
	static const unsigned char alpn[] = "\x0a" ACME_TLS_ALPN;
	SSL_CTX			*ctx = NULL;
	SSL			*ssl = NULL;
	X509			*cert = NULL;
	const unsigned char	*sel = NULL;
	unsigned int		 sellen = 0;
	char			 at[INET6_ADDRSTRLEN + 8], why[256];
	char			 got[SHOW_UNTRUSTED * 4 + 4];
	int			 fd, rc;

	addr_text(sa, at, sizeof(at));
	if ((fd = tcp_connect(sa, salen, clock_step_ms(clk), why,
	    sizeof(why))) == -1) {
		set_problem(out, "connection", "%s (%s) port %d: %s", ident, at,
		    ntohs(((const struct sockaddr_in *)sa)->sin_port), why);
		return;
	}
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    /* The cert is self-signed by design: we check content, not trust. */
	    (SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL), 0) ||
	    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0 ||
	    (ssl = SSL_new(ctx)) == NULL ||
	    SSL_set_tlsext_host_name(ssl, sni) != 1 ||
	    SSL_set_fd(ssl, fd) != 1) {
		ssl_err(why, sizeof(why));
		set_problem(out, "serverInternal", "TLS setup: %s", why);
		goto done;
	}
	if ((rc = tls_handshake(ssl, fd, clock_step_ms(clk))) != 0) {
		if (rc == -2)
			snprintf(why, sizeof(why), "handshake timed out");
		else
			ssl_err(why, sizeof(why));
		set_problem(out, "tls", "%s (%s): TLS handshake with SNI %s: %s",
		    ident, at, sni, why);
		goto done;
	}
	SSL_get0_alpn_selected(ssl, &sel, &sellen);
	if (sellen != sizeof(ACME_TLS_ALPN) - 1 ||
	    memcmp(sel, ACME_TLS_ALPN, sellen) != 0) {
		quote_untrusted(sel, sellen, got, sizeof(got));
		set_problem(out, "tls", "%s (%s): expected ALPN \"" ACME_TLS_ALPN
		    "\", got %s%s%s", ident, at, sellen ? "\"" : "",
		    sellen ? got : "none", sellen ? "\"" : "");
		goto done;
	}
	if ((cert = SSL_get1_peer_certificate(ssl)) == NULL) {
		set_problem(out, "tls", "%s (%s): no certificate", ident, at);
		goto done;
	}
	if (tls_check_san(cert, itype, ident, why, sizeof(why)) != 0 ||
	    tls_check_acmeid(cert, key_authz, why, sizeof(why)) != 0) {
		set_problem(out, "incorrectResponse", "%s (%s): %s", ident, at,
		    why);
		goto done;
	}
	out->ok = 1;
	out->problem[0] = out->detail[0] = '\0';
	(void)SSL_shutdown(ssl);	/* a courtesy; the result is known */
done:
	X509_free(cert);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	ERR_clear_error();
}

static void
validate_tlsalpn01(const struct validate_config *cfg, const struct clock *clk,
    enum ident_type itype, const char *ident, const char *key_authz,
    struct validate_result *out)
{
	struct addrlist		 allowed;
	struct validate_result	 first, r;
	char			 sni[NS_MAXDNAME];
	sigset_t		 oldmask;
	size_t			 i;
	int			 was_pending;

	if (itype == IDENT_IP) {
		if (reverse_name(ident, sni, sizeof(sni)) != 0) {
			set_problem(out, "malformed", "bad IP identifier");
			return;
		}
	} else
		snprintf(sni, sizeof(sni), "%s", ident);
	if (resolve_allowed(cfg, clk, ident, &allowed, out) != 0)
		return;
	memset(&first, 0, sizeof(first));
	for (i = 0; i < allowed.n; i++) {
		addr_set_port((struct sockaddr *)&allowed.sa[i],
		    cfg->tlsalpn01_port);
		memset(&r, 0, sizeof(r));
		sigpipe_block(&oldmask, &was_pending);
		tls_try((struct sockaddr *)&allowed.sa[i], allowed.len[i], sni,
		    itype, ident, key_authz, clk, &r);
		sigpipe_restore(&oldmask, was_pending);
		if (r.ok) {
			*out = r;
			return;
		}
		keep_failure(&first, &r, i == 0);
		if (clock_left_ms(clk) == 0)
			break;
	}
	*out = first;
}

/* ----------------------------------------------------------------- dns-01 */

/* "ADDR" or "ADDR:PORT" (IPv4: glibc's private resolver state takes no v6). */
static int
dns_server_parse(const char *s, struct sockaddr_in *sin)
{
	char		 addr[INET_ADDRSTRLEN];
	const char	*colon = strchr(s, ':');
	size_t		 len = colon ? (size_t)(colon - s) : strlen(s);
	char		*end;
	long		 port = NS_DEFAULTPORT;

	if (len >= sizeof(addr))
		return -1;
	memcpy(addr, s, len);
	addr[len] = '\0';
	if (colon != NULL) {
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno != 0 || *end != '\0' || end == colon + 1 ||
		    port < 1 || port > 65535)
			return -1;
	}
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	return inet_pton(AF_INET, addr, &sin->sin_addr) == 1 ? 0 : -1;
}

/* One TXT RR: its character-strings concatenated (RFC 8555 8.4). */
static int
txt_join(const unsigned char *rd, size_t rdlen, char *buf, size_t bufsz,
    size_t *outlen)
{
	size_t	 i = 0, o = 0, n;

	while (i < rdlen) {
		n = rd[i++];
		if (n > rdlen - i)
			return -1;
		if (o + n < bufsz) {
			memcpy(buf + o, rd + i, n);
			o += n;
		} else
			o = bufsz;	/* too long to be ours; remember that */
		i += n;
	}
	*outlen = o < bufsz ? o : bufsz - 1;
	buf[*outlen] = '\0';
	return o < bufsz ? 0 : 1;
}

/* Walk the answer's TXT RRs; ok if one equals want. */
static void
dns_judge(const unsigned char *ans, int anslen, const char *qname,
    const char *want, struct validate_result *out)
{
	ns_msg	 msg;
	ns_rr	 rr;
	char	 txt[512], got[SHOW_UNTRUSTED * 4 + 4];
	size_t	 len;
	int	 i, ntxt = 0;

	got[0] = '\0';
	if (ns_initparse(ans, anslen, &msg) != 0) {
		set_problem(out, "dns", "%s: unparseable DNS answer", qname);
		return;
	}
	for (i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) {
			set_problem(out, "dns", "%s: unparseable DNS answer",
			    qname);
			return;
		}
		if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in)
			continue;	/* e.g. the CNAMEs leading here */
		if (txt_join(ns_rr_rdata(rr), ns_rr_rdlen(rr), txt, sizeof(txt),
		    &len) < 0)
			continue;
		if (len == strlen(want) && memcmp(txt, want, len) == 0) {
			out->ok = 1;
			out->problem[0] = out->detail[0] = '\0';
			return;
		}
		if (ntxt++ == 0)
			quote_untrusted((unsigned char *)txt, len, got,
			    sizeof(got));
	}
	if (ntxt == 0)
		set_problem(out, "dns", "no TXT record at %s", qname);
	else
		set_problem(out, "incorrectResponse", "TXT at %s: expected "
		    "\"%s\", got \"%s\"%s", qname, want, got,
		    ntxt > 1 ? " and others" : "");
}

static void
validate_dns01(const struct validate_config *cfg, const struct clock *clk,
    enum ident_type itype, const char *ident, const char *key_authz,
    struct validate_result *out)
{
	struct __res_state	 rs;
	struct sockaddr_in	 ns;
	unsigned char		 md[SHA256_DIGEST_LENGTH], *ans;
	char			 want[B64URL_SHA256_LEN + 4], qname[NS_MAXDNAME];
	long			 ms = clock_step_ms(clk);
	int			 n, herr;

	if (itype != IDENT_DNS) {
		set_problem(out, "malformed", "dns-01 cannot validate an IP "
		    "identifier (RFC 8738 7)");
		return;
	}
	if (cfg->dns_server != NULL && dns_server_parse(cfg->dns_server, &ns)) {
		set_problem(out, "serverInternal", "dns_server \"%.64s\" is not "
		    "IPv4 ADDR or ADDR:PORT", cfg->dns_server);
		return;
	}
	snprintf(qname, sizeof(qname), "_acme-challenge.%s", ident);
	sha256_str(key_authz, md);
	b64url(md, sizeof(md), want);

	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) != 0) {
		set_problem(out, "dns", "cannot initialise the resolver");
		return;
	}
	if (cfg->dns_server != NULL) {
		rs.nscount = 1;
		rs.nsaddr_list[0] = ns;
	}
	/* One try per server, within the step time for all of them. */
	rs.retry = 1;
	rs.retrans = ms / 1000 / (rs.nscount > 0 ? rs.nscount : 1);
	if (rs.retrans < 1)
		rs.retrans = 1;
	rs.options &= ~(RES_DEFNAMES | RES_DNSRCH);

	if ((ans = malloc(NS_MAXMSG)) == NULL) {
		res_nclose(&rs);
		set_problem(out, "serverInternal", "out of memory");
		return;
	}
	n = res_nquery(&rs, qname, ns_c_in, ns_t_txt, ans, NS_MAXMSG);
	herr = rs.res_h_errno;
	if (n < 0) {
		if (herr == HOST_NOT_FOUND)
			set_problem(out, "dns", "%s does not exist (NXDOMAIN)",
			    qname);
		else if (herr == NO_DATA)
			set_problem(out, "dns", "no TXT record at %s", qname);
		else
			set_problem(out, "dns", "no answer for TXT %s%s%s", qname,
			    cfg->dns_server ? " from " : "",
			    cfg->dns_server ? cfg->dns_server : "");
	} else
		dns_judge(ans, n, qname, want, out);
	free(ans);
	res_nclose(&rs);
}

/* ----------------------------------------------------------------- entry */

void
validate_challenge(const struct validate_config *cfg, enum validate_type type,
    enum ident_type itype, const char *ident, const char *token,
    const char *key_authz, struct validate_result *out)
{
	struct clock	 clk;
	unsigned char	 ip[16];

	memset(out, 0, sizeof(*out));
	if (cfg == NULL || ident == NULL || token == NULL || key_authz == NULL) {
		set_problem(out, "serverInternal", "validation called without "
		    "identifier, token or key authorization");
		return;
	}
	/* Checked here too: they end up in URLs, SNI and DNS queries. */
	if (itype == IDENT_IP ? inet_pton(AF_INET, ident, ip) != 1 &&
	    inet_pton(AF_INET6, ident, ip) != 1 : !dns_name_ok(ident)) {
		set_problem(out, "malformed", "bad %s identifier",
		    itype == IDENT_IP ? "IP" : "DNS");
		return;
	}
	if (!token_ok(token)) {
		set_problem(out, "malformed", "token is not base64url");
		return;
	}
	clock_start(&clk, cfg);
	switch (type) {
	case VALIDATE_HTTP01:
		validate_http01(cfg, &clk, itype, ident, token, key_authz, out);
		break;
	case VALIDATE_TLSALPN01:
		validate_tlsalpn01(cfg, &clk, itype, ident, key_authz, out);
		break;
	case VALIDATE_DNS01:
		validate_dns01(cfg, &clk, itype, ident, key_authz, out);
		break;
	default:
		set_problem(out, "malformed", "unknown challenge type");
		break;
	}
}
