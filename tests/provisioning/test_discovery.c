/*
 * Unit tests of provisioning/discovery, dhcpinform's message check and
 * dnsupdate's key reader: one test per refusal rule.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "dhcpinform.h"
#include "discovery.h"
#include "dnsupdate.h"

static char err[512];
static char name[DISC_NAME_MAX + 1];

/* enterprise(4) data-len(1) code(1) len(1) text */
static size_t
vivso(uint8_t *p, uint32_t ent, uint8_t code, const char *text, size_t tlen)
{
	p[0] = (uint8_t)(ent >> 24);
	p[1] = (uint8_t)(ent >> 16);
	p[2] = (uint8_t)(ent >> 8);
	p[3] = (uint8_t)ent;
	p[4] = (uint8_t)(tlen + 2);
	p[5] = code;
	p[6] = (uint8_t)tlen;
	memcpy(p + 7, text, tlen);
	return tlen + 7;
}

static int
parse(const uint8_t *p, size_t len)
{
	err[0] = '\0';
	return disc_parse_vivso(p, len, 55357, 1, name, err, sizeof(err));
}

static void
vivso_reference_bytes(void **state)
{
	/* REFERENCE: 7d 16 0000d83d 11 01 0f "iotca.corp.test" (payload) */
	static const uint8_t p[] = { 0x00, 0x00, 0xd8, 0x3d, 0x11, 0x01, 0x0f,
	    'i', 'o', 't', 'c', 'a', '.', 'c', 'o', 'r', 'p', '.', 't', 'e',
	    's', 't' };

	assert_int_equal(parse(p, sizeof(p)), 1);
	assert_string_equal(name, "iotca.corp.test");
}

static void
vivso_other_enterprise_first(void **state)
{
	uint8_t p[128];
	size_t n = vivso(p, 4491, 1, "cable.example", 13);

	n += vivso(p + n, 55357, 1, "ca.home.arpa", 12);
	assert_int_equal(parse(p, n), 1);
	assert_string_equal(name, "ca.home.arpa");
}

static void
vivso_suboption_second_and_case(void **state)
{
	uint8_t p[64] = { 0, 0, 0xd8, 0x3d, 0 };
	size_t n = 5;

	p[n++] = 7; p[n++] = 2; p[n++] = 'x'; p[n++] = 'y';
	p[n++] = 1; p[n++] = 12; memcpy(p + n, "CA.Home.ARPA", 12); n += 12;
	p[4] = (uint8_t)(n - 5);
	assert_int_equal(parse(p, n), 1);
	assert_string_equal(name, "ca.home.arpa");
}

static void
vivso_enterprise_length_past_end(void **state)
{
	uint8_t p[64];
	size_t n = vivso(p, 55357, 1, "ca.home.arpa", 12);

	p[4] = 40;	/* more than is there */
	assert_int_equal(parse(p, n), -1);
	assert_non_null(strstr(err, "past the end"));
}

static void
vivso_suboption_length_past_data(void **state)
{
	uint8_t p[64];
	size_t n = vivso(p, 55357, 1, "ca.home.arpa", 12);

	p[6] = 13;
	assert_int_equal(parse(p, n), -1);
	assert_non_null(strstr(err, "sub-option 1's length"));
}

static void
vivso_truncated_header(void **state)
{
	uint8_t p[64];
	size_t n = vivso(p, 55357, 1, "ca.home.arpa", 12);

	p[n++] = 0;
	p[n++] = 0;	/* two stray bytes: not a whole enterprise header */
	assert_int_equal(parse(p, n), -1);
	assert_non_null(strstr(err, "stray"));
}

static void
vivso_truncated_suboption(void **state)
{
	static const uint8_t p[] = { 0, 0, 0xd8, 0x3d, 1, 1 };

	assert_int_equal(parse(p, sizeof(p)), -1);
	assert_non_null(strstr(err, "truncated sub-option"));
}

static void
vivso_wrong_enterprise(void **state)
{
	uint8_t p[64];
	size_t n = vivso(p, 55358, 1, "ca.home.arpa", 12);

	assert_int_equal(parse(p, n), 0);
	assert_non_null(strstr(err, "no enterprise 55357"));
	assert_string_equal(name, "");
}

static void
vivso_wrong_suboption(void **state)
{
	uint8_t p[64];
	size_t n = vivso(p, 55357, 2, "ca.home.arpa", 12);

	assert_int_equal(parse(p, n), 0);
	assert_non_null(strstr(err, "no sub-option 1"));
}

