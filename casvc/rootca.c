/*
 * rootca: the self-signed root certificate and the CRL it signs
 * (DESIGN.md "Policy"; certgen.h for the contract).
 *
 * Every field is set here explicitly from validated input; nothing goes
 * through OpenSSL's configuration-string parser, so a name can never smuggle
 * in an extension option.  Both objects are signed through the keystore (the
 * key's own provider) and verified again, from their DER encoding, with the
 * public key as a relying party would see it, before they are handed out.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certgen.h"
#include "x509sign.h"

#define ROOT_MIN_YEARS		1
#define ROOT_MAX_YEARS		10
#define ROOT_MIN_RSA_BITS	3072
#define SERIAL_BYTES		16	/* 128 random bits, as for devices */
#define CRL_MIN_DAYS		1
#define CRL_MAX_DAYS		365
#define SERIAL_HEX_MAX		40	/* RFC 5280: at most 20 octets */
#define NAME_MAX_LEN		253
#define LABEL_MAX_LEN		63
#define CN_MAX_LEN		64	/* ub-common-name */
#define ROOT_CN_SUFFIX		" root CA"

/*
 * The address ranges a root may vouch for: private-use, loopback and
 * link-local only (RFC 1918, RFC 1122, RFC 3927, RFC 4193, RFC 4291).
 */
static const struct ip_range {
	size_t		 len;		/* 4 or 16 */
	unsigned char	 addr[16];
	unsigned int	 prefix;
} ip_ranges[] = {
	{ 4,  { 10 },			 8 },
	{ 4,  { 172, 16 },		12 },
	{ 4,  { 192, 168 },		16 },
	{ 4,  { 127 },			 8 },
	{ 4,  { 169, 254 },		16 },
	{ 16, { 0xfc },			 7 },
	{ 16, { 0xfe, 0x80 },		10 },
	{ 16, { [15] = 1 },		128 },
};
#define NIP_RANGES	(sizeof(ip_ranges) / sizeof(ip_ranges[0]))

static const char *const reason_names[] = {
	[CRL_REASON_UNSPECIFIED]		= "unspecified",
	[CRL_REASON_KEY_COMPROMISE]		= "keyCompromise",
	[CRL_REASON_CA_COMPROMISE]		= "cACompromise",
	[CRL_REASON_AFFILIATION_CHANGED]	= "affiliationChanged",
	[CRL_REASON_SUPERSEDED]			= "superseded",
	[CRL_REASON_CESSATION_OF_OPERATION]	= "cessationOfOperation",
	[CRL_REASON_CERTIFICATE_HOLD]		= "certificateHold",
	/* 7 is not used (RFC 5280 5.3.1) */
	[CRL_REASON_REMOVE_FROM_CRL]		= "removeFromCRL",
	[CRL_REASON_PRIVILEGE_WITHDRAWN]	= "privilegeWithdrawn",
	[CRL_REASON_AA_COMPROMISE]		= "aACompromise",
};
#define NREASONS	(sizeof(reason_names) / sizeof(reason_names[0]))

/* One error line, with the latest OpenSSL error if any; clears the queue. */
static void
cg_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cg_err(char *err, size_t errlen, const char *fmt, ...)
{
	char		 msg[256], ossl[256];
	unsigned long	 e;
	va_list		 ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err != NULL && errlen > 0) {
		if ((e = ERR_peek_last_error()) != 0) {
			ERR_error_string_n(e, ossl, sizeof(ossl));
			(void)snprintf(err, errlen, "%s: %s", msg, ossl);
		} else
			(void)snprintf(err, errlen, "%s", msg);
	}
	ERR_clear_error();
}

/*
 * Reasons.  certificateHold and removeFromCRL are refused: a revocation by
 * this appliance is final (DESIGN.md "Approval"), and a hold that can later
 * be lifted would let a CRL un-revoke a certificate that clients already
 * distrust.  Their names are still known, for display.
 */
