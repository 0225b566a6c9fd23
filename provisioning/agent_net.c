/*
 * agent_net: network identity and server discovery for iotca-agent.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agent_net.h"
#include "agent_lease.h"
#include "dhcpinform.h"

/* The first line of a small file, without its newline. */
static int
read_line(const char *path, char *buf, size_t len)
{
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, (int)len, f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int
iface_mac(const char *ifname, char mac[18], char *err, size_t errlen)
{
	char path[96];

	snprintf(path, sizeof(path), "/sys/class/net/%s/address", ifname);
	if (read_line(path, mac, 18) == -1 || strlen(mac) != 17) {
		snprintf(err, errlen, "interface %s: no MAC address (%s)",
		    ifname, strerror(errno));
		return -1;
	}
	return 0;
}

int
agent_device_id(const struct agent_config *cfg, char *out, size_t outlen,
    char *err, size_t errlen)
{
	char mac[18], hex[13];
	size_t i, j;

	if (cfg->device_id != NULL) {
		snprintf(out, outlen, "%s", cfg->device_id);
		return 0;
	}
	if (iface_mac(cfg->interface, mac, err, errlen) == -1)
		return -1;
	for (i = 0, j = 0; mac[i] != '\0' && j < 12; i++)
		if (mac[i] != ':')
			hex[j++] = (char)tolower((unsigned char)mac[i]);
	hex[j] = '\0';
	if ((size_t)snprintf(out, outlen, "%s%s", cfg->vendor_prefix, hex) >= outlen) {
		snprintf(err, errlen, "device ID too long");
		return -1;
	}
	return 0;
}

/* The default route's gateway on ifname from /proc/net/route; 0 if none. */
static int
default_gateway(const char *ifname, struct in_addr *gw)
{
	char line[256], name[32];
	unsigned long dest, gate, flags;
	FILE *f;
	int found = 0;

	if ((f = fopen("/proc/net/route", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%31s %lx %lx %lx", name, &dest, &gate,
		    &flags) != 4)
			continue;
		if (strcmp(name, ifname) == 0 && dest == 0 && (flags & 2)) {
			gw->s_addr = (in_addr_t)gate;
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

/* The neighbour table's MAC for ip on ifname; 0 if it has none yet. */
static int
arp_lookup(const char *ifname, const char *ip, char mac[18])
{
	char line[256], a[64], hw[32], dev[32];
	unsigned int type, flags;
	FILE *f;
	int found = 0;

	if ((f = fopen("/proc/net/arp", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%63s 0x%x 0x%x %31s %*s %31s", a, &type,
		    &flags, hw, dev) != 5)
			continue;
		if (strcmp(a, ip) == 0 && strcmp(dev, ifname) == 0 &&
		    (flags & 2) && strlen(hw) == 17) {
			memcpy(mac, hw, 18);
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

/*
 * The router's MAC: its neighbour entry, after a datagram to it (the
 * discard port) has made the kernel resolve it, waiting at most 2 s.
 */
static void
router_mac(const char *ifname, char mac[18])
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9) };
	char ip[INET_ADDRSTRLEN];
	struct timespec ts = { 0, 100 * 1000000L };
	int fd, i;

	mac[0] = '\0';
	if (default_gateway(ifname, &sin.sin_addr) != 1 ||
	    inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip)) == NULL)
		return;
	for (i = 0; i < 20; i++) {
		if (arp_lookup(ifname, ip, mac) == 1)
			return;
		if (i == 0 && (fd = socket(AF_INET, SOCK_DGRAM, 0)) != -1) {
			(void)sendto(fd, "", 0, 0, (struct sockaddr *)&sin,
			    sizeof(sin));
			close(fd);
		}
		nanosleep(&ts, NULL);
	}
}

static void
network_key(struct agent_net *n)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char buf[512];
	int len;

	len = snprintf(buf, sizeof(buf), "%s\n%s\n%s\n%s", n->ifname,
	    n->router_mac, n->ssid, n->domain);
	if (len < 0 || EVP_Digest(buf, (size_t)len, md, &mdlen, EVP_sha256(),
	    NULL) != 1 || mdlen < 8) {
		snprintf(n->key, sizeof(n->key), "0000000000000000");
		return;
	}
	for (i = 0; i < 8; i++)
		snprintf(n->key + 2 * i, 3, "%02x", md[i]);
}

/* Append to the note that the agent logs after identifying the network. */
static void __attribute__((format(printf, 2, 3)))
note(struct agent_net *n, const char *fmt, ...)
{
	size_t used = strlen(n->dhcp_note);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(n->dhcp_note + used, sizeof(n->dhcp_note) - used, fmt, ap);
	va_end(ap);
}

/*
 * The lease file a DHCP client wrote: 1 if its option 125 names the
 * server (then no DHCPINFORM is sent), else 0 with the reason in the note
 * and the caller falls back to its own DHCPINFORM.
 */
static int
from_lease(const struct agent_config *cfg, struct agent_net *n)
{
	struct agent_lease l;
	const char *next = cfg->dhcp ? "asking with DHCPINFORM" :
	    "no DHCPINFORM (dhcp = false)";
	char lerr[256];
	int rc;

	rc = agent_lease_read(cfg->dhcp_lease_file, &l, lerr, sizeof(lerr));
	if (rc == -1) {
		note(n, "lease: %s; %s; ", lerr, next);
		return 0;
	}
	if (rc == 0) {
		note(n, "lease: %s has no option 125; %s; ",
		    cfg->dhcp_lease_file, next);
		return 0;
	}
	rc = disc_parse_vivso(l.opt125, l.opt125_len, cfg->enterprise,
	    (uint8_t)cfg->suboption, n->server_name, lerr, sizeof(lerr));
	if (rc != 1) {
		n->server_name[0] = '\0';
		note(n, "lease: %s: %s; %s; ", cfg->dhcp_lease_file,
		    rc == 0 ? "option 125 has no server for our enterprise and "
		    "sub-option" : lerr, next);
		return 0;
	}
	if (cfg->domain == NULL)
		snprintf(n->domain, sizeof(n->domain), "%s", l.domain);
	note(n, "lease: %s: option 125 names the server", cfg->dhcp_lease_file);
	return 1;
}

int
agent_net_identify(const struct agent_config *cfg, struct agent_net *n,
    char *err, size_t errlen)
{
	struct dhcp_inform_opts o = { 0 };
	struct dhcp_inform_result r;
	char derr[256], wpath[96];
	struct stat sb;
	int rc;

	memset(n, 0, sizeof(*n));
	snprintf(n->ifname, sizeof(n->ifname), "%s", cfg->interface);
	if (iface_mac(cfg->interface, n->mac, err, errlen) == -1)
		return -1;
	router_mac(cfg->interface, n->router_mac);
	if (cfg->ssid != NULL)
		snprintf(n->ssid, sizeof(n->ssid), "%s", cfg->ssid);
	snprintf(wpath, sizeof(wpath), "/sys/class/net/%s/wireless", cfg->interface);
	if (cfg->ssid == NULL && stat(wpath, &sb) == 0)
		snprintf(n->dhcp_note, sizeof(n->dhcp_note),
		    "wireless, SSID unknown (set ssid): ");
	if (cfg->resolver != NULL)
		snprintf(n->resolver, sizeof(n->resolver), "%s", cfg->resolver);
	if (cfg->dhcp_lease_file != NULL && from_lease(cfg, n) == 1)
		goto done;
	if (cfg->dhcp) {
		o.ifname = cfg->interface;
		o.enterprise = cfg->enterprise;
		o.timeout_ms = cfg->dhcp_timeout * 1000;
		o.first_wait_ms = 500;
		if (dhcp_inform(&o, &r, derr, sizeof(derr)) == -1) {
			snprintf(n->dhcp_note + strlen(n->dhcp_note),
			    sizeof(n->dhcp_note) - strlen(n->dhcp_note),
			    "dhcp: %s", derr);
		} else {
			n->dhcp_ok = 1;
			if (cfg->domain == NULL)
				snprintf(n->domain, sizeof(n->domain), "%s", r.domain);
			if (n->resolver[0] == '\0' && r.ndns > 0)
				(void)inet_ntop(AF_INET, &r.dns[0], n->resolver,
				    sizeof(n->resolver));
			if (r.opt125_len > 0) {
				rc = disc_parse_vivso(r.opt125, r.opt125_len,
				    cfg->enterprise, (uint8_t)cfg->suboption,
				    n->server_name, derr, sizeof(derr));
				if (rc == -1) {
					n->opt125_bad = 1;
					n->server_name[0] = '\0';
				}
				snprintf(n->dhcp_note + strlen(n->dhcp_note),
				    sizeof(n->dhcp_note) - strlen(n->dhcp_note),
				    "dhcp: %s", rc == 1 ? "option 125 names the "
				    "server" : derr);
			} else
				snprintf(n->dhcp_note + strlen(n->dhcp_note),
				    sizeof(n->dhcp_note) - strlen(n->dhcp_note),
				    "dhcp: no option 125");
		}
	}
done:
	if (cfg->domain != NULL)
		snprintf(n->domain, sizeof(n->domain), "%s", cfg->domain);
	network_key(n);
	return 0;
}

int
agent_net_discover(const struct agent_config *cfg, const struct agent_net *n,
    struct disc_server *out, char *err, size_t errlen)
{
	struct disc_resolver res = { n->resolver[0] ? n->resolver : NULL, 2000 };
	char e1[512] = "";
	int rc;

	if (cfg->public_network) {
		snprintf(err, errlen, "refused: %s is configured as a public "
		    "network (draft 4.9)", n->ifname);
		return -1;
	}
	if (n->server_name[0] != '\0') {
		if (disc_resolve_name(&res, n->server_name, out, e1,
		    sizeof(e1)) == 1)
			return 1;
		/* A refused DHCP answer is not overridden by DNS-SD. */
		snprintf(err, errlen, "dhcp: %s", e1);
		return -1;
	}
	/* A malformed option 125 is logged (dhcp_note); DNS-SD still runs. */
	if (n->domain[0] == '\0') {
		snprintf(err, errlen, "no ACME server: no DHCP option and no "
		    "domain for DNS-SD");
		return 0;
	}
	rc = disc_dnssd(&res, n->domain, out, e1, sizeof(e1));
	if (rc == 1)
		return 1;
	if (rc == 0)
		snprintf(err, errlen, "no ACME server: no DHCP option, no "
		    "DNS-SD record in %s", n->domain);
	else
		snprintf(err, errlen, "dns-sd: %s", e1);
	return rc;
}
