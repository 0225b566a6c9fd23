/*
 * keysigner: the CA key's own thread (see keysigner.h).
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "keysigner.h"

struct ksjob {
	struct ksjob	*next;
	unsigned char	*tbs;
	size_t		 len;
	void		*cookie;
	unsigned char	*sig;		/* NULL: failed, see err */
	size_t		 siglen;
	char		 err[256];
};

/* A FIFO of jobs. */
struct ksqueue {
	struct ksjob	*head, **tail;
};

struct keysigner {
	struct ks	*ks;
	EVP_PKEY	*key;
	pthread_t	 thread;
	int		 running;	/* the thread was started and not joined */
	int		 efd;		/* eventfd: finished jobs wait */
	pthread_mutex_t	 mu;
	pthread_cond_t	 work;		/* todo gained a job, or stopping */
	struct ksqueue	 todo, done;
	int		 stopping;
	/* For the log at the end: how the key spent its time. */
	unsigned long	 signed_n;
	uint64_t	 signing_ns;	/* in ks_sign */
	uint64_t	 waiting_ns;	/* with nothing to sign, after the first */
};

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
q_init(struct ksqueue *q)
{
	q->head = NULL;
	q->tail = &q->head;
}

static void
q_push(struct ksqueue *q, struct ksjob *j)
{
	j->next = NULL;
	*q->tail = j;
	q->tail = &j->next;
}

static struct ksjob *
q_pop(struct ksqueue *q)
{
	struct ksjob *j = q->head;

	if (j != NULL && (q->head = j->next) == NULL)
		q->tail = &q->head;
	return j;
}

static void
job_free(struct ksjob *j)
{
	if (j == NULL)
		return;
	OPENSSL_free(j->tbs);
	free(j->sig);
	free(j);
}

static void *
run(void *arg)
{
	struct keysigner *k = arg;
	struct ksjob *j;
	uint64_t one = 1, t0, t1;

	pthread_mutex_lock(&k->mu);
	for (;;) {
		t0 = mono_ns();
		while (k->todo.head == NULL && !k->stopping)
			pthread_cond_wait(&k->work, &k->mu);
		if ((j = q_pop(&k->todo)) == NULL)
			break;		/* stopping, and nothing left */
		pthread_mutex_unlock(&k->mu);
		t1 = mono_ns();
		if (k->signed_n > 0)
			k->waiting_ns += t1 - t0;
		if (ks_sign(k->ks, k->key, j->tbs, j->len, &j->sig, &j->siglen,
		    j->err, sizeof(j->err)) == -1)
			j->sig = NULL;
		k->signed_n++;
		k->signing_ns += mono_ns() - t1;
		OPENSSL_free(j->tbs);
		j->tbs = NULL;
		pthread_mutex_lock(&k->mu);
		q_push(&k->done, j);
		/* Cannot fail but by overflow (2^64 - 1 writes unread). */
		(void)!write(k->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&k->mu);
	/* OpenSSL's per-thread state (error queue, DRBGs) goes with us. */
	OPENSSL_thread_stop();
	return NULL;
}

struct keysigner *
keysigner_start(const struct ks_config *kc, const char *path,
    const EVP_PKEY *pub, char *err, size_t errlen)
{
	struct keysigner *k;
	int rc;

	if ((k = calloc(1, sizeof(*k))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->efd = -1;
	q_init(&k->todo);
	q_init(&k->done);
	if (pthread_mutex_init(&k->mu, NULL) != 0) {
		snprintf(err, errlen, "cannot make the key thread's lock");
		free(k);
		return NULL;
	}
	if (pthread_cond_init(&k->work, NULL) != 0) {
		snprintf(err, errlen, "cannot make the key thread's condition");
		pthread_mutex_destroy(&k->mu);
		free(k);
		return NULL;
	}
	if ((k->ks = ks_new(kc, err, errlen)) == NULL ||
	    (k->key = ks_load(k->ks, path, err, errlen)) == NULL)
		goto fail;
	if (EVP_PKEY_eq(k->key, pub) != 1) {
		snprintf(err, errlen, "the key %s does not belong to the root "
		    "certificate", path);
		ERR_clear_error();
		goto fail;
	}
	if ((k->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if ((rc = pthread_create(&k->thread, NULL, run, k)) != 0) {
		snprintf(err, errlen, "cannot start the key thread: %s",
		    strerror(rc));
		goto fail;
	}
	k->running = 1;
	return k;
fail:
	keysigner_free(k);
	return NULL;
}

int
keysigner_submit(struct keysigner *k, unsigned char *tbs, size_t len,
    void *cookie, char *err, size_t errlen)
{
	struct ksjob *j;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		OPENSSL_free(tbs);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	j->tbs = tbs;
	j->len = len;
	j->cookie = cookie;
	pthread_mutex_lock(&k->mu);
	if (k->stopping || !k->running) {
		pthread_mutex_unlock(&k->mu);
		job_free(j);
		snprintf(err, errlen, "the key thread is stopping");
		return -1;
	}
	q_push(&k->todo, j);
	pthread_cond_signal(&k->work);
	pthread_mutex_unlock(&k->mu);
	return 0;
}

int
keysigner_fd(const struct keysigner *k)
{
	return k->efd;
}

int
keysigner_take(struct keysigner *k, void **cookie, unsigned char **sig,
    size_t *siglen, char *err, size_t errlen)
{
	struct ksjob *j;
	uint64_t n;

	pthread_mutex_lock(&k->mu);
	j = q_pop(&k->done);
	/* The count is cleared only with the queue empty, under the lock
	 * the thread writes it under: no wake-up is lost. */
	if (k->done.head == NULL)
		(void)!read(k->efd, &n, sizeof(n));
	pthread_mutex_unlock(&k->mu);
	if (j == NULL)
		return 0;
	*cookie = j->cookie;
	*sig = j->sig;
	*siglen = j->siglen;
	if (j->sig == NULL)
		snprintf(err, errlen, "%s", j->err);
	j->sig = NULL;
	job_free(j);
	return 1;
}

void
keysigner_stats(const struct keysigner *k, unsigned long *n, double *sign_ms,
    double *wait_s)
{
	*n = k->signed_n;
	*sign_ms = k->signed_n ? k->signing_ns / 1e6 / k->signed_n : 0;
	*wait_s = k->waiting_ns / 1e9;
}

void
keysigner_stop(struct keysigner *k)
{
	if (k == NULL || !k->running)
		return;
	pthread_mutex_lock(&k->mu);
	k->stopping = 1;
	pthread_cond_signal(&k->work);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	k->running = 0;
}

void
keysigner_free(struct keysigner *k)
{
	struct ksjob *j;

	if (k == NULL)
		return;
	keysigner_stop(k);
	while ((j = q_pop(&k->todo)) != NULL)
		job_free(j);
	while ((j = q_pop(&k->done)) != NULL)
		job_free(j);
	if (k->efd != -1)
		close(k->efd);
	EVP_PKEY_free(k->key);
	ks_free(k->ks);
	pthread_cond_destroy(&k->work);
	pthread_mutex_destroy(&k->mu);
	free(k);
}
