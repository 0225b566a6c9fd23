/*
 * signerdb: signer.db access (see signerdb.h).  Statements are prepared per
 * call except the insert on the issuance path, which is kept.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "signerdb.h"

#define SCHEMA_VERSION	1

struct signerdb {
	sqlite3		*db;
	sqlite3_stmt	*insert;
};

static const char *schema =
    "CREATE TABLE IF NOT EXISTS meta ("
    " key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS certs ("
    " serial TEXT PRIMARY KEY,"
    " device_id TEXT NOT NULL,"
    " names TEXT NOT NULL,"
    " account TEXT,"
    " requested_by TEXT NOT NULL,"
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " issued_at INTEGER NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),"
    " revoked_at INTEGER,"
    " reason INTEGER,"
    " pem TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS certs_device ON certs(device_id);"
    "CREATE TABLE IF NOT EXISTS approvals ("
    " id INTEGER PRIMARY KEY,"
    " device_id TEXT NOT NULL,"
    " account TEXT NOT NULL,"
    " names TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN"
    "  ('pending', 'approved', 'denied', 'revoked')),"
    " requested_at INTEGER NOT NULL,"
    " requested_by TEXT NOT NULL,"
    " decided_at INTEGER,"
    " decided_by TEXT,"
    " reason TEXT,"
    " csr TEXT);"
    "CREATE INDEX IF NOT EXISTS approvals_device ON approvals(device_id, account);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', 1);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('crl_number', 0);";

static int
dberr(struct signerdb *s, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "signer.db: %s: %s", what, sqlite3_errmsg(s->db));
	return -1;
}

/* Create the file ourselves so it is 0600 from its first byte. */
static int
create_private(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (close(fd) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

struct signerdb *
signerdb_open(const char *path, char *err, size_t errlen)
{
	struct signerdb *s;
	sqlite3_stmt *st = NULL;
	int version = -1;

	if (create_private(path, err, errlen) == -1)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		dberr(s, err, errlen, "open");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* WAL keeps readers (iotca status on a copy, backups) off the writer's
	 * back; FULL sync because a certificate handed out must stay on record. */
	if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
	    NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		dberr(s, err, errlen, "schema");
		goto fail;
	}
	if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = "
	    "'schema_version'", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		dberr(s, err, errlen, "schema version");
		goto fail;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (version != SCHEMA_VERSION) {
		snprintf(err, errlen, "signer.db: schema version %d, this "
		    "signer knows %d", version, SCHEMA_VERSION);
		goto fail;
	}
	if (sqlite3_prepare_v2(s->db, "INSERT INTO certs(serial, device_id, "
	    "names, account, requested_by, not_before, not_after, issued_at, "
	    "status, pem) VALUES (?, ?, ?, ?, ?, ?, ?, strftime('%s','now'), "
	    "'valid', ?)", -1, &s->insert, NULL) != SQLITE_OK) {
		dberr(s, err, errlen, "prepare");
		goto fail;
	}
	return s;
fail:
	sqlite3_finalize(st);
	signerdb_close(s);
	return NULL;
}

void
signerdb_close(struct signerdb *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->insert);
	sqlite3_close(s->db);
	free(s);
}

