/*
 * devcert: device certificates (certgen.h).  A certificate is built field
 * by field from a request that passed policy_check_csr(), never copied
 * from the CSR: only its public key and the normalised names in the
 * csr_request make it into the certificate.  Before the CA key is used,
 * certgen_lint() looks at the finished TBS certificate again with no
 * knowledge of how it was built, so a mistake here (or a future change)
 * cannot silently produce a CA certificate or a name outside policy.
 *
 * Decisions:
 *  - 90 days is a hard ceiling (draft 3.4.5, DESIGN.md) even if a policy
 *    says more: max_days outside 1..90 is a configuration error.
 *  - The lint refuses a notBefore more than an hour in the past or five
 *    minutes in the future: backdating is how a misused CA hides an
 *    issuance, and we only ever backdate by 60 s for clock skew.
 *  - SKI is the SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2 (1)),
 *    which every verifier expects.  The AKI key ID is the CA's SKI, or the
 *    same digest of the CA key when the CA certificate has no SKI.
 *  - After signing, the signature is verified with the CA certificate's
 *    key: this catches a key/certificate mismatch and a faulty signer
 *    before a bad certificate leaves the process.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certgen.h"
#include "x509sign.h"
#include "keystore.h"
#include "policy.h"

#define CN_MAX_LEN	64	/* ub-common-name, RFC 5280 appendix A */
#define SERIAL_BYTES		16
#define SERIAL_MIN_BITS		64
#define SERIAL_MAX_BYTES	20	/* RFC 5280 4.1.2.2 */
#define MAX_DAYS_CEILING	90	/* draft 3.4.5: three months or less */
#define CLOCK_SKEW		60	/* notBefore backdating, seconds */
#define LINT_PAST_SLACK		3600
#define LINT_FUTURE_SLACK	300
#define DAY			86400L

static int	lint_all(const struct policy *, X509 *, X509 *, int, char *,
		    size_t);

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
max_days_valid(const struct policy *pol)
{
	return pol->max_days >= 1 && pol->max_days <= MAX_DAYS_CEILING;
}

/* SHA-1 of a certificate's subjectPublicKey bits, for SKI and AKI. */
static ASN1_OCTET_STRING *
key_id(OSSL_LIB_CTX *libctx, const X509 *x)
{
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0;
	EVP_MD			*sha1;
	ASN1_OCTET_STRING	*id = NULL;

	if ((sha1 = EVP_MD_fetch(libctx, "SHA1", NULL)) == NULL)
		return NULL;
	if (X509_pubkey_digest(x, sha1, md, &mdlen) == 1 &&
	    (id = ASN1_OCTET_STRING_new()) != NULL &&
	    ASN1_OCTET_STRING_set(id, md, (int)mdlen) != 1) {
		ASN1_OCTET_STRING_free(id);
		id = NULL;
	}
	EVP_MD_free(sha1);
	return id;
}

/* --- building ----------------------------------------------------------- */

/*
 * A positive serial of SERIAL_BYTES random bytes: the top bit cleared so
 * the DER INTEGER needs no sign octet, the first byte non-zero so it is
 * always a full 16 octets (no leading zero to strip).
 */
static int
set_serial(OSSL_LIB_CTX *libctx, X509 *x, char *err, size_t errlen)
{
	unsigned char	 buf[SERIAL_BYTES];
	BIGNUM		*bn;
	ASN1_INTEGER	*ai;
	int		 tries, ok;

	for (tries = 0; tries < 16; tries++) {
		if (RAND_bytes_ex(libctx, buf, sizeof(buf), 0) != 1)
			return fail(err, errlen, "random serial: RAND_bytes "
			    "failed");
		buf[0] &= 0x7f;
		if (buf[0] != 0)
			break;
	}
	if (buf[0] == 0)
		return fail(err, errlen, "random serial: RNG keeps returning "
		    "zero bytes");
	if ((bn = BN_bin2bn(buf, sizeof(buf), NULL)) == NULL)
		return fail(err, errlen, "random serial: out of memory");
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	ok = ai != NULL && X509_set_serialNumber(x, ai) == 1;
	ASN1_INTEGER_free(ai);
	OPENSSL_cleanse(buf, sizeof(buf));
	return ok ? 0 : fail(err, errlen, "random serial: cannot set");
}

static int
set_names(X509 *x, X509 *cacert, const struct csr_request *creq, char *err,
    size_t errlen)
{
	X509_NAME	*subj;
	const char	*cn = creq->device_id;
	size_t		 i;
	int		 ok;

	/*
	 * The CN is the first DNS name that fits (ub-common-name is 64), as
	 * stock clients expect: certbot renews for every name in the subject
	 * too, and a bare device ID there is no name it can ask for.
	 */
	for (i = 0; i < creq->ndns; i++) {
		if (strlen(creq->dns[i]) <= CN_MAX_LEN) {
			cn = creq->dns[i];
			break;
		}
	}
	if ((subj = X509_NAME_new()) == NULL)
		return fail(err, errlen, "subject: out of memory");
	ok = X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) == 1 &&
	    X509_set_subject_name(x, subj) == 1;
	X509_NAME_free(subj);
	if (!ok)
		return fail(err, errlen, "cannot set subject CN=%s", cn);
	if (X509_set_issuer_name(x, X509_get_subject_name(cacert)) != 1)
		return fail(err, errlen, "cannot set issuer");
	return 0;
}

