/*
 * http01: a small HTTP server that answers ACME http-01 validation requests
 * (RFC 8555 8.3), GET /.well-known/acme-challenge/TOKEN, from a table of
 * tokens and key authorizations.  One thread serves all connections with
 * poll(); the table is shared, so many clients (threads) can publish tokens
 * at once.  Anything else gets 404; a request must arrive within a few
 * seconds and fit in 4 KiB.
 */
#ifndef IOTCA_HTTP01_H
#define IOTCA_HTTP01_H

#include <stddef.h>

struct acme_http01;

/*
 * Listen on addr (numeric IPv4 or IPv6; NULL: 127.0.0.1) and port (0: any
 * free one, see acme_http01_port) and start serving.  NULL on failure with
 * a reason in err.
 */
struct acme_http01 *acme_http01_start(const char *addr, int port,
		    char *err, size_t errlen);
int		 acme_http01_port(const struct acme_http01 *);
/* Stop serving and free; in-flight requests are dropped. */
void		 acme_http01_stop(struct acme_http01 *);

/* Publish or withdraw a token's key authorization (copied).  -1 if the
 * token has characters outside base64url or memory runs out. */
int		 acme_http01_add(struct acme_http01 *, const char *token,
		    const char *key_authorization);
void		 acme_http01_remove(struct acme_http01 *, const char *token);

/* Requests answered with a key authorization so far. */
unsigned long	 acme_http01_served(struct acme_http01 *);

#endif
