/*
 * tlscert: key, CSR and signer round trip for the HTTPS listener's
 * certificate (see tlscert.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "signercall.h"
#include "tlscert.h"

static char *
bio_to_string(BIO *b)
{
	char *data, *s;
	long len = BIO_get_mem_data(b, &data);

	if (len < 0 || (s = malloc((size_t)len + 1)) == NULL)
		return NULL;
	memcpy(s, data, (size_t)len);
	s[len] = '\0';
	return s;
}

/* "DNS:a.local,DNS:a.home.arpa,IP:127.0.0.1" for the server's names. */
static int
san_text(const struct config *cfg, char *out, size_t len)
{
	size_t i, used;

	used = (size_t)snprintf(out, len, "DNS:%s.local", cfg->name);
	for (i = 0; i < cfg->ndomains && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, ",DNS:%s.%s",
		    cfg->name, cfg->domains[i]);
	for (i = 0; i < cfg->nips && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, ",IP:%s",
		    cfg->ips[i]);
	return used < len ? 0 : -1;
}

static X509_REQ *
make_csr(const struct config *cfg, EVP_PKEY *key, char *err, size_t errlen)
{
	X509_REQ *req = NULL;
	X509_NAME *subj;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *san = NULL;
	X509V3_CTX ctx;
	char sans[2048], cn[128];

	snprintf(cn, sizeof(cn), "%s.local", cfg->name);
	if (san_text(cfg, sans, sizeof(sans)) == -1) {
		snprintf(err, errlen, "too many names for the TLS certificate");
		return NULL;
	}
	if ((req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(req, 0) != 1 ||
	    (subj = X509_REQ_get_subject_name(req)) == NULL ||
	    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1)
		goto fail;
	X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
	if ((san = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name,
	    sans)) == NULL ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    sk_X509_EXTENSION_push(exts, san) == 0)
		goto fail;
	san = NULL;	/* owned by exts */
	if (X509_REQ_add_extensions(req, exts) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha384()) <= 0)
		goto fail;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return req;
fail:
	snprintf(err, errlen, "cannot build the TLS certificate request");
	X509_EXTENSION_free(san);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return NULL;
}

static char *
csr_pem(X509_REQ *req)
{
	BIO *b;
	char *s = NULL;

	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio_X509_REQ(b, req) == 1)
		s = bio_to_string(b);
	BIO_free(b);
	return s;
}

static char *
key_pem(EVP_PKEY *key)
{
	BIO *b;
	char *s = NULL;

	if ((b = BIO_new(BIO_s_secmem())) == NULL)
		return NULL;
	if (PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1)
		s = bio_to_string(b);
	BIO_free_all(b);
	return s;
}

/* Read the validity of a PEM certificate. */
static int
cert_times(const char *pem, time_t *nb, time_t *na)
{
	BIO *b;
	X509 *x = NULL;
	struct tm tm;
	int rc = -1;

	if ((b = BIO_new_mem_buf(pem, -1)) == NULL)
		return -1;
	if ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL &&
	    ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1) {
		*nb = timegm(&tm);
		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
			*na = timegm(&tm);
			rc = 0;
		}
	}
	X509_free(x);
	BIO_free(b);
	return rc;
}

static int
ask_signer(const struct config *cfg, const char *csr, struct tls_material *m,
    char *err, size_t errlen)
{
	json_t *req, *resp;
	const char *leaf, *root;
	size_t len;
	int rc = -1;

	if ((req = json_pack("{s:s, s:s}", "op", "server_cert", "csr", csr)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	resp = signer_call(cfg->signer_socket, req, err, errlen);
	json_decref(req);
	if (resp == NULL)
		return -1;
	if (!json_is_true(json_object_get(resp, "ok"))) {
		snprintf(err, errlen, "the signer refused server_cert: %s: %s",
		    json_string_value(json_object_get(resp, "error")) ?: "?",
		    json_string_value(json_object_get(resp, "reason")) ?: "");
		goto out;
	}
	leaf = json_string_value(json_object_get(resp, "pem"));
	root = json_string_value(json_object_get(resp, "chain"));
	if (leaf == NULL || root == NULL) {
		snprintf(err, errlen, "server_cert answer lacks pem or chain");
		goto out;
	}
	len = strlen(leaf) + strlen(root) + 2;
	if ((m->chain_pem = malloc(len)) == NULL ||
	    (m->root_pem = strdup(root)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* Leaf first, then the root, so a client can pin the root (TOFU). */
	snprintf(m->chain_pem, len, "%s%s%s", leaf,
	    leaf[0] != '\0' && leaf[strlen(leaf) - 1] == '\n' ? "" : "\n", root);
	if (cert_times(leaf, &m->not_before, &m->not_after) == -1) {
		snprintf(err, errlen, "the signer's server certificate is unreadable");
		goto out;
	}
	rc = 0;
out:
	json_decref(resp);
	return rc;
}

int
tls_material_get(const struct config *cfg, struct tls_material *m, char *err,
    size_t errlen)
{
	EVP_PKEY *key;
	X509_REQ *req = NULL;
	char *csr = NULL;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if ((key = EVP_EC_gen("P-384")) == NULL) {
		snprintf(err, errlen, "cannot generate a P-384 key");
		return -1;
	}
	if ((req = make_csr(cfg, key, err, errlen)) == NULL)
		goto out;
	if ((csr = csr_pem(req)) == NULL || (m->key_pem = key_pem(key)) == NULL) {
		snprintf(err, errlen, "cannot encode the TLS key or request");
		goto out;
	}
	rc = ask_signer(cfg, csr, m, err, errlen);
out:
	if (rc == -1)
		tls_material_clear(m);
	free(csr);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return rc;
}

void
tls_material_clear(struct tls_material *m)
{
	if (m->key_pem != NULL) {
		OPENSSL_cleanse(m->key_pem, strlen(m->key_pem));
		free(m->key_pem);
	}
	free(m->chain_pem);
	free(m->root_pem);
	memset(m, 0, sizeof(*m));
}

time_t
tls_material_renew_at(const struct tls_material *m)
{
	return m->not_before + (m->not_after - m->not_before) * 2 / 3;
}
