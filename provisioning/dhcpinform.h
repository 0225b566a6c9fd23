/*
 * dhcpinform: ask the network's DHCP server for configuration without
 * taking a lease (RFC 2131 3.4), so it works beside whatever DHCP client
 * the device runs.  On an interface that already has an IPv4 address:
 * DHCPINFORM (ciaddr = that address; Parameter Request List 1, 6, 15, 125;
 * our own option 125 naming the enterprise, which some servers, Kea among
 * them, need before they send theirs) broadcast from port 68 to port 67,
 * then wait for the DHCPACK with the same xid and hardware address.
 * Retransmits with exponential backoff (1 s, 2 s, 4 s ...) inside a total
 * time limit.
 *
 * Port 68 needs root or CAP_NET_BIND_SERVICE (and, before Linux 5.7,
 * CAP_NET_RAW for SO_BINDTODEVICE).  The socket sets SO_REUSEADDR, so it
 * shares port 68 with a DHCP client's socket that sets it too (the LAN test
 * checks this); a client holding the port without it makes the bind fail
 * with EADDRINUSE, reported as such.  Clients that use packet sockets do
 * not hold the port at all.  SO_BINDTODEVICE keeps the broadcast on, and
 * the answer from, the interface asked about: the more specific binding
 * is also the one the kernel delivers the unicast DHCPACK to.
 */
#ifndef IOTCA_DHCPINFORM_H
#define IOTCA_DHCPINFORM_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define DHCP_OPT125_MAX	1024	/* several 125 options, concatenated */
#define DHCP_MAX_DNS	4

struct dhcp_inform_opts {
	const char	*ifname;
	uint32_t	 enterprise;	/* named in our option 125 */
	int		 timeout_ms;	/* all attempts together; default 8000 */
	int		 first_wait_ms;	/* first retransmission; default 1000 */
	int		 server_port;	/* default 67; tests only */
	int		 client_port;	/* default 68; tests only */
};

struct dhcp_inform_result {
	struct in_addr	 server_id;		/* option 54, if sent */
	uint8_t		 opt125[DHCP_OPT125_MAX];	/* payload, concatenated */
	size_t		 opt125_len;		/* 0: the server sent none */
	char		 domain[256];		/* option 15, "" if none */
	struct in_addr	 dns[DHCP_MAX_DNS];	/* option 6 */
	size_t		 ndns;
	int		 attempts;		/* DHCPINFORMs sent */
};

/*
 * Send DHCPINFORM on opts->ifname and wait for the DHCPACK.  0 and *res
 * filled; -1 with a reason in err (no address on the interface, no
 * answer in time, a DHCPNAK, a socket error).
 */
int	dhcp_inform(const struct dhcp_inform_opts *, struct dhcp_inform_result *,
	    char *err, size_t errlen);

/*
 * Check one received message: a BOOTREPLY DHCPACK to xid and chaddr.  0
 * and *res filled; 1 if it is someone else's (wrong xid, hardware address
 * or type: keep waiting); -1 with err if it is ours but malformed
 * (options past the end, a bad option 15) or a DHCPNAK.
 */
int	dhcp_parse_ack(const uint8_t *msg, size_t len, uint32_t xid,
	    const uint8_t chaddr[6], struct dhcp_inform_result *res,
	    char *err, size_t errlen);

#endif
