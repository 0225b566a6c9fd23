/*
 * issue: finishing a processing order through the signer (op issue on
 * signer.sock with the CSR and the ACME account's ID) and recording
 * the answer: a certificate (order valid), a pending operator approval
 * (order stays processing, ask again later), or a refusal (order invalid
 * with the reason).  A signer that cannot be reached leaves the order
 * processing too, so a restart of either daemon loses nothing.  The order's
 * ID goes with every request as the signer's idempotency key: an answer
 * lost (acmed killed after the signer issued, or a timeout) is asked for
 * again at the next poll and the signer hands out the same certificate.
 * An order whose every name is covered by one valid subdomain authorization
 * (RFC 9444) of the account for a domain D goes with "delegation: D": the
 * signer then asks the operator once for (account, D) instead of per device.
 */
#ifndef IOTCA_ISSUE_H
#define IOTCA_ISSUE_H

#include "acmed.h"
#include "acmedb.h"

#define ISSUE_POLL_MIN_SEC	3	/* ask the signer at most this often per order */
#define ISSUE_RETRY_DEFAULT	10

enum issue_outcome {
	ISSUE_VALID,		/* o->cert_id set */
	ISSUE_PENDING,		/* waiting for the operator or the signer */
	ISSUE_REFUSED,		/* o->error holds the problem, order invalid */
};

/*
 * Ask the signer now and update o and acme.db; -1 on a database error.
 * thumb (the account key's thumbprint now) is kept with the certificate.
 */
int	issue_ask(struct acmed *, struct order *, const char *thumb,
	    enum issue_outcome *);

/*
 * Before a processing order is given up: did the signer issue for it
 * already (an answer lost to a crash)?  *out is ISSUE_VALID with that
 * certificate recorded and the order valid; ISSUE_REFUSED when there is
 * nothing to hand over (nothing issued, or it was revoked since), so the
 * order may end; ISSUE_PENDING when the signer cannot say now, so the
 * order is left as it is.  -1 on a database error.
 */
int	issue_recover(struct acmed *, struct order *, enum issue_outcome *);

#endif
