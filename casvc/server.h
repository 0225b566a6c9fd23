/*
 * server: what iotca-signer does with one validated request.  The loop in
 * signer.c owns sockets and peers; this file owns the operations and their
 * authorisation.  Every request gets exactly one reply object.
 */
#ifndef IOTCA_SERVER_H
#define IOTCA_SERVER_H

#include <sys/types.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#include "anchor.h"
#include "audit.h"
#include "certgen.h"
#include "config.h"
#include "keysigner.h"
#include "keystore.h"
#include "notify.h"
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
	char		 user[64];	/* the uid's user name, "?" if it has none */
};

/* A reply that comes later, for the request the loop tagged tag (resp
 * stolen; NULL: out of memory). */
typedef void server_reply_fn(void *arg, uint64_t tag, json_t *resp);

struct job;
struct parked;

struct signer {
	struct config	 cfg;
	struct policy	 pol;
	char		*crl_url;	/* pol's publication URLs, owned here */
	char		*ca_issuers_url;
	struct ks	*ks;
	EVP_PKEY	*key;
	X509		*root;
	char		*root_pem;
	struct signerdb	*db;
	char		*crl_pem;	/* current CRL, re-signed on change and when half-stale */
	unsigned char	*crl_der;	/* the same CRL, DER, served in pages */
	size_t		 crl_der_len;
	long		 crl_number;
	time_t		 crl_this_update;
	time_t		 crl_next_update;
	int		 crl_dirty;	/* revoked since the last signing */
	uint64_t	 crl_signed_ms;	/* monotonic time of the last signing */
	struct anchor	*anchor;	/* the audit log's keys and counter */
	struct audit	*audit;		/* the sealed audit log, in signer.db */
	/* The appliance's own keys, never certified for a device (4.11). */
	char		 root_spki[POLICY_SPKI_HEX_LEN + 1];
	char		 audit_spki[POLICY_SPKI_HEX_LEN + 1];	/* "" if unknown */
	struct notify	*notify;	/* [policy] notify_command runs */
	struct refusals	*refusals;	/* refusals counted for the audit log */
	/* Certificates at the key (server.c, issue_and_record()), and the
	 * requests waiting for them, in order. */
	struct keysigner *ksg;
	struct job	*jobs;
	size_t		 njobs;
	struct parked	*parked, **parked_tail;
	server_reply_fn	*reply_fn;
	void		*reply_arg;
	uint64_t	 tag;		/* of the request being handled */
	int		 issue_budget;	/* issuances the loop may still prepare
					   this turn */
	int		 later, park;	/* what its op said about it */
};

/* Load key, root and database for cfg (already loaded); -1 with err. */
int	 signer_open(struct signer *, char *err, size_t errlen);
void	 signer_close(struct signer *);

/*
 * Handle one request from peer, which the loop tags with tag.  Returns 0
 * with *resp the reply (NULL only when out of memory), or 1: the reply
 * comes later through the function given to server_set_reply(), after the
 * key signed (an issuance) or after the certificates at the key (a request
 * that must not overtake them).  The loop then reads no more requests
 * from that peer until it has the reply.
 */
int	 server_handle(struct signer *, const struct peer *, const json_t *req,
	    uint64_t tag, json_t **resp);
void	 server_set_reply(struct signer *, server_reply_fn *, void *arg);
/* Readable when the key has finished work: then call server_collect(),
 * which records it and sends the replies that are due. */
int	 server_pollfd(const struct signer *);
void	 server_collect(struct signer *);
/* At shutdown, before signer_shutdown(): the key finishes what it has, and
 * every waiting request is answered. */
void	 server_drain(struct signer *);

/* A peer refused at the door: put it in the audit log. */
void	 server_refused_peer(struct signer *, const struct peer *);
/* Timed work (audit checkpoints, finished notify commands); milliseconds
 * until it is due again. */
int	 server_tick(struct signer *);
/* Record the stop and sign the audit log's head; before signer_close(). */
void	 signer_shutdown(struct signer *);

#endif
