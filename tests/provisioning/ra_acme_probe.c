/*
 * ra_acme_probe: the registration authority's ACME side (provisioning/
 * ra_acme.h) as a command, for tests/provisioning/test_ra_acme.py.
 *
 *   ra_acme_probe OPTIONS preauth            "preauthorized EXPIRES" or
 *                                            "per-order" (no newAuthz)
 *   ra_acme_probe OPTIONS open NAME...       the order's URL
 *   ra_acme_probe OPTIONS step URL CSR OUT   "wait SECONDS", "done" (chain
 *                                            written to OUT) or "failed
 *                                            TYPE: DETAIL" (exit 3)
 *   ra_acme_probe OPTIONS enrol CSR OUT NAME...
 *                                            open, then step (sleeping as
 *                                            told) until done or -T ends
 * OPTIONS: -d DIRECTORY -c CA_FILE -k ACCOUNT_KEY -s SUBTREE -n DNS_SERVER
 *          -z ZONE -t TSIG_KEY [-w DNS_WAIT_MS] [-T TIMEOUT_MS]
 * CSR: PEM or DER.  Errors: one line on stderr, exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ra_acme.h"

static unsigned char *
read_csr(const char *path, size_t *len)
{
	FILE		*f;
	X509_REQ	*req = NULL;
	unsigned char	*der = NULL, buf[65536];
	const unsigned char *p = buf;
	size_t		 n;
	int		 dlen;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n > 10 && memcmp(buf, "-----BEGIN", 10) == 0) {
		BIO *b = BIO_new_mem_buf(buf, (int)n);

		if (b != NULL)
			req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
		BIO_free(b);
	} else
		req = d2i_X509_REQ(NULL, &p, (long)n);
	if (req == NULL || (dlen = i2d_X509_REQ(req, &der)) <= 0) {
		X509_REQ_free(req);
		return NULL;
	}
	X509_REQ_free(req);
	*len = (size_t)dlen;
	return der;
}

static int
write_file(const char *path, const char *text)
{
	FILE	*f;
	int	 ok;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* One step, reported; the step's result. */
static int
step(struct ra_acme *ra, const char *url, const unsigned char *csr,
    size_t csrlen, const char *out, long timeout_ms, long *retry)
{
	struct acme_error	 err;
	char			*pem = NULL;
	int			 rc;

	rc = ra_acme_order_step(ra, url, csr, csrlen, timeout_ms, retry, &pem,
	    &err);
	switch (rc) {
	case RA_STEP_WAIT:
		printf("wait %ld\n", *retry);
		break;
	case RA_STEP_DONE:
		if (write_file(out, pem) == -1) {
			fprintf(stderr, "cannot write %s\n", out);
			rc = -1;
		} else
			printf("done\n");
		break;
	case RA_STEP_FAILED:
		printf("failed %s: %s\n", err.type, err.detail);
		break;
	default:
		fprintf(stderr, "step: %s\n", err.detail);
		rc = -1;
	}
	free(pem);
	fflush(stdout);
	return rc;
}

static void
usage(void)
{
	fprintf(stderr, "usage: ra_acme_probe -d DIR -c CA -k KEY -s SUBTREE "
	    "-n DNS -z ZONE -t TSIG [-w MS] [-T MS] preauth | open NAME... | "
	    "step URL CSR OUT | enrol CSR OUT NAME...\n");
	exit(1);
}

int
main(int argc, char *argv[])
{
	struct ra_acme_config	 cfg;
	struct ra_acme		*ra;
	struct acme_error	 err;
	unsigned char		*csr = NULL;
	size_t			 csrlen = 0;
	char			 url[2048];
	long			 timeout_ms = 60000, retry;
	time_t			 expires, end;
	int			 ch, rc = 1, r;

	memset(&cfg, 0, sizeof(cfg));
	while ((ch = getopt(argc, argv, "d:c:k:s:n:z:t:w:T:")) != -1) {
		switch (ch) {
		case 'd': cfg.directory_url = optarg; break;
		case 'c': cfg.ca_file = optarg; break;
		case 'k': cfg.account_key_file = optarg; break;
		case 's': cfg.subtree = optarg; break;
		case 'n': cfg.dns_server = optarg; break;
		case 'z': cfg.dns_zone = optarg; break;
		case 't': cfg.tsig_key_file = optarg; break;
		case 'w': cfg.dns_wait_ms = atol(optarg); break;
		case 'T': timeout_ms = atol(optarg); break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "curl_global_init failed\n");
		return 1;
	}
	if ((ra = ra_acme_new(&cfg, &err)) == NULL) {
		fprintf(stderr, "ra_acme_new: %s\n", err.detail);
		curl_global_cleanup();
		return 1;
	}
	if (strcmp(argv[0], "preauth") == 0 && argc == 1) {
		r = ra_acme_preauthorize(ra, timeout_ms, &expires, &err);
		if (r == 1)
			printf("preauthorized %lld\n", (long long)expires);
		else if (r == 0)
			printf("per-order\n");
		else
			fprintf(stderr, "preauthorize: %s\n", err.detail);
		rc = r == -1;
	} else if (strcmp(argv[0], "open") == 0 && argc >= 2) {
		if (ra_acme_order_open(ra, (const char *const *)argv + 1,
		    (size_t)argc - 1, url, sizeof(url), &err) == 0) {
			printf("%s\n", url);
			rc = 0;
		} else
			fprintf(stderr, "open: %s%s%s\n", err.type,
			    err.type[0] ? ": " : "", err.detail);
	} else if (strcmp(argv[0], "step") == 0 && argc == 4) {
		if ((csr = read_csr(argv[2], &csrlen)) == NULL)
			fprintf(stderr, "%s: not a CSR\n", argv[2]);
		else {
			r = step(ra, argv[1], csr, csrlen, argv[3], timeout_ms,
			    &retry);
			rc = r == RA_STEP_FAILED ? 3 : r == -1;
		}
	} else if (strcmp(argv[0], "enrol") == 0 && argc >= 4) {
		if ((csr = read_csr(argv[1], &csrlen)) == NULL)
			fprintf(stderr, "%s: not a CSR\n", argv[1]);
		else if (ra_acme_order_open(ra, (const char *const *)argv + 3,
		    (size_t)argc - 3, url, sizeof(url), &err) == -1)
			fprintf(stderr, "open: %s\n", err.detail);
		else {
			printf("%s\n", url);
			end = time(NULL) + timeout_ms / 1000;
			do {
				r = step(ra, url, csr, csrlen, argv[2],
				    timeout_ms, &retry);
				if (r == RA_STEP_WAIT)
					sleep((unsigned)retry);
			} while (r == RA_STEP_WAIT && time(NULL) < end);
			rc = r == RA_STEP_DONE ? 0 : r == RA_STEP_FAILED ? 3 : 1;
		}
	} else
		usage();
	OPENSSL_free(csr);
	ra_acme_free(ra);
	curl_global_cleanup();
	return rc;
}