static void
vivso_configured_numbers(void **state)
{
	uint8_t p[64];
	size_t n = vivso(p, 32473, 9, "ca.home.arpa", 12);

	assert_int_equal(disc_parse_vivso(p, n, 32473, 9, name, err,
	    sizeof(err)), 1);
	assert_string_equal(name, "ca.home.arpa");
}

static void
vivso_empty_name(void **state)
{
	uint8_t p[16];
	size_t n = vivso(p, 55357, 1, "", 0);

	assert_int_equal(parse(p, n), -1);
	assert_non_null(strstr(err, "empty"));
}

static void
vivso_empty_payload(void **state)
{
	uint8_t p[1] = { 0 };

	assert_int_equal(parse(p, 0), -1);
}

static void
vivso_embedded_nul(void **state)
{
	uint8_t p[64];
	size_t n = vivso(p, 55357, 1, "ca.home\0evil.test", 17);

	assert_int_equal(parse(p, n), -1);
	assert_non_null(strstr(err, "NUL"));
}

static void
vivso_not_a_hostname(void **state)
{
	static const char *const bad[] = { "ca home.arpa", "ca_1.home.arpa",
	    "-ca.home.arpa", "ca-.home.arpa", "ca..home.arpa", "ca.home.arpa.",
	    ".ca.home.arpa", "ca.home.arpa\n", "caf\xc3\xa9.home.arpa",
	    "https://ca.home.arpa", "ca" /* not fully qualified */ };
	uint8_t p[128];
	size_t i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = vivso(p, 55357, 1, bad[i], strlen(bad[i]));
		assert_int_equal(parse(p, n), -1);
		assert_non_null(strstr(err, "host name"));
		assert_null(strchr(err, '\n'));
	}
}

static void
vivso_overlong(void **state)
{
	char label[80], longname[260];
	uint8_t p[300];
	size_t n;

	/* A label of 64 bytes. */
	memset(label, 'a', 64);
	memcpy(label + 64, ".home.arpa", 11);
	n = vivso(p, 55357, 1, label, strlen(label));
	assert_int_equal(parse(p, n), -1);
	/* 253 bytes is the most a name has; it still fits the option. */
	memset(longname, 'b', 253);
	for (n = 63; n < 253; n += 64)
		longname[n] = '.';
	longname[253] = '\0';
	n = vivso(p, 55357, 1, longname, 253);
	assert_int_equal(parse(p, n), 1);
	assert_int_equal(strlen(name), 253);
}

static void
vivso_duplicate_suboption(void **state)
{
	uint8_t p[64] = { 0, 0, 0xd8, 0x3d, 0 };
	size_t n = 5;

	p[n++] = 1; p[n++] = 4; memcpy(p + n, "a.bc", 4); n += 4;
	p[n++] = 1; p[n++] = 4; memcpy(p + n, "d.ef", 4); n += 4;
	p[4] = (uint8_t)(n - 5);
	assert_int_equal(parse(p, n), -1);
	assert_non_null(strstr(err, "twice"));
}

static int
local4(const char *a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	assert_int_equal(inet_pton(AF_INET, a, &sin.sin_addr), 1);
	return disc_addr_is_local((struct sockaddr *)&sin);
}

static int
local6(const char *a)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	assert_int_equal(inet_pton(AF_INET6, a, &sin6.sin6_addr), 1);
	return disc_addr_is_local((struct sockaddr *)&sin6);
}

static void
addresses_local_and_public(void **state)
{
	assert_true(local4("10.77.0.1"));
	assert_true(local4("172.16.0.1"));
	assert_true(local4("172.31.255.254"));
	assert_true(local4("192.168.1.1"));
	assert_true(local4("127.0.0.1"));
	assert_true(local4("169.254.3.4"));
	assert_true(local4("100.64.0.1"));
	assert_false(local4("8.8.8.8"));
	assert_false(local4("172.32.0.1"));
	assert_false(local4("192.169.0.1"));
	assert_false(local4("100.128.0.1"));
	assert_false(local4("203.0.113.7"));
	assert_true(local6("::1"));
	assert_true(local6("fe80::1"));
	assert_true(local6("fd12:3456::1"));
	assert_true(local6("::ffff:10.1.2.3"));
	assert_false(local6("::ffff:8.8.8.8"));
	assert_false(local6("2001:db8::1"));
	assert_false(local6("2a00:1450::1"));
}

