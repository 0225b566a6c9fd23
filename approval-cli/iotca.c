/*
 * iotca: the operator's command line.  Everything but "init" and an offline
 * audit verify goes through admin.sock to iotca-signer, which authorises the
 * caller by uid/gid; "init" runs "iotca-signer init" as the signer's user
 * (before it there is no signer to ask, and only the signer's binary has
 * key-store and TPM code).
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdint.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"
#include "config.h"
#include "crlfetch.h"
#include "proto.h"

void
cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("iotca: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int parse_int_opt(const char *, int, int, int *);

static const char *
admin_socket(struct cli *c, char *buf, size_t buflen)
{
	struct config cfg;
	const char *env = getenv("IOTCA_ADMIN_SOCKET");
	char err[512];

	if (c->socket != NULL)
		return c->socket;
	if (env != NULL && *env != '\0')
		return env;
	if (config_load(c->config, &cfg, err, sizeof(err)) == -1) {
		cli_error("%s (or give --socket or IOTCA_ADMIN_SOCKET)", err);
		return NULL;
	}
	snprintf(buf, buflen, "%s", cfg.admin_socket);
	config_free(&cfg);
	return buf;
}

/* Add the operator's --reason to a request (stolen; NULL on failure). */
static json_t *
with_reason(json_t *req, const char *reason)
{
	if (req != NULL && reason != NULL &&
	    json_object_set_new(req, "reason", json_string(reason)) == -1) {
		json_decref(req);
		return NULL;
	}
	return req;
}

/* Send req (stolen) to the signer; return the ok response or NULL after
 * printing the signer's refusal. */
static json_t *
call(struct cli *c, json_t *req)
{
	char err[512], path[4096];
	const char *sock;
	json_t *resp;

	if (req == NULL) {
		cli_error("out of memory");
		return NULL;
	}
	if ((sock = admin_socket(c, path, sizeof(path))) == NULL) {
		json_decref(req);
		return NULL;
	}
	resp = proto_call(sock, req, err, sizeof(err));
	json_decref(req);
	if (resp == NULL) {
		cli_error("%s", err);
		return NULL;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		const char *code = json_string_value(json_object_get(resp, "error"));
		const char *reason = json_string_value(json_object_get(resp, "reason"));

		cli_error("refused (%s): %s", code ? code : "?",
		    reason ? reason : "no reason given");
		json_decref(resp);
		return NULL;
	}
	return resp;
}

static void
print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s != NULL) {
		puts(s);
		free(s);
	}
}

json_t *
cli_call(struct cli *c, json_t *req)
{
	return call(c, req);
}

void
cli_print_json(const json_t *j)
{
	print_json(j);
}

static const char *
iso_time(json_int_t t, char *buf, size_t buflen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, buflen, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(buf, buflen, "?");
	return buf;
}

static int
write_file(const char *path, const char *data, const char *what)
{
	FILE *f;

	if (path == NULL || strcmp(path, "-") == 0) {
		fputs(data, stdout);
		return 0;
	}
	if ((f = fopen(path, "w")) == NULL) {
		cli_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fputs(data, f) == EOF || fclose(f) == EOF) {
		cli_error("%s: cannot write %s", path, what);
		return -1;
	}
	return 0;
}

