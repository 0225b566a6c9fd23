/*
 * proto: one JSON object per SOCK_SEQPACKET record (see proto.h, PROTOCOL.md).
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

/* How long a client waits for the signer: a slow TPM signs in ~0.2 s. */
#define PROTO_CALL_TIMEOUT_SEC	60

static int
send_record(int fd, const char *buf, size_t len)
{
	ssize_t n;

	if (len > PROTO_MAX_MSG) {
		errno = EMSGSIZE;
		return -1;
	}
	do
		n = send(fd, buf, len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != len) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

int
proto_send(int fd, const json_t *msg)
{
	char *buf;
	int rc;

	if ((buf = json_dumps(msg, JSON_COMPACT)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rc = send_record(fd, buf, strlen(buf));
	free(buf);
	return rc;
}

int
proto_send_reply(int fd, const json_t *msg, size_t *size)
{
	char *buf, reason[128];
	json_t *e;
	int rc;

	*size = 0;
	if ((buf = json_dumps(msg, JSON_COMPACT)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	*size = strlen(buf);
	rc = send_record(fd, buf, *size);
	free(buf);
	if (rc == 0 || errno != EMSGSIZE)
		return rc;
	/* Never silence: the peer learns why, and may ask for less. */
	snprintf(reason, sizeof(reason), "the reply (%zu bytes) is larger "
	    "than a record (%d bytes)", *size, PROTO_MAX_MSG);
	if ((e = proto_error(PROTO_E_TOO_LARGE, reason)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rc = proto_send(fd, e);
	json_decref(e);
	return rc == 0 ? 1 : -1;
}

static enum proto_rc
bad(char *reason, size_t reasonlen, const char *what)
{
	snprintf(reason, reasonlen, "%s", what);
	return PROTO_BAD;
}

enum proto_rc
proto_recv(int fd, int want_response, json_t **out, char *reason,
    size_t reasonlen)
{
	struct msghdr mh;
	struct iovec iov;
	enum proto_rc rc;
	char *buf;
	ssize_t n;

	*out = NULL;
	if ((buf = malloc(PROTO_MAX_MSG)) == NULL)
		return PROTO_ERR;
	iov.iov_base = buf;
	iov.iov_len = PROTO_MAX_MSG;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	do
		n = recvmsg(fd, &mh, 0);
	while (n == -1 && errno == EINTR);
	if (n == -1) {
		free(buf);
		return PROTO_ERR;
	}
	if (n == 0 && !(mh.msg_flags & MSG_TRUNC)) {
		/* A zero-length record and a close look alike on SEQPACKET. */
		free(buf);
		return PROTO_EOF;
	}
	if (mh.msg_flags & MSG_TRUNC) {
		free(buf);
		snprintf(reason, reasonlen, "message larger than %d bytes",
		    PROTO_MAX_MSG);
		return PROTO_BAD;
	}
	rc = proto_decode(buf, (size_t)n, want_response, out, reason,
	    reasonlen);
	free(buf);
	return rc;
}

enum proto_rc
proto_decode(const void *buf, size_t len, int want_response, json_t **out,
    char *reason, size_t reasonlen)
{
	json_error_t jerr;
	json_t *obj;

	*out = NULL;
	if (len > PROTO_MAX_MSG) {
		snprintf(reason, reasonlen, "message larger than %d bytes",
		    PROTO_MAX_MSG);
		return PROTO_BAD;
	}
	obj = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL) {
		snprintf(reason, reasonlen, "not JSON: %s at byte %d",
		    jerr.text, jerr.position);
		return PROTO_BAD;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		return bad(reason, reasonlen, "message is not a JSON object");
	}
	if (want_response ? !json_is_boolean(json_object_get(obj, "ok")) :
	    !json_is_string(json_object_get(obj, "op"))) {
		json_decref(obj);
		return bad(reason, reasonlen, want_response ?
		    "response has no boolean \"ok\"" :
		    "request has no string \"op\"");
	}
	*out = obj;
	return PROTO_OK;
}

json_t *
proto_error(const char *code, const char *reason)
{
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", code,
	    "reason", reason);
}

json_t *
proto_ok(void)
{
	return json_pack("{s:b}", "ok", 1);
}

int
proto_sockaddr(const char *path, struct sockaddr_un *sun, char *err,
    size_t errlen)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -1;
	}
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

static int
connect_timeout(const char *path, int secs, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct timeval tv = { secs, 0 };
	int fd;

	if (proto_sockaddr(path, &sun, err, errlen) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1) {
		snprintf(err, errlen, "setsockopt: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(err, errlen, "cannot connect to %s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
proto_connect(const char *path, char *err, size_t errlen)
{
	return connect_timeout(path, PROTO_CALL_TIMEOUT_SEC, err, errlen);
}

json_t *
proto_call(const char *path, const json_t *req, char *err, size_t errlen)
{
	return proto_call_timeout(path, req, PROTO_CALL_TIMEOUT_SEC, err,
	    errlen);
}

json_t *
proto_call_timeout(const char *path, const json_t *req, int secs, char *err,
    size_t errlen)
{
	char reason[256];
	json_t *resp = NULL;
	int fd;

	if ((fd = connect_timeout(path, secs, err, errlen)) == -1)
		return NULL;
	if (proto_send(fd, req) == -1) {
		snprintf(err, errlen, "send to %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	switch (proto_recv(fd, 1, &resp, reason, sizeof(reason))) {
	case PROTO_OK:
		break;
	case PROTO_EOF:
		snprintf(err, errlen, "%s closed the connection", path);
		break;
	case PROTO_BAD:
		snprintf(err, errlen, "bad response from %s: %s", path, reason);
		break;
	case PROTO_ERR:
		snprintf(err, errlen, "receive from %s: %s", path,
		    errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" :
		    strerror(errno));
		break;
	}
	close(fd);
	return resp;
}
