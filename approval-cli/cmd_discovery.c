/*
 * iotca discovery: what the network's DNS and DHCP servers must announce so
 * that devices find this ACME server (draft-sweet-iot-acme 3.3), ready to
 * paste, and with --update the DNS-SD records sent to the DNS server as an
 * RFC 2136 update signed with TSIG.
 *
 * DNS-SD records per domain D, for the server name N (N.D is the name in
 * the root's subjectAltName that devices check, draft 3.5):
 *
 *	_acme-server._tcp.D  PTR  N._acme-server._tcp.D	(RFC 6763 browsing)
 *	_acme-server._tcp.D  SRV  0 0 PORT N.D.		(the draft's record)
 *	_acme-server._tcp.D  TXT  "path=/directory"
 *	N._acme-server._tcp.D SRV 0 0 PORT N.D.		(the instance)
 *	N._acme-server._tcp.D TXT "path=/directory"
 *
 * The TXT key "path" is draft-tweedale-acme-discovery's.  Devices ask for
 * the SRV at the service name and follow the PTR only when there is none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cli.h"
#include "config.h"
#include "discovery_conf.h"
#include "dnsupdate.h"

#define SERVICE	"_acme-server._tcp"
#define NREC_MAX	(5 + CONFIG_MAX_LIST)

struct announce {
	const struct config	*cfg;
	const struct disc_conf	*dc;
	char			 fqdn[300];	/* of the first domain: DHCP */
};

/* The zone-file lines for one domain; each malloc'd; count in *n. */
static int
domain_records(const struct announce *a, const char *domain, char **rec,
    size_t *n)
{
	const char *name = a->cfg->name;
	int ttl = a->dc->ttl, port = a->dc->port;
	const char *path = a->dc->path;
	size_t i;

	*n = 0;
#define REC(...) do { if (asprintf(&rec[(*n)++], __VA_ARGS__) == -1) return -1; } while (0)
	REC("%s.%s. %d IN PTR %s.%s.%s.", SERVICE, domain, ttl, name, SERVICE, domain);
	REC("%s.%s. %d IN SRV 0 0 %d %s.%s.", SERVICE, domain, ttl, port, name, domain);
	REC("%s.%s. %d IN TXT \"path=%s\"", SERVICE, domain, ttl, path);
	REC("%s.%s.%s. %d IN SRV 0 0 %d %s.%s.", name, SERVICE, domain, ttl, port,
	    name, domain);
	REC("%s.%s.%s. %d IN TXT \"path=%s\"", name, SERVICE, domain, ttl, path);
	for (i = 0; i < a->cfg->nips; i++)
		REC("%s.%s. %d IN %s %s", name, domain, ttl,
		    strchr(a->cfg->ips[i], ':') != NULL ? "AAAA" : "A",
		    a->cfg->ips[i]);
#undef REC
	return 0;
}

static void
free_records(char **rec, size_t n)
{
	while (n > 0)
		free(rec[--n]);
}

/* What the update first removes, so a re-run replaces rather than adds. */
static int
domain_deletes(const struct announce *a, const char *domain, char **del,
    size_t *n)
{
	const char *name = a->cfg->name;

	*n = 0;
#define DEL(...) do { if (asprintf(&del[(*n)++], __VA_ARGS__) == -1) return -1; } while (0)
	/* Only our PTR: other servers' instances stay. */
	DEL("%s.%s. PTR %s.%s.%s.", SERVICE, domain, name, SERVICE, domain);
	DEL("%s.%s. SRV", SERVICE, domain);
	DEL("%s.%s. TXT", SERVICE, domain);
	DEL("%s.%s.%s. SRV", name, SERVICE, domain);
	DEL("%s.%s.%s. TXT", name, SERVICE, domain);
	if (a->cfg->nips > 0) {
		DEL("%s.%s. A", name, domain);
		DEL("%s.%s. AAAA", name, domain);
	}
#undef DEL
	return 0;
}

/* The configured zone where domain is in it, else the domain itself. */
static const char *
zone_of(const struct announce *a, const char *domain)
{
	const char *z = a->dc->zone;
	size_t dl = strlen(domain), zl;

	if (z == NULL)
		return domain;
	zl = strlen(z);
	if (strcasecmp(domain, z) == 0 || (dl > zl + 1 &&
	    domain[dl - zl - 1] == '.' && strcasecmp(domain + dl - zl, z) == 0))
		return z;
	return domain;
}

