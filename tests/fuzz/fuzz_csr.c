/*
 * fuzz_csr: the signer's CSR policy (casvc/policy.c) on hostile bytes.  One
 * input is one CSR as PEM or DER, as a front end passes it on: parse it,
 * then check it in relaxed and strict CN mode.  The input as text also goes
 * through the identifier checks newOrder runs (DNS name, IP text).
 *
 * Beyond "no crash, no leak": whatever policy_check_csr accepts must pass
 * the per-name checks on its own (every DNS name valid and led by the
 * device ID, every address allowed), and a refusal must have a reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "policy.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_csr: invariant failed: %s (line %d)\n", \
	    #cond, __LINE__); abort(); } } while (0)

static const char *const domains[] = { "home.arpa", "lan.example" };

static void
check_accepted(const struct policy *pol, const struct csr_request *cr)
{
	char canon[POLICY_MAX_NAME_LEN + 1], reason[256];
	size_t i, n;

	n = strlen(cr->device_id);
	CHECK(n > 0 && n <= POLICY_MAX_LABEL_LEN);
	CHECK(cr->ndns <= POLICY_MAX_NAMES && cr->nip <= POLICY_MAX_NAMES);
	for (i = 0; i < cr->ndns; i++) {
		CHECK(policy_check_dns(pol, cr->dns[i], canon, sizeof(canon),
		    reason, sizeof(reason)) == POLICY_OK);
		CHECK(strcmp(canon, cr->dns[i]) == 0);
		CHECK(strncmp(cr->dns[i], cr->device_id, n) == 0 &&
		    cr->dns[i][n] == '.');
	}
	for (i = 0; i < cr->nip; i++) {
		CHECK(cr->iplen[i] == 4 || cr->iplen[i] == 16);
		CHECK(policy_check_ip(cr->ip[i], cr->iplen[i], reason,
		    sizeof(reason)) == POLICY_OK);
	}
}

static void
check_csr(X509_REQ *req, int strict)
{
	struct policy pol = {
		.server_name = "iotca",
		.domains = domains,
		.ndomains = 2,
		.strict_cn = strict,
		.max_days = 90,
	};
	struct csr_request cr;
	enum policy_err rc;
	char reason[512];

	memset(&cr, 0, sizeof(cr));
	reason[0] = '\0';
	rc = policy_check_csr(&pol, req, &cr, reason, sizeof(reason));
	if (rc == POLICY_OK)
		check_accepted(&pol, &cr);
	else {
		CHECK(reason[0] != '\0');
		CHECK(policy_err_type(rc) != NULL);
	}
}

static void
check_text(const uint8_t *data, size_t size)
{
	struct policy pol = { "iotca", domains, 2, 0, 90 };
	char text[POLICY_MAX_NAME_LEN + 2], canon[POLICY_MAX_NAME_LEN + 1];
	char reason[256];

	if (size >= sizeof(text))
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	if (policy_check_dns(&pol, text, canon, sizeof(canon), reason,
	    sizeof(reason)) == POLICY_OK)
		CHECK(strlen(canon) == strlen(text));
	(void)policy_check_ip_text(text, reason, sizeof(reason));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	X509_REQ *req;
	char reason[512];

	reason[0] = '\0';
	if ((req = policy_parse_csr(data, size, reason, sizeof(reason))) == NULL)
		CHECK(reason[0] != '\0');
	else {
		check_csr(req, 0);
		check_csr(req, 1);
		X509_REQ_free(req);
	}
	check_text(data, size);
	ERR_clear_error();
	return 0;
}
