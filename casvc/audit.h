/*
 * audit: the sealed audit log in signer.db.
 *
 * audit_log holds one row per event: seq (1, 2, ...), record (the event's
 * canonical JSON: compact, sorted keys, ASCII), prev_hash, hash and mac, where
 *
 *   hash = SHA-384("iotca-audit-v1" 0x00 || seq as 8 bytes big-endian ||
 *                  prev_hash || record)        (prev_hash of record 1: zeros)
 *   mac  = HMAC-SHA384(anchor's key, hash)
 *
 * audit_checkpoints holds the signed heads: every checkpoint_records records,
 * every checkpoint_minutes and at shutdown, the anchor's key signs
 *
 *   "iotca-audit-checkpoint|<head_seq>|<hex head hash>|<counter>|<created>"
 *
 * with counter one more than the previous checkpoint's (the first: one more
 * than the counter value in record 1, the log's creation).  The checkpoint is
 * committed first and the anchor's counter incremented after it, so a crash
 * in between leaves the database one ahead (finished at the next start), and
 * a database that is behind the counter has lost its tail or been rolled
 * back.
 *
 * Appends run inside the caller's transaction, with the state change they
 * record: the caller reports the outcome with audit_committed() or
 * audit_rolled_back().  Functions return 0 (non-NULL) or -1 (NULL) with one
 * line in err.
 */
#ifndef IOTCA_AUDIT_H
#define IOTCA_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "anchor.h"
#include "auditchain.h"	/* audit_verdict, audit_count, audit_verify_file */

#define AUDIT_MAX_RECORD	(16 * 1024)

struct audit_params {
	int		 checkpoint_records;	/* >= 1 */
	int		 checkpoint_minutes;	/* >= 1 */
	int		 journal;		/* also send each record to journald */
};

struct audit;

/*
 * Open the log on db (creating its tables).  An empty log is started with a
 * creation record and a first checkpoint.  A log that fails the start check
 * (newest checkpoint, the records after it, the counter) opens "broken":
 * every append is refused until it is dealt with; audit_broken() says why.
 */
struct audit	*audit_open(sqlite3 *db, struct anchor *,
		    const struct audit_params *, char *err, size_t errlen);
void		 audit_close(struct audit *);
const char	*audit_broken(const struct audit *);

/* {"event": name, "time": now, "actor": actor (stolen)} to add fields to. */
json_t		*audit_event(const char *name, json_t *actor);

/* Append event inside the caller's transaction; *seq gets its number. */
int		 audit_append(struct audit *, const json_t *event, long long *seq,
		    char *err, size_t errlen);
/* The caller's transaction committed: send to journald, checkpoint if due. */
void		 audit_committed(struct audit *);
void		 audit_rolled_back(struct audit *);

/* Sign the head now (if it moved since the last checkpoint). */
int		 audit_checkpoint(struct audit *, char *err, size_t errlen);
/* Checkpoint if checkpoint_minutes have passed; seconds until the next is due. */
int		 audit_tick(struct audit *, time_t now);

/* The whole log, with MACs and the anchor's counter. */
int		 audit_verify(struct audit *, struct audit_verdict *);

/* Records after after_seq (and at or after since, if > 0), at most limit and
 * about max_bytes of JSON; *more set when the page was cut short. */
json_t		*audit_list(struct audit *, long long after_seq, long long since,
		    int limit, size_t max_bytes, int *more, char *err, size_t errlen);
/* For status: mode, records, checkpoints, counter, state. */
json_t		*audit_status(struct audit *);
/* The checkpoint public key as PEM (malloc'ed). */
char		*audit_pubkey_pem(struct audit *);

#endif
