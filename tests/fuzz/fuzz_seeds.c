/*
 * fuzz_seeds: writes the generated seeds of tests/fuzz/corpus (see
 * README.md).  Keys are made afresh on each run and only public material
 * goes into a seed: signed JWS bodies (with their public JWK) and CSRs.
 * The hand-written seeds beside them are kept as they are.
 *
 *   fuzz_seeds CORPUS-DIR     writes CORPUS-DIR/{jws,csr,proto,router}/gen-*
 */
#include <sys/stat.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "jws_testutil.h"
#include "policy_testutil.h"

static const char *corpus;

static void __attribute__((noreturn))
die(const char *what)
{
	fprintf(stderr, "fuzz_seeds: %s\n", what);
	exit(1);
}

static void
put(const char *target, const char *name, const void *data, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", corpus, target);
	if (mkdir(path, 0755) == -1 && errno != EEXIST)
		die("mkdir");
	snprintf(path, sizeof(path), "%s/%s/gen-%s", corpus, target, name);
	if ((f = fopen(path, "w")) == NULL ||
	    fwrite(data, 1, len, f) != len || fclose(f) != 0)
		die(path);
}

static void
put_str(const char *target, const char *name, const char *s)
{
	if (s == NULL)
		die(name);
	put(target, name, s, strlen(s));
}

/* JSON text of obj, which is released. */
static char *
dump_new(json_t *obj)
{
	char *s = NULL;

	if (obj == NULL || (s = json_dumps(obj, JSON_COMPACT)) == NULL)
		die("JSON");
	json_decref(obj);
	return s;
}

/* ---- JWS ------------------------------------------------------------------- */

#define URL	"https://127.0.0.1:8443/acme/new-order"
#define KID	"https://127.0.0.1:8443/acme/acct/AAAAAAAAAAAAAAAAAAAAAA"
#define NONCE	"Ak2n3WgUcHnhGsbOTtsGuw"

static void
jws_seeds(void)
{
	static const char *const kinds[] = { "P-256", "P-384", "P-521",
	    "Ed25519", "RSA-2048" };
	char name[64], *s, *inner, *payload;
	EVP_PKEY *key, *newkey;
	json_t *jwk;
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if ((key = jws_test_key(kinds[i])) == NULL)
			die(kinds[i]);
		snprintf(name, sizeof(name), "jwk-%s", kinds[i]);
		put_str("jws", name, s = jws_test_sign(key, NULL, NONCE, URL,
		    NULL, "{\"termsOfServiceAgreed\":true}"));
		free(s);
		snprintf(name, sizeof(name), "kid-%s", kinds[i]);
		put_str("jws", name, s = jws_test_sign(key, NULL, NONCE, URL,
		    KID, "{\"identifiers\":[{\"type\":\"dns\","
		    "\"value\":\"dev1.local\"}]}"));
		free(s);
		snprintf(name, sizeof(name), "post-as-get-%s", kinds[i]);
		put_str("jws", name, s = jws_test_sign(key, NULL, NONCE, URL,
		    KID, ""));
		free(s);
		EVP_PKEY_free(key);
	}

	/* keyChange: an inner JWS signed by the new key inside the outer. */
	if ((key = jws_test_key("P-256")) == NULL ||
	    (newkey = jws_test_key("P-384")) == NULL ||
	    (jwk = jws_test_jwk(key)) == NULL)
		die("keys");
	if ((payload = dump_new(json_pack("{s:s, s:o}", "account", KID,
	    "oldKey", jwk))) == NULL)
		die("payload");
	if ((inner = jws_test_sign(newkey, NULL, NULL, URL, NULL, payload)) == NULL)
		die("inner");
	put_str("jws", "keychange", s = jws_test_sign(key, NULL, NONCE, URL,
	    KID, inner));
	free(s);
	/* alg and key disagree, and "none". */
	put_str("jws", "alg-mismatch", s = jws_test_sign(key, "ES384", NONCE,
	    URL, NULL, "{}"));
	free(s);
	put_str("jws", "alg-none", s = jws_test_sign(key, "none", NONCE, URL,
	    NULL, "{}"));
	free(s);
	free(inner);
	free(payload);
	EVP_PKEY_free(key);
	EVP_PKEY_free(newkey);
}

/* ---- CSRs ------------------------------------------------------------------ */

