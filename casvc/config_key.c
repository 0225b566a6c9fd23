/*
 * config_key: [key] and [audit] for the key store and the anchor (see
 * config_key.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config_key.h"

int
config_owner_auth(const struct config *c, char out[CONFIG_OWNER_AUTH_MAX + 1],
    char *err, size_t errlen)
{
	char buf[CONFIG_OWNER_AUTH_MAX + 2];
	const char *f = c->owner_auth_file;
	struct stat st;
	ssize_t n;
	size_t len;
	int fd;

	out[0] = '\0';
	if (f == NULL)
		return 0;
	if ((fd = open(f, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "[key] owner_auth_file %s: %s", f,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "[key] owner_auth_file %s: must be a "
		    "regular file only its owner can read (mode 0600 or 0400)", f);
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "[key] owner_auth_file %s: %s", f,
		    strerror(errno));
		return -1;
	}
	len = (size_t)n;
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len == 0 || len > CONFIG_OWNER_AUTH_MAX ||
	    memchr(buf, '\0', len) != NULL || memchr(buf, '\n', len) != NULL) {
		snprintf(err, errlen, "[key] owner_auth_file %s: must hold one "
		    "line of 1 to %d bytes", f, CONFIG_OWNER_AUTH_MAX);
		OPENSSL_cleanse(buf, sizeof(buf));
		return -1;
	}
	memcpy(out, buf, len);
	out[len] = '\0';
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

void
config_ks(const struct config *c, struct ks_config *kc)
{
	memset(kc, 0, sizeof(*kc));
	/* config_load takes only names the key store knows (test_config
	 * checks each): anything else is not a loaded configuration. */
	if (ks_store_parse(c->key_store, &kc->store) == -1)
		abort();
	kc->tcti = c->tcti;
	kc->provider = c->provider;
	kc->parent = c->key_parent;
}

void
config_anchor(const struct config *c, const char *owner_auth,
    struct anchor_paths *ap)
{
	memset(ap, 0, sizeof(*ap));
	ap->mode = strcmp(c->key_store, "tpm2") == 0 ? ANCHOR_TPM2 :
	    ANCHOR_FILE;
	ap->sign_key = c->audit_key;
	ap->hmac_key = c->audit_hmac;
	ap->counter = c->audit_counter;
	ap->nv_index = c->audit_nv_index;
	ap->tcti = c->tcti;
	ap->owner_auth = owner_auth;
	ap->parent = c->key_parent;
}

int
config_key_alg(const char *name, enum ks_alg *out)
{
	enum ks_alg a;

	if (name == NULL || ks_alg_parse(name, &a) == -1 ||
	    a == KS_ALG_EC_P256 || a == KS_ALG_RSA_2048)
		return -1;
	*out = a;
	return 0;
}
