/*
 * est_http: the RFC 7030 server of iotca-est-ra: libmicrohttpd over TLS 1.2
 * and 1.3 (GnuTLS), one thread per connection (an enrolment may wait up to
 * [est] enrol_wait for its order), on every [est] listen address.
 *
 *   /.well-known/est[/LABEL]/cacerts         GET   certs-only of ca_file
 *   /.well-known/est[/LABEL]/csrattrs        GET   CsrAttrs for the subtree
 *   /.well-known/est[/LABEL]/simpleenroll    POST  Basic or client certificate
 *   /.well-known/est[/LABEL]/simplereenroll  POST  the certificate renewed
 *   /.well-known/est[/LABEL]/serverkeygen, fullcmc: 501
 *
 * Client certificates are asked for (not required) in every handshake, with
 * the enrolment anchors as the acceptable CAs, and verified by est_auth.
 */
#ifndef IOTCA_EST_HTTP_H
#define IOTCA_EST_HTTP_H

#include <stddef.h>

#include "est_ra.h"

#define EST_MAX_CONNECTIONS	256	/* per listen address */
#define EST_CONN_TIMEOUT	30	/* s of silence before a connection is closed */

struct est_http;

/*
 * Bind every listen address (errors name it) and start serving with the
 * key and chain PEM given (copied) and trust_pem as the CA names sent to
 * clients.  NULL with err.
 */
struct est_http	*est_http_start(struct est_ra *, const char *key_pem,
		    const char *chain_pem, const char *trust_pem, char *err,
		    size_t errlen);
void		 est_http_stop(struct est_http *);

#endif
