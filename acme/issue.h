/*
 * issue: finishing a processing order through the signer (op issue on
 * signer.sock with the CSR and the ACME account's ID) and recording
 * the answer: a certificate (order valid), a pending operator approval
 * (order stays processing, ask again later), or a refusal (order invalid
 * with the reason).  A signer that cannot be reached leaves the order
 * processing too, so a restart of either daemon loses nothing.
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

#endif
