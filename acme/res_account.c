/*
 * res_account: newAccount (RFC 8555 7.3), the account resource (update,
 * deactivation 7.3.6), its orders list (7.1.2.1, paged) and keyChange
 * (7.3.5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "contact.h"
#include "objects.h"
#include "resources.h"

#define ORDERS_PAGE	100

static int
answer_account(struct req *r, struct resp *rs, unsigned int status,
    const struct acct *ac)
{
	if (resp_location(rs, "%s" PATH_ACCT "/%s", r->a->acme.base_url,
	    ac->id) == -1)
		return -1;
	return resp_json(rs, status, account_json(r->a, ac));
}

static int
check_contacts(struct resp *rs, const json_t *contacts)
{
	const char *type;
	char detail[256];

	if (contact_check(contacts, &type, detail, sizeof(detail)) == 0)
		return 0;
	resp_problem(rs, 400, type, "%s", detail);
	return -1;
}

/* JSON text of the contacts array ("[]" when absent). */
static char *
contacts_text(const json_t *contacts)
{
	json_t *empty;
	char *s;

	if (contacts != NULL)
		return json_dumps(contacts, JSON_COMPACT);
	if ((empty = json_array()) == NULL)
		return NULL;
	s = json_dumps(empty, JSON_COMPACT);
	json_decref(empty);
	return s;
}

static int
create_account(struct req *r, struct resp *rs, const json_t *contacts)
{
	struct acct ac;
	json_t *jwk;
	int rc;

	memset(&ac, 0, sizeof(ac));
	snprintf(ac.thumb, sizeof(ac.thumb), "%s", r->thumb);
	snprintf(ac.status, sizeof(ac.status), "valid");
	if ((jwk = jws_pkey_to_jwk(r->key)) == NULL)
		return -1;
	ac.jwk = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(jwk);
	ac.contacts = contacts_text(contacts);
	if (ac.jwk == NULL || ac.contacts == NULL) {
		acct_clear(&ac);
		return -1;
	}
	rc = acct_insert(r->a->db, &ac);
	if (rc == ACMEDB_CONFLICT) {
		/* The same key registered at the same moment: answer with it. */
		acct_clear(&ac);
		if (acct_by_thumb(r->a->db, r->thumb, &ac) != 0)
			return -1;
		rc = answer_account(r, rs, 200, &ac);
	} else if (rc == 0)
		rc = answer_account(r, rs, 201, &ac);
	acct_clear(&ac);
	return rc;
}

int
res_new_account(struct req *r, struct resp *rs)
{
	const json_t *contacts;

	if (r->payload == NULL)
		return resp_problem(rs, 400, "malformed", "newAccount needs a "
		    "payload object");
	if (json_is_true(json_object_get(r->payload, "onlyReturnExisting"))) {
		if (!r->have_acct)
			return resp_problem(rs, 400, "accountDoesNotExist",
			    "no account has this key");
		return answer_account(r, rs, 200, &r->acct);
	}
	if (r->have_acct)
		return answer_account(r, rs, 200, &r->acct);
	contacts = json_object_get(r->payload, "contact");
	if (check_contacts(rs, contacts) == -1)
		return 0;
	return create_account(r, rs, contacts);
}

static int
list_orders(struct req *r, struct resp *rs, size_t page)
{
	char (*ids)[ID_LEN];
	json_t *o, *arr;
	size_t i, n;
	int rc = -1;

	if (r->payload != NULL)
		return resp_problem(rs, 400, "malformed", "the orders list wants "
		    "POST-as-GET");
	if ((ids = calloc(ORDERS_PAGE + 1, ID_LEN)) == NULL)
		return -1;
	if (orders_of_account(r->a->db, r->acct.id, page * ORDERS_PAGE,
	    ORDERS_PAGE + 1, ids, &n) == -1 || (arr = json_array()) == NULL)
		goto out;
	if ((o = json_pack("{s:o}", "orders", arr)) == NULL)
		goto out;
	for (i = 0; i < n && i < ORDERS_PAGE; i++) {
		char *u = url_of(r->a, PATH_ORDER "/%s", ids[i]);

		if (u == NULL || json_array_append_new(arr, json_string(u)) == -1) {
			free(u);
			json_decref(o);
			goto out;
		}
		free(u);
	}
	if (n > ORDERS_PAGE) {
		char *next = url_of(r->a, PATH_ACCT "/%s/orders/%zu", r->acct.id,
		    page + 1);

		if (next == NULL || resp_link(rs, next, "next") == -1) {
			free(next);
			json_decref(o);
			goto out;
		}
		free(next);
	}
	rc = resp_json(rs, 200, o);
out:
	free(ids);
	return rc;
}

