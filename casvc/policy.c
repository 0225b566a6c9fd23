/*
 * policy: what iotca will certify.  See policy.h and DESIGN.md "Policy".
 *
 * Everything here reads attacker-supplied bytes (a CSR that came in over
 * the network, an ACME identifier), so every string taken out of an ASN.1
 * object is length-checked, refused if it holds a NUL, and quoted with
 * non-printable bytes escaped before it goes into a reason line.
 *
 * Decisions beyond the draft's words:
 *  - Exactly one label left of ".local" or of a configured domain: the
 *    names the draft describes are "<device-id>.local" and
 *    "<device-id>.<domain>", and the device ID is that label.  A deeper
 *    name ("a.device.local") would let one device claim a whole subtree.
 *    With nested configured domains (home.arpa and lab.home.arpa),
 *    "x.lab.home.arpa" is accepted as one label under lab.home.arpa.
 *  - IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are refused whatever the
 *    IPv4 address: the root's nameConstraints permit only the IPv6 ranges
 *    themselves, so such a certificate would not verify, and a client
 *    compares the 4-byte form anyway.
 *  - A trailing dot ("x.local.") is an empty label and refused.
 *  - RSA keys above 8192 bits are refused: nothing needs them and each one
 *    costs the signer seconds of CPU to verify.
 *  - A CN that is neither one host label nor a DNS name found among the
 *    subjectAltNames is a bad CSR; subject attributes other than CN are
 *    ignored (the certificate's subject is built by certgen from the names),
 *    as are requested extensions other than subjectAltName, except that
 *    a CSR asking to be a CA (basicConstraints CA:TRUE, or keyUsage
 *    keyCertSign or cRLSign) is a bad CSR: the certificate would not carry
 *    them, but a request for them is either a misconfigured client or an
 *    attack, and silently issuing something else hides both.
 *  - No subjectAltName, or one without a DNS name, is a bad CSR; a name
 *    whose leftmost label is not the device ID is a rejected identifier.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "policy.h"

/* Largest CSR we parse: an RSA-8192 CSR with 32 names is well under 8 KiB. */
#define CSR_MAX_BYTES		(64 * 1024)
#define RSA_MIN_BITS		3072
#define RSA_MAX_BITS		8192
/* How much of an untrusted value a reason line quotes. */
#define QUOTE_MAX		80

static const char *const mdns_suffix = "local";

/*
 * Write one reason line and hand back the class, so a refusal is a single
 * "return refuse(...)".
 */
static enum policy_err __attribute__((format(printf, 4, 5)))
refuse(char *reason, size_t reasonlen, enum policy_err e, const char *fmt, ...)
{
	va_list	 ap;

	if (reason != NULL && reasonlen > 0) {
		va_start(ap, fmt);
		vsnprintf(reason, reasonlen, fmt, ap);
		va_end(ap);
	}
	return e;
}

static void
reason_clear(char *reason, size_t reasonlen)
{
	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
}

/*
 * Copy an untrusted byte string into out for quoting: printable ASCII
 * as is, '"' and '\\' and everything else as \xNN, cut at QUOTE_MAX
 * characters with "..." so a reason line stays one short line.
 */
static const char *
quote(const unsigned char *in, size_t inlen, char *out, size_t outlen)
{
	size_t	 i, o = 0;

	if (outlen == 0)
		return "";
	for (i = 0; i < inlen; i++) {
		if (o >= QUOTE_MAX || outlen - o < 5 + 4) {
			memcpy(out + o, "...", 4);
			return out;
		}
		if (in[i] >= 0x20 && in[i] < 0x7f &&
		    in[i] != '"' && in[i] != '\\')
			out[o++] = (char)in[i];
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x",
			    in[i]);
	}
	out[o] = '\0';
	return out;
}

#define QBUF	(QUOTE_MAX + 16)
#define Q(s, buf)	quote((const unsigned char *)(s), strlen(s), (buf), sizeof(buf))

const char *
policy_err_type(enum policy_err e)
{
	switch (e) {
	case POLICY_OK:
		return "";
	case POLICY_BAD_CSR:
		return "badCSR";
	case POLICY_BAD_PUBLIC_KEY:
		/* RFC 8555 7.4 and its registry: a CSR refused for its key
		 * is a bad CSR; badPublicKey is for the JWS's key. */
		return "badCSR";
	case POLICY_BAD_SIGNATURE_ALG:
		return "badSignatureAlgorithm";
	case POLICY_REJECTED_IDENTIFIER:
		return "rejectedIdentifier";
	}
	return "serverInternal";
}

/* --- DNS names ---------------------------------------------------------- */

/*
 * A host name label (RFC 1123 LDH): 1..63 of [a-z0-9-], not starting or
 * ending with a hyphen.  The input is already lower case.  Returns NULL
 * if fine, else what is wrong.
 */
static const char *
label_problem(const char *l, size_t len)
{
	size_t	 i;

	if (len == 0)
		return "has an empty label";
	if (len > POLICY_MAX_LABEL_LEN)
		return "has a label longer than 63 characters";
	for (i = 0; i < len; i++) {
		if (l[i] == '*')
			return "is a wildcard; wildcard names are not certified";
		if (!((l[i] >= 'a' && l[i] <= 'z') ||
		    (l[i] >= '0' && l[i] <= '9') || l[i] == '-'))
			return "has a character not allowed in a host name";
	}
	if (l[0] == '-' || l[len - 1] == '-')
		return "has a label that starts or ends with a hyphen";
	return NULL;
}

/* Whole-name syntax: every label valid.  NULL if fine. */
static const char *
name_problem(const char *name)
{
	const char	*p = name, *dot, *why;
	size_t		 len;

	for (;;) {
		dot = strchr(p, '.');
		len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if ((why = label_problem(p, len)) != NULL)
			return why;
		if (dot == NULL)
			return NULL;
		p = dot + 1;
	}
}

