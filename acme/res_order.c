/*
 * res_order: newOrder (RFC 8555 7.4, RFC 8738 ip identifiers, RFC 9773
 * "replaces"), the order resource with its status and the operator-approval
 * wait (draft-sweet-iot-acme 3.4.4: the order stays "processing" with
 * Retry-After), and finalize.
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "acmedb.h"
#include "certid.h"
#include "issue.h"
#include "objects.h"
#include "policy.h"
#include "resources.h"

#define TOKEN_BYTES	32

/* One identifier of a new order, checked and canonical. */
struct ident {
	char	type[8];
	char	value[IDENT_LEN];
	char	ancestor[IDENT_LEN];	/* RFC 9444 ancestorDomain, or "" */
};

/* ---- newOrder --------------------------------------------------------------- */

static int
add_subproblem(json_t *subs, const char *type, const char *detail,
    const json_t *ident)
{
	json_t *p = problem_new(type, detail);

	if (p == NULL || json_object_set(p, "identifier", (json_t *)ident) == -1) {
		json_decref(p);
		return -1;
	}
	return json_array_append_new(subs, p);
}

/* 1 if anc is a proper ancestor of name, comparing whole labels. */
static int
under_ancestor(const char *name, const char *anc)
{
	return anc[0] != '\0' && strcmp(name, anc) != 0 &&
	    policy_name_within(name, anc);
}

/* RFC 9444 4: "ancestorDomain" names a proper ancestor of a dns name. */
static int
check_ancestor(const json_t *id, struct ident *out, json_t *subs)
{
	const json_t *j = json_object_get(id, "ancestorDomain");
	const char *anc = json_string_value(j);
	size_t i;

	if (j == NULL)
		return 0;
	if (anc == NULL || strcmp(out->type, "dns") != 0 ||
	    strlen(anc) >= sizeof(out->ancestor))
		return add_subproblem(subs, "malformed", "\"ancestorDomain\" "
		    "must be a string, on a dns identifier", id) == -1 ? -1 : 1;
	for (i = 0; anc[i] != '\0'; i++)
		out->ancestor[i] = (char)tolower((unsigned char)anc[i]);
	out->ancestor[i] = '\0';
	if (!under_ancestor(out->value, out->ancestor))
		return add_subproblem(subs, "malformed", "\"ancestorDomain\" "
		    "is not an ancestor of the name (whole labels)", id) == -1 ?
		    -1 : 1;
	return 0;
}

/* Check one identifier against policy; 0 ok, 1 refused (subproblem added). */
static int
check_ident(struct acmed *a, const json_t *id, struct ident *out, json_t *subs)
{
	const char *type = json_string_value(json_object_get(id, "type"));
	const char *value = json_string_value(json_object_get(id, "value"));
	char reason[256];
	unsigned char ip[16];

	if (type == NULL || value == NULL)
		return add_subproblem(subs, "malformed", "an identifier needs "
		    "string \"type\" and \"value\"", id) == -1 ? -1 : 1;
	if (strcmp(type, "dns") == 0) {
		if (policy_check_dns(&a->policy, value, out->value,
		    sizeof(out->value), reason, sizeof(reason)) != POLICY_OK)
			return add_subproblem(subs, "rejectedIdentifier", reason,
			    id) == -1 ? -1 : 1;
	} else if (strcmp(type, "ip") == 0) {
		int af = strchr(value, ':') != NULL ? AF_INET6 : AF_INET;

		if (policy_check_ip_text(value, reason, sizeof(reason)) != POLICY_OK)
			return add_subproblem(subs, "rejectedIdentifier", reason,
			    id) == -1 ? -1 : 1;
		/* RFC 8738: the canonical text form. */
		if (inet_pton(af, value, ip) != 1 ||
		    inet_ntop(af, ip, out->value, sizeof(out->value)) == NULL)
			return add_subproblem(subs, "malformed", "not an IP "
			    "address", id) == -1 ? -1 : 1;
	} else
		return add_subproblem(subs, "unsupportedIdentifier", "only dns "
		    "and ip identifiers are supported", id) == -1 ? -1 : 1;
	snprintf(out->type, sizeof(out->type), "%s", type);
	return check_ancestor(id, out, subs);
}

