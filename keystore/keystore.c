/*
 * keystore: key generation, loading and signing through OpenSSL 3 providers.
 * See keystore.h for the contract.
 *
 * Everything happens in a library context of our own, so that the system
 * openssl.cnf cannot add or reorder providers under us, and so that the
 * property queries below mean exactly what they say.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include "keystore.h"

#define KS_PROVNAME_MAX	64
#define KS_PROPQ_MAX	(KS_PROVNAME_MAX + 16)

struct ks {
	enum ks_store	 store;
	OSSL_LIB_CTX	*libctx;
	OSSL_PROVIDER	*prov_default;
	OSSL_PROVIDER	*prov_base;
	OSSL_PROVIDER	*prov_store;	/* tpm2 or the named one; NULL for file */
	char		 provname[KS_PROVNAME_MAX];	/* holds the keys */
	char		 propq[KS_PROPQ_MAX];		/* "provider=<provname>" */
	char		 propq_pref[KS_PROPQ_MAX];	/* "?provider=<provname>" */
	uint32_t	 parent;	/* tpm2: persistent parent, or 0 */
	EVP_MD		*sha384, *sha512;	/* ks_sign's, fetched once */
};

static const struct {
	enum ks_alg	 alg;
	const char	*name;
	const char	*type;		/* EVP_PKEY type name */
	const char	*group;		/* EC */
	unsigned int	 bits;		/* RSA */
} algs[] = {
	{ KS_ALG_EC_P256,	"ec-p256",	"EC",	"P-256",	0 },
	{ KS_ALG_EC_P384,	"ec-p384",	"EC",	"P-384",	0 },
	{ KS_ALG_EC_P521,	"ec-p521",	"EC",	"P-521",	0 },
	{ KS_ALG_RSA_2048,	"rsa-2048",	"RSA",	NULL,		2048 },
	{ KS_ALG_RSA_3072,	"rsa-3072",	"RSA",	NULL,		3072 },
	{ KS_ALG_RSA_4096,	"rsa-4096",	"RSA",	NULL,		4096 },
};
#define NALGS	(sizeof(algs) / sizeof(algs[0]))

/*
 * What ks_probe() tries.  RSA-4096 is left out: no TPM we know of makes it,
 * and where one does it takes long enough to make a probe unpleasant.
 */
static const enum ks_alg probe_algs[] = {
	KS_ALG_EC_P256, KS_ALG_EC_P384, KS_ALG_EC_P521,
	KS_ALG_RSA_2048, KS_ALG_RSA_3072,
};
#define NPROBE	(sizeof(probe_algs) / sizeof(probe_algs[0]))

/*
 * Write one error line: the caller's words, then the most recent OpenSSL
 * error (with the provider's detail text, when it left any).  The OpenSSL
 * error queue is always cleared, so a later failure does not report stale
 * errors.
 */
static void
ks_err(char *err, size_t errlen, const char *fmt, ...)
{
	char		 msg[256], ossl[256];
	const char	*data = NULL;
	unsigned long	 e;
	int		 flags = 0;
	va_list		 ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	e = ERR_peek_last_error_all(NULL, NULL, NULL, &data, &flags);
	if (e == 0) {
		if (err != NULL && errlen > 0)
			(void)snprintf(err, errlen, "%s", msg);
	} else {
		ERR_error_string_n(e, ossl, sizeof(ossl));
		if ((flags & ERR_TXT_STRING) == 0 || data == NULL)
			data = "";
		if (err != NULL && errlen > 0)
			(void)snprintf(err, errlen, "%s: %s%s%s", msg, ossl,
			    *data != '\0' ? ": " : "", data);
	}
	ERR_clear_error();
}

static int
alg_index(enum ks_alg alg)
{
	size_t	 i;

	for (i = 0; i < NALGS; i++)
		if (algs[i].alg == alg)
			return (int)i;
	return -1;
}

