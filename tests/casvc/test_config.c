/*
 * config_load: a good file loads with its defaults; every kind of bad line
 * is refused naming the file, the line and the reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static const char good[] =
    "[ca]\n"
    "name = router-fdb531\n"
    "domains = home.arpa, corp.example\n"
    "root_cert = /var/lib/iotca/root.pem\n"
    "[key]\n"
    "store = file\n"
    "path = /var/lib/iotca/root-key.pem\n"
    "[signer]\n"
    "db = /var/lib/iotca/signer.db\n"
    "socket = /run/iotca/signer.sock\n"
    "admin_socket = /run/iotca/admin.sock\n"
    "admin_users = 0, root\n"
    "admin_groups = root\n";

static char path[64];

static void
write_conf(const char *text)
{
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/iotca-conf.XXXXXX");
	assert_true((fd = mkstemp(path)) != -1);
	assert_non_null(f = fdopen(fd, "w"));
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* Load text with one line added to the good file at the end of section. */
static int
load_with(const char *section, const char *line, char *err, size_t errlen)
{
	char text[2048];
	const char *at = strstr(good, section);
	struct config cfg;
	int rc;

	assert_non_null(at);
	at = strchr(at, '\n') + 1;
	snprintf(text, sizeof(text), "%.*s%s\n%s", (int)(at - good), good, line,
	    at);
	write_conf(text);
	rc = config_load(path, &cfg, err, errlen);
	if (rc == 0)
		config_free(&cfg);
	unlink(path);
	return rc;
}

static void
assert_refused(const char *section, const char *line, int lineno,
    const char *why)
{
	char err[512], where[128];

	assert_int_equal(load_with(section, line, err, sizeof(err)), -1);
	snprintf(where, sizeof(where), "%s:%d: ", path, lineno);
	if (strstr(err, where) == NULL || strstr(err, why) == NULL)
		fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err, where, why);
}

static void
test_good_file_and_defaults(void **state)
{
	struct config cfg;
	char err[512];

	write_conf(good);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), 0);
	unlink(path);
	assert_string_equal(cfg.name, "router-fdb531");
	assert_int_equal(cfg.ndomains, 2);
	assert_string_equal(cfg.domains[1], "corp.example");
	assert_int_equal(cfg.key_store, KS_STORE_FILE);
	assert_int_equal(cfg.key_alg, KS_ALG_EC_P384);
	assert_int_equal(cfg.max_days, 90);
	assert_int_equal(cfg.root_years, 10);
	assert_int_equal(cfg.auto_approve, 0);
	assert_int_equal(cfg.admin_uids.n, 2);
	assert_int_equal(cfg.admin_uids.id[1], 0);
	config_free(&cfg);
}

static void
test_unknown_key(void **state)
{
	assert_refused("[signer]", "sockett = /x", 9, "unknown key \"sockett\"");
}

static void
test_unknown_section(void **state)
{
	/* inih reports the section at its first key. */
	assert_refused("[ca]", "[cat]", 3, "unknown section [cat]");
}

static void
test_max_days_over_90(void **state)
{
	assert_refused("[signer]", "[policy]\nmax_days = 91", 10,
	    "max_days must be 1 to 90");
}

static void
test_root_years_zero(void **state)
{
	assert_refused("[ca]", "root_years = 0", 2, "root_years must be 1 to 10");
}

static void
test_relative_path(void **state)
{
	assert_refused("[signer]", "db = signer.db", 9, "absolute path");
}

static void
test_bad_domain(void **state)
{
	char err[512];

	write_conf("[ca]\nname = x\ndomains = Home..arpa\n");
	assert_int_equal(config_load(path, &(struct config){0}, err,
	    sizeof(err)), -1);
	unlink(path);
	assert_non_null(strstr(err, ":3: domains: \"Home..arpa\""));
}

static void
test_bad_store_and_algorithm(void **state)
{
	assert_refused("[key]", "store = hsm", 6, "store must be tpm2, file or provider");
	assert_refused("[key]", "algorithm = ec-p256", 6, "algorithm must be");
}

static void
test_unknown_user(void **state)
{
	assert_refused("[signer]", "admin_users = no-such-user-here", 9,
	    "no such user");
}

static void
test_bad_bool(void **state)
{
	assert_refused("[signer]", "[policy]\nauto_approve = maybe", 10,
	    "auto_approve must be true or false");
}

static void
test_syntax_error(void **state)
{
	assert_refused("[ca]", "this line has no equals sign", 2, "");
}

static void
test_missing_required(void **state)
{
	struct config cfg;
	char err[512];

	write_conf("[ca]\nname = x\ndomains = home.arpa\n");
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
	unlink(path);
	assert_non_null(strstr(err, "missing [ca] root_cert"));
}

static void
test_missing_file(void **state)
{
	struct config cfg;
	char err[512];

	assert_int_equal(config_load("/nonexistent/iotca.conf", &cfg, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/iotca.conf: cannot open"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_file_and_defaults),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_max_days_over_90),
		cmocka_unit_test(test_root_years_zero),
		cmocka_unit_test(test_relative_path),
		cmocka_unit_test(test_bad_domain),
		cmocka_unit_test(test_bad_store_and_algorithm),
		cmocka_unit_test(test_unknown_user),
		cmocka_unit_test(test_bad_bool),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
