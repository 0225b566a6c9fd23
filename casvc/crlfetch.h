/*
 * crlfetch: the client side of the signer's "crl" operation in pages of
 * DER (casvc/PROTOCOL.md), for the front end and the operator's command.
 * A CRL past about a thousand entries does not fit one record as PEM; in
 * pages it has no size limit but CRLFETCH_MAX_BYTES.
 */
#ifndef IOTCA_CRLFETCH_H
#define IOTCA_CRLFETCH_H

#include <stddef.h>
#include <time.h>

#define CRLFETCH_MAX_BYTES	(64L * 1024 * 1024)	/* ~1.5 million entries */
#define CRLFETCH_TRIES		4	/* a CRL replaced mid-read: start again */

struct crl_copy {
	unsigned char	*der;		/* malloc'd */
	size_t		 len;
	long		 number;	/* its cRLNumber */
	time_t		 this_update;
	time_t		 next_update;
};

/*
 * Fetch the current CRL over the socket at path, waiting at most secs for
 * each reply (0: the default wait).  known is the number of the CRL the
 * caller holds (-1: none): 1 when that is still current (out untouched
 * but for this_update and next_update), 0 with out filled, -1 with err.
 */
int	 crl_fetch(const char *path, int secs, long known, struct crl_copy *out,
	    char *err, size_t errlen);
void	 crl_copy_clear(struct crl_copy *);

#endif
