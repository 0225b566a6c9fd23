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
#include <sys/stat.h>

#include <cmocka.h>

#include "config_key.h"

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
	assert_string_equal(cfg.key_store, "file");
	assert_string_equal(cfg.key_alg, "ec-p384");
	assert_int_equal(cfg.max_days, 90);
	assert_int_equal(cfg.root_years, 10);
	assert_int_equal(cfg.auto_approve, 0);
	assert_int_equal(cfg.approve_delegated_devices, 0);
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
	assert_refused("[signer]", "[policy]\napprove_delegated_devices = 2",
	    10, "approve_delegated_devices must be true or false");
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

static void
test_bad_parent(void **state)
{
	(void)state;
	assert_refused("[key]", "parent = 81000001", 6, "persistent handle");
	assert_refused("[key]", "parent = 0x80000001", 6, "persistent handle");
	assert_refused("[key]", "parent = 0x82000000", 6, "persistent handle");
	assert_refused("[key]", "parent = 0x81zz", 6, "persistent handle");
	assert_refused("[key]", "owner_auth_file = owner-auth", 6,
	    "absolute path");
}

/* The good file's store is file: TPM settings there are a mistake. */
static void
test_tpm_settings_need_tpm2(void **state)
{
	char err[512];

	(void)state;
	assert_int_equal(load_with("[key]", "parent = 0x81000001", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "for store = tpm2"));
	assert_int_equal(load_with("[key]", "owner_auth_file = /etc/x", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "for store = tpm2"));
}

