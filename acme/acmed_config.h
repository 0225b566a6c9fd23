/*
 * acmed_config: the [acme] section of the iotca INI file (iotca-acmed's own;
 * config_load() from casvc/ reads the rest and skips this one).  Bad values
 * are refused with FILE:LINE and a reason.
 */
#ifndef IOTCA_ACMED_CONFIG_H
#define IOTCA_ACMED_CONFIG_H

#include <stddef.h>
#include <sys/socket.h>

#define ACME_MAX_LISTEN	8

struct acme_listen {
	char			 text[80];	/* as written: "127.0.0.1:8443", "[::1]:8443" */
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
};

struct acme_config {
	struct acme_listen	 listen[ACME_MAX_LISTEN];
	size_t			 nlisten;
	char			*base_url;	/* no trailing slash */
	char			*db;
	int			 http01_port;	/* default 80 */
	int			 tlsalpn01_port;	/* default 443 */
	char			*hosts_file;	/* optional */
	char			*dns_server;	/* optional "ADDR[:PORT]" */
	long			 order_lifetime;	/* seconds, default 7 days */
	char			*tos_url;	/* optional */
	char			*website;	/* optional */
};

/* Parse the [acme] section of path; -1 with "FILE:LINE: reason" in err. */
int	acme_config_load(const char *path, struct acme_config *,
	    char *err, size_t errlen);
void	acme_config_free(struct acme_config *);

/* Parse "ADDR:PORT" or "[V6ADDR]:PORT" (numeric only). */
int	acme_parse_hostport(const char *text, struct acme_listen *out);

#endif
