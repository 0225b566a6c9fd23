/*
 * hostile: a front end that has been taken over.  It speaks the signer
 * protocol (casvc/PROTOCOL.md) on signer.sock, as iotca-acmed's user would,
 * and asks for what an attacker wants.  The signer must refuse each.
 *
 *   hostile SOCKET public ACCOUNT          issue for example.org
 *   hostile SOCKET device DEVICE ACCOUNT   issue for DEVICE.local (plain CSR)
 *   hostile SOCKET longlived DEVICE ACCOUNT  the same with days = 3650
 *   hostile SOCKET ca DEVICE ACCOUNT       a CSR asking for CA:TRUE and keyCertSign
 *   hostile SOCKET approve ID              the operator's "approve" op
 *
 * Prints one line: "issued SERIAL", "pending REQUEST-ID" or "refused CODE",
 * and for an issued certificate whether it is a CA ("ca=0" or "ca=1").
 * Exit 0 when the signer answered (whatever it said), 1 when it could not be
 * asked, 2 on usage.  The test judges the answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "proto.h"

static void
usage(void)
{
	fprintf(stderr, "usage: hostile SOCKET public|device|longlived|ca "
	    "DEVICE ACCOUNT | hostile SOCKET public ACCOUNT | "
	    "hostile SOCKET approve ID\n");
	exit(2);
}

static int
add_ext(STACK_OF(X509_EXTENSION) *exts, int nid, const char *value)
{
	X509_EXTENSION *x;

	if ((x = X509V3_EXT_conf_nid(NULL, NULL, nid, value)) == NULL)
		return -1;
	if (sk_X509_EXTENSION_push(exts, x) <= 0) {
		X509_EXTENSION_free(x);
		return -1;
	}
	return 0;
}

/* A P-384 CSR for cn with san; with ca, asking for CA powers too.  PEM,
 * malloc'd; NULL on failure. */
static char *
make_csr(const char *cn, const char *san, int ca)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	BIO *bio = NULL;
	BUF_MEM *mem;
	char *pem = NULL;

	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384")) == NULL ||
	    (req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
	    MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1 ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    add_ext(exts, NID_subject_alt_name, san) == -1)
		goto out;
	if (ca && (add_ext(exts, NID_basic_constraints, "critical,CA:TRUE") ==
	    -1 || add_ext(exts, NID_key_usage, "critical,keyCertSign,cRLSign")
	    == -1))
		goto out;
	if (X509_REQ_add_extensions(req, exts) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha384()) <= 0 ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_REQ(bio, req) != 1)
		goto out;
	BIO_get_mem_ptr(bio, &mem);
	if ((pem = malloc(mem->length + 1)) == NULL)
		goto out;
	memcpy(pem, mem->data, mem->length);
	pem[mem->length] = '\0';
out:
	BIO_free(bio);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return pem;
}

/* Is the issued leaf a CA?  -1 if it cannot be read. */
static int
leaf_is_ca(const char *pem)
{
	BIO *bio;
	X509 *x;
	int ca;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return -1;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (x == NULL)
		return -1;
	/* X509_check_ca: nonzero for anything that may sign certificates. */
	ca = X509_check_ca(x) != 0;
	X509_free(x);
	return ca;
}

static int
report(json_t *resp)
{
	const char *code, *pem;
	json_t *id;

	if (json_is_true(json_object_get(resp, "ok"))) {
		pem = json_string_value(json_object_get(resp, "pem"));
		if (pem == NULL) {
			printf("ok\n");
			return 0;
		}
		printf("issued %s ca=%d\n", json_string_value(json_object_get(
		    resp, "serial")), leaf_is_ca(pem));
		return 0;
	}
	code = json_string_value(json_object_get(resp, "error"));
	if (code == NULL)
		code = "?";
	/* A refusal must carry no certificate whatever its code. */
	if (json_object_get(resp, "pem") != NULL) {
		printf("refused %s but sent a certificate\n", code);
		return 0;
	}
	id = json_object_get(resp, "request");
	if (strcmp(code, "approvalPending") == 0 && json_is_integer(id))
		printf("pending %lld\n", (long long)json_integer_value(id));
	else
		printf("refused %s\n", code);
	return 0;
}

int
main(int argc, char *argv[])
{
	char cn[80], san[200], err[512];
	const char *sock, *what, *device, *account;
	json_t *req = NULL, *resp;
	char *csr = NULL;
	int rc;

	if (argc < 4)
		usage();
	sock = argv[1];
	what = argv[2];
	if (strcmp(what, "approve") == 0) {
		if (argc != 4)
			usage();
		req = json_pack("{s:s, s:I}", "op", "approve", "id",
		    (json_int_t)strtoll(argv[3], NULL, 10));
	} else if (strcmp(what, "public") == 0) {
		if (argc != 4)
			usage();
		account = argv[3];
		if ((csr = make_csr("www", "DNS:www.example.org", 0)) == NULL)
			goto nocsr;
		req = json_pack("{s:s, s:s, s:s}", "op", "issue", "csr", csr,
		    "account", account);
	} else {
		if (argc != 5)
			usage();
		device = argv[3];
		account = argv[4];
		if (strcmp(what, "device") != 0 &&
		    strcmp(what, "longlived") != 0 && strcmp(what, "ca") != 0)
			usage();
		snprintf(cn, sizeof(cn), "%s", device);
		snprintf(san, sizeof(san), "DNS:%s.local", device);
		if ((csr = make_csr(cn, san, strcmp(what, "ca") == 0)) == NULL)
			goto nocsr;
		if (strcmp(what, "longlived") == 0)
			req = json_pack("{s:s, s:s, s:s, s:i}", "op", "issue",
			    "csr", csr, "account", account, "days", 3650);
		else
			req = json_pack("{s:s, s:s, s:s}", "op", "issue",
			    "csr", csr, "account", account);
	}
	if (req == NULL) {
		fprintf(stderr, "hostile: out of memory\n");
		free(csr);
		return 1;
	}
	resp = proto_call(sock, req, err, sizeof(err));
	json_decref(req);
	free(csr);
	if (resp == NULL) {
		fprintf(stderr, "hostile: %s\n", err);
		return 1;
	}
	rc = report(resp);
	json_decref(resp);
	return rc;
nocsr:
	fprintf(stderr, "hostile: cannot make a CSR\n");
	return 1;
}
