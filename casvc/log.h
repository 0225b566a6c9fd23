/*
 * log: one line per event on stderr.  Under systemd (JOURNAL_STREAM set) each
 * line carries a "<N>" syslog priority prefix that journald understands.
 * Never log key material or whole requests.
 */
#ifndef IOTCA_LOG_H
#define IOTCA_LOG_H

#include <syslog.h>

void	log_init(const char *progname);
void	log_msg(int priority, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
