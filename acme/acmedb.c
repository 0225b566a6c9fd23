/*
 * acmedb: acme.db access (see acmedb.h).  Every statement is prepared, bound
 * and finished here; callers see structs, never SQL.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "acmedb.h"
#include "jws.h"
#include "log.h"

/*
 * Prepared statements, kept for the life of the handle: parsing SQL was a
 * seventh of the front end's CPU under load.  The key is the address of the
 * statement's text, a string literal at each call site, so no text is
 * compared.  Every use is under the handle's lock; a statement already in
 * use (a query nested in another of the same text) gets a fresh one.
 */
#define STMT_CACHE	48

struct cached_stmt {
	const char	*sql;
	sqlite3_stmt	*st;
	int		 busy;
};

struct acmedb {
	pthread_mutex_t		 lock;
	sqlite3			*db;
	struct cached_stmt	 stmts[STMT_CACHE];
};

/*
 * order_id is NULL for a pre-authorization (newAuthz, RFC 8555 7.4.1);
 * subdomain is RFC 9444 subdomainAuthAllowed.
 */
#define AUTHZS_TABLE \
	" id TEXT PRIMARY KEY, order_id TEXT REFERENCES orders(id)," \
	" account TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL," \
	" status TEXT NOT NULL, expires INTEGER NOT NULL," \
	" subdomain INTEGER NOT NULL DEFAULT 0"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS accounts ("
	" id TEXT PRIMARY KEY, thumbprint TEXT NOT NULL UNIQUE, jwk TEXT NOT NULL,"
	" status TEXT NOT NULL, contacts TEXT NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS orders ("
	" id TEXT PRIMARY KEY, account TEXT NOT NULL REFERENCES accounts(id),"
	" status TEXT NOT NULL, identifiers TEXT NOT NULL,"
	" created INTEGER NOT NULL, expires INTEGER NOT NULL, error TEXT,"
	" csr TEXT, cert_id TEXT NOT NULL DEFAULT '', replaces TEXT,"
	" request TEXT NOT NULL DEFAULT '', asked_at INTEGER NOT NULL DEFAULT 0,"
	" retry_after INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS orders_account ON orders(account, created);"
	"CREATE TABLE IF NOT EXISTS authzs (" AUTHZS_TABLE ");"
	/* Orders that reuse a valid authorization (RFC 8555 7.1.4, RFC 9444). */
	"CREATE TABLE IF NOT EXISTS order_authzs ("
	" order_id TEXT NOT NULL REFERENCES orders(id),"
	" authz_id TEXT NOT NULL REFERENCES authzs(id),"
	" PRIMARY KEY (order_id, authz_id));"
	"CREATE TABLE IF NOT EXISTS challenges ("
	" id TEXT PRIMARY KEY, authz_id TEXT NOT NULL REFERENCES authzs(id),"
	" type TEXT NOT NULL, token TEXT NOT NULL, status TEXT NOT NULL,"
	" validated INTEGER NOT NULL DEFAULT 0, error TEXT);"
	"CREATE INDEX IF NOT EXISTS challenges_authz ON challenges(authz_id);"
	"CREATE TABLE IF NOT EXISTS certs ("
	" id TEXT PRIMARY KEY, serial TEXT NOT NULL UNIQUE,"
	" account TEXT NOT NULL REFERENCES accounts(id), issued_to TEXT NOT NULL,"
	" order_id TEXT NOT NULL, pem TEXT NOT NULL, chain TEXT NOT NULL,"
	" ari_id TEXT NOT NULL UNIQUE, not_before INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);";

/*
 * Indexes come after migrate_authzs(): rebuilding a table drops its own.
 * The expiry indexes serve acmedb_prune(); orders_replaces the RFC 9773
 * check of every newOrder with "replaces" (a scan of all orders before).
 * The temporary tables hold one pruning pass's victims (per connection).
 */
static const char indexes[] =
	"CREATE INDEX IF NOT EXISTS authzs_order ON authzs(order_id);"
	"CREATE INDEX IF NOT EXISTS authzs_reuse ON authzs(account, type, value,"
	" status);"
	"CREATE INDEX IF NOT EXISTS order_authzs_authz ON order_authzs(authz_id);"
	"CREATE INDEX IF NOT EXISTS orders_expires ON orders(expires);"
	"CREATE INDEX IF NOT EXISTS orders_replaces ON orders(replaces)"
	" WHERE replaces IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS authzs_expires ON authzs(expires);"
	"CREATE INDEX IF NOT EXISTS certs_not_after ON certs(not_after);"
	"CREATE TEMP TABLE IF NOT EXISTS prune_orders (id TEXT PRIMARY KEY);"
	"CREATE TEMP TABLE IF NOT EXISTS prune_authzs (id TEXT PRIMARY KEY);";

/*
 * Pages freed by pruning go back to the file system (PRAGMA
 * incremental_vacuum after each pass).  auto_vacuum must be chosen before
 * the first table is made, so an older file without it is rebuilt once
 * (VACUUM) when opened.
 */
static int
set_auto_vacuum(sqlite3 *db, char **msg)
{
	sqlite3_stmt *st;
	int rc, mode;

	if (sqlite3_prepare_v2(db, "PRAGMA auto_vacuum", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	mode = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (mode == -1)
		return -1;
	if (mode == 2)	/* INCREMENTAL */
		return 0;
	if (sqlite3_exec(db, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;", NULL,
	    NULL, msg) != SQLITE_OK)
		return -1;
	return 0;
}

/*
 * Before pre-authorization, authzs had order_id NOT NULL and no subdomain
 * column.  SQLite cannot drop a NOT NULL in place, so such a table is
 * rebuilt once (the documented create-copy-drop-rename), with foreign keys
 * off as SQLite requires; a table that has the column is left alone.
 */
static int
migrate_authzs(sqlite3 *db, char **msg)
{
	sqlite3_stmt *st;
	int rc, has;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('authzs')"
	    " WHERE name = 'subdomain'", -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	has = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (has)
		return 0;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE;"
	    "CREATE TABLE authzs_v2 (" AUTHZS_TABLE ");"
	    "INSERT INTO authzs_v2 (id, order_id, account, type, value, status,"
	    " expires) SELECT id, order_id, account, type, value, status, expires"
	    " FROM authzs;"
	    "DROP TABLE authzs;"
	    "ALTER TABLE authzs_v2 RENAME TO authzs;"
	    "COMMIT;", NULL, NULL, msg) != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	log_msg(LOG_NOTICE, "acme.db: authorizations table upgraded for "
	    "pre-authorization");
	return 0;
}

static int
db_fail(struct acmedb *d, const char *what)
{
	log_msg(LOG_ERR, "acme.db: %s: %s", what, sqlite3_errmsg(d->db));
	return -1;
}

/* Create the file 0600 before SQLite opens it (it would use the umask). */
static int
create_private(const char *path, char *err, size_t errlen)
{
	int fd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) == -1) {
		snprintf(err, errlen, "%s: chmod: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
acmedb_open(const char *path, struct acmedb **out, char *err, size_t errlen)
{
	struct acmedb *d;
	char *msg = NULL;

	*out = NULL;
	if (create_private(path, err, errlen) == -1)
		return -1;
	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    pthread_mutex_init(&d->lock, NULL) != 0) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, d->db != NULL ?
		    sqlite3_errmsg(d->db) : "cannot open");
		goto fail;
	}
	if (sqlite3_busy_timeout(d->db, 5000) != SQLITE_OK ||
	    set_auto_vacuum(d->db, &msg) == -1 ||
	    sqlite3_exec(d->db, "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(d->db, schema, NULL, NULL, &msg) != SQLITE_OK ||
	    migrate_authzs(d->db, &msg) == -1 ||
	    sqlite3_exec(d->db, indexes, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(d->db, "PRAGMA foreign_keys=ON;", NULL, NULL,
	    &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, msg != NULL ? msg :
		    sqlite3_errmsg(d->db));
		sqlite3_free(msg);
		goto fail;
	}
	*out = d;
	return 0;
fail:
	sqlite3_close(d->db);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return -1;
}

void
acmedb_close(struct acmedb *d)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < STMT_CACHE && d->stmts[i].sql != NULL; i++)
		sqlite3_finalize(d->stmts[i].st);
	if (sqlite3_close(d->db) != SQLITE_OK)
		log_msg(LOG_ERR, "acme.db: close: %s", sqlite3_errmsg(d->db));
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int
acmedb_new_id(char id[ID_LEN])
{
	unsigned char raw[16];
	char *s;

	if (RAND_bytes(raw, sizeof(raw)) != 1 ||
	    (s = b64url_encode(raw, sizeof(raw))) == NULL)
		return -1;
	snprintf(id, ID_LEN, "%s", s);
	free(s);
	return 0;
}

/*
 * The statement for sql, ready to bind: from the cache, or prepared now (and
 * kept while the cache has room).  NULL on error (logged).
 */
static sqlite3_stmt *
cached(struct acmedb *d, const char *sql)
{
	struct cached_stmt *c = NULL;
	sqlite3_stmt *st;
	size_t i;

	for (i = 0; i < STMT_CACHE; i++) {
		if (d->stmts[i].sql == sql) {
			if (d->stmts[i].busy)
				break;
			d->stmts[i].busy = 1;
			return d->stmts[i].st;
		}
		if (d->stmts[i].sql == NULL) {
			c = &d->stmts[i];
			break;
		}
	}
	if (sqlite3_prepare_v3(d->db, sql, -1, c != NULL ?
	    SQLITE_PREPARE_PERSISTENT : 0, &st, NULL) != SQLITE_OK) {
		db_fail(d, "prepare");
		return NULL;
	}
	if (c != NULL) {
		c->sql = sql;
		c->st = st;
		c->busy = 1;
	}
	return st;
}

/* Done with st: reset and unbind a cached statement, finalize any other. */
static void
release(struct acmedb *d, sqlite3_stmt *st)
{
	size_t i;

	for (i = 0; i < STMT_CACHE && d->stmts[i].sql != NULL; i++) {
		if (d->stmts[i].st == st) {
			/* reset repeats the last step's error, already handled */
			(void)sqlite3_reset(st);
			if (sqlite3_clear_bindings(st) != SQLITE_OK)
				db_fail(d, "clear bindings");
			d->stmts[i].busy = 0;
			return;
		}
	}
	sqlite3_finalize(st);
}

/*
 * Prepare sql and bind its parameters from fmt: 's' text (NULL binds NULL),
 * 'i' int64.  NULL on error (logged).
 */
static sqlite3_stmt *
prep(struct acmedb *d, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int i, rc = SQLITE_OK;

	if ((st = cached(d, sql)) == NULL)
		return NULL;
	va_start(ap, fmt);
	for (i = 0; fmt[i] != '\0' && rc == SQLITE_OK; i++) {
		if (fmt[i] == 's') {
			const char *s = va_arg(ap, const char *);

			rc = s == NULL ? sqlite3_bind_null(st, i + 1) :
			    sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT);
		} else
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
	}
	va_end(ap);
	if (rc != SQLITE_OK) {
		db_fail(d, "bind");
		release(d, st);
		return NULL;
	}
	return st;
}

