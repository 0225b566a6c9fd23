/*
 * signercall: iotca-acmed's requests to the signer over signer.sock
 * (casvc/PROTOCOL.md), each with a bounded wait so a slow or dead signer
 * cannot hold an HTTP request for long.
 */
#ifndef IOTCA_SIGNERCALL_H
#define IOTCA_SIGNERCALL_H

#include <stddef.h>
#include <jansson.h>

#define SIGNER_TIMEOUT_SEC	15

/*
 * Send req and return the signer's response object (with boolean "ok"), or
 * NULL with err set when the signer could not be reached or did not answer
 * in time.
 */
json_t	*signer_call(const char *sock, const json_t *req, char *err,
	    size_t errlen);

#endif