int
ks_store_parse(const char *s, enum ks_store *out)
{
	if (s == NULL)
		return -1;
	if (strcmp(s, "file") == 0)
		*out = KS_STORE_FILE;
	else if (strcmp(s, "tpm2") == 0)
		*out = KS_STORE_TPM2;
	else if (strcmp(s, "provider") == 0)
		*out = KS_STORE_PROVIDER;
	else
		return -1;
	return 0;
}

int
ks_alg_parse(const char *s, enum ks_alg *out)
{
	size_t	 i;

	if (s == NULL)
		return -1;
	for (i = 0; i < NALGS; i++) {
		if (strcmp(s, algs[i].name) == 0) {
			*out = algs[i].alg;
			return 0;
		}
	}
	return -1;
}

const char *
ks_alg_name(enum ks_alg alg)
{
	int	 i;

	if ((i = alg_index(alg)) < 0)
		return "unknown";
	return algs[i].name;
}

static const char *
store_noun(enum ks_store store)
{
	switch (store) {
	case KS_STORE_FILE:
		return "the file store";
	case KS_STORE_TPM2:
		return "the TPM";
	case KS_STORE_PROVIDER:
		return "the provider";
	}
	return "the store";
}

/*
 * Load the tpm2 provider into ks->libctx, talking to the given TCTI.
 *
 * tpm2-openssl (1.1.x) takes its TCTI from the TPM2OPENSSL_TCTI environment
 * variable, or else from a "tcti" parameter in the provider's section of an
 * OpenSSL configuration file; OpenSSL 3.0 has no call to hand a provider a
 * parameter directly (OSSL_PROVIDER_add_conf_parameter() came in 3.2), and
 * the environment wins over the configuration anyway.  So the variable is
 * set just for the provider's initialisation, which reads it, and put back
 * as it was afterwards.  This is the only process-wide state the keystore
 * touches; it is not thread-safe, and is meant to run at start-up.
 */
static int
load_tpm2(struct ks *ks, const char *tcti, char *err, size_t errlen)
{
	const char	*old, *shown;
	char		*saved = NULL;
	int		 had = 0, rc = 0;

	if (tcti != NULL) {
		if ((old = getenv("TPM2OPENSSL_TCTI")) != NULL &&
		    (saved = strdup(old)) == NULL) {
			ks_err(err, errlen, "out of memory");
			return -1;
		}
		had = old != NULL;
		if (setenv("TPM2OPENSSL_TCTI", tcti, 1) == -1) {
			ks_err(err, errlen, "setenv TPM2OPENSSL_TCTI: %s",
			    strerror(errno));
			free(saved);
			return -1;
		}
	}

	ks->prov_store = OSSL_PROVIDER_load(ks->libctx, "tpm2");
	if (ks->prov_store == NULL) {
		if ((shown = getenv("TPM2OPENSSL_TCTI")) == NULL)
			shown = "the tpm2-tss default";
		ks_err(err, errlen, "cannot load the tpm2 provider (TCTI %s)",
		    shown);
		rc = -1;
	}

	if (tcti != NULL) {
		if (had ? setenv("TPM2OPENSSL_TCTI", saved, 1) :
		    unsetenv("TPM2OPENSSL_TCTI")) {
			if (rc == 0)
				ks_err(err, errlen, "restore TPM2OPENSSL_TCTI: %s",
				    strerror(errno));
			rc = -1;
		}
		free(saved);
	}
	return rc;
}

static int
set_provname(struct ks *ks, const char *name, char *err, size_t errlen)
{
	int	 n;

	if (strlen(name) >= sizeof(ks->provname)) {
		ks_err(err, errlen, "provider name too long");
		return -1;
	}
	(void)strcpy(ks->provname, name);
	/*
	 * A hard requirement, not a "?" preference: if the key's provider
	 * cannot do an operation we want an error naming it, not a silent
	 * fallback to the default provider, which has no private key.
	 */
	n = snprintf(ks->propq, sizeof(ks->propq), "provider=%s", name);
	if (n < 0 || (size_t)n >= sizeof(ks->propq)) {
		ks_err(err, errlen, "provider name too long");
		return -1;
	}
	n = snprintf(ks->propq_pref, sizeof(ks->propq_pref), "?provider=%s",
	    name);
	if (n < 0 || (size_t)n >= sizeof(ks->propq_pref)) {
		ks_err(err, errlen, "provider name too long");
		return -1;
	}
	return 0;
}

