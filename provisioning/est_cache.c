/*
 * est_cache: enrolments in SQLite (see est_cache.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "est_cache.h"

#define STMT_CACHE	16

struct est_cache {
	sqlite3	*db;
	char	 err[256];
	/* Prepared statements by the address of their SQL text (a literal
	 * per call site): compiling them is most of a lookup's cost. */
	struct {
		const char	*sql;
		sqlite3_stmt	*st;
	}	 stmts[STMT_CACHE];
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS enrolment ("
	" hash TEXT PRIMARY KEY,"
	" csr BLOB NOT NULL,"
	" names TEXT NOT NULL,"
	" who TEXT NOT NULL,"
	" label TEXT NOT NULL DEFAULT '',"
	" state TEXT NOT NULL CHECK (state IN ('queued','ordered','done','failed')),"
	" order_url TEXT,"
	" chain TEXT,"
	" p7 TEXT,"
	" not_after INTEGER NOT NULL DEFAULT 0,"
	" status INTEGER NOT NULL DEFAULT 0,"
	" detail TEXT NOT NULL DEFAULT '',"
	" retry_after INTEGER NOT NULL DEFAULT 0,"
	" next_at INTEGER NOT NULL DEFAULT 0,"
	" lease INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL,"
	" updated INTEGER NOT NULL);"
	"DROP INDEX IF EXISTS enrolment_due;"
	"CREATE INDEX IF NOT EXISTS enrolment_pending ON enrolment (next_at) "
	" WHERE state IN ('queued','ordered');";

#define COLUMNS "hash, csr, names, who, label, state, order_url, chain, " \
	"not_after, status, detail, retry_after, next_at, created, p7"

static int __attribute__((format(printf, 2, 3)))
fail(struct est_cache *c, const char *fmt, ...)
{
	va_list ap;
	char what[128];

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(c->err, sizeof(c->err), "cache.db: %s: %s", what,
	    sqlite3_errmsg(c->db));
	return -1;
}

const char *
est_cache_error(const struct est_cache *c)
{
	return c->err;
}

struct est_cache *
est_cache_open(const char *path, char *err, size_t errlen)
{
	struct est_cache *c;
	char *msg = NULL;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, c->db != NULL ?
		    sqlite3_errmsg(c->db) : "cannot open");
		est_cache_close(c);
		return NULL;
	}
	if (sqlite3_busy_timeout(c->db, 10000) != SQLITE_OK ||
	    sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; "
	    "PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(c->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, msg != NULL ? msg :
		    sqlite3_errmsg(c->db));
		sqlite3_free(msg);
		est_cache_close(c);
		return NULL;
	}
	return c;
}

void
est_cache_close(struct est_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < STMT_CACHE && c->stmts[i].sql != NULL; i++)
		(void)sqlite3_finalize(c->stmts[i].st);
	(void)sqlite3_close(c->db);
	free(c);
}

void
est_row_clear(struct est_row *r)
{
	free(r->csr);
	free(r->names);
	free(r->who);
	free(r->label);
	free(r->order_url);
	free(r->chain);
	free(r->p7);
	free(r->detail);
	memset(r, 0, sizeof(*r));
}

static char *
col_text(sqlite3_stmt *st, int i, int *oom)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	char *s;

	if (t == NULL)
		return NULL;
	if ((s = strdup((const char *)t)) == NULL)
		*oom = 1;
	return s;
}

static enum est_state
state_of(const char *s)
{
	if (s == NULL)
		return 0;
	if (strcmp(s, "queued") == 0)
		return EST_QUEUED;
	if (strcmp(s, "ordered") == 0)
		return EST_ORDERED;
	if (strcmp(s, "done") == 0)
		return EST_DONE;
	if (strcmp(s, "failed") == 0)
		return EST_FAILED;
	return 0;
}

/* A row in COLUMNS order. */
static int
read_row(struct est_cache *c, sqlite3_stmt *st, struct est_row *r)
{
	const void *blob;
	int oom = 0, n;

	memset(r, 0, sizeof(*r));
	snprintf(r->hash, sizeof(r->hash), "%s",
	    (const char *)sqlite3_column_text(st, 0));
	blob = sqlite3_column_blob(st, 1);
	n = sqlite3_column_bytes(st, 1);
	if (n > 0 && blob != NULL) {
		if ((r->csr = malloc((size_t)n)) == NULL)
			oom = 1;
		else {
			memcpy(r->csr, blob, (size_t)n);
			r->csrlen = (size_t)n;
		}
	}
	r->names = col_text(st, 2, &oom);
	r->who = col_text(st, 3, &oom);
	r->label = col_text(st, 4, &oom);
	r->state = state_of((const char *)sqlite3_column_text(st, 5));
	r->order_url = col_text(st, 6, &oom);
	r->chain = col_text(st, 7, &oom);
	r->not_after = sqlite3_column_int64(st, 8);
	r->status = sqlite3_column_int(st, 9);
	r->detail = col_text(st, 10, &oom);
	r->retry_after = sqlite3_column_int(st, 11);
	r->next_at = sqlite3_column_int64(st, 12);
	r->created = sqlite3_column_int64(st, 13);
	r->p7 = col_text(st, 14, &oom);
	if (oom || r->state == 0 || r->names == NULL || r->who == NULL) {
		est_row_clear(r);
		snprintf(c->err, sizeof(c->err), "cache.db: %s",
		    oom ? "out of memory" : "a row is damaged");
		return -1;
	}
	return 0;
}

