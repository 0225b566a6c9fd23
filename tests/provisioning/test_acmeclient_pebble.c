/*
 * test_acmeclient_pebble: provisioning/acmeclient against a real ACME server,
 * Debian's Pebble, started by acmeclient-pebble.sh on loopback with half of
 * its nonces rejected (PEBBLE_WFE_NONCEREJECT=50) and real http-01
 * validation (names resolve to 127.0.0.1 through pebble-challtestsrv).
 *
 * Environment: ACME_TEST_DIRECTORY, ACME_TEST_CA (Pebble's TLS certificate),
 * ACME_TEST_HTTP01_PORT (where Pebble's VA connects).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "acmeclient.h"
#include "http01.h"

#define TIMEOUT_MS	20000

static struct acme_http01 *responder;
static unsigned long bad_nonces;	/* over all tests, for the badNonce check */

static struct acme_client *
client_quiet(EVP_PKEY *key, struct acme_error *err)
{
	struct acme_client_config cfg = {
		.directory_url = getenv("ACME_TEST_DIRECTORY"),
		.ca_file = getenv("ACME_TEST_CA"),
		.account_key = key,
		.poll_min_ms = 20,
		.poll_max_ms = 500,
		.nonce_retries = 20,	/* 0.5^20: never fails by chance */
	};

	return acme_client_new(&cfg, err);
}

static struct acme_client *
client(EVP_PKEY *key)
{
	struct acme_error err;
	struct acme_client *c = client_quiet(key, &err);

	if (c == NULL)
		fail_msg("acme_client_new: %s", err.detail);
	return c;
}

static void
client_done(struct acme_client *c)
{
	bad_nonces += acme_client_stats(c)->bad_nonces;
	acme_client_free(c);
}

/* Order, validate, finalize and download without cmocka (threads use it). */
static int
flow(struct acme_client *c, const char *const *names, size_t n, char **pem,
    struct acme_order **op, struct acme_error *err)
{
	struct acme_order *o;

	*pem = NULL;
	if ((*op = o = acme_order_new(c, names, n, err)) == NULL)
		return -1;
	if (acme_order_authorize_http01(c, o, responder, TIMEOUT_MS, err) == -1 ||
	    acme_order_finalize(c, o, NULL, TIMEOUT_MS, err) == -1 ||
	    acme_order_certificate(c, o, pem, err) == -1)
		return -1;
	return 0;
}

/* flow, failing the test with the client's error. */
static struct acme_order *
issue(struct acme_client *c, const char *const *names, size_t n, char **pem)
{
	struct acme_error	 err;
	struct acme_order	*o;

	if (flow(c, names, n, pem, &o, &err) == -1)
		fail_msg("%s: %s %s (HTTP %ld)", names[0], err.type, err.detail,
		    err.status);
	assert_string_equal(acme_order_status(o), "valid");
	return o;
}

static STACK_OF(X509) *
read_chain(const char *pem)
{
	STACK_OF(X509)	*sk = sk_X509_new_null();
	BIO		*b = BIO_new_mem_buf(pem, -1);
	X509		*x;

	assert_non_null(sk);
	assert_non_null(b);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		assert_int_not_equal(sk_X509_push(sk, x), 0);
	BIO_free(b);
	return sk;
}

static int
has_dns_name(X509 *x, const char *name)
{
	GENERAL_NAMES	*gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int		 i, found = 0;

	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS && (size_t)ASN1_STRING_length(g->d.dNSName) ==
		    strlen(name) && memcmp(ASN1_STRING_get0_data(g->d.dNSName),
		    name, strlen(name)) == 0)
			found = 1;
	}
	GENERAL_NAMES_free(gens);
	return found;
}

static void
test_directory(void **state)
{
	struct acme_client	*c = client(NULL);
	struct acme_error	 err;

	assert_int_equal(acme_directory(c, &err), 0);
	/* Pebble 2.4 has no ARI: the client must say so, not fail. */
	assert_int_equal(acme_has_renewal_info(c), 0);
	client_done(c);
}

/* newAccount with jwk; the same key again finds the same account. */
static void
test_account(void **state)
{
	EVP_PKEY		*key = EVP_EC_gen("P-256");
	struct acme_client	*a, *b;
	struct acme_error	 err;

	assert_non_null(key);
	a = client(key);
	b = client(key);
	assert_null(acme_account_url(a));
	assert_int_equal(acme_account_ensure(a, &err), 0);
	assert_non_null(acme_account_url(a));
	assert_int_equal(strncmp(acme_account_url(a), "https://", 8), 0);
	assert_int_equal(acme_account_ensure(b, &err), 0);
	assert_string_equal(acme_account_url(a), acme_account_url(b));
	assert_string_equal(acme_account_thumbprint(a), acme_account_thumbprint(b));
	client_done(a);
	client_done(b);
	EVP_PKEY_free(key);
}

/* The whole flow for two names; the chain must name both, carry the
 * order's key and be signed by the next certificate. */
static void
test_issue(void **state)
{
	const char		*names[] = { "dev-1.local", "dev-1.home.arpa" };
	struct acme_client	*c = client(NULL);
	struct acme_order	*o;
	STACK_OF(X509)		*chain;
	EVP_PKEY		*issuer;
	unsigned long		 served = acme_http01_served(responder);
	char			*pem;

	o = issue(c, names, 2, &pem);
	chain = read_chain(pem);
	assert_true(sk_X509_num(chain) >= 2);
	assert_true(has_dns_name(sk_X509_value(chain, 0), names[0]));
	assert_true(has_dns_name(sk_X509_value(chain, 0), names[1]));
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(chain, 0)),
	    acme_order_key(o)), 1);
	assert_int_equal(EVP_PKEY_get_bits(acme_order_key(o)), 384);
	issuer = X509_get0_pubkey(sk_X509_value(chain, 1));
	assert_int_equal(X509_verify(sk_X509_value(chain, 0), issuer), 1);
	/* Pebble's VA fetched both tokens from us. */
	assert_true(acme_http01_served(responder) >= served + 2);
	sk_X509_pop_free(chain, X509_free);
	free(pem);
	acme_order_free(o);
	client_done(c);
}

