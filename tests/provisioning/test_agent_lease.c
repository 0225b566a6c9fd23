/*
 * Unit tests of provisioning/agent_lease: the udhcpc-style lease file
 * (KEY=VALUE lines) iotca-agent reads before its own DHCPINFORM.  One
 * test per refusal rule; the accepted file is checked through the option
 * 125 parser the agent uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_lease.h"
#include "discovery.h"

static char path[64];
static char err[512];

/* Write text to a fresh temporary file named in path. */
static void
write_lease(const char *text)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/lease-test.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

static int
teardown(void **state)
{
	(void)state;
	if (path[0] != '\0')
		(void)unlink(path);
	path[0] = '\0';
	return 0;
}

/* enterprise 55357 (0x0000d83d), data-len 18, sub-option 1 len 16
 * "acme.example.lan" */
#define OPT125_HEX	"0000d83d120110" "61636d652e6578616d706c652e6c616e"

static void
valid(void **state)
{
	struct agent_lease l;
	char name[DISC_NAME_MAX + 1];

	(void)state;
	/* what "env > FILE" in a udhcpc hook writes, other keys around */
	write_lease("interface=eth0\nip=10.9.0.20\nsubnet=255.255.255.0\n"
	    "dns=10.9.0.1\ndomain=example.lan\nopt125=" OPT125_HEX "\n"
	    "PWD=/\n");
	assert_int_equal(agent_lease_read(path, &l, err, sizeof(err)), 1);
	assert_string_equal(l.domain, "example.lan");
	assert_int_equal(l.opt125_len, 23);
	assert_int_equal(disc_parse_vivso(l.opt125, l.opt125_len,
	    DISC_DEFAULT_ENTERPRISE, DISC_DEFAULT_SUBOPT, name, err,
	    sizeof(err)), 1);
	assert_string_equal(name, "acme.example.lan");
}

static void
upper_case_hex_no_newline(void **state)
{
	struct agent_lease l;

	(void)state;
	write_lease("opt125=0000D83D0401024142");
	assert_int_equal(agent_lease_read(path, &l, err, sizeof(err)), 1);
	assert_int_equal(l.opt125_len, 9);
	assert_int_equal(l.opt125[3], 0x3d);
}

static void
missing_key(void **state)
{
	struct agent_lease l;

	(void)state;
	write_lease("interface=eth0\ndomain=example.lan\n");
	assert_int_equal(agent_lease_read(path, &l, err, sizeof(err)), 0);
	assert_int_equal(l.opt125_len, 0);
	assert_string_equal(l.domain, "example.lan");
}

static void
missing_file(void **state)
{
	struct agent_lease l;

	(void)state;
	assert_int_equal(agent_lease_read("/nonexistent/lease", &l, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
}

static void
odd_length(void **state)
{
	struct agent_lease l;

	(void)state;
	write_lease("domain=example.lan\nopt125=0000d83d0\n");
	assert_int_equal(agent_lease_read(path, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: opt125 has an odd number"));
}

static void
bad_hex_char(void **state)
{
	struct agent_lease l;

	(void)state;
	write_lease("opt125=0000d83g\n");
	assert_int_equal(agent_lease_read(path, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: opt125 has a character that is not "
	    "a hex digit at offset 7"));
}

static void
empty_value(void **state)
{
	struct agent_lease l;

	(void)state;
	write_lease("opt125=\n");
	assert_int_equal(agent_lease_read(path, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "opt125 is empty"));
}

static void
over_long_line(void **state)
{
	struct agent_lease l;
	size_t n = 4 * DHCP_OPT125_MAX, i;
	char *text = malloc(n + 16);

	(void)state;
	assert_non_null(text);
	strcpy(text, "opt125=");
	for (i = 0; i < n; i++)
		text[7 + i] = '0';
	strcpy(text + 7 + n, "\n");
	write_lease(text);
	free(text);
	assert_int_equal(agent_lease_read(path, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: line too long"));
}

static void
payload_over_max(void **state)
{
	struct agent_lease l;
	size_t n = 2 * DHCP_OPT125_MAX + 2, i;
	char *text = malloc(n + 16);

	(void)state;
	assert_non_null(text);
	strcpy(text, "opt125=");
	for (i = 0; i < n; i++)
		text[7 + i] = '0';
	text[7 + n] = '\0';	/* no newline: the whole line fits the buffer */
	write_lease(text);
	free(text);
	assert_int_equal(agent_lease_read(path, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer than 1024 bytes"));
}

static void
long_foreign_line_skipped(void **state)
{
	struct agent_lease l;
	size_t n = 10000, i;
	char *text = malloc(n + 64);

	(void)state;
	assert_non_null(text);
	strcpy(text, "LS_COLORS=");
	for (i = 10; i < n; i++)
		text[i] = 'x';
	strcpy(text + n, "\nopt125=" "0000d83d0401024142" "\n");
	write_lease(text);
	free(text);
	assert_int_equal(agent_lease_read(path, &l, err, sizeof(err)), 1);
	assert_int_equal(l.opt125_len, 9);
}

static void
bad_domain(void **state)
{
	struct agent_lease l;

	(void)state;
	write_lease("domain=exa mple\n");
	assert_int_equal(agent_lease_read(path, &l, err, sizeof(err)), 0);
	assert_string_equal(l.domain, "exa");
	teardown(NULL);
	write_lease("domain=-bad-.lan\n");
	assert_int_equal(agent_lease_read(path, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: domain is not a host name"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(valid, teardown),
		cmocka_unit_test_teardown(upper_case_hex_no_newline, teardown),
		cmocka_unit_test_teardown(missing_key, teardown),
		cmocka_unit_test_teardown(missing_file, teardown),
		cmocka_unit_test_teardown(odd_length, teardown),
		cmocka_unit_test_teardown(bad_hex_char, teardown),
		cmocka_unit_test_teardown(empty_value, teardown),
		cmocka_unit_test_teardown(over_long_line, teardown),
		cmocka_unit_test_teardown(payload_over_max, teardown),
		cmocka_unit_test_teardown(long_foreign_line_skipped, teardown),
		cmocka_unit_test_teardown(bad_domain, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
