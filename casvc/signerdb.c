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

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <sqlite3.h>

#include "policy.h"
#include "signerdb.h"

/* Version 1 is the schema below; each later version is one step of
 * migrations[], run in order on an older file, in one transaction. */
#define SCHEMA_VERSION	4

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
    /* The listings' filters in their keyset order (newest first): each
     * page is one range of one index.  not_after rides in the status index
     * so that "valid", "expired" and "expiring within" skip rows without
     * reading them.  Made IF NOT EXISTS on every open, so an older file
     * gains them without a migration step. */
    "DROP INDEX IF EXISTS certs_device;"
    "CREATE INDEX IF NOT EXISTS certs_device_issued ON certs(device_id, issued_at);"
    "CREATE INDEX IF NOT EXISTS certs_issued ON certs(issued_at);"
    "CREATE INDEX IF NOT EXISTS certs_status_issued ON certs(status, issued_at, not_after);"
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
    "CREATE INDEX IF NOT EXISTS approvals_status ON approvals(status);"
    /* "Approved for another account" (APPROVAL_COLUMNS), asked on every
     * issuance: without it SQLite chose approvals_status and read every
     * approved device's row, a cost that grew with the devices. */
    "CREATE INDEX IF NOT EXISTS approvals_device_status ON approvals(device_id, status);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', 1);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('crl_number', 0);";

static int
dberr(struct signerdb *s, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "signer.db: %s: %s", what, sqlite3_errmsg(s->db));
	return -1;
}

/*
 * Version 2: the key reuse rule (draft-sweet-iot-acme 4.11).  Each
 * certificate's key as SHA-256 of its SubjectPublicKeyInfo, indexed, and
 * the keys revoked for keyCompromise in a table of their own, so that
 * they stay blocked whatever becomes of the certificate rows.
 */
static const char *schema_v2 =
    "ALTER TABLE certs ADD COLUMN spki_sha256 TEXT;"
    "CREATE INDEX certs_spki ON certs(spki_sha256);"
    "CREATE TABLE compromised_keys ("
    " spki_sha256 TEXT PRIMARY KEY,"
    " serial TEXT NOT NULL,"
    " revoked_at INTEGER NOT NULL);";

/* The key hash of one PEM certificate; -1 if it does not parse. */
static int
pem_spki_sha256(const char *pem, char *out, size_t outlen)
{
	BIO *b;
	X509 *x = NULL;
	int rc = -1;

	if ((b = BIO_new_mem_buf(pem, -1)) == NULL)
		return -1;
	if ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		rc = policy_spki_sha256(X509_get0_pubkey(x), out, outlen);
	X509_free(x);
	BIO_free(b);
	return rc;
}

/* Fill spki_sha256 of the certificates recorded before version 2, and
 * the compromised keys among them. */
static int
backfill_spki(struct signerdb *s, char *err, size_t errlen)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	char hex[POLICY_SPKI_HEX_LEN + 1];
	const char *pem;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT serial, pem FROM certs WHERE "
	    "spki_sha256 IS NULL", -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "UPDATE certs SET spki_sha256 = ? WHERE "
	    "serial = ?", -1, &upd, NULL) != SQLITE_OK) {
		rc = dberr(s, err, errlen, "key hashes");
		goto out;
	}
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		pem = (const char *)sqlite3_column_text(sel, 1);
		/* A row whose PEM does not parse keeps no hash: it cannot
		 * match a key anyway. */
		if (pem == NULL || pem_spki_sha256(pem, hex, sizeof(hex)) == -1)
			continue;
		if (sqlite3_bind_text(upd, 1, hex, -1, SQLITE_TRANSIENT) !=
		    SQLITE_OK || sqlite3_bind_value(upd, 2,
		    sqlite3_column_value(sel, 0)) != SQLITE_OK ||
		    sqlite3_step(upd) != SQLITE_DONE) {
			rc = dberr(s, err, errlen, "key hashes");
			goto out;
		}
		sqlite3_reset(upd);
	}
	if (rc != SQLITE_DONE) {
		rc = dberr(s, err, errlen, "key hashes");
		goto out;
	}
	if (sqlite3_exec(s->db, "INSERT OR IGNORE INTO compromised_keys("
	    "spki_sha256, serial, revoked_at) SELECT spki_sha256, serial, "
	    "revoked_at FROM certs WHERE status = 'revoked' AND reason = 1 AND "
	    "spki_sha256 IS NOT NULL", NULL, NULL, NULL) != SQLITE_OK) {
		rc = dberr(s, err, errlen, "compromised keys");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return rc;
}

