/*
 * listener: listening sockets and MHD daemons with TLS (see listener.h).
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <openssl/crypto.h>
#include <systemd/sd-daemon.h>

#include "listener.h"
#include "log.h"

/* GnuTLS priorities: TLS 1.2 and 1.3 only. */
#define TLS_PRIORITIES	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* One generation of daemons with the key and chain they were given. */
struct generation {
	struct MHD_Daemon	*d[ACME_MAX_LISTEN];
	char			*key_pem, *chain_pem;
	time_t			 stop_at;	/* when quiesced: stop after this */
	struct generation	*next;
};

struct listener {
	struct listener_app	 app;
	int			 fd[ACME_MAX_LISTEN];
	char			 text[ACME_MAX_LISTEN][80];
	size_t			 n;
	struct generation	*live;
	struct generation	*retired;	/* quiesced, waiting for stop_at */
};

static int
bind_one(const struct acme_listen *l, char *err, size_t errlen)
{
	int fd, on = 1;

	if ((fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "%s: socket: %s", l->text, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    (l->addr.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)) {
		snprintf(err, errlen, "%s: setsockopt: %s", l->text, strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) == -1 ||
	    listen(fd, 128) == -1) {
		snprintf(err, errlen, "%s: %s", l->text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* "ADDR:PORT" or "[V6ADDR]:PORT" of a bound socket. */
static void
sock_name(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];
	const void *a;
	int port;

	snprintf(out, outlen, "fd %d", fd);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		a = &((struct sockaddr_in *)&ss)->sin_addr;
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	} else
		return;
	if (inet_ntop(ss.ss_family, a, addr, sizeof(addr)) == NULL)
		return;
	snprintf(out, outlen, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
	    addr, port);
}

/*
 * Take the sockets systemd passed: 0 and none taken when there are none,
 * -1 if one of them is not a listening TCP socket (a unit file mistake
 * better reported than served around).  LISTEN_FDS is unset so that no
 * child could take them too.
 */
static int
adopt_passed(struct listener *l, char *err, size_t errlen)
{
	int i, n, fd;

	if ((n = sd_listen_fds(1)) < 0) {
		snprintf(err, errlen, "sd_listen_fds: %s", strerror(-n));
		return -1;
	}
	if (n > ACME_MAX_LISTEN) {
		snprintf(err, errlen, "systemd passed %d sockets; at most %d",
		    n, ACME_MAX_LISTEN);
		return -1;
	}
	for (i = 0; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		if (sd_is_socket(fd, AF_INET, SOCK_STREAM, 1) <= 0 &&
		    sd_is_socket(fd, AF_INET6, SOCK_STREAM, 1) <= 0) {
			snprintf(err, errlen, "passed fd %d is not a listening "
			    "TCP socket", fd);
			return -1;
		}
		/* Ours now: closed on exec like the ones we bind. */
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
			snprintf(err, errlen, "fd %d: %s", fd, strerror(errno));
			return -1;
		}
		l->fd[l->n] = fd;
		sock_name(fd, l->text[l->n], sizeof(l->text[l->n]));
		l->n++;
	}
	return n;
}

struct listener *
listener_bind(const struct acme_config *cfg, const struct listener_app *app,
    char *err, size_t errlen)
{
	struct listener *l;
	size_t i;
	int passed;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->app = *app;
	if ((passed = adopt_passed(l, err, errlen)) != 0) {
		if (passed == -1) {
			listener_free(l);
			return NULL;
		}
		log_msg(LOG_INFO, "using %d socket%s from systemd; [acme] "
		    "listen is not used", passed, passed == 1 ? "" : "s");
		return l;
	}
	if (cfg->nlisten == 0) {
		snprintf(err, errlen, "no [acme] listen and no sockets from "
		    "systemd (iotca-acmed.socket)");
		listener_free(l);
		return NULL;
	}
	for (i = 0; i < cfg->nlisten; i++) {
		if ((l->fd[i] = bind_one(&cfg->listen[i], err, errlen)) == -1) {
			listener_free(l);
			return NULL;
		}
		snprintf(l->text[i], sizeof(l->text[i]), "%s", cfg->listen[i].text);
		l->n++;
	}
	return l;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t len;

	vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	while (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	log_msg(LOG_WARNING, "httpd: %s", line);
}

static struct MHD_Daemon *
start_daemon(struct listener *l, int fd, const struct generation *g)
{
	/* Thread per connection: handlers may block on the signer briefly. */
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_TLS |
	    MHD_USE_ITC | MHD_USE_ERROR_LOG;

	return MHD_start_daemon(flags, 0, NULL, NULL,
	    l->app.handler, l->app.handler_cls,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_HTTPS_MEM_KEY, g->key_pem,
	    MHD_OPTION_HTTPS_MEM_CERT, g->chain_pem,
	    MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)LISTEN_MAX_CONNECTIONS,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)LISTEN_PER_IP,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)LISTEN_TIMEOUT_SEC,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
	    MHD_OPTION_NOTIFY_COMPLETED, l->app.completed, l->app.completed_cls,
	    MHD_OPTION_END);
}

