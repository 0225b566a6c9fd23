/*
 * proto: the messages on signer.sock and admin.sock (casvc/PROTOCOL.md).
 * One request or response is one SOCK_SEQPACKET record holding one JSON
 * object of at most PROTO_MAX_MSG bytes.  Records that are larger, empty,
 * not JSON, not an object, or lack a string "op" are refused by proto_recv
 * with a reason fit for the error reply.
 */
#ifndef IOTCA_PROTO_H
#define IOTCA_PROTO_H

#include <stddef.h>
#include <jansson.h>

#define PROTO_VERSION	1
#define PROTO_MAX_MSG	(64 * 1024)

/* Error codes carried in {"ok":false,"error":CODE,"reason":TEXT}. */
#define PROTO_E_MALFORMED	"malformed"	/* not a valid message */
#define PROTO_E_TOO_LARGE	"tooLarge"
#define PROTO_E_UNAUTHORIZED	"unauthorized"	/* peer not allowed on this socket/op */
#define PROTO_E_UNKNOWN_OP	"unknownOp"
#define PROTO_E_BAD_REQUEST	"badRequest"	/* op known, arguments wrong */
#define PROTO_E_NOT_FOUND	"notFound"
#define PROTO_E_INTERNAL	"internal"
/* policy refusals carry the ACME type: badCSR, badSignatureAlgorithm,
 * rejectedIdentifier (a CSR's key is badCSR: badPublicKey is the JWS's) */

enum proto_rc {
	PROTO_OK = 0,
	PROTO_EOF = 1,		/* peer closed */
	PROTO_ERR = -1,		/* system error: errno set, connection unusable */
	PROTO_BAD = -2,		/* bad record: reason written, connection usable */
};

/* Send one JSON object as a record. */
int		 proto_send(int fd, const json_t *msg);
/* Send a reply.  One that cannot be a record (over PROTO_MAX_MSG, or
 * refused by the kernel with EMSGSIZE) is replaced by a tooLarge error, so
 * a peer never waits for a reply that will not come.  0: sent; 1: replaced
 * (*size is the size it had); -1: errno set. */
int		 proto_send_reply(int fd, const json_t *msg, size_t *size);
/* Receive one record; on PROTO_OK *out is a JSON object with a string "op"
 * (requests) or a boolean "ok" (responses, when want_response). */
enum proto_rc	 proto_recv(int fd, int want_response, json_t **out,
		    char *reason, size_t reasonlen);
/* The checks of proto_recv on a record already in memory (len bytes, not
 * NUL-terminated): pure, for the fuzz target and any other transport. */
enum proto_rc	 proto_decode(const void *buf, size_t len, int want_response,
		    json_t **out, char *reason, size_t reasonlen);

/* Build replies.  The error one never echoes request data back. */
json_t		*proto_error(const char *code, const char *reason);
json_t		*proto_ok(void);

/* Fill a Unix socket address for path; -1 if the path does not fit. */
struct sockaddr_un;
int		 proto_sockaddr(const char *path, struct sockaddr_un *sun,
		    char *err, size_t errlen);

/* Client side: connect to a socket path, send req, wait for the response. */
int		 proto_connect(const char *path, char *err, size_t errlen);
json_t		*proto_call(const char *path, const json_t *req,
		    char *err, size_t errlen);
/* The same, giving up after secs seconds of silence (an HTTP request
 * waiting on the signer should not wait a minute). */
json_t		*proto_call_timeout(const char *path, const json_t *req,
		    int secs, char *err, size_t errlen);

#endif