static int
migrate_v2(struct signerdb *s, char *err, size_t errlen)
{
	if (sqlite3_exec(s->db, schema_v2, NULL, NULL, NULL) != SQLITE_OK)
		return dberr(s, err, errlen, "schema version 2");
	return backfill_spki(s, err, errlen);
}

/*
 * Version 3: the front end's idempotency key.  A certificate issued for an
 * order carries the order's token, unique per account, so that the same
 * order asked again (after a crash lost the answer) gets the same
 * certificate instead of a second one.
 */
static int
migrate_v3(struct signerdb *s, char *err, size_t errlen)
{
	if (sqlite3_exec(s->db, "ALTER TABLE certs ADD COLUMN order_token TEXT;"
	    "CREATE UNIQUE INDEX certs_order ON certs(account, order_token) "
	    "WHERE order_token IS NOT NULL;", NULL, NULL, NULL) != SQLITE_OK)
		return dberr(s, err, errlen, "schema version 3");
	return 0;
}

/*
 * Version 4: delegations (integrations draft; RFC 9444).  An approval row
 * with a subtree is an account's request for a DNS subtree (device_id "");
 * a certificate issued under an approved delegation names it, so that
 * withdrawing the delegation can revoke exactly those.
 */
static int
migrate_v4(struct signerdb *s, char *err, size_t errlen)
{
	if (sqlite3_exec(s->db, "ALTER TABLE approvals ADD COLUMN subtree TEXT;"
	    "CREATE INDEX approvals_subtree ON approvals(subtree, account) "
	    "WHERE subtree IS NOT NULL;"
	    "ALTER TABLE certs ADD COLUMN delegation TEXT;"
	    "CREATE INDEX certs_delegation ON certs(delegation, account) "
	    "WHERE delegation IS NOT NULL;", NULL, NULL, NULL) != SQLITE_OK)
		return dberr(s, err, errlen, "schema version 4");
	return 0;
}

/* migrations[i] takes the file from version i + 1 to i + 2. */
static int (*const migrations[])(struct signerdb *, char *, size_t) = {
	migrate_v2,
	migrate_v3,
	migrate_v4,
};

