/*
 * certid: RFC 9773 certificate identifiers and certificate readers (see
 * certid.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certid.h"
#include "jws.h"

static int certid_join(const unsigned char *, size_t, const unsigned char *,
    size_t, char[CERTID_LEN]);

/* The serial's DER content octets: big-endian, with a 0x00 first if the top
 * bit is set (our serials are positive). */
static unsigned char *
serial_octets(const X509 *x, size_t *len)
{
	const ASN1_INTEGER *ai = X509_get0_serialNumber(x);
	unsigned char *der = NULL, *out;
	const unsigned char *p;
	long clen;
	int n, tag, cls;

	if ((n = i2d_ASN1_INTEGER(ai, &der)) <= 0)
		return NULL;
	p = der;
	if (ASN1_get_object(&p, &clen, &tag, &cls, n) & 0x80 || clen <= 0 ||
	    (out = malloc((size_t)clen)) == NULL) {
		OPENSSL_free(der);
		return NULL;
	}
	memcpy(out, p, (size_t)clen);
	*len = (size_t)clen;
	OPENSSL_free(der);
	return out;
}

int
certid_of(const X509 *x, char out[CERTID_LEN])
{
	const ASN1_OCTET_STRING *kid = X509_get0_authority_key_id((X509 *)x);
	unsigned char *ser;
	size_t slen;
	int rc;

	if (kid == NULL || (ser = serial_octets(x, &slen)) == NULL)
		return -1;
	rc = certid_join(ASN1_STRING_get0_data(kid),
	    (size_t)ASN1_STRING_length(kid), ser, slen, out);
	free(ser);
	return rc;
}

/* "A.B" from the AKI keyIdentifier and the serial's content octets. */
static int
certid_join(const unsigned char *kid, size_t kidlen, const unsigned char *ser,
    size_t serlen, char out[CERTID_LEN])
{
	char *a = NULL, *b = NULL;
	size_t na, nb;
	int rc = -1;

	if ((a = b64url_encode(kid, kidlen)) != NULL &&
	    (b = b64url_encode(ser, serlen)) != NULL &&
	    (na = strlen(a)) + (nb = strlen(b)) + 2 <= CERTID_LEN) {
		memcpy(out, a, na);
		out[na] = '.';
		memcpy(out + na + 1, b, nb + 1);
		rc = 0;
	}
	free(a);
	free(b);
	return rc;
}

int
cert_facts_pem(const char *pem, char id[CERTID_LEN], time_t *nb, time_t *na)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t in;
	unsigned char kid[128], ser[64];
	size_t kidlen = sizeof(kid), serlen = sizeof(ser), len;
	unsigned int critical;
	int rc = -1;

	if ((len = strlen(pem)) > UINT_MAX || gnutls_x509_crt_init(&crt) < 0)
		return -1;
	in.data = (unsigned char *)pem;
	in.size = (unsigned int)len;
	/* get_serial gives the INTEGER's content octets as encoded (a 0x00
	 * first when the top bit is set), as serial_octets does. */
	if (gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM) >= 0 &&
	    gnutls_x509_crt_get_authority_key_id(crt, kid, &kidlen,
	    &critical) >= 0 && kidlen > 0 &&
	    gnutls_x509_crt_get_serial(crt, ser, &serlen) >= 0 && serlen > 0 &&
	    (*nb = gnutls_x509_crt_get_activation_time(crt)) != (time_t)-1 &&
	    (*na = gnutls_x509_crt_get_expiration_time(crt)) != (time_t)-1)
		rc = certid_join(kid, kidlen, ser, serlen, id);
	gnutls_x509_crt_deinit(crt);
	return rc;
}

X509 *
cert_from_pem(const char *pem)
{
	BIO *b;
	X509 *x;

	if ((b = BIO_new_mem_buf(pem, -1)) == NULL)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return x;
}

int
cert_validity(const X509 *x, time_t *nb, time_t *na)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) != 1)
		return -1;
	*nb = timegm(&tm);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return -1;
	*na = timegm(&tm);
	return 0;
}
