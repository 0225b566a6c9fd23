/*
 * server: the signer's operations (see server.h and PROTOCOL.md).
 * Everything a request carries is re-checked here: the signer never trusts
 * the front end's word on names, days or approval.
 */
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <unistd.h>

#include <sqlite3.h>

#include "config_key.h"
#include "log.h"
#include "proto.h"
#include "refusals.h"
#include "server.h"

#define ISSUE_SERIAL_TRIES	4
#define SERVER_CERT_DAYS	7	/* the front end renews its own at 2/3 */
#define APPROVAL_RETRY_AFTER	10	/* seconds, for clients waiting on an operator */

static char *
pem_of_x509(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (b == NULL)
		return NULL;
	if (PEM_write_bio_X509(b, x) == 1 &&
	    (len = BIO_get_mem_data(b, &data)) > 0)
		out = strndup(data, (size_t)len);
	BIO_free(b);
	return out;
}

static char *
pem_of_crl(X509_CRL *c)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (b == NULL)
		return NULL;
	if (PEM_write_bio_X509_CRL(b, c) == 1 &&
	    (len = BIO_get_mem_data(b, &data)) > 0)
		out = strndup(data, (size_t)len);
	BIO_free(b);
	return out;
}

static X509 *
read_root(const char *path, char *err, size_t errlen)
{
	FILE *f;
	X509 *x;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "root certificate %s: %s (run \"iotca "
		    "init\" first)", path, strerror(errno));
		return NULL;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		snprintf(err, errlen, "root certificate %s: not a PEM "
		    "certificate", path);
	return x;
}

/* Who acted, as the audit record names them; NULL: the signer itself. */
static json_t *
actor_of(const struct peer *p)
{
	if (p == NULL)
		return json_pack("{s:s}", "role", "signer");
	return json_pack("{s:s, s:I, s:s, s:I}", "role", p->role == ROLE_ADMIN ?
	    "operator" : "frontend", "uid", (json_int_t)p->uid, "user", p->user,
	    "pid", (json_int_t)p->pid);
}

/* An audit event: name, time, actor, and fields (stolen; may be NULL). */
static json_t *
event(const char *name, const struct peer *p, json_t *fields)
{
	json_t *ev = audit_event(name, actor_of(p));

	if (ev != NULL && fields != NULL && json_object_update(ev, fields) == -1) {
		json_decref(ev);
		ev = NULL;
	}
	json_decref(fields);
	return ev;
}

/*
 * Transactions: a state change and its audit record commit together or not
 * at all.  The audit log learns the outcome, so its idea of the head stays
 * true.
 */
static int
tx_begin(struct signer *s, char *err, size_t errlen)
{
	return signerdb_begin(s->db, err, errlen);
}

static void
tx_rollback(struct signer *s)
{
	signerdb_rollback(s->db);
	audit_rolled_back(s->audit);
}

/* Append ev (stolen) inside the open transaction. */
static int
tx_record(struct signer *s, json_t *ev, char *err, size_t errlen)
{
	int rc;

	if (ev == NULL) {
		snprintf(err, errlen, "audit log: out of memory");
		return -1;
	}
	rc = audit_append(s->audit, ev, NULL, err, errlen);
	json_decref(ev);
	return rc;
}

static int
tx_commit(struct signer *s, char *err, size_t errlen)
{
	if (signerdb_commit(s->db, err, errlen) == -1) {
		tx_rollback(s);
		return -1;
	}
	audit_committed(s->audit);
	return 0;
}

/* A record that goes with no other change: start, stop, refusals. */
static int
record_alone(struct signer *s, json_t *ev, char *err, size_t errlen)
{
	if (tx_begin(s, err, errlen) == -1) {
		json_decref(ev);
		return -1;
	}
	if (tx_record(s, ev, err, errlen) == -1) {
		tx_rollback(s);
		return -1;
	}
	return tx_commit(s, err, errlen);
}

/* The reply when a change was undone because its record could not be written. */
static json_t *
not_recorded(const char *what, const char *err)
{
	log_msg(LOG_ERR, "%s refused, nothing changed: %s", what, err);
	return proto_error(PROTO_E_INTERNAL, "refused: the audit log cannot "
	    "record it (nothing was changed)");
}

static void free_work(struct signer *);
static int next_turn(struct signer *);

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* (Re-)sign the CRL from the database's revoked list, recording it. */
static int
refresh_crl(struct signer *s, char *err, size_t errlen)
{
	struct crl_entry *e = NULL;
	X509_CRL *crl = NULL;
	size_t n = 0;
	long number;
	char *pem = NULL;
	unsigned char *der = NULL;
	int derlen = 0;
	time_t now = time(NULL);

	if (tx_begin(s, err, errlen) == -1)
		return -1;
	if (signerdb_revoked(s->db, &e, &n, err, errlen) == -1 ||
	    (number = signerdb_next_crl_number(s->db, err, errlen)) == -1)
		goto fail;
	crl = certgen_crl(s->ks, s->key, s->root, e, n, number,
	    s->cfg.crl_days, err, errlen);
	if (crl == NULL)
		goto fail;
	if ((pem = pem_of_crl(crl)) == NULL ||
	    (derlen = i2d_X509_CRL(crl, &der)) <= 0) {
		snprintf(err, errlen, "CRL: cannot encode");
		goto fail;
	}
	if (tx_record(s, event("crl_signed", NULL, json_pack("{s:I, s:I, s:I}",
	    "crl_number", (json_int_t)number, "entries", (json_int_t)n,
	    "next_update", (json_int_t)(now +
	    (time_t)s->cfg.crl_days * 86400))), err, errlen) == -1 ||
	    tx_commit(s, err, errlen) == -1)
		goto fail;
	X509_CRL_free(crl);
	signerdb_free_revoked(e, n);
	free(s->crl_pem);
	OPENSSL_free(s->crl_der);
	s->crl_pem = pem;
	s->crl_der = der;
	s->crl_der_len = (size_t)derlen;
	s->crl_number = number;
	s->crl_this_update = now;
	s->crl_next_update = now + (time_t)s->cfg.crl_days * 86400;
	s->crl_dirty = 0;
	s->crl_signed_ms = mono_ms();
	log_msg(LOG_INFO, "CRL %ld signed with %zu entries", number, n);
	return 0;
fail:
	tx_rollback(s);
	X509_CRL_free(crl);
	signerdb_free_revoked(e, n);
	free(pem);
	OPENSSL_free(der);
	return -1;
}

/*
 * A revocation marks the CRL stale; it is signed again once the requests
 * that arrived together are answered (server_tick), so a burst of
 * revocations costs one signature, not one each, and issuance waits for
 * at most one CRL signing per CRL_RESIGN_GAP_MS.  A reader of the CRL
 * gets a fresh one at once.
 */
#define CRL_RESIGN_GAP_MS	500

static void
crl_stale(struct signer *s)
{
	s->crl_dirty = 1;
}

/* Sign the CRL if it is stale or half its life is gone; -1 if that failed
 * (the old one, if any, stays). */
static int
crl_fresh(struct signer *s, char *err, size_t errlen)
{
	if (!s->crl_dirty && s->crl_pem != NULL &&
	    s->crl_next_update - time(NULL) >= (time_t)s->cfg.crl_days * 43200)
		return 0;
	return refresh_crl(s, err, errlen);
}

/* From server_tick: ms until the stale CRL is due, after signing it if it is. */
static int
crl_tick(struct signer *s)
{
	char err[256];
	uint64_t now;

	if (!s->crl_dirty || s->audit == NULL || audit_broken(s->audit) != NULL)
		return -1;
	now = mono_ms();
	if (now - s->crl_signed_ms < CRL_RESIGN_GAP_MS)
		return (int)(CRL_RESIGN_GAP_MS - (now - s->crl_signed_ms));
	if (refresh_crl(s, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "CRL after revocation: %s", err);
		s->crl_signed_ms = now;		/* try again after the gap */
		return CRL_RESIGN_GAP_MS;
	}
	return -1;
}

