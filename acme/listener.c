/*
 * listener: listening sockets and MHD daemons with TLS (see listener.h).
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

/*
 * A line MHD repeats (a refused connection, a failed handshake) is logged
 * once per LISTEN_LOG_EVERY_SEC with the count of those held back, so that a
 * flood cannot fill the journal.  Lines are told apart by their format.
 */
#define LOG_KINDS	16

struct log_kind {
	const char	*fmt;		/* MHD's format string: its identity */
	char		 text[160];	/* the last line held back */
	time_t		 logged;	/* when a line of this kind was last logged */
	unsigned long	 held;		/* held back since */
};

/*
 * Every connection, for the deadline of its request: MHD's own timeout
 * counts silence only, so a client trickling a byte now and then would keep
 * a connection for ever.  A connection owes a complete request within
 * request_timeout of being accepted or of its previous answer; the reaper
 * thread shuts down the socket of one that is late, and MHD, reading EOF,
 * closes it.  Entries go away in MHD's "closed" notice, before MHD closes
 * the descriptor, so the reaper never touches a descriptor reused since.
 */
struct conn_track {
	int			 fd;
	double			 since;		/* accepted, or last answered */
	int			 due;		/* a request is being awaited */
	int			 cut;		/* shut down already */
	struct conn_track	*prev, *next;
};

struct listener {
	struct listener_app	 app;
	unsigned int		 max_connections, max_per_address, timeout;
	unsigned int		 threads;
	pthread_mutex_t		 log_lock;
	struct log_kind		 log[LOG_KINDS];
	pthread_mutex_t		 track_lock;
	pthread_cond_t		 track_wake;	/* stop the reaper */
	struct conn_track	*tracks;
	pthread_t		 reaper;
	int			 reaper_started, reaper_stop;
	int			 fd[ACME_MAX_LISTEN];
	char			 text[ACME_MAX_LISTEN][80];
	size_t			 n;
	/* Passed sockets named "http" (FileDescriptorName=): plain HTTP,
	 * handed to the publisher (publish.h), never served with TLS. */
	int			 plain_fd[ACME_MAX_LISTEN];
	size_t			 nplain;
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
	    listen(fd, LISTEN_BACKLOG) == -1) {
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
	char **names = NULL;
	int i, n, fd, rc = -1, plain;

	if ((n = sd_listen_fds_with_names(1, &names)) < 0) {
		snprintf(err, errlen, "sd_listen_fds: %s", strerror(-n));
		return -1;
	}
	if (n > ACME_MAX_LISTEN) {
		snprintf(err, errlen, "systemd passed %d sockets; at most %d",
		    n, ACME_MAX_LISTEN);
		goto out;
	}
	for (i = 0; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		plain = names != NULL && names[i] != NULL &&
		    strcmp(names[i], "http") == 0;
		if (sd_is_socket(fd, AF_INET, SOCK_STREAM, 1) <= 0 &&
		    sd_is_socket(fd, AF_INET6, SOCK_STREAM, 1) <= 0) {
			snprintf(err, errlen, "passed fd %d is not a listening "
			    "TCP socket", fd);
			goto out;
		}
		/* Ours now: closed on exec like the ones we bind. */
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
			snprintf(err, errlen, "fd %d: %s", fd, strerror(errno));
			goto out;
		}
		if (plain) {
			l->plain_fd[l->nplain++] = fd;
			continue;
		}
		l->fd[l->n] = fd;
		sock_name(fd, l->text[l->n], sizeof(l->text[l->n]));
		l->n++;
	}
	rc = (int)l->n;
