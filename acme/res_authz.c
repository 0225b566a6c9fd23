/*
 * res_authz: pre-authorization (newAuthz, RFC 8555 7.4.1, with RFC 9444
 * subdomainAuthAllowed), authorizations (7.5, read and deactivate 7.5.2) and
 * challenges (7.5.1: a POST of {} starts the validation in the pool).
 *
 * Only dns identifiers are pre-authorized: an ip identifier is validated per
 * order (RFC 8738), and newAuthz refuses it with rejectedIdentifier.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "log.h"
#include "objects.h"
#include "resources.h"
#include "vpool.h"

#define TOKEN_BYTES	32

/* ---- newAuthz ------------------------------------------------------------- */

/* 1 if name is label or ends in "." label (whole labels, any case). */
static int
last_label_is(const char *name, const char *label)
{
	const char *dot = strrchr(name, '.');

	return strcasecmp(dot != NULL ? dot + 1 : name, label) == 0;
}

/*
 * Policy for a pre-authorized name, into canon.  A plain one is a device
 * name, as in newOrder.  One with subdomainAuthAllowed must be a parent the
 * device names of newOrder live under: a device label left of it must pass
 * the same policy.  .local names have no delegated tree to prove by DNS.
 * 0 ok, 1 refused (reason set).
 */
static int
check_preauth_name(struct acmed *a, const char *value, int subdomain,
    char *canon, size_t clen, char *reason, size_t rlen)
{
	char probe[IDENT_LEN + 8], pcanon[IDENT_LEN + 8];

	if (!subdomain)
		return policy_check_dns(&a->policy, value, canon, clen, reason,
		    rlen) == POLICY_OK ? 0 : 1;
	if (last_label_is(value, "local")) {
		snprintf(reason, rlen, "%s: .local names cannot be authorized "
		    "for subdomains (mDNS names have no DNS tree to prove)",
		    value);
		return 1;
	}
	if (snprintf(probe, sizeof(probe), "device.%s", value) >=
	    (int)sizeof(probe) || policy_check_dns(&a->policy, probe, pcanon,
	    sizeof(pcanon), reason, rlen) != POLICY_OK ||
	    strlen(pcanon) - strlen("device.") >= clen) {
		snprintf(reason, rlen, "%s: device names under it are refused "
		    "by policy (it must be a configured domain)", value);
		return 1;
	}
	/* pcanon is "device." and the lower-cased parent. */
	memcpy(canon, pcanon + strlen("device."), strlen(pcanon) -
	    strlen("device.") + 1);
	return 0;
}

static int
new_chall(struct chall *c, const char *authz_id, const char *type)
{
	unsigned char raw[TOKEN_BYTES];
	char *s;

	memset(c, 0, sizeof(*c));
	snprintf(c->authz_id, sizeof(c->authz_id), "%s", authz_id);
	snprintf(c->type, sizeof(c->type), "%s", type);
	snprintf(c->status, sizeof(c->status), "pending");
	if (acmedb_new_id(c->id) == -1 || RAND_bytes(raw, sizeof(raw)) != 1 ||
	    (s = b64url_encode(raw, sizeof(raw))) == NULL)
		return -1;
	snprintf(c->token, sizeof(c->token), "%s", s);
	free(s);
	return 0;
}

int
res_new_authz(struct req *r, struct resp *rs)
{
	json_t *id = r->payload != NULL ? json_object_get(r->payload,
	    "identifier") : NULL, *sub;
	const char *type = json_string_value(json_object_get(id, "type"));
	const char *value = json_string_value(json_object_get(id, "value"));
	struct chall ch[AUTHZ_MAX_CHALLS];
	char reason[256], *loc;
	struct authz az;
	size_t nch = 0;
	int rc;

	if (type == NULL || value == NULL)
		return resp_problem(rs, 400, "malformed", "newAuthz needs an "
		    "\"identifier\" with string \"type\" and \"value\"");
	sub = json_object_get(id, "subdomainAuthAllowed");
	if (sub != NULL && !json_is_boolean(sub))
		return resp_problem(rs, 400, "malformed", "\"subdomainAuthAllowed\""
		    " must be a boolean");
	if (strcmp(type, "ip") == 0)
		return resp_problem(rs, 400, "rejectedIdentifier", "ip "
		    "identifiers are not pre-authorized: validate them in an "
		    "order");
	if (strcmp(type, "dns") != 0)
		return resp_problem(rs, 400, "unsupportedIdentifier", "only dns "
		    "identifiers can be pre-authorized");
	if (value[0] == '*')
		return resp_problem(rs, 400, "rejectedIdentifier", "wildcard "
		    "names are not issued");

	memset(&az, 0, sizeof(az));
	az.subdomain = json_is_true(sub);
	if (check_preauth_name(r->a, value, az.subdomain, az.value,
	    sizeof(az.value), reason, sizeof(reason)) != 0)
		return resp_problem(rs, 400, "rejectedIdentifier", "%s", reason);
	if (acmedb_new_id(az.id) == -1)
		return -1;
	snprintf(az.account, sizeof(az.account), "%s", r->acct.id);
	snprintf(az.type, sizeof(az.type), "dns");
	snprintf(az.status, sizeof(az.status), "pending");
	/* Pending as long as an order would be; valid for AUTHZ_VALID_SECONDS
	 * once validated (vpool.c). */
	az.expires = time(NULL) + r->a->acme.order_lifetime;
	/* A subtree is proven only in the DNS: RFC 9444 allows dns-01 only. */
	if ((!az.subdomain && (new_chall(&ch[nch++], az.id, "http-01") == -1 ||
	    new_chall(&ch[nch++], az.id, "tls-alpn-01") == -1)) ||
	    new_chall(&ch[nch++], az.id, "dns-01") == -1)
		return -1;
	if ((rc = authz_insert(r->a->db, &az, ch, nch)) != 0)
		return -1;
	if ((loc = url_of(r->a, PATH_AUTHZ "/%s", az.id)) == NULL)
		return -1;
	rc = resp_location(rs, "%s", loc);
	free(loc);
	if (rc == -1)
		return -1;
	log_msg(LOG_INFO, "account %s: pre-authorization %s of %s%s",
	    r->acct.id, az.id, az.value, az.subdomain ? " and its subdomains" :
	    "");
	return resp_json(rs, 201, authz_json(r->a, &az, ch, nch));
}

