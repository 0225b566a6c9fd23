/*
 * auditchain: the audit log's hash chain as signer.db stores it (the format
 * is in audit.h): record hashes and MACs, the checkpoint message, reading
 * the head and the checkpoints, and the verifier.
 *
 * It needs OpenSSL and SQLite only: no anchor, no key store, no TPM.  The
 * signer writes the log with it (audit.c); the operator's command checks a
 * copied signer.db with audit_verify_file() and the checkpoint public key,
 * and so links no key code.
 *
 * Functions return 0 (non-NULL) or -1 (NULL) with one line in err.
 */
#ifndef IOTCA_AUDITCHAIN_H
#define IOTCA_AUDITCHAIN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#define AUDIT_HASH_LEN		48
#define CHAIN_MAC_KEY_LEN	48	/* the anchor's HMAC-SHA384 key */

struct audit_verdict {
	int		 ok;
	long long	 records;
	long long	 checkpoints;
	long long	 first_bad;	/* seq of the first failing record, 0 if ok */
	long long	 unsigned_tail;	/* records after the newest checkpoint */
	int		 macs_checked;
	int		 counter_checked;
	uint64_t	 counter;	/* the anchor's, when checked */
	char		 reason[512];
};

/* How many records the log has; -1 on error (0 when it has no table yet). */
long long	 audit_count(sqlite3 *db, char *err, size_t errlen);

/* A copied database, with the checkpoint public key only (no MACs, no
 * counter).  -1 when it could not run (v->reason says why); the outcome
 * is in v. */
int		 audit_verify_file(const char *path, EVP_PKEY *pub,
		    struct audit_verdict *);

/* Digest and MAC contexts, fetched once: verify runs them per record. */
struct chain_hasher {
	EVP_MD		*md;
	EVP_MD_CTX	*mdctx;
	EVP_MAC		*mac;
	EVP_MAC_CTX	*macctx;	/* NULL without a key (offline) */
};

struct chain_checkpoint {
	long long	 id, head_seq, created;
	uint64_t	 counter;
	unsigned char	 head_hash[AUDIT_HASH_LEN];
	unsigned char	*sig;
	size_t		 siglen;
	int		 hash_ok;	/* its head record was seen and matched */
};

/* key: CHAIN_MAC_KEY_LEN bytes, or NULL to hash without MACs. */
int	 chain_hasher_init(struct chain_hasher *, const unsigned char *key,
	    char *err, size_t errlen);
void	 chain_hasher_free(struct chain_hasher *);
/* A record's hash, and the MAC of a hash (needs a key). */
int	 chain_hash(struct chain_hasher *, long long seq,
	    const unsigned char *prev, const char *record, size_t len,
	    unsigned char out[AUDIT_HASH_LEN]);
int	 chain_mac(struct chain_hasher *, const unsigned char *hash,
	    unsigned char out[AUDIT_HASH_LEN]);
/* What a checkpoint's key signs; its length, or -1 if buf is too small. */
int	 chain_cp_message(char *buf, size_t buflen, long long head_seq,
	    const unsigned char *head_hash, uint64_t counter, long long created);

/* The last row's seq and hash; seq 0 and zeros for an empty log. */
int	 chain_head(sqlite3 *db, long long *seq, unsigned char *hash,
	    char *err, size_t errlen);
/* Checkpoints in the order they were written (all, or only the newest). */
int	 chain_load_checkpoints(sqlite3 *db, int newest_only,
	    struct chain_checkpoint **out, size_t *n, char *err, size_t errlen);
void	 chain_free_checkpoints(struct chain_checkpoint *, size_t n);
/* The anchor's counter value in record 1 (the log's creation), or -1. */
long long chain_genesis_counter(sqlite3 *db);

/*
 * The verifier: full (every record and checkpoint) or quick (the newest
 * checkpoint and the records from it on, for the signer's start check).
 * key NULL: no MACs; counter NULL: no comparison with the anchor.  Returns
 * -1 only when it could not run; the outcome is in v.
 */
int	 chain_verify(sqlite3 *db, const unsigned char *key, EVP_PKEY *pub,
	    const uint64_t *counter, int quick, struct audit_verdict *v,
	    char *err, size_t errlen);
/* Keep the failure with the lowest record number: the first that fails. */
void	 chain_verdict_fail(struct audit_verdict *, long long seq,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Small helpers the writer shares: lower-case hex of n bytes into out
 * (2n + 1), and "audit log: ..." errors. */
void	 chain_hex(const unsigned char *, size_t n, char *out);
int	 chain_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);
int	 chain_dberr(sqlite3 *db, char *err, size_t errlen, const char *what);
int	 chain_ossl_err(char *err, size_t errlen, const char *what);

#endif