static int
set_validity(X509 *x, int days, char *err, size_t errlen)
{
	time_t	 now = time(NULL), nb;

	if (now == (time_t)-1)
		return fail(err, errlen, "validity: no clock");
	nb = now - CLOCK_SKEW;
	if (X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), days, 0, &nb) == NULL)
		return fail(err, errlen, "validity: cannot set times");
	return 0;
}

static int
add_basic_constraints(X509 *x)
{
	BASIC_CONSTRAINTS	*bc;
	int			 ok;

	if ((bc = BASIC_CONSTRAINTS_new()) == NULL)
		return 0;
	bc->ca = 0;		/* DER: the empty SEQUENCE, CA:FALSE */
	ok = X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1,
	    X509V3_ADD_DEFAULT) == 1;
	BASIC_CONSTRAINTS_free(bc);
	return ok;
}

/* Key encipherment only makes sense for an rsaEncryption key (TLS 1.2 RSA kx). */
static int
add_key_usage(X509 *x, const EVP_PKEY *pk)
{
	ASN1_BIT_STRING	*ku;
	int		 ok;

	if ((ku = ASN1_BIT_STRING_new()) == NULL)
		return 0;
	ok = ASN1_BIT_STRING_set_bit(ku, 0, 1) == 1 &&	/* digitalSignature */
	    (!EVP_PKEY_is_a(pk, "RSA") ||
	    ASN1_BIT_STRING_set_bit(ku, 2, 1) == 1) &&	/* keyEncipherment */
	    X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) == 1;
	ASN1_BIT_STRING_free(ku);
	return ok;
}

/* serverAuth for the device's TLS server, clientAuth for EAP-TLS; cmcRA
 * (RFC 6402) for a registration authority the signer vouched for. */
static int
add_eku(X509 *x, int cmc_ra)
{
	EXTENDED_KEY_USAGE	*eku;
	ASN1_OBJECT		*o;
	int			 ok = 0;

	if ((eku = sk_ASN1_OBJECT_new_null()) == NULL)
		return 0;
	if ((o = OBJ_nid2obj(NID_server_auth)) == NULL ||
	    sk_ASN1_OBJECT_push(eku, o) <= 0)
		goto out;
	if ((o = OBJ_nid2obj(NID_client_auth)) == NULL ||
	    sk_ASN1_OBJECT_push(eku, o) <= 0)
		goto out;
	if (cmc_ra && ((o = OBJ_nid2obj(NID_cmcRA)) == NULL ||
	    sk_ASN1_OBJECT_push(eku, o) <= 0))
		goto out;
	ok = X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0,
	    X509V3_ADD_DEFAULT) == 1;
 out:
	sk_ASN1_OBJECT_free(eku);	/* the objects are OpenSSL's own */
	return ok;
}

static int
push_name(GENERAL_NAMES *gens, int type, const unsigned char *data,
    size_t len)
{
	GENERAL_NAME	*gn;
	ASN1_STRING	*s;

	if ((s = ASN1_STRING_type_new(type == GEN_DNS || type == GEN_URI ?
	    V_ASN1_IA5STRING : V_ASN1_OCTET_STRING)) == NULL)
		return 0;
	if (ASN1_STRING_set(s, data, (int)len) != 1 ||
	    (gn = GENERAL_NAME_new()) == NULL) {
		ASN1_STRING_free(s);
		return 0;
	}
	GENERAL_NAME_set0_value(gn, type, s);
	if (sk_GENERAL_NAME_push(gens, gn) <= 0) {
		GENERAL_NAME_free(gn);
		return 0;
	}
	return 1;
}

/* The SAN exactly as the request was normalised: DNS names, then IPs. */
static int
add_san(X509 *x, const struct csr_request *creq)
{
	GENERAL_NAMES	*gens;
	size_t		 i;
	int		 ok = 0;

	if (creq->ndns > POLICY_MAX_NAMES || creq->nip > POLICY_MAX_NAMES)
		return 0;
	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		return 0;
	for (i = 0; i < creq->ndns; i++)
		if (!push_name(gens, GEN_DNS,
		    (const unsigned char *)creq->dns[i],
		    strnlen(creq->dns[i], POLICY_MAX_NAME_LEN)))
			goto out;
	for (i = 0; i < creq->nip; i++) {
		if (creq->iplen[i] != 4 && creq->iplen[i] != 16)
			goto out;
		if (!push_name(gens, GEN_IPADD, creq->ip[i], creq->iplen[i]))
			goto out;
	}
	ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) == 1;
 out:
	GENERAL_NAMES_free(gens);
	return ok;
}

