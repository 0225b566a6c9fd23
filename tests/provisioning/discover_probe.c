/*
 * discover-probe: the device's discovery, in the draft's order, as the
 * agent will run it; for the network-namespace test.
 *
 *	discover-probe -i IFACE [-e ENTERPRISE] [-s SUBOPT] [-r RESOLVER]
 *	    [-d DOMAIN] [-t TIMEOUT_MS]
 *
 * 1. DHCPINFORM on IFACE; option 125's name, resolved through the resolver
 *    (-r, else the DHCP server's option 6, else the system's) and checked.
 * 2. Else DNS-SD for the domain (-d, else DHCP option 15).
 * Prints one "server=... port=... path=... source=... addr=..." line and
 * exits 0; "no ACME server" and exit 3 when neither says anything; exit 1
 * after a refusal or error.  Each step logs one line on stderr.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dhcpinform.h"
#include "discovery.h"

static void
print_server(const struct disc_server *s)
{
	char a[INET6_ADDRSTRLEN];
	size_t i;

	printf("server=%s port=%u path=%s source=%s", s->name, s->port, s->path,
	    s->source);
	for (i = 0; i < s->naddrs; i++) {
		const struct sockaddr_storage *ss = &s->addrs[i];

		if (inet_ntop(ss->ss_family, ss->ss_family == AF_INET6 ?
		    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
		    (const void *)&((const struct sockaddr_in *)ss)->sin_addr,
		    a, sizeof(a)) != NULL)
			printf(" addr=%s", a);
	}
	printf("\n");
}

int
main(int argc, char *argv[])
{
	struct dhcp_inform_opts o = { .enterprise = DISC_DEFAULT_ENTERPRISE };
	struct dhcp_inform_result r;
	struct disc_resolver res = { NULL, 2000 };
	struct disc_server s;
	char err[512], name[DISC_NAME_MAX + 1], dns[INET_ADDRSTRLEN];
	const char *domain = NULL;
	long subopt = DISC_DEFAULT_SUBOPT;
	int ch, have_dhcp = 0, refused = 0, rc;

	while ((ch = getopt(argc, argv, "i:e:s:r:d:t:")) != -1) {
		switch (ch) {
		case 'i': o.ifname = optarg; break;
		case 'e': o.enterprise = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 's': subopt = strtol(optarg, NULL, 10); break;
		case 'r': res.server = optarg; break;
		case 'd': domain = optarg; break;
		case 't': o.timeout_ms = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: discover-probe -i IFACE [-e N] [-s N] "
			    "[-r RESOLVER] [-d DOMAIN] [-t MS]\n");
			return 2;
		}
	}
	if (o.ifname == NULL || subopt < 1 || subopt > 254) {
		fprintf(stderr, "discover-probe: -i IFACE is required\n");
		return 2;
	}
	o.first_wait_ms = 500;
	if (dhcp_inform(&o, &r, err, sizeof(err)) == -1) {
		fprintf(stderr, "dhcp: %s\n", err);
	} else {
		have_dhcp = 1;
		fprintf(stderr, "dhcp: DHCPACK after %d DHCPINFORM(s), domain "
		    "\"%s\", option 125 %zu bytes\n", r.attempts, r.domain,
		    r.opt125_len);
		if (res.server == NULL && r.ndns > 0 &&
		    inet_ntop(AF_INET, &r.dns[0], dns, sizeof(dns)) != NULL)
			res.server = dns;
		if (domain == NULL && r.domain[0] != '\0')
			domain = r.domain;
	}
	if (have_dhcp && r.opt125_len > 0) {
		rc = disc_parse_vivso(r.opt125, r.opt125_len, o.enterprise,
		    (uint8_t)subopt, name, err, sizeof(err));
		if (rc == 1) {
			fprintf(stderr, "dhcp: option 125 names %s\n", name);
			if (disc_resolve_name(&res, name, &s, err, sizeof(err)) == 1) {
				print_server(&s);
				return 0;
			}
			refused = 1;
			fprintf(stderr, "dhcp: %s\n", err);
		} else {
			if (rc == -1)
				refused = 1;
			fprintf(stderr, "dhcp: %s\n", err);
		}
	} else if (have_dhcp)
		fprintf(stderr, "dhcp: no option 125 in the DHCPACK\n");
	if (domain == NULL) {
		fprintf(stderr, "dns-sd: no domain (neither -d nor DHCP option 15)\n");
	} else {
		rc = disc_dnssd(&res, domain, &s, err, sizeof(err));
		if (rc == 1) {
			print_server(&s);
			return 0;
		}
		fprintf(stderr, "dns-sd: %s\n", err);
		if (rc == -1)
			refused = 1;
	}
	if (refused) {
		printf("refused\n");
		return 1;
	}
	printf("no ACME server\n");
	return 3;
}