/* The option 125 payload (enterprise, data length, sub-option); length or -1. */
static int
option125(const struct announce *a, uint8_t *p, size_t cap)
{
	size_t len = strlen(a->fqdn);
	uint32_t e = a->dc->enterprise;

	if (len > 255 - 7 || cap < len + 7)
		return -1;
	p[0] = (uint8_t)(e >> 24);
	p[1] = (uint8_t)(e >> 16);
	p[2] = (uint8_t)(e >> 8);
	p[3] = (uint8_t)e;
	p[4] = (uint8_t)(len + 2);
	p[5] = (uint8_t)a->dc->suboption;
	p[6] = (uint8_t)len;
	memcpy(p + 7, a->fqdn, len);
	return (int)(len + 7);
}

static char *
hex(const uint8_t *p, size_t n)
{
	char *s = malloc(n * 3 + 1);
	size_t i;

	if (s == NULL)
		return NULL;
	s[0] = '\0';
	for (i = 0; i < n; i++)
		snprintf(s + (i ? i * 3 - 1 : 0), 4, "%s%02x", i ? " " : "", p[i]);
	return s;
}

static char *
dnsmasq_line(const struct announce *a)
{
	char *s;

	if (asprintf(&s, "dhcp-option=vi-encap:%u,%d,\"%s\"", a->dc->enterprise,
	    a->dc->suboption, a->fqdn) == -1)
		return NULL;
	return s;
}

static json_t *
kea_dhcp4(const struct announce *a)
{
	char space[32], data[16];

	snprintf(space, sizeof(space), "vendor-%u", a->dc->enterprise);
	snprintf(data, sizeof(data), "%u", a->dc->enterprise);
	return json_pack("{s:{s:[{s:s,s:i,s:s,s:s}],s:[{s:s,s:s},{s:s,s:s,s:s,s:b}]}}",
	    "Dhcp4",
	    "option-def",
	    "name", "acme-server", "code", a->dc->suboption, "space", space,
	    "type", "string",
	    "option-data",
	    "name", "vivso-suboptions", "data", data,
	    "name", "acme-server", "space", space, "data", a->fqdn,
	    "always-send", 1);
}

