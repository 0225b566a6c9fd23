/*
 * publish: the CRL and the root certificate for relying parties, at
 * [ca] publish_url CONFIG_PUBLISH_CRL_PATH (application/pkix-crl, DER) and
 * CONFIG_PUBLISH_ROOT_PATH (application/pkix-cert, DER), the URLs device
 * certificates carry.  Served over plain HTTP by a small daemon of its own
 * ([acme] http_listen, or a socket systemd passes named "http") that serves
 * nothing else, and over HTTPS by the ACME listener at the same paths.
 *
 * Both are signed objects, so HTTP is enough (RFC 5280 4.2.1.13).  Answers
 * carry ETag and Last-Modified and honour If-None-Match and
 * If-Modified-Since (304).  The CRL is asked of the signer at most once
 * per PUBLISH_CRL_CHECK_MS (a few bytes when unchanged, pages of DER when
 * not), so a revocation is served within that time of the signer's CRL.
 */
#ifndef IOTCA_PUBLISH_H
#define IOTCA_PUBLISH_H

#include <stddef.h>
#include <time.h>

#include "acmed_config.h"

#define PUBLISH_CRL_CHECK_MS	250
#define PUBLISH_SIGNER_SECS	10	/* wait for each page from the signer */
#define PUBLISH_THREADS		2	/* poll threads of the HTTP daemon */
#define PUBLISH_CONNECTIONS	256	/* per HTTP socket */
#define PUBLISH_PER_ADDRESS	16
#define PUBLISH_TIMEOUT		5	/* seconds idle */

struct publish;

/* What to answer; body malloc'd (empty, not NULL, when there is none). */
struct pub_answer {
	unsigned int	 status;
	unsigned char	*body;
	size_t		 len;
	const char	*ctype;
	const char	*allow;		/* 405 */
	char		 etag[64];	/* "" if none */
	char		 last_modified[40];
};

/* prefix: the path of [ca] publish_url ("" or "/x"), signer_sock: where
 * to ask for the CRL. */
struct publish	*publish_new(const char *publish_url, const char *signer_sock);
void		 publish_free(struct publish *);
/* The root as the signer gave it (PEM); 0, or -1 if it is not one. */
int		 publish_set_root(struct publish *, const char *pem);

/* 1 if path is one of the published objects' paths. */
int		 publish_path(const struct publish *, const char *path);
/*
 * The answer to method on path (publish_path() true) with the request's
 * If-None-Match and If-Modified-Since (each may be NULL): 200, 304, 405,
 * or 503 when the signer cannot be reached and nothing is cached.  -1 when
 * out of memory.
 */
int		 publish_answer(struct publish *, const char *method,
		    const char *path, const char *if_none_match,
		    const char *if_modified_since, struct pub_answer *);
void		 publish_answer_clear(struct pub_answer *);

/* Serve plain HTTP on the configured http_listen addresses and on the
 * passed sockets fds (nfds); -1 with err. */
int		 publish_http_start(struct publish *, const struct acme_config *,
		    const int *fds, size_t nfds, char *err, size_t errlen);
/* "127.0.0.1:8080" of the first HTTP socket, or NULL if none. */
const char	*publish_http_name(const struct publish *);

#endif
