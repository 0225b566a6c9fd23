/*
 * acmed_config: parse and check the [acme] section (see acmed_config.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "acmed_config.h"
#include "config.h"

struct parse_state {
	struct acme_config	*cfg;
	struct config_error	 e;	/* first error only */
};

/* The value parsers are the signer's config module's (config.h). */
#define fail(st, ...)	config_fail(&(st)->e, __VA_ARGS__)

int
acme_parse_hostport(const char *text, struct acme_listen *out)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *h;
	size_t hlen;
	long port;

	memset(out, 0, sizeof(*out));
	if (strlen(text) >= sizeof(out->text))
		return -1;
	snprintf(out->text, sizeof(out->text), "%s", text);
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		h = text + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		if ((colon = strrchr(text, ':')) == NULL)
			return -1;
		h = text;
		hlen = (size_t)(colon - text);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (config_parse_long(colon + 1, 1, 65535, &port) == -1)
		return -1;
	if (text[0] == '[') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->addrlen = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->addrlen = sizeof(*sin);
	}
	return 0;
}

/* https://HOST[:PORT] with nothing after but an optional "/" (we add paths). */
static int
valid_base_url(const char *v)
{
	size_t len = strlen(v);

	if (strncmp(v, "https://", 8) != 0 || len <= 8 || len > 200)
		return 0;
	if (strpbrk(v + 8, "?#@ \t") != NULL)
		return 0;
	return strchr(v + 8, '/') == NULL || strcmp(strchr(v + 8, '/'), "/") == 0;
}

/* The connection and rate limits: 1 taken, 0 refused, -1 not one of them. */
static int
handle_limits(struct parse_state *st, const char *name, const char *value)
{
	static const struct {
		const char	*name;
		long		 min, max;
		size_t		 off;
	} nums[] = {
		{ "max_connections", 16, 1000000,
		    offsetof(struct acme_config, max_connections) },
		{ "max_connections_per_address", 1, 1000000,
		    offsetof(struct acme_config, max_per_address) },
		{ "request_timeout", 1, 600,
		    offsetof(struct acme_config, request_timeout) },
		{ "threads", 1, 64, offsetof(struct acme_config, threads) },
		{ "workers", 1, 256, offsetof(struct acme_config, workers) },
		{ "ratelimit_slots", 64, 1L << 24,
		    offsetof(struct acme_config, ratelimit_slots) },
	};
	static const struct {
		const char	*name;
		size_t		 off;
	} rules[] = {
		{ "ratelimit_new_account",
		    offsetof(struct acme_config, rl_new_account) },
		{ "ratelimit_address", offsetof(struct acme_config, rl_address) },
		{ "ratelimit_account", offsetof(struct acme_config, rl_account) },
	};
	char *base = (char *)st->cfg;
	size_t i;
	long v;

	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (strcmp(name, nums[i].name) != 0)
			continue;
		if (config_parse_long(value, nums[i].min, nums[i].max, &v) == -1)
			return fail(st, "%s must be %ld..%ld", name,
			    nums[i].min, nums[i].max);
		*(unsigned int *)(base + nums[i].off) = (unsigned int)v;
		return 1;
	}
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		if (strcmp(name, rules[i].name) != 0)
			continue;
		if (ratelimit_parse_rule(value, (struct ratelimit_rule *)
		    (base + rules[i].off)) == -1)
			return fail(st, "%s must be BURST/SECONDS (e.g. 20/60) "
			    "or off, not \"%s\"", name, value);
		return 1;
	}
	return -1;
}

