/*
 * signer-rate: certificates per second through a running iotca-signer's
 * socket, against raw signatures per second with the same key and provider
 * (ks_sign, as the signer signs), measured back to back in one run.
 *
 * usage: signer_rate CONFIG SOCKET SECONDS
 * Prints "raw: N sig/s", "signer: M cert/s" and "ratio: R"; with SOCKET
 * "-" only the raw rate (tests/bench/key-paced: the key's own rate).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "bench_util.h"
#include "config_key.h"
#include "keystore.h"
#include "proto.h"

#define CLIENTS		2	/* keep one request queued while one is signed */
/*
 * Every certificate needs a new key (the signer refuses a key it certified
 * before), so the CSRs are made, each with its own key, before the clock
 * starts: enough for the raw rate, at most MAX_CSR.  A run that uses them
 * all ends early and says so; its rate is still over the time it took.
 */
#define MIN_CSR		64
#define MAX_CSR		20000

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "signer_rate: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* Raw signatures of a certificate-sized message for secs seconds. */
static double
raw_rate(const struct config *cfg, double secs)
{
	struct ks_config kc;
	unsigned char tbs[420];
	char err[512];
	struct ks *ks;
	EVP_PKEY *key;
	double t0, t;
	long n = 0;

	config_ks(cfg, &kc);
	memset(tbs, 0x5a, sizeof(tbs));
	if ((ks = ks_new(&kc, err, sizeof(err))) == NULL ||
	    (key = ks_load(ks, cfg->key, err, sizeof(err))) == NULL)
		die(err);
	t0 = now();
	do {
		unsigned char *sig;
		size_t siglen;

		if (ks_sign(ks, key, tbs, sizeof(tbs), &sig, &siglen, err,
		    sizeof(err)) == -1)
			die(err);
		free(sig);
		n++;
	} while ((t = now() - t0) < secs);
	EVP_PKEY_free(key);
	ks_free(ks);
	return n / t;
}

static char *
make_csr(EVP_PKEY *key, int i)
{
	char name[64];
	char *pem;

	snprintf(name, sizeof(name), "bench-%04d", i);
	if ((pem = bench_csr_pem(name, key)) == NULL)
		die("cannot make a CSR");
	return pem;
}

struct csr_pool {
	char		**csrs;
	size_t		 n, next;	/* next: taken atomically */
};

struct client {
	pthread_t	 th;
	const char	*socket;
	struct csr_pool	*pool;
	double		 deadline;
	long		 done, errors;
};

/* The next unused CSR, or NULL when the pool is spent. */
static const char *
pool_take(struct csr_pool *p)
{
	size_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);

	return i < p->n ? p->csrs[i] : NULL;
}

static void
pool_fill(struct csr_pool *p, size_t n)
{
	EVP_PKEY *key;
	size_t i;

	if ((p->csrs = calloc(n, sizeof(*p->csrs))) == NULL)
		die("out of memory");
	for (i = 0; i < n; i++) {
		if ((key = EVP_EC_gen("P-384")) == NULL)
			die("device key");
		p->csrs[i] = make_csr(key, (int)i);
		EVP_PKEY_free(key);
	}
	p->n = n;
	p->next = 0;
}

static void *
client_run(void *arg)
{
	struct client *c = arg;
	char err[256], reason[256];
	json_t *req, *resp;
	const char *csr;
	int fd;

	if ((fd = proto_connect(c->socket, err, sizeof(err))) == -1)
		die(err);
	while (now() < c->deadline && (csr = pool_take(c->pool)) != NULL) {
		req = json_pack("{s:s, s:s, s:i}", "op", "issue", "csr", csr,
		    "days", 30);
		if (req == NULL || proto_send(fd, req) == -1)
			die("send");
		json_decref(req);
		if (proto_recv(fd, 1, &resp, reason, sizeof(reason)) != PROTO_OK)
			die("receive");
		if (json_is_true(json_object_get(resp, "ok")))
			c->done++;
		else {
			if (c->errors++ == 0)
				fprintf(stderr, "signer_rate: refused: %s\n",
				    json_string_value(json_object_get(resp, "reason")));
		}
		json_decref(resp);
	}
	close(fd);
	return NULL;
}

int
main(int argc, char *argv[])
{
	struct client cl[CLIENTS];
	struct config cfg;
	struct csr_pool pool;
	char err[512];
	double secs, raw, t0, t, rate, want;
	long done = 0, errors = 0;
	size_t n;
	int i;

	if (argc != 4 || (secs = atof(argv[3])) <= 0) {
		fprintf(stderr, "usage: signer_rate CONFIG SOCKET SECONDS\n");
		return 2;
	}
	if (config_load(argv[1], &cfg, err, sizeof(err)) == -1)
		die(err);
	raw = raw_rate(&cfg, secs);
	printf("raw: %.1f sig/s\n", raw);
	if (strcmp(argv[2], "-") == 0) {
		config_free(&cfg);
		return 0;
	}
	want = raw * secs * 1.1;
	n = want > MAX_CSR ? MAX_CSR : want < MIN_CSR ? MIN_CSR : (size_t)want;
	pool_fill(&pool, n);

	t0 = now();
	for (i = 0; i < CLIENTS; i++) {
		memset(&cl[i], 0, sizeof(cl[i]));
		cl[i].socket = argv[2];
		cl[i].pool = &pool;
		cl[i].deadline = t0 + secs;
		if (pthread_create(&cl[i].th, NULL, client_run, &cl[i]) != 0)
			die("pthread_create");
	}
	for (i = 0; i < CLIENTS; i++) {
		pthread_join(cl[i].th, NULL);
		done += cl[i].done;
		errors += cl[i].errors;
	}
	t = now() - t0;
	rate = done / t;
	printf("signer: %.1f cert/s (%ld certificates, %ld errors)\n", rate,
	    done, errors);
	printf("ratio: %.3f\n", rate / raw);
	if (pool.next >= pool.n)
		printf("note: all %zu CSRs used after %.1f of %.1f s\n", pool.n,
		    t, secs);
	for (n = 0; n < pool.n; n++)
		free(pool.csrs[n]);
	free(pool.csrs);
	config_free(&cfg);
	return errors == 0 ? 0 : 1;
}
