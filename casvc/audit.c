/*
 * audit: append, checkpoint and verify the sealed audit log (see audit.h);
 * the chain itself and its verifier are auditchain.c.
 * The signer keeps the head it last wrote in memory: a log whose end moved
 * without it (rows deleted or added by hand) is refused at the next append.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <systemd/sd-journal.h>

#include "audit.h"

_Static_assert(ANCHOR_HMAC_LEN == CHAIN_MAC_KEY_LEN,
    "the anchor's record key is the chain's MAC key");

static const char *audit_schema =
    "CREATE TABLE IF NOT EXISTS audit_log ("
    " seq INTEGER PRIMARY KEY,"
    " record TEXT NOT NULL,"
    " prev_hash BLOB NOT NULL,"
    " hash BLOB NOT NULL,"
    " mac BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS audit_checkpoints ("
    " id INTEGER PRIMARY KEY,"
    " head_seq INTEGER NOT NULL,"
    " head_hash BLOB NOT NULL,"
    " counter INTEGER NOT NULL,"
    " created INTEGER NOT NULL,"
    " signature BLOB NOT NULL);";

struct pending {			/* appended, not yet committed: for journald */
	long long	 seq;
	char		*record;
};

struct audit {
	sqlite3		*db;
	struct anchor	*anchor;
	struct audit_params params;
	struct chain_hasher h;
	sqlite3_stmt	*ins;
	long long	 head_seq;	/* what the signer last wrote (committed) */
	unsigned char	 head_hash[AUDIT_HASH_LEN];
	long long	 work_seq;	/* the same inside the open transaction */
	unsigned char	 work_hash[AUDIT_HASH_LEN];
	long long	 cp_seq;	/* newest checkpoint: the record it covers */
	time_t		 cp_time;
	uint64_t	 counter;	/* the anchor's, as last read or moved */
	int		 counter_known;
	struct pending	*pend;
	size_t		 npend;
	int		 journal_warned;
	char		 broken[512];
};

/*
 * Only the signer moves the counter, so the value it last read or moved it
 * to is what status shows: a live read is a TPM command, and on a chip it
 * queues behind the signature in progress (audit verify still reads it).
 */
static void
counter_seen(struct audit *a, uint64_t c)
{
	a->counter = c;
	a->counter_known = 1;
}

json_t *
audit_event(const char *name, json_t *actor)
{
	return json_pack("{s:s, s:I, s:o}", "event", name, "time",
	    (json_int_t)time(NULL), "actor", actor != NULL ? actor :
	    json_pack("{s:s}", "role", "signer"));
}

static void
set_broken(struct audit *a, const char *reason)
{
	if (a->broken[0] == '\0')
		snprintf(a->broken, sizeof(a->broken), "%s", reason);
}

