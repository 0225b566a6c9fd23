/*
 * est_cache: the RA's enrolments in SQLite (state_dir/cache.db), keyed by
 * the SHA-256 of the whole CSR DER (integrations draft 8.1: the same CSR
 * coming back gets the same answer).  A row is
 *
 *   queued  -> ordered (order URL stored, before any finalize) -> done
 *                                                              -> failed
 *
 * done rows are kept until the certificate's notAfter, then purged.  Workers
 * take due rows with a lease, so two never step one order at once; leases
 * are dropped at start (the process that held them is gone).
 *
 * A struct est_cache is one SQLite connection: one per thread.
 */
#ifndef IOTCA_EST_CACHE_H
#define IOTCA_EST_CACHE_H

#include <stddef.h>

enum est_state {
	EST_QUEUED = 1,
	EST_ORDERED,
	EST_DONE,
	EST_FAILED,
};

struct est_row {
	char		 hash[65];
	enum est_state	 state;
	unsigned char	*csr;
	size_t		 csrlen;
	char		*names;		/* space-separated */
	char		*who;		/* "user=U" or "cert=SUBJECT" */
	char		*label;		/* "" for none */
	char		*order_url;	/* NULL until ordered */
	char		*chain;		/* done: PEM, leaf first */
	char		*p7;		/* done: the certs-only answer (base64) */
	long long	 not_after;	/* done */
	int		 status;	/* failed: HTTP status */
	char		*detail;	/* failed: reason; else the last note */
	int		 retry_after;	/* failed with 503: s */
	long long	 next_at;	/* queued/ordered: when it is due */
	long long	 created;
};

struct est_cache;

struct est_cache *est_cache_open(const char *path, char *err, size_t errlen);
void		 est_cache_close(struct est_cache *);
/* The last error, one line. */
const char	*est_cache_error(const struct est_cache *);
void		 est_row_clear(struct est_row *);

/* 1 and *row, 0 if there is none, -1. */
int	est_cache_get(struct est_cache *, const char *hash, struct est_row *);
/* A new queued row, due now: 1, or 0 if the hash is there already, -1. */
int	est_cache_add(struct est_cache *, const char *hash,
	    const unsigned char *csr, size_t csrlen, const char *names,
	    const char *who, const char *label, long long now);
/* Take the queued or ordered row due soonest (next_at <= now) that nobody
 * holds, for lease seconds: 1 and *row, 0 if none is due, -1. */
int	est_cache_claim(struct est_cache *, long long now, int lease,
	    struct est_row *);
/* Earliest next_at of a queued or ordered row (even if leased), or -1. */
long long est_cache_next_due(struct est_cache *);
int	est_cache_set_ordered(struct est_cache *, const char *hash,
	    const char *order_url, long long now);
/* Not done yet: due again at next_at, lease dropped; note for the log. */
int	est_cache_set_wait(struct est_cache *, const char *hash,
	    long long next_at, const char *note);
int	est_cache_set_done(struct est_cache *, const char *hash,
	    const char *chain, const char *p7, long long not_after);
int	est_cache_set_failed(struct est_cache *, const char *hash, int status,
	    const char *detail, int retry_after);
/* A client asks again: a queued or ordered row not held by a worker is
 * made due now, so its retry meets a fresh step. */
int	est_cache_hurry(struct est_cache *, const char *hash, long long now);
int	est_cache_delete(struct est_cache *, const char *hash);
/* Drop done rows past notAfter and failed rows older than max_age s. */
int	est_cache_purge(struct est_cache *, long long now, long long max_age);
/* Drop every lease (at start). */
int	est_cache_release_all(struct est_cache *);

#endif
