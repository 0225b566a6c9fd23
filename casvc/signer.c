/*
 * iotca-signer: the privileged process.  It alone opens the CA key (through
 * the keystore) and signer.db.  It listens on two SOCK_SEQPACKET sockets:
 * signer.sock for the front end and admin.sock for operators, identifies
 * each peer with SO_PEERCRED (and SO_PEERGROUPS), and answers one reply per
 * request.  One loop serves every peer; the CA key signs in a thread of its
 * own (keysigner.h), so the loop prepares the next certificates and answers
 * operators while a TPM signs.  A peer whose request waits for the key sends
 * nothing more until it has its reply; a peer that misbehaves is answered or
 * dropped, never waited on.
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
#include "signer_init.h"

#define MAX_GROUPS	64
#define LOG_EVERY_USEC	(10 * 1000000ULL)	/* a repeated warning, at most */

/*
 * Connections.  Each socket has its own budget ([signer]
 * frontend_connections, admin_connections), so that a front end that
 * leaks or was taken over cannot crowd operators out, and a peer that
 * sends no request for idle_timeout seconds is dropped.  When admin.sock's
 * budget is full, the operator connection idle longest makes room for the
 * new one: a script that leaks connections must not lock out a human, and
 * operators are trusted with far more than each other's idle sockets.  A
 * full signer.sock refuses instead: its budget is above what iotca-acmed
 * opens at once (one per request in flight), so being full means a leak
 * or an attack, which the refusal keeps to the front end.
 */
struct conn {
	int		 fd;
	uint64_t	 id;		/* tags its requests; never reused */
	int		 waiting;	/* its request's reply comes later */
	struct peer	 peer;
	uint64_t	 last;		/* CLOCK_MONOTONIC usec: accepted, or last request */
};

/* A warning that an attacker could repeat: once per LOG_EVERY_USEC, with
 * how many were left out since. */
struct ratelog {
	uint64_t	 next;
	unsigned long	 quiet;
};