/* SHA-256 of the configuration file, to notice changes between starts. */
static int
config_digest(const char *path, char *out, size_t outlen)
{
	unsigned char buf[4096], md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;
	EVP_MD_CTX *ctx;
	FILE *f;
	size_t n;
	int ok;

	if ((f = fopen(path, "re")) == NULL || (ctx = EVP_MD_CTX_new()) == NULL) {
		if (f != NULL)
			fclose(f);
		return -1;
	}
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		ok = EVP_DigestUpdate(ctx, buf, n) == 1;
	ok = ok && !ferror(f) && EVP_DigestFinal_ex(ctx, md, &len) == 1 &&
	    outlen > len * 2;
	fclose(f);
	EVP_MD_CTX_free(ctx);
	for (i = 0; ok && i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return ok ? 0 : -1;
}

/* The configuration digest recorded at the previous start, if any. */
static char *
previous_config_digest(struct signer *s)
{
	sqlite3_stmt *st;
	char *d = NULL;

	if (sqlite3_prepare_v2(signerdb_sqlite(s->db), "SELECT json_extract("
	    "record, '$.config_sha256') FROM audit_log WHERE json_extract(record, "
	    "'$.event') = 'signer_start' ORDER BY seq DESC LIMIT 1", -1, &st,
	    NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		d = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return d;
}

/* The start, with the settings that matter, and a configuration change. */
static int
record_start(struct signer *s, char *err, size_t errlen)
{
	char digest[EVP_MAX_MD_SIZE * 2 + 1], *prev;
	json_t *settings;
	int changed;

	if (config_digest(s->cfg.path, digest, sizeof(digest)) == -1)
		snprintf(digest, sizeof(digest), "unreadable");
	settings = json_pack("{s:s, s:s, s:i, s:i, s:b, s:b, s:b, s:s, s:i, "
	    "s:i}", "key_store", s->cfg.key_store,
	    "key_algorithm", s->cfg.key_alg,
	    "max_days", s->cfg.max_days, "crl_days", s->cfg.crl_days,
	    "strict_cn", s->cfg.strict_cn, "auto_approve", s->cfg.auto_approve,
	    "approve_delegated_devices", s->cfg.approve_delegated_devices,
	    "audit_anchor", anchor_mode_name(s->anchor),
	    "checkpoint_records", s->cfg.audit_checkpoint_records,
	    "checkpoint_minutes", s->cfg.audit_checkpoint_minutes);
	if (settings == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	prev = previous_config_digest(s);
	changed = prev != NULL && strcmp(prev, digest) != 0;
	if (tx_begin(s, err, errlen) == -1)
		goto fail;
	if ((changed && tx_record(s, event("config_changed", NULL,
	    json_pack("{s:s, s:s, s:s, s:O}", "config", s->cfg.path,
	    "old_sha256", prev, "new_sha256", digest, "settings", settings)),
	    err, errlen) == -1) ||
	    tx_record(s, event("signer_start", NULL, json_pack("{s:s, s:s, s:O, "
	    "s:I}", "config", s->cfg.path, "config_sha256", digest, "settings",
	    settings, "pid", (json_int_t)getpid())), err, errlen) == -1) {
		tx_rollback(s);
		goto fail;
	}
	if (tx_commit(s, err, errlen) == -1)
		goto fail;
	if (changed)
		log_msg(LOG_NOTICE, "configuration %s changed since the last "
		    "start (recorded in the audit log)", s->cfg.path);
	free(prev);
	json_decref(settings);
	return 0;
fail:
	free(prev);
	json_decref(settings);
	return -1;
}

/* The audit log: its anchor (made on first use), its start check. */
static int
open_audit(struct signer *s, const char *owner_auth, char *err, size_t errlen)
{
	struct anchor_paths ap;
	struct audit_params prm;
	long long n;
	int created;

	config_anchor(&s->cfg, owner_auth, &ap);
	if ((n = audit_count(signerdb_sqlite(s->db), err, errlen)) == -1 ||
	    (s->anchor = anchor_open(s->ks, &ap, n == 0, &created, err,
	    errlen)) == NULL)
		return -1;
	if (created)
		log_msg(LOG_NOTICE, "audit log keys created: %s, %s",
		    s->cfg.audit_key, s->cfg.audit_hmac);
	if (!anchor_is_hardware(s->anchor))
		log_msg(LOG_WARNING, "the audit log is anchored in FILES (%s, "
		    "%s): weaker than a TPM, whoever can write them can rewrite "
		    "the log. Development only", s->cfg.audit_hmac,
		    s->cfg.audit_counter);
	memset(&prm, 0, sizeof(prm));
	prm.checkpoint_records = s->cfg.audit_checkpoint_records;
	prm.checkpoint_minutes = s->cfg.audit_checkpoint_minutes;
	prm.journal = 1;
	if ((s->audit = audit_open(signerdb_sqlite(s->db), s->anchor, &prm, err,
	    errlen)) == NULL)
		return -1;
	if (audit_broken(s->audit) != NULL) {
		log_msg(LOG_CRIT, "AUDIT LOG FAILED ITS CHECK: %s. Every change "
		    "is refused until this is resolved (iotca audit verify)",
		    audit_broken(s->audit));
		return 0;
	}
	return record_start(s, err, errlen);
}

/* The audit log's checkpoint key, for the key reuse rule; "" if unknown. */
static void
audit_key_spki(struct signer *s)
{
	char *pem = audit_pubkey_pem(s->audit);
	EVP_PKEY *k = NULL;
	BIO *b = NULL;

	s->audit_spki[0] = '\0';
	if (pem != NULL && (b = BIO_new_mem_buf(pem, -1)) != NULL &&
	    (k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL)) != NULL &&
	    policy_spki_sha256(k, s->audit_spki, sizeof(s->audit_spki)) == -1)
		s->audit_spki[0] = '\0';
	ERR_clear_error();
	EVP_PKEY_free(k);
	BIO_free(b);
	free(pem);
}

static int
open_all(struct signer *s, const char *owner_auth, char *err, size_t errlen)
{
	struct ks_config kc;

	config_ks(&s->cfg, &kc);
	s->pol.server_name = s->cfg.name;
	s->pol.domains = (const char *const *)s->cfg.domains;
	s->pol.ndomains = s->cfg.ndomains;
	s->pol.strict_cn = s->cfg.strict_cn;
	s->pol.max_days = s->cfg.max_days;
	if (asprintf(&s->crl_url, "%s%s", s->cfg.publish_url,
	    CONFIG_PUBLISH_CRL_PATH) == -1)
		s->crl_url = NULL;
	if (asprintf(&s->ca_issuers_url, "%s%s", s->cfg.publish_url,
	    CONFIG_PUBLISH_ROOT_PATH) == -1)
		s->ca_issuers_url = NULL;
	if (s->crl_url == NULL || s->ca_issuers_url == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->pol.crl_url = s->crl_url;
	s->pol.ca_issuers_url = s->ca_issuers_url;

	if ((s->ks = ks_new(&kc, err, errlen)) == NULL)
		return -1;
	if ((s->root = read_root(s->cfg.root_cert, err, errlen)) == NULL)
		return -1;
	if ((s->key = ks_load(s->ks, s->cfg.key, err, errlen)) == NULL)
		return -1;
	/* A key that does not match the root would sign certificates nobody
	 * can verify: refuse to start instead. */
	if (EVP_PKEY_eq(X509_get0_pubkey(s->root), s->key) != 1) {
		snprintf(err, errlen, "the key %s does not belong to the root "
		    "certificate %s", s->cfg.key, s->cfg.root_cert);
		ERR_clear_error();
		return -1;
	}
	/* Device certificates are signed by the key's own thread, with a
	 * key store of its own; the loop keeps s->key for CRLs, which the
	 * TPM (or its resource manager) serialises with the thread's work. */
	if ((s->ksg = keysigner_start(&kc, s->cfg.key,
	    X509_get0_pubkey(s->root), err, errlen)) == NULL)
		return -1;
	if ((s->root_pem = pem_of_x509(s->root)) == NULL ||
	    policy_spki_sha256(X509_get0_pubkey(s->root), s->root_spki,
	    sizeof(s->root_spki)) == -1) {
		snprintf(err, errlen, "root certificate: cannot encode");
		return -1;
	}
	if ((s->notify = notify_new(s->cfg.notify_command)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((s->db = signerdb_open(s->cfg.db, err, errlen)) == NULL)
		return -1;
	if (open_audit(s, owner_auth, err, errlen) == -1)
		return -1;
	audit_key_spki(s);
	/* A CRL nobody could account for is not signed: a broken audit log
	 * leaves the signer without one until it is dealt with. */
	if (audit_broken(s->audit) != NULL)
		return 0;
	return refresh_crl(s, err, errlen);
}

int
signer_open(struct signer *s, char *err, size_t errlen)
{
	char auth[CONFIG_OWNER_AUTH_MAX + 1];
	int rc;

	s->parked_tail = &s->parked;
	if (config_owner_auth(&s->cfg, auth, err, errlen) == -1)
		return -1;
	rc = open_all(s, auth, err, errlen);
	OPENSSL_cleanse(auth, sizeof(auth));
	return rc;
}

/* The summary of a peer's refusals that were counted, not recorded. */
static void
record_refusals(void *arg, const struct peer *p, json_t *fields)
{
	struct signer *s = arg;
	char err[512];

	if (fields == NULL || audit_broken(s->audit) != NULL) {
		json_decref(fields);
		return;
	}
	if (record_alone(s, event("requests_refused", p, fields), err,
	    sizeof(err)) == -1)
		log_msg(LOG_ERR, "refusal summary not recorded: %s", err);
}

/*
 * A refusal for the audit log: the first of its peer's interval on its own
 * (ev, stolen), the rest counted for the summary (refusals.h).
 */
static void
refusal_record(struct signer *s, const struct peer *p, const char *account,
    const char *op, const char *code, json_t *ev)
{
	char err[512];

	if (s->refusals == NULL && (s->refusals = refusals_new()) == NULL) {
		json_decref(ev);
		log_msg(LOG_ERR, "refusal not recorded: out of memory");
		return;
	}
	if (refusals_note(s->refusals, p, account, op, code, time(NULL)) == 0) {
		json_decref(ev);
		return;
	}
	if (record_alone(s, ev, err, sizeof(err)) == -1)
		log_msg(LOG_ERR, "refusal not recorded: %s", err);
}

void
signer_shutdown(struct signer *s)
{
	char err[512];

	if (s->audit == NULL || audit_broken(s->audit) != NULL)
		return;
	refusals_flush(s->refusals, time(NULL), 1, record_refusals, s);
	/* A revocation of the last moment is published before we go, not
	 * only at the next start (which may be a long way off). */
	if (s->crl_dirty && refresh_crl(s, err, sizeof(err)) == -1)
		log_msg(LOG_ERR, "CRL at shutdown: %s", err);
	if (record_alone(s, event("signer_stop", NULL, NULL), err,
	    sizeof(err)) == -1 || audit_checkpoint(s->audit, err,
	    sizeof(err)) == -1)
		log_msg(LOG_ERR, "audit log at shutdown: %s", err);
}

/* A notify command finished, was killed, or never ran: its record. */
static void
notify_done(void *arg, const struct notify_result *r)
{
	struct signer *s = arg;
	char err[512];
	json_t *f;

	if (r->error[0] != '\0')
		log_msg(LOG_WARNING, "notify_command for request %lld: %s",
		    r->request, r->error);
	else if (!r->exited || r->exit_status != 0)
		log_msg(LOG_WARNING, "notify_command for request %lld (pid %ld) "
		    "%s %d", r->request, (long)r->pid, r->timed_out ? "killed "
		    "after its time, signal" : r->exited ? "exited with" :
		    "killed by signal", r->exited ? r->exit_status : r->signal);
	if (s->audit == NULL || audit_broken(s->audit) != NULL)
		return;
	f = json_pack("{s:I, s:s}", "request", (json_int_t)r->request,
	    "command", s->cfg.notify_command != NULL ? s->cfg.notify_command :
	    "");
	if (f != NULL && r->pid > 0)
		json_object_set_new(f, "pid", json_integer(r->pid));
	if (f != NULL && r->error[0] != '\0')
		json_object_set_new(f, "error", json_string(r->error));
	else if (f != NULL && r->exited)
		json_object_set_new(f, "exit_status",
		    json_integer(r->exit_status));
	else if (f != NULL) {
		json_object_set_new(f, "signal", json_integer(r->signal));
		json_object_set_new(f, "timed_out", json_boolean(r->timed_out));
	}
	if (record_alone(s, event("approval_notified", NULL, f), err,
	    sizeof(err)) == -1)
		log_msg(LOG_ERR, "notification not recorded: %s", err);
}

int
server_tick(struct signer *s)
{
	int ms = 60 * 1000, nms;

	/* This turn's issuance, if one waits; if more do, come back at
	 * once (after whatever else is ready). */
	if (next_turn(s))
		return 0;
	if (s->audit != NULL)
		ms = audit_tick(s->audit, time(NULL)) * 1000;
	/* Refusal summaries are written when their interval ends. */
	if ((nms = refusals_flush(s->refusals, time(NULL), 0, record_refusals,
	    s)) >= 0 && nms * 1000 < ms)
		ms = nms * 1000;
	/* Running notify commands are looked at often; none: no cost. */
	if ((nms = notify_reap(s->notify, time(NULL), notify_done, s)) >= 0 &&
	    nms < ms)
		ms = nms;
	/* After the requests that came together: one CRL for all their
	 * revocations. */
	if ((nms = crl_tick(s)) >= 0 && nms < ms)
		ms = nms;
	return ms;
}

void
server_refused_peer(struct signer *s, const struct peer *p)
{
	if (s->audit != NULL && audit_broken(s->audit) == NULL)
		refusal_record(s, p, NULL, "connect", PROTO_E_UNAUTHORIZED,
		    event("connection_refused", p, json_pack("{s:s}", "socket",
		    p->role == ROLE_ADMIN ? "admin" : "signer")));
}

void
signer_close(struct signer *s)
{
	keysigner_free(s->ksg);
	free_work(s);
	audit_close(s->audit);
	anchor_close(s->anchor);
	signerdb_close(s->db);
	EVP_PKEY_free(s->key);
	X509_free(s->root);
	ks_free(s->ks);
	free(s->root_pem);
	free(s->crl_pem);
	OPENSSL_free(s->crl_der);
	free(s->crl_url);
	free(s->ca_issuers_url);
	notify_free(s->notify);
	refusals_free(s->refusals);
	config_free(&s->cfg);
	memset(s, 0, sizeof(*s));
}

static void
fingerprint(X509 *x, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &len) != 1)
		return;
	for (i = 0; i < len && (i + 1) * 3 <= outlen; i++)
		snprintf(out + i * 3, outlen - i * 3, "%02X%s", md[i],
		    i + 1 < len ? ":" : "");
}

static json_t *
op_status(struct signer *s, const struct peer *p, const json_t *req)
{
	char fp[EVP_MAX_MD_SIZE * 3 + 1], err[256], nafter[64];
	const ASN1_TIME *na = X509_get0_notAfter(s->root);
	json_t *doms, *r;
	struct tm tm;
	long valid, revoked;
	size_t i;

	if (signerdb_counts(s->db, &valid, &revoked, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "%s", err);
		return proto_error(PROTO_E_INTERNAL, "database error");
	}
	fingerprint(s->root, fp, sizeof(fp));
	nafter[0] = '\0';
	if (ASN1_TIME_to_tm(na, &tm) == 1)
		strftime(nafter, sizeof(nafter), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if ((doms = json_array()) == NULL)
		return NULL;
	for (i = 0; i < s->cfg.ndomains; i++)
		json_array_append_new(doms, json_string(s->cfg.domains[i]));
	r = json_pack("{s:b, s:s, s:o, s:s, s:b, s:s, s:s, s:s, s:I, s:I, s:i}",
	    "ok", 1, "name", s->cfg.name, "domains", doms,
	    "key_store", s->cfg.key_store,
	    "key_in_hardware", ks_is_hardware(s->ks),
	    "key_algorithm", s->cfg.key_alg,
	    "root_sha256", fp, "root_not_after", nafter,
	    "certs_valid", (json_int_t)valid,
	    "certs_revoked", (json_int_t)revoked,
	    "max_days", s->cfg.max_days);
	if (r != NULL && json_object_set_new(r, "audit",
	    audit_status(s->audit)) == -1) {
		json_decref(r);
		return NULL;
	}
	return r;
}

static json_t *
op_ca(struct signer *s, const struct peer *p, const json_t *req)
{
	return json_pack("{s:b, s:s}", "ok", 1, "pem", s->root_pem);
}

/*
 * The CRL in pages of DER (PROTOCOL.md): a CRL past ~1,000 entries no
 * longer fits one record as PEM.  The page size leaves room for base64's
 * 4/3 and the rest of the reply in PROTO_MAX_MSG.
 */
#define CRL_PAGE_BYTES		45000

static json_t *
crl_page(struct signer *s, json_int_t offset)
{
	size_t off = (size_t)offset, n;
	char *b64;
	json_t *r;

	if (off > s->crl_der_len)
		return proto_error(PROTO_E_BAD_REQUEST, "\"offset\" is past "
		    "the end of the CRL");
	n = s->crl_der_len - off;
	if (n > CRL_PAGE_BYTES)
		n = CRL_PAGE_BYTES;
	if ((b64 = malloc(4 * ((n + 2) / 3) + 1)) == NULL)
		return NULL;
	(void)EVP_EncodeBlock((unsigned char *)b64, s->crl_der + off, (int)n);
	r = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:s}", "ok", 1,
	    "number", (json_int_t)s->crl_number,
	    "this_update", (json_int_t)s->crl_this_update,
	    "next_update", (json_int_t)s->crl_next_update,
	    "total", (json_int_t)s->crl_der_len, "offset", offset, "der", b64);
	free(b64);
	return r;
}

static json_t *
op_crl(struct signer *s, const struct peer *p, const json_t *req)
{
	const json_t *jo = json_object_get(req, "offset");
	const json_t *jn = json_object_get(req, "number");
	char err[256];

	if ((jo != NULL && (!json_is_integer(jo) ||
	    json_integer_value(jo) < 0)) || (jn != NULL &&
	    !json_is_integer(jn)))
		return proto_error(PROTO_E_BAD_REQUEST, "\"offset\" and "
		    "\"number\" must be integers, offset >= 0");
	/* Stale after a revocation, or half its life gone: sign it now, so
	 * a reader never sees an old one. */
	if ((s->audit == NULL || audit_broken(s->audit) == NULL) &&
	    crl_fresh(s, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "CRL: %s", err);
		if (s->crl_pem == NULL)
			return proto_error(PROTO_E_INTERNAL, "cannot sign the CRL");
	}
	if (s->crl_pem == NULL || s->crl_der == NULL)
		return proto_error(PROTO_E_INTERNAL, "no CRL: the audit log "
		    "failed its check (iotca audit verify)");
	/* The caller's copy is current: say so in a few bytes. */
	if (jn != NULL && json_integer_value(jn) == s->crl_number &&
	    (jo == NULL || json_integer_value(jo) == 0))
		return json_pack("{s:b, s:b, s:I, s:I, s:I, s:I}", "ok", 1,
		    "unchanged", 1, "number", (json_int_t)s->crl_number,
		    "this_update", (json_int_t)s->crl_this_update,
		    "next_update", (json_int_t)s->crl_next_update,
		    "total", (json_int_t)s->crl_der_len);
	if (jo != NULL)
		return crl_page(s, json_integer_value(jo));
	if (strlen(s->crl_pem) > CRL_PAGE_BYTES)
		return proto_error(PROTO_E_TOO_LARGE, "the CRL is too large "
		    "for one record as PEM: ask for it in pages of DER with "
		    "\"offset\"");
	return json_pack("{s:b, s:s, s:I, s:I, s:I, s:I}", "ok", 1,
	    "pem", s->crl_pem, "number", (json_int_t)s->crl_number,
	    "this_update", (json_int_t)s->crl_this_update,
	    "next_update", (json_int_t)s->crl_next_update,
	    "total", (json_int_t)s->crl_der_len);
}

static int
valid_serial(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 40)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'F')))
			return 0;
	return 1;
}

