/*
 * est_ra: the state of iotca-est-ra shared by its HTTP threads (est_http.c)
 * and its ACME workers (est_ra.c).
 *
 * An enrolment that passed the checks is looked up in the cache by the
 * SHA-256 of its CSR; a new one becomes a queued row that a worker opens
 * as an ACME order (the order URL is stored before any finalize) and steps
 * until it is done or failed.  The HTTP thread waits up to [est] enrol_wait
 * for that, else answers 202 with Retry-After; the client's retry with the
 * same CSR finds the row.  Workers also pre-authorize the subtree
 * (ra_acme_preauthorize) at start and before it expires; until that has
 * succeeded new enrolments are answered 503.
 */
#ifndef IOTCA_EST_RA_H
#define IOTCA_EST_RA_H

#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include "est_auth.h"
#include "est_cache.h"
#include "est_config.h"
#include "est_msg.h"

#define EST_CACHE_POOL	16	/* cache.db connections kept for HTTP threads */
#define EST_CHANGE_RING	64	/* changes a waiting request can look back on */

enum est_preauth { PREAUTH_PENDING = 0, PREAUTH_OK, PREAUTH_FAILED };

struct est_ra {
	struct est_config	 cfg;
	struct est_auth		*auth;
	char			*cacerts;	/* base64 certs-only of ca_file */
	size_t			 cacerts_len;
	char			 cache_path[4096];
	char			 key_path[4096];	/* ACME account key */

	pthread_mutex_t		 lock;
	pthread_cond_t		 work;		/* workers: a row was queued */
	pthread_cond_t		 changed;	/* requests: a row moved on */
	unsigned long		 work_gen;	/* rows queued or hurried, ever */
	int			 stopping;
	/* The rows workers changed lately, so that a waiting request
	 * reads the cache only when its own row moved (hash "*": all). */
	unsigned long		 change_gen;
	struct {
		unsigned long	 gen;
		char		 hash[EST_HASH_HEX_LEN + 1];
	}			 changes[EST_CHANGE_RING];
	struct est_cache	*pool[EST_CACHE_POOL];
	size_t			 npool;

	/* Pre-authorization, under lock. */
	enum est_preauth	 preauth;
	char			 preauth_err[512];
	time_t			 preauth_expires;	/* 0: none given */
	time_t			 preauth_next;		/* next attempt */
	int			 per_order;	/* the server has no newAuthz */
};

/* What an HTTP request is answered with. */
struct est_answer {
	unsigned int	 status;
	const char	*ctype;
	char		*body;		/* malloc'd */
	size_t		 len;
	int		 retry_after;	/* > 0: a Retry-After header */
};

/* Set a text/plain answer (the reason and a newline). */
int	est_answer_text(struct est_answer *, unsigned int status,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * An enrolment that passed every check: the cache's answer, or a new order
 * waited for up to enrol_wait.  who is "user=U" or "cert=SUBJECT" for the
 * log and the row; label "" for none.
 */
int	est_enrol(struct est_ra *, const struct est_csr *, const char *who,
	    const char *label, struct est_answer *);

/* A cache connection for an HTTP thread (from the pool, else a new one);
 * NULL with a logged error. */
struct est_cache *est_cache_take(struct est_ra *);
void	est_cache_give(struct est_ra *, struct est_cache *);

#endif
