/*
 * acmeclient: an RFC 8555 client over libcurl, OpenSSL and jansson (see
 * acmeclient.h for the interface).  The layers, bottom up:
 *
 *   http_do      one HTTP exchange; collects status, body, Replay-Nonce,
 *                Location, Retry-After and Content-Type
 *   acme_post    one signed request: nonce, JWS (jwk before the account
 *                exists, kid after), badNonce retries, problem documents
 *   poll_until   POST-as-GET a resource until its status leaves a set,
 *                sleeping as Retry-After says, within the caller's limit
 *   the public calls, one per step of issuance
 *
 * JWS signing is here; base64url, the JWK of a key and its thumbprint come
 * from acme/jws.c (iotca_jws), which the server side uses too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "acmeclient.h"
#include "http01.h"
#include "jws.h"

#define ACME_ERR_PREFIX	"urn:ietf:params:acme:error:"
#define BODY_MAX	(1024 * 1024)	/* a chain or an order list is far smaller */
#define NONCE_MAX	256
#define URL_MAX		2048

struct response {
	long		 status;
	char		*body;
	size_t		 len;
	long		 retry_after;	/* seconds; -1 if absent */
	char		 nonce[NONCE_MAX];
	char		 location[URL_MAX];
	char		 ctype[128];
	int		 toolong;	/* body exceeded BODY_MAX */
};

struct acme_client {
	CURL		*curl;
	char		 curl_err[CURL_ERROR_SIZE];
	char		*directory_url, *ca_file, *contact;
	struct curl_slist *resolve;
	long		 request_timeout_ms, poll_min_ms, poll_max_ms;
	int		 nonce_retries;

	EVP_PKEY	*key;
	const char	*alg;		/* JWS alg of key */
	const EVP_MD	*md;		/* its digest; NULL for EdDSA */
	size_t		 ec_half;	/* bytes of r (and s) for ECDSA, else 0 */
	json_t		*jwk;
	char		 thumbprint[JWS_THUMBPRINT_LEN];

	json_t		*dir;		/* the directory, once fetched */
	char		 nonce[NONCE_MAX];	/* "" when we hold none */
	char		*kid;		/* account URL, once known */
	struct acme_client_stats stats;
};

struct acme_order {
	char		*url;
	json_t		*obj;		/* the latest order object */
	char		**names;
	size_t		 nnames;
	EVP_PKEY	*key;		/* the certificate's key, after finalize */
	long		 retry_after;	/* of the latest response; -1 if none */
};

struct acme_authz {
	char		*url;
	json_t		*obj;		/* the latest authorization object */
	long		 retry_after;	/* of the latest response; -1 if none */
};

/* ---------------------------------------------------------------- errors */

static void __attribute__((format(printf, 4, 5)))
set_err(struct acme_error *err, long status, const char *type,
    const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL)
		return;
	err->status = status;
	snprintf(err->type, sizeof(err->type), "%s", type);
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
}

/* An OpenSSL failure: what we tried, and OpenSSL's own first reason. */
static void
set_ossl_err(struct acme_error *err, const char *what)
{
	unsigned long	e = ERR_get_error();
	char		buf[256];

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		snprintf(buf, sizeof(buf), "no reason given");
	ERR_clear_error();
	set_err(err, 0, "", "%s: %s", what, buf);
}

/* Fill err from an RFC 7807 problem object (an error response, or the
 * "error" member of a challenge or order). */
static void
set_problem(struct acme_error *err, long status, const json_t *p,
    const char *fallback)
{
	const char *type = json_string_value(json_object_get(p, "type"));
	const char *detail = json_string_value(json_object_get(p, "detail"));

	if (type != NULL && strncmp(type, ACME_ERR_PREFIX,
	    strlen(ACME_ERR_PREFIX)) == 0)
		type += strlen(ACME_ERR_PREFIX);
	set_err(err, status, type ? type : "", "%s",
	    detail ? detail : fallback);
}

/* ------------------------------------------------------------------ time */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date. */
static long
parse_retry_after(const char *v)
{
	char	*end;
	long	 n;
	time_t	 t;

	errno = 0;
	n = strtol(v, &end, 10);
	if (end != v && errno == 0 && n >= 0) {
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (*end == '\0')
			return n;
	}
	if ((t = curl_getdate(v, NULL)) == -1)
		return -1;
	return t > time(NULL) ? (long)(t - time(NULL)) : 0;
}

/* RFC 3339 date-time as used by ARI, to time_t (UTC). */
static int
parse_rfc3339(const char *s, time_t *out)
{
	struct tm	 tm;
	const char	*p;
	int		 sign, hh, mm;

	memset(&tm, 0, sizeof(tm));
	if ((p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL &&
	    (p = strptime(s, "%Y-%m-%dt%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	*out = timegm(&tm);
	if (*p == 'Z' || *p == 'z')
		return p[1] == '\0' ? 0 : -1;
	if ((*p != '+' && *p != '-') || sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 ||
	    strlen(p) != 6)
		return -1;
	sign = *p == '+' ? 1 : -1;
	*out -= sign * (hh * 3600 + mm * 60);
	return 0;
}

/* ------------------------------------------------------------------ HTTP */

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct response	*r = arg;
	size_t		 len = size * n;
	char		*nb;

	if (r->len + len > BODY_MAX) {
		r->toolong = 1;
		return 0;	/* makes curl fail the transfer */
	}
	if ((nb = realloc(r->body, r->len + len + 1)) == NULL)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

/* Copy a header's value (trimmed) into dst if its name is name. */
static int
header_value(const char *line, size_t len, const char *name, char *dst,
    size_t dstsz)
{
	size_t nl = strlen(name);

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return 0;
	line += nl + 1;
	len -= nl + 1;
	while (len > 0 && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' ||
	    line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len >= dstsz)
		len = dstsz - 1;	/* truncation is caught by its users */
	memcpy(dst, line, len);
	dst[len] = '\0';
	return 1;
}

static size_t
on_header(char *line, size_t size, size_t n, void *arg)
{
	struct response	*r = arg;
	size_t		 len = size * n;
	char		 ra[64];

	if (header_value(line, len, "Retry-After", ra, sizeof(ra)))
		r->retry_after = parse_retry_after(ra);
	else if (!header_value(line, len, "Replay-Nonce", r->nonce,
	    sizeof(r->nonce)) &&
	    !header_value(line, len, "Location", r->location,
	    sizeof(r->location)))
		(void)header_value(line, len, "Content-Type", r->ctype,
		    sizeof(r->ctype));
	return len;
}

static void
response_reset(struct response *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
	r->retry_after = -1;
}

enum method { M_GET, M_HEAD, M_POST };

/*
 * One HTTP exchange on the client's handle (connections are kept alive
 * between calls).  Any HTTP status is a success here; only failing to get
 * one is an error.
 */
static int
http_do(struct acme_client *c, enum method m, const char *url,
    const char *body, const char *accept, struct response *r,
    struct acme_error *err)
{
	struct curl_slist	*hdrs = NULL, *tmp;
	char			 acc[128];
	CURLcode		 rc;
	int			 ok = 1;

	response_reset(r);
	snprintf(acc, sizeof(acc), "Accept: %s", accept ? accept : "*/*");
	if ((tmp = curl_slist_append(hdrs, acc)) == NULL)
		goto nomem;
	hdrs = tmp;
	if (m == M_POST) {
		if ((tmp = curl_slist_append(hdrs,
		    "Content-Type: application/jose+json")) == NULL)
			goto nomem;
		hdrs = tmp;
	}
	ok = curl_easy_setopt(c->curl, CURLOPT_URL, url) == CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, r) == CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, r) == CURLE_OK &&
	    /* A HEAD leaves NOBODY set; clear it before choosing the method. */
	    curl_easy_setopt(c->curl, CURLOPT_NOBODY, 0L) == CURLE_OK;
	switch (m) {
	case M_GET:
		ok = ok && curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L) ==
		    CURLE_OK;
		break;
	case M_HEAD:
		ok = ok && curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L) ==
		    CURLE_OK;
		break;
	case M_POST:
		ok = ok && curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body) ==
		    CURLE_OK && curl_easy_setopt(c->curl,
		    CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) ==
		    CURLE_OK;
		break;
	}
	if (!ok) {
		curl_slist_free_all(hdrs);
		set_err(err, 0, "", "%s: cannot set up the request", url);
		return -1;
	}
	c->stats.requests++;
	c->curl_err[0] = '\0';
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(hdrs);
	/* Unhook the per-request pointers so that none outlives this call. */
	if (curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL) != CURLE_OK ||
	    (m == M_POST && curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS,
	    NULL) != CURLE_OK)) {
		set_err(err, 0, "", "%s: cannot reset the request", url);
		return -1;
	}
	if (rc != CURLE_OK) {
		set_err(err, 0, "", "%s: %s", url, r->toolong ?
		    "response too large" : c->curl_err[0] ? c->curl_err :
		    curl_easy_strerror(rc));
		return -1;
	}
	if (curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status) !=
	    CURLE_OK) {
		set_err(err, 0, "", "%s: no status", url);
		return -1;
	}
	return 0;
