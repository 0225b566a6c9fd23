/*
 * est_enrol: the EST load generator behind tests/bench/est-enrol.  N client
 * threads run complete RFC 7030 simpleenroll flows back to back against one
 * EST server for a given time: a fresh P-384 key, a PKCS#10 for
 * bench-<thread>.<domain> (subjectAltName only, SHA-384: the CSR
 * acme_throughput's flows send), POST with HTTP Basic authentication, a
 * 202 honoured by waiting its Retry-After and repeating the same request,
 * and the 200's certs-only CMS decoded and checked to hold a certificate
 * for the name.  With --warmup every thread first completes one flow (no
 * time limit but the flow's own) before the clock starts, and "warm-up
 * done" goes to stderr when it does.
 *
 * usage: est_enrol --url https://HOST:PORT/.well-known/est [--ca FILE]
 *            [--user U --password P] [--clients N] [--seconds S]
 *            [--domain D] [--warmup]
 *
 * Prints "key: value" lines as acme_throughput does: flows, flows/s,
 * p50_ms, p99_ms, errors, requests/flow, polls/flow (202 answers waited
 * out) and client_cpu_ms/flow.  Flows/s counts the flows completed from the
 * start until the last thread finished its last flow.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bench_util.h"

#define FLOW_TIMEOUT_S	60
#define MAX_CLIENTS	1024
#define SHOW_ERRORS	5
#define MAX_REPLY	(256 * 1024)

struct options {
	const char	*url, *ca, *user, *password, *domain;
	int		 clients, warmup;
	double		 seconds;
};

struct worker {
	int			 id;
	const struct options	*opt;
	pthread_barrier_t	*ready, *start;	/* warm-up over; clock on */
	double			 deadline;
	struct bench_lat	 lat;		/* seconds per completed flow */
	unsigned long		 errors, requests, polls;
	char			 first_error[SHOW_ERRORS][512];
	double			 finished;
	int			 setup_failed;
	char			 setup_error[512];
};

struct buf {
	char	*p;
	size_t	 len;
};

static void
usage(void)
{
	fprintf(stderr, "usage: est_enrol --url URL [--ca FILE] [--user U "
	    "--password P]\n"
	    "           [--clients N] [--seconds S] [--domain D] [--warmup]\n");
	exit(2);
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct buf	*b = arg;
	char		*p;

	if (size != 0 && n > (MAX_REPLY - b->len) / size)
		return 0;		/* too long: curl fails the transfer */
	if ((p = realloc(b->p, b->len + size * n + 1)) == NULL)
		return 0;
	memcpy(p + b->len, data, size * n);
	b->p = p;
	b->len += size * n;
	b->p[b->len] = '\0';
	return size * n;
}

