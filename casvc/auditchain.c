/*
 * auditchain: the audit log's hash chain and its verifier (see auditchain.h
 * and, for the format, audit.h).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "auditchain.h"

#define HASH_DOMAIN	"iotca-audit-v1"	/* with its NUL */
#define CP_PREFIX	"iotca-audit-checkpoint"

void
chain_hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

int
chain_dberr(sqlite3 *db, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "audit log: %s: %s", what, sqlite3_errmsg(db));
	return -1;
}

int
chain_ossl_err(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "audit log: %s failed", what);
	ERR_clear_error();
	return -1;
}

void
chain_hasher_free(struct chain_hasher *h)
{
	EVP_MD_CTX_free(h->mdctx);
	EVP_MD_free(h->md);
	EVP_MAC_CTX_free(h->macctx);
	EVP_MAC_free(h->mac);
	memset(h, 0, sizeof(*h));
}

int
chain_hasher_init(struct chain_hasher *h, const unsigned char *key, char *err,
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
	    EVP_MAC_init(h->macctx, key, CHAIN_MAC_KEY_LEN, params) != 1)
		goto fail;
	return 0;
fail:
	chain_hasher_free(h);
	return chain_ossl_err(err, errlen, "SHA-384/HMAC setup");
}

int
chain_hash(struct chain_hasher *h, long long seq, const unsigned char *prev,
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

int
chain_mac(struct chain_hasher *h, const unsigned char *hash,
    unsigned char out[AUDIT_HASH_LEN])
{
	size_t n = 0;

	/* A NULL key re-uses the one given at chain_hasher_init(). */
	if (EVP_MAC_init(h->macctx, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(h->macctx, hash, AUDIT_HASH_LEN) != 1 ||
	    EVP_MAC_final(h->macctx, out, &n, AUDIT_HASH_LEN) != 1 ||
	    n != AUDIT_HASH_LEN)
		return -1;
	return 0;
}

int
chain_cp_message(char *buf, size_t buflen, long long head_seq,
    const unsigned char *head_hash, uint64_t counter, long long created)
{
	char hx[2 * AUDIT_HASH_LEN + 1];
	int n;

	chain_hex(head_hash, AUDIT_HASH_LEN, hx);
	n = snprintf(buf, buflen, CP_PREFIX "|%lld|%s|%" PRIu64 "|%lld",
	    head_seq, hx, counter, created);
	return n > 0 && (size_t)n < buflen ? n : -1;
}

int
chain_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return chain_dberr(db, err, errlen, sql);
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
		chain_dberr(db, err, errlen, "count");
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else
		chain_dberr(db, err, errlen, "count");
	sqlite3_finalize(st);
	return n;
}

int
chain_head(sqlite3 *db, long long *seq, unsigned char *hash, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	*seq = 0;
	memset(hash, 0, AUDIT_HASH_LEN);
	if (sqlite3_prepare_v2(db, "SELECT seq, hash FROM audit_log ORDER BY "
	    "seq DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return chain_dberr(db, err, errlen, "head");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == AUDIT_HASH_LEN)
			memcpy(hash, sqlite3_column_blob(st, 1), AUDIT_HASH_LEN);
	} else if (rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		return chain_dberr(db, err, errlen, "head");
	}
	sqlite3_finalize(st);
	return 0;
}

void
chain_free_checkpoints(struct chain_checkpoint *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(c[i].sig);
	free(c);
}

int
chain_load_checkpoints(sqlite3 *db, int newest_only,
    struct chain_checkpoint **out, size_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	struct chain_checkpoint *c = NULL, *nc;
	size_t cnt = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, newest_only ?
	    "SELECT id, head_seq, head_hash, counter, created, signature FROM "
	    "audit_checkpoints ORDER BY id DESC LIMIT 1" :
	    "SELECT id, head_seq, head_hash, counter, created, signature FROM "
	    "audit_checkpoints ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return chain_dberr(db, err, errlen, "checkpoints");
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
		chain_free_checkpoints(c, cnt);
		return chain_dberr(db, err, errlen, "checkpoints");
	}
	*out = c;
	*n = cnt;
	return 0;
nomem:
	sqlite3_finalize(st);
	chain_free_checkpoints(c, cnt);
	snprintf(err, errlen, "out of memory");
	return -1;
}

void
chain_verdict_fail(struct audit_verdict *v, long long seq, const char *fmt, ...)
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
check_signature(EVP_PKEY *pub, const struct chain_checkpoint *c)
{
	char msg[256];
	EVP_MD_CTX *ctx;
	int n, ok;

	if ((n = chain_cp_message(msg, sizeof(msg), c->head_seq, c->head_hash,
	    c->counter, c->created)) == -1 || (ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestVerifyInit_ex(ctx, NULL, "SHA384", NULL, NULL, pub,
	    NULL) == 1 && EVP_DigestVerify(ctx, c->sig, c->siglen,
	    (const unsigned char *)msg, (size_t)n) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

long long
chain_genesis_counter(sqlite3 *db)
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
walk_records(sqlite3 *db, struct chain_hasher *h, long long from,
    struct chain_checkpoint *cp, size_t ncp, long long *last_seq,
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
		return chain_dberr(db, err, errlen, "read");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		seq = sqlite3_column_int64(st, 0);
		rec = (const char *)sqlite3_column_text(st, 1);
		ph = sqlite3_column_blob(st, 2);
		hh = sqlite3_column_blob(st, 3);
		mh = sqlite3_column_blob(st, 4);
		if (seq != expect) {
			chain_verdict_fail(v, expect, "record %lld is missing (the log "
			    "goes from record %lld to record %lld): deleted",
			    expect, expect - 1, seq);
			break;
		}
		if (rec == NULL || sqlite3_column_bytes(st, 2) != AUDIT_HASH_LEN ||
		    sqlite3_column_bytes(st, 3) != AUDIT_HASH_LEN ||
		    sqlite3_column_bytes(st, 4) != AUDIT_HASH_LEN) {
			chain_verdict_fail(v, seq, "record %lld is damaged (a hash or MAC "
			    "column has the wrong size)", seq);
			break;
		}
		/* The first record of a partial walk is vouched for by its
		 * checkpoint below; from then on each must follow the last. */
		if ((!first || from == 1) && memcmp(ph, prev, AUDIT_HASH_LEN) != 0) {
			chain_verdict_fail(v, seq, "record %lld does not follow record "
			    "%lld (its prev_hash differs): records were removed, "
			    "inserted or reordered", seq, seq - 1);
			break;
		}
		if (chain_hash(h, seq, ph, rec, (size_t)sqlite3_column_bytes(st, 1),
		    calc) == -1) {
			sqlite3_finalize(st);
			return chain_ossl_err(err, errlen, "SHA-384");
		}
		if (memcmp(calc, hh, AUDIT_HASH_LEN) != 0) {
			chain_verdict_fail(v, seq, "record %lld was altered: its content "
			    "does not match its hash", seq);
			break;
		}
		if (h->macctx != NULL) {
			if (chain_mac(h, calc, mac) == -1) {
				sqlite3_finalize(st);
				return chain_ossl_err(err, errlen, "HMAC");
			}
			if (CRYPTO_memcmp(mac, mh, AUDIT_HASH_LEN) != 0) {
				chain_verdict_fail(v, seq, "record %lld has a bad MAC: it "
				    "was forged or re-hashed without the sealed key",
				    seq);
				break;
			}
		}
		while (j < ncp && cp[j].head_seq <= seq) {
			if (cp[j].head_seq == seq) {
				if (memcmp(cp[j].head_hash, calc,
				    AUDIT_HASH_LEN) != 0) {
					chain_verdict_fail(v, seq, "record %lld does not "
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
		return chain_dberr(db, err, errlen, "read");
	}
	sqlite3_finalize(st);
	return 0;
}

int
chain_verify(sqlite3 *db, const unsigned char *key, EVP_PKEY *pub,
    const uint64_t *counter, int quick, struct audit_verdict *v, char *err,
    size_t errlen)
{
	struct chain_hasher h;
	struct chain_checkpoint *cp = NULL;
	size_t ncp = 0, i;
	long long from = 1, last = 0, total, gen;
	uint64_t newest;
	int rc = -1;

	memset(v, 0, sizeof(*v));
	v->ok = 1;
	if (chain_hasher_init(&h, key, err, errlen) == -1)
		return -1;
	v->macs_checked = key != NULL;
	/* One snapshot: a concurrent writer cannot make us see half a change. */
	if (chain_exec(db, "BEGIN", err, errlen) == -1)
		goto out;
	if ((total = audit_count(db, err, errlen)) == -1 ||
	    chain_load_checkpoints(db, quick, &cp, &ncp, err, errlen) == -1)
		goto out;
	if (total == 0) {
		chain_verdict_fail(v, 1, "the audit log is empty: record 1 is missing");
		rc = 0;
		goto out;
	}
	gen = chain_genesis_counter(db);
	if (quick && ncp > 0 && cp[0].head_seq >= 1)
		from = cp[0].head_seq;

	for (i = 0; i < ncp; i++) {
		if (!check_signature(pub, &cp[i]))
			chain_verdict_fail(v, cp[i].head_seq, "checkpoint %lld (record "
			    "%lld, counter %" PRIu64 ") has a bad signature",
			    cp[i].id, cp[i].head_seq, cp[i].counter);
		if (quick)
			continue;
		if (i > 0 && cp[i].head_seq < cp[i - 1].head_seq)
			chain_verdict_fail(v, cp[i].head_seq, "checkpoint %lld goes "
			    "back to record %lld", cp[i].id, cp[i].head_seq);
		if (i > 0 && cp[i].counter != cp[i - 1].counter + 1)
			chain_verdict_fail(v, cp[i - 1].head_seq + 1, "checkpoints are "
			    "missing after record %lld: the counter jumps from "
			    "%" PRIu64 " to %" PRIu64 " at checkpoint %lld",
			    cp[i - 1].head_seq, cp[i - 1].counter, cp[i].counter,
			    cp[i].id);
		if (i == 0 && gen >= 0 && cp[0].counter != (uint64_t)gen + 1)
			chain_verdict_fail(v, 1, "checkpoint %lld has counter %" PRIu64
			    " but the log was created at counter %lld: earlier "
			    "checkpoints are missing", cp[0].id, cp[0].counter, gen);
	}
	if (walk_records(db, &h, from, cp, ncp, &last, v, err, errlen) == -1)
		goto out;
	for (i = 0; i < ncp; i++) {
		if (!cp[i].hash_ok && cp[i].head_seq > last) {
			chain_verdict_fail(v, last + 1, "records %lld to %lld are "
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
			chain_verdict_fail(v, last + 1, "the anchor's counter is %"
			    PRIu64 " but the newest checkpoint has %" PRIu64
			    ": the log was rolled back to an older copy, or "
			    "records and checkpoints after record %lld were "
			    "removed", *counter, newest, last);
		else if (newest > *counter + 1)
			chain_verdict_fail(v, ncp > 0 ? cp[ncp - 1].head_seq : 1,
			    "the newest checkpoint has counter %" PRIu64 ", ahead "
			    "of the anchor's %" PRIu64 ": this log was not written "
			    "with this TPM or counter file", newest, *counter);
	}
	rc = 0;
out:
	(void)sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	chain_free_checkpoints(cp, ncp);
	chain_hasher_free(&h);
	return rc;
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
	rc = chain_verify(db, NULL, pub, NULL, 0, v, v->reason, sizeof(v->reason));
out:
	sqlite3_close(db);
	return rc;
}