/* ---- DNS-SD answers, built with ldns as a server would send them ---- */

#define QNAME "_acme-server._tcp.home.arpa."

static uint8_t *
answer(const char *const *ans, const char *const *add, size_t *len)
{
	ldns_pkt *p = ldns_pkt_new();
	uint8_t *wire = NULL;
	ldns_rr *rr;

	assert_non_null(p);
	ldns_pkt_set_qr(p, true);
	for (; ans != NULL && *ans != NULL; ans++) {
		assert_int_equal(ldns_rr_new_frm_str(&rr, *ans, 60, NULL, NULL),
		    LDNS_STATUS_OK);
		assert_true(ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr));
	}
	for (; add != NULL && *add != NULL; add++) {
		assert_int_equal(ldns_rr_new_frm_str(&rr, *add, 60, NULL, NULL),
		    LDNS_STATUS_OK);
		assert_true(ldns_pkt_push_rr(p, LDNS_SECTION_ADDITIONAL, rr));
	}
	assert_int_equal(ldns_pkt2wire(&wire, p, len), LDNS_STATUS_OK);
	ldns_pkt_free(p);
	return wire;
}

static int
from_wire(const char *const *ans, const char *const *add, struct disc_server *s)
{
	size_t len;
	uint8_t *w = answer(ans, add, &len);
	int rc;

	err[0] = '\0';
	rc = disc_dnssd_from_wire(w, len, QNAME, s, err, sizeof(err));
	free(w);
	return rc;
}

static void
dnssd_srv_and_txt(void **state)
{
	static const char *const ans[] = {
	    QNAME " 60 IN SRV 0 0 8443 ca.home.arpa.",
	    QNAME " 60 IN TXT \"v=1\" \"path=/acme/dir\"", NULL };
	static const char *const add[] = { "ca.home.arpa. 60 IN A 10.77.0.1",
	    "ca.home.arpa. 60 IN AAAA fd00::1", NULL };
	struct disc_server s;

	assert_int_equal(from_wire(ans, add, &s), 1);
	assert_string_equal(s.name, "ca.home.arpa");
	assert_int_equal(s.port, 8443);
	assert_string_equal(s.path, "/acme/dir");
	assert_int_equal(s.naddrs, 2);
	assert_string_equal(s.source, "dns-sd");
}

static void
dnssd_default_path(void **state)
{
	static const char *const ans[] = { QNAME " 60 IN SRV 0 0 443 ca.home.arpa.", NULL };
	static const char *const add[] = { "ca.home.arpa. 60 IN A 192.168.1.1", NULL };
	struct disc_server s;

	assert_int_equal(from_wire(ans, add, &s), 1);
	assert_string_equal(s.path, "/directory");
}

static void
dnssd_priority_order(void **state)
{
	static const char *const ans[] = {
	    QNAME " 60 IN SRV 20 0 443 backup.home.arpa.",
	    QNAME " 60 IN SRV 10 5 443 primary.home.arpa.", NULL };
	static const char *const add[] = {
	    "backup.home.arpa. 60 IN A 10.0.0.2",
	    "primary.home.arpa. 60 IN A 10.0.0.1", NULL };
	struct disc_server s;
	int i;

	for (i = 0; i < 20; i++) {
		assert_int_equal(from_wire(ans, add, &s), 1);
		assert_string_equal(s.name, "primary.home.arpa");
	}
}

static void
dnssd_public_target_skipped_for_local(void **state)
{
	/* The preferred target is public: refused, the next one is taken. */
	static const char *const ans[] = {
	    QNAME " 60 IN SRV 0 0 443 cloud.example.com.",
	    QNAME " 60 IN SRV 5 0 443 ca.home.arpa.", NULL };
	static const char *const add[] = {
	    "cloud.example.com. 60 IN A 203.0.113.9",
	    "ca.home.arpa. 60 IN A 10.0.0.1", NULL };
	struct disc_server s;

	assert_int_equal(from_wire(ans, add, &s), 1);
	assert_string_equal(s.name, "ca.home.arpa");
}

static void
dnssd_public_address_refused(void **state)
{
	static const char *const ans[] = { QNAME " 60 IN SRV 0 0 443 ca.home.arpa.", NULL };
	static const char *const add[] = { "ca.home.arpa. 60 IN A 10.0.0.1",
	    "ca.home.arpa. 60 IN A 198.51.100.4", NULL };
	struct disc_server s;

	assert_int_equal(from_wire(ans, add, &s), -1);
	assert_non_null(strstr(err, "public address 198.51.100.4"));
}

