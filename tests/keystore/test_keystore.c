/*
 * keystore unit tests.  Run as "test_keystore file" against the PEM file
 * store, or "test_keystore tpm2" under tests/lib/swtpm-run, which exports
 * IOTCA_TEST_TCTI; without it the tpm2 run is skipped (exit 77).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include "keystore.h"

#define SKIP_CODE	77

static enum ks_store	 store;
static const char	*tcti;

struct fixture {
	struct ks	*ks;
	char		 dir[PATH_MAX];
};

static void
path_in(const struct fixture *f, const char *name, char *buf, size_t len)
{
	int	 n;

	n = snprintf(buf, len, "%s/%s", f->dir, name);
	assert_true(n > 0 && (size_t)n < len);
}

static char *
slurp(const char *path, size_t *lenp)
{
	FILE	*fp;
	char	*buf;
	long	 len;

	assert_non_null(fp = fopen(path, "r"));
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	assert_true((len = ftell(fp)) >= 0);
	rewind(fp);
	assert_non_null(buf = calloc(1, (size_t)len + 1));
	assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	if (lenp != NULL)
		*lenp = (size_t)len;
	return buf;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int	 fd;

	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)) >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static struct ks *
new_ks(char *err, size_t errlen)
{
	struct ks_config cfg = { .store = store, .tcti = tcti };

	return ks_new(&cfg, err, errlen);
}

static int
setup(void **state)
{
	struct fixture	*f;
	char		 err[256];

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	(void)snprintf(f->dir, sizeof(f->dir), "%s/ks-test.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	if ((f->ks = new_ks(err, sizeof(err))) == NULL) {
		fprintf(stderr, "ks_new: %s\n", err);
		rmdir(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	struct dirent	*de;
	DIR		*d;
	char		 p[PATH_MAX];

	ks_free(f->ks);
	if ((d = opendir(f->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (snprintf(p, sizeof(p), "%s/%s", f->dir,
			    de->d_name) < (int)sizeof(p))
				(void)unlink(p);
		}
		closedir(d);
	}
	(void)rmdir(f->dir);
	free(f);
	return 0;
}

/* The public half of key, in a fresh context where only "default" exists. */
static EVP_PKEY *
public_copy(EVP_PKEY *key, OSSL_LIB_CTX *plain)
{
	unsigned char		*der = NULL;
	const unsigned char	*p;
	EVP_PKEY		*pub;
	int			 len;

	assert_true((len = i2d_PUBKEY(key, &der)) > 0);
	p = der;
	pub = d2i_PUBKEY_ex(NULL, &p, len, plain, NULL);
	OPENSSL_free(der);
	assert_non_null(pub);
	return pub;
}

/*
 * PEM boundary lines are built from their label here, so this file holds
 * no key-shaped text for scanners to mistake for a committed key.
 */
static void
begin_line(char *out, size_t len, const char *label)
{
	snprintf(out, len, "-----BEGIN %s-----", label);
}

/* text's first line is the BEGIN line of label. */
static int
starts_with_begin(const char *text, const char *label)
{
	char line[96];

	begin_line(line, sizeof(line), label);
	return strncmp(text, line, strlen(line)) == 0 &&
	    text[strlen(line)] == '\n';
}

/* text has a BEGIN line of label anywhere. */
static int
has_begin(const char *text, const char *label)
{
	char line[96];

	begin_line(line, sizeof(line), label);
	return strstr(text, line) != NULL;
}

/* sig must verify over msg with pub, in software; with a bit flipped, not. */
static void
verify_both_ways(OSSL_LIB_CTX *plain, EVP_PKEY *pub, const char *md,
    unsigned char *sig, size_t siglen, const unsigned char *msg, size_t len)
{
	EVP_MD_CTX	*vctx;
	int		 flip;

	for (flip = 0; flip <= 1; flip++) {
		sig[siglen / 2] ^= flip;
		assert_non_null(vctx = EVP_MD_CTX_new());
		assert_int_equal(EVP_DigestVerifyInit_ex(vctx, NULL, md, plain,
		    NULL, pub, NULL), 1);
		if (flip)
			assert_int_not_equal(EVP_DigestVerify(vctx, sig, siglen,
			    msg, len), 1);
		else
			assert_int_equal(EVP_DigestVerify(vctx, sig, siglen,
			    msg, len), 1);
		ERR_clear_error();
		EVP_MD_CTX_free(vctx);
	}
}

/*
 * Both ways of signing (a DigestSign context, and ks_sign's digest signed
 * by the provider) give signatures that anyone verifies with the public key.
 */
