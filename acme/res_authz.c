/*
 * res_authz: authorizations (RFC 8555 7.5, read and deactivate 7.5.2) and
 * challenges (7.5.1: a POST of {} starts the validation in the pool).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objects.h"
#include "resources.h"
#include "vpool.h"

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