/* ---- authorizations ------------------------------------------------------- */

/* Load an authorization of the signer's account; 0, 1 answered, -1 error. */
static int
own_authz(struct req *r, struct resp *rs, const char *id, struct authz *az)
{
	int rc = authz_get(r->a->db, id, az);

	if (rc == ACMEDB_NOTFOUND)
		return resp_problem(rs, 404, "malformed", "no such authorization")
		    == 0 ? 1 : -1;
	if (rc != 0)
		return -1;
	if (strcmp(az->account, r->acct.id) != 0)
		return resp_problem(rs, 403, "unauthorized", "not this account's "
		    "authorization") == 0 ? 1 : -1;
	return 0;
}

static int
answer_authz(struct req *r, struct resp *rs, const struct authz *az)
{
	struct chall ch[AUTHZ_MAX_CHALLS];
	size_t i, n;
	int rc;

	if (challs_of_authz(r->a->db, az->id, ch, AUTHZ_MAX_CHALLS, &n) == -1)
		return -1;
	rc = resp_json(rs, 200, authz_json(r->a, az, ch, n));
	for (i = 0; i < n; i++)
		chall_clear(&ch[i]);
	return rc;
}

int
res_authz(struct req *r, struct resp *rs)
{
	struct authz az;
	const char *status;
	int rc;

	if (r->arg2[0] != '\0')
		return resp_problem(rs, 404, "malformed", "no such resource");
	if ((rc = own_authz(r, rs, r->arg, &az)) != 0)
		return rc == 1 ? 0 : -1;
	if (r->payload == NULL)
		return answer_authz(r, rs, &az);
	status = json_string_value(json_object_get(r->payload, "status"));
	if (status == NULL || strcmp(status, "deactivated") != 0)
		return resp_problem(rs, 400, "malformed", "an authorization can "
		    "only be set to \"deactivated\"");
	if ((rc = authz_deactivate(r->a->db, az.id)) == ACMEDB_NOTFOUND)
		return resp_problem(rs, 403, "unauthorized", "the authorization "
		    "is %s and cannot be deactivated", az.status);
	if (rc != 0 || authz_get(r->a->db, r->arg, &az) != 0)
		return -1;
	return answer_authz(r, rs, &az);
}

/* Start validating: pending -> processing, then into the pool. */
static int
start_validation(struct req *r, struct resp *rs, struct chall *c)
{
	int rc = chall_start(r->a->db, c->id);

	if (rc == ACMEDB_NOTFOUND)
		return 0;	/* already started, finished, or another one ran */
	if (rc != 0)
		return -1;
	if (vpool_submit(r->a->vpool, c->id) == -1) {
		if (chall_reset(r->a->db, c->id) == -1)
			return -1;
		rs->retry_after = 10;
		return resp_problem(rs, 429, "rateLimited", "too many validations "
		    "in progress; try again shortly") == 0 ? 1 : -1;
	}
	return 0;
}

int
res_chall(struct req *r, struct resp *rs)
{
	struct authz az;
	struct chall c;
	char *up;
	int rc;

	if (r->arg2[0] != '\0')
		return resp_problem(rs, 404, "malformed", "no such resource");
	if ((rc = chall_get(r->a->db, r->arg, &c)) == ACMEDB_NOTFOUND)
		return resp_problem(rs, 404, "malformed", "no such challenge");
	if (rc != 0)
		return -1;
	if ((rc = own_authz(r, rs, c.authz_id, &az)) != 0) {
		chall_clear(&c);
		return rc == 1 ? 0 : -1;
	}
	/* Any payload object ({} by RFC 8555 7.5.1) asks for validation. */
	if (r->payload != NULL && (rc = start_validation(r, rs, &c)) != 0) {
		chall_clear(&c);
		return rc == 1 ? 0 : -1;
	}
	chall_clear(&c);
	if (chall_get(r->a->db, r->arg, &c) != 0)
		return -1;
	if ((up = url_of(r->a, PATH_AUTHZ "/%s", az.id)) == NULL ||
	    resp_link(rs, up, "up") == -1) {
		free(up);
		chall_clear(&c);
		return -1;
	}
	free(up);
	rc = resp_json(rs, 200, chall_json(r->a, &c));
	chall_clear(&c);
	return rc;
}
