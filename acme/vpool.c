/*
 * vpool: challenge validation workers (see vpool.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acmedb.h"
#include "http.h"
#include "log.h"
#include "objects.h"
#include "validate.h"
#include "vpool.h"

struct vpool {
	struct acmed	*a;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	char		 queue[VPOOL_QUEUE][ID_LEN];
	size_t		 head, count;
	int		 stopping;
	pthread_t	 threads[VPOOL_THREADS];
	size_t		 nthreads;
};

static enum validate_type
vtype(const char *type)
{
	if (strcmp(type, "tls-alpn-01") == 0)
		return VALIDATE_TLSALPN01;
	if (strcmp(type, "dns-01") == 0)
		return VALIDATE_DNS01;
	return VALIDATE_HTTP01;
}

/* Validate one challenge and store the result. */
static void
run_one(struct acmed *a, const char *id)
{
	struct validate_config vc = {
		.http01_port = a->acme.http01_port,
		.tlsalpn01_port = a->acme.tlsalpn01_port,
		.hosts_file = a->acme.hosts_file,
		.dns_server = a->acme.dns_server,
		.timeout_ms = 5000,
	};
	struct validate_result res;
	struct chall c;
	struct authz az;
	struct acct ac;
	char keyauthz[TOKEN_LEN + THUMB_LEN + 2], *err = NULL;
	json_t *p;

	memset(&ac, 0, sizeof(ac));
	if (chall_get(a->db, id, &c) != 0)
		return;
	if (authz_get(a->db, c.authz_id, &az) != 0 ||
	    acct_get(a->db, az.account, &ac) != 0) {
		log_msg(LOG_ERR, "challenge %s: cannot load its authorization", id);
		goto out;
	}
	snprintf(keyauthz, sizeof(keyauthz), "%s.%s", c.token, ac.thumb);
	memset(&res, 0, sizeof(res));
	validate_challenge(&vc, vtype(c.type), strcmp(az.type, "ip") == 0 ?
	    IDENT_IP : IDENT_DNS, az.value, c.token, keyauthz, &res);
	if (!res.ok) {
		if ((p = problem_new(res.problem[0] != '\0' ? res.problem :
		    "incorrectResponse", res.detail)) != NULL) {
			json_object_set_new(p, "status", json_integer(400));
			err = json_dumps(p, JSON_COMPACT);
			json_decref(p);
		}
	}
	log_msg(LOG_INFO, "challenge %s (%s for %s): %s%s%s", id, c.type,
	    az.value, res.ok ? "valid" : "invalid", res.ok ? "" : ": ",
	    res.ok ? "" : res.detail);
	if (chall_finish(a->db, id, res.ok, err, time(NULL) +
	    AUTHZ_VALID_SECONDS) == -1)
		log_msg(LOG_ERR, "challenge %s: cannot record the result", id);
	free(err);
out:
	acct_clear(&ac);
	chall_clear(&c);
}

static void *
worker(void *arg)
{
	struct vpool *vp = arg;
	char id[ID_LEN];

	for (;;) {
		pthread_mutex_lock(&vp->lock);
		while (vp->count == 0 && !vp->stopping)
			pthread_cond_wait(&vp->cond, &vp->lock);
		if (vp->stopping) {
			pthread_mutex_unlock(&vp->lock);
			return NULL;
		}
		memcpy(id, vp->queue[vp->head], ID_LEN);
		vp->head = (vp->head + 1) % VPOOL_QUEUE;
		vp->count--;
		pthread_mutex_unlock(&vp->lock);
		run_one(vp->a, id);
	}
}

struct vpool *
vpool_new(struct acmed *a, char *err, size_t errlen)
{
	struct vpool *vp;
	int e;

	if ((vp = calloc(1, sizeof(*vp))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	vp->a = a;
	if (pthread_mutex_init(&vp->lock, NULL) != 0 ||
	    pthread_cond_init(&vp->cond, NULL) != 0) {
		snprintf(err, errlen, "cannot make the validation pool's lock");
		free(vp);
		return NULL;
	}
	for (; vp->nthreads < VPOOL_THREADS; vp->nthreads++) {
		if ((e = pthread_create(&vp->threads[vp->nthreads], NULL, worker,
		    vp)) != 0) {
			snprintf(err, errlen, "pthread_create: %s", strerror(e));
			(void)vpool_free(vp);
			return NULL;
		}
	}
	return vp;
}

int
vpool_submit(struct vpool *vp, const char *chall_id)
{
	int rc = -1;

	pthread_mutex_lock(&vp->lock);
	if (vp->count < VPOOL_QUEUE && !vp->stopping) {
		snprintf(vp->queue[(vp->head + vp->count) % VPOOL_QUEUE], ID_LEN,
		    "%s", chall_id);
		vp->count++;
		rc = 0;
		pthread_cond_signal(&vp->cond);
	}
	pthread_mutex_unlock(&vp->lock);
	return rc;
}

int
vpool_free(struct vpool *vp)
{
	struct timespec deadline;
	size_t i;
	int all = 1;

	if (vp == NULL)
		return 0;
	pthread_mutex_lock(&vp->lock);
	vp->stopping = 1;
	pthread_cond_broadcast(&vp->cond);
	pthread_mutex_unlock(&vp->lock);
	/* A validation may take 30 s; shutdown should not.  The challenges
	 * left "processing" are queued again at the next start. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 2;
	for (i = 0; i < vp->nthreads; i++)
		if (pthread_timedjoin_np(vp->threads[i], NULL, &deadline) != 0) {
			pthread_detach(vp->threads[i]);
			all = 0;
		}
	if (!all)
		return -1;	/* a worker still holds vp; the process is ending */
	pthread_cond_destroy(&vp->cond);
	pthread_mutex_destroy(&vp->lock);
	free(vp);
	return 0;
}
