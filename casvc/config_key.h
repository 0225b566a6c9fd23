/*
 * config_key: the signer's reading of [key] and [audit].  config.c checks
 * and keeps them as plain values for every program; this module, linked by
 * iotca-signer alone, turns them into what the key store and the audit
 * log's anchor are opened with, and reads the TPM owner's password.  It is
 * the one place where a setting reaches the key code, and the reason the
 * front end and the operator's command need no key code to read the file.
 */
#ifndef IOTCA_CONFIG_KEY_H
#define IOTCA_CONFIG_KEY_H

#include <stddef.h>

#include "anchor.h"
#include "config.h"
#include "keystore.h"

#define CONFIG_OWNER_AUTH_MAX	63

/*
 * The TPM owner hierarchy's authorization from [key] owner_auth_file into
 * out: text of 1..CONFIG_OWNER_AUTH_MAX bytes (one trailing newline is
 * dropped), or "" when no file is configured.  The file must be a regular
 * file that only its owner may read or write.  0, or -1 with one line in err.
 * The caller wipes out (OPENSSL_cleanse) when done.
 */
int	 config_owner_auth(const struct config *,
	    char out[CONFIG_OWNER_AUTH_MAX + 1], char *err, size_t errlen);

/*
 * What the key store and the audit log's anchor are opened with, from [key]
 * and [audit] of a configuration config_load() accepted.  owner_auth as
 * config_owner_auth gave it ("" for none); the structs point into cfg and
 * owner_auth.
 */
void	 config_ks(const struct config *, struct ks_config *);
void	 config_anchor(const struct config *, const char *owner_auth,
	    struct anchor_paths *);

/* A root key algorithm by its [key] name (ec-p384, ec-p521, rsa-3072,
 * rsa-4096; never the key store's probe-only ones): 0, or -1. */
int	 config_key_alg(const char *name, enum ks_alg *out);

#endif
