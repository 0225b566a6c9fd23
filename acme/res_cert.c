/*
 * res_cert: certificate download (RFC 8555 7.4.2), revokeCert (7.6: by the
 * account that ordered it or by the certificate's own key) and renewalInfo
 * (RFC 9773).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "certid.h"
#include "log.h"
#include "resources.h"
#include "signercall.h"

#define ARI_RETRY_AFTER	(6 * 3600)

int
res_cert(struct req *r, struct resp *rs)
{
	struct cert c;
	char *body;
	int rc;

	if (r->arg2[0] != '\0')
		return resp_problem(rs, 404, "malformed", "no such resource");
	if (r->payload != NULL)
		return resp_problem(rs, 400, "malformed", "a certificate is read "
		    "with POST-as-GET");
	if ((rc = cert_get(r->a->db, r->arg, &c)) == ACMEDB_NOTFOUND)
		return resp_problem(rs, 404, "malformed", "no such certificate");
	if (rc != 0)
		return -1;
	if (strcmp(c.account, r->acct.id) != 0) {
		cert_clear(&c);
		return resp_problem(rs, 403, "unauthorized", "not this account's "
		    "certificate");
	}
	/* The leaf, then the root it chains to. */
	if (asprintf(&body, "%s%s%s", c.pem, c.pem[0] != '\0' &&
	    c.pem[strlen(c.pem) - 1] == '\n' ? "" : "\n", c.chain) < 0) {
		cert_clear(&c);
		return -1;
	}
	cert_clear(&c);
	rc = resp_text(rs, 200, "application/pem-certificate-chain", body);
	free(body);
	return rc;
}

/* RFC 5280 reason codes a subscriber may give (not certificateHold,
 * removeFromCRL or cACompromise: revocation here is final and the CA's). */
static const char *
reason_name(json_int_t code)
{
	switch (code) {
	case 0: return "unspecified";
	case 1: return "keyCompromise";
	case 3: return "affiliationChanged";
	case 4: return "superseded";
	case 5: return "cessationOfOperation";
	case 9: return "privilegeWithdrawn";
	default: return NULL;
	}
}

/* The submitted certificate, if it is one we issued; 0, 1 answered, -1. */
static int
find_cert(struct req *r, struct resp *rs, X509 **xp, struct cert *c)
{
	const char *b64 = json_string_value(json_object_get(r->payload,
	    "certificate"));
	unsigned char *der, *ours = NULL;
	const unsigned char *p;
	char id[CERTID_LEN];
	X509 *mine;
	size_t len;
	int n, same, rc;

	if (b64 == NULL || (der = b64url_decode(b64, strlen(b64), &len)) == NULL)
		return resp_problem(rs, 400, "malformed", "revokeCert needs "
		    "\"certificate\" (base64url DER)") == 0 ? 1 : -1;
	p = der;
	*xp = d2i_X509(NULL, &p, (long)len);
	if (*xp == NULL || p != der + len || certid_of(*xp, id) == -1 ||
	    (rc = cert_by_ari_id(r->a->db, id, c)) == ACMEDB_NOTFOUND) {
		free(der);
		return resp_problem(rs, 404, "malformed", "not a certificate "
		    "this server issued") == 0 ? 1 : -1;
	}
	if (rc != 0) {
		free(der);
		return -1;
	}
	/* Same issuer key and serial is not enough: the bytes must match. */
	mine = cert_from_pem(c->pem);
	n = mine != NULL ? i2d_X509(mine, &ours) : -1;
	same = n > 0 && (size_t)n == len && memcmp(ours, der, len) == 0;
	OPENSSL_free(ours);
	X509_free(mine);
	free(der);
	if (!same)
		return resp_problem(rs, 404, "malformed", "not a certificate this "
		    "server issued") == 0 ? 1 : -1;
	return 0;
}

static int
may_revoke(const struct req *r, X509 *x, const struct cert *c)
{
	if (r->jws->kid != NULL)
		return strcmp(c->account, r->acct.id) == 0;
	/* Signed by the certificate's key (RFC 8555 7.6). */
	return EVP_PKEY_eq(X509_get0_pubkey(x), r->key) == 1;
}