int
signerdb_insert_cert(struct signerdb *s, const struct cert_record *r,
    char *err, size_t errlen)
{
	sqlite3_stmt *st = s->insert;
	char *names;
	int rc;

	if ((names = json_dumps(r->names, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (sqlite3_bind_text(st, 1, r->serial_hex, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 2, r->device_id, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 3, names, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 4, r->account, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 5, r->requested_by, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(st, 6, (sqlite3_int64)r->not_before) ||
	    sqlite3_bind_int64(st, 7, (sqlite3_int64)r->not_after) ||
	    sqlite3_bind_text(st, 8, r->pem, -1, SQLITE_STATIC)) {
		rc = dberr(s, err, errlen, "bind");
		goto out;
	}
	switch (sqlite3_step(st)) {
	case SQLITE_DONE:
		rc = 0;
		break;
	case SQLITE_CONSTRAINT:
		rc = SIGNERDB_DUPLICATE;
		break;
	default:
		rc = dberr(s, err, errlen, "insert certificate");
		break;
	}
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	free(names);
	return rc;
}

static json_t *
row_to_json(sqlite3_stmt *st, int with_pem)
{
	json_t *o, *names;
	json_error_t jerr;
	const char *n = (const char *)sqlite3_column_text(st, 2);

	names = n != NULL ? json_loads(n, 0, &jerr) : NULL;
	if (names == NULL)
		names = json_array();
	o = json_pack("{s:s, s:s, s:o, s:s?, s:s, s:I, s:I, s:I, s:s}",
	    "serial", (const char *)sqlite3_column_text(st, 0),
	    "device_id", (const char *)sqlite3_column_text(st, 1),
	    "names", names,
	    "account", (const char *)sqlite3_column_text(st, 3),
	    "requested_by", (const char *)sqlite3_column_text(st, 4),
	    "not_before", (json_int_t)sqlite3_column_int64(st, 5),
	    "not_after", (json_int_t)sqlite3_column_int64(st, 6),
	    "issued_at", (json_int_t)sqlite3_column_int64(st, 7),
	    "status", (const char *)sqlite3_column_text(st, 8));
	if (o == NULL)
		return NULL;
	if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
		if (json_object_set_new(o, "revoked_at",
		    json_integer(sqlite3_column_int64(st, 9))) == -1 ||
		    json_object_set_new(o, "reason",
		    json_string(certgen_reason_name(sqlite3_column_int(st, 10)))) == -1) {
			json_decref(o);
			return NULL;
		}
	}
	if (with_pem && json_object_set_new(o, "pem",
	    json_string((const char *)sqlite3_column_text(st, 11))) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

#define CERT_COLUMNS "serial, device_id, names, account, requested_by, " \
	"not_before, not_after, issued_at, status, revoked_at, reason, pem"

json_t *
signerdb_list_certs(struct signerdb *s, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	json_t *arr, *o;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT " CERT_COLUMNS " FROM certs "
	    "ORDER BY issued_at DESC, rowid DESC", -1, &st, NULL) != SQLITE_OK) {
		dberr(s, err, errlen, "list");
		return NULL;
	}
	if ((arr = json_array()) == NULL)
		goto nomem;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((o = row_to_json(st, 0)) == NULL ||
		    json_array_append_new(arr, o) == -1)
			goto nomem;
	}
	if (rc != SQLITE_DONE) {
		dberr(s, err, errlen, "list");
		json_decref(arr);
		arr = NULL;
	}
	sqlite3_finalize(st);
	return arr;
nomem:
	snprintf(err, errlen, "out of memory");
	json_decref(arr);
	sqlite3_finalize(st);
	return NULL;
}

json_t *
signerdb_get_cert(struct signerdb *s, const char *serial_hex, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;
	json_t *o = NULL;
	int rc;

	err[0] = '\0';
	if (sqlite3_prepare_v2(s->db, "SELECT " CERT_COLUMNS " FROM certs "
	    "WHERE serial = ?", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, serial_hex, -1, SQLITE_STATIC) != SQLITE_OK) {
		dberr(s, err, errlen, "get");
		sqlite3_finalize(st);
		return NULL;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if ((o = row_to_json(st, 1)) == NULL)
			snprintf(err, errlen, "out of memory");
	} else if (rc != SQLITE_DONE)
		dberr(s, err, errlen, "get");
	sqlite3_finalize(st);
	return o;
}

int
signerdb_revoke(struct signerdb *s, const char *serial_hex, int reason,
    time_t when, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	const char *status;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT status FROM certs WHERE serial = ?",
	    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, serial_hex, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		return dberr(s, err, errlen, "revoke");
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return SIGNERDB_NOT_FOUND;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return dberr(s, err, errlen, "revoke");
	}
	status = (const char *)sqlite3_column_text(st, 0);
	rc = status != NULL && strcmp(status, "revoked") == 0;
	sqlite3_finalize(st);
	if (rc)
		return SIGNERDB_ALREADY;

	if (sqlite3_prepare_v2(s->db, "UPDATE certs SET status = 'revoked', "
	    "revoked_at = ?, reason = ? WHERE serial = ? AND status = 'valid'",
	    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, (sqlite3_int64)when) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, reason) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, serial_hex, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		return dberr(s, err, errlen, "revoke");
	}
	rc = sqlite3_changes(s->db) == 1 ? 0 : SIGNERDB_ALREADY;
	sqlite3_finalize(st);
	return rc;
}