static json_t *
op_cert(struct signer *s, const struct peer *p, const json_t *req)
{
	const char *serial = json_string_value(json_object_get(req, "serial"));
	char err[256];
	json_t *c;

	if (serial == NULL || !valid_serial(serial))
		return proto_error(PROTO_E_BAD_REQUEST,
		    "\"serial\" must be upper-case hex");
	if ((c = signerdb_get_cert(s->db, serial, err, sizeof(err))) == NULL) {
		if (err[0] != '\0') {
			log_msg(LOG_ERR, "%s", err);
			return proto_error(PROTO_E_INTERNAL, "database error");
		}
		return proto_error(PROTO_E_NOT_FOUND, "no such certificate");
	}
	return json_pack("{s:b, s:o}", "ok", 1, "cert", c);
}

/*
 * Listings come in pages (PROTOCOL.md): at most "limit" rows, and rows of
 * at most LIST_PAGE_BYTES of JSON, so that the reply always fits in one
 * record; the rest of it ("ok", the member's name, "more") is far below
 * the margin.  The caller follows "more" with the last row as "after".
 */
#define LIST_PAGE_MAX		500
#define LIST_PAGE_DEFAULT	100
#define LIST_PAGE_BYTES		(PROTO_MAX_MSG - 1024)
#define LIST_EXPIRING_MAX	(10LL * 366 * 86400)

static int valid_device_id(const char *);

/* "limit" and "device", which every listing takes; NULL, or the refusal. */
static json_t *
list_args(const json_t *req, int *limit, const char **device)
{
	const json_t *jl = json_object_get(req, "limit");
	const json_t *jd = json_object_get(req, "device");

	*limit = LIST_PAGE_DEFAULT;
	*device = NULL;
	if (jl != NULL) {
		if (!json_is_integer(jl) || json_integer_value(jl) < 1 ||
		    json_integer_value(jl) > LIST_PAGE_MAX)
			return proto_error(PROTO_E_BAD_REQUEST, "\"limit\" must "
			    "be an integer from 1 to 500");
		*limit = (int)json_integer_value(jl);
	}
	if (jd != NULL) {
		if (!json_is_string(jd) || !valid_device_id(json_string_value(jd)))
			return proto_error(PROTO_E_BAD_REQUEST, "\"device\" must "
			    "be a device ID (one lower-case DNS label)");
		*device = json_string_value(jd);
	}
	return NULL;
}

static json_t *
op_certs(struct signer *s, const struct peer *p, const json_t *req)
{
	const json_t *jst = json_object_get(req, "status");
	const json_t *jexp = json_object_get(req, "expiring_within");
	const json_t *jafter = json_object_get(req, "after");
	struct cert_filter f;
	char err[256];
	json_t *arr, *refused;
	int more, rc;

	memset(&f, 0, sizeof(f));
	if ((refused = list_args(req, &f.limit, &f.device_id)) != NULL)
		return refused;
	if (jst != NULL) {
		f.status = json_string_value(jst);
		if (f.status == NULL || (strcmp(f.status, "valid") != 0 &&
		    strcmp(f.status, "revoked") != 0 &&
		    strcmp(f.status, "expired") != 0))
			return proto_error(PROTO_E_BAD_REQUEST, "\"status\" must "
			    "be valid, revoked or expired");
	}
	if (jexp != NULL) {
		if (!json_is_integer(jexp) || json_integer_value(jexp) < 1 ||
		    json_integer_value(jexp) > LIST_EXPIRING_MAX)
			return proto_error(PROTO_E_BAD_REQUEST, "\"expiring_within"
			    "\" must be 1 to 316224000 seconds");
		if (f.status != NULL && strcmp(f.status, "valid") != 0)
			return proto_error(PROTO_E_BAD_REQUEST, "\"expiring_within"
			    "\" lists valid certificates only");
		f.expiring_within = json_integer_value(jexp);
	}
	if (jafter != NULL) {
		f.after = json_string_value(jafter);
		if (f.after == NULL || !valid_serial(f.after))
			return proto_error(PROTO_E_BAD_REQUEST, "\"after\" must "
			    "be the serial of the previous page's last row");
	}
	f.max_bytes = LIST_PAGE_BYTES;
	rc = signerdb_list_certs(s->db, &f, &arr, &more, err, sizeof(err));
	if (rc == SIGNERDB_NOT_FOUND)
		return proto_error(PROTO_E_BAD_REQUEST, "\"after\" names no "
		    "certificate");
	if (rc != 0) {
		log_msg(LOG_ERR, "%s", err);
		return proto_error(PROTO_E_INTERNAL, "database error");
	}
	return json_pack("{s:b, s:o, s:b}", "ok", 1, "certs", arr, "more", more);
}

/*
 * The front end revokes on behalf of an ACME account (RFC 8555 7.6): only
 * certificates issued to that account.  Returns 1 if allowed.
 */
static int
front_end_may_revoke(struct signer *s, const char *serial, const json_t *req,
    json_t **resp)
{
	const char *account = json_string_value(json_object_get(req, "account"));
	const char *owner;
	char err[256];
	json_t *c;
	int ok;

	if (account == NULL) {
		*resp = proto_error(PROTO_E_BAD_REQUEST, "\"account\" is required "
		    "on the signer socket");
		return 0;
	}
	if ((c = signerdb_get_cert(s->db, serial, err, sizeof(err))) == NULL) {
		*resp = err[0] != '\0' ? proto_error(PROTO_E_INTERNAL,
		    "database error") : proto_error(PROTO_E_NOT_FOUND,
		    "no such certificate");
		return 0;
	}
	owner = json_string_value(json_object_get(c, "account"));
	ok = owner != NULL && strcmp(owner, account) == 0;
	json_decref(c);
	if (!ok)
		*resp = proto_error(PROTO_E_UNAUTHORIZED, "the certificate was "
		    "not issued to that account");
	return ok;
}

static json_t *
op_revoke(struct signer *s, const struct peer *p, const json_t *req)
{
	json_t *resp = NULL;
	const char *serial = json_string_value(json_object_get(req, "serial"));
	const json_t *jr = json_object_get(req, "reason");
	char err[256];
	int reason = 0, rc;

	if (serial == NULL || !valid_serial(serial))
		return proto_error(PROTO_E_BAD_REQUEST,
		    "\"serial\" must be upper-case hex");
	if (jr != NULL && (!json_is_string(jr) ||
	    (reason = certgen_reason_parse(json_string_value(jr))) == -1))
		return proto_error(PROTO_E_BAD_REQUEST, "unknown revocation "
		    "reason (certificateHold and removeFromCRL are not offered)");
	if (p->role == ROLE_FRONTEND && front_end_may_revoke(s, serial, req,
	    &resp) == 0)
		return resp;
	if (tx_begin(s, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "%s", err);
		return proto_error(PROTO_E_INTERNAL, "database error");
	}
	rc = signerdb_revoke(s->db, serial, reason, time(NULL), err, sizeof(err));
	/* A compromised key is never certified again, whatever becomes of
	 * this certificate's row (draft-sweet-iot-acme 4.11). */
	if (rc == 0 && reason == CRL_REASON_KEY_COMPROMISE)
		rc = signerdb_key_compromised(s->db, serial, time(NULL), err,
		    sizeof(err));
	if (rc != 0)
		tx_rollback(s);
	if (rc == SIGNERDB_NOT_FOUND)
		return proto_error(PROTO_E_NOT_FOUND, "no such certificate");
	if (rc == SIGNERDB_ALREADY)
		return proto_error("alreadyRevoked", "certificate already revoked");
	if (rc == -1) {
		log_msg(LOG_ERR, "%s", err);
		return proto_error(PROTO_E_INTERNAL, "database error");
	}
	if (tx_record(s, event("certificate_revoked", p, json_pack("{s:s, s:s}",
	    "serial", serial, "reason", certgen_reason_name(reason))), err,
	    sizeof(err)) == -1 || tx_commit(s, err, sizeof(err)) == -1) {
		tx_rollback(s);
		return not_recorded("revocation", err);
	}
	log_msg(LOG_NOTICE, "certificate %s revoked (%s) by %s", serial,
	    certgen_reason_name(reason), p->who);
	crl_stale(s);
	return proto_ok();
}

static json_t *
names_json(const struct csr_request *r)
{
	json_t *arr = json_array();
	char buf[64];
	size_t i;

	if (arr == NULL)
		return NULL;
	for (i = 0; i < r->ndns; i++)
		if (json_array_append_new(arr, json_string(r->dns[i])) == -1)
			goto fail;
	for (i = 0; i < r->nip; i++) {
		if (inet_ntop(r->iplen[i] == 4 ? AF_INET : AF_INET6, r->ip[i],
		    buf, sizeof(buf)) == NULL ||
		    json_array_append_new(arr, json_string(buf)) == -1)
			goto fail;
	}
	return arr;
fail:
	json_decref(arr);
	return NULL;
}

static int
serial_hex(X509 *x, char *out, size_t outlen)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex;
	int rc = -1;

	if (bn != NULL && (hex = BN_bn2hex(bn)) != NULL) {
		if (strlen(hex) < outlen) {
			memcpy(out, hex, strlen(hex) + 1);
			rc = 0;
		}
		OPENSSL_free(hex);
	}
	BN_free(bn);
	return rc;
}

static time_t
asn1_epoch(const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return (time_t)-1;
	return timegm(&tm);
}

/* An account is the front end's opaque, stable name for the requester (its
 * ACME account ID): keep it tame. */
static int
valid_account(const char *a)
{
	size_t n = strlen(a);

	if (n == 0 || n > 128)
		return 0;
	for (; *a != '\0'; a++)
		if (!((*a >= 'a' && *a <= 'z') || (*a >= 'A' && *a <= 'Z') ||
		    (*a >= '0' && *a <= '9') || *a == '-' || *a == '_'))
			return 0;
	return 1;
}

/*
 * Issuance goes in two steps around the key, which signs in a thread of
 * its own (keysigner.h): issue_and_record() builds and lints the
 * certificate and hands the bytes to sign to the key; issue_finish(), when
 * the signature comes back, checks it, records the certificate with its
 * audit record and makes the reply.  Meanwhile the loop prepares the next
 * certificates and answers other requests, so the key never waits for the
 * CPU work of a certificate and operators never wait for the key.  What
 * was checked before signing stays true until the record is made: a key
 * or an order with a certificate at the key is not passed a second time
 * (the request waits, key_in_flight(), order_in_flight()), and operators'
 * decisions wait for the certificates at the key (server_handle()).
 */
