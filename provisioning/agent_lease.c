/*
 * agent_lease: read option 125 and the domain from a udhcpc-style lease
 * file (KEY=VALUE lines).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_lease.h"
#include "discovery.h"

#define OPT125_KEY	"opt125="
#define DOMAIN_KEY	"domain="
/* Our longest line: the key, the hex of the largest payload, a newline. */
#define LEASE_LINE_MAX	(sizeof(OPT125_KEY) + 2 * DHCP_OPT125_MAX + 2)

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
parse_hex(const char *s, size_t n, struct agent_lease *l, char *why,
    size_t whylen)
{
	size_t i;
	int hi, lo;

	if (n == 0) {
		snprintf(why, whylen, "opt125 is empty");
		return -1;
	}
	if (n % 2 != 0) {
		snprintf(why, whylen, "opt125 has an odd number of hex digits");
		return -1;
	}
	if (n / 2 > sizeof(l->opt125)) {
		snprintf(why, whylen, "opt125 is longer than %zu bytes",
		    sizeof(l->opt125));
		return -1;
	}
	for (i = 0; i < n; i += 2) {
		if ((hi = hexval(s[i])) == -1 || (lo = hexval(s[i + 1])) == -1) {
			snprintf(why, whylen, "opt125 has a character that is "
			    "not a hex digit at offset %zu", hexval(s[i]) == -1 ?
			    i : i + 1);
			return -1;
		}
		l->opt125[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	l->opt125_len = n / 2;
	return 0;
}

/* One line without its newline.  0, or -1 with the reason in why. */
static int
parse_line(const char *s, size_t n, struct agent_lease *l, char *why,
    size_t whylen)
{
	size_t kl;

	kl = strlen(OPT125_KEY);
	if (n >= kl && memcmp(s, OPT125_KEY, kl) == 0)
		return parse_hex(s + kl, n - kl, l, why, whylen);
	kl = strlen(DOMAIN_KEY);
	if (n >= kl && memcmp(s, DOMAIN_KEY, kl) == 0) {
		/* udhcpc's domain may list several, space-separated: the first */
		const char *d = s + kl, *sp = memchr(d, ' ', n - kl);
		size_t dl = sp != NULL ? (size_t)(sp - d) : n - kl;

		if (dl == 0 || dl >= sizeof(l->domain) ||
		    !disc_valid_hostname(d, dl, 1)) {
			snprintf(why, whylen, "domain is not a host name");
			return -1;
		}
		memcpy(l->domain, d, dl);
		l->domain[dl] = '\0';
	}
	return 0;
}

static int
is_ours(const char *s)
{
	return strncmp(s, OPT125_KEY, strlen(OPT125_KEY)) == 0 ||
	    strncmp(s, DOMAIN_KEY, strlen(DOMAIN_KEY)) == 0;
}

int
agent_lease_read(const char *path, struct agent_lease *out, char *err,
    size_t errlen)
{
	struct agent_lease l;
	char buf[LEASE_LINE_MAX + 1], why[128];
	FILE *fp;
	size_t n;
	int line = 0, skipping = 0;

	memset(&l, 0, sizeof(l));
	if ((fp = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		return -1;
	}
	while (fgets(buf, sizeof(buf), fp) != NULL) {
		n = strlen(buf);
		if (skipping) {
			/* the rest of a long line of someone else's */
			if (n > 0 && buf[n - 1] == '\n')
				skipping = 0;
			continue;
		}
		line++;
		if (n > 0 && buf[n - 1] == '\n')
			buf[--n] = '\0';
		else if (!feof(fp)) {
			if (is_ours(buf)) {
				snprintf(err, errlen, "%s:%d: line too long",
				    path, line);
				goto fail;
			}
			skipping = 1;
			continue;
		}
		if (parse_line(buf, n, &l, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s:%d: %s", path, line, why);
			goto fail;
		}
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	fclose(fp);
	*out = l;
	return l.opt125_len > 0 ? 1 : 0;
fail:
	fclose(fp);
	return -1;
}
