/*
 * log: one line per event on stderr; under systemd (JOURNAL_STREAM set) a
 * journald entry with MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and IOTCA_PROGRAM
 * fields (falling back to a "<N>"-prefixed stderr line if journald is away).
 * Never log key material or whole requests.
 */
#ifndef IOTCA_LOG_H
#define IOTCA_LOG_H

#include <syslog.h>

void	log_init(const char *progname);
void	log_msg(int priority, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
