/*
 * config: load and validate the iotca INI file (see config.h).
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"

struct parse_state {
	struct config		*cfg;
	struct config_error	 e;	/* first error only */
};

/*
 * [key] store and algorithm as the file names them.  config_key.c turns them
 * into the key store's own values in the signer; test_config checks that
 * the key store knows every name here.
 */
static const char *const key_stores[] = { "tpm2", "file", "provider", NULL };
static const char *const key_algs[] = {
	"ec-p384", "ec-p521", "rsa-3072", "rsa-4096", NULL
};

const char *
config_default_path(void)
{
	const char *p = getenv("IOTCA_CONFIG");

	return (p != NULL && *p != '\0') ? p : "/etc/iotca/iotca.conf";
}

/* Record the first error; returns 0, which is inih's "this line is bad". */
int
config_fail(struct config_error *e, const char *fmt, ...)
{
	va_list ap;

	if (!e->failed) {
		va_start(ap, fmt);
		vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
		va_end(ap);
	}
	e->failed = 1;
	return 0;
}

int
config_set_string(struct config_error *e, char **dst, const char *value)
{
	char *s = strdup(value);

	if (s == NULL)
		return config_fail(e, "out of memory");
	free(*dst);
	*dst = s;
	return 1;
}

int
config_set_path(struct config_error *e, char **dst, const char *key,
    const char *value)
{
	if (value[0] != '/')
		return config_fail(e, "%s must be an absolute path, not \"%s\"",
		    key, value);
	if (strlen(value) >= PATH_MAX)
		return config_fail(e, "%s is too long", key);
	return config_set_string(e, dst, value);
}

int
config_parse_long(const char *value, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int
config_ini_parse(const char *path,
    int (*handler)(void *, const char *, const char *, const char *),
    void *user, const struct config_error *e, char *err, size_t errlen)
{
	int line = ini_parse(path, handler, user);

	if (line == 0)
		return 0;
	if (line == -1)
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	else if (line == -2)
		snprintf(err, errlen, "%s: out of memory", path);
	else
		snprintf(err, errlen, "%s:%d: %s", path, line,
		    e->failed ? e->reason : "syntax error");
	return -1;
}

#define fail(st, ...)	config_fail(&(st)->e, __VA_ARGS__)

static int
parse_int(const char *value, int lo, int hi, int *out)
{
	long v;

	if (config_parse_long(value, lo, hi, &v) == -1)
		return -1;
	*out = (int)v;
	return 0;
}

static int
parse_bool(const char *value, int *out)
{
	if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 ||
	    strcmp(value, "1") == 0)
		*out = 1;
	else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
	    strcmp(value, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/*
 * Split a comma- or blank-separated list and hand each item to add().
 * Returns 0, or -1 after add() refused an item (its message already set).
 */
static int
for_each_item(const char *value, int (*add)(void *, const char *), void *arg)
{
	char item[256];
	const char *p = value;

	while (*p != '\0') {
		size_t n = 0;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		while (p[n] != '\0' && p[n] != ',' && !isspace((unsigned char)p[n]))
			n++;
		if (n >= sizeof(item))
			return -2;
		memcpy(item, p, n);
		item[n] = '\0';
		if (add(arg, item) == -1)
			return -1;
		p += n;
	}
	return 0;
}

struct strlist_arg {
	struct parse_state *st;
	char	**items;
	size_t	 *n;
	const char *key;
};

static int
add_string(void *varg, const char *item)
{
	struct strlist_arg *a = varg;

	if (*a->n == CONFIG_MAX_LIST) {
		fail(a->st, "too many entries in %s", a->key);
		return -1;
	}
	if ((a->items[*a->n] = strdup(item)) == NULL) {
		fail(a->st, "out of memory");
		return -1;
	}
	(*a->n)++;
	return 0;
}

/* A domain is lower-case LDH labels; we refuse ".local" itself and dots at the ends. */
static int
valid_domain(const char *d)
{
	size_t label = 0, len = strlen(d);

	if (len == 0 || len > 200 || d[0] == '.' || d[len - 1] == '.')
		return 0;
	for (; *d != '\0'; d++) {
		if (*d == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!(islower((unsigned char)*d) || isdigit((unsigned char)*d) ||
		    *d == '-') || ++label > 63)
			return 0;
	}
	return label > 0;
}

static int
valid_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (; *s != '\0'; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
		    *s == '-'))
			return 0;
	return 1;
}

struct idlist_arg {
	struct parse_state *st;
	struct idlist	*list;
	int		 groups;
	const char	*key;
};

