/*
 * dhcpinform: one DHCPINFORM exchange (dhcpinform.h).  The BOOTP/DHCP
 * message is a fixed header and a list of TLV options (RFC 2131, RFC
 * 2132); it is built and read here, with bounds checked at every step.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dhcpinform.h"

#define BOOTP_HDR	236	/* op .. file */
#define BOOTP_MIN	300	/* RFC 1542: pad to at least this */
#define MAGIC		"\x63\x82\x53\x63"

#define OPT_PAD		0
#define OPT_DNS		6
#define OPT_DOMAIN	15
#define OPT_OVERLOAD	52
#define OPT_MSGTYPE	53
#define OPT_SERVER_ID	54
#define OPT_PRL		55
#define OPT_VIVSO	125
#define OPT_END		255

#define DHCPNAK		6
#define DHCPACK		5
#define DHCPINFORM	8

static int
monotonic_ms(long long *out)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return -1;
	*out = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return 0;
}

/* The interface's IPv4 address and Ethernet address. */
static int
iface_info(int s, const char *ifname, struct in_addr *addr, uint8_t mac[6],
    char *err, size_t errlen)
{
	struct ifreq ifr;

	if (strlen(ifname) >= IFNAMSIZ) {
		snprintf(err, errlen, "%s: interface name too long", ifname);
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(s, SIOCGIFHWADDR, &ifr) == -1) {
		snprintf(err, errlen, "%s: %s", ifname, strerror(errno));
		return -1;
	}
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
		snprintf(err, errlen, "%s: not an Ethernet-like interface", ifname);
		return -1;
	}
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_addr.sa_family = AF_INET;
	if (ioctl(s, SIOCGIFADDR, &ifr) == -1) {
		snprintf(err, errlen, "%s: no IPv4 address (%s): DHCPINFORM needs "
		    "one", ifname, strerror(errno));
		return -1;
	}
	*addr = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
	return 0;
}

static size_t
build_inform(uint8_t *m, size_t cap, uint32_t xid, struct in_addr ciaddr,
    const uint8_t mac[6], uint32_t enterprise)
{
	static const uint8_t prl[] = { 1, OPT_DNS, OPT_DOMAIN, OPT_VIVSO };
	size_t o;

	memset(m, 0, cap);
	m[0] = 1;	/* BOOTREQUEST */
	m[1] = 1;	/* Ethernet */
	m[2] = 6;
	m[4] = (uint8_t)(xid >> 24);
	m[5] = (uint8_t)(xid >> 16);
	m[6] = (uint8_t)(xid >> 8);
	m[7] = (uint8_t)xid;
	memcpy(m + 12, &ciaddr, 4);
	memcpy(m + 28, mac, 6);
	memcpy(m + BOOTP_HDR, MAGIC, 4);
	o = BOOTP_HDR + 4;
	m[o++] = OPT_MSGTYPE;
	m[o++] = 1;
	m[o++] = DHCPINFORM;
	m[o++] = OPT_PRL;
	m[o++] = sizeof(prl);
	memcpy(m + o, prl, sizeof(prl));
	o += sizeof(prl);
	/* Our 125: the enterprise with no data, "we speak this vendor's". */
	m[o++] = OPT_VIVSO;
	m[o++] = 5;
	m[o++] = (uint8_t)(enterprise >> 24);
	m[o++] = (uint8_t)(enterprise >> 16);
	m[o++] = (uint8_t)(enterprise >> 8);
	m[o++] = (uint8_t)enterprise;
	m[o++] = 0;
	m[o++] = OPT_END;
	return o < BOOTP_MIN ? BOOTP_MIN : o;
}

/* One option area (options, file or sname): collect what we want. */
static int
read_options(const uint8_t *p, size_t len, struct dhcp_inform_result *res,
    int *msgtype, int *overload, char *err, size_t errlen)
{
	size_t i = 0, j;

	while (i < len) {
		uint8_t code = p[i], olen;

		if (code == OPT_PAD) {
			i++;
			continue;
		}
		if (code == OPT_END)
			return 0;
		if (len - i < 2 || p[i + 1] > len - i - 2) {
			snprintf(err, errlen, "DHCPACK: option %u runs past the "
			    "end of the message", code);
			return -1;
		}
		olen = p[i + 1];
		switch (code) {
		case OPT_MSGTYPE:
			if (olen == 1)
				*msgtype = p[i + 2];
			break;
		case OPT_OVERLOAD:
			if (olen == 1)
				*overload = p[i + 2];
			break;
		case OPT_SERVER_ID:
			if (olen == 4)
				memcpy(&res->server_id, p + i + 2, 4);
			break;
		case OPT_DNS:
			for (j = 0; j + 4 <= olen && res->ndns < DHCP_MAX_DNS; j += 4)
				memcpy(&res->dns[res->ndns++], p + i + 2 + j, 4);
			break;
		case OPT_DOMAIN: {
			size_t have = strlen(res->domain);

			/* RFC 3396: split long options concatenate. */
			if (have + olen >= sizeof(res->domain) ||
			    memchr(p + i + 2, '\0', olen) != NULL) {
				/* Some servers NUL-terminate: allow one at the end. */
				if (olen > 0 && p[i + 2 + olen - 1] == '\0' &&
				    memchr(p + i + 2, '\0', olen - 1U) == NULL &&
				    have + olen - 1 < sizeof(res->domain)) {
					memcpy(res->domain + have, p + i + 2, olen - 1U);
					res->domain[have + olen - 1] = '\0';
					break;
				}
				snprintf(err, errlen, "DHCPACK: option 15 (domain) "
				    "is too long or has a NUL byte");
				return -1;
			}
			memcpy(res->domain + have, p + i + 2, olen);
			res->domain[have + olen] = '\0';
			break;
		}
		case OPT_VIVSO:
			if (res->opt125_len + olen > sizeof(res->opt125)) {
				snprintf(err, errlen, "DHCPACK: option 125 longer "
				    "than %zu bytes", sizeof(res->opt125));
				return -1;
			}
			memcpy(res->opt125 + res->opt125_len, p + i + 2, olen);
			res->opt125_len += olen;
			break;
		default:
			break;
		}
		i += 2 + (size_t)olen;
	}
	return 0;
}