int
certgen_reason_parse(const char *name)
{
	size_t	 i;

	if (name == NULL)
		return -1;
	for (i = 0; i < NREASONS; i++) {
		if (reason_names[i] == NULL ||
		    strcasecmp(name, reason_names[i]) != 0)
			continue;
		if (i == CRL_REASON_CERTIFICATE_HOLD ||
		    i == CRL_REASON_REMOVE_FROM_CRL)
			return -1;
		return (int)i;
	}
	return -1;
}

/* The RFC 5280 name of a reason code, or NULL for a code that has none. */
const char *
certgen_reason_name(int code)
{
	if (code < 0 || (size_t)code >= NREASONS)
		return NULL;
	return reason_names[code];
}

/* A letter-digit-hyphen host label (RFC 1123), 1 to 63 characters. */
static int
valid_label(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > LABEL_MAX_LEN)
		return 0;
	if (s[0] == '-' || s[len - 1] == '-')
		return 0;
	for (i = 0; i < len; i++)
		if (!isascii((unsigned char)s[i]) ||
		    (!isalnum((unsigned char)s[i]) && s[i] != '-'))
			return 0;
	return 1;
}

/* Dot-separated labels, no empty label, no leading or trailing dot. */
static int
valid_domain(const char *s)
{
	const char	*p, *dot;
	size_t		 len;

	if (s == NULL || (len = strlen(s)) == 0 || len > NAME_MAX_LEN)
		return 0;
	for (p = s; ; p = dot + 1) {
		dot = strchr(p, '.');
		if (!valid_label(p, dot != NULL ? (size_t)(dot - p) : strlen(p)))
			return 0;
		if (dot == NULL)
			return 1;
	}
}

/* 1 if addr (len 4 or 16) lies in one of the permitted ranges. */
static int
ip_permitted(const unsigned char *addr, size_t len)
{
	const struct ip_range	*r;
	size_t			 i, full, rest;
	unsigned char		 mask;

	for (i = 0; i < NIP_RANGES; i++) {
		r = &ip_ranges[i];
		if (r->len != len)
			continue;
		full = r->prefix / 8;
		rest = r->prefix % 8;
		if (memcmp(addr, r->addr, full) != 0)
			continue;
		mask = (unsigned char)(0xff << (8 - rest));
		if (rest != 0 && (addr[full] & mask) != (r->addr[full] & mask))
			continue;
		return 1;
	}
	return 0;
}

static int
check_root_params(const struct root_params *p, char *err, size_t errlen)
{
	ASN1_OCTET_STRING	*ip;
	size_t			 i;
	int			 ok;

	if (p == NULL) {
		cg_err(err, errlen, "no root parameters");
		return -1;
	}
	if (p->years < ROOT_MIN_YEARS || p->years > ROOT_MAX_YEARS) {
		cg_err(err, errlen, "root validity of %d years refused: it must "
		    "be %d to %d years", p->years, ROOT_MIN_YEARS,
		    ROOT_MAX_YEARS);
		return -1;
	}
	if (p->server_name == NULL ||
	    !valid_label(p->server_name, strlen(p->server_name))) {
		cg_err(err, errlen, "server name \"%s\" is not a host label "
		    "(letters, digits, hyphens)",
		    p->server_name != NULL ? p->server_name : "");
		return -1;
	}
	if (strlen(p->server_name) + strlen(ROOT_CN_SUFFIX) > CN_MAX_LEN) {
		cg_err(err, errlen, "server name \"%s\" is too long for the "
		    "root's common name", p->server_name);
		return -1;
	}
	if (p->ndomains > 0 && p->domains == NULL) {
		cg_err(err, errlen, "domain list missing");
		return -1;
	}
	for (i = 0; i < p->ndomains; i++) {
		if (!valid_domain(p->domains[i]) ||
		    strlen(p->server_name) + 1 + strlen(p->domains[i]) >
		    NAME_MAX_LEN) {
			cg_err(err, errlen, "domain \"%s\" is not a valid DNS "
			    "name", p->domains[i] != NULL ? p->domains[i] : "");
			return -1;
		}
	}
	if (p->nips > 0 && p->ips == NULL) {
		cg_err(err, errlen, "IP address list missing");
		return -1;
	}
	for (i = 0; i < p->nips; i++) {
		if (p->ips[i] == NULL ||
		    (ip = a2i_IPADDRESS(p->ips[i])) == NULL) {
			cg_err(err, errlen, "\"%s\" is not an IP address",
			    p->ips[i] != NULL ? p->ips[i] : "");
			return -1;
		}
		/*
		 * The root's own name constraints admit only these ranges;
		 * a root that names itself outside them would contradict
		 * what it tells clients to trust.
		 */
		ok = ip_permitted(ASN1_STRING_get0_data(ip),
		    (size_t)ASN1_STRING_length(ip));
		ASN1_OCTET_STRING_free(ip);
		if (!ok) {
			cg_err(err, errlen, "IP address %s is not private-use, "
			    "link-local or loopback", p->ips[i]);
			return -1;
		}
	}
	return 0;
}

