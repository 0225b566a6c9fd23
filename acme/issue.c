/*
 * issue: the order's round trip to the signer (see issue.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "certid.h"
#include "http.h"
#include "issue.h"
#include "jws.h"
#include "keycache.h"
#include "log.h"
#include "objects.h"
#include "policy.h"
#include "signercall.h"

/* The signer's refusal codes that are final and what ACME calls them. */
static const char *
refusal_type(const char *code)
{
	static const char *policy[] = { "badCSR", "badSignatureAlgorithm",
	    "rejectedIdentifier" };
	size_t i;

	/* approvalDenied: the operator said no; alreadyRevoked: the order's
	 * certificate, issued while its answer was lost, was revoked since. */
	if (strcmp(code, "approvalDenied") == 0 ||
	    strcmp(code, "alreadyRevoked") == 0)
		return "unauthorized";
	for (i = 0; i < sizeof(policy) / sizeof(policy[0]); i++)
		if (strcmp(code, policy[i]) == 0)
			return policy[i];
	return NULL;
}

static int
record_cert(struct acmed *a, struct order *o, const char *thumb,
    const json_t *resp)
{
	const char *serial = json_string_value(json_object_get(resp, "serial"));
	const char *pem = json_string_value(json_object_get(resp, "pem"));
	const char *chain = json_string_value(json_object_get(resp, "chain"));
	char id[ID_LEN];
	struct cert c;
	int rc = -1;

	if (serial == NULL || pem == NULL || chain == NULL) {
		log_msg(LOG_ERR, "order %s: the signer's issue answer lacks "
		    "serial, pem or chain", o->id);
		return -1;
	}
	memset(&c, 0, sizeof(c));
	if (cert_facts_pem(pem, c.ari_id, &c.not_before, &c.not_after) == -1) {
		log_msg(LOG_ERR, "order %s: the signer's certificate is "
		    "unreadable or has no AKI", o->id);
		return -1;
	}
	snprintf(c.serial, sizeof(c.serial), "%s", serial);
	snprintf(c.account, sizeof(c.account), "%s", o->account);
	snprintf(c.issued_to, sizeof(c.issued_to), "%s", thumb);
	c.pem = (char *)pem;
	c.chain = (char *)chain;
	switch (order_issued(a->db, o->id, &c)) {
	case 0:
		break;
	case ACMEDB_CONFLICT:
		/* The same certificate, recorded meanwhile by another poll of
		 * this order (the signer answers an order once). */
		snprintf(id, sizeof(id), "%s", o->id);
		order_clear(o);
		if (order_get(a->db, id, o) == 0 &&
		    strcmp(o->status, "valid") == 0)
			rc = 0;
		return rc;
	default:
		return -1;
	}
	snprintf(o->status, sizeof(o->status), "valid");
	snprintf(o->cert_id, sizeof(o->cert_id), "%s", c.id);
	log_msg(LOG_INFO, "order %s: certificate %s issued", o->id, serial);
	return 0;
}

static int
record_refusal(struct acmed *a, struct order *o, const char *type,
    const char *reason)
{
	json_t *p = problem_new(type, reason);

	if (p == NULL)
		return -1;
	free(o->error);
	o->error = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	if (o->error == NULL)
		return -1;
	snprintf(o->status, sizeof(o->status), "invalid");
	log_msg(LOG_NOTICE, "order %s: refused: %s: %s", o->id, type, reason);
	return order_update(a->db, o) == 0 ? 0 : -1;
}

/*
 * The account's public key as PEM, for the signer's key reuse rule (RFC
 * 8555 11.1: a CSR must not carry the account key).  From the key cache
 * (encoded once per key), else from the account's stored JWK; NULL if
 * neither gives it.
 */
