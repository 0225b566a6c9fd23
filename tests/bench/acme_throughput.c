/*
 * acme_throughput: the load generator behind tests/bench/acme-throughput.
 * N client threads, each with its own account (made before the clock
 * starts), run complete issuance flows back to back against one ACME
 * server for a given time: new order, http-01 answered by our own
 * responder (shared by all threads), finalize with a fresh P-384 key and
 * CSR, certificate download.  Each thread orders the same name every time
 * (bench-<thread>.<domain>), like a device renewing; --unique-names gives
 * every flow a new name (bench-<thread>-<n>.<domain>).  --warmup has every
 * thread complete one flow before the clock starts (an operator's first
 * approval, the first validation: tests/bench/est-enrol measures
 * issuance with both behind it) and says "warm-up done" on stderr when
 * the clock starts.  --one-new-order lets
 * only one client at a time send its new-order request: Debian's Pebble 2.4
 * deadlocks when two run at once (its newOrder takes the store's lock, then
 * each authorization's, while another newOrder holds its new authorization's
 * lock and waits for the store's).
 *
 * usage: acme_throughput --directory URL [--ca FILE] [--clients N]
 *            [--seconds S] [--http01-port P] [--domain D] [--poll-ms MS]
 *            [--unique-names] [--one-new-order]
 *
 * Prints "key: value" lines: flows, flows/s, p50_ms, p99_ms, errors and
 * per-flow request, poll, badNonce and http-01 counts.  Flows/s counts the
 * flows completed from the start until the last thread finished its last
 * flow (flows started before the deadline run to their end).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>

#include "acmeclient.h"
#include "bench_util.h"
#include "http01.h"

#define FLOW_TIMEOUT_MS	60000
#define MAX_CLIENTS	1024
#define SHOW_ERRORS	5

struct options {
	const char	*directory, *ca, *domain;
	int		 clients, port;
	double		 seconds;
	long		 poll_ms;
	int		 unique;	/* a new name for every flow */
	int		 one_new_order;	/* new-order requests one at a time */
	int		 warmup;	/* one flow each before the clock */
};

struct worker {
	int			 id;
	const struct options	*opt;
	struct acme_http01	*responder;
	pthread_barrier_t	*ready, *start;	/* warm-up over; clock on */
	pthread_mutex_t		*new_order;	/* with --one-new-order */
	double			 deadline;	/* start flows until then */
	struct bench_lat	 lat;		/* seconds per completed flow */
	unsigned long		 errors;
	char			 first_error[SHOW_ERRORS][800];
	double			 finished;	/* when the last flow ended */
	struct acme_client_stats stats, base;	/* base: before the clock */
	int			 setup_failed;
	char			 setup_error[800];
};

static void
usage(void)
{
	fprintf(stderr, "usage: acme_throughput --directory URL [--ca FILE] "
	    "[--clients N] [--seconds S]\n"
	    "           [--http01-port P] [--domain D] [--poll-ms MS] "
	    "[--unique-names] [--one-new-order] [--warmup]\n");
	exit(2);
}

/* One flow; 0 or -1 with err. */
static int
flow(struct worker *w, struct acme_client *c, const char *name,
    struct acme_error *err)
{
	const char		*names[] = { name };
	struct acme_order	*o;
	char			*pem = NULL;
	int			 rc = -1;

	if (w->opt->one_new_order)
		pthread_mutex_lock(w->new_order);
	o = acme_order_new(c, names, 1, err);
	if (w->opt->one_new_order)
		pthread_mutex_unlock(w->new_order);
	if (o == NULL)
		return -1;
	if (acme_order_authorize_http01(c, o, w->responder, FLOW_TIMEOUT_MS,
	    err) == 0 &&
	    acme_order_finalize(c, o, NULL, FLOW_TIMEOUT_MS, err) == 0 &&
	    acme_order_certificate(c, o, &pem, err) == 0)
		rc = 0;
	free(pem);
	acme_order_free(o);
	return rc;
}