struct loop {
	struct signer	*s;
	int		 listen_fd[2];	/* ROLE_FRONTEND, ROLE_ADMIN */
	struct conn	*conns;		/* budget[0] + budget[1] */
	struct pollfd	*pfd;		/* 3 + the same */
	size_t		 nconns;
	uint64_t	 next_id;
	size_t		 open[2];	/* per role */
	size_t		 budget[2];	/* per role */
	uint64_t	 idle_usec;
	struct ratelog	 refused_log, evicted_log, idle_log;
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

/* Best effort, never blocking: a peer that does not read loses its reply.
 * A reply too large for a record goes out as tooLarge, never as silence. */
static void
reply(int fd, json_t *resp)
{
	size_t size;

	if (resp == NULL)
		resp = proto_error(PROTO_E_INTERNAL, "out of memory");
	if (resp == NULL)
		return;
	switch (proto_send_reply(fd, resp, &size)) {
	case 1:
		log_msg(LOG_WARNING, "reply too large (%zu bytes): sent tooLarge",
		    size);
		break;
	case -1:
		if (errno != EPIPE)
			log_msg(LOG_WARNING, "reply: %s", strerror(errno));
		break;
	}
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

static uint64_t now_usec(void);
static void drop(struct loop *, size_t);

/* 1 if the warning may be logged now; *quiet then holds how many were
 * left out before it. */
static int
ratelog_due(struct ratelog *r, unsigned long *quiet)
{
	uint64_t now = now_usec();

	if (now < r->next) {
		r->quiet++;
		return 0;
	}
	*quiet = r->quiet;
	r->quiet = 0;
	r->next = now + LOG_EVERY_USEC;
	return 1;
}

static const char *
socket_name(enum role role)
{
	return role == ROLE_ADMIN ? "admin socket" : "signer socket";
}

/* Make room on a full admin.sock: drop the connection idle longest. */
static void
evict_idlest(struct loop *l, enum role role)
{
	unsigned long quiet;
	size_t i, victim = l->nconns;

	for (i = 0; i < l->nconns; i++)
		if (l->conns[i].peer.role == role && (victim == l->nconns ||
		    l->conns[i].last < l->conns[victim].last))
			victim = i;
	if (victim == l->nconns)
		return;
	if (ratelog_due(&l->evicted_log, &quiet))
		log_msg(LOG_WARNING, "%s full (%zu): dropped the connection "
		    "idle longest, %s, for a new one (%lu more not logged)",
		    socket_name(role), l->budget[role],
		    l->conns[victim].peer.who, quiet);
	drop(l, victim);
}

static void
accept_one(struct loop *l, enum role role)
{
	struct conn *c;
	unsigned long quiet;
	int fd;

	fd = accept4(l->listen_fd[role], NULL, NULL, SOCK_CLOEXEC |
	    SOCK_NONBLOCK);
	if (fd == -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_msg(LOG_WARNING, "accept: %s", strerror(errno));
		return;
	}
	if (role == ROLE_FRONTEND && l->open[role] >= l->budget[role]) {
		reply(fd, proto_error(PROTO_E_INTERNAL, "too many connections"));
		close(fd);
		if (ratelog_due(&l->refused_log, &quiet))
			log_msg(LOG_WARNING, "connection refused on the %s: %zu "
			    "already open (%lu more refused, not logged)",
			    socket_name(role), l->budget[role], quiet);
		return;
	}
	c = &l->conns[l->nconns];
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->id = ++l->next_id;
	c->peer.role = role;
	c->last = now_usec();
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
	if (l->open[role] >= l->budget[role]) {
		/* The new peer was written in the free slot at the end; the
		 * victim's slot is refilled from the end, so keep it aside. */
		struct conn fresh = *c;

		evict_idlest(l, role);
		c = &l->conns[l->nconns];
		*c = fresh;
	}
	l->nconns++;
	l->open[role]++;
}

/* Serve one record from a connection; 0 to keep it, -1 to close it. */
static int
serve_one(struct loop *l, struct conn *c)
{
	char reason[256];
	json_t *req, *resp;

	switch (proto_recv(c->fd, 0, &req, reason, sizeof(reason))) {
	case PROTO_OK:
		c->last = now_usec();
		if (server_handle(l->s, &c->peer, req, c->id, &resp) == 0)
			reply(c->fd, resp);
		else
			c->waiting = 1;
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

/* A reply that came later (server_set_reply): to its peer, if still here. */
static void
deliver(void *arg, uint64_t tag, json_t *resp)
{
	struct loop *l = arg;
	size_t i;

	for (i = 0; i < l->nconns; i++)
		if (l->conns[i].id == tag) {
			reply(l->conns[i].fd, resp);
			l->conns[i].waiting = 0;
			l->conns[i].last = now_usec();
			return;
		}
	json_decref(resp);	/* it left meanwhile */
}

static void
drop(struct loop *l, size_t i)
{
	close(l->conns[i].fd);
	l->open[l->conns[i].peer.role]--;
	l->conns[i] = l->conns[--l->nconns];
}

/*
 * Drop the peers that sent no request for idle_timeout; returns how long
 * poll() may sleep (ms) before the next one is due, capped at cap_ms.
 */
static int
drop_idle(struct loop *l, int cap_ms)
{
	uint64_t now = now_usec(), next = UINT64_MAX, left;
	unsigned long quiet;
	size_t i;

	for (i = l->nconns; i-- > 0;) {
		if (l->conns[i].waiting)
			continue;	/* we are the slow one */
		if (now - l->conns[i].last >= l->idle_usec) {
			if (ratelog_due(&l->idle_log, &quiet))
				log_msg(LOG_INFO, "dropped %s: idle for %llu s "
				    "(%lu more not logged)", l->conns[i].peer.who,
				    (unsigned long long)(l->idle_usec / 1000000),
				    quiet);
			drop(l, i);
		} else if (l->conns[i].last + l->idle_usec < next)
			next = l->conns[i].last + l->idle_usec;
	}
	if (next == UINT64_MAX)
		return cap_ms;
	left = (next - now + 999) / 1000;
	return cap_ms < 0 || left < (uint64_t)cap_ms ? (int)left : cap_ms;
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
	struct pollfd *pfd = l->pfd;
	size_t i, n;
	int wait_ms;

	while (!quit) {
		/* Wake for timed work too: audit checkpoints every T minutes,
		 * the watchdog, and the next idle peer to drop. */
		wait_ms = drop_idle(l, watchdog(l, server_tick(l->s)));
		pfd[0].fd = l->listen_fd[ROLE_FRONTEND];
		pfd[1].fd = l->listen_fd[ROLE_ADMIN];
		pfd[2].fd = server_pollfd(l->s);
		pfd[0].events = pfd[1].events = pfd[2].events = POLLIN;
		for (i = 0; i < l->nconns; i++) {
			pfd[3 + i].fd = l->conns[i].fd;
			/* A peer waiting for a reply is not read: replies
			 * keep the order of requests.  Hang-ups still show. */
			pfd[3 + i].events = l->conns[i].waiting ? 0 : POLLIN;
		}
		n = l->nconns;
		if (poll(pfd, 3 + n, wait_ms) == -1) {
			if (errno == EINTR)
				continue;
			log_msg(LOG_ERR, "poll: %s", strerror(errno));
			return -1;
		}
		/* Finished certificates first: their peers have waited
		 * longest, and the key gets its next work sooner. */
		if (pfd[2].revents & POLLIN)
			server_collect(l->s);
		/* Walk connections backwards so drop() cannot skip one;
		 * server_collect() changed no slot. */
		for (i = n; i-- > 0;) {
			if (pfd[3 + i].revents == 0)
				continue;
			if ((pfd[3 + i].revents & POLLIN) == 0 ||
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

/* The connection tables, sized by the sockets' budgets. */
static int
loop_alloc(struct loop *l, const struct config *cfg)
{
	size_t n;

	l->budget[ROLE_FRONTEND] = (size_t)cfg->frontend_connections;
	l->budget[ROLE_ADMIN] = (size_t)cfg->admin_connections;
	l->idle_usec = (uint64_t)cfg->idle_timeout * 1000000;
	/* One slot more: a new operator waits there while another is
	 * dropped to make room. */
	n = l->budget[ROLE_FRONTEND] + l->budget[ROLE_ADMIN] + 1;
	if ((l->conns = calloc(n, sizeof(*l->conns))) == NULL ||
	    (l->pfd = calloc(n + 3, sizeof(*l->pfd))) == NULL)
		return -1;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: iotca-signer [-t] [-c config]\n"
	    "       iotca-signer [-c config] init [--years N] [--algorithm ALG]\n");
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
	/* "+": options after a command are the command's. */
	while ((ch = getopt(argc, argv, "+c:t")) != -1) {
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
	if (optind < argc && !test_only && strcmp(argv[optind], "init") == 0) {
		umask(0077);
		return signer_init(path, argc - optind, argv + optind);
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
	if (loop_alloc(&l, &s.cfg) == -1) {
		log_msg(LOG_ERR, "out of memory");
		goto out;
	}
	if (s.cfg.auto_approve)
		log_msg(LOG_WARNING, "auto_approve is ON: every device is "
		    "approved without an operator. This is a lab setting; never "
		    "use it on a real network");
	log_msg(LOG_NOTICE, "ready: %s key (%s), signer socket %s, admin "
	    "socket %s", ks_is_hardware(s.ks) ? "hardware" : "SOFTWARE FILE",
	    s.cfg.key_alg, s.cfg.signer_socket,
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
	server_set_reply(&s, deliver, &l);
	if (run(&l) == 0)
		rc = 0;
	(void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	log_msg(LOG_NOTICE, "stopping");
	server_drain(&s);
	signer_shutdown(&s);
out:
	while (l.nconns > 0)
		drop(&l, l.nconns - 1);
	free(l.conns);
	free(l.pfd);
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
