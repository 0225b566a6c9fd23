/*
 * aging_fill: the driver behind tests/bench/aging.  It fills a running
 * appliance through the real issuance path and measures what a year of
 * data costs it.
 *
 *   aging_fill fill SIGNER_SOCK ADMIN_SOCK FROM TO DEVICES
 *	Issues certificates number FROM to TO - 1 over signer.sock, as the
 *	front end does (an account per device, a fresh order token and a
 *	fresh P-384 key per certificate).  Certificate n goes to device
 *	"dev-<n mod DEVICES>"; a device's first request waits for the
 *	operator, who approves it over admin.sock, and its renewals are
 *	issued at once.  Every tenth certificate (n mod 10 == 9) is revoked
 *	over admin.sock right after.  Two threads, so that one makes its next
 *	key and CSR while the signer works on the other's request.
 *
 *   aging_fill measure SIGNER_SOCK ADMIN_SOCK SIGNER_PID SIGNER_DB BATCH
 *	BATCH renewals of devices dev-0 to dev-<BATCH - 1> (approved
 *	already), one at a time with the CSRs made before the clock: the
 *	signer's CPU (utime + stime from /proc/PID/stat) per certificate and
 *	the median latency of one; then the approval lookup of a renewal (the
 *	query signerdb_approvals_for() runs, on a read-only connection to
 *	SIGNER_DB); then one more revocation and the CRL signed for it.
 *
 * Prints "key: value" lines.  Fails only on errors.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <jansson.h>
#include <sqlite3.h>

#include "bench_util.h"
#include "proto.h"

#define THREADS		2
#define REVOKE_EVERY	10
#define LOOKUPS		500

static void
die(const char *what)
{
	fprintf(stderr, "aging_fill: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* A CSR for device dev with a new P-384 key (PEM, the caller frees). */
static char *
make_csr(long dev)
{
	char name[32];
	EVP_PKEY *key = EVP_EC_gen("P-384");
	char *pem;

	snprintf(name, sizeof(name), "dev-%ld", dev);
	if (key == NULL || (pem = bench_csr_pem(name, key)) == NULL)
		die("cannot make a CSR");
	EVP_PKEY_free(key);
	return pem;
}

/* One request and its answer on an open connection. */
static json_t *
call(int fd, json_t *req)
{
	char reason[256];
	json_t *resp;

	if (req == NULL || proto_send(fd, req) == -1)
		die("send");
	json_decref(req);
	if (proto_recv(fd, 1, &resp, reason, sizeof(reason)) != PROTO_OK)
		die("receive");
	return resp;
}

static int
ok(const json_t *resp)
{
	return json_is_true(json_object_get(resp, "ok"));
}

static const char *
errcode(const json_t *resp)
{
	const char *e = json_string_value(json_object_get(resp, "error"));

	return e != NULL ? e : "?";
}

/* One request on a connection of its own to admin.sock (an operator's
 * connection idle for 30 s is closed by the signer). */
static json_t *
admin(const char *asock, json_t *req)
{
	char err[256];
	json_t *resp;

	if (req == NULL)
		die("out of memory");
	if ((resp = proto_call(asock, req, err, sizeof(err))) == NULL)
		die(err);
	json_decref(req);
	return resp;
}

/*
 * Issue the CSR to device dev as the front end would, approving the
 * device's request over admin.sock when it waits for one.  The serial
 * goes to serial.
 */
static void
issue(int sfd, const char *asock, long dev, const char *csr, char *serial,
    size_t len)
{
	unsigned char raw[16];
	char acct[32], order[40];
	json_t *resp;
	int i, tries;

	snprintf(acct, sizeof(acct), "acct-%ld", dev);
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		die("RAND_bytes");
	for (i = 0; i < 16; i++)
		snprintf(order + 2 * i, 3, "%02x", raw[i]);
	for (tries = 0; tries < 3; tries++) {
		resp = call(sfd, json_pack("{s:s, s:s, s:i, s:s, s:s}", "op",
		    "issue", "csr", csr, "days", 30, "account", acct, "order",
		    order));
		if (ok(resp)) {
			snprintf(serial, len, "%s", json_string_value(
			    json_object_get(resp, "serial")));
			json_decref(resp);
			return;
		}
		if (strcmp(errcode(resp), "approvalPending") != 0) {
			fprintf(stderr, "aging_fill: dev-%ld: %s: %s\n", dev,
			    errcode(resp), json_string_value(json_object_get(resp,
			    "reason")));
			die("issue refused");
		}
		json_int_t id = json_integer_value(json_object_get(resp,
		    "request"));
		json_decref(resp);
		resp = admin(asock, json_pack("{s:s, s:I}", "op", "approve",
		    "id", id));
		if (!ok(resp) && strcmp(errcode(resp), "badRequest") != 0)
			die("approve refused");
		json_decref(resp);
	}
	die("still pending after approval");
}

