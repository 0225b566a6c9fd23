/*
 * est_msg: EST bodies (see est_msg.h).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "est_msg.h"
#include "policy.h"

static int __attribute__((format(printf, 4, 5)))
refuse(int status, char *reason, size_t reasonlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, reasonlen, fmt, ap);
	va_end(ap);
	return status;
}

void
est_csr_clear(struct est_csr *c)
{
	X509_REQ_free(c->req);
	free(c->der);
	memset(c, 0, sizeof(*c));
}

int
est_media_type_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	if (ct == NULL)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

static int
b64_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int
est_b64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen,
    char *reason, size_t reasonlen)
{
	char *text;
	unsigned char *bin;
	size_t i, n = 0, pad = 0;
	int got;

	*out = NULL;
	*outlen = 0;
	if ((text = malloc(len + 1)) == NULL) {
		snprintf(reason, reasonlen, "out of memory");
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
		} else if (!b64_char(c) || pad > 0) {
			free(text);
			snprintf(reason, reasonlen, "the body is not base64: "
			    "byte %zu is %s", i, pad > 0 ? "after the padding" :
			    "not a base64 character");
			return -1;
		}
		text[n++] = (char)c;
	}
	text[n] = '\0';
	if (n == 0 || n % 4 != 0 || pad > 2) {
		free(text);
		snprintf(reason, reasonlen, "the body is not base64: %s",
		    n == 0 ? "it is empty" : "its length is not a multiple of 4 "
		    "(padding missing?)");
		return -1;
	}
	if ((bin = malloc(n / 4 * 3 + 1)) == NULL) {
		free(text);
		snprintf(reason, reasonlen, "out of memory");
		return -1;
	}
	got = EVP_DecodeBlock(bin, (const unsigned char *)text, (int)n);
	free(text);
	if (got < 0 || (size_t)got < pad) {
		free(bin);
		snprintf(reason, reasonlen, "the body is not base64");
		return -1;
	}
	*out = bin;
	*outlen = (size_t)got - pad;
	return 0;
}

char *
est_b64_encode(const unsigned char *in, size_t len, size_t *outlen)
{
	EVP_ENCODE_CTX *ctx;
	char *out;
	size_t cap;
	int n, total, ok;

	if (len > (size_t)1 << 28)
		return NULL;
	/* 4 characters per 3 bytes, a newline per 64 characters. */
	cap = (len + 2) / 3 * 4;
	cap += cap / 64 + 2 + 1;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	if ((ctx = EVP_ENCODE_CTX_new()) == NULL) {
		free(out);
		return NULL;
	}
	EVP_EncodeInit(ctx);
	ok = EVP_EncodeUpdate(ctx, (unsigned char *)out, &n, in, (int)len) == 1;
	total = n;
	if (ok) {
		EVP_EncodeFinal(ctx, (unsigned char *)out + total, &n);
		total += n;
	}
	EVP_ENCODE_CTX_free(ctx);
	if (!ok || (size_t)total >= cap) {
		free(out);
		return NULL;
	}
	out[total] = '\0';
	if (outlen != NULL)
		*outlen = (size_t)total;
	return out;
}

