/*
 * Socket robustness of a running iotca-signer: every bad record gets an
 * error reply naming what was wrong, and the daemon goes on serving.
 *
 * usage: test_signer_socket SIGNER_SOCKET ADMIN_SOCKET
 * Run as root: the unauthorised-peer case drops to uid 65534 in a child.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "proto.h"

static const char *signer_path, *admin_path;

static int
connect_to(const char *path)
{
	char err[256];
	int fd = proto_connect(path, err, sizeof(err));

	if (fd == -1)
		fail_msg("%s", err);
	return fd;
}

/* Send raw bytes as one record and return the parsed reply. */
static json_t *
exchange_raw(int fd, const void *buf, size_t len)
{
	char reason[256];
	json_t *resp = NULL;

	assert_int_equal(send(fd, buf, len, 0), (ssize_t)len);
	assert_int_equal(proto_recv(fd, 1, &resp, reason, sizeof(reason)),
	    PROTO_OK);
	return resp;
}

static void
assert_error(json_t *resp, const char *code, const char *reason_part)
{
	const char *reason = json_string_value(json_object_get(resp, "reason"));

	assert_true(json_is_false(json_object_get(resp, "ok")));
	assert_string_equal(json_string_value(json_object_get(resp, "error")),
	    code);
	assert_non_null(reason);
	if (reason_part != NULL && strstr(reason, reason_part) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", reason, reason_part);
	json_decref(resp);
}

/* The signer still answers a good request, on the same connection. */
static void
assert_serving(int fd)
{
	const char *req = "{\"op\":\"status\"}";
	json_t *resp = exchange_raw(fd, req, strlen(req));

	assert_true(json_is_true(json_object_get(resp, "ok")));
	json_decref(resp);
}

static void
test_garbage(void **state)
{
	static const unsigned char junk[] = { 0x00, 0xff, 0x13, 0x37, 0x80,
	    '{', 0x01, 0xfe };
	int fd = connect_to(signer_path);

	assert_error(exchange_raw(fd, junk, sizeof(junk)), "malformed",
	    "not JSON");
	assert_serving(fd);
	close(fd);
}

static void
test_truncated(void **state)
{
	const char *cut = "{\"op\":\"issue\",\"csr\":\"-----BEGIN CERT";
	int fd = connect_to(admin_path);

	assert_error(exchange_raw(fd, cut, strlen(cut)), "malformed",
	    "not JSON");
	assert_serving(fd);
	close(fd);
}

static void
test_oversized(void **state)
{
	size_t len = PROTO_MAX_MSG + 4096;
	char *big = malloc(len);
	int fd = connect_to(signer_path);

	assert_non_null(big);
	memset(big, ' ', len);
	memcpy(big, "{\"op\":\"status\",\"pad\":\"", 22);
	big[len - 2] = '"';
	big[len - 1] = '}';
	assert_error(exchange_raw(fd, big, len), "tooLarge", "larger than");
	free(big);
	assert_serving(fd);
	close(fd);
}

static void
test_not_an_object(void **state)
{
	int fd = connect_to(signer_path);

	assert_error(exchange_raw(fd, "[1,2]", 5), "malformed", "not a JSON object");
	assert_error(exchange_raw(fd, "{\"op\":7}", 8), "malformed", "\"op\"");
	assert_error(exchange_raw(fd, "{\"op\":\"status\",\"op\":\"ca\"}", 26),
	    "malformed", "duplicate");
	assert_serving(fd);
	close(fd);
}

static void
test_unknown_op(void **state)
{
	const char *req = "{\"op\":\"format-disk\"}";
	int fd = connect_to(signer_path);

	assert_error(exchange_raw(fd, req, strlen(req)), "unknownOp", NULL);
	assert_serving(fd);
	close(fd);
}

static void
test_bad_arguments(void **state)
{
	const char *r1 = "{\"op\":\"revoke\",\"serial\":\"zz; DROP TABLE certs\"}";
	const char *r2 = "{\"op\":\"issue\",\"csr\":\"garbage\"}";
	const char *r3 = "{\"op\":\"issue\"}";
	int fd = connect_to(admin_path);

	assert_error(exchange_raw(fd, r1, strlen(r1)), "badRequest", "hex");
	assert_error(exchange_raw(fd, r2, strlen(r2)), "badCSR", NULL);
	assert_error(exchange_raw(fd, r3, strlen(r3)), "badRequest", "csr");
	assert_serving(fd);
	close(fd);
}

/* The front end's socket cannot do an operator's work. */
static void
test_frontend_cannot_admin(void **state)
{
	const char *r1 = "{\"op\":\"certs\"}";
	const char *r2 = "{\"op\":\"approve\",\"id\":1}";
	const char *r3 = "{\"op\":\"revoke\",\"serial\":\"01\"}";
	const char *r4 = "{\"op\":\"revoke_approval\",\"device_id\":\"x\"}";
	int fd = connect_to(signer_path);

	assert_error(exchange_raw(fd, r1, strlen(r1)), "unauthorized",
	    "not allowed on this socket");
	assert_error(exchange_raw(fd, r2, strlen(r2)), "unauthorized",
	    "not allowed on this socket");
	assert_error(exchange_raw(fd, r4, strlen(r4)), "unauthorized",
	    "not allowed on this socket");
	/* The front end revokes only for an ACME account it names. */
	assert_error(exchange_raw(fd, r3, strlen(r3)), "badRequest", "account");
	assert_serving(fd);
	close(fd);
}

/* An empty record reads as end of stream: the signer closes, and lives. */
static void
test_empty_record(void **state)
{
	int fd = connect_to(signer_path), fd2;
	char c;

	assert_int_equal(send(fd, "", 0, 0), 0);
	assert_int_equal(recv(fd, &c, 1, 0), 0);
	close(fd);
	fd2 = connect_to(signer_path);
	assert_serving(fd2);
	close(fd2);
}

/* A peer closing mid-conversation with a request in flight. */
static void
test_hangup(void **state)
{
	const char *req = "{\"op\":\"certs\"}";
	int fd = connect_to(admin_path), fd2;

	assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	close(fd);
	fd2 = connect_to(admin_path);
	assert_serving(fd2);
	close(fd2);
}

/*
 * A uid that is not in the configured lists is refused by SO_PEERCRED even
 * when the file mode lets it connect (group root here).
 */
static void
test_unauthorised_uid(void **state)
{
	int status;
	pid_t pid;

	if (geteuid() != 0)
		skip();
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		gid_t g = 0;
		char reason[256];
		json_t *resp = NULL;
		int fd, ok;

		if (setgroups(1, &g) == -1 || setgid(0) == -1 ||
		    setuid(65534) == -1)
			_exit(10);
		if ((fd = proto_connect(admin_path, reason, sizeof(reason))) == -1)
			_exit(11);
		/* The refusal arrives unasked, then the signer hangs up. */
		if (proto_recv(fd, 1, &resp, reason, sizeof(reason)) != PROTO_OK)
			_exit(12);
		ok = json_is_false(json_object_get(resp, "ok")) &&
		    strcmp(json_string_value(json_object_get(resp, "error")),
		    "unauthorized") == 0;
		_exit(ok ? 0 : 13);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	{
		int fd = connect_to(admin_path);

		assert_serving(fd);
		close(fd);
	}
}

/* Connections beyond the limit ([signer] frontend_connections, 320 by
 * default) are answered and closed; earlier ones live. */
static void
test_connection_flood(void **state)
{
	enum { N = 400 };
	int fds[N], i, refused = 0;

	for (i = 0; i < N; i++)
		fds[i] = connect_to(signer_path);
	usleep(500000);	/* let the signer accept them all */
	for (i = 0; i < N; i++) {
		struct timeval tv = { 0, 10000 };
		char reason[256];
		json_t *resp = NULL;

		if (setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv,
		    sizeof(tv)) == -1)
			fail();
		if (proto_recv(fds[i], 1, &resp, reason, sizeof(reason)) ==
		    PROTO_OK) {
			refused++;
			json_decref(resp);
		}
	}
	assert_true(refused > 0);
	for (i = 0; i < N; i++)
		close(fds[i]);
	i = connect_to(signer_path);
	assert_serving(i);
	close(i);
}

