/*
 * iotca init: create the CA.  A fresh key is generated inside the key store
 * every time (draft 4.11: never reuse key material) and the self-signed root
 * is written beside it.  An existing root or key is never replaced: the
 * operator moves it away first, knowingly.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "certgen.h"
#include "cli.h"
#include "config.h"
#include "keystore.h"

/* Write the root with O_EXCL: a race with another init loses cleanly. */
static int
write_root(const char *path, X509 *root)
{
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd == -1) {
		cli_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		cli_error("%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if (PEM_write_X509(f, root) != 1 || fflush(f) == EOF ||
	    fsync(fileno(f)) == -1) {
		cli_error("%s: cannot write the root certificate", path);
		fclose(f);
		unlink(path);
		return -1;
	}
	if (fclose(f) == EOF) {
		cli_error("%s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

static int
refuse_existing(const char *path, const char *what)
{
	struct stat st;

	if (lstat(path, &st) == 0) {
		cli_error("%s %s already exists: iotca never replaces a root; "
		    "move it away first if you mean to start a new CA", what,
		    path);
		return -1;
	}
	if (errno != ENOENT) {
		cli_error("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void
print_summary(const struct config *cfg, X509 *root, int years)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	printf("root certificate: %s\n", cfg->root_cert);
	printf("root key:         %s (%s, %s)\n", cfg->key,
	    ks_alg_name(cfg->key_alg),
	    cfg->key_store == KS_STORE_TPM2 ? "TPM-wrapped blob, the key "
	    "never leaves the TPM" : cfg->key_store == KS_STORE_PROVIDER ?
	    "held by the provider" : "SOFTWARE KEY FILE: development only");
	printf("valid for:        %d years\n", years);
	if (X509_digest(root, EVP_sha256(), md, &len) == 1) {
		printf("sha256:           ");
		for (i = 0; i < len; i++)
			printf("%02X%s", md[i], i + 1 < len ? ":" : "\n");
	}
}

int
cmd_init(struct cli *c)
{
	struct config cfg;
	struct ks_config kc;
	struct root_params rp;
	struct ks *ks = NULL;
	EVP_PKEY *key = NULL;
	X509 *root = NULL;
	char err[512];
	int years, rc = 1, generated = 0;

	if (c->nargs != 0) {
		cli_error("usage: iotca init [--years N] [--algorithm ALG]");
		return 2;
	}
	if (config_load(c->config, &cfg, err, sizeof(err)) == -1) {
		cli_error("%s", err);
		return 1;
	}
	years = c->years ? c->years : cfg.root_years;
	if (years < 1 || years > 10) {
		cli_error("--years must be 1 to 10 (draft-sweet-iot-acme 3.4.1), "
		    "not %d", years);
		goto out;
	}
	if (c->algorithm != NULL && (ks_alg_parse(c->algorithm, &cfg.key_alg)
	    == -1 || cfg.key_alg == KS_ALG_EC_P256 ||
	    cfg.key_alg == KS_ALG_RSA_2048)) {
		cli_error("--algorithm must be ec-p384, ec-p521, rsa-3072 or "
		    "rsa-4096, not %s", c->algorithm);
		goto out;
	}
	if (refuse_existing(cfg.root_cert, "root certificate") == -1)
		goto out;
	if (cfg.key_store != KS_STORE_PROVIDER &&
	    refuse_existing(cfg.key, "root key") == -1)
		goto out;

	kc.store = cfg.key_store;
	kc.tcti = cfg.tcti;
	kc.provider = cfg.provider;
	if ((ks = ks_new(&kc, err, sizeof(err))) == NULL) {
		cli_error("%s", err);
		goto out;
	}
	if (cfg.key_store == KS_STORE_PROVIDER)
		key = ks_load(ks, cfg.key, err, sizeof(err));
	else if ((key = ks_generate(ks, cfg.key_alg, cfg.key, err,
	    sizeof(err))) != NULL)
		generated = 1;
	if (key == NULL) {
		cli_error("%s", err);
		goto out;
	}

	memset(&rp, 0, sizeof(rp));
	rp.server_name = cfg.name;
	rp.domains = (const char *const *)cfg.domains;
	rp.ndomains = cfg.ndomains;
	rp.ips = (const char *const *)cfg.ips;
	rp.nips = cfg.nips;
	rp.years = years;
	if ((root = certgen_root(ks, key, &rp, err, sizeof(err))) == NULL) {
		cli_error("%s", err);
		goto out;
	}
	if (write_root(cfg.root_cert, root) == -1)
		goto out;
	print_summary(&cfg, root, years);
	rc = 0;
out:
	/* A key without its root is useless and would block the next init. */
	if (rc != 0 && generated && unlink(cfg.key) == -1)
		cli_error("%s: %s (remove it by hand)", cfg.key, strerror(errno));
	X509_free(root);
	EVP_PKEY_free(key);
	ks_free(ks);
	config_free(&cfg);
	return rc;
}
