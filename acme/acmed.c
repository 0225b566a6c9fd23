/*
 * iotca-acmed: the ACME server (RFC 8555, draft-sweet-iot-acme) of the iotca
 * appliance.  Unprivileged and network-facing: it holds no CA key and asks
 * iotca-signer over signer.sock for everything that needs one, including its
 * own short-lived TLS certificate, which it renews before it runs out
 * without closing the listening sockets.
 *
 * Under systemd (Type=notify) it says READY=1 once it serves, pings the
 * watchdog from its main loop, and serves the sockets of
 * iotca-acmed.socket when they are passed (then it needs no capability to
 * serve port 443).
 *
 *   iotca-acmed [-c FILE]       run (config: -c, $IOTCA_CONFIG, /etc/iotca/iotca.conf)
 *   iotca-acmed -t [-c FILE]    check the configuration and exit
 */
#include <sys/resource.h>

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <systemd/sd-daemon.h>

#include "acmed.h"
#include "acmedb.h"
#include "http.h"
#include "keycache.h"
#include "listener.h"
#include "log.h"
#include "nonce.h"
#include "publish.h"
#include "ratelimit.h"
#include "tlscert.h"
#include "vpool.h"
#include "workers.h"

#define RENEW_RETRY_SEC		60
#define START_SIGNER_WAIT_SEC	20
#define REQUEUE_MAX		1024
#define LOOP_SEC		10	/* the main loop wakes at least this often */
#define PRUNE_SEC		3600	/* acme.db's old history goes hourly */
#define FD_RESERVE		64	/* descriptors kept for the database,
					 * the signer and validations */

char *
acmed_root_pem(struct acmed *a)
{
	char *s = NULL;

	if (pthread_mutex_lock(&a->root_lock) != 0)
		return NULL;
	if (a->root_pem != NULL)
		s = strdup(a->root_pem);
	pthread_mutex_unlock(&a->root_lock);
	return s;
}

static void
set_root_pem(struct acmed *a, const char *pem)
{
	char *s = strdup(pem);

	if (s == NULL || pthread_mutex_lock(&a->root_lock) != 0) {
		free(s);
		return;		/* keep serving the old one */
	}
	free(a->root_pem);
	a->root_pem = s;
	pthread_mutex_unlock(&a->root_lock);
	if (a->pub != NULL && publish_set_root(a->pub, pem) == -1)
		log_msg(LOG_WARNING, "the signer's root is not a PEM "
		    "certificate: %s keeps the old one", CONFIG_PUBLISH_ROOT_PATH);
}

static void
usage(void)
{
	fprintf(stderr, "usage: iotca-acmed [-t] [-c config]\n");
	exit(2);
}

static int
load_config(struct acmed *a, const char *path, char *err, size_t errlen)
{
	size_t i;

	if (config_load(path, &a->ca, err, errlen) == -1)
		return -1;
	if (acme_config_load(path, &a->acme, err, errlen) == -1) {
		config_free(&a->ca);
		return -1;
	}
	for (i = 0; i < a->ca.ndomains; i++)
		a->domains[i] = a->ca.domains[i];
	a->policy.server_name = a->ca.name;
	a->policy.domains = a->domains;
	a->policy.ndomains = a->ca.ndomains;
	a->policy.strict_cn = a->ca.strict_cn;
	a->policy.max_days = a->ca.max_days;
	return 0;
}

