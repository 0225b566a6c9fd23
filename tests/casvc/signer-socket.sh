#!/usr/bin/env bash
# Start a signer (file key: this test is about the socket, not the key),
# hammer its sockets with bad records, and check it survived.
set -euo pipefail
test_bin=$1
dir=$(mktemp -d /tmp/iotca-sock.XXXXXX)
cleanup() { "$IOTCA_SRC/scripts/devstack" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

"$IOTCA_SRC/scripts/devstack" start "$dir" --key file >/dev/null
# Let group root traverse DIR so a foreign uid can reach the socket file and
# be refused by the signer itself (SO_PEERCRED), not by the file system.
chmod 0710 "$dir"
pid=$(cat "$dir/signer.pid")
"$test_bin" "$dir/signer.sock" "$dir/admin.sock"
kill -0 "$pid" || { echo "iotca-signer died"; exit 1; }
grep -q "refused operator uid 65534" "$dir/signer.log" || { echo "refusal not logged"; exit 1; }
grep -q "bad message from" "$dir/signer.log" || { echo "bad message not logged"; exit 1; }
echo "signer still serving (pid $pid)"
"$IOTCA_SRC/scripts/devstack" stop "$dir" >/dev/null
if grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$dir/signer.log"; then
	echo "sanitizer report from iotca-signer"; exit 1
fi