static void
dnssd_root_target_refused(void **state)
{
	static const char *const ans[] = { QNAME " 60 IN SRV 0 0 443 .", NULL };
	struct disc_server s;

	assert_int_equal(from_wire(ans, NULL, &s), -1);
	assert_non_null(strstr(err, "target is \".\""));
}

static void
dnssd_no_address_refused(void **state)
{
	static const char *const ans[] = { QNAME " 60 IN SRV 0 0 443 ca.home.arpa.", NULL };
	struct disc_server s;

	assert_int_equal(from_wire(ans, NULL, &s), -1);
	assert_non_null(strstr(err, "no address"));
}

static void
dnssd_bad_txt_path_refused(void **state)
{
	static const char *const ans1[] = {
	    QNAME " 60 IN SRV 0 0 443 ca.home.arpa.",
	    QNAME " 60 IN TXT \"path=directory\"", NULL };
	static const char *const ans2[] = {
	    QNAME " 60 IN SRV 0 0 443 ca.home.arpa.",
	    QNAME " 60 IN TXT \"path=/dir ectory\"", NULL };
	static const char *const add[] = { "ca.home.arpa. 60 IN A 10.0.0.1", NULL };
	struct disc_server s;

	assert_int_equal(from_wire(ans1, add, &s), -1);
	assert_non_null(strstr(err, "not an absolute path"));
	assert_int_equal(from_wire(ans2, add, &s), -1);
	assert_non_null(strstr(err, "not allowed"));
}

static void
dnssd_none_and_other_owner(void **state)
{
	static const char *const ans[] = {
	    "_acme-server._tcp.other.test. 60 IN SRV 0 0 443 ca.home.arpa.", NULL };
	struct disc_server s;

	assert_int_equal(from_wire(NULL, NULL, &s), 0);
	assert_int_equal(from_wire(ans, NULL, &s), 0);
}

static void
mdns_names_refused(void **state)
{
	static const char *const ans[] = { QNAME " 60 IN SRV 0 0 443 ca.local.", NULL };
	static const char *const add[] = { "ca.local. 60 IN A 10.0.0.1", NULL };
	struct disc_resolver res = { "127.0.0.1:1", 100 };
	struct disc_server s;

	assert_int_equal(from_wire(ans, add, &s), -1);
	assert_non_null(strstr(err, "mDNS"));
	/* Refused before any packet is sent (port 1 would fail otherwise). */
	assert_int_equal(disc_dnssd(&res, "local", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "mDNS"));
	assert_int_equal(disc_dnssd(&res, "Home.LOCAL.", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "mDNS"));
	assert_int_equal(disc_resolve_name(&res, "ca.local", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "mDNS"));
	res.server = "224.0.0.251";
	assert_int_equal(disc_dnssd(&res, "home.arpa", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "never uses mDNS"));
	res.server = "10.0.0.1:5353";
	assert_int_equal(disc_dnssd(&res, "home.arpa", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "never uses mDNS"));
}

static void
dnssd_malformed_wire(void **state)
{
	static const uint8_t junk[] = { 0x12, 0x34, 0x81, 0x80, 0, 1, 0, 5 };
	struct disc_server s;

	assert_int_equal(disc_dnssd_from_wire(junk, sizeof(junk), QNAME, &s,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "malformed"));
}

/* ---- DHCPACK ---- */

static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };

static size_t
ack(uint8_t *m, uint32_t xid, uint8_t type, const uint8_t *opts, size_t olen)
{
	size_t o = 240;

	memset(m, 0, 576);
	m[0] = 2; m[1] = 1; m[2] = 6;
	m[4] = (uint8_t)(xid >> 24); m[5] = (uint8_t)(xid >> 16);
	m[6] = (uint8_t)(xid >> 8); m[7] = (uint8_t)xid;
	memcpy(m + 28, mac, 6);
	memcpy(m + 236, "\x63\x82\x53\x63", 4);
	m[o++] = 53; m[o++] = 1; m[o++] = type;
	if (olen > 0)
		memcpy(m + o, opts, olen);
	o += olen;
	m[o++] = 255;
	return o;
}