static void
revoke_cert(const char *asock, const char *serial)
{
	json_t *resp = admin(asock, json_pack("{s:s, s:s, s:s}", "op",
	    "revoke", "serial", serial, "reason", "superseded"));

	if (!ok(resp))
		die("revoke refused");
	json_decref(resp);
}

struct filler {
	pthread_t	 th;
	const char	*ssock, *asock;
	long		 from, to, devices;
	int		 t;
	long		 issued, revoked;
};

static void *
fill_run(void *arg)
{
	struct filler *f = arg;
	char err[256], serial[80];
	char *csr;
	long n;
	int sfd;

	if ((sfd = proto_connect(f->ssock, err, sizeof(err))) == -1)
		die(err);
	for (n = f->from; n < f->to; n++) {
		if (n % THREADS != f->t)
			continue;
		csr = make_csr(n % f->devices);
		issue(sfd, f->asock, n % f->devices, csr, serial,
		    sizeof(serial));
		free(csr);
		f->issued++;
		if (n % REVOKE_EVERY == REVOKE_EVERY - 1) {
			revoke_cert(f->asock, serial);
			f->revoked++;
		}
	}
	close(sfd);
	return NULL;
}

static int
cmd_fill(char **argv)
{
	struct filler f[THREADS];
	long from = atol(argv[2]), to = atol(argv[3]), devices = atol(argv[4]);
	long issued = 0, revoked = 0;
	double t0, t;
	int i;

	if (from < 0 || to < from || devices < THREADS || devices % THREADS)
		die("fill: bad range or device count (even, >= 2)");
	t0 = bench_now();
	for (i = 0; i < THREADS; i++) {
		memset(&f[i], 0, sizeof(f[i]));
		f[i].ssock = argv[0];
		f[i].asock = argv[1];
		f[i].from = from;
		f[i].to = to;
		f[i].devices = devices;
		f[i].t = i;
		if (pthread_create(&f[i].th, NULL, fill_run, &f[i]) != 0)
			die("pthread_create");
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(f[i].th, NULL);
		issued += f[i].issued;
		revoked += f[i].revoked;
	}
	t = bench_now() - t0;
	printf("issued: %ld\nrevoked: %ld\nseconds: %.1f\nrate: %.1f\n", issued,
	    revoked, t, t > 0 ? issued / t : 0);
	return 0;
}

/* utime + stime of a process in seconds. */
static double
proc_cpu(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fp = fopen(path, "r")) == NULL)
		die("cannot read the signer's /proc/PID/stat");
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* Fields 14 and 15, counted after the command name's ")". */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	    &ut, &st) != 2)
		die("cannot parse /proc/PID/stat");
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The approval lookup of a renewal, as signerdb_approvals_for() runs it. */
static const char approval_sql[] =
    "SELECT a.id, a.device_id, a.account, a.names, a.status, "
    "a.requested_at, a.requested_by, a.decided_at, a.decided_by, a.reason, "
    "EXISTS (SELECT 1 FROM approvals o WHERE o.device_id = a.device_id "
    "AND o.subtree IS a.subtree AND o.account != a.account "
    "AND o.status = 'approved'), a.subtree FROM approvals a WHERE "
    "a.device_id = ? AND a.account = ? AND a.subtree IS NULL "
    "ORDER BY a.id DESC";

/* Mean time of one approval lookup in ms, over LOOKUPS devices. */
static double
approval_lookup_ms(const char *dbpath, long devices)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char dev[32], acct[32];
	double t0, t;
	int i, rc;

	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK || sqlite3_busy_timeout(db, 5000) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, approval_sql, -1, &st, NULL) != SQLITE_OK)
		die(sqlite3_errmsg(db));
	t0 = bench_now();
	for (i = 0; i < LOOKUPS; i++) {
		long d = (long)(((unsigned long)i * 7919) % (unsigned long)devices);

		snprintf(dev, sizeof(dev), "dev-%ld", d);
		snprintf(acct, sizeof(acct), "acct-%ld", d);
		if (sqlite3_bind_text(st, 1, dev, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_text(st, 2, acct, -1, SQLITE_STATIC) != SQLITE_OK)
			die(sqlite3_errmsg(db));
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE)
			die(sqlite3_errmsg(db));
		sqlite3_reset(st);
	}
	t = bench_now() - t0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return t * 1000 / LOOKUPS;
}

/* The CRL's entries, read page by page (the signer signs a stale one
 * before it answers the first page); *ms the time from t0 to the first
 * page. */
