/*
 * notify: the notify command for new pending requests (see notify.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* posix_spawn_file_actions_addclosefrom_np */
#endif

#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notify.h"

#define NOTIFY_NAMES_MAX	4096	/* IOTCA_NAMES, the names joined */
#define NOTIFY_POLL_MS		250	/* how often to look while one runs */

struct running {
	pid_t		 pid;		/* 0: free slot */
	long long	 request;
	time_t		 started;
	int		 killed;
};

struct notify {
	char		*command;
	struct running	 run[NOTIFY_MAX_RUNNING];
};

struct notify *
notify_new(const char *command)
{
	struct notify *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	if (command != NULL && (n->command = strdup(command)) == NULL) {
		free(n);
		return NULL;
	}
	return n;
}

void
notify_free(struct notify *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < NOTIFY_MAX_RUNNING; i++) {
		if (n->run[i].pid <= 0)
			continue;
		(void)kill(-n->run[i].pid, SIGKILL);
		while (waitpid(n->run[i].pid, NULL, 0) == -1 && errno == EINTR)
			continue;
	}
	free(n->command);
	free(n);
}

static struct running *
free_slot(struct notify *n)
{
	size_t i;

	for (i = 0; i < NOTIFY_MAX_RUNNING; i++)
		if (n->run[i].pid == 0)
			return &n->run[i];
	return NULL;
}

static int __attribute__((format(printf, 3, 4)))
fail_result(struct notify_result *res, long long request, const char *fmt, ...)
{
	va_list ap;

	memset(res, 0, sizeof(*res));
	res->request = request;
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
	return -1;
}

/* "IOTCA_NAMES=a.local b.home.arpa 192.168.1.20"; -1 if too long. */
static int
names_env(char *out, size_t outlen, const char *const *names, size_t nnames)
{
	size_t i, o;
	int w;

	w = snprintf(out, outlen, "IOTCA_NAMES=");
	if (w < 0 || (size_t)w >= outlen)
		return -1;
	o = (size_t)w;
	for (i = 0; i < nnames; i++) {
		w = snprintf(out + o, outlen - o, "%s%s", i > 0 ? " " : "",
		    names[i]);
		if (w < 0 || (size_t)w >= outlen - o)
			return -1;
		o += (size_t)w;
	}
	return 0;
}

/*
 * The child starts clean: stdin on /dev/null, every descriptor above stderr
 * closed (the sockets, signer.db, the TPM), default signal handling with
 * nothing blocked, a process group of its own so a timeout kills all of it.
 */
static int
spawn_setup(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at)
{
	static const int defsigs[] = { SIGPIPE, SIGHUP, SIGINT, SIGTERM,
	    SIGCHLD, SIGUSR1, SIGUSR2 };
	sigset_t set;
	size_t i;
	int rc;

	if ((rc = posix_spawn_file_actions_init(fa)) != 0)
		return rc;
	if ((rc = posix_spawnattr_init(at)) != 0) {
		posix_spawn_file_actions_destroy(fa);
		return rc;
	}
	sigemptyset(&set);
	for (i = 0; i < sizeof(defsigs) / sizeof(defsigs[0]); i++)
		sigaddset(&set, defsigs[i]);
	if ((rc = posix_spawn_file_actions_addopen(fa, STDIN_FILENO,
	    "/dev/null", O_RDONLY, 0)) != 0 ||
	    (rc = posix_spawn_file_actions_addclosefrom_np(fa,
	    STDERR_FILENO + 1)) != 0 ||
	    (rc = posix_spawnattr_setsigdefault(at, &set)) != 0 ||
	    (sigemptyset(&set), rc = posix_spawnattr_setsigmask(at, &set)) != 0 ||
	    (rc = posix_spawnattr_setpgroup(at, 0)) != 0 ||
	    (rc = posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGDEF |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP)) != 0) {
		posix_spawn_file_actions_destroy(fa);
		posix_spawnattr_destroy(at);
		return rc;
	}
	return 0;
}

