/*
 * fuzz_est: iotca-est-ra's body decoder (provisioning/est_msg.c) on hostile
 * bytes.  One input is what an EST client sends to simpleenroll:
 *
 *     Content-Type value          first line
 *     Content-Transfer-Encoding   second line (read and ignored, as RFC 8951
 *                                 says a server may)
 *     BODY                        the rest
 *
 * The body goes through est_csr_decode and est_csr_check as the server runs
 * them, then through the signer's own policy_check_csr, as the RA's CSR
 * would at the signer.  Asserted beyond "no crash, no leak": a refusal is
 * 400 or 415 with a reason; an accepted CSR has a SHA-256 key of 64 hex
 * digits over exactly the bytes kept, and 1 to EST_MAX_NAMES names, each a
 * valid lower-case host name within the subtree and not under .local; a
 * policy refusal has a reason.  The body's base64, when it decodes, encodes
 * and decodes again to the same bytes.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "est_msg.h"
#include "policy.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_est: invariant failed: %s (line %d)\n", \
	    #cond, __LINE__); abort(); } } while (0)

#define SUBTREE	"est.home.arpa"

static const char *const domains[] = { "home.arpa", "est.home.arpa" };

/* The next line of the input (without "\n"), malloc'd; *pos moves past it. */
static char *
next_line(const uint8_t *data, size_t size, size_t *pos)
{
	size_t start = *pos, end = start;
	char *s;

	while (end < size && data[end] != '\n')
		end++;
	if ((s = malloc(end - start + 1)) == NULL)
		abort();
	memcpy(s, data + start, end - start);
	s[end - start] = '\0';
	*pos = end < size ? end + 1 : end;
	return s;
}

static void
check_accepted(struct est_csr *c)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char hex[65];
	size_t i, j;

	CHECK(c->req != NULL && c->der != NULL && c->derlen > 0);
	CHECK(strlen(c->hash) == EST_HASH_HEX_LEN);
	CHECK(EVP_Digest(c->der, c->derlen, md, &mdlen, EVP_sha256(), NULL) == 1);
	for (i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	CHECK(strcmp(hex, c->hash) == 0);
	CHECK(c->nnames >= 1 && c->nnames <= EST_MAX_NAMES);
	for (i = 0; i < c->nnames; i++) {
		CHECK(est_valid_dns_name(c->names[i]));
		CHECK(policy_name_within(c->names[i], SUBTREE));
		CHECK(!policy_name_within(c->names[i], "local"));
		for (j = 0; c->names[i][j] != '\0'; j++)
			CHECK(!isupper((unsigned char)c->names[i][j]));
	}
}

static void
check_policy(X509_REQ *req)
{
	struct policy pol = {
		.server_name = "iotca",
		.domains = domains,
		.ndomains = 2,
		.strict_cn = 0,
		.max_days = 90,
	};
	struct csr_request cr;
	char reason[512];

	memset(&cr, 0, sizeof(cr));
	reason[0] = '\0';
	if (policy_check_csr(&pol, req, &cr, reason, sizeof(reason)) != POLICY_OK)
		CHECK(reason[0] != '\0');
}

static void
check_base64(const char *body, size_t len)
{
	unsigned char *bin, *again;
	size_t binlen, againlen, enclen;
	char reason[160], *enc;

	if (est_b64_decode(body, len, &bin, &binlen, reason, sizeof(reason)) == -1) {
		CHECK(reason[0] != '\0' && bin == NULL);
		return;
	}
	CHECK((enc = est_b64_encode(bin, binlen, &enclen)) != NULL);
	CHECK(strlen(enc) == enclen);
	CHECK(est_b64_decode(enc, enclen, &again, &againlen, reason,
	    sizeof(reason)) == 0);
	CHECK(againlen == binlen && memcmp(again, bin, binlen) == 0);
	free(again);
	free(enc);
	free(bin);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct est_csr csr;
	char *ctype, *cte, reason[512];
	size_t pos = 0;
	const char *body;
	int st;

	if (size > 65536)
		return 0;
	ctype = next_line(data, size, &pos);
	cte = next_line(data, size, &pos);
	body = (const char *)data + pos;
	reason[0] = '\0';
	st = est_csr_decode(body, size - pos, ctype, &csr, reason, sizeof(reason));
	if (st != 0) {
		CHECK(st == 400 || st == 415);
		CHECK(reason[0] != '\0');
		CHECK(csr.req == NULL && csr.der == NULL);
	} else {
		CHECK(est_media_type_is(ctype, "application/pkcs10"));
		reason[0] = '\0';
		st = est_csr_check(&csr, SUBTREE, reason, sizeof(reason));
		if (st == 0)
			check_accepted(&csr);
		else
			CHECK(st == 400 && reason[0] != '\0');
		check_policy(csr.req);
	}
	est_csr_clear(&csr);
	check_base64(body, size - pos);
	free(ctype);
	free(cte);
	return 0;
}
