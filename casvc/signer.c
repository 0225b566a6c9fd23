/*
 * iotca-signer: the privileged process.  It alone opens the CA key (through
 * the keystore) and signer.db.  It listens on two SOCK_SEQPACKET sockets:
 * signer.sock for the front end and admin.sock for operators, identifies
 * each peer with SO_PEERCRED (and SO_PEERGROUPS), and answers one reply per
 * request.  Single-threaded: requests are small and the key is the
 * bottleneck; a peer that misbehaves is answered or dropped, never waited on.
 *
 * Under systemd (Type=notify) it says READY=1 once both sockets listen,
 * STOPPING=1 when it leaves, and pings the watchdog from the poll loop, so a
 * signer stuck in the TPM or the database is restarted.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "proto.h"
#include "server.h"

#define MAX_CONNS	64
#define MAX_GROUPS	64

struct conn {
	int		 fd;
	struct peer	 peer;
};

struct loop {
	struct signer	*s;
	int		 listen_fd[2];	/* ROLE_FRONTEND, ROLE_ADMIN */
	struct conn	 conns[MAX_CONNS];
	size_t		 nconns;
	uint64_t	 wd_usec;	/* watchdog ping interval; 0: none */
	uint64_t	 wd_next;	/* CLOCK_MONOTONIC usec of the next ping */
};

static volatile sig_atomic_t quit;

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static int
listen_on(const char *path, const char *group, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	struct group *gr;
	int fd;

	if (proto_sockaddr(path, &sun, err, errlen) == -1)
		return -1;
	/* Remove a stale socket of an earlier run, but nothing else. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			return -1;
		}
		if (unlink(path) == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(path, 0660) == -1 || listen(fd, 16) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (group != NULL) {
		if ((gr = getgrnam(group)) == NULL ||
		    chown(path, (uid_t)-1, gr->gr_gid) == -1) {
			snprintf(err, errlen, "%s: cannot give to group %s", path,
			    group);
			close(fd);
			return -1;
		}
	}
	return fd;
}

static void
describe_peer(struct peer *p)
{
	struct passwd *pw = getpwuid(p->uid);

	snprintf(p->user, sizeof(p->user), "%s", pw != NULL ? pw->pw_name : "?");
	snprintf(p->who, sizeof(p->who), "%s uid %u (%s) pid %d",
	    p->role == ROLE_ADMIN ? "operator" : "frontend",
	    (unsigned int)p->uid, p->user, (int)p->pid);
}

/* Is the peer on fd allowed on this socket?  The socket file mode is only
 * the first gate; this is the one that counts. */
static int
authorise(const struct config *cfg, int fd, struct peer *p)
{
	struct ucred cred;
	gid_t groups[MAX_GROUPS + 1];
	socklen_t len = sizeof(cred);
	size_t ngroups = 1;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return -1;
	p->uid = cred.uid;
	p->gid = cred.gid;
	p->pid = cred.pid;
	groups[0] = cred.gid;
	len = sizeof(gid_t) * MAX_GROUPS;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups + 1, &len) == 0)
		ngroups += len / sizeof(gid_t);
	describe_peer(p);
	if (p->role == ROLE_ADMIN)
		return config_id_allowed(&cfg->admin_uids, &cfg->admin_gids,
		    p->uid, groups, ngroups) ? 0 : -1;
	return config_id_allowed(&cfg->frontend_uids, &cfg->frontend_gids,
	    p->uid, groups, ngroups) ? 0 : -1;
}

/* Best effort, never blocking: a peer that does not read loses its reply. */
static void
reply(int fd, json_t *resp)
{
	if (resp == NULL)
		resp = proto_error(PROTO_E_INTERNAL, "out of memory");
	if (resp != NULL && proto_send(fd, resp) == -1 && errno != EPIPE)
		log_msg(LOG_WARNING, "reply: %s", strerror(errno));
	json_decref(resp);
}