/* Answer refused identifiers: one gets its own problem, several get
 * subproblems (RFC 8555 6.7.1). */
static int
refuse_idents(struct resp *rs, json_t *subs)
{
	json_t *p, *first = json_array_get(subs, 0);

	if (json_array_size(subs) == 1) {
		/* The caller still holds subs: answer with a copy. */
		if ((p = json_deep_copy(first)) == NULL ||
		    json_object_del(p, "identifier") == -1) {
			json_decref(p);
			return -1;
		}
		return resp_problem_json(rs, 400, p);
	}
	if ((p = problem_new("rejectedIdentifier", "some identifiers are "
	    "refused: see subproblems")) == NULL ||
	    json_object_set(p, "subproblems", subs) == -1) {
		json_decref(p);
		return -1;
	}
	return resp_problem_json(rs, 400, p);
}

static int
same_ident(const struct ident *x, const struct ident *y)
{
	return strcmp(x->type, y->type) == 0 && strcmp(x->value, y->value) == 0;
}

/* Device certificates name one device: every DNS name has its label. */
static int
one_device(const struct ident *ids, size_t n)
{
	const char *first = NULL;
	size_t i, len = 0;

	for (i = 0; i < n; i++) {
		if (strcmp(ids[i].type, "dns") != 0)
			continue;
		if (first == NULL) {
			first = ids[i].value;
			len = strcspn(first, ".");
		} else if (strncmp(ids[i].value, first, len) != 0 ||
		    ids[i].value[len] != '.')
			return 0;
	}
	return 1;
}

/* Parse and check the identifiers; -1 on error, 1 when answered. */
static int
parse_idents(struct req *r, struct resp *rs, struct ident *ids, size_t *n)
{
	json_t *arr = json_object_get(r->payload, "identifiers"), *id, *subs;
	struct ident one;
	size_t i, j;
	int rc;

	*n = 0;
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return resp_problem(rs, 400, "malformed", "newOrder needs a "
		    "non-empty \"identifiers\" array") == 0 ? 1 : -1;
	if (json_array_size(arr) > ORDER_MAX_IDENTS)
		return resp_problem(rs, 400, "rejectedIdentifier", "at most %d "
		    "identifiers per order", ORDER_MAX_IDENTS) == 0 ? 1 : -1;
	if ((subs = json_array()) == NULL)
		return -1;
	json_array_foreach(arr, i, id) {
		memset(&one, 0, sizeof(one));
		if ((rc = check_ident(r->a, id, &one, subs)) == -1) {
			json_decref(subs);
			return -1;
		}
		if (rc == 1)
			continue;
		for (j = 0; j < *n && !same_ident(&ids[j], &one); j++)
			;
		if (j == *n)
			ids[(*n)++] = one;	/* duplicates collapse */
	}
	if (json_array_size(subs) > 0) {
		rc = refuse_idents(rs, subs);
		json_decref(subs);
		return rc == 0 ? 1 : -1;
	}
	json_decref(subs);
	if (!one_device(ids, *n))
		return resp_problem(rs, 400, "rejectedIdentifier", "all names of "
		    "an order must belong to one device (the same leftmost "
		    "label)") == 0 ? 1 : -1;
	return 0;
}

/* RFC 9773 4.2: "replaces" names a certificate of this account that no
 * other live order replaces yet.  0 ok, 1 answered, -1 error. */
static int
check_replaces(struct req *r, struct resp *rs, const char *certid)
{
	struct cert c;
	int rc;

	if ((rc = cert_by_ari_id(r->a->db, certid, &c)) == -1)
		return -1;
	if (rc == ACMEDB_NOTFOUND || strcmp(c.account, r->acct.id) != 0) {
		if (rc == 0)
			cert_clear(&c);
		return resp_problem(rs, 400, "malformed", "\"replaces\" names no "
		    "certificate of this account") == 0 ? 1 : -1;
	}
	cert_clear(&c);
	if ((rc = order_replacing(r->a->db, certid)) == -1)
		return -1;
	if (rc == 1)
		return resp_problem(rs, 409, "alreadyReplaced", "another order "
		    "already replaces this certificate") == 0 ? 1 : -1;
	return 0;
}

