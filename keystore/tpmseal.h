/*
 * tpmseal: what the audit log needs from the TPM that the OpenSSL provider
 * does not give: a sealed secret and an NV monotonic counter, through
 * tpm2-tss ESAPI directly.
 *
 * The sealed secret is a keyed-hash data object created under a storage
 * key: a primary of the owner hierarchy made afresh each time, or a
 * persistent one (an SRK) at a handle given; the file on disk holds its public and
 * TPM-encrypted private areas, useless without that TPM.  Sealing and
 * unsealing run in a salted session with parameter encryption, so the secret
 * does not cross the bus in the clear either.
 *
 * The counter is an NV index of type counter (TPM2_NT_COUNTER): it only ever
 * goes up, and survives anything done to files.
 *
 * The TPM's owner authorisation is empty on a stock Linux machine; where an
 * administrator has set one, tpm_open takes it (defining the NV counter
 * needs it) and a persistent parent spares the rest from needing it.  Every function returns 0
 * (or non-NULL) on success and -1 (or NULL) with one line in err on failure.
 */
#ifndef IOTCA_TPMSEAL_H
#define IOTCA_TPMSEAL_H

#include <stddef.h>
#include <stdint.h>

#define TPMSEAL_MAX_SECRET	64

struct tpm;

#define TPMSEAL_MAX_OWNER_AUTH	63	/* text; what tpm2-openssl takes too */

/* Connect through tcti ("swtpm:...", "device:/dev/tpmrm0", "tabrmd:...");
 * NULL: TPM2OPENSSL_TCTI, else tpm2-tss's default.  parent: the persistent
 * handle of the storage key to seal under, 0 for an owner primary.
 * owner_auth: the owner hierarchy's authorization, NULL or "" for none. */
struct tpm	*tpm_open(const char *tcti, uint32_t parent, const char *owner_auth,
		    char *err, size_t errlen);
void		 tpm_close(struct tpm *);

/* Seal len (1..TPMSEAL_MAX_SECRET) bytes to a new file at path (O_EXCL, 0600). */
int	 tpm_seal_new(struct tpm *, const char *path, const unsigned char *secret,
	    size_t len, char *err, size_t errlen);
/* Unseal the file at path into out (at least TPMSEAL_MAX_SECRET bytes). */
int	 tpm_unseal(struct tpm *, const char *path, unsigned char *out,
	    size_t *outlen, char *err, size_t errlen);

/* Define an NV counter at index unless one is there; make it readable. */
int	 tpm_counter_define(struct tpm *, uint32_t index, char *err, size_t errlen);
int	 tpm_counter_read(struct tpm *, uint32_t index, uint64_t *value,
	    char *err, size_t errlen);
/* Add one; *value gets the new count. */
int	 tpm_counter_increment(struct tpm *, uint32_t index, uint64_t *value,
	    char *err, size_t errlen);

#endif
