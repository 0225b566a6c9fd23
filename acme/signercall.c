/*
 * signercall: one request/response pair on signer.sock with a short timeout
 * (see signercall.h), on casvc's proto_call_timeout.
 */
#include "proto.h"
#include "signercall.h"

json_t *
signer_call(const char *sock, const json_t *req, char *err, size_t errlen)
{
	return proto_call_timeout(sock, req, SIGNER_TIMEOUT_SEC, err, errlen);
}
