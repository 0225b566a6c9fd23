/*
 * signer_init: "iotca-signer init", the making of the CA (a fresh key in
 * the key store, the root, the audit log's first record), in the one binary
 * that holds key-store and TPM code.  "iotca init" runs it.
 */
#ifndef IOTCA_SIGNER_INIT_H
#define IOTCA_SIGNER_INIT_H

/* Run init with the configuration at config_path; argv[0] is "init", then
 * its options.  The exit status: 0 made, 1 refused or failed, 2 usage. */
int	signer_init(const char *config_path, int argc, char *argv[]);

#endif
