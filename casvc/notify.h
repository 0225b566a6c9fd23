/*
 * notify: the operator's notify command ([policy] notify_command), run once
 * for each new pending approval request so that someone hears of it before
 * the client gives up.
 *
 * The command runs without a shell (posix_spawn), in its own process group,
 * with stdin on /dev/null, no descriptor of the signer's but stdout and
 * stderr, and a small fixed environment:
 *
 *	argv:	COMMAND REQUEST-ID DEVICE-ID ACCOUNT NAME...
 *	env:	IOTCA_REQUEST_ID, IOTCA_DEVICE_ID, IOTCA_ACCOUNT,
 *		IOTCA_NAMES (the names separated by spaces), PATH
 *
 * The signer never waits for it: notify_start() returns at once and
 * notify_reap() (from the signer's timer) collects finished commands and
 * kills, with its process group, one that runs longer than
 * NOTIFY_TIMEOUT_SEC.  At most NOTIFY_MAX_RUNNING run at once; a request
 * beyond that is not notified, and says so in its result.
 */
#ifndef IOTCA_NOTIFY_H
#define IOTCA_NOTIFY_H

#include <sys/types.h>
#include <stddef.h>
#include <time.h>

#define NOTIFY_MAX_RUNNING	8
#define NOTIFY_TIMEOUT_SEC	30
#define NOTIFY_MAX_NAMES	32

struct notify;

/* What became of one notification, for its audit record. */
struct notify_result {
	long long	 request;
	pid_t		 pid;		/* 0 if it never started */
	int		 exit_status;	/* when exited */
	int		 signal;	/* when killed by a signal */
	int		 exited;
	int		 timed_out;	/* we killed it after NOTIFY_TIMEOUT_SEC */
	char		 error[160];	/* why it did not start, else "" */
};

/* command may be NULL: then nothing is ever run.  NULL on out of memory. */
struct notify	*notify_new(const char *command);
/* Kills and reaps what still runs, reporting nothing. */
void		 notify_free(struct notify *);

/*
 * Start the command for a request.  0 with *pid set, or -1 with res filled
 * (the spawn error, or too many running) for the caller to record.
 */
int		 notify_start(struct notify *, long long request,
		    const char *device_id, const char *account,
		    const char *const *names, size_t nnames, pid_t *pid,
		    struct notify_result *res);

/*
 * Collect finished commands (never blocks) and kill overdue ones; calls
 * done(arg, result) for each that finished.  Returns the milliseconds until
 * it should be called again, or -1 when nothing runs.
 */
int		 notify_reap(struct notify *, time_t now,
		    void (*done)(void *, const struct notify_result *), void *arg);

#endif