static int
new_token(char out[TOKEN_LEN])
{
	unsigned char raw[TOKEN_BYTES];
	char *s;

	if (RAND_bytes(raw, sizeof(raw)) != 1 ||
	    (s = b64url_encode(raw, sizeof(raw))) == NULL)
		return -1;
	snprintf(out, TOKEN_LEN, "%s", s);
	free(s);
	return 0;
}

static int
add_chall(struct chall *ch, size_t *n, const char *authz_id, const char *type)
{
	struct chall *c = &ch[(*n)++];

	memset(c, 0, sizeof(*c));
	snprintf(c->authz_id, sizeof(c->authz_id), "%s", authz_id);
	snprintf(c->type, sizeof(c->type), "%s", type);
	snprintf(c->status, sizeof(c->status), "pending");
	return acmedb_new_id(c->id) == -1 || new_token(c->token) == -1 ? -1 : 0;
}

/*
 * A valid authorization of this account the order can reuse for id, lasting
 * beyond the order: the same name, or (RFC 9444) an ancestor authorized with
 * subdomainAuthAllowed, only the one named by ancestorDomain if given.
 * 0 found, ACMEDB_NOTFOUND, -1 error.
 */
static int
reusable_authz(struct req *r, const struct order *o, const struct ident *id,
    struct authz *az)
{
	const char *p;
	int rc;

	rc = authz_find_valid(r->a->db, o->account, id->type, id->value, 0,
	    o->expires, az);
	if (rc != ACMEDB_NOTFOUND || strcmp(id->type, "dns") != 0)
		return rc;
	if (id->ancestor[0] != '\0')
		return authz_find_valid(r->a->db, o->account, "dns",
		    id->ancestor, 1, o->expires, az);
	/* Each ancestor in turn, by whole labels. */
	for (p = strchr(id->value, '.'); p != NULL; p = strchr(p + 1, '.'))
		if ((rc = authz_find_valid(r->a->db, o->account, "dns", p + 1, 1,
		    o->expires, az)) != ACMEDB_NOTFOUND)
			return rc;
	return ACMEDB_NOTFOUND;
}

/*
 * Build and store the order, one authorization per identifier: a valid one
 * reused, or a new one.  Ready at once if every identifier reuses one.
 */
static int
store_order(struct req *r, struct order *o, const struct ident *ids, size_t n)
{
	struct authz az[ORDER_MAX_IDENTS];
	struct chall ch[ORDER_MAX_IDENTS * AUTHZ_MAX_CHALLS];
	size_t i, nch = 0, reused = 0;
	int rc;

	for (i = 0; i < n; i++) {
		if ((rc = reusable_authz(r, o, &ids[i], &az[i])) == -1)
			return -1;
		if (rc == 0) {
			az[i].linked = 1;
			snprintf(az[i].order_id, sizeof(az[i].order_id), "%s",
			    o->id);
			reused++;
			continue;
		}
		memset(&az[i], 0, sizeof(az[i]));
		if (acmedb_new_id(az[i].id) == -1)
			return -1;
		snprintf(az[i].order_id, sizeof(az[i].order_id), "%s", o->id);
		snprintf(az[i].account, sizeof(az[i].account), "%s", o->account);
		/* Same sizes: struct ident mirrors the authz columns. */
		memcpy(az[i].type, ids[i].type, sizeof(az[i].type));
		memcpy(az[i].value, ids[i].value, sizeof(az[i].value));
		snprintf(az[i].status, sizeof(az[i].status), "pending");
		az[i].expires = o->expires;
		if (add_chall(ch, &nch, az[i].id, "http-01") == -1 ||
		    add_chall(ch, &nch, az[i].id, "tls-alpn-01") == -1)
			return -1;
		/* RFC 8738 7: no dns-01 for IP addresses. */
		if (strcmp(ids[i].type, "dns") == 0 &&
		    add_chall(ch, &nch, az[i].id, "dns-01") == -1)
			return -1;
	}
	if (reused == n)
		snprintf(o->status, sizeof(o->status), "ready");
	return order_insert(r->a->db, o, az, n, ch, nch) == 0 ? 0 : -1;
}

