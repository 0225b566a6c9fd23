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

/*
 * Connections are polled (epoll) by [acme] threads per socket and their
 * requests run on the application's workers, so an idle connection costs a
 * socket and a little memory, never a thread.  Limits, from [acme]:
 * max_connections per socket, max_connections_per_address, and
 * request_timeout: a connection that has not delivered a complete request
 * that long after it was accepted or last answered is closed, whether it
 * was silent or trickled bytes.
 */
#define LISTEN_BACKLOG		1024	/* a LAN's devices all come back at once
					 * after a power cut (kernel caps it) */
#define LISTEN_GRACE_SEC	60	/* an old daemon's connections finish */
#define LISTEN_LOG_EVERY_SEC	10	/* a repeated httpd line, at most */
/*
 * libmicrohttpd's memory pool per connection: the request line, headers and
 * the answer's headers (bodies stream through it).  It is zeroed after each
 * request, so all of it stays resident for as long as the connection is
 * held: 32 KiB made 1,000 held TLS connections cost 52 MiB, 4 KiB 30 MiB.
 * About 3 KiB of request headers fit; more gets 431.
 */
#define LISTEN_MEMORY_LIMIT	(4 * 1024)

struct listener;

/* What every daemon serves: the access handler and its closures. */
struct listener_app {
	MHD_AccessHandlerCallback	 handler;
	void				*handler_cls;
	MHD_RequestCompletedCallback	 completed;
	void				*completed_cls;
	/* Whether requests of this daemon are still being worked on (the
	 * daemon is stopped only once they are not); may be NULL. */
	int				(*busy)(void *cls, const struct MHD_Daemon *);
	void				*busy_cls;
};

/*
 * The listening sockets: those systemd passed (socket activation,
 * sd_listen_fds(3)) if any, else the configured addresses, bound here.
 * NULL with err naming the address or the passed socket that is unusable.
 */
struct listener	*listener_bind(const struct acme_config *,
		    const struct listener_app *, char *err, size_t errlen);
/* The sockets systemd passed with FileDescriptorName=http: plain HTTP
 * for the publisher (publish.h), not served by the listener. */
size_t		 listener_plain_fds(const struct listener *, const int **fds);
/* A listening TCP socket bound to a; -1 with err. */
int		 listener_bind_address(const struct acme_listen *, char *err,
		    size_t errlen);
/* "127.0.0.1:8443" of the i-th socket, for the log. */
const char	*listener_name(const struct listener *, size_t i);
/* How many sockets the listener serves. */
size_t		 listener_count(const struct listener *);
/* Serve with this key and chain (copied); replaces running daemons. */
int		 listener_serve(struct listener *, const struct tls_material *,
		    char *err, size_t errlen);
/* Stop quiesced daemons whose grace time is over and that have no work
 * left; log the count of repeated httpd lines held back. */
void		 listener_reap(struct listener *, time_t now);
/* Stop accepting (the sockets stay open until listener_free). */
void		 listener_quiesce(struct listener *);
void		 listener_free(struct listener *);

#endif
