/*
 * log: see log.h.  The program name and journald flag are set once at start
 * and only read afterwards.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "log.h"

static const char *log_prog = "iotca";
static int log_journal;

void
log_init(const char *progname)
{
	log_prog = progname;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_msg(int priority, const char *fmt, ...)
{
	static const char *names[] = { "emerg", "alert", "crit", "error",
	    "warning", "notice", "info", "debug" };
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Under systemd: a structured entry; stderr if journald is away. */
	if (log_journal && sd_journal_send("MESSAGE=%s", line,
	    "PRIORITY=%d", priority & 7, "SYSLOG_IDENTIFIER=%s", log_prog,
	    "IOTCA_PROGRAM=%s", log_prog, NULL) >= 0)
		return;
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", priority & 7, line);
	else
		fprintf(stderr, "%s: %s: %s\n", log_prog, names[priority & 7],
		    line);
}