/*
 * A configured domain is usable as a suffix only if it is itself a valid
 * name: an empty or malformed entry must never match everything.
 */
static int
domain_usable(const char *d)
{
	char	 buf[POLICY_MAX_NAME_LEN + 1];
	size_t	 i, len;

	if (d == NULL || (len = strlen(d)) == 0 || len > POLICY_MAX_NAME_LEN)
		return 0;
	for (i = 0; i <= len; i++)
		buf[i] = (char)tolower((unsigned char)d[i]);
	return name_problem(buf) == NULL;
}

/*
 * How name sits under suffix: -1 not under it (whole labels compared),
 * 0 equal to it, else the number of labels left of it.
 */
static int
labels_under(const char *name, const char *suffix)
{
	size_t	 nlen = strlen(name), slen = strlen(suffix), i;
	int	 n = 1;

	if (nlen == slen)
		return strcasecmp(name, suffix) == 0 ? 0 : -1;
	if (nlen < slen + 2 || name[nlen - slen - 1] != '.' ||
	    strcasecmp(name + nlen - slen, suffix) != 0)
		return -1;
	for (i = 0; i < nlen - slen - 1; i++)
		if (name[i] == '.')
			n++;
	return n;
}

/* "home.arpa, lab.example" for a reason line. */
static void
domain_list(const struct policy *pol, char *out, size_t outlen)
{
	size_t	 i, o = 0;
	int	 n;

	out[0] = '\0';
	for (i = 0; i < pol->ndomains && pol->domains != NULL; i++) {
		if (!domain_usable(pol->domains[i]))
			continue;
		n = snprintf(out + o, outlen - o, "%s%s", o ? ", " : "",
		    pol->domains[i]);
		if (n < 0 || (size_t)n >= outlen - o) {
			out[o] = '\0';
			return;
		}
		o += (size_t)n;
	}
}

/* Refuse a name that matched no suffix, naming the suffixes allowed. */
static enum policy_err
refuse_suffix(const struct policy *pol, const char *name, char *reason,
    size_t reasonlen)
{
	char	 doms[160], q[QBUF];

	domain_list(pol, doms, sizeof(doms));
	if (doms[0] == '\0')
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "DNS name \"%s\" is not under .local (no local domain is "
		    "configured)", Q(name, q));
	return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
	    "DNS name \"%s\" is not under .local or a configured domain (%s)",
	    Q(name, q), doms);
}

int
policy_name_within(const char *name, const char *subtree)
{
	return labels_under(name, subtree) >= 0;
}

enum policy_err
policy_check_subtree(const struct policy *pol, const char *name, char *canon,
    size_t canonlen, char *reason, size_t reasonlen)
{
	char		 buf[POLICY_MAX_NAME_LEN + 1], q[QBUF];
	const char	*why;
	size_t		 len, i;

	reason_clear(reason, reasonlen);
	if (pol == NULL || name == NULL || (len = strnlen(name,
	    POLICY_MAX_NAME_LEN + 1)) == 0 || len > POLICY_MAX_NAME_LEN)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "the delegated subtree must be a DNS name of 1 to %d "
		    "characters", POLICY_MAX_NAME_LEN);
	for (i = 0; i <= len; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	if ((why = name_problem(buf)) != NULL)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "the delegated subtree \"%s\" %s", Q(name, q), why);
	if (labels_under(buf, mdns_suffix) >= 0)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "the subtree \"%s\" is under .local, which cannot be "
		    "delegated (mDNS names have no tree to prove)", buf);
	for (i = 0; i < pol->ndomains && pol->domains != NULL; i++)
		if (domain_usable(pol->domains[i]) &&
		    labels_under(buf, pol->domains[i]) >= 0)
			break;
	if (pol->domains == NULL || i == pol->ndomains) {
		char doms[160];

		domain_list(pol, doms, sizeof(doms));
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "the subtree \"%s\" is not within a configured domain (%s)",
		    buf, doms[0] != '\0' ? doms : "none configured");
	}
	if (canon != NULL) {
		if (canonlen <= len)
			return refuse(reason, reasonlen,
			    POLICY_REJECTED_IDENTIFIER, "the subtree \"%s\" does "
			    "not fit the output buffer", buf);
		memcpy(canon, buf, len + 1);
	}
	return POLICY_OK;
}

/*
 * Find the suffix name is directly under (one label).  Returns 1 with
 * *suffix set; 0 with *suffix set to the deepest-matched suffix if name is
 * only under one with several labels or none (*suffix NULL), *depth then
 * telling which (0: the name is the suffix itself, >1: too deep).
 */
static int
find_suffix(const struct policy *pol, const char *name, const char **suffix,
    int *depth)
{
	size_t	 i;
	int	 n;

	*suffix = NULL;
	*depth = -1;
	if ((n = labels_under(name, mdns_suffix)) == 1) {
		*suffix = mdns_suffix;
		return 1;
	} else if (n >= 0) {
		*suffix = mdns_suffix;
		*depth = n;
	}
	for (i = 0; i < pol->ndomains && pol->domains != NULL; i++) {
		if (!domain_usable(pol->domains[i]))
			continue;
		if ((n = labels_under(name, pol->domains[i])) == 1) {
			*suffix = pol->domains[i];
			return 1;
		} else if (n >= 0 && *suffix == NULL) {
			*suffix = pol->domains[i];
			*depth = n;
		}
	}
	return 0;
}

/*
 * The leftmost label (the device ID) must not be "localhost" nor the
 * server's own name; what names the value for the reason line.
 */
static enum policy_err
check_device_label(const struct policy *pol, const char *what,
    const char *label, size_t len, char *reason, size_t reasonlen)
{
	if (len == strlen("localhost") && strncmp(label, "localhost", len) == 0)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "%s uses the reserved label \"localhost\"", what);
	if (pol->server_name != NULL && pol->server_name[0] != '\0' &&
	    strlen(pol->server_name) == len &&
	    strncasecmp(label, pol->server_name, len) == 0)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "%s uses the server's own name \"%.*s\"", what, (int)len,
		    label);
	return POLICY_OK;
}