int
dhcp_parse_ack(const uint8_t *m, size_t len, uint32_t xid,
    const uint8_t chaddr[6], struct dhcp_inform_result *res,
    char *err, size_t errlen)
{
	uint32_t mx;
	int msgtype = 0, overload = 0;
	int attempts = res->attempts;

	if (len < BOOTP_HDR + 4 || m[0] != 2 || m[1] != 1 || m[2] != 6)
		return 1;
	mx = (uint32_t)m[4] << 24 | (uint32_t)m[5] << 16 |
	    (uint32_t)m[6] << 8 | m[7];
	if (mx != xid || memcmp(m + 28, chaddr, 6) != 0)
		return 1;
	if (memcmp(m + BOOTP_HDR, MAGIC, 4) != 0)
		return 1;
	memset(res, 0, sizeof(*res));
	res->attempts = attempts;
	if (read_options(m + BOOTP_HDR + 4, len - BOOTP_HDR - 4, res, &msgtype,
	    &overload, err, errlen) == -1)
		return -1;
	/* Option overload (RFC 2132 9.3): file, then sname, hold options. */
	if ((overload & 1) && read_options(m + 108, 128, res, &msgtype,
	    &overload, err, errlen) == -1)
		return -1;
	if ((overload & 2) && read_options(m + 44, 64, res, &msgtype,
	    &overload, err, errlen) == -1)
		return -1;
	if (msgtype == DHCPNAK) {
		snprintf(err, errlen, "the DHCP server answered DHCPNAK");
		return -1;
	}
	if (msgtype != DHCPACK)
		return 1;
	return 0;
}

static int
open_socket(const struct dhcp_inform_opts *o, char *err, size_t errlen)
{
	struct sockaddr_in sin;
	int s, on = 1;

	if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(s, SOL_SOCKET, SO_BROADCAST, &on, sizeof(on)) == -1 ||
	    setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, o->ifname,
	    (socklen_t)strlen(o->ifname) + 1) == -1) {
		snprintf(err, errlen, "%s: setsockopt: %s", o->ifname,
		    strerror(errno));
		close(s);
		return -1;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)(o->client_port > 0 ? o->client_port : 68));
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		snprintf(err, errlen, "bind to port %d: %s (needs root)",
		    ntohs(sin.sin_port), strerror(errno));
		close(s);
		return -1;
	}
	return s;
}

int
dhcp_inform(const struct dhcp_inform_opts *o, struct dhcp_inform_result *res,
    char *err, size_t errlen)
{
	uint8_t msg[576], buf[1500];
	struct sockaddr_in to;
	struct in_addr ciaddr;
	uint8_t mac[6];
	long long now, deadline, next_send;
	int s, wait_ms, total, rc = -1;
	uint32_t xid;
	size_t mlen;

	memset(res, 0, sizeof(*res));
	total = o->timeout_ms > 0 ? o->timeout_ms : 8000;
	wait_ms = o->first_wait_ms > 0 ? o->first_wait_ms : 1000;
	if ((s = open_socket(o, err, errlen)) == -1)
		return -1;
	if (iface_info(s, o->ifname, &ciaddr, mac, err, errlen) == -1)
		goto out;
	xid = arc4random();
	mlen = build_inform(msg, sizeof(msg), xid, ciaddr, mac, o->enterprise);
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_port = htons((uint16_t)(o->server_port > 0 ? o->server_port : 67));
	to.sin_addr.s_addr = htonl(INADDR_BROADCAST);
	if (monotonic_ms(&now) == -1) {
		snprintf(err, errlen, "clock_gettime: %s", strerror(errno));
		goto out;
	}
	deadline = now + total;
	next_send = now;
	for (;;) {
		struct pollfd pfd = { s, POLLIN, 0 };
		long long until;
		ssize_t n;
		int pr;

		if (monotonic_ms(&now) == -1) {
			snprintf(err, errlen, "clock_gettime: %s", strerror(errno));
			goto out;
		}
		if (now >= deadline) {
			snprintf(err, errlen, "%s: no DHCPACK to %d DHCPINFORM%s in "
			    "%d ms", o->ifname, res->attempts,
			    res->attempts == 1 ? "" : "s", total);
			goto out;
		}
		if (now >= next_send) {
			if (sendto(s, msg, mlen, 0, (struct sockaddr *)&to,
			    sizeof(to)) == -1) {
				snprintf(err, errlen, "%s: send DHCPINFORM: %s",
				    o->ifname, strerror(errno));
				goto out;
			}
			res->attempts++;
			next_send = now + wait_ms;
			if (wait_ms < 32000)
				wait_ms *= 2;
		}
		until = next_send < deadline ? next_send : deadline;
		pr = poll(&pfd, 1, (int)(until - now));
		if (pr == -1 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto out;
		}
		if (pr <= 0)
			continue;
		n = recv(s, buf, sizeof(buf), 0);
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(err, errlen, "recv: %s", strerror(errno));
			goto out;
		}
		switch (dhcp_parse_ack(buf, (size_t)n, xid, mac, res, err, errlen)) {
		case 0:
			rc = 0;
			goto out;
		case -1:
			goto out;
		default:
			break;	/* another client's message: keep waiting */
		}
	}
out:
	close(s);
	return rc;
}
