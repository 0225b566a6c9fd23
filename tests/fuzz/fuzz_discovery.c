/*
 * fuzz_discovery: what a device's discovery reads from the network
 * (provisioning/discovery.c, dhcpinform.c).  The first byte picks the
 * reader, the rest is its input:
 *
 *	0  an option 125 payload (disc_parse_vivso)
 *	1  a DHCP message (dhcp_parse_ack), and its option 125 if any
 *	2  a DNS answer to the SRV query (disc_dnssd_from_wire)
 *
 * Beyond "no crash, no leak": a refusal has a reason; a name that is
 * accepted is a host name of at most 253 bytes; a server that is accepted
 * has a port, an absolute path and only local addresses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dhcpinform.h"
#include "discovery.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_discovery: invariant failed: %s (line %d)\n", \
	    #cond, __LINE__); abort(); } } while (0)

static void
vivso(const uint8_t *p, size_t len)
{
	char name[DISC_NAME_MAX + 1], err[512];
	int rc;

	err[0] = '\0';
	rc = disc_parse_vivso(p, len, DISC_DEFAULT_ENTERPRISE,
	    DISC_DEFAULT_SUBOPT, name, err, sizeof(err));
	CHECK(rc >= -1 && rc <= 1);
	if (rc == 1) {
		CHECK(strlen(name) <= DISC_NAME_MAX);
		CHECK(disc_valid_hostname(name, strlen(name), 0));
	} else
		CHECK(err[0] != '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	struct dhcp_inform_result r;
	struct disc_server s;
	char err[512];
	size_t i;
	int rc;

	if (size < 1)
		return 0;
	err[0] = '\0';
	switch (data[0] % 3) {
	case 0:
		vivso(data + 1, size - 1);
		break;
	case 1:
		memset(&r, 0, sizeof(r));
		rc = dhcp_parse_ack(data + 1, size - 1, 0x01020304, mac, &r,
		    err, sizeof(err));
		CHECK(rc >= -1 && rc <= 1);
		if (rc == -1)
			CHECK(err[0] != '\0');
		if (rc == 0) {
			CHECK(r.opt125_len <= sizeof(r.opt125));
			CHECK(strlen(r.domain) < sizeof(r.domain));
			CHECK(r.ndns <= DHCP_MAX_DNS);
			if (r.opt125_len > 0)
				vivso(r.opt125, r.opt125_len);
		}
		break;
	case 2:
		rc = disc_dnssd_from_wire(data + 1, size - 1,
		    "_acme-server._tcp.home.arpa.", &s, err, sizeof(err));
		CHECK(rc >= -1 && rc <= 1);
		if (rc == 1) {
			CHECK(s.port != 0 && s.path[0] == '/' && s.naddrs > 0);
			CHECK(disc_valid_hostname(s.name, strlen(s.name), 0));
			for (i = 0; i < s.naddrs; i++)
				CHECK(disc_addr_is_local((const struct sockaddr *)&s.addrs[i]));
		} else
			CHECK(err[0] != '\0');
		break;
	}
	return 0;
}
