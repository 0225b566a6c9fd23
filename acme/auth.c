/*
 * auth: authenticate an ACME POST (see auth.h).  The order of checks follows
 * RFC 8555 6.2-6.5: shape, url, nonce, key, signature, account status; the
 * nonce is spent even if a later check fails, as it was seen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "keycache.h"
#include "nonce.h"

int
auth_problem(struct resp *rs, const struct jws_error *e)
{
	json_t *p;
	unsigned int status = 400;

	if (strcmp(e->type, "unauthorized") == 0)
		status = 403;
	if ((p = problem_new(e->type, e->detail)) == NULL)
		return -1;
	if (strcmp(e->type, "badSignatureAlgorithm") == 0 &&
	    json_object_set_new(p, "algorithms", jws_supported_algs()) == -1) {
		json_decref(p);
		return -1;
	}
	return resp_problem_json(rs, status, p);
}

/* The request's own URL, as the client must have put it in "url". */
static int
url_matches(const struct req *r)
{
	const char *base = r->a->acme.base_url;
	size_t n = strlen(base);

	return strncmp(r->jws->url, base, n) == 0 &&
	    strcmp(r->jws->url + n, r->path) == 0;
}

/* The account id in a kid URL, or NULL if kid is not one of ours. */
static const char *
kid_account(const struct req *r)
{
	char prefix[512];
	size_t n;

	snprintf(prefix, sizeof(prefix), "%s" PATH_ACCT "/", r->a->acme.base_url);
	n = strlen(prefix);
	if (strncmp(r->jws->kid, prefix, n) != 0 || r->jws->kid[n] == '\0' ||
	    strchr(r->jws->kid + n, '/') != NULL ||
	    strlen(r->jws->kid + n) >= ID_LEN)
		return NULL;
	return r->jws->kid + n;
}

static int
key_from_kid(struct req *r, struct resp *rs)
{
	struct jws_error e;
	const char *id;
	json_t *jwk;
	int rc;

	if ((id = kid_account(r)) == NULL) {
		resp_problem(rs, 400, "accountDoesNotExist",
		    "kid is not an account URL of this server");
		return -1;
	}
	if ((rc = acct_get(r->a->db, id, &r->acct)) == ACMEDB_NOTFOUND) {
		resp_problem(rs, 400, "accountDoesNotExist", "no such account");
		return -1;
	}
	if (rc != 0)
		return -1;
	r->have_acct = 1;
	if ((r->key = keycache_get(r->a->keys, r->acct.thumb)) == NULL) {
		if ((jwk = json_loads(r->acct.jwk, 0, NULL)) == NULL)
			return -1;
		r->key = jws_jwk_to_pkey(jwk, &e);
		json_decref(jwk);
		if (r->key == NULL)
			return -1;
		keycache_put(r->a->keys, r->acct.thumb, r->key);
	}
	snprintf(r->thumb, sizeof(r->thumb), "%s", r->acct.thumb);
	return 0;
}

static int
key_from_jwk(struct req *r, struct resp *rs)
{
	struct jws_error e;
	int rc;

	if ((r->key = jws_jwk_to_pkey(r->jws->jwk, &e)) == NULL ||
	    jws_thumbprint(r->jws->jwk, r->thumb, sizeof(r->thumb), &e) == -1) {
		auth_problem(rs, &e);
		return -1;
	}
	/* newAccount answers an existing key with its account. */
	rc = acct_by_thumb(r->a->db, r->thumb, &r->acct);
	if (rc == 0)
		r->have_acct = 1;
	return rc == 0 || rc == ACMEDB_NOTFOUND ? 0 : -1;
}

static int
parse_payload(struct req *r, struct resp *rs)
{
	json_error_t jerr;

	if (r->jws->payload_len == 0)
		return 0;	/* POST-as-GET */
	r->payload = json_loadb((const char *)r->jws->payload,
	    r->jws->payload_len, JSON_REJECT_DUPLICATES, &jerr);
	if (r->payload == NULL || !json_is_object(r->payload)) {
		resp_problem(rs, 400, "malformed", "payload is not a JSON object");
		return -1;
	}
	return 0;
}

int
auth_request(struct req *r, enum auth_kind kind, struct resp *rs)
{
	struct jws_error e;

	if ((r->jws = jws_parse(r->body != NULL ? r->body : "", r->len, &e)) == NULL) {
		auth_problem(rs, &e);
		return -1;
	}
	if (!url_matches(r)) {
		resp_problem(rs, 401, "unauthorized", "the JWS url \"%.200s\" is "
		    "not this request's URL", r->jws->url);
		return -1;
	}
	if (!nonce_use(r->a->nonces, r->jws->nonce)) {
		resp_problem(rs, 400, "badNonce", "unknown, expired or used nonce");
		return -1;
	}
	if (r->jws->kid != NULL && kind == AUTH_JWK) {
		resp_problem(rs, 400, "malformed", "this resource wants \"jwk\", "
		    "not \"kid\"");
		return -1;
	}
	if (r->jws->jwk != NULL && kind == AUTH_KID) {
		resp_problem(rs, 400, "malformed", "this resource wants the "
		    "account URL in \"kid\", not \"jwk\"");
		return -1;
	}
	if ((r->jws->kid != NULL ? key_from_kid(r, rs) : key_from_jwk(r, rs)) == -1)
		return -1;
	if (jws_verify(r->jws, r->key, &e) == -1) {
		auth_problem(rs, &e);
		return -1;
	}
	if (r->jws->kid != NULL && strcmp(r->acct.status, "valid") != 0) {
		resp_problem(rs, 401, "unauthorized", "account is %s",
		    r->acct.status);
		return -1;
	}
	return parse_payload(r, rs);
}
