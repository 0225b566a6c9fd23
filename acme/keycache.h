/*
 * keycache: account public keys already turned from JWK into EVP_PKEY,
 * by RFC 7638 thumbprint.  Decoding a JWK through OpenSSL 3's decoders cost
 * more than verifying the request it signs; an account sends seven or eight
 * requests per certificate.
 *
 * A thumbprint is a SHA-256 hash of the key's required members, so an entry
 * can never name another key: a key change gives the account a new
 * thumbprint and a new entry.  The cache is a fixed table (an entry's slot
 * is picked by its thumbprint; a newcomer replaces the slot's holder), so
 * its size is bounded whatever the clients do.  Safe for concurrent use.
 *
 * An entry also keeps the key's PEM SubjectPublicKeyInfo once asked for
 * (keycache_pem), which goes to the signer with every issuance: encoding
 * it through OpenSSL 3's encoders cost as much as a request's JWS check.
 */
#ifndef IOTCA_KEYCACHE_H
#define IOTCA_KEYCACHE_H

#include <openssl/evp.h>

#define KEYCACHE_SLOTS	256

struct keycache;

struct keycache	*keycache_new(void);
void		 keycache_free(struct keycache *);
/* The key under thumb with a reference for the caller, or NULL. */
EVP_PKEY	*keycache_get(struct keycache *, const char *thumb);
/* Remember key under thumb (the cache takes its own reference). */
void		 keycache_put(struct keycache *, const char *thumb, EVP_PKEY *key);
/*
 * The PEM public key of the key under thumb, a copy for the caller to
 * free: encoded on the first call and kept with the entry.  NULL if thumb
 * is not cached or on an error.
 */
char		*keycache_pem(struct keycache *, const char *thumb);

#endif