enum policy_err
policy_check_dns(const struct policy *pol, const char *name, char *canon,
    size_t canonlen, char *reason, size_t reasonlen)
{
	char		 buf[POLICY_MAX_NAME_LEN + 1], q[QBUF];
	char		 what[sizeof(buf) + 16];
	const char	*why, *suffix, *dot;
	size_t		 len, i;
	int		 depth;
	enum policy_err	 e;

	reason_clear(reason, reasonlen);
	if (pol == NULL || name == NULL)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "no DNS name");
	len = strnlen(name, POLICY_MAX_NAME_LEN + 1);
	if (len == 0)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "empty DNS name");
	if (len > POLICY_MAX_NAME_LEN)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "DNS name \"%s\" is longer than %d characters",
		    quote((const unsigned char *)name, len, q, sizeof(q)),
		    POLICY_MAX_NAME_LEN);

	/* DNS names compare case-insensitively; we keep the lower-case form. */
	for (i = 0; i <= len; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);

	if (strcmp(buf, "localhost") == 0)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "DNS name \"localhost\" is never certified");
	if ((why = name_problem(buf)) != NULL)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "DNS name \"%s\" %s", Q(name, q), why);

	if (!find_suffix(pol, buf, &suffix, &depth)) {
		if (suffix == NULL)
			return refuse_suffix(pol, buf, reason, reasonlen);
		if (depth == 0)
			return refuse(reason, reasonlen,
			    POLICY_REJECTED_IDENTIFIER,
			    "DNS name \"%s\" has no device label left of "
			    "\"%s\"", buf, suffix);
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "DNS name \"%s\" has more than one label left of \"%s\"; "
		    "only <device-id>.%s is certified", buf, suffix, suffix);
	}

	dot = strchr(buf, '.');		/* present: a suffix matched */
	snprintf(what, sizeof(what), "DNS name \"%s\"", buf);
	if ((e = check_device_label(pol, what, buf, (size_t)(dot - buf),
	    reason, reasonlen)) != POLICY_OK)
		return e;

	if (canon != NULL) {
		if (canonlen <= len)
			return refuse(reason, reasonlen,
			    POLICY_REJECTED_IDENTIFIER,
			    "DNS name \"%s\" does not fit the output buffer",
			    buf);
		memcpy(canon, buf, len + 1);
	}
	return POLICY_OK;
}

/* --- IP addresses ------------------------------------------------------- */

static int
v4_in(const unsigned char *a, unsigned char b0, unsigned char b1,
    unsigned char b1mask)
{
	return a[0] == b0 && (a[1] & b1mask) == b1;
}

static int
v4_allowed(const unsigned char *a)
{
	return a[0] == 10 ||			/* 10/8 private-use */
	    a[0] == 127 ||			/* 127/8 loopback */
	    v4_in(a, 172, 16, 0xf0) ||		/* 172.16/12 private-use */
	    v4_in(a, 192, 168, 0xff) ||		/* 192.168/16 private-use */
	    v4_in(a, 169, 254, 0xff);		/* 169.254/16 link-local */
}

static int
v6_allowed(const unsigned char *a)
{
	static const unsigned char loopback[16] = { [15] = 1 };

	return memcmp(a, loopback, 16) == 0 ||		/* ::1 */
	    (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||	/* fe80::/10 */
	    (a[0] & 0xfe) == 0xfc;			/* fc00::/7 ULA */
}

static int
v6_is_v4mapped(const unsigned char *a)
{
	static const unsigned char prefix[12] =
	    { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

enum policy_err
policy_check_ip(const unsigned char *addr, size_t len, char *reason,
    size_t reasonlen)
{
	char	 text[INET6_ADDRSTRLEN];

	reason_clear(reason, reasonlen);
	if (addr == NULL || (len != 4 && len != 16))
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "IP address of %zu bytes is neither IPv4 nor IPv6", len);
	if (inet_ntop(len == 4 ? AF_INET : AF_INET6, addr, text,
	    sizeof(text)) == NULL)
		snprintf(text, sizeof(text), "(unprintable)");

	if (len == 4) {
		if (v4_allowed(addr))
			return POLICY_OK;
		if (addr[0] == 100 && (addr[1] & 0xc0) == 64)
			return refuse(reason, reasonlen,
			    POLICY_REJECTED_IDENTIFIER,
			    "IP address %s is shared address space (CGNAT, "
			    "RFC 6598), not loopback, link-local or "
			    "private-use", text);
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "IP address %s is not loopback, link-local or private-use",
		    text);
	}
	if (v6_allowed(addr))
		return POLICY_OK;
	if (v6_is_v4mapped(addr))
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "IP address %s is an IPv4-mapped IPv6 address; request "
		    "the IPv4 address itself", text);
	return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
	    "IP address %s is not loopback (::1), link-local (fe80::/10) or "
	    "unique local (fc00::/7)", text);
}

enum policy_err
policy_check_ip_text(const char *text, char *reason, size_t reasonlen)
{
	unsigned char	 a[16];
	char		 q[QBUF];

	reason_clear(reason, reasonlen);
	if (text == NULL)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "no IP address");
	if (inet_pton(AF_INET, text, a) == 1)
		return policy_check_ip(a, 4, reason, reasonlen);
	if (inet_pton(AF_INET6, text, a) == 1)
		return policy_check_ip(a, 16, reason, reasonlen);
	return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
	    "\"%s\" is not an IPv4 or IPv6 address",
	    quote((const unsigned char *)text, strnlen(text, 256), q,
	    sizeof(q)));
}

/* --- keys and signature algorithms -------------------------------------- */