/* ECDSA P-384 or P-521, or RSA >= 3072 (DESIGN.md "Policy"). */
static int
check_root_key(EVP_PKEY *key, char *err, size_t errlen)
{
	char	 group[64];
	size_t	 glen;
	int	 nid, bits;

	if (key == NULL) {
		cg_err(err, errlen, "no root key");
		return -1;
	}
	bits = EVP_PKEY_get_bits(key);
	if (EVP_PKEY_is_a(key, "EC")) {
		if (!EVP_PKEY_get_group_name(key, group, sizeof(group), &glen)) {
			cg_err(err, errlen, "cannot read the root key's curve");
			return -1;
		}
		if ((nid = EC_curve_nist2nid(group)) == NID_undef)
			nid = OBJ_sn2nid(group);
		if (nid != NID_secp384r1 && nid != NID_secp521r1) {
			cg_err(err, errlen, "root key on curve %s refused: it "
			    "must be P-384 or P-521", group);
			return -1;
		}
		return 0;
	}
	if (EVP_PKEY_is_a(key, "RSA")) {
		if (bits < ROOT_MIN_RSA_BITS) {
			cg_err(err, errlen, "RSA root key of %d bits refused: "
			    "it must have at least %d", bits, ROOT_MIN_RSA_BITS);
			return -1;
		}
		return 0;
	}
	cg_err(err, errlen, "root key type %s refused: it must be ECDSA "
	    "P-384/P-521 or RSA >= %d", EVP_PKEY_get0_type_name(key) != NULL ?
	    EVP_PKEY_get0_type_name(key) : "unknown", ROOT_MIN_RSA_BITS);
	return -1;
}

/*
 * A random positive serial of exactly SERIAL_BYTES octets: the top bit is
 * cleared (positive) and the next one set (so no leading zero octet shrinks
 * it, and it is never zero), leaving 126 random bits.
 */
static int
set_random_serial(OSSL_LIB_CTX *libctx, X509 *x, char *err, size_t errlen)
{
	unsigned char	 buf[SERIAL_BYTES];
	BIGNUM		*bn = NULL;
	ASN1_INTEGER	*ai = NULL;
	int		 rc = -1;

	if (RAND_bytes_ex(libctx, buf, sizeof(buf), 0) != 1) {
		cg_err(err, errlen, "no random bytes for the serial number");
		return -1;
	}
	buf[0] &= 0x7f;
	buf[0] |= 0x40;
	if ((bn = BN_bin2bn(buf, sizeof(buf), NULL)) == NULL ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_set_serialNumber(x, ai)) {
		cg_err(err, errlen, "cannot set the serial number");
		goto out;
	}
	rc = 0;
out:
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return rc;
}

static int
set_root_name(X509 *x, const char *server_name, char *err, size_t errlen)
{
	X509_NAME	*name;
	char		 cn[CN_MAX_LEN + 1];
	int		 n, rc = -1;

	n = snprintf(cn, sizeof(cn), "%s%s", server_name, ROOT_CN_SUFFIX);
	if (n < 0 || (size_t)n >= sizeof(cn)) {
		cg_err(err, errlen, "root common name too long");
		return -1;
	}
	if ((name = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"iotca", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0)) {
		cg_err(err, errlen, "cannot build the root's name");
		goto out;
	}
	/* Self-signed: issuer and subject are the same name. */
	if (!X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name)) {
		cg_err(err, errlen, "cannot set the root's name");
		goto out;
	}
	rc = 0;