struct job {
	struct job	*next;
	uint64_t	 tag;		/* where the reply goes (the loop's) */
	struct peer	 peer;
	struct policy	 pol;
	X509_REQ	*req;
	struct csr_request *cr;
	int		 days;
	char		*account, *order, *delegation;
	json_t		*names;
	char		 spki[POLICY_SPKI_HEX_LEN + 1];	/* the CSR's key */
	X509		*cert;		/* built, waiting for its signature */
	int		 tries;		/* serials drawn */
};

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	X509_REQ_free(j->req);
	free(j->cr);
	free(j->account);
	free(j->order);
	free(j->delegation);
	json_decref(j->names);
	X509_free(j->cert);
	free(j);
}

static void
job_unlink(struct signer *s, struct job *j)
{
	struct job **pp;

	for (pp = &s->jobs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			s->njobs--;
			return;
		}
}

/* Is a certificate for this key (SPKI SHA-256, hex) at the key now? */
static int
key_in_flight(const struct signer *s, const char *spki)
{
	const struct job *j;

	for (j = s->jobs; j != NULL; j = j->next)
		if (strcmp(j->spki, spki) == 0)
			return 1;
	return 0;
}

static int
order_in_flight(const struct signer *s, const char *account, const char *order)
{
	const struct job *j;

	for (j = s->jobs; j != NULL; j = j->next)
		if (j->order != NULL && j->account != NULL &&
		    strcmp(j->order, order) == 0 &&
		    strcmp(j->account, account) == 0)
			return 1;
	return 0;
}

/* Build j's certificate (a fresh serial) and give it to the key; NULL, or
 * the error reply. */
