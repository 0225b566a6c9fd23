/*
 * iotca-agent: the device's side of draft-sweet-iot-acme (3.1, 3.3, 3.5,
 * 3.6, 4.5-4.11).  On the network of its interface it finds the local ACME
 * server (agent_net), pins the server's root on first use (agent_tofu),
 * and keeps a certificate for <id>.local and <id>.<domain> with one ACME
 * account per network (acmeclient), renewing at two thirds of the
 * lifetime or inside the server's ARI window.
 *
 * State, per network (draft 4.9), under STATE_DIR/net-KEY/ (KEY: see
 * agent_net.h), the directory 0700:
 *	root.pem	the pinned root
 *	root-new.pem	a different root a server offered (until accepted)
 *	account.key	the ACME account key (0600)
 *	cert.pem	the issued chain; key.pem its key (0600)
 *	name		the device name certified on this network
 *	status.json	server, fingerprint, expiry, renewal time, last error
 * Every file is replaced by rename, so a crash leaves the old or the new.
 */
#ifndef IOTCA_AGENT_H
#define IOTCA_AGENT_H

#define AGENT_DEFAULT_CONFIG	"/etc/iotca/agent.conf"

#endif
