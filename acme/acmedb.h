/*
 * acmedb: iotca-acmed's own state in SQLite (acme.db, WAL, mode 0600):
 * accounts, orders, authorizations, challenges and certificates.  Row ids are
 * random 128-bit base64url strings, never sequential.  One connection is
 * shared by all threads behind a mutex; anything that changes several rows
 * does so in one transaction.
 *
 * Functions return 0 on success, ACMEDB_NOTFOUND when no row matched,
 * ACMEDB_CONFLICT on a UNIQUE violation, and -1 on a database error (logged
 * once, here, because the caller can only answer serverInternal).
 */
#ifndef IOTCA_ACMEDB_H
#define IOTCA_ACMEDB_H

#include <stddef.h>
#include <stdint.h>

#define ACMEDB_NOTFOUND	1
#define ACMEDB_CONFLICT	2

#define ID_LEN		32	/* 22 base64url characters and a NUL, rounded up */
#define THUMB_LEN	64
#define STATUS_LEN	16
#define IDENT_LEN	256
#define TOKEN_LEN	64
#define SERIAL_LEN	80

struct acmedb;

struct acct {
	char	 id[ID_LEN];
	char	 thumb[THUMB_LEN];	/* RFC 7638 thumbprint of the key */
	char	*jwk;			/* JSON text of the public key */
	char	 status[STATUS_LEN];	/* valid | deactivated | revoked */
	char	*contacts;		/* JSON array text */
	int64_t	 created;
};

struct order {
	char	 id[ID_LEN];
	char	 account[ID_LEN];
	char	 status[STATUS_LEN];	/* pending ready processing valid invalid */
	char	*identifiers;		/* JSON array text */
	int64_t	 created, expires;
	char	*error;			/* problem JSON text, or NULL */
	char	*csr;			/* PEM, once finalized */
	char	 cert_id[ID_LEN];	/* "" until valid */
	char	*replaces;		/* RFC 9773 certID, or NULL */
	char	 request[128];		/* the signer's approval request id */
	int64_t	 asked_at;		/* last time we asked the signer */
	int	 retry_after;		/* what the signer said, seconds */
};

struct authz {
	char	 id[ID_LEN];
	char	 order_id[ID_LEN];
	char	 account[ID_LEN];
	char	 type[8];		/* dns | ip */
	char	 value[IDENT_LEN];
	char	 status[STATUS_LEN];	/* pending valid invalid deactivated expired */
	int64_t	 expires;
	int	 subdomain;		/* RFC 9444 subdomainAuthAllowed */
	int	 linked;		/* order_insert: an existing, valid
					 * authorization the order reuses */
};

struct chall {
	char	 id[ID_LEN];
	char	 authz_id[ID_LEN];
	char	 type[16];		/* http-01 tls-alpn-01 dns-01 */
	char	 token[TOKEN_LEN];
	char	 status[STATUS_LEN];	/* pending processing valid invalid */
	int64_t	 validated;
	char	*error;			/* problem JSON text, or NULL */
};

struct cert {
	char	 id[ID_LEN];
	char	 serial[SERIAL_LEN];	/* upper-case hex, as the signer names it */
	char	 account[ID_LEN];
	char	 issued_to[THUMB_LEN];	/* the account key's thumbprint at issuance */
	char	 order_id[ID_LEN];
	char	*pem;			/* leaf */
	char	*chain;			/* root */
	char	 ari_id[192];		/* RFC 9773 certID: b64url(AKI keyid).b64url(serial) */
	int64_t	 not_before, not_after;
	int	 revoked;
};

int	 acmedb_open(const char *path, struct acmedb **, char *err, size_t errlen);
void	 acmedb_close(struct acmedb *);
/* A random 128-bit id, base64url. */
int	 acmedb_new_id(char id[ID_LEN]);

void	 acct_clear(struct acct *);
void	 order_clear(struct order *);
void	 chall_clear(struct chall *);
void	 cert_clear(struct cert *);

int	 acct_insert(struct acmedb *, struct acct *);	/* fills id, created */
int	 acct_get(struct acmedb *, const char *id, struct acct *);
int	 acct_by_thumb(struct acmedb *, const char *thumb, struct acct *);
int	 acct_set_contacts(struct acmedb *, const char *id, const char *contacts);
int	 acct_set_status(struct acmedb *, const char *id, const char *status);
int	 acct_set_key(struct acmedb *, const char *id, const char *thumb,
	    const char *jwk);