static void
sign_and_verify(struct ks *ks, EVP_PKEY *key)
{
	static const unsigned char msg[] = "certificate to be signed";
	OSSL_LIB_CTX	*plain;
	OSSL_PROVIDER	*def;
	EVP_MD_CTX	*sctx;
	EVP_PKEY	*pub;
	unsigned char	 sig[1024], *ksig = NULL;
	size_t		 siglen = sizeof(sig), ksiglen = 0;
	char		 err[256];

	sctx = ks_sign_ctx(ks, key, err, sizeof(err));
	if (sctx == NULL)
		fail_msg("ks_sign_ctx: %s", err);
	assert_int_equal(EVP_DigestSign(sctx, sig, &siglen, msg,
	    sizeof(msg)), 1);
	EVP_MD_CTX_free(sctx);
	if (ks_sign(ks, key, msg, sizeof(msg), &ksig, &ksiglen, err,
	    sizeof(err)) == -1)
		fail_msg("ks_sign: %s", err);

	/* Whoever checks the signature has only the public key and software. */
	assert_non_null(plain = OSSL_LIB_CTX_new());
	assert_non_null(def = OSSL_PROVIDER_load(plain, "default"));
	pub = public_copy(key, plain);
	verify_both_ways(plain, pub, ks_digest_for(key), sig, siglen, msg,
	    sizeof(msg));
	verify_both_ways(plain, pub, ks_digest_for(key), ksig, ksiglen, msg,
	    sizeof(msg));
	free(ksig);
	EVP_PKEY_free(pub);
	OSSL_PROVIDER_unload(def);
	OSSL_LIB_CTX_free(plain);
}

static const char *
provider_of(const EVP_PKEY *key)
{
	const OSSL_PROVIDER	*prov;

	assert_non_null(prov = EVP_PKEY_get0_provider(key));
	return OSSL_PROVIDER_get0_name(prov);
}

static void
roundtrip(void **state, enum ks_alg alg, int bits)
{
	struct fixture	*f = *state;
	EVP_PKEY	*gen, *loaded;
	struct stat	 st;
	char		 path[PATH_MAX], err[256];

	path_in(f, ks_alg_name(alg), path, sizeof(path));
	if ((gen = ks_generate(f->ks, alg, path, err, sizeof(err))) == NULL)
		fail_msg("ks_generate %s: %s", ks_alg_name(alg), err);

	/* The key reference is a private regular file. */
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());

	if ((loaded = ks_load(f->ks, path, err, sizeof(err))) == NULL)
		fail_msg("ks_load %s: %s", path, err);
	assert_int_equal(EVP_PKEY_get_bits(loaded), bits);
	assert_int_equal(EVP_PKEY_eq(gen, loaded), 1);
	assert_string_equal(provider_of(loaded),
	    store == KS_STORE_TPM2 ? "tpm2" : "default");

	sign_and_verify(f->ks, loaded);
	sign_and_verify(f->ks, gen);

	EVP_PKEY_free(loaded);
	EVP_PKEY_free(gen);
}

static void
test_roundtrip_ec_p384(void **state)
{
	roundtrip(state, KS_ALG_EC_P384, 384);
}

static void
test_roundtrip_ec_p521(void **state)
{
	roundtrip(state, KS_ALG_EC_P521, 521);
}

static void
test_roundtrip_rsa_3072(void **state)
{
	roundtrip(state, KS_ALG_RSA_3072, 3072);
}

static void
test_digest_for(void **state)
{
	struct fixture	*f = *state;
	EVP_PKEY	*k;
	char		 path[PATH_MAX], err[256];
	static const struct {
		enum ks_alg	 alg;
		const char	*md;
	} want[] = {
		{ KS_ALG_EC_P256, "SHA384" },
		{ KS_ALG_EC_P384, "SHA384" },
		{ KS_ALG_EC_P521, "SHA512" },
		{ KS_ALG_RSA_2048, "SHA384" },
	};
	size_t		 i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		path_in(f, ks_alg_name(want[i].alg), path, sizeof(path));
		k = ks_generate(f->ks, want[i].alg, path, err, sizeof(err));
		if (k == NULL)
			fail_msg("ks_generate: %s", err);
		assert_string_equal(ks_digest_for(k), want[i].md);
		EVP_PKEY_free(k);
	}
}