nomem:
	curl_slist_free_all(hdrs);
	set_err(err, 0, "", "out of memory");
	return -1;
}

/* The body as JSON (objects only). */
static json_t *
response_json(const struct response *r, const char *url, struct acme_error *err)
{
	json_error_t	 je;
	json_t		*j;

	if (r->body == NULL ||
	    (j = json_loadb(r->body, r->len, 0, &je)) == NULL) {
		set_err(err, r->status, "", "%s: reply is not JSON", url);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		set_err(err, r->status, "", "%s: reply is not a JSON object", url);
		return NULL;
	}
	return j;
}

/* An HTTP error status becomes err (from the problem document if any). */
static void
set_http_err(const struct response *r, const char *url, struct acme_error *err)
{
	json_t	*p = NULL;
	char	 fallback[URL_MAX + 64];

	snprintf(fallback, sizeof(fallback), "HTTP %ld from %s", r->status, url);
	if (r->body != NULL)
		p = json_loadb(r->body, r->len, 0, NULL);
	if (p != NULL && json_is_object(p))
		set_problem(err, r->status, p, fallback);
	else
		set_err(err, r->status, "", "%s", fallback);
	json_decref(p);
}

/* ------------------------------------------------------------- directory */

static const char *
dir_url(struct acme_client *c, const char *name)
{
	return json_string_value(json_object_get(c->dir, name));
}

int
acme_directory(struct acme_client *c, struct acme_error *err)
{
	struct response	 r = { 0 };
	json_t		*d;
	const char	*need[] = { "newNonce", "newAccount", "newOrder",
			    "revokeCert" };
	size_t		 i;

	if (c->dir != NULL)
		return 0;
	if (http_do(c, M_GET, c->directory_url, NULL, "application/json", &r,
	    err) == -1)
		goto fail;
	if (r.status != 200) {
		set_http_err(&r, c->directory_url, err);
		goto fail;
	}
	if ((d = response_json(&r, c->directory_url, err)) == NULL)
		goto fail;
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!json_is_string(json_object_get(d, need[i]))) {
			set_err(err, 0, "", "%s: directory lacks %s",
			    c->directory_url, need[i]);
			json_decref(d);
			goto fail;
		}
	c->dir = d;
	response_reset(&r);
	return 0;
fail:
	response_reset(&r);
	return -1;
}

int
acme_has_renewal_info(struct acme_client *c)
{
	struct acme_error err;

	return acme_directory(c, &err) == 0 && dir_url(c, "renewalInfo") != NULL;
}

/* ------------------------------------------------------------------- JWS */

/* Choose the JWS algorithm for the account key (RFC 7518 3.1, RFC 8037). */
static int
key_setup(struct acme_client *c, struct acme_error *err)
{
	switch (EVP_PKEY_get_base_id(c->key)) {
	case EVP_PKEY_EC:
		switch (EVP_PKEY_get_bits(c->key)) {
		case 256: c->alg = "ES256"; c->md = EVP_sha256(); c->ec_half = 32; break;
		case 384: c->alg = "ES384"; c->md = EVP_sha384(); c->ec_half = 48; break;
		case 521: c->alg = "ES512"; c->md = EVP_sha512(); c->ec_half = 66; break;
		default: goto bad;
		}
		break;
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(c->key) < 2048)
			goto bad;
		c->alg = "RS256";
		c->md = EVP_sha256();
		break;
	case EVP_PKEY_ED25519:
		c->alg = "EdDSA";
		c->md = NULL;
		break;
	default:
		goto bad;
	}
	if ((c->jwk = jws_pkey_to_jwk(c->key)) == NULL ||
	    jws_thumbprint(c->jwk, c->thumbprint, sizeof(c->thumbprint),
	    NULL) == -1) {
		set_err(err, 0, "", "cannot make the account key's JWK");
		return -1;
	}
	return 0;
bad:
	set_err(err, 0, "", "account key: use EC P-256/384/521, RSA >= 2048 "
	    "or Ed25519");
	return -1;
}

/* ECDSA's DER signature as JWS wants it: r || s, each half bytes wide. */
static unsigned char *
ecdsa_der_to_raw(const unsigned char *der, size_t derlen, size_t half,
    size_t *rawlen)
{
	const unsigned char	*p = der;
	const BIGNUM		*r, *s;
	ECDSA_SIG		*sig;
	unsigned char		*raw = NULL;

	if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) == NULL)
		return NULL;
	ECDSA_SIG_get0(sig, &r, &s);
	if ((raw = malloc(2 * half)) != NULL &&
	    (BN_bn2binpad(r, raw, (int)half) != (int)half ||
	    BN_bn2binpad(s, raw + half, (int)half) != (int)half)) {
		free(raw);
		raw = NULL;
	}
	ECDSA_SIG_free(sig);
	*rawlen = 2 * half;
	return raw;
}

/* The base64url signature of input with the account key. */
static char *
jws_sign(struct acme_client *c, const char *input, struct acme_error *err)
{
	EVP_MD_CTX	*md;
	unsigned char	*sig = NULL, *raw;
	size_t		 siglen = 0, rawlen;
	char		*b64 = NULL;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, c->md, NULL, c->key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input,
	    strlen(input)) != 1 ||
	    (sig = malloc(siglen)) == NULL ||
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input,
	    strlen(input)) != 1) {
		set_ossl_err(err, "JWS signature");
		goto out;
	}
	if (c->ec_half != 0) {
		if ((raw = ecdsa_der_to_raw(sig, siglen, c->ec_half,
		    &rawlen)) == NULL) {
			set_ossl_err(err, "JWS signature encoding");
			goto out;
		}
		free(sig);
		sig = raw;
		siglen = rawlen;
	}
	if ((b64 = b64url_encode(sig, siglen)) == NULL)
		set_err(err, 0, "", "out of memory");
out:
	free(sig);
	EVP_MD_CTX_free(md);
	return b64;
}

/* A flattened JWS JSON body (RFC 8555 6.2); payload NULL is POST-as-GET. */
static char *
jws_body(struct acme_client *c, const char *url, const char *payload,
    struct acme_error *err)
{
	json_t	*hdr;
	char	*hjson = NULL, *h64 = NULL, *p64 = NULL, *input = NULL;
	char	*s64 = NULL, *body = NULL;
	int	 ok;