static char *
read_file(const char *path, size_t max)
{
	FILE *f;
	char *buf;
	size_t n;

	if ((f = fopen(path, "r")) == NULL) {
		cli_error("%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(max + 1)) == NULL) {
		fclose(f);
		cli_error("out of memory");
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		cli_error("%s: %s", path, n > max ? "file too large" :
		    "read error");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static int
cmd_status(struct cli *c)
{
	json_t *r = call(c, json_pack("{s:s}", "op", "status"));
	json_t *d, *a;
	size_t i;

	if (r == NULL)
		return 1;
	if (c->json) {
		json_object_del(r, "ok");
		print_json(r);
		json_decref(r);
		return 0;
	}
	printf("server name     %s\n", json_string_value(json_object_get(r, "name")));
	printf("domains        ");
	json_array_foreach(json_object_get(r, "domains"), i, d)
		printf(" %s", json_string_value(d));
	printf("\nkey             %s %s%s\n",
	    json_string_value(json_object_get(r, "key_algorithm")),
	    json_string_value(json_object_get(r, "key_store")),
	    json_is_true(json_object_get(r, "key_in_hardware")) ? "" :
	    " (SOFTWARE KEY: development only)");
	printf("root sha256     %s\n", json_string_value(json_object_get(r, "root_sha256")));
	printf("root expires    %s\n", json_string_value(json_object_get(r, "root_not_after")));
	printf("max days        %lld\n", (long long)json_integer_value(json_object_get(r, "max_days")));
	printf("certificates    %lld valid, %lld revoked\n",
	    (long long)json_integer_value(json_object_get(r, "certs_valid")),
	    (long long)json_integer_value(json_object_get(r, "certs_revoked")));
	a = json_object_get(r, "audit");
	if (a != NULL) {
		printf("audit log       %lld records, %s\n",
		    (long long)json_integer_value(json_object_get(a, "records")),
		    json_is_true(json_object_get(a, "in_hardware")) ?
		    "sealed by the TPM" : "anchored in FILES: WEAKER than a TPM, "
		    "development only");
		printf("audit state     %s\n",
		    json_string_value(json_object_get(a, "state")));
	}
	json_decref(r);
	return 0;
}

/* Largest page the signer gives; fewer round trips for long lists. */
#define LIST_PAGE	500

typedef int page_fn(const json_t *rows, void *arg);

/*
 * A listing op, whole: ask for pages (req is stolen), hand each page's rows
 * (the member key) to fn, and follow "more" with the last row's cursor
 * member as "after".  0, or 1 after printing why it stopped.
 */
static int
list_all(struct cli *c, json_t *req, const char *key, const char *cursor,
    page_fn *fn, void *arg)
{
	json_t *page, *r, *rows, *after = NULL;
	int more;

	if (req == NULL || (c->device != NULL && json_object_set_new(req,
	    "device", json_string(c->device)) == -1) ||
	    json_object_set_new(req, "limit", json_integer(LIST_PAGE)) == -1) {
		json_decref(req);
		cli_error("out of memory");
		return 1;
	}
	do {
		if ((page = json_deep_copy(req)) == NULL || (after != NULL &&
		    json_object_set(page, "after", after) == -1)) {
			json_decref(page);
			json_decref(req);
			json_decref(after);
			cli_error("out of memory");
			return 1;
		}
		json_decref(after);
		after = NULL;
		if ((r = call(c, page)) == NULL) {
			json_decref(req);
			return 1;
		}
		rows = json_object_get(r, key);
		more = json_is_true(json_object_get(r, "more"));
		if (!json_is_array(rows) || (more && json_array_size(rows) == 0)) {
			cli_error("the signer's %s page makes no progress", key);
			json_decref(r);
			json_decref(req);
			return 1;
		}
		if (fn(rows, arg) == -1) {
			cli_error("out of memory");
			json_decref(r);
			json_decref(req);
			return 1;
		}
		if (more && (after = json_incref(json_object_get(json_array_get(
		    rows, json_array_size(rows) - 1), cursor))) == NULL) {
			cli_error("the signer's %s page has no \"%s\" to go on "
			    "from", key, cursor);
			json_decref(r);
			json_decref(req);
			return 1;
		}
		json_decref(r);
	} while (more);
	json_decref(after);
	json_decref(req);
	return 0;
}

/* --json: gather every page into one array. */
static int
gather_rows(const json_t *rows, void *arg)
{
	return json_array_extend((json_t *)arg, (json_t *)rows);
}

/* A list printed as one JSON array: the pages gathered. */
static int
list_json(struct cli *c, json_t *req, const char *key, const char *cursor)
{
	json_t *all = json_array();
	int rc;

	if (all == NULL) {
		json_decref(req);
		cli_error("out of memory");
		return 1;
	}
	if ((rc = list_all(c, req, key, cursor, gather_rows, all)) == 0)
		print_json(all);
	json_decref(all);
	return rc;
}

/* Rows of certs; *arg is set once the header is out. */
static int
print_certs(const json_t *certs, void *arg)
{
	const json_t *cert, *n;
	const char *status;
	time_t now = time(NULL);
	int *header = arg;
	char when[32];
	size_t i, j;

	if (!*header)
		printf("%-34s %-20s %-8s %-17s %s\n", "SERIAL", "DEVICE",
		    "STATUS", "EXPIRES (UTC)", "NAMES");
	*header = 1;
	json_array_foreach(certs, i, cert) {
		status = json_string_value(json_object_get(cert, "status"));
		if (status != NULL && strcmp(status, "valid") == 0 &&
		    json_integer_value(json_object_get(cert, "not_after")) <= now)
			status = "expired";
		printf("%-34s %-20s %-8s %-17s",
		    json_string_value(json_object_get(cert, "serial")),
		    json_string_value(json_object_get(cert, "device_id")),
		    status, iso_time(json_integer_value(json_object_get(cert,
		    "not_after")), when, sizeof(when)));
		json_array_foreach(json_object_get(cert, "names"), j, n)
			printf("%s%s", j ? "," : " ", json_string_value(n));
		putchar('\n');
	}
	return 0;
}

/* certs [--device D] [--status S] [--expiring-within T]: every page. */
static int
cmd_certs(struct cli *c)
{
	json_t *req = json_pack("{s:s}", "op", "certs");
	int header = 0;

	if (req != NULL && ((c->status != NULL && json_object_set_new(req,
	    "status", json_string(c->status)) == -1) ||
	    (c->expiring_within > 0 && json_object_set_new(req,
	    "expiring_within", json_integer(c->expiring_within)) == -1))) {
		json_decref(req);
		req = NULL;
	}
	if (c->json)
		return list_json(c, req, "certs", "serial");
	return list_all(c, req, "certs", "serial", print_certs, &header);
}

static int
cmd_issue(struct cli *c)
{
	json_t *req, *r;
	char *csr;
	int rc;

	if (c->csr == NULL || c->out == NULL) {
		cli_error("usage: iotca issue --csr FILE --out FILE [--days N] "
		    "[--subtree D --account X]");
		return 2;
	}
	/* Under an account's approved delegation (an EST RA's own
	 * certificate, which may then carry id-kp-cmcRA). */
	if ((c->subtree == NULL) != (c->account == NULL)) {
		cli_error("issue: --subtree and --account go together");
		return 2;
	}
	if ((csr = read_file(c->csr, 32 * 1024)) == NULL)
		return 1;
	req = json_pack("{s:s, s:s}", "op", "issue", "csr", csr);
	free(csr);
	if (req != NULL && c->days > 0 &&
	    json_object_set_new(req, "days", json_integer(c->days)) == -1) {
		json_decref(req);
		req = NULL;
	}
	if (req != NULL && c->subtree != NULL && (json_object_set_new(req,
	    "delegation", json_string(c->subtree)) == -1 ||
	    json_object_set_new(req, "account", json_string(c->account)) == -1)) {
		json_decref(req);
		req = NULL;
	}
	if ((r = call(c, req)) == NULL)
		return 1;
	rc = write_file(c->out, json_string_value(json_object_get(r, "pem")),
	    "certificate") == 0 ? 0 : 1;
	if (rc == 0 && c->json) {
		json_object_del(r, "ok");
		json_object_del(r, "pem");
		json_object_del(r, "chain");
		print_json(r);
	} else if (rc == 0)
		printf("issued %s to %s, written to %s\n",
		    json_string_value(json_object_get(r, "serial")),
		    json_string_value(json_object_get(r, "device_id")), c->out);
	json_decref(r);
	return rc;
}

static int
cmd_revoke(struct cli *c)
{
	json_t *req, *r;

	if (c->nargs != 1) {
		cli_error("usage: iotca revoke SERIAL [--reason R]");
		return 2;
	}
	req = json_pack("{s:s, s:s}", "op", "revoke", "serial", c->args[0]);
	req = with_reason(req, c->reason);
	if ((r = call(c, req)) == NULL)
		return 1;
	json_decref(r);
	if (c->json) {
		r = json_pack("{s:s, s:s}", "revoked", c->args[0],
		    "reason", c->reason ? c->reason : "unspecified");
		if (r != NULL)
			print_json(r);
		json_decref(r);
	} else
		printf("revoked %s\n", c->args[0]);
	return 0;
}

/* Rows of pending / approvals; *arg counts them, for the header. */
static int
print_approvals(const json_t *rows, void *arg)
{
	const json_t *row, *n;
	const char *subtree;
	size_t *count = arg;
	char when[32];
	size_t i, j;

	if (*count == 0 && json_array_size(rows) > 0)
		printf("%-6s %-20s %-9s %-17s %-12s %s\n", "ID", "DEVICE",
		    "STATUS", "REQUESTED (UTC)", "ACCOUNT", "NAMES");
	*count += json_array_size(rows);
	json_array_foreach(rows, i, row) {
		subtree = json_string_value(json_object_get(row, "subtree"));
		printf("%-6lld %-20s %-9s %-17s %-12.12s",
		    (long long)json_integer_value(json_object_get(row, "id")),
		    subtree != NULL ? "(delegation)" :
		    json_string_value(json_object_get(row, "device_id")),
		    json_string_value(json_object_get(row, "status")),
		    iso_time(json_integer_value(json_object_get(row,
		    "requested_at")), when, sizeof(when)),
		    json_string_value(json_object_get(row, "account")));
		/* A delegation is a grant of a whole subtree: say so in words. */
		if (subtree != NULL)
			printf(" account %s asks for the subtree %s",
			    json_string_value(json_object_get(row, "account")),
			    subtree);
		else
			json_array_foreach(json_object_get(row, "names"), j, n)
				printf("%s%s", j ? "," : " ",
				    json_string_value(n));
		if (json_is_true(json_object_get(row, "approved_elsewhere")))
			printf("  (approved for another account)");
		if (json_is_string(json_object_get(row, "reason")))
			printf("  reason: %s", json_string_value(json_object_get(row,
			    "reason")));
		putchar('\n');
	}
	return 0;
}

/* pending / approvals [--device D]: list requests, every page. */
static int
cmd_approvals(struct cli *c, const char *op)
{
	const char *key = strcmp(op, "pending") == 0 ? "requests" : "approvals";
	json_t *req = json_pack("{s:s}", "op", op);
	size_t count = 0;

	if (c->json)
		return list_json(c, req, key, "id");
	if (list_all(c, req, key, "id", print_approvals, &count) != 0)
		return 1;
	if (count == 0)
		printf("no %s\n", strcmp(op, "pending") == 0 ?
		    "pending requests" : "approvals");
	return 0;
}

/*
 * approve --all / --match GLOB: every pending request (whose device ID
 * matches), each approved by its own op so that each is its own audit
 * record.  Requests that arrive meanwhile are left for the next look.
 */
static int
approve_batch(struct cli *c)
{
	json_t *all = json_array(), *row, *r;
	const char *dev;
	size_t i, done = 0, failed = 0, skipped = 0;

	if (all == NULL) {
		cli_error("out of memory");
		return 1;
	}
	if (list_all(c, json_pack("{s:s}", "op", "pending"), "requests", "id",
	    gather_rows, all) != 0) {
		json_decref(all);
		return 1;
	}
	json_array_foreach(all, i, row) {
		dev = json_string_value(json_object_get(row, "device_id"));
		/* A subtree is never granted in bulk: each delegation is
		 * approved by its ID, after a look at who asks for what. */
		if (json_is_string(json_object_get(row, "subtree"))) {
			if (!c->json)
				printf("request %lld (account %s asks for the "
				    "subtree %s) left pending: approve a "
				    "delegation by its ID\n", (long long)
				    json_integer_value(json_object_get(row,
				    "id")), json_string_value(json_object_get(
				    row, "account")), json_string_value(
				    json_object_get(row, "subtree")));
			skipped++;
			continue;
		}
		if (dev == NULL || (c->match != NULL &&
		    fnmatch(c->match, dev, 0) != 0))
			continue;
		r = call(c, json_pack("{s:s, s:I}", "op", "approve", "id",
		    json_integer_value(json_object_get(row, "id"))));
		if (r == NULL) {
			failed++;
			continue;
		}
		done++;
		if (!c->json)
			printf("request %lld for device %s approved\n",
			    (long long)json_integer_value(json_object_get(row,
			    "id")), dev);
		json_decref(r);
	}
	json_decref(all);
	if (c->json)
		printf("{\"approved\": %zu, \"failed\": %zu}\n", done, failed);
	else if (done == 0 && failed == 0 && skipped == 0)
		printf("no pending requests%s%s\n", c->match != NULL ?
		    " match " : "", c->match != NULL ? c->match : "");
	return failed == 0 ? 0 : 1;
}

/* approve ID / deny ID [--reason R]; approve --all | --match GLOB */
static int
cmd_decide(struct cli *c, const char *op)
{
	json_t *req, *r, *row;
	int id;

	if (strcmp(op, "approve") == 0 && (c->all || c->match != NULL)) {
		if (c->nargs != 0) {
			cli_error("usage: iotca approve ID | --all | --match GLOB");
			return 2;
		}
		return approve_batch(c);
	}
	if (c->all || c->match != NULL) {
		cli_error("--all and --match go with approve only");
		return 2;
	}
	if (c->nargs != 1 || parse_int_opt(c->args[0], 1, INT32_MAX, &id) == -1) {
		cli_error("usage: iotca %s ID%s", op, strcmp(op, "deny") == 0 ?
		    " [--reason R]" : "");
		return 2;
	}
	req = json_pack("{s:s, s:i}", "op", op, "id", id);
	req = with_reason(req, c->reason);
	if ((r = call(c, req)) == NULL)
		return 1;
	row = json_object_get(r, "request");
	if (c->json)
		print_json(row);
	else if (json_is_string(json_object_get(row, "subtree")))
		printf("request %d of account %s for the subtree %s %s\n", id,
		    json_string_value(json_object_get(row, "account")),
		    json_string_value(json_object_get(row, "subtree")),
		    strcmp(op, "approve") == 0 ? "approved" : "denied");
	else
		printf("request %d for device %s %s\n", id,
		    json_string_value(json_object_get(row, "device_id")),
		    strcmp(op, "approve") == 0 ? "approved" : "denied");
	json_decref(r);
	return 0;
}

/* revoke-approval DEVICE [--revoke-certs];
 * revoke-approval --subtree D [--account X] [--revoke-certs] */
static int
cmd_revoke_approval(struct cli *c)
{
	json_t *r;

	if ((c->subtree == NULL && c->nargs != 1) ||
	    (c->subtree != NULL && c->nargs != 0) ||
	    (c->account != NULL && c->subtree == NULL)) {
		cli_error("usage: iotca revoke-approval DEVICE [--revoke-certs]\n"
		    "       iotca revoke-approval --subtree D [--account X] "
		    "[--revoke-certs]");
		return 2;
	}
	if (c->subtree != NULL)
		r = call(c, json_pack("{s:s, s:s, s:s*, s:b}", "op",
		    "revoke_approval", "subtree", c->subtree, "account",
		    c->account, "revoke_certs", c->revoke_certs));
	else
		r = call(c, json_pack("{s:s, s:s, s:b}", "op", "revoke_approval",
		    "device_id", c->args[0], "revoke_certs", c->revoke_certs));
	if (r == NULL)
		return 1;
	if (c->json) {
		json_object_del(r, "ok");
		print_json(r);
	} else if (c->subtree != NULL)
		printf("delegation of the subtree %s%s%s revoked (%lld requests, "
		    "%lld certificates revoked)\n", c->subtree,
		    c->account != NULL ? " to account " : "",
		    c->account != NULL ? c->account : "",
		    (long long)json_integer_value(json_object_get(r, "approvals")),
		    (long long)json_integer_value(json_object_get(r, "certs")));
	else
		printf("approval of %s revoked (%lld requests, %lld certificates "
		    "revoked)\n", c->args[0],
		    (long long)json_integer_value(json_object_get(r, "approvals")),
		    (long long)json_integer_value(json_object_get(r, "certs")));
	json_decref(r);
	return 0;
}

/* Print a PEM the signer hands out: the CRL or the root. */
static int
cmd_pem(struct cli *c, const char *op)
{
	json_t *r = call(c, json_pack("{s:s}", "op", op));
	int rc;

	if (r == NULL)
		return 1;
	rc = write_file(c->out, json_string_value(json_object_get(r, "pem")),
	    op) == 0 ? 0 : 1;
	json_decref(r);
	return rc;
}

/* The CRL, read in pages of DER (it outgrows one record past ~1,000
 * revocations), written as PEM. */
static int
cmd_crl(struct cli *c)
{
	struct crl_copy copy;
	char err[512], path[4096], *data;
	const unsigned char *p;
	const char *sock;
	X509_CRL *crl = NULL;
	BIO *b = NULL;
	long len;
	int rc = 1;

	memset(&copy, 0, sizeof(copy));
	if ((sock = admin_socket(c, path, sizeof(path))) == NULL)
		return 1;
	if (crl_fetch(sock, 0, -1, &copy, err, sizeof(err)) != 0) {
		cli_error("%s", err);
		return 1;
	}
	p = copy.der;
	if ((crl = d2i_X509_CRL(NULL, &p, (long)copy.len)) == NULL ||
	    (b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_CRL(b, crl) != 1 ||
	    (len = BIO_get_mem_data(b, &data)) <= 0 ||
	    (data = strndup(data, (size_t)len)) == NULL)
		cli_error("the signer's CRL cannot be decoded");
	else {
		rc = write_file(c->out, data, "crl") == 0 ? 0 : 1;
		free(data);
	}
	BIO_free(b);
	X509_CRL_free(crl);
	crl_copy_clear(&copy);
	return rc;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotca [--config FILE] [--socket PATH] [--json] COMMAND ...\n"
	    "  init [--years N] [--algorithm ec-p384|ec-p521|rsa-3072|rsa-4096]\n"
	    "                         create the root key (in the TPM) and certificate\n"
	    "                         (runs iotca-signer init)\n"
	    "  status                 the CA, its key and counts\n"
	    "  issue --csr FILE --out FILE [--days N] [--subtree D --account X]\n"
	    "                         issue a device certificate (same policy as ACME)\n"
	    "  certs [--device D] [--status valid|revoked|expired]\n"
	    "        [--expiring-within T]  list issued certificates, newest first\n"
	    "                         (T: days, or 12h, 30d, 2w; all pages are followed)\n"
	    "  revoke SERIAL [--reason R]\n"
	    "                         revoke a certificate (RFC 5280 reason name)\n"
	    "  pending [--device D]   requests waiting for an operator (devices, and\n"
	    "                         accounts asking for a subtree: delegations)\n"
	    "  approve ID             approve a device's request (renewals then need none)\n"
	    "                         or a delegation (its subtree then needs none)\n"
	    "  approve --all | --match GLOB\n"
	    "                         approve every pending device request (whose\n"
	    "                         device ID matches GLOB, e.g. 'cam-*'), each its\n"
	    "                         own record; delegations are approved by ID only\n"
	    "  deny ID [--reason R]   deny it; the client is told the reason\n"
	    "  approvals [--device D] every request and decision (delegations too)\n"
	    "  revoke-approval DEVICE [--revoke-certs]\n"
	    "                         withdraw a device's approval (and its certificates)\n"
	    "  revoke-approval --subtree D [--account X] [--revoke-certs]\n"
	    "                         end a delegation (of every account, or of X):\n"
	    "                         nothing more is issued under D (and what was,\n"
	    "                         with --revoke-certs, is revoked)\n"
	    "  crl [--out FILE]       the current CRL (PEM)\n"
	    "  ca [--out FILE]        the root certificate (PEM)\n"
	    "  audit verify [--offline PUBKEY --db FILE]\n"
	    "                         check the sealed audit log (or a copy of signer.db)\n"
	    "  audit show [--since TIME]  the audit records (TIME: epoch, 2026-01-31,\n"
	    "                         2026-01-31T12:00, or 30m, 12h, 7d ago)\n"
	    "  audit export           every record as a JSON line, for a SIEM\n"
	    "  audit pubkey [--out FILE]  the checkpoint public key, for --offline\n"
	    "  discovery [--update]   the DNS-SD records and DHCP option announcing the\n"
	    "                         ACME server; --update sends them (RFC 2136, TSIG)\n");
}

/* Long options without a short one. */
enum { OPT_DEVICE = 256, OPT_STATUS, OPT_EXPIRING, OPT_ALL, OPT_MATCH,
    OPT_SUBTREE, OPT_ACCOUNT };

/* --expiring-within: days, or a number with a unit (s, m, h, d, w), up to
 * ten years, in seconds. */
static int
parse_within(const char *s, long long *secs)
{
	static const struct { char unit; long long secs; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
		{ 'w', 7 * 86400 },
	};
	long long mult = 86400;
	char *end;
	long v;
	size_t i;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || v < 1 || v > 3660 * 86400L)
		return -1;
	if (*end != '\0') {
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (end[0] == units[i].unit && end[1] == '\0')
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -1;
		mult = units[i].secs;
	}
	if (v > 3660 * 86400L / mult)
		return -1;
	*secs = (long long)v * mult;
	return 0;
}

static int
parse_int_opt(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "config",	required_argument, NULL, 'c' },
		{ "socket",	required_argument, NULL, 's' },
		{ "json",	no_argument,	   NULL, 'j' },
		{ "csr",	required_argument, NULL, 'r' },
		{ "out",	required_argument, NULL, 'o' },
		{ "days",	required_argument, NULL, 'd' },
		{ "reason",	required_argument, NULL, 'R' },
		{ "years",	required_argument, NULL, 'y' },
		{ "algorithm",	required_argument, NULL, 'a' },
		{ "revoke-certs", no_argument,	   NULL, 'C' },
		{ "update",	no_argument,	   NULL, 'U' },
		{ "offline",	required_argument, NULL, 'O' },
		{ "db",		required_argument, NULL, 'D' },
		{ "since",	required_argument, NULL, 'S' },
		{ "device",	required_argument, NULL, OPT_DEVICE },
		{ "status",	required_argument, NULL, OPT_STATUS },
		{ "expiring-within", required_argument, NULL, OPT_EXPIRING },
		{ "all",	no_argument,	   NULL, OPT_ALL },
		{ "match",	required_argument, NULL, OPT_MATCH },
		{ "subtree",	required_argument, NULL, OPT_SUBTREE },
		{ "account",	required_argument, NULL, OPT_ACCOUNT },
		{ "help",	no_argument,	   NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cli c;
	const char *cmd;
	int ch;

	memset(&c, 0, sizeof(c));
	c.config = config_default_path();
	while ((ch = getopt_long(argc, argv, "c:s:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': c.config = optarg; break;
		case 's': c.socket = optarg; break;
		case 'j': c.json = 1; break;
		case 'r': c.csr = optarg; break;
		case 'o': c.out = optarg; break;
		case 'R': c.reason = optarg; break;
		case 'a': c.algorithm = optarg; break;
		case 'C': c.revoke_certs = 1; break;
		case 'U': c.update = 1; break;
		case 'O': c.offline = optarg; break;
		case 'D': c.db = optarg; break;
		case 'S': c.since = optarg; break;
		case OPT_DEVICE: c.device = optarg; break;
		case OPT_ALL: c.all = 1; break;
		case OPT_MATCH: c.match = optarg; break;
		case OPT_SUBTREE: c.subtree = optarg; break;
		case OPT_ACCOUNT: c.account = optarg; break;
		case OPT_STATUS:
			if (strcmp(optarg, "valid") != 0 &&
			    strcmp(optarg, "revoked") != 0 &&
			    strcmp(optarg, "expired") != 0) {
				cli_error("--status: valid, revoked or expired, "
				    "not %s", optarg);
				return 2;
			}
			c.status = optarg;
			break;
		case OPT_EXPIRING:
			if (parse_within(optarg, &c.expiring_within) == -1) {
				cli_error("--expiring-within: not a time (days, or "
				    "a number with s, m, h, d or w): %s", optarg);
				return 2;
			}
			break;
		case 'd':
			if (parse_int_opt(optarg, 1, 3650, &c.days) == -1) {
				cli_error("--days: not a number of days: %s", optarg);
				return 2;
			}
			break;
		case 'y':
			if (parse_int_opt(optarg, 0, 100, &c.years) == -1) {
				cli_error("--years: not a number of years: %s", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	c.args = argv + optind + 1;
	c.nargs = argc - optind - 1;
	if (strcmp(cmd, "init") == 0)
		return cmd_init(&c);
	if (strcmp(cmd, "audit") == 0)
		return cmd_audit(&c);
	if (strcmp(cmd, "discovery") == 0)
		return cmd_discovery(&c);
	if (c.nargs != 0 && strcmp(cmd, "revoke") != 0 &&
	    strcmp(cmd, "approve") != 0 && strcmp(cmd, "deny") != 0 &&
	    strcmp(cmd, "revoke-approval") != 0) {
		cli_error("%s takes no argument \"%s\"", cmd, c.args[0]);
		return 2;
	}
	if (strcmp(cmd, "status") == 0)
		return cmd_status(&c);
	if (strcmp(cmd, "issue") == 0)
		return cmd_issue(&c);
	if (strcmp(cmd, "certs") == 0)
		return cmd_certs(&c);
	if (strcmp(cmd, "revoke") == 0)
		return cmd_revoke(&c);
	if (strcmp(cmd, "pending") == 0 || strcmp(cmd, "approvals") == 0)
		return cmd_approvals(&c, cmd);
	if (strcmp(cmd, "approve") == 0 || strcmp(cmd, "deny") == 0)
		return cmd_decide(&c, cmd);
	if (strcmp(cmd, "revoke-approval") == 0)
		return cmd_revoke_approval(&c);
	if (strcmp(cmd, "crl") == 0)
		return cmd_crl(&c);
	if (strcmp(cmd, "ca") == 0)
		return cmd_pem(&c, "ca");
	cli_error("unknown command \"%s\" (iotca --help lists them)", cmd);
	return 2;
}
