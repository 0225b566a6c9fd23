/*
 * issue: the order's round trip to the signer (see issue.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certid.h"
#include "http.h"
#include "issue.h"
#include "log.h"
#include "signercall.h"

/* The signer's refusal codes that are final and what ACME calls them. */
static const char *
refusal_type(const char *code)
{
	static const char *policy[] = { "badCSR", "badPublicKey",
	    "badSignatureAlgorithm", "rejectedIdentifier" };
	size_t i;

	if (strcmp(code, "approvalDenied") == 0)
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
	struct cert c;
	X509 *x;
	int rc = -1;

	if (serial == NULL || pem == NULL || chain == NULL) {
		log_msg(LOG_ERR, "order %s: the signer's issue answer lacks "
		    "serial, pem or chain", o->id);
		return -1;
	}
	memset(&c, 0, sizeof(c));
	if ((x = cert_from_pem(pem)) == NULL ||
	    certid_of(x, c.ari_id) == -1 ||
	    cert_validity(x, &c.not_before, &c.not_after) == -1) {
		log_msg(LOG_ERR, "order %s: the signer's certificate is "
		    "unreadable or has no AKI", o->id);
		goto out;
	}
	snprintf(c.serial, sizeof(c.serial), "%s", serial);
	snprintf(c.account, sizeof(c.account), "%s", o->account);
	snprintf(c.issued_to, sizeof(c.issued_to), "%s", thumb);
	c.pem = (char *)pem;
	c.chain = (char *)chain;
	if (order_issued(a->db, o->id, &c) != 0)
		goto out;
	snprintf(o->status, sizeof(o->status), "valid");
	snprintf(o->cert_id, sizeof(o->cert_id), "%s", c.id);
	log_msg(LOG_INFO, "order %s: certificate %s issued", o->id, serial);
	rc = 0;
out:
	X509_free(x);
	return rc;
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

int
issue_ask(struct acmed *a, struct order *o, const char *thumb,
    enum issue_outcome *out)
{
	json_t *req, *resp;
	const char *code, *reason, *type;
	json_t *request;
	char err[256];
	int rc;

	*out = ISSUE_PENDING;
	/* The signer knows the requester by the ACME account's ID, which a key
	 * change keeps: approvals and revocation rights follow the account,
	 * not whichever key it has today (DESIGN: "the same account"). */
	if ((req = json_pack("{s:s, s:s, s:s}", "op", "issue", "csr", o->csr,
	    "account", o->account)) == NULL)
		return -1;
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