/*
 * RSA public exponent 65537 only (F4, as every current key generator
 * makes): a small exponent such as 3 has a history of padding and
 * broadcast attacks, and nothing legitimate needs anything else.
 */
static enum policy_err
check_rsa_exponent(const EVP_PKEY *pk, char *reason, size_t reasonlen)
{
	BIGNUM		*e = NULL;
	char		*dec = NULL;
	enum policy_err	 rc = POLICY_OK;

	if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) || e == NULL)
		return refuse(reason, reasonlen, POLICY_BAD_PUBLIC_KEY,
		    "RSA key without a readable public exponent");
	if (!BN_is_word(e, RSA_F4)) {
		dec = BN_num_bits(e) <= 64 ? BN_bn2dec(e) : NULL;
		rc = refuse(reason, reasonlen, POLICY_BAD_PUBLIC_KEY,
		    "key has RSA public exponent %s; only 65537 is accepted",
		    dec != NULL ? dec : "(a large number)");
		OPENSSL_free(dec);
	}
	BN_free(e);
	return rc;
}

enum policy_err
policy_check_key(const EVP_PKEY *pk, char *reason, size_t reasonlen)
{
	static const char accepted[] =
	    "only P-384, P-521 or RSA >= 3072 are accepted";
	char		 group[64];
	const char	*nist;
	int		 bits;

	reason_clear(reason, reasonlen);
	if (pk == NULL)
		return refuse(reason, reasonlen, POLICY_BAD_PUBLIC_KEY,
		    "public key missing or of an unknown type; %s", accepted);

	if (EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "RSA-PSS")) {
		bits = EVP_PKEY_get_bits(pk);
		if (bits < RSA_MIN_BITS)
			return refuse(reason, reasonlen, POLICY_BAD_PUBLIC_KEY,
			    "key is RSA-%d; %s", bits, accepted);
		if (bits > RSA_MAX_BITS)
			return refuse(reason, reasonlen, POLICY_BAD_PUBLIC_KEY,
			    "key is RSA-%d; RSA keys above %d bits are not "
			    "accepted", bits, RSA_MAX_BITS);
		return check_rsa_exponent(pk, reason, reasonlen);
	}

	if (EVP_PKEY_is_a(pk, "EC")) {
		/*
		 * RFC 5480: named curves only.  Explicit parameters, even
		 * when they spell out P-384, are refused by browsers and
		 * have hidden weak curves before (CVE-2020-0601).
		 */
		if (EVP_PKEY_get_utf8_string_param(pk,
		    OSSL_PKEY_PARAM_EC_ENCODING, group, sizeof(group), NULL) &&
		    strcmp(group, OSSL_PKEY_EC_ENCODING_EXPLICIT) == 0)
			return refuse(reason, reasonlen, POLICY_BAD_PUBLIC_KEY,
			    "key is EC with explicit curve parameters; %s",
			    accepted);
		if (!EVP_PKEY_get_utf8_string_param(pk,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL))
			return refuse(reason, reasonlen, POLICY_BAD_PUBLIC_KEY,
			    "key is EC without a named curve; %s", accepted);
		if (strcmp(group, SN_secp384r1) == 0 ||
		    strcmp(group, SN_secp521r1) == 0)
			return POLICY_OK;
		nist = EC_curve_nid2nist(OBJ_txt2nid(group));
		return refuse(reason, reasonlen, POLICY_BAD_PUBLIC_KEY,
		    "key is EC %s; %s", nist != NULL ? nist : group, accepted);
	}

	return refuse(reason, reasonlen, POLICY_BAD_PUBLIC_KEY,
	    "key is %s; %s", EVP_PKEY_get0_type_name(pk) != NULL ?
	    EVP_PKEY_get0_type_name(pk) : "of an unknown type", accepted);
}

/*
 * The DER SubjectPublicKeyInfo of an EC key on a named curve with its point
 * uncompressed (every key a CSR or JWK gives us), put together by the ASN.1
 * code from the curve's OID and the encoded point: the bytes i2d_PUBKEY
 * writes (RFC 5480), without the encoder context OpenSSL 3.0 builds for
 * every i2d_PUBKEY of a provider key, which cost 3 to 4 times the hash and
 * was paid twice per issuance.  0 (and *der untouched) for any other key,
 * which goes through i2d_PUBKEY.
 */
static int
ec_named_spki_der(const EVP_PKEY *pk, unsigned char **der)
{
	X509_PUBKEY	*xpk;
	unsigned char	*pt = NULL;
	size_t		 ptlen;
	char		 group[64], enc[32], form[32];
	int		 nid, len = 0;

	if (!EVP_PKEY_is_a(pk, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), NULL) ||
	    (nid = OBJ_sn2nid(group)) == NID_undef ||
	    !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_ENCODING,
	    enc, sizeof(enc), NULL) ||
	    strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0 ||
	    !EVP_PKEY_get_utf8_string_param(pk,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, form, sizeof(form),
	    NULL) ||
	    strcmp(form, OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) != 0)
		return 0;
	if ((ptlen = EVP_PKEY_get1_encoded_public_key((EVP_PKEY *)pk,
	    &pt)) == 0 || ptlen > INT_MAX || pt[0] != POINT_CONVERSION_UNCOMPRESSED ||
	    (xpk = X509_PUBKEY_new()) == NULL) {
		OPENSSL_free(pt);
		return 0;
	}
	/* The curve's and the algorithm's OIDs are static; pt is xpk's now. */
	if (X509_PUBKEY_set0_param(xpk, OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
	    V_ASN1_OBJECT, OBJ_nid2obj(nid), pt, (int)ptlen) != 1)
		OPENSSL_free(pt);
	else if ((len = i2d_X509_PUBKEY(xpk, der)) < 0)
		len = 0;
	X509_PUBKEY_free(xpk);
	return len;
}