static void
sha256_hex(const unsigned char *der, size_t len, char out[EST_HASH_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t i;

	out[0] = '\0';
	if (EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		return;
	for (i = 0; i < sizeof(md); i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int
est_csr_decode(const char *body, size_t len, const char *content_type,
    struct est_csr *c, char *reason, size_t reasonlen)
{
	const unsigned char *p;
	unsigned char *der;
	size_t derlen;
	char why[160];

	memset(c, 0, sizeof(*c));
	if (!est_media_type_is(content_type, "application/pkcs10"))
		return refuse(415, reason, reasonlen, "the body must be "
		    "application/pkcs10 (base64 of a DER PKCS#10 request), "
		    "not %s", content_type != NULL ? content_type : "untyped");
	if (est_b64_decode(body, len, &der, &derlen, why, sizeof(why)) == -1)
		return refuse(400, reason, reasonlen, "%s", why);
	p = der;
	if (derlen > (size_t)1 << 20 ||
	    (c->req = d2i_X509_REQ(NULL, &p, (long)derlen)) == NULL) {
		free(der);
		return refuse(400, reason, reasonlen, "the body is not a DER "
		    "PKCS#10 request (truncated or garbled)");
	}
	if ((size_t)(p - der) != derlen) {
		size_t extra = derlen - (size_t)(p - der);

		free(der);
		est_csr_clear(c);
		return refuse(400, reason, reasonlen, "%zu bytes follow the "
		    "PKCS#10 request", extra);
	}
	c->der = der;
	c->derlen = derlen;
	sha256_hex(der, derlen, c->hash);
	if (c->hash[0] == '\0') {
		est_csr_clear(c);
		return refuse(500, reason, reasonlen, "cannot hash the request");
	}
	return 0;
}

int
est_valid_dns_name(const char *name)
{
	size_t n = strlen(name), i, label = 0;

	if (n == 0 || n > EST_MAX_NAME_LEN)
		return 0;
	for (i = 0; i <= n; i++) {
		char ch = name[i];

		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63 || name[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (label == 0 && ch == '-')
			return 0;
		if (!isalnum((unsigned char)ch) && ch != '-')
			return 0;
		label++;
	}
	return 1;
}

/* Add a DNS name (lower-cased) after checking it; 0 or 400. */
static int
add_name(struct est_csr *c, const char *name, size_t len, const char *subtree,
    char *reason, size_t reasonlen)
{
	char canon[EST_MAX_NAME_LEN + 1];
	size_t i;

	if (len == 0 || len > EST_MAX_NAME_LEN || memchr(name, '\0', len) != NULL)
		return refuse(400, reason, reasonlen, "a DNS name of the CSR "
		    "is empty, too long or holds a NUL byte");
	for (i = 0; i < len; i++)
		canon[i] = (char)tolower((unsigned char)name[i]);
	canon[len] = '\0';
	if (!est_valid_dns_name(canon))
		return refuse(400, reason, reasonlen, "%.*s is not a valid "
		    "host name", (int)len, canon);
	if (strcmp(canon, "local") == 0 || policy_name_within(canon, "local"))
		return refuse(400, reason, reasonlen, "%s: .local names are not "
		    "enrolled through the RA (an mDNS name has no tree that "
		    "could be delegated)", canon);
	if (!policy_name_within(canon, subtree))
		return refuse(400, reason, reasonlen, "%s is outside the RA's "
		    "subtree %s", canon, subtree);
	for (i = 0; i < c->nnames; i++)
		if (strcmp(c->names[i], canon) == 0)
			return 0;
	if (c->nnames == EST_MAX_NAMES)
		return refuse(400, reason, reasonlen, "more than %d names",
		    EST_MAX_NAMES);
	memcpy(c->names[c->nnames++], canon, len + 1);
	return 0;
}

static int
check_sans(struct est_csr *c, STACK_OF(GENERAL_NAME) *gens, const char *subtree,
    char *reason, size_t reasonlen)
{
	const GENERAL_NAME *g;
	int i, st;

	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_IPADD)
			return refuse(400, reason, reasonlen, "IP address "
			    "subjectAltNames are not enrolled through the RA; "
			    "ask for DNS names under %s", subtree);
		if (g->type != GEN_DNS)
			return refuse(400, reason, reasonlen, "only DNS "
			    "subjectAltNames are enrolled (the CSR has one of "
			    "type %d)", g->type);
		st = add_name(c, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
		    (size_t)ASN1_STRING_length(g->d.dNSName), subtree, reason,
		    reasonlen);
		if (st != 0)
			return st;
	}
	return 0;
}

/* No subjectAltName: the CN is the name. */
static int
check_cn(struct est_csr *c, const char *subtree, char *reason, size_t reasonlen)
{
	X509_NAME *subj = X509_REQ_get_subject_name(c->req);
	const X509_NAME_ENTRY *e;
	const ASN1_STRING *s;
	unsigned char *utf8 = NULL;
	int idx, n, st;

	idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (idx < 0)
		return refuse(400, reason, reasonlen, "the CSR names nothing: "
		    "no subjectAltName and no CN");
	if (X509_NAME_get_index_by_NID(subj, NID_commonName, idx) >= 0)
		return refuse(400, reason, reasonlen, "the CSR has more than "
		    "one CN");
	e = X509_NAME_get_entry(subj, idx);
	s = X509_NAME_ENTRY_get_data(e);
	if ((n = ASN1_STRING_to_UTF8(&utf8, s)) < 0)
		return refuse(400, reason, reasonlen, "the CSR's CN is not text");
	st = add_name(c, (const char *)utf8, (size_t)n, subtree, reason,
	    reasonlen);
	OPENSSL_free(utf8);
	return st;
}

static int
check_hash(X509_REQ *req, char *reason, size_t reasonlen)
{
	int sig = X509_REQ_get_signature_nid(req), md = NID_undef, pk = NID_undef;

	if (!OBJ_find_sigid_algs(sig, &md, &pk))
		return refuse(400, reason, reasonlen, "unknown signature "
		    "algorithm %s", OBJ_nid2sn(sig));
	switch (md) {
	case NID_sha256:
	case NID_sha384:
	case NID_sha512:
	case NID_sha3_256:
	case NID_sha3_384:
	case NID_sha3_512:
		return 0;
	default:
		return refuse(400, reason, reasonlen, "the CSR is signed with "
		    "%s; SHA-256 or better is required", OBJ_nid2sn(sig));
	}
}

/*
 * A device enrolling through the RA gets what any device gets: serverAuth
 * and clientAuth.  Asking for more (id-kp-cmcRA above all: the signer grants
 * it under the RA's delegation) would let any EST client become a registrar.
 */
static int
check_eku(STACK_OF(X509_EXTENSION) *exts, char *reason, size_t reasonlen)
{
	EXTENDED_KEY_USAGE *eku;
	ASN1_OBJECT *obj;
	char txt[80];
	int i, nid, crit = -1;

	if (exts == NULL)
		return 0;
	eku = X509V3_get_d2i(exts, NID_ext_key_usage, &crit, NULL);
	if (eku == NULL)
		return crit == -1 ? 0 : refuse(400, reason, reasonlen, "the "
		    "CSR's extendedKeyUsage is unreadable or given twice");
	for (i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
		obj = sk_ASN1_OBJECT_value(eku, i);
		nid = OBJ_obj2nid(obj);
		if (nid == NID_server_auth || nid == NID_client_auth)
			continue;
		if (nid != NID_undef)
			snprintf(txt, sizeof(txt), "%s", OBJ_nid2sn(nid));
		else if (OBJ_obj2txt(txt, sizeof(txt), obj, 1) <= 0)
			snprintf(txt, sizeof(txt), "?");
		sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
		return refuse(400, reason, reasonlen, "the CSR asks for the "
		    "extended key usage %s; enrolment over EST gives serverAuth "
		    "and clientAuth only", txt);
	}
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return 0;
}

int
est_csr_check(struct est_csr *c, const char *subtree, char *reason,
    size_t reasonlen)
{
	STACK_OF(X509_EXTENSION) *exts;
	STACK_OF(GENERAL_NAME) *gens = NULL;
	EVP_PKEY *key;
	char why[256];
	int st, crit = -1;

	c->nnames = 0;
	if ((key = X509_REQ_get0_pubkey(c->req)) == NULL)
		return refuse(400, reason, reasonlen, "the CSR's public key "
		    "cannot be read");
	if (X509_REQ_verify(c->req, key) != 1)
		return refuse(400, reason, reasonlen, "the CSR's signature does "
		    "not verify with its key");
	if ((st = check_hash(c->req, reason, reasonlen)) != 0)
		return st;
	if (policy_check_key(key, why, sizeof(why)) != POLICY_OK)
		return refuse(400, reason, reasonlen, "%s", why);
	exts = X509_REQ_get_extensions(c->req);
	if ((st = check_eku(exts, reason, reasonlen)) != 0) {
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		return st;
	}
	if (exts != NULL)
		gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (gens == NULL && crit != -1)
		return refuse(400, reason, reasonlen, "the CSR's subjectAltName "
		    "is unreadable or given twice");
	if (gens != NULL && sk_GENERAL_NAME_num(gens) > 0)
		st = check_sans(c, gens, subtree, reason, reasonlen);
	else
		st = check_cn(c, subtree, reason, reasonlen);
	GENERAL_NAMES_free(gens);
	return st;
}

#define SAN_TEXT_MAX	(EST_MAX_NAMES * 2 * (EST_MAX_NAME_LEN + 9))

/* The subjectAltNames of a CSR or certificate as sorted "TYPE:VALUE" text,
 * NUL-separated, for comparing sets. */
static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
san_set(STACK_OF(GENERAL_NAME) *gens, char *out, size_t outlen)
{
	char *items[EST_MAX_NAMES * 2], buf[EST_MAX_NAMES * 2][EST_MAX_NAME_LEN + 8];
	const GENERAL_NAME *g;
	int i, n = sk_GENERAL_NAME_num(gens), k;
	size_t used = 0, l;

	if (n < 0)
		n = 0;
	if (n > EST_MAX_NAMES * 2)
		return -1;
	for (i = 0; i < n; i++) {
		const ASN1_STRING *s;

		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS)
			s = g->d.dNSName;
		else if (g->type == GEN_IPADD)
			s = g->d.iPAddress;
		else
			return -1;
		k = ASN1_STRING_length(s);
		if (k < 0 || k > EST_MAX_NAME_LEN)
			return -1;
		if (g->type == GEN_DNS) {
			snprintf(buf[i], sizeof(buf[i]), "D:%.*s", k,
			    (const char *)ASN1_STRING_get0_data(s));
			for (l = 2; buf[i][l] != '\0'; l++)
				buf[i][l] = (char)tolower((unsigned char)buf[i][l]);
		} else {
			snprintf(buf[i], sizeof(buf[i]), "I:");
			for (l = 0; l < (size_t)k && 2 + 2 * l + 3 < sizeof(buf[i]); l++)
				snprintf(buf[i] + 2 + 2 * l, 3, "%02x",
				    ASN1_STRING_get0_data(s)[l]);
		}
		items[i] = buf[i];
	}
	qsort(items, (size_t)n, sizeof(items[0]), name_cmp);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		l = strlen(items[i]);
		if (i > 0 && strcmp(items[i], items[i - 1]) == 0)
			continue;
		if (used + l + 2 > outlen)
			return -1;
		memcpy(out + used, items[i], l);
		used += l;
		out[used++] = ',';
		out[used] = '\0';
	}
	return 0;
}

int
est_csr_matches_cert(X509_REQ *req, X509 *cert, char *reason, size_t reasonlen)
{
	STACK_OF(X509_EXTENSION) *exts;
	STACK_OF(GENERAL_NAME) *rg = NULL, *cg;
	char *a, *b;
	int st = 0;
	if (X509_NAME_cmp(X509_REQ_get_subject_name(req),
	    X509_get_subject_name(cert)) != 0)
		return refuse(400, reason, reasonlen, "the CSR's subject differs "
		    "from that of the certificate being renewed");
	exts = X509_REQ_get_extensions(req);
	if (exts != NULL)
		rg = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	cg = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	a = malloc(SAN_TEXT_MAX);
	b = malloc(SAN_TEXT_MAX);
	if (a == NULL || b == NULL)
		st = refuse(500, reason, reasonlen, "out of memory");
	else if (san_set(rg, a, SAN_TEXT_MAX) == -1 || san_set(cg, b, SAN_TEXT_MAX) == -1)
		st = refuse(400, reason, reasonlen, "the subjectAltNames of the "
		    "CSR or the certificate are not DNS names and addresses");
	else if (strcmp(a, b) != 0)
		st = refuse(400, reason, reasonlen, "the CSR's subjectAltNames "
		    "differ from those of the certificate being renewed");
	free(a);
	free(b);
	GENERAL_NAMES_free(rg);
	GENERAL_NAMES_free(cg);
	return st;
}

char *
est_certs_only(STACK_OF(X509) *certs, size_t *outlen, char *reason,
    size_t reasonlen)
{
	PKCS7 *p7;
	unsigned char *der = NULL;
	char *b64 = NULL;
	int i, len;

	if ((p7 = PKCS7_new()) == NULL || PKCS7_set_type(p7, NID_pkcs7_signed) != 1 ||
	    PKCS7_content_new(p7, NID_pkcs7_data) != 1) {
		snprintf(reason, reasonlen, "cannot make a PKCS#7 structure");
		PKCS7_free(p7);
		return NULL;
	}
	for (i = 0; i < sk_X509_num(certs); i++)
		if (PKCS7_add_certificate(p7, sk_X509_value(certs, i)) != 1) {
			snprintf(reason, reasonlen, "cannot add a certificate");
			PKCS7_free(p7);
			return NULL;
		}
	if ((len = i2d_PKCS7(p7, &der)) <= 0)
		snprintf(reason, reasonlen, "cannot encode the PKCS#7 structure");
	else if ((b64 = est_b64_encode(der, (size_t)len, outlen)) == NULL)
		snprintf(reason, reasonlen, "out of memory");
	OPENSSL_free(der);
	PKCS7_free(p7);
	return b64;
}

STACK_OF(X509) *
est_pem_certs(const char *pem, size_t len, char *reason, size_t reasonlen)
{
	STACK_OF(X509) *sk;
	BIO *bio;
	X509 *x;
	unsigned long e;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		snprintf(reason, reasonlen, "out of memory");
		return NULL;
	}
	if ((sk = sk_X509_new_null()) == NULL) {
		BIO_free(bio);
		snprintf(reason, reasonlen, "out of memory");
		return NULL;
	}
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			break;
		}
	e = ERR_peek_last_error();
	BIO_free(bio);
	/* The loop ends on "no start line" at the end of the text; anything
	 * else means a certificate could not be read. */
	if (sk_X509_num(sk) == 0 || (e != 0 && ERR_GET_REASON(e) != PEM_R_NO_START_LINE)) {
		snprintf(reason, reasonlen, "%s", sk_X509_num(sk) == 0 ?
		    "no certificate in the PEM text" : "a certificate of the "
		    "PEM text is unreadable");
		sk_X509_pop_free(sk, X509_free);
		ERR_clear_error();
		return NULL;
	}
	ERR_clear_error();
	return sk;
}