out:
	if (names != NULL) {
		for (i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return rc;
}

int
listener_bind_address(const struct acme_listen *a, char *err, size_t errlen)
{
	return bind_one(a, err, errlen);
}

size_t
listener_plain_fds(const struct listener *l, const int **fds)
{
	*fds = l->plain_fd;
	return l->nplain;
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
	if (pthread_mutex_init(&l->log_lock, NULL) != 0 ||
	    pthread_mutex_init(&l->track_lock, NULL) != 0 ||
	    pthread_cond_init(&l->track_wake, NULL) != 0) {
		snprintf(err, errlen, "cannot make the listener locks");
		free(l);
		return NULL;
	}
	l->app = *app;
	l->max_connections = cfg->max_connections;
	l->max_per_address = cfg->max_per_address;
	l->timeout = cfg->request_timeout;
	l->threads = cfg->threads;
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

/* Log what was held back of kinds quiet for LISTEN_LOG_EVERY_SEC. */
static void
log_flush(struct listener *l, time_t now, int all)
{
	struct log_kind *k;
	size_t i;

	if (pthread_mutex_lock(&l->log_lock) != 0)
		return;
	for (i = 0; i < LOG_KINDS; i++) {
		k = &l->log[i];
		if (k->held == 0 || (!all && now - k->logged < LISTEN_LOG_EVERY_SEC))
			continue;
		log_msg(LOG_WARNING, "httpd: %s (%lu such lines held back in "
		    "%lld s; this is the last)", k->text, k->held,
		    (long long)(now - k->logged));
		k->held = 0;
		k->logged = now;
	}
	pthread_mutex_unlock(&l->log_lock);
}

/* 1 if the line may be logged now, 0 if it is held back (and counted). */
static int
log_pass(struct listener *l, const char *fmt, const char *line, time_t now)
{
	struct log_kind *k, *free_k = NULL, *oldest = NULL;
	size_t i;
	int pass = 1;

	if (pthread_mutex_lock(&l->log_lock) != 0)
		return 1;
	for (i = 0; i < LOG_KINDS; i++) {
		k = &l->log[i];
		if (k->fmt == fmt)
			break;
		if (k->fmt == NULL && free_k == NULL)
			free_k = k;
		if (k->held == 0 && (oldest == NULL || k->logged < oldest->logged))
			oldest = k;
	}
	if (i == LOG_KINDS) {
		/* A new kind: take a free entry, else one holding nothing back. */
		if ((k = free_k != NULL ? free_k : oldest) != NULL) {
			k->fmt = fmt;
			k->held = 0;
			k->logged = now;
		}
	} else if (now - k->logged < LISTEN_LOG_EVERY_SEC) {
		k->held++;
		snprintf(k->text, sizeof(k->text), "%s", line);
		pass = 0;
	} else if (k->held > 0) {
		/* The count goes with this line, not after it. */
		log_msg(LOG_WARNING, "httpd: %s (and %lu such lines held back "
		    "in %lld s)", line, k->held, (long long)(now - k->logged));
		k->held = 0;
		k->logged = now;
		pass = 0;
	} else
		k->logged = now;
	pthread_mutex_unlock(&l->log_lock);
	return pass;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct listener *l = cls;
	char line[512];
	size_t len;

	vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	while (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	if (log_pass(l, fmt, line, time(NULL)))
		log_msg(LOG_WARNING, "httpd: %s", line);
}

static double
now_mono(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct conn_track *
track_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/* A request is awaited (due) or has been read in full (not due). */
static void
track_set(struct listener *l, struct MHD_Connection *conn, int due)
{
	struct conn_track *t;

	if (pthread_mutex_lock(&l->track_lock) != 0)
		return;
	if ((t = track_of(conn)) != NULL) {
		t->due = due;
		t->since = now_mono();
	}
	pthread_mutex_unlock(&l->track_lock);
}

/* MHD_OPTION_NOTIFY_CONNECTION */
static void
track_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct listener *l = cls;
	const union MHD_ConnectionInfo *ci;
	struct conn_track *t;

	if (pthread_mutex_lock(&l->track_lock) != 0)
		return;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci != NULL && (t = calloc(1, sizeof(*t))) != NULL) {
			t->fd = ci->connect_fd;
			t->since = now_mono();
			t->due = 1;
			if ((t->next = l->tracks) != NULL)
				t->next->prev = t;
			l->tracks = t;
			*socket_context = t;
		}
	} else if ((t = *socket_context) != NULL) {
		if (t->prev != NULL)
			t->prev->next = t->next;
		else
			l->tracks = t->next;
		if (t->next != NULL)
			t->next->prev = t->prev;
		free(t);
		*socket_context = NULL;
	}
	pthread_mutex_unlock(&l->track_lock);
}

static void *
reaper_main(void *p)
{
	struct listener *l = p;
	struct conn_track *t;
	struct timespec ts;
	double now;

	if (pthread_mutex_lock(&l->track_lock) != 0)
		return NULL;
	while (!l->reaper_stop) {
		now = now_mono();
		for (t = l->tracks; t != NULL; t = t->next) {
			if (!t->due || t->cut || now - t->since < l->timeout)
				continue;
			/* MHD sees the end of the stream and closes it. */
			(void)shutdown(t->fd, SHUT_RDWR);
			t->cut = 1;
		}
		if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
			break;
		ts.tv_nsec += 500 * 1000 * 1000;
		if (ts.tv_nsec >= 1000 * 1000 * 1000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000 * 1000 * 1000;
		}
		(void)pthread_cond_timedwait(&l->track_wake, &l->track_lock, &ts);
	}
	pthread_mutex_unlock(&l->track_lock);
	return NULL;
}

/* The application's handler; a call without data on a request already
 * begun means it has been read in full. */
static enum MHD_Result
track_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct listener *l = cls;

	if (*con_cls != NULL && *upload_data_size == 0)
		track_set(l, conn, 0);
	return l->app.handler(l->app.handler_cls, conn, url, method, version,
	    upload_data, upload_data_size, con_cls);
}

