/*
 * contact: shape checks for account contacts (see contact.h).  The server
 * sends no mail and fetches no URL: this only keeps junk out of acme.db.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contact.h"

/* A DNS host name: LDH labels of 1..63 separated by single dots. */
static int
is_hostname(const char *s, size_t len)
{
	size_t i, label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && !(s[i] == '-' && label > 0))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[len - 1] != '-';
}

/* mailto:local@domain, no hfields ("?"), one address only (no ","). */
static int
valid_mailto(const char *addr)
{
	const char *at = strchr(addr, '@');
	size_t i;

	if (at == NULL || at == addr || strchr(at + 1, '@') != NULL)
		return 0;
	for (i = 0; addr + i < at; i++)
		if (!isgraph((unsigned char)addr[i]) || strchr(",?<>()[]\\\";:",
		    addr[i]) != NULL)
			return 0;
	return is_hostname(at + 1, strlen(at + 1)) && strchr(at + 1, '.') != NULL;
}

/* https://host[:port][/path], host a DNS name (the device's FQDN). */
static int
valid_https(const char *rest)
{
	size_t hlen = strcspn(rest, ":/");
	const char *p = rest + hlen;

	if (!is_hostname(rest, hlen))
		return 0;
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);

		if (end == p + 1 || port < 1 || port > 65535)
			return 0;
		p = end;
	}
	if (*p != '\0' && *p != '/')
		return 0;
	for (; *p != '\0'; p++)
		if (!isgraph((unsigned char)*p) || *p == '#')
			return 0;
	return 1;
}

int
contact_check(const json_t *contacts, const char **type, char *detail,
    size_t detaillen)
{
	size_t i;
	json_t *c;

	if (contacts == NULL)
		return 0;
	*type = "malformed";
	if (!json_is_array(contacts)) {
		snprintf(detail, detaillen, "contact must be an array of strings");
		return -1;
	}
	if (json_array_size(contacts) > CONTACT_MAX) {
		snprintf(detail, detaillen, "at most %d contacts", CONTACT_MAX);
		return -1;
	}
	json_array_foreach(contacts, i, c) {
		const char *s = json_string_value(c);

		if (s == NULL) {
			snprintf(detail, detaillen, "contact must be an array of strings");
			return -1;
		}
		*type = "invalidContact";
		if (strlen(s) > CONTACT_MAX_LEN) {
			snprintf(detail, detaillen, "contact %zu is longer than %d",
			    i, CONTACT_MAX_LEN);
			return -1;
		}
		if (strncmp(s, "mailto:", 7) == 0) {
			if (!valid_mailto(s + 7)) {
				snprintf(detail, detaillen, "contact %zu: not one "
				    "plain mailto: address", i);
				return -1;
			}
		} else if (strncmp(s, "https://", 8) == 0) {
			if (!valid_https(s + 8)) {
				snprintf(detail, detaillen, "contact %zu: an https: "
				    "contact names the device's host name", i);
				return -1;
			}
		} else {
			*type = "unsupportedContact";
			snprintf(detail, detaillen, "contact %zu: only mailto: and "
			    "https: contacts are supported", i);
			return -1;
		}
	}
	return 0;
}