static void
note_error(struct worker *w, const char *step, const struct acme_error *err)
{
	if (w->errors < SHOW_ERRORS)
		snprintf(w->first_error[w->errors], sizeof(w->first_error[0]),
		    "client %d: %s: %s%s%s (HTTP %ld)", w->id, step, err->type,
		    err->type[0] ? ": " : "", err->detail, err->status);
	w->errors++;
}

static void *
run(void *arg)
{
	struct worker		*w = arg;
	struct acme_client_config cfg = {
		.directory_url = w->opt->directory,
		.ca_file = w->opt->ca,
		.poll_min_ms = w->opt->poll_ms,
		.poll_max_ms = 1000,
		/* A server that stops answering (Pebble 2.4 can deadlock under
		 * load) shows as errors in seconds, not minutes. */
		.request_timeout_ms = 10000,
	};
	struct acme_client	*c;
	struct acme_error	 err;
	char			 name[256];
	double			 t0;

	snprintf(name, sizeof(name), "bench-%d.%s", w->id, w->opt->domain);
	c = acme_client_new(&cfg, &err);
	if (c == NULL || acme_account_ensure(c, &err) == -1) {
		w->setup_failed = 1;
		snprintf(w->setup_error, sizeof(w->setup_error), "client %d: "
		    "account: %s %s (HTTP %ld)", w->id, err.type, err.detail,
		    err.status);
	} else if (w->opt->warmup && flow(w, c, name, &err) == -1) {
		w->setup_failed = 1;
		snprintf(w->setup_error, sizeof(w->setup_error), "client %d: "
		    "warm-up: %s %s (HTTP %ld)", w->id, err.type, err.detail,
		    err.status);
	}
	if (c != NULL && w->opt->warmup)
		w->base = *acme_client_stats(c);
	/* Everyone starts together; a thread whose setup failed just waits. */
	pthread_barrier_wait(w->ready);
	pthread_barrier_wait(w->start);
	while (!w->setup_failed && bench_now() < w->deadline) {
		if (w->opt->unique)
			snprintf(name, sizeof(name), "bench-%d-%zu.%s", w->id,
			    w->lat.n + w->errors, w->opt->domain);
		t0 = bench_now();
		if (flow(w, c, name, &err) == 0) {
			if (bench_lat_add(&w->lat, bench_now() - t0) == -1) {
				note_error(w, "memory", &err);
				break;
			}
		} else
			note_error(w, "flow", &err);
	}
	w->finished = bench_now();
	if (c != NULL) {
		w->stats = *acme_client_stats(c);
		w->stats.requests -= w->base.requests;
		w->stats.polls -= w->base.polls;
		w->stats.bad_nonces -= w->base.bad_nonces;
		acme_client_free(c);
	}
	return NULL;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "directory", required_argument, NULL, 'd' },
		{ "ca", required_argument, NULL, 'a' },
		{ "clients", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{ "http01-port", required_argument, NULL, 'p' },
		{ "domain", required_argument, NULL, 'D' },
		{ "poll-ms", required_argument, NULL, 'P' },
		{ "unique-names", no_argument, NULL, 'u' },
		{ "one-new-order", no_argument, NULL, '1' },
		{ "warmup", no_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	char	*end;
	int	 ch;

	memset(o, 0, sizeof(*o));
	o->clients = 32;
	o->seconds = 10;
	o->port = 5002;
	o->domain = "local";
	o->poll_ms = 20;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		errno = 0;
		switch (ch) {
		case 'd': o->directory = optarg; break;
		case 'a': o->ca = optarg; break;
		case 'D': o->domain = optarg; break;
		case 'c': o->clients = (int)strtol(optarg, &end, 10); break;
		case 's': o->seconds = strtod(optarg, &end); break;
		case 'p': o->port = (int)strtol(optarg, &end, 10); break;
		case 'P': o->poll_ms = strtol(optarg, &end, 10); break;
		case 'u': o->unique = 1; continue;
		case '1': o->one_new_order = 1; continue;
		case 'w': o->warmup = 1; continue;
		default: usage();
		}
		if (ch != 'd' && ch != 'a' && ch != 'D' &&
		    (errno != 0 || *end != '\0'))
			usage();
	}
	if (optind != argc || o->directory == NULL || o->clients < 1 ||
	    o->clients > MAX_CLIENTS || o->seconds <= 0 || o->port < 1 ||
	    o->port > 65535 || o->poll_ms < 1)
		usage();
}