static json_t *
job_submit(struct signer *s, struct job *j)
{
	unsigned char *tbs = NULL;
	size_t len = 0;
	char err[256];

	X509_free(j->cert);
	j->tries++;
	if ((j->cert = certgen_device_tbs(s->ks, s->key, s->root, &j->pol,
	    j->req, j->cr, j->days, &tbs, &len, err, sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "issue for %s: %s", j->cr->device_id, err);
		return proto_error(PROTO_E_INTERNAL, err);
	}
	if (keysigner_submit(s->ksg, tbs, len, j, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "issue for %s: %s", j->cr->device_id, err);
		return proto_error(PROTO_E_INTERNAL, "the CA key cannot sign now");
	}
	return NULL;
}

static int
dup_or_null(char **dst, const char *src)
{
	*dst = NULL;
	return src == NULL || (*dst = strdup(src)) != NULL;
}

/*
 * Start the issuance of a checked request: the certificate goes to the key
 * and s->later is set (the reply comes from issue_finish()), or the error
 * reply is returned.  Takes *req and *cr (set to NULL) once queued.
 */
static json_t *
issue_and_record(struct signer *s, const struct peer *p,
    const struct policy *pol, X509_REQ **req, struct csr_request **cr,
    int days, const char *account, const char *order, const char *delegation)
{
	struct job *j;
	json_t *resp;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->tag = s->tag;
	j->peer = *p;
	j->pol = *pol;
	j->days = days;
	if ((j->names = names_json(*cr)) == NULL ||
	    !dup_or_null(&j->account, account) ||
	    !dup_or_null(&j->order, order) ||
	    !dup_or_null(&j->delegation, delegation)) {
		job_free(j);
		return NULL;
	}
	if (policy_spki_sha256(X509_REQ_get0_pubkey(*req), j->spki,
	    sizeof(j->spki)) == -1) {
		job_free(j);
		return proto_error("badCSR", "the CSR's key cannot be encoded");
	}
	j->req = *req;
	j->cr = *cr;
	*req = NULL;
	*cr = NULL;
	if ((resp = job_submit(s, j)) != NULL) {
		job_free(j);
		return resp;
	}
	j->next = s->jobs;
	s->jobs = j;
	s->njobs++;
	s->later = 1;
	return NULL;
}

/*
 * The key's answer for j (sig NULL: kerr says why): check, record, reply.
 * Returns 1 when j went back to the key (its serial was taken already),
 * else 0 with *resp the reply; the certificate exists only if its record
 * does.
 */
static int
issue_finish(struct signer *s, struct job *j, const unsigned char *sig,
    size_t siglen, const char *kerr, json_t **resp)
{
	struct cert_record rec;
	char err[256], serial[64], spki[POLICY_SPKI_HEX_LEN + 1];
	const struct peer *p = &j->peer;
	const struct csr_request *cr = j->cr;
	json_t *fields;
	char *pem = NULL;
	int rc;

	*resp = NULL;
	if (sig == NULL) {
		log_msg(LOG_ERR, "issue for %s: %s", cr->device_id, kerr);
		*resp = proto_error(PROTO_E_INTERNAL, kerr);
		return 0;
	}
	if (certgen_device_seal(j->cert, s->root, sig, siglen, err,
	    sizeof(err)) == -1) {
		log_msg(LOG_ERR, "issue for %s: %s", cr->device_id, err);
		*resp = proto_error(PROTO_E_INTERNAL, err);
		return 0;
	}
	if (serial_hex(j->cert, serial, sizeof(serial)) == -1 ||
	    (pem = pem_of_x509(j->cert)) == NULL ||
	    policy_spki_sha256(X509_get0_pubkey(j->cert), spki,
	    sizeof(spki)) == -1) {
		*resp = proto_error(PROTO_E_INTERNAL, "cannot encode certificate");
		goto out;
	}
	memset(&rec, 0, sizeof(rec));
	rec.serial_hex = serial;
	rec.device_id = cr->device_id;
	rec.names = j->names;
	rec.account = j->account;
	rec.order_token = j->order;
	rec.delegation = j->delegation;
	rec.requested_by = p->who;
	rec.not_before = asn1_epoch(X509_get0_notBefore(j->cert));
	rec.not_after = asn1_epoch(X509_get0_notAfter(j->cert));
	rec.pem = pem;
	rec.spki_sha256 = spki;
	if ((rc = tx_begin(s, err, sizeof(err))) == 0 &&
	    (rc = signerdb_insert_cert(s->db, &rec, err, sizeof(err))) != 0)
		tx_rollback(s);
	if (rc == SIGNERDB_DUPLICATE && j->tries < ISSUE_SERIAL_TRIES) {
		log_msg(LOG_WARNING, "serial %s already used: drawing another",
		    serial);
		free(pem);
		return (*resp = job_submit(s, j)) == NULL;
	}
	if (rc != 0) {
		log_msg(LOG_ERR, "issue for %s: %s", cr->device_id,
		    rc == -1 ? err : rc == SIGNERDB_ORDER_TAKEN ? "the order "
		    "has a certificate already" : "no unique serial");
		*resp = proto_error(PROTO_E_INTERNAL, "cannot record certificate");
		goto out;
	}
	/* The certificate is handed out only once its record is committed. */
	fields = json_pack("{s:s, s:s, s:O, s:s?, s:I, s:I, s:i, s:s, s:s?}",
	    "serial", serial, "device_id", cr->device_id, "names", j->names,
	    "account", j->account, "not_before", (json_int_t)rec.not_before,
	    "not_after", (json_int_t)rec.not_after, "days", j->days, "kind",
	    j->pol.server_name == NULL ? "server" : "device", "delegation",
	    j->delegation);
	if (fields != NULL && cr->grant_cmc_ra &&
	    json_object_set_new(fields, "cmc_ra", json_true()) == -1) {
		json_decref(fields);
		fields = NULL;
	}
	if (tx_record(s, event("certificate_issued", p, fields), err,
	    sizeof(err)) == -1 ||
	    tx_commit(s, err, sizeof(err)) == -1) {
		tx_rollback(s);
		*resp = not_recorded("issuance", err);
		goto out;
	}
	log_msg(LOG_NOTICE, "issued %s to %s for %d days, requested by %s",
	    serial, cr->device_id, j->days, p->who);
	*resp = json_pack("{s:b, s:s, s:s, s:O, s:I, s:s, s:s}", "ok", 1,
	    "serial", serial, "device_id", cr->device_id, "names", j->names,
	    "not_after", (json_int_t)rec.not_after, "pem", pem,
	    "chain", s->root_pem);
out:
	free(pem);
	return 0;
}

/* Parse and police a CSR; NULL with *resp set to the refusal. */
static X509_REQ *
checked_csr(const struct peer *p, const struct policy *pol, const char *csr,
    struct csr_request *cr, json_t **resp)
{
	enum policy_err perr;
	char reason[512];
	X509_REQ *req;

	*resp = NULL;
	if (csr == NULL) {
		*resp = proto_error(PROTO_E_BAD_REQUEST, "\"csr\" (PEM) is required");
		return NULL;
	}
	if ((req = policy_parse_csr((const unsigned char *)csr, strlen(csr),
	    reason, sizeof(reason))) == NULL)
		perr = POLICY_BAD_CSR;
	else if ((perr = policy_check_csr(pol, req, cr, reason,
	    sizeof(reason))) == POLICY_OK)
		return req;
	log_msg(LOG_WARNING, "refused CSR from %s: %s", p->who, reason);
	*resp = proto_error(policy_err_type(perr), reason);
	X509_REQ_free(req);
	return NULL;
}

/* A device's own names: <id>.local and <id>.<domain> for each configured
 * domain. */
static int
own_name(const struct signer *s, const char *device_id, const char *name)
{
	size_t n = strlen(device_id), i;
	const char *suffix;

	if (name == NULL || strncmp(name, device_id, n) != 0 || name[n] != '.')
		return 0;
	suffix = name + n + 1;
	if (strcmp(suffix, "local") == 0)
		return 1;
	for (i = 0; i < s->cfg.ndomains; i++)
		if (strcasecmp(suffix, s->cfg.domains[i]) == 0)
			return 1;
	return 0;
}

/*
 * Does an approval cover these names?  It covers the names it was asked
 * for (the IP addresses among them) and the device's own names: an
 * operator approves a device, and a client that orders <id>.home.arpa and
 * then <id>.local is still that device.
 */
static int
names_within(const struct signer *s, const char *device_id,
    const json_t *names, const json_t *approved)
{
	const json_t *n, *a;
	size_t i, j;
	int found;

	json_array_foreach(names, i, n) {
		found = own_name(s, device_id, json_string_value(n));
		json_array_foreach(approved, j, a)
			if (json_equal(n, a))
				found = 1;
		if (!found)
			return 0;
	}
	return 1;
}

/* Tell the operator of a new pending request ([policy] notify_command);
 * the command's end, or why it did not start, is recorded later. */
static void
notify_pending(struct signer *s, long long id, const char *device_id,
    const char *account, const json_t *names)
{
	const char *list[NOTIFY_MAX_NAMES];
	struct notify_result res;
	const json_t *n;
	size_t i, nn = 0;
	pid_t pid;

	if (s->cfg.notify_command == NULL)
		return;
	json_array_foreach(names, i, n)
		if (nn < NOTIFY_MAX_NAMES && json_is_string(n))
			list[nn++] = json_string_value(n);
	if (notify_start(s->notify, id, device_id, account, list, nn, &pid,
	    &res) == -1)
		notify_done(s, &res);
	else
		log_msg(LOG_INFO, "notify_command started for request %lld "
		    "(pid %ld)", id, (long)pid);
}

static json_t *
pending_reply(const char *device_id, long long id)
{
	char reason[200];
	json_t *r;

	snprintf(reason, sizeof(reason), "device %s waits for an operator to "
	    "approve request %lld", device_id, id);
	r = proto_error("approvalPending", reason);
	if (r != NULL && (json_object_set_new(r, "request",
	    json_integer(id)) == -1 || json_object_set_new(r, "retry_after",
	    json_integer(APPROVAL_RETRY_AFTER)) == -1)) {
		json_decref(r);
		return NULL;
	}
	return r;
}

/*
 * Draft 3.4.4: may this account have these names for this device now?
 * Returns 1 to issue, 0 with *resp set to the reply otherwise.
 */
static int
approved(struct signer *s, const struct peer *p, const struct csr_request *cr,
    const json_t *names, const char *csr, const char *account, json_t **resp)
{
	struct approval_request ar;
	json_t *rows, *row;
	const char *status;
	char err[256], reason[400];
	long long id;
	size_t i;

	*resp = NULL;
	if ((rows = signerdb_approvals_for(s->db, cr->device_id, account, err,
	    sizeof(err))) == NULL)
		goto dberror;
	json_array_foreach(rows, i, row) {
		status = json_string_value(json_object_get(row, "status"));
		if (strcmp(status, "approved") == 0 &&
		    names_within(s, cr->device_id, names,
		    json_object_get(row, "names"))) {
			json_decref(rows);
			return 1;
		}
	}
	/* Denials and revocations are final until an operator approves. */
	json_array_foreach(rows, i, row) {
		status = json_string_value(json_object_get(row, "status"));
		if (strcmp(status, "denied") == 0 || strcmp(status, "revoked") == 0) {
			const char *why = json_string_value(json_object_get(row,
			    "reason"));

			snprintf(reason, sizeof(reason), "%s by the operator: %s",
			    strcmp(status, "denied") == 0 ? "denied" :
			    "approval revoked", why != NULL ? why : "no reason given");
			*resp = proto_error("approvalDenied", reason);
			json_decref(rows);
			return 0;
		}
	}
	json_array_foreach(rows, i, row) {
		status = json_string_value(json_object_get(row, "status"));
		if (strcmp(status, "pending") == 0) {
			int same = json_equal(names, json_object_get(row,
			    "names"));

			id = json_integer_value(json_object_get(row, "id"));
			json_decref(rows);
			/* A client polling with the same names is no news; new
			 * names are, and are recorded. */
			if (tx_begin(s, err, sizeof(err)) == -1)
				goto dberror;
			if (signerdb_update_pending(s->db, id, names, csr, err,
			    sizeof(err)) == -1) {
				tx_rollback(s);
				goto dberror;
			}
			if ((!same && tx_record(s, event(
			    "approval_request_updated", p, json_pack("{s:I, s:s, "
			    "s:s, s:O}", "request", (json_int_t)id, "device_id",
			    cr->device_id, "account", account, "names", names)),
			    err, sizeof(err)) == -1) ||
			    tx_commit(s, err, sizeof(err)) == -1) {
				tx_rollback(s);
				*resp = not_recorded("approval request", err);
				return 0;
			}
			*resp = pending_reply(cr->device_id, id);
			return 0;
		}
	}
	json_decref(rows);

	memset(&ar, 0, sizeof(ar));
	ar.device_id = cr->device_id;
	ar.account = account;
	ar.names = names;
	ar.requested_by = p->who;
	ar.csr = csr;
	if (s->cfg.auto_approve)
		ar.decided_by = "auto_approve (lab setting)";
	if (tx_begin(s, err, sizeof(err)) == -1)
		goto dberror;
	if ((id = signerdb_add_approval(s->db, &ar, err, sizeof(err))) == -1) {
		tx_rollback(s);
		goto dberror;
	}
	if (tx_record(s, event(s->cfg.auto_approve ? "approval_auto_granted" :
	    "approval_requested", p, json_pack("{s:I, s:s, s:s, s:O}", "request",
	    (json_int_t)id, "device_id", cr->device_id, "account", account,
	    "names", names)), err, sizeof(err)) == -1 ||
	    tx_commit(s, err, sizeof(err)) == -1) {
		tx_rollback(s);
		*resp = not_recorded("approval request", err);
		return 0;
	}
	if (s->cfg.auto_approve) {
		log_msg(LOG_WARNING, "AUTO-APPROVED device %s for account %s "
		    "(request %lld): auto_approve is a lab setting", cr->device_id,
		    account, id);
		return 1;
	}
	log_msg(LOG_NOTICE, "device %s asks for approval (request %lld, "
	    "account %s)", cr->device_id, id, account);
	notify_pending(s, id, cr->device_id, account, names);
	*resp = pending_reply(cr->device_id, id);
	return 0;
dberror:
	log_msg(LOG_ERR, "approval for %s: %s", cr->device_id, err);
	*resp = proto_error(PROTO_E_INTERNAL, "database error");
	return 0;
}

/*
 * "delegation": the subtree the front end says the account proved with an
 * RFC 9444 ancestor authorization.  The signer checks the subtree itself:
 * a DNS name within a configured domain, never .local.  0 with canon set
 * ("" when absent), -1 with *resp the refusal.
 */
static int
delegation_param(struct signer *s, const json_t *jreq, const char *account,
    char *canon, size_t canonlen, json_t **resp)
{
	const json_t *jd = json_object_get(jreq, "delegation");
	char reason[400];

	canon[0] = '\0';
	if (jd == NULL)
		return 0;
	if (!json_is_string(jd) || json_string_length(jd) !=
	    strlen(json_string_value(jd))) {
		*resp = proto_error(PROTO_E_BAD_REQUEST, "\"delegation\" must be "
		    "a DNS name");
		return -1;
	}
	if (account == NULL) {
		*resp = proto_error(PROTO_E_BAD_REQUEST, "\"delegation\" needs "
		    "\"account\"");
		return -1;
	}
	if (policy_check_subtree(&s->pol, json_string_value(jd), canon,
	    canonlen, reason, sizeof(reason)) != POLICY_OK) {
		canon[0] = '\0';
		*resp = proto_error("rejectedIdentifier", reason);
		return -1;
	}
	return 0;
}

/*
 * Under a delegation the CSR may name DNS names within the subtree only:
 * IP addresses are approved per device, and nothing is .local (the subtree
 * never is).  Returns 1, or 0 with *resp the refusal.
 */
static int
names_under(const struct csr_request *cr, const char *subtree, json_t **resp)
{
	char reason[POLICY_MAX_NAME_LEN * 2 + 100];
	size_t i;

	if (cr->nip > 0) {
		snprintf(reason, sizeof(reason), "an IP address is never issued "
		    "under the delegated subtree %s (IP addresses are approved "
		    "per device)", subtree);
		*resp = proto_error("rejectedIdentifier", reason);
		return 0;
	}
	for (i = 0; i < cr->ndns; i++) {
		if (!policy_name_within(cr->dns[i], subtree)) {
			snprintf(reason, sizeof(reason), "the CSR names %s, which "
			    "is not within the delegated subtree %s", cr->dns[i],
			    subtree);
			*resp = proto_error("rejectedIdentifier", reason);
			return 0;
		}
	}
	return 1;
}

static json_t *
delegation_pending_reply(const char *account, const char *subtree,
    long long id)
{
	char reason[POLICY_MAX_NAME_LEN + 256];
	json_t *r;

	snprintf(reason, sizeof(reason), "account %s asks for the subtree %s; "
	    "request %lld waits for an operator", account, subtree, id);
	r = proto_error("approvalPending", reason);
	if (r != NULL && (json_object_set_new(r, "request",
	    json_integer(id)) == -1 || json_object_set_new(r, "retry_after",
	    json_integer(APPROVAL_RETRY_AFTER)) == -1)) {
		json_decref(r);
		return NULL;
	}
	return r;
}

/* A delegation that is denied or revoked, as the client is told. */
static json_t *
delegation_refused(const json_t *row, const char *subtree)
{
	const char *status = json_string_value(json_object_get(row, "status"));
	const char *why = json_string_value(json_object_get(row, "reason"));
	char reason[POLICY_MAX_NAME_LEN + 300];

	snprintf(reason, sizeof(reason), "the delegation of the subtree %s was "
	    "%s by the operator: %s", subtree, strcmp(status, "denied") == 0 ?
	    "denied" : "revoked", why != NULL ? why : "no reason given");
	return proto_error("approvalDenied", reason);
}

/* The first request of an account for a subtree: a pending delegation
 * request (approved at once with auto_approve).  1 to issue, 0 with *resp. */
static int
delegation_request(struct signer *s, const struct peer *p,
    const char *subtree, const char *account, const json_t *names,
    const char *csr, json_t **resp)
{
	struct approval_request ar;
	const char *list[1] = { subtree };
	struct notify_result res;
	char err[256];
	long long id;
	pid_t pid;

	memset(&ar, 0, sizeof(ar));
	ar.device_id = "";
	ar.account = account;
	ar.names = names;
	ar.requested_by = p->who;
	ar.csr = csr;
	ar.subtree = subtree;
	if (s->cfg.auto_approve)
		ar.decided_by = "auto_approve (lab setting)";
	if (tx_begin(s, err, sizeof(err)) == -1)
		goto dberror;
	if ((id = signerdb_add_approval(s->db, &ar, err, sizeof(err))) == -1) {
		tx_rollback(s);
		goto dberror;
	}
	if (tx_record(s, event(s->cfg.auto_approve ? "delegation_auto_granted" :
	    "delegation_requested", p, json_pack("{s:I, s:s, s:s, s:O}",
	    "request", (json_int_t)id, "subtree", subtree, "account", account,
	    "names", names)), err, sizeof(err)) == -1 ||
	    tx_commit(s, err, sizeof(err)) == -1) {
		tx_rollback(s);
		*resp = not_recorded("delegation request", err);
		return 0;
	}
	if (s->cfg.auto_approve) {
		log_msg(LOG_WARNING, "AUTO-APPROVED the subtree %s for account "
		    "%s (request %lld): auto_approve is a lab setting", subtree,
		    account, id);
		return 1;
	}
	log_msg(LOG_NOTICE, "account %s asks for the subtree %s (request %lld)",
	    account, subtree, id);
	/* The notify command hears of it as of a device with no ID, whose one
	 * name is the subtree. */
	if (s->cfg.notify_command != NULL) {
		if (notify_start(s->notify, id, "", account, list, 1, &pid,
		    &res) == -1)
			notify_done(s, &res);
		else
			log_msg(LOG_INFO, "notify_command started for request "
			    "%lld (pid %ld)", id, (long)pid);
	}
	*resp = delegation_pending_reply(account, subtree, id);
	return 0;
dberror:
	log_msg(LOG_ERR, "delegation of %s: %s", subtree, err);
	*resp = proto_error(PROTO_E_INTERNAL, "database error");
	return 0;
}

/*
 * May this account issue under the subtree without a per-device approval?
 * The signer's own record decides, keyed by (account, subtree): approved
 * issues; denied or revoked is approvalDenied; pending is asked again (only
 * its time changes); none is a new request from the front end.  An
 * operator's issue never makes a request: without an approved delegation
 * it is refused.  Returns 1, or 0 with *resp the reply.
 */
static int
delegated(struct signer *s, const struct peer *p, const char *subtree,
    const char *account, const json_t *names, const char *csr,
    json_t **resp)
{
	json_t *rows, *row;
	const char *status;
	char err[256], reason[POLICY_MAX_NAME_LEN + 200];
	long long id;
	size_t i;

	*resp = NULL;
	if ((rows = signerdb_delegations_for(s->db, subtree, account, err,
	    sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "delegation of %s: %s", subtree, err);
		*resp = proto_error(PROTO_E_INTERNAL, "database error");
		return 0;
	}
	json_array_foreach(rows, i, row) {
		status = json_string_value(json_object_get(row, "status"));
		if (strcmp(status, "approved") == 0) {
			json_decref(rows);
			return 1;
		}
	}
	json_array_foreach(rows, i, row) {
		status = json_string_value(json_object_get(row, "status"));
		if (strcmp(status, "denied") == 0 ||
		    strcmp(status, "revoked") == 0) {
			*resp = delegation_refused(row, subtree);
			json_decref(rows);
			return 0;
		}
	}
	if (p->role == ROLE_ADMIN) {
		json_decref(rows);
		snprintf(reason, sizeof(reason), "account %s has no approved "
		    "delegation of the subtree %s", account, subtree);
		*resp = proto_error("approvalDenied", reason);
		return 0;
	}
	json_array_foreach(rows, i, row) {
		status = json_string_value(json_object_get(row, "status"));
		if (strcmp(status, "pending") != 0)
			continue;
		id = json_integer_value(json_object_get(row, "id"));
		json_decref(rows);
		if (tx_begin(s, err, sizeof(err)) == -1 ||
		    signerdb_touch_pending(s->db, id, err, sizeof(err)) == -1 ||
		    tx_commit(s, err, sizeof(err)) == -1) {
			tx_rollback(s);
			log_msg(LOG_ERR, "delegation of %s: %s", subtree, err);
			*resp = proto_error(PROTO_E_INTERNAL, "database error");
			return 0;
		}
		*resp = delegation_pending_reply(account, subtree, id);
		return 0;
	}
	json_decref(rows);
	return delegation_request(s, p, subtree, account, names, csr, resp);
}

/*
 * The front end's idempotency key: "order", its stable token for the
 * request (iotca-acmed's random order ID), only with "account".  Returns 0
 * with *order set (NULL when absent), -1 with *resp the refusal.
 */
static int
order_param(const json_t *jreq, const char *account, const char **order,
    json_t **resp)
{
	const json_t *jo = json_object_get(jreq, "order");

	*order = NULL;
	if (jo == NULL)
		return 0;
	if (!json_is_string(jo) || !valid_account(json_string_value(jo))) {
		*resp = proto_error(PROTO_E_BAD_REQUEST, "\"order\" must be 1 "
		    "to 128 characters of [A-Za-z0-9_-]");
		return -1;
	}
	if (account == NULL) {
		*resp = proto_error(PROTO_E_BAD_REQUEST, "\"order\" needs "
		    "\"account\"");
		return -1;
	}
	*order = json_string_value(jo);
	return 0;
}

static X509 *
cert_of_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x;

	if (b == NULL)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return x;
}

/* Does the CSR (PEM) carry the key of the certificate c (with "pem")? */
static int
csr_has_cert_key(const char *csr, const json_t *c)
{
	const char *pem = json_string_value(json_object_get(c, "pem"));
	char reason[256];
	X509_REQ *req = NULL;
	X509 *x = NULL;
	int same = 0;

	if (csr != NULL && pem != NULL &&
	    (req = policy_parse_csr((const unsigned char *)csr, strlen(csr),
	    reason, sizeof(reason))) != NULL &&
	    (x = cert_of_pem(pem)) != NULL)
		same = EVP_PKEY_eq(X509_REQ_get0_pubkey(req),
		    X509_get0_pubkey(x)) == 1;
	X509_REQ_free(req);
	X509_free(x);
	ERR_clear_error();
	return same;
}

/*
 * An order asked again (its answer was lost: the front end crashed or gave
 * up waiting) gets the certificate it was issued, never a second one; one
 * revoked since is refused.  Checked before the CSR's policy, since a
 * repeat carries a key that is certified by now.  Returns 1 with *resp the
 * answer, 0 when the order has no certificate yet.
 */
static int
answered_before(struct signer *s, const struct peer *p, const char *csr,
    const char *account, const char *order, json_t **resp)
{
	const char *serial, *status;
	char err[256], reason[256];
	json_t *c;

	if ((c = signerdb_cert_for_order(s->db, account, order, err,
	    sizeof(err))) == NULL) {
		if (err[0] == '\0')
			return 0;
		log_msg(LOG_ERR, "%s", err);
		*resp = proto_error(PROTO_E_INTERNAL, "database error");
		return 1;
	}
	serial = json_string_value(json_object_get(c, "serial"));
	status = json_string_value(json_object_get(c, "status"));
	if (status != NULL && strcmp(status, "revoked") == 0) {
		snprintf(reason, sizeof(reason), "the certificate issued for "
		    "this order (serial %s) has been revoked (%s)", serial,
		    json_string_value(json_object_get(c, "reason")) ?: "?");
		*resp = proto_error("alreadyRevoked", reason);
	} else if (!csr_has_cert_key(csr, c)) {
		snprintf(reason, sizeof(reason), "this order was answered with "
		    "certificate %s, for another key", serial);
		*resp = proto_error(PROTO_E_BAD_REQUEST, reason);
	} else {
		log_msg(LOG_NOTICE, "order %s of account %s asked again: "
		    "certificate %s handed out again to %s", order, account,
		    serial, p->who);
		*resp = json_pack("{s:b, s:O, s:O, s:O, s:O, s:O, s:s, s:b}",
		    "ok", 1, "serial", json_object_get(c, "serial"),
		    "device_id", json_object_get(c, "device_id"),
		    "names", json_object_get(c, "names"),
		    "not_after", json_object_get(c, "not_after"),
		    "pem", json_object_get(c, "pem"), "chain", s->root_pem,
		    "repeated", 1);
	}
	json_decref(c);
	return 1;
}

#define ACCOUNT_KEY_MAX	16384	/* PEM of an RSA-8192 key is under 2 KiB */

/*
 * "account_key": the public key (PEM SubjectPublicKeyInfo) of the ACME
 * account asking, which the CSR's key must not be (RFC 8555 11.1).  The
 * signer hashes it itself.  0 with hex set ("" when absent), -1 with *resp.
 */
static int
account_key_param(const json_t *jreq, char *hex, size_t hexlen, json_t **resp)
{
	const json_t *jk = json_object_get(jreq, "account_key");
	const char *pem;
	EVP_PKEY *k = NULL;
	BIO *b = NULL;
	int rc = -1;

	hex[0] = '\0';
	if (jk == NULL)
		return 0;
	if ((pem = json_string_value(jk)) != NULL &&
	    strlen(pem) <= ACCOUNT_KEY_MAX &&
	    (b = BIO_new_mem_buf(pem, -1)) != NULL &&
	    (k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL)) != NULL &&
	    policy_spki_sha256(k, hex, hexlen) == 0)
		rc = 0;
	ERR_clear_error();
	EVP_PKEY_free(k);
	BIO_free(b);
	if (rc == -1) {
		hex[0] = '\0';
		*resp = proto_error(PROTO_E_BAD_REQUEST, "\"account_key\" must "
		    "be a PEM public key");
	}
	return rc;
}