int
policy_spki_sha256(const EVP_PKEY *pk, char *out, size_t outlen)
{
	unsigned char	 md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int	 mdlen = 0, i;
	int		 len, ok;

	if (pk == NULL || out == NULL || outlen <= POLICY_SPKI_HEX_LEN)
		return -1;
	if ((len = ec_named_spki_der(pk, &der)) <= 0 &&
	    (len = i2d_PUBKEY(pk, &der)) <= 0)
		return -1;
	ok = EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) == 1 &&
	    mdlen * 2 == POLICY_SPKI_HEX_LEN;
	OPENSSL_free(der);
	if (!ok)
		return -1;
	for (i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static int
digest_ok(int mdnid)
{
	return mdnid == NID_sha256 || mdnid == NID_sha384 ||
	    mdnid == NID_sha512;
}

/*
 * The message digest of an RSASSA-PSS signature, from its parameters
 * (RFC 4055): an absent hashAlgorithm means SHA-1.  NID_undef if the
 * parameters do not decode.
 */
static int
pss_digest(const X509_ALGOR *alg)
{
	const void		*pval;
	const ASN1_STRING	*seq;
	const ASN1_OBJECT	*obj;
	const unsigned char	*p;
	RSA_PSS_PARAMS		*pss;
	int			 ptype, nid;

	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	if (ptype != V_ASN1_SEQUENCE || (seq = pval) == NULL)
		return NID_undef;
	p = ASN1_STRING_get0_data(seq);
	if ((pss = d2i_RSA_PSS_PARAMS(NULL, &p, ASN1_STRING_length(seq))) ==
	    NULL)
		return NID_undef;
	if (pss->hashAlgorithm == NULL)
		nid = NID_sha1;
	else {
		X509_ALGOR_get0(&obj, NULL, NULL, pss->hashAlgorithm);
		nid = OBJ_obj2nid(obj);
	}
	RSA_PSS_PARAMS_free(pss);
	return nid;
}

static enum policy_err
check_sigalg(X509_REQ *req, char *reason, size_t reasonlen)
{
	const X509_ALGOR	*alg;
	const ASN1_BIT_STRING	*sig;
	int			 signid, mdnid, pknid;
	const char		*sn;

	X509_REQ_get0_signature(req, &sig, &alg);
	signid = X509_REQ_get_signature_nid(req);
	if (signid == NID_rsassaPss)
		mdnid = pss_digest(alg);
	else if (!OBJ_find_sigid_algs(signid, &mdnid, &pknid))
		mdnid = NID_undef;
	if (digest_ok(mdnid))
		return POLICY_OK;
	if (mdnid != NID_undef)
		return refuse(reason, reasonlen, POLICY_BAD_SIGNATURE_ALG,
		    "signature hash %s is not accepted; only SHA-256, SHA-384 "
		    "or SHA-512", OBJ_nid2sn(mdnid));
	sn = OBJ_nid2sn(signid);
	return refuse(reason, reasonlen, POLICY_BAD_SIGNATURE_ALG,
	    "signature algorithm %s does not use SHA-256, SHA-384 or SHA-512",
	    sn != NULL ? sn : "(unknown)");
}

/* --- the CSR as a whole ------------------------------------------------- */

/*
 * Take an ASN.1 string's bytes as a C string: refused if empty, longer
 * than max or holding a NUL (which would cut the name short for a C
 * reader but not for a TLS client).
 */
static int
asn1_to_cstr(const unsigned char *data, int len, size_t max, char *out,
    size_t outlen)
{
	if (data == NULL || len <= 0 || (size_t)len > max ||
	    (size_t)len >= outlen || memchr(data, '\0', (size_t)len) != NULL)
		return -1;
	memcpy(out, data, (size_t)len);
	out[len] = '\0';
	return 0;
}

enum cn_kind { CN_NONE, CN_LABEL, CN_NAME };

/*
 * The subject's commonName: absent, one host label (the device ID) or a
 * DNS name (checked against the subjectAltNames later).  Lower-cased.
 */
static enum policy_err
read_cn(X509_REQ *req, enum cn_kind *kind, char *cn, size_t cnlen,
    char *reason, size_t reasonlen)
{
	const X509_NAME	*subj = X509_REQ_get_subject_name(req);
	X509_NAME_ENTRY	*ent;
	unsigned char	*utf8 = NULL;
	char		 q[QBUF];
	int		 idx, len;
	size_t		 i;

	*kind = CN_NONE;
	if (subj == NULL ||
	    (idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1)) < 0)
		return POLICY_OK;
	if (X509_NAME_get_index_by_NID(subj, NID_commonName, idx) >= 0)
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "subject has more than one commonName");
	if ((ent = X509_NAME_get_entry(subj, idx)) == NULL ||
	    (len = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(ent))) < 0)
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "commonName cannot be decoded");
	if (asn1_to_cstr(utf8, len, POLICY_MAX_NAME_LEN, cn, cnlen) == -1) {
		refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "commonName \"%s\" is empty, too long or holds a NUL",
		    quote(utf8, len > 0 ? (size_t)len : 0, q, sizeof(q)));
		OPENSSL_free(utf8);
		return POLICY_BAD_CSR;
	}
	OPENSSL_free(utf8);

	for (i = 0; cn[i] != '\0'; i++)
		cn[i] = (char)tolower((unsigned char)cn[i]);
	if (strchr(cn, '.') != NULL) {
		*kind = CN_NAME;
		return POLICY_OK;
	}
	if (label_problem(cn, strlen(cn)) != NULL)
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "commonName \"%s\" is neither a host label (the device ID) "
		    "nor a DNS name", Q(cn, q));
	*kind = CN_LABEL;
	return POLICY_OK;
}

/*
 * The requested extensions, from the one extensionRequest attribute.  An
 * absent attribute is an empty list; two of them, or one that does not
 * decode, make the CSR bad rather than letting us pick one.
 */