/* Challenges a previous run left "processing" are validated again. */
static int
requeue_validations(struct acmed *a)
{
	char (*ids)[ID_LEN];
	size_t i, n;

	if ((ids = calloc(REQUEUE_MAX, ID_LEN)) == NULL)
		return -1;
	if (challs_processing(a->db, ids, REQUEUE_MAX, &n) == -1) {
		free(ids);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (vpool_submit(a->vpool, ids[i]) == -1 &&
		    chall_reset(a->db, ids[i]) == -1)
			log_msg(LOG_WARNING, "challenge %s stays processing", ids[i]);
	if (n > 0)
		log_msg(LOG_INFO, "%zu interrupted validations queued again", n);
	free(ids);
	return 0;
}

/* The first certificate: the signer may still be starting (systemd). */
static int
first_certificate(struct acmed *a, struct tls_material *m, char *err,
    size_t errlen)
{
	int i;

	for (i = 0; i < START_SIGNER_WAIT_SEC * 2; i++) {
		if (tls_material_get(&a->ca, m, err, errlen) == 0)
			return 0;
		if (strstr(err, "refused server_cert") != NULL)
			return -1;	/* it answered: waiting will not help */
		usleep(500 * 1000);
	}
	return -1;
}

static int
renew(struct acmed *a, struct listener *l, time_t *renew_at)
{
	struct tls_material m;
	char err[512];

	if (tls_material_get(&a->ca, &m, err, sizeof(err)) == -1 ||
	    listener_serve(l, &m, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "TLS certificate renewal failed: %s; retrying "
		    "in %d s", err, RENEW_RETRY_SEC);
		tls_material_clear(&m);
		*renew_at = time(NULL) + RENEW_RETRY_SEC;
		return -1;
	}
	set_root_pem(a, m.root_pem);
	*renew_at = tls_material_renew_at(&m);
	log_msg(LOG_INFO, "TLS certificate renewed; valid until %lld",
	    (long long)m.not_after);
	tls_material_clear(&m);
	return 0;
}

/* Delete the history no client can use any more (acmedb_prune). */
static void
prune(struct acmed *a, time_t now)
{
	struct acmedb_pruned p;

	if (acmedb_prune(a->db, (int64_t)now, &p) == -1)
		log_msg(LOG_ERR, "acme.db: pruning failed; retrying in %d s",
		    PRUNE_SEC);
	else if (p.orders + p.authzs + p.certs > 0)
		log_msg(LOG_INFO, "acme.db: pruned %lld orders, %lld "
		    "authorizations, %lld challenges, %lld certificates",
		    (long long)p.orders, (long long)p.authzs,
		    (long long)p.challenges, (long long)p.certs);
}

/*
 * Wait for a signal, renewing the certificate, pruning acme.db (at start,
 * then every PRUNE_SEC) and reaping old daemons.  The
 * watchdog is pinged on every turn, and a turn is at most half of
 * WATCHDOG_USEC long (sd_watchdog_enabled(3)); the turn itself never blocks
 * for long, so a ping that stops means the main thread is stuck.
 */
static void
serve(struct acmed *a, struct listener *l, const sigset_t *sigs,
    time_t renew_at)
{
	struct timespec ts;
	siginfo_t si;
	uint64_t wd_usec = 0;
	time_t now, prune_at = 0;
	int sig;

	if (sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;
	wd_usec /= 2;
	for (;;) {
		if (wd_usec != 0 && sd_notify(0, "WATCHDOG=1") < 0)
			log_msg(LOG_WARNING, "sd_notify WATCHDOG=1 failed");
		now = time(NULL);
		if (now >= renew_at)
			renew(a, l, &renew_at);
		if (now >= prune_at) {
			prune(a, now);
			prune_at = now + PRUNE_SEC;
		}
		listener_reap(l, now);
		ts.tv_sec = LOOP_SEC;
		ts.tv_nsec = 0;
		if (wd_usec != 0 && wd_usec < (uint64_t)LOOP_SEC * 1000000) {
			ts.tv_sec = (time_t)(wd_usec / 1000000);
			ts.tv_nsec = (long)(wd_usec % 1000000) * 1000;
		}
		sig = sigtimedwait(sigs, &si, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			log_msg(LOG_INFO, "stopping on signal %d", sig);
			return;
		}
		if (sig == SIGHUP)
			renew_at = 0;	/* a fresh certificate on request */
		else if (sig == -1 && errno != EAGAIN && errno != EINTR) {
			log_msg(LOG_ERR, "sigtimedwait: %s", strerror(errno));
			return;
		}
	}
}

/*
 * Each connection is a descriptor: take the whole hard limit, and serve
 * fewer connections than configured (saying so) when even that is short.
 */
static void
raise_nofile(struct acmed *a)
{
	struct rlimit rl;
	rlim_t need, have;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_msg(LOG_WARNING, "getrlimit: %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1 &&
		    getrlimit(RLIMIT_NOFILE, &rl) == -1)
			return;
	}
	need = (rlim_t)a->acme.max_connections * (a->acme.nlisten > 0 ?
	    a->acme.nlisten : 1) + FD_RESERVE;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return;
	have = rl.rlim_cur > 2 * FD_RESERVE ? rl.rlim_cur - FD_RESERVE : FD_RESERVE;
	have /= a->acme.nlisten > 0 ? a->acme.nlisten : 1;
	log_msg(LOG_WARNING, "only %llu descriptors (RLIMIT_NOFILE): serving "
	    "%llu connections per socket, not %u", (unsigned long long)rl.rlim_cur,
	    (unsigned long long)have, a->acme.max_connections);
	a->acme.max_connections = (unsigned int)have;
}

/* listener_app.busy: a daemon is stopped only once its requests are done. */
static int
daemon_busy(void *cls, const struct MHD_Daemon *d)
{
	struct acmed *a = cls;

	return a->workers != NULL && workers_pending(a->workers, d) > 0;
}

static int
make_limits(struct acmed *a)
{
	size_t n = a->acme.ratelimit_slots;

	return (a->rl_new_account = ratelimit_new(&a->acme.rl_new_account, n)) ==
	    NULL || (a->rl_address = ratelimit_new(&a->acme.rl_address, n)) ==
	    NULL || (a->rl_account = ratelimit_new(&a->acme.rl_account, n)) ==
	    NULL ? -1 : 0;
}

/* The CRL and the root over plain HTTP, when there is a socket for it. */
static int
start_publish(struct acmed *a, struct listener *l, char *err, size_t errlen)
{
	const int *fds;
	size_t nfds = listener_plain_fds(l, &fds);

	if (publish_http_start(a->pub, &a->acme, fds, nfds, err, errlen) == -1)
		return -1;
	if (publish_http_name(a->pub) != NULL)
		log_msg(LOG_INFO, "serving the CRL and the root over HTTP on "
		    "%s (%s%s, %s%s)", publish_http_name(a->pub),
		    a->ca.publish_url, CONFIG_PUBLISH_CRL_PATH,
		    a->ca.publish_url, CONFIG_PUBLISH_ROOT_PATH);
	return 0;
}

static int
run(struct acmed *a)
{
	struct listener_app app = { http_handler, a, http_completed, NULL,
	    daemon_busy, a };
	struct listener *l = NULL;
	struct tls_material m;
	sigset_t sigs;
	char err[512];
	int rc = 1, db_busy = 0;

	memset(&m, 0, sizeof(m));
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	/* Blocked before any thread starts, so only sigtimedwait sees them. */
	if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		log_msg(LOG_ERR, "cannot set up signals");
		return 1;
	}
	if ((a->keys = keycache_new()) == NULL) {
		log_msg(LOG_ERR, "out of memory");
		return 1;
	}
	if (acmedb_open(a->acme.db, &a->db, err, sizeof(err)) == -1 ||
	    (a->nonces = nonces_new()) == NULL ||
	    (a->vpool = vpool_new(a, err, sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "%s", a->nonces == NULL && a->db != NULL ?
		    "cannot make the nonce key" : err);
		goto out;
	}
	if (requeue_validations(a) == -1)
		goto out;
	raise_nofile(a);
	if (make_limits(a) == -1) {
		log_msg(LOG_ERR, "out of memory");
		goto out;
	}
	if ((a->workers = workers_new(a->acme.workers, err, sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "%s", err);
		goto out;
	}
	if ((a->pub = publish_new(a->ca.publish_url, a->ca.signer_socket)) ==
	    NULL) {
		log_msg(LOG_ERR, "out of memory");
		goto out;
	}
	if ((l = listener_bind(&a->acme, &app, err, sizeof(err))) == NULL ||
	    first_certificate(a, &m, err, sizeof(err)) == -1 ||
	    listener_serve(l, &m, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "%s", err);
		goto out;
	}
	set_root_pem(a, m.root_pem);
	if (start_publish(a, l, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "%s", err);
		goto out;
	}
	log_msg(LOG_INFO, "serving %s%s (directory %s/directory)",
	    listener_name(l, 0), listener_count(l) > 1 ? " and more" : "",
	    a->acme.base_url);
	if (sd_notify(0, "READY=1\nSTATUS=serving ACME") < 0)
		log_msg(LOG_WARNING, "sd_notify failed");
	serve(a, l, &sigs, tls_material_renew_at(&m));
	(void)sd_notify(0, "STOPPING=1");
	rc = 0;
out:
	tls_material_clear(&m);
	/* No new connections, then every suspended request finished (or
	 * answered), then the daemons can stop. */
	listener_quiesce(l);
	if (a->workers != NULL)
		workers_close(a->workers);
	listener_free(l);
	workers_free(a->workers);
	/* After the workers: none of them is in publish_answer any more. */
	publish_free(a->pub);
	a->pub = NULL;
	a->workers = NULL;
	ratelimit_free(a->rl_new_account);
	ratelimit_free(a->rl_address);
	ratelimit_free(a->rl_account);
	db_busy = vpool_free(a->vpool) == -1;
	if (!db_busy)
		acmedb_close(a->db);
	nonces_free(a->nonces);
	keycache_free(a->keys);
	return rc;
}

/*
 * glibc gives each thread that allocates an arena of its own (up to 8 per
 * core) and trims each arena's free top with madvise as it goes: under
 * load that was 4 % of acmed's CPU, plus the TLB shootdowns it sends to
 * the other cores.  Two arenas are enough for 2 busy cores, and a free top
 * of up to MALLOC_TRIM_BYTES is kept for the next request.  A failure
 * only costs speed.
 */
#define MALLOC_ARENAS		2
#define MALLOC_TRIM_BYTES	(1024 * 1024)

static void
tune_malloc(void)
{
	if (mallopt(M_ARENA_MAX, MALLOC_ARENAS) != 1 ||
	    mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_BYTES) != 1)
		log_msg(LOG_WARNING, "mallopt failed; using malloc's defaults");
}

int
main(int argc, char *argv[])
{
	struct acmed a;
	const char *path = NULL;
	char err[512];
	int ch, check = 0, rc;

	while ((ch = getopt(argc, argv, "c:th")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (path == NULL)
		path = config_default_path();
	log_init("iotca-acmed");
	tune_malloc();

	memset(&a, 0, sizeof(a));
	if (pthread_mutex_init(&a.root_lock, NULL) != 0)
		return 1;
	if (load_config(&a, path, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "%s", err);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", path);
		rc = 0;
	} else
		rc = run(&a);
	acme_config_free(&a.acme);
	config_free(&a.ca);
	free(a.root_pem);
	pthread_mutex_destroy(&a.root_lock);
	return rc;
}