/* A tpm2 config with owner_auth_file naming file f. */
static void
load_tpm2_with_auth(struct config *cfg, const char *f)
{
	char text[2048], err[512];

	snprintf(text, sizeof(text), "[ca]\nname = r\ndomains = home.arpa\n"
	    "root_cert = /x/root.pem\n[key]\nstore = tpm2\npath = /x/k.tss\n"
	    "parent = 0x81000001\nowner_auth_file = %s\n[signer]\n"
	    "db = /x/s.db\nsocket = /x/s.sock\nadmin_socket = /x/a.sock\n", f);
	write_conf(text);
	if (config_load(path, cfg, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	unlink(path);
	assert_int_equal(cfg->key_parent, 0x81000001);
}

/* Write content to a fresh file of the given mode; its path into out. */
static void
secret_file(char out[64], const char *content, size_t len, mode_t mode)
{
	int fd;

	snprintf(out, 64, "/tmp/iotca-auth.XXXXXX");
	assert_true((fd = mkstemp(out)) != -1);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* owner_auth_file: one line, only its owner may read it; each refusal says
 * why, and the right file gives the text without its newline. */
static void
test_owner_auth_file(void **state)
{
	static const struct {
		const char	*content;
		size_t		 len;
		mode_t		 mode;
		const char	*why;	/* NULL: accepted */
	} cases[] = {
		{ "s3cret pass\n", 12, 0600, NULL },
		{ "s3cret pass", 11, 0400, NULL },
		{ "s3cret pass\n", 12, 0640, "only its owner can read" },
		{ "s3cret pass\n", 12, 0604, "only its owner can read" },
		{ "", 0, 0600, "one line" },
		{ "\n", 1, 0600, "one line" },
		{ "two\nlines\n", 10, 0600, "one line" },
		{ "nul\0inside", 10, 0600, "one line" },
		{ "0123456789012345678901234567890123456789012345678901234567890123",
		  64, 0600, "1 to 63 bytes" },
	};
	char f[64], out[CONFIG_OWNER_AUTH_MAX + 1], err[512];
	struct config cfg;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		secret_file(f, cases[i].content, cases[i].len, cases[i].mode);
		load_tpm2_with_auth(&cfg, f);
		err[0] = '\0';
		if (cases[i].why == NULL) {
			if (config_owner_auth(&cfg, out, err, sizeof(err)) != 0)
				fail_msg("case %zu: %s", i, err);
			assert_string_equal(out, "s3cret pass");
		} else {
			assert_int_equal(config_owner_auth(&cfg, out, err,
			    sizeof(err)), -1);
			if (strstr(err, cases[i].why) == NULL ||
			    strstr(err, f) == NULL)
				fail_msg("case %zu: \"%s\" lacks \"%s\" or the "
				    "path", i, err, cases[i].why);
			assert_null(strstr(err, "s3cret"));
		}
		unlink(f);
		config_free(&cfg);
	}
	/* Missing: named, with the reason. */
	load_tpm2_with_auth(&cfg, "/nonexistent/owner-auth");
	assert_int_equal(config_owner_auth(&cfg, out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/owner-auth: No such file"));
	config_free(&cfg);
}

/*
 * config.c checks [key] by name without key code; each name it accepts must
 * be one the key store knows, as the signer's config_key.c turns it.
 */
static void
test_key_names_reach_the_key_store(void **state)
{
	static const struct {
		const char	*line;
		enum ks_store	 store;
		enum anchor_mode mode;
	} stores[] = {
		{ "store = tpm2", KS_STORE_TPM2, ANCHOR_TPM2 },
		{ "store = file", KS_STORE_FILE, ANCHOR_FILE },
		{ "store = provider\nprovider = pkcs11", KS_STORE_PROVIDER,
		  ANCHOR_FILE },
	};
	static const struct {
		const char	*name;
		enum ks_alg	 alg;
	} algs[] = {
		{ "ec-p384", KS_ALG_EC_P384 }, { "ec-p521", KS_ALG_EC_P521 },
		{ "rsa-3072", KS_ALG_RSA_3072 }, { "rsa-4096", KS_ALG_RSA_4096 },
	};
	char text[2048], line[64], err[512];
	struct config cfg;
	struct ks_config kc;
	struct anchor_paths ap;
	enum ks_alg alg;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(stores) / sizeof(stores[0]); i++) {
		snprintf(text, sizeof(text), "[ca]\nname = r\ndomains = home.arpa\n"
		    "root_cert = /x/root.pem\n[key]\n%s\npath = /x/k\n"
		    "[signer]\ndb = /x/s.db\nsocket = /x/s.sock\n"
		    "admin_socket = /x/a.sock\n", stores[i].line);
		write_conf(text);
		if (config_load(path, &cfg, err, sizeof(err)) == -1)
			fail_msg("%s: %s", stores[i].line, err);
		unlink(path);
		config_ks(&cfg, &kc);
		assert_int_equal(kc.store, stores[i].store);
		config_anchor(&cfg, "", &ap);
		assert_int_equal(ap.mode, stores[i].mode);
		config_free(&cfg);
	}
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		snprintf(line, sizeof(line), "algorithm = %s", algs[i].name);
		assert_int_equal(load_with("[key]", line, err, sizeof(err)), 0);
		assert_int_equal(config_key_alg(algs[i].name, &alg), 0);
		assert_int_equal(alg, algs[i].alg);
	}
	/* The key store's probe-only algorithms are never a root's. */
	assert_int_equal(config_key_alg("ec-p256", &alg), -1);
	assert_int_equal(config_key_alg("rsa-2048", &alg), -1);
	assert_int_equal(config_key_alg("ec-p384 ", &alg), -1);
	assert_int_equal(config_key_alg(NULL, &alg), -1);
}

/* publish_url is checked once the file is read (name and domains may come
 * after it): the error names the key, not a line. */
static void
publish_refused(const char *url, const char *why)
{
	char err[512], line[300];

	snprintf(line, sizeof(line), "publish_url = %s", url);
	assert_int_equal(load_with("[ca]", line, err, sizeof(err)), -1);
	if (strstr(err, "[ca] publish_url") == NULL || strstr(err, why) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", url, err, why);
}

static void
test_publish_url(void **state)
{
	struct config cfg;
	char err[512];

	/* Default: the name under the first domain. */
	write_conf(good);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), 0);
	unlink(path);
	assert_string_equal(cfg.publish_url, "http://router-fdb531.home.arpa");
	config_free(&cfg);
	assert_int_equal(load_with("[ca]", "publish_url = "
	    "http://router-fdb531.local", err, sizeof(err)), 0);
	assert_int_equal(load_with("[ca]", "publish_url = "
	    "http://router-fdb531.corp.example:8080/iotca", err, sizeof(err)), 0);
	publish_refused("https://router-fdb531.home.arpa", "http://");
	publish_refused("http://crl.example.org", "the host must be");
	publish_refused("http://other.home.arpa", "the host must be");
	publish_refused("http://router-fdb531.home.arpa.evil", "the host must be");
	publish_refused("http://router-fdb531", "the host must be");
	publish_refused("http://192.168.1.1", "the host must be");
	publish_refused("http://router-fdb531.local:0", "port must be");
	publish_refused("http://router-fdb531.local:65536", "port must be");
	publish_refused("http://router-fdb531.local:", "bad port");
	publish_refused("http://router-fdb531.local/", "no trailing slash");
	publish_refused("http://router-fdb531.local/a?b=c", "no query");
	publish_refused("http://router-fdb531.local/a/../b", "dot segment");
	publish_refused("http://user@router-fdb531.local", "the host must be");
	assert_int_equal(load_with("[ca]", "publish_url = http://router-fdb531"
	    ".local\npublish_url = http://router-fdb531.local", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "publish_url given twice"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_file_and_defaults),
		cmocka_unit_test(test_publish_url),
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
		cmocka_unit_test(test_bad_parent),
		cmocka_unit_test(test_tpm_settings_need_tpm2),
		cmocka_unit_test(test_owner_auth_file),
		cmocka_unit_test(test_key_names_reach_the_key_store),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