out:
	X509_NAME_free(name);
	return rc;
}

/*
 * notBefore now, notAfter the same moment "years" calendar years later
 * (29 February becomes 28 February in a common year).
 */
static int
set_root_validity(X509 *x, time_t now, int years, char *err, size_t errlen)
{
	struct tm	 tm;
	time_t		 end;

	if (gmtime_r(&now, &tm) == NULL) {
		cg_err(err, errlen, "cannot read the current time");
		return -1;
	}
	tm.tm_year += years;
	if (tm.tm_mon == 1 && tm.tm_mday == 29)
		tm.tm_mday = 28;
	tm.tm_isdst = 0;
	if ((end = timegm(&tm)) == (time_t)-1) {
		cg_err(err, errlen, "cannot compute the root's expiry");
		return -1;
	}
	if (ASN1_TIME_set(X509_getm_notBefore(x), now) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), end) == NULL) {
		cg_err(err, errlen, "cannot set the root's validity");
		return -1;
	}
	return 0;
}

static GENERAL_NAME *
dns_name(const char *a, const char *b)
{
	GENERAL_NAME	*gn;
	ASN1_IA5STRING	*ia5;
	char		 buf[NAME_MAX_LEN + 1];
	int		 n;

	n = snprintf(buf, sizeof(buf), "%s%s%s", a, b != NULL ? "." : "",
	    b != NULL ? b : "");
	if (n < 0 || (size_t)n >= sizeof(buf))
		return NULL;
	if ((ia5 = ASN1_IA5STRING_new()) == NULL)
		return NULL;
	if (!ASN1_STRING_set(ia5, buf, n) || (gn = GENERAL_NAME_new()) == NULL) {
		ASN1_IA5STRING_free(ia5);
		return NULL;
	}
	GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
	return gn;
}

/* An iPAddress general name: the address alone, or address and mask. */
static GENERAL_NAME *
ip_name(const unsigned char *addr, size_t len, const unsigned char *mask)
{
	GENERAL_NAME		*gn;
	ASN1_OCTET_STRING	*os;
	unsigned char		 buf[32];

	memcpy(buf, addr, len);
	if (mask != NULL)
		memcpy(buf + len, mask, len);
	if ((os = ASN1_OCTET_STRING_new()) == NULL)
		return NULL;
	if (!ASN1_OCTET_STRING_set(os, buf, (int)(mask != NULL ? 2 * len : len)) ||
	    (gn = GENERAL_NAME_new()) == NULL) {
		ASN1_OCTET_STRING_free(os);
		return NULL;
	}
	GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
	return gn;
}

static int
push_name(GENERAL_NAMES *gens, GENERAL_NAME *gn)
{
	if (gn == NULL)
		return -1;
	if (!sk_GENERAL_NAME_push(gens, gn)) {
		GENERAL_NAME_free(gn);
		return -1;
	}
	return 0;
}

