/*
 * discovery_conf: the [discovery] section and the ACME port (discovery_conf.h).
 */
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "discovery_conf.h"
#include "dnsupdate.h"

struct parse_state {
	struct disc_conf	*cfg;
	struct config_error	 e;
	char			*base_url;
	long			 listen_port;	/* first listen, 0 if none */
};

#define fail(st, ...)	config_fail(&(st)->e, __VA_ARGS__)

/* The port of an https://HOST[:PORT][/] URL: 443 unless given; -1 if bad. */
static long
url_port(const char *url)
{
	const char *host, *colon, *end;
	char buf[8];
	long port;

	if (strncmp(url, "https://", 8) != 0)
		return -1;
	host = url + 8;
	end = host + strcspn(host, "/");
	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (close == NULL)
			return -1;
		colon = close[1] == ':' ? close + 1 : NULL;
	} else
		colon = memchr(host, ':', (size_t)(end - host));
	if (colon == NULL)
		return 443;
	if ((size_t)(end - colon - 1) >= sizeof(buf) || end == colon + 1)
		return -1;
	memcpy(buf, colon + 1, (size_t)(end - colon - 1));
	buf[end - colon - 1] = '\0';
	if (config_parse_long(buf, 1, 65535, &port) == -1)
		return -1;
	return port;
}

static int
handle_discovery(struct parse_state *st, const char *name, const char *value)
{
	struct disc_conf *c = st->cfg;
	struct sockaddr_storage ss;
	unsigned int sslen;
	long v;

	if (strcmp(name, "enterprise") == 0) {
		if (config_parse_long(value, 1, 4294967295L, &v) == -1)
			return fail(st, "enterprise must be an IANA enterprise "
			    "number 1..4294967295");
		c->enterprise = (uint32_t)v;
		return 1;
	}
	if (strcmp(name, "suboption") == 0) {
		if (config_parse_long(value, 1, 254, &v) == -1)
			return fail(st, "suboption must be 1..254");
		c->suboption = (int)v;
		return 1;
	}
	if (strcmp(name, "ttl") == 0) {
		if (config_parse_long(value, 0, 604800, &v) == -1)
			return fail(st, "ttl must be 0..604800 seconds");
		c->ttl = (int)v;
		return 1;
	}
	if (strcmp(name, "dns_server") == 0) {
		if (dnsupdate_parse_server(value, 53, &ss, &sslen) == -1)
			return fail(st, "dns_server must be ADDR[:PORT] or "
			    "[V6ADDR]:PORT, not \"%s\"", value);
		return config_set_string(&st->e, &c->dns_server, value);
	}
	if (strcmp(name, "tsig_key_file") == 0)
		return config_set_path(&st->e, &c->tsig_key_file, name, value);
	if (strcmp(name, "zone") == 0) {
		size_t len = strlen(value);

		if (len > 253 || strspn(value, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != len ||
		    value[0] == '.' || strstr(value, "..") != NULL)
			return fail(st, "zone must be a domain name, not \"%s\"",
			    value);
		return config_set_string(&st->e, &c->zone, value);
	}
	return fail(st, "unknown key \"%s\" in [discovery]", name);
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;

	if (st->e.failed)
		return 1;
	if (strcmp(section, "acme") == 0) {
		/* Only what the announcement needs; iotca-acmed checks the rest. */
		if (value == NULL)
			return 1;
		if (strcmp(name, "base_url") == 0) {
			free(st->base_url);
			return (st->base_url = strdup(value)) != NULL ? 1 :
			    fail(st, "out of memory");
		}
		if (strcmp(name, "listen") == 0 && st->listen_port == 0) {
			const char *colon = strrchr(value, ':');
			long port;

			if (colon == NULL ||
			    config_parse_long(colon + 1, 1, 65535, &port) == -1)
				return fail(st, "listen must be ADDR:PORT, not "
				    "\"%s\"", value);
			st->listen_port = port;
		}
		return 1;
	}
	if (strcmp(section, "discovery") != 0)
		return 1;
	if (value == NULL || *value == '\0')
		return fail(st, "key \"%s\" has no value", name);
	return handle_discovery(st, name, value);
}

int
disc_conf_load(const char *path, struct disc_conf *c, char *err, size_t errlen)
{
	struct parse_state st;
	long port;

	memset(c, 0, sizeof(*c));
	memset(&st, 0, sizeof(st));
	st.cfg = c;
	c->enterprise = 55357;
	c->suboption = 1;
	c->ttl = 300;
	snprintf(c->path, sizeof(c->path), "/directory");
	if (config_ini_parse(path, handler, &st, &st.e, err, errlen) == -1) {
		free(st.base_url);
		disc_conf_free(c);
		return -1;
	}
	if (st.base_url != NULL) {
		if ((port = url_port(st.base_url)) == -1) {
			snprintf(err, errlen, "%s: [acme] base_url \"%s\" is not "
			    "https://HOST[:PORT]", path, st.base_url);
			free(st.base_url);
			disc_conf_free(c);
			return -1;
		}
		c->port = (int)port;
	} else
		c->port = st.listen_port != 0 ? (int)st.listen_port : 443;
	free(st.base_url);
	return 0;
}

void
disc_conf_free(struct disc_conf *c)
{
	free(c->dns_server);
	free(c->tsig_key_file);
	free(c->zone);
	memset(c, 0, sizeof(*c));
}