/* A statement ready to bind: the cached one for this SQL text, or a new
 * one; give it back with done(). */
static sqlite3_stmt *
prep(struct est_cache *c, const char *sql)
{
	sqlite3_stmt *st = NULL;
	size_t i;

	for (i = 0; i < STMT_CACHE && c->stmts[i].sql != NULL; i++)
		if (c->stmts[i].sql == sql)
			return c->stmts[i].st;
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
		fail(c, "prepare");
		return NULL;
	}
	if (i < STMT_CACHE) {
		c->stmts[i].sql = sql;
		c->stmts[i].st = st;
	}
	return st;
}

/* A statement is done with: reset and kept if cached, else finalized.
 * The result of its last step is what counts, so this returns nothing. */
static void
done(struct est_cache *c, sqlite3_stmt *st)
{
	size_t i;

	for (i = 0; i < STMT_CACHE && c->stmts[i].sql != NULL; i++)
		if (c->stmts[i].st == st) {
			(void)sqlite3_reset(st);
			(void)sqlite3_clear_bindings(st);
			return;
		}
	(void)sqlite3_finalize(st);
}

int
est_cache_get(struct est_cache *c, const char *hash, struct est_row *r)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = prep(c, "SELECT " COLUMNS " FROM enrolment WHERE hash = ?")) == NULL)
		return -1;
	if (sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) != SQLITE_OK) {
		done(c, st);
		return fail(c, "bind");
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = read_row(c, st, r) == 0 ? 1 : -1;
	else if (rc == SQLITE_DONE)
		rc = 0;
	else
		rc = fail(c, "select");
	done(c, st);
	return rc;
}

int
est_cache_add(struct est_cache *c, const char *hash, const unsigned char *csr,
    size_t csrlen, const char *names, const char *who, const char *label,
    long long now)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = prep(c, "INSERT OR IGNORE INTO enrolment (hash, csr, names, "
	    "who, label, state, next_at, created, updated) "
	    "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)")) == NULL)
		return -1;
	if (sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, csr, (int)csrlen, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, names, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 4, who, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 5, label, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 6, now) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 7, now) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 8, now) != SQLITE_OK) {
		done(c, st);
		return fail(c, "bind");
	}
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		rc = fail(c, "insert");
	else
		rc = sqlite3_changes(c->db) == 1 ? 1 : 0;
	done(c, st);
	return rc;
}

/* Run an update of one row: bind hash last as ?1, the rest by the caller. */
static int
run_update(struct est_cache *c, sqlite3_stmt *st, const char *what)
{
	int rc;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		rc = fail(c, "%s", what);
	else
		rc = 0;
	done(c, st);
	return rc;
}

