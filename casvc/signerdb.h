/*
 * signerdb: the signer's SQLite database (signer.db): issued certificates,
 * their revocation, CRL numbers and, later, approvals.  Only iotca-signer
 * opens it read-write.  Every function returns 0 on success and -1 with one
 * line in err on failure, unless its comment says otherwise.
 */
#ifndef IOTCA_SIGNERDB_H
#define IOTCA_SIGNERDB_H

#include <stddef.h>
#include <time.h>
#include <jansson.h>

#include "certgen.h"

struct signerdb;

/* Open (creating with mode 0600 if absent) and migrate the schema. */
struct signerdb	*signerdb_open(const char *path, char *err, size_t errlen);
void		 signerdb_close(struct signerdb *);

struct cert_record {
	const char	*serial_hex;	/* upper-case hex */
	const char	*device_id;
	const json_t	*names;		/* array of strings: DNS names, then IPs */
	const char	*account;	/* the front end's account name, or NULL */
	const char	*requested_by;	/* "operator uid 0 (root)", "frontend uid 998" */
	time_t		 not_before, not_after;
	const char	*pem;
	const char	*spki_sha256;	/* policy_spki_sha256() of its key */
	const char	*order_token;	/* the front end's idempotency key, or NULL */
	const char	*delegation;	/* the approved subtree it was issued
					 * under, or NULL */
};

#define SIGNERDB_DUPLICATE	1	/* serial already present: retry with another */
#define SIGNERDB_ORDER_TAKEN	3	/* the account's order has a certificate */

/* Insert a newly issued certificate; SIGNERDB_DUPLICATE on a serial clash,
 * SIGNERDB_ORDER_TAKEN when the account's order has a certificate already. */
int	 signerdb_insert_cert(struct signerdb *, const struct cert_record *,
	    char *err, size_t errlen);

/*
 * What a listing page holds.  NULL / 0 members do not narrow it.  status:
 * "valid" (not revoked, not expired), "expired" (not revoked, past
 * not_after), "revoked"; expiring_within > 0: not revoked, not expired,
 * expiring within that many seconds.  after: the cursor, the last row of
 * the previous page (a serial for certificates, an id for approvals).  A
 * page holds at most limit rows and max_bytes of compact JSON.
 */
struct cert_filter {
	const char	*device_id;
	const char	*status;
	long long	 expiring_within;
	const char	*after;
	int		 limit;
	size_t		 max_bytes;
};

/* One page of certificates, newest first (issued_at, then the order of
 * insertion: a keyset order, stable while rows are added), as JSON objects
 * without the PEM (serial, device_id, names, account, requested_by,
 * not_before, not_after, issued_at, status, revoked_at, reason) in *out;
 * *more when rows are left.  SIGNERDB_NOT_FOUND when after names no
 * certificate. */
int	 signerdb_list_certs(struct signerdb *, const struct cert_filter *,
	    json_t **out, int *more, char *err, size_t errlen);

/* The certificate issued for an account's order (its order token), with
 * its PEM, or NULL (err empty when there is none). */
json_t	*signerdb_cert_for_order(struct signerdb *, const char *account,
	    const char *order_token, char *err, size_t errlen);

/* One certificate with its PEM, or NULL (err empty when simply absent). */
json_t	*signerdb_get_cert(struct signerdb *, const char *serial_hex,
	    char *err, size_t errlen);

#define SIGNERDB_NOT_FOUND	1
#define SIGNERDB_ALREADY	2	/* already revoked */

/* Mark a certificate revoked; SIGNERDB_NOT_FOUND / SIGNERDB_ALREADY. */
int	 signerdb_revoke(struct signerdb *, const char *serial_hex, int reason,
	    time_t when, char *err, size_t errlen);

/* The revoked certificates that have not expired, for the CRL.  The caller
 * frees with signerdb_free_revoked(). */
int	 signerdb_revoked(struct signerdb *, struct crl_entry **out, size_t *n,
	    char *err, size_t errlen);
void	 signerdb_free_revoked(struct crl_entry *, size_t n);

/* Take the next CRL number (monotonic, persisted); -1 on error. */
long	 signerdb_next_crl_number(struct signerdb *, char *err, size_t errlen);

/* Counts for status: certificates valid, revoked. */
int	 signerdb_counts(struct signerdb *, long *valid, long *revoked,
	    char *err, size_t errlen);

/* Transactions: the caller groups a state change with what goes with it. */
int	 signerdb_begin(struct signerdb *, char *err, size_t errlen);
int	 signerdb_commit(struct signerdb *, char *err, size_t errlen);
void	 signerdb_rollback(struct signerdb *);

