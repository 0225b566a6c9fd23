/*
 * fuzz_proto: the signer's message decoder (casvc/proto.c, proto_decode,
 * which proto_recv runs on every record from signer.sock and admin.sock).
 * One input is one record: decode it as a request and as a response.  A
 * request that carries a "csr" string goes on through the checks the signer
 * makes on it before any key is used (policy_parse_csr, policy_check_csr),
 * as the signer's server.c does.
 *
 * Beyond "no crash, no leak": a refused record has a reason, an accepted
 * one has the member its kind needs, and an accepted message sent again
 * (json_dumps, as proto_send does) is accepted again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "policy.h"
#include "proto.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_proto: invariant failed: %s (line %d)\n", \
	    #cond, __LINE__); abort(); } } while (0)

static const char *const domains[] = { "home.arpa" };

static void
check_csr(const char *csr)
{
	struct policy pol = { "iotca", domains, 1, 0, 90 };
	struct csr_request cr;
	char reason[512];
	X509_REQ *req;

	reason[0] = '\0';
	if ((req = policy_parse_csr((const unsigned char *)csr, strlen(csr),
	    reason, sizeof(reason))) == NULL) {
		CHECK(reason[0] != '\0');
		return;
	}
	if (policy_check_csr(&pol, req, &cr, reason, sizeof(reason)) != POLICY_OK)
		CHECK(reason[0] != '\0');
	X509_REQ_free(req);
}

static void
decode(const uint8_t *data, size_t size, int want_response)
{
	char reason[256], *again;
	json_t *msg, *msg2;
	const char *csr;

	reason[0] = '\0';
	if (proto_decode(data, size, want_response, &msg, reason,
	    sizeof(reason)) != PROTO_OK) {
		CHECK(msg == NULL && reason[0] != '\0');
		return;
	}
	CHECK(json_is_object(msg));
	if (want_response)
		CHECK(json_is_boolean(json_object_get(msg, "ok")));
	else {
		CHECK(json_is_string(json_object_get(msg, "op")));
		if ((csr = json_string_value(json_object_get(msg, "csr"))) != NULL)
			check_csr(csr);
	}
	/* What was accepted survives a round trip through proto_send's form. */
	if ((again = json_dumps(msg, JSON_COMPACT)) != NULL &&
	    strlen(again) <= PROTO_MAX_MSG) {
		CHECK(proto_decode(again, strlen(again), want_response, &msg2,
		    reason, sizeof(reason)) == PROTO_OK);
		CHECK(json_equal(msg, msg2));
		json_decref(msg2);
	}
	free(again);
	json_decref(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode(data, size, 0);
	decode(data, size, 1);
	ERR_clear_error();
	return 0;
}
