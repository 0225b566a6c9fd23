/*
 * server: what iotca-signer does with one validated request.  The loop in
 * signer.c owns sockets and peers; this file owns the operations and their
 * authorisation.  Every request gets exactly one reply object.
 */
#ifndef IOTCA_SERVER_H
#define IOTCA_SERVER_H

#include <sys/types.h>
#include <time.h>
#include <jansson.h>

#include "certgen.h"
#include "config.h"
#include "keystore.h"
#include "policy.h"
#include "signerdb.h"

enum role {
	ROLE_FRONTEND,		/* signer.sock: iotca-acmed */
	ROLE_ADMIN,		/* admin.sock: operators */
};

struct peer {
	enum role	 role;
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;
	char		 who[96];	/* "operator uid 1000 (alice)" for records and logs */
};

struct signer {
	struct config	 cfg;
	struct policy	 pol;
	struct ks	*ks;
	EVP_PKEY	*key;
	X509		*root;
	char		*root_pem;
	struct signerdb	*db;
	char		*crl_pem;	/* current CRL, re-signed on change and when half-stale */
	time_t		 crl_next_update;
};

/* Load key, root and database for cfg (already loaded); -1 with err. */
int	 signer_open(struct signer *, char *err, size_t errlen);
void	 signer_close(struct signer *);

/* Handle one request from peer; never NULL unless out of memory. */
json_t	*server_handle(struct signer *, const struct peer *, const json_t *req);

#endif