	if ((hdr = json_object()) == NULL)
		goto nomem;
	ok = json_object_set_new(hdr, "alg", json_string(c->alg)) == 0 &&
	    json_object_set_new(hdr, "nonce", json_string(c->nonce)) == 0 &&
	    json_object_set_new(hdr, "url", json_string(url)) == 0 &&
	    (c->kid != NULL ?
	    json_object_set_new(hdr, "kid", json_string(c->kid)) == 0 :
	    json_object_set(hdr, "jwk", c->jwk) == 0);
	if (!ok || (hjson = json_dumps(hdr, JSON_COMPACT)) == NULL ||
	    (h64 = b64url_encode((unsigned char *)hjson, strlen(hjson))) == NULL ||
	    (p64 = payload == NULL ? strdup("") :
	    b64url_encode((const unsigned char *)payload, strlen(payload))) == NULL ||
	    asprintf(&input, "%s.%s", h64, p64) == -1) {
		input = NULL;
		goto nomem;
	}
	if ((s64 = jws_sign(c, input, err)) == NULL)
		goto out;
	if (asprintf(&body, "{\"protected\":\"%s\",\"payload\":\"%s\","
	    "\"signature\":\"%s\"}", h64, p64, s64) == -1) {
		body = NULL;
		goto nomem;
	}
	goto out;
nomem:
	set_err(err, 0, "", "out of memory");
out:
	json_decref(hdr);
	free(hjson);
	free(h64);
	free(p64);
	free(input);
	free(s64);
	return body;
}

/* ---------------------------------------------------------------- nonces */

static int
fetch_nonce(struct acme_client *c, struct acme_error *err)
{
	struct response	 r = { 0 };
	const char	*url;
	int		 rc = -1;

	if (acme_directory(c, err) == -1)
		return -1;
	url = dir_url(c, "newNonce");
	if (http_do(c, M_HEAD, url, NULL, NULL, &r, err) == -1)
		goto out;
	if (r.status != 200 && r.status != 204) {
		set_http_err(&r, url, err);
		goto out;
	}
	if (r.nonce[0] == '\0') {
		set_err(err, r.status, "", "%s: no Replay-Nonce", url);
		goto out;
	}
	memcpy(c->nonce, r.nonce, sizeof(c->nonce));
	rc = 0;
out:
	response_reset(&r);
	return rc;
}

static int
is_bad_nonce(const struct response *r)
{
	json_t		*p;
	const char	*type;
	int		 bad;

	if (r->status != 400 || r->body == NULL ||
	    (p = json_loadb(r->body, r->len, 0, NULL)) == NULL)
		return 0;
	type = json_string_value(json_object_get(p, "type"));
	bad = type != NULL && strcmp(type, ACME_ERR_PREFIX "badNonce") == 0;
	json_decref(p);
	return bad;
}

/*
 * A signed POST (payload NULL: POST-as-GET).  Every response carries a fresh
 * nonce (RFC 8555 6.5), kept for the next request; a badNonce answer is
 * retried with it.  HTTP errors become err; r holds the last response.
 */
static int
acme_post(struct acme_client *c, const char *url, const char *payload,
    const char *accept, struct response *r, struct acme_error *err)
{
	char	*body;
	int	 attempt, rc;

	for (attempt = 0;; attempt++) {
		if (c->nonce[0] == '\0' && fetch_nonce(c, err) == -1)
			return -1;
		if ((body = jws_body(c, url, payload, err)) == NULL)
			return -1;
		c->nonce[0] = '\0';	/* spent, whatever happens */
		rc = http_do(c, M_POST, url, body, accept, r, err);
		free(body);
		if (rc == -1)
			return -1;
		memcpy(c->nonce, r->nonce, sizeof(c->nonce));
		if (r->status < 400)
			return 0;
		if (!is_bad_nonce(r) || attempt >= c->nonce_retries)
			break;
		c->stats.bad_nonces++;
	}
	set_http_err(r, url, err);
	return -1;
}

/* acme_post and the reply as a JSON object. */
static json_t *
acme_post_json(struct acme_client *c, const char *url, const char *payload,
    struct response *r, struct acme_error *err)
{
	if (acme_post(c, url, payload, "application/json", r, err) == -1)
		return NULL;
	return response_json(r, url, err);
}

/* --------------------------------------------------------------- polling */

static int
status_in(const char *status, const char *const *set)
{
	for (; *set != NULL; set++)
		if (status != NULL && strcmp(status, *set) == 0)
			return 1;
	return 0;
}

/*
 * POST-as-GET url until its "status" is none of waiting, then return the
 * object.  Between polls wait what Retry-After says, else back off from
 * poll_min_ms to poll_max_ms; give up at deadline (monotonic ms), and at
 * once when the server asks for a wait past it.  first, if not NULL, is a
 * response already in hand (its object is taken over).
 */
static json_t *
poll_until(struct acme_client *c, const char *url, json_t *first,
    long first_retry, const char *const *waiting, long long deadline,
    struct acme_error *err)
{
	struct response	 r = { 0 };
	json_t		*obj = first;
	long long	 wait, backoff = c->poll_min_ms, left;
	long		 retry = first_retry;
	const char	*status;

	/* A Retry-After on the request that started the work counts too. */
	if (obj == NULL && retry > 0) {
		if ((long long)retry * 1000 > deadline - now_ms()) {
			set_err(err, 0, "", "%s: the server asks to retry in "
			    "%ld s, past the time limit", url, retry);
			return NULL;
		}
		c->stats.polls++;
		sleep_ms((long long)retry * 1000);
	}
	for (;;) {
		if (obj == NULL) {
			obj = acme_post_json(c, url, NULL, &r, err);
			retry = r.retry_after;
			response_reset(&r);
			if (obj == NULL)
				return NULL;
		}
		status = json_string_value(json_object_get(obj, "status"));
		if (!status_in(status, waiting))
			return obj;
		left = deadline - now_ms();
		if (retry > 0) {
			wait = (long long)retry * 1000;
			if (wait > left) {
				set_err(err, 0, "", "%s still %s; the server "
				    "asks to retry in %ld s, past the time "
				    "limit", url, status, retry);
				json_decref(obj);
				return NULL;
			}
		} else {
			wait = backoff < left ? backoff : left;
			backoff = backoff * 2 > c->poll_max_ms ? c->poll_max_ms :
			    backoff * 2;
		}
		if (left <= 0) {
			set_err(err, 0, "", "%s still %s at the time limit",
			    url, status);
			json_decref(obj);
			return NULL;
		}
		json_decref(obj);
		obj = NULL;
		c->stats.polls++;
		sleep_ms(wait);
	}
}

/* ---------------------------------------------------------------- client */

