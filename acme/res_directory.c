/*
 * res_directory: the directory (RFC 8555 7.1.1), newNonce (7.2) and the
 * root certificate at /root.pem (draft-sweet-iot-acme 3.5: client devices
 * fetch and pin it), none of which need a JWS.
 */
#include <stdlib.h>
#include <string.h>

#include "resources.h"

static int
set_url(json_t *dir, const struct acmed *a, const char *name, const char *path)
{
	char *u = url_of(a, "%s", path);
	int rc;

	if (u == NULL)
		return -1;
	rc = json_object_set_new(dir, name, json_string(u));
	free(u);
	return rc;
}

static json_t *
directory_meta(const struct acmed *a)
{
	json_t *meta;

	if ((meta = json_pack("{s:b, s:b}", "externalAccountRequired", 0,
	    "subdomainAuthAllowed", 1)) == NULL)
		return NULL;
	if ((a->acme.tos_url != NULL && json_object_set_new(meta,
	    "termsOfService", json_string(a->acme.tos_url)) == -1) ||
	    (a->acme.website != NULL && json_object_set_new(meta, "website",
	    json_string(a->acme.website)) == -1)) {
		json_decref(meta);
		return NULL;
	}
	return meta;
}

int
res_directory(struct req *r, struct resp *rs)
{
	const struct acmed *a = r->a;
	json_t *dir, *meta;

	if ((dir = json_object()) == NULL)
		return -1;
	if (set_url(dir, a, "newNonce", PATH_NONCE) == -1 ||
	    set_url(dir, a, "newAccount", PATH_NEWACCT) == -1 ||
	    set_url(dir, a, "newOrder", PATH_NEWORDER) == -1 ||
	    set_url(dir, a, "newAuthz", PATH_NEWAUTHZ) == -1 ||
	    set_url(dir, a, "revokeCert", PATH_REVOKE) == -1 ||
	    set_url(dir, a, "keyChange", PATH_KEYCHANGE) == -1 ||
	    set_url(dir, a, "renewalInfo", PATH_ARI) == -1 ||
	    (meta = directory_meta(a)) == NULL ||
	    json_object_set_new(dir, "meta", meta) == -1) {
		json_decref(dir);
		return -1;
	}
	return resp_json(rs, 200, dir);
}

int
res_root(struct req *r, struct resp *rs)
{
	char *pem = acmed_root_pem(r->a);
	int rc;

	if (pem == NULL)
		return resp_problem(rs, 503, "serverInternal",
		    "the root certificate is not known yet");
	rc = resp_text(rs, 200, "application/pem-certificate-chain", pem);
	free(pem);
	return rc;
}

int
res_nonce(struct req *r, struct resp *rs)
{
	/* The nonce is in the Replay-Nonce header every response has, and
	 * every response is Cache-Control: no-store (RFC 8555 7.2). */
	return resp_text(rs, strcmp(r->method, "HEAD") == 0 ? 200 : 204, NULL, "");
}
