/*
 * agent_config: parse iotca-agent's INI file with inih.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_config.h"
#include "confval.h"

struct parse_state {
	struct agent_config	*cfg;
	struct confval		 cv;	/* a key given twice: the last counts */
};

#define bad(st, ...)	config_fail(&(st)->cv.e, __VA_ARGS__)

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
	struct confval		*cv = &st->cv;
	int			 n;

	if (cv->e.failed)
		return 0;
	if (strcmp(section, "agent") != 0)
		return bad(st, "unknown section [%s]", section);
	if (strcmp(name, "state_dir") == 0)
		return confval_path(cv, &c->state_dir, name, v);
	if (strcmp(name, "interface") == 0) {
		if (strlen(v) >= 16 || strchr(v, '/') != NULL)
			return bad(st, "interface is not an interface name");
		return confval_str(cv, &c->interface, name, v);
	}
	if (strcmp(name, "vendor_prefix") == 0) {
		if (!valid_label(v, 20))
			return bad(st, "vendor_prefix must be lower-case letters "
			    "and digits");
		return confval_str(cv, &c->vendor_prefix, name, v);
	}
	if (strcmp(name, "device_id") == 0) {
		if (!valid_label(v, 63))
			return bad(st, "device_id must be one lower-case DNS label");
		return confval_str(cv, &c->device_id, name, v);
	}
	if (strcmp(name, "domain") == 0)
		return confval_str(cv, &c->domain, name, v);
	if (strcmp(name, "resolver") == 0)
		return confval_str(cv, &c->resolver, name, v);
	if (strcmp(name, "ssid") == 0)
		return confval_str(cv, &c->ssid, name, v);
	if (strcmp(name, "dhcp") == 0)
		return confval_bool(cv, &c->dhcp, name, v);
	if (strcmp(name, "dhcp_timeout") == 0)
		return confval_int(cv, &c->dhcp_timeout, name, v, 1, 120);
	if (strcmp(name, "dhcp_lease_file") == 0)
		return confval_path(cv, &c->dhcp_lease_file, name, v);
	if (strcmp(name, "enterprise") == 0) {
		if (!confval_int(cv, &n, name, v, 1, INT_MAX))
			return 0;
		c->enterprise = (uint32_t)n;
		return 1;
	}
	if (strcmp(name, "suboption") == 0)
		return confval_int(cv, &c->suboption, name, v, 1, 254);
	if (strcmp(name, "public") == 0)
		return confval_bool(cv, &c->public_network, name, v);
	if (strcmp(name, "http01_address") == 0)
		return confval_str(cv, &c->http01_address, name, v);
	if (strcmp(name, "http01_port") == 0)
		return confval_int(cv, &c->http01_port, name, v, 1, 65535);
	if (strcmp(name, "cert_file") == 0)
		return confval_path(cv, &c->cert_file, name, v);
	if (strcmp(name, "key_file") == 0)
		return confval_path(cv, &c->key_file, name, v);
	if (strcmp(name, "reload_command") == 0)
		return confval_path(cv, &c->reload_command, name, v);
	if (strcmp(name, "notify_command") == 0)
		return confval_path(cv, &c->notify_command, name, v);
	if (strcmp(name, "root_export") == 0)
		return confval_path(cv, &c->root_export, name, v);
	if (strcmp(name, "nss_db") == 0)
		return confval_path(cv, &c->nss_db, name, v);
	if (strcmp(name, "retry_seconds") == 0)
		return confval_int(cv, &c->retry_seconds, name, v, 1, 86400);
	if (strcmp(name, "approval_timeout") == 0)
		return confval_int(cv, &c->approval_timeout, name, v, 0,
		    30 * 86400);
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
	if (config_ini_parse(path, handler, &st, &st.cv.e, err, errlen) == 0) {
		if (c->interface != NULL)
			return 0;
		snprintf(err, errlen, "%s: [agent] interface is required", path);
	}
	agent_config_free(c);
	return -1;
}
