/*
 * audit-verify: how long `iotca audit verify` takes on a large log.
 *
 *   audit_verify [RECORDS]       default 100000
 *
 * Builds a log of RECORDS issuance-sized records (file anchor, checkpoint
 * every 1000 records, WAL and synchronous=FULL as the signer runs it) in a
 * temporary directory, then runs the whole verification the signer runs:
 * chain, hashes, MACs, every checkpoint signature and the counter.  Prints
 * the append and verify rates and the verify time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "anchor.h"
#include "audit.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An issuance record, as big as a real one. */
static json_t *
issuance(long i)
{
	char serial[40];

	snprintf(serial, sizeof(serial), "%032lX", i * 2654435761UL);
	return json_pack("{s:s, s:I, s:{s:s, s:i, s:s, s:i}, s:s, s:s, "
	    "s:[s, s], s:s, s:I, s:I, s:i, s:s}",
	    "event", "certificate_issued", "time", (json_int_t)time(NULL),
	    "actor", "role", "frontend", "uid", 998, "user", "iotca-acme",
	    "pid", 4242, "serial", serial, "device_id", "printer-7",
	    "names", "printer-7.local", "printer-7.home.arpa",
	    "account", "Jq1Xq8k1J3dUuJzD3uZl8W2v4Kp9oFfE6qg8F5wYv2s",
	    "not_before", (json_int_t)time(NULL),
	    "not_after", (json_int_t)time(NULL) + 90 * 86400, "days", 90,
	    "kind", "device");
}

int
main(int argc, char *argv[])
{
	char dir[] = "/tmp/audit-bench.XXXXXX", path[4][128], err[512], cmd[160];
	struct anchor_paths ap;
	struct audit_params prm = { 1000, 15, 0 };
	struct audit_verdict v;
	struct anchor *an;
	struct audit *a;
	sqlite3 *db;
	long i, n = argc > 1 ? atol(argv[1]) : 100000;
	double t0, t_append, t_verify;
	int created, rc = 1;
	json_t *ev;

	if (n < 1 || mkdtemp(dir) == NULL) {
		fprintf(stderr, "usage: audit_verify [RECORDS]\n");
		return 2;
	}
	snprintf(path[0], sizeof(path[0]), "%s/signer.db", dir);
	snprintf(path[1], sizeof(path[1]), "%s/audit-key.pem", dir);
	snprintf(path[2], sizeof(path[2]), "%s/audit-hmac.key", dir);
	snprintf(path[3], sizeof(path[3]), "%s/audit-counter", dir);
	memset(&ap, 0, sizeof(ap));
	ap.mode = ANCHOR_FILE;
	ap.sign_key = path[1];
	ap.hmac_key = path[2];
	ap.counter = path[3];
	if (sqlite3_open(path[0], &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
	    NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	if ((an = anchor_open(NULL, &ap, 1, &created, err, sizeof(err))) == NULL ||
	    (a = audit_open(db, an, &prm, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* Appends in batches of 1000 per transaction: this measures verify,
	 * not fsync. */
	t0 = now();
	for (i = 0; i < n; i++) {
		if (i % 1000 == 0 && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL,
		    NULL, NULL) != SQLITE_OK)
			goto dberr;
		if ((ev = issuance(i)) == NULL ||
		    audit_append(a, ev, NULL, err, sizeof(err)) == -1) {
			fprintf(stderr, "append: %s\n", err);
			goto out;
		}
		json_decref(ev);
		if ((i % 1000 == 999 || i == n - 1)) {
			if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
				goto dberr;
			audit_committed(a);
		}
	}
	if (audit_checkpoint(a, err, sizeof(err)) == -1) {
		fprintf(stderr, "checkpoint: %s\n", err);
		goto out;
	}
	t_append = now() - t0;

	t0 = now();
	if (audit_verify(a, &v) == -1 || !v.ok) {
		fprintf(stderr, "verify: %s\n", v.reason);
		goto out;
	}
	t_verify = now() - t0;
	printf("records            %lld\n", v.records);
	printf("checkpoints        %lld\n", v.checkpoints);
	printf("append             %.0f records/s (batches of 1000)\n",
	    (double)n / t_append);
	printf("verify             %.0f records/s\n", (double)v.records / t_verify);
	printf("verify time        %.2f s for %lld records (goal: well under 10 s "
	    "for 100000)\n", t_verify, v.records);
	rc = 0;
	goto out;
dberr:
	fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
out:
	audit_close(a);
	anchor_close(an);
	sqlite3_close(db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return rc;
}