/* Insert an order with its authorizations and their challenges at once;
 * an authorization marked linked is only linked to the order. */
int	 order_insert(struct acmedb *, const struct order *,
	    const struct authz *, size_t nauthz,
	    const struct chall *, size_t nchall);
int	 order_get(struct acmedb *, const char *id, struct order *);
/* Write status, error, csr, request, asked_at, retry_after. */
int	 order_update(struct acmedb *, const struct order *);
/* Move an order from one status to another; NOTFOUND if it was not in from. */
/*
 * processing -> invalid with error (a problem document), only if the order
 * is still processing: a certificate recorded meanwhile wins.  NOTFOUND if
 * it was not.
 */
int	 order_expire(struct acmedb *, const char *id, const char *error);
int	 order_transition(struct acmedb *, const char *id, const char *from,
	    const char *to);
/* Order ids of an account, newest first, skipping invalid ones. */
int	 orders_of_account(struct acmedb *, const char *acct, size_t offset,
	    size_t limit, char (*ids)[ID_LEN], size_t *n);
/* 1 if a live (not invalid) order already replaces certid. */
int	 order_replacing(struct acmedb *, const char *certid);
/* The certificate becomes the order's: cert row inserted, order valid. */
int	 order_issued(struct acmedb *, const char *order_id, struct cert *);

/* A pre-authorization (newAuthz): order_id "" stores NULL. */
int	 authz_insert(struct acmedb *, const struct authz *,
	    const struct chall *, size_t nchall);
int	 authz_get(struct acmedb *, const char *id, struct authz *);
/* The account's valid authorization of type/value expiring after until,
 * with subdomainAuthAllowed if subdomain; NOTFOUND if none. */
int	 authz_find_valid(struct acmedb *, const char *account, const char *type,
	    const char *value, int subdomain, int64_t until, struct authz *);
int	 authzs_of_order(struct acmedb *, const char *order_id,
	    struct authz *out, size_t max, size_t *n);

int	 chall_get(struct acmedb *, const char *id, struct chall *);
int	 challs_of_authz(struct acmedb *, const char *authz_id,
	    struct chall *out, size_t max, size_t *n);
/* pending -> processing for the challenge and nothing else; NOTFOUND if it
 * was not pending or its authorization is no longer pending. */
int	 chall_start(struct acmedb *, const char *id);
/* Record a validation's outcome on the challenge and its authorization. */
int	 chall_finish(struct acmedb *, const char *id, int ok, const char *error,
	    int64_t authz_expires);
/* processing -> pending again (the validation could not be queued). */
int	 chall_reset(struct acmedb *, const char *id);
/* pending or valid -> deactivated (RFC 8555 7.5.2). */
int	 authz_deactivate(struct acmedb *, const char *id);
/* Ids of challenges left processing (a restart re-runs them). */
int	 challs_processing(struct acmedb *, char (*ids)[ID_LEN], size_t max,
	    size_t *n);

int	 cert_get(struct acmedb *, const char *id, struct cert *);
int	 cert_by_serial(struct acmedb *, const char *serial, struct cert *);
int	 cert_by_ari_id(struct acmedb *, const char *ari_id, struct cert *);
int	 cert_set_revoked(struct acmedb *, const char *id);

/*
 * History that no client can use any more, deleted (acme/README.md,
 * "What acme.db keeps"): orders, authorizations and their challenges
 * ACMEDB_RETAIN_SEC after they expired, certificates (and their valid
 * orders) ACMEDB_RETAIN_SEC after the certificate's notAfter.  Accounts
 * stay.  What a kept order links to stays with it.  At most
 * ACMEDB_PRUNE_PASSES short transactions of 1000 rows each per call; the
 * rest waits for the next call.  Counts in *p; -1 on a database error.
 */
#define ACMEDB_RETAIN_SEC	(7 * 86400)
#define ACMEDB_PRUNE_PASSES	64

struct acmedb_pruned {
	int64_t	 orders, authzs, challenges, certs;
};

int	 acmedb_prune(struct acmedb *, int64_t now, struct acmedb_pruned *);

#endif
