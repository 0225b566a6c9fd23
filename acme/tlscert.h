/*
 * tlscert: iotca-acmed's own TLS certificate.  A fresh P-384 key is made in
 * memory for every certificate (never written to disk), with a CSR for
 * <name>.local, <name>.<domain> and the configured IPs, which the signer
 * answers with op server_cert (a short-lived leaf and the root).
 */
#ifndef IOTCA_TLSCERT_H
#define IOTCA_TLSCERT_H

#include <stddef.h>
#include <time.h>

#include "config.h"

struct tls_material {
	char	*key_pem;	/* PKCS#8 PEM; wiped by tls_material_clear */
	char	*chain_pem;	/* leaf followed by the root */
	char	*root_pem;
	time_t	 not_before, not_after;
};

/* Make a key and CSR and have the signer certify it; -1 with err. */
int	tls_material_get(const struct config *, struct tls_material *,
	    char *err, size_t errlen);
void	tls_material_clear(struct tls_material *);

/* When to renew: at two thirds of the lifetime. */
time_t	tls_material_renew_at(const struct tls_material *);

#endif