void
signerdb_free_revoked(struct crl_entry *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free((char *)e[i].serial_hex);
	free(e);
}

int
signerdb_revoked(struct signerdb *s, struct crl_entry **out, size_t *n,
    char *err, size_t errlen)
{
	sqlite3_stmt *st;
	struct crl_entry *e = NULL, *ne;
	size_t cnt = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	/* Expired certificates may leave the CRL (RFC 5280 5.1.2.6). */
	if (sqlite3_prepare_v2(s->db, "SELECT serial, revoked_at, reason FROM "
	    "certs WHERE status = 'revoked' AND not_after > strftime('%s','now') "
	    "ORDER BY revoked_at", -1, &st, NULL) != SQLITE_OK)
		return dberr(s, err, errlen, "revoked list");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			if ((ne = reallocarray(e, cap, sizeof(*e))) == NULL)
				goto nomem;
			e = ne;
		}
		e[cnt].serial_hex = strdup((const char *)sqlite3_column_text(st, 0));
		if (e[cnt].serial_hex == NULL)
			goto nomem;
		e[cnt].revoked_at = (time_t)sqlite3_column_int64(st, 1);
		e[cnt].reason = sqlite3_column_int(st, 2);
		cnt++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		signerdb_free_revoked(e, cnt);
		return dberr(s, err, errlen, "revoked list");
	}
	*out = e;
	*n = cnt;
	return 0;
nomem:
	sqlite3_finalize(st);
	signerdb_free_revoked(e, cnt);
	snprintf(err, errlen, "out of memory");
	return -1;
}

