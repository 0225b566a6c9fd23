/*
 * test_audit: the audit log's chain, MACs, checkpoints and counter, with the
 * file anchor in a temporary directory and a private SQLite database.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "anchor.h"
#include "audit.h"

struct fixture {
	char		 dir[64];
	char		 db_path[128], key[128], hmac[128], counter[128];
	sqlite3		*db;
	struct anchor	*anchor;
	struct audit	*audit;
};

static void
exec_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

static void
open_log(struct fixture *f, int checkpoint_records)
{
	struct anchor_paths ap = { ANCHOR_FILE, f->key, f->hmac, f->counter, 0,
	    NULL, NULL, 0 };
	struct audit_params prm = { checkpoint_records, 15, 0 };
	char err[512];
	int created;

	assert_int_equal(sqlite3_open(f->db_path, &f->db), SQLITE_OK);
	f->anchor = anchor_open(NULL, &ap, 1, &created, err, sizeof(err));
	if (f->anchor == NULL)
		fail_msg("anchor: %s", err);
	f->audit = audit_open(f->db, f->anchor, &prm, err, sizeof(err));
	if (f->audit == NULL)
		fail_msg("audit: %s", err);
}

static void
close_log(struct fixture *f)
{
	audit_close(f->audit);
	anchor_close(f->anchor);
	sqlite3_close(f->db);
	f->audit = NULL;
	f->anchor = NULL;
	f->db = NULL;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_audit.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db_path, sizeof(f->db_path), "%s/signer.db", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/audit-key.pem", f->dir);
	snprintf(f->hmac, sizeof(f->hmac), "%s/audit-hmac.key", f->dir);
	snprintf(f->counter, sizeof(f->counter), "%s/audit-counter", f->dir);
	open_log(f, 5);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	close_log(f);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Append n events, one transaction each, as the signer does. */
static void
append(struct fixture *f, int n)
{
	char err[512];
	json_t *ev;
	int i;

	for (i = 0; i < n; i++) {
		ev = audit_event("test_event", NULL);
		assert_non_null(ev);
		json_object_set_new(ev, "i", json_integer(i));
		exec_ok(f->db, "BEGIN IMMEDIATE");
		if (audit_append(f->audit, ev, NULL, err, sizeof(err)) == -1)
			fail_msg("append: %s", err);
		exec_ok(f->db, "COMMIT");
		audit_committed(f->audit);
		json_decref(ev);
	}
}

static void
expect_ok(struct fixture *f, long long records)
{
	struct audit_verdict v;

	assert_int_equal(audit_verify(f->audit, &v), 0);
	if (!v.ok)
		fail_msg("verify: record %lld: %s", v.first_bad, v.reason);
	assert_int_equal(v.records, records);
	assert_true(v.macs_checked);
	assert_true(v.counter_checked);
}

static void
expect_bad(struct fixture *f, long long seq, const char *word)
{
	struct audit_verdict v;

	assert_int_equal(audit_verify(f->audit, &v), 0);
	assert_false(v.ok);
	if (v.first_bad != seq || strstr(v.reason, word) == NULL)
		fail_msg("wanted record %lld (%s), got %lld: %s", seq, word,
		    v.first_bad, v.reason);
}

static void
test_chain_verifies(void **state)
{
	struct fixture *f = *state;

	append(f, 20);
	expect_ok(f, 21);	/* and the creation record */
}

static void
test_rollback_leaves_no_trace(void **state)
{
	struct fixture *f = *state;
	char err[512];
	json_t *ev = audit_event("undone", NULL);

	append(f, 3);
	exec_ok(f->db, "BEGIN IMMEDIATE");
	assert_int_equal(audit_append(f->audit, ev, NULL, err, sizeof(err)), 0);
	exec_ok(f->db, "ROLLBACK");
	audit_rolled_back(f->audit);
	json_decref(ev);
	append(f, 2);
	expect_ok(f, 6);
}

static void
test_altered_record(void **state)
{
	struct fixture *f = *state;

	append(f, 10);
	exec_ok(f->db, "UPDATE audit_log SET record = replace(record, "
	    "'\"i\":4', '\"i\":5') WHERE seq = 6");
	expect_bad(f, 6, "altered");
}