/* Bring an older file up to SCHEMA_VERSION, all steps or none. */
static int
migrate(struct signerdb *s, int version, char *err, size_t errlen)
{
	char sql[96];
	int v;

	if (version < 1 || version > SCHEMA_VERSION) {
		snprintf(err, errlen, "signer.db: schema version %d, this "
		    "signer knows 1 to %d", version, SCHEMA_VERSION);
		return -1;
	}
	if (version == SCHEMA_VERSION)
		return 0;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return dberr(s, err, errlen, "migration");
	for (v = version; v < SCHEMA_VERSION; v++)
		if (migrations[v - 1](s, err, errlen) == -1)
			goto fail;
	snprintf(sql, sizeof(sql), "UPDATE meta SET value = %d WHERE key = "
	    "'schema_version'", SCHEMA_VERSION);
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		dberr(s, err, errlen, "migration");
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
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
	if (migrate(s, version, err, errlen) == -1)
		goto fail;
	if (sqlite3_prepare_v2(s->db, "INSERT INTO certs(serial, device_id, "
	    "names, account, requested_by, not_before, not_after, issued_at, "
	    "status, pem, spki_sha256, order_token, delegation) VALUES (?, ?, "
	    "?, ?, ?, ?, ?, strftime('%s','now'), 'valid', ?, ?, ?, ?)", -1, &s->insert, NULL) !=
	    SQLITE_OK) {
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
	    sqlite3_bind_text(st, 8, r->pem, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 9, r->spki_sha256, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 10, r->order_token, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 11, r->delegation, -1, SQLITE_STATIC)) {
		rc = dberr(s, err, errlen, "bind");
		goto out;
	}
	switch (sqlite3_step(st)) {
	case SQLITE_DONE:
		rc = 0;
		break;
	case SQLITE_CONSTRAINT:
		/* The serial (drawn again) or the order (answered already). */
		rc = sqlite3_extended_errcode(s->db) ==
		    SQLITE_CONSTRAINT_PRIMARYKEY ? SIGNERDB_DUPLICATE :
		    SIGNERDB_ORDER_TAKEN;
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

/*
 * Append rows of a stepped statement to *out until limit rows or max_bytes
 * of compact JSON; *more when a row was left for the next page.  The
 * statement asks for one row beyond limit, so "more" is never a guess.
 */
static int
page_rows(struct signerdb *s, sqlite3_stmt *st, json_t *(*conv)(sqlite3_stmt *),
    int limit, size_t max_bytes, json_t **out, int *more, char *err,
    size_t errlen)
{
	json_t *arr, *o;
	size_t bytes = 2, len;	/* "[]" */
	int rc, n = 0;

	*out = NULL;
	*more = 0;
	if ((arr = json_array()) == NULL)
		goto nomem;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			*more = 1;
			break;
		}
		if ((o = conv(st)) == NULL)
			goto nomem;
		len = json_dumpb(o, NULL, 0, JSON_COMPACT) + 1;	/* "," */
		if (bytes + len > max_bytes) {
			json_decref(o);
			if (n == 0) {
				snprintf(err, errlen, "a row is larger than a "
				    "page (%zu bytes)", len);
				json_decref(arr);
				return -1;
			}
			*more = 1;
			break;
		}
		if (json_array_append_new(arr, o) == -1)
			goto nomem;
		bytes += len;
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		json_decref(arr);
		return dberr(s, err, errlen, "list");
	}
	*out = arr;
	return 0;
nomem:
	json_decref(arr);
	snprintf(err, errlen, "out of memory");
	return -1;
}

static json_t *
cert_row(sqlite3_stmt *st)
{
	return row_to_json(st, 0);
}

/* Bind a named parameter if the statement has it. */
static int
bind_text(sqlite3_stmt *st, const char *name, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	return i == 0 ? SQLITE_OK : sqlite3_bind_text(st, i, v, -1,
	    SQLITE_STATIC);
}

static int
bind_int64(sqlite3_stmt *st, const char *name, long long v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	return i == 0 ? SQLITE_OK : sqlite3_bind_int64(st, i, v);
}

/* Where the page after serial starts: its (issued_at, rowid). */
static int
cert_cursor(struct signerdb *s, const char *serial, long long *at,
    long long *rid, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT issued_at, rowid FROM certs "
	    "WHERE serial = ?", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		return dberr(s, err, errlen, "list");
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*at = sqlite3_column_int64(st, 0);
		*rid = sqlite3_column_int64(st, 1);
		rc = 0;
	} else if (rc == SQLITE_DONE)
		rc = SIGNERDB_NOT_FOUND;
	else
		rc = dberr(s, err, errlen, "list");
	sqlite3_finalize(st);
	return rc;
}

