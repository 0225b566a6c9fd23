/*
 * listener: the HTTPS listening sockets and the libmicrohttpd daemons on
 * them.  The sockets are made once; a TLS certificate renewal starts new
 * daemons on the same sockets and quiesces the old ones, which finish their
 * connections and are stopped later, so no client sees the port close.
 */
#ifndef IOTCA_LISTENER_H
#define IOTCA_LISTENER_H

#include <stddef.h>
#include <time.h>
#include <microhttpd.h>

#include "acmed_config.h"
#include "tlscert.h"

#define LISTEN_MAX_CONNECTIONS	64	/* per listening socket */
#define LISTEN_PER_IP		32
#define LISTEN_TIMEOUT_SEC	30	/* idle connection (slowloris) */
#define LISTEN_GRACE_SEC	(LISTEN_TIMEOUT_SEC * 2)

struct listener;

/* What every daemon serves: the access handler and its closures. */
struct listener_app {
	MHD_AccessHandlerCallback	 handler;
	void				*handler_cls;
	MHD_RequestCompletedCallback	 completed;
	void				*completed_cls;
};

/*
 * The listening sockets: those systemd passed (socket activation,
 * sd_listen_fds(3)) if any, else the configured addresses, bound here.
 * NULL with err naming the address or the passed socket that is unusable.
 */
struct listener	*listener_bind(const struct acme_config *,
		    const struct listener_app *, char *err, size_t errlen);
/* "127.0.0.1:8443" of the i-th socket, for the log. */
const char	*listener_name(const struct listener *, size_t i);
/* How many sockets the listener serves. */
size_t		 listener_count(const struct listener *);
/* Serve with this key and chain (copied); replaces running daemons. */
int		 listener_serve(struct listener *, const struct tls_material *,
		    char *err, size_t errlen);
/* Stop quiesced daemons whose grace time is over. */
void		 listener_reap(struct listener *, time_t now);
void		 listener_free(struct listener *);

#endif