static char *
idents_text(const struct ident *ids, size_t n)
{
	json_t *arr;
	size_t i;
	char *s;

	if ((arr = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (json_array_append_new(arr, json_pack("{s:s, s:s}", "type",
		    ids[i].type, "value", ids[i].value)) == -1) {
			json_decref(arr);
			return NULL;
		}
	s = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return s;
}

static int
answer_order(struct req *r, struct resp *rs, unsigned int status,
    const struct order *o)
{
	if (resp_location(rs, "%s" PATH_ORDER "/%s", r->a->acme.base_url,
	    o->id) == -1)
		return -1;
	if (strcmp(o->status, "processing") == 0)
		rs->retry_after = o->retry_after > 0 ? o->retry_after :
		    ISSUE_RETRY_DEFAULT;
	return resp_json(rs, status, order_json(r->a, o));
}

int
res_new_order(struct req *r, struct resp *rs)
{
	struct ident ids[ORDER_MAX_IDENTS];
	const char *replaces;
	struct order o;
	size_t n;
	int rc;

	if (r->payload == NULL)
		return resp_problem(rs, 400, "malformed", "newOrder needs a "
		    "payload object");
	if (json_object_get(r->payload, "notBefore") != NULL ||
	    json_object_get(r->payload, "notAfter") != NULL)
		return resp_problem(rs, 400, "malformed", "notBefore and notAfter "
		    "are not supported: validity is set by policy");
	if ((rc = parse_idents(r, rs, ids, &n)) != 0)
		return rc == 1 ? 0 : -1;
	replaces = json_string_value(json_object_get(r->payload, "replaces"));
	if (json_object_get(r->payload, "replaces") != NULL && replaces == NULL)
		return resp_problem(rs, 400, "malformed", "\"replaces\" must be "
		    "a string");
	if (replaces != NULL && (rc = check_replaces(r, rs, replaces)) != 0)
		return rc == 1 ? 0 : -1;

	memset(&o, 0, sizeof(o));
	if (acmedb_new_id(o.id) == -1)
		return -1;
	snprintf(o.account, sizeof(o.account), "%s", r->acct.id);
	snprintf(o.status, sizeof(o.status), "pending");
	o.created = time(NULL);
	o.expires = o.created + r->a->acme.order_lifetime;
	if ((o.identifiers = idents_text(ids, n)) == NULL ||
	    (replaces != NULL && (o.replaces = strdup(replaces)) == NULL) ||
	    store_order(r, &o, ids, n) == -1) {
		order_clear(&o);
		return -1;
	}
	rc = answer_order(r, rs, 201, &o);
	order_clear(&o);
	return rc;
}

/* ---- finalize ------------------------------------------------------------------ */

/* The names a CSR asks for; -1 with reason if it asks for other kinds. */
static int
csr_names(X509_REQ *req, struct ident *out, size_t max, size_t *n,
    char *reason, size_t rlen)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *gens;
	int i, rc = 0;

	*n = 0;
	gens = exts != NULL ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL,
	    NULL) : NULL;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (gens == NULL) {
		snprintf(reason, rlen, "the CSR has no subjectAltName");
		return -1;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s;
		struct ident *id = &out[*n];
		size_t len, k;

		if (*n == max) {
			snprintf(reason, rlen, "the CSR names too many identifiers");
			rc = -1;
		} else if (g->type == GEN_DNS) {
			s = g->d.dNSName;
			len = (size_t)ASN1_STRING_length(s);
			if (len == 0 || len >= sizeof(id->value) ||
			    memchr(ASN1_STRING_get0_data(s), '\0', len) != NULL) {
				snprintf(reason, rlen, "the CSR has a bad DNS name");
				rc = -1;
				continue;
			}
			snprintf(id->type, sizeof(id->type), "dns");
			for (k = 0; k < len; k++)
				id->value[k] = (char)tolower(ASN1_STRING_get0_data(s)[k]);
			id->value[len] = '\0';
			(*n)++;
		} else if (g->type == GEN_IPADD) {
			s = g->d.iPAddress;
			len = (size_t)ASN1_STRING_length(s);
			if ((len != 4 && len != 16) || inet_ntop(len == 4 ?
			    AF_INET : AF_INET6, ASN1_STRING_get0_data(s),
			    id->value, sizeof(id->value)) == NULL) {
				snprintf(reason, rlen, "the CSR has a bad IP address");
				rc = -1;
				continue;
			}
			snprintf(id->type, sizeof(id->type), "ip");
			(*n)++;
		} else {
			snprintf(reason, rlen, "the CSR may name only DNS names "
			    "and IP addresses");
			rc = -1;
		}
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

static int
ident_in(const struct ident *x, const struct ident *set, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (same_ident(x, &set[i]))
			return 1;
	return 0;
}

/* Load the order's identifiers back from their JSON text. */
static int
order_idents(const struct order *o, struct ident *ids, size_t *n)
{
	json_t *arr, *id;
	size_t i;

	*n = 0;
	if ((arr = json_loads(o->identifiers, 0, NULL)) == NULL)
		return -1;
	json_array_foreach(arr, i, id) {
		if (*n == ORDER_MAX_IDENTS)
			break;
		snprintf(ids[*n].type, sizeof(ids[*n].type), "%s",
		    json_string_value(json_object_get(id, "type")) ?: "");
		snprintf(ids[*n].value, sizeof(ids[*n].value), "%s",
		    json_string_value(json_object_get(id, "value")) ?: "");
		(*n)++;
	}
	json_decref(arr);
	return 0;
}

/* A CN, if present, is a name of the order or the device ID (draft 3.4.3). */
static int
cn_fits(X509_REQ *req, const struct ident *ids, size_t n)
{
	X509_NAME *subj = X509_REQ_get_subject_name(req);
	unsigned char *utf8 = NULL;
	struct ident cn;
	size_t i, label;
	int idx, len, ok = 0;

	if ((idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1)) < 0)
		return 1;
	if ((len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
	    X509_NAME_get_entry(subj, idx)))) < 0)
		return 0;
	if ((size_t)len < sizeof(cn.value) && memchr(utf8, '\0', (size_t)len) == NULL) {
		for (i = 0; i < (size_t)len; i++)
			cn.value[i] = (char)tolower(utf8[i]);
		cn.value[len] = '\0';
		for (i = 0; i < n && !ok; i++) {
			label = strcspn(ids[i].value, ".");
			ok = strcmp(ids[i].value, cn.value) == 0 ||
			    (strcmp(ids[i].type, "dns") == 0 &&
			    strlen(cn.value) == label &&
			    strncmp(ids[i].value, cn.value, label) == 0);
		}
	}
	OPENSSL_free(utf8);
	return ok;
}

