/*
 * acmed_config: the [acme] section of the iotca INI file (iotca-acmed's own;
 * config_load() from casvc/ reads the rest and skips this one).  Bad values
 * are refused with FILE:LINE and a reason.
 */
#ifndef IOTCA_ACMED_CONFIG_H
#define IOTCA_ACMED_CONFIG_H

#include <stddef.h>
#include <sys/socket.h>

#include "ratelimit.h"

#define ACME_MAX_LISTEN	8

/* Defaults of the connection limits (see acme/README.md for the reasons). */
#define ACME_DEF_MAX_CONNECTIONS	4096	/* per listening socket */
#define ACME_DEF_MAX_PER_ADDRESS	32
#define ACME_DEF_REQUEST_TIMEOUT	5	/* seconds without a byte */
#define ACME_DEF_THREADS		2	/* poll threads per socket */
#define ACME_DEF_WORKERS		32	/* threads running requests */
#define ACME_DEF_RATELIMIT_SLOTS	4096	/* buckets per rule */
/* Rate limits, "BURST/PERIOD": see ratelimit.h. */
#define ACME_DEF_RL_NEW_ACCOUNT		"20/60"		/* per address */
#define ACME_DEF_RL_ADDRESS		"300/60"	/* newOrder+finalize per address */
#define ACME_DEF_RL_ACCOUNT		"60/60"		/* newOrder+finalize per account */

struct acme_listen {
	char			 text[80];	/* as written: "127.0.0.1:8443", "[::1]:8443" */
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
};

struct acme_config {
	struct acme_listen	 listen[ACME_MAX_LISTEN];
	size_t			 nlisten;
	/* Plain HTTP for the CRL and the root only (publish.h) */
	struct acme_listen	 http_listen[ACME_MAX_LISTEN];
	size_t			 nhttp_listen;
	char			*base_url;	/* no trailing slash */
	char			*db;
	int			 http01_port;	/* default 80 */
	int			 tlsalpn01_port;	/* default 443 */
	char			*hosts_file;	/* optional */
	char			*dns_server;	/* optional "ADDR[:PORT]" */
	long			 order_lifetime;	/* seconds, default 7 days */
	char			*tos_url;	/* optional */
	char			*website;	/* optional */
	/* Connections (listener.c) */
	unsigned int		 max_connections;	/* per listening socket */
	unsigned int		 max_per_address;
	unsigned int		 request_timeout;	/* seconds idle */
	unsigned int		 threads;	/* poll threads per socket */
	unsigned int		 workers;	/* request threads */
	/* Rate limits (http.c), per address or per account */
	struct ratelimit_rule	 rl_new_account;	/* newAccount per address */
	struct ratelimit_rule	 rl_address;	/* newOrder, finalize per address */
	struct ratelimit_rule	 rl_account;	/* newOrder, finalize per account */
	unsigned int		 ratelimit_slots;
};

/* Parse the [acme] section of path; -1 with "FILE:LINE: reason" in err. */
int	acme_config_load(const char *path, struct acme_config *,
	    char *err, size_t errlen);
void	acme_config_free(struct acme_config *);

/* Parse "ADDR:PORT" or "[V6ADDR]:PORT" (numeric only). */
int	acme_parse_hostport(const char *text, struct acme_listen *out);

#endif