struct ks *
ks_new(const struct ks_config *cfg, char *err, size_t errlen)
{
	struct ks	*ks;

	if (cfg == NULL) {
		ks_err(err, errlen, "no keystore configuration");
		return NULL;
	}
	if ((ks = calloc(1, sizeof(*ks))) == NULL) {
		ks_err(err, errlen, "out of memory");
		return NULL;
	}
	ks->store = cfg->store;
	ks->parent = cfg->parent;

	if ((ks->libctx = OSSL_LIB_CTX_new()) == NULL) {
		ks_err(err, errlen, "cannot create an OpenSSL library context");
		goto fail;
	}
	if ((ks->prov_default = OSSL_PROVIDER_load(ks->libctx,
	    "default")) == NULL) {
		ks_err(err, errlen, "cannot load the default provider");
		goto fail;
	}
	if ((ks->prov_base = OSSL_PROVIDER_load(ks->libctx, "base")) == NULL) {
		ks_err(err, errlen, "cannot load the base provider");
		goto fail;
	}
	/* Software digests for ks_sign: a TPM's own would cost a command. */
	if ((ks->sha384 = EVP_MD_fetch(ks->libctx, "SHA384",
	    "provider=default")) == NULL ||
	    (ks->sha512 = EVP_MD_fetch(ks->libctx, "SHA512",
	    "provider=default")) == NULL) {
		ks_err(err, errlen, "cannot fetch SHA-384 and SHA-512");
		goto fail;
	}

	switch (cfg->store) {
	case KS_STORE_FILE:
		if (set_provname(ks, "default", err, errlen) == -1)
			goto fail;
		break;
	case KS_STORE_TPM2:
		if (load_tpm2(ks, cfg->tcti, err, errlen) == -1)
			goto fail;
		if (set_provname(ks, "tpm2", err, errlen) == -1)
			goto fail;
		break;
	case KS_STORE_PROVIDER:
		if (cfg->provider == NULL || *cfg->provider == '\0') {
			ks_err(err, errlen, "provider store without a provider name");
			goto fail;
		}
		if (set_provname(ks, cfg->provider, err, errlen) == -1)
			goto fail;
		if ((ks->prov_store = OSSL_PROVIDER_load(ks->libctx,
		    cfg->provider)) == NULL) {
			ks_err(err, errlen, "cannot load provider %s",
			    cfg->provider);
			goto fail;
		}
		break;
	default:
		ks_err(err, errlen, "unknown key store type %d", (int)cfg->store);
		goto fail;
	}
	return ks;
fail:
	ks_free(ks);
	return NULL;
}

void
ks_free(struct ks *ks)
{
	if (ks == NULL)
		return;
	/* Unload the key's provider first: it may hold references to the others. */
	if (ks->prov_store != NULL)
		(void)OSSL_PROVIDER_unload(ks->prov_store);
	if (ks->prov_base != NULL)
		(void)OSSL_PROVIDER_unload(ks->prov_base);
	if (ks->prov_default != NULL)
		(void)OSSL_PROVIDER_unload(ks->prov_default);
	EVP_MD_free(ks->sha384);
	EVP_MD_free(ks->sha512);
	OSSL_LIB_CTX_free(ks->libctx);
	free(ks);
}

OSSL_LIB_CTX *
ks_libctx(const struct ks *ks)
{
	return ks->libctx;
}

enum ks_store
ks_store_of(const struct ks *ks)
{
	return ks->store;
}

int
ks_is_hardware(const struct ks *ks)
{
	return ks->store != KS_STORE_FILE;
}