/* CRL Distribution Point: one DistributionPoint, fullName the CRL's URL,
 * no reasons, no cRLIssuer (RFC 5280 4.2.1.13). */
static int
add_crl_dp(X509 *x, const char *url)
{
	CRL_DIST_POINTS	*cdp;
	DIST_POINT	*dp = NULL;
	int		 ok = 0;

	if ((cdp = sk_DIST_POINT_new_null()) == NULL)
		return 0;
	if ((dp = DIST_POINT_new()) == NULL ||
	    (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
	    (dp->distpoint->name.fullname = GENERAL_NAMES_new()) == NULL)
		goto out;
	dp->distpoint->type = 0;	/* fullName */
	if (!push_name(dp->distpoint->name.fullname, GEN_URI,
	    (const unsigned char *)url, strlen(url)) ||
	    sk_DIST_POINT_push(cdp, dp) <= 0)
		goto out;
	dp = NULL;	/* cdp owns it */
	ok = X509_add1_ext_i2d(x, NID_crl_distribution_points, cdp, 0,
	    X509V3_ADD_DEFAULT) == 1;
 out:
	DIST_POINT_free(dp);
	CRL_DIST_POINTS_free(cdp);
	return ok;
}

/* Authority Information Access: one caIssuers, the root's URL (DER
 * certificate over HTTP, RFC 5280 4.2.2.1).  No OCSP: there is none. */
static int
add_aia(X509 *x, const char *url)
{
	AUTHORITY_INFO_ACCESS	*aia;
	ACCESS_DESCRIPTION	*ad = NULL;
	GENERAL_NAMES		*gens = NULL;
	int			 ok = 0;

	if ((aia = sk_ACCESS_DESCRIPTION_new_null()) == NULL)
		return 0;
	if ((ad = ACCESS_DESCRIPTION_new()) == NULL ||
	    (gens = GENERAL_NAMES_new()) == NULL ||
	    !push_name(gens, GEN_URI, (const unsigned char *)url, strlen(url)))
		goto out;
	ASN1_OBJECT_free(ad->method);
	ad->method = OBJ_nid2obj(NID_ad_ca_issuers);
	GENERAL_NAME_free(ad->location);
	ad->location = sk_GENERAL_NAME_pop(gens);
	if (ad->method == NULL || ad->location == NULL ||
	    sk_ACCESS_DESCRIPTION_push(aia, ad) <= 0)
		goto out;
	ad = NULL;	/* aia owns it */
	ok = X509_add1_ext_i2d(x, NID_info_access, aia, 0,
	    X509V3_ADD_DEFAULT) == 1;
 out:
	GENERAL_NAMES_free(gens);
	ACCESS_DESCRIPTION_free(ad);
	AUTHORITY_INFO_ACCESS_free(aia);
	return ok;
}

static int
add_key_ids(OSSL_LIB_CTX *libctx, X509 *x, X509 *cacert)
{
	ASN1_OCTET_STRING		*ski, *cakid = NULL;
	const ASN1_OCTET_STRING		*caski;
	AUTHORITY_KEYID			*akid = NULL;
	int				 ok = 0;

	if ((ski = key_id(libctx, x)) == NULL)
		return 0;
	if (X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0,
	    X509V3_ADD_DEFAULT) != 1)
		goto out;
	if ((caski = X509_get0_subject_key_id(cacert)) != NULL)
		cakid = ASN1_OCTET_STRING_dup(caski);
	else
		cakid = key_id(libctx, cacert);
	if (cakid == NULL || (akid = AUTHORITY_KEYID_new()) == NULL)
		goto out;
	akid->keyid = cakid;
	cakid = NULL;
	ok = X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0,
	    X509V3_ADD_DEFAULT) == 1;
 out:
	ASN1_OCTET_STRING_free(ski);
	ASN1_OCTET_STRING_free(cakid);
	AUTHORITY_KEYID_free(akid);
	return ok;
}

static int
add_extensions(OSSL_LIB_CTX *libctx, X509 *x, X509 *cacert,
    const struct policy *pol, const EVP_PKEY *pk,
    const struct csr_request *creq, char *err, size_t errlen)
{
	if (!add_basic_constraints(x))
		return fail(err, errlen, "cannot add basicConstraints");
	if (!add_key_usage(x, pk))
		return fail(err, errlen, "cannot add keyUsage");
	if (!add_eku(x, creq->grant_cmc_ra))
		return fail(err, errlen, "cannot add extendedKeyUsage");
	if (!add_san(x, creq))
		return fail(err, errlen, "cannot add subjectAltName");
	if (!add_key_ids(libctx, x, cacert))
		return fail(err, errlen, "cannot add key identifiers");
	if (pol->crl_url != NULL && !add_crl_dp(x, pol->crl_url))
		return fail(err, errlen, "cannot add crlDistributionPoints");
	if (pol->ca_issuers_url != NULL && !add_aia(x, pol->ca_issuers_url))
		return fail(err, errlen, "cannot add authorityInfoAccess");
	return 0;
}

