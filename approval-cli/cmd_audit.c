/*
 * iotca audit: verify, show, export the sealed audit log, and hand out the
 * checkpoint public key.  Verification that needs the TPM (record MACs, the
 * NV counter) runs in the signer; --offline checks a copied signer.db here,
 * with the public key alone (auditchain: OpenSSL and SQLite, no key code).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "auditchain.h"
#include "cli.h"

#define PAGE	200

/*
 * TIME for --since: seconds since the epoch, a UTC date or date and time
 * (2026-01-31, 2026-01-31T12:00[:00]), or an age (30m, 12h, 7d); -1 if none.
 */
static long long
parse_since(const char *s)
{
	struct tm tm;
	char *end;
	const char *rest;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == 0 && end != s && v >= 0) {
		if (*end == '\0')
			return v;
		if (end[1] == '\0' && (*end == 's' || *end == 'm' ||
		    *end == 'h' || *end == 'd'))
			return (long long)time(NULL) - v * (*end == 's' ? 1 :
			    *end == 'm' ? 60 : *end == 'h' ? 3600 : 86400);
	}
	memset(&tm, 0, sizeof(tm));
	if ((rest = strptime(s, "%Y-%m-%d", &tm)) == NULL)
		return -1;
	if (*rest == 'T' || *rest == ' ') {
		if ((end = strptime(rest + 1, "%H:%M", &tm)) == NULL)
			return -1;
		rest = end;
		if (*rest == ':' && (rest = strptime(rest + 1, "%S", &tm)) == NULL)
			return -1;
	}
	if (*rest != '\0')
		return -1;
	return (long long)timegm(&tm);
}

static int
verify_online(struct cli *c)
{
	json_t *r = cli_call(c, json_pack("{s:s}", "op", "audit_verify"));
	int ok;

	if (r == NULL)
		return 1;
	ok = json_is_true(json_object_get(r, "verified"));
	if (c->json) {
		json_object_del(r, "ok");
		cli_print_json(r);
	} else if (ok) {
		printf("audit log verified: %lld records, %lld checkpoints, %s "
		    "counter %lld\n",
		    (long long)json_integer_value(json_object_get(r, "records")),
		    (long long)json_integer_value(json_object_get(r,
		    "checkpoints")),
		    json_is_true(json_object_get(r, "in_hardware")) ? "TPM" :
		    "FILE (weaker than a TPM)",
		    (long long)json_integer_value(json_object_get(r, "counter")));
	}
	if (!ok)
		cli_error("audit log FAILED at record %lld: %s",
		    (long long)json_integer_value(json_object_get(r, "first_bad")),
		    json_string_value(json_object_get(r, "reason")));
	json_decref(r);
	return ok ? 0 : 1;
}

static int
verify_offline(struct cli *c)
{
	struct audit_verdict v;
	EVP_PKEY *pub;
	FILE *f;

	if (c->db == NULL) {
		cli_error("usage: iotca audit verify --offline PUBKEY --db FILE");
		return 2;
	}
	if ((f = fopen(c->offline, "re")) == NULL) {
		cli_error("%s: %s", c->offline, strerror(errno));
		return 1;
	}
	pub = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (pub == NULL) {
		cli_error("%s: not a PEM public key (iotca audit pubkey makes one)",
		    c->offline);
		return 1;
	}
	if (audit_verify_file(c->db, pub, &v) == -1) {
		EVP_PKEY_free(pub);
		cli_error("%s", v.reason);
		return 1;
	}
	EVP_PKEY_free(pub);
	if (!v.ok) {
		cli_error("audit log FAILED at record %lld: %s", v.first_bad,
		    v.reason);
		return 1;
	}
	printf("audit log verified offline: %lld records, %lld checkpoints "
	    "(record MACs and the TPM counter need the TPM: not checked; %lld "
	    "records after the newest checkpoint are chained but not yet "
	    "signed)\n", v.records, v.checkpoints, v.unsigned_tail);
	return 0;
}

