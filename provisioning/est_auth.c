/*
 * est_auth: Basic and TLS client certificate checks (see est_auth.h).
 */
#include <sys/stat.h>

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "est_auth.h"
#include "est_msg.h"

#define MAX_USERS	4096
#define MAX_USER_LEN	64
#define MAX_HASH_LEN	(CRYPT_OUTPUT_SIZE - 1)
#define AUTH_SEEN	256	/* Basic checks remembered */
#define AUTH_SEEN_SEC	300	/* for this long */

struct cred {
	char	 user[MAX_USER_LEN + 1];
	char	 hash[CRYPT_OUTPUT_SIZE];
};

struct est_auth {
	struct cred	*creds;
	size_t		 ncreds;
	int		 have_basic;
	/* A hash to check unknown users against, so that they take as long
	 * as known ones. */
	char		 dummy[CRYPT_OUTPUT_SIZE];
	X509_STORE	*enrol, *reenrol;
	/*
	 * Basic checks that passed lately, so that a client's retries (a 202
	 * is followed by the same request) do not each pay for crypt(3):
	 * HMAC-SHA256 under a key made at start of user, password and the
	 * stored hash, never the password itself.
	 */
	pthread_mutex_t	 seen_lock;
	unsigned char	 seen_key[32];
	struct {
		unsigned char	 mac[32];
		time_t		 until;
	}		 seen[AUTH_SEEN];
	size_t		 seen_next;
};

