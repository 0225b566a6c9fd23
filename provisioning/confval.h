/*
 * confval: the value setters iotca-agent and iotca-est-ra share for their
 * own INI files, on top of config.h's first-error record (config_error,
 * config_fail) and parser (config_ini_parse, which makes "FILE:LINE:
 * reason").
 *
 * Each setter returns what an inih handler returns: 1 for a good value,
 * 0 after recording the reason in cv->e (the first reason of a parse is
 * kept).  name is the key as the file spells it; the reasons are part of
 * the programs' interface and do not change:
 *	"NAME is empty"				(a string)
 *	"NAME is given twice"			(a string, with once set)
 *	"NAME must be an absolute path"		(a path)
 *	"NAME must be a number from LO to HI"	(a decimal number)
 *	"NAME must be true or false"		(true, yes, false, no)
 */
#ifndef IOTCA_CONFVAL_H
#define IOTCA_CONFVAL_H

#include "config.h"

struct confval {
	struct config_error	 e;
	int			 once;	/* 1: a string key given twice is
					 * refused; 0: the last one counts */
};

/* A non-empty string, copied into *dst (the old value freed). */
int	confval_str(struct confval *, char **dst, const char *name,
	    const char *v);
/* A string that begins with '/'. */
int	confval_path(struct confval *, char **dst, const char *name,
	    const char *v);
int	confval_long(struct confval *, long *dst, const char *name,
	    const char *v, long lo, long hi);
/* lo..hi must lie within int. */
int	confval_int(struct confval *, int *dst, const char *name,
	    const char *v, long lo, long hi);
int	confval_bool(struct confval *, int *dst, const char *name,
	    const char *v);

#endif