static char *
account_key_pem(struct acmed *a, const struct order *o, const char *thumb)
{
	struct jws_error e;
	struct acct acct;
	EVP_PKEY *k;
	json_t *jwk = NULL;
	BIO *b;
	char *data, *pem = NULL;
	long len;

	if ((pem = keycache_pem(a->keys, thumb)) != NULL)
		return pem;
	memset(&acct, 0, sizeof(acct));
	if ((k = keycache_get(a->keys, thumb)) == NULL &&
	    acct_get(a->db, o->account, &acct) == 0 && acct.jwk != NULL &&
	    (jwk = json_loads(acct.jwk, 0, NULL)) != NULL)
		k = jws_jwk_to_pkey(jwk, &e);
	json_decref(jwk);
	acct_clear(&acct);
	if (k == NULL)
		return NULL;
	if ((b = BIO_new(BIO_s_mem())) != NULL &&
	    PEM_write_bio_PUBKEY(b, k) == 1 &&
	    (len = BIO_get_mem_data(b, &data)) > 0)
		pem = strndup(data, (size_t)len);
	BIO_free(b);
	EVP_PKEY_free(k);
	return pem;
}

/*
 * The subtree the account proved for this order (RFC 9444): every
 * identifier a dns name, every authorization of the order one and the same
 * valid, unexpired subdomain authorization of the account for a domain D,
 * each name D or under it.  Then the signer is told "delegation: D" and
 * checks and approves (account, D) itself; otherwise the order goes per
 * device.  0 with out set ("" for none), -1 on a database error.
 */
static int
order_delegation(struct acmed *a, const struct order *o, char *out,
    size_t outlen)
{
	struct authz az[ORDER_MAX_IDENTS + 1];
	const char *type, *value;
	json_t *ids, *id;
	time_t now = time(NULL);
	size_t n, i;
	int ok = 1;

	out[0] = '\0';
	if (authzs_of_order(a->db, o->id, az, ORDER_MAX_IDENTS + 1, &n) != 0)
		return -1;
	if (n == 0 || n > ORDER_MAX_IDENTS)
		return 0;
	for (i = 0; i < n; i++)
		if (!az[i].subdomain || strcmp(az[i].status, "valid") != 0 ||
		    strcmp(az[i].type, "dns") != 0 || az[i].expires <= now ||
		    strcmp(az[i].account, o->account) != 0 ||
		    strcmp(az[i].value, az[0].value) != 0)
			return 0;
	if ((ids = json_loads(o->identifiers, 0, NULL)) == NULL)
		return -1;
	json_array_foreach(ids, i, id) {
		type = json_string_value(json_object_get(id, "type"));
		value = json_string_value(json_object_get(id, "value"));
		if (type == NULL || value == NULL || strcmp(type, "dns") != 0 ||
		    !policy_name_within(value, az[0].value))
			ok = 0;
	}
	if (json_array_size(ids) == 0)
		ok = 0;
	json_decref(ids);
	if (ok)
		snprintf(out, outlen, "%s", az[0].value);
	return 0;
}

int
issue_ask(struct acmed *a, struct order *o, const char *thumb,
    enum issue_outcome *out)
{
	json_t *req, *resp;
	const char *code, *reason, *type;
	json_t *request;
	char err[256], *akey, subtree[IDENT_LEN];
	int rc;