/* Step a statement that returns no rows; CONFLICT on UNIQUE, NOTFOUND if
 * want_change and no row changed. */
static int
run(struct acmedb *d, sqlite3_stmt *st, int want_change)
{
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	release(d, st);
	if (rc == SQLITE_CONSTRAINT && sqlite3_extended_errcode(d->db) ==
	    SQLITE_CONSTRAINT_UNIQUE)
		return ACMEDB_CONFLICT;
	if (rc != SQLITE_DONE)
		return db_fail(d, "step");
	if (want_change && sqlite3_changes(d->db) == 0)
		return ACMEDB_NOTFOUND;
	return 0;
}

static int
begin(struct acmedb *d)
{
	if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(d, "begin");
	return 0;
}

static int
end(struct acmedb *d, int rc)
{
	if (rc == 0 && sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	if (rc == 0)
		rc = db_fail(d, "commit");
	if (sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		db_fail(d, "rollback");
	return rc;
}

static void
copy_text(char *dst, size_t len, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, len, "%s", t != NULL ? (const char *)t : "");
}

/* A heap copy of a column, NULL for NULL; *oom set if strdup failed. */
static char *
dup_text(sqlite3_stmt *st, int col, int *oom)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	char *s;

	if (t == NULL)
		return NULL;
	if ((s = strdup((const char *)t)) == NULL)
		*oom = 1;
	return s;
}

