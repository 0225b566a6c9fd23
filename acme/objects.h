/*
 * objects: the JSON shapes of ACME accounts, orders, authorizations and
 * challenges (RFC 8555 7.1.2-7.1.5) built from acme.db rows, and the order
 * and authorization status rules of RFC 8555 7.1.6 that depend on time and
 * on the other rows.
 */
#ifndef IOTCA_OBJECTS_H
#define IOTCA_OBJECTS_H

#include <jansson.h>

#include "acmed.h"
#include "acmedb.h"

#define ORDER_MAX_IDENTS	16
#define AUTHZ_MAX_CHALLS	3
#define AUTHZ_VALID_SECONDS	(30L * 86400)

json_t	*account_json(const struct acmed *, const struct acct *);
json_t	*order_json(const struct acmed *, const struct order *);
json_t	*authz_json(const struct acmed *, const struct authz *,
	    const struct chall *, size_t nchall);
json_t	*chall_json(const struct acmed *, const struct chall *);

/* The status an authorization shows now ("expired" once past expires). */
const char *authz_status_now(const struct authz *, time_t now);

/*
 * Bring an order's status up to date from its authorizations and expiry
 * (pending -> ready | invalid; ready -> invalid when expired; processing ->
 * invalid when it expired waiting for the operator, with an error saying
 * so), storing the change.  -1 on a database error.
 */
int	 order_refresh(struct acmed *, struct order *);

#endif