static X509 *build_device(struct ks *, X509 *, const struct policy *,
    X509_REQ *, const struct csr_request *, int, char *, size_t);
static int check_signature(X509 *, X509 *, char *, size_t);

/* Sign through the keystore, then check the result against the CA cert. */
static int
sign(struct ks *ks, EVP_PKEY *cakey, X509 *x, X509 *cacert, char *err,
    size_t errlen)
{
	if (x509sign_cert(ks, cakey, x, err, errlen) == -1)
		return -1;
	return check_signature(x, cacert, err, errlen);
}


/* The new certificate's signature, checked against the CA certificate. */
static int
check_signature(X509 *x, X509 *cacert, char *err, size_t errlen)
{
	if (X509_verify(x, X509_get0_pubkey(cacert)) != 1)
		return fail(err, errlen, "the new certificate's signature does "
		    "not verify with the CA certificate's key");
	return 0;
}

X509 *
certgen_device(struct ks *ks, EVP_PKEY *cakey, X509 *cacert,
    const struct policy *pol, X509_REQ *req, const struct csr_request *creq,
    int days, char *err, size_t errlen)
{
	X509 *x;

	if ((x = build_device(ks, cacert, pol, req, creq, days, err,
	    errlen)) == NULL)
		return NULL;
	if (sign(ks, cakey, x, cacert, err, errlen) == -1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

X509 *
certgen_device_tbs(struct ks *ks, EVP_PKEY *cakey, X509 *cacert,
    const struct policy *pol, X509_REQ *req, const struct csr_request *creq,
    int days, unsigned char **tbs, size_t *tbslen, char *err, size_t errlen)
{
	X509 *x;

	if (cakey == NULL || tbs == NULL || tbslen == NULL) {
		fail(err, errlen, "certgen_device_tbs: missing argument");
		return NULL;
	}
	if ((x = build_device(ks, cacert, pol, req, creq, days, err,
	    errlen)) == NULL)
		return NULL;
	if (x509sign_cert_tbs(cakey, x, tbs, tbslen, err, errlen) == -1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int
certgen_device_seal(X509 *x, X509 *cacert, const unsigned char *sig,
    size_t siglen, char *err, size_t errlen)
{
	if (x509sign_cert_set(x, sig, siglen, err, errlen) == -1)
		return -1;
	return check_signature(x, cacert, err, errlen);
}

/* A device certificate, built and linted, not yet signed. */
static X509 *
build_device(struct ks *ks, X509 *cacert, const struct policy *pol,
    X509_REQ *req, const struct csr_request *creq, int days, char *err,
    size_t errlen)
{
	OSSL_LIB_CTX	*libctx;
	EVP_PKEY	*pk;
	X509		*x;

	if (ks == NULL || cacert == NULL || pol == NULL || req == NULL ||
	    creq == NULL) {
		fail(err, errlen, "certgen_device: missing argument");
		return NULL;
	}
	if (!max_days_valid(pol)) {
		fail(err, errlen, "policy max_days %d is outside 1..%d",
		    pol->max_days, MAX_DAYS_CEILING);
		return NULL;
	}
	if (days < 1 || days > pol->max_days) {
		fail(err, errlen, "validity of %d days is outside 1..%d", days,
		    pol->max_days);
		return NULL;
	}
	if (creq->device_id[0] == '\0' || creq->ndns == 0) {
		fail(err, errlen, "request has no device ID or DNS name");
		return NULL;
	}
	if ((pk = X509_REQ_get0_pubkey(req)) == NULL) {
		fail(err, errlen, "CSR public key cannot be decoded");
		return NULL;
	}

	libctx = ks_libctx(ks);
	if ((x = X509_new_ex(libctx, NULL)) == NULL) {
		fail(err, errlen, "out of memory");
		return NULL;
	}
	if (X509_set_version(x, X509_VERSION_3) != 1) {
		fail(err, errlen, "cannot set version");
		goto bad;
	}
	if (set_serial(libctx, x, err, errlen) == -1 ||
	    set_names(x, cacert, creq, err, errlen) == -1 ||
	    set_validity(x, days, err, errlen) == -1)
		goto bad;
	if (X509_set_pubkey(x, pk) != 1) {
		fail(err, errlen, "cannot set public key");
		goto bad;
	}
	if (add_extensions(libctx, x, cacert, pol, pk, creq, err, errlen) == -1 ||
	    lint_all(pol, x, cacert, creq->grant_cmc_ra, err, errlen) == -1)
		goto bad;
	return x;
 bad:
	X509_free(x);
	return NULL;
}

/* --- lint --------------------------------------------------------------- */

static int
lint_serial(X509 *x, char *err, size_t errlen)
{
	const ASN1_INTEGER	*ai = X509_get0_serialNumber(x);
	BIGNUM			*bn;
	int			 bits, neg, zero;

	if (ai == NULL || (bn = ASN1_INTEGER_to_BN(ai, NULL)) == NULL)
		return fail(err, errlen, "lint: serial number missing");
	bits = BN_num_bits(bn);
	neg = BN_is_negative(bn);
	zero = BN_is_zero(bn);
	BN_free(bn);
	if (neg || zero)
		return fail(err, errlen, "lint: serial number is not positive");
	if (bits < SERIAL_MIN_BITS)
		return fail(err, errlen, "lint: serial number has %d bits, "
		    "fewer than %d", bits, SERIAL_MIN_BITS);
	if (bits > SERIAL_MAX_BYTES * 8 - 1)
		return fail(err, errlen, "lint: serial number is longer than "
		    "%d octets", SERIAL_MAX_BYTES);
	return 0;
}

static int
lint_validity(const struct policy *pol, X509 *x, char *err, size_t errlen)
{
	const ASN1_TIME	*nb = X509_get0_notBefore(x);
	const ASN1_TIME	*na = X509_get0_notAfter(x);
	int		 day, sec;
	long		 span, skew;

	if (nb == NULL || na == NULL || ASN1_TIME_check(nb) != 1 ||
	    ASN1_TIME_check(na) != 1)
		return fail(err, errlen, "lint: validity times missing or "
		    "malformed");
	if (!ASN1_TIME_diff(&day, &sec, nb, na))
		return fail(err, errlen, "lint: validity cannot be compared");
	span = day * DAY + sec;
	if (span <= 0)
		return fail(err, errlen, "lint: notAfter is not after "
		    "notBefore");
	if (span > pol->max_days * DAY)
		return fail(err, errlen, "lint: validity of %ld s (%.1f days) "
		    "exceeds %d days", span, (double)span / DAY,
		    pol->max_days);
	/* How far notBefore lies from now: positive if in the future. */
	if (!ASN1_TIME_diff(&day, &sec, NULL, nb))
		return fail(err, errlen, "lint: notBefore cannot be compared");
	skew = day * DAY + sec;
	if (skew < -LINT_PAST_SLACK || skew > LINT_FUTURE_SLACK)
		return fail(err, errlen, "lint: notBefore is %ld s from now; "
		    "backdating or postdating is not allowed", skew);
	return 0;
}

static int
lint_issuer_subject(X509 *x, X509 *cacert, char *label, size_t labellen,
    char *cn, size_t cnlen, char *err, size_t errlen)
{
	const X509_NAME	*subj = X509_get_subject_name(x);
	X509_NAME_ENTRY	*ent;
	const ASN1_STRING *s;
	const char	*dot;
	int		 len;

	if (X509_NAME_cmp(X509_get_issuer_name(x),
	    X509_get_subject_name(cacert)) != 0)
		return fail(err, errlen, "lint: issuer is not the CA's subject");
	if (subj == NULL || X509_NAME_entry_count(subj) != 1 ||
	    (ent = X509_NAME_get_entry(subj, 0)) == NULL ||
	    OBJ_obj2nid(X509_NAME_ENTRY_get_object(ent)) != NID_commonName)
		return fail(err, errlen, "lint: subject is not exactly one CN");
	s = X509_NAME_ENTRY_get_data(ent);
	len = ASN1_STRING_length(s);
	if (len <= 0 || len > CN_MAX_LEN || (size_t)len >= cnlen ||
	    memchr(ASN1_STRING_get0_data(s), '\0', (size_t)len) != NULL)
		return fail(err, errlen, "lint: subject CN is empty or too long");
	memcpy(cn, ASN1_STRING_get0_data(s), (size_t)len);
	cn[len] = '\0';
	/* The CN is the device ID or one of the names: its first label is the ID. */
	dot = strchr(cn, '.');
	len = dot != NULL ? (int)(dot - cn) : len;
	if (len == 0 || len > POLICY_MAX_LABEL_LEN || (size_t)len >= labellen)
		return fail(err, errlen, "lint: subject CN has no device label");
	memcpy(label, cn, (size_t)len);
	label[len] = '\0';
	return 0;
}

/* The extensions a device certificate has, each exactly once; the last
 * two (where to find the CRL and the root) when the policy names them. */
static const int expected_ext[] = {
	NID_basic_constraints, NID_key_usage, NID_ext_key_usage,
	NID_subject_alt_name, NID_subject_key_identifier,
	NID_authority_key_identifier,
	NID_crl_distribution_points, NID_info_access,
};
#define NEXPECTED	(sizeof(expected_ext) / sizeof(expected_ext[0]))
#define NALWAYS		(NEXPECTED - 2)

static int
lint_ext_set(const struct policy *pol, X509 *x, char *err, size_t errlen)
{
	int	 seen[NEXPECTED] = { 0 };
	int	 i, nid;
	size_t	 j, nwanted = pol->crl_url != NULL ? NEXPECTED : NALWAYS;

	for (i = 0; i < X509_get_ext_count(x); i++) {
		nid = OBJ_obj2nid(X509_EXTENSION_get_object(
		    X509_get_ext(x, i)));
		for (j = 0; j < nwanted; j++)
			if (expected_ext[j] == nid)
				break;
		if (j == nwanted)
			return fail(err, errlen, "lint: unexpected extension "
			    "%s", nid != NID_undef ? OBJ_nid2sn(nid) :
			    "(unknown OID)");
		if (seen[j]++)
			return fail(err, errlen, "lint: extension %s appears "
			    "twice", OBJ_nid2sn(nid));
	}
	for (j = 0; j < nwanted; j++)
		if (!seen[j])
			return fail(err, errlen, "lint: extension %s missing",
			    OBJ_nid2sn(expected_ext[j]));
	return 0;
}

/* One GEN_URI that is exactly want; what names it, for the error. */
static int
lint_uri(const GENERAL_NAME *gn, const char *want, const char *what,
    char *err, size_t errlen)
{
	const ASN1_IA5STRING	*u;

	if (gn == NULL || gn->type != GEN_URI)
		return fail(err, errlen, "lint: %s is not a URI", what);
	u = gn->d.uniformResourceIdentifier;
	if ((size_t)ASN1_STRING_length(u) != strlen(want) ||
	    memcmp(ASN1_STRING_get0_data(u), want, strlen(want)) != 0)
		return fail(err, errlen, "lint: %s is not %s", what, want);
	return 0;
}

/* crlDistributionPoints: one point, by fullName, the one URL, nothing else. */
static int
lint_crl_dp(const struct policy *pol, X509 *x, char *err, size_t errlen)
{
	CRL_DIST_POINTS	*cdp;
	DIST_POINT	*dp;
	int		 crit, rc = -1;

	if ((cdp = X509_get_ext_d2i(x, NID_crl_distribution_points, &crit,
	    NULL)) == NULL)
		return fail(err, errlen, "lint: crlDistributionPoints cannot "
		    "be decoded");
	if (crit)
		fail(err, errlen, "lint: crlDistributionPoints is critical");
	else if (sk_DIST_POINT_num(cdp) != 1)
		fail(err, errlen, "lint: crlDistributionPoints must hold one "
		    "point, not %d", sk_DIST_POINT_num(cdp));
	else if ((dp = sk_DIST_POINT_value(cdp, 0))->distpoint == NULL ||
	    dp->distpoint->type != 0 || dp->reasons != NULL ||
	    dp->CRLissuer != NULL ||
	    sk_GENERAL_NAME_num(dp->distpoint->name.fullname) != 1)
		fail(err, errlen, "lint: crlDistributionPoints must be one "
		    "fullName URI, without reasons or cRLIssuer");
	else
		rc = lint_uri(sk_GENERAL_NAME_value(dp->distpoint->name.fullname,
		    0), pol->crl_url, "the CRL distribution point", err, errlen);
	CRL_DIST_POINTS_free(cdp);
	return rc;
}

/* authorityInfoAccess: one caIssuers URI, the root's (no OCSP). */
static int
lint_aia(const struct policy *pol, X509 *x, char *err, size_t errlen)
{
	AUTHORITY_INFO_ACCESS	*aia;
	ACCESS_DESCRIPTION	*ad;
	int			 crit, rc = -1;

	if ((aia = X509_get_ext_d2i(x, NID_info_access, &crit, NULL)) == NULL)
		return fail(err, errlen, "lint: authorityInfoAccess cannot be "
		    "decoded");
	if (crit)
		fail(err, errlen, "lint: authorityInfoAccess is critical");
	else if (sk_ACCESS_DESCRIPTION_num(aia) != 1)
		fail(err, errlen, "lint: authorityInfoAccess must hold one "
		    "caIssuers, not %d entries", sk_ACCESS_DESCRIPTION_num(aia));
	else if (OBJ_obj2nid((ad = sk_ACCESS_DESCRIPTION_value(aia,
	    0))->method) != NID_ad_ca_issuers)
		fail(err, errlen, "lint: authorityInfoAccess is not caIssuers");
	else
		rc = lint_uri(ad->location, pol->ca_issuers_url,
		    "the caIssuers location", err, errlen);
	AUTHORITY_INFO_ACCESS_free(aia);
	return rc;
}

/* Both or neither: a policy with one URL is a mistake of the caller. */
static int
lint_publication(const struct policy *pol, X509 *x, char *err, size_t errlen)
{
	if ((pol->crl_url == NULL) != (pol->ca_issuers_url == NULL))
		return fail(err, errlen, "lint: policy names only one of the "
		    "CRL and caIssuers URLs");
	if (pol->crl_url == NULL)
		return 0;
	if (lint_crl_dp(pol, x, err, errlen) == -1 ||
	    lint_aia(pol, x, err, errlen) == -1)
		return -1;
	return 0;
}

static int
lint_basic_constraints(X509 *x, char *err, size_t errlen)
{
	BASIC_CONSTRAINTS	*bc;
	int			 crit, ok;

	if ((bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL)) ==
	    NULL)
		return fail(err, errlen, "lint: basicConstraints missing or "
		    "malformed");
	ok = bc->ca == 0 && bc->pathlen == NULL;
	BASIC_CONSTRAINTS_free(bc);
	if (!ok)
		return fail(err, errlen, "lint: basicConstraints says CA:TRUE "
		    "(or has a path length); a device is never a CA");
	if (crit != 1)
		return fail(err, errlen, "lint: basicConstraints is not "
		    "critical");
	return 0;
}

static int
lint_key_usage(X509 *x, char *err, size_t errlen)
{
	ASN1_BIT_STRING	*ku;
	EVP_PKEY	*pk = X509_get0_pubkey(x);
	int		 crit, i, bad = 0, bits;

	if ((ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL)) == NULL)
		return fail(err, errlen, "lint: keyUsage missing or malformed");
	bits = ASN1_STRING_length(ku) * 8;
	for (i = 0; i < bits; i++) {
		if (!ASN1_BIT_STRING_get_bit(ku, i))
			continue;
		/* digitalSignature; keyEncipherment for RSA only */
		if (i == 0 || (i == 2 && pk != NULL && EVP_PKEY_is_a(pk, "RSA")))
			continue;
		bad = i;
		break;
	}
	if (!bad && !ASN1_BIT_STRING_get_bit(ku, 0))
		bad = -1;
	ASN1_BIT_STRING_free(ku);
	if (bad == 5 || bad == 6)
		return fail(err, errlen, "lint: keyUsage has %s",
		    bad == 5 ? "keyCertSign" : "cRLSign");
	if (bad > 0)
		return fail(err, errlen, "lint: keyUsage has unexpected bit %d",
		    bad);
	if (bad < 0)
		return fail(err, errlen, "lint: keyUsage lacks "
		    "digitalSignature");
	if (crit != 1)
		return fail(err, errlen, "lint: keyUsage is not critical");
	return 0;
}

static int
lint_eku(X509 *x, int cmc_ra, char *err, size_t errlen)
{
	EXTENDED_KEY_USAGE	*eku;
	const char		*other = NULL;
	int			 i, nid, server = 0;

	if ((eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL)) ==
	    NULL)
		return fail(err, errlen, "lint: extendedKeyUsage missing or "
		    "malformed");
	for (i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
		nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
		if (nid == NID_server_auth)
			server = 1;
		else if (nid != NID_client_auth &&
		    !(cmc_ra && nid == NID_cmcRA) && other == NULL)
			other = nid != NID_undef ? OBJ_nid2sn(nid) :
			    "an unknown purpose";
	}
	EXTENDED_KEY_USAGE_free(eku);
	if (other != NULL)
		return fail(err, errlen, "lint: extendedKeyUsage has %s; only "
		    "serverAuth and clientAuth", other);
	if (!server)
		return fail(err, errlen, "lint: extendedKeyUsage lacks "
		    "serverAuth");
	return 0;
}

static int
lint_one_name(const struct policy *pol, const GENERAL_NAME *gn,
    const char *label, int *ndns, char *err, size_t errlen)
{
	char			 name[POLICY_MAX_NAME_LEN + 1];
	char			 canon[sizeof(name)], reason[256];
	const ASN1_STRING	*s;
	const char		*dot;
	int			 type, len;

	/* Only dNSName and iPAddress values are ASN1_STRINGs: type first. */
	s = GENERAL_NAME_get0_value(gn, &type);
	if (type != GEN_DNS && type != GEN_IPADD)
		return fail(err, errlen, "lint: subjectAltName of type %d",
		    type);
	len = ASN1_STRING_length(s);
	if (type == GEN_IPADD) {
		if (policy_check_ip(ASN1_STRING_get0_data(s),
		    len > 0 ? (size_t)len : 0, reason, sizeof(reason)) !=
		    POLICY_OK)
			return fail(err, errlen, "lint: %s", reason);
		return 0;
	}
	if (len <= 0 || len > POLICY_MAX_NAME_LEN ||
	    memchr(ASN1_STRING_get0_data(s), '\0', (size_t)len) != NULL)
		return fail(err, errlen, "lint: malformed DNS name");
	memcpy(name, ASN1_STRING_get0_data(s), (size_t)len);
	name[len] = '\0';
	if (policy_check_dns(pol, name, canon, sizeof(canon), reason,
	    sizeof(reason)) != POLICY_OK)
		return fail(err, errlen, "lint: %s", reason);
	dot = strchr(canon, '.');
	if (strcmp(canon, name) != 0 || dot == NULL ||
	    strlen(label) != (size_t)(dot - canon) ||
	    strncmp(canon, label, strlen(label)) != 0)
		return fail(err, errlen, "lint: DNS name \"%s\" is not "
		    "<CN>.<suffix> in lower case", canon);
	(*ndns)++;
	return 0;
}

static int
lint_san(const struct policy *pol, X509 *x, const char *label,
    const char *cn, char *err, size_t errlen)
{
	GENERAL_NAMES	*gens;
	const ASN1_STRING *v;
	int		 i, n, type, ndns = 0, rc = 0, cn_named;

	if ((gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL)) ==
	    NULL)
		return fail(err, errlen, "lint: subjectAltName missing or "
		    "malformed");
	n = sk_GENERAL_NAME_num(gens);
	if (n > POLICY_MAX_NAMES)
		rc = fail(err, errlen, "lint: more than %d names",
		    POLICY_MAX_NAMES);
	for (i = 0; rc == 0 && i < n; i++)
		rc = lint_one_name(pol, sk_GENERAL_NAME_value(gens, i), label,
		    &ndns, err, errlen);
	/* A CN that is a name must be one of the certified names. */
	cn_named = strcmp(cn, label) == 0;
	for (i = 0; rc == 0 && !cn_named && i < n; i++) {
		v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &type);
		cn_named = type == GEN_DNS &&
		    (size_t)ASN1_STRING_length(v) == strlen(cn) &&
		    memcmp(ASN1_STRING_get0_data(v), cn, strlen(cn)) == 0;
	}
	GENERAL_NAMES_free(gens);
	if (rc == 0 && ndns == 0)
		rc = fail(err, errlen, "lint: no DNS name");
	if (rc == 0 && !cn_named)
		rc = fail(err, errlen, "lint: subject CN \"%s\" is not among "
		    "the DNS names", cn);
	return rc;
}

