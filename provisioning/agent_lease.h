/*
 * agent_lease: the DHCP options a DHCP client already received, read from
 * a lease file instead of asking with our own DHCPINFORM (draft-sweet-
 * iot-acme 3.3: "or from a lease file where configured").
 *
 * The format is the environment busybox udhcpc hands its script, one
 * KEY=VALUE per line (a hook that runs "env > FILE" writes it):
 *
 *	opt125=<the option's payload in hex, two digits per byte>
 *	domain=<option 15>
 *
 * udhcpc exports option 125 this way when asked for it ("-O 125").  Other
 * keys are ignored, as are blank lines.  A line of ours that is too long,
 * hex of odd length or with a character that is not a hex digit, a
 * payload over DHCP_OPT125_MAX bytes or a domain that is not a host name
 * is refused with the line number; nothing is half-read.
 */
#ifndef IOTCA_AGENT_LEASE_H
#define IOTCA_AGENT_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "dhcpinform.h"

struct agent_lease {
	uint8_t	opt125[DHCP_OPT125_MAX];	/* payload */
	size_t	opt125_len;			/* 0: no opt125= line */
	char	domain[256];			/* "" if no domain= line */
};

/* Read path.  1 if it holds option 125, 0 if it does not (domain may
 * still be set), -1 with "path:line: reason" in err. */
int	agent_lease_read(const char *path, struct agent_lease *,
	    char *err, size_t errlen);

#endif