static int
handle_acme(struct parse_state *st, const char *name, const char *value)
{
	struct acme_config *c = st->cfg;
	long v;

	if (strcmp(name, "listen") == 0) {
		if (c->nlisten == ACME_MAX_LISTEN)
			return fail(st, "more than %d listen addresses", ACME_MAX_LISTEN);
		if (acme_parse_hostport(value, &c->listen[c->nlisten]) == -1)
			return fail(st, "listen must be ADDR:PORT or [V6ADDR]:PORT, "
			    "not \"%s\"", value);
		c->nlisten++;
		return 1;
	}
	if (strcmp(name, "http_listen") == 0) {
		if (c->nhttp_listen == ACME_MAX_LISTEN)
			return fail(st, "more than %d http_listen addresses",
			    ACME_MAX_LISTEN);
		if (acme_parse_hostport(value,
		    &c->http_listen[c->nhttp_listen]) == -1)
			return fail(st, "http_listen must be ADDR:PORT or "
			    "[V6ADDR]:PORT, not \"%s\"", value);
		c->nhttp_listen++;
		return 1;
	}
	if (strcmp(name, "base_url") == 0) {
		if (!valid_base_url(value))
			return fail(st, "base_url must be https://HOST[:PORT], "
			    "not \"%s\"", value);
		if (!config_set_string(&st->e, &c->base_url, value))
			return 0;
		/* Paths are appended to it: drop a trailing slash. */
		if (c->base_url[strlen(c->base_url) - 1] == '/')
			c->base_url[strlen(c->base_url) - 1] = '\0';
		return 1;
	}
	if (strcmp(name, "db") == 0)
		return config_set_path(&st->e, &c->db, name, value);
	if (strcmp(name, "hosts_file") == 0)
		return config_set_path(&st->e, &c->hosts_file, name, value);
	if (strcmp(name, "http01_port") == 0 || strcmp(name, "tlsalpn01_port") == 0) {
		if (config_parse_long(value, 1, 65535, &v) == -1)
			return fail(st, "%s must be a port 1..65535", name);
		*(name[0] == 'h' ? &c->http01_port : &c->tlsalpn01_port) = (int)v;
		return 1;
	}
	if (strcmp(name, "dns_server") == 0) {
		struct acme_listen probe;
		char withport[96];

		/* ADDR alone means port 53; a bare IPv6 ADDR has several colons. */
		if (value[0] == '[' || (strchr(value, ':') != NULL &&
		    strchr(value, ':') == strrchr(value, ':')))
			snprintf(withport, sizeof(withport), "%s", value);
		else if (strchr(value, ':') != NULL)
			snprintf(withport, sizeof(withport), "[%s]:53", value);
		else
			snprintf(withport, sizeof(withport), "%s:53", value);
		if (acme_parse_hostport(withport, &probe) == -1)
			return fail(st, "dns_server must be ADDR[:PORT], not \"%s\"", value);
		return config_set_string(&st->e, &c->dns_server, value);
	}
	if (strcmp(name, "order_lifetime") == 0) {
		if (config_parse_long(value, 60, 30L * 86400, &v) == -1)
			return fail(st, "order_lifetime must be 60..2592000 seconds");
		c->order_lifetime = v;
		return 1;
	}
	if (strcmp(name, "tos_url") == 0 || strcmp(name, "website") == 0) {
		if (strncmp(value, "https://", 8) != 0 && strncmp(value, "http://", 7) != 0)
			return fail(st, "%s must be an http(s) URL", name);
		return config_set_string(&st->e, name[0] == 't' ? &c->tos_url : &c->website, value);
	}
	if (handle_limits(st, name, value) != -1)
		return !st->e.failed;
	return fail(st, "unknown key \"%s\" in [acme]", name);
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;

	if (st->e.failed || strcmp(section, "acme") != 0)
		return 1;	/* other sections belong to config_load() */
	if (value == NULL || *value == '\0')
		return fail(st, "key \"%s\" has no value", name);
	return handle_acme(st, name, value);
}

/* base_url from the first listen address, as clients on this host reach it. */
static int
default_base_url(struct acme_config *c)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "https://%s", c->listen[0].text);
	return (c->base_url = strdup(buf)) == NULL ? -1 : 0;
}

int
acme_config_load(const char *path, struct acme_config *cfg, char *err,
    size_t errlen)
{
	struct parse_state st;

	memset(cfg, 0, sizeof(*cfg));
	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	cfg->http01_port = 80;
	cfg->tlsalpn01_port = 443;
	cfg->order_lifetime = 7L * 86400;
	cfg->max_connections = ACME_DEF_MAX_CONNECTIONS;
	cfg->max_per_address = ACME_DEF_MAX_PER_ADDRESS;
	cfg->request_timeout = ACME_DEF_REQUEST_TIMEOUT;
	cfg->threads = ACME_DEF_THREADS;
	cfg->workers = ACME_DEF_WORKERS;
	cfg->ratelimit_slots = ACME_DEF_RATELIMIT_SLOTS;
	if (ratelimit_parse_rule(ACME_DEF_RL_NEW_ACCOUNT, &cfg->rl_new_account) == -1 ||
	    ratelimit_parse_rule(ACME_DEF_RL_ADDRESS, &cfg->rl_address) == -1 ||
	    ratelimit_parse_rule(ACME_DEF_RL_ACCOUNT, &cfg->rl_account) == -1) {
		snprintf(err, errlen, "bad built-in rate limit");
		return -1;
	}

	if (config_ini_parse(path, handler, &st, &st.e, err, errlen) == -1)
		goto fail;
	/*
	 * With socket activation (iotca-acmed.socket) systemd hands over the
	 * listening sockets and "listen" may be left out; base_url then says
	 * how clients reach us, since no address of ours is known here.
	 */
	if (cfg->nlisten == 0 && cfg->base_url == NULL) {
		snprintf(err, errlen, "%s: missing [acme] listen (or base_url, "
		    "when systemd passes the sockets)", path);
		goto fail;
	}
	if (cfg->db == NULL) {
		snprintf(err, errlen, "%s: missing [acme] db", path);
		goto fail;
	}
	if (cfg->base_url == NULL && default_base_url(cfg) == -1) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	return 0;
fail:
	acme_config_free(cfg);
	return -1;
}

void
acme_config_free(struct acme_config *cfg)
{
	free(cfg->base_url);
	free(cfg->db);
	free(cfg->hosts_file);
	free(cfg->dns_server);
	free(cfg->tos_url);
	free(cfg->website);
	memset(cfg, 0, sizeof(*cfg));
}
