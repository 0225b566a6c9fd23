/*
 * discovery_conf: what "iotca discovery" reads from iotca.conf besides
 * [ca] (config.h): the [discovery] section, and from [acme] only the port
 * and base of the directory (base_url, else the first listen), parsed here
 * so the CLI does not depend on the ACME front end's code.
 *
 * [discovery]
 *	enterprise = 55357		IANA enterprise number of option 125
 *	suboption = 1			its sub-option carrying the server's name
 *	dns_server = 192.168.1.1:53	where --update sends (ADDR[:PORT])
 *	tsig_key_file = /etc/iotca/dnsupdate.key	(0600; BIND format or
 *					"NAME ALGORITHM SECRET")
 *	zone = home.arpa		zone to update (default: each domain)
 *	ttl = 300			TTL of the published records
 */
#ifndef IOTCA_DISCOVERY_CONF_H
#define IOTCA_DISCOVERY_CONF_H

#include <stddef.h>
#include <stdint.h>

struct disc_conf {
	uint32_t	 enterprise;	/* default 55357 */
	int		 suboption;	/* 1..254, default 1 */
	char		*dns_server;	/* optional */
	char		*tsig_key_file;	/* optional */
	char		*zone;		/* optional */
	int		 ttl;		/* 0..604800, default 300 */
	/* from [acme] */
	int		 port;		/* of the directory, default 443 */
	char		 path[64];	/* "/directory" */
};

/* 0, or -1 with "FILE:LINE: reason" in err.  Unknown keys in [discovery]
 * are refused; other sections are left to their programs. */
int	disc_conf_load(const char *path, struct disc_conf *, char *err,
	    size_t errlen);
void	disc_conf_free(struct disc_conf *);

#endif
