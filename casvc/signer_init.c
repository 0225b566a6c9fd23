/*
 * iotca-signer init: create the CA.  A fresh key is generated inside the key
 * store every time (draft 4.11: never reuse key material) and the
 * self-signed root is written beside it, with the audit log's first record.
 * An existing root or key is never replaced: the operator moves it away
 * first, knowingly.  It runs in the signer's binary, as the signer's user,
 * because the signer is the only program with key-store and TPM code.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <pwd.h>

#include "anchor.h"
#include "audit.h"
#include "certgen.h"
#include "config_key.h"
#include "keystore.h"
#include "log.h"
#include "signer_init.h"
#include "signerdb.h"

#define init_error(...)	log_msg(LOG_ERR, __VA_ARGS__)

/* The audit log's side of init: the CA's creation is its first event. */
struct init_audit {
	struct anchor	*anchor;
	struct signerdb	*db;
	struct audit	*audit;
	int		 in_tx;
};

/* Write the root with O_EXCL: a race with another init loses cleanly. */
static int
write_root(const char *path, X509 *root)
{
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd == -1) {
		init_error("%s: %s", path, strerror(errno));
		return -1;
	}
	/* Public: readable whatever the signer's umask (0077). */
	if (fchmod(fd, 0644) == -1) {
		init_error("%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		init_error("%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if (PEM_write_X509(f, root) != 1 || fflush(f) == EOF ||
	    fsync(fileno(f)) == -1) {
		init_error("%s: cannot write the root certificate", path);
		fclose(f);
		unlink(path);
		return -1;
	}
	if (fclose(f) == EOF) {
		init_error("%s: %s", path, strerror(errno));
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
		init_error("%s %s already exists: iotca never replaces a root; "
		    "move it away first if you mean to start a new CA", what,
		    path);
		return -1;
	}
	if (errno != ENOENT) {
		init_error("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void
init_audit_close(struct init_audit *ia)
{
	audit_close(ia->audit);
	anchor_close(ia->anchor);
	signerdb_close(ia->db);
	memset(ia, 0, sizeof(*ia));
}

/*
 * Open signer.db and its audit log (making the audit keys, in the TPM with
 * store = tpm2, on first use) and append the CA's creation inside an open
 * transaction: the root is written only if its record can be.
 */
static int
init_audit_begin(const struct config *cfg, const char *owner_auth,
    struct ks *ks, enum ks_alg alg, X509 *root, int years,
    struct init_audit *ia)
{
	struct anchor_paths ap;
	struct audit_params prm;
	unsigned char md[EVP_MAX_MD_SIZE];
	char err[512], fp[2 * EVP_MAX_MD_SIZE + 1];
	struct passwd *pw = getpwuid(getuid());
	unsigned int len = 0, i;
	json_t *ev;
	int created, rc;

	memset(ia, 0, sizeof(*ia));
	config_anchor(cfg, owner_auth, &ap);
	memset(&prm, 0, sizeof(prm));
	prm.checkpoint_records = cfg->audit_checkpoint_records;
	prm.checkpoint_minutes = cfg->audit_checkpoint_minutes;
	if ((ia->db = signerdb_open(cfg->db, err, sizeof(err))) == NULL ||
	    (ia->anchor = anchor_open(ks, &ap, 1, &created, err,
	    sizeof(err))) == NULL ||
	    (ia->audit = audit_open(signerdb_sqlite(ia->db), ia->anchor, &prm,
	    err, sizeof(err))) == NULL)
		goto fail;
	fp[0] = '\0';
	if (X509_digest(root, EVP_sha256(), md, &len) == 1)
		for (i = 0; i < len; i++)
			snprintf(fp + 2 * i, 3, "%02x", md[i]);
	ev = audit_event("ca_initialised", json_pack("{s:s, s:I, s:s, s:s}",
	    "role", "operator", "uid", (json_int_t)getuid(), "user",
	    pw != NULL ? pw->pw_name : "?", "via", "iotca-signer init"));
	if (ev == NULL || json_object_update_new(ev, json_pack("{s:s, s:s, "
	    "s:s, s:s, s:i, s:s}", "name", cfg->name, "root_sha256", fp,
	    "key_store", cfg->key_store,
	    "key_algorithm", ks_alg_name(alg), "years", years,
	    "audit_anchor", anchor_mode_name(ia->anchor))) == -1) {
		json_decref(ev);
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (signerdb_begin(ia->db, err, sizeof(err)) == -1) {
		json_decref(ev);
		goto fail;
	}
	ia->in_tx = 1;
	rc = audit_append(ia->audit, ev, NULL, err, sizeof(err));
	json_decref(ev);
	if (rc == -1)
		goto fail;
	if (!anchor_is_hardware(ia->anchor))
		printf("audit log:        anchored in FILES (%s, %s): weaker than "
		    "a TPM, development only\n", cfg->audit_hmac,
		    cfg->audit_counter);
	return 0;
fail:
	init_error("audit log: %s", err);
	if (ia->in_tx) {
		signerdb_rollback(ia->db);
		audit_rolled_back(ia->audit);
	}
	init_audit_close(ia);
	return -1;
}

/* Commit the creation record (and sign the log's head), or drop it. */
static int
init_audit_end(struct init_audit *ia, int commit)
{
	char err[512];
	int rc = 0;

	if (ia->audit == NULL)
		return 0;
	if (!commit) {
		signerdb_rollback(ia->db);
		audit_rolled_back(ia->audit);
	} else if (signerdb_commit(ia->db, err, sizeof(err)) == -1) {
		init_error("audit log: %s", err);
		signerdb_rollback(ia->db);
		audit_rolled_back(ia->audit);
		rc = -1;
	} else {
		audit_committed(ia->audit);
		if (audit_checkpoint(ia->audit, err, sizeof(err)) == -1)
			init_error("audit log: checkpoint: %s (the signer signs "
			    "at its start)", err);
	}
	init_audit_close(ia);
	return rc;
}

static void
print_summary(const struct config *cfg, enum ks_alg alg, X509 *root,
    int years)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	printf("root certificate: %s\n", cfg->root_cert);
	printf("root key:         %s (%s, %s)\n", cfg->key, ks_alg_name(alg),
	    strcmp(cfg->key_store, "tpm2") == 0 ? "TPM-wrapped blob, the key "
	    "never leaves the TPM" : strcmp(cfg->key_store, "provider") == 0 ?
	    "held by the provider" : "SOFTWARE KEY FILE: development only");
	printf("valid for:        %d years\n", years);
	if (X509_digest(root, EVP_sha256(), md, &len) == 1) {
		printf("sha256:           ");
		for (i = 0; i < len; i++)
			printf("%02X%s", md[i], i + 1 < len ? ":" : "\n");
	}
}

static void
init_usage(FILE *f)
{
	fprintf(f, "usage: iotca-signer [-c config] init [--years N] "
	    "[--algorithm ec-p384|ec-p521|rsa-3072|rsa-4096]\n");
}

/* init's options: argv[0] is "init".  0; 2 after a usage message; -1
 * after --help. */
static int
parse_options(int argc, char *argv[], int *years, const char **algorithm)
{
	static const struct option opts[] = {
		{ "years",	required_argument, NULL, 'y' },
		{ "algorithm",	required_argument, NULL, 'a' },
		{ "help",	no_argument,	   NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char *end;
	long v;
	int ch;

	*years = 0;
	*algorithm = NULL;
	optind = 0;	/* GNU: start afresh, past argv[0] */
	opterr = 0;	/* getopt would name argv[0], "init", as the program */
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 'y':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    v < 0 || v > 100) {
				init_error("--years: not a number of years: %s",
				    optarg);
				return 2;
			}
			*years = (int)v;
			break;
		case 'a':
			*algorithm = optarg;
			break;
		case 'h':
			init_usage(stdout);
			return -1;
		default:
			init_error("init: unknown option or missing value: %s",
			    argv[optind - 1]);
			init_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		init_usage(stderr);
		return 2;
	}
	return 0;
}

int
signer_init(const char *config_path, int argc, char *argv[])
{
	struct config cfg;
	struct ks_config kc;
	struct root_params rp;
	struct init_audit ia;
	struct ks *ks = NULL;
	EVP_PKEY *key = NULL;
	X509 *root = NULL;
	enum ks_alg alg;
	const char *algorithm;
	char err[512], auth[CONFIG_OWNER_AUTH_MAX + 1] = "";
	int years, rc = 1, generated = 0;

	if ((rc = parse_options(argc, argv, &years, &algorithm)) != 0)
		return rc == -1 ? 0 : rc;
	rc = 1;
	if (config_load(config_path, &cfg, err, sizeof(err)) == -1) {
		init_error("%s", err);
		return 1;
	}
	years = years ? years : cfg.root_years;
	if (years < 1 || years > 10) {
		init_error("--years must be 1 to 10 (draft-sweet-iot-acme 3.4.1), "
		    "not %d", years);
		goto out;
	}
	if (config_key_alg(algorithm != NULL ? algorithm : cfg.key_alg,
	    &alg) == -1) {
		init_error("--algorithm must be ec-p384, ec-p521, rsa-3072 or "
		    "rsa-4096, not %s", algorithm != NULL ? algorithm :
		    cfg.key_alg);
		goto out;
	}
	if (refuse_existing(cfg.root_cert, "root certificate") == -1)
		goto out;
	if (strcmp(cfg.key_store, "provider") != 0 &&
	    refuse_existing(cfg.key, "root key") == -1)
		goto out;

	if (config_owner_auth(&cfg, auth, err, sizeof(err)) == -1) {
		init_error("%s", err);
		goto out;
	}
	config_ks(&cfg, &kc);
	if ((ks = ks_new(&kc, err, sizeof(err))) == NULL) {
		init_error("%s", err);
		goto out;
	}
	if (kc.store == KS_STORE_PROVIDER)
		key = ks_load(ks, cfg.key, err, sizeof(err));
	else if ((key = ks_generate(ks, alg, cfg.key, err,
	    sizeof(err))) != NULL)
		generated = 1;
	if (key == NULL) {
		init_error("%s", err);
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
		init_error("%s", err);
		goto out;
	}
	if (init_audit_begin(&cfg, auth, ks, alg, root, years, &ia) == -1)
		goto out;
	if (write_root(cfg.root_cert, root) == -1) {
		init_audit_end(&ia, 0);
		goto out;
	}
	if (init_audit_end(&ia, 1) == -1) {
		/* No record, no root. */
		unlink(cfg.root_cert);
		goto out;
	}
	print_summary(&cfg, alg, root, years);
	rc = 0;
out:
	/* A key without its root is useless and would block the next init. */
	if (rc != 0 && generated && unlink(cfg.key) == -1)
		init_error("%s: %s (remove it by hand)", cfg.key, strerror(errno));
	X509_free(root);
	EVP_PKEY_free(key);
	ks_free(ks);
	OPENSSL_cleanse(auth, sizeof(auth));
	config_free(&cfg);
	return rc;
}
