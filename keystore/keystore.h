/*
 * keystore: the one face over OpenSSL 3 providers for the CA's key.
 *
 * A keystore owns a private OpenSSL library context with the providers a key
 * store needs loaded ("default" and "base" always; "tpm2" for a TPM; a named
 * provider, e.g. a PKCS#11 one, for an HSM).  Keys are generated inside the
 * store and only ever handled as EVP_PKEY references: with the tpm2 store the
 * file on disk is a TPM-wrapped blob ("TSS2 PRIVATE KEY"), useless without
 * that TPM; with the file store it is a PEM private key, for development only.
 *
 * Signing is always fetched from the provider that holds the key (a property
 * query naming it), since with tpm2 and default both loaded the default
 * provider would otherwise be picked and fail with "missing private key".
 *
 * Every function returns 0 (or a non-NULL pointer) on success; on failure it
 * returns -1 (or NULL) and writes one human-readable line into err.
 */
#ifndef IOTCA_KEYSTORE_H
#define IOTCA_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/types.h>

enum ks_store {
	KS_STORE_FILE,		/* PEM private key file: development only */
	KS_STORE_TPM2,		/* tpm2-openssl provider; TCTI from config */
	KS_STORE_PROVIDER,	/* any provider by name, key by URI (pkcs11:...) */
};

enum ks_alg {
	KS_ALG_EC_P256,		/* probe only: never accepted for a root */
	KS_ALG_EC_P384,
	KS_ALG_EC_P521,
	KS_ALG_RSA_2048,	/* probe only */
	KS_ALG_RSA_3072,
	KS_ALG_RSA_4096,
};

struct ks_config {
	enum ks_store	 store;
	const char	*tcti;		/* tpm2: e.g. "swtpm:host=127.0.0.1,port=2321";
					   NULL: TPM2OPENSSL_TCTI or the provider's default */
	const char	*provider;	/* KS_STORE_PROVIDER: provider name to load */
	uint32_t	 parent;	/* tpm2: persistent storage key (an SRK) to
					   make keys under; 0: an owner primary */
};

struct ks;

/* Parse "file", "tpm2", "provider"; -1 if unknown. */
int		 ks_store_parse(const char *s, enum ks_store *out);
/* Parse "ec-p384", "ec-p521", "rsa-3072", "rsa-4096" (and the probe-only
 * "ec-p256", "rsa-2048"); -1 if unknown. */
int		 ks_alg_parse(const char *s, enum ks_alg *out);
const char	*ks_alg_name(enum ks_alg);

struct ks	*ks_new(const struct ks_config *, char *err, size_t errlen);
void		 ks_free(struct ks *);
OSSL_LIB_CTX	*ks_libctx(const struct ks *);
enum ks_store	 ks_store_of(const struct ks *);

/*
 * Generate a fresh key of the given algorithm inside the store and write its
 * reference (TPM blob or PEM) to path, created with O_EXCL and mode 0600: an
 * existing file is never replaced.  When the store cannot make that algorithm
 * (a TPM without P-521, say) the error says so and lists what it can make.
 * Not available for KS_STORE_PROVIDER (keys there are made with the HSM's own
 * tools and named by URI).
 */
EVP_PKEY	*ks_generate(struct ks *, enum ks_alg, const char *path,
		    char *err, size_t errlen);

/* Load a private key by path (file, tpm2) or URI (provider). */
EVP_PKEY	*ks_load(struct ks *, const char *path_or_uri,
		    char *err, size_t errlen);

/*
 * Which algorithms the store can generate, as a comma-separated list of
 * ks_alg_name()s, e.g. "ec-p256,ec-p384,rsa-2048,rsa-3072".  For tpm2 this
 * creates and discards one transient key per algorithm.
 */
int		 ks_probe(struct ks *, char *out, size_t outlen,
		    char *err, size_t errlen);

/* The digest this project signs with for a key: SHA-512 for P-521, else SHA-384. */
const char	*ks_digest_for(const EVP_PKEY *);

/*
 * A DigestSign context for key, fetched from the key's own provider, ready
 * for X509_sign_ctx(), X509_CRL_sign_ctx() or EVP_DigestSign().  The caller
 * frees it with EVP_MD_CTX_free().
 */
EVP_MD_CTX	*ks_sign_ctx(struct ks *, EVP_PKEY *key, char *err, size_t errlen);

/*
 * Sign msg with key (ks_digest_for(key), hashed in software, the digest
 * signed by the key's provider).  *sig is malloc'ed: DER ECDSA-Sig-Value or
 * an RSA PKCS#1 v1.5 signature, as EVP_DigestSign would give.
 */
int		 ks_sign(struct ks *, EVP_PKEY *key, const unsigned char *msg,
		    size_t len, unsigned char **sig, size_t *siglen,
		    char *err, size_t errlen);

/* 1 if the key's private part lives in a hardware store (tpm2 or provider). */
int		 ks_is_hardware(const struct ks *);

#endif