int
notify_start(struct notify *n, long long request, const char *device_id,
    const char *account, const char *const *names, size_t nnames, pid_t *pid,
    struct notify_result *res)
{
	char reqenv[48], devenv[96], acctenv[160], namesenv[NOTIFY_NAMES_MAX];
	char reqarg[24];
	char *argv[4 + NOTIFY_MAX_NAMES + 1];
	char *envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", reqenv, devenv,
	    acctenv, namesenv, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	struct running *slot;
	size_t i;
	int rc;

	*pid = 0;
	if (n == NULL || n->command == NULL)
		return fail_result(res, request, "%s", "no notify_command");
	if (nnames > NOTIFY_MAX_NAMES)
		return fail_result(res, request, "%s", "too many names");
	if ((slot = free_slot(n)) == NULL)
		return fail_result(res, request, "not run: %d notify commands "
		    "are still running", NOTIFY_MAX_RUNNING);
	snprintf(reqarg, sizeof(reqarg), "%lld", request);
	if (snprintf(reqenv, sizeof(reqenv), "IOTCA_REQUEST_ID=%lld",
	    request) >= (int)sizeof(reqenv) ||
	    snprintf(devenv, sizeof(devenv), "IOTCA_DEVICE_ID=%s", device_id) >=
	    (int)sizeof(devenv) ||
	    snprintf(acctenv, sizeof(acctenv), "IOTCA_ACCOUNT=%s", account) >=
	    (int)sizeof(acctenv) ||
	    names_env(namesenv, sizeof(namesenv), names, nnames) == -1)
		return fail_result(res, request, "%s", "arguments too long");
	argv[0] = n->command;
	argv[1] = reqarg;
	argv[2] = (char *)device_id;
	argv[3] = (char *)account;
	for (i = 0; i < nnames; i++)
		argv[4 + i] = (char *)names[i];
	argv[4 + nnames] = NULL;

	if ((rc = spawn_setup(&fa, &at)) != 0)
		return fail_result(res, request, "cannot set up: %s",
		    strerror(rc));
	rc = posix_spawn(pid, n->command, &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		*pid = 0;
		return fail_result(res, request, "cannot run: %s",
		    strerror(rc));
	}
	slot->pid = *pid;
	slot->request = request;
	slot->started = time(NULL);
	slot->killed = 0;
	return 0;
}

int
notify_reap(struct notify *n, time_t now,
    void (*done)(void *, const struct notify_result *), void *arg)
{
	struct notify_result res;
	struct running *r;
	size_t i;
	pid_t got;
	int st, busy = 0;

	if (n == NULL)
		return -1;
	for (i = 0; i < NOTIFY_MAX_RUNNING; i++) {
		r = &n->run[i];
		if (r->pid == 0)
			continue;
		while ((got = waitpid(r->pid, &st, WNOHANG)) == -1 &&
		    errno == EINTR)
			continue;
		if (got == 0) {
			/* Still running: past its time, the whole group goes. */
			if (!r->killed && now - r->started >=
			    NOTIFY_TIMEOUT_SEC) {
				(void)kill(-r->pid, SIGKILL);
				r->killed = 1;
			}
			busy = 1;
			continue;
		}
		memset(&res, 0, sizeof(res));
		res.request = r->request;
		res.pid = r->pid;
		res.timed_out = r->killed;
		if (got == -1)
			snprintf(res.error, sizeof(res.error), "lost: %s",
			    strerror(errno));
		else if (WIFEXITED(st)) {
			res.exited = 1;
			res.exit_status = WEXITSTATUS(st);
		} else if (WIFSIGNALED(st))
			res.signal = WTERMSIG(st);
		r->pid = 0;
		if (done != NULL)
			done(arg, &res);
	}
	return busy ? NOTIFY_POLL_MS : -1;
}
