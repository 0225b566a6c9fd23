/*
 * http: iotca-acmed's HTTP layer over libmicrohttpd.  Collects a bounded
 * request body, routes by method and path, authenticates POSTs as RFC 8555
 * JWS requests (auth.c), calls the resource handler and sends what it built
 * with the headers every ACME response carries (Replay-Nonce, Link index).
 */
#ifndef IOTCA_HTTP_H
#define IOTCA_HTTP_H

#include <stddef.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <microhttpd.h>

#include "acmed.h"
#include "acmedb.h"
#include "jws.h"

#define HTTP_MAX_BODY	(64 * 1024)
#define HTTP_DRAIN_MAX	(1024 * 1024)	/* larger bodies are not even read */
#define HTTP_MAX_LINKS	4

/* Paths under base_url. */
#define PATH_DIRECTORY	"/directory"
#define PATH_ROOT	"/root.pem"
#define PATH_NONCE	"/acme/new-nonce"
#define PATH_NEWACCT	"/acme/new-account"
#define PATH_NEWORDER	"/acme/new-order"
#define PATH_REVOKE	"/acme/revoke-cert"
#define PATH_KEYCHANGE	"/acme/key-change"
#define PATH_ARI	"/acme/renewal-info"
#define PATH_ACCT	"/acme/acct"
#define PATH_ORDER	"/acme/order"
#define PATH_AUTHZ	"/acme/authz"
#define PATH_CHALL	"/acme/chall"
#define PATH_CERT	"/acme/cert"

/* How a route authenticates. */
enum auth_kind {
	AUTH_NONE,	/* GET/HEAD, no JWS */
	AUTH_JWK,	/* newAccount: the key itself */
	AUTH_KID,	/* everything else: an existing account */
	AUTH_EITHER,	/* revokeCert: account or certificate key */
};

struct resp {
	unsigned int	 status;
	char		*body;		/* malloc'd */
	size_t		 len;
	const char	*ctype;
	char		*location;	/* malloc'd, or NULL */
	char		*links[HTTP_MAX_LINKS];	/* full Link header values */
	size_t		 nlinks;
	int		 retry_after;	/* seconds, 0 = none */
	const char	*allow;		/* 405 */
	/* Published objects (publish.h): validators, and no-cache instead
	 * of no-store */
	char		 etag[64];
	char		 last_modified[40];
};

/* Where a request is: read, with the workers, answered (see http.c). */
enum req_state {
	REQ_READING,
	REQ_WORKING,
	REQ_ANSWERED,
};

struct req {
	struct acmed		*a;
	struct MHD_Connection	*conn;
	const char		*method;
	char			 path[512];
	/* path segments after the route prefix: /acme/order/ID/finalize */
	char			 arg[ID_LEN * 4];
	char			 arg2[32];
	char			*body;
	size_t			 len;
	int			 too_large;
	/* After authentication (POST) */
	struct jws		*jws;
	json_t			*payload;	/* NULL for POST-as-GET */
	EVP_PKEY		*key;		/* the key that signed */
	char			 thumb[THUMB_LEN];
	int			 have_acct;
	struct acct		 acct;		/* the signer's account (kid, or jwk if known) */
	/* Where it is, and the answer a worker made */
	enum req_state		 state;
	struct resp		 rs;
	const struct MHD_Daemon	*daemon;
	char			 peer[64];	/* rate-limit key of the client */
};


/* MHD callbacks (listener_app). */
enum MHD_Result	 http_handler(void *cls, struct MHD_Connection *,
		    const char *url, const char *method, const char *version,
		    const char *upload_data, size_t *upload_data_size,
		    void **con_cls);
void		 http_completed(void *cls, struct MHD_Connection *,
		    void **con_cls, enum MHD_RequestTerminationCode);

/* Building responses.  Each returns 0, or -1 when out of memory (the
 * dispatcher then answers a bare 500). */
int	 resp_json(struct resp *, unsigned int status, json_t *obj);	/* steals obj */
int	 resp_text(struct resp *, unsigned int status, const char *ctype,
	    const char *text);
int	 resp_problem(struct resp *, unsigned int status, const char *type,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A problem built by the caller (subproblems, algorithms); steals it. */
int	 resp_problem_json(struct resp *, unsigned int status, json_t *problem);
json_t	*problem_new(const char *type, const char *detail);
/* The HTTP status a problem of this type is answered with (RFC 8555 6.7):
 * for a problem stored in an order or a challenge, whose "status" says it. */
unsigned int problem_status(const char *type);
int	 resp_location(struct resp *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	 resp_link(struct resp *, const char *url, const char *rel);

/* A URL under base_url: url_of(a, "/acme/order/%s", id); malloc'd. */
char	*url_of(const struct acmed *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* RFC 3339 UTC time. */
void	 rfc3339(time_t, char out[32]);

#endif
