/*
 * iotca init: make the CA, for operators used to one command.  The key
 * store and the TPM are iotca-signer's alone, so this only runs
 * "iotca-signer -c CONFIG init [--years N] [--algorithm ALG]" in its place,
 * with the same environment and user (run it as the signer's user).
 *
 * The signer is looked for beside this program (a build tree), then in the
 * sbin directory that sits where this bin directory does (an installed tree,
 * under any prefix or staging directory), then in the sbin directory the
 * build was configured for.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef IOTCA_SBINDIR
#define IOTCA_SBINDIR	"/usr/sbin"
#endif
#ifndef IOTCA_BIN_TO_SBIN
#define IOTCA_BIN_TO_SBIN	"../sbin"
#endif

#define SIGNER	"iotca-signer"

static int
is_program(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    access(path, X_OK) == 0;
}

/* The signer's path into out; 0, or -1 with the places looked at in err. */
static int
find_signer(char *out, size_t outlen, char *err, size_t errlen)
{
	char self[PATH_MAX], *slash;
	ssize_t n;
	int len;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL)
			*slash = '\0';
		len = snprintf(out, outlen, "%s/" SIGNER, self);
		if (len > 0 && (size_t)len < outlen && is_program(out))
			return 0;
		len = snprintf(out, outlen, "%s/" IOTCA_BIN_TO_SBIN "/" SIGNER,
		    self);
		if (len > 0 && (size_t)len < outlen && is_program(out))
			return 0;
	} else
		snprintf(self, sizeof(self), "(unknown: %s)", strerror(errno));
	len = snprintf(out, outlen, "%s/" SIGNER, IOTCA_SBINDIR);
	if (len > 0 && (size_t)len < outlen && is_program(out))
		return 0;
	snprintf(err, errlen, "cannot find " SIGNER " in %s, %s/"
	    IOTCA_BIN_TO_SBIN " or " IOTCA_SBINDIR, self, self);
	return -1;
}

int
cmd_init(struct cli *c)
{
	char signer[PATH_MAX + 32], years[16], err[PATH_MAX * 2 + 128];
	char *argv[10];
	int n = 0;

	if (c->nargs != 0) {
		cli_error("usage: iotca init [--years N] [--algorithm ALG]");
		return 2;
	}
	if (find_signer(signer, sizeof(signer), err, sizeof(err)) == -1) {
		cli_error("%s (iotca init runs \"iotca-signer init\")", err);
		return 1;
	}
	argv[n++] = signer;
	argv[n++] = (char *)"-c";
	argv[n++] = (char *)c->config;
	argv[n++] = (char *)"init";
	if (c->years != 0) {
		snprintf(years, sizeof(years), "%d", c->years);
		argv[n++] = (char *)"--years";
		argv[n++] = years;
	}
	if (c->algorithm != NULL) {
		argv[n++] = (char *)"--algorithm";
		argv[n++] = (char *)c->algorithm;
	}
	argv[n] = NULL;
	fflush(NULL);
	execv(signer, argv);
	cli_error("%s: %s", signer, strerror(errno));
	return 1;
}