/* A token the responder does not know: the authorization fails and the
 * error carries Pebble's problem. */
static void
test_validation_fails(void **state)
{
	const char		*names[] = { "nobody-1.local" };
	struct acme_client	*c = client(NULL);
	struct acme_http01	*other;
	struct acme_order	*o;
	struct acme_error	 err;
	char			 e[128];

	/* Published on a port Pebble does not look at. */
	other = acme_http01_start("127.0.0.1", 0, e, sizeof(e));
	assert_non_null(other);
	o = acme_order_new(c, names, 1, &err);
	assert_non_null(o);
	assert_int_equal(acme_order_authorize_http01(c, o, other, TIMEOUT_MS,
	    &err), -1);
	assert_string_not_equal(err.type, "");
	assert_string_not_equal(err.detail, "");
	assert_int_equal(acme_order_finalize(c, o, NULL, 2000, &err), -1);
	acme_order_free(o);
	acme_http01_stop(other);
	client_done(c);
}

/* Revocation by the account key, twice: the second is alreadyRevoked. */
static void
test_revoke(void **state)
{
	const char		*names[] = { "dev-2.local" };
	struct acme_client	*c = client(NULL);
	struct acme_order	*o;
	struct acme_error	 err;
	char			*pem;

	o = issue(c, names, 1, &pem);
	if (acme_revoke(c, pem, 4, &err) == -1)
		fail_msg("revoke: %s %s", err.type, err.detail);
	assert_int_equal(acme_revoke(c, pem, 4, &err), -1);
	assert_string_equal(err.type, "alreadyRevoked");
	assert_int_equal(err.status, 400);
	free(pem);
	acme_order_free(o);
	client_done(c);
}

/* No renewalInfo in Pebble's directory: a clean error, and the certID
 * still computes from the issued certificate. */
static void
test_ari_absent(void **state)
{
	const char		*names[] = { "dev-3.local" };
	struct acme_client	*c = client(NULL);
	struct acme_order	*o;
	struct acme_renewal_info ri;
	struct acme_error	 err;
	STACK_OF(X509)		*chain;
	char			*pem, *id;

	o = issue(c, names, 1, &pem);
	assert_int_equal(acme_renewal_info(c, pem, &ri, &err), -1);
	assert_non_null(strstr(err.detail, "renewalInfo"));
	chain = read_chain(pem);
	id = acme_cert_id(sk_X509_value(chain, 0));
	assert_non_null(id);
	assert_non_null(strchr(id, '.'));
	free(id);
	sk_X509_pop_free(chain, X509_free);
	free(pem);
	acme_order_free(o);
	client_done(c);
}

#define NTHREADS 8

struct flow_job {
	int			n;
	int			rc;
	struct acme_error	err;
};

static void *
flow_thread(void *arg)
{
	struct flow_job		*job = arg;
	char			 name[64], *pem = NULL;
	const char		*names[] = { name };
	struct acme_client	*c;
	struct acme_order	*o = NULL;

	snprintf(name, sizeof(name), "conc-%d.local", job->n);
	job->rc = -1;
	if ((c = client_quiet(NULL, &job->err)) == NULL)
		return NULL;
	job->rc = flow(c, names, 1, &pem, &o, &job->err);
	free(pem);
	acme_order_free(o);
	acme_client_free(c);
	return NULL;
}

/* Clients in parallel threads, one responder. */
static void
test_concurrent(void **state)
{
	pthread_t	 t[NTHREADS];
	struct flow_job	 job[NTHREADS];
	int		 i;

	for (i = 0; i < NTHREADS; i++) {
		job[i].n = i;
		assert_int_equal(pthread_create(&t[i], NULL, flow_thread, &job[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (i = 0; i < NTHREADS; i++)
		if (job[i].rc != 0)
			fail_msg("client %d: %s %s", i, job[i].err.type,
			    job[i].err.detail);
}

/* With half the nonces refused, the tests above passed only by retrying. */
static void
test_bad_nonce_retried(void **state)
{
	struct acme_client	*c;
	struct acme_error	 err;
	int			 i;

	for (i = 0; i < 20 && bad_nonces == 0; i++) {
		c = client(NULL);
		assert_int_equal(acme_account_ensure(c, &err), 0);
		client_done(c);
	}
	assert_true(bad_nonces > 0);
}

static int
setup(void **state)
{
	char err[128];

	if (getenv("ACME_TEST_DIRECTORY") == NULL ||
	    getenv("ACME_TEST_HTTP01_PORT") == NULL) {
		fprintf(stderr, "run through acmeclient-pebble.sh\n");
		return -1;
	}
	responder = acme_http01_start("127.0.0.1",
	    atoi(getenv("ACME_TEST_HTTP01_PORT")), err, sizeof(err));
	if (responder == NULL) {
		fprintf(stderr, "responder: %s\n", err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	acme_http01_stop(responder);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_account),
		cmocka_unit_test(test_issue),
		cmocka_unit_test(test_validation_fails),
		cmocka_unit_test(test_revoke),
		cmocka_unit_test(test_ari_absent),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_bad_nonce_retried),
	};
	int rc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	rc = cmocka_run_group_tests(tests, setup, teardown);
	curl_global_cleanup();
	return rc;
}
