/*
 * refusals: how the signer keeps a flood of refused requests from growing
 * the audit log without bound.
 *
 * Refusals are counted per peer (the socket peer's role, uid and pid, and
 * the front end's account when the request names one) per interval of
 * REFUSALS_INTERVAL seconds.  The first refusal of each kind (op and error)
 * in a peer's interval is recorded on its own, so an operator sees it at
 * once; the rest are counted here and written as one summary when the
 * interval ends (refusals_flush from the signer's timer, and at shutdown).
 * A peer's interval tells REFUSALS_KINDS kinds apart; further kinds are
 * only counted ("other").  The table holds REFUSALS_PEERS peers; when it is
 * full, further peers share one overflow entry.  So a peer adds at most
 * REFUSALS_KINDS + 1 records per interval, and all peers together at most
 * (REFUSALS_KINDS + 1) * (REFUSALS_PEERS + 1), whatever they send.
 *
 * Issuances, approvals and revocations never pass through here: each stays
 * its own record.
 */
#ifndef IOTCA_REFUSALS_H
#define IOTCA_REFUSALS_H

#include <time.h>
#include <jansson.h>

#include "server.h"

#define REFUSALS_PEERS		64
#define REFUSALS_INTERVAL	60	/* seconds */
#define REFUSALS_KINDS		8	/* op/error pairs told apart per summary */

struct refusals;

struct refusals	*refusals_new(void);
void		 refusals_free(struct refusals *);

/*
 * A refusal of op with error to peer p (account: the front end's account
 * named in the request, or NULL) at now.  Returns 1 when it is the first of
 * its kind in the peer's interval (the caller records it on its own), 0
 * when it was counted for the summary.
 */
int	 refusals_note(struct refusals *, const struct peer *p,
	    const char *account, const char *op, const char *error, time_t now);

/*
 * Called by refusals_flush for each summary: the peer (NULL for the
 * overflow entry, which several peers share) and the record's fields
 * (count, first, last, interval, refused: [{op, error, count}], other,
 * account, overflow), which fn takes over.
 */
typedef void	 refusals_fn(void *arg, const struct peer *, json_t *fields);

/*
 * Summarise the intervals that ended by now (every one when all is set):
 * fn for each with counted refusals, and the peer's entry is freed.
 * Returns the seconds until the next interval ends, or -1 if none is open.
 */
int	 refusals_flush(struct refusals *, time_t now, int all,
	    refusals_fn *fn, void *arg);

#endif
