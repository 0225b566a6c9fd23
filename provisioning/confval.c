/*
 * confval: INI value setters for the provisioning programs (see confval.h).
 */
#include <stdlib.h>
#include <string.h>

#include "confval.h"

int
confval_str(struct confval *cv, char **dst, const char *name, const char *v)
{
	if (v[0] == '\0')
		return config_fail(&cv->e, "%s is empty", name);
	if (cv->once && *dst != NULL)
		return config_fail(&cv->e, "%s is given twice", name);
	free(*dst);
	if ((*dst = strdup(v)) == NULL)
		return config_fail(&cv->e, "out of memory");
	return 1;
}

int
confval_path(struct confval *cv, char **dst, const char *name, const char *v)
{
	if (v[0] != '/')
		return config_fail(&cv->e, "%s must be an absolute path", name);
	return confval_str(cv, dst, name, v);
}

int
confval_long(struct confval *cv, long *dst, const char *name, const char *v,
    long lo, long hi)
{
	if (config_parse_long(v, lo, hi, dst) == -1)
		return config_fail(&cv->e,
		    "%s must be a number from %ld to %ld", name, lo, hi);
	return 1;
}

int
confval_int(struct confval *cv, int *dst, const char *name, const char *v,
    long lo, long hi)
{
	long n;

	if (!confval_long(cv, &n, name, v, lo, hi))
		return 0;
	*dst = (int)n;
	return 1;
}

int
confval_bool(struct confval *cv, int *dst, const char *name, const char *v)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
		*dst = 1;
	else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
		*dst = 0;
	else
		return config_fail(&cv->e, "%s must be true or false", name);
	return 1;
}
