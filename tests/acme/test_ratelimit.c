/*
 * test_ratelimit: the token buckets of iotca-acmed (acme/ratelimit.c).
 * What the rate limits rely on: a key gets its burst and then waits the
 * refill, with an honest Retry-After; keys do not share buckets; the table
 * never grows past its size, and a flood of new keys pushes out idle
 * buckets before the one of a key that is being limited.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ratelimit.h"

static void
test_burst_then_refill(void **state)
{
	struct ratelimit_rule rule = { 5, 60 };	/* one every 12 s */
	struct ratelimit *rl;
	unsigned int ra, i;

	(void)state;
	assert_non_null(rl = ratelimit_new(&rule, 64));
	for (i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(rl, "10.0.0.1", 100.0, &ra), 1);
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", 100.0, &ra), 0);
	assert_int_equal(ra, 12);
	/* 6 s later half a token is back: 6 s more to wait. */
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", 106.0, &ra), 0);
	assert_int_equal(ra, 6);
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", 112.0, &ra), 1);
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", 112.0, &ra), 0);
	assert_true(ra >= 1);
	/* Another key has its own bucket. */
	assert_int_equal(ratelimit_take(rl, "10.0.0.2", 112.0, &ra), 1);
	/* A long pause refills no more than the burst. */
	for (i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(rl, "10.0.0.1", 5000.0, &ra), 1);
	assert_int_equal(ratelimit_take(rl, "10.0.0.1", 5000.0, &ra), 0);
	ratelimit_free(rl);
}

static void
test_off_and_parse(void **state)
{
	struct ratelimit_rule rule;
	struct ratelimit *rl;
	unsigned int ra, i;

	(void)state;
	assert_int_equal(ratelimit_parse_rule("off", &rule), 0);
	assert_int_equal(rule.burst, 0);
	assert_non_null(rl = ratelimit_new(&rule, 8));
	for (i = 0; i < 1000; i++)
		assert_int_equal(ratelimit_take(rl, "k", 1.0, &ra), 1);
	ratelimit_free(rl);
	assert_int_equal(ratelimit_parse_rule("20/60", &rule), 0);
	assert_int_equal(rule.burst, 20);
	assert_int_equal(rule.period, 60);
	assert_int_equal(ratelimit_parse_rule("0/60", &rule), -1);
	assert_int_equal(ratelimit_parse_rule("20/0", &rule), -1);
	assert_int_equal(ratelimit_parse_rule("20", &rule), -1);
	assert_int_equal(ratelimit_parse_rule("20/60s", &rule), -1);
	assert_int_equal(ratelimit_parse_rule("-1/60", &rule), -1);
	assert_int_equal(ratelimit_parse_rule("/60", &rule), -1);
	assert_int_equal(ratelimit_parse_rule("20/", &rule), -1);
	assert_int_equal(ratelimit_parse_rule("", &rule), -1);
}

/*
 * 100,000 distinct keys through a table of 64 buckets (allocated once, it
 * cannot grow): each flood key spends one request, so its bucket is fuller
 * than the one of the key being limited, which is therefore never the one
 * pushed out, and stays limited.
 */
static void
test_bounded_table_keeps_the_limited(void **state)
{
	struct ratelimit_rule rule = { 3, 3600 };
	struct ratelimit *rl;
	char key[32];
	unsigned int ra, i;

	(void)state;
	assert_non_null(rl = ratelimit_new(&rule, 64));
	for (i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, "attacker", 0.0, &ra), 1);
	assert_int_equal(ratelimit_take(rl, "attacker", 0.0, &ra), 0);
	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "flood-%u", i);
		assert_int_equal(ratelimit_take(rl, key, 1.0, &ra), 1);
	}
	assert_int_equal(ratelimit_take(rl, "attacker", 1.0, &ra), 0);
	assert_in_range(ra, 1199, 1200);
	/* A recent flood key is remembered too: its second request counts. */
	assert_int_equal(ratelimit_take(rl, "flood-99999", 1.0, &ra), 1);
	assert_int_equal(ratelimit_take(rl, "flood-99999", 1.0, &ra), 1);
	assert_int_equal(ratelimit_take(rl, "flood-99999", 1.0, &ra), 0);
	ratelimit_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refill),
		cmocka_unit_test(test_off_and_parse),
		cmocka_unit_test(test_bounded_table_keeps_the_limited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
