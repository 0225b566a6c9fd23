/*
 * est_config: parse iotca-est-ra's INI file with inih (see est_config.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confval.h"
#include "est_config.h"
#include "est_msg.h"
#include "policy.h"

struct parse_state {
	struct est_config	*cfg;
	struct confval		 cv;	/* once: a repeated key is refused */
};

#define bad(st, ...)	config_fail(&(st)->cv.e, __VA_ARGS__)

/* A lower-case DNS name, not .local. */
static int
set_domain(struct parse_state *st, char **dst, const char *name, const char *v)
{
	size_t i;

	for (i = 0; v[i] != '\0'; i++)
		if (isupper((unsigned char)v[i]))
			return bad(st, "%s must be in lower case", name);
	if (!est_valid_dns_name(v))
		return bad(st, "%s: %s is not a DNS name", name, v);
	if (policy_name_within(v, "local"))
		return bad(st, "%s: .local cannot be delegated (mDNS names "
		    "have no tree to prove)", name);
	return confval_str(&st->cv, dst, name, v);
}

/* "ADDR:PORT" or "[V6ADDR]:PORT". */
static int
add_listen(struct parse_state *st, const char *v)
{
	struct est_config *c = st->cfg;
	struct est_listen *l;
	char host[64];
	const char *colon, *h;
	size_t hl;
	long port;

	if (c->nlisten == EST_MAX_LISTEN)
		return bad(st, "at most %d listen addresses", EST_MAX_LISTEN);
	l = &c->listen[c->nlisten];
	if ((colon = strrchr(v, ':')) == NULL)
		return bad(st, "listen %s: ADDR:PORT or [V6ADDR]:PORT", v);
	h = v;
	hl = (size_t)(colon - v);
	if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') {
		h = v + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		return bad(st, "listen %s: ADDR:PORT or [V6ADDR]:PORT", v);
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (config_parse_long(colon + 1, 1, 65535, &port) == -1)
		return bad(st, "listen %s: the port must be 1 to 65535", v);
	memset(l, 0, sizeof(*l));
	if (h == v) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return bad(st, "listen %s: %s is not an IPv4 address "
			    "(IPv6 goes in brackets)", v, host);
		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)port);
		l->addrlen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return bad(st, "listen %s: %s is not an IPv6 address", v,
			    host);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)port);
		l->addrlen = sizeof(*sin6);
	}
	snprintf(l->text, sizeof(l->text), "%s", v);
	c->nlisten++;
	return 1;
}

static int
est_key(struct parse_state *st, const char *name, const char *v)
{
	struct est_config *c = st->cfg;

	if (strcmp(name, "listen") == 0)
		return add_listen(st, v);
	if (strcmp(name, "tls_cert") == 0)
		return confval_path(&st->cv, &c->tls_cert, name, v);
	if (strcmp(name, "tls_key") == 0)
		return confval_path(&st->cv, &c->tls_key, name, v);
	if (strcmp(name, "state_dir") == 0)
		return confval_path(&st->cv, &c->state_dir, name, v);
	if (strcmp(name, "credentials") == 0)
		return confval_path(&st->cv, &c->credentials, name, v);
	if (strcmp(name, "client_ca") == 0)
		return confval_path(&st->cv, &c->client_ca, name, v);
	if (strcmp(name, "require_client_cert") == 0)
		return confval_bool(&st->cv, &c->require_client_cert, name, v);
	if (strcmp(name, "retry_after") == 0)
		return confval_int(&st->cv, &c->retry_after, name, v, 1, 86400);
	if (strcmp(name, "enrol_wait") == 0)
		return confval_int(&st->cv, &c->enrol_wait, name, v, 0, 60);
	if (strcmp(name, "workers") == 0)
		return confval_int(&st->cv, &c->workers, name, v, 1, 64);
	if (strcmp(name, "max_body") == 0)
		return confval_long(&st->cv, &c->max_body, name, v, 1024,
		    1024 * 1024);
	return bad(st, "unknown key %s in [est]", name);
}

static int
acme_key(struct parse_state *st, const char *name, const char *v)
{
	struct est_config *c = st->cfg;

	if (strcmp(name, "directory") == 0) {
		if (strncmp(v, "https://", 8) != 0 || v[8] == '\0')
			return bad(st, "directory must be an https:// URL");
		return confval_str(&st->cv, &c->directory, name, v);
	}
	if (strcmp(name, "ca_file") == 0)
		return confval_path(&st->cv, &c->ca_file, name, v);
	if (strcmp(name, "subtree") == 0)
		return set_domain(st, &c->subtree, name, v);
	return bad(st, "unknown key %s in [acme]", name);
}

static int
dns_key(struct parse_state *st, const char *name, const char *v)
{
	struct est_config *c = st->cfg;

	if (strcmp(name, "server") == 0) {
		if (strchr(v, ' ') != NULL)
			return bad(st, "server must be ADDR[:PORT]");
		return confval_str(&st->cv, &c->dns_server, name, v);
	}
	if (strcmp(name, "zone") == 0)
		return set_domain(st, &c->dns_zone, name, v);
	if (strcmp(name, "tsig_key") == 0)
		return confval_path(&st->cv, &c->tsig_key, name, v);
	return bad(st, "unknown key %s in [dns]", name);
}

/* Label names are one path segment that is not an operation's name. */
static int
valid_label_name(const char *s)
{
	static const char *ops[] = { "cacerts", "csrattrs", "simpleenroll",
	    "simplereenroll", "serverkeygen", "fullcmc" };
	size_t i, n = strlen(s);

	if (n == 0 || n > 63)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(s, ops[i]) == 0)
			return 0;
	return 1;
}

