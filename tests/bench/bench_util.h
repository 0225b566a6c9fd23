/*
 * bench_util: what the benchmarks (acme_throughput, est_enrol, signer_rate,
 * aging_fill) share.
 *
 * bench_now() is the time in seconds on CLOCK_MONOTONIC, for latencies and
 * deadlines only.  A struct bench_lat is one thread's latencies in seconds,
 * zeroed to start; bench_lat_add() appends one (0, or -1 when out of
 * memory, the array unchanged) and the caller frees v.  bench_sort()
 * orders latencies ascending for bench_percentile(), the nearest-rank
 * percentile p (0 to 100) of n sorted values (0 when n is 0).
 * bench_cpu_seconds() is the user plus system CPU time from one getrusage()
 * to a later one.  bench_csr_pem() is a PEM CSR for the device NAME
 * (CN NAME, SAN DNS:NAME.local) with KEY, signed with SHA-384; NULL on
 * failure, else the caller frees it.  Nothing here prints or keeps state.
 */
#ifndef IOTCA_BENCH_UTIL_H
#define IOTCA_BENCH_UTIL_H

#include <stddef.h>
#include <sys/resource.h>

#include <openssl/evp.h>

struct bench_lat {
	double	*v;
	size_t	 n, cap;
};

double	bench_now(void);
int	bench_lat_add(struct bench_lat *, double);
void	bench_sort(double *, size_t);
double	bench_percentile(const double *, size_t, double);
double	bench_cpu_seconds(const struct rusage *, const struct rusage *);
char	*bench_csr_pem(const char *name, EVP_PKEY *key);

#endif