int
audit_append(struct audit *a, const json_t *event, long long *seq, char *err,
    size_t errlen)
{
	unsigned char dbh[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN],
	    mac[AUDIT_HASH_LEN];
	struct pending *np;
	long long dbseq, n;
	char *rec;
	size_t len;
	int rc = -1;

	if (a->broken[0] != '\0') {
		snprintf(err, errlen, "audit log: refusing to write: %s", a->broken);
		return -1;
	}
	if (chain_head(a->db, &dbseq, dbh, err, errlen) == -1)
		return -1;
	if (dbseq != a->work_seq || memcmp(dbh, a->work_hash,
	    AUDIT_HASH_LEN) != 0) {
		snprintf(err, errlen, "audit log: its end moved behind the "
		    "signer's back (the signer wrote record %lld, the database "
		    "ends at %lld): refusing to write", a->work_seq, dbseq);
		set_broken(a, err + strlen("audit log: "));
		return -1;
	}
	if ((rec = json_dumps(event, JSON_COMPACT | JSON_SORT_KEYS |
	    JSON_ENSURE_ASCII)) == NULL) {
		snprintf(err, errlen, "audit log: cannot encode the record");
		return -1;
	}
	if ((len = strlen(rec)) > AUDIT_MAX_RECORD) {
		snprintf(err, errlen, "audit log: record of %zu bytes is too "
		    "large", len);
		goto out;
	}
	n = a->work_seq + 1;
	if (chain_hash(&a->h, n, a->work_hash, rec, len, hash) == -1 ||
	    chain_mac(&a->h, hash, mac) == -1) {
		chain_ossl_err(err, errlen, "SHA-384/HMAC");
		goto out;
	}
	if (sqlite3_bind_int64(a->ins, 1, n) != SQLITE_OK ||
	    sqlite3_bind_text(a->ins, 2, rec, (int)len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(a->ins, 3, a->work_hash, AUDIT_HASH_LEN,
	    SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(a->ins, 4, hash, AUDIT_HASH_LEN, SQLITE_STATIC) !=
	    SQLITE_OK ||
	    sqlite3_bind_blob(a->ins, 5, mac, AUDIT_HASH_LEN, SQLITE_STATIC) !=
	    SQLITE_OK || sqlite3_step(a->ins) != SQLITE_DONE) {
		chain_dberr(a->db, err, errlen, "append");
		goto out;
	}
	if ((np = reallocarray(a->pend, a->npend + 1, sizeof(*np))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	a->pend = np;
	a->pend[a->npend].seq = n;
	a->pend[a->npend].record = rec;
	a->npend++;
	rec = NULL;
	a->work_seq = n;
	memcpy(a->work_hash, hash, AUDIT_HASH_LEN);
	if (seq != NULL)
		*seq = n;
	rc = 0;
out:
	sqlite3_reset(a->ins);
	sqlite3_clear_bindings(a->ins);
	free(rec);
	return rc;
}

static void
clear_pending(struct audit *a)
{
	size_t i;

	for (i = 0; i < a->npend; i++)
		free(a->pend[i].record);
	free(a->pend);
	a->pend = NULL;
	a->npend = 0;
}

/* journald: the record, and the fields a SIEM filters on. */
static void
journal_one(struct audit *a, const struct pending *p)
{
	json_error_t jerr;
	json_t *r, *actor;
	const char *event, *role, *user;
	json_int_t uid = -1;
	char uidbuf[32];
	int rc;

	if ((r = json_loads(p->record, 0, &jerr)) == NULL)
		return;
	event = json_string_value(json_object_get(r, "event"));
	actor = json_object_get(r, "actor");
	role = json_string_value(json_object_get(actor, "role"));
	user = json_string_value(json_object_get(actor, "user"));
	if (json_is_integer(json_object_get(actor, "uid")))
		uid = json_integer_value(json_object_get(actor, "uid"));
	snprintf(uidbuf, sizeof(uidbuf), "%lld", (long long)uid);
	rc = sd_journal_send("MESSAGE=audit record %lld: %s", p->seq,
	    event != NULL ? event : "?",
	    "PRIORITY=%d", LOG_NOTICE,
	    "SYSLOG_IDENTIFIER=iotca-signer",
	    "IOTCA_AUDIT_SEQ=%lld", p->seq,
	    "IOTCA_AUDIT_EVENT=%s", event != NULL ? event : "",
	    "IOTCA_ACTOR_ROLE=%s", role != NULL ? role : "",
	    "IOTCA_ACTOR_UID=%s", uid >= 0 ? uidbuf : "",
	    "IOTCA_ACTOR_USER=%s", user != NULL ? user : "",
	    "IOTCA_AUDIT_RECORD=%s", p->record,
	    NULL);
	json_decref(r);
	if (rc < 0 && !a->journal_warned) {
		a->journal_warned = 1;
		fprintf(stderr, "iotca-signer: warning: audit records do not "
		    "reach journald: %s\n", strerror(-rc));
	}
}

void
audit_committed(struct audit *a)
{
	char err[512];
	size_t i;

	if (a->params.journal)
		for (i = 0; i < a->npend; i++)
			journal_one(a, &a->pend[i]);
	clear_pending(a);
	a->head_seq = a->work_seq;
	memcpy(a->head_hash, a->work_hash, AUDIT_HASH_LEN);
	if (a->head_seq - a->cp_seq >= a->params.checkpoint_records &&
	    audit_checkpoint(a, err, sizeof(err)) == -1)
		fprintf(stderr, "iotca-signer: error: %s\n", err);
}

void
audit_rolled_back(struct audit *a)
{
	clear_pending(a);
	a->work_seq = a->head_seq;
	memcpy(a->work_hash, a->head_hash, AUDIT_HASH_LEN);
}

/* The newest checkpoint's counter, or the creation record's; -1 if neither. */
static int
newest_counter(struct audit *a, uint64_t *c, long long *cp_seq, time_t *cp_time,
    char *err, size_t errlen)
{
	struct chain_checkpoint *cp;
	size_t n;
	long long g;

	if (chain_load_checkpoints(a->db, 1, &cp, &n, err, errlen) == -1)
		return -1;
	*cp_seq = 0;
	*cp_time = 0;
	if (n > 0) {
		*c = cp[0].counter;
		*cp_seq = cp[0].head_seq;
		*cp_time = (time_t)cp[0].created;
		chain_free_checkpoints(cp, n);
		return 0;
	}
	chain_free_checkpoints(cp, n);
	if ((g = chain_genesis_counter(a->db)) < 0) {
		snprintf(err, errlen, "audit log: record 1 is not the log's "
		    "creation record");
		return -1;
	}
	*c = (uint64_t)g;
	return 0;
}

int
audit_checkpoint(struct audit *a, char *err, size_t errlen)
{
	unsigned char *sig = NULL;
	char msg[256];
	sqlite3_stmt *st = NULL;
	uint64_t anchor, newest, next, after;
	long long cp_seq;
	time_t cp_time, now = time(NULL);
	size_t siglen;
	int n, rc = -1;

	if (a->broken[0] != '\0') {
		snprintf(err, errlen, "audit log: no checkpoint: %s", a->broken);
		return -1;
	}
	if (a->head_seq == 0 || (a->head_seq == a->cp_seq && a->cp_time != 0))
		return 0;
	if (newest_counter(a, &newest, &cp_seq, &cp_time, err, errlen) == -1 ||
	    anchor_counter_read(a->anchor, &anchor, err, errlen) == -1)
		return -1;
	if (newest == anchor + 1 && cp_time != 0) {
		/* The last checkpoint's increment was cut short: finish it. */
		if (anchor_counter_increment(a->anchor, &anchor, err,
		    errlen) == -1)
			return -1;
	}
	counter_seen(a, anchor);
	if (newest != anchor) {
		snprintf(err, errlen, "the anchor's counter is %" PRIu64 " but "
		    "the newest checkpoint has %" PRIu64, anchor, newest);
		set_broken(a, err);
		return -1;
	}
	next = anchor + 1;
	if ((n = chain_cp_message(msg, sizeof(msg), a->head_seq, a->head_hash, next,
	    (long long)now)) == -1 || anchor_sign(a->anchor,
	    (const unsigned char *)msg, (size_t)n, &sig, &siglen, err,
	    errlen) == -1)
		goto out;
	if (chain_exec(a->db, "BEGIN IMMEDIATE", err, errlen) == -1)
		goto out;
	if (sqlite3_prepare_v2(a->db, "INSERT INTO audit_checkpoints(head_seq, "
	    "head_hash, counter, created, signature) VALUES (?, ?, ?, ?, ?)",
	    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, a->head_seq) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, a->head_hash, AUDIT_HASH_LEN,
	    SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, (sqlite3_int64)next) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, (sqlite3_int64)now) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 5, sig, (int)siglen, SQLITE_STATIC) !=
	    SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
		chain_dberr(a->db, err, errlen, "checkpoint");
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	if (chain_exec(a->db, "COMMIT", err, errlen) == -1) {
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	/* Committed first, counted after: see audit.h. */
	if (anchor_counter_increment(a->anchor, &after, err, errlen) == -1)
		goto out;
	counter_seen(a, after);
	if (after != next) {
		snprintf(err, errlen, "the anchor's counter moved to %" PRIu64
		    " instead of %" PRIu64 ": something else increments it",
		    after, next);
		set_broken(a, err);
		goto out;
	}
	a->cp_seq = a->head_seq;
	a->cp_time = now;
	rc = 0;
out:
	sqlite3_finalize(st);
	free(sig);
	return rc;
}

int
audit_tick(struct audit *a, time_t now)
{
	char err[512];
	time_t due = a->cp_time + (time_t)a->params.checkpoint_minutes * 60;

	if (a->broken[0] != '\0' || a->head_seq == a->cp_seq)
		return a->params.checkpoint_minutes * 60;
	if (now >= due) {
		if (audit_checkpoint(a, err, sizeof(err)) == -1)
			fprintf(stderr, "iotca-signer: error: %s\n", err);
		return a->params.checkpoint_minutes * 60;
	}
	return (int)(due - now);
}

/* A new log: its creation record, with the counter it starts from. */
static int
start_log(struct audit *a, char *err, size_t errlen)
{
	json_t *ev;
	uint64_t c;
	int rc;

	if (anchor_counter_read(a->anchor, &c, err, errlen) == -1)
		return -1;
	counter_seen(a, c);
	if ((ev = audit_event("audit_log_created", NULL)) == NULL ||
	    json_object_set_new(ev, "counter", json_integer((json_int_t)c)) ||
	    json_object_set_new(ev, "anchor", json_string(anchor_mode_name(
	    a->anchor))) || json_object_set_new(ev, "anchor_in_hardware",
	    json_boolean(anchor_is_hardware(a->anchor)))) {
		json_decref(ev);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (chain_exec(a->db, "BEGIN IMMEDIATE", err, errlen) == -1) {
		json_decref(ev);
		return -1;
	}
	rc = audit_append(a, ev, NULL, err, errlen);
	json_decref(ev);
	if (rc == -1 || chain_exec(a->db, "COMMIT", err, errlen) == -1) {
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		audit_rolled_back(a);
		return -1;
	}
	audit_committed(a);
	return audit_checkpoint(a, err, errlen);
}

/*
 * The start check: finish a cut-short checkpoint, then verify the newest
 * checkpoint, the records after it and the counter.  Problems make the log
 * "broken", not the open fail: the signer still answers audit verify.
 */
static int
start_check(struct audit *a, char *err, size_t errlen)
{
	struct audit_verdict v;
	uint64_t anchor, newest;
	long long cp_seq;
	time_t cp_time;

	if (newest_counter(a, &newest, &cp_seq, &cp_time, err, errlen) == -1) {
		set_broken(a, err);
		return 0;
	}
	if (anchor_counter_read(a->anchor, &anchor, err, errlen) == -1)
		return -1;
	if (cp_time != 0 && newest == anchor + 1) {
		if (anchor_counter_increment(a->anchor, &anchor, err,
		    errlen) == -1)
			return -1;
		fprintf(stderr, "iotca-signer: notice: audit checkpoint %" PRIu64
		    " was cut short; its counter increment is now done\n",
		    newest);
	}
	counter_seen(a, anchor);
	a->cp_seq = cp_seq;
	a->cp_time = cp_time != 0 ? cp_time : time(NULL);
	if (chain_verify(a->db, anchor_hmac_key(a->anchor),
	    anchor_pubkey(a->anchor), &anchor, 1, &v, err, errlen) == -1)
		return -1;
	if (!v.ok)
		set_broken(a, v.reason);
	return 0;
}

struct audit *
audit_open(sqlite3 *db, struct anchor *anchor, const struct audit_params *p,
    char *err, size_t errlen)
{
	struct audit *a;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->db = db;
	a->anchor = anchor;
	a->params = *p;
	if (a->params.checkpoint_records < 1)
		a->params.checkpoint_records = 1;
	if (a->params.checkpoint_minutes < 1)
		a->params.checkpoint_minutes = 1;
	if (chain_hasher_init(&a->h, anchor_hmac_key(anchor), err, errlen) == -1)
		goto fail;
	if (chain_exec(db, audit_schema, err, errlen) == -1)
		goto fail;
	if (sqlite3_prepare_v2(db, "INSERT INTO audit_log(seq, record, "
	    "prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?)", -1, &a->ins,
	    NULL) != SQLITE_OK) {
		chain_dberr(db, err, errlen, "prepare");
		goto fail;
	}
	if (chain_head(db, &a->head_seq, a->head_hash, err, errlen) == -1)
		goto fail;
	a->work_seq = a->head_seq;
	memcpy(a->work_hash, a->head_hash, AUDIT_HASH_LEN);
	if (a->head_seq == 0) {
		if (start_log(a, err, errlen) == -1)
			goto fail;
	} else if (start_check(a, err, errlen) == -1)
		goto fail;
	return a;
fail:
	audit_close(a);
	return NULL;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	clear_pending(a);
	sqlite3_finalize(a->ins);
	chain_hasher_free(&a->h);
	free(a);
}

const char *
audit_broken(const struct audit *a)
{
	return a->broken[0] != '\0' ? a->broken : NULL;
}

int
audit_verify(struct audit *a, struct audit_verdict *v)
{
	uint64_t c;
	long long dbseq;
	unsigned char dbh[AUDIT_HASH_LEN];

	memset(v, 0, sizeof(*v));
	if (anchor_counter_read(a->anchor, &c, v->reason,
	    sizeof(v->reason)) == -1)
		return -1;
	counter_seen(a, c);
	if (chain_verify(a->db, anchor_hmac_key(a->anchor),
	    anchor_pubkey(a->anchor), &c, 0, v, v->reason,
	    sizeof(v->reason)) == -1)
		return -1;
	/* The tail the signer wrote and no checkpoint covers yet. */
	if (v->ok && chain_head(a->db, &dbseq, dbh, v->reason,
	    sizeof(v->reason)) == 0 && dbseq < a->head_seq)
		chain_verdict_fail(v, dbseq + 1, "records %lld to %lld are missing: "
		    "the signer wrote them but the log ends at record %lld",
		    dbseq + 1, a->head_seq, dbseq);
	if (v->ok && a->broken[0] != '\0')
		chain_verdict_fail(v, a->head_seq, "%s", a->broken);
	return 0;
}

json_t *
audit_list(struct audit *a, long long after_seq, long long since, int limit,
    size_t max_bytes, int *more, char *err, size_t errlen)
{
	char ph[2 * AUDIT_HASH_LEN + 1], hh[2 * AUDIT_HASH_LEN + 1];
	json_error_t jerr;
	sqlite3_stmt *st;
	json_t *arr, *rec, *o;
	size_t used = 0, len;
	int rc;

	*more = 0;
	if (sqlite3_prepare_v2(a->db, "SELECT seq, record, prev_hash, hash FROM "
	    "audit_log WHERE seq > ? AND (? = 0 OR json_extract(record, "
	    "'$.time') >= ?) ORDER BY seq LIMIT ?", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, after_seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, since) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, since) != SQLITE_OK ||
	    sqlite3_bind_int(st, 4, limit + 1) != SQLITE_OK) {
		sqlite3_finalize(st);
		chain_dberr(a->db, err, errlen, "list");
		return NULL;
	}
	if ((arr = json_array()) == NULL)
		goto nomem;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		len = (size_t)sqlite3_column_bytes(st, 1);
		if ((int)json_array_size(arr) == limit ||
		    (used + len + 256 > max_bytes && json_array_size(arr) > 0)) {
			*more = 1;
			break;
		}
		/* A record altered to garbage is still shown, as a string. */
		rec = json_loads((const char *)sqlite3_column_text(st, 1), 0, &jerr);
		if (rec == NULL)
			rec = json_string((const char *)sqlite3_column_text(st, 1));
		ph[0] = hh[0] = '\0';
		if (sqlite3_column_bytes(st, 2) == AUDIT_HASH_LEN)
			chain_hex(sqlite3_column_blob(st, 2), AUDIT_HASH_LEN, ph);
		if (sqlite3_column_bytes(st, 3) == AUDIT_HASH_LEN)
			chain_hex(sqlite3_column_blob(st, 3), AUDIT_HASH_LEN, hh);
		o = json_pack("{s:I, s:o, s:s, s:s}", "seq",
		    (json_int_t)sqlite3_column_int64(st, 0), "record", rec,
		    "prev_hash", ph, "hash", hh);
		if (o == NULL || json_array_append_new(arr, o) == -1)
			goto nomem;
		used += len + 256;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		chain_dberr(a->db, err, errlen, "list");
		json_decref(arr);
		arr = NULL;
	}
	sqlite3_finalize(st);
	return arr;
nomem:
	snprintf(err, errlen, "out of memory");
	sqlite3_finalize(st);
	json_decref(arr);
	return NULL;
}

json_t *
audit_status(struct audit *a)
{
	return json_pack("{s:s, s:b, s:I, s:I, s:I, s:s}",
	    "mode", anchor_mode_name(a->anchor),
	    "in_hardware", anchor_is_hardware(a->anchor),
	    "records", (json_int_t)a->head_seq,
	    "last_checkpoint_record", (json_int_t)a->cp_seq,
	    "counter", a->counter_known ? (json_int_t)a->counter :
	    (json_int_t)-1,
	    "state", a->broken[0] != '\0' ? a->broken : "ok");
}

char *
audit_pubkey_pem(struct audit *a)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (b == NULL)
		return NULL;
	if (PEM_write_bio_PUBKEY(b, anchor_pubkey(a->anchor)) == 1 &&
	    (len = BIO_get_mem_data(b, &data)) > 0)
		out = strndup(data, (size_t)len);
	BIO_free(b);
	return out;
}