static void
test_bad_mac(void **state)
{
	struct fixture *f = *state;

	append(f, 10);
	exec_ok(f->db, "UPDATE audit_log SET mac = zeroblob(48) WHERE seq = 7");
	expect_bad(f, 7, "bad MAC");
}

static void
test_missing_and_swapped(void **state)
{
	struct fixture *f = *state;

	append(f, 10);
	exec_ok(f->db, "UPDATE audit_log SET seq = -1 WHERE seq = 3;"
	    "UPDATE audit_log SET seq = 3 WHERE seq = 4;"
	    "UPDATE audit_log SET seq = 4 WHERE seq = -1");
	expect_bad(f, 3, "does not follow");
	exec_ok(f->db, "DELETE FROM audit_log WHERE seq = 2");
	expect_bad(f, 2, "missing");
}

static void
test_tail_and_counter(void **state)
{
	struct fixture *f = *state;
	char err[512];
	uint64_t c;

	append(f, 10);
	assert_int_equal(audit_checkpoint(f->audit, err, sizeof(err)), 0);
	close_log(f);
	/* The signed tail, cut off while the signer was away. */
	assert_int_equal(sqlite3_open(f->db_path, &f->db), SQLITE_OK);
	exec_ok(f->db, "DELETE FROM audit_log WHERE seq > 8");
	sqlite3_close(f->db);
	open_log(f, 5);
	assert_non_null(audit_broken(f->audit));
	expect_bad(f, 9, "tail was cut off");
	close_log(f);
	/* Records and their checkpoint gone: only the counter knows. */
	assert_int_equal(sqlite3_open(f->db_path, &f->db), SQLITE_OK);
	exec_ok(f->db, "DELETE FROM audit_checkpoints WHERE id = (SELECT "
	    "max(id) FROM audit_checkpoints);"
	    "DELETE FROM audit_log WHERE seq > (SELECT max(head_seq) FROM "
	    "audit_checkpoints)");
	sqlite3_close(f->db);
	open_log(f, 5);
	assert_non_null(audit_broken(f->audit));
	expect_bad(f, 7, "rolled back");
	assert_int_equal(anchor_counter_read(f->anchor, &c, err, sizeof(err)), 0);
	assert_true(c > 0);
}

static void
test_cut_short_checkpoint_is_finished(void **state)
{
	struct fixture *f = *state;
	char err[512];
	uint64_t c;

	append(f, 3);
	assert_int_equal(audit_checkpoint(f->audit, err, sizeof(err)), 0);
	close_log(f);
	/* A crash between the checkpoint's commit and the counter's step:
	 * put the counter file one back. */
	{
		struct anchor_paths ap = { ANCHOR_FILE, f->key, f->hmac,
		    f->counter, 0, NULL, NULL, 0 };
		int created;
		FILE *fp;

		f->anchor = anchor_open(NULL, &ap, 0, &created, err, sizeof(err));
		assert_non_null(f->anchor);
		assert_int_equal(anchor_counter_read(f->anchor, &c, err,
		    sizeof(err)), 0);
		anchor_close(f->anchor);
		f->anchor = NULL;
		assert_non_null(fp = fopen(f->counter, "w"));
		fprintf(fp, "%llu\n", (unsigned long long)c - 1);
		fclose(fp);
	}
	open_log(f, 5);
	assert_null(audit_broken(f->audit));
	expect_ok(f, 4);
	assert_int_equal(anchor_counter_read(f->anchor, &c, err, sizeof(err)), 0);
}

static void
test_offline_copy(void **state)
{
	struct fixture *f = *state;
	struct audit_verdict v;

	append(f, 12);
	assert_int_equal(audit_verify_file(f->db_path, anchor_pubkey(f->anchor),
	    &v), 0);
	if (!v.ok)
		fail_msg("offline: %s", v.reason);
	assert_int_equal(v.records, 13);
	assert_false(v.macs_checked);
	assert_false(v.counter_checked);
	exec_ok(f->db, "UPDATE audit_checkpoints SET signature = zeroblob(70) "
	    "WHERE id = 2");
	assert_int_equal(audit_verify_file(f->db_path, anchor_pubkey(f->anchor),
	    &v), 0);
	assert_false(v.ok);
	assert_non_null(strstr(v.reason, "bad signature"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chain_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_leaves_no_trace,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_altered_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_mac, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_swapped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tail_and_counter, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cut_short_checkpoint_is_finished,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline_copy, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