/*
 * The reply path itself: a reply that cannot be a record, by its size or
 * by the kernel's refusal (EMSGSIZE over a small send buffer), reaches the
 * peer as tooLarge, never as nothing.
 */
static void
test_reply_too_large(void **state)
{
	static const size_t sizes[] = { PROTO_MAX_MSG + 1, 20000 };
	char reason[256], *big;
	json_t *msg, *resp;
	size_t i, size;
	int sv[2], sndbuf = 4096;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
		if (i == 1)
			assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF,
			    &sndbuf, sizeof(sndbuf)), 0);
		assert_non_null(big = malloc(sizes[i] + 1));
		memset(big, 'x', sizes[i]);
		big[sizes[i]] = '\0';
		assert_non_null(msg = json_pack("{s:b, s:s}", "ok", 1, "pem",
		    big));
		free(big);
		assert_int_equal(proto_send_reply(sv[0], msg, &size), 1);
		assert_true(size > sizes[i]);
		json_decref(msg);
		assert_int_equal(proto_recv(sv[1], 1, &resp, reason,
		    sizeof(reason)), PROTO_OK);
		assert_false(json_is_true(json_object_get(resp, "ok")));
		assert_string_equal(json_string_value(json_object_get(resp,
		    "error")), PROTO_E_TOO_LARGE);
		json_decref(resp);
		/* A reply that fits goes as it is. */
		assert_non_null(msg = proto_ok());
		assert_int_equal(proto_send_reply(sv[0], msg, &size), 0);
		json_decref(msg);
		assert_int_equal(proto_recv(sv[1], 1, &resp, reason,
		    sizeof(reason)), PROTO_OK);
		assert_true(json_is_true(json_object_get(resp, "ok")));
		json_decref(resp);
		close(sv[0]);
		close(sv[1]);
	}
}

int
main(int argc, char *argv[])
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_not_an_object),
		cmocka_unit_test(test_unknown_op),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_frontend_cannot_admin),
		cmocka_unit_test(test_empty_record),
		cmocka_unit_test(test_hangup),
		cmocka_unit_test(test_unauthorised_uid),
		cmocka_unit_test(test_connection_flood),
		cmocka_unit_test(test_reply_too_large),
	};

	if (argc != 3) {
		fprintf(stderr, "usage: test_signer_socket SIGNER_SOCKET ADMIN_SOCKET\n");
		return 2;
	}
	signer_path = argv[1];
	admin_path = argv[2];
	return cmocka_run_group_tests_name("signer-socket", tests, NULL, NULL);
}
