/*
 * workers: a few threads that run requests away from the threads that poll
 * the connections, so that a request waiting on the signer (up to its
 * timeout) or on the disk holds up no other connection.  Each job carries
 * a tag (the HTTP daemon it belongs to) so that a daemon is stopped only
 * when none of its jobs is left.
 */
#ifndef IOTCA_WORKERS_H
#define IOTCA_WORKERS_H

#include <stddef.h>

struct workers;

/* n threads; NULL with err when they cannot be started. */
struct workers	*workers_new(unsigned int n, char *err, size_t errlen);
/* Queue fn(arg); -1 when closing or out of memory (the caller runs it
 * itself or refuses).  fn must not touch arg's owner after it hands it
 * back (it runs last in fn). */
int		 workers_submit(struct workers *, void (*fn)(void *), void *arg,
		    const void *tag);
/* Jobs queued or running with this tag. */
size_t		 workers_pending(struct workers *, const void *tag);
/* Refuse new jobs and wait until every queued job has run. */
void		 workers_close(struct workers *);
/* Close, then join and free. */
void		 workers_free(struct workers *);

#endif
