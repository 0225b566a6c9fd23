/*
 * est_config: iotca-est-ra's INI file (inih).  Every key is checked here;
 * an unknown section or key, a bad value or a missing required key is
 * refused with "FILE:LINE: reason" (or "FILE: reason" for what is missing).
 * Files named here are not opened: the daemon does that at start.
 */
#ifndef IOTCA_EST_CONFIG_H
#define IOTCA_EST_CONFIG_H

#include <stddef.h>
#include <sys/socket.h>

#define EST_DEFAULT_CONFIG	"/etc/iotca/est-ra.conf"
#define EST_MAX_LISTEN		8
#define EST_MAX_LABELS		32

struct est_listen {
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	char			 text[80];	/* as written */
};

/* [label NAME]: /.well-known/est/NAME/... */
struct est_label {
	char	*name;
	char	*subtree;		/* within [acme] subtree */
	int	 require_client_cert;	/* -1: as [est] says */
};

struct est_config {
	/* [est] */
	struct est_listen listen[EST_MAX_LISTEN];
	size_t	 nlisten;
	char	*tls_cert, *tls_key, *state_dir, *credentials, *client_ca;
	int	 require_client_cert;
	int	 retry_after;		/* s, in 202 */
	int	 enrol_wait;		/* s an enrolment waits before 202 */
	int	 workers;
	long	 max_body;
	/* [acme] */
	char	*directory, *ca_file, *subtree;
	/* [dns] */
	char	*dns_server, *dns_zone, *tsig_key;
	struct est_label labels[EST_MAX_LABELS];
	size_t	 nlabels;
};

/* 0, or -1 with err; *cfg is empty after a failure. */
int	est_config_load(const char *path, struct est_config *cfg, char *err,
	    size_t errlen);
void	est_config_free(struct est_config *);
/* The label of that name, or NULL. */
const struct est_label *est_config_label(const struct est_config *,
	    const char *name);

#endif