static int
add_id(void *varg, const char *item)
{
	struct idlist_arg *a = varg;
	char *end;
	unsigned long v;
	unsigned int id;

	errno = 0;
	v = strtoul(item, &end, 10);
	if (*item != '\0' && *end == '\0' && errno == 0 && v < UINT_MAX) {
		id = (unsigned int)v;
	} else if (a->groups) {
		struct group *gr = getgrnam(item);

		if (gr == NULL) {
			fail(a->st, "%s: no such group \"%s\"", a->key, item);
			return -1;
		}
		id = gr->gr_gid;
	} else {
		struct passwd *pw = getpwnam(item);

		if (pw == NULL) {
			fail(a->st, "%s: no such user \"%s\"", a->key, item);
			return -1;
		}
		id = pw->pw_uid;
	}
	if (a->list->n == CONFIG_MAX_LIST) {
		fail(a->st, "too many entries in %s", a->key);
		return -1;
	}
	a->list->id[a->list->n++] = id;
	return 0;
}

static int
set_idlist(struct parse_state *st, struct idlist *list, int groups,
    const char *key, const char *value)
{
	struct idlist_arg a = { st, list, groups, key };

	list->n = 0;
	if (for_each_item(value, add_id, &a) != 0)
		return fail(st, "bad list in %s", key);
	return 1;
}