static void
generation_free(struct generation *g, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (g->d[i] != NULL)
			MHD_stop_daemon(g->d[i]);
	if (g->key_pem != NULL) {
		OPENSSL_cleanse(g->key_pem, strlen(g->key_pem));
		free(g->key_pem);
	}
	free(g->chain_pem);
	free(g);
}

/* Stop the old daemons accepting; their connections run on until reaped. */
static void
retire(struct listener *l, struct generation *g)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (g->d[i] != NULL && MHD_quiesce_daemon(g->d[i]) == MHD_INVALID_SOCKET)
			log_msg(LOG_WARNING, "%s: cannot quiesce the old daemon",
			    l->text[i]);
	g->stop_at = time(NULL) + LISTEN_GRACE_SEC;
	g->next = l->retired;
	l->retired = g;
}

int
listener_serve(struct listener *l, const struct tls_material *m, char *err,
    size_t errlen)
{
	struct generation *g;
	size_t i;

	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->key_pem = strdup(m->key_pem)) == NULL ||
	    (g->chain_pem = strdup(m->chain_pem)) == NULL) {
		snprintf(err, errlen, "out of memory");
		if (g != NULL)
			generation_free(g, 0);
		return -1;
	}
	for (i = 0; i < l->n; i++) {
		if ((g->d[i] = start_daemon(l, l->fd[i], g)) == NULL) {
			snprintf(err, errlen, "%s: cannot start the HTTPS daemon",
			    l->text[i]);
			/* Daemons of g that started share the sockets: quiesce
			 * them first so stopping them keeps the sockets open. */
			while (i-- > 0)
				(void)MHD_quiesce_daemon(g->d[i]);
			generation_free(g, l->n);
			return -1;
		}
	}
	if (l->live != NULL)
		retire(l, l->live);
	l->live = g;
	return 0;
}

void
listener_reap(struct listener *l, time_t now)
{
	struct generation **gp = &l->retired, *g;

	while ((g = *gp) != NULL) {
		if (now >= g->stop_at) {
			*gp = g->next;
			generation_free(g, l->n);
		} else
			gp = &g->next;
	}
}

const char *
listener_name(const struct listener *l, size_t i)
{
	return i < l->n ? l->text[i] : "";
}

size_t
listener_count(const struct listener *l)
{
	return l->n;
}

void
listener_free(struct listener *l)
{
	size_t i;

	if (l == NULL)
		return;
	listener_reap(l, (time_t)-1 > 0 ? (time_t)-1 : INT64_MAX);
	if (l->live != NULL) {
		for (i = 0; i < l->n; i++)
			if (l->live->d[i] != NULL)
				(void)MHD_quiesce_daemon(l->live->d[i]);
		generation_free(l->live, l->n);
	}
	for (i = 0; i < l->n; i++)
		close(l->fd[i]);
	free(l);
}