/* Print one record as a line: seq, time, event, actor, the other fields. */
static void
print_record(const json_t *item)
{
	const json_t *rec = json_object_get(item, "record");
	const json_t *actor = json_object_get(rec, "actor");
	json_t *rest;
	char when[32], who[128], *fields;
	time_t t;
	struct tm tm;

	t = (time_t)json_integer_value(json_object_get(rec, "time"));
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	if (json_is_integer(json_object_get(actor, "uid")))
		snprintf(who, sizeof(who), "%s:%s(%lld)",
		    json_string_value(json_object_get(actor, "role")),
		    json_string_value(json_object_get(actor, "user")),
		    (long long)json_integer_value(json_object_get(actor, "uid")));
	else
		snprintf(who, sizeof(who), "%s", json_is_string(json_object_get(
		    actor, "role")) ? json_string_value(json_object_get(actor,
		    "role")) : "?");
	fields = NULL;
	if ((rest = json_deep_copy(rec)) != NULL && json_is_object(rest)) {
		json_object_del(rest, "event");
		json_object_del(rest, "time");
		json_object_del(rest, "actor");
		fields = json_dumps(rest, JSON_COMPACT | JSON_SORT_KEYS);
	}
	printf("%-7lld %s  %-26s %-24s %s\n",
	    (long long)json_integer_value(json_object_get(item, "seq")), when,
	    json_is_string(json_object_get(rec, "event")) ?
	    json_string_value(json_object_get(rec, "event")) : "(unreadable)",
	    who, fields != NULL ? fields : "");
	free(fields);
	json_decref(rest);
}

/* show and export: page through the records. */
static int
list(struct cli *c, int export)
{
	json_t *req, *r, *recs, *item, *all = NULL;
	long long after = 0, since = 0;
	size_t i;
	char *line;
	int more, header = 0;

	if (c->since != NULL && (since = parse_since(c->since)) < 0) {
		cli_error("--since: not a time: %s (epoch seconds, 2026-01-31, "
		    "2026-01-31T12:00, 30m, 12h, 7d)", c->since);
		return 2;
	}
	if (!export && c->json && (all = json_array()) == NULL) {
		cli_error("out of memory");
		return 1;
	}
	do {
		req = json_pack("{s:s, s:I, s:I, s:i}", "op", "audit_records",
		    "after_seq", (json_int_t)after, "since", (json_int_t)since,
		    "limit", PAGE);
		if ((r = cli_call(c, req)) == NULL) {
			json_decref(all);
			return 1;
		}
		recs = json_object_get(r, "records");
		more = json_is_true(json_object_get(r, "more"));
		json_array_foreach(recs, i, item) {
			after = json_integer_value(json_object_get(item, "seq"));
			if (export) {
				line = json_dumps(item, JSON_COMPACT |
				    JSON_SORT_KEYS | JSON_ENSURE_ASCII);
				if (line == NULL) {
					cli_error("out of memory");
					json_decref(r);
					return 1;
				}
				puts(line);
				free(line);
			} else if (all != NULL)
				json_array_append(all, item);
			else {
				if (!header++)
					printf("%-7s %-19s  %-26s %-24s %s\n", "SEQ",
					    "TIME (UTC)", "EVENT", "ACTOR",
					    "DETAILS");
				print_record(item);
			}
		}
		if (json_array_size(recs) == 0)
			more = 0;
		json_decref(r);
	} while (more);
	if (all != NULL) {
		cli_print_json(all);
		json_decref(all);
	} else if (!export && !header)
		printf("no audit records%s\n", c->since ? " in that time" : "");
	if (fflush(stdout) == EOF) {
		cli_error("cannot write the records: %s", strerror(errno));
		return 1;
	}
	return 0;
}

static int
pubkey(struct cli *c)
{
	json_t *r = cli_call(c, json_pack("{s:s}", "op", "audit_pubkey"));
	const char *pem;
	FILE *f;
	int rc = 0;

	if (r == NULL)
		return 1;
	pem = json_string_value(json_object_get(r, "pem"));
	if (c->out == NULL || strcmp(c->out, "-") == 0)
		fputs(pem, stdout);
	else if ((f = fopen(c->out, "w")) == NULL || fputs(pem, f) == EOF ||
	    fclose(f) == EOF) {
		cli_error("%s: %s", c->out, strerror(errno));
		rc = 1;
	}
	json_decref(r);
	return rc;
}

int
cmd_audit(struct cli *c)
{
	const char *sub = c->nargs == 1 ? c->args[0] : "";

	if (strcmp(sub, "verify") == 0)
		return c->offline != NULL ? verify_offline(c) : verify_online(c);
	if (c->offline != NULL || c->db != NULL) {
		cli_error("--offline and --db go with \"audit verify\"");
		return 2;
	}
	if (strcmp(sub, "show") == 0)
		return list(c, 0);
	if (strcmp(sub, "export") == 0)
		return list(c, 1);
	if (strcmp(sub, "pubkey") == 0)
		return pubkey(c);
	cli_error("usage: iotca audit verify|show|export|pubkey");
	return 2;
}