/* Append the DER of one CsrAttrs element; 0 or -1. */
static int
append_der(unsigned char **buf, size_t *len, const unsigned char *der, int n)
{
	unsigned char *nb;

	if (n <= 0 || (nb = realloc(*buf, *len + (size_t)n)) == NULL)
		return -1;
	memcpy(nb + *len, der, (size_t)n);
	*buf = nb;
	*len += (size_t)n;
	return 0;
}

static int
append_oid(unsigned char **buf, size_t *len, int nid)
{
	unsigned char *der = NULL;
	int n, rc;

	n = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &der);
	rc = append_der(buf, len, der, n);
	OPENSSL_free(der);
	return rc;
}

static int
append_attr(unsigned char **buf, size_t *len, X509_ATTRIBUTE *a)
{
	unsigned char *der = NULL;
	int n, rc;

	if (a == NULL)
		return -1;
	n = i2d_X509_ATTRIBUTE(a, &der);
	rc = append_der(buf, len, der, n);
	OPENSSL_free(der);
	X509_ATTRIBUTE_free(a);
	return rc;
}

/* extensionRequest { Extensions { subjectAltName { dNSName subtree } } } */
static X509_ATTRIBUTE *
san_hint(const char *subtree)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *g = NULL;
	ASN1_IA5STRING *ia5 = NULL;
	X509_EXTENSION *ext = NULL;
	ASN1_STRING *seq = NULL;
	X509_ATTRIBUTE *attr = NULL;
	unsigned char *der = NULL;
	int n;

	if ((ia5 = ASN1_IA5STRING_new()) == NULL ||
	    ASN1_STRING_set(ia5, subtree, (int)strlen(subtree)) != 1 ||
	    (g = GENERAL_NAME_new()) == NULL)
		goto out;
	GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
	ia5 = NULL;
	if ((gens = GENERAL_NAMES_new()) == NULL || sk_GENERAL_NAME_push(gens, g) <= 0)
		goto out;
	g = NULL;
	if ((ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) == NULL ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    sk_X509_EXTENSION_push(exts, ext) <= 0)
		goto out;
	ext = NULL;
	if ((n = i2d_X509_EXTENSIONS(exts, &der)) <= 0 ||
	    (seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE)) == NULL ||
	    ASN1_STRING_set(seq, der, n) != 1)
		goto out;
	/* X509_ATTRIBUTE_create takes seq on success. */
	if ((attr = X509_ATTRIBUTE_create(NID_ext_req, V_ASN1_SEQUENCE, seq)) != NULL)
		seq = NULL;
