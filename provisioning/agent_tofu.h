/*
 * agent_tofu: trust on first use of a local ACME server's root
 * (draft-sweet-iot-acme 3.5, 3.6, 4.8).
 *
 * The root comes from the TLS handshake itself, not from a download: the
 * last certificate of the chain the server sends must be self-signed,
 * its subjectAltNames must contain the name discovery gave (other names
 * are allowed), and the served chain must verify up to it for that name.
 * The pinned root (one PEM file per network) is then compared with every
 * later handshake's.  Errors come back in err; nothing is printed.
 */
#ifndef IOTCA_AGENT_TOFU_H
#define IOTCA_AGENT_TOFU_H

#include <stddef.h>
#include <openssl/x509.h>

#include "discovery.h"

/*
 * Connect to the server (its first address, its port; SNI its name),
 * take the root the chain ends with and check it as above.  *root (the
 * caller frees) and 0, or -1 with err.
 */
int	tofu_fetch_root(const struct disc_server *, int timeout_ms, X509 **root,
	    char *err, size_t errlen);

/* SHA-256 fingerprint "AB:CD:..." of a certificate into out (96 bytes). */
void	tofu_fingerprint(X509 *, char out[96]);

/* The pinned root in path: 1 and *root, 0 if there is none, -1 bad file. */
int	tofu_load(const char *path, X509 **root, char *err, size_t errlen);

/* 1 if a and b are the same certificate. */
int	tofu_same(X509 *a, X509 *b);

/* Write root as PEM to path atomically (mode 0644). */
int	tofu_save(const char *path, X509 *root, char *err, size_t errlen);

/*
 * Does the PEM chain verify up to root (and only root) for name?  0, or
 * -1 with err.
 */
int	tofu_verify_chain(const char *pem, X509 *root, const char *name,
	    char *err, size_t errlen);

#endif
