/*
 * test_refusals: the refusal table on its own, with times made up: the
 * first of each kind is recorded, the rest counted; the summary comes when
 * the interval ends; a full table shares one overflow entry.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refusals.h"

struct got {
	int	 n;
	json_t	*fields[REFUSALS_PEERS + 2];
	int	 overflow[REFUSALS_PEERS + 2];
};

static void
collect(void *arg, const struct peer *p, json_t *fields)
{
	struct got *g = arg;

	assert_non_null(fields);
	assert_true(g->n < REFUSALS_PEERS + 2);
	g->overflow[g->n] = p == NULL;
	g->fields[g->n++] = fields;
}

static void
got_free(struct got *g)
{
	int i;

	for (i = 0; i < g->n; i++)
		json_decref(g->fields[i]);
	memset(g, 0, sizeof(*g));
}

static struct peer
peer(pid_t pid)
{
	struct peer p;

	memset(&p, 0, sizeof(p));
	p.role = ROLE_FRONTEND;
	p.uid = 998;
	p.pid = pid;
	snprintf(p.who, sizeof(p.who), "frontend uid 998");
	snprintf(p.user, sizeof(p.user), "iotca-acme");
	return p;
}

static json_int_t
field(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void
first_of_each_kind_then_counted(void **state)
{
	struct refusals *r = refusals_new();
	struct peer p = peer(100);
	struct got g;
	int i, alone = 0;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_non_null(r);
	for (i = 0; i < 1000; i++)
		alone += refusals_note(r, &p, "acct-1", "issue", "badCSR",
		    1000 + i / 100);
	alone += refusals_note(r, &p, "acct-1", "revoke", "unauthorized", 1009);
	alone += refusals_note(r, &p, "acct-1", "revoke", "unauthorized", 1009);
	assert_int_equal(alone, 2);
	/* Not yet: the interval is still open, and says when it ends. */
	assert_int_equal(refusals_flush(r, 1030, 0, collect, &g), 30);
	assert_int_equal(g.n, 0);
	assert_int_equal(refusals_flush(r, 1000 + REFUSALS_INTERVAL, 0,
	    collect, &g), -1);
	assert_int_equal(g.n, 1);
	assert_int_equal(field(g.fields[0], "count"), 1000);
	assert_int_equal(field(g.fields[0], "first"), 1000);
	assert_int_equal(field(g.fields[0], "last"), 1009);
	assert_string_equal(json_string_value(json_object_get(g.fields[0],
	    "account")), "acct-1");
	assert_int_equal(json_array_size(json_object_get(g.fields[0],
	    "refused")), 2);
	got_free(&g);
	/* A new interval: its first refusal is recorded again. */
	assert_int_equal(refusals_note(r, &p, "acct-1", "issue", "badCSR",
	    1100), 1);
	/* A peer with nothing counted needs no summary. */
	assert_int_equal(refusals_flush(r, 2000, 0, collect, &g), -1);
	assert_int_equal(g.n, 0);
	refusals_free(r);
}

static void
kinds_beyond_the_table_are_other(void **state)
{
	struct refusals *r = refusals_new();
	struct peer p = peer(100);
	char op[16];
	struct got g;
	int i, alone = 0;

	(void)state;
	memset(&g, 0, sizeof(g));
	for (i = 0; i < REFUSALS_KINDS + 5; i++) {
		snprintf(op, sizeof(op), "op%d", i);
		alone += refusals_note(r, &p, NULL, op, "badRequest", 10);
	}
	assert_int_equal(alone, REFUSALS_KINDS);
	refusals_flush(r, 10, 1, collect, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(field(g.fields[0], "count"), 5);
	assert_int_equal(field(g.fields[0], "other"), 5);
	assert_null(json_object_get(g.fields[0], "account"));
	got_free(&g);
	refusals_free(r);
}

static void
full_table_shares_the_overflow(void **state)
{
	struct refusals *r = refusals_new();
	struct got g;
	struct peer p;
	int i, alone = 0;

	(void)state;
	memset(&g, 0, sizeof(g));
	for (i = 0; i < 10 * REFUSALS_PEERS; i++) {
		p = peer(1000 + i);
		alone += refusals_note(r, &p, NULL, "issue", "badCSR", 50);
		alone += refusals_note(r, &p, NULL, "issue", "badCSR", 51);
	}
	/* One record alone per peer in the table, one for the overflow. */
	assert_int_equal(alone, REFUSALS_PEERS + 1);
	refusals_flush(r, 50 + REFUSALS_INTERVAL, 0, collect, &g);
	assert_int_equal(g.n, REFUSALS_PEERS + 1);
	assert_int_equal(g.overflow[g.n - 1], 1);
	assert_int_equal(field(g.fields[g.n - 1], "count"),
	    2 * 10 * REFUSALS_PEERS - 2 * REFUSALS_PEERS - 1);
	assert_true(json_is_true(json_object_get(g.fields[g.n - 1],
	    "overflow")));
	got_free(&g);
	refusals_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(first_of_each_kind_then_counted),
		cmocka_unit_test(kinds_beyond_the_table_are_other),
		cmocka_unit_test(full_table_shares_the_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
