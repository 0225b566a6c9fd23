/*
 * server: the signer's operations (see server.h and PROTOCOL.md).
 * Everything a request carries is re-checked here: the signer never trusts
 * the front end's word on names, days or approval.
 */
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "proto.h"
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

/* (Re-)sign the CRL from the database's revoked list, recording it. */
static int
refresh_crl(struct signer *s, char *err, size_t errlen)
{
	struct crl_entry *e = NULL;
	X509_CRL *crl = NULL;
	size_t n = 0;
	long number;
	char *pem = NULL;

	if (tx_begin(s, err, errlen) == -1)
		return -1;
	if (signerdb_revoked(s->db, &e, &n, err, errlen) == -1 ||
	    (number = signerdb_next_crl_number(s->db, err, errlen)) == -1)
		goto fail;
	crl = certgen_crl(s->ks, s->key, s->root, e, n, number,
	    s->cfg.crl_days, err, errlen);
	if (crl == NULL)
		goto fail;
	if ((pem = pem_of_crl(crl)) == NULL) {
		snprintf(err, errlen, "CRL: cannot encode");
		goto fail;
	}
	if (tx_record(s, event("crl_signed", NULL, json_pack("{s:I, s:I, s:I}",
	    "crl_number", (json_int_t)number, "entries", (json_int_t)n,
	    "next_update", (json_int_t)(time(NULL) +
	    (time_t)s->cfg.crl_days * 86400))), err, errlen) == -1 ||
	    tx_commit(s, err, errlen) == -1)
		goto fail;
	X509_CRL_free(crl);
	signerdb_free_revoked(e, n);
	free(s->crl_pem);
	s->crl_pem = pem;
	s->crl_next_update = time(NULL) + (time_t)s->cfg.crl_days * 86400;
	log_msg(LOG_INFO, "CRL %ld signed with %zu entries", number, n);
	return 0;
fail:
	tx_rollback(s);
	X509_CRL_free(crl);
	signerdb_free_revoked(e, n);
	free(pem);
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
	settings = json_pack("{s:s, s:s, s:i, s:i, s:b, s:b, s:s, s:i, s:i}",
	    "key_store", s->cfg.key_store == KS_STORE_TPM2 ? "tpm2" :
	    s->cfg.key_store == KS_STORE_FILE ? "file" : "provider",
	    "key_algorithm", ks_alg_name(s->cfg.key_alg),
	    "max_days", s->cfg.max_days, "crl_days", s->cfg.crl_days,
	    "strict_cn", s->cfg.strict_cn, "auto_approve", s->cfg.auto_approve,
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
	if ((s->root_pem = pem_of_x509(s->root)) == NULL) {
		snprintf(err, errlen, "root certificate: cannot encode");
		return -1;
	}
	if ((s->db = signerdb_open(s->cfg.db, err, errlen)) == NULL)
		return -1;
	if (open_audit(s, owner_auth, err, errlen) == -1)
		return -1;
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

	if (config_owner_auth(&s->cfg, auth, err, errlen) == -1)
		return -1;
	rc = open_all(s, auth, err, errlen);
	OPENSSL_cleanse(auth, sizeof(auth));
	return rc;
}

void
signer_shutdown(struct signer *s)
{
	char err[512];

	if (s->audit == NULL || audit_broken(s->audit) != NULL)
		return;
	if (record_alone(s, event("signer_stop", NULL, NULL), err,
	    sizeof(err)) == -1 || audit_checkpoint(s->audit, err,
	    sizeof(err)) == -1)
		log_msg(LOG_ERR, "audit log at shutdown: %s", err);
}

int
server_tick(struct signer *s)
{
	if (s->audit == NULL)
		return 60 * 1000;
	return audit_tick(s->audit, time(NULL)) * 1000;
}

void
server_refused_peer(struct signer *s, const struct peer *p)
{
	char err[512];

	if (s->audit != NULL && audit_broken(s->audit) == NULL &&
	    record_alone(s, event("connection_refused", p, json_pack("{s:s}",
	    "socket", p->role == ROLE_ADMIN ? "admin" : "signer")), err,
	    sizeof(err)) == -1)
		log_msg(LOG_ERR, "%s", err);
}

void
signer_close(struct signer *s)
{
	audit_close(s->audit);
	anchor_close(s->anchor);
	signerdb_close(s->db);
	EVP_PKEY_free(s->key);
	X509_free(s->root);
	ks_free(s->ks);
	free(s->root_pem);
	free(s->crl_pem);
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
	    "key_store", s->cfg.key_store == KS_STORE_TPM2 ? "tpm2" :
	    s->cfg.key_store == KS_STORE_FILE ? "file" : "provider",
	    "key_in_hardware", ks_is_hardware(s->ks),
	    "key_algorithm", ks_alg_name(s->cfg.key_alg),
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

static json_t *
op_crl(struct signer *s, const struct peer *p, const json_t *req)
{
	char err[256];

	/* Re-sign when half the CRL's life is gone, so clients never see a stale one. */
	if (s->crl_next_update - time(NULL) < (time_t)s->cfg.crl_days * 43200 &&
	    refresh_crl(s, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "CRL: %s", err);
		if (s->crl_pem == NULL)
			return proto_error(PROTO_E_INTERNAL, "cannot sign the CRL");
	}
	if (s->crl_pem == NULL)
		return proto_error(PROTO_E_INTERNAL, "no CRL: the audit log "
		    "failed its check (iotca audit verify)");
	return json_pack("{s:b, s:s}", "ok", 1, "pem", s->crl_pem);
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

static json_t *
op_certs(struct signer *s, const struct peer *p, const json_t *req)
{
	char err[256];
	json_t *arr;

	if ((arr = signerdb_list_certs(s->db, err, sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "%s", err);
		return proto_error(PROTO_E_INTERNAL, "database error");
	}
	return json_pack("{s:b, s:o}", "ok", 1, "certs", arr);
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
	if (refresh_crl(s, err, sizeof(err)) == -1)
		log_msg(LOG_ERR, "CRL after revocation: %s", err);
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

/* Sign, record, and reply; the certificate exists only if its record does. */
static json_t *
issue_and_record(struct signer *s, const struct peer *p,
    const struct policy *pol, X509_REQ *req, const struct csr_request *cr,
    int days, const char *account)
{
	struct cert_record rec;
	char err[256], serial[64];
	json_t *names = NULL, *resp = NULL;
	X509 *cert = NULL;
	char *pem = NULL;
	int tries, rc = -1;

	if ((names = names_json(cr)) == NULL)
		return NULL;
	for (tries = 0; tries < ISSUE_SERIAL_TRIES; tries++) {
		X509_free(cert);
		free(pem);
		pem = NULL;
		cert = certgen_device(s->ks, s->key, s->root, pol, req, cr,
		    days, err, sizeof(err));
		if (cert == NULL) {
			log_msg(LOG_ERR, "issue for %s: %s", cr->device_id, err);
			resp = proto_error(PROTO_E_INTERNAL, err);
			goto out;
		}
		if (serial_hex(cert, serial, sizeof(serial)) == -1 ||
		    (pem = pem_of_x509(cert)) == NULL) {
			resp = proto_error(PROTO_E_INTERNAL, "cannot encode certificate");
			goto out;
		}
		memset(&rec, 0, sizeof(rec));
		rec.serial_hex = serial;
		rec.device_id = cr->device_id;
		rec.names = names;
		rec.account = account;
		rec.requested_by = p->who;
		rec.not_before = asn1_epoch(X509_get0_notBefore(cert));
		rec.not_after = asn1_epoch(X509_get0_notAfter(cert));
		rec.pem = pem;
		if (tx_begin(s, err, sizeof(err)) == -1) {
			rc = -1;
			break;
		}
		rc = signerdb_insert_cert(s->db, &rec, err, sizeof(err));
		if (rc != 0)
			tx_rollback(s);
		if (rc != SIGNERDB_DUPLICATE)
			break;
		log_msg(LOG_WARNING, "serial %s already used: drawing another",
		    serial);
	}
	if (rc != 0) {
		log_msg(LOG_ERR, "issue for %s: %s", cr->device_id,
		    rc == -1 ? err : "no unique serial");
		resp = proto_error(PROTO_E_INTERNAL, "cannot record certificate");
		goto out;
	}
	/* The certificate is handed out only once its record is committed. */
	if (tx_record(s, event("certificate_issued", p, json_pack("{s:s, s:s, "
	    "s:O, s:s?, s:I, s:I, s:i, s:s}", "serial", serial, "device_id",
	    cr->device_id, "names", names, "account", account, "not_before",
	    (json_int_t)rec.not_before, "not_after", (json_int_t)rec.not_after,
	    "days", days, "kind", pol->server_name == NULL ? "server" :
	    "device")), err, sizeof(err)) == -1 ||
	    tx_commit(s, err, sizeof(err)) == -1) {
		tx_rollback(s);
		resp = not_recorded("issuance", err);
		goto out;
	}
	log_msg(LOG_NOTICE, "issued %s to %s for %d days, requested by %s",
	    serial, cr->device_id, days, p->who);
	resp = json_pack("{s:b, s:s, s:s, s:O, s:I, s:s, s:s}", "ok", 1,
	    "serial", serial, "device_id", cr->device_id, "names", names,
	    "not_after", (json_int_t)rec.not_after, "pem", pem,
	    "chain", s->root_pem);
out:
	json_decref(names);
	free(pem);
	X509_free(cert);
	return resp;
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

static int
names_within(const json_t *names, const json_t *approved)
{
	const json_t *n, *a;
	size_t i, j;
	int found;

	json_array_foreach(names, i, n) {
		found = 0;
		json_array_foreach(approved, j, a)
			if (json_equal(n, a))
				found = 1;
		if (!found)
			return 0;
	}
	return 1;
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
		    names_within(names, json_object_get(row, "names"))) {
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
	*resp = pending_reply(cr->device_id, id);
	return 0;
dberror:
	log_msg(LOG_ERR, "approval for %s: %s", cr->device_id, err);
	*resp = proto_error(PROTO_E_INTERNAL, "database error");
	return 0;
}

static json_t *
op_issue(struct signer *s, const struct peer *p, const json_t *jreq)
{
	const char *csr = json_string_value(json_object_get(jreq, "csr"));
	const json_t *jdays = json_object_get(jreq, "days");
	const json_t *jacct = json_object_get(jreq, "account");
	const char *account = NULL;
	struct csr_request *cr;
	char reason[128];
	X509_REQ *req;
	json_t *resp = NULL, *names = NULL;
	int days = s->cfg.max_days;

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
	if ((cr = calloc(1, sizeof(*cr))) == NULL)
		return NULL;
	if ((req = checked_csr(p, &s->pol, csr, cr, &resp)) == NULL)
		goto out;
	if ((names = names_json(cr)) == NULL)
		goto out;
	/* Operators approve by issuing; the front end needs an approval. */
	if (p->role == ROLE_ADMIN ||
	    approved(s, p, cr, names, csr, account, &resp))
		resp = issue_and_record(s, p, &s->pol, req, cr, days, account);
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
	if ((req = checked_csr(p, &spol, csr, cr, &resp)) == NULL)
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
	resp = issue_and_record(s, p, &spol, req, cr, SERVER_CERT_DAYS, NULL);
out:
	X509_REQ_free(req);
	free(cr);
	return resp;
}

static json_t *
op_approvals(struct signer *s, const struct peer *p, const json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	int pending = strcmp(op, "pending") == 0;
	char err[256];
	json_t *arr;

	if ((arr = signerdb_list_approvals(s->db, pending, err,
	    sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "%s", err);
		return proto_error(PROTO_E_INTERNAL, "database error");
	}
	return json_pack("{s:b, s:o}", "ok", 1, pending ? "requests" :
	    "approvals", arr);
}

/* approve / deny one request by id. */
static json_t *
op_decide(struct signer *s, const struct peer *p, const json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const json_t *jid = json_object_get(req, "id");
	const json_t *jr = json_object_get(req, "reason");
	int approve = strcmp(op, "approve") == 0;
	const char *reason = NULL;
	char err[256];
	json_t *row = NULL;
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
	if (rc == 0 && (tx_record(s, event(approve ? "approval_granted" :
	    "approval_denied", p, json_pack("{s:I, s:s, s:s, s:O, s:s?}",
	    "request", (json_int_t)json_integer_value(jid), "device_id",
	    json_string_value(json_object_get(row, "device_id")), "account",
	    json_string_value(json_object_get(row, "account")), "names",
	    json_object_get(row, "names"), "reason", reason)), err,
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

static json_t *
op_revoke_approval(struct signer *s, const struct peer *p, const json_t *req)
{
	const char *device = json_string_value(json_object_get(req, "device_id"));
	int with_certs = json_is_true(json_object_get(req, "revoke_certs"));
	char err[256];
	long napprovals, ncerts = 0;
	json_t *serials = NULL, *js;
	size_t i;
	int rc;

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
	json_array_foreach(serials, i, js) {
		if (rc == 0)
			rc = tx_record(s, event("certificate_revoked", p,
			    json_pack("{s:O, s:s, s:s}", "serial", js, "reason",
			    certgen_reason_name(CRL_REASON_PRIVILEGE_WITHDRAWN),
			    "device_id", device)), err, sizeof(err));
	}
	json_decref(serials);
	if (rc == -1 || tx_commit(s, err, sizeof(err)) == -1) {
		tx_rollback(s);
		return not_recorded("approval revocation", err);
	}
	log_msg(LOG_NOTICE, "approval of device %s revoked by %s (%ld "
	    "requests, %ld certificates revoked)", device, p->who, napprovals,
	    ncerts);
	if (ncerts > 0 && refresh_crl(s, err, sizeof(err)) == -1)
		log_msg(LOG_ERR, "CRL after revocation: %s", err);
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

/* Which socket may ask for what.  The front end issues only what operators
 * approved and revokes only for the owning account; it never decides. */
static const struct op_rule {
	const char	*op;
	op_fn		*fn;
	int		 frontend;
	int		 admin;
} op_rules[] = {
	{ "status",	op_status,	1, 1 },
	{ "ca",		op_ca,		1, 1 },
	{ "crl",	op_crl,		1, 1 },
	{ "cert",	op_cert,	1, 1 },
	{ "issue",	op_issue,	1, 1 },
	{ "revoke",	op_revoke,	1, 1 },
	{ "server_cert", op_server_cert, 1, 0 },
	{ "certs",	op_certs,	0, 1 },
	{ "pending",	op_approvals,	0, 1 },
	{ "approvals",	op_approvals,	0, 1 },
	{ "approve",	op_decide,	0, 1 },
	{ "deny",	op_decide,	0, 1 },
	{ "revoke_approval", op_revoke_approval, 0, 1 },
	{ "audit_verify", op_audit_verify, 0, 1 },
	{ "audit_records", op_audit_records, 0, 1 },
	{ "audit_pubkey", op_audit_pubkey, 0, 1 },
};

/* Refusals that go in the audit log: policy, authorisation, operator
 * denial, and arguments out of range (a front end asking for a 10-year
 * certificate is news, whether or not it was taken over). */
static int
is_refusal(const char *code)
{
	static const char *const codes[] = { PROTO_E_UNAUTHORIZED, "badCSR",
	    "badPublicKey", "badSignatureAlgorithm", "rejectedIdentifier",
	    "approvalDenied", PROTO_E_BAD_REQUEST };
	size_t i;

	for (i = 0; code != NULL && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

static void
record_refusal(struct signer *s, const struct peer *p, const char *op,
    const json_t *resp)
{
	const char *code = json_string_value(json_object_get(resp, "error"));
	const char *why = json_string_value(json_object_get(resp, "reason"));
	char err[512];

	if (json_is_true(json_object_get(resp, "ok")) || !is_refusal(code) ||
	    audit_broken(s->audit) != NULL)
		return;
	if (record_alone(s, event("request_refused", p, json_pack("{s:s, s:s, "
	    "s:s}", "op", op, "error", code, "reason", why != NULL ? why : "")),
	    err, sizeof(err)) == -1)
		log_msg(LOG_ERR, "refusal not recorded: %s", err);
}

json_t *
server_handle(struct signer *s, const struct peer *p, const json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const struct op_rule *rule = NULL;
	char reason[128];
	json_t *resp;
	size_t i;

	for (i = 0; i < sizeof(op_rules) / sizeof(op_rules[0]); i++)
		if (strcmp(op_rules[i].op, op) == 0)
			rule = &op_rules[i];
	if (rule == NULL) {
		log_msg(LOG_WARNING, "unknown op from %s", p->who);
		return proto_error(PROTO_E_UNKNOWN_OP, "unknown op");
	}
	if (!(p->role == ROLE_ADMIN ? rule->admin : rule->frontend)) {
		snprintf(reason, sizeof(reason), "\"%s\" is not allowed on "
		    "this socket", rule->op);
		log_msg(LOG_WARNING, "%s refused to %s", rule->op, p->who);
		resp = proto_error(PROTO_E_UNAUTHORIZED, reason);
	} else
		resp = rule->fn(s, p, req);
	if (resp != NULL)
		record_refusal(s, p, rule->op, resp);
	return resp;
}