struct acme_client *
acme_client_new(const struct acme_client_config *cfg, struct acme_error *err)
{
	struct acme_client	*c;
	int			 ok;

	if (cfg == NULL || cfg->directory_url == NULL) {
		set_err(err, 0, "", "no directory URL");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		set_err(err, 0, "", "out of memory");
		return NULL;
	}
	c->request_timeout_ms = cfg->request_timeout_ms > 0 ?
	    cfg->request_timeout_ms : 30000;
	c->nonce_retries = cfg->nonce_retries > 0 ? cfg->nonce_retries : 10;
	c->poll_min_ms = cfg->poll_min_ms > 0 ? cfg->poll_min_ms : 250;
	c->poll_max_ms = cfg->poll_max_ms > 0 ? cfg->poll_max_ms : 10000;
	if ((c->directory_url = strdup(cfg->directory_url)) == NULL ||
	    (cfg->ca_file != NULL && (c->ca_file = strdup(cfg->ca_file)) == NULL) ||
	    (cfg->contact != NULL && (c->contact = strdup(cfg->contact)) == NULL)) {
		set_err(err, 0, "", "out of memory");
		goto fail;
	}
	if (cfg->resolve != NULL &&
	    (c->resolve = curl_slist_append(NULL, cfg->resolve)) == NULL) {
		set_err(err, 0, "", "out of memory");
		goto fail;
	}
	if (cfg->account_key != NULL) {
		if (EVP_PKEY_up_ref(cfg->account_key) != 1) {
			set_ossl_err(err, "account key");
			goto fail;
		}
		c->key = cfg->account_key;
	} else if ((c->key = EVP_EC_gen("P-256")) == NULL) {
		set_ossl_err(err, "account key generation");
		goto fail;
	}
	if (key_setup(c, err) == -1)
		goto fail;
	if ((c->curl = curl_easy_init()) == NULL) {
		set_err(err, 0, "", "curl_easy_init failed");
		goto fail;
	}
	ok = curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_err) == CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS,
	    c->request_timeout_ms) == CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https,http") ==
	    CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	    /* One request at a time per client: HTTP/2 buys nothing, and
	     * Debian 12's curl (7.88) stalled on HTTP/2 streams to Pebble
	     * under load, waiting for answers already sent. */
	    curl_easy_setopt(c->curl, CURLOPT_HTTP_VERSION,
	    (long)CURL_HTTP_VERSION_1_1) == CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_USERAGENT,
	    "iotca-acmeclient/1") == CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
	    curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header) ==
	    CURLE_OK &&
	    (c->ca_file == NULL ||
	    curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_file) == CURLE_OK) &&
	    (c->resolve == NULL ||
	    curl_easy_setopt(c->curl, CURLOPT_RESOLVE, c->resolve) == CURLE_OK);
	if (!ok) {
		set_err(err, 0, "", "cannot configure libcurl");
		goto fail;
	}
	return c;
fail:
	acme_client_free(c);
	return NULL;
}

void
acme_client_free(struct acme_client *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	EVP_PKEY_free(c->key);
	json_decref(c->jwk);
	json_decref(c->dir);
	free(c->directory_url);
	free(c->ca_file);
	free(c->contact);
	curl_slist_free_all(c->resolve);
	free(c->kid);
	free(c);
}

const struct acme_client_stats *
acme_client_stats(const struct acme_client *c)
{
	return &c->stats;
}

/* --------------------------------------------------------------- account */

int
acme_account_ensure(struct acme_client *c, struct acme_error *err)
{
	struct response	 r = { 0 };
	json_t		*p, *acct = NULL;
	char		*payload = NULL;
	const char	*url;
	int		 rc = -1;

	if (c->kid != NULL)
		return 0;
	if (acme_directory(c, err) == -1)
		return -1;
	url = dir_url(c, "newAccount");
	if ((p = json_pack("{s:b}", "termsOfServiceAgreed", 1)) == NULL ||
	    (c->contact != NULL && json_object_set_new(p, "contact",
	    json_pack("[s]", c->contact)) != 0) ||
	    (payload = json_dumps(p, JSON_COMPACT)) == NULL) {
		set_err(err, 0, "", "out of memory");
		goto out;
	}
	if ((acct = acme_post_json(c, url, payload, &r, err)) == NULL)
		goto out;
	if (r.status != 200 && r.status != 201) {
		set_err(err, r.status, "", "%s: unexpected HTTP %ld", url, r.status);
		goto out;
	}
	if (r.location[0] == '\0') {
		set_err(err, r.status, "", "%s: no Location for the account", url);
		goto out;
	}
	if (!status_in(json_string_value(json_object_get(acct, "status")),
	    (const char *[]){ "valid", NULL })) {
		set_err(err, r.status, "", "account %s is not valid", r.location);
		goto out;
	}
	if ((c->kid = strdup(r.location)) == NULL) {
		set_err(err, 0, "", "out of memory");
		goto out;
	}
	rc = 0;
out:
	json_decref(p);
	json_decref(acct);
	free(payload);
	response_reset(&r);
	return rc;
}

const char *
acme_account_url(const struct acme_client *c)
{
	return c->kid;
}

const char *
acme_account_thumbprint(const struct acme_client *c)
{
	return c->thumbprint;
}

/* ----------------------------------------------------------------- order */