int
signerdb_list_certs(struct signerdb *s, const struct cert_filter *f,
    json_t **out, int *more, char *err, size_t errlen)
{
	char sql[768];
	sqlite3_stmt *st;
	long long at = 0, rid = 0, now = (long long)time(NULL);
	const char *state = "";
	int rc;

	*out = NULL;
	*more = 0;
	if (f->after != NULL && (rc = cert_cursor(s, f->after, &at, &rid, err,
	    errlen)) != 0)
		return rc;
	/*
	 * "valid" and "expired" split the unrevoked by not_after.  The unary
	 * "+" keeps not_after off index selection: a range on it would mean
	 * sorting every match (most certificates of a year are expired),
	 * where walking certs_status_issued in page order reads it from the
	 * index and stops at the page's end.
	 */
	if (f->status != NULL && strcmp(f->status, "revoked") == 0)
		state = " AND status = 'revoked'";
	else if (f->status != NULL && strcmp(f->status, "expired") == 0)
		state = " AND status = 'valid' AND +not_after <= :now";
	else if (f->status != NULL || f->expiring_within > 0)
		state = " AND status = 'valid' AND +not_after > :now";
	snprintf(sql, sizeof(sql), "SELECT " CERT_COLUMNS " FROM certs "
	    "WHERE 1%s%s%s%s ORDER BY issued_at DESC, rowid DESC LIMIT :lim",
	    f->device_id != NULL ? " AND device_id = :dev" : "", state,
	    f->expiring_within > 0 ? " AND +not_after <= :until" : "",
	    f->after != NULL ? " AND (issued_at, rowid) < (:at, :rid)" : "");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return dberr(s, err, errlen, "list");
	if (bind_text(st, ":dev", f->device_id) != SQLITE_OK ||
	    bind_int64(st, ":now", now) != SQLITE_OK ||
	    bind_int64(st, ":until", now + f->expiring_within) != SQLITE_OK ||
	    bind_int64(st, ":at", at) != SQLITE_OK ||
	    bind_int64(st, ":rid", rid) != SQLITE_OK ||
	    bind_int64(st, ":lim", (long long)f->limit + 1) != SQLITE_OK) {
		sqlite3_finalize(st);
		return dberr(s, err, errlen, "list");
	}
	rc = page_rows(s, st, cert_row, f->limit, f->max_bytes, out, more, err,
	    errlen);
	sqlite3_finalize(st);
	return rc;
}

/*
 * The one certificate row that sql (a SELECT of CERT_COLUMNS) finds with
 * its ? bound to a and b (b NULL: one parameter), PEM included.  NULL with
 * err[0] == '\0' when there is none, NULL with err set (naming what) on a
 * failure: callers tell "not found" from "broken" that way.
 */
static json_t *
cert_lookup(struct signerdb *s, const char *sql, const char *a,
    const char *b, const char *what, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	json_t *o = NULL;
	int rc;

	err[0] = '\0';
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC) != SQLITE_OK ||
	    (b != NULL &&
	    sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC) != SQLITE_OK)) {
		dberr(s, err, errlen, what);
		sqlite3_finalize(st);
		return NULL;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if ((o = row_to_json(st, 1)) == NULL)
			snprintf(err, errlen, "out of memory");
	} else if (rc != SQLITE_DONE)
		dberr(s, err, errlen, what);
	sqlite3_finalize(st);
	return o;
}

json_t *
signerdb_get_cert(struct signerdb *s, const char *serial_hex, char *err,
    size_t errlen)
{
	return cert_lookup(s, "SELECT " CERT_COLUMNS " FROM certs "
	    "WHERE serial = ?", serial_hex, NULL, "get", err, errlen);
}

json_t *
signerdb_cert_for_order(struct signerdb *s, const char *account,
    const char *order_token, char *err, size_t errlen)
{
	return cert_lookup(s, "SELECT " CERT_COLUMNS " FROM certs "
	    "WHERE account = ? AND order_token = ?", account, order_token,
	    "order lookup", err, errlen);
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
	"AND o.subtree IS a.subtree AND o.account != a.account " \
	"AND o.status = 'approved'), a.subtree"

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
	if (sqlite3_column_type(st, 11) != SQLITE_NULL &&
	    json_object_set_new(o, "subtree",
	    json_string((const char *)sqlite3_column_text(st, 11))) == -1) {
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

/* The approval rows of a query on (key, account), newest first. */
static json_t *
approvals_where(struct signerdb *s, const char *sql, const char *key,
    const char *account, const char *what, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	json_t *arr;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, account, -1, SQLITE_STATIC) != SQLITE_OK) {
		dberr(s, err, errlen, what);
		sqlite3_finalize(st);
		return NULL;
	}
	arr = approval_rows(s, st, err, errlen);
	sqlite3_finalize(st);
	return arr;
}

