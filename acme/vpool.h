/*
 * vpool: a small, bounded pool of threads that run challenge validations
 * (acme/validate.c, up to VALIDATE_MAX_SECONDS each) off the request path
 * and record the outcome in acme.db: the challenge and its authorization
 * become valid or invalid.  Retrying is the client's business (RFC 8555
 * 8.2): a failed challenge makes the authorization invalid.
 */
#ifndef IOTCA_VPOOL_H
#define IOTCA_VPOOL_H

#include "acmed.h"

#define VPOOL_THREADS	4
#define VPOOL_QUEUE	256

struct vpool	*vpool_new(struct acmed *, char *err, size_t errlen);
/* Queue a challenge (already "processing" in acme.db); -1 if full. */
int		 vpool_submit(struct vpool *, const char *chall_id);
/* Stop taking work and wait briefly for the running validations; -1 if
 * some still run (they use acme.db: the caller must not close it). */
int		 vpool_free(struct vpool *);

#endif
