/*
 * contact: account contact URIs (RFC 8555 7.3, draft-sweet-iot-acme 3.4.2):
 * "mailto:" with one plain address, or "https:" naming one of the device's
 * host names.  Anything else is refused with the ACME error type to send.
 */
#ifndef IOTCA_CONTACT_H
#define IOTCA_CONTACT_H

#include <stddef.h>
#include <jansson.h>

#define CONTACT_MAX		8
#define CONTACT_MAX_LEN		256

/* 0 if contacts (a JSON array, or NULL for none) is acceptable; else -1
 * with *type ("invalidContact", "unsupportedContact", "malformed") and
 * detail. */
int	contact_check(const json_t *contacts, const char **type,
	    char *detail, size_t detaillen);

#endif