/*
 * No key reuse (draft-sweet-iot-acme 4.11, RFC 8555 11.1): a CSR's key must
 * be new.  Not the requesting account's key, not one of the appliance's own,
 * not in any certificate issued before, never one revoked for
 * keyCompromise.  Returns 0, or -1 with *resp the badCSR refusal (or
 * with s->park set when that key is at the key now).
 */
static int
key_is_new(struct signer *s, const struct peer *p, X509_REQ *req,
    const char *account_spki, json_t **resp)
{
	char hex[POLICY_SPKI_HEX_LEN + 1], serial[64], err[256];
	char reason[256];
	int compromised, rc;

	reason[0] = '\0';
	if (policy_spki_sha256(X509_REQ_get0_pubkey(req), hex,
	    sizeof(hex)) == -1) {
		*resp = proto_error("badCSR", "the CSR's key cannot be encoded");
		return -1;
	}
	/* Being certified right now: ask again once that is recorded. */
	if (key_in_flight(s, hex)) {
		s->park = 1;
		return -1;
	}
	if (account_spki != NULL && strcmp(hex, account_spki) == 0)
		snprintf(reason, sizeof(reason), "the CSR's key is the account "
		    "key; a certificate needs a key of its own (RFC 8555 11.1)");
	else if (strcmp(hex, s->root_spki) == 0)
		snprintf(reason, sizeof(reason), "the CSR's key is the "
		    "appliance's root key");
	else if (s->audit_spki[0] != '\0' && strcmp(hex, s->audit_spki) == 0)
		snprintf(reason, sizeof(reason), "the CSR's key is the "
		    "appliance's audit log key");
	else if ((rc = signerdb_key_seen(s->db, hex, serial, sizeof(serial),
	    &compromised, err, sizeof(err))) == -1) {
		log_msg(LOG_ERR, "%s", err);
		*resp = proto_error(PROTO_E_INTERNAL, "database error");
		return -1;
	} else if (rc == 1 && compromised)
		snprintf(reason, sizeof(reason), "the CSR's key was revoked for "
		    "keyCompromise (serial %s) and is blocked for good", serial);
	else if (rc == 1)
		snprintf(reason, sizeof(reason), "the CSR's key was certified "
		    "before (serial %s); every certificate needs a new key",
		    serial);
	if (reason[0] == '\0')
		return 0;
	log_msg(LOG_WARNING, "refused CSR from %s: %s", p->who, reason);
	*resp = proto_error("badCSR", reason);
	return -1;
}

/* What was issued for an account's order, if anything (with its PEM). */
static json_t *
op_issued(struct signer *s, const struct peer *p, const json_t *jreq)
{
	const char *account = json_string_value(json_object_get(jreq,
	    "account"));
	const char *order;
	char err[256];
	json_t *c, *resp = NULL;

	if (account == NULL || !valid_account(account))
		return proto_error(PROTO_E_BAD_REQUEST, "\"account\" must be 1 "
		    "to 128 characters of [A-Za-z0-9_-]");
	if (order_param(jreq, account, &order, &resp) == -1)
		return resp;
	if (order == NULL)
		return proto_error(PROTO_E_BAD_REQUEST, "\"order\" is required");
	if ((c = signerdb_cert_for_order(s->db, account, order, err,
	    sizeof(err))) == NULL) {
		if (err[0] != '\0') {
			log_msg(LOG_ERR, "%s", err);
			return proto_error(PROTO_E_INTERNAL, "database error");
		}
		return proto_error(PROTO_E_NOT_FOUND, "nothing was issued for "
		    "that order");
	}
	return json_pack("{s:b, s:o, s:s}", "ok", 1, "cert", c, "chain",
	    s->root_pem);
}

static json_t *
op_issue(struct signer *s, const struct peer *p, const json_t *jreq)
{
	const char *csr = json_string_value(json_object_get(jreq, "csr"));
	const json_t *jdays = json_object_get(jreq, "days");
	const json_t *jacct = json_object_get(jreq, "account");
	const char *account = NULL, *order;
	struct csr_request *cr;
	char reason[128], acct_spki[POLICY_SPKI_HEX_LEN + 1];
	char subtree[POLICY_MAX_NAME_LEN + 1];
	X509_REQ *req;
	json_t *resp = NULL, *names = NULL;
	int days = s->cfg.max_days, under = 0;

	if (jdays != NULL) {
		if (!json_is_integer(jdays) || json_integer_value(jdays) < 1 ||
		    json_integer_value(jdays) > s->cfg.max_days) {
			snprintf(reason, sizeof(reason), "\"days\" must be 1 to %d",
			    s->cfg.max_days);
			return proto_error(PROTO_E_BAD_REQUEST, reason);
		}
		days = (int)json_integer_value(jdays);
	}
	if (jacct != NULL) {
		if (!json_is_string(jacct) ||
		    !valid_account(json_string_value(jacct)))
			return proto_error(PROTO_E_BAD_REQUEST, "\"account\" must "
			    "be 1 to 128 characters of [A-Za-z0-9_-]");
		account = json_string_value(jacct);
	}
	if (p->role == ROLE_FRONTEND && account == NULL)
		return proto_error(PROTO_E_BAD_REQUEST, "\"account\" is "
		    "required on the signer socket");
	if (account_key_param(jreq, acct_spki, sizeof(acct_spki), &resp) == -1 ||
	    delegation_param(s, jreq, account, subtree, sizeof(subtree),
	    &resp) == -1)
		return resp;
	if (order_param(jreq, account, &order, &resp) == -1)
		return resp;
	/* The same order at the key now: its answer is that certificate. */
	if (order != NULL && order_in_flight(s, account, order)) {
		s->park = 1;
		return NULL;
	}
	if (order != NULL && answered_before(s, p, csr, account, order, &resp))
		return resp;
	if ((cr = calloc(1, sizeof(*cr))) == NULL)
		return NULL;
	if ((req = checked_csr(p, &s->pol, csr, cr, &resp)) == NULL)
		goto out;
	if (key_is_new(s, p, req, acct_spki[0] != '\0' ? acct_spki : NULL,
	    &resp) == -1)
		goto out;
	if ((names = names_json(cr)) == NULL)
		goto out;
	/* Under a delegation: the names within it, and the delegation the
	 * signer's own (approved for this account), whatever the front end
	 * says. */
	if (subtree[0] != '\0') {
		if (!names_under(cr, subtree, &resp) ||
		    !delegated(s, p, subtree, account, names, csr, &resp))
			goto out;
		under = 1;
	}
	if (cr->wants_cmc_ra && !under) {
		resp = proto_error("badCSR", "id-kp-cmcRA is issued only under "
		    "an approved delegation");
		goto out;
	}
	cr->grant_cmc_ra = cr->wants_cmc_ra && under;
	/* Operators approve by issuing; the front end needs an approval: of
	 * the device, or of the delegation (and of the device too when
	 * [policy] approve_delegated_devices says so). */
	if (p->role == ROLE_ADMIN ||
	    (under && !s->cfg.approve_delegated_devices) ||
	    approved(s, p, cr, names, csr, account, &resp))
		resp = issue_and_record(s, p, &s->pol, &req, &cr, days,
		    account, order, under ? subtree : NULL);
out:
	json_decref(names);
	X509_REQ_free(req);
	free(cr);
	return resp;
}

static int
server_ip(const struct config *cfg, const unsigned char *ip, size_t len)
{
	unsigned char buf[16];
	size_t i;

	for (i = 0; i < cfg->nips; i++) {
		if (inet_pton(len == 4 ? AF_INET : AF_INET6, cfg->ips[i], buf) == 1 &&
		    memcmp(buf, ip, len) == 0)
			return 1;
	}
	return 0;
}

/*
 * The front end's own TLS certificate: the server's names only, short-lived.
 * It is a device-shaped certificate for the server's label, which device
 * policy reserves for exactly this use.
 */
static json_t *
op_server_cert(struct signer *s, const struct peer *p, const json_t *jreq)
{
	const char *csr = json_string_value(json_object_get(jreq, "csr"));
	struct policy spol = s->pol;
	struct csr_request *cr;
	X509_REQ *req;
	json_t *resp = NULL;
	size_t i;

	spol.server_name = NULL;
	spol.max_days = SERVER_CERT_DAYS;
	if ((cr = calloc(1, sizeof(*cr))) == NULL)
		return NULL;
	if ((req = checked_csr(p, &spol, csr, cr, &resp)) == NULL ||
	    key_is_new(s, p, req, NULL, &resp) == -1)
		goto out;
	if (strcmp(cr->device_id, s->cfg.name) != 0) {
		resp = proto_error("rejectedIdentifier", "the server certificate "
		    "may only name the server itself");
		goto out;
	}
	for (i = 0; i < cr->nip; i++) {
		if (!server_ip(&s->cfg, cr->ip[i], cr->iplen[i])) {
			resp = proto_error("rejectedIdentifier", "the server "
			    "certificate may only carry the configured [ca] ips");
			goto out;
		}
	}
	resp = issue_and_record(s, p, &spol, &req, &cr, SERVER_CERT_DAYS, NULL,
	    NULL, NULL);
out:
	X509_REQ_free(req);
	free(cr);
	return resp;
}

