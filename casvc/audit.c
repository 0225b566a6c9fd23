/*
 * audit: append, checkpoint and verify the sealed audit log (see audit.h).
 * The signer keeps the head it last wrote in memory: a log whose end moved
 * without it (rows deleted or added by hand) is refused at the next append.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <systemd/sd-journal.h>

#include "audit.h"

#define HASH_DOMAIN	"iotca-audit-v1"	/* with its NUL */
#define CP_PREFIX	"iotca-audit-checkpoint"

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

/* Digest and MAC contexts, fetched once: verify runs them per record. */
struct hasher {
	EVP_MD		*md;
	EVP_MD_CTX	*mdctx;
	EVP_MAC		*mac;
	EVP_MAC_CTX	*macctx;	/* NULL without a key (offline) */
};

struct pending {			/* appended, not yet committed: for journald */
	long long	 seq;
	char		*record;
};

struct audit {
	sqlite3		*db;
	struct anchor	*anchor;
	struct audit_params params;
	struct hasher	 h;
	sqlite3_stmt	*ins;
	long long	 head_seq;	/* what the signer last wrote (committed) */
	unsigned char	 head_hash[AUDIT_HASH_LEN];
	long long	 work_seq;	/* the same inside the open transaction */
	unsigned char	 work_hash[AUDIT_HASH_LEN];
	long long	 cp_seq;	/* newest checkpoint: the record it covers */
	time_t		 cp_time;
	struct pending	*pend;
	size_t		 npend;
	int		 journal_warned;
	char		 broken[512];
};

struct checkpoint {
	long long	 id, head_seq, created;
	uint64_t	 counter;
	unsigned char	 head_hash[AUDIT_HASH_LEN];
	unsigned char	*sig;
	size_t		 siglen;
	int		 hash_ok;	/* its head record was seen and matched */
};

static void
hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
dberr(sqlite3 *db, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "audit log: %s: %s", what, sqlite3_errmsg(db));
	return -1;
}

static int
ossl_err(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "audit log: %s failed", what);
	ERR_clear_error();
	return -1;
}

static void
hasher_free(struct hasher *h)
{
	EVP_MD_CTX_free(h->mdctx);
	EVP_MD_free(h->md);
	EVP_MAC_CTX_free(h->macctx);
	EVP_MAC_free(h->mac);
	memset(h, 0, sizeof(*h));
}

static int
hasher_init(struct hasher *h, const unsigned char *key, char *err,
    size_t errlen)
{
	OSSL_PARAM params[2];

	memset(h, 0, sizeof(*h));
	if ((h->md = EVP_MD_fetch(NULL, "SHA384", NULL)) == NULL ||
	    (h->mdctx = EVP_MD_CTX_new()) == NULL)
		goto fail;
	if (key == NULL)
		return 0;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA384", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (h->macctx = EVP_MAC_CTX_new(h->mac)) == NULL ||
	    EVP_MAC_init(h->macctx, key, ANCHOR_HMAC_LEN, params) != 1)
		goto fail;
	return 0;
fail:
	hasher_free(h);
	return ossl_err(err, errlen, "SHA-384/HMAC setup");
}

static int
chain_hash(struct hasher *h, long long seq, const unsigned char *prev,
    const char *record, size_t len, unsigned char out[AUDIT_HASH_LEN])
{
	unsigned char be[8];
	unsigned int n = 0;
	int i;

	for (i = 0; i < 8; i++)
		be[i] = (unsigned char)((uint64_t)seq >> (56 - 8 * i));
	if (EVP_DigestInit_ex2(h->mdctx, h->md, NULL) != 1 ||
	    EVP_DigestUpdate(h->mdctx, HASH_DOMAIN, sizeof(HASH_DOMAIN)) != 1 ||
	    EVP_DigestUpdate(h->mdctx, be, sizeof(be)) != 1 ||
	    EVP_DigestUpdate(h->mdctx, prev, AUDIT_HASH_LEN) != 1 ||
	    EVP_DigestUpdate(h->mdctx, record, len) != 1 ||
	    EVP_DigestFinal_ex(h->mdctx, out, &n) != 1 || n != AUDIT_HASH_LEN)
		return -1;
	return 0;
}