static enum policy_err
read_extensions(X509_REQ *req, STACK_OF(X509_EXTENSION) **exts,
    char *reason, size_t reasonlen)
{
	X509_ATTRIBUTE	*attr;
	int		 idx, n = 0, nids[] = { NID_ext_req, NID_ms_ext_req };
	size_t		 i;

	*exts = NULL;
	for (i = 0; i < sizeof(nids) / sizeof(nids[0]); i++) {
		idx = -1;
		while ((idx = X509_REQ_get_attr_by_NID(req, nids[i], idx)) >=
		    0) {
			attr = X509_REQ_get_attr(req, idx);
			if (attr == NULL || X509_ATTRIBUTE_count(attr) != 1)
				return refuse(reason, reasonlen,
				    POLICY_BAD_CSR, "malformed extension "
				    "request attribute");
			n++;
		}
	}
	if (n > 1)
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "more than one extension request attribute");
	if (n == 0)
		return POLICY_OK;
	if ((*exts = X509_REQ_get_extensions(req)) == NULL)
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "extension request cannot be decoded");
	return POLICY_OK;
}

/*
 * Refuse an extension that asks for CA powers.  A basicConstraints or
 * keyUsage extension that does not decode is refused too: we would not know
 * what it asked for.
 */
static enum policy_err
refuse_ca_request(X509_EXTENSION *x, char *reason, size_t reasonlen)
{
	BASIC_CONSTRAINTS	*bc;
	ASN1_BIT_STRING		*ku;
	int			 nid, ca;

	nid = OBJ_obj2nid(X509_EXTENSION_get_object(x));
	if (nid == NID_basic_constraints) {
		if ((bc = X509V3_EXT_d2i(x)) == NULL)
			return refuse(reason, reasonlen, POLICY_BAD_CSR,
			    "basicConstraints cannot be decoded");
		ca = bc->ca;
		BASIC_CONSTRAINTS_free(bc);
		if (ca)
			return refuse(reason, reasonlen, POLICY_BAD_CSR,
			    "the CSR asks for basicConstraints CA:TRUE; device "
			    "certificates are never CAs");
	} else if (nid == NID_key_usage) {
		if ((ku = X509V3_EXT_d2i(x)) == NULL)
			return refuse(reason, reasonlen, POLICY_BAD_CSR,
			    "keyUsage cannot be decoded");
		/* Bits 5 and 6 of KeyUsage (RFC 5280 4.2.1.3). */
		ca = ASN1_BIT_STRING_get_bit(ku, 5) ||
		    ASN1_BIT_STRING_get_bit(ku, 6);
		ASN1_BIT_STRING_free(ku);
		if (ca)
			return refuse(reason, reasonlen, POLICY_BAD_CSR,
			    "the CSR asks for keyUsage keyCertSign or cRLSign; "
			    "device certificates are never CAs");
	}
	return POLICY_OK;
}

/*
 * Does a requested extendedKeyUsage hold id-kp-cmcRA?  The other purposes
 * are not granted (a device certificate has serverAuth and clientAuth), and
 * one that does not decode asks for nothing, as before.
 */
static int
asks_cmc_ra(X509_EXTENSION *x)
{
	EXTENDED_KEY_USAGE	*eku;
	int			 i, found = 0;

	if ((eku = X509V3_EXT_d2i(x)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	for (i = 0; i < sk_ASN1_OBJECT_num(eku); i++)
		if (OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == NID_cmcRA)
			found = 1;
	EXTENDED_KEY_USAGE_free(eku);
	return found;
}

/*
 * The one subjectAltName extension, decoded.  NULL names if absent.  Every
 * other requested extension is looked at only to refuse a request for CA
 * powers.
 */
static enum policy_err
read_san(X509_REQ *req, GENERAL_NAMES **names, int *cmc_ra, char *reason,
    size_t reasonlen)
{
	STACK_OF(X509_EXTENSION)	*exts;
	X509_EXTENSION			*ext = NULL;
	enum policy_err			 e;
	int				 i, n;

	*names = NULL;
	if ((e = read_extensions(req, &exts, reason, reasonlen)) != POLICY_OK)
		return e;
	n = exts != NULL ? sk_X509_EXTENSION_num(exts) : 0;
	for (i = 0; i < n; i++) {
		X509_EXTENSION *x = sk_X509_EXTENSION_value(exts, i);

		if ((e = refuse_ca_request(x, reason, reasonlen)) != POLICY_OK)
			goto out;
		if (OBJ_obj2nid(X509_EXTENSION_get_object(x)) ==
		    NID_ext_key_usage && cmc_ra != NULL)
			*cmc_ra = asks_cmc_ra(x);
		if (OBJ_obj2nid(X509_EXTENSION_get_object(x)) !=
		    NID_subject_alt_name)
			continue;
		if (ext != NULL) {
			e = refuse(reason, reasonlen, POLICY_BAD_CSR,
			    "more than one subjectAltName extension");
			goto out;
		}
		ext = x;
	}
	if (ext == NULL) {
		e = refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "no subjectAltName; at least one DNS name "
		    "(<device-id>.local) is required");
		goto out;
	}
	if ((*names = X509V3_EXT_d2i(ext)) == NULL)
		e = refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "subjectAltName cannot be decoded");
 out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return e;
}

static const char *
gen_type_name(int type)
{
	switch (type) {
	case GEN_OTHERNAME:	return "otherName";
	case GEN_EMAIL:		return "email (rfc822Name)";
	case GEN_DNS:		return "dNSName";
	case GEN_X400:		return "x400Address";
	case GEN_DIRNAME:	return "directoryName";
	case GEN_EDIPARTY:	return "ediPartyName";
	case GEN_URI:		return "URI";
	case GEN_IPADD:		return "iPAddress";
	case GEN_RID:		return "registeredID";
	}
	return "unknown";
}