static json_t *
op_approvals(struct signer *s, const struct peer *p, const json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const json_t *jafter = json_object_get(req, "after");
	struct approval_filter f;
	char err[256];
	json_t *arr, *refused;
	int more;

	memset(&f, 0, sizeof(f));
	f.pending_only = strcmp(op, "pending") == 0;
	if ((refused = list_args(req, &f.limit, &f.device_id)) != NULL)
		return refused;
	if (jafter != NULL) {
		if (!json_is_integer(jafter) || json_integer_value(jafter) < 0)
			return proto_error(PROTO_E_BAD_REQUEST, "\"after\" must "
			    "be the id of the previous page's last row");
		f.after = json_integer_value(jafter);
	}
	f.max_bytes = LIST_PAGE_BYTES;
	if (signerdb_list_approvals(s->db, &f, &arr, &more, err,
	    sizeof(err)) != 0) {
		log_msg(LOG_ERR, "%s", err);
		return proto_error(PROTO_E_INTERNAL, "database error");
	}
	return json_pack("{s:b, s:o, s:b}", "ok", 1, f.pending_only ?
	    "requests" : "approvals", arr, "more", more);
}

/* approve / deny one request by id. */
static json_t *
op_decide(struct signer *s, const struct peer *p, const json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const json_t *jid = json_object_get(req, "id");
	const json_t *jr = json_object_get(req, "reason");
	int approve = strcmp(op, "approve") == 0;
	const char *reason = NULL, *subtree;
	char err[256];
	json_t *row = NULL, *fields = NULL;
	int rc;

	if (!json_is_integer(jid) || json_integer_value(jid) < 1)
		return proto_error(PROTO_E_BAD_REQUEST, "\"id\" must be a "
		    "request number");
	if (jr != NULL) {
		if (!json_is_string(jr) || strlen(json_string_value(jr)) > 200)
			return proto_error(PROTO_E_BAD_REQUEST, "\"reason\" must "
			    "be a string of at most 200 characters");
		reason = json_string_value(jr);
	}
	if (!approve && reason == NULL)
		reason = "no reason given";
	if (tx_begin(s, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "%s", err);
		return proto_error(PROTO_E_INTERNAL, "database error");
	}
	rc = signerdb_decide(s->db, json_integer_value(jid), approve ?
	    "approved" : "denied", reason, p->who, &row, err, sizeof(err));
	subtree = json_string_value(json_object_get(row, "subtree"));
	if (rc == 0 && subtree != NULL)
		fields = json_pack("{s:I, s:s, s:s, s:O, s:s?}", "request",
		    (json_int_t)json_integer_value(jid), "subtree", subtree,
		    "account", json_string_value(json_object_get(row,
		    "account")), "names", json_object_get(row, "names"),
		    "reason", reason);
	else if (rc == 0)
		fields = json_pack("{s:I, s:s, s:s, s:O, s:s?}", "request",
		    (json_int_t)json_integer_value(jid), "device_id",
		    json_string_value(json_object_get(row, "device_id")),
		    "account", json_string_value(json_object_get(row,
		    "account")), "names", json_object_get(row, "names"),
		    "reason", reason);
	if (rc == 0 && (tx_record(s, event(subtree != NULL ? (approve ?
	    "delegation_granted" : "delegation_denied") : (approve ?
	    "approval_granted" : "approval_denied"), p, fields), err,
	    sizeof(err)) == -1 || tx_commit(s, err, sizeof(err)) == -1)) {
		tx_rollback(s);
		json_decref(row);
		return not_recorded(approve ? "approval" : "denial", err);
	}
	if (rc != 0)
		tx_rollback(s);
	if (rc == SIGNERDB_NOT_FOUND)
		return proto_error(PROTO_E_NOT_FOUND, "no such request");
	if (rc == SIGNERDB_ALREADY) {
		json_decref(row);
		return proto_error(approve ? "alreadyApproved" : "alreadyDenied",
		    approve ? "request already approved" :
		    "request already denied");
	}
	if (rc == -1) {
		json_decref(row);
		log_msg(LOG_ERR, "%s", err);
		return proto_error(PROTO_E_INTERNAL, "database error");
	}
	if (subtree != NULL)
		log_msg(LOG_NOTICE, "request %lld of account %s for the subtree "
		    "%s %s by %s%s%s", (long long)json_integer_value(jid),
		    json_string_value(json_object_get(row, "account")), subtree,
		    approve ? "approved" : "denied", p->who, reason ? ": " : "",
		    reason ? reason : "");
	else
		log_msg(LOG_NOTICE, "request %lld for device %s %s by %s%s%s",
		    (long long)json_integer_value(jid),
		    json_string_value(json_object_get(row, "device_id")),
		    approve ? "approved" : "denied", p->who, reason ? ": " : "",
		    reason ? reason : "");
	return json_pack("{s:b, s:o}", "ok", 1, "request", row);
}

static int
valid_device_id(const char *d)
{
	size_t n = strlen(d);

	if (n == 0 || n > POLICY_MAX_LABEL_LEN || d[0] == '-' || d[n - 1] == '-')
		return 0;
	for (; *d != '\0'; d++)
		if (!((*d >= 'a' && *d <= 'z') || (*d >= '0' && *d <= '9') ||
		    *d == '-'))
			return 0;
	return 1;
}

/* One certificate_revoked record per serial an approval's withdrawal
 * revoked, naming what was withdrawn (key: value).  0 or -1. */
static int
record_withdrawn(struct signer *s, const struct peer *p, json_t *serials,
    const char *key, const char *value, char *err, size_t errlen)
{
	json_t *js;
	size_t i;

	json_array_foreach(serials, i, js) {
		if (tx_record(s, event("certificate_revoked", p,
		    json_pack("{s:O, s:s, s:s}", "serial", js, "reason",
		    certgen_reason_name(CRL_REASON_PRIVILEGE_WITHDRAWN), key,
		    value)), err, errlen) == -1)
			return -1;
	}
	return 0;
}

/*
 * revoke_approval of a delegation: the subtree's approved and pending
 * requests of one account (or of every account) end, so nothing more is
 * issued under it; with revoke_certs, the certificates issued under it too.
 */
static json_t *
revoke_delegation(struct signer *s, const struct peer *p, const json_t *req)
{
	const json_t *jsub = json_object_get(req, "subtree");
	const json_t *jacct = json_object_get(req, "account");
	int with_certs = json_is_true(json_object_get(req, "revoke_certs"));
	char subtree[POLICY_MAX_NAME_LEN + 1], reason[400], err[256];
	const char *account = NULL;
	long nreq, ncerts = 0;
	json_t *serials = NULL;
	int rc;

	if (!json_is_string(jsub) || json_string_length(jsub) !=
	    strlen(json_string_value(jsub)))
		return proto_error(PROTO_E_BAD_REQUEST, "\"subtree\" must be a "
		    "DNS name");
	if (policy_check_subtree(&s->pol, json_string_value(jsub), subtree,
	    sizeof(subtree), reason, sizeof(reason)) != POLICY_OK)
		return proto_error(PROTO_E_BAD_REQUEST, reason);
	if (jacct != NULL && !json_is_null(jacct)) {
		if (!json_is_string(jacct) ||
		    !valid_account(json_string_value(jacct)))
			return proto_error(PROTO_E_BAD_REQUEST, "\"account\" must "
			    "be 1 to 128 characters of [A-Za-z0-9_-]");
		account = json_string_value(jacct);
	}
	if (tx_begin(s, err, sizeof(err)) == -1)
		goto dberror;
	if ((with_certs && (serials = signerdb_delegation_serials(s->db,
	    subtree, account, err, sizeof(err))) == NULL) ||
	    (nreq = signerdb_revoke_delegations(s->db, subtree, account,
	    p->who, err, sizeof(err))) == -1 || (with_certs &&
	    (ncerts = signerdb_revoke_delegation_certs(s->db, subtree, account,
	    CRL_REASON_PRIVILEGE_WITHDRAWN, time(NULL), err,
	    sizeof(err))) == -1)) {
		tx_rollback(s);
		json_decref(serials);
		goto dberror;
	}
	if (nreq == 0 && ncerts == 0) {
		tx_rollback(s);
		json_decref(serials);
		return proto_error(PROTO_E_NOT_FOUND, "no delegation or pending "
		    "request for that subtree");
	}
	rc = tx_record(s, event("delegation_revoked", p, json_pack("{s:s, s:s?, "
	    "s:I, s:b}", "subtree", subtree, "account", account, "requests",
	    (json_int_t)nreq, "revoke_certs", with_certs)), err, sizeof(err));
	if (rc == 0)
		rc = record_withdrawn(s, p, serials, "delegation", subtree, err,
		    sizeof(err));
	json_decref(serials);
	if (rc == -1 || tx_commit(s, err, sizeof(err)) == -1) {
		tx_rollback(s);
		return not_recorded("delegation revocation", err);
	}
	log_msg(LOG_NOTICE, "delegation of the subtree %s%s%s revoked by %s "
	    "(%ld requests, %ld certificates revoked)", subtree,
	    account != NULL ? " to account " : "", account != NULL ? account :
	    "", p->who, nreq, ncerts);
	if (ncerts > 0)
		crl_stale(s);
	return json_pack("{s:b, s:I, s:I}", "ok", 1, "approvals",
	    (json_int_t)nreq, "certs", (json_int_t)ncerts);
dberror:
	log_msg(LOG_ERR, "%s", err);
	return proto_error(PROTO_E_INTERNAL, "database error");
}

static json_t *
op_revoke_approval(struct signer *s, const struct peer *p, const json_t *req)
{
	const char *device = json_string_value(json_object_get(req, "device_id"));
	int with_certs = json_is_true(json_object_get(req, "revoke_certs"));
	char err[256];
	long napprovals, ncerts = 0;
	json_t *serials = NULL;
	int rc;

	if (json_object_get(req, "subtree") != NULL) {
		if (json_object_get(req, "device_id") != NULL)
			return proto_error(PROTO_E_BAD_REQUEST, "give "
			    "\"device_id\" or \"subtree\", not both");
		return revoke_delegation(s, p, req);
	}
	if (device == NULL || !valid_device_id(device))
		return proto_error(PROTO_E_BAD_REQUEST, "\"device_id\" must be "
		    "a lower-case host label");
	if (tx_begin(s, err, sizeof(err)) == -1)
		goto dberror;
	if ((with_certs && (serials = signerdb_valid_serials(s->db, device, err,
	    sizeof(err))) == NULL) ||
	    (napprovals = signerdb_revoke_approvals(s->db, device, p->who, err,
	    sizeof(err))) == -1 || (with_certs &&
	    (ncerts = signerdb_revoke_device_certs(s->db, device,
	    CRL_REASON_PRIVILEGE_WITHDRAWN, time(NULL), err, sizeof(err))) == -1)) {
		tx_rollback(s);
		json_decref(serials);
		goto dberror;
	}
	if (napprovals == 0 && ncerts == 0) {
		tx_rollback(s);
		json_decref(serials);
		return proto_error(PROTO_E_NOT_FOUND, "no approval or pending "
		    "request for that device");
	}
	/* The withdrawal, and each certificate it revoked, by serial. */
	rc = tx_record(s, event("approval_revoked", p, json_pack("{s:s, s:I, "
	    "s:b}", "device_id", device, "requests", (json_int_t)napprovals,
	    "revoke_certs", with_certs)), err, sizeof(err));
	if (rc == 0)
		rc = record_withdrawn(s, p, serials, "device_id", device, err,
		    sizeof(err));
	json_decref(serials);
	if (rc == -1 || tx_commit(s, err, sizeof(err)) == -1) {
		tx_rollback(s);
		return not_recorded("approval revocation", err);
	}
	log_msg(LOG_NOTICE, "approval of device %s revoked by %s (%ld "
	    "requests, %ld certificates revoked)", device, p->who, napprovals,
	    ncerts);
	if (ncerts > 0)
		crl_stale(s);
	return json_pack("{s:b, s:I, s:I}", "ok", 1, "approvals",
	    (json_int_t)napprovals, "certs", (json_int_t)ncerts);
dberror:
	log_msg(LOG_ERR, "%s", err);
	return proto_error(PROTO_E_INTERNAL, "database error");
}

/* The whole log checked: chain, MACs, checkpoints, the anchor's counter. */
static json_t *
op_audit_verify(struct signer *s, const struct peer *p, const json_t *req)
{
	struct audit_verdict v;

	if (audit_verify(s->audit, &v) == -1) {
		log_msg(LOG_ERR, "audit verify: %s", v.reason);
		return proto_error(PROTO_E_INTERNAL, "cannot read the audit log");
	}
	if (!v.ok)
		log_msg(LOG_CRIT, "audit verify asked by %s: FAILED at record "
		    "%lld: %s", p->who, v.first_bad, v.reason);
	return json_pack("{s:b, s:b, s:I, s:I, s:I, s:I, s:s, s:s, s:b, s:I}",
	    "ok", 1, "verified", v.ok, "records", (json_int_t)v.records,
	    "checkpoints", (json_int_t)v.checkpoints,
	    "first_bad", (json_int_t)v.first_bad,
	    "unsigned_tail", (json_int_t)v.unsigned_tail,
	    "reason", v.ok ? "" : v.reason,
	    "anchor", anchor_mode_name(s->anchor),
	    "in_hardware", anchor_is_hardware(s->anchor),
	    "counter", (json_int_t)v.counter);
}

