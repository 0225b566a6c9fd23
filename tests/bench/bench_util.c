/* bench_util: see bench_util.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "bench_util.h"

double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
bench_lat_add(struct bench_lat *l, double seconds)
{
	double	*n;
	size_t	 cap;

	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 256;
		if ((n = realloc(l->v, cap * sizeof(*n))) == NULL)
			return -1;
		l->v = n;
		l->cap = cap;
	}
	l->v[l->n++] = seconds;
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void
bench_sort(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
}

double
bench_percentile(const double *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (size_t)(p / 100.0 * n + 0.999999);
	if (rank < 1)
		rank = 1;
	return v[(rank > n ? n : rank) - 1];
}

double
bench_cpu_seconds(const struct rusage *from, const struct rusage *to)
{
	return (to->ru_utime.tv_sec - from->ru_utime.tv_sec) +
	    (to->ru_stime.tv_sec - from->ru_stime.tv_sec) +
	    ((to->ru_utime.tv_usec - from->ru_utime.tv_usec) +
	    (to->ru_stime.tv_usec - from->ru_stime.tv_usec)) / 1e6;
}

/* The subjectAltName DNS:NAME.local as a one-extension list, or NULL. */
static X509_EXTENSIONS *
san_local(const char *name)
{
	char san[300];
	X509_EXTENSIONS *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *ext = NULL;

	if (exts == NULL ||
	    snprintf(san, sizeof(san), "DNS:%s.local", name) >= (int)sizeof(san) ||
	    (ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
	    san)) == NULL || sk_X509_EXTENSION_push(exts, ext) == 0) {
		X509_EXTENSION_free(ext);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		return NULL;
	}
	return exts;
}

char *
bench_csr_pem(const char *name, EVP_PKEY *key)
{
	X509_REQ *req = X509_REQ_new();
	X509_EXTENSIONS *exts = san_local(name);
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *pem = NULL;
	long len;

	if (req != NULL && exts != NULL && b != NULL &&
	    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
	    MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0) == 1 &&
	    X509_REQ_set_pubkey(req, key) == 1 &&
	    X509_REQ_add_extensions(req, exts) == 1 &&
	    X509_REQ_sign(req, key, EVP_sha384()) > 0 &&
	    PEM_write_bio_X509_REQ(b, req) == 1 &&
	    (len = BIO_get_mem_data(b, &data)) > 0)
		pem = strndup(data, (size_t)len);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	BIO_free(b);
	return pem;
}