static int
lint_key_ids(X509 *x, X509 *cacert, char *err, size_t errlen)
{
	const ASN1_OCTET_STRING	*caski;
	ASN1_OCTET_STRING	*ski;
	AUTHORITY_KEYID		*akid;
	int			 ok;

	if ((ski = X509_get_ext_d2i(x, NID_subject_key_identifier, NULL,
	    NULL)) == NULL)
		return fail(err, errlen, "lint: subjectKeyIdentifier missing");
	ok = ASN1_STRING_length(ski) > 0;
	ASN1_OCTET_STRING_free(ski);
	if (!ok)
		return fail(err, errlen, "lint: subjectKeyIdentifier empty");

	if ((akid = X509_get_ext_d2i(x, NID_authority_key_identifier, NULL,
	    NULL)) == NULL)
		return fail(err, errlen, "lint: authorityKeyIdentifier missing");
	caski = X509_get0_subject_key_id(cacert);
	ok = akid->keyid != NULL && akid->issuer == NULL &&
	    akid->serial == NULL && (caski == NULL ||
	    ASN1_OCTET_STRING_cmp(akid->keyid, caski) == 0);
	AUTHORITY_KEYID_free(akid);
	if (!ok)
		return fail(err, errlen, "lint: authorityKeyIdentifier is not "
		    "the CA's key ID");
	return 0;
}