static int
record_mac(struct hasher *h, const unsigned char *hash,
    unsigned char out[AUDIT_HASH_LEN])
{
	size_t n = 0;

	/* A NULL key re-uses the one given at hasher_init(). */
	if (EVP_MAC_init(h->macctx, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(h->macctx, hash, AUDIT_HASH_LEN) != 1 ||
	    EVP_MAC_final(h->macctx, out, &n, AUDIT_HASH_LEN) != 1 ||
	    n != AUDIT_HASH_LEN)
		return -1;
	return 0;
}

static int
cp_message(char *buf, size_t buflen, long long head_seq,
    const unsigned char *head_hash, uint64_t counter, long long created)
{
	char hx[2 * AUDIT_HASH_LEN + 1];
	int n;

	hex(head_hash, AUDIT_HASH_LEN, hx);
	n = snprintf(buf, buflen, CP_PREFIX "|%lld|%s|%" PRIu64 "|%lld",
	    head_seq, hx, counter, created);
	return n > 0 && (size_t)n < buflen ? n : -1;
}

static int
exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return dberr(db, err, errlen, sql);
	return 0;
}

long long
audit_count(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	long long n = -1;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM audit_log", -1, &st,
	    NULL);
	if (rc != SQLITE_OK) {
		/* No table yet: a database from before the audit log. */
		if (strstr(sqlite3_errmsg(db), "no such table") != NULL)
			return 0;
		dberr(db, err, errlen, "count");
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else
		dberr(db, err, errlen, "count");
	sqlite3_finalize(st);
	return n;
}

/* The last row's seq and hash; seq 0 and zeros for an empty log. */
static int
db_head(sqlite3 *db, long long *seq, unsigned char *hash, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	*seq = 0;
	memset(hash, 0, AUDIT_HASH_LEN);
	if (sqlite3_prepare_v2(db, "SELECT seq, hash FROM audit_log ORDER BY "
	    "seq DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return dberr(db, err, errlen, "head");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == AUDIT_HASH_LEN)
			memcpy(hash, sqlite3_column_blob(st, 1), AUDIT_HASH_LEN);
	} else if (rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		return dberr(db, err, errlen, "head");
	}
	sqlite3_finalize(st);
	return 0;
}

static void
free_checkpoints(struct checkpoint *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(c[i].sig);
	free(c);
}

/* Checkpoints in the order they were written (all, or only the newest). */
static int
load_checkpoints(sqlite3 *db, int newest_only, struct checkpoint **out,
    size_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	struct checkpoint *c = NULL, *nc;
	size_t cnt = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, newest_only ?
	    "SELECT id, head_seq, head_hash, counter, created, signature FROM "
	    "audit_checkpoints ORDER BY id DESC LIMIT 1" :
	    "SELECT id, head_seq, head_hash, counter, created, signature FROM "
	    "audit_checkpoints ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return dberr(db, err, errlen, "checkpoints");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nc = reallocarray(c, cap, sizeof(*c))) == NULL)
				goto nomem;
			c = nc;
		}
		memset(&c[cnt], 0, sizeof(c[cnt]));
		c[cnt].id = sqlite3_column_int64(st, 0);
		c[cnt].head_seq = sqlite3_column_int64(st, 1);
		if (sqlite3_column_bytes(st, 2) == AUDIT_HASH_LEN)
			memcpy(c[cnt].head_hash, sqlite3_column_blob(st, 2),
			    AUDIT_HASH_LEN);
		c[cnt].counter = (uint64_t)sqlite3_column_int64(st, 3);
		c[cnt].created = sqlite3_column_int64(st, 4);
		c[cnt].siglen = (size_t)sqlite3_column_bytes(st, 5);
		if ((c[cnt].sig = malloc(c[cnt].siglen + 1)) == NULL)
			goto nomem;
		if (c[cnt].siglen > 0)
			memcpy(c[cnt].sig, sqlite3_column_blob(st, 5),
			    c[cnt].siglen);
		cnt++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free_checkpoints(c, cnt);
		return dberr(db, err, errlen, "checkpoints");
	}
	*out = c;
	*n = cnt;
	return 0;
