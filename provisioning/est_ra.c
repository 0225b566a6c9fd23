/*
 * iotca-est-ra: an EST (RFC 7030) registration authority that fulfils
 * enrolments by placing ACME orders (draft-ietf-acme-integrations), after
 * pre-authorizing its DNS subtree (RFC 9444).  See est_ra.h for the flow,
 * est_http.h for the server, est_cache.h for the state that survives a
 * restart, and iotca-est-ra(8).
 *
 * Threads: MHD's connection threads run the EST requests; [est] workers
 * threads run the ACME side, each with its own ra_acme (all with the one
 * account key in state_dir); the main thread waits for signals.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <systemd/sd-daemon.h>

#include "est_http.h"
#include "est_ra.h"
#include "log.h"
#include "ra_acme.h"

#define STEP_TIMEOUT_MS		60000	/* one ACME step, dns-01 included */
#define LEASE_SEC		150	/* a worker's hold on a row */
#define PREAUTH_RETRY_SEC	30
#define PREAUTH_TIMEOUT_MS	90000
#define TRANSIENT_RETRY_SEC	10
#define GIVE_UP_SEC		(24 * 3600)	/* a row that never gets anywhere */
#define FAILED_KEEP_SEC		(24 * 3600)
#define PURGE_EVERY_SEC		3600
#define MAX_FILE		(1024 * 1024)

struct worker {
	struct est_ra	*ra;
	int		 id;
	pthread_t	 thread;
	int		 started;
};

static void
usage(void)
{
	fprintf(stderr, "usage: iotca-est-ra [-c FILE] [-f]\n"
	    "       iotca-est-ra [-c FILE] check\n");
	exit(2);
}

/* ---- small helpers ----------------------------------------------------------- */

