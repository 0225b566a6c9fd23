/*
 * workers: a fixed pool of threads over one FIFO of jobs (see workers.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers.h"

struct job {
	void		(*fn)(void *);
	void		 *arg;
	const void	 *tag;
	struct job	 *next;
};

struct workers {
	pthread_mutex_t	 lock;
	pthread_cond_t	 wake;		/* a job was queued, or closing */
	pthread_cond_t	 idle;		/* a job finished */
	struct job	*head, *tail;
	const void	**running;	/* the tag of each thread's job */
	size_t		 queued, busy;
	int		 closing;
	pthread_t	*t;
	unsigned int	 n;
};

struct worker_arg {
	struct workers	*w;
	unsigned int	 i;
};

static void *
worker_main(void *p)
{
	struct worker_arg *wa = p;
	struct workers *w = wa->w;
	unsigned int i = wa->i;
	struct job *j;

	free(wa);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->head == NULL && !w->closing)
			pthread_cond_wait(&w->wake, &w->lock);
		if ((j = w->head) == NULL)
			break;		/* closing and drained */
		if ((w->head = j->next) == NULL)
			w->tail = NULL;
		w->queued--;
		w->busy++;
		w->running[i] = j->tag;
		pthread_mutex_unlock(&w->lock);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&w->lock);
		w->running[i] = NULL;
		w->busy--;
		pthread_cond_broadcast(&w->idle);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct workers *
workers_new(unsigned int n, char *err, size_t errlen)
{
	struct workers *w;
	struct worker_arg *wa;
	int e;

	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->t = calloc(n, sizeof(*w->t))) == NULL ||
	    (w->running = calloc(n, sizeof(*w->running))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (pthread_mutex_init(&w->lock, NULL) != 0 ||
	    pthread_cond_init(&w->wake, NULL) != 0 ||
	    pthread_cond_init(&w->idle, NULL) != 0) {
		snprintf(err, errlen, "cannot make the worker locks");
		goto fail;
	}
	for (w->n = 0; w->n < n; w->n++) {
		if ((wa = malloc(sizeof(*wa))) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto stop;
		}
		wa->w = w;
		wa->i = w->n;
		if ((e = pthread_create(&w->t[w->n], NULL, worker_main, wa)) != 0) {
			free(wa);
			snprintf(err, errlen, "pthread_create: %s", strerror(e));
			goto stop;
		}
	}
	return w;
stop:
	workers_free(w);
	return NULL;
fail:
	if (w != NULL) {
		free(w->t);
		free(w->running);
	}
	free(w);
	return NULL;
}

int
workers_submit(struct workers *w, void (*fn)(void *), void *arg,
    const void *tag)
{
	struct job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->fn = fn;
	j->arg = arg;
	j->tag = tag;
	pthread_mutex_lock(&w->lock);
	if (w->closing) {
		pthread_mutex_unlock(&w->lock);
		free(j);
		return -1;
	}
	if (w->tail != NULL)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	w->queued++;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

size_t
workers_pending(struct workers *w, const void *tag)
{
	struct job *j;
	size_t i, n = 0;

	pthread_mutex_lock(&w->lock);
	for (j = w->head; j != NULL; j = j->next)
		n += j->tag == tag;
	for (i = 0; i < w->n; i++)
		n += w->running[i] == tag && tag != NULL;
	pthread_mutex_unlock(&w->lock);
	return n;
}

void
workers_close(struct workers *w)
{
	pthread_mutex_lock(&w->lock);
	w->closing = 1;
	pthread_cond_broadcast(&w->wake);
	while (w->queued > 0 || w->busy > 0)
		pthread_cond_wait(&w->idle, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

void
workers_free(struct workers *w)
{
	unsigned int i;

	if (w == NULL)
		return;
	workers_close(w);
	for (i = 0; i < w->n; i++)
		pthread_join(w->t[i], NULL);
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w->running);
	free(w->t);
	free(w);
}