static int
is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static json_t *
identifiers(const char *const *names, size_t n)
{
	json_t	*a;
	size_t	 i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (json_array_append_new(a, json_pack("{s:s,s:s}", "type",
		    is_ip(names[i]) ? "ip" : "dns", "value", names[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

void
acme_order_free(struct acme_order *o)
{
	size_t i;

	if (o == NULL)
		return;
	free(o->url);
	json_decref(o->obj);
	for (i = 0; i < o->nnames; i++)
		free(o->names[i]);
	free(o->names);
	EVP_PKEY_free(o->key);
	free(o);
}

struct acme_order *
acme_order_new(struct acme_client *c, const char *const *names, size_t n,
    struct acme_error *err)
{
	struct response	 r = { 0 };
	struct acme_order *o = NULL;
	json_t		*p = NULL, *ids;
	char		*payload = NULL;
	const char	*url;
	size_t		 i;

	if (n == 0) {
		set_err(err, 0, "", "an order needs at least one name");
		return NULL;
	}
	if (acme_account_ensure(c, err) == -1)
		return NULL;
	url = dir_url(c, "newOrder");
	if ((o = calloc(1, sizeof(*o))) == NULL ||
	    (o->names = calloc(n, sizeof(*o->names))) == NULL)
		goto nomem;
	for (i = 0; i < n; i++, o->nnames++)
		if ((o->names[i] = strdup(names[i])) == NULL)
			goto nomem;
	if ((ids = identifiers(names, n)) == NULL ||
	    (p = json_pack("{s:o}", "identifiers", ids)) == NULL ||
	    (payload = json_dumps(p, JSON_COMPACT)) == NULL)
		goto nomem;
	if ((o->obj = acme_post_json(c, url, payload, &r, err)) == NULL)
		goto fail;
	if (r.status != 201 || r.location[0] == '\0') {
		set_err(err, r.status, "", "%s: expected 201 with Location, "
		    "got HTTP %ld", url, r.status);
		goto fail;
	}
	if (!json_is_array(json_object_get(o->obj, "authorizations")) ||
	    !json_is_string(json_object_get(o->obj, "finalize"))) {
		set_err(err, r.status, "", "%s: order lacks authorizations or "
		    "finalize", r.location);
		goto fail;
	}
	if ((o->url = strdup(r.location)) == NULL)
		goto nomem;
	o->retry_after = r.retry_after;
	json_decref(p);
	free(payload);
	response_reset(&r);
	return o;
nomem:
	set_err(err, 0, "", "out of memory");
fail:
	json_decref(p);
	free(payload);
	response_reset(&r);
	acme_order_free(o);
	return NULL;
}

const char *
acme_order_url(const struct acme_order *o)
{
	return o->url;
}

const char *
acme_order_status(const struct acme_order *o)
{
	return json_string_value(json_object_get(o->obj, "status"));
}

EVP_PKEY *
acme_order_key(const struct acme_order *o)
{
	return o->key;
}

time_t
acme_order_expires(const struct acme_order *o)
{
	const char	*v;
	struct tm	 tm;

	v = json_string_value(json_object_get(o->obj, "expires"));
	memset(&tm, 0, sizeof(tm));
	if (v == NULL || sscanf(v, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

/* Replace the order object with a fresh one; NULL keeps the old. */
static void
order_set(struct acme_order *o, json_t *obj)
{
	json_decref(o->obj);
	o->obj = obj;
}

/* ----------------------------------------------------------------- authz */

struct pending_authz {
	const char	*url;
	char		*token;		/* published in the responder, or NULL */
	json_t		*obj;		/* the authorization after the POST */
	long		 retry;
};

/* The http-01 challenge of an authorization, or NULL. */
static json_t *
http01_challenge(json_t *authz)
{
	json_t	*ch;
	size_t	 i;

	json_array_foreach(json_object_get(authz, "challenges"), i, ch) {
		const char *type = json_string_value(json_object_get(ch, "type"));

		if (type != NULL && strcmp(type, "http-01") == 0)
			return ch;
	}
	return NULL;
}

/* The reason an authorization is invalid: its failed challenge's error. */
static void
set_authz_err(struct acme_error *err, const char *url, json_t *authz)
{
	json_t	*ch, *e;
	size_t	 i;
	char	 fallback[URL_MAX + 64];

	snprintf(fallback, sizeof(fallback), "%s is %s", url,
	    json_string_value(json_object_get(authz, "status")));
	json_array_foreach(json_object_get(authz, "challenges"), i, ch)
		if ((e = json_object_get(ch, "error")) != NULL) {
			set_problem(err, 0, e, fallback);
			return;
		}
	set_err(err, 0, "", "%s", fallback);
}

/* Publish the key authorization and tell the server to validate. */
static int
start_http01(struct acme_client *c, struct acme_http01 *srv,
    struct pending_authz *pa, struct acme_error *err)
{
	struct response	 r = { 0 };
	json_t		*authz, *ch, *chobj = NULL;
	const char	*token, *churl, *st;
	char		*ka = NULL;
	int		 rc = -1;

	if ((authz = acme_post_json(c, pa->url, NULL, &r, err)) == NULL)
		goto out;
	st = json_string_value(json_object_get(authz, "status"));
	if (status_in(st, (const char *[]){ "valid", NULL })) {
		pa->obj = authz;	/* nothing to do (reused authorization) */
		authz = NULL;
		rc = 0;
		goto out;
	}
	if (!status_in(st, (const char *[]){ "pending", NULL })) {
		set_authz_err(err, pa->url, authz);
		goto out;
	}
	if ((ch = http01_challenge(authz)) == NULL ||
	    (token = json_string_value(json_object_get(ch, "token"))) == NULL ||
	    (churl = json_string_value(json_object_get(ch, "url"))) == NULL) {
		set_err(err, 0, "", "%s offers no usable http-01 challenge",
		    pa->url);
		goto out;
	}
	if (asprintf(&ka, "%s.%s", token, c->thumbprint) == -1) {
		ka = NULL;
		set_err(err, 0, "", "out of memory");
		goto out;
	}
	if (acme_http01_add(srv, token, ka) == -1 ||
	    (pa->token = strdup(token)) == NULL) {
		set_err(err, 0, "", "cannot publish token %s", token);
		goto out;
	}
	/* An empty object asks the server to validate (RFC 8555 7.5.1). */
	if ((chobj = acme_post_json(c, churl, "{}", &r, err)) == NULL)
		goto out;
	st = json_string_value(json_object_get(chobj, "status"));
	if (status_in(st, (const char *[]){ "invalid", NULL })) {
		json_t *e = json_object_get(chobj, "error");

		set_problem(err, r.status, e, "challenge invalid");
		goto out;
	}
	pa->retry = r.retry_after;
	rc = 0;
out:
	json_decref(authz);
	json_decref(chobj);
	free(ka);
	response_reset(&r);
	return rc;
}

int
acme_order_authorize_http01(struct acme_client *c, struct acme_order *o,
    struct acme_http01 *srv, long timeout_ms, struct acme_error *err)
{
	static const char *const waiting[] = { "pending", NULL };
	struct pending_authz	*pa;
	json_t			*urls = json_object_get(o->obj, "authorizations");
	json_t			*u, *obj;
	long long		 deadline = now_ms() + timeout_ms;
	size_t			 i, n = json_array_size(urls);
	int			 rc = -1;

	if ((pa = calloc(n ? n : 1, sizeof(*pa))) == NULL) {
		set_err(err, 0, "", "out of memory");
		return -1;
	}
	json_array_foreach(urls, i, u)
		if ((pa[i].url = json_string_value(u)) == NULL) {
			set_err(err, 0, "", "%s: bad authorization URL", o->url);
			goto out;
		}
	/* Start every validation first, so that the server runs them at once. */
	for (i = 0; i < n; i++)
		if (start_http01(c, srv, &pa[i], err) == -1)
			goto out;
	for (i = 0; i < n; i++) {
		if (pa[i].obj != NULL)
			continue;
		obj = poll_until(c, pa[i].url, NULL, pa[i].retry, waiting,
		    deadline, err);
		if (obj == NULL)
			goto out;
		if (!status_in(json_string_value(json_object_get(obj, "status")),
		    (const char *[]){ "valid", NULL })) {
			set_authz_err(err, pa[i].url, obj);
			json_decref(obj);
			goto out;
		}
		json_decref(obj);
	}
	rc = 0;
out:
	for (i = 0; i < n; i++) {
		if (pa[i].token != NULL)
			acme_http01_remove(srv, pa[i].token);
		free(pa[i].token);
		json_decref(pa[i].obj);
	}
	free(pa);
	return rc;
}

/* -------------------------------------------------------------- finalize */

/* A DER CSR for names (subjectAltName only, no subject), signed by key. */
static unsigned char *
make_csr(const struct acme_order *o, EVP_PKEY *key, size_t *len,
    struct acme_error *err)
{
	X509_REQ		*req = NULL;
	GENERAL_NAMES		*gens = NULL;
	GENERAL_NAME		*gen;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION		*ext = NULL;
	const EVP_MD		*md;
	unsigned char		*der = NULL;
	ASN1_IA5STRING		*ia5;
	ASN1_OCTET_STRING	*ip;
	int			 dlen;
	size_t			 i;

	/* SHA-384 for P-384 and larger (iotca policy); none for EdDSA. */
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519)
		md = NULL;
	else if (EVP_PKEY_get_bits(key) >= 384 &&
	    EVP_PKEY_get_base_id(key) == EVP_PKEY_EC)
		md = EVP_PKEY_get_bits(key) > 384 ? EVP_sha512() : EVP_sha384();
	else
		md = EVP_sha256();
	if ((req = X509_REQ_new()) == NULL || X509_REQ_set_version(req, 0) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1 ||
	    (gens = sk_GENERAL_NAME_new_null()) == NULL)
		goto ossl;
	for (i = 0; i < o->nnames; i++) {
		if ((gen = GENERAL_NAME_new()) == NULL)
			goto ossl;
		if (is_ip(o->names[i])) {
			if ((ip = a2i_IPADDRESS(o->names[i])) == NULL) {
				GENERAL_NAME_free(gen);
				goto ossl;
			}
			GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
		} else {
			if ((ia5 = ASN1_IA5STRING_new()) == NULL ||
			    ASN1_STRING_set(ia5, o->names[i], -1) != 1) {
				ASN1_IA5STRING_free(ia5);
				GENERAL_NAME_free(gen);
				goto ossl;
			}
			GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
		}
		if (sk_GENERAL_NAME_push(gens, gen) == 0) {
			GENERAL_NAME_free(gen);
			goto ossl;
		}
	}
	if ((exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    (ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) == NULL ||
	    sk_X509_EXTENSION_push(exts, ext) == 0)
		goto ossl;
	ext = NULL;	/* owned by exts */
	if (X509_REQ_add_extensions(req, exts) != 1 ||
	    X509_REQ_sign(req, key, md) <= 0 ||
	    (dlen = i2d_X509_REQ(req, &der)) <= 0)
		goto ossl;
	*len = (size_t)dlen;
	goto out;
ossl:
	set_ossl_err(err, "CSR");
	OPENSSL_free(der);
	der = NULL;
out:
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_REQ_free(req);
	return der;
}

int
acme_order_finalize(struct acme_client *c, struct acme_order *o, EVP_PKEY *key,
    long timeout_ms, struct acme_error *err)
{
	static const char *const before[] = { "pending", NULL };
	static const char *const during[] = { "processing", "ready", NULL };
	struct response	 r = { 0 };
	long long	 deadline = now_ms() + timeout_ms;
	unsigned char	*der = NULL;
	size_t		 derlen = 0;
	char		*csr64 = NULL, *payload = NULL;
	const char	*fin, *st;
	json_t		*obj;
	int		 rc = -1;

	if (key != NULL) {
		if (EVP_PKEY_up_ref(key) != 1) {
			set_ossl_err(err, "certificate key");
			return -1;
		}
	} else if ((key = EVP_EC_gen("P-384")) == NULL) {
		set_ossl_err(err, "certificate key generation");
		return -1;
	}
	EVP_PKEY_free(o->key);
	o->key = key;
	/* The order turns ready once the server has seen every authorization
	 * valid; it may lag the authorizations a little. */
	if ((obj = poll_until(c, o->url, NULL, -1, before, deadline, err)) == NULL)
		return -1;
	order_set(o, obj);
	st = acme_order_status(o);
	if (!status_in(st, (const char *[]){ "ready", NULL })) {
		set_err(err, 0, "", "order %s is %s, not ready", o->url, st);
		return -1;
	}
	if ((fin = json_string_value(json_object_get(o->obj, "finalize"))) ==
	    NULL) {
		set_err(err, 0, "", "order %s has no finalize URL", o->url);
		return -1;
	}
	if ((der = make_csr(o, key, &derlen, err)) == NULL)
		return -1;
	if ((csr64 = b64url_encode(der, derlen)) == NULL ||
	    asprintf(&payload, "{\"csr\":\"%s\"}", csr64) == -1) {
		payload = NULL;
		set_err(err, 0, "", "out of memory");
		goto out;
	}
	if ((obj = acme_post_json(c, fin, payload, &r, err)) == NULL)
		goto out;
	/* A server that says "ready" after finalize has not started yet. */
	if ((obj = poll_until(c, o->url, obj, r.retry_after, during, deadline,
	    err)) == NULL)
		goto out;
	order_set(o, obj);
	st = acme_order_status(o);
	if (!status_in(st, (const char *[]){ "valid", NULL })) {
		json_t *e = json_object_get(o->obj, "error");
		char fallback[URL_MAX + 32];

		snprintf(fallback, sizeof(fallback), "order %s is %s", o->url, st);
		set_problem(err, 0, e, fallback);
		goto out;
	}
	if (!json_is_string(json_object_get(o->obj, "certificate"))) {
		set_err(err, 0, "", "order %s is valid without a certificate",
		    o->url);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(der);
	free(csr64);
	free(payload);
	response_reset(&r);
	return rc;
}

int
acme_order_certificate(struct acme_client *c, struct acme_order *o, char **pem,
    struct acme_error *err)
{
	struct response	 r = { 0 };
	const char	*url = json_string_value(json_object_get(o->obj,
			    "certificate"));

	*pem = NULL;
	if (url == NULL) {
		set_err(err, 0, "", "order %s has no certificate yet", o->url);
		return -1;
	}
	if (acme_post(c, url, NULL, "application/pem-certificate-chain", &r,
	    err) == -1)
		goto fail;
	if (r.body == NULL || strncmp(r.body, "-----BEGIN CERTIFICATE-----",
	    27) != 0) {
		set_err(err, r.status, "", "%s: not a PEM certificate chain", url);
		goto fail;
	}
	*pem = r.body;		/* NUL-terminated by on_body */
	r.body = NULL;
	response_reset(&r);
	return 0;
fail:
	response_reset(&r);
	return -1;
}

/* ----------------------------------------------------- orders step by step */

/* The order's names, from its identifiers (for make_csr). */
static int
order_names_from_obj(struct acme_order *o)
{
	json_t	*ids = json_object_get(o->obj, "identifiers"), *id;
	size_t	 i, n = json_array_size(ids);

	if (n == 0 || (o->names = calloc(n, sizeof(*o->names))) == NULL)
		return -1;
	json_array_foreach(ids, i, id) {
		const char *v = json_string_value(json_object_get(id, "value"));

		if (v == NULL || (o->names[i] = strdup(v)) == NULL)
			return -1;
		o->nnames++;
	}
	return 0;
}

/* An order object has what the steps below rely on. */
static int
order_obj_ok(const json_t *obj)
{
	return json_is_string(json_object_get(obj, "status")) &&
	    json_is_array(json_object_get(obj, "authorizations")) &&
	    json_is_string(json_object_get(obj, "finalize"));
}

struct acme_order *
acme_order_load(struct acme_client *c, const char *url, struct acme_error *err)
{
	struct response	 r = { 0 };
	struct acme_order *o;

	if (acme_account_ensure(c, err) == -1)
		return NULL;
	if ((o = calloc(1, sizeof(*o))) == NULL ||
	    (o->url = strdup(url)) == NULL) {
		set_err(err, 0, "", "out of memory");
		goto fail;
	}
	if ((o->obj = acme_post_json(c, url, NULL, &r, err)) == NULL)
		goto fail;
	if (!order_obj_ok(o->obj)) {
		set_err(err, r.status, "", "%s: not an order (no status, "
		    "authorizations or finalize)", url);
		goto fail;
	}
	if (order_names_from_obj(o) == -1) {
		set_err(err, r.status, "", "%s: the order's identifiers are "
		    "unusable", url);
		goto fail;
	}
	o->retry_after = r.retry_after;
	response_reset(&r);
	return o;
fail:
	response_reset(&r);
	acme_order_free(o);
	return NULL;
}

int
acme_order_refresh(struct acme_client *c, struct acme_order *o,
    struct acme_error *err)
{
	struct response	 r = { 0 };
	json_t		*obj;

	if ((obj = acme_post_json(c, o->url, NULL, &r, err)) == NULL)
		goto fail;
	if (!order_obj_ok(obj)) {
		json_decref(obj);
		set_err(err, r.status, "", "%s: not an order", o->url);
		goto fail;
	}
	order_set(o, obj);
	o->retry_after = r.retry_after;
	response_reset(&r);
	return 0;
fail:
	response_reset(&r);
	return -1;
}

size_t
acme_order_authz_count(const struct acme_order *o)
{
	return json_array_size(json_object_get(o->obj, "authorizations"));
}

const char *
acme_order_authz_url(const struct acme_order *o, size_t i)
{
	return json_string_value(json_array_get(json_object_get(o->obj,
	    "authorizations"), i));
}

long
acme_order_retry_after(const struct acme_order *o)
{
	return o->retry_after;
}

int
acme_order_finalize_csr(struct acme_client *c, struct acme_order *o,
    const unsigned char *csr_der, size_t csr_len, struct acme_error *err)
{
	struct response	 r = { 0 };
	const char	*fin;
	char		*csr64 = NULL, *payload = NULL;
	json_t		*obj;
	int		 rc = -1;

	if (csr_der == NULL || csr_len == 0) {
		set_err(err, 0, "", "no CSR to finalize order %s with", o->url);
		return -1;
	}
	if ((fin = json_string_value(json_object_get(o->obj, "finalize"))) ==
	    NULL) {
		set_err(err, 0, "", "order %s has no finalize URL", o->url);
		return -1;
	}
	if ((csr64 = b64url_encode(csr_der, csr_len)) == NULL ||
	    asprintf(&payload, "{\"csr\":\"%s\"}", csr64) == -1) {
		payload = NULL;
		set_err(err, 0, "", "out of memory");
		goto out;
	}
	if ((obj = acme_post_json(c, fin, payload, &r, err)) == NULL)
		goto out;
	if (!order_obj_ok(obj)) {
		json_decref(obj);
		set_err(err, r.status, "", "%s: the answer is not an order", fin);
		goto out;
	}
	order_set(o, obj);
	o->retry_after = r.retry_after;
	rc = 0;
out:
	free(csr64);
	free(payload);
	response_reset(&r);
	return rc;
}

void
acme_order_problem(const struct acme_order *o, struct acme_error *err)
{
	char	fallback[URL_MAX + 32];

	snprintf(fallback, sizeof(fallback), "order %s is %s", o->url,
	    acme_order_status(o) ? acme_order_status(o) : "without status");
	set_problem(err, 0, json_object_get(o->obj, "error"), fallback);
}

/* ---------------------------------------------------------- authorizations */

int
acme_has_new_authz(struct acme_client *c)
{
	struct acme_error err;

	return acme_directory(c, &err) == 0 && dir_url(c, "newAuthz") != NULL;
}

int
acme_has_subdomain_auth(struct acme_client *c)
{
	return acme_has_new_authz(c) && json_is_true(json_object_get(
	    json_object_get(c->dir, "meta"), "subdomainAuthAllowed"));
}

void
acme_authz_free(struct acme_authz *a)
{
	if (a == NULL)
		return;
	free(a->url);
	json_decref(a->obj);
	free(a);
}

static int
authz_obj_ok(const json_t *obj)
{
	const json_t *id = json_object_get(obj, "identifier");

	return json_is_string(json_object_get(obj, "status")) &&
	    json_is_string(json_object_get(id, "value")) &&
	    json_is_array(json_object_get(obj, "challenges"));
}

struct acme_authz *
acme_authz_new(struct acme_client *c, const char *name, int subdomains,
    struct acme_error *err)
{
	struct response	 r = { 0 };
	struct acme_authz *a = NULL;
	json_t		*p = NULL, *id;
	char		*payload = NULL;
	const char	*url;

	if (acme_account_ensure(c, err) == -1)
		return NULL;
	if ((url = dir_url(c, "newAuthz")) == NULL) {
		set_err(err, 0, "", "%s: the server offers no newAuthz "
		    "(pre-authorization)", c->directory_url);
		return NULL;
	}
	if ((id = json_pack("{s:s,s:s}", "type", "dns", "value", name)) ==
	    NULL || (subdomains && json_object_set_new(id,
	    "subdomainAuthAllowed", json_true()) != 0)) {
		json_decref(id);
		set_err(err, 0, "", "out of memory");
		goto fail;
	}
	/* "o" takes id over, also when packing fails. */
	if ((p = json_pack("{s:o}", "identifier", id)) == NULL ||
	    (payload = json_dumps(p, JSON_COMPACT)) == NULL) {
		set_err(err, 0, "", "out of memory");
		goto fail;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		set_err(err, 0, "", "out of memory");
		goto fail;
	}
	if ((a->obj = acme_post_json(c, url, payload, &r, err)) == NULL)
		goto fail;
	if ((r.status != 200 && r.status != 201) || r.location[0] == '\0') {
		set_err(err, r.status, "", "%s: expected 201 with Location, "
		    "got HTTP %ld", url, r.status);
		goto fail;
	}
	if (!authz_obj_ok(a->obj)) {
		set_err(err, r.status, "", "%s: not an authorization",
		    r.location);
		goto fail;
	}
	if (subdomains && !acme_authz_subdomains(a)) {
		set_err(err, r.status, "", "%s: the server did not grant "
		    "subdomainAuthAllowed for %s", r.location, name);
		goto fail;
	}
	if ((a->url = strdup(r.location)) == NULL) {
		set_err(err, 0, "", "out of memory");
		goto fail;
	}
	a->retry_after = r.retry_after;
	json_decref(p);
	free(payload);
	response_reset(&r);
	return a;
fail:
	json_decref(p);
	free(payload);
	response_reset(&r);
	acme_authz_free(a);
	return NULL;
}

struct acme_authz *
acme_authz_load(struct acme_client *c, const char *url, struct acme_error *err)
{
	struct response	 r = { 0 };
	struct acme_authz *a;

	if (acme_account_ensure(c, err) == -1)
		return NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->url = strdup(url)) == NULL) {
		set_err(err, 0, "", "out of memory");
		goto fail;
	}
	if ((a->obj = acme_post_json(c, url, NULL, &r, err)) == NULL)
		goto fail;
	if (!authz_obj_ok(a->obj)) {
		set_err(err, r.status, "", "%s: not an authorization", url);
		goto fail;
	}
	a->retry_after = r.retry_after;
	response_reset(&r);
	return a;
fail:
	response_reset(&r);
	acme_authz_free(a);
	return NULL;
}

const char *
acme_authz_url(const struct acme_authz *a)
{
	return a->url;
}

const char *
acme_authz_status(const struct acme_authz *a)
{
	return json_string_value(json_object_get(a->obj, "status"));
}

const char *
acme_authz_name(const struct acme_authz *a)
{
	return json_string_value(json_object_get(json_object_get(a->obj,
	    "identifier"), "value"));
}

int
acme_authz_subdomains(const struct acme_authz *a)
{
	return json_is_true(json_object_get(a->obj, "subdomainAuthAllowed"));
}

int
acme_authz_wildcard(const struct acme_authz *a)
{
	return json_is_true(json_object_get(a->obj, "wildcard"));
}

time_t
acme_authz_expires(const struct acme_authz *a)
{
	const char	*v = json_string_value(json_object_get(a->obj, "expires"));
	time_t		 t;

	if (v == NULL || parse_rfc3339(v, &t) == -1)
		return 0;
	return t;
}

/* The authorization's challenge of type, or NULL. */
static json_t *
authz_challenge(const struct acme_authz *a, const char *type)
{
	json_t	*ch;
	size_t	 i;

	json_array_foreach(json_object_get(a->obj, "challenges"), i, ch) {
		const char *t = json_string_value(json_object_get(ch, "type"));

		if (t != NULL && strcmp(t, type) == 0)
			return ch;
	}
	return NULL;
}

int
acme_dns01_txt(const struct acme_client *c, const char *token, char *txt,
    size_t txtlen)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;
	char		*ka = NULL, *b64;
	int		 rc = -1;

	if (asprintf(&ka, "%s.%s", token, c->thumbprint) == -1)
		return -1;
	if (EVP_Digest(ka, strlen(ka), md, &mdlen, EVP_sha256(), NULL) == 1 &&
	    (b64 = b64url_encode(md, mdlen)) != NULL) {
		if (strlen(b64) < txtlen) {
			memcpy(txt, b64, strlen(b64) + 1);
			rc = 0;
		}
		free(b64);
	}
	free(ka);
	return rc;
}

int
acme_authz_dns01_txt(struct acme_client *c, const struct acme_authz *a,
    char *txt, size_t txtlen, struct acme_error *err)
{
	json_t		*ch = authz_challenge(a, "dns-01");
	const char	*token = json_string_value(json_object_get(ch, "token"));

	if (ch == NULL || token == NULL || token[0] == '\0') {
		set_err(err, 0, "", "%s offers no usable dns-01 challenge",
		    a->url);
		return -1;
	}
	if (acme_dns01_txt(c, token, txt, txtlen) == -1) {
		set_err(err, 0, "", "cannot make the dns-01 key authorization");
		return -1;
	}
	return 0;
}

int
acme_authz_respond(struct acme_client *c, struct acme_authz *a,
    const char *type, struct acme_error *err)
{
	struct response	 r = { 0 };
	json_t		*ch = authz_challenge(a, type), *obj;
	const char	*url = json_string_value(json_object_get(ch, "url"));
	int		 rc = -1;

	if (url == NULL) {
		set_err(err, 0, "", "%s offers no %s challenge", a->url, type);
		return -1;
	}
	/* An empty object asks the server to validate (RFC 8555 7.5.1). */
	if ((obj = acme_post_json(c, url, "{}", &r, err)) == NULL)
		goto out;
	if (status_in(json_string_value(json_object_get(obj, "status")),
	    (const char *[]){ "invalid", NULL }))
		set_problem(err, r.status, json_object_get(obj, "error"),
		    "challenge invalid");
	else {
		a->retry_after = r.retry_after;
		rc = 0;
	}
	json_decref(obj);
out:
	response_reset(&r);
	return rc;
}

int
acme_authz_wait(struct acme_client *c, struct acme_authz *a, long timeout_ms,
    struct acme_error *err)
{
	static const char *const waiting[] = { "pending", NULL };
	json_t	*obj;

	if ((obj = poll_until(c, a->url, NULL, a->retry_after, waiting,
	    now_ms() + timeout_ms, err)) == NULL)
		return -1;
	if (!authz_obj_ok(obj)) {
		json_decref(obj);
		set_err(err, 0, "", "%s: not an authorization", a->url);
		return -1;
	}
	json_decref(a->obj);
	a->obj = obj;
	a->retry_after = -1;
	if (!status_in(acme_authz_status(a), (const char *[]){ "valid",
	    NULL })) {
		set_authz_err(err, a->url, a->obj);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------- revocation, ARI */

static X509 *
first_cert(const char *pem, struct acme_error *err)
{
	BIO	*b;
	X509	*x = NULL;

	if ((b = BIO_new_mem_buf(pem, -1)) == NULL ||
	    (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL)
		set_ossl_err(err, "certificate");
	BIO_free(b);
	return x;
}

int
acme_revoke(struct acme_client *c, const char *pem, int reason,
    struct acme_error *err)
{
	struct response	 r = { 0 };
	X509		*x;
	unsigned char	*der = NULL;
	char		*c64 = NULL, *payload = NULL;
	int		 dlen, rc = -1, n;

	if (acme_account_ensure(c, err) == -1 ||
	    (x = first_cert(pem, err)) == NULL)
		return -1;
	if ((dlen = i2d_X509(x, &der)) <= 0) {
		set_ossl_err(err, "certificate encoding");
		goto out;
	}
	if ((c64 = b64url_encode(der, (size_t)dlen)) == NULL)
		goto nomem;
	if (reason >= 0)
		n = asprintf(&payload, "{\"certificate\":\"%s\",\"reason\":%d}",
		    c64, reason);
	else
		n = asprintf(&payload, "{\"certificate\":\"%s\"}", c64);
	if (n == -1) {
		payload = NULL;
		goto nomem;
	}
	if (acme_post(c, dir_url(c, "revokeCert"), payload, NULL, &r, err) == 0)
		rc = 0;
	goto out;
nomem:
	set_err(err, 0, "", "out of memory");
out:
	X509_free(x);
	OPENSSL_free(der);
	free(c64);
	free(payload);
	response_reset(&r);
	return rc;
}

/* The DER content octets of an INTEGER (without tag and length). */
static unsigned char *
integer_content(const ASN1_INTEGER *ai, size_t *len)
{
	unsigned char	*der = NULL, *out = NULL;
	const unsigned char *p;
	long		 clen;
	int		 dlen, tag, cls;

	if ((dlen = i2d_ASN1_INTEGER(ai, &der)) <= 0)
		return NULL;
	p = der;
	if (!(ASN1_get_object(&p, &clen, &tag, &cls, dlen) & 0x80) &&
	    tag == V_ASN1_INTEGER && clen > 0 && (out = malloc(clen)) != NULL) {
		memcpy(out, p, clen);
		*len = (size_t)clen;
	}
	OPENSSL_free(der);
	return out;
}

char *
acme_cert_id(X509 *x)
{
	const ASN1_OCTET_STRING	*kid = X509_get0_authority_key_id(x);
	unsigned char		*serial;
	size_t			 slen;
	char			*a = NULL, *s = NULL, *id = NULL;

	if (kid == NULL || (serial = integer_content(X509_get0_serialNumber(x),
	    &slen)) == NULL)
		return NULL;
	if ((a = b64url_encode(ASN1_STRING_get0_data(kid),
	    (size_t)ASN1_STRING_length(kid))) != NULL &&
	    (s = b64url_encode(serial, slen)) != NULL &&
	    asprintf(&id, "%s.%s", a, s) == -1)
		id = NULL;
	free(serial);
	free(a);
	free(s);
	return id;
}

int
acme_renewal_info(struct acme_client *c, const char *pem,
    struct acme_renewal_info *ri, struct acme_error *err)
{
	struct response	 r = { 0 };
	X509		*x = NULL;
	json_t		*j = NULL, *w;
	const char	*base, *start, *end, *expl;
	char		*id = NULL, *url = NULL;
	int		 rc = -1;

	memset(ri, 0, sizeof(*ri));
	if (acme_directory(c, err) == -1)
		return -1;
	if ((base = dir_url(c, "renewalInfo")) == NULL) {
		set_err(err, 0, "", "the server offers no renewalInfo (ARI)");
		return -1;
	}
	if ((x = first_cert(pem, err)) == NULL)
		return -1;
	if ((id = acme_cert_id(x)) == NULL) {
		set_err(err, 0, "", "certificate has no authority key identifier");
		goto out;
	}
	/* RFC 9773 4.1: the URL is the directory's, a "/" and the certID. */
	if (asprintf(&url, "%s%s%s", base,
	    base[0] && base[strlen(base) - 1] == '/' ? "" : "/", id) == -1) {
		url = NULL;
		set_err(err, 0, "", "out of memory");
		goto out;
	}
	if (http_do(c, M_GET, url, NULL, "application/json", &r, err) == -1)
		goto out;
	if (r.status != 200) {
		set_http_err(&r, url, err);
		goto out;
	}
	if ((j = response_json(&r, url, err)) == NULL)
		goto out;
	w = json_object_get(j, "suggestedWindow");
	start = json_string_value(json_object_get(w, "start"));
	end = json_string_value(json_object_get(w, "end"));
	if (start == NULL || end == NULL || parse_rfc3339(start, &ri->start) ||
	    parse_rfc3339(end, &ri->end) || ri->end < ri->start) {
		set_err(err, r.status, "", "%s: bad suggestedWindow", url);
		goto out;
	}
	if ((expl = json_string_value(json_object_get(j, "explanationURL"))))
		snprintf(ri->explanation_url, sizeof(ri->explanation_url), "%s",
		    expl);
	ri->retry_after = r.retry_after > 0 ? r.retry_after : 0;
	rc = 0;
out:
	X509_free(x);
	json_decref(j);
	free(id);
	free(url);
	response_reset(&r);
	return rc;
}
