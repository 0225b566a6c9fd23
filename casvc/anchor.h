/*
 * anchor: what ties the audit log to something the database cannot roll
 * back: the key that authenticates each record (HMAC-SHA384), the key that
 * signs checkpoints (ECDSA), and the monotonic counter that checkpoints
 * carry.
 *
 * ANCHOR_TPM2: the HMAC key is sealed by the TPM (tpmseal), unsealed only
 * into locked memory; the checkpoint key is generated inside the TPM through
 * the keystore (a TSS2 blob, separate from the root key: key usages stay
 * apart); the counter is a TPM NV counter.
 * ANCHOR_FILE (development, and key stores without a TPM): the same scheme
 * with a 0600 key file, a PEM key and a counter file.  Anyone who can write
 * those files can rewrite history: this mode is weaker and says so.
 *
 * Functions return 0 (non-NULL) or -1 (NULL) with one line in err.
 */
#ifndef IOTCA_ANCHOR_H
#define IOTCA_ANCHOR_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "keystore.h"

#define ANCHOR_HMAC_LEN	48

enum anchor_mode {
	ANCHOR_TPM2,
	ANCHOR_FILE,
};

struct anchor_paths {
	enum anchor_mode mode;
	const char	*sign_key;	/* tpm2: TSS2 blob; file: PEM */
	const char	*hmac_key;	/* tpm2: sealed object; file: raw key */
	const char	*counter;	/* file mode only */
	uint32_t	 nv_index;	/* tpm2 mode only */
	const char	*tcti;		/* tpm2: NULL for TPM2OPENSSL_TCTI */
	const char	*owner_auth;	/* tpm2: the owner hierarchy's, or NULL */
	uint32_t	 parent;	/* tpm2: persistent storage key, or 0 */
};

struct anchor;

/*
 * Open the anchor.  When its files are all absent and may_create is set,
 * make them first (fresh keys; the NV counter is defined if absent) and set
 * *created.  ks is the keystore (tpm2 mode: its provider generates and
 * holds the checkpoint key); it must outlive the anchor.
 */
struct anchor	*anchor_open(struct ks *ks, const struct anchor_paths *,
		    int may_create, int *created, char *err, size_t errlen);
void		 anchor_close(struct anchor *);

int		 anchor_is_hardware(const struct anchor *);
const char	*anchor_mode_name(const struct anchor *);
const unsigned char *anchor_hmac_key(const struct anchor *);

/* Sign msg with the checkpoint key; *sig is malloc'ed DER. */
int		 anchor_sign(struct anchor *, const unsigned char *msg,
		    size_t msglen, unsigned char **sig, size_t *siglen,
		    char *err, size_t errlen);
/* The checkpoint public key, in the default provider, for verification. */
EVP_PKEY	*anchor_pubkey(const struct anchor *);

int		 anchor_counter_read(struct anchor *, uint64_t *,
		    char *err, size_t errlen);
int		 anchor_counter_increment(struct anchor *, uint64_t *,
		    char *err, size_t errlen);

#endif