static int
ask_revoke(struct req *r, struct resp *rs, struct cert *c, const char *why)
{
	const char *code, *reason;
	char err[256];
	json_t *req, *resp;
	int rc;

	if ((req = json_pack("{s:s, s:s, s:s, s:s}", "op", "revoke", "serial",
	    c->serial, "reason", why, "account", c->account)) == NULL)
		return -1;
	resp = signer_call(r->a->ca.signer_socket, req, err, sizeof(err));
	json_decref(req);
	if (resp == NULL) {
		log_msg(LOG_WARNING, "revoke %s: %s", c->serial, err);
		return resp_problem(rs, 503, "serverInternal", "the signer is "
		    "unavailable; try again later");
	}
	code = json_string_value(json_object_get(resp, "error"));
	reason = json_string_value(json_object_get(resp, "reason"));
	if (json_is_true(json_object_get(resp, "ok")) ||
	    (code != NULL && strcmp(code, "alreadyRevoked") == 0)) {
		if (cert_set_revoked(r->a->db, c->id) == -1) {
			json_decref(resp);
			return -1;
		}
		if (code != NULL)
			rc = resp_problem(rs, 400, "alreadyRevoked", "the "
			    "certificate is already revoked");
		else {
			log_msg(LOG_NOTICE, "certificate %s revoked (%s)",
			    c->serial, why);
			rc = resp_text(rs, 200, NULL, "");
		}
	} else {
		log_msg(LOG_WARNING, "revoke %s: signer said %s: %s", c->serial,
		    code != NULL ? code : "?", reason != NULL ? reason : "");
		rc = resp_problem(rs, 500, "serverInternal", "the signer refused "
		    "to revoke: %s", reason != NULL ? reason : "no reason given");
	}
	json_decref(resp);
	return rc;
}

int
res_revoke(struct req *r, struct resp *rs)
{
	json_t *jr;
	const char *why = "unspecified";
	struct cert c;
	X509 *x = NULL;
	int rc;

	if (r->payload == NULL)
		return resp_problem(rs, 400, "malformed", "revokeCert needs a "
		    "payload object");
	if ((jr = json_object_get(r->payload, "reason")) != NULL &&
	    (!json_is_integer(jr) || (why = reason_name(json_integer_value(jr))) == NULL))
		return resp_problem(rs, 400, "badRevocationReason", "reason must "
		    "be one of 0, 1, 3, 4, 5, 9");
	memset(&c, 0, sizeof(c));
	if ((rc = find_cert(r, rs, &x, &c)) != 0) {
		X509_free(x);
		cert_clear(&c);
		return rc == 1 ? 0 : -1;
	}
	if (!may_revoke(r, x, &c))
		rc = resp_problem(rs, 403, "unauthorized", "neither the account "
		    "that ordered this certificate nor its key");
	else if (c.revoked)
		rc = resp_problem(rs, 400, "alreadyRevoked", "the certificate is "
		    "already revoked");
	else
		rc = ask_revoke(r, rs, &c, why);
	X509_free(x);
	cert_clear(&c);
	return rc;
}

static int
set_time(json_t *o, const char *name, time_t t)
{
	char buf[32];

	rfc3339(t, buf);
	return json_object_set_new(o, name, json_string(buf));
}

int
res_renewal_info(struct req *r, struct resp *rs)
{
	struct cert c;
	json_t *win, *o;
	time_t start, end, now = time(NULL), life;
	int rc;

	if (r->arg2[0] != '\0')
		return resp_problem(rs, 404, "malformed", "no such resource");
	if ((rc = cert_by_ari_id(r->a->db, r->arg, &c)) == ACMEDB_NOTFOUND)
		return resp_problem(rs, 404, "malformed", "no certificate has "
		    "this certID");
	if (rc != 0)
		return -1;
	life = c.not_after - c.not_before;
	if (c.revoked) {
		/* RFC 9773 4.2: a window in the past means renew now. */
		start = now - 2 * 3600;
		end = now - 3600;
	} else {
		/* Inside the last third, leaving time to retry before expiry. */
		start = c.not_before + life * 2 / 3;
		end = c.not_before + life * 5 / 6;
	}
	cert_clear(&c);
	if ((win = json_object()) == NULL || set_time(win, "start", start) == -1 ||
	    set_time(win, "end", end) == -1 ||
	    (o = json_pack("{s:o}", "suggestedWindow", win)) == NULL)
		return -1;
	rs->retry_after = ARI_RETRY_AFTER;
	return resp_json(rs, 200, o);
}
