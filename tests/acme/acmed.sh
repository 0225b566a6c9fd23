#!/usr/bin/env bash
# iotca-acmed end to end, on loopback, with the real signer (devstack):
#   protocol  tests/acme/acmed_protocol.py: every refusal with its problem
#             type, the http-01 order flow with operator approval through
#             `iotca approve`/`deny`, restarts while an order waits, download,
#             renewalInfo, revocation, keyChange (no auto-approve)
#   lego      a stock client (Debian's lego) gets, and revokes, a certificate
#             with http-01 under --auto-approve
#   tls       the listener: TLS 1.2 and 1.3 only, leaf + root served, the
#             server key never on disk, a renewal (SIGHUP) swaps the
#             certificate without closing the port
#   config    iotca-acmed -t refuses bad [acme] values naming FILE:LINE
#   expiry    lego's order waits for an operator who never comes: it ends
#             invalid at its expiry with the reason; once the operator
#             approves, lego's next order is issued at once
#
# usage: acmed.sh protocol|lego|tls|config|expiry
set -euo pipefail
part=${1:?protocol, lego, tls, config or expiry}
src=${IOTCA_SRC:?}
bin=${IOTCA_BIN:?}
dir=$(mktemp -d /tmp/iotca-acmed.XXXXXX)
# Stop the stack, then fail if a sanitizer build of a daemon complained
# (their stderr goes to the logs, not to this test's output).
cleanup() {
	local rc=$?
	"$src/scripts/devstack" stop "$dir/stack" >/dev/null 2>&1 || true
	if grep -l "Sanitizer\|runtime error:" "$dir"/stack/*.log 2>/dev/null; then
		grep -h -A30 "Sanitizer\|runtime error:" "$dir"/stack/*.log | head -60
		echo "not ok - a daemon's sanitizer report (above)"
		rc=1
	fi
	rm -rf "$dir"
	exit $rc
}
trap cleanup EXIT

free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$(( (RANDOM % 10000) + 10000 ))	# below the ephemeral range
		(exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
	done
	return 1
}

start_stack() {	# start_stack EXTRA-FLAGS...
	http01=$(free_port)
	cat >"$dir/hosts" <<HOSTS
127.0.0.1 dev-1.local dev-2.local dev-2.home.arpa dev-4.local dev-5.local
8.8.8.8 dev-6.local
HOSTS
	"$src/scripts/devstack" start "$dir/stack" --key file --http01-port "$http01" \
		--hosts "$dir/hosts" "$@" >/dev/null
	# shellcheck disable=SC1091
	. "$dir/stack/env"
}

lego_run() {
	LEGO_CA_CERTIFICATES=$IOTCA_ROOT_PEM timeout 200 lego --server "$IOTCA_ACME_DIRECTORY" \
		--path "$dir/lego" --email x@home.arpa --accept-tos --key-type ec384 \
		--http --http.port "127.0.0.1:$http01" --domains dev-1.local "$@"
}

case $part in
protocol)
	start_stack
	STACK=$dir/stack HTTP01_PORT=$http01 python3 "$src/tests/acme/acmed_protocol.py"
	;;
lego)
	command -v lego >/dev/null || { echo "lego is not installed (apt-get install lego)"; exit 77; }
	start_stack --auto-approve
	fail=0
	if lego_run run >"$dir/lego.out" 2>&1; then echo "ok - lego run"
	else echo "not ok - lego run"; tail -20 "$dir/lego.out"; tail -20 "$dir/stack/acmed.log"; fail=1; fi
	crt=$dir/lego/certificates/dev-1.local.crt
	if openssl verify -CAfile "$IOTCA_ROOT_PEM" -untrusted "$crt" "$crt" >/dev/null 2>&1; then
		echo "ok - lego's certificate chains to the root"
	else echo "not ok - lego's certificate does not chain"; fail=1; fi
	if openssl x509 -in "$crt" -noout -ext subjectAltName | grep -q "DNS:dev-1.local"; then
		echo "ok - it names dev-1.local"
	else echo "not ok - it does not name dev-1.local"; fail=1; fi
	if lego_run revoke >"$dir/lego-revoke.out" 2>&1 && grep -q "revoked" "$dir/lego-revoke.out"; then
		echo "ok - lego revoke"
	else echo "not ok - lego revoke"; tail -5 "$dir/lego-revoke.out"; fail=1; fi
	exit $fail
	;;
tls)
	start_stack
	fail=0
	hostport=${IOTCA_ACME_DIRECTORY#https://}
	hostport=${hostport%%/*}
	t() { if "$@" >/dev/null 2>&1; then echo "ok - $what"; else echo "not ok - $what"; fail=1; fi; }
	nt() { if "$@" >/dev/null 2>&1; then echo "not ok - $what"; fail=1; else echo "ok - $what"; fi; }
	sclient() { openssl s_client -connect "$hostport" -CAfile "$IOTCA_ROOT_PEM" "$@" </dev/null 2>&1; }
	what="TLS 1.3 verifies against the root" t sh -c "openssl s_client -connect $hostport -CAfile $IOTCA_ROOT_PEM -tls1_3 </dev/null 2>&1 | grep -q 'Verify return code: 0'"
	what="TLS 1.2 verifies against the root" t sh -c "openssl s_client -connect $hostport -CAfile $IOTCA_ROOT_PEM -tls1_2 </dev/null 2>&1 | grep -q 'Verify return code: 0'"
	what="TLS 1.1 refused" nt sh -c "openssl s_client -connect $hostport -tls1_1 -cipher DEFAULT@SECLEVEL=0 </dev/null 2>&1 | grep -q 'Cipher is [A-Z]'"
	n=$(sclient -showcerts | grep -c "BEGIN CERTIFICATE" || true)
	what="leaf and root are served (n=$n)" t test "$n" = 2
	serial1=$(sclient | openssl x509 -noout -serial)
	# No private key on disk belongs to the served certificate.
	leafpub=$(sclient | openssl x509 -noout -pubkey)
	ondisk=0
	for f in $(grep -rl "PRIVATE KEY" "$dir/stack" 2>/dev/null); do
		[ "$(openssl pkey -in "$f" -pubout 2>/dev/null)" = "$leafpub" ] && ondisk=1
	done
	what="the server key is not on disk" t test "$ondisk" = 0 -a -n "$leafpub"
	kill -HUP "$(cat "$dir/stack/acmed.pid")"
	for _ in $(seq 1 50); do
		serial2=$(sclient | openssl x509 -noout -serial)
		[ "$serial2" != "$serial1" ] && break
		sleep 0.1
	done
	what="SIGHUP renews the certificate" t test "$serial2" != "$serial1"
	what="the directory still answers after renewal" t curl -sf --cacert "$IOTCA_ROOT_PEM" "$IOTCA_ACME_DIRECTORY"
	exit $fail
	;;
expiry)
	command -v lego >/dev/null || { echo "lego is not installed (apt-get install lego)"; exit 77; }
	start_stack
	# Orders live 60 s here, the least [acme] allows, so one can expire
	# while it waits for the operator.
	"$src/scripts/devstack" stop "$dir/stack" >/dev/null
	sed -i 's/^\[acme\]$/[acme]\norder_lifetime = 60/' "$dir/stack/iotca.conf"
	"$src/scripts/devstack" start "$dir/stack" >/dev/null
	fail=0
	t() { if "$@"; then echo "ok - $what"; else echo "not ok - $what"; fail=1; fi; }
	# lego keeps polling an invalid order until its own timeout (85 s
	# here, past the order's 60 s), then reports the order's error.
	if lego_run --cert.timeout 85 run >"$dir/lego1.out" 2>&1; then
		echo "not ok - lego got a certificate nobody approved"; fail=1
	else
		echo "ok - nobody approves: lego gets no certificate"
	fi
	what="lego shows why: the order expired waiting for the operator" \
		t grep -q "expired before an operator approved the device" "$dir/lego1.out"
	what="acmed's log says so" t grep -q "expired waiting for the operator" \
		"$dir/stack/acmed.log"
	# The request stays the operator's to decide; approved, the account's
	# next order for the device is issued without waiting.
	id=$("$bin/iotca" --json pending | python3 -c 'import json, sys
print([p["id"] for p in json.load(sys.stdin) if p["device_id"] == "dev-1"][0])') || id=
	what="the approval request is still pending (id ${id:-none})" t test -n "$id"
	[ -n "$id" ] && "$bin/iotca" approve "$id" >/dev/null
	lego_again() { lego_run --cert.timeout 60 run >"$dir/lego2.out" 2>&1; }
	what="approved: lego's next order is issued" t lego_again
	[ "$fail" = 0 ] || { tail -n 15 "$dir/lego1.out" "$dir/lego2.out"; tail -n 15 "$dir/stack/acmed.log"; }
	exit $fail
	;;
config)
	fail=0
	mkdir -p "$dir/c"
	base="[ca]
name = t
domains = home.arpa
root_cert = /tmp/x.pem
[key]
store = file
path = /tmp/k.pem
[signer]
db = /tmp/s.db
socket = /tmp/s.sock
admin_socket = /tmp/a.sock"
	refuses() {	# refuses WHAT LINE-PATTERN ACME-LINES...
		local what=$1 pat=$2 out; shift 2
		printf '%s\n[acme]\n' "$base" >"$dir/c/conf"
		printf '%s\n' "$@" >>"$dir/c/conf"
		if out=$("$bin/iotca-acmed" -t -c "$dir/c/conf" 2>&1); then
			echo "not ok - $what (accepted)"; fail=1
		elif grep -q -- "$pat" <<<"$out"; then echo "ok - $what"
		else echo "not ok - $what (said: $out)"; fail=1; fi
	}
	refuses "listen without port" "conf:13: listen" "listen = 127.0.0.1"
	refuses "bad IPv6 listen" "conf:13: listen" "listen = ::1:443"
	refuses "relative db" "conf:14: db must be an absolute path" "listen = 127.0.0.1:1" "db = acme.db"
	refuses "http base_url" "conf:13: base_url" "base_url = http://x"
	refuses "port 0" "conf:13: http01_port" "http01_port = 0"
	refuses "unknown key" "conf:13: unknown key" "colour = blue"
	refuses "missing listen" "missing \\[acme\\] listen" "db = /tmp/a.db"
	refuses "rate limit without period" "conf:13: ratelimit_new_account must be BURST/SECONDS" "ratelimit_new_account = 20"
	refuses "rate limit of 0" "conf:13: ratelimit_account must be BURST/SECONDS" "ratelimit_account = 0/60"
	refuses "request_timeout 0" "conf:13: request_timeout must be 1..600" "request_timeout = 0"
	refuses "per-address cap 0" "conf:13: max_connections_per_address must be" "max_connections_per_address = 0"
	refuses "workers 0" "conf:13: workers must be 1..256" "workers = 0"
	printf '%s\n[acme]\nlisten = [::1]:8443\nlisten = 127.0.0.1:8443\ndb = /tmp/a.db\ndns_server = 127.0.0.1:5353\nratelimit_address = off\nratelimit_account = 10/3600\nrequest_timeout = 3\n' "$base" >"$dir/c/conf"
	if "$bin/iotca-acmed" -t -c "$dir/c/conf" >/dev/null 2>&1; then echo "ok - good config passes -t"
	else echo "not ok - good config refused: $("$bin/iotca-acmed" -t -c "$dir/c/conf" 2>&1)"; fail=1; fi
	exit $fail
	;;
*)
	echo "usage: acmed.sh protocol|lego|config" >&2; exit 2 ;;
esac
