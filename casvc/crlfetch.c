/*
 * crlfetch: read the CRL from the signer in pages (see crlfetch.h).  Every
 * page names the CRL's number; a page of another number means the CRL was
 * signed again meanwhile, and the read starts over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crlfetch.h"
#include "proto.h"

#define CRLFETCH_DEFAULT_SECS	60

void
crl_copy_clear(struct crl_copy *c)
{
	free(c->der);
	memset(c, 0, sizeof(*c));
}

/* One reply's "der" appended at *len; -1 if it is not base64 or too long. */
static int
append_page(struct crl_copy *c, const char *b64, size_t total)
{
	size_t n = strlen(b64), pad = 0;
	int got;

	if (n % 4 != 0)
		return -1;
	if (n > 0 && b64[n - 1] == '=')
		pad++;
	if (n > 1 && b64[n - 2] == '=')
		pad++;
	if (c->len + n / 4 * 3 - pad > total)
		return -1;
	/* EVP_DecodeBlock writes whole groups of three, pad bytes too. */
	if (n > 0 && (got = EVP_DecodeBlock(c->der + c->len,
	    (const unsigned char *)b64, (int)n)) < 0)
		return -1;
	c->len += n / 4 * 3 - pad;
	return 0;
}

static json_t *
ask(const char *path, int secs, long known, size_t offset, char *err,
    size_t errlen)
{
	json_t *req, *r;

	if ((req = json_pack("{s:s, s:I, s:I}", "op", "crl", "number",
	    (json_int_t)known, "offset", (json_int_t)offset)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r = proto_call_timeout(path, req, secs, err, errlen);
	json_decref(req);
	if (r == NULL)
		return NULL;
	if (!json_is_true(json_object_get(r, "ok"))) {
		const char *code = json_string_value(json_object_get(r, "error"));
		const char *why = json_string_value(json_object_get(r, "reason"));

		snprintf(err, errlen, "refused (%s): %s", code ? code : "?",
		    why ? why : "no reason given");
		json_decref(r);
		return NULL;
	}
	return r;
}

/* 1: unchanged, 0: read, 2: replaced while read (try again), -1: err. */
static int
fetch_once(const char *path, int secs, long known, struct crl_copy *out,
    char *err, size_t errlen)
{
	json_t *r;
	json_int_t total = 0, number = -1, off;
	const char *b64;
	int rc = -1;

	for (;;) {
		if ((r = ask(path, secs, known, out->len, err, errlen)) == NULL)
			return -1;
		if (json_is_true(json_object_get(r, "unchanged")) &&
		    out->len == 0) {
			out->this_update = (time_t)json_integer_value(
			    json_object_get(r, "this_update"));
			out->next_update = (time_t)json_integer_value(
			    json_object_get(r, "next_update"));
			json_decref(r);
			return 1;
		}
		b64 = json_string_value(json_object_get(r, "der"));
		off = json_integer_value(json_object_get(r, "offset"));
		if (b64 == NULL || (size_t)off != out->len ||
		    !json_is_integer(json_object_get(r, "total")) ||
		    !json_is_integer(json_object_get(r, "number"))) {
			snprintf(err, errlen, "the signer's CRL page is malformed");
			break;
		}
		if (out->der == NULL) {
			total = json_integer_value(json_object_get(r, "total"));
			number = json_integer_value(json_object_get(r, "number"));
			if (total <= 0 || total > CRLFETCH_MAX_BYTES) {
				snprintf(err, errlen, "the signer's CRL has %lld "
				    "bytes", (long long)total);
				break;
			}
			if ((out->der = malloc((size_t)total + 3)) == NULL) {
				snprintf(err, errlen, "out of memory");
				break;
			}
			out->number = (long)number;
			out->this_update = (time_t)json_integer_value(
			    json_object_get(r, "this_update"));
			out->next_update = (time_t)json_integer_value(
			    json_object_get(r, "next_update"));
		} else if (json_integer_value(json_object_get(r, "number")) !=
		    number || json_integer_value(json_object_get(r, "total")) !=
		    total) {
			rc = 2;
			break;
		}
		if (append_page(out, b64, (size_t)total) == -1) {
			snprintf(err, errlen, "the signer's CRL page is not "
			    "base64 or runs past its end");
			break;
		}
		if (b64[0] == '\0' && out->len < (size_t)total) {
			snprintf(err, errlen, "the signer sent an empty CRL page");
			break;
		}
		json_decref(r);
		r = NULL;
		if (out->len == (size_t)total)
			return 0;
	}
	json_decref(r);
	return rc;
}

int
crl_fetch(const char *path, int secs, long known, struct crl_copy *out,
    char *err, size_t errlen)
{
	struct crl_copy c;
	int i, rc;

	for (i = 0; i < CRLFETCH_TRIES; i++) {
		memset(&c, 0, sizeof(c));
		rc = fetch_once(path, secs > 0 ? secs : CRLFETCH_DEFAULT_SECS,
		    known, &c, err, errlen);
		if (rc == 1) {
			out->this_update = c.this_update;
			out->next_update = c.next_update;
			return 1;
		}
		if (rc == 0) {
			*out = c;
			return 0;
		}
		crl_copy_clear(&c);
		if (rc == -1)
			return -1;
	}
	snprintf(err, errlen, "the CRL was signed again %d times while it was "
	    "read", CRLFETCH_TRIES);
	return -1;
}
