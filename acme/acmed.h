/*
 * acmed: the state iotca-acmed shares between its parts.  One struct acmed
 * is built in main and handed to every part; nothing else is global.
 */
#ifndef IOTCA_ACMED_H
#define IOTCA_ACMED_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include "config.h"
#include "policy.h"
#include "acmed_config.h"

struct acmedb;
struct keycache;
struct nonces;
struct vpool;
struct tlscert;
struct workers;
struct ratelimit;
struct publish;

struct acmed {
	struct config		 ca;		/* [ca], [signer], [policy] */
	struct acme_config	 acme;		/* [acme] */
	struct policy		 policy;	/* early identifier checks */
	const char		*domains[CONFIG_MAX_LIST];
	struct acmedb		*db;
	struct nonces		*nonces;
	struct keycache		*keys;		/* account keys by thumbprint */
	struct vpool		*vpool;
	struct workers		*workers;	/* run requests (http.c) */
	/* Rate limits: newAccount per address; newOrder and finalize per
	 * address and per account ([acme] ratelimit_*). */
	struct ratelimit	*rl_new_account, *rl_address, *rl_account;
	/* The root PEM as the signer gave it with our TLS certificate. */
	pthread_mutex_t		 root_lock;
	char			*root_pem;
	/* The CRL and the root for relying parties (publish.h) */
	struct publish		*pub;
};

/* The root PEM, copied (the TLS renewal may replace it); NULL if none yet. */
char	*acmed_root_pem(struct acmed *);

#endif