static int
load_creds(struct est_auth *a, const char *path, char *err, size_t errlen)
{
	FILE *f;
	struct stat sb;
	char line[512], *colon, *end;
	int lineno = 0, rc = -1;
	size_t i;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &sb) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (sb.st_mode & (S_IROTH | S_IWOTH | S_IWGRP)) {
		snprintf(err, errlen, "%s: mode %04o lets others read or write "
		    "it; make it 0600 or 0640", path, (unsigned)(sb.st_mode & 07777));
		goto out;
	}
	if ((a->creds = calloc(MAX_USERS, sizeof(*a->creds))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if ((end = strchr(line, '\n')) == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			goto out;
		}
		if (end != NULL)
			*end = '\0';
		if ((end = strchr(line, '\r')) != NULL)
			*end = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if ((colon = strchr(line, ':')) == NULL || colon == line ||
		    (size_t)(colon - line) > MAX_USER_LEN) {
			snprintf(err, errlen, "%s:%d: not \"user:hash\" (a user "
			    "name of 1 to %d bytes)", path, lineno, MAX_USER_LEN);
			goto out;
		}
		*colon = '\0';
		if (colon[1] != '$' || strlen(colon + 1) > MAX_HASH_LEN ||
		    crypt_checksalt(colon + 1) != CRYPT_SALT_OK) {
			snprintf(err, errlen, "%s:%d: the hash of %s is not a "
			    "crypt(3) hash this system accepts (yescrypt $y$, "
			    "SHA-512 $6$, SHA-256 $5$, bcrypt $2b$)", path,
			    lineno, line);
			goto out;
		}
		for (i = 0; i < a->ncreds; i++)
			if (strcmp(a->creds[i].user, line) == 0) {
				snprintf(err, errlen, "%s:%d: user %s is given "
				    "twice", path, lineno, line);
				goto out;
			}
		if (a->ncreds == MAX_USERS) {
			snprintf(err, errlen, "%s: more than %d users", path,
			    MAX_USERS);
			goto out;
		}
		/* Both lengths were checked above. */
		memcpy(a->creds[a->ncreds].user, line, strlen(line) + 1);
		memcpy(a->creds[a->ncreds].hash, colon + 1, strlen(colon + 1) + 1);
		a->ncreds++;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	return rc;
}

static X509_STORE *
load_store(const char *pems, char *err, size_t errlen)
{
	X509_STORE *st;
	char *copy, *path, *save = NULL;

	if ((st = X509_STORE_new()) == NULL || (copy = strdup(pems)) == NULL) {
		X509_STORE_free(st);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* A list of files separated by '\n'. */
	for (path = strtok_r(copy, "\n", &save); path != NULL;
	    path = strtok_r(NULL, "\n", &save)) {
		if (X509_STORE_load_file(st, path) != 1) {
			snprintf(err, errlen, "%s: no certificate can be read "
			    "from it", path);
			X509_STORE_free(st);
			free(copy);
			return NULL;
		}
	}
	free(copy);
	return st;
}

struct est_auth *
est_auth_load(const char *credentials, const char *enrol_files,
    const char *reenrol_files, char *err, size_t errlen)
{
	struct est_auth *a;
	struct crypt_data *cd;
	const char *h;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (pthread_mutex_init(&a->seen_lock, NULL) != 0) {
		free(a);
		snprintf(err, errlen, "cannot make a lock");
		return NULL;
	}
	if (RAND_bytes(a->seen_key, sizeof(a->seen_key)) != 1) {
		snprintf(err, errlen, "no random bytes for the credentials cache");
		goto fail;
	}
	if (credentials != NULL) {
		if (load_creds(a, credentials, err, errlen) == -1)
			goto fail;
		a->have_basic = 1;
	}
	/* The dummy: a real hash of a random-free constant, same method as
	 * the first user's when there is one. */
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	h = crypt_rn("not a password", a->ncreds > 0 ? a->creds[0].hash :
	    "$6$estdummysalt$", cd, sizeof(*cd));
	if (h == NULL || h[0] == '*') {
		free(cd);
		snprintf(err, errlen, "crypt(3) fails");
		goto fail;
	}
	snprintf(a->dummy, sizeof(a->dummy), "%s", h);
	free(cd);
	if ((a->enrol = load_store(enrol_files, err, errlen)) == NULL ||
	    (a->reenrol = load_store(reenrol_files, err, errlen)) == NULL)
		goto fail;
	return a;
fail:
	est_auth_free(a);
	return NULL;
}

void
est_auth_free(struct est_auth *a)
{
	if (a == NULL)
		return;
	if (a->creds != NULL) {
		OPENSSL_cleanse(a->creds, MAX_USERS * sizeof(*a->creds));
		free(a->creds);
	}
	X509_STORE_free(a->enrol);
	X509_STORE_free(a->reenrol);
	OPENSSL_cleanse(a->seen_key, sizeof(a->seen_key));
	OPENSSL_cleanse(a->seen, sizeof(a->seen));
	pthread_mutex_destroy(&a->seen_lock);
	free(a);
}

/* The MAC a passed check is remembered by; 0 or -1. */
static int
seen_mac(const struct est_auth *a, const char *user, const char *pass,
    const char *hash, unsigned char mac[32])
{
	unsigned char buf[MAX_USER_LEN + 1 + 1024 + 1 + CRYPT_OUTPUT_SIZE];
	size_t ul = strlen(user), pl = strlen(pass), hl = strlen(hash), len = 0;
	int ok;

	if (ul + 1 + pl + 1 + hl > sizeof(buf))
		return -1;
	memcpy(buf, user, ul + 1);
	memcpy(buf + ul + 1, pass, pl + 1);
	memcpy(buf + ul + 1 + pl + 1, hash, hl);
	ok = EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, a->seen_key,
	    sizeof(a->seen_key), buf, ul + 1 + pl + 1 + hl, mac, 32, &len) != NULL &&
	    len == 32;
	OPENSSL_cleanse(buf, sizeof(buf));
	return ok ? 0 : -1;
}

static int
seen_lookup(struct est_auth *a, const unsigned char mac[32], time_t now)
{
	size_t i;
	int hit = 0;

	if (pthread_mutex_lock(&a->seen_lock) != 0)
		return 0;
	for (i = 0; i < AUTH_SEEN; i++)
		if (a->seen[i].until > now &&
		    CRYPTO_memcmp(a->seen[i].mac, mac, 32) == 0)
			hit = 1;
	pthread_mutex_unlock(&a->seen_lock);
	return hit;
}

static void
seen_add(struct est_auth *a, const unsigned char mac[32], time_t now)
{
	if (pthread_mutex_lock(&a->seen_lock) != 0)
		return;
	memcpy(a->seen[a->seen_next].mac, mac, 32);
	a->seen[a->seen_next].until = now + AUTH_SEEN_SEC;
	a->seen_next = (a->seen_next + 1) % AUTH_SEEN;
	pthread_mutex_unlock(&a->seen_lock);
}

int
est_auth_has_basic(const struct est_auth *a)
{
	return a->have_basic;
}

int
est_auth_basic(struct est_auth *a, const char *header, char *user,
    size_t userlen, char *reason, size_t reasonlen)
{
	struct crypt_data *cd;
	unsigned char *dec = NULL;
	size_t declen = 0, i, hl;
	const struct cred *c = NULL;
	const char *hash, *got;
	char *colon, why[128];
	unsigned char mac[32];
	time_t now;
	int ok = 0, have_mac;

	user[0] = '\0';
	if (header == NULL || strncasecmp(header, "Basic ", 6) != 0)
		return -1;
	if (!a->have_basic) {
		snprintf(reason, reasonlen, "HTTP Basic is not configured "
		    "(no [est] credentials)");
		return 0;
	}
	if (est_b64_decode(header + 6, strlen(header + 6), &dec, &declen, why,
	    sizeof(why)) == -1 || declen > 1024 ||
	    (colon = memchr(dec, ':', declen)) == NULL) {
		if (dec != NULL)
			OPENSSL_cleanse(dec, declen);
		free(dec);
		snprintf(reason, reasonlen, "the Basic credentials are not "
		    "base64 of user:password");
		return 0;
	}
	/* NUL-terminate in place: dec has room for one more byte. */
	dec[declen] = '\0';
	*colon = '\0';
	if (strlen((char *)dec) != (size_t)(colon - (char *)dec) ||
	    strlen(colon + 1) != declen - (size_t)(colon - (char *)dec) - 1) {
		OPENSSL_cleanse(dec, declen);
		free(dec);
		snprintf(reason, reasonlen, "the Basic credentials hold a NUL byte");
		return 0;
	}
	snprintf(user, userlen, "%.64s", (char *)dec);
	for (i = 0; i < a->ncreds; i++)
		if (strcmp(a->creds[i].user, (char *)dec) == 0) {
			c = &a->creds[i];
			break;
		}
	hash = c != NULL ? c->hash : a->dummy;
	now = time(NULL);
	have_mac = c != NULL && seen_mac(a, c->user, colon + 1, c->hash, mac) == 0;
	if (have_mac && seen_lookup(a, mac, now)) {
		OPENSSL_cleanse(dec, declen);
		free(dec);
		OPENSSL_cleanse(mac, sizeof(mac));
		return 1;
	}
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		OPENSSL_cleanse(dec, declen);
		free(dec);
		snprintf(reason, reasonlen, "out of memory");
		return 0;
	}
	got = crypt_rn(colon + 1, hash, cd, sizeof(*cd));
	hl = strlen(hash);
	if (got != NULL && strlen(got) == hl &&
	    CRYPTO_memcmp(got, hash, hl) == 0 && c != NULL) {
		ok = 1;
		if (have_mac)
			seen_add(a, mac, now);
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	OPENSSL_cleanse(dec, declen);
	free(dec);
	if (!ok)
		snprintf(reason, reasonlen, c == NULL ? "unknown user" :
		    "wrong password");
	return ok;
}

int
est_auth_cert(const struct est_auth *a, STACK_OF(X509) *chain, int reenrol,
    char *reason, size_t reasonlen)
{
	X509_STORE_CTX *ctx;
	STACK_OF(X509) *untrusted = NULL;
	X509 *leaf;
	int i, rc = -1, e;

	if (chain == NULL || sk_X509_num(chain) == 0) {
		snprintf(reason, reasonlen, "no client certificate");
		return -1;
	}
	leaf = sk_X509_value(chain, 0);
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    (untrusted = sk_X509_new_null()) == NULL) {
		snprintf(reason, reasonlen, "out of memory");
		goto out;
	}
	for (i = 1; i < sk_X509_num(chain); i++)
		if (sk_X509_push(untrusted, sk_X509_value(chain, i)) <= 0) {
			snprintf(reason, reasonlen, "out of memory");
			goto out;
		}
	if (X509_STORE_CTX_init(ctx, reenrol ? a->reenrol : a->enrol, leaf,
	    untrusted) != 1 ||
	    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
		snprintf(reason, reasonlen, "cannot set up the verifier");
		goto out;
	}
	if (X509_verify_cert(ctx) == 1)
		rc = 0;
	else {
		e = X509_STORE_CTX_get_error(ctx);
		snprintf(reason, reasonlen, "the client certificate does not "
		    "verify to %s: %s", reenrol ? "the appliance root" :
		    "the configured anchors", X509_verify_cert_error_string(e));
	}
out:
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	return rc;
}