#define AUDIT_PAGE_MAX		500
#define AUDIT_PAGE_BYTES	(PROTO_MAX_MSG / 2)	/* JSON escaping may double it */

/* One page of records: the CLI loops for show and export. */
static json_t *
op_audit_records(struct signer *s, const struct peer *p, const json_t *req)
{
	const json_t *ja = json_object_get(req, "after_seq");
	const json_t *js = json_object_get(req, "since");
	const json_t *jl = json_object_get(req, "limit");
	json_int_t after = 0, since = 0, limit = 100;
	char err[256];
	json_t *arr;
	int more;

	if ((ja != NULL && (!json_is_integer(ja) ||
	    (after = json_integer_value(ja)) < 0)) ||
	    (js != NULL && (!json_is_integer(js) ||
	    (since = json_integer_value(js)) < 0)) ||
	    (jl != NULL && (!json_is_integer(jl) ||
	    (limit = json_integer_value(jl)) < 1 || limit > AUDIT_PAGE_MAX)))
		return proto_error(PROTO_E_BAD_REQUEST, "\"after_seq\" and "
		    "\"since\" must be integers >= 0, \"limit\" 1 to 500");
	if ((arr = audit_list(s->audit, after, since, (int)limit,
	    AUDIT_PAGE_BYTES, &more, err, sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "%s", err);
		return proto_error(PROTO_E_INTERNAL, "cannot read the audit log");
	}
	return json_pack("{s:b, s:o, s:b}", "ok", 1, "records", arr, "more", more);
}

static json_t *
op_audit_pubkey(struct signer *s, const struct peer *p, const json_t *req)
{
	char *pem = audit_pubkey_pem(s->audit);
	json_t *r;

	if (pem == NULL)
		return proto_error(PROTO_E_INTERNAL, "cannot encode the key");
	r = json_pack("{s:b, s:s, s:s}", "ok", 1, "pem", pem, "anchor",
	    anchor_mode_name(s->anchor));
	free(pem);
	return r;
}

typedef json_t *op_fn(struct signer *, const struct peer *, const json_t *);

/*
 * How an operation stands to the certificates at the key (see
 * issue_and_record()): a look is answered at once, whatever waits; a
 * change is taken in its turn after the requests already waiting; an
 * issuance also waits until the key has room (KEY_AHEAD); an operator's
 * decision waits until the certificates at the key are recorded, since
 * they were approved under the decisions made before it (a revoked
 * approval withdraws them too).
 */
enum op_kind {
	OP_LOOK,
	OP_CHANGE,
	OP_ISSUE,
	OP_DECISION,
};

/*
 * Certificates at the key at once: one signing, the next ones ready, so
 * the key never waits for the loop, even when the loop waits for the CPU
 * (a busy machine) or the disk for a few signatures' time.  The loop
 * prepares one issuance per turn (s->issue_budget, server_tick()), so an
 * operator's request waits for at most one preparation, not for a burst.
 */
#define KEY_AHEAD	8

/* Which socket may ask for what.  The front end issues only what operators
 * approved and revokes only for the owning account; it never decides. */
static const struct op_rule {
	const char	*op;
	op_fn		*fn;
	int		 frontend;
	int		 admin;
	enum op_kind	 kind;
} op_rules[] = {
	{ "status",	op_status,	1, 1, OP_LOOK },
	{ "ca",		op_ca,		1, 1, OP_LOOK },
	{ "crl",	op_crl,		1, 1, OP_LOOK },
	{ "cert",	op_cert,	1, 1, OP_LOOK },
	{ "issue",	op_issue,	1, 1, OP_ISSUE },
	{ "issued",	op_issued,	1, 1, OP_LOOK },
	{ "revoke",	op_revoke,	1, 1, OP_CHANGE },
	{ "server_cert", op_server_cert, 1, 0, OP_ISSUE },
	{ "certs",	op_certs,	0, 1, OP_LOOK },
	{ "pending",	op_approvals,	0, 1, OP_LOOK },
	{ "approvals",	op_approvals,	0, 1, OP_LOOK },
	{ "approve",	op_decide,	0, 1, OP_DECISION },
	{ "deny",	op_decide,	0, 1, OP_DECISION },
	{ "revoke_approval", op_revoke_approval, 0, 1, OP_DECISION },
	{ "audit_verify", op_audit_verify, 0, 1, OP_LOOK },
	{ "audit_records", op_audit_records, 0, 1, OP_LOOK },
	{ "audit_pubkey", op_audit_pubkey, 0, 1, OP_LOOK },
};

/* Refusals that go in the audit log: policy, authorisation, operator
 * denial, and arguments out of range (a front end asking for a 10-year
 * certificate is news, whether or not it was taken over). */
static int
is_refusal(const char *code)
{
	static const char *const codes[] = { PROTO_E_UNAUTHORIZED, "badCSR",
	    "badSignatureAlgorithm", "rejectedIdentifier",
	    "approvalDenied", PROTO_E_BAD_REQUEST };
	size_t i;

	for (i = 0; code != NULL && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

/* A refused request, for the audit log; aggregated per peer and, on the
 * front end's socket, per account it names (refusals.h). */
static void
record_refusal(struct signer *s, const struct peer *p, const char *op,
    const json_t *req, const json_t *resp)
{
	const char *code = json_string_value(json_object_get(resp, "error"));
	const char *why = json_string_value(json_object_get(resp, "reason"));
	const char *account = json_string_value(json_object_get(req,
	    "account"));

	if (json_is_true(json_object_get(resp, "ok")) || !is_refusal(code) ||
	    audit_broken(s->audit) != NULL)
		return;
	if (p->role != ROLE_FRONTEND || account == NULL ||
	    !valid_account(account))
		account = NULL;
	refusal_record(s, p, account, op, code, event("request_refused", p,
	    json_pack("{s:s, s:s, s:s, s:s?}", "op", op, "error", code,
	    "reason", why != NULL ? why : "", "account", account)));
}

/*
 * A request that waits: for its turn behind others, for room at the key
 * (an issuance), or until no certificate is at the key (a decision, or
 * drain: a request whose key or order is being certified).  Its
 * connection sends nothing meanwhile.
 */
struct parked {
	struct parked	*next;
	const struct op_rule *rule;
	struct peer	 peer;
	json_t		*req;
	uint64_t	 tag;
	int		 drain;
};

enum { HANDLED, LATER, PARK };

/* Run one allowed request; HANDLED with *resp, LATER, or PARK. */
static int
dispatch(struct signer *s, const struct op_rule *rule, const struct peer *p,
    const json_t *req, uint64_t tag, json_t **resp)
{
	s->tag = tag;
	s->later = s->park = 0;
	if (rule->kind == OP_ISSUE)
		s->issue_budget--;
	*resp = rule->fn(s, p, req);
	if (s->park) {
		json_decref(*resp);
		*resp = NULL;
		return PARK;
	}
	if (s->later)
		return LATER;
	if (*resp != NULL)
		record_refusal(s, p, rule->op, req, *resp);
	return HANDLED;
}

static int
park(struct signer *s, const struct op_rule *rule, const struct peer *p,
    const json_t *req, uint64_t tag, int drain, int at_head)
{
	struct parked *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -1;
	q->rule = rule;
	q->peer = *p;
	q->req = json_incref((json_t *)req);
	q->tag = tag;
	q->drain = drain;
	if (at_head) {
		q->next = s->parked;
		s->parked = q;
	} else {
		q->next = NULL;
		*s->parked_tail = q;
		s->parked_tail = &q->next;
	}
	if (q->next == NULL)
		s->parked_tail = &q->next;
	return 0;
}

static struct parked *
unpark(struct signer *s)
{
	struct parked *q = s->parked;

	if (q != NULL && (s->parked = q->next) == NULL)
		s->parked_tail = &s->parked;
	return q;
}

/* May a request of this rule run now, as far as the key goes? */
static int
turn_come(const struct signer *s, const struct op_rule *rule, int drain)
{
	if (drain || rule->kind == OP_DECISION)
		return s->njobs == 0;
	if (rule->kind == OP_ISSUE)
		return s->njobs < KEY_AHEAD && s->issue_budget > 0;
	return 1;
}

/* Run the waiting requests whose turn has come, in order. */
static void
run_parked(struct signer *s)
{
	struct parked *q;
	json_t *resp;

	while (s->parked != NULL && turn_come(s, s->parked->rule,
	    s->parked->drain)) {
		q = unpark(s);
		switch (dispatch(s, q->rule, &q->peer, q->req, q->tag, &resp)) {
		case PARK:
			/* Its key or order went to the key just now. */
			if (park(s, q->rule, &q->peer, q->req, q->tag, 1,
			    1) == 0)
				break;
			s->reply_fn(s->reply_arg, q->tag, NULL);
			break;
		case HANDLED:
			s->reply_fn(s->reply_arg, q->tag, resp);
			break;
		}
		json_decref(q->req);
		free(q);
	}
}

/* A new turn of the loop: run what waits and may run now; 1 if an
 * issuance waits only for the next turn. */
static int
next_turn(struct signer *s)
{
	if (s->reply_fn == NULL)
		return 0;
	s->issue_budget = 1;
	run_parked(s);
	return s->parked != NULL && !s->parked->drain &&
	    s->parked->rule->kind == OP_ISSUE && s->njobs < KEY_AHEAD;
}

int
server_handle(struct signer *s, const struct peer *p, const json_t *req,
    uint64_t tag, json_t **resp)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const struct op_rule *rule = NULL;
	char reason[128];
	size_t i;
	int rc, drain;

	*resp = NULL;
	for (i = 0; i < sizeof(op_rules) / sizeof(op_rules[0]); i++)
		if (strcmp(op_rules[i].op, op) == 0)
			rule = &op_rules[i];
	if (rule == NULL) {
		log_msg(LOG_WARNING, "unknown op from %s", p->who);
		*resp = proto_error(PROTO_E_UNKNOWN_OP, "unknown op");
		return 0;
	}
	if (!(p->role == ROLE_ADMIN ? rule->admin : rule->frontend)) {
		snprintf(reason, sizeof(reason), "\"%s\" is not allowed on "
		    "this socket", rule->op);
		log_msg(LOG_WARNING, "%s refused to %s", rule->op, p->who);
		*resp = proto_error(PROTO_E_UNAUTHORIZED, reason);
		if (*resp != NULL)
			record_refusal(s, p, rule->op, req, *resp);
		return 0;
	}
	if (rule->kind != OP_LOOK && (s->parked != NULL ||
	    !turn_come(s, rule, 0))) {
		rc = PARK;		/* after those waiting, or for the key */
		drain = 0;
	} else {
		rc = dispatch(s, rule, p, req, tag, resp);
		drain = 1;		/* PARK: its key or order is at the key */
	}
	if (rc == HANDLED)
		return 0;
	if (rc == PARK && park(s, rule, p, req, tag, drain, 0) == -1)
		return 0;	/* out of memory: *resp NULL says so */
	return 1;
}

void
server_set_reply(struct signer *s, server_reply_fn *fn, void *arg)
{
	s->reply_fn = fn;
	s->reply_arg = arg;
}

int
server_pollfd(const struct signer *s)
{
	return s->ksg != NULL ? keysigner_fd(s->ksg) : -1;
}

void
server_collect(struct signer *s)
{
	unsigned char *sig;
	size_t siglen;
	char err[256];
	void *cookie;
	json_t *resp;
	struct job *j;

	while (s->ksg != NULL && keysigner_take(s->ksg, &cookie, &sig, &siglen,
	    err, sizeof(err)) == 1) {
		j = cookie;
		if (issue_finish(s, j, sig, siglen, err, &resp) == 0) {
			job_unlink(s, j);
			s->reply_fn(s->reply_arg, j->tag, resp);
			job_free(j);
		}
		free(sig);
	}
	run_parked(s);
}

void
server_drain(struct signer *s)
{
	unsigned long n;
	double sign_ms, wait_s;

	/* The key signs what it has, then nothing more: what comes back
	 * is recorded and answered; what waited is run, and an issuance
	 * among it is refused (the key is gone). */
	if (s->ksg == NULL)
		return;
	s->issue_budget = INT_MAX;	/* refused at once, all of them */
	keysigner_stop(s->ksg);
	keysigner_stats(s->ksg, &n, &sign_ms, &wait_s);
	log_msg(LOG_INFO, "key: %lu signatures, %.1f ms each on average; it "
	    "waited %.1f s for work between them", n, sign_ms, wait_s);
	server_collect(s);
	if (s->njobs > 0 || s->parked != NULL)
		log_msg(LOG_ERR, "%zu certificates at the key and %s requests "
		    "left unanswered at shutdown", s->njobs, s->parked != NULL ?
		    "some" : "no");
}

/* What a stopped signer still holds: certificates and requests unanswered. */
static void
free_work(struct signer *s)
{
	struct parked *q;
	struct job *j;

	while ((j = s->jobs) != NULL) {
		s->jobs = j->next;
		job_free(j);
	}
	s->njobs = 0;
	while ((q = unpark(s)) != NULL) {
		json_decref(q->req);
		free(q);
	}
}