static int
update_account(struct req *r, struct resp *rs)
{
	json_t *status = json_object_get(r->payload, "status");
	json_t *contacts = json_object_get(r->payload, "contact");
	struct acct ac;
	char *text;
	int rc;

	if (status != NULL) {
		const char *want = json_string_value(status);

		if (want == NULL || (strcmp(want, "valid") != 0 &&
		    strcmp(want, "deactivated") != 0))
			return resp_problem(rs, 400, "malformed", "an account "
			    "can only be set to \"deactivated\"");
	}
	if (contacts != NULL) {
		if (check_contacts(rs, contacts) == -1)
			return 0;
		if ((text = contacts_text(contacts)) == NULL)
			return -1;
		rc = acct_set_contacts(r->a->db, r->acct.id, text);
		free(text);
		if (rc != 0)
			return -1;
	}
	if (json_is_string(status) &&
	    strcmp(json_string_value(status), "deactivated") == 0 &&
	    acct_set_status(r->a->db, r->acct.id, "deactivated") != 0)
		return -1;
	if (acct_get(r->a->db, r->acct.id, &ac) != 0)
		return -1;
	rc = answer_account(r, rs, 200, &ac);
	acct_clear(&ac);
	return rc;
}

int
res_account(struct req *r, struct resp *rs)
{
	char *end;
	unsigned long page = 0;

	if (strcmp(r->arg, r->acct.id) != 0)
		return resp_problem(rs, 403, "unauthorized", "this is not the "
		    "signer's account");
	if (strcmp(r->arg2, "orders") == 0 || strncmp(r->arg2, "orders/", 7) == 0) {
		if (r->arg2[6] == '/') {
			page = strtoul(r->arg2 + 7, &end, 10);
			if (*end != '\0' || end == r->arg2 + 7 || page > 100000)
				return resp_problem(rs, 404, "malformed",
				    "no such page");
		}
		return list_orders(r, rs, page);
	}
	if (r->arg2[0] != '\0')
		return resp_problem(rs, 404, "malformed", "no such resource");
	if (r->payload == NULL)
		return answer_account(r, rs, 200, &r->acct);
	return update_account(r, rs);
}

/* The inner JWS's payload must name this account and its current key. */
static int
check_inner_payload(struct req *r, struct resp *rs, const struct jws *inner)
{
	json_t *p, *oldkey;
	const char *acct;
	char thumb[THUMB_LEN];
	struct jws_error e;
	int ok;

	if ((p = json_loadb((const char *)inner->payload, inner->payload_len,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL || !json_is_object(p)) {
		json_decref(p);
		resp_problem(rs, 400, "malformed", "keyChange: inner payload is "
		    "not a JSON object");
		return -1;
	}
	acct = json_string_value(json_object_get(p, "account"));
	oldkey = json_object_get(p, "oldKey");
	ok = acct != NULL && strcmp(acct, r->jws->kid) == 0;
	if (!ok)
		resp_problem(rs, 400, "malformed", "keyChange: \"account\" is not "
		    "the signer's account");
	else if (oldkey == NULL || jws_thumbprint(oldkey, thumb, sizeof(thumb),
	    &e) == -1 || strcmp(thumb, r->acct.thumb) != 0) {
		resp_problem(rs, 400, "malformed", "keyChange: \"oldKey\" is not "
		    "the account's key");
		ok = 0;
	}
	json_decref(p);
	return ok ? 0 : -1;
}

static int
key_in_use(struct req *r, struct resp *rs, const char *thumb)
{
	struct acct other;
	int rc = acct_by_thumb(r->a->db, thumb, &other);

	if (rc == ACMEDB_NOTFOUND)
		return 0;
	if (rc == 0) {
		rc = resp_location(rs, "%s" PATH_ACCT "/%s", r->a->acme.base_url,
		    other.id);
		acct_clear(&other);
		if (rc == 0)
			resp_problem(rs, 409, "conflict", "the new key is already "
			    "an account's key");
	}
	return 1;
}

int
res_key_change(struct req *r, struct resp *rs)
{
	struct jws *inner;
	struct jws_error e;
	EVP_PKEY *newkey = NULL;
	json_t *jwk = NULL;
	char thumb[THUMB_LEN], *jwktext = NULL;
	struct acct ac;
	int rc = -1;

	if ((inner = jws_parse_inner(r->jws, &e)) == NULL)
		return auth_problem(rs, &e);
	if ((newkey = jws_jwk_to_pkey(inner->jwk, &e)) == NULL ||
	    jws_verify(inner, newkey, &e) == -1 ||
	    jws_thumbprint(inner->jwk, thumb, sizeof(thumb), &e) == -1) {
		rc = auth_problem(rs, &e);
		goto out;
	}
	if (check_inner_payload(r, rs, inner) == -1 ||
	    key_in_use(r, rs, thumb)) {
		rc = rs->body != NULL ? 0 : -1;
		goto out;
	}
	if ((jwk = jws_pkey_to_jwk(newkey)) == NULL ||
	    (jwktext = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		goto out;
	rc = acct_set_key(r->a->db, r->acct.id, thumb, jwktext);
	if (rc == ACMEDB_CONFLICT) {
		rc = resp_problem(rs, 409, "conflict", "the new key is already "
		    "an account's key");
		goto out;
	}
	if (rc != 0 || acct_get(r->a->db, r->acct.id, &ac) != 0) {
		rc = -1;
		goto out;
	}
	rc = answer_account(r, rs, 200, &ac);
	acct_clear(&ac);
out:
	free(jwktext);
	json_decref(jwk);
	EVP_PKEY_free(newkey);
	jws_free(inner);
	return rc;
}
