/* bench_util: see bench_util.h. */
#include <stdlib.h>
#include <time.h>

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