/* The application's completion; the next request is due from now on. */
static void
track_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct listener *l = cls;

	if (l->app.completed != NULL)
		l->app.completed(l->app.completed_cls, conn, con_cls, toe);
	track_set(l, conn, 1);
}

static struct MHD_Daemon *
start_daemon(struct listener *l, int fd, const struct generation *g)
{
	/*
	 * A few threads poll every connection (epoll: no limit on descriptor
	 * numbers, no cost per idle connection); requests are suspended while
	 * the application's workers run them, so a handler waiting on the
	 * signer stalls no other client.
	 */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_USE_TLS | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	return MHD_start_daemon(flags, 0, NULL, NULL, track_handler, l,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, l,
	    MHD_OPTION_THREAD_POOL_SIZE, l->threads,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_HTTPS_MEM_KEY, g->key_pem,
	    MHD_OPTION_HTTPS_MEM_CERT, g->chain_pem,
	    MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
	    MHD_OPTION_CONNECTION_LIMIT, l->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, l->max_per_address,
	    MHD_OPTION_CONNECTION_TIMEOUT, l->timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)LISTEN_MEMORY_LIMIT,
	    MHD_OPTION_NOTIFY_COMPLETED, track_completed, l,
	    MHD_OPTION_NOTIFY_CONNECTION, track_notify, l,
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
	int e;

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
	if (!l->reaper_started) {
		if ((e = pthread_create(&l->reaper, NULL, reaper_main, l)) != 0) {
			snprintf(err, errlen, "pthread_create: %s", strerror(e));
			for (i = 0; i < l->n; i++)
				(void)MHD_quiesce_daemon(g->d[i]);
			generation_free(g, l->n);
			return -1;
		}
		l->reaper_started = 1;
	}
	if (l->live != NULL)
		retire(l, l->live);
	l->live = g;
	return 0;
}

/* Whether a request of g is still with the workers (suspended in MHD,
 * which must not be stopped then). */
static int
generation_busy(const struct listener *l, const struct generation *g)
{
	size_t i;

	if (l->app.busy == NULL)
		return 0;
	for (i = 0; i < l->n; i++)
		if (g->d[i] != NULL && l->app.busy(l->app.busy_cls, g->d[i]))
			return 1;
	return 0;
}

void
listener_reap(struct listener *l, time_t now)
{
	struct generation **gp = &l->retired, *g;

	log_flush(l, now, 0);
	while ((g = *gp) != NULL) {
		if (now >= g->stop_at && !generation_busy(l, g)) {
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
listener_quiesce(struct listener *l)
{
	size_t i;

	if (l == NULL || l->live == NULL)
		return;
	for (i = 0; i < l->n; i++)
		if (l->live->d[i] != NULL)
			(void)MHD_quiesce_daemon(l->live->d[i]);
}

/* The application's workers are closed by now: nothing is suspended. */
void
listener_free(struct listener *l)
{
	struct generation *g;
	size_t i;

	if (l == NULL)
		return;
	while ((g = l->retired) != NULL) {
		l->retired = g->next;
		generation_free(g, l->n);
	}
	log_flush(l, time(NULL), 1);
	if (l->live != NULL) {
		for (i = 0; i < l->n; i++)
			if (l->live->d[i] != NULL)
				(void)MHD_quiesce_daemon(l->live->d[i]);
		generation_free(l->live, l->n);
	}
	for (i = 0; i < l->n; i++)
		close(l->fd[i]);
	if (l->reaper_started && pthread_mutex_lock(&l->track_lock) == 0) {
		l->reaper_stop = 1;
		pthread_cond_signal(&l->track_wake);
		pthread_mutex_unlock(&l->track_lock);
		pthread_join(l->reaper, NULL);
	}
	pthread_cond_destroy(&l->track_wake);
	pthread_mutex_destroy(&l->track_lock);
	pthread_mutex_destroy(&l->log_lock);
	free(l);
}