/* Make one key of the given algorithm inside the store's provider. */
static EVP_PKEY *
keygen(struct ks *ks, enum ks_alg alg, char *err, size_t errlen)
{
	EVP_PKEY_CTX	*ctx;
	EVP_PKEY	*pkey = NULL;
	int		 i;

	if ((i = alg_index(alg)) < 0) {
		ks_err(err, errlen, "unknown key algorithm %d", (int)alg);
		return NULL;
	}
	ctx = EVP_PKEY_CTX_new_from_name(ks->libctx, algs[i].type, ks->propq);
	if (ctx == NULL) {
		ks_err(err, errlen, "%s has no %s key generator",
		    store_noun(ks->store), algs[i].type);
		return NULL;
	}
	if (EVP_PKEY_keygen_init(ctx) <= 0) {
		ks_err(err, errlen, "%s key generation setup", algs[i].name);
		goto out;
	}
	if (algs[i].group != NULL &&
	    EVP_PKEY_CTX_set_group_name(ctx, algs[i].group) <= 0) {
		ks_err(err, errlen, "%s: cannot set curve %s", algs[i].name,
		    algs[i].group);
		goto out;
	}
	if (algs[i].bits != 0 &&
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)algs[i].bits) <= 0) {
		ks_err(err, errlen, "%s: cannot set key size", algs[i].name);
		goto out;
	}
	/*
	 * A TPM whose owner hierarchy has a password: make the key under a
	 * persistent storage key.  Its blob records the handle, and loading it
	 * then needs no owner authorization (tpm2-openssl cannot be given one
	 * when it rebuilds an owner primary to load a key).
	 */
	if (ks->store == KS_STORE_TPM2 && ks->parent != 0) {
		OSSL_PARAM p[2];
		uint32_t h = ks->parent;

		p[0] = OSSL_PARAM_construct_uint32("parent", &h);
		p[1] = OSSL_PARAM_construct_end();
		if (EVP_PKEY_CTX_set_params(ctx, p) <= 0) {
			ks_err(err, errlen, "%s: the tpm2 provider takes no "
			    "parent key", algs[i].name);
			goto out;
		}
	}
	if (EVP_PKEY_generate(ctx, &pkey) <= 0) {
		ks_err(err, errlen, "%s key generation in %s failed%s",
		    algs[i].name, store_noun(ks->store),
		    ks->store == KS_STORE_TPM2 && ks->parent == 0 ? " (if the "
		    "TPM's owner hierarchy has a password, set [key] parent to "
		    "a persistent storage key)" : "");
		pkey = NULL;
		goto out;
	}
out:
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/*
 * Write the key's reference as PEM into fd: the provider's own encoder for
 * PrivateKeyInfo, which for tpm2 produces the TPM-wrapped "TSS2 PRIVATE KEY"
 * blob and for the default provider a PKCS#8 "PRIVATE KEY".
 */
