/*
 * est_auth: who is asking (RFC 7030 3.2.3, 3.3.2).  HTTP Basic against a
 * file of "user:CRYPT-HASH" lines (crypt(3) of libxcrypt: yescrypt $y$,
 * SHA-512 $6$, SHA-256 $5$, bcrypt $2b$), and TLS client certificates that
 * verify to the configured anchors (OpenSSL's verifier, purpose clientAuth).
 *
 * Every HTTP thread may use one struct est_auth at once: the loaded state
 * is read-only after est_auth_load (crypt_rn keeps its state on the
 * caller's side); only the memory of passed Basic checks (a keyed hash of
 * user, password and stored hash, kept 5 minutes, so that a client's
 * retries do not each pay for crypt(3)) is behind a lock.
 */
#ifndef IOTCA_EST_AUTH_H
#define IOTCA_EST_AUTH_H

#include <stddef.h>
#include <openssl/x509.h>

struct est_auth;

/*
 * credentials: NULL for none (Basic is then refused).  The file must not be
 * readable by others (0600 or 0640).  enrol_pem: anchors for simpleenroll
 * (client_ca and the appliance root), reenrol_pem: for simplereenroll (the
 * appliance root).  NULL with err naming the file and line.
 */
struct est_auth	*est_auth_load(const char *credentials, const char *enrol_pem,
		    const char *reenrol_pem, char *err, size_t errlen);
void		 est_auth_free(struct est_auth *);

/*
 * An Authorization header: 1 if it is Basic with a known user and the right
 * password, 0 if not (reason says which, for the log: the client is told
 * only "bad user name or password"), -1 if it is not Basic at all.  The
 * user name goes to user (at most 64 bytes).
 */
int		 est_auth_basic(struct est_auth *, const char *header,
		    char *user, size_t userlen, char *reason, size_t reasonlen);

/* Whether a Basic password file is configured. */
int		 est_auth_has_basic(const struct est_auth *);

/*
 * A client's chain (leaf first, as TLS sent it): 0 if the leaf verifies to
 * the enrolment anchors (reenrol 0) or to the appliance root (reenrol 1),
 * -1 with reason.
 */
int		 est_auth_cert(const struct est_auth *, STACK_OF(X509) *chain,
		    int reenrol, char *reason, size_t reasonlen);

#endif