static void
dhcpack_options(void **state)
{
	uint8_t m[576], o[64];
	struct dhcp_inform_result r = { 0 };
	size_t n = 0;

	o[n++] = 15; o[n++] = 9; memcpy(o + n, "home.arpa", 9); n += 9;
	o[n++] = 6; o[n++] = 4; memcpy(o + n, "\x0a\x00\x00\x01", 4); n += 4;
	o[n++] = 125; o[n++] = 7; memcpy(o + n, "\x00\x00\xd8\x3d\x02\x01\x00", 7); n += 7;
	o[n++] = 125; o[n++] = 3; memcpy(o + n, "abc", 3); n += 3;	/* RFC 3396 */
	n = ack(m, 0x1234, 5, o, n);
	assert_int_equal(dhcp_parse_ack(m, n, 0x1234, mac, &r, err, sizeof(err)), 0);
	assert_string_equal(r.domain, "home.arpa");
	assert_int_equal(r.ndns, 1);
	assert_int_equal(r.opt125_len, 10);
	assert_memory_equal(r.opt125 + 7, "abc", 3);
}

static void
dhcpack_not_ours(void **state)
{
	uint8_t m[576];
	struct dhcp_inform_result r = { 0 };
	size_t n = ack(m, 0x1234, 5, NULL, 0);
	uint8_t other[6] = { 2, 0, 0, 0, 0, 2 };

	assert_int_equal(dhcp_parse_ack(m, n, 0x9999, mac, &r, err, sizeof(err)), 1);
	assert_int_equal(dhcp_parse_ack(m, n, 0x1234, other, &r, err, sizeof(err)), 1);
	n = ack(m, 0x1234, 2 /* OFFER */, NULL, 0);
	assert_int_equal(dhcp_parse_ack(m, n, 0x1234, mac, &r, err, sizeof(err)), 1);
	assert_int_equal(dhcp_parse_ack(m, 100, 0x1234, mac, &r, err, sizeof(err)), 1);
}

static void
dhcpack_option_past_end(void **state)
{
	uint8_t m[576], o[8] = { 125, 40, 0, 0, 0xd8, 0x3d };
	struct dhcp_inform_result r = { 0 };
	size_t n = ack(m, 7, 5, o, 6);

	n--;	/* drop the end option: 125 claims 40 bytes, 4 are there */
	assert_int_equal(dhcp_parse_ack(m, n, 7, mac, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "option 125 runs past"));
}

static void
dhcpack_nak(void **state)
{
	uint8_t m[576];
	struct dhcp_inform_result r = { 0 };
	size_t n = ack(m, 7, 6, NULL, 0);

	assert_int_equal(dhcp_parse_ack(m, n, 7, mac, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "DHCPNAK"));
}

static void
dhcpack_domain_with_nul(void **state)
{
	uint8_t m[576], o[16] = { 15, 6, 'a', '.', 0, 'b', 'c', 'd' };
	struct dhcp_inform_result r = { 0 };
	size_t n = ack(m, 7, 5, o, 8);

	assert_int_equal(dhcp_parse_ack(m, n, 7, mac, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "option 15"));
}

/* ---- TSIG key files ---- */

#define SECRET "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="

static void
key_bind_format(void **state)
{
	struct dnsupdate_key k;

	assert_int_equal(dnsupdate_key_parse(
	    "# made by tsig-keygen\nkey \"iotca-update\" {\n\talgorithm "
	    "hmac-sha256;\n\tsecret \"" SECRET "\";\n};\n", &k, err,
	    sizeof(err)), 0);
	assert_string_equal(k.name, "iotca-update.");
	assert_string_equal(k.algorithm, "hmac-sha256.");
	assert_string_equal(k.secret, SECRET);
	dnsupdate_key_clear(&k);
	assert_int_equal(k.secret[0], 0);
}

static void
key_one_line(void **state)
{
	struct dnsupdate_key k;

	assert_int_equal(dnsupdate_key_parse("ddns hmac-sha512 " SECRET "\n",
	    &k, err, sizeof(err)), 0);
	assert_string_equal(k.algorithm, "hmac-sha512.");
}