static int
handle_ca(struct parse_state *st, const char *name, const char *value)
{
	struct config *c = st->cfg;

	if (strcmp(name, "name") == 0) {
		if (!valid_label(value))
			return fail(st, "name must be one lower-case host label, not \"%s\"", value);
		return config_set_string(&st->e, &c->name, value);
	}
	if (strcmp(name, "domains") == 0) {
		struct strlist_arg a = { st, c->domains, &c->ndomains, "domains" };
		size_t i;

		if (c->ndomains != 0)
			return fail(st, "domains given twice");
		if (for_each_item(value, add_string, &a) != 0)
			return fail(st, "bad list in domains");
		for (i = 0; i < c->ndomains; i++) {
			if (!valid_domain(c->domains[i]) ||
			    strcmp(c->domains[i], "local") == 0)
				return fail(st, "domains: \"%s\" is not a lower-case domain name other than local",
				    c->domains[i]);
		}
		return 1;
	}
	if (strcmp(name, "ips") == 0) {
		struct strlist_arg a = { st, c->ips, &c->nips, "ips" };

		if (c->nips != 0)
			return fail(st, "ips given twice");
		if (for_each_item(value, add_string, &a) != 0)
			return fail(st, "bad list in ips");
		return 1;
	}
	if (strcmp(name, "root_years") == 0) {
		if (parse_int(value, 1, 10, &c->root_years) == -1)
			return fail(st, "root_years must be 1 to 10, not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "root_cert") == 0)
		return config_set_path(&st->e, &c->root_cert, "root_cert", value);
	if (strcmp(name, "publish_url") == 0) {
		/* Checked against name and domains once the file is read:
		 * they may come after it. */
		if (c->publish_url != NULL)
			return fail(st, "publish_url given twice");
		return config_set_string(&st->e, &c->publish_url, value);
	}
	return fail(st, "unknown key \"%s\" in [ca]", name);
}

/* The table's own copy of value, or NULL if it is not one of names. */
static const char *
one_of(const char *const *names, const char *value)
{
	for (; *names != NULL; names++)
		if (strcmp(*names, value) == 0)
			return *names;
	return NULL;
}

static int
handle_key(struct parse_state *st, const char *name, const char *value)
{
	struct config *c = st->cfg;

	if (strcmp(name, "store") == 0) {
		if ((c->key_store = one_of(key_stores, value)) == NULL)
			return fail(st, "store must be tpm2, file or provider, not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "algorithm") == 0) {
		if ((c->key_alg = one_of(key_algs, value)) == NULL)
			return fail(st, "algorithm must be ec-p384, ec-p521, rsa-3072 or rsa-4096, not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "path") == 0 || strcmp(name, "uri") == 0) {
		if (strcmp(name, "path") == 0 && value[0] != '/')
			return fail(st, "path must be absolute, not \"%s\"", value);
		return config_set_string(&st->e, &c->key, value);
	}
	if (strcmp(name, "tcti") == 0)
		return config_set_string(&st->e, &c->tcti, value);
	if (strcmp(name, "owner_auth_file") == 0)
		return config_set_path(&st->e, &c->owner_auth_file, name, value);
	if (strcmp(name, "parent") == 0) {
		char *end;
		unsigned long h;

		errno = 0;
		h = strtoul(value, &end, 16);
		/* TPM2_PERSISTENT_FIRST .. LAST: an evicted (persistent) key */
		if (errno != 0 || *end != '\0' || strncmp(value, "0x", 2) != 0 ||
		    h < 0x81000000UL || h > 0x81ffffffUL)
			return fail(st, "parent must be a persistent handle, "
			    "0x81000000 to 0x81ffffff, not \"%s\"", value);
		c->key_parent = (uint32_t)h;
		return 1;
	}
	if (strcmp(name, "provider") == 0)
		return config_set_string(&st->e, &c->provider, value);
	return fail(st, "unknown key \"%s\" in [key]", name);
}

static int
handle_signer(struct parse_state *st, const char *name, const char *value)
{
	struct config *c = st->cfg;

	if (strcmp(name, "db") == 0)
		return config_set_path(&st->e, &c->db, "db", value);
	if (strcmp(name, "socket") == 0)
		return config_set_path(&st->e, &c->signer_socket, "socket", value);
	if (strcmp(name, "admin_socket") == 0)
		return config_set_path(&st->e, &c->admin_socket, "admin_socket", value);
	if (strcmp(name, "frontend_users") == 0)
		return set_idlist(st, &c->frontend_uids, 0, name, value);
	if (strcmp(name, "frontend_groups") == 0)
		return set_idlist(st, &c->frontend_gids, 1, name, value);
	if (strcmp(name, "admin_users") == 0)
		return set_idlist(st, &c->admin_uids, 0, name, value);
	if (strcmp(name, "admin_groups") == 0)
		return set_idlist(st, &c->admin_gids, 1, name, value);
	if (strcmp(name, "frontend_connections") == 0) {
		if (parse_int(value, 1, 768, &c->frontend_connections) == -1)
			return fail(st, "frontend_connections must be 1 to 768, not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "admin_connections") == 0) {
		if (parse_int(value, 1, 64, &c->admin_connections) == -1)
			return fail(st, "admin_connections must be 1 to 64, not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "idle_timeout") == 0) {
		if (parse_int(value, 1, 3600, &c->idle_timeout) == -1)
			return fail(st, "idle_timeout must be 1 to 3600 seconds, not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "socket_group") == 0) {
		if (getgrnam(value) == NULL)
			return fail(st, "socket_group: no such group \"%s\"", value);
		return config_set_string(&st->e, &c->socket_group, value);
	}
	return fail(st, "unknown key \"%s\" in [signer]", name);
}

static int
handle_policy(struct parse_state *st, const char *name, const char *value)
{
	struct config *c = st->cfg;

	if (strcmp(name, "max_days") == 0) {
		if (parse_int(value, 1, 90, &c->max_days) == -1)
			return fail(st, "max_days must be 1 to 90, not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "strict_cn") == 0) {
		if (parse_bool(value, &c->strict_cn) == -1)
			return fail(st, "strict_cn must be true or false, not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "crl_days") == 0) {
		if (parse_int(value, 1, 90, &c->crl_days) == -1)
			return fail(st, "crl_days must be 1 to 90, not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "auto_approve") == 0) {
		if (parse_bool(value, &c->auto_approve) == -1)
			return fail(st, "auto_approve must be true or false, not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "approve_delegated_devices") == 0) {
		if (parse_bool(value, &c->approve_delegated_devices) == -1)
			return fail(st, "approve_delegated_devices must be true "
			    "or false, not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "notify_command") == 0) {
		/* Run without a shell: a path, not a command line. */
		if (value[0] == '\0')
			return 1;
		return config_set_path(&st->e, &c->notify_command, name, value);
	}
	return fail(st, "unknown key \"%s\" in [policy]", name);
}

static int
handle_audit(struct parse_state *st, const char *name, const char *value)
{
	struct config *c = st->cfg;
	char *end;
	unsigned long v;

	if (strcmp(name, "key") == 0)
		return config_set_path(&st->e, &c->audit_key, "key", value);
	if (strcmp(name, "hmac_key") == 0)
		return config_set_path(&st->e, &c->audit_hmac, "hmac_key", value);
	if (strcmp(name, "counter") == 0)
		return config_set_path(&st->e, &c->audit_counter, "counter", value);
	if (strcmp(name, "nv_index") == 0) {
		/* The owner's range of NV indices (TPM 2.0 Part 2, 13.1). */
		errno = 0;
		v = strtoul(value, &end, 0);
		if (errno != 0 || end == value || *end != '\0' ||
		    v < 0x01000000UL || v > 0x01bfffffUL)
			return fail(st, "nv_index must be an NV index from "
			    "0x01000000 to 0x01bfffff, not \"%s\"", value);
		c->audit_nv_index = (unsigned int)v;
		return 1;
	}
	if (strcmp(name, "checkpoint_records") == 0) {
		if (parse_int(value, 1, 1000000, &c->audit_checkpoint_records) == -1)
			return fail(st, "checkpoint_records must be 1 to 1000000, "
			    "not \"%s\"", value);
		return 1;
	}
	if (strcmp(name, "checkpoint_minutes") == 0) {
		if (parse_int(value, 1, 1440, &c->audit_checkpoint_minutes) == -1)
			return fail(st, "checkpoint_minutes must be 1 to 1440, "
			    "not \"%s\"", value);
		return 1;
	}
	return fail(st, "unknown key \"%s\" in [audit]", name);
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;

	if (st->e.failed)
		return 1;	/* keep the first error's line */
	if (value == NULL || *value == '\0')
		return fail(st, "key \"%s\" has no value", name);
	if (strcmp(section, "ca") == 0)
		return handle_ca(st, name, value);
	if (strcmp(section, "key") == 0)
		return handle_key(st, name, value);
	if (strcmp(section, "signer") == 0)
		return handle_signer(st, name, value);
	if (strcmp(section, "policy") == 0)
		return handle_policy(st, name, value);
	if (strcmp(section, "audit") == 0)
		return handle_audit(st, name, value);
	/* Other programs' sections are theirs to check. */
	if (strcmp(section, "acme") == 0 || strcmp(section, "est") == 0 ||
	    strcmp(section, "discovery") == 0)
		return 1;
	return fail(st, "unknown section [%s]", section);
}

static const char *
missing_key(const struct config *c)
{
	if (c->name == NULL)
		return "[ca] name";
	if (c->ndomains == 0)
		return "[ca] domains";
	if (c->root_cert == NULL)
		return "[ca] root_cert";
	if (c->key == NULL)
		return "[key] path (or uri)";
	if (c->db == NULL)
		return "[signer] db";
	if (c->signer_socket == NULL)
		return "[signer] socket";
	if (c->admin_socket == NULL)
		return "[signer] admin_socket";
	if (strcmp(c->key_store, "provider") == 0 && c->provider == NULL)
		return "[key] provider";
	return NULL;
}

/* A default path beside signer.db, unless [audit] named one. */
static int
beside_db(const struct config *c, char **dst, const char *name)
{
	const char *slash = strrchr(c->db, '/');
	int dirlen = (int)(slash - c->db);

	if (*dst != NULL)
		return 0;
	return asprintf(dst, "%.*s/%s", dirlen, c->db, name) == -1 ? -1 : 0;
}

/* The audit log's files: in the TPM's keeping with store = tpm2, plain
 * files otherwise. */
static int
audit_defaults(struct config *c)
{
	int tpm = strcmp(c->key_store, "tpm2") == 0;

	return beside_db(c, &c->audit_key, tpm ? "audit-key.tss" :
	    "audit-key.pem") == -1 || beside_db(c, &c->audit_hmac, tpm ?
	    "audit-hmac.sealed" : "audit-hmac.key") == -1 ||
	    beside_db(c, &c->audit_counter, "audit-counter") == -1 ? -1 : 0;
}

/* http://<name>.<first domain>, when [ca] publish_url is not given. */
static int
publish_default(struct config *c)
{
	if (c->publish_url != NULL)
		return 0;
	return asprintf(&c->publish_url, "http://%s.%s", c->name,
	    c->domains[0]) == -1 ? -1 : 0;
}

/* Is host (hostlen bytes) <name>.local or <name>.<one of domains>? */
static int
own_host(const char *host, size_t hostlen, const char *name,
    const char *const *domains, size_t ndomains)
{
	size_t nl = strlen(name), i;

	if (hostlen <= nl + 1 || strncmp(host, name, nl) != 0 ||
	    host[nl] != '.')
		return 0;
	host += nl + 1;
	hostlen -= nl + 1;
	if (hostlen == 5 && strncmp(host, "local", 5) == 0)
		return 1;
	for (i = 0; i < ndomains; i++)
		if (strlen(domains[i]) == hostlen &&
		    strncmp(host, domains[i], hostlen) == 0)
			return 1;
	return 0;
}

int
config_valid_publish_url(const char *url, const char *name,
    const char *const *domains, size_t ndomains, char *why, size_t whylen)
{
	const char *host, *end, *p;
	long port;
	char num[8];

	if (url == NULL || name == NULL) {
		snprintf(why, whylen, "missing");
		return 0;
	}
	if (strlen(url) > CONFIG_PUBLISH_URL_MAX) {
		snprintf(why, whylen, "longer than %d characters",
		    CONFIG_PUBLISH_URL_MAX);
		return 0;
	}
	/* Plain HTTP on purpose: relying parties fetch CRLs without TLS
	 * (RFC 5280 4.2.1.13), and both objects are signed. */
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(why, whylen, "must start with http://");
		return 0;
	}
	host = url + 7;
	end = host + strcspn(host, ":/");
	if (!own_host(host, (size_t)(end - host), name, domains, ndomains)) {
		snprintf(why, whylen, "the host must be %s.local or %s.DOMAIN "
		    "for a configured domain", name, name);
		return 0;
	}
	p = end;
	if (*p == ':') {
		size_t n = strspn(p + 1, "0123456789");

		if (n == 0 || n >= sizeof(num)) {
			snprintf(why, whylen, "bad port");
			return 0;
		}
		memcpy(num, p + 1, n);
		num[n] = '\0';
		if (config_parse_long(num, 1, 65535, &port) == -1) {
			snprintf(why, whylen, "port must be 1 to 65535");
			return 0;
		}
		p += 1 + n;
	}
	if (*p != '\0' && *p != '/') {
		snprintf(why, whylen, "unexpected \"%c\" after the host", *p);
		return 0;
	}
	if (p[strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._~/-")] != '\0') {
		snprintf(why, whylen, "the path may hold only letters, digits "
		    "and ._~/- (no query, no fragment)");
		return 0;
	}
	if (*p != '\0' && p[strlen(p) - 1] == '/') {
		snprintf(why, whylen, "no trailing slash");
		return 0;
	}
	if (strstr(p, "//") != NULL || strstr(p, "/.") != NULL) {
		snprintf(why, whylen, "empty or dot segment in the path");
		return 0;
	}
	return 1;
}

int
config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	struct parse_state st;
	const char *missing;
	char why[160];

	memset(cfg, 0, sizeof(*cfg));
	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	cfg->root_years = 10;
	cfg->key_store = "tpm2";
	cfg->key_alg = "ec-p384";
	cfg->max_days = 90;
	cfg->crl_days = 7;
	cfg->frontend_connections = 320;
	cfg->admin_connections = 16;
	cfg->idle_timeout = 30;
	cfg->audit_nv_index = 0x01500016;
	cfg->audit_checkpoint_records = 1000;
	cfg->audit_checkpoint_minutes = 15;
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);

	if (config_ini_parse(path, handler, &st, &st.e, err, errlen) == -1)
		goto fail;
	if ((missing = missing_key(cfg)) != NULL) {
		snprintf(err, errlen, "%s: missing %s", path, missing);
		goto fail;
	}
	if (strcmp(cfg->key_store, "provider") != 0 && cfg->key[0] != '/') {
		snprintf(err, errlen, "%s: [key] path must be absolute", path);
		goto fail;
	}
	if ((cfg->owner_auth_file != NULL || cfg->key_parent != 0) &&
	    strcmp(cfg->key_store, "tpm2") != 0) {
		snprintf(err, errlen, "%s: [key] owner_auth_file and parent are "
		    "for store = tpm2", path);
		goto fail;
	}
	if (audit_defaults(cfg) == -1 || publish_default(cfg) == -1) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (!config_valid_publish_url(cfg->publish_url, cfg->name,
	    (const char *const *)cfg->domains, cfg->ndomains, why,
	    sizeof(why))) {
		snprintf(err, errlen, "%s: [ca] publish_url \"%s\": %s", path,
		    cfg->publish_url, why);
		goto fail;
	}
	return 0;
fail:
	config_free(cfg);
	return -1;
}

void
config_free(struct config *c)
{
	size_t i;

	free(c->name);
	for (i = 0; i < c->ndomains; i++)
		free(c->domains[i]);
	for (i = 0; i < c->nips; i++)
		free(c->ips[i]);
	free(c->root_cert);
	free(c->publish_url);
	free(c->key);
	free(c->tcti);
	free(c->owner_auth_file);
	free(c->provider);
	free(c->db);
	free(c->signer_socket);
	free(c->admin_socket);
	free(c->socket_group);
	free(c->audit_key);
	free(c->audit_hmac);
	free(c->audit_counter);
	free(c->notify_command);
	memset(c, 0, sizeof(*c));
}

static int
in_list(const struct idlist *l, unsigned int id)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->id[i] == id)
			return 1;
	return 0;
}

int
config_id_allowed(const struct idlist *uids, const struct idlist *gids,
    uid_t uid, const gid_t *groups, size_t ngroups)
{
	size_t i;

	if (in_list(uids, uid))
		return 1;
	for (i = 0; i < ngroups; i++)
		if (in_list(gids, groups[i]))
			return 1;
	return 0;
}