static int
add_root_san(X509 *x, const struct root_params *p, char *err, size_t errlen)
{
	GENERAL_NAMES		*gens;
	ASN1_OCTET_STRING	*ip;
	GENERAL_NAME		*gn;
	size_t			 i;
	int			 rc = -1;

	if ((gens = GENERAL_NAMES_new()) == NULL)
		goto fail;
	if (push_name(gens, dns_name(p->server_name, "local")) == -1)
		goto fail;
	for (i = 0; i < p->ndomains; i++)
		if (push_name(gens, dns_name(p->server_name,
		    p->domains[i])) == -1)
			goto fail;
	for (i = 0; i < p->nips; i++) {
		if ((ip = a2i_IPADDRESS(p->ips[i])) == NULL)
			goto fail;
		gn = ip_name(ASN1_STRING_get0_data(ip),
		    (size_t)ASN1_STRING_length(ip), NULL);
		ASN1_OCTET_STRING_free(ip);
		if (push_name(gens, gn) == -1)
			goto fail;
	}
	/* Not critical: the subject name is not empty (RFC 5280 4.2.1.6). */
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto fail;
	rc = 0;
	goto out;
fail:
	cg_err(err, errlen, "cannot build the root's subjectAltName");
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

static int
push_subtree(STACK_OF(GENERAL_SUBTREE) *sk, GENERAL_NAME *gn)
{
	GENERAL_SUBTREE	*st;

	if (gn == NULL)
		return -1;
	if ((st = GENERAL_SUBTREE_new()) == NULL) {
		GENERAL_NAME_free(gn);
		return -1;
	}
	GENERAL_NAME_free(st->base);
	st->base = gn;
	if (!sk_GENERAL_SUBTREE_push(sk, st)) {
		GENERAL_SUBTREE_free(st);
		return -1;
	}
	return 0;
}

/*
 * Critical nameConstraints permitting only "local", the configured domains
 * and the private-use, link-local and loopback ranges: a stolen or misused
 * root cannot vouch for a public name.
 */
static int
add_root_name_constraints(X509 *x, const struct root_params *p, char *err,
    size_t errlen)
{
	NAME_CONSTRAINTS	*nc;
	const struct ip_range	*r;
	unsigned char		 mask[16];
	size_t			 i, j;
	int			 rc = -1;

	if ((nc = NAME_CONSTRAINTS_new()) == NULL ||
	    (nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null()) == NULL)
		goto fail;
	if (push_subtree(nc->permittedSubtrees, dns_name("local", NULL)) == -1)
		goto fail;
	for (i = 0; i < p->ndomains; i++)
		if (push_subtree(nc->permittedSubtrees,
		    dns_name(p->domains[i], NULL)) == -1)
			goto fail;
	for (i = 0; i < NIP_RANGES; i++) {
		r = &ip_ranges[i];
		memset(mask, 0, sizeof(mask));
		for (j = 0; j < r->len; j++) {
			if (r->prefix >= 8 * (j + 1))
				mask[j] = 0xff;
			else if (r->prefix > 8 * j)
				mask[j] = (unsigned char)(0xff <<
				    (8 - (r->prefix - 8 * j)));
		}
		if (push_subtree(nc->permittedSubtrees,
		    ip_name(r->addr, r->len, mask)) == -1)
			goto fail;
	}
	if (X509_add1_ext_i2d(x, NID_name_constraints, nc, 1,
	    X509V3_ADD_DEFAULT) != 1)
		goto fail;
	rc = 0;
	goto out;
fail:
	cg_err(err, errlen, "cannot build the root's nameConstraints");
out:
	NAME_CONSTRAINTS_free(nc);
	return rc;
}

static int
add_root_ca_extensions(X509 *x, char *err, size_t errlen)
{
	BASIC_CONSTRAINTS	*bc = NULL;
	ASN1_BIT_STRING		*ku = NULL;
	int			 rc = -1;

	if ((bc = BASIC_CONSTRAINTS_new()) == NULL)
		goto fail;
	bc->ca = 0xff;
	if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1,
	    X509V3_ADD_DEFAULT) != 1)
		goto fail;

	/* RFC 5280 4.2.1.3: keyCertSign is bit 5, cRLSign bit 6. */
	if ((ku = ASN1_BIT_STRING_new()) == NULL ||
	    !ASN1_BIT_STRING_set_bit(ku, 5, 1) ||
	    !ASN1_BIT_STRING_set_bit(ku, 6, 1))
		goto fail;
	if (X509_add1_ext_i2d(x, NID_key_usage, ku, 1,
	    X509V3_ADD_DEFAULT) != 1)
		goto fail;
	rc = 0;
	goto out;
fail:
	cg_err(err, errlen, "cannot add the root's CA extensions");
out:
	ASN1_BIT_STRING_free(ku);
	BASIC_CONSTRAINTS_free(bc);
	return rc;
}

/*
 * subjectKeyIdentifier: SHA-1 of the subjectPublicKey bits (RFC 5280
 * 4.2.1.2, method 1), and the same value as authorityKeyIdentifier keyid,
 * which a self-signed certificate names itself with.  The hash is the
 * default provider's: it is public data and needs no trip to the TPM.
 */
