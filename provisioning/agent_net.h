/*
 * agent_net: which network the device is on and where its ACME server is
 * (draft-sweet-iot-acme 3.1, 3.3, 4.8, 4.9).
 *
 * A network is identified by the interface name, the MAC address of the
 * default router (from /proc/net/route and the neighbour table in
 * /proc/net/arp), the Wi-Fi SSID when known and the DHCP domain; its key,
 * the first 16 hex digits of SHA-256 over those four, names the
 * network's state directory.  Discovery runs in the draft's order: the
 * DHCP V-I option (from dhcp_lease_file where configured, else our own
 * DHCPINFORM), then DNS-SD through the unicast resolver; never mDNS.
 * Errors come back in err; nothing is printed.
 */
#ifndef IOTCA_AGENT_NET_H
#define IOTCA_AGENT_NET_H

#include <stddef.h>

#include "agent_config.h"
#include "discovery.h"

struct agent_net {
	char	ifname[16];
	char	mac[18];		/* the interface's, "aa:bb:..." */
	char	router_mac[18];		/* "" if there is no default router */
	char	ssid[33];		/* "" if not wireless or unknown */
	char	domain[256];		/* "" if none */
	char	resolver[64];		/* "" : the system's */
	char	key[17];		/* hex */
	int	dhcp_ok;		/* a DHCPACK came */
	char	dhcp_note[256];		/* why not, or what it said */
	char	server_name[DISC_NAME_MAX + 1];	/* from option 125, "" if none */
	int	opt125_bad;		/* option 125 present but malformed */
};

/* The device ID: device_id, else vendor prefix + the interface's MAC
 * without colons (3.1).  0, or -1 with err. */
int	agent_device_id(const struct agent_config *, char *out, size_t outlen,
	    char *err, size_t errlen);

/* Identify the network on cfg->interface (a DHCPINFORM too, unless dhcp
 * is off).  0, or -1 with err when the interface cannot be read. */
int	agent_net_identify(const struct agent_config *, struct agent_net *,
	    char *err, size_t errlen);

/* Find the server: 1 and *out; 0 when the network announces none; -1
 * with err on a refusal (public network or address, bad option). */
int	agent_net_discover(const struct agent_config *, const struct agent_net *,
	    struct disc_server *out, char *err, size_t errlen);

#endif