static int
have_dns(const struct csr_request *out, const char *name)
{
	size_t	 i;

	for (i = 0; i < out->ndns; i++)
		if (strcmp(out->dns[i], name) == 0)
			return 1;
	return 0;
}

static int
have_ip(const struct csr_request *out, const unsigned char *a, size_t len)
{
	size_t	 i;

	for (i = 0; i < out->nip; i++)
		if (out->iplen[i] == len && memcmp(out->ip[i], a, len) == 0)
			return 1;
	return 0;
}

static enum policy_err
too_many_names(char *reason, size_t reasonlen)
{
	return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
	    "more than %d distinct subjectAltNames", POLICY_MAX_NAMES);
}

static enum policy_err
add_dns(const struct policy *pol, const ASN1_IA5STRING *s,
    struct csr_request *out, char *reason, size_t reasonlen)
{
	char		 name[POLICY_MAX_NAME_LEN + 1], canon[sizeof(name)];
	char		 q[QBUF];
	enum policy_err	 e;
	int		 len = ASN1_STRING_length(s);
	const unsigned char *data = ASN1_STRING_get0_data(s);

	if (asn1_to_cstr(data, len, POLICY_MAX_NAME_LEN, name,
	    sizeof(name)) == -1)
		return refuse(reason, reasonlen, POLICY_REJECTED_IDENTIFIER,
		    "DNS name \"%s\" is empty, longer than %d characters or "
		    "holds a NUL", quote(data, len > 0 ? (size_t)len : 0, q,
		    sizeof(q)), POLICY_MAX_NAME_LEN);
	if ((e = policy_check_dns(pol, name, canon, sizeof(canon), reason,
	    reasonlen)) != POLICY_OK)
		return e;
	if (have_dns(out, canon))
		return POLICY_OK;	/* duplicates tolerated, kept once */
	if (out->ndns + out->nip >= POLICY_MAX_NAMES)
		return too_many_names(reason, reasonlen);
	memcpy(out->dns[out->ndns++], canon, strlen(canon) + 1);
	return POLICY_OK;
}

static enum policy_err
add_ip(const ASN1_OCTET_STRING *s, struct csr_request *out, char *reason,
    size_t reasonlen)
{
	int		 len = ASN1_STRING_length(s);
	const unsigned char *a = ASN1_STRING_get0_data(s);
	enum policy_err	 e;

	/* Checked here so a malformed length is the CSR's fault. */
	if (a == NULL || (len != 4 && len != 16))
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "subjectAltName iPAddress of %d bytes is neither IPv4 nor "
		    "IPv6", len);
	if ((e = policy_check_ip(a, (size_t)len, reason, reasonlen)) !=
	    POLICY_OK)
		return e;
	if (have_ip(out, a, (size_t)len))
		return POLICY_OK;
	if (out->ndns + out->nip >= POLICY_MAX_NAMES)
		return too_many_names(reason, reasonlen);
	memcpy(out->ip[out->nip], a, (size_t)len);
	out->iplen[out->nip++] = (size_t)len;
	return POLICY_OK;
}

/* Every subjectAltName, checked and normalised into out. */
static enum policy_err
collect_names(const struct policy *pol, const GENERAL_NAMES *names,
    struct csr_request *out, char *reason, size_t reasonlen)
{
	const GENERAL_NAME	*gn;
	enum policy_err		 e;
	int			 i, type;
	void			*val;

	for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		gn = sk_GENERAL_NAME_value(names, i);
		val = GENERAL_NAME_get0_value(gn, &type);
		if (type == GEN_DNS)
			e = add_dns(pol, val, out, reason, reasonlen);
		else if (type == GEN_IPADD)
			e = add_ip(val, out, reason, reasonlen);
		else
			e = refuse(reason, reasonlen,
			    POLICY_REJECTED_IDENTIFIER,
			    "subjectAltName of type %s is not accepted; only "
			    "DNS names and IP addresses", gen_type_name(type));
		if (e != POLICY_OK)
			return e;
	}
	if (out->ndns == 0)
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "subjectAltName has no DNS name; at least "
		    "<device-id>.local is required");
	return POLICY_OK;
}

/*
 * Settle the device ID (DESIGN.md: the single-label CN, else the leftmost
 * label of the first DNS name) and hold every DNS name to it.
 */
static enum policy_err
derive_device_id(const struct policy *pol, enum cn_kind kind, const char *cn,
    struct csr_request *out, char *reason, size_t reasonlen)
{
	char		 q[QBUF], what[POLICY_MAX_NAME_LEN + 32];
	const char	*dot;
	size_t		 i, len;
	enum policy_err	 e;

	if (pol->strict_cn && kind == CN_NONE)
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "strict mode: the commonName must be the device ID, and "
		    "the CSR has none");
	if (pol->strict_cn && kind == CN_NAME)
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "strict mode: the commonName must be the device ID (one "
		    "label), not \"%s\"", Q(cn, q));

	if (kind == CN_LABEL) {
		len = strlen(cn);
		snprintf(what, sizeof(what), "commonName \"%s\"", cn);
		if ((e = check_device_label(pol, what, cn, len, reason,
		    reasonlen)) != POLICY_OK)
			return e;
		memcpy(out->device_id, cn, len + 1);
	} else {
		dot = strchr(out->dns[0], '.');
		len = (size_t)(dot - out->dns[0]);
		memcpy(out->device_id, out->dns[0], len);
		out->device_id[len] = '\0';
	}

	for (i = 0; i < out->ndns; i++) {
		dot = strchr(out->dns[i], '.');
		if ((size_t)(dot - out->dns[i]) != len ||
		    memcmp(out->dns[i], out->device_id, len) != 0)
			return refuse(reason, reasonlen,
			    POLICY_REJECTED_IDENTIFIER, "DNS name \"%s\" does "
			    "not start with the device ID \"%s\"; one CSR is "
			    "for one device", out->dns[i], out->device_id);
	}

	if (kind == CN_NAME && !have_dns(out, cn))
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "commonName \"%s\" is not among the subjectAltName DNS "
		    "names", Q(cn, q));
	return POLICY_OK;
}