out:
	ASN1_STRING_free(seq);
	OPENSSL_free(der);
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	GENERAL_NAME_free(g);
	ASN1_IA5STRING_free(ia5);
	return attr;
}

unsigned char *
est_csrattrs_der(const char *subtree, size_t *outlen, char *reason,
    size_t reasonlen)
{
	unsigned char *body = NULL, *out = NULL, *p;
	size_t blen = 0;
	ASN1_OBJECT *curve;
	X509_ATTRIBUTE *ec;
	int total;

	if ((curve = OBJ_dup(OBJ_nid2obj(NID_secp384r1))) == NULL)
		goto fail;
	if ((ec = X509_ATTRIBUTE_create(NID_X9_62_id_ecPublicKey,
	    V_ASN1_OBJECT, curve)) == NULL) {
		ASN1_OBJECT_free(curve);
		goto fail;
	}
	if (append_oid(&body, &blen, NID_ecdsa_with_SHA384) == -1 ||
	    append_attr(&body, &blen, ec) == -1 ||
	    append_attr(&body, &blen, san_hint(subtree)) == -1 ||
	    blen > INT_MAX / 2)
		goto fail;
	total = ASN1_object_size(1, (int)blen, V_ASN1_SEQUENCE);
	if (total <= 0 || (out = malloc((size_t)total)) == NULL)
		goto fail;
	p = out;
	ASN1_put_object(&p, 1, (int)blen, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(p, body, blen);
	free(body);
	*outlen = (size_t)total;
	return out;
fail:
	free(body);
	snprintf(reason, reasonlen, "cannot encode the CSR attributes");
	return NULL;
}
