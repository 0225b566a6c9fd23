/*
 * resources: the ACME resource handlers (RFC 8555 section 7) called by the
 * dispatcher in http.c once the request is routed and, for POST, its JWS is
 * verified (auth.c).  Each fills a struct resp and returns 0, or -1 when it
 * could not even build a response (out of memory).
 */
#ifndef IOTCA_RESOURCES_H
#define IOTCA_RESOURCES_H

#include "http.h"

#define PATH_NEWAUTHZ	"/acme/new-authz"	/* RFC 8555 7.4.1 */

/* res_directory.c */
int	res_directory(struct req *, struct resp *);
int	res_root(struct req *, struct resp *);
int	res_nonce(struct req *, struct resp *);
/* res_account.c */
int	res_new_account(struct req *, struct resp *);
int	res_account(struct req *, struct resp *);
int	res_key_change(struct req *, struct resp *);
/* res_order.c */
int	res_new_order(struct req *, struct resp *);
int	res_order(struct req *, struct resp *);
/* res_authz.c */
int	res_new_authz(struct req *, struct resp *);
int	res_authz(struct req *, struct resp *);
int	res_chall(struct req *, struct resp *);
/* res_cert.c */
int	res_cert(struct req *, struct resp *);
int	res_revoke(struct req *, struct resp *);
int	res_renewal_info(struct req *, struct resp *);

#endif