static long
crl_entries(int afd, double t0, double *ms)
{
	unsigned char *der = NULL, *nd;
	const unsigned char *p;
	size_t have = 0, total = 0, blen;
	X509_CRL *crl;
	json_t *resp;
	const char *b64;
	long n;

	do {
		resp = call(afd, json_pack("{s:s, s:I}", "op", "crl", "offset",
		    (json_int_t)have));
		if (have == 0)
			*ms = (bench_now() - t0) * 1000;
		if (!ok(resp) || (b64 = json_string_value(json_object_get(resp,
		    "der"))) == NULL)
			die("crl refused");
		total = (size_t)json_integer_value(json_object_get(resp, "total"));
		blen = strlen(b64);
		if ((nd = realloc(der, have + blen)) == NULL)
			die("out of memory");
		der = nd;
		n = EVP_DecodeBlock(der + have, (const unsigned char *)b64,
		    (int)blen);
		if (n < 0)
			die("crl: bad base64");
		/* EVP_DecodeBlock counts the padding's zero bytes. */
		while (blen > 0 && b64[blen - 1] == '=') {
			n--;
			blen--;
		}
		have += (size_t)n;
		json_decref(resp);
	} while (have < total);
	p = der;
	if ((crl = d2i_X509_CRL(NULL, &p, (long)have)) == NULL)
		die("crl: does not parse");
	n = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl));
	X509_CRL_free(crl);
	free(der);
	return n < 0 ? 0 : n;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median time in ms of a request on admin.sock (5 runs). */
static double
admin_ms(int afd, const json_t *req)
{
	double v[5], t0;
	json_t *resp;
	int i;

	for (i = 0; i < 5; i++) {
		t0 = bench_now();
		resp = call(afd, json_deep_copy(req));
		v[i] = (bench_now() - t0) * 1000;
		if (!ok(resp))
			die("listing refused");
		json_decref(resp);
	}
	qsort(v, 5, sizeof(v[0]), cmp_double);
	return v[2];
}

/* The operator's listings, answered by the signer (no client start-up). */
static void
listings(int afd)
{
	static const char *const what[] = { "certs_device_ms",
	    "certs_valid_ms", "certs_expiring_ms", "pending_ms" };
	json_t *req[4];
	int i;

	req[0] = json_pack("{s:s, s:s}", "op", "certs", "device", "dev-1");
	req[1] = json_pack("{s:s, s:s}", "op", "certs", "status", "valid");
	req[2] = json_pack("{s:s, s:i}", "op", "certs", "expiring_within",
	    86400);
	req[3] = json_pack("{s:s}", "op", "pending");
	for (i = 0; i < 4; i++) {
		if (req[i] == NULL)
			die("out of memory");
		printf("%s: %.2f\n", what[i], admin_ms(afd, req[i]));
		json_decref(req[i]);
	}
}

static int
cmd_measure(char **argv)
{
	long pid = atol(argv[2]), batch = atol(argv[4]), i, entries;
	char err[256], serial[80] = "";
	char **csrs;
	double *lat, c0, c1, t0, crl_ms, crl_cpu;
	int sfd, afd;

	if (pid <= 0 || batch < 1)
		die("measure: bad pid or batch");
	if ((csrs = calloc((size_t)batch, sizeof(*csrs))) == NULL ||
	    (lat = calloc((size_t)batch, sizeof(*lat))) == NULL)
		die("out of memory");
	for (i = 0; i < batch; i++)
		csrs[i] = make_csr(i);
	if ((sfd = proto_connect(argv[0], err, sizeof(err))) == -1)
		die(err);
	c0 = proc_cpu(pid);
	for (i = 0; i < batch; i++) {
		t0 = bench_now();
		issue(sfd, argv[1], i, csrs[i], serial, sizeof(serial));
		lat[i] = (bench_now() - t0) * 1000;
	}
	c1 = proc_cpu(pid);
	qsort(lat, (size_t)batch, sizeof(*lat), cmp_double);
	printf("renewals: %ld\n", batch);
	printf("cpu_ms_per_cert: %.3f\n", (c1 - c0) * 1000 / batch);
	printf("renewal_p50_ms: %.2f\n", lat[batch / 2]);
	printf("approval_lookup_ms: %.3f\n", approval_lookup_ms(argv[3],
	    batch));
	if ((afd = proto_connect(argv[1], err, sizeof(err))) == -1)
		die(err);
	listings(afd);

	/* A revocation after a pause: the CRL is stale, and nothing holds
	 * its signature back (at most one per 500 ms). */
	usleep(700 * 1000);
	c0 = proc_cpu(pid);
	t0 = bench_now();
	revoke_cert(argv[1], serial);
	entries = crl_entries(afd, t0, &crl_ms);
	crl_cpu = proc_cpu(pid) - c0;
	printf("crl_entries: %ld\nrevoke_crl_ms: %.1f\ncrl_cpu_ms: %.0f\n", entries,
	    crl_ms, crl_cpu * 1000);
	for (i = 0; i < batch; i++)
		free(csrs[i]);
	free(csrs);
	free(lat);
	close(sfd);
	close(afd);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 7 && strcmp(argv[1], "fill") == 0)
		return cmd_fill(argv + 2);
	if (argc == 7 && strcmp(argv[1], "measure") == 0)
		return cmd_measure(argv + 2);
	fprintf(stderr, "usage: aging_fill fill SIGNER_SOCK ADMIN_SOCK FROM TO "
	    "DEVICES\n       aging_fill measure SIGNER_SOCK ADMIN_SOCK "
	    "SIGNER_PID SIGNER_DB BATCH\n");
	return 2;
}