static char *
nsupdate_script(const struct announce *a, const char *domain)
{
	char *rec[NREC_MAX], *del[NREC_MAX];
	size_t nrec = 0, ndel = 0, i;
	char *out = NULL;
	size_t outlen = 0;
	FILE *f;

	if (domain_records(a, domain, rec, &nrec) == -1 ||
	    domain_deletes(a, domain, del, &ndel) == -1 ||
	    (f = open_memstream(&out, &outlen)) == NULL) {
		free_records(rec, nrec);
		free_records(del, ndel);
		return NULL;
	}
	if (a->dc->dns_server != NULL) {
		const char *s = a->dc->dns_server, *colon = strrchr(s, ':');

		/* nsupdate wants "server ADDR PORT". */
		if (s[0] == '[')
			fprintf(f, "server %.*s %s\n", (int)(strchr(s, ']') - s - 1),
			    s + 1, colon > strchr(s, ']') ? colon + 1 : "53");
		else if (colon != NULL && strchr(s, ':') == colon)
			fprintf(f, "server %.*s %s\n", (int)(colon - s), s, colon + 1);
		else
			fprintf(f, "server %s\n", s);
	}
	fprintf(f, "zone %s.\n", zone_of(a, domain));
	for (i = 0; i < ndel; i++)
		fprintf(f, "update delete %s\n", del[i]);
	for (i = 0; i < nrec; i++)
		fprintf(f, "update add %s\n", rec[i]);
	fprintf(f, "send\n");
	free_records(rec, nrec);
	free_records(del, ndel);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static json_t *
describe(const struct announce *a)
{
	uint8_t opt[260], v6[264];
	char *h125 = NULL, *h17 = NULL, *dm = NULL;
	json_t *j, *doms, *d, *recs;
	size_t i, k, nrec;
	char *rec[NREC_MAX];
	int n;

	if ((n = option125(a, opt, sizeof(opt))) == -1)
		return NULL;
	/* DHCPv6 option 17: 16-bit code and length, enterprise, then
	 * sub-options with 16-bit code and length (RFC 8415 21.17). */
	v6[0] = 0;
	v6[1] = 17;
	v6[2] = 0;
	v6[3] = (uint8_t)(8 + opt[6]);
	memcpy(v6 + 4, opt, 4);
	v6[8] = 0;
	v6[9] = (uint8_t)a->dc->suboption;
	v6[10] = 0;
	v6[11] = opt[6];
	memcpy(v6 + 12, opt + 7, opt[6]);
	{
		uint8_t full[262];

		full[0] = 125;
		full[1] = (uint8_t)n;
		memcpy(full + 2, opt, (size_t)n);
		h125 = hex(full, (size_t)n + 2);
	}
	h17 = hex(v6, (size_t)12 + opt[6]);
	dm = dnsmasq_line(a);
	j = json_pack("{s:s,s:s,s:i,s:s,s:[],s:{s:I,s:i,s:s,s:s*,s:s*,s:s*,s:o}}",
	    "name", a->cfg->name, "fqdn", a->fqdn, "port", a->dc->port,
	    "path", a->dc->path, "domains",
	    "dhcp", "enterprise", (json_int_t)a->dc->enterprise,
	    "suboption", a->dc->suboption, "text", a->fqdn,
	    "option125_hex", h125, "option17_hex", h17, "dnsmasq", dm,
	    "kea", kea_dhcp4(a));
	free(h125);
	free(h17);
	free(dm);
	if (j == NULL)
		return NULL;
	doms = json_object_get(j, "domains");
	for (i = 0; i < a->cfg->ndomains; i++) {
		const char *dom = a->cfg->domains[i];
		char *ns;

		if (domain_records(a, dom, rec, &nrec) == -1 ||
		    (recs = json_array()) == NULL) {
			free_records(rec, nrec);
			json_decref(j);
			return NULL;
		}
		for (k = 0; k < nrec; k++)
			json_array_append_new(recs, json_string(rec[k]));
		free_records(rec, nrec);
		ns = nsupdate_script(a, dom);
		d = json_pack("{s:s,s:s,s:s,s:o,s:s*}", "domain", dom,
		    "zone", zone_of(a, dom), "service", SERVICE, "records", recs,
		    "nsupdate", ns);
		free(ns);
		if (d == NULL || json_array_append_new(doms, d) == -1) {
			json_decref(j);
			return NULL;
		}
	}
	return j;
}

static void
print_text(const json_t *j)
{
	const json_t *dhcp = json_object_get(j, "dhcp"), *d, *r;
	char *kea;
	size_t i, k;

	printf("; ACME server %s, directory https://%s:%lld%s\n",
	    json_string_value(json_object_get(j, "fqdn")),
	    json_string_value(json_object_get(j, "fqdn")),
	    (long long)json_integer_value(json_object_get(j, "port")),
	    json_string_value(json_object_get(j, "path")));
	json_array_foreach(json_object_get(j, "domains"), i, d) {
		printf("\n; DNS-SD (RFC 6763) over unicast DNS for %s: zone file lines\n",
		    json_string_value(json_object_get(d, "domain")));
		json_array_foreach(json_object_get(d, "records"), k, r)
			printf("%s\n", json_string_value(r));
		printf("\n; the same as a script for nsupdate -k KEYFILE\n%s",
		    json_string_value(json_object_get(d, "nsupdate")));
	}
	printf("\n# DHCPv4 option 125 / DHCPv6 option 17 (RFC 3925, RFC 8415): "
	    "enterprise %lld, sub-option %lld = \"%s\"\n",
	    (long long)json_integer_value(json_object_get(dhcp, "enterprise")),
	    (long long)json_integer_value(json_object_get(dhcp, "suboption")),
	    json_string_value(json_object_get(dhcp, "text")));
	printf("# DHCPv4 bytes: %s\n", json_string_value(json_object_get(dhcp, "option125_hex")));
	printf("# DHCPv6 bytes: %s\n", json_string_value(json_object_get(dhcp, "option17_hex")));
	printf("\n# dnsmasq.conf\n%s\n", json_string_value(json_object_get(dhcp, "dnsmasq")));
	kea = json_dumps(json_object_get(dhcp, "kea"), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("\n# kea-dhcp4.conf (merge into \"Dhcp4\")\n%s\n", kea ? kea : "{}");
	free(kea);
}

static int
publish(const struct announce *a)
{
	struct dnsupdate_key key;
	char err[512], *rec[NREC_MAX], *del[NREC_MAX];
	size_t nrec = 0, ndel = 0, i, k;
	int rc = 0;

	if (a->dc->dns_server == NULL || a->dc->tsig_key_file == NULL) {
		cli_error("--update needs dns_server and tsig_key_file in [discovery]");
		return 1;
	}
	if (dnsupdate_key_load(a->dc->tsig_key_file, &key, err, sizeof(err)) == -1) {
		cli_error("%s", err);
		return 1;
	}
	for (i = 0; i < a->cfg->ndomains && rc == 0; i++) {
		const char *dom = a->cfg->domains[i];
		struct dnsupdate *u;

		if ((u = dnsupdate_new(zone_of(a, dom), err, sizeof(err))) == NULL ||
		    domain_records(a, dom, rec, &nrec) == -1 ||
		    domain_deletes(a, dom, del, &ndel) == -1) {
			cli_error("%s", u == NULL ? err : "out of memory");
			rc = 1;
		}
		for (k = 0; rc == 0 && k < ndel; k++) {
			char *sp = strrchr(del[k], ' ');
			int r;

			/* "NAME TYPE" deletes the set, "NAME PTR DATA" one record. */
			if (strncmp(del[k] + strcspn(del[k], " "), " PTR ", 5) == 0) {
				char *line;

				if (asprintf(&line, "%.*s 0 IN PTR %s",
				    (int)strcspn(del[k], " "), del[k], sp + 1) == -1) {
					rc = 1;
					break;
				}
				r = dnsupdate_delete_rr(u, line, err, sizeof(err));
				free(line);
			} else {
				*sp = '\0';
				r = dnsupdate_delete_rrset(u, del[k], sp + 1, err,
				    sizeof(err));
				*sp = ' ';
			}
			if (r == -1) {
				cli_error("%s", err);
				rc = 1;
			}
		}
		for (k = 0; rc == 0 && k < nrec; k++)
			if (dnsupdate_add(u, rec[k], err, sizeof(err)) == -1) {
				cli_error("%s", err);
				rc = 1;
			}
		if (rc == 0 && dnsupdate_send(u, a->dc->dns_server, &key, 0, err,
		    sizeof(err)) == -1) {
			cli_error("update of %s at %s: %s", zone_of(a, dom),
			    a->dc->dns_server, err);
			rc = 1;
		}
		if (rc == 0)
			printf("published %zu records for %s in zone %s at %s\n",
			    nrec, dom, zone_of(a, dom), a->dc->dns_server);
		free_records(rec, nrec);
		free_records(del, ndel);
		nrec = ndel = 0;
		dnsupdate_free(u);
	}
	dnsupdate_key_clear(&key);
	return rc;
}

int
cmd_discovery(struct cli *c)
{
	struct config cfg;
	struct disc_conf dc;
	struct announce a;
	char err[1024];
	json_t *j;
	int rc = 0;

	if (c->nargs != 0) {
		cli_error("usage: iotca discovery [--json] [--update]");
		return 2;
	}
	if (config_load(c->config, &cfg, err, sizeof(err)) == -1) {
		cli_error("%s", err);
		return 1;
	}
	if (disc_conf_load(c->config, &dc, err, sizeof(err)) == -1) {
		cli_error("%s", err);
		config_free(&cfg);
		return 1;
	}
	memset(&a, 0, sizeof(a));
	a.cfg = &cfg;
	a.dc = &dc;
	if (cfg.ndomains == 0) {
		cli_error("[ca] domains is empty: discovery needs a domain");
		rc = 1;
		goto out;
	}
	snprintf(a.fqdn, sizeof(a.fqdn), "%s.%s", cfg.name, cfg.domains[0]);
	if (c->update) {
		rc = publish(&a);
		goto out;
	}
	if ((j = describe(&a)) == NULL) {
		cli_error("cannot describe the announcement (name %s too long "
		    "for the DHCP option, or out of memory)", a.fqdn);
		rc = 1;
		goto out;
	}
	if (c->json)
		cli_print_json(j);
	else
		print_text(j);
	json_decref(j);
out:
	disc_conf_free(&dc);
	config_free(&cfg);
	return rc;
}
