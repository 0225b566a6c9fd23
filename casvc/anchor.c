/*
 * anchor: the audit log's keys and counter, in the TPM or in files (see
 * anchor.h).  The HMAC key is the only secret held in memory: it sits in a
 * locked page and is cleansed on close.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "anchor.h"
#include "tpmseal.h"

struct anchor {
	enum anchor_mode mode;
	struct ks	*ks;		/* tpm2: the provider holding sign_key */
	struct tpm	*tpm;		/* tpm2: for the NV counter */
	uint32_t	 nv_index;
	char		*counter_path;	/* file mode */
	EVP_PKEY	*sign_key;
	EVP_PKEY	*pub;		/* default provider copy of sign_key's public half */
	unsigned char	*hmac;		/* ANCHOR_HMAC_LEN bytes, locked */
	int		 locked;
};

static int
ossl_fail(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[160];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", e ? buf : "");
	ERR_clear_error();
	return -1;
}

static int
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Write bytes to a new 0600 file, or replace one atomically (fsync+rename). */
static int
write_private(const char *path, const void *data, size_t len, int replace,
    char *err, size_t errlen)
{
	char tmp[PATH_MAX], dirbuf[PATH_MAX];
	const char *target = path;
	ssize_t w;
	int fd, dfd;

	if (replace) {
		if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp)) {
			snprintf(err, errlen, "%s: path too long", path);
			return -1;
		}
		(void)unlink(tmp);
		target = tmp;
	}
	fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", target, strerror(errno));
		return -1;
	}
	w = write(fd, data, len);
	if (w != (ssize_t)len || fsync(fd) == -1) {
		snprintf(err, errlen, "%s: cannot write: %s", target,
		    w == -1 || w == (ssize_t)len ? strerror(errno) : "short write");
		close(fd);
		unlink(target);
		return -1;
	}
	if (close(fd) == -1) {
		snprintf(err, errlen, "%s: %s", target, strerror(errno));
		unlink(target);
		return -1;
	}
	if (!replace)
		return 0;
	if (rename(tmp, path) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	/* The rename itself must reach the disk, or a crash brings back the old count. */
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	if ((dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(dfd) == -1) {
		snprintf(err, errlen, "%s: directory sync: %s", path,
		    strerror(errno));
		if (dfd != -1)
			close(dfd);
		return -1;
	}
	close(dfd);
	return 0;
}

static int
read_exact(const char *path, unsigned char *buf, size_t len, char *err,
    size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: must be a file of mode 0600", path);
		close(fd);
		return -1;
	}
	n = read(fd, buf, len);
	close(fd);
	if (n != (ssize_t)len || (size_t)st.st_size != len) {
		snprintf(err, errlen, "%s: not a %zu-byte key", path, len);
		return -1;
	}
	return 0;
}

/* The counter file: one decimal number and a newline. */
static int
file_counter_read(const char *path, uint64_t *v, char *err, size_t errlen)
{
	char buf[32], *end;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		snprintf(err, errlen, "%s: empty or unreadable", path);
		return -1;
	}
	buf[n] = '\0';
	errno = 0;
	*v = strtoull(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0')) {
		snprintf(err, errlen, "%s: not a counter", path);
		return -1;
	}
	return 0;
}

static int
file_counter_write(const char *path, uint64_t v, int replace, char *err,
    size_t errlen)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)v);

	return write_private(path, buf, (size_t)n, replace, err, errlen);
}

static EVP_PKEY *
public_copy(EVP_PKEY *key, char *err, size_t errlen)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub;
	int len;

	if ((len = i2d_PUBKEY(key, &der)) <= 0) {
		ossl_fail(err, errlen, "audit key: cannot export its public key");
		return NULL;
	}
	p = der;
	pub = d2i_PUBKEY_ex(NULL, &p, len, NULL, NULL);
	OPENSSL_free(der);
	if (pub == NULL)
		ossl_fail(err, errlen, "audit key: cannot read its public key");
	return pub;
}