long
signerdb_next_crl_number(struct signerdb *s, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	long v = -1;

	if (sqlite3_prepare_v2(s->db, "UPDATE meta SET value = value + 1 WHERE "
	    "key = 'crl_number' RETURNING value", -1, &st, NULL) != SQLITE_OK) {
		dberr(s, err, errlen, "crl number");
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = (long)sqlite3_column_int64(st, 0);
	else
		dberr(s, err, errlen, "crl number");
	/* Step to completion so the update commits. */
	while (sqlite3_step(st) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	return v;
}

int
signerdb_counts(struct signerdb *s, long *valid, long *revoked, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(s->db, "SELECT "
	    "(SELECT count(*) FROM certs WHERE status = 'valid'), "
	    "(SELECT count(*) FROM certs WHERE status = 'revoked')",
	    -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return dberr(s, err, errlen, "counts");
	}
	*valid = (long)sqlite3_column_int64(st, 0);
	*revoked = (long)sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	return 0;
}

static int
exec_sql(struct signerdb *s, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return dberr(s, err, errlen, sql);
	return 0;
}

int
signerdb_begin(struct signerdb *s, char *err, size_t errlen)
{
	return exec_sql(s, "BEGIN IMMEDIATE", err, errlen);
}

int
signerdb_commit(struct signerdb *s, char *err, size_t errlen)
{
	return exec_sql(s, "COMMIT", err, errlen);
}

void
signerdb_rollback(struct signerdb *s)
{
	/* Fails harmlessly when no transaction is open. */
	(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

#define APPROVAL_COLUMNS "a.id, a.device_id, a.account, a.names, a.status, " \
	"a.requested_at, a.requested_by, a.decided_at, a.decided_by, a.reason, " \
	"EXISTS (SELECT 1 FROM approvals o WHERE o.device_id = a.device_id " \
	"AND o.account != a.account AND o.status = 'approved')"

static json_t *
approval_row(sqlite3_stmt *st)
{
	const char *n = (const char *)sqlite3_column_text(st, 3);
	json_error_t jerr;
	json_t *names, *o;

	names = n != NULL ? json_loads(n, 0, &jerr) : NULL;
	if (names == NULL)
		names = json_array();
	o = json_pack("{s:I, s:s, s:s, s:o, s:s, s:I, s:s, s:b}",
	    "id", (json_int_t)sqlite3_column_int64(st, 0),
	    "device_id", (const char *)sqlite3_column_text(st, 1),
	    "account", (const char *)sqlite3_column_text(st, 2),
	    "names", names,
	    "status", (const char *)sqlite3_column_text(st, 4),
	    "requested_at", (json_int_t)sqlite3_column_int64(st, 5),
	    "requested_by", (const char *)sqlite3_column_text(st, 6),
	    "approved_elsewhere", sqlite3_column_int(st, 10));
	if (o == NULL)
		return NULL;
	if (sqlite3_column_type(st, 7) != SQLITE_NULL &&
	    (json_object_set_new(o, "decided_at",
	    json_integer(sqlite3_column_int64(st, 7))) == -1 ||
	    json_object_set_new(o, "decided_by",
	    json_string((const char *)sqlite3_column_text(st, 8))) == -1)) {
		json_decref(o);
		return NULL;
	}
	if (sqlite3_column_type(st, 9) != SQLITE_NULL &&
	    json_object_set_new(o, "reason",
	    json_string((const char *)sqlite3_column_text(st, 9))) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Run a prepared approval query into a JSON array. */
static json_t *
approval_rows(struct signerdb *s, sqlite3_stmt *st, char *err, size_t errlen)
{
	json_t *arr = json_array(), *o;
	int rc;

	if (arr == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((o = approval_row(st)) == NULL ||
		    json_array_append_new(arr, o) == -1) {
			snprintf(err, errlen, "out of memory");
			json_decref(arr);
			return NULL;
		}
	}
	if (rc != SQLITE_DONE) {
		dberr(s, err, errlen, "approvals");
		json_decref(arr);
		return NULL;
	}
	return arr;
}

json_t *
signerdb_approvals_for(struct signerdb *s, const char *device_id,
    const char *account, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	json_t *arr;

	if (sqlite3_prepare_v2(s->db, "SELECT " APPROVAL_COLUMNS " FROM "
	    "approvals a WHERE a.device_id = ? AND a.account = ? ORDER BY a.id "
	    "DESC", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, device_id, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, account, -1, SQLITE_STATIC) != SQLITE_OK) {
		dberr(s, err, errlen, "approvals");
		sqlite3_finalize(st);
		return NULL;
	}
	arr = approval_rows(s, st, err, errlen);
	sqlite3_finalize(st);
	return arr;
}

json_t *
signerdb_list_approvals(struct signerdb *s, int pending_only, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;
	json_t *arr;

	if (sqlite3_prepare_v2(s->db, pending_only ?
	    "SELECT " APPROVAL_COLUMNS " FROM approvals a WHERE a.status = "
	    "'pending' ORDER BY a.id" :
	    "SELECT " APPROVAL_COLUMNS " FROM approvals a ORDER BY a.id",
	    -1, &st, NULL) != SQLITE_OK) {
		dberr(s, err, errlen, "approvals");
		return NULL;
	}
	arr = approval_rows(s, st, err, errlen);
	sqlite3_finalize(st);
	return arr;
}

long long
signerdb_add_approval(struct signerdb *s, const struct approval_request *r,
    char *err, size_t errlen)
{
	sqlite3_stmt *st;
	char *names;
	long long id = -1;

	if ((names = json_dumps(r->names, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (sqlite3_prepare_v2(s->db, "INSERT INTO approvals(device_id, account, "
	    "names, status, requested_at, requested_by, decided_at, decided_by, "
	    "csr) VALUES (?, ?, ?, ?, strftime('%s','now'), ?, CASE WHEN ? IS "
	    "NULL THEN NULL ELSE strftime('%s','now') END, ?, ?)", -1, &st,
	    NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, r->device_id, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 2, r->account, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 3, names, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 4, r->decided_by ? "approved" : "pending", -1,
	    SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 5, r->requested_by, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 6, r->decided_by, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 7, r->decided_by, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 8, r->csr, -1, SQLITE_STATIC) ||
	    sqlite3_step(st) != SQLITE_DONE)
		dberr(s, err, errlen, "add approval");
	else
		id = sqlite3_last_insert_rowid(s->db);
	sqlite3_finalize(st);
	free(names);
	return id;
}

int
signerdb_update_pending(struct signerdb *s, long long id, const json_t *names,
    const char *csr, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	char *n;
	int rc = 0;

	if ((n = json_dumps(names, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (sqlite3_prepare_v2(s->db, "UPDATE approvals SET names = ?, csr = ?, "
	    "requested_at = strftime('%s','now') WHERE id = ? AND status = "
	    "'pending'", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, n, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 2, csr, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(st, 3, id) ||
	    sqlite3_step(st) != SQLITE_DONE)
		rc = dberr(s, err, errlen, "update approval");
	sqlite3_finalize(st);
	free(n);
	return rc;
}

int
signerdb_decide(struct signerdb *s, long long id, const char *status,
    const char *reason, const char *decided_by, json_t **row, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;
	json_t *arr;
	const char *cur;
	int rc;

	*row = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT " APPROVAL_COLUMNS " FROM "
	    "approvals a WHERE a.id = ?", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
		sqlite3_finalize(st);
		return dberr(s, err, errlen, "decide");
	}
	arr = approval_rows(s, st, err, errlen);
	sqlite3_finalize(st);
	if (arr == NULL)
		return -1;
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return SIGNERDB_NOT_FOUND;
	}
	*row = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	cur = json_string_value(json_object_get(*row, "status"));
	if (cur != NULL && strcmp(cur, status) == 0)
		return SIGNERDB_ALREADY;

	if (sqlite3_prepare_v2(s->db, "UPDATE approvals SET status = ?, reason = "
	    "?, decided_by = ?, decided_at = strftime('%s','now') WHERE id = ?",
	    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 3, decided_by, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(st, 4, id) ||
	    sqlite3_step(st) != SQLITE_DONE)
		rc = dberr(s, err, errlen, "decide");
	else
		rc = 0;
	sqlite3_finalize(st);
	if (rc == 0 && json_object_set_new(*row, "status",
	    json_string(status)) == -1)
		rc = -1;
	return rc;
}

long
signerdb_revoke_approvals(struct signerdb *s, const char *device_id,
    const char *decided_by, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	long changed = -1;

	if (sqlite3_prepare_v2(s->db, "UPDATE approvals SET status = 'revoked', "
	    "decided_by = ?, decided_at = strftime('%s','now'), reason = "
	    "'approval revoked by the operator' WHERE device_id = ? AND "
	    "status IN ('approved', 'pending')", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(st, 1, decided_by, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_text(st, 2, device_id, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_DONE)
		changed = sqlite3_changes(s->db);
	else
		dberr(s, err, errlen, "revoke approvals");
	sqlite3_finalize(st);
	return changed;
}

long
signerdb_revoke_device_certs(struct signerdb *s, const char *device_id,
    int reason, time_t when, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	long changed = -1;

	if (sqlite3_prepare_v2(s->db, "UPDATE certs SET status = 'revoked', "
	    "reason = ?, revoked_at = ? WHERE device_id = ? AND status = 'valid'",
	    -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_int(st, 1, reason) == SQLITE_OK &&
	    sqlite3_bind_int64(st, 2, (sqlite3_int64)when) == SQLITE_OK &&
	    sqlite3_bind_text(st, 3, device_id, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_DONE)
		changed = sqlite3_changes(s->db);
	else
		dberr(s, err, errlen, "revoke device certificates");
	sqlite3_finalize(st);
	return changed;
}

json_t *
signerdb_valid_serials(struct signerdb *s, const char *device_id, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;
	json_t *arr;
	int rc;

	if ((arr = json_array()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (sqlite3_prepare_v2(s->db, "SELECT serial FROM certs WHERE device_id "
	    "= ? AND status = 'valid' ORDER BY serial", -1, &st, NULL) !=
	    SQLITE_OK ||
	    sqlite3_bind_text(st, 1, device_id, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		json_decref(arr);
		dberr(s, err, errlen, "device certificates");
		return NULL;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json_array_append_new(arr, json_string((const char *)
		    sqlite3_column_text(st, 0))) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		dberr(s, err, errlen, "device certificates");
		return NULL;
	}
	return arr;
}

struct sqlite3 *
signerdb_sqlite(struct signerdb *s)
{
	return s->db;
}