static int
lint_key(X509 *x, X509 *cacert, char *err, size_t errlen)
{
	char		 reason[256];
	EVP_PKEY	*pk = X509_get0_pubkey(x);

	if (policy_check_key(pk, reason, sizeof(reason)) != POLICY_OK)
		return fail(err, errlen, "lint: %s", reason);
	if (EVP_PKEY_eq(pk, X509_get0_pubkey(cacert)) == 1)
		return fail(err, errlen, "lint: the certificate carries the "
		    "CA's own key");
	return 0;
}

/* The lint; cmc_ra: the signer granted id-kp-cmcRA (approved delegation). */
static int
lint_all(const struct policy *pol, X509 *tbs, X509 *cacert, int cmc_ra,
    char *err, size_t errlen)
{
	char	 label[POLICY_MAX_LABEL_LEN + 1], cn[CN_MAX_LEN + 1];

	if (pol == NULL || tbs == NULL || cacert == NULL)
		return fail(err, errlen, "lint: missing argument");
	if (!max_days_valid(pol))
		return fail(err, errlen, "lint: policy max_days %d is outside "
		    "1..%d", pol->max_days, MAX_DAYS_CEILING);
	if (X509_get_version(tbs) != X509_VERSION_3)
		return fail(err, errlen, "lint: not a v3 certificate");
	if (lint_serial(tbs, err, errlen) == -1 ||
	    lint_issuer_subject(tbs, cacert, label, sizeof(label), cn,
	    sizeof(cn), err, errlen) == -1 ||
	    lint_validity(pol, tbs, err, errlen) == -1 ||
	    lint_ext_set(pol, tbs, err, errlen) == -1 ||
	    lint_publication(pol, tbs, err, errlen) == -1 ||
	    lint_basic_constraints(tbs, err, errlen) == -1 ||
	    lint_key_usage(tbs, err, errlen) == -1 ||
	    lint_eku(tbs, cmc_ra, err, errlen) == -1 ||
	    lint_san(pol, tbs, label, cn, err, errlen) == -1 ||
	    lint_key_ids(tbs, cacert, err, errlen) == -1 ||
	    lint_key(tbs, cacert, err, errlen) == -1)
		return -1;
	return 0;
}

int
certgen_lint(const struct policy *pol, X509 *tbs, X509 *cacert, char *err,
    size_t errlen)
{
	return lint_all(pol, tbs, cacert, 0, err, errlen);
}
