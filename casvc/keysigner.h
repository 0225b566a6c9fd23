/*
 * keysigner: the CA key's own thread in iotca-signer.
 *
 * A TPM takes 25 to 70 ms per signature.  The signer's loop hands the bytes
 * of each certificate to sign to this thread and goes on: it prepares the
 * next certificate and answers other requests while the key works, and
 * finishes a certificate (check, record, reply) when its signature comes
 * back.  The thread does nothing but sign, one job at a time, in the order
 * given; it has a key store of its own (its own library context, and with
 * tpm2 its own connection to the resource manager), so nothing it touches
 * is shared with the loop but the job queues below.
 *
 * keysigner_start() loads the key at path (and checks that it is the one
 * whose public half is pub) before the thread starts.  keysigner_submit()
 * queues tbs (taken: freed with OPENSSL_free) with the caller's cookie.
 * keysigner_fd() becomes readable when finished jobs wait; keysigner_take()
 * gives one (1), or says none waits (0): *sig is malloc'ed, or NULL with
 * the key's error in err.  keysigner_stop() lets the thread sign what is
 * queued, then joins it; finished jobs can still be taken.
 * keysigner_free() stops it if needed and frees what was not taken.
 * keysigner_stats(), once stopped: signatures made, their mean time, and
 * the time the key waited for work between its first and its last.
 * Functions that fail return -1 or NULL with one line in err.
 */
#ifndef IOTCA_KEYSIGNER_H
#define IOTCA_KEYSIGNER_H

#include <stddef.h>
#include <openssl/evp.h>

#include "keystore.h"

struct keysigner;

struct keysigner *keysigner_start(const struct ks_config *, const char *path,
		    const EVP_PKEY *pub, char *err, size_t errlen);
int		 keysigner_submit(struct keysigner *, unsigned char *tbs,
		    size_t len, void *cookie, char *err, size_t errlen);
int		 keysigner_fd(const struct keysigner *);
int		 keysigner_take(struct keysigner *, void **cookie,
		    unsigned char **sig, size_t *siglen, char *err,
		    size_t errlen);
void		 keysigner_stop(struct keysigner *);
void		 keysigner_stats(const struct keysigner *, unsigned long *n,
		    double *sign_ms, double *wait_s);
void		 keysigner_free(struct keysigner *);

#endif