/* The CSR must name exactly the order's identifiers (RFC 8555 7.4). */
static int
check_csr(const struct order *o, X509_REQ *req, char *reason, size_t rlen)
{
	struct ident want[ORDER_MAX_IDENTS], got[POLICY_MAX_NAMES];
	size_t nw, ng, i;

	if (order_idents(o, want, &nw) == -1) {
		snprintf(reason, rlen, "internal error");
		return -1;
	}
	if (csr_names(req, got, POLICY_MAX_NAMES, &ng, reason, rlen) == -1)
		return -1;
	for (i = 0; i < ng; i++)
		if (!ident_in(&got[i], want, nw)) {
			snprintf(reason, rlen, "the CSR names %s, which the order "
			    "does not", got[i].value);
			return -1;
		}
	for (i = 0; i < nw; i++)
		if (!ident_in(&want[i], got, ng)) {
			snprintf(reason, rlen, "the CSR lacks %s of the order",
			    want[i].value);
			return -1;
		}
	if (!cn_fits(req, want, nw)) {
		snprintf(reason, rlen, "the CSR's commonName is neither a name "
		    "of the order nor the device ID");
		return -1;
	}
	return 0;
}

static char *
csr_to_pem(X509_REQ *req)
{
	BIO *b;
	char *data, *s = NULL;
	long len;

	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio_X509_REQ(b, req) == 1 &&
	    (len = BIO_get_mem_data(b, &data)) > 0 &&
	    (s = malloc((size_t)len + 1)) != NULL) {
		memcpy(s, data, (size_t)len);
		s[len] = '\0';
	}
	BIO_free(b);
	return s;
}

