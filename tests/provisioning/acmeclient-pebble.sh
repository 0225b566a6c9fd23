#!/usr/bin/env bash
# Run test_acmeclient_pebble against Debian's Pebble on loopback, rejecting
# half of the good nonces (PEBBLE_WFE_NONCEREJECT=50) so that every request
# path goes through the badNonce retry.  Exit 77 (skip) without Pebble.
#
# usage: acmeclient-pebble.sh TEST_BINARY
set -euo pipefail
test_bin=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=pebble-lib.sh
. "$here/pebble-lib.sh"

if ! pebble_have; then
	echo "pebble is not installed (Debian: apt-get install pebble): skipped"
	exit 77
fi
dir=$(mktemp -d /tmp/iotca-pebble.XXXXXX)
cleanup() { pebble_stop; rm -rf "$dir"; }
trap cleanup EXIT

http01=$(pebble_free_port)
pebble_start "$dir" "$http01" 50

rc=0
ACME_TEST_DIRECTORY=$PEBBLE_DIRECTORY ACME_TEST_CA=$PEBBLE_CA \
	ACME_TEST_HTTP01_PORT=$http01 timeout 120 "$test_bin" || rc=$?
if [ "$rc" -ne 0 ]; then echo "--- pebble log"; tail -n 30 "$dir/pebble.log" || true; fi
exit "$rc"