static char *
csr_pem(X509_REQ *req)
{
	BIO *b;
	char *data, *s;
	long n;

	if ((b = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509_REQ(b, req))
		die("PEM");
	n = BIO_get_mem_data(b, &data);
	if ((s = strndup(data, (size_t)n)) == NULL)
		die("oom");
	BIO_free(b);
	return s;
}

struct csr_spec {
	const char	*name, *key, *md, *cn, *san;
};

static const struct csr_spec csrs[] = {
	/* accepted */
	{ "ok-p384", "EC:P-384", "SHA384", "dev1", "DNS:dev1.local,DNS:dev1.home.arpa" },
	{ "ok-p521", "EC:P-521", "SHA512", "dev2", "DNS:dev2.local" },
	{ "ok-rsa3072", "RSA:3072", "SHA256", "dev3", "DNS:dev3.home.arpa,IP:192.168.1.20" },
	{ "ok-ip6", "EC:P-384", "SHA384", "dev4", "DNS:dev4.local,IP:fe80::1,IP:fd00::5" },
	{ "ok-nocn", "EC:P-384", "SHA384", NULL, "DNS:dev5.local" },
	/* hostile */
	{ "bad-p256", "EC:P-256", "SHA256", "dev1", "DNS:dev1.local" },
	{ "bad-rsa2048", "RSA:2048", "SHA256", "dev1", "DNS:dev1.local" },
	{ "bad-sha1", "EC:P-384", "SHA1", "dev1", "DNS:dev1.local" },
	{ "bad-ed25519", "ED25519", NULL, "dev1", "DNS:dev1.local" },
	{ "bad-explicit", "EC-EXPLICIT:P-384", "SHA384", "dev1", "DNS:dev1.local" },
	{ "bad-public", "EC:P-384", "SHA384", "www", "DNS:www.example.org" },
	{ "bad-server", "EC:P-384", "SHA384", "iotca", "DNS:iotca.local" },
	{ "bad-localhost", "EC:P-384", "SHA384", "localhost", "DNS:localhost.local" },
	{ "bad-twolabels", "EC:P-384", "SHA384", "a", "DNS:a.b.local" },
	{ "bad-mixed", "EC:P-384", "SHA384", "dev1", "DNS:dev1.local,DNS:dev2.local" },
	{ "bad-publicip", "EC:P-384", "SHA384", "dev1", "DNS:dev1.local,IP:8.8.8.8" },
	{ "bad-wildcard", "EC:P-384", "SHA384", "dev1", "DNS:*.local" },
	{ "bad-cn-fqdn", "EC:P-384", "SHA384", "dev1.example.org", "DNS:dev1.local" },
	{ "bad-nosan", "EC:P-384", "SHA384", "dev1", NULL },
	{ "bad-email", "EC:P-384", "SHA384", "dev1", "DNS:dev1.local,email:a@b.c" },
	{ "bad-uri", "EC:P-384", "SHA384", "dev1", "URI:https://dev1.local/" },
	{ "bad-upper", "EC:P-384", "SHA384", "DEV1", "DNS:DEV1.LOCAL" },
	{ "bad-nul", "EC:P-384", "SHA384", "dev1", "DNS:dev1\\x00.local" },
};

static void
csr_seeds(char **pem_out)
{
	unsigned char *der;
	X509_REQ *req;
	EVP_PKEY *key;
	char name[64], *pem;
	size_t i, len;

	for (i = 0; i < sizeof(csrs) / sizeof(csrs[0]); i++) {
		key = tu_key(csrs[i].key);
		req = tu_csr(key, csrs[i].md, csrs[i].cn, csrs[i].san);
		pem = csr_pem(req);
		snprintf(name, sizeof(name), "%s.pem", csrs[i].name);
		put_str("csr", name, pem);
		der = tu_der(req, &len);
		snprintf(name, sizeof(name), "%s.der", csrs[i].name);
		put("csr", name, der, len);
		if (i == 0)
			*pem_out = pem;
		else
			free(pem);
		OPENSSL_free(der);
		X509_REQ_free(req);
		EVP_PKEY_free(key);
	}
	key = tu_key("RSA:3072");
	req = tu_csr_pss(key, "SHA256", "dev6", "DNS:dev6.local");
	put_str("csr", "ok-pss.pem", pem = csr_pem(req));
	free(pem);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
}

/* ---- signer messages --------------------------------------------------------- */

static void
proto_seeds(const char *csr)
{
	char *s;

	put_str("proto", "issue", s = dump_new(json_pack("{s:s, s:s, s:i, "
	    "s:s}", "op", "issue", "csr", csr, "days", 30, "account",
	    "AAAAAAAAAAAAAAAAAAAAAA")));
	free(s);
	put_str("proto", "server-cert", s = dump_new(json_pack("{s:s, s:s}",
	    "op", "server_cert", "csr", csr)));
	free(s);
	put_str("proto", "issued", s = dump_new(json_pack("{s:b, s:s, s:s, "
	    "s:[s], s:I, s:s, s:s}", "ok", 1, "serial", "7F01AB", "device_id",
	    "dev1", "names", "dev1.local", "not_after", (json_int_t)1790000000,
	    "pem", csr, "chain", csr)));
	free(s);
}

/* ---- router ---------------------------------------------------------------- */

static void
router_seeds(const char *csr_pem_text)
{
	unsigned char *der;
	X509_REQ *req;
	EVP_PKEY *key;
	char *b64, *s;
	size_t len;
	BIO *b;

	/* finalize with a good CSR (base64url DER, as RFC 8555 7.4 has it) */
	if ((b = BIO_new_mem_buf(csr_pem_text, -1)) == NULL ||
	    (req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL)) == NULL)
		die("CSR");
	BIO_free(b);
	der = tu_der(req, &len);
	b64 = jws_test_b64(der, len);
	if (asprintf(&s, "POST\n/acme/order/{order}/finalize\nkid\n"
	    "Content-Type: application/jose+json\n\n{\"csr\":\"%s\"}", b64) < 0)
		die("oom");
	put_str("router", "finalize", s);
	free(s);
	free(b64);
	OPENSSL_free(der);
	X509_REQ_free(req);

	/* a raw, validly shaped JWS that the server will find unsigned by
	 * any account it knows */
	key = tu_key("EC:P-384");
	s = jws_test_sign(key, NULL, NONCE, "https://127.0.0.1:8443/acme/"
	    "new-account", NULL, "{\"termsOfServiceAgreed\":true}");
	if (s == NULL)
		die("sign");
	if (asprintf(&b64, "POST\n/acme/new-account\nraw\n"
	    "Content-Type: application/jose+json\n\n%s", s) < 0)
		die("oom");
	put_str("router", "raw-jws", b64);
	free(b64);
	free(s);
	EVP_PKEY_free(key);
}

int
main(int argc, char *argv[])
{
	char *pem = NULL;

	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds CORPUS-DIR\n");
		return 2;
	}
	corpus = argv[1];
	jws_seeds();
	csr_seeds(&pem);
	proto_seeds(pem);
	router_seeds(pem);
	free(pem);
	return 0;
}