static int
write_key_ref(struct ks *ks, EVP_PKEY *pkey, int fd, const char *path,
    char *err, size_t errlen)
{
	OSSL_ENCODER_CTX *ectx;
	unsigned char	*buf = NULL;
	size_t		 len = 0, off;
	ssize_t		 n;
	int		 rc = -1;

	ectx = OSSL_ENCODER_CTX_new_for_pkey(pkey, EVP_PKEY_KEYPAIR, "PEM",
	    "PrivateKeyInfo", ks->propq);
	if (ectx == NULL || OSSL_ENCODER_CTX_get_num_encoders(ectx) == 0) {
		ks_err(err, errlen, "%s has no PEM encoder for its keys",
		    store_noun(ks->store));
		goto out;
	}
	if (!OSSL_ENCODER_to_data(ectx, &buf, &len) || len == 0) {
		ks_err(err, errlen, "cannot encode the key reference");
		goto out;
	}
	for (off = 0; off < len; off += (size_t)n) {
		n = write(fd, buf + off, len - off);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			ks_err(err, errlen, "write %s: %s", path,
			    n == 0 ? "short write" : strerror(errno));
			goto out;
		}
	}
	if (fsync(fd) == -1) {
		ks_err(err, errlen, "fsync %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	/* For the file store this is the private key itself. */
	OPENSSL_clear_free(buf, len);
	OSSL_ENCODER_CTX_free(ectx);
	return rc;
}

/* Make the new directory entry durable too; best effort on odd filesystems. */
static int
fsync_parent(const char *path, char *err, size_t errlen)
{
	char	 copy[PATH_MAX];
	int	 dfd;

	if (strlen(path) >= sizeof(copy)) {
		ks_err(err, errlen, "%s: path too long", path);
		return -1;
	}
	(void)strcpy(copy, path);
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1) {
		ks_err(err, errlen, "open directory of %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fsync(dfd) == -1 && errno != EINVAL) {
		ks_err(err, errlen, "fsync directory of %s: %s", path,
		    strerror(errno));
		(void)close(dfd);
		return -1;
	}
	(void)close(dfd);
	return 0;
}

/* 1 if name is one of the entries of the comma-separated list. */
static int
list_has(const char *list, const char *name)
{
	size_t		 len = strlen(name);
	const char	*p;

	for (p = list; (p = strstr(p, name)) != NULL; p += len)
		if ((p == list || p[-1] == ',') &&
		    (p[len] == '\0' || p[len] == ','))
			return 1;
	return 0;
}

/*
 * After a failed generation: if the store works but cannot make this
 * algorithm, say so and say what it can make; otherwise keep the original
 * error, which is about something else (a TPM that does not answer, say).
 */
static void
explain_keygen_failure(struct ks *ks, enum ks_alg alg, char *err,
    size_t errlen)
{
	char	 can[128], perr[128];

	if (ks_probe(ks, can, sizeof(can), perr, sizeof(perr)) == -1 ||
	    can[0] == '\0' || list_has(can, ks_alg_name(alg)))
		return;
	(void)snprintf(err, errlen, "%s cannot create %s keys (it can: %s)",
	    store_noun(ks->store), ks_alg_name(alg), can);
}

EVP_PKEY *
ks_generate(struct ks *ks, enum ks_alg alg, const char *path, char *err,
    size_t errlen)
{
	EVP_PKEY	*pkey;
	int		 fd;

	if (ks->store == KS_STORE_PROVIDER) {
		ks_err(err, errlen, "keys in provider %s are made with its own "
		    "tools and named by URI", ks->provname);
		return NULL;
	}
	if (alg_index(alg) < 0) {
		ks_err(err, errlen, "unknown key algorithm %d", (int)alg);
		return NULL;
	}
	if (path == NULL || *path == '\0') {
		ks_err(err, errlen, "no path for the new key");
		return NULL;
	}

	/*
	 * Claim the path before the (possibly slow) generation: an existing
	 * file, or a symlink planted in its place, is never followed or
	 * replaced, and from here on the file is ours to remove on failure.
	 */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		ks_err(err, errlen, "create %s: %s", path, strerror(errno));
		return NULL;
	}
	/* The umask may have taken bits away; it must not matter which. */
	if (fchmod(fd, 0600) == -1) {
		ks_err(err, errlen, "chmod %s: %s", path, strerror(errno));
		goto fail;
	}

	if ((pkey = keygen(ks, alg, err, errlen)) == NULL) {
		explain_keygen_failure(ks, alg, err, errlen);
		goto fail;
	}
	if (write_key_ref(ks, pkey, fd, path, err, errlen) == -1) {
		EVP_PKEY_free(pkey);
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		ks_err(err, errlen, "close %s: %s", path, strerror(errno));
		EVP_PKEY_free(pkey);
		goto fail;
	}
	fd = -1;
	if (fsync_parent(path, err, errlen) == -1) {
		EVP_PKEY_free(pkey);
		goto fail;
	}
	return pkey;
fail:
	if (fd != -1)
		(void)close(fd);
	(void)unlink(path);
	return NULL;
}

