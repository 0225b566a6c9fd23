/*
 * objects: ACME resource objects as JSON, and status derivation (see
 * objects.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "issue.h"
#include "objects.h"

static int
set_time(json_t *o, const char *name, time_t t)
{
	char buf[32];

	rfc3339(t, buf);
	return json_object_set_new(o, name, json_string(buf));
}

static int
set_url(json_t *o, const struct acmed *a, const char *name, const char *path,
    const char *id, const char *suffix)
{
	char *u = url_of(a, "%s/%s%s", path, id, suffix);
	int rc;

	if (u == NULL)
		return -1;
	rc = json_object_set_new(o, name, json_string(u));
	free(u);
	return rc;
}

/*
 * Attach stored problem JSON text as "error", with the "status" it would be
 * answered with (RFC 7807): clients print it, and problems stored by older
 * versions or by other parts have none.
 */
static int
set_error(json_t *o, const char *error)
{
	json_t *e;
	unsigned int status;

	if (error == NULL)
		return 0;
	if ((e = json_loads(error, 0, NULL)) == NULL)
		return -1;
	if (!json_is_integer(json_object_get(e, "status"))) {
		status = problem_status(json_string_value(json_object_get(e,
		    "type")));
		if (json_object_set_new(e, "status", json_integer(status)) == -1) {
			json_decref(e);
			return -1;
		}
	}
	return json_object_set_new(o, "error", e);
}