/* File mode: a P-384 key made by OpenSSL, kept in a 0600 PEM file. */
static EVP_PKEY *
file_key_create(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key;
	FILE *f;
	int fd, ok;

	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384")) == NULL) {
		ossl_fail(err, errlen, "audit key: generation failed");
		return NULL;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1 || (f = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		EVP_PKEY_free(key);
		return NULL;
	}
	ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1 &&
	    fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0 || !ok) {
		snprintf(err, errlen, "%s: cannot write the audit key", path);
		unlink(path);
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

static EVP_PKEY *
file_key_load(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL)
		ossl_fail(err, errlen, "audit key: not a PEM private key");
	return key;
}

/* tpm2 mode: the checkpoint key is made inside the TPM by the provider. */
static EVP_PKEY *
tpm_key_create(struct ks *ks, const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key;

	/* P-384 where the TPM has it; many real TPMs only do P-256. */
	if ((key = ks_generate(ks, KS_ALG_EC_P384, path, err, errlen)) != NULL)
		return key;
	return ks_generate(ks, KS_ALG_EC_P256, path, err, errlen);
}

static int
create_files(struct anchor *a, const struct anchor_paths *p, char *err,
    size_t errlen)
{
	unsigned char secret[ANCHOR_HMAC_LEN];
	int rc = -1;

	if (RAND_priv_bytes(secret, sizeof(secret)) != 1)
		return ossl_fail(err, errlen, "random bytes for the audit key");
	if (p->mode == ANCHOR_TPM2) {
		if (tpm_counter_define(a->tpm, p->nv_index, err, errlen) == -1 ||
		    tpm_seal_new(a->tpm, p->hmac_key, secret, sizeof(secret),
		    err, errlen) == -1)
			goto out;
		if ((a->sign_key = tpm_key_create(a->ks, p->sign_key, err,
		    errlen)) == NULL) {
			unlink(p->hmac_key);
			goto out;
		}
	} else {
		if (write_private(p->hmac_key, secret, sizeof(secret), 0, err,
		    errlen) == -1)
			goto out;
		if (file_counter_write(p->counter, 0, 0, err, errlen) == -1) {
			unlink(p->hmac_key);
			goto out;
		}
		if ((a->sign_key = file_key_create(p->sign_key, err,
		    errlen)) == NULL) {
			unlink(p->hmac_key);
			unlink(p->counter);
			goto out;
		}
	}
	rc = 0;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

static int
load_files(struct anchor *a, const struct anchor_paths *p, char *err,
    size_t errlen)
{
	size_t len = 0;
	uint64_t v;
	unsigned char buf[TPMSEAL_MAX_SECRET];
	int rc;

	if (p->mode == ANCHOR_FILE) {
		if (file_counter_read(p->counter, &v, err, errlen) == -1 ||
		    read_exact(p->hmac_key, a->hmac, ANCHOR_HMAC_LEN, err,
		    errlen) == -1)
			return -1;
		a->sign_key = file_key_load(p->sign_key, err, errlen);
		return a->sign_key == NULL ? -1 : 0;
	}
	rc = tpm_unseal(a->tpm, p->hmac_key, buf, &len, err, errlen);
	if (rc == 0 && len != ANCHOR_HMAC_LEN) {
		snprintf(err, errlen, "%s: unsealed a %zu-byte key", p->hmac_key,
		    len);
		rc = -1;
	}
	if (rc == 0)
		memcpy(a->hmac, buf, ANCHOR_HMAC_LEN);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc == -1 || tpm_counter_read(a->tpm, p->nv_index, &v, err,
	    errlen) == -1)
		return -1;
	a->sign_key = ks_load(a->ks, p->sign_key, err, errlen);
	return a->sign_key == NULL ? -1 : 0;
}