nomem:
	sqlite3_finalize(st);
	free_checkpoints(c, cnt);
	snprintf(err, errlen, "out of memory");
	return -1;
}

static void verdict_fail(struct audit_verdict *, long long, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Keep the failure with the lowest record number: the first that fails. */
static void
verdict_fail(struct audit_verdict *v, long long seq, const char *fmt, ...)
{
	va_list ap;

	if (!v->ok && v->first_bad <= seq)
		return;
	v->ok = 0;
	v->first_bad = seq;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

static int
check_signature(EVP_PKEY *pub, const struct checkpoint *c)
{
	char msg[256];
	EVP_MD_CTX *ctx;
	int n, ok;

	if ((n = cp_message(msg, sizeof(msg), c->head_seq, c->head_hash,
	    c->counter, c->created)) == -1 || (ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestVerifyInit_ex(ctx, NULL, "SHA384", NULL, NULL, pub,
	    NULL) == 1 && EVP_DigestVerify(ctx, c->sig, c->siglen,
	    (const unsigned char *)msg, (size_t)n) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* The anchor's counter value in record 1 (the log's creation), or -1. */
static long long
genesis_counter(sqlite3 *db)
{
	sqlite3_stmt *st;
	long long c = -1;

	if (sqlite3_prepare_v2(db, "SELECT json_extract(record, '$.counter') "
	    "FROM audit_log WHERE seq = 1 AND json_extract(record, '$.event') = "
	    "'audit_log_created'", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) == SQLITE_INTEGER)
		c = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return c;
}

/* Walk the records from seq `from` on: numbering, chain, hashes, MACs, and
 * the checkpoints' heads.  Stops at the first broken record. */
static int
walk_records(sqlite3 *db, struct hasher *h, long long from,
    struct checkpoint *cp, size_t ncp, long long *last_seq,
    struct audit_verdict *v, char *err, size_t errlen)
{
	unsigned char prev[AUDIT_HASH_LEN], calc[AUDIT_HASH_LEN],
	    mac[AUDIT_HASH_LEN];
	const unsigned char *ph, *hh, *mh;
	const char *rec;
	sqlite3_stmt *st;
	long long seq, expect = from;
	size_t j = 0;
	int rc, first = 1;

	memset(prev, 0, sizeof(prev));
	*last_seq = from - 1;
	if (sqlite3_prepare_v2(db, "SELECT seq, record, prev_hash, hash, mac "
	    "FROM audit_log WHERE seq >= ? ORDER BY seq", -1, &st, NULL) !=
	    SQLITE_OK || sqlite3_bind_int64(st, 1, from) != SQLITE_OK) {
		sqlite3_finalize(st);
		return dberr(db, err, errlen, "read");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		seq = sqlite3_column_int64(st, 0);
		rec = (const char *)sqlite3_column_text(st, 1);
		ph = sqlite3_column_blob(st, 2);
		hh = sqlite3_column_blob(st, 3);
		mh = sqlite3_column_blob(st, 4);
		if (seq != expect) {
			verdict_fail(v, expect, "record %lld is missing (the log "
			    "goes from record %lld to record %lld): deleted",
			    expect, expect - 1, seq);
			break;
		}
		if (rec == NULL || sqlite3_column_bytes(st, 2) != AUDIT_HASH_LEN ||
		    sqlite3_column_bytes(st, 3) != AUDIT_HASH_LEN ||
		    sqlite3_column_bytes(st, 4) != AUDIT_HASH_LEN) {
			verdict_fail(v, seq, "record %lld is damaged (a hash or MAC "
			    "column has the wrong size)", seq);
			break;
		}
		/* The first record of a partial walk is vouched for by its
		 * checkpoint below; from then on each must follow the last. */
		if ((!first || from == 1) && memcmp(ph, prev, AUDIT_HASH_LEN) != 0) {
			verdict_fail(v, seq, "record %lld does not follow record "
			    "%lld (its prev_hash differs): records were removed, "
			    "inserted or reordered", seq, seq - 1);
			break;
		}
		if (chain_hash(h, seq, ph, rec, (size_t)sqlite3_column_bytes(st, 1),
		    calc) == -1) {
			sqlite3_finalize(st);
			return ossl_err(err, errlen, "SHA-384");
		}
		if (memcmp(calc, hh, AUDIT_HASH_LEN) != 0) {
			verdict_fail(v, seq, "record %lld was altered: its content "
			    "does not match its hash", seq);
			break;
		}
		if (h->macctx != NULL) {
			if (record_mac(h, calc, mac) == -1) {
				sqlite3_finalize(st);
				return ossl_err(err, errlen, "HMAC");
			}
			if (CRYPTO_memcmp(mac, mh, AUDIT_HASH_LEN) != 0) {
				verdict_fail(v, seq, "record %lld has a bad MAC: it "
				    "was forged or re-hashed without the sealed key",
				    seq);
				break;
			}
		}
		while (j < ncp && cp[j].head_seq <= seq) {
			if (cp[j].head_seq == seq) {
				if (memcmp(cp[j].head_hash, calc,
				    AUDIT_HASH_LEN) != 0) {
					verdict_fail(v, seq, "record %lld does not "
					    "match checkpoint %lld, which signed it",
					    seq, cp[j].id);
					goto stop;
				}
				cp[j].hash_ok = 1;
			}
			j++;
		}
		memcpy(prev, calc, AUDIT_HASH_LEN);
		*last_seq = seq;
		v->records++;
		expect = seq + 1;
		first = 0;
	}
stop:
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		return dberr(db, err, errlen, "read");
	}
	sqlite3_finalize(st);
	return 0;
}

/*
 * The verifier: full (every record and checkpoint) or quick (the newest
 * checkpoint and the records from it on, for the start check).  key NULL:
 * no MACs; counter NULL: no comparison with the anchor.  Returns -1 only
 * when it could not run; the outcome is in v.
 */
static int
verify_db(sqlite3 *db, const unsigned char *key, EVP_PKEY *pub,
    const uint64_t *counter, int quick, struct audit_verdict *v, char *err,
    size_t errlen)
{
	struct hasher h;
	struct checkpoint *cp = NULL;
	size_t ncp = 0, i;
	long long from = 1, last = 0, total, gen;
	uint64_t newest;
	int rc = -1;

	memset(v, 0, sizeof(*v));
	v->ok = 1;
	if (hasher_init(&h, key, err, errlen) == -1)
		return -1;
	v->macs_checked = key != NULL;
	/* One snapshot: a concurrent writer cannot make us see half a change. */
	if (exec(db, "BEGIN", err, errlen) == -1)
		goto out;
	if ((total = audit_count(db, err, errlen)) == -1 ||
	    load_checkpoints(db, quick, &cp, &ncp, err, errlen) == -1)
		goto out;
	if (total == 0) {
		verdict_fail(v, 1, "the audit log is empty: record 1 is missing");
		rc = 0;
		goto out;
	}
	gen = genesis_counter(db);
	if (quick && ncp > 0 && cp[0].head_seq >= 1)
		from = cp[0].head_seq;

	for (i = 0; i < ncp; i++) {
		if (!check_signature(pub, &cp[i]))
			verdict_fail(v, cp[i].head_seq, "checkpoint %lld (record "
			    "%lld, counter %" PRIu64 ") has a bad signature",
			    cp[i].id, cp[i].head_seq, cp[i].counter);
		if (quick)
			continue;
		if (i > 0 && cp[i].head_seq < cp[i - 1].head_seq)
			verdict_fail(v, cp[i].head_seq, "checkpoint %lld goes "
			    "back to record %lld", cp[i].id, cp[i].head_seq);
		if (i > 0 && cp[i].counter != cp[i - 1].counter + 1)
			verdict_fail(v, cp[i - 1].head_seq + 1, "checkpoints are "
			    "missing after record %lld: the counter jumps from "
			    "%" PRIu64 " to %" PRIu64 " at checkpoint %lld",
			    cp[i - 1].head_seq, cp[i - 1].counter, cp[i].counter,
			    cp[i].id);
		if (i == 0 && gen >= 0 && cp[0].counter != (uint64_t)gen + 1)
			verdict_fail(v, 1, "checkpoint %lld has counter %" PRIu64
			    " but the log was created at counter %lld: earlier "
			    "checkpoints are missing", cp[0].id, cp[0].counter, gen);
	}
	if (walk_records(db, &h, from, cp, ncp, &last, v, err, errlen) == -1)
		goto out;
	for (i = 0; i < ncp; i++) {
		if (!cp[i].hash_ok && cp[i].head_seq > last) {
			verdict_fail(v, last + 1, "records %lld to %lld are "
			    "missing: checkpoint %lld signed record %lld but the "
			    "log ends at record %lld (its tail was cut off)",
			    last + 1, cp[i].head_seq, cp[i].id, cp[i].head_seq,
			    last);
			break;
		}
	}
	if (!quick)
		v->checkpoints = (long long)ncp;
	v->unsigned_tail = last - (ncp > 0 ? cp[ncp - 1].head_seq : 0);
	if (counter != NULL) {
		v->counter_checked = 1;
		v->counter = *counter;
		newest = ncp > 0 ? cp[ncp - 1].counter : gen >= 0 ?
		    (uint64_t)gen : 0;
		/* One ahead: a checkpoint whose increment did not happen yet. */
		if (newest < *counter)
			verdict_fail(v, last + 1, "the anchor's counter is %"
			    PRIu64 " but the newest checkpoint has %" PRIu64
			    ": the log was rolled back to an older copy, or "
			    "records and checkpoints after record %lld were "
			    "removed", *counter, newest, last);
		else if (newest > *counter + 1)
			verdict_fail(v, ncp > 0 ? cp[ncp - 1].head_seq : 1,
			    "the newest checkpoint has counter %" PRIu64 ", ahead "
			    "of the anchor's %" PRIu64 ": this log was not written "
			    "with this TPM or counter file", newest, *counter);
	}
	rc = 0;
out:
	(void)sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	free_checkpoints(cp, ncp);
	hasher_free(&h);
	return rc;
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
	if (db_head(a->db, &dbseq, dbh, err, errlen) == -1)
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
	    record_mac(&a->h, hash, mac) == -1) {
		ossl_err(err, errlen, "SHA-384/HMAC");
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
		dberr(a->db, err, errlen, "append");
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
	struct checkpoint *cp;
	size_t n;
	long long g;

	if (load_checkpoints(a->db, 1, &cp, &n, err, errlen) == -1)
		return -1;
	*cp_seq = 0;
	*cp_time = 0;
	if (n > 0) {
		*c = cp[0].counter;
		*cp_seq = cp[0].head_seq;
		*cp_time = (time_t)cp[0].created;
		free_checkpoints(cp, n);
		return 0;
	}
	free_checkpoints(cp, n);
	if ((g = genesis_counter(a->db)) < 0) {
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
	if (newest != anchor) {
		snprintf(err, errlen, "the anchor's counter is %" PRIu64 " but "
		    "the newest checkpoint has %" PRIu64, anchor, newest);
		set_broken(a, err);
		return -1;
	}
	next = anchor + 1;
	if ((n = cp_message(msg, sizeof(msg), a->head_seq, a->head_hash, next,
	    (long long)now)) == -1 || anchor_sign(a->anchor,
	    (const unsigned char *)msg, (size_t)n, &sig, &siglen, err,
	    errlen) == -1)
		goto out;
	if (exec(a->db, "BEGIN IMMEDIATE", err, errlen) == -1)
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
		dberr(a->db, err, errlen, "checkpoint");
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	if (exec(a->db, "COMMIT", err, errlen) == -1) {
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	/* Committed first, counted after: see audit.h. */
	if (anchor_counter_increment(a->anchor, &after, err, errlen) == -1)
		goto out;
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
	if ((ev = audit_event("audit_log_created", NULL)) == NULL ||
	    json_object_set_new(ev, "counter", json_integer((json_int_t)c)) ||
	    json_object_set_new(ev, "anchor", json_string(anchor_mode_name(
	    a->anchor))) || json_object_set_new(ev, "anchor_in_hardware",
	    json_boolean(anchor_is_hardware(a->anchor)))) {
		json_decref(ev);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (exec(a->db, "BEGIN IMMEDIATE", err, errlen) == -1) {
		json_decref(ev);
		return -1;
	}
	rc = audit_append(a, ev, NULL, err, errlen);
	json_decref(ev);
	if (rc == -1 || exec(a->db, "COMMIT", err, errlen) == -1) {
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
	a->cp_seq = cp_seq;
	a->cp_time = cp_time != 0 ? cp_time : time(NULL);
	if (verify_db(a->db, anchor_hmac_key(a->anchor),
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
	if (hasher_init(&a->h, anchor_hmac_key(anchor), err, errlen) == -1)
		goto fail;
	if (exec(db, audit_schema, err, errlen) == -1)
		goto fail;
	if (sqlite3_prepare_v2(db, "INSERT INTO audit_log(seq, record, "
	    "prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?)", -1, &a->ins,
	    NULL) != SQLITE_OK) {
		dberr(db, err, errlen, "prepare");
		goto fail;
	}
	if (db_head(db, &a->head_seq, a->head_hash, err, errlen) == -1)
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
	hasher_free(&a->h);
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
	if (verify_db(a->db, anchor_hmac_key(a->anchor),
	    anchor_pubkey(a->anchor), &c, 0, v, v->reason,
	    sizeof(v->reason)) == -1)
		return -1;
	/* The tail the signer wrote and no checkpoint covers yet. */
	if (v->ok && db_head(a->db, &dbseq, dbh, v->reason,
	    sizeof(v->reason)) == 0 && dbseq < a->head_seq)
		verdict_fail(v, dbseq + 1, "records %lld to %lld are missing: "
		    "the signer wrote them but the log ends at record %lld",
		    dbseq + 1, a->head_seq, dbseq);
	if (v->ok && a->broken[0] != '\0')
		verdict_fail(v, a->head_seq, "%s", a->broken);
	return 0;
}

int
audit_verify_file(const char *path, EVP_PKEY *pub, struct audit_verdict *v)
{
	sqlite3 *db = NULL;
	char uri[4200];
	int rc = -1;

	memset(v, 0, sizeof(*v));
	snprintf(uri, sizeof(uri), "file:%s?mode=ro", path);
	if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
	    NULL) != SQLITE_OK) {
		snprintf(v->reason, sizeof(v->reason), "%s: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : "cannot open");
		goto out;
	}
	sqlite3_busy_timeout(db, 5000);
	rc = verify_db(db, NULL, pub, NULL, 0, v, v->reason, sizeof(v->reason));
out:
	sqlite3_close(db);
	return rc;
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
		dberr(a->db, err, errlen, "list");
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
			hex(sqlite3_column_blob(st, 2), AUDIT_HASH_LEN, ph);
		if (sqlite3_column_bytes(st, 3) == AUDIT_HASH_LEN)
			hex(sqlite3_column_blob(st, 3), AUDIT_HASH_LEN, hh);
		o = json_pack("{s:I, s:o, s:s, s:s}", "seq",
		    (json_int_t)sqlite3_column_int64(st, 0), "record", rec,
		    "prev_hash", ph, "hash", hh);
		if (o == NULL || json_array_append_new(arr, o) == -1)
			goto nomem;
		used += len + 256;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		dberr(a->db, err, errlen, "list");
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
	char err[256];
	uint64_t c = 0;
	int have = anchor_counter_read(a->anchor, &c, err, sizeof(err)) == 0;

	return json_pack("{s:s, s:b, s:I, s:I, s:I, s:s}",
	    "mode", anchor_mode_name(a->anchor),
	    "in_hardware", anchor_is_hardware(a->anchor),
	    "records", (json_int_t)a->head_seq,
	    "last_checkpoint_record", (json_int_t)a->cp_seq,
	    "counter", have ? (json_int_t)c : (json_int_t)-1,
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