static char *
read_file(const char *path, int secret, char *err, size_t errlen)
{
	struct stat sb;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) == -1 || sb.st_size > MAX_FILE) {
		snprintf(err, errlen, "%s: %s", path, sb.st_size > MAX_FILE ?
		    "too large" : strerror(errno));
		close(fd);
		return NULL;
	}
	if (secret && (sb.st_mode & (S_IRWXO | S_IWGRP))) {
		snprintf(err, errlen, "%s: mode %04o lets others read or write "
		    "it; make it 0600", path, (unsigned)(sb.st_mode & 07777));
		close(fd);
		return NULL;
	}
	if ((buf = malloc((size_t)sb.st_size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return NULL;
	}
	while (got < (size_t)sb.st_size) {
		n = read(fd, buf + got, (size_t)sb.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return buf;
}

static int
monotonic_deadline(struct timespec *ts, long ms)
{
	if (clock_gettime(CLOCK_REALTIME, ts) == -1)
		return -1;
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
	return 0;
}

static void
timed_wait(pthread_cond_t *cv, pthread_mutex_t *m, long ms)
{
	struct timespec ts;

	if (ms < 1)
		ms = 1;
	if (monotonic_deadline(&ts, ms) == 0)
		(void)pthread_cond_timedwait(cv, m, &ts);
}

static int
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && strcmp(s + n - t, tail) == 0;
}

/*
 * ACME problem -> EST status (the draft leaves the mapping open): policy
 * refusals 400, the operator's denial (acmed: unauthorized) 403, rate
 * limits 503, anything else the upstream's fault: 502.
 */
static int
map_problem(const struct acme_error *e)
{
	const char *t = e->type;

	if (ends_with(t, "rejectedIdentifier") || ends_with(t, "badCSR") ||
	    ends_with(t, "badSignatureAlgorithm"))
		return 400;
	if (strstr(t, "approvalDenied") != NULL ||
	    strstr(e->detail, "approvalDenied") != NULL ||
	    ends_with(t, "unauthorized"))
		return 403;
	if (ends_with(t, "rateLimited"))
		return 503;
	return 502;
}

static const char *
err_text(const struct acme_error *e)
{
	return e->detail[0] != '\0' ? e->detail : "the ACME server failed";
}

/* ---- cache connections for the HTTP threads ------------------------------------ */

struct est_cache *
est_cache_take(struct est_ra *ra)
{
	struct est_cache *c = NULL;
	char err[512];

	if (pthread_mutex_lock(&ra->lock) == 0) {
		if (ra->npool > 0)
			c = ra->pool[--ra->npool];
		pthread_mutex_unlock(&ra->lock);
	}
	if (c == NULL && (c = est_cache_open(ra->cache_path, err, sizeof(err))) == NULL)
		log_msg(LOG_ERR, "%s", err);
	return c;
}

void
est_cache_give(struct est_ra *ra, struct est_cache *c)
{
	if (c == NULL)
		return;
	if (pthread_mutex_lock(&ra->lock) == 0) {
		if (ra->npool < EST_CACHE_POOL) {
			ra->pool[ra->npool++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&ra->lock);
	}
	est_cache_close(c);
}

/* ---- answering an enrolment ----------------------------------------------------- */

static int
answer_done(struct est_answer *a, const struct est_row *row)
{
	STACK_OF(X509) *certs;
	char reason[256], *b64;
	size_t len;

	if (row->p7 != NULL && row->p7[0] != '\0') {
		/* Made once, when the certificate came. */
		if ((b64 = strdup(row->p7)) == NULL)
			return -1;
		len = strlen(b64);
	} else if ((certs = est_pem_certs(row->chain, strlen(row->chain), reason,
	    sizeof(reason))) == NULL) {
		log_msg(LOG_ERR, "csr %.8s: the stored chain: %s", row->hash, reason);
		return est_answer_text(a, 500, "the stored certificate is "
		    "unreadable; see the RA's log");
	} else {
		b64 = est_certs_only(certs, &len, reason, sizeof(reason));
		sk_X509_pop_free(certs, X509_free);
		if (b64 == NULL)
			return est_answer_text(a, 500, "%s", reason);
	}
	free(a->body);
	a->status = 200;
	a->ctype = "application/pkcs7-mime; smime-type=certs-only";
	a->body = b64;
	a->len = len;
	return 0;
}

/* An answer for a row that is done or failed: 1; 0 if it is still going. */
static int
answer_row(struct est_ra *ra, struct est_cache *c, const struct est_row *row,
    struct est_answer *a, int *rc)
{
	if (row->state == EST_DONE) {
		*rc = answer_done(a, row);
		return 1;
	}
	if (row->state != EST_FAILED)
		return 0;
	*rc = est_answer_text(a, (unsigned int)row->status, "%s", row->detail);
	if (row->status == 503)
		a->retry_after = row->retry_after > 0 ? row->retry_after :
		    ra->cfg.retry_after;
	/* Upstream trouble is told once: the next request tries again. */
	if (row->status >= 500 && est_cache_delete(c, row->hash) == -1)
		log_msg(LOG_ERR, "%s", est_cache_error(c));
	return 1;
}

static void
join_names(const struct est_csr *csr, char *out, size_t outlen)
{
	size_t i, used = 0;

	out[0] = '\0';
	for (i = 0; i < csr->nnames && used < outlen; i++)
		used += (size_t)snprintf(out + used, outlen - used, "%s%s",
		    i > 0 ? " " : "", csr->names[i]);
}

/* Under lock: whether row hash moved since *seen (then *seen catches up). */
static int
row_moved(struct est_ra *ra, const char *hash, unsigned long *seen)
{
	unsigned long g;
	int moved = 0;

	if (ra->change_gen - *seen >= EST_CHANGE_RING)
		moved = 1;		/* too much happened: look */
	for (g = *seen + 1; !moved && g <= ra->change_gen; g++) {
		const char *h = ra->changes[g % EST_CHANGE_RING].hash;

		moved = strcmp(h, "*") == 0 || strcmp(h, hash) == 0;
	}
	*seen = ra->change_gen;
	return moved;
}

/* 1 and the reason when pre-authorization has failed (and not since
 * succeeded), else 0. */
static int
preauth_failed(struct est_ra *ra, char *note, size_t notelen)
{
	int failed = 0;

	if (pthread_mutex_lock(&ra->lock) != 0)
		return 0;
	if (ra->preauth == PREAUTH_FAILED) {
		snprintf(note, notelen, "pre-authorization of %s failed: %s",
		    ra->cfg.subtree, ra->preauth_err);
		failed = 1;
	}
	pthread_mutex_unlock(&ra->lock);
	return failed;
}

int
est_enrol(struct est_ra *ra, const struct est_csr *csr, const char *who,
    const char *label, struct est_answer *a)
{
	struct est_cache *c;
	struct est_row row;
	char names[EST_MAX_NAMES * (EST_MAX_NAME_LEN + 1) + 1], note[600];
	time_t now = time(NULL), deadline;
	unsigned long seen = 0;
	int found, rc = 0, polls;

	memset(&row, 0, sizeof(row));
	if ((c = est_cache_take(ra)) == NULL)
		return est_answer_text(a, 500, "the RA's cache cannot be opened");
	if ((found = est_cache_get(c, csr->hash, &row)) == -1)
		goto dberr;
	if (found && row.state == EST_DONE && row.not_after <= now) {
		/* The draft's cache lasts no longer than the certificate. */
		est_row_clear(&row);
		if (est_cache_delete(c, csr->hash) == -1)
			goto dberr;
		found = 0;
	}
	if (found && answer_row(ra, c, &row, a, &rc))
		goto out;
	/* Nothing new goes to the ACME server while pre-authorization
	 * fails; a row queued before it failed waits for it. */
	if ((!found || row.state == EST_QUEUED) &&
	    preauth_failed(ra, note, sizeof(note))) {
		rc = est_answer_text(a, 503, "%s", note);
		a->retry_after = PREAUTH_RETRY_SEC;
		goto out;
	}
	if (!found) {
		join_names(csr, names, sizeof(names));
		if (est_cache_add(c, csr->hash, csr->der, csr->derlen,
		    names, who, label, (long long)now) == -1)
			goto dberr;
	} else if (est_cache_hurry(c, csr->hash, (long long)now) == -1)
		goto dberr;
	est_row_clear(&row);
	if (pthread_mutex_lock(&ra->lock) != 0)
		goto dberr;
	seen = ra->change_gen;
	ra->work_gen++;
	pthread_cond_signal(&ra->work);		/* one worker is enough */
	pthread_mutex_unlock(&ra->lock);
	deadline = now + ra->cfg.enrol_wait;
	for (;;) {
		if ((found = est_cache_get(c, csr->hash, &row)) == -1)
			goto dberr;
		if (found == 0) {
			rc = est_answer_text(a, 500, "the enrolment vanished "
			    "from the RA's cache");
			goto out;
		}
		if (answer_row(ra, c, &row, a, &rc))
			goto out;
		if (time(NULL) >= deadline)
			break;
		est_row_clear(&row);
		if (pthread_mutex_lock(&ra->lock) != 0)
			break;
		/* Sleep until this row moves (re-read each second anyway). */
		for (polls = 0; !ra->stopping && polls < 2 &&
		    time(NULL) < deadline && !row_moved(ra, csr->hash, &seen);
		    polls++)
			timed_wait(&ra->changed, &ra->lock, 500);
		if (ra->stopping) {
			/* The row stays: the client's retry finds it. */
			pthread_mutex_unlock(&ra->lock);
			break;
		}
		pthread_mutex_unlock(&ra->lock);
	}
	if (row.state == EST_QUEUED && preauth_failed(ra, note, sizeof(note))) {
		rc = est_answer_text(a, 503, "%s", note);
		a->retry_after = PREAUTH_RETRY_SEC;
		goto out;
	}
	rc = est_answer_text(a, 202, "the enrolment is in progress (%s); send "
	    "the same request again after %d seconds",
	    row.detail != NULL && row.detail[0] != '\0' ? row.detail :
	    row.state == EST_QUEUED ? "queued for the ACME server" :
	    "the ACME order is being processed", ra->cfg.retry_after);
	a->retry_after = ra->cfg.retry_after;
	goto out;
dberr:
	log_msg(LOG_ERR, "%s", est_cache_error(c));
	rc = est_answer_text(a, 500, "the RA's cache failed; see its log");
out:
	est_row_clear(&row);
	est_cache_give(ra, c);
	return rc;
}

/* ---- workers ----------------------------------------------------------------------- */

/* The leaf's notAfter and the certs-only answer of a PEM chain; 0 and
 * NULL if it is unreadable. */
static time_t
read_chain(const char *pem, char **p7)
{
	STACK_OF(X509) *certs;
	const ASN1_TIME *t;
	struct tm tm;
	char reason[128];
	size_t len;
	time_t r = 0;

	*p7 = NULL;
	if ((certs = est_pem_certs(pem, strlen(pem), reason, sizeof(reason))) == NULL)
		return 0;
	t = X509_get0_notAfter(sk_X509_value(certs, 0));
	memset(&tm, 0, sizeof(tm));
	if (t != NULL && ASN1_TIME_to_tm(t, &tm) == 1)
		r = timegm(&tm);
	*p7 = est_certs_only(certs, &len, reason, sizeof(reason));
	sk_X509_pop_free(certs, X509_free);
	if (*p7 == NULL)
		r = 0;
	return r;
}

/* Under lock: record that the row hash ("*": every row) moved on. */
static void
note_change(struct est_ra *ra, const char *hash)
{
	unsigned long g = ++ra->change_gen;

	ra->changes[g % EST_CHANGE_RING].gen = g;
	snprintf(ra->changes[g % EST_CHANGE_RING].hash,
	    sizeof(ra->changes[0].hash), "%s", hash);
	pthread_cond_broadcast(&ra->changed);
}

static void
wake_requests(struct est_ra *ra, const char *hash)
{
	if (pthread_mutex_lock(&ra->lock) == 0) {
		note_change(ra, hash);
		pthread_mutex_unlock(&ra->lock);
	}
}

static void
row_failed(struct est_cache *c, const struct est_row *row, int status,
    const char *detail)
{
	log_msg(LOG_NOTICE, "enrol %s csr=%.8s names=%s: failed -> %d: %s",
	    row->who, row->hash, row->names, status, detail);
	if (est_cache_set_failed(c, row->hash, status, detail,
	    status == 503 ? TRANSIENT_RETRY_SEC * 3 : 0) == -1)
		log_msg(LOG_ERR, "%s", est_cache_error(c));
}

static void
row_transient(struct est_cache *c, const struct est_row *row, const char *what,
    const char *detail)
{
	time_t now = time(NULL);

	if (now - row->created > GIVE_UP_SEC) {
		row_failed(c, row, 502, detail);
		return;
	}
	log_msg(LOG_WARNING, "csr %.8s: %s: %s; again in %d s", row->hash, what,
	    detail, TRANSIENT_RETRY_SEC);
	if (est_cache_set_wait(c, row->hash, (long long)now + TRANSIENT_RETRY_SEC,
	    detail) == -1)
		log_msg(LOG_ERR, "%s", est_cache_error(c));
}

/* A problem from newOrder that no retry will change. */
static int
permanent(const struct acme_error *e)
{
	return e->status >= 400 && e->status < 500 && map_problem(e) != 502 &&
	    map_problem(e) != 503;
}

/* One step of one row. */
static void
step_row(struct est_ra *ra, struct ra_acme *acme, struct est_cache *c,
    struct est_row *row)
{
	const char *names[EST_MAX_NAMES];
	char buf[EST_MAX_NAMES * (EST_MAX_NAME_LEN + 1) + 1], *save = NULL, *n;
	char url[2048], note[128];
	struct acme_error e;
	char *pem = NULL, *p7 = NULL;
	long retry = 0;
	size_t nn = 0;
	time_t na;
	int r;

	memset(&e, 0, sizeof(e));
	if (row->state == EST_QUEUED) {
		snprintf(buf, sizeof(buf), "%s", row->names);
		for (n = strtok_r(buf, " ", &save); n != NULL && nn < EST_MAX_NAMES;
		    n = strtok_r(NULL, " ", &save))
			names[nn++] = n;
		if (ra_acme_order_open(acme, names, nn, url, sizeof(url), &e) == -1) {
			if (permanent(&e))
				row_failed(c, row, map_problem(&e), err_text(&e));
			else
				row_transient(c, row, "newOrder", err_text(&e));
			return;
		}
		/* Stored before any finalize: a restart resumes this order. */
		if (est_cache_set_ordered(c, row->hash, url, (long long)time(NULL)) == -1) {
			log_msg(LOG_ERR, "%s", est_cache_error(c));
			(void)est_cache_set_wait(c, row->hash,
			    (long long)time(NULL) + TRANSIENT_RETRY_SEC, "");
			return;
		}
		log_msg(LOG_INFO, "enrol %s csr=%.8s names=%s: order %s",
		    row->who, row->hash, row->names, url);
		free(row->order_url);
		if ((row->order_url = strdup(url)) == NULL)
			return;
	}
	r = ra_acme_order_step(acme, row->order_url, row->csr, row->csrlen,
	    STEP_TIMEOUT_MS, &retry, &pem, &e);
	switch (r) {
	case RA_STEP_WAIT:
		if (retry < 1)
			retry = 1;
		if (retry > 60)
			retry = 60;
		snprintf(note, sizeof(note), "the ACME order is processing: "
		    "waiting for validation or the operator's approval");
		if (est_cache_set_wait(c, row->hash, (long long)time(NULL) + retry,
		    note) == -1)
			log_msg(LOG_ERR, "%s", est_cache_error(c));
		break;
	case RA_STEP_DONE:
		if ((na = read_chain(pem, &p7)) <= 0) {
			row_failed(c, row, 502, "the ACME server's certificate "
			    "is unreadable");
			break;
		}
		if (est_cache_set_done(c, row->hash, pem, p7, (long long)na) == -1)
			log_msg(LOG_ERR, "%s", est_cache_error(c));
		else
			log_msg(LOG_INFO, "enrol %s csr=%.8s names=%s: issued",
			    row->who, row->hash, row->names);
		break;
	case RA_STEP_FAILED:
		row_failed(c, row, map_problem(&e), err_text(&e));
		break;
	default:
		row_transient(c, row, "order step", err_text(&e));
		break;
	}
	free(pem);
	free(p7);
}

static void
run_preauth(struct est_ra *ra, struct ra_acme *acme)
{
	struct acme_error e;
	time_t expires = 0, now;
	int r;

	memset(&e, 0, sizeof(e));
	r = ra_acme_preauthorize(acme, PREAUTH_TIMEOUT_MS, &expires, &e);
	now = time(NULL);
	if (pthread_mutex_lock(&ra->lock) != 0)
		return;
	if (r == 1 || r == 0) {
		if (ra->preauth != PREAUTH_OK || ra->per_order != (r == 0))
			log_msg(LOG_NOTICE, r == 1 ? "pre-authorized %s" :
			    "%s: the ACME server has no pre-authorization; "
			    "each order is validated by dns-01", ra->cfg.subtree);
		ra->preauth = PREAUTH_OK;
		ra->per_order = r == 0;
		ra->preauth_err[0] = '\0';
		ra->preauth_expires = r == 1 ? expires : 0;
		/* Again half-way to its expiry (a day when none is given). */
		if (r == 1 && expires > now)
			ra->preauth_next = now + (expires - now) / 2;
		else
			ra->preauth_next = now + 24 * 3600;
	} else {
		log_msg(LOG_ERR, "pre-authorization of %s failed: %s; again in "
		    "%d s", ra->cfg.subtree, err_text(&e), PREAUTH_RETRY_SEC);
		/* A renewal that fails while the old one holds changes nothing yet. */
		if (!(ra->preauth == PREAUTH_OK && ra->preauth_expires > now + 60)) {
			ra->preauth = PREAUTH_FAILED;
			snprintf(ra->preauth_err, sizeof(ra->preauth_err), "%s",
			    err_text(&e));
		}
		ra->preauth_next = now + PREAUTH_RETRY_SEC;
	}
	note_change(ra, "*");
	pthread_cond_broadcast(&ra->work);
	pthread_mutex_unlock(&ra->lock);
}

static struct ra_acme *
make_acme(struct est_ra *ra)
{
	struct ra_acme_config rc;
	struct acme_error e;
	struct ra_acme *acme;

	memset(&rc, 0, sizeof(rc));
	memset(&e, 0, sizeof(e));
	rc.directory_url = ra->cfg.directory;
	rc.ca_file = ra->cfg.ca_file;
	rc.account_key_file = ra->key_path;
	rc.subtree = ra->cfg.subtree;
	rc.dns_server = ra->cfg.dns_server;
	rc.dns_zone = ra->cfg.dns_zone;
	rc.tsig_key_file = ra->cfg.tsig_key;
	if ((acme = ra_acme_new(&rc, &e)) == NULL) {
		log_msg(LOG_ERR, "ACME client: %s", err_text(&e));
		if (pthread_mutex_lock(&ra->lock) == 0) {
			if (ra->preauth != PREAUTH_OK) {
				ra->preauth = PREAUTH_FAILED;
				snprintf(ra->preauth_err, sizeof(ra->preauth_err),
				    "%s", err_text(&e));
			}
			pthread_mutex_unlock(&ra->lock);
		}
	}
	return acme;
}

static void *
worker_main(void *p)
{
	struct worker *w = p;
	struct est_ra *ra = w->ra;
	struct ra_acme *acme = NULL;
	struct est_cache *c;
	struct est_row row;
	char err[512];
	time_t now, next_acme = 0, next_purge = time(NULL) + PURGE_EVERY_SEC;
	long long due;
	unsigned long work_seen;
	long wait_ms;
	int r, ok;

	if ((c = est_cache_open(ra->cache_path, err, sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "worker %d: %s", w->id, err);
		return NULL;
	}
	for (;;) {
		if (pthread_mutex_lock(&ra->lock) != 0)
			break;
		if (ra->stopping) {
			pthread_mutex_unlock(&ra->lock);
			break;
		}
		now = time(NULL);
		if (acme == NULL && now >= next_acme) {
			pthread_mutex_unlock(&ra->lock);
			if ((acme = make_acme(ra)) == NULL)
				next_acme = time(NULL) + PREAUTH_RETRY_SEC;
			continue;
		}
		if (acme != NULL && w->id == 0 && now >= ra->preauth_next) {
			pthread_mutex_unlock(&ra->lock);
			run_preauth(ra, acme);
			continue;
		}
		if (w->id == 0 && now >= next_purge) {
			pthread_mutex_unlock(&ra->lock);
			if (est_cache_purge(c, (long long)now, FAILED_KEEP_SEC) == -1)
				log_msg(LOG_ERR, "%s", est_cache_error(c));
			next_purge = now + PURGE_EVERY_SEC;
			continue;
		}
		ok = acme != NULL && ra->preauth == PREAUTH_OK;
		/* Work queued from here on is seen before this worker sleeps. */
		work_seen = ra->work_gen;
		pthread_mutex_unlock(&ra->lock);
		r = 0;
		if (ok) {
			memset(&row, 0, sizeof(row));
			r = est_cache_claim(c, (long long)now, LEASE_SEC, &row);
			if (r == 1) {
				step_row(ra, acme, c, &row);
				wake_requests(ra, row.hash);
				est_row_clear(&row);
				continue;
			}
			if (r == -1)
				log_msg(LOG_ERR, "%s", est_cache_error(c));
		}
		due = ok && r == 0 ? est_cache_next_due(c) : -1;
		if (pthread_mutex_lock(&ra->lock) != 0)
			break;
		wait_ms = 5000;
		if (due >= 0 && (due - (long long)now) * 1000 < wait_ms)
			wait_ms = (long)(due - (long long)now) * 1000;
		if (w->id == 0 && acme != NULL &&
		    (ra->preauth_next - now) * 1000 < wait_ms)
			wait_ms = (long)(ra->preauth_next - now) * 1000;
		if (r == -1)
			wait_ms = 1000;
		if (!ra->stopping && ra->work_gen == work_seen)
			timed_wait(&ra->work, &ra->lock, wait_ms);
		pthread_mutex_unlock(&ra->lock);
	}
	ra_acme_free(acme);
	est_cache_close(c);
	return NULL;
}

/* ---- start and stop ------------------------------------------------------------------ */

/* The certs-only answer of /cacerts and the trust list of the handshake. */
static int
load_anchors(struct est_ra *ra, char **trust, char *err, size_t errlen)
{
	STACK_OF(X509) *certs;
	char *ca, *client = NULL, reason[256];
	size_t n;

	*trust = NULL;
	if ((ca = read_file(ra->cfg.ca_file, 0, err, errlen)) == NULL)
		return -1;
	if ((certs = est_pem_certs(ca, strlen(ca), reason, sizeof(reason))) == NULL) {
		snprintf(err, errlen, "%s: %s", ra->cfg.ca_file, reason);
		free(ca);
		return -1;
	}
	ra->cacerts = est_certs_only(certs, &ra->cacerts_len, reason, sizeof(reason));
	sk_X509_pop_free(certs, X509_free);
	if (ra->cacerts == NULL) {
		snprintf(err, errlen, "%s: %s", ra->cfg.ca_file, reason);
		free(ca);
		return -1;
	}
	if (ra->cfg.client_ca != NULL) {
		if ((client = read_file(ra->cfg.client_ca, 0, err, errlen)) == NULL) {
			free(ca);
			return -1;
		}
		if ((certs = est_pem_certs(client, strlen(client), reason,
		    sizeof(reason))) == NULL) {
			snprintf(err, errlen, "%s: %s", ra->cfg.client_ca, reason);
			free(ca);
			free(client);
			return -1;
		}
		sk_X509_pop_free(certs, X509_free);
	}
	n = strlen(ca) + (client != NULL ? strlen(client) : 0) + 2;
	if ((*trust = malloc(n)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(ca);
		free(client);
		return -1;
	}
	snprintf(*trust, n, "%s\n%s", ca, client != NULL ? client : "");
	free(ca);
	free(client);
	return 0;
}

static int
setup(struct est_ra *ra, char **trust, char *err, size_t errlen)
{
	struct est_cache *c;
	char files[8200];

	if (mkdir(ra->cfg.state_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", ra->cfg.state_dir, strerror(errno));
		return -1;
	}
	if ((size_t)snprintf(ra->cache_path, sizeof(ra->cache_path), "%s/cache.db",
	    ra->cfg.state_dir) >= sizeof(ra->cache_path) ||
	    (size_t)snprintf(ra->key_path, sizeof(ra->key_path), "%s/account.key",
	    ra->cfg.state_dir) >= sizeof(ra->key_path)) {
		snprintf(err, errlen, "state_dir is too long");
		return -1;
	}
	if (load_anchors(ra, trust, err, errlen) == -1)
		return -1;
	snprintf(files, sizeof(files), "%s%s%s", ra->cfg.ca_file,
	    ra->cfg.client_ca != NULL ? "\n" : "",
	    ra->cfg.client_ca != NULL ? ra->cfg.client_ca : "");
	if ((ra->auth = est_auth_load(ra->cfg.credentials, files, ra->cfg.ca_file,
	    err, errlen)) == NULL)
		return -1;
	if ((c = est_cache_open(ra->cache_path, err, errlen)) == NULL)
		return -1;
	if (est_cache_release_all(c) == -1 ||
	    est_cache_purge(c, (long long)time(NULL), FAILED_KEEP_SEC) == -1) {
		snprintf(err, errlen, "%s", est_cache_error(c));
		est_cache_close(c);
		return -1;
	}
	est_cache_give(ra, c);
	return 0;
}

static int
run(struct est_ra *ra)
{
	struct worker *w;
	struct est_http *http = NULL;
	char err[512], *trust = NULL, *key = NULL, *chain = NULL;
	sigset_t sigs;
	int i, sig, rc = 1, e;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		log_msg(LOG_ERR, "cannot set up signals");
		return 1;
	}
	if ((w = calloc((size_t)ra->cfg.workers, sizeof(*w))) == NULL)
		return 1;
	if (setup(ra, &trust, err, sizeof(err)) == -1 ||
	    (key = read_file(ra->cfg.tls_key, 1, err, sizeof(err))) == NULL ||
	    (chain = read_file(ra->cfg.tls_cert, 0, err, sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "%s", err);
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		log_msg(LOG_ERR, "curl_global_init failed");
		goto out;
	}
	for (i = 0; i < ra->cfg.workers; i++) {
		w[i].ra = ra;
		w[i].id = i;
		if ((e = pthread_create(&w[i].thread, NULL, worker_main, &w[i])) != 0) {
			log_msg(LOG_ERR, "pthread_create: %s", strerror(e));
			goto stop;
		}
		w[i].started = 1;
	}
	if ((http = est_http_start(ra, key, chain, trust, err, sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "%s", err);
		goto stop;
	}
	OPENSSL_cleanse(key, strlen(key));
	log_msg(LOG_NOTICE, "serving EST on %s%s for %s (%d workers)",
	    ra->cfg.listen[0].text, ra->cfg.nlisten > 1 ? " and more" : "",
	    ra->cfg.subtree, ra->cfg.workers);
	(void)sd_notify(0, "READY=1\nSTATUS=serving EST");
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			break;
		if (sig == SIGHUP) {
			log_msg(LOG_INFO, "SIGHUP: nothing to reload; restart "
			    "to read the configuration again");
			continue;
		}
		log_msg(LOG_NOTICE, "stopping (signal %d)", sig);
		break;
	}
	(void)sd_notify(0, "STOPPING=1");
	rc = 0;
stop:
	if (pthread_mutex_lock(&ra->lock) == 0) {
		ra->stopping = 1;
		pthread_cond_broadcast(&ra->work);
		pthread_cond_broadcast(&ra->changed);
		pthread_mutex_unlock(&ra->lock);
	}
	est_http_stop(http);
	for (i = 0; i < ra->cfg.workers; i++)
		if (w[i].started)
			pthread_join(w[i].thread, NULL);
	curl_global_cleanup();
out:
	if (key != NULL) {
		OPENSSL_cleanse(key, strlen(key));
		free(key);
	}
	free(chain);
	free(trust);
	free(w);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct est_ra ra;
	const char *path = EST_DEFAULT_CONFIG;
	char err[512];
	size_t i;
	int ch, rc;

	while ((ch = getopt(argc, argv, "c:fh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			/* It never forks: the flag says so to scripts. */
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1 || (argc == 1 && strcmp(argv[0], "check") != 0))
		usage();
	log_init("iotca-est-ra");
	memset(&ra, 0, sizeof(ra));
	if (est_config_load(path, &ra.cfg, err, sizeof(err)) == -1) {
		if (argc == 1)
			fprintf(stderr, "%s\n", err);
		else
			log_msg(LOG_ERR, "%s", err);
		return 1;
	}
	if (argc == 1) {
		printf("OK\n");
		est_config_free(&ra.cfg);
		return 0;
	}
	if (pthread_mutex_init(&ra.lock, NULL) != 0 ||
	    pthread_cond_init(&ra.work, NULL) != 0 ||
	    pthread_cond_init(&ra.changed, NULL) != 0) {
		log_msg(LOG_ERR, "cannot make the locks");
		return 1;
	}
	rc = run(&ra);
	for (i = 0; i < ra.npool; i++)
		est_cache_close(ra.pool[i]);
	est_auth_free(ra.auth);
	free(ra.cacerts);
	est_config_free(&ra.cfg);
	pthread_cond_destroy(&ra.changed);
	pthread_cond_destroy(&ra.work);
	pthread_mutex_destroy(&ra.lock);
	return rc;
}