/* A fresh P-384 key and the base64 (one line) of a DER CSR for name. */
static char *
make_csr(const char *name, char *err, size_t errlen)
{
	EVP_PKEY		*key = NULL;
	X509_REQ		*req = NULL;
	GENERAL_NAMES		*gens = NULL;
	GENERAL_NAME		*gen = NULL;
	ASN1_IA5STRING		*ia5 = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION		*ext = NULL;
	unsigned char		*der = NULL;
	char			*out = NULL;
	int			 len;

	if ((key = EVP_EC_gen("P-384")) == NULL ||
	    (req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(req, 0) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1 ||
	    (gens = sk_GENERAL_NAME_new_null()) == NULL ||
	    (gen = GENERAL_NAME_new()) == NULL ||
	    (ia5 = ASN1_IA5STRING_new()) == NULL ||
	    ASN1_STRING_set(ia5, name, -1) != 1)
		goto fail;
	GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
	ia5 = NULL;
	if (sk_GENERAL_NAME_push(gens, gen) == 0)
		goto fail;
	gen = NULL;
	if ((exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    (ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) == NULL ||
	    sk_X509_EXTENSION_push(exts, ext) == 0)
		goto fail;
	ext = NULL;
	if (X509_REQ_add_extensions(req, exts) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha384()) <= 0 ||
	    (len = i2d_X509_REQ(req, &der)) <= 0 ||
	    (out = malloc(4 * ((size_t)len + 2) / 3 + 1)) == NULL)
		goto fail;
	EVP_EncodeBlock((unsigned char *)out, der, len);
	goto done;
fail:
	snprintf(err, errlen, "CSR: OpenSSL failed");
done:
	OPENSSL_free(der);
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return out;
}

/* Does the base64 certs-only CMS hold a certificate naming name? */
static int
check_reply(const char *b64, const char *name, char *err, size_t errlen)
{
	unsigned char		*der = NULL;
	const unsigned char	*p;
	char			*clean;
	PKCS7			*p7 = NULL;
	STACK_OF(X509)		*certs;
	size_t			 i, n = 0, len = strlen(b64);
	int			 dlen, ok = 0, k;

	if ((clean = malloc(len + 1)) == NULL)
		return 0;
	for (i = 0; i < len; i++)	/* line breaks are allowed */
		if (strchr(" \t\r\n", b64[i]) == NULL)
			clean[n++] = b64[i];
	clean[n] = '\0';
	if (n == 0 || n % 4 != 0 || (der = malloc(n / 4 * 3 + 1)) == NULL ||
	    (dlen = EVP_DecodeBlock(der, (unsigned char *)clean, (int)n)) < 0) {
		snprintf(err, errlen, "200 body is not base64");
		goto out;
	}
	while (n > 0 && clean[--n] == '=')
		dlen--;
	p = der;
	if ((p7 = d2i_PKCS7(NULL, &p, dlen)) == NULL ||
	    !PKCS7_type_is_signed(p7) ||
	    (certs = p7->d.sign->cert) == NULL ||
	    sk_X509_num(certs) < 1) {
		snprintf(err, errlen, "200 body is not a certs-only CMS");
		goto out;
	}
	for (k = 0; k < sk_X509_num(certs) && !ok; k++)
		ok = X509_check_host(sk_X509_value(certs, k), name, 0, 0,
		    NULL) == 1;
	if (!ok)
		snprintf(err, errlen, "no certificate for %s in the reply",
		    name);
out:
	PKCS7_free(p7);
	free(der);
	free(clean);
	return ok;
}

/* One enrolment; 0, or -1 with err. */
static int
flow(struct worker *w, CURL *h, const char *name, char *err, size_t errlen)
{
	struct curl_slist	*hdrs = NULL;
	struct buf		 body = { NULL, 0 };
	struct curl_header	*ra;
	char			*csr, url[512];
	double			 end = bench_now() + FLOW_TIMEOUT_S;
	long			 code = 0, wait_s;
	CURLcode		 rc;
	int			 result = -1;

	if ((csr = make_csr(name, err, errlen)) == NULL)
		return -1;
	snprintf(url, sizeof(url), "%s/simpleenroll", w->opt->url);
	if ((hdrs = curl_slist_append(NULL,
	    "Content-Type: application/pkcs10")) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (;;) {
		free(body.p);
		body.p = NULL;
		body.len = 0;
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, csr);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
		w->requests++;
		if ((rc = curl_easy_perform(h)) != CURLE_OK) {
			snprintf(err, errlen, "%s", curl_easy_strerror(rc));
			goto out;
		}
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (code != 202)
			break;
		wait_s = 1;
		if (curl_easy_header(h, "Retry-After", 0, CURLH_HEADER, -1,
		    &ra) == CURLHE_OK)
			wait_s = strtol(ra->value, NULL, 10);
		if (wait_s < 1)
			wait_s = 1;
		if (bench_now() + wait_s > end) {
			snprintf(err, errlen, "still 202 after %d s",
			    FLOW_TIMEOUT_S);
			goto out;
		}
		w->polls++;
		sleep((unsigned)wait_s);
	}
	if (code != 200) {
		snprintf(err, errlen, "HTTP %ld: %.200s", code,
		    body.p ? body.p : "");
		goto out;
	}
	if (check_reply(body.p ? body.p : "", name, err, errlen))
		result = 0;
out:
	curl_slist_free_all(hdrs);
	free(body.p);
	free(csr);
	return result;
}

static void
note_error(struct worker *w, const char *msg)
{
	if (w->errors < SHOW_ERRORS)
		snprintf(w->first_error[w->errors], sizeof(w->first_error[0]),
		    "client %d: %s", w->id, msg);
	w->errors++;
}

static void *
run(void *arg)
{
	struct worker	*w = arg;
	CURL		*h;
	char		 name[256], err[400];
	double		 t0;

	snprintf(name, sizeof(name), "bench-%d.%s", w->id, w->opt->domain);
	if ((h = curl_easy_init()) == NULL) {
		w->setup_failed = 1;
		snprintf(w->setup_error, sizeof(w->setup_error),
		    "client %d: curl_easy_init failed", w->id);
	} else {
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
		curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
		    CURL_HTTP_VERSION_1_1);
		if (w->opt->ca != NULL)
			curl_easy_setopt(h, CURLOPT_CAINFO, w->opt->ca);
		if (w->opt->user != NULL) {
			curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
			curl_easy_setopt(h, CURLOPT_USERNAME, w->opt->user);
			curl_easy_setopt(h, CURLOPT_PASSWORD, w->opt->password);
		}
		/* The connection (and TLS session) is kept, as acmeclient's. */
		if (w->opt->warmup && flow(w, h, name, err, sizeof(err)) == -1) {
			w->setup_failed = 1;
			snprintf(w->setup_error, sizeof(w->setup_error),
			    "client %d: warm-up: %s", w->id, err);
		}
	}
	w->requests = w->polls = 0;
	pthread_barrier_wait(w->ready);
	pthread_barrier_wait(w->start);
	while (!w->setup_failed && bench_now() < w->deadline) {
		t0 = bench_now();
		if (flow(w, h, name, err, sizeof(err)) == 0) {
			if (bench_lat_add(&w->lat, bench_now() - t0) == -1) {
				note_error(w, "out of memory");
				break;
			}
		} else
			note_error(w, err);
	}
	w->finished = bench_now();
	if (h != NULL)
		curl_easy_cleanup(h);
	return NULL;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "ca", required_argument, NULL, 'a' },
		{ "user", required_argument, NULL, 'U' },
		{ "password", required_argument, NULL, 'P' },
		{ "clients", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{ "domain", required_argument, NULL, 'D' },
		{ "warmup", no_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	char	*end = NULL;
	int	 ch;

	memset(o, 0, sizeof(*o));
	o->clients = 32;
	o->seconds = 10;
	o->domain = "est.home.arpa";
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		errno = 0;
		switch (ch) {
		case 'u': o->url = optarg; continue;
		case 'a': o->ca = optarg; continue;
		case 'U': o->user = optarg; continue;
		case 'P': o->password = optarg; continue;
		case 'D': o->domain = optarg; continue;
		case 'w': o->warmup = 1; continue;
		case 'c': o->clients = (int)strtol(optarg, &end, 10); break;
		case 's': o->seconds = strtod(optarg, &end); break;
		default: usage();
		}
		if (errno != 0 || end == NULL || *end != '\0')
			usage();
	}
	if (optind != argc || o->url == NULL || o->clients < 1 ||
	    o->clients > MAX_CLIENTS || o->seconds <= 0 ||
	    (o->user == NULL) != (o->password == NULL))
		usage();
}