/*
 * Step a one-row query and hand the row to fill(); NOTFOUND if none.
 * Always releases the statement.
 */
static int
one_row(struct acmedb *d, sqlite3_stmt *st,
    int (*fill)(sqlite3_stmt *, void *), void *out)
{
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = fill(st, out) == 0 ? 0 : -1;
	else if (rc == SQLITE_DONE)
		rc = ACMEDB_NOTFOUND;
	else
		rc = db_fail(d, "query");
	release(d, st);
	return rc;
}

/* ---- accounts ------------------------------------------------------------ */

#define ACCT_COLS "id, thumbprint, jwk, status, contacts, created"

void
acct_clear(struct acct *a)
{
	free(a->jwk);
	free(a->contacts);
	memset(a, 0, sizeof(*a));
}

static int
fill_acct(sqlite3_stmt *st, void *out)
{
	struct acct *a = out;
	int oom = 0;

	copy_text(a->id, sizeof(a->id), st, 0);
	copy_text(a->thumb, sizeof(a->thumb), st, 1);
	a->jwk = dup_text(st, 2, &oom);
	copy_text(a->status, sizeof(a->status), st, 3);
	a->contacts = dup_text(st, 4, &oom);
	a->created = sqlite3_column_int64(st, 5);
	return oom ? -1 : 0;
}