/*
 * Throw away what a refused peer already sent.  Closing a Unix socket with
 * unread data makes the kernel report ECONNRESET to the peer before the
 * records still queued for it, so the peer would never read its
 * "unauthorized"; with the queue empty it reads the reply, then EOF.
 */
static void
discard_unread(int fd)
{
	char buf[64];
	int i;

	/* Bounded: a peer that keeps sending loses the reply, nothing else. */
	for (i = 0; i < 16; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
}

static void
accept_one(struct loop *l, enum role role)
{
	struct conn *c;
	int fd;

	fd = accept4(l->listen_fd[role], NULL, NULL, SOCK_CLOEXEC |
	    SOCK_NONBLOCK);
	if (fd == -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_msg(LOG_WARNING, "accept: %s", strerror(errno));
		return;
	}
	if (l->nconns == MAX_CONNS) {
		reply(fd, proto_error(PROTO_E_INTERNAL, "too many connections"));
		close(fd);
		log_msg(LOG_WARNING, "connection refused: %d already open",
		    MAX_CONNS);
		return;
	}
	c = &l->conns[l->nconns];
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->peer.role = role;
	if (authorise(&l->s->cfg, fd, &c->peer) == -1) {
		log_msg(LOG_WARNING, "refused %s on %s", c->peer.who,
		    role == ROLE_ADMIN ? "admin socket" : "signer socket");
		server_refused_peer(l->s, &c->peer);
		reply(fd, proto_error(PROTO_E_UNAUTHORIZED,
		    "this uid/gid may not use this socket"));
		discard_unread(fd);
		close(fd);
		return;
	}
	l->nconns++;
}

/* Serve one record from a connection; 0 to keep it, -1 to close it. */
static int
serve_one(struct loop *l, struct conn *c)
{
	char reason[256];
	json_t *req;

	switch (proto_recv(c->fd, 0, &req, reason, sizeof(reason))) {
	case PROTO_OK:
		reply(c->fd, server_handle(l->s, &c->peer, req));
		json_decref(req);
		return 0;
	case PROTO_BAD:
		log_msg(LOG_WARNING, "bad message from %s: %s", c->peer.who,
		    reason);
		reply(c->fd, proto_error(strstr(reason, "larger") != NULL ?
		    PROTO_E_TOO_LARGE : PROTO_E_MALFORMED, reason));
		return 0;
	case PROTO_ERR:
		if (errno == EAGAIN)
			return 0;
		return -1;
	case PROTO_EOF:
	default:
		return -1;
	}
}

static void
drop(struct loop *l, size_t i)
{
	close(l->conns[i].fd);
	l->conns[i] = l->conns[--l->nconns];
}

static uint64_t
now_usec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * Ping systemd's watchdog when it is due; returns how long poll() may sleep
 * (ms) before the next ping, capped at cap_ms.  Pings at half of
 * WATCHDOG_USEC, as sd_watchdog_enabled(3) advises.
 */
static int
watchdog(struct loop *l, int cap_ms)
{
	uint64_t now, left;

	if (l->wd_usec == 0)
		return cap_ms;
	now = now_usec();
	if (now >= l->wd_next) {
		if (sd_notify(0, "WATCHDOG=1") < 0)
			log_msg(LOG_WARNING, "sd_notify WATCHDOG=1 failed");
		l->wd_next = now + l->wd_usec;
	}
	left = (l->wd_next - now + 999) / 1000;
	return cap_ms < 0 || left < (uint64_t)cap_ms ? (int)left : cap_ms;
}

static int
run(struct loop *l)
{
	struct pollfd pfd[2 + MAX_CONNS];
	size_t i, n;

	while (!quit) {
		pfd[0].fd = l->listen_fd[ROLE_FRONTEND];
		pfd[1].fd = l->listen_fd[ROLE_ADMIN];
		pfd[0].events = pfd[1].events = POLLIN;
		for (i = 0; i < l->nconns; i++) {
			pfd[2 + i].fd = l->conns[i].fd;
			pfd[2 + i].events = POLLIN;
		}
		n = l->nconns;
		/* Wake for timed work too: audit checkpoints every T minutes,
		 * and the watchdog. */
		if (poll(pfd, 2 + n, watchdog(l, server_tick(l->s))) == -1) {
			if (errno == EINTR)
				continue;
			log_msg(LOG_ERR, "poll: %s", strerror(errno));
			return -1;
		}
		/* Walk connections backwards so drop() cannot skip one. */
		for (i = n; i-- > 0;) {
			if (pfd[2 + i].revents == 0)
				continue;
			if ((pfd[2 + i].revents & POLLIN) == 0 ||
			    serve_one(l, &l->conns[i]) == -1)
				drop(l, i);
		}
		if (pfd[0].revents & POLLIN)
			accept_one(l, ROLE_FRONTEND);
		if (pfd[1].revents & POLLIN)
			accept_one(l, ROLE_ADMIN);
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: iotca-signer [-t] [-c config]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct signer s;
	struct loop l;
	struct sigaction sa;
	const char *path;
	char err[512];
	int ch, test_only = 0, rc = 1;

	log_init("iotca-signer");
	path = config_default_path();
	while ((ch = getopt(argc, argv, "c:t")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test_only = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	memset(&s, 0, sizeof(s));
	memset(&l, 0, sizeof(l));
	l.s = &s;
	l.listen_fd[0] = l.listen_fd[1] = -1;
	/* Everything the signer creates is its own: database, sockets. */
	umask(0077);
	if (config_load(path, &s.cfg, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "%s", err);
		return 1;
	}
	if (test_only) {
		printf("%s: configuration ok\n", path);
		config_free(&s.cfg);
		return 0;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		log_msg(LOG_ERR, "sigaction: %s", strerror(errno));
		goto out;
	}
	if (signer_open(&s, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "%s", err);
		goto out;
	}
	if ((l.listen_fd[ROLE_FRONTEND] = listen_on(s.cfg.signer_socket,
	    s.cfg.socket_group, err, sizeof(err))) == -1 ||
	    (l.listen_fd[ROLE_ADMIN] = listen_on(s.cfg.admin_socket,
	    s.cfg.socket_group, err, sizeof(err))) == -1) {
		log_msg(LOG_ERR, "%s", err);
		goto out;
	}
	if (s.cfg.auto_approve)
		log_msg(LOG_WARNING, "auto_approve is ON: every device is "
		    "approved without an operator. This is a lab setting; never "
		    "use it on a real network");
	log_msg(LOG_NOTICE, "ready: %s key (%s), signer socket %s, admin "
	    "socket %s", ks_is_hardware(s.ks) ? "hardware" : "SOFTWARE FILE",
	    ks_alg_name(s.cfg.key_alg), s.cfg.signer_socket,
	    s.cfg.admin_socket);
	/* Without NOTIFY_SOCKET these are no-ops that return 0. */
	if (sd_notify(0, "READY=1\nSTATUS=serving signer.sock and admin.sock")
	    < 0)
		log_msg(LOG_WARNING, "sd_notify READY=1 failed");
	if (sd_watchdog_enabled(0, &l.wd_usec) > 0) {
		l.wd_usec /= 2;
		l.wd_next = now_usec();
	} else
		l.wd_usec = 0;
	if (run(&l) == 0)
		rc = 0;
	(void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	log_msg(LOG_NOTICE, "stopping");
	signer_shutdown(&s);
out:
	while (l.nconns > 0)
		drop(&l, l.nconns - 1);
	if (l.listen_fd[ROLE_FRONTEND] != -1) {
		close(l.listen_fd[ROLE_FRONTEND]);
		unlink(s.cfg.signer_socket);
	}
	if (l.listen_fd[ROLE_ADMIN] != -1) {
		close(l.listen_fd[ROLE_ADMIN]);
		unlink(s.cfg.admin_socket);
	}
	signer_close(&s);
	return rc;
}