/* 1 if the key's operations are implemented by the store's provider. */
static int
key_in_store(const struct ks *ks, const EVP_PKEY *pkey)
{
	const OSSL_PROVIDER	*prov;
	const char		*name;

	if ((prov = EVP_PKEY_get0_provider(pkey)) == NULL)
		return 0;
	if ((name = OSSL_PROVIDER_get0_name(prov)) == NULL)
		return 0;
	return strcmp(name, ks->provname) == 0;
}

EVP_PKEY *
ks_load(struct ks *ks, const char *path_or_uri, char *err, size_t errlen)
{
	OSSL_STORE_CTX	*sctx;
	OSSL_STORE_INFO	*info;
	EVP_PKEY	*pkey = NULL;

	if (path_or_uri == NULL || *path_or_uri == '\0') {
		ks_err(err, errlen, "no key path or URI");
		return NULL;
	}
	/*
	 * A preference ("?"), not a requirement: tpm2-openssl has no loader
	 * for plain paths, so the default provider's file: loader reads the
	 * blob and the preference steers it to tpm2's decoders; a PKCS#11
	 * provider brings its own loader for "pkcs11:" URIs.  Whoever loads
	 * it, the key must end up in the store's provider (checked below).
	 */
	sctx = OSSL_STORE_open_ex(path_or_uri, ks->libctx, ks->propq_pref,
	    NULL, NULL, NULL, NULL, NULL);
	if (sctx == NULL) {
		ks_err(err, errlen, "cannot open key %s", path_or_uri);
		return NULL;
	}
	if (!OSSL_STORE_expect(sctx, OSSL_STORE_INFO_PKEY)) {
		ks_err(err, errlen, "key %s: store cannot select private keys",
		    path_or_uri);
		goto out;
	}
	while (pkey == NULL && !OSSL_STORE_eof(sctx)) {
		if ((info = OSSL_STORE_load(sctx)) == NULL) {
			if (OSSL_STORE_error(sctx))
				break;
			continue;
		}
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			pkey = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	if (pkey == NULL) {
		ks_err(err, errlen, "no private key in %s", path_or_uri);
		goto out;
	}
	/*
	 * A software key handed to a hardware store (or the reverse) is a
	 * configuration mistake that would otherwise go unnoticed until, or
	 * after, the first signature.
	 */
	if (!key_in_store(ks, pkey)) {
		ks_err(err, errlen, "key %s is not held by %s (provider %s)",
		    path_or_uri, store_noun(ks->store), ks->provname);
		EVP_PKEY_free(pkey);
		pkey = NULL;
		goto out;
	}
	ERR_clear_error();	/* decoders that did not match leave noise */
out:
	(void)OSSL_STORE_close(sctx);
	return pkey;
}

int
ks_probe(struct ks *ks, char *out, size_t outlen, char *err, size_t errlen)
{
	EVP_PKEY	*pkey;
	size_t		 i, used = 0;
	int		 n;

	if (out == NULL || outlen == 0) {
		ks_err(err, errlen, "no room for the probe result");
		return -1;
	}
	out[0] = '\0';
	for (i = 0; i < NPROBE; i++) {
		if ((pkey = keygen(ks, probe_algs[i], NULL, 0)) == NULL)
			continue;
		EVP_PKEY_free(pkey);
		n = snprintf(out + used, outlen - used, "%s%s",
		    used > 0 ? "," : "", ks_alg_name(probe_algs[i]));
		if (n < 0 || (size_t)n >= outlen - used) {
			out[used] = '\0';
			ks_err(err, errlen, "probe result does not fit");
			return -1;
		}
		used += (size_t)n;
	}
	ERR_clear_error();
	return 0;
}

const char *
ks_digest_for(const EVP_PKEY *pkey)
{
	if (pkey != NULL && EVP_PKEY_is_a(pkey, "EC") &&
	    EVP_PKEY_get_bits(pkey) == 521)
		return "SHA512";
	return "SHA384";
}

/*
 * "provider=<name of the provider that holds key>" into propq.  With tpm2
 * and default both loaded, an unqualified fetch may pick the default
 * provider's signature, which has no private key to use ("missing private
 * key").
 */
static int
key_propq(EVP_PKEY *key, char propq[KS_PROPQ_MAX], const char **name,
    char *err, size_t errlen)
{
	const OSSL_PROVIDER *prov;
	int n;

	if (key == NULL) {
		ks_err(err, errlen, "no key to sign with");
		return -1;
	}
	if ((prov = EVP_PKEY_get0_provider(key)) == NULL ||
	    (*name = OSSL_PROVIDER_get0_name(prov)) == NULL) {
		ks_err(err, errlen, "key is not held by any provider");
		return -1;
	}
	n = snprintf(propq, KS_PROPQ_MAX, "provider=%s", *name);
	if (n < 0 || n >= KS_PROPQ_MAX) {
		ks_err(err, errlen, "provider name too long");
		return -1;
	}
	return 0;
}

EVP_MD_CTX *
ks_sign_ctx(struct ks *ks, EVP_PKEY *key, char *err, size_t errlen)
{
	const char	*name;
	char		 propq[KS_PROPQ_MAX];
	EVP_MD_CTX	*mctx;

	if (key_propq(key, propq, &name, err, errlen) == -1)
		return NULL;
	if ((mctx = EVP_MD_CTX_new()) == NULL) {
		ks_err(err, errlen, "out of memory");
		return NULL;
	}
	if (EVP_DigestSignInit_ex(mctx, NULL, ks_digest_for(key), ks->libctx,
	    propq, key, NULL) != 1) {
		ks_err(err, errlen, "provider %s cannot sign with this key "
		    "and %s", name, ks_digest_for(key));
		EVP_MD_CTX_free(mctx);
		return NULL;
	}
	return mctx;
}

/*
 * The message is hashed here, in software, and only the digest goes to the
 * key's provider: a TPM then runs one command (TPM2_Sign) instead of
 * hashing the message itself first (TPM2_Hash, or a hash sequence of three
 * commands for a message over 1 KiB), each a round trip through the
 * resource manager.  A TPM needs its own hash only for restricted keys,
 * whose ticket proves the message did not start with TPM_GENERATED; the
 * CA's keys are ordinary signing keys.
 */
int
ks_sign(struct ks *ks, EVP_PKEY *key, const unsigned char *msg, size_t len,
    unsigned char **sig, size_t *siglen, char *err, size_t errlen)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen;
	const char	*name;
	char		 propq[KS_PROPQ_MAX];
	EVP_MD		*dg;
	EVP_PKEY_CTX	*pctx = NULL;
	int		 rc = -1;

	*sig = NULL;
	*siglen = 0;
	if (key_propq(key, propq, &name, err, errlen) == -1)
		return -1;
	dg = strcmp(ks_digest_for(key), "SHA512") == 0 ? ks->sha512 : ks->sha384;
	if (EVP_Digest(msg, len, md, &mdlen, dg, NULL) != 1) {
		ks_err(err, errlen, "cannot hash with %s", ks_digest_for(key));
		goto out;
	}
	if ((pctx = EVP_PKEY_CTX_new_from_pkey(ks->libctx, key, propq)) == NULL ||
	    EVP_PKEY_sign_init(pctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pctx, dg) != 1) {
		ks_err(err, errlen, "provider %s cannot sign a %s digest with "
		    "this key", name, ks_digest_for(key));
		goto out;
	}
	if (EVP_PKEY_sign(pctx, NULL, siglen, md, mdlen) != 1 ||
	    (*sig = malloc(*siglen)) == NULL ||
	    EVP_PKEY_sign(pctx, *sig, siglen, md, mdlen) != 1) {
		ks_err(err, errlen, "provider %s: signing failed", name);
		free(*sig);
		*sig = NULL;
		*siglen = 0;
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(md, sizeof(md));
	EVP_PKEY_CTX_free(pctx);
	return rc;
}
