/*
 * auth: RFC 8555 6.2-6.5 checks on a POST: JWS shape and signature
 * (acme/jws.c), the nonce (nonce.c), the url against the request URL, and
 * the key: an embedded jwk (newAccount, revokeCert) or the kid of an
 * existing, valid account.
 */
#ifndef IOTCA_AUTH_H
#define IOTCA_AUTH_H

#include "http.h"

/* 0 and r->jws, r->payload, r->key, r->thumb (and r->acct) set; or -1 with
 * the problem written to resp. */
int	auth_request(struct req *r, enum auth_kind, struct resp *resp);

/* Answer a jws_error as a problem (badSignatureAlgorithm lists our algs). */
int	auth_problem(struct resp *, const struct jws_error *);

#endif
