/*
 * certid: RFC 9773 certificate identifiers and certificate readers (see
 * certid.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certid.h"
#include "jws.h"

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
	char *a = NULL, *b = NULL;
	size_t slen;
	int rc = -1;

	if (kid == NULL || (ser = serial_octets(x, &slen)) == NULL)
		return -1;
	if ((a = b64url_encode(ASN1_STRING_get0_data(kid),
	    (size_t)ASN1_STRING_length(kid))) != NULL &&
	    (b = b64url_encode(ser, slen)) != NULL &&
	    strlen(a) + strlen(b) + 2 <= CERTID_LEN) {
		size_t na = strlen(a), nb = strlen(b);

		memcpy(out, a, na);
		out[na] = '.';
		memcpy(out + na + 1, b, nb + 1);
		rc = 0;
	}
	free(a);
	free(b);
	free(ser);
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