/* Decode and check the finalize CSR; 0 with *pem, 1 answered, -1 error. */
static int
finalize_csr(struct req *r, struct resp *rs, const struct order *o, char **pem)
{
	const char *b64 = json_string_value(json_object_get(r->payload, "csr"));
	unsigned char *der;
	char reason[256];
	X509_REQ *req;
	size_t len;

	if (b64 == NULL)
		return resp_problem(rs, 400, "malformed", "finalize needs a "
		    "\"csr\" string") == 0 ? 1 : -1;
	if ((der = b64url_decode(b64, strlen(b64), &len)) == NULL)
		return resp_problem(rs, 400, "badCSR", "\"csr\" is not "
		    "base64url") == 0 ? 1 : -1;
	req = policy_parse_csr(der, len, reason, sizeof(reason));
	free(der);
	if (req == NULL)
		return resp_problem(rs, 400, "badCSR", "%s", reason) == 0 ? 1 : -1;
	if (check_csr(o, req, reason, sizeof(reason)) == -1) {
		X509_REQ_free(req);
		return resp_problem(rs, 400, "badCSR", "%s", reason) == 0 ? 1 : -1;
	}
	*pem = csr_to_pem(req);
	X509_REQ_free(req);
	return *pem != NULL ? 0 : -1;
}

/* The refusal stored on the order, as the finalize answer. */
static int
answer_refusal(struct resp *rs, const struct order *o)
{
	json_t *p = o->error != NULL ? json_loads(o->error, 0, NULL) : NULL;
	const char *type;

	if (p == NULL)
		return -1;
	type = json_string_value(json_object_get(p, "type"));
	return resp_problem_json(rs, problem_status(type), p);
}

static int
finalize(struct req *r, struct resp *rs, struct order *o)
{
	enum issue_outcome out;
	char *pem = NULL;
	int rc;

	if (r->payload == NULL)
		return resp_problem(rs, 400, "malformed", "finalize needs a "
		    "payload object");
	if (order_refresh(r->a, o) == -1)
		return -1;
	if (strcmp(o->status, "ready") != 0)
		return resp_problem(rs, 403, "orderNotReady", "the order is %s, "
		    "not ready", o->status);
	if ((rc = finalize_csr(r, rs, o, &pem)) != 0)
		return rc == 1 ? 0 : -1;
	/* ready -> processing once: a second finalize loses the race. */
	if ((rc = order_transition(r->a->db, o->id, "ready", "processing")) != 0) {
		free(pem);
		if (rc == -1)
			return -1;
		return resp_problem(rs, 403, "orderNotReady", "the order is "
		    "already being finalized");
	}
	snprintf(o->status, sizeof(o->status), "processing");
	free(o->csr);
	o->csr = pem;
	if (order_update(r->a->db, o) != 0 ||
	    issue_ask(r->a, o, r->acct.thumb, &out) == -1)
		return -1;
	if (out == ISSUE_REFUSED)
		return answer_refusal(rs, o);
	return answer_order(r, rs, 200, o);
}

/* ---- the order ------------------------------------------------------------------- */

static int
poll_order(struct req *r, struct resp *rs, struct order *o)
{
	enum issue_outcome out;

	if (r->payload != NULL)
		return resp_problem(rs, 400, "malformed", "an order is read with "
		    "POST-as-GET");
	if (order_refresh(r->a, o) == -1)
		return -1;
	/* Waiting for the operator: ask the signer again, but not on every
	 * poll of an eager client. */
	if (strcmp(o->status, "processing") == 0 && o->csr != NULL &&
	    time(NULL) - o->asked_at >= ISSUE_POLL_MIN_SEC &&
	    issue_ask(r->a, o, r->acct.thumb, &out) == -1)
		return -1;
	return answer_order(r, rs, 200, o);
}

int
res_order(struct req *r, struct resp *rs)
{
	struct order o;
	int rc;

	if ((rc = order_get(r->a->db, r->arg, &o)) == ACMEDB_NOTFOUND)
		return resp_problem(rs, 404, "malformed", "no such order");
	if (rc != 0)
		return -1;
	if (strcmp(o.account, r->acct.id) != 0)
		rc = resp_problem(rs, 403, "unauthorized", "not this account's order");
	else if (strcmp(r->arg2, "finalize") == 0)
		rc = finalize(r, rs, &o);
	else if (r->arg2[0] == '\0')
		rc = poll_order(r, rs, &o);
	else
		rc = resp_problem(rs, 404, "malformed", "no such resource");
	order_clear(&o);
	return rc;
}