static int
add_root_key_ids(OSSL_LIB_CTX *libctx, X509 *x, char *err, size_t errlen)
{
	ASN1_BIT_STRING		*bits;
	ASN1_OCTET_STRING	*ski = NULL;
	AUTHORITY_KEYID		*akid = NULL;
	EVP_MD			*sha1 = NULL;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen;
	int			 rc = -1;

	if ((bits = X509_get0_pubkey_bitstr(x)) == NULL)
		goto fail;
	if ((sha1 = EVP_MD_fetch(libctx, "SHA1", "provider=default")) == NULL ||
	    !EVP_Digest(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits),
	    md, &mdlen, sha1, NULL))
		goto fail;
	if ((ski = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(ski, md, (int)mdlen))
		goto fail;
	if (X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto fail;
	if ((akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_dup(ski)) == NULL)
		goto fail;
	if (X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto fail;
	rc = 0;
	goto out;
fail:
	cg_err(err, errlen, "cannot add the root's key identifiers");
out:
	AUTHORITY_KEYID_free(akid);
	ASN1_OCTET_STRING_free(ski);
	EVP_MD_free(sha1);
	return rc;
}

/*
 * The certificate's public key as a relying party gets it: decoded from the
 * DER in the certificate by the default provider, never the store's key
 * object (which, for a TPM key, is the TPM's own).
 */
static EVP_PKEY *
cert_pubkey(OSSL_LIB_CTX *libctx, X509 *x)
{
	unsigned char		*der = NULL;
	const unsigned char	*p;
	EVP_PKEY		*pub;
	int			 len;

	if ((len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) <= 0)
		return NULL;
	p = der;
	pub = d2i_PUBKEY_ex(NULL, &p, len, libctx, "provider=default");
	OPENSSL_free(der);
	return pub;
}

/* Re-read the signed root from its DER and check its self-signature. */
static int
verify_root(OSSL_LIB_CTX *libctx, X509 *x, char *err, size_t errlen)
{
	unsigned char		*der = NULL;
	const unsigned char	*p;
	X509			*copy;
	EVP_PKEY		*pub = NULL;
	int			 len, rc = -1;

	if ((len = i2d_X509(x, &der)) <= 0) {
		cg_err(err, errlen, "cannot encode the signed root");
		return -1;
	}
	if ((copy = X509_new_ex(libctx, "provider=default")) == NULL) {
		cg_err(err, errlen, "out of memory");
		goto out;
	}
	p = der;
	if (d2i_X509(&copy, &p, len) == NULL) {
		copy = NULL;	/* d2i_X509 freed it */
		cg_err(err, errlen, "cannot decode the signed root");
		goto out;
	}
	if ((pub = cert_pubkey(libctx, copy)) == NULL) {
		cg_err(err, errlen, "cannot decode the root's public key");
		goto out;
	}
	if (X509_verify(copy, pub) != 1) {
		cg_err(err, errlen, "the root's signature does not verify");
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_free(pub);
	X509_free(copy);
	OPENSSL_free(der);
	return rc;
}

X509 *
certgen_root(struct ks *ks, EVP_PKEY *key, const struct root_params *p,
    char *err, size_t errlen)
{
	OSSL_LIB_CTX	*libctx;
	X509		*x;

	if (ks == NULL) {
		cg_err(err, errlen, "no keystore");
		return NULL;
	}
	if (check_root_params(p, err, errlen) == -1 ||
	    check_root_key(key, err, errlen) == -1)
		return NULL;
	libctx = ks_libctx(ks);

	if ((x = X509_new_ex(libctx, NULL)) == NULL) {
		cg_err(err, errlen, "out of memory");
		return NULL;
	}
	if (!X509_set_version(x, X509_VERSION_3)) {
		cg_err(err, errlen, "cannot set the certificate version");
		goto fail;
	}
	if (set_random_serial(libctx, x, err, errlen) == -1 ||
	    set_root_name(x, p->server_name, err, errlen) == -1 ||
	    set_root_validity(x, time(NULL), p->years, err, errlen) == -1)
		goto fail;
	if (!X509_set_pubkey(x, key)) {
		cg_err(err, errlen, "cannot set the root's public key");
		goto fail;
	}
	if (add_root_ca_extensions(x, err, errlen) == -1 ||
	    add_root_key_ids(libctx, x, err, errlen) == -1 ||
	    add_root_san(x, p, err, errlen) == -1 ||
	    add_root_name_constraints(x, p, err, errlen) == -1)
		goto fail;

	if (x509sign_cert(ks, key, x, err, errlen) == -1)
		goto fail;
	if (verify_root(libctx, x, err, errlen) == -1)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/* Upper- or lower-case hex, 1 to 40 digits, not zero. */
static ASN1_INTEGER *
serial_from_hex(const char *hex)
{
	BIGNUM		*bn = NULL;
	ASN1_INTEGER	*ai = NULL;
	size_t		 i, len;

	if (hex == NULL || (len = strlen(hex)) == 0 || len > SERIAL_HEX_MAX)
		return NULL;
	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)hex[i]))
			return NULL;
	if (BN_hex2bn(&bn, hex) != (int)len || BN_is_zero(bn)) {
		BN_free(bn);
		return NULL;
	}
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return ai;
}

static int
add_crl_entry(X509_CRL *crl, const struct crl_entry *e, char *err,
    size_t errlen)
{
	X509_REVOKED		*rev = NULL;
	ASN1_INTEGER		*serial = NULL;
	ASN1_TIME		*when = NULL;
	ASN1_ENUMERATED		*reason = NULL;
	int			 rc = -1;

	if ((serial = serial_from_hex(e->serial_hex)) == NULL) {
		cg_err(err, errlen, "serial \"%s\" is not a hex serial number",
		    e->serial_hex != NULL ? e->serial_hex : "");
		return -1;
	}
	if (certgen_reason_name(e->reason) == NULL ||
	    e->reason == CRL_REASON_CERTIFICATE_HOLD ||
	    e->reason == CRL_REASON_REMOVE_FROM_CRL) {
		cg_err(err, errlen, "serial %s: revocation reason %d refused",
		    e->serial_hex, e->reason);
		goto out;
	}
	if ((rev = X509_REVOKED_new()) == NULL ||
	    !X509_REVOKED_set_serialNumber(rev, serial) ||
	    (when = ASN1_TIME_set(NULL, e->revoked_at)) == NULL ||
	    !X509_REVOKED_set_revocationDate(rev, when))
		goto fail;
	/* RFC 5280 5.3.1: leave the reason out rather than say "unspecified". */
	if (e->reason != CRL_REASON_UNSPECIFIED) {
		if ((reason = ASN1_ENUMERATED_new()) == NULL ||
		    !ASN1_ENUMERATED_set(reason, e->reason) ||
		    X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0,
		    X509V3_ADD_DEFAULT) != 1)
			goto fail;
	}
	if (!X509_CRL_add0_revoked(crl, rev))
		goto fail;
	rev = NULL;	/* the CRL owns it now */
	rc = 0;
	goto out;
fail:
	cg_err(err, errlen, "cannot add serial %s to the CRL", e->serial_hex);
out:
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(when);
	ASN1_INTEGER_free(serial);
	X509_REVOKED_free(rev);
	return rc;
}