int
main(int argc, char **argv)
{
	struct options		 opt;
	struct rusage		 ru0, ru;
	struct worker		*w;
	pthread_barrier_t	 ready, start;
	pthread_t		*t;
	double			 t0, done = 0, *all;
	size_t			 n = 0, k;
	unsigned long		 errors = 0, requests = 0, polls = 0;
	int			 i, rc, setup_failed = 0;

	parse_options(argc, argv, &opt);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "est_enrol: curl_global_init failed\n");
		return 1;
	}
	if ((w = calloc(opt.clients, sizeof(*w))) == NULL ||
	    (t = calloc(opt.clients, sizeof(*t))) == NULL) {
		fprintf(stderr, "est_enrol: out of memory\n");
		return 1;
	}
	if ((rc = pthread_barrier_init(&ready, NULL, opt.clients + 1)) != 0 ||
	    (rc = pthread_barrier_init(&start, NULL, opt.clients + 1)) != 0) {
		fprintf(stderr, "est_enrol: barrier: %s\n", strerror(rc));
		return 1;
	}
	for (i = 0; i < opt.clients; i++) {
		w[i].id = i;
		w[i].opt = &opt;
		w[i].ready = &ready;
		w[i].start = &start;
		if ((rc = pthread_create(&t[i], NULL, run, &w[i])) != 0) {
			fprintf(stderr, "est_enrol: thread: %s\n", strerror(rc));
			return 1;
		}
	}
	/* Deadlines are set once every warm-up is over, before the second
	 * barrier releases the threads (it orders the write before their
	 * reads); the client CPU counted is the measured part's only. */
	pthread_barrier_wait(&ready);
	if (getrusage(RUSAGE_SELF, &ru0) != 0)
		memset(&ru0, 0, sizeof(ru0));
	/* For a caller that measures the servers' CPU over the clock only. */
	if (opt.warmup) {
		fprintf(stderr, "warm-up done\n");
		fflush(stderr);
	}
	t0 = bench_now();
	for (i = 0; i < opt.clients; i++)
		w[i].deadline = t0 + opt.seconds;
	pthread_barrier_wait(&start);
	for (i = 0; i < opt.clients; i++) {
		if ((rc = pthread_join(t[i], NULL)) != 0) {
			fprintf(stderr, "est_enrol: join: %s\n", strerror(rc));
			return 1;
		}
		n += w[i].lat.n;
		errors += w[i].errors;
		requests += w[i].requests;
		polls += w[i].polls;
		if (w[i].finished > done)
			done = w[i].finished;
		if (w[i].setup_failed) {
			fprintf(stderr, "%s\n", w[i].setup_error);
			setup_failed++;
		}
	}
	if ((all = malloc((n ? n : 1) * sizeof(*all))) == NULL) {
		fprintf(stderr, "est_enrol: out of memory\n");
		return 1;
	}
	for (n = 0, i = 0; i < opt.clients; i++) {
		for (k = 0; k < w[i].lat.n; k++)
			all[n++] = w[i].lat.v[k];
		for (k = 0; k < w[i].errors && k < SHOW_ERRORS; k++)
			fprintf(stderr, "%s\n", w[i].first_error[k]);
		free(w[i].lat.v);
	}
	bench_sort(all, n);
	printf("clients: %d\n", opt.clients);
	printf("elapsed_s: %.2f\n", done - t0);
	printf("flows: %zu\n", n);
	printf("flows/s: %.1f\n", done > t0 ? n / (done - t0) : 0);
	printf("p50_ms: %.1f\n", bench_percentile(all, n, 50) * 1000);
	printf("p99_ms: %.1f\n", bench_percentile(all, n, 99) * 1000);
	printf("errors: %lu\n", errors + (unsigned long)setup_failed);
	printf("requests/flow: %.2f\n", n ? (double)requests / n : 0);
	printf("polls/flow: %.2f\n", n ? (double)polls / n : 0);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		printf("client_cpu_ms/flow: %.2f\n", n ?
		    bench_cpu_seconds(&ru0, &ru) * 1000 / n : 0);
	free(all);
	free(w);
	free(t);
	pthread_barrier_destroy(&ready);
	pthread_barrier_destroy(&start);
	curl_global_cleanup();
	return errors + setup_failed > 0 ? 3 : 0;
}