	*out = ISSUE_PENDING;
	/* The signer knows the requester by the ACME account's ID, which a key
	 * change keeps: approvals and revocation rights follow the account,
	 * not whichever key it has today (DESIGN: "the same account").  The
	 * order's ID (random, 128 bits) is the idempotency key: an answer lost
	 * to a crash or a timeout is asked for again and the signer hands out
	 * the certificate it issued for this order, never a second one. */
	if ((req = json_pack("{s:s, s:s, s:s, s:s}", "op", "issue", "csr",
	    o->csr, "account", o->account, "order", o->id)) == NULL)
		return -1;
	if ((akey = account_key_pem(a, o, thumb)) != NULL &&
	    json_object_set_new(req, "account_key", json_string(akey)) == -1) {
		free(akey);
		json_decref(req);
		return -1;
	}
	free(akey);
	/* An order proved under a subdomain authorization names its subtree:
	 * the signer's approval of (account, subtree) then stands in for the
	 * device's. */
	if (order_delegation(a, o, subtree, sizeof(subtree)) == -1 ||
	    (subtree[0] != '\0' && json_object_set_new(req, "delegation",
	    json_string(subtree)) == -1)) {
		json_decref(req);
		return -1;
	}
	resp = signer_call(a->ca.signer_socket, req, err, sizeof(err));
	json_decref(req);
	o->asked_at = time(NULL);
	if (resp == NULL) {
		log_msg(LOG_WARNING, "order %s: signer: %s", o->id, err);
		o->retry_after = ISSUE_RETRY_DEFAULT;
		return order_update(a->db, o) == 0 ? 0 : -1;
	}
	if (json_is_true(json_object_get(resp, "ok"))) {
		rc = record_cert(a, o, thumb, resp);
		if (rc == 0)
			*out = ISSUE_VALID;
		json_decref(resp);
		return rc;
	}
	code = json_string_value(json_object_get(resp, "error"));
	reason = json_string_value(json_object_get(resp, "reason"));
	if (code == NULL)
		code = "internal";
	if (reason == NULL)
		reason = code;
	if ((type = refusal_type(code)) != NULL) {
		rc = record_refusal(a, o, type, reason);
		*out = ISSUE_REFUSED;
		json_decref(resp);
		return rc;
	}
	if (strcmp(code, "approvalPending") == 0) {
		json_int_t ra = json_integer_value(json_object_get(resp,
		    "retry_after"));

		request = json_object_get(resp, "request");
		/* An integer today; kept as text so the signer may change it. */
		if (json_is_integer(request))
			snprintf(o->request, sizeof(o->request), "%" JSON_INTEGER_FORMAT,
			    json_integer_value(request));
		else
			snprintf(o->request, sizeof(o->request), "%s",
			    json_string_value(request) ?: "");
		o->retry_after = ra > 0 && ra <= 3600 ? (int)ra : ISSUE_RETRY_DEFAULT;
	} else {
		/* unauthorized, internal, badRequest: ours or the signer's
		 * trouble, not the client's; keep the order and try later. */
		log_msg(LOG_WARNING, "order %s: signer said %s: %s", o->id,
		    code, reason);
		o->retry_after = ISSUE_RETRY_DEFAULT;
	}
	json_decref(resp);
	return order_update(a->db, o) == 0 ? 0 : -1;
}

int
issue_recover(struct acmed *a, struct order *o, enum issue_outcome *out)
{
	json_t *req, *resp, *cert, *ans;
	const char *code, *status;
	char err[256];
	int rc = 0;

	*out = ISSUE_PENDING;
	if ((req = json_pack("{s:s, s:s, s:s}", "op", "issued", "account",
	    o->account, "order", o->id)) == NULL)
		return -1;
	resp = signer_call(a->ca.signer_socket, req, err, sizeof(err));
	json_decref(req);
	if (resp == NULL) {
		log_msg(LOG_WARNING, "order %s: signer: %s; the order is kept "
		    "until it can say whether it issued", o->id, err);
		return 0;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		code = json_string_value(json_object_get(resp, "error"));
		if (code == NULL)
			code = "internal";
		/* Nothing issued (notFound), or a signer that has no such
		 * lookup (unknownOp): the order may end.  Its own trouble
		 * (internal): ask again on the next poll. */
		if (strcmp(code, "notFound") == 0 ||
		    strcmp(code, "unknownOp") == 0)
			*out = ISSUE_REFUSED;
		else
			log_msg(LOG_WARNING, "order %s: signer said %s to the "
			    "issued lookup", o->id, code);
		json_decref(resp);
		return 0;
	}
	cert = json_object_get(resp, "cert");
	status = json_string_value(json_object_get(cert, "status"));
	if (status != NULL && strcmp(status, "revoked") == 0) {
		*out = ISSUE_REFUSED;
		json_decref(resp);
		return 0;
	}
	/* The same shape as an issue answer, for record_cert. */
	if ((ans = json_pack("{s:O?, s:O?, s:O?}", "serial", json_object_get(cert,
	    "serial"), "pem", json_object_get(cert, "pem"), "chain",
	    json_object_get(resp, "chain"))) == NULL) {
		json_decref(resp);
		return -1;
	}
	log_msg(LOG_NOTICE, "order %s: the signer had issued it already; "
	    "handing over that certificate", o->id);
	if ((rc = record_cert(a, o, "", ans)) == 0)
		*out = ISSUE_VALID;
	json_decref(ans);
	json_decref(resp);
	return rc;
}
