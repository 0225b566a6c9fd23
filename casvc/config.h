/*
 * config: the one INI file every iotca program reads (parsed with inih).
 * Unknown sections or keys, bad values and missing required keys are refused
 * with the file name, line number and reason; nothing is half-loaded.
 *
 * Every program checks every section, but [key] and [audit] stay plain
 * values here: only the signer turns them into key-store and anchor
 * settings (config_key.h), so the front end and the operator's command
 * link no key code.
 */
#ifndef IOTCA_CONFIG_H
#define IOTCA_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONFIG_MAX_LIST	16

/*
 * What iotca-acmed serves under [ca] publish_url, and what device
 * certificates name: the CRL (DER, application/pkix-crl; the CRL
 * Distribution Point) and the root (DER, application/pkix-cert; the AIA
 * caIssuers), RFC 5280 4.2.1.13 and 4.2.2.1.
 */
#define CONFIG_PUBLISH_CRL_PATH		"/pki/root.crl"
#define CONFIG_PUBLISH_ROOT_PATH	"/pki/root.cer"
#define CONFIG_PUBLISH_URL_MAX		200

struct idlist {
	size_t	 n;
	unsigned int id[CONFIG_MAX_LIST];
};

struct config {
	char		 path[4096];
	/* [ca] */
	char		*name;		/* server name: the leftmost label of its own names */
	char		*domains[CONFIG_MAX_LIST];
	size_t		 ndomains;
	char		*ips[CONFIG_MAX_LIST];
	size_t		 nips;
	int		 root_years;	/* 1..10, default 10 */
	char		*root_cert;	/* PEM path */
	char		*publish_url;	/* where the CRL and root are served over
					   plain HTTP, no trailing slash; default
					   http://<name>.<first domain> */
	/* [key] */
	const char	*key_store;	/* "tpm2" (default), "file" or "provider" */
	char		*key;		/* path (file, tpm2) or URI (provider) */
	const char	*key_alg;	/* "ec-p384" (default), "ec-p521",
					   "rsa-3072" or "rsa-4096" */
	char		*tcti;		/* optional */
	char		*owner_auth_file; /* tpm2, optional: the owner hierarchy's
					   authorization, in a 0600 file */
	uint32_t	 key_parent;	/* tpm2, optional: persistent storage key */
	char		*provider;	/* required for store = provider */
	/* [signer] */
	char		*db;
	char		*signer_socket;
	char		*admin_socket;
	struct idlist	 frontend_uids, frontend_gids;
	struct idlist	 admin_uids, admin_gids;
	char		*socket_group;	/* optional group owning both sockets */
	int		 frontend_connections;	/* signer.sock budget, default 320 */
	int		 admin_connections;	/* admin.sock budget, default 16 */
	int		 idle_timeout;	/* seconds a peer may sit without a request, default 30 */
	/* [policy] */
	int		 max_days;	/* 1..90, default 90 */
	int		 strict_cn;	/* default false */
	int		 crl_days;	/* 1..90, default 7 */
	int		 auto_approve;	/* lab only: approve every request; default false */
	int		 approve_delegated_devices;	/* per-device approval under an
					   approved delegation too; default false */
	char		*notify_command;	/* run for each new pending request, or NULL */
	/* [audit]: paths default to files beside [signer] db */
	char		*audit_key;	/* checkpoint signing key: TSS2 blob or PEM */
	char		*audit_hmac;	/* record key: TPM-sealed object or 0600 file */
	char		*audit_counter;	/* file mode's counter file */
	unsigned int	 audit_nv_index;	/* TPM NV counter, default 0x01500016 */
	int		 audit_checkpoint_records;	/* default 1000 */
	int		 audit_checkpoint_minutes;	/* default 15 */
};

/*
 * For programs that read a section of their own with inih (iotca-acmed's
 * [acme]): the first error of a parse, and the value parsers config_load
 * uses.  config_fail and the setters return what an inih handler returns:
 * 1 for a good line, 0 after recording why it is not.
 */
struct config_error {
	char	 reason[256];
	int	 failed;
};

int	 config_fail(struct config_error *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	 config_set_string(struct config_error *, char **dst, const char *value);
/* An absolute path shorter than PATH_MAX. */
int	 config_set_path(struct config_error *, char **dst, const char *key,
	    const char *value);
/* A decimal integer in lo..hi: 0, or -1. */
int	 config_parse_long(const char *value, long lo, long hi, long *out);

/* Run inih's parser over path with handler and user; 0, or -1 with
 * "FILE:LINE: reason" (the first error recorded in e) in err. */
int	 config_ini_parse(const char *path,
	    int (*handler)(void *, const char *, const char *, const char *),
	    void *user, const struct config_error *e, char *err, size_t errlen);

/* Load and validate path into cfg; -1 and one line "FILE:LINE: reason" on error. */
int	 config_load(const char *path, struct config *cfg, char *err, size_t errlen);
void	 config_free(struct config *);

/*
 * 1 if url is a publication base URL for an appliance called name with
 * these domains: "http://" <name>.local or <name>.<domain>, an optional
 * ":PORT" (1..65535) and an optional path of [A-Za-z0-9._~/-], no query,
 * no trailing slash; else 0 with the reason in why.
 */
int	 config_valid_publish_url(const char *url, const char *name,
	    const char *const *domains, size_t ndomains, char *why,
	    size_t whylen);

/* The default path: $IOTCA_CONFIG, else /etc/iotca/iotca.conf. */
const char *config_default_path(void);

/* 1 if uid is in uids or any of the peer's groups (primary and
 * supplementary: operators join iotca-admin as a supplementary group) is in gids. */
int	 config_id_allowed(const struct idlist *uids, const struct idlist *gids,
	    uid_t uid, const gid_t *groups, size_t ngroups);

#endif