static struct est_label *
label_of(struct parse_state *st, const char *section)
{
	struct est_config *c = st->cfg;
	const char *name = section + strlen("label ");
	size_t i;

	for (i = 0; i < c->nlabels; i++)
		if (strcmp(c->labels[i].name, name) == 0)
			return &c->labels[i];
	if (!valid_label_name(name)) {
		bad(st, "[label %s]: a label is letters, digits, '-' and '_' "
		    "(up to 63) and not the name of an EST operation", name);
		return NULL;
	}
	if (c->nlabels == EST_MAX_LABELS) {
		bad(st, "at most %d labels", EST_MAX_LABELS);
		return NULL;
	}
	if ((c->labels[c->nlabels].name = strdup(name)) == NULL) {
		bad(st, "out of memory");
		return NULL;
	}
	c->labels[c->nlabels].require_client_cert = -1;
	return &c->labels[c->nlabels++];
}

static int
label_key(struct parse_state *st, const char *section, const char *name,
    const char *v)
{
	struct est_label *l;

	if ((l = label_of(st, section)) == NULL)
		return 0;
	if (strcmp(name, "subtree") == 0)
		return set_domain(st, &l->subtree, name, v);
	if (strcmp(name, "require_client_cert") == 0)
		return confval_bool(&st->cv, &l->require_client_cert, name, v);
	return bad(st, "unknown key %s in [%s]", name, section);
}

static int
handler(void *user, const char *section, const char *name, const char *v)
{
	struct parse_state *st = user;

	if (st->cv.e.failed)
		return 0;
	if (strcmp(section, "est") == 0)
		return est_key(st, name, v);
	if (strcmp(section, "acme") == 0)
		return acme_key(st, name, v);
	if (strcmp(section, "dns") == 0)
		return dns_key(st, name, v);
	if (strncmp(section, "label ", 6) == 0)
		return label_key(st, section, name, v);
	return bad(st, "unknown section [%s]", section);
}

void
est_config_free(struct est_config *c)
{
	size_t i;

	free(c->tls_cert);
	free(c->tls_key);
	free(c->state_dir);
	free(c->credentials);
	free(c->client_ca);
	free(c->directory);
	free(c->ca_file);
	free(c->subtree);
	free(c->dns_server);
	free(c->dns_zone);
	free(c->tsig_key);
	for (i = 0; i < c->nlabels; i++) {
		free(c->labels[i].name);
		free(c->labels[i].subtree);
	}
	memset(c, 0, sizeof(*c));
}

const struct est_label *
est_config_label(const struct est_config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nlabels; i++)
		if (strcmp(c->labels[i].name, name) == 0)
			return &c->labels[i];
	return NULL;
}

/* What only the whole file can tell. */
static int
check_whole(const struct est_config *c, const char *path, char *err,
    size_t errlen)
{
	static const struct {
		size_t		 off;
		const char	*what;
	} required[] = {
		{ offsetof(struct est_config, tls_cert), "[est] tls_cert" },
		{ offsetof(struct est_config, tls_key), "[est] tls_key" },
		{ offsetof(struct est_config, state_dir), "[est] state_dir" },
		{ offsetof(struct est_config, directory), "[acme] directory" },
		{ offsetof(struct est_config, ca_file), "[acme] ca_file" },
		{ offsetof(struct est_config, subtree), "[acme] subtree" },
		{ offsetof(struct est_config, dns_server), "[dns] server" },
		{ offsetof(struct est_config, dns_zone), "[dns] zone" },
		{ offsetof(struct est_config, tsig_key), "[dns] tsig_key" },
	};
	size_t i;

	if (c->nlisten == 0) {
		snprintf(err, errlen, "%s: [est] listen is required", path);
		return -1;
	}
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (*(char *const *)((const char *)c + required[i].off) == NULL) {
			snprintf(err, errlen, "%s: %s is required", path,
			    required[i].what);
			return -1;
		}
	if (!policy_name_within(c->subtree, c->dns_zone)) {
		snprintf(err, errlen, "%s: [acme] subtree %s is not within "
		    "[dns] zone %s (the dns-01 record goes in that zone)", path,
		    c->subtree, c->dns_zone);
		return -1;
	}
	if (c->credentials == NULL && c->client_ca == NULL &&
	    !c->require_client_cert) {
		snprintf(err, errlen, "%s: neither [est] credentials nor "
		    "client_ca: no client could authenticate to enrol", path);
		return -1;
	}
	for (i = 0; i < c->nlabels; i++) {
		const struct est_label *l = &c->labels[i];

		if (l->subtree == NULL) {
			snprintf(err, errlen, "%s: [label %s] subtree is required",
			    path, l->name);
			return -1;
		}
		if (!policy_name_within(l->subtree, c->subtree)) {
			snprintf(err, errlen, "%s: [label %s] subtree %s is not "
			    "within [acme] subtree %s", path, l->name,
			    l->subtree, c->subtree);
			return -1;
		}
	}
	return 0;
}

int
est_config_load(const char *path, struct est_config *c, char *err,
    size_t errlen)
{
	struct parse_state st = { .cfg = c, .cv.once = 1 };

	memset(c, 0, sizeof(*c));
	c->retry_after = 10;
	c->enrol_wait = 5;
	c->workers = 4;
	c->max_body = 16384;
	if (config_ini_parse(path, handler, &st, &st.cv.e, err, errlen) == 0 &&
	    check_whole(c, path, err, errlen) == 0)
		return 0;
	est_config_free(c);
	return -1;
}
