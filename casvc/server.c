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

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "proto.h"
#include "server.h"

#define ISSUE_SERIAL_TRIES	4

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

/* (Re-)sign the CRL from the database's revoked list. */
static int
refresh_crl(struct signer *s, char *err, size_t errlen)
{
	struct crl_entry *e;
	X509_CRL *crl;
	size_t n;
	long number;
	char *pem;

	if (signerdb_revoked(s->db, &e, &n, err, errlen) == -1)
		return -1;
	if ((number = signerdb_next_crl_number(s->db, err, errlen)) == -1) {
		signerdb_free_revoked(e, n);
		return -1;
	}
	crl = certgen_crl(s->ks, s->key, s->root, e, n, number,
	    s->cfg.crl_days, err, errlen);
	signerdb_free_revoked(e, n);
	if (crl == NULL)
		return -1;
	pem = pem_of_crl(crl);
	X509_CRL_free(crl);
	if (pem == NULL) {
		snprintf(err, errlen, "CRL: cannot encode");
		return -1;
	}
	free(s->crl_pem);
	s->crl_pem = pem;
	s->crl_next_update = time(NULL) + (time_t)s->cfg.crl_days * 86400;
	log_msg(LOG_INFO, "CRL %ld signed with %zu entries", number, n);
	return 0;
}

int
signer_open(struct signer *s, char *err, size_t errlen)
{
	struct ks_config kc = { s->cfg.key_store, s->cfg.tcti, s->cfg.provider };

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
	return refresh_crl(s, err, errlen);
}

void
signer_close(struct signer *s)
{
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
		return proto_error(PROTO_E_INTERNAL, "cannot sign the CRL");
	}
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

static json_t *
op_revoke(struct signer *s, const struct peer *p, const json_t *req)
{
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
	rc = signerdb_revoke(s->db, serial, reason, time(NULL), err, sizeof(err));
	if (rc == SIGNERDB_NOT_FOUND)
		return proto_error(PROTO_E_NOT_FOUND, "no such certificate");
	if (rc == SIGNERDB_ALREADY)
		return proto_error("alreadyRevoked", "certificate already revoked");
	if (rc == -1) {
		log_msg(LOG_ERR, "%s", err);
		return proto_error(PROTO_E_INTERNAL, "database error");
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

/* An account is the front end's opaque account key thumbprint: keep it tame. */
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
issue_and_record(struct signer *s, const struct peer *p, X509_REQ *req,
    const struct csr_request *cr, int days, const char *account)
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
		cert = certgen_device(s->ks, s->key, s->root, &s->pol, req, cr,
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
		rc = signerdb_insert_cert(s->db, &rec, err, sizeof(err));
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

static json_t *
op_issue(struct signer *s, const struct peer *p, const json_t *jreq)
{
	const char *csr = json_string_value(json_object_get(jreq, "csr"));
	const json_t *jdays = json_object_get(jreq, "days");
	const json_t *jacct = json_object_get(jreq, "account");
	struct csr_request *cr;
	enum policy_err perr;
	char reason[512];
	X509_REQ *req;
	json_t *resp;
	int days = s->cfg.max_days;

	if (csr == NULL)
		return proto_error(PROTO_E_BAD_REQUEST, "\"csr\" (PEM) is required");
	if (jdays != NULL) {
		if (!json_is_integer(jdays) || json_integer_value(jdays) < 1 ||
		    json_integer_value(jdays) > s->cfg.max_days) {
			snprintf(reason, sizeof(reason), "\"days\" must be 1 to %d",
			    s->cfg.max_days);
			return proto_error(PROTO_E_BAD_REQUEST, reason);
		}
		days = (int)json_integer_value(jdays);
	}
	if (jacct != NULL && (!json_is_string(jacct) ||
	    !valid_account(json_string_value(jacct))))
		return proto_error(PROTO_E_BAD_REQUEST, "\"account\" must be 1 "
		    "to 128 characters of [A-Za-z0-9_-]");
	if ((req = policy_parse_csr((const unsigned char *)csr, strlen(csr),
	    reason, sizeof(reason))) == NULL) {
		log_msg(LOG_WARNING, "refused CSR from %s: %s", p->who, reason);
		return proto_error(policy_err_type(POLICY_BAD_CSR), reason);
	}
	if ((cr = calloc(1, sizeof(*cr))) == NULL) {
		X509_REQ_free(req);
		return NULL;
	}
	perr = policy_check_csr(&s->pol, req, cr, reason, sizeof(reason));
	if (perr != POLICY_OK) {
		log_msg(LOG_WARNING, "refused CSR from %s: %s", p->who, reason);
		resp = proto_error(policy_err_type(perr), reason);
	} else
		resp = issue_and_record(s, p, req, cr, days,
		    json_string_value(jacct));
	free(cr);
	X509_REQ_free(req);
	return resp;
}

typedef json_t *op_fn(struct signer *, const struct peer *, const json_t *);

/* Which socket may ask for what.  Operators may do everything the front
 * end may; the front end may not list, revoke at will or issue unapproved. */
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
	{ "issue",	op_issue,	0, 1 },
	{ "certs",	op_certs,	0, 1 },
	{ "revoke",	op_revoke,	0, 1 },
};

json_t *
server_handle(struct signer *s, const struct peer *p, const json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const struct op_rule *rule = NULL;
	char reason[128];
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
		return proto_error(PROTO_E_UNAUTHORIZED, reason);
	}
	return rule->fn(s, p, req);
}