static void
key_refusals(void **state)
{
	struct dnsupdate_key k;

	assert_int_equal(dnsupdate_key_parse("ddns hmac-md5 " SECRET, &k, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "not supported"));
	assert_int_equal(dnsupdate_key_parse("ddns hmac-sha256 not*base64", &k,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "base64"));
	assert_null(strstr(err, "not*base64"));	/* no secret in errors */
	assert_int_equal(dnsupdate_key_parse("ddns hmac-sha256 c2hvcnQ=", &k,
	    err, sizeof(err)), -1);
	assert_int_equal(dnsupdate_key_parse("key \"k\" { algorithm "
	    "hmac-sha256; };", &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no secret"));
	assert_int_equal(dnsupdate_key_parse("key \"k\" { algorithm "
	    "hmac-sha256; secret \"" SECRET "\";", &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unterminated"));
	assert_int_equal(dnsupdate_key_parse("ddns hmac-sha256 " SECRET " x",
	    &k, err, sizeof(err)), -1);
	assert_int_equal(dnsupdate_key_parse("", &k, err, sizeof(err)), -1);
}

static void
key_file_mode(void **state)
{
	char path[] = "/tmp/test-dnsupdate-key-XXXXXX";
	struct dnsupdate_key k;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "ddns hmac-sha256 " SECRET "\n",
	    sizeof("ddns hmac-sha256 " SECRET "\n") - 1),
	    (ssize_t)sizeof("ddns hmac-sha256 " SECRET "\n") - 1);
	close(fd);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(dnsupdate_key_load(path, &k, err, sizeof(err)), 0);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(dnsupdate_key_load(path, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod 600"));
	unlink(path);
}

static void
update_names_outside_zone(void **state)
{
	struct dnsupdate *u = dnsupdate_new("home.arpa", err, sizeof(err));

	assert_non_null(u);
	assert_int_equal(dnsupdate_add(u, "x.other.test. 60 IN TXT \"a\"", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "outside the zone"));
	assert_int_equal(dnsupdate_delete_rrset(u, "x.other.test", "TXT", err,
	    sizeof(err)), -1);
	assert_int_equal(dnsupdate_add(u, "x.home.arpa. 60 IN BOGUS 1", err,
	    sizeof(err)), -1);
	assert_int_equal(dnsupdate_add(u, "x.home.arpa. 60 IN TXT \"a\"", err,
	    sizeof(err)), 0);
	assert_int_equal(dnsupdate_send(u, "not-an-address", NULL, 100, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "ADDR[:PORT]"));
	dnsupdate_free(u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vivso_reference_bytes),
		cmocka_unit_test(vivso_other_enterprise_first),
		cmocka_unit_test(vivso_suboption_second_and_case),
		cmocka_unit_test(vivso_enterprise_length_past_end),
		cmocka_unit_test(vivso_suboption_length_past_data),
		cmocka_unit_test(vivso_truncated_header),
		cmocka_unit_test(vivso_truncated_suboption),
		cmocka_unit_test(vivso_wrong_enterprise),
		cmocka_unit_test(vivso_wrong_suboption),
		cmocka_unit_test(vivso_configured_numbers),
		cmocka_unit_test(vivso_empty_name),
		cmocka_unit_test(vivso_empty_payload),
		cmocka_unit_test(vivso_embedded_nul),
		cmocka_unit_test(vivso_not_a_hostname),
		cmocka_unit_test(vivso_overlong),
		cmocka_unit_test(vivso_duplicate_suboption),
		cmocka_unit_test(addresses_local_and_public),
		cmocka_unit_test(dnssd_srv_and_txt),
		cmocka_unit_test(dnssd_default_path),
		cmocka_unit_test(dnssd_priority_order),
		cmocka_unit_test(dnssd_public_target_skipped_for_local),
		cmocka_unit_test(dnssd_public_address_refused),
		cmocka_unit_test(dnssd_root_target_refused),
		cmocka_unit_test(dnssd_no_address_refused),
		cmocka_unit_test(dnssd_bad_txt_path_refused),
		cmocka_unit_test(dnssd_none_and_other_owner),
		cmocka_unit_test(mdns_names_refused),
		cmocka_unit_test(dnssd_malformed_wire),
		cmocka_unit_test(dhcpack_options),
		cmocka_unit_test(dhcpack_not_ours),
		cmocka_unit_test(dhcpack_option_past_end),
		cmocka_unit_test(dhcpack_nak),
		cmocka_unit_test(dhcpack_domain_with_nul),
		cmocka_unit_test(key_bind_format),
		cmocka_unit_test(key_one_line),
		cmocka_unit_test(key_refusals),
		cmocka_unit_test(key_file_mode),
		cmocka_unit_test(update_names_outside_zone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