struct anchor *
anchor_open(struct ks *ks, const struct anchor_paths *p, int may_create,
    int *created, char *err, size_t errlen)
{
	struct anchor *a;
	int have_sign, have_hmac, have_counter;

	*created = 0;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->mode = p->mode;
	a->ks = ks;
	a->nv_index = p->nv_index;
	/* A page of its own, locked, so the key never reaches swap. */
	a->hmac = mmap(NULL, ANCHOR_HMAC_LEN, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a->hmac == MAP_FAILED) {
		a->hmac = NULL;
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		goto fail;
	}
	a->locked = mlock(a->hmac, ANCHOR_HMAC_LEN) == 0;
	(void)madvise(a->hmac, ANCHOR_HMAC_LEN, MADV_DONTDUMP);
	if (p->mode == ANCHOR_FILE) {
		if ((a->counter_path = strdup(p->counter)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	} else if ((a->tpm = tpm_open(p->tcti, p->parent, p->owner_auth, err, errlen)) == NULL)
		goto fail;

	have_sign = exists(p->sign_key);
	have_hmac = exists(p->hmac_key);
	have_counter = p->mode == ANCHOR_FILE ? exists(p->counter) : 0;
	if (!have_sign && !have_hmac && !have_counter && may_create) {
		if (create_files(a, p, err, errlen) == -1)
			goto fail;
		*created = 1;
		EVP_PKEY_free(a->sign_key);
		a->sign_key = NULL;
	} else if (!have_sign || !have_hmac) {
		snprintf(err, errlen, "audit keys missing (%s, %s)%s",
		    p->sign_key, p->hmac_key, may_create ? ": some are there, "
		    "some not; refusing to make new ones beside old ones" :
		    ", yet the audit log has records: restore them");
		goto fail;
	}
	if (load_files(a, p, err, errlen) == -1 ||
	    (a->pub = public_copy(a->sign_key, err, errlen)) == NULL)
		goto fail;
	return a;
fail:
	anchor_close(a);
	return NULL;
}

void
anchor_close(struct anchor *a)
{
	if (a == NULL)
		return;
	if (a->hmac != NULL) {
		OPENSSL_cleanse(a->hmac, ANCHOR_HMAC_LEN);
		if (a->locked)
			(void)munlock(a->hmac, ANCHOR_HMAC_LEN);
		(void)munmap(a->hmac, ANCHOR_HMAC_LEN);
	}
	EVP_PKEY_free(a->sign_key);
	EVP_PKEY_free(a->pub);
	tpm_close(a->tpm);
	free(a->counter_path);
	free(a);
}

int
anchor_is_hardware(const struct anchor *a)
{
	return a->mode == ANCHOR_TPM2;
}

const char *
anchor_mode_name(const struct anchor *a)
{
	return a->mode == ANCHOR_TPM2 ? "tpm2" : "file";
}

const unsigned char *
anchor_hmac_key(const struct anchor *a)
{
	return a->hmac;
}

EVP_PKEY *
anchor_pubkey(const struct anchor *a)
{
	return a->pub;
}

int
anchor_sign(struct anchor *a, const unsigned char *msg, size_t msglen,
    unsigned char **sig, size_t *siglen, char *err, size_t errlen)
{
	EVP_MD_CTX *ctx;
	int ok;

	*sig = NULL;
	if (a->mode == ANCHOR_TPM2)
		return ks_sign(a->ks, a->sign_key, msg, msglen, sig, siglen,
		    err, errlen);
	if ((ctx = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestSignInit_ex(ctx, NULL, "SHA384", NULL, NULL, a->sign_key,
	    NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
		ossl_fail(err, errlen, "audit key: sign init");
	}
	if (ctx == NULL)
		return -1;
	ok = EVP_DigestSign(ctx, NULL, siglen, msg, msglen) == 1 &&
	    (*sig = malloc(*siglen)) != NULL &&
	    EVP_DigestSign(ctx, *sig, siglen, msg, msglen) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		free(*sig);
		*sig = NULL;
		return ossl_fail(err, errlen, "audit checkpoint: signing failed");
	}
	return 0;
}

int
anchor_counter_read(struct anchor *a, uint64_t *v, char *err, size_t errlen)
{
	if (a->mode == ANCHOR_TPM2)
		return tpm_counter_read(a->tpm, a->nv_index, v, err, errlen);
	return file_counter_read(a->counter_path, v, err, errlen);
}

int
anchor_counter_increment(struct anchor *a, uint64_t *v, char *err,
    size_t errlen)
{
	uint64_t cur;

	if (a->mode == ANCHOR_TPM2)
		return tpm_counter_increment(a->tpm, a->nv_index, v, err, errlen);
	if (file_counter_read(a->counter_path, &cur, err, errlen) == -1 ||
	    file_counter_write(a->counter_path, cur + 1, 1, err, errlen) == -1)
		return -1;
	*v = cur + 1;
	return 0;
}