/* An existing file is never replaced, whatever it is. */
static void
test_generate_refuses_existing(void **state)
{
	struct fixture	*f = *state;
	struct stat	 st;
	char		 path[PATH_MAX], link[PATH_MAX], err[256] = "";
	char		*text;

	path_in(f, "precious", path, sizeof(path));
	write_file(path, "precious data\n", 0644);
	assert_null(ks_generate(f->ks, KS_ALG_EC_P384, path, err,
	    sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, strerror(EEXIST)));
	text = slurp(path, NULL);
	assert_string_equal(text, "precious data\n");
	free(text);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);

	/* A symlink planted at the path is not followed either. */
	path_in(f, "planted", link, sizeof(link));
	assert_int_equal(symlink(path, link), 0);
	err[0] = '\0';
	assert_null(ks_generate(f->ks, KS_ALG_EC_P384, link, err,
	    sizeof(err)));
	assert_true(err[0] != '\0');
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	text = slurp(path, NULL);
	assert_string_equal(text, "precious data\n");
	free(text);
}

static void
test_generate_bad_path(void **state)
{
	struct fixture	*f = *state;
	struct stat	 st;
	char		 path[PATH_MAX], err[256] = "";

	path_in(f, "no-such-dir/key.pem", path, sizeof(path));
	assert_null(ks_generate(f->ks, KS_ALG_EC_P384, path, err,
	    sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_int_equal(stat(path, &st), -1);

	err[0] = '\0';
	assert_null(ks_generate(f->ks, KS_ALG_EC_P384, "", err, sizeof(err)));
	assert_true(err[0] != '\0');
	err[0] = '\0';
	assert_null(ks_generate(f->ks, (enum ks_alg)99,
	    "/nonexistent-dir/x", err, sizeof(err)));
	assert_true(err[0] != '\0');
}

/* A generation the store cannot do leaves no file and says what it can do. */
static void
test_generate_unsupported(void **state)
{
	struct fixture	*f = *state;
	struct stat	 st;
	char		 path[PATH_MAX], err[256] = "";
	EVP_PKEY	*k;

	if (store != KS_STORE_TPM2)
		skip();
	path_in(f, "rsa-4096", path, sizeof(path));
	k = ks_generate(f->ks, KS_ALG_RSA_4096, path, err, sizeof(err));
	if (k != NULL) {
		/* A TPM that does make RSA-4096 keys: nothing to show here. */
		EVP_PKEY_free(k);
		skip();
	}
	assert_non_null(strstr(err, "the TPM cannot create rsa-4096 keys "
	    "(it can: "));
	assert_non_null(strstr(err, "ec-p384"));
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

/* What is on disk: a TPM blob with the TPM, a PKCS#8 key without. */
static void
test_key_file_form(void **state)
{
	struct fixture	*f = *state;
	OSSL_LIB_CTX	*plain;
	OSSL_PROVIDER	*def;
	OSSL_STORE_CTX	*sctx;
	OSSL_STORE_INFO	*info;
	EVP_PKEY	*k;
	BIO		*bio;
	char		 path[PATH_MAX], err[256];
	char		*text, *p;
	int		 begins = 0, found = 0;

	path_in(f, "form.pem", path, sizeof(path));
	if ((k = ks_generate(f->ks, KS_ALG_EC_P384, path, err,
	    sizeof(err))) == NULL)
		fail_msg("ks_generate: %s", err);
	EVP_PKEY_free(k);
	text = slurp(path, NULL);
	for (p = text; (p = strstr(p, "-----BEGIN ")) != NULL; p++)
		begins++;
	assert_int_equal(begins, 1);

	if (store == KS_STORE_FILE) {
		assert_int_equal(ks_is_hardware(f->ks), 0);
		assert_true(starts_with_begin(text, "PRIVATE KEY"));
		free(text);
		return;
	}
	assert_int_equal(ks_is_hardware(f->ks), 1);
	assert_true(starts_with_begin(text, "TSS2 PRIVATE KEY"));
	assert_false(has_begin(text, "PRIVATE KEY"));
	assert_false(has_begin(text, "EC PRIVATE KEY"));
	assert_false(has_begin(text, "ENCRYPTED PRIVATE KEY"));
	free(text);

	/* Software alone cannot make a private key of it. */
	assert_non_null(plain = OSSL_LIB_CTX_new());
	assert_non_null(def = OSSL_PROVIDER_load(plain, "default"));
	assert_non_null(bio = BIO_new_file(path, "r"));
	assert_null(PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, NULL, plain,
	    NULL));
	BIO_free(bio);
	sctx = OSSL_STORE_open_ex(path, plain, NULL, NULL, NULL, NULL, NULL,
	    NULL);
	if (sctx != NULL) {
		while (!OSSL_STORE_eof(sctx)) {
			if ((info = OSSL_STORE_load(sctx)) == NULL) {
				if (OSSL_STORE_error(sctx))
					break;
				continue;
			}
			if (OSSL_STORE_INFO_get_type(info) ==
			    OSSL_STORE_INFO_PKEY)
				found = 1;
			OSSL_STORE_INFO_free(info);
		}
		OSSL_STORE_close(sctx);
	}
	assert_int_equal(found, 0);
	ERR_clear_error();
	OSSL_PROVIDER_unload(def);
	OSSL_LIB_CTX_free(plain);
}

static void
test_probe(void **state)
{
	struct fixture	*f = *state;
	char		 list[256], err[256], *p, *save = NULL;
	enum ks_alg	 alg;
	int		 n = 0;

	if (ks_probe(f->ks, list, sizeof(list), err, sizeof(err)) == -1)
		fail_msg("ks_probe: %s", err);
	print_message("probe: %s\n", list);
	/* What swtpm 0.7 and OpenSSL both offer. */
	assert_non_null(strstr(list, "ec-p384"));
	if (store == KS_STORE_FILE)
		assert_string_equal(list,
		    "ec-p256,ec-p384,ec-p521,rsa-2048,rsa-3072");
	for (p = strtok_r(list, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save)) {
		assert_int_equal(ks_alg_parse(p, &alg), 0);
		n++;
	}
	assert_true(n >= 1);

	/* Too small a buffer is an error, not a truncated list. */
	assert_int_equal(ks_probe(f->ks, list, 8, err, sizeof(err)), -1);
}

static void
test_load_errors(void **state)
{
	struct fixture	*f = *state;
	OSSL_LIB_CTX	*plain;
	OSSL_PROVIDER	*def;
	EVP_PKEY	*soft;
	BIO		*bio;
	char		 path[PATH_MAX], err[256] = "";

	path_in(f, "missing.pem", path, sizeof(path));
	assert_null(ks_load(f->ks, path, err, sizeof(err)));
	assert_non_null(strstr(err, path));

	path_in(f, "garbage.pem", path, sizeof(path));
	write_file(path, "not a key\n", 0600);
	err[0] = '\0';
	assert_null(ks_load(f->ks, path, err, sizeof(err)));
	assert_non_null(strstr(err, path));

	err[0] = '\0';
	assert_null(ks_load(f->ks, "", err, sizeof(err)));
	assert_true(err[0] != '\0');

	if (store != KS_STORE_TPM2)
		return;
	/* A software key handed to the TPM store is refused. */
	path_in(f, "soft.pem", path, sizeof(path));
	assert_non_null(plain = OSSL_LIB_CTX_new());
	assert_non_null(def = OSSL_PROVIDER_load(plain, "default"));
	assert_non_null(soft = EVP_PKEY_Q_keygen(plain, NULL, "EC", "P-384"));
	assert_non_null(bio = BIO_new_file(path, "w"));
	assert_int_equal(PEM_write_bio_PrivateKey(bio, soft, NULL, NULL, 0,
	    NULL, NULL), 1);
	BIO_free(bio);
	EVP_PKEY_free(soft);
	OSSL_PROVIDER_unload(def);
	OSSL_LIB_CTX_free(plain);
	err[0] = '\0';
	assert_null(ks_load(f->ks, path, err, sizeof(err)));
	assert_non_null(strstr(err, "not held by the TPM"));
}

static void
test_alg_parse(void **state)
{
	static const char *const good[] = {
		"ec-p256", "ec-p384", "ec-p521", "rsa-2048", "rsa-3072",
		"rsa-4096",
	};
	static const char *const bad[] = {
		"", "ec", "ec-p", "ec-p385", "EC-P384", "ec-p384 ", " ec-p384",
		"p384", "secp384r1", "rsa", "rsa-1024", "rsa-3072x", "ed25519",
	};
	enum ks_alg	 alg;
	enum ks_store	 st;
	size_t		 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(ks_alg_parse(good[i], &alg), 0);
		assert_string_equal(ks_alg_name(alg), good[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		alg = KS_ALG_EC_P384;
		assert_int_equal(ks_alg_parse(bad[i], &alg), -1);
		assert_int_equal(alg, KS_ALG_EC_P384);	/* untouched */
	}
	assert_int_equal(ks_alg_parse(NULL, &alg), -1);

	assert_int_equal(ks_store_parse("file", &st), 0);
	assert_int_equal(st, KS_STORE_FILE);
	assert_int_equal(ks_store_parse("tpm2", &st), 0);
	assert_int_equal(st, KS_STORE_TPM2);
	assert_int_equal(ks_store_parse("provider", &st), 0);
	assert_int_equal(st, KS_STORE_PROVIDER);
	assert_int_equal(ks_store_parse("TPM2", &st), -1);
	assert_int_equal(ks_store_parse("pkcs11", &st), -1);
	assert_int_equal(ks_store_parse("", &st), -1);
	assert_int_equal(ks_store_parse(NULL, &st), -1);
}

static void
test_bad_configs(void **state)
{
	struct ks_config cfg = { .store = KS_STORE_PROVIDER };
	struct fixture	*f = *state;
	struct ks	*ks;
	const char	*before;
	char		 err[256] = "", path[PATH_MAX];

	assert_null(ks_new(NULL, err, sizeof(err)));
	assert_true(err[0] != '\0');

	err[0] = '\0';
	assert_null(ks_new(&cfg, err, sizeof(err)));
	assert_true(err[0] != '\0');

	cfg.provider = "no-such-provider";
	err[0] = '\0';
	assert_null(ks_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "no-such-provider"));

	/* A provider store makes no keys: they come from the HSM's tools. */
	cfg.provider = "default";
	if ((ks = ks_new(&cfg, err, sizeof(err))) == NULL)
		fail_msg("ks_new provider=default: %s", err);
	assert_int_equal(ks_is_hardware(ks), 1);
	path_in(f, "prov.pem", path, sizeof(path));
	err[0] = '\0';
	assert_null(ks_generate(ks, KS_ALG_EC_P384, path, err, sizeof(err)));
	assert_non_null(strstr(err, "named by URI"));
	assert_int_equal(access(path, F_OK), -1);
	ks_free(ks);

	if (store != KS_STORE_TPM2)
		return;
	/* A TPM that does not answer fails at once, and says which one. */
	before = getenv("TPM2OPENSSL_TCTI");
	cfg.store = KS_STORE_TPM2;
	cfg.tcti = "swtpm:host=127.0.0.1,port=1";
	err[0] = '\0';
	assert_null(ks_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "port=1"));
	/* ... and the environment is as it was. */
	if (before == NULL)
		assert_null(getenv("TPM2OPENSSL_TCTI"));
	else
		assert_string_equal(getenv("TPM2OPENSSL_TCTI"), before);
}

/* Without a configured TCTI the provider's own default applies. */
static void
test_tcti_from_environment(void **state)
{
	struct ks_config cfg = { .store = KS_STORE_TPM2, .tcti = NULL };
	struct ks	*ks;
	char		 err[256], list[128];
	char		*before = NULL;

	(void)state;
	if (store != KS_STORE_TPM2)
		skip();
	if (getenv("TPM2OPENSSL_TCTI") != NULL)
		assert_non_null(before = strdup(getenv("TPM2OPENSSL_TCTI")));
	assert_int_equal(setenv("TPM2OPENSSL_TCTI", tcti, 1), 0);
	if ((ks = ks_new(&cfg, err, sizeof(err))) == NULL)
		fail_msg("ks_new from TPM2OPENSSL_TCTI: %s", err);
	if (ks_probe(ks, list, sizeof(list), err, sizeof(err)) == -1)
		fail_msg("ks_probe: %s", err);
	assert_non_null(strstr(list, "ec-p384"));
	ks_free(ks);
	if (before != NULL)
		assert_int_equal(setenv("TPM2OPENSSL_TCTI", before, 1), 0);
	else
		assert_int_equal(unsetenv("TPM2OPENSSL_TCTI"), 0);
	free(before);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alg_parse),
		cmocka_unit_test_setup_teardown(test_bad_configs, setup,
		    teardown),
		cmocka_unit_test(test_tcti_from_environment),
		cmocka_unit_test_setup_teardown(test_roundtrip_ec_p384, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_ec_p521, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_rsa_3072, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_digest_for, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_generate_refuses_existing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_generate_bad_path, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_generate_unsupported,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_file_form, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_errors, setup,
		    teardown),
	};

	if (argc != 2 || ks_store_parse(argv[1], &store) == -1 ||
	    store == KS_STORE_PROVIDER) {
		fprintf(stderr, "usage: %s file|tpm2\n", argv[0]);
		return 2;
	}
	if (store == KS_STORE_TPM2 &&
	    (tcti = getenv("IOTCA_TEST_TCTI")) == NULL) {
		fprintf(stderr, "%s: IOTCA_TEST_TCTI not set (run under "
		    "tests/lib/swtpm-run); skipping\n", argv[0]);
		return SKIP_CODE;
	}
	cmocka_set_message_output(CM_OUTPUT_STDOUT);
	return cmocka_run_group_tests_name(argv[1], tests, NULL, NULL);
}