static enum policy_err
check_csr(const struct policy *pol, X509_REQ *req, struct csr_request *out,
    char *reason, size_t reasonlen)
{
	EVP_PKEY	*pk;
	GENERAL_NAMES	*names = NULL;
	char		 cn[POLICY_MAX_NAME_LEN + 1];
	enum cn_kind	 kind;
	enum policy_err	 e;

	if (X509_REQ_get_version(req) != X509_REQ_VERSION_1)
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "CSR version %ld is not v1", X509_REQ_get_version(req));

	/*
	 * Key and hash first: they are what the CSR claims, and a weak one
	 * gets its own error type whether or not the signature holds.
	 */
	pk = X509_REQ_get0_pubkey(req);
	if ((e = policy_check_key(pk, reason, reasonlen)) != POLICY_OK)
		return e;
	if ((e = check_sigalg(req, reason, reasonlen)) != POLICY_OK)
		return e;
	if (X509_REQ_verify(req, pk) != 1)
		return refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "CSR self-signature does not verify");

	if ((e = read_cn(req, &kind, cn, sizeof(cn), reason, reasonlen)) !=
	    POLICY_OK)
		return e;
	if ((e = read_san(req, &names, &out->wants_cmc_ra, reason,
	    reasonlen)) != POLICY_OK)
		return e;
	e = collect_names(pol, names, out, reason, reasonlen);
	GENERAL_NAMES_free(names);
	if (e != POLICY_OK)
		return e;
	return derive_device_id(pol, kind, cn, out, reason, reasonlen);
}

enum policy_err
policy_check_csr(const struct policy *pol, X509_REQ *req,
    struct csr_request *out, char *reason, size_t reasonlen)
{
	struct csr_request	 tmp;
	enum policy_err		 e;

	reason_clear(reason, reasonlen);
	if (pol == NULL || req == NULL)
		return refuse(reason, reasonlen, POLICY_BAD_CSR, "no CSR");
	/* Fill a private copy so a refused CSR never leaves half a result. */
	memset(&tmp, 0, sizeof(tmp));
	e = check_csr(pol, req, &tmp, reason, reasonlen);
	if (e == POLICY_OK) {
		reason_clear(reason, reasonlen);
		if (out != NULL)
			*out = tmp;
	} else if (out != NULL)
		memset(out, 0, sizeof(*out));
	return e;
}

/* --- parsing ------------------------------------------------------------ */

static X509_REQ *
parse_der(const unsigned char *buf, size_t len, char *reason,
    size_t reasonlen)
{
	const unsigned char	*p = buf;
	X509_REQ		*req;

	if ((req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL) {
		refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "CSR is not a DER or PEM PKCS#10 request");
		return NULL;
	}
	if (p != buf + len) {
		X509_REQ_free(req);
		refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "CSR has %zu trailing bytes", len - (size_t)(p - buf));
		return NULL;
	}
	return req;
}

static int
only_space(const unsigned char *p, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (!isspace(p[i]))
			return 0;
	return 1;
}

/*
 * One PEM block, nothing but white space around it, label "CERTIFICATE
 * REQUEST" (or the older "NEW CERTIFICATE REQUEST"), no headers.
 */
static X509_REQ *
parse_pem(const unsigned char *buf, size_t len, char *reason,
    size_t reasonlen)
{
	BIO		*bio;
	char		*name = NULL, *header = NULL;
	unsigned char	*der = NULL;
	const char	*rest;
	long		 derlen = 0;
	long		 restlen;
	X509_REQ	*req = NULL;

	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		refuse(reason, reasonlen, POLICY_BAD_CSR, "out of memory");
		return NULL;
	}
	if (!PEM_read_bio(bio, &name, &header, &der, &derlen)) {
		refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "CSR PEM block cannot be decoded");
		goto out;
	}
	if (strcmp(name, PEM_STRING_X509_REQ) != 0 &&
	    strcmp(name, PEM_STRING_X509_REQ_OLD) != 0) {
		refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "PEM block is not a certificate request");
		goto out;
	}
	if (header != NULL && header[0] != '\0') {
		refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "CSR PEM block has headers");
		goto out;
	}
	restlen = BIO_get_mem_data(bio, &rest);
	if (restlen < 0 || !only_space((const unsigned char *)rest,
	    (size_t)restlen)) {
		refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "CSR PEM block is followed by other data");
		goto out;
	}
	if (derlen <= 0) {
		refuse(reason, reasonlen, POLICY_BAD_CSR, "CSR PEM is empty");
		goto out;
	}
	req = parse_der(der, (size_t)derlen, reason, reasonlen);
 out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	return req;
}

X509_REQ *
policy_parse_csr(const unsigned char *buf, size_t len, char *reason,
    size_t reasonlen)
{
	static const char	 begin[] = "-----BEGIN ";
	size_t			 i;

	reason_clear(reason, reasonlen);
	if (buf == NULL || len == 0) {
		refuse(reason, reasonlen, POLICY_BAD_CSR, "empty CSR");
		return NULL;
	}
	if (len > CSR_MAX_BYTES) {
		refuse(reason, reasonlen, POLICY_BAD_CSR,
		    "CSR of %zu bytes is larger than %d", len, CSR_MAX_BYTES);
		return NULL;
	}
	/* PEM if, after leading white space, it opens a PEM block. */
	for (i = 0; i < len && isspace(buf[i]); i++)
		continue;
	if (len - i >= sizeof(begin) - 1 &&
	    memcmp(buf + i, begin, sizeof(begin) - 1) == 0)
		return parse_pem(buf + i, len - i, reason, reasonlen);
	return parse_der(buf, len, reason, reasonlen);
}
