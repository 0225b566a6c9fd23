/*
 * signercall: one request/response pair on signer.sock with a short timeout
 * (see signercall.h).  Builds on casvc's proto_connect/send/recv.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "signercall.h"

json_t *
signer_call(const char *sock, const json_t *req, char *err, size_t errlen)
{
	struct timeval tv = { SIGNER_TIMEOUT_SEC, 0 };
	char reason[256];
	json_t *resp = NULL;
	int fd;

	if ((fd = proto_connect(sock, err, errlen)) == -1)
		return NULL;
	/* proto_connect waits a minute; an HTTP client should not. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1) {
		snprintf(err, errlen, "setsockopt: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (proto_send(fd, req) == -1) {
		snprintf(err, errlen, "send to signer: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	switch (proto_recv(fd, 1, &resp, reason, sizeof(reason))) {
	case PROTO_OK:
		break;
	case PROTO_EOF:
		snprintf(err, errlen, "the signer closed the connection");
		break;
	case PROTO_BAD:
		snprintf(err, errlen, "bad response from the signer: %s", reason);
		break;
	case PROTO_ERR:
		snprintf(err, errlen, "receive from signer: %s",
		    errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" :
		    strerror(errno));
		break;
	}
	close(fd);
	return resp;
}