int
acct_insert(struct acmedb *d, struct acct *a)
{
	int rc;

	if (acmedb_new_id(a->id) == -1)
		return -1;
	a->created = time(NULL);
	pthread_mutex_lock(&d->lock);
	rc = run(d, prep(d, "INSERT INTO accounts (" ACCT_COLS ") VALUES "
	    "(?, ?, ?, ?, ?, ?)", "sssssi", a->id, a->thumb, a->jwk, a->status,
	    a->contacts, (int64_t)a->created), 0);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
acct_get(struct acmedb *d, const char *id, struct acct *a)
{
	int rc;

	memset(a, 0, sizeof(*a));
	pthread_mutex_lock(&d->lock);
	rc = one_row(d, prep(d, "SELECT " ACCT_COLS " FROM accounts WHERE id = ?",
	    "s", id), fill_acct, a);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
acct_by_thumb(struct acmedb *d, const char *thumb, struct acct *a)
{
	int rc;

	memset(a, 0, sizeof(*a));
	pthread_mutex_lock(&d->lock);
	rc = one_row(d, prep(d, "SELECT " ACCT_COLS " FROM accounts "
	    "WHERE thumbprint = ?", "s", thumb), fill_acct, a);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
acct_set_contacts(struct acmedb *d, const char *id, const char *contacts)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = run(d, prep(d, "UPDATE accounts SET contacts = ? WHERE id = ?",
	    "ss", contacts, id), 1);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
acct_set_status(struct acmedb *d, const char *id, const char *status)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = run(d, prep(d, "UPDATE accounts SET status = ? WHERE id = ?",
	    "ss", status, id), 1);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
acct_set_key(struct acmedb *d, const char *id, const char *thumb,
    const char *jwk)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = run(d, prep(d, "UPDATE accounts SET thumbprint = ?, jwk = ? "
	    "WHERE id = ?", "sss", thumb, jwk, id), 1);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* ---- orders -------------------------------------------------------------- */

#define ORDER_COLS "id, account, status, identifiers, created, expires, error," \
	" csr, cert_id, replaces, request, asked_at, retry_after"

void
order_clear(struct order *o)
{
	free(o->identifiers);
	free(o->error);
	free(o->csr);
	free(o->replaces);
	memset(o, 0, sizeof(*o));
}

static int
fill_order(sqlite3_stmt *st, void *out)
{
	struct order *o = out;
	int oom = 0;

	copy_text(o->id, sizeof(o->id), st, 0);
	copy_text(o->account, sizeof(o->account), st, 1);
	copy_text(o->status, sizeof(o->status), st, 2);
	o->identifiers = dup_text(st, 3, &oom);
	o->created = sqlite3_column_int64(st, 4);
	o->expires = sqlite3_column_int64(st, 5);
	o->error = dup_text(st, 6, &oom);
	o->csr = dup_text(st, 7, &oom);
	copy_text(o->cert_id, sizeof(o->cert_id), st, 8);
	o->replaces = dup_text(st, 9, &oom);
	copy_text(o->request, sizeof(o->request), st, 10);
	o->asked_at = sqlite3_column_int64(st, 11);
	o->retry_after = sqlite3_column_int(st, 12);
	return oom ? -1 : 0;
}

static int
insert_authz(struct acmedb *d, const struct authz *a)
{
	if (a->linked)
		return run(d, prep(d, "INSERT INTO order_authzs (order_id,"
		    " authz_id) VALUES (?, ?)", "ss", a->order_id, a->id), 0);
	return run(d, prep(d, "INSERT INTO authzs (id, order_id, account, type,"
	    " value, status, expires, subdomain) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	    "ssssssii", a->id, a->order_id[0] != '\0' ? a->order_id : NULL,
	    a->account, a->type, a->value, a->status, (int64_t)a->expires,
	    (int64_t)(a->subdomain != 0)), 0);
}

static int
insert_chall(struct acmedb *d, const struct chall *c)
{
	return run(d, prep(d, "INSERT INTO challenges (id, authz_id, type, token,"
	    " status) VALUES (?, ?, ?, ?, ?)", "sssss", c->id, c->authz_id,
	    c->type, c->token, c->status), 0);
}

int
order_insert(struct acmedb *d, const struct order *o, const struct authz *az,
    size_t naz, const struct chall *ch, size_t nch)
{
	size_t i;
	int rc;

	pthread_mutex_lock(&d->lock);
	if ((rc = begin(d)) == 0) {
		rc = run(d, prep(d, "INSERT INTO orders (id, account, status,"
		    " identifiers, created, expires, replaces) VALUES"
		    " (?, ?, ?, ?, ?, ?, ?)", "ssssiis", o->id, o->account,
		    o->status, o->identifiers, (int64_t)o->created,
		    (int64_t)o->expires, o->replaces), 0);
		for (i = 0; rc == 0 && i < naz; i++)
			rc = insert_authz(d, &az[i]);
		for (i = 0; rc == 0 && i < nch; i++)
			rc = insert_chall(d, &ch[i]);
		rc = end(d, rc);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
authz_insert(struct acmedb *d, const struct authz *az, const struct chall *ch,
    size_t nch)
{
	size_t i;
	int rc;

	pthread_mutex_lock(&d->lock);
	if ((rc = begin(d)) == 0) {
		rc = insert_authz(d, az);
		for (i = 0; rc == 0 && i < nch; i++)
			rc = insert_chall(d, &ch[i]);
		rc = end(d, rc);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
order_get(struct acmedb *d, const char *id, struct order *o)
{
	int rc;

	memset(o, 0, sizeof(*o));
	pthread_mutex_lock(&d->lock);
	rc = one_row(d, prep(d, "SELECT " ORDER_COLS " FROM orders WHERE id = ?",
	    "s", id), fill_order, o);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
order_update(struct acmedb *d, const struct order *o)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = run(d, prep(d, "UPDATE orders SET status = ?, error = ?, csr = ?,"
	    " request = ?, asked_at = ?, retry_after = ? WHERE id = ?",
	    "ssssiis", o->status, o->error, o->csr, o->request,
	    (int64_t)o->asked_at, (int64_t)o->retry_after, o->id), 1);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
order_transition(struct acmedb *d, const char *id, const char *from,
    const char *to)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = run(d, prep(d, "UPDATE orders SET status = ? WHERE id = ? AND"
	    " status = ?", "sss", to, id, from), 1);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
order_expire(struct acmedb *d, const char *id, const char *error)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = run(d, prep(d, "UPDATE orders SET status = 'invalid', error = ?"
	    " WHERE id = ? AND status = 'processing'", "ss", error, id), 1);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
orders_of_account(struct acmedb *d, const char *acct, size_t offset,
    size_t limit, char (*ids)[ID_LEN], size_t *n)
{
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	pthread_mutex_lock(&d->lock);
	st = prep(d, "SELECT id FROM orders WHERE account = ? AND status !="
	    " 'invalid' ORDER BY created DESC, id LIMIT ? OFFSET ?", "sii", acct,
	    (int64_t)limit, (int64_t)offset);
	if (st == NULL) {
		pthread_mutex_unlock(&d->lock);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit)
		copy_text(ids[(*n)++], ID_LEN, st, 0);
	release(d, st);
	rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(d, "orders");
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static int
fill_nothing(sqlite3_stmt *st, void *out)
{
	return 0;
}

int
order_replacing(struct acmedb *d, const char *certid)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = one_row(d, prep(d, "SELECT 1 FROM orders WHERE replaces = ? AND"
	    " status != 'invalid'", "s", certid), fill_nothing, NULL);
	pthread_mutex_unlock(&d->lock);
	return rc == 0 ? 1 : rc == ACMEDB_NOTFOUND ? 0 : -1;
}

int
order_issued(struct acmedb *d, const char *order_id, struct cert *c)
{
	int rc;

	if (acmedb_new_id(c->id) == -1)
		return -1;
	pthread_mutex_lock(&d->lock);
	if ((rc = begin(d)) == 0) {
		rc = run(d, prep(d, "INSERT INTO certs (id, serial, account,"
		    " issued_to, order_id, pem, chain, ari_id, not_before, not_after)"
		    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "ssssssssii", c->id,
		    c->serial, c->account, c->issued_to, order_id, c->pem,
		    c->chain, c->ari_id, (int64_t)c->not_before,
		    (int64_t)c->not_after), 0);
		if (rc == 0)
			rc = run(d, prep(d, "UPDATE orders SET status = 'valid',"
			    " cert_id = ?, error = NULL WHERE id = ?", "ss", c->id,
			    order_id), 1);
		rc = end(d, rc);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* ---- authorizations and challenges ---------------------------------------- */

#define AUTHZ_COLS "id, order_id, account, type, value, status, expires," \
	" subdomain"

static int
fill_authz(sqlite3_stmt *st, void *out)
{
	struct authz *a = out;

	copy_text(a->id, sizeof(a->id), st, 0);
	copy_text(a->order_id, sizeof(a->order_id), st, 1);
	copy_text(a->account, sizeof(a->account), st, 2);
	copy_text(a->type, sizeof(a->type), st, 3);
	copy_text(a->value, sizeof(a->value), st, 4);
	copy_text(a->status, sizeof(a->status), st, 5);
	a->expires = sqlite3_column_int64(st, 6);
	a->subdomain = sqlite3_column_int(st, 7) != 0;
	return 0;
}

int
authz_get(struct acmedb *d, const char *id, struct authz *a)
{
	int rc;

	memset(a, 0, sizeof(*a));
	pthread_mutex_lock(&d->lock);
	rc = one_row(d, prep(d, "SELECT " AUTHZ_COLS " FROM authzs WHERE id = ?",
	    "s", id), fill_authz, a);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* Step a many-row query into an array of structs of size sz. */
static int
many_rows(struct acmedb *d, sqlite3_stmt *st,
    int (*fill)(sqlite3_stmt *, void *), void *out, size_t sz, size_t max,
    size_t *n)
{
	int rc;

	*n = 0;
	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
		memset((char *)out + *n * sz, 0, sz);
		if (fill(st, (char *)out + *n * sz) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
		(*n)++;
	}
	release(d, st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(d, "query");
}

int
authzs_of_order(struct acmedb *d, const char *order_id, struct authz *out,
    size_t max, size_t *n)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = many_rows(d, prep(d, "SELECT " AUTHZ_COLS " FROM authzs WHERE"
	    " order_id = ? OR id IN (SELECT authz_id FROM order_authzs WHERE"
	    " order_id = ?) ORDER BY rowid", "ss", order_id, order_id),
	    fill_authz, out, sizeof(*out), max, n);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
authz_find_valid(struct acmedb *d, const char *account, const char *type,
    const char *value, int subdomain, int64_t until, struct authz *a)
{
	int rc;

	memset(a, 0, sizeof(*a));
	pthread_mutex_lock(&d->lock);
	rc = one_row(d, prep(d, "SELECT " AUTHZ_COLS " FROM authzs WHERE"
	    " account = ? AND type = ? AND value = ? AND status = 'valid' AND"
	    " expires > ? AND subdomain >= ? ORDER BY expires DESC LIMIT 1",
	    "sssii", account, type, value, until, (int64_t)(subdomain != 0)),
	    fill_authz, a);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

#define CHALL_COLS "id, authz_id, type, token, status, validated, error"

void
chall_clear(struct chall *c)
{
	free(c->error);
	memset(c, 0, sizeof(*c));
}

static int
fill_chall(sqlite3_stmt *st, void *out)
{
	struct chall *c = out;
	int oom = 0;

	copy_text(c->id, sizeof(c->id), st, 0);
	copy_text(c->authz_id, sizeof(c->authz_id), st, 1);
	copy_text(c->type, sizeof(c->type), st, 2);
	copy_text(c->token, sizeof(c->token), st, 3);
	copy_text(c->status, sizeof(c->status), st, 4);
	c->validated = sqlite3_column_int64(st, 5);
	c->error = dup_text(st, 6, &oom);
	return oom ? -1 : 0;
}

int
chall_get(struct acmedb *d, const char *id, struct chall *c)
{
	int rc;

	memset(c, 0, sizeof(*c));
	pthread_mutex_lock(&d->lock);
	rc = one_row(d, prep(d, "SELECT " CHALL_COLS " FROM challenges WHERE"
	    " id = ?", "s", id), fill_chall, c);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
challs_of_authz(struct acmedb *d, const char *authz_id, struct chall *out,
    size_t max, size_t *n)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = many_rows(d, prep(d, "SELECT " CHALL_COLS " FROM challenges WHERE"
	    " authz_id = ? ORDER BY rowid", "s", authz_id), fill_chall, out,
	    sizeof(*out), max, n);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
chall_start(struct acmedb *d, const char *id)
{
	int rc;

	/* Only one challenge of an authorization may run: RFC 8555 7.1.4. */
	pthread_mutex_lock(&d->lock);
	rc = run(d, prep(d, "UPDATE challenges SET status = 'processing' WHERE"
	    " id = ? AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM"
	    " challenges c2 WHERE c2.authz_id = challenges.authz_id AND"
	    " c2.status != 'pending') AND (SELECT status FROM authzs WHERE"
	    " authzs.id = challenges.authz_id) = 'pending'", "s", id), 1);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
chall_finish(struct acmedb *d, const char *id, int ok, const char *error,
    int64_t authz_expires)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	if ((rc = begin(d)) == 0) {
		rc = run(d, prep(d, "UPDATE challenges SET status = ?, error = ?,"
		    " validated = ? WHERE id = ? AND status = 'processing'",
		    "ssis", ok ? "valid" : "invalid", error,
		    (int64_t)(ok ? time(NULL) : 0), id), 1);
		if (rc == 0)
			rc = run(d, prep(d, "UPDATE authzs SET status = ?,"
			    " expires = CASE WHEN ? THEN ? ELSE expires END"
			    " WHERE id = (SELECT authz_id FROM challenges WHERE"
			    " id = ?) AND status = 'pending'", "siis",
			    ok ? "valid" : "invalid", (int64_t)ok,
			    (int64_t)authz_expires, id), 1);
		rc = end(d, rc);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
chall_reset(struct acmedb *d, const char *id)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = run(d, prep(d, "UPDATE challenges SET status = 'pending' WHERE"
	    " id = ? AND status = 'processing'", "s", id), 1);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
authz_deactivate(struct acmedb *d, const char *id)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = run(d, prep(d, "UPDATE authzs SET status = 'deactivated' WHERE"
	    " id = ? AND status IN ('pending', 'valid')", "s", id), 1);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
challs_processing(struct acmedb *d, char (*ids)[ID_LEN], size_t max,
    size_t *n)
{
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	pthread_mutex_lock(&d->lock);
	if ((st = prep(d, "SELECT id FROM challenges WHERE status ="
	    " 'processing'", "")) == NULL) {
		pthread_mutex_unlock(&d->lock);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max)
		copy_text(ids[(*n)++], ID_LEN, st, 0);
	release(d, st);
	rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(d, "challenges");
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* ---- certificates ---------------------------------------------------------- */

#define CERT_COLS "id, serial, account, issued_to, order_id, pem, chain, ari_id," \
	" not_before, not_after, revoked"

void
cert_clear(struct cert *c)
{
	free(c->pem);
	free(c->chain);
	memset(c, 0, sizeof(*c));
}

static int
fill_cert(sqlite3_stmt *st, void *out)
{
	struct cert *c = out;
	int oom = 0;

	copy_text(c->id, sizeof(c->id), st, 0);
	copy_text(c->serial, sizeof(c->serial), st, 1);
	copy_text(c->account, sizeof(c->account), st, 2);
	copy_text(c->issued_to, sizeof(c->issued_to), st, 3);
	copy_text(c->order_id, sizeof(c->order_id), st, 4);
	c->pem = dup_text(st, 5, &oom);
	c->chain = dup_text(st, 6, &oom);
	copy_text(c->ari_id, sizeof(c->ari_id), st, 7);
	c->not_before = sqlite3_column_int64(st, 8);
	c->not_after = sqlite3_column_int64(st, 9);
	c->revoked = sqlite3_column_int(st, 10);
	return oom ? -1 : 0;
}

int
cert_get(struct acmedb *d, const char *id, struct cert *c)
{
	int rc;

	memset(c, 0, sizeof(*c));
	pthread_mutex_lock(&d->lock);
	rc = one_row(d, prep(d, "SELECT " CERT_COLS " FROM certs WHERE id = ?",
	    "s", id), fill_cert, c);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
cert_by_serial(struct acmedb *d, const char *serial, struct cert *c)
{
	int rc;

	memset(c, 0, sizeof(*c));
	pthread_mutex_lock(&d->lock);
	rc = one_row(d, prep(d, "SELECT " CERT_COLS " FROM certs WHERE"
	    " serial = ?", "s", serial), fill_cert, c);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
cert_by_ari_id(struct acmedb *d, const char *ari_id, struct cert *c)
{
	int rc;

	memset(c, 0, sizeof(*c));
	pthread_mutex_lock(&d->lock);
	rc = one_row(d, prep(d, "SELECT " CERT_COLS " FROM certs WHERE"
	    " ari_id = ?", "s", ari_id), fill_cert, c);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
cert_set_revoked(struct acmedb *d, const char *id)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = run(d, prep(d, "UPDATE certs SET revoked = 1 WHERE id = ?", "s",
	    id), 1);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* ---- pruning --------------------------------------------------------------- */

/*
 * One pass over at most PRUNE_BATCH orders and PRUNE_BATCH authorizations,
 * in one transaction, so that requests wait for the lock no longer than a
 * pass.  cut: what expired before it goes (now - ACMEDB_RETAIN_SEC).
 *
 * A certificate goes once it and its order expired before cut.  An order
 * goes once it expired before cut, its certificate (if any) is gone, and
 * none of its own authorizations is still alive after cut.  An
 * authorization goes once it expired before cut and no order kept refers
 * to it; its challenges go with it.  What a kept order links to stays,
 * expired or not.
 */
#define PRUNE_BATCH	1000
#define PRUNE_LIMIT	" LIMIT 1000"	/* PRUNE_BATCH */

enum prune_count { NONE, CERTS, ORDERS, AUTHZS, CHALLENGES, CHOSEN };

static const struct prune_step {
	const char		*sql;
	const char		*fmt;	/* "i": ?1 is cut */
	enum prune_count	 count;
} prune_steps[] = {
	{ "DELETE FROM temp.prune_orders", "", NONE },
	{ "DELETE FROM temp.prune_authzs", "", NONE },
	{ "DELETE FROM certs WHERE id IN (SELECT c.id FROM certs c WHERE"
	    " c.not_after < ?1 AND NOT EXISTS (SELECT 1 FROM orders o WHERE"
	    " o.id = c.order_id AND o.expires >= ?1)" PRUNE_LIMIT ")", "i",
	    CERTS },
	{ "INSERT INTO temp.prune_orders SELECT o.id FROM orders o WHERE"
	    " o.expires < ?1 AND NOT EXISTS (SELECT 1 FROM certs c WHERE"
	    " c.id = o.cert_id) AND NOT EXISTS (SELECT 1 FROM authzs a WHERE"
	    " a.order_id = o.id AND a.expires >= ?1)" PRUNE_LIMIT, "i",
	    CHOSEN },
	{ "DELETE FROM order_authzs WHERE order_id IN (SELECT id FROM"
	    " temp.prune_orders)", "", NONE },
	{ "INSERT INTO temp.prune_authzs SELECT a.id FROM authzs a WHERE"
	    " a.expires < ?1 AND (a.order_id IS NULL OR a.order_id IN (SELECT"
	    " id FROM temp.prune_orders)) AND NOT EXISTS (SELECT 1 FROM"
	    " order_authzs oa WHERE oa.authz_id = a.id)" PRUNE_LIMIT, "i",
	    CHOSEN },
	{ "DELETE FROM challenges WHERE authz_id IN (SELECT id FROM"
	    " temp.prune_authzs)", "", CHALLENGES },
	{ "DELETE FROM authzs WHERE id IN (SELECT id FROM temp.prune_authzs)",
	    "", AUTHZS },
	/* An expired authorization that a kept order reuses outlives its own
	 * order: it stays, as a pre-authorization would, without one. */
	{ "UPDATE authzs SET order_id = NULL WHERE order_id IN (SELECT id FROM"
	    " temp.prune_orders)", "", NONE },
	{ "DELETE FROM orders WHERE id IN (SELECT id FROM temp.prune_orders)",
	    "", ORDERS },
};

/* One pass in one transaction; *more when a batch was full. */
static int
prune_pass(struct acmedb *d, int64_t cut, struct acmedb_pruned *p,
    int *more)
{
	const struct prune_step *ps;
	int64_t n;
	size_t i;
	int rc;

	*more = 0;
	pthread_mutex_lock(&d->lock);
	if ((rc = begin(d)) == 0) {
		for (i = 0; rc == 0 && i < sizeof(prune_steps) /
		    sizeof(prune_steps[0]); i++) {
			ps = &prune_steps[i];
			if ((rc = run(d, ps->fmt[0] != '\0' ? prep(d, ps->sql,
			    ps->fmt, cut) : prep(d, ps->sql, ""), 0)) != 0)
				break;
			n = sqlite3_changes(d->db);
			switch (ps->count) {
			case CERTS:
				p->certs += n;
				*more |= n == PRUNE_BATCH;
				break;
			case CHOSEN:
				*more |= n == PRUNE_BATCH;
				break;
			case ORDERS:
				p->orders += n;
				break;
			case AUTHZS:
				p->authzs += n;
				break;
			case CHALLENGES:
				p->challenges += n;
				break;
			case NONE:
				break;
			}
		}
		rc = end(d, rc);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
acmedb_prune(struct acmedb *d, int64_t now, struct acmedb_pruned *p)
{
	int more = 1, passes;

	memset(p, 0, sizeof(*p));
	for (passes = 0; more && passes < ACMEDB_PRUNE_PASSES; passes++)
		if (prune_pass(d, now - ACMEDB_RETAIN_SEC, p, &more) == -1)
			return -1;
	if (p->certs + p->orders + p->authzs + p->challenges == 0)
		return 0;
	/* The freed pages back to the file system, and the WAL that the
	 * deletions filled cut back to nothing. */
	pthread_mutex_lock(&d->lock);
	if (sqlite3_exec(d->db, "PRAGMA incremental_vacuum;", NULL, NULL,
	    NULL) != SQLITE_OK ||
	    sqlite3_wal_checkpoint_v2(d->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    NULL, NULL) != SQLITE_OK)
		db_fail(d, "compact");
	pthread_mutex_unlock(&d->lock);
	return 0;
}