/*
 * Approvals (draft-sweet-iot-acme 3.4.4), keyed by device ID and account.
 * Rows come back as JSON objects: id, device_id, account, names, status
 * ("pending", "approved", "denied", "revoked"), requested_at, requested_by,
 * decided_at, decided_by, reason, approved_elsewhere (the device is approved
 * for another account).  A delegation (an account's request for a DNS
 * subtree) is a row of the same table with "subtree" set and device_id "".
 */
struct approval_request {
	const char	*device_id;
	const char	*account;
	const json_t	*names;
	const char	*requested_by;
	const char	*csr;		/* PEM, for the operator's eyes */
	const char	*decided_by;	/* non-NULL: recorded approved at once */
	const char	*subtree;	/* a delegation request, or NULL */
};

/* Every row for a device and account, newest first. */
json_t	*signerdb_approvals_for(struct signerdb *, const char *device_id,
	    const char *account, char *err, size_t errlen);
struct approval_filter {
	int		 pending_only;
	const char	*device_id;
	long long	 after;		/* id of the previous page's last row; 0 */
	int		 limit;
	size_t		 max_bytes;
};

/* One page of requests, oldest first (by id), in *out; *more as above. */
int	 signerdb_list_approvals(struct signerdb *,
	    const struct approval_filter *, json_t **out, int *more,
	    char *err, size_t errlen);
/* Record a request; its id, or -1. */
long long signerdb_add_approval(struct signerdb *,
	    const struct approval_request *, char *err, size_t errlen);
/* A pending request asked again: keep the newest names and CSR. */
int	 signerdb_update_pending(struct signerdb *, long long id,
	    const json_t *names, const char *csr, char *err, size_t errlen);
/* Set a request's status ("approved", "denied"); *row gets the request.
 * SIGNERDB_NOT_FOUND, or SIGNERDB_ALREADY when it already has that status. */
int	 signerdb_decide(struct signerdb *, long long id, const char *status,
	    const char *reason, const char *decided_by, json_t **row,
	    char *err, size_t errlen);
/* Revoke every approved or pending request of a device; the count or -1. */
long	 signerdb_revoke_approvals(struct signerdb *, const char *device_id,
	    const char *decided_by, char *err, size_t errlen);
/* Every delegation row of a subtree and account, newest first. */
json_t	*signerdb_delegations_for(struct signerdb *, const char *subtree,
	    const char *account, char *err, size_t errlen);
/* A pending request asked again: only its time changes. */
int	 signerdb_touch_pending(struct signerdb *, long long id, char *err,
	    size_t errlen);
/* Revoke the approved or pending delegations of a subtree, of one account
 * or (account NULL) of all; the count or -1. */
long	 signerdb_revoke_delegations(struct signerdb *, const char *subtree,
	    const char *account, const char *decided_by, char *err,
	    size_t errlen);
/* The serials of the valid certificates issued under a delegation (account
 * NULL: any account's), and their revocation (the count or -1). */
json_t	*signerdb_delegation_serials(struct signerdb *, const char *subtree,
	    const char *account, char *err, size_t errlen);
long	 signerdb_revoke_delegation_certs(struct signerdb *,
	    const char *subtree, const char *account, int reason, time_t when,
	    char *err, size_t errlen);
/* The serials of a device's valid certificates (what the next call revokes). */
json_t	*signerdb_valid_serials(struct signerdb *, const char *device_id,
	    char *err, size_t errlen);
/* The SQLite handle, for the audit log that lives in the same file and
 * shares its transactions. */
struct sqlite3 *signerdb_sqlite(struct signerdb *);
/* Revoke every valid certificate of a device; the count or -1. */
long	 signerdb_revoke_device_certs(struct signerdb *, const char *device_id,
	    int reason, time_t when, char *err, size_t errlen);

/*
 * The key reuse rule (draft-sweet-iot-acme 4.11): has a key (by
 * policy_spki_sha256) been certified before?  1 with the serial of its
 * first certificate (or of the one revoked for keyCompromise, *compromised
 * then set), 0 if never, -1 on error.
 */
int	 signerdb_key_seen(struct signerdb *, const char *spki_sha256,
	    char *serial, size_t seriallen, int *compromised, char *err,
	    size_t errlen);
/* Block a certificate's key for good (revoked for keyCompromise); kept
 * apart from the certificate rows so it outlives them. */
int	 signerdb_key_compromised(struct signerdb *, const char *serial_hex,
	    time_t when, char *err, size_t errlen);

#endif
