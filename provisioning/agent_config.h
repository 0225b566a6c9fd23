/*
 * agent_config: iotca-agent's INI file (inih), one [agent] section.
 * Unknown keys, bad values and a missing interface are refused with the
 * file name, line and reason; nothing is half-loaded.  Keys and defaults
 * are listed in iotca-agent(8).
 */
#ifndef IOTCA_AGENT_CONFIG_H
#define IOTCA_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct agent_config {
	char		*state_dir;	/* default /var/lib/iotca-agent */
	char		*interface;	/* required */
	char		*vendor_prefix;	/* default "ex" */
	char		*device_id;	/* NULL: prefix + the interface's MAC */
	char		*domain;	/* NULL: DHCP option 15 */
	char		*resolver;	/* NULL: DHCP option 6, else the system's */
	char		*ssid;		/* NULL: not wireless, or unknown */
	int		 dhcp;		/* send a DHCPINFORM (default 1) */
	int		 dhcp_timeout;	/* seconds, default 6 */
	char		*dhcp_lease_file;	/* NULL: none; read before DHCPINFORM */
	uint32_t	 enterprise;	/* default 55357 */
	int		 suboption;	/* default 1 */
	int		 public_network;	/* 1: never look for a server here */
	char		*http01_address;	/* default 0.0.0.0 */
	int		 http01_port;	/* default 80 */
	char		*cert_file;	/* where the certificate chain goes */
	char		*key_file;	/* and its key (0600) */
	char		*reload_command;	/* run after installing */
	char		*notify_command;	/* run when the root changed */
	char		*root_export;	/* trust: the pinned root as PEM here */
	char		*nss_db;	/* trust: also into this NSS database */
	int		 retry_seconds;	/* after a failure, default 60 */
	int		 approval_timeout;	/* seconds to wait at most; 0: until
					 * the order expires */
};

/* Defaults, then path.  0, or -1 with "path:line: reason" in err. */
int	agent_config_load(const char *path, struct agent_config *,
	    char *err, size_t errlen);
void	agent_config_free(struct agent_config *);

#endif