int
main(int argc, char **argv)
{
	struct options		 opt;
	struct rusage		 ru0, ru;
	struct worker		*w;
	struct acme_http01	*responder;
	pthread_barrier_t	 ready, start;
	pthread_mutex_t		 new_order = PTHREAD_MUTEX_INITIALIZER;
	pthread_t		*t;
	double			 t0, done = 0, *all;
	size_t			 n = 0, k;
	unsigned long		 errors = 0, requests = 0, polls = 0, bad = 0;
	unsigned long		 served;
	char			 err[256];
	int			 i, rc, setup_failed = 0;

	parse_options(argc, argv, &opt);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "acme_throughput: curl_global_init failed\n");
		return 1;
	}
	if ((responder = acme_http01_start("127.0.0.1", opt.port, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "acme_throughput: http-01 responder: %s\n", err);
		return 1;
	}
	if ((w = calloc(opt.clients, sizeof(*w))) == NULL ||
	    (t = calloc(opt.clients, sizeof(*t))) == NULL) {
		fprintf(stderr, "acme_throughput: out of memory\n");
		return 1;
	}
	if ((rc = pthread_barrier_init(&ready, NULL, opt.clients + 1)) != 0 ||
	    (rc = pthread_barrier_init(&start, NULL, opt.clients + 1)) != 0) {
		fprintf(stderr, "acme_throughput: barrier: %s\n", strerror(rc));
		return 1;
	}
	for (i = 0; i < opt.clients; i++) {
		w[i].id = i;
		w[i].opt = &opt;
		w[i].responder = responder;
		w[i].ready = &ready;
		w[i].start = &start;
		w[i].new_order = &new_order;
		if ((rc = pthread_create(&t[i], NULL, run, &w[i])) != 0) {
			fprintf(stderr, "acme_throughput: thread: %s\n",
			    strerror(rc));
			return 1;
		}
	}
	/* The deadline is written once every thread is set up (and warmed
	 * up), before the second barrier releases them; the barrier orders
	 * the write before their reads.  Client CPU counts from here. */
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
	served = acme_http01_served(responder);
	pthread_barrier_wait(&start);
	t0 = bench_now();
	for (i = 0; i < opt.clients; i++) {
		if ((rc = pthread_join(t[i], NULL)) != 0) {
			fprintf(stderr, "acme_throughput: join: %s\n", strerror(rc));
			return 1;
		}
		n += w[i].lat.n;
		errors += w[i].errors;
		requests += w[i].stats.requests;
		polls += w[i].stats.polls;
		bad += w[i].stats.bad_nonces;
		if (w[i].finished > done)
			done = w[i].finished;
		if (w[i].setup_failed) {
			fprintf(stderr, "%s\n", w[i].setup_error);
			setup_failed++;
		}
	}
	served = acme_http01_served(responder) - served;
	acme_http01_stop(responder);
	if ((all = malloc((n ? n : 1) * sizeof(*all))) == NULL) {
		fprintf(stderr, "acme_throughput: out of memory\n");
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
	printf("flows/s: %.1f\n", n / (done - t0));
	printf("p50_ms: %.1f\n", bench_percentile(all, n, 50) * 1000);
	printf("p99_ms: %.1f\n", bench_percentile(all, n, 99) * 1000);
	printf("errors: %lu\n", errors + (unsigned long)setup_failed);
	/* Requests include the account setup (one or two per client),
	 * unless --warmup: then only what the clock saw. */
	printf("requests/flow: %.1f\n", n ? (double)requests / n : 0);
	printf("polls/flow: %.2f\n", n ? (double)polls / n : 0);
	printf("badnonce/flow: %.2f\n", n ? (double)bad / n : 0);
	printf("http01/flow: %.2f\n", n ? (double)served / n : 0);
	/* The generator shares the machine: what it cost is worth knowing. */
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