json_t *
account_json(const struct acmed *a, const struct acct *ac)
{
	json_t *o, *contacts;

	if ((contacts = json_loads(ac->contacts, 0, NULL)) == NULL)
		return NULL;
	if ((o = json_pack("{s:s, s:o}", "status", ac->status, "contact",
	    contacts)) == NULL)
		return NULL;
	if (set_url(o, a, "orders", PATH_ACCT, ac->id, "/orders") == -1 ||
	    set_time(o, "createdAt", ac->created) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
order_json(const struct acmed *a, const struct order *ord)
{
	struct authz az[ORDER_MAX_IDENTS];
	json_t *o, *idents, *urls;
	size_t i, n;

	if ((idents = json_loads(ord->identifiers, 0, NULL)) == NULL)
		return NULL;
	if ((o = json_pack("{s:s, s:o}", "status", ord->status, "identifiers",
	    idents)) == NULL)
		return NULL;
	if ((urls = json_array()) == NULL ||
	    json_object_set_new(o, "authorizations", urls) == -1 ||
	    authzs_of_order(a->db, ord->id, az, ORDER_MAX_IDENTS, &n) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		char *u = url_of(a, PATH_AUTHZ "/%s", az[i].id);

		if (u == NULL || json_array_append_new(urls, json_string(u)) == -1) {
			free(u);
			goto fail;
		}
		free(u);
	}
	if (set_time(o, "expires", ord->expires) == -1 ||
	    set_url(o, a, "finalize", PATH_ORDER, ord->id, "/finalize") == -1 ||
	    set_error(o, ord->error) == -1 ||
	    (ord->cert_id[0] != '\0' && set_url(o, a, "certificate",
	    PATH_CERT, ord->cert_id, "") == -1) ||
	    (ord->replaces != NULL && json_object_set_new(o, "replaces",
	    json_string(ord->replaces)) == -1))
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

const char *
authz_status_now(const struct authz *az, time_t now)
{
	if ((strcmp(az->status, "pending") == 0 ||
	    strcmp(az->status, "valid") == 0) && now >= az->expires)
		return "expired";
	return az->status;
}

json_t *
chall_json(const struct acmed *a, const struct chall *c)
{
	json_t *o;

	if ((o = json_pack("{s:s, s:s, s:s}", "type", c->type, "status",
	    c->status, "token", c->token)) == NULL)
		return NULL;
	if (set_url(o, a, "url", PATH_CHALL, c->id, "") == -1 ||
	    (c->validated != 0 && set_time(o, "validated", c->validated) == -1) ||
	    set_error(o, c->error) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
authz_json(const struct acmed *a, const struct authz *az,
    const struct chall *ch, size_t nch)
{
	json_t *o, *arr, *c;
	size_t i;

	if ((o = json_pack("{s:{s:s, s:s}, s:s}", "identifier", "type", az->type,
	    "value", az->value, "status", authz_status_now(az, time(NULL)))) == NULL)
		return NULL;
	if (set_time(o, "expires", az->expires) == -1 ||
	    (az->subdomain && json_object_set_new(o, "subdomainAuthAllowed",
	    json_true()) == -1) ||
	    (arr = json_array()) == NULL ||
	    json_object_set_new(o, "challenges", arr) == -1)
		goto fail;
	for (i = 0; i < nch; i++) {
		/* A valid authorization lists only the challenge that won. */
		if (strcmp(az->status, "valid") == 0 &&
		    strcmp(ch[i].status, "valid") != 0)
			continue;
		if ((c = chall_json(a, &ch[i])) == NULL ||
		    json_array_append_new(arr, c) == -1)
			goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* What the authorizations say the order should be: pending, ready, invalid. */
static const char *
status_from_authzs(const struct authz *az, size_t n, time_t now)
{
	size_t i, valid = 0;

	for (i = 0; i < n; i++) {
		const char *s = authz_status_now(&az[i], now);

		if (strcmp(s, "valid") == 0)
			valid++;
		else if (strcmp(s, "pending") != 0)
			return "invalid";	/* invalid, deactivated, expired */
	}
	return n > 0 && valid == n ? "ready" : "pending";
}

/* Read o again from acme.db: someone may have moved it on. */
static int
reread(struct acmed *a, struct order *o)
{
	char id[ID_LEN];

	snprintf(id, sizeof(id), "%s", o->id);
	order_clear(o);
	return order_get(a->db, id, o) == 0 ? 0 : -1;
}

/*
 * An order that waited for the operator past its expiry (RFC 8555 7.1.3)
 * ends invalid; the approval request stays with the signer, so once the
 * operator approves, the device's next order is issued at once.
 */
static int
expire_processing(struct acmed *a, struct order *o)
{
	enum issue_outcome got;
	char detail[256];
	json_t *p;
	char *text;
	int rc, with = o->request[0] != '\0';

	/* A certificate issued while acmed was down, and never polled for,
	 * is handed over rather than orphaned (and is never issued twice). */
	if (issue_recover(a, o, &got) == -1)
		return -1;
	if (got == ISSUE_VALID)
		return 0;
	if (got == ISSUE_PENDING)	/* the signer cannot say: ask later */
		return 0;

	snprintf(detail, sizeof(detail), "the order expired before an operator "
	    "approved the device%s%s%s; once approved, a new order is issued at "
	    "once", with ? " (approval request " : "", o->request, with ? ")" : "");
	if ((p = problem_new("unauthorized", detail)) == NULL)
		return -1;
	text = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	if (text == NULL)
		return -1;
	rc = order_expire(a->db, o->id, text);
	free(text);
	if (rc == -1)
		return -1;
	if (rc == 0)
		log_msg(LOG_NOTICE, "order %s: expired waiting for the operator%s%s",
		    o->id, o->request[0] != '\0' ? "; approval request " : "",
		    o->request);
	return reread(a, o);	/* expired now, or moved on meanwhile */
}

int
order_refresh(struct acmed *a, struct order *o)
{
	struct authz az[ORDER_MAX_IDENTS];
	const char *want;
	time_t now = time(NULL);
	size_t n;
	int rc;

	if (strcmp(o->status, "processing") == 0 && now >= o->expires)
		return expire_processing(a, o);
	if (strcmp(o->status, "pending") != 0 && strcmp(o->status, "ready") != 0)
		return 0;
	if (now >= o->expires)
		want = "invalid";
	else if (strcmp(o->status, "ready") == 0)
		return 0;
	else {
		if (authzs_of_order(a->db, o->id, az, ORDER_MAX_IDENTS, &n) == -1)
			return -1;
		want = status_from_authzs(az, n, now);
	}
	if (strcmp(want, o->status) == 0)
		return 0;
	rc = order_transition(a->db, o->id, o->status, want);
	if (rc == -1)
		return -1;
	if (rc == 0)
		snprintf(o->status, sizeof(o->status), "%s", want);
	else if (reread(a, o) == -1)	/* someone else moved it first */
		return -1;
	return 0;
}