/* One statement without rows; 0 or -1. */
static int
exec_sql(struct est_cache *c, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(c->err, sizeof(c->err), "cache.db: %s: %s", sql,
		    msg != NULL ? msg : sqlite3_errmsg(c->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
est_cache_claim(struct est_cache *c, long long now, int lease, struct est_row *r)
{
	sqlite3_stmt *st;
	char hash[65];
	int rc;

	/*
	 * Chosen and leased in one write transaction, so that two workers
	 * never take the same row.  The partial index keeps both statements
	 * free of sorters and temporary tables: this runs whenever a worker
	 * wakes up.
	 */
	if (exec_sql(c, "BEGIN IMMEDIATE") == -1)
		return -1;
	if ((st = prep(c, "SELECT hash FROM enrolment WHERE state IN "
	    "('queued','ordered') AND next_at <= ?1 AND lease <= ?1 "
	    "ORDER BY next_at LIMIT 1")) == NULL)
		goto rollback;
	if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK) {
		done(c, st);
		fail(c, "bind");
		goto rollback;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(hash, sizeof(hash), "%s",
		    (const char *)sqlite3_column_text(st, 0));
	done(c, st);
	if (rc == SQLITE_DONE) {
		if (exec_sql(c, "COMMIT") == -1)
			goto rollback;
		return 0;
	}
	if (rc != SQLITE_ROW) {
		fail(c, "claim");
		goto rollback;
	}
	if ((st = prep(c, "UPDATE enrolment SET lease = ?2 WHERE hash = ?1")) == NULL)
		goto rollback;
	if (sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now + lease) != SQLITE_OK) {
		done(c, st);
		fail(c, "bind");
		goto rollback;
	}
	if (run_update(c, st, "lease") == -1 || exec_sql(c, "COMMIT") == -1)
		goto rollback;
	/* Leased, so no worker touches it; only a worker ends a row. */
	if ((rc = est_cache_get(c, hash, r)) == 0) {
		snprintf(c->err, sizeof(c->err), "cache.db: a claimed row vanished");
		return -1;
	}
	return rc;
rollback:
	(void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

long long
est_cache_next_due(struct est_cache *c)
{
	sqlite3_stmt *st;
	long long t = -1;

	if ((st = prep(c, "SELECT min(max(next_at, lease)) FROM enrolment "
	    "WHERE state IN ('queued','ordered')")) == NULL)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		t = sqlite3_column_int64(st, 0);
	done(c, st);
	return t;
}

int
est_cache_set_ordered(struct est_cache *c, const char *hash,
    const char *order_url, long long now)
{
	sqlite3_stmt *st;

	if ((st = prep(c, "UPDATE enrolment SET state = 'ordered', "
	    "order_url = ?2, updated = ?3 WHERE hash = ?1")) == NULL)
		return -1;
	if (sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, order_url, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, now) != SQLITE_OK) {
		done(c, st);
		return fail(c, "bind");
	}
	return run_update(c, st, "store the order URL");
}

int
est_cache_set_wait(struct est_cache *c, const char *hash, long long next_at,
    const char *note)
{
	sqlite3_stmt *st;

	if ((st = prep(c, "UPDATE enrolment SET next_at = ?2, lease = 0, "
	    "detail = ?3, updated = strftime('%s','now') WHERE hash = ?1")) == NULL)
		return -1;
	if (sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, next_at) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, note != NULL ? note : "", -1,
	    SQLITE_STATIC) != SQLITE_OK) {
		done(c, st);
		return fail(c, "bind");
	}
	return run_update(c, st, "reschedule");
}

int
est_cache_set_done(struct est_cache *c, const char *hash, const char *chain,
    const char *p7, long long not_after)
{
	sqlite3_stmt *st;

	if ((st = prep(c, "UPDATE enrolment SET state = 'done', chain = ?2, "
	    "p7 = ?4, not_after = ?3, lease = 0, detail = '', "
	    "updated = strftime('%s','now') WHERE hash = ?1")) == NULL)
		return -1;
	if (sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, chain, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, not_after) != SQLITE_OK ||
	    sqlite3_bind_text(st, 4, p7, -1, SQLITE_STATIC) != SQLITE_OK) {
		done(c, st);
		return fail(c, "bind");
	}
	return run_update(c, st, "store the certificate");
}

int
est_cache_set_failed(struct est_cache *c, const char *hash, int status,
    const char *detail, int retry_after)
{
	sqlite3_stmt *st;

	if ((st = prep(c, "UPDATE enrolment SET state = 'failed', status = ?2, "
	    "detail = ?3, retry_after = ?4, lease = 0, "
	    "updated = strftime('%s','now') WHERE hash = ?1")) == NULL)
		return -1;
	if (sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, status) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, detail, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(st, 4, retry_after) != SQLITE_OK) {
		done(c, st);
		return fail(c, "bind");
	}
	return run_update(c, st, "store the failure");
}

int
est_cache_hurry(struct est_cache *c, const char *hash, long long now)
{
	sqlite3_stmt *st;

	if ((st = prep(c, "UPDATE enrolment SET next_at = ?2 WHERE hash = ?1 "
	    "AND state IN ('queued','ordered') AND next_at > ?2")) == NULL)
		return -1;
	if (sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now) != SQLITE_OK) {
		done(c, st);
		return fail(c, "bind");
	}
	return run_update(c, st, "hurry");
}

int
est_cache_delete(struct est_cache *c, const char *hash)
{
	sqlite3_stmt *st;

	if ((st = prep(c, "DELETE FROM enrolment WHERE hash = ?1")) == NULL)
		return -1;
	if (sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) != SQLITE_OK) {
		done(c, st);
		return fail(c, "bind");
	}
	return run_update(c, st, "delete");
}

int
est_cache_purge(struct est_cache *c, long long now, long long max_age)
{
	sqlite3_stmt *st;

	if ((st = prep(c, "DELETE FROM enrolment WHERE (state = 'done' AND "
	    "not_after <= ?1) OR (state = 'failed' AND updated <= ?1 - ?2)")) == NULL)
		return -1;
	if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, max_age) != SQLITE_OK) {
		done(c, st);
		return fail(c, "bind");
	}
	return run_update(c, st, "purge");
}

int
est_cache_release_all(struct est_cache *c)
{
	char *msg = NULL;

	if (sqlite3_exec(c->db, "UPDATE enrolment SET lease = 0", NULL, NULL,
	    &msg) != SQLITE_OK) {
		snprintf(c->err, sizeof(c->err), "cache.db: %s",
		    msg != NULL ? msg : "release leases");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}
