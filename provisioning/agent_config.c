/*
 * agent_config: parse iotca-agent's INI file with inih.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "agent_config.h"

struct parse_state {
	struct agent_config	*cfg;
	char			 err[256];
};

static int __attribute__((format(printf, 2, 3)))
bad(struct parse_state *st, const char *fmt, ...)
{
	va_list ap;

	if (st->err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(st->err, sizeof(st->err), fmt, ap);
		va_end(ap);
	}
	return 0;
}

static int
set_str(struct parse_state *st, char **dst, const char *name, const char *v)
{
	if (v[0] == '\0')
		return bad(st, "%s is empty", name);
	free(*dst);
	if ((*dst = strdup(v)) == NULL)
		return bad(st, "out of memory");
	return 1;
}

static int
set_path(struct parse_state *st, char **dst, const char *name, const char *v)
{
	if (v[0] != '/')
		return bad(st, "%s must be an absolute path", name);
	return set_str(st, dst, name, v);
}

static int
set_int(struct parse_state *st, int *dst, const char *name, const char *v,
    long lo, long hi)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi)
		return bad(st, "%s must be a number from %ld to %ld", name, lo, hi);
	*dst = (int)n;
	return 1;
}

static int
set_bool(struct parse_state *st, int *dst, const char *name, const char *v)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
		*dst = 1;
	else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
		*dst = 0;
	else
		return bad(st, "%s must be true or false", name);
	return 1;
}

/* A single DNS label of lower-case letters, digits and "-". */
static int
valid_label(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

static int
handler(void *user, const char *section, const char *name, const char *v)
{
	struct parse_state	*st = user;
	struct agent_config	*c = st->cfg;
	int			 n;

	if (st->err[0] != '\0')
		return 0;
	if (strcmp(section, "agent") != 0)
		return bad(st, "unknown section [%s]", section);
	if (strcmp(name, "state_dir") == 0)
		return set_path(st, &c->state_dir, name, v);
	if (strcmp(name, "interface") == 0) {
		if (strlen(v) >= 16 || strchr(v, '/') != NULL)
			return bad(st, "interface is not an interface name");
		return set_str(st, &c->interface, name, v);
	}
	if (strcmp(name, "vendor_prefix") == 0) {
		if (!valid_label(v, 20))
			return bad(st, "vendor_prefix must be lower-case letters "
			    "and digits");
		return set_str(st, &c->vendor_prefix, name, v);
	}
	if (strcmp(name, "device_id") == 0) {
		if (!valid_label(v, 63))
			return bad(st, "device_id must be one lower-case DNS label");
		return set_str(st, &c->device_id, name, v);
	}
	if (strcmp(name, "domain") == 0)
		return set_str(st, &c->domain, name, v);
	if (strcmp(name, "resolver") == 0)
		return set_str(st, &c->resolver, name, v);
	if (strcmp(name, "ssid") == 0)
		return set_str(st, &c->ssid, name, v);
	if (strcmp(name, "dhcp") == 0)
		return set_bool(st, &c->dhcp, name, v);
	if (strcmp(name, "dhcp_timeout") == 0)
		return set_int(st, &c->dhcp_timeout, name, v, 1, 120);
	if (strcmp(name, "dhcp_lease_file") == 0)
		return set_path(st, &c->dhcp_lease_file, name, v);
	if (strcmp(name, "enterprise") == 0) {
		if (!set_int(st, &n, name, v, 1, INT_MAX))
			return 0;
		c->enterprise = (uint32_t)n;
		return 1;
	}
	if (strcmp(name, "suboption") == 0)
		return set_int(st, &c->suboption, name, v, 1, 254);
	if (strcmp(name, "public") == 0)
		return set_bool(st, &c->public_network, name, v);
	if (strcmp(name, "http01_address") == 0)
		return set_str(st, &c->http01_address, name, v);
	if (strcmp(name, "http01_port") == 0)
		return set_int(st, &c->http01_port, name, v, 1, 65535);
	if (strcmp(name, "cert_file") == 0)
		return set_path(st, &c->cert_file, name, v);
	if (strcmp(name, "key_file") == 0)
		return set_path(st, &c->key_file, name, v);
	if (strcmp(name, "reload_command") == 0)
		return set_path(st, &c->reload_command, name, v);
	if (strcmp(name, "notify_command") == 0)
		return set_path(st, &c->notify_command, name, v);
	if (strcmp(name, "root_export") == 0)
		return set_path(st, &c->root_export, name, v);
	if (strcmp(name, "nss_db") == 0)
		return set_path(st, &c->nss_db, name, v);
	if (strcmp(name, "retry_seconds") == 0)
		return set_int(st, &c->retry_seconds, name, v, 1, 86400);
	if (strcmp(name, "approval_timeout") == 0)
		return set_int(st, &c->approval_timeout, name, v, 0, 30 * 86400);
	return bad(st, "unknown key %s", name);
}

void
agent_config_free(struct agent_config *c)
{
	free(c->state_dir);
	free(c->interface);
	free(c->vendor_prefix);
	free(c->device_id);
	free(c->domain);
	free(c->resolver);
	free(c->ssid);
	free(c->dhcp_lease_file);
	free(c->http01_address);
	free(c->cert_file);
	free(c->key_file);
	free(c->reload_command);
	free(c->notify_command);
	free(c->root_export);
	free(c->nss_db);
	memset(c, 0, sizeof(*c));
}

int
agent_config_load(const char *path, struct agent_config *c, char *err,
    size_t errlen)
{
	struct parse_state	st = { .cfg = c };
	int			line;

	memset(c, 0, sizeof(*c));
	c->dhcp = 1;
	c->dhcp_timeout = 6;
	c->enterprise = 55357u;
	c->suboption = 1;
	c->http01_port = 80;
	c->retry_seconds = 60;
	if ((c->state_dir = strdup("/var/lib/iotca-agent")) == NULL ||
	    (c->vendor_prefix = strdup("ex")) == NULL ||
	    (c->http01_address = strdup("0.0.0.0")) == NULL) {
		snprintf(err, errlen, "out of memory");
		agent_config_free(c);
		return -1;
	}
	line = ini_parse(path, handler, &st);
	if (line == -1)
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	else if (line == -2)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (line > 0)
		snprintf(err, errlen, "%s:%d: %s", path, line,
		    st.err[0] ? st.err : "syntax error");
	else if (c->interface == NULL)
		snprintf(err, errlen, "%s: [agent] interface is required", path);
	else
		return 0;
	agent_config_free(c);
	return -1;
}