json_t *
signerdb_approvals_for(struct signerdb *s, const char *device_id,
    const char *account, char *err, size_t errlen)
{
	return approvals_where(s, "SELECT " APPROVAL_COLUMNS " FROM approvals "
	    "a WHERE a.device_id = ? AND a.account = ? AND a.subtree IS NULL "
	    "ORDER BY a.id DESC", device_id, account, "approvals", err, errlen);
}

int
signerdb_list_approvals(struct signerdb *s, const struct approval_filter *f,
    json_t **out, int *more, char *err, size_t errlen)
{
	char sql[768];
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	*more = 0;
	snprintf(sql, sizeof(sql), "SELECT " APPROVAL_COLUMNS " FROM approvals "
	    "a WHERE a.id > :after%s%s ORDER BY a.id LIMIT :lim",
	    f->pending_only ? " AND a.status = 'pending'" : "",
	    f->device_id != NULL ? " AND a.device_id = :dev" : "");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return dberr(s, err, errlen, "approvals");
	if (bind_int64(st, ":after", f->after) != SQLITE_OK ||
	    bind_text(st, ":dev", f->device_id) != SQLITE_OK ||
	    bind_int64(st, ":lim", (long long)f->limit + 1) != SQLITE_OK) {
		sqlite3_finalize(st);
		return dberr(s, err, errlen, "approvals");
	}
	rc = page_rows(s, st, approval_row, f->limit, f->max_bytes, out, more,
	    err, errlen);
	sqlite3_finalize(st);
	return rc;
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
	    "csr, subtree) VALUES (?, ?, ?, ?, strftime('%s','now'), ?, CASE "
	    "WHEN ? IS NULL THEN NULL ELSE strftime('%s','now') END, ?, ?, ?)",
	    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, r->device_id, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 2, r->account, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 3, names, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 4, r->decided_by ? "approved" : "pending", -1,
	    SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 5, r->requested_by, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 6, r->decided_by, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 7, r->decided_by, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 8, r->csr, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 9, r->subtree, -1, SQLITE_STATIC) ||
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
	    "subtree IS NULL AND status IN ('approved', 'pending')", -1, &st, NULL) == SQLITE_OK &&
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
	    "reason = ?, revoked_at = ? WHERE device_id = ? AND +status = 'valid'",
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
	/* "+status": a device's few rows by certs_device_issued, not every
	 * valid certificate by the status index. */
	if (sqlite3_prepare_v2(s->db, "SELECT serial FROM certs WHERE device_id "
	    "= ? AND +status = 'valid' ORDER BY serial", -1, &st, NULL) !=
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

json_t *
signerdb_delegations_for(struct signerdb *s, const char *subtree,
    const char *account, char *err, size_t errlen)
{
	return approvals_where(s, "SELECT " APPROVAL_COLUMNS " FROM approvals "
	    "a WHERE a.subtree = ? AND a.account = ? ORDER BY a.id DESC",
	    subtree, account, "delegations", err, errlen);
}

int
signerdb_touch_pending(struct signerdb *s, long long id, char *err,
    size_t errlen)
{
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(s->db, "UPDATE approvals SET requested_at = "
	    "strftime('%s','now') WHERE id = ? AND status = 'pending'", -1, &st,
	    NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		rc = dberr(s, err, errlen, "update delegation request");
	sqlite3_finalize(st);
	return rc;
}

/* Bind the subtree and, if given, the account of a delegation statement. */
static int
bind_delegation(sqlite3_stmt *st, const char *subtree, const char *account)
{
	return bind_text(st, ":sub", subtree) != SQLITE_OK ||
	    bind_text(st, ":acct", account) != SQLITE_OK ? -1 : 0;
}

long
signerdb_revoke_delegations(struct signerdb *s, const char *subtree,
    const char *account, const char *decided_by, char *err, size_t errlen)
{
	char sql[320];
	sqlite3_stmt *st;
	long changed = -1;

	snprintf(sql, sizeof(sql), "UPDATE approvals SET status = 'revoked', "
	    "decided_by = :by, decided_at = strftime('%%s','now'), reason = "
	    "'delegation revoked by the operator' WHERE subtree = :sub%s AND "
	    "status IN ('approved', 'pending')", account != NULL ?
	    " AND account = :acct" : "");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    bind_text(st, ":by", decided_by) == SQLITE_OK &&
	    bind_delegation(st, subtree, account) == 0 &&
	    sqlite3_step(st) == SQLITE_DONE)
		changed = sqlite3_changes(s->db);
	else
		dberr(s, err, errlen, "revoke delegations");
	sqlite3_finalize(st);
	return changed;
}

json_t *
signerdb_delegation_serials(struct signerdb *s, const char *subtree,
    const char *account, char *err, size_t errlen)
{
	char sql[200];
	sqlite3_stmt *st;
	json_t *arr;
	int rc;

	if ((arr = json_array()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(sql, sizeof(sql), "SELECT serial FROM certs WHERE delegation "
	    "= :sub%s AND status = 'valid' ORDER BY serial", account != NULL ?
	    " AND account = :acct" : "");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    bind_delegation(st, subtree, account) == -1) {
		sqlite3_finalize(st);
		json_decref(arr);
		dberr(s, err, errlen, "delegated certificates");
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
		dberr(s, err, errlen, "delegated certificates");
		return NULL;
	}
	return arr;
}

long
signerdb_revoke_delegation_certs(struct signerdb *s, const char *subtree,
    const char *account, int reason, time_t when, char *err, size_t errlen)
{
	char sql[256];
	sqlite3_stmt *st;
	long changed = -1;

	snprintf(sql, sizeof(sql), "UPDATE certs SET status = 'revoked', "
	    "reason = :reason, revoked_at = :when WHERE delegation = :sub%s AND "
	    "status = 'valid'", account != NULL ? " AND account = :acct" : "");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    bind_int64(st, ":reason", reason) == SQLITE_OK &&
	    bind_int64(st, ":when", (long long)when) == SQLITE_OK &&
	    bind_delegation(st, subtree, account) == 0 &&
	    sqlite3_step(st) == SQLITE_DONE)
		changed = sqlite3_changes(s->db);
	else
		dberr(s, err, errlen, "revoke delegated certificates");
	sqlite3_finalize(st);
	return changed;
}

struct sqlite3 *
signerdb_sqlite(struct signerdb *s)
{
	return s->db;
}

int
signerdb_key_seen(struct signerdb *s, const char *spki_sha256, char *serial,
    size_t seriallen, int *compromised, char *err, size_t errlen)
{
	static const char *const sql[] = {
		"SELECT serial FROM compromised_keys WHERE spki_sha256 = ?",
		"SELECT serial FROM certs WHERE spki_sha256 = ? ORDER BY "
		    "issued_at LIMIT 1",
	};
	sqlite3_stmt *st;
	size_t i;
	int rc;

	*compromised = 0;
	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) !=
		    SQLITE_OK || sqlite3_bind_text(st, 1, spki_sha256, -1,
		    SQLITE_STATIC) != SQLITE_OK) {
			sqlite3_finalize(st);
			return dberr(s, err, errlen, "key lookup");
		}
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			snprintf(serial, seriallen, "%s", (const char *)
			    sqlite3_column_text(st, 0));
			sqlite3_finalize(st);
			*compromised = i == 0;
			return 1;
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return dberr(s, err, errlen, "key lookup");
	}
	return 0;
}

int
signerdb_key_compromised(struct signerdb *s, const char *serial_hex,
    time_t when, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO compromised_keys("
	    "spki_sha256, serial, revoked_at) SELECT spki_sha256, serial, ? "
	    "FROM certs WHERE serial = ? AND spki_sha256 IS NOT NULL", -1, &st,
	    NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, (sqlite3_int64)when) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, serial_hex, -1, SQLITE_STATIC) !=
	    SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
		rc = dberr(s, err, errlen, "record compromised key");
	sqlite3_finalize(st);
	return rc;
}