static int
set_crl_times(X509_CRL *crl, time_t now, int days, char *err, size_t errlen)
{
	ASN1_TIME	*last, *next = NULL;
	int		 rc = -1;

	if ((last = ASN1_TIME_set(NULL, now)) == NULL ||
	    (next = ASN1_TIME_adj(NULL, now, days, 0)) == NULL ||
	    !X509_CRL_set1_lastUpdate(crl, last) ||
	    !X509_CRL_set1_nextUpdate(crl, next)) {
		cg_err(err, errlen, "cannot set the CRL's update times");
		goto out;
	}
	rc = 0;
out:
	ASN1_TIME_free(next);
	ASN1_TIME_free(last);
	return rc;
}

static int
add_crl_extensions(X509_CRL *crl, X509 *cacert, long number, char *err,
    size_t errlen)
{
	const ASN1_OCTET_STRING	*ski;
	AUTHORITY_KEYID		*akid = NULL;
	ASN1_INTEGER		*num = NULL;
	int			 rc = -1;

	if ((ski = X509_get0_subject_key_id(cacert)) == NULL) {
		cg_err(err, errlen, "the CA certificate has no "
		    "subjectKeyIdentifier");
		return -1;
	}
	if ((num = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set(num, number) ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto fail;
	if ((akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_dup(ski)) == NULL ||
	    X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto fail;
	rc = 0;
	goto out;
fail:
	cg_err(err, errlen, "cannot add the CRL's extensions");
out:
	AUTHORITY_KEYID_free(akid);
	ASN1_INTEGER_free(num);
	return rc;
}

static int
verify_crl(OSSL_LIB_CTX *libctx, X509_CRL *crl, X509 *cacert, char *err,
    size_t errlen)
{
	EVP_PKEY	*pub;
	int		 ok;

	if ((pub = cert_pubkey(libctx, cacert)) == NULL) {
		cg_err(err, errlen, "cannot decode the CA's public key");
		return -1;
	}
	ok = X509_CRL_verify(crl, pub) == 1;
	EVP_PKEY_free(pub);
	if (!ok) {
		cg_err(err, errlen, "the CRL's signature does not verify");
		return -1;
	}
	return 0;
}

X509_CRL *
certgen_crl(struct ks *ks, EVP_PKEY *cakey, X509 *cacert,
    const struct crl_entry *entries, size_t n, long crl_number, int days,
    char *err, size_t errlen)
{
	OSSL_LIB_CTX	*libctx;
	EVP_PKEY	*pub = NULL;
	X509_CRL	*crl;
	size_t		 i;

	if (ks == NULL || cakey == NULL || cacert == NULL) {
		cg_err(err, errlen, "CRL needs a keystore, CA key and CA "
		    "certificate");
		return NULL;
	}
	if (n > 0 && entries == NULL) {
		cg_err(err, errlen, "CRL entry list missing");
		return NULL;
	}
	if (crl_number < 0) {
		cg_err(err, errlen, "CRL number %ld refused: it must not be "
		    "negative", crl_number);
		return NULL;
	}
	if (days < CRL_MIN_DAYS || days > CRL_MAX_DAYS) {
		cg_err(err, errlen, "CRL validity of %d days refused: it must "
		    "be %d to %d days", days, CRL_MIN_DAYS, CRL_MAX_DAYS);
		return NULL;
	}
	libctx = ks_libctx(ks);

	/* A CRL signed by a key that is not the certificate's helps nobody. */
	if ((pub = cert_pubkey(libctx, cacert)) == NULL) {
		cg_err(err, errlen, "cannot decode the CA's public key");
		return NULL;
	}
	if (EVP_PKEY_eq(cakey, pub) != 1) {
		EVP_PKEY_free(pub);
		cg_err(err, errlen, "the CA key does not match the CA "
		    "certificate");
		return NULL;
	}
	EVP_PKEY_free(pub);

	if ((crl = X509_CRL_new_ex(libctx, NULL)) == NULL) {
		cg_err(err, errlen, "out of memory");
		return NULL;
	}
	if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(cacert))) {
		cg_err(err, errlen, "cannot set the CRL's version and issuer");
		goto fail;
	}
	if (set_crl_times(crl, time(NULL), days, err, errlen) == -1)
		goto fail;
	for (i = 0; i < n; i++)
		if (add_crl_entry(crl, &entries[i], err, errlen) == -1)
			goto fail;
	if (!X509_CRL_sort(crl)) {
		cg_err(err, errlen, "cannot sort the CRL");
		goto fail;
	}
	if (add_crl_extensions(crl, cacert, crl_number, err, errlen) == -1)
		goto fail;

	if (x509sign_crl(ks, cakey, crl, err, errlen) == -1)
		goto fail;
	if (verify_crl(libctx, crl, cacert, err, errlen) == -1)
		goto fail;
	return crl;
fail:
	X509_CRL_free(crl);
	return NULL;
}
