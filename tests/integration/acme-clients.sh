#!/usr/bin/env bash
# iotca-acmed against the ACME clients people actually run, from Debian:
# certbot (http-01), lego (http-01, tls-alpn-01, dns-01 through BIND with
# RFC 2136 updates), with the operator approving through the real `iotca`
# command, and headless Chromium trusting the result.  Loopback only.
#
# usage: acme-clients.sh [certbot|lego|dns|browser]...   (default: all)
set -euo pipefail
src=${IOTCA_SRC:?}
bin=${IOTCA_BIN:?}
parts=${*:-certbot lego dns browser}
dir=$(mktemp -d /tmp/iotca-acme.XXXXXX)
chmod 755 "$dir"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	"$src/scripts/devstack" stop "$dir/stack" >/dev/null 2>&1 || true
	[ -n "${IOTCA_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
need() { command -v "$1" >/dev/null || { echo "$1 is not installed"; exit 77; }; }

free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$(( (RANDOM % 10000) + 10000 ))	# below the ephemeral range
		(exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
	done
	return 1
}

# wait_pending DEVICE: the request id once the device shows in `iotca pending`.
wait_pending() {
	local id
	for _ in $(seq 1 300); do
		id=$("$bin/iotca" pending --json | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["device_id"] == sys.argv[1]]
print(rows[-1]["id"] if rows else "")' "$1")
		[ -n "$id" ] && { echo "$id"; return 0; }
		sleep 0.1
	done
	return 1
}

# check_cert PEM NAME...: chains to the root, names NAME..., <= 90 days.
check_cert() {
	local pem=$1 what=$2 n days text; shift 2
	if openssl verify -CAfile "$IOTCA_ROOT_PEM" -untrusted "$pem" "$pem" >/dev/null 2>&1; then
		ok "$what: chains to the root"
	else
		bad "$what: does not chain: $(openssl verify -CAfile "$IOTCA_ROOT_PEM" "$pem" 2>&1 | tail -1)"
	fi
	text=$(openssl x509 -in "$pem" -noout -text)
	for n in "$@"; do
		grep -q "DNS:$n" <<<"$text" && ok "$what: names $n" || bad "$what: lacks $n"
	done
	days=$(( ($(date -d "$(openssl x509 -in "$pem" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))
	[ "$days" -le 90 ] && ok "$what: lives $days <= 90 days" || bad "$what: lives $days days"
}

http=$(free_port)
tls=$(free_port)
cat >"$dir/hosts" <<HOSTS
127.0.0.1 printer-1.local printer-1.home.arpa rogue-1.local rogue-2.local cam-1.local cam-2.local door-1.home.arpa
HOSTS
"$src/scripts/devstack" start "$dir/stack" --http01-port "$http" --tlsalpn01-port "$tls" \
	--hosts "$dir/hosts" >/dev/null
# shellcheck disable=SC1091
. "$dir/stack/env"
dirurl=$IOTCA_ACME_DIRECTORY

certbot_run() {	# certbot_run CONFDIR ARGS...
	local d=$1; shift
	REQUESTS_CA_BUNDLE=$IOTCA_ROOT_PEM timeout 120 certbot --non-interactive \
		--config-dir "$d" --work-dir "$d" --logs-dir "$d" --server "$dirurl" "$@"
}

if [[ " $parts " == *" certbot "* ]]; then
	need certbot
	cb=$dir/certbot
	certbot_run "$cb" certonly --standalone --http-01-port "$http" \
		-d printer-1.local -d printer-1.home.arpa --key-type ecdsa --elliptic-curve secp384r1 \
		--register-unsafely-without-email --agree-tos >"$dir/certbot.out" 2>&1 &
	cbpid=$!
	pids+=("$cbpid")
	if id=$(wait_pending printer-1); then
		ok "certbot: first issuance waits for the operator (request $id)"
		"$bin/iotca" approve "$id" >/dev/null
	else
		bad "certbot: no pending request appeared"
	fi
	if wait "$cbpid"; then ok "certbot: certificate after approval"; else bad "certbot: failed: $(tail -5 "$dir/certbot.out")"; fi
	pem=$cb/live/printer-1.local/fullchain.pem
	[ -f "$pem" ] && check_cert "$pem" certbot printer-1.local printer-1.home.arpa
	serial1=$(openssl x509 -in "$cb/live/printer-1.local/cert.pem" -noout -serial | cut -d= -f2)

	if certbot_run "$cb" renew --force-renewal --no-random-sleep-on-renew --standalone \
		--http-01-port "$http" >"$dir/renew.out" 2>&1; then
		ok "certbot: renewal issued without asking the operator"
	else
		bad "certbot: renewal failed: $(tail -5 "$dir/renew.out")"
	fi
	serial2=$(openssl x509 -in "$cb/live/printer-1.local/cert.pem" -noout -serial | cut -d= -f2)
	[ "$serial1" != "$serial2" ] && ok "certbot: renewal is a new certificate" || bad "certbot: same serial after renewal"

	if certbot_run "$cb" revoke --cert-path "$cb/live/printer-1.local/cert.pem" --reason keycompromise \
		--no-delete-after-revoke >"$dir/revoke.out" 2>&1; then
		ok "certbot: revocation"
	else
		bad "certbot: revoke failed: $(tail -5 "$dir/revoke.out")"
	fi
	"$bin/iotca" crl --out "$dir/crl.pem"
	openssl crl -in "$dir/crl.pem" -noout -text | grep -q "Serial Number: $serial2" &&
		ok "certbot: the CRL lists the revoked certificate" || bad "certbot: revoked serial not on the CRL"

	certbot_run "$dir/certbot2" certonly --standalone --http-01-port "$http" -d rogue-1.local \
		--key-type ecdsa --elliptic-curve secp384r1 --register-unsafely-without-email --agree-tos \
		>"$dir/deny.out" 2>&1 &
	cbpid=$!
	pids+=("$cbpid")
	if id=$(wait_pending rogue-1); then
		"$bin/iotca" deny "$id" --reason "not a device of ours" >/dev/null
	fi
	# certbot 2.1 prints no detail for an invalid order (IssuanceError) and
	# points the user at its log, where the order's error is.
	if wait "$cbpid"; then bad "certbot: denied request got a certificate"
	elif grep -q "not a device of ours" "$dir/deny.out" "$dir/certbot2/letsencrypt.log"; then
		ok "certbot: denial carries the operator's reason"
	else bad "certbot: denial without the reason: $(tail -5 "$dir/deny.out")"; fi
fi

lego_run() {	# lego_run DIR ARGS...
	local d=$1; shift
	LEGO_CA_CERTIFICATES=$IOTCA_ROOT_PEM timeout 120 lego --server "$dirurl" --path "$d" \
		--email ops@home.arpa --accept-tos --key-type ec384 "$@"
}

# lego_approved NAME WHAT ARGS...: a lego run that the test approves.
lego_approved() {
	local dev=$1 what=$2 out=$dir/lego-$1.out lpid id; shift 2
	lego_run "$dir/lego-$dev" "$@" >"$out" 2>&1 &
	lpid=$!
	pids+=("$lpid")
	if id=$(wait_pending "$dev"); then "$bin/iotca" approve "$id" >/dev/null; fi
	if wait "$lpid"; then ok "lego $what: certificate after approval"
	else bad "lego $what: failed: $(tail -5 "$out")"; return 0; fi
}

if [[ " $parts " == *" lego "* ]]; then
	need lego
	lego_approved cam-1 http-01 --http --http.port ":$http" --domains cam-1.local run
	check_cert "$dir/lego-cam-1/certificates/cam-1.local.crt" "lego http-01" cam-1.local
	lego_approved cam-2 tls-alpn-01 --tls --tls.port ":$tls" --domains cam-2.local run
	check_cert "$dir/lego-cam-2/certificates/cam-2.local.crt" "lego tls-alpn-01" cam-2.local
	lego_run "$dir/lego-rogue" --http --http.port ":$http" --domains rogue-2.local run >"$dir/lego-deny.out" 2>&1 &
	lpid=$!
	pids+=("$lpid")
	if id=$(wait_pending rogue-2); then "$bin/iotca" deny "$id" --reason "camera not on the asset list" >/dev/null; fi
	if wait "$lpid"; then bad "lego: denied request got a certificate"
	elif grep -q "camera not on the asset list" "$dir/lego-deny.out"; then ok "lego: shows the operator's reason for a denial"
	else bad "lego: denial without the reason: $(tail -3 "$dir/lego-deny.out")"; fi
	if lego_run "$dir/lego-cam-1" --http --http.port ":$http" --domains cam-1.local renew --days 100 --no-random-sleep \
		>"$dir/lego-renew.out" 2>&1; then ok "lego: renewal without the operator"
	else bad "lego: renewal failed: $(tail -5 "$dir/lego-renew.out")"; fi
fi

if [[ " $parts " == *" dns "* ]]; then
	need named
	need lego
	dns=$(free_port)
	mkdir -p "$dir/named"
	secret=$(openssl rand -base64 32)
	cat >"$dir/named/named.conf" <<CONF
options {
	directory "$dir/named";
	listen-on port $dns { 127.0.0.1; };
	listen-on-v6 { none; };
	pid-file "$dir/named/named.pid";
	recursion no;
	dnssec-validation no;
};
key "iotca-test" { algorithm hmac-sha256; secret "$secret"; };
zone "home.arpa" { type primary; file "$dir/named/home.arpa.zone"; allow-update { key "iotca-test"; }; };
CONF
	cat >"$dir/named/home.arpa.zone" <<ZONE
\$TTL 60
@ IN SOA ns.home.arpa. admin.home.arpa. 1 60 60 600 60
@ IN NS ns.home.arpa.
ns IN A 127.0.0.1
door-1 IN A 127.0.0.1
ZONE
	named -g -c "$dir/named/named.conf" >"$dir/named/named.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 50); do dig +short -p "$dns" @127.0.0.1 door-1.home.arpa A 2>/dev/null | grep -q 127.0.0.1 && break; sleep 0.1; done
	# The front end asks this server for dns-01 TXT records.
	"$src/scripts/devstack" stop "$dir/stack" >/dev/null
	sed -i "s|^dns_server = .*||; s|^\[acme\]|[acme]\ndns_server = 127.0.0.1:$dns|" "$IOTCA_CONFIG"
	"$src/scripts/devstack" start "$dir/stack" >/dev/null
	. "$dir/stack/env"
	dirurl=$IOTCA_ACME_DIRECTORY
	RFC2136_NAMESERVER=127.0.0.1:$dns RFC2136_TSIG_KEY=iotca-test RFC2136_TSIG_SECRET=$secret \
	RFC2136_TSIG_ALGORITHM=hmac-sha256. RFC2136_PROPAGATION_TIMEOUT=20 RFC2136_POLLING_INTERVAL=1 \
		lego_approved door-1 "dns-01 (BIND, RFC 2136)" --dns rfc2136 --dns.resolvers "127.0.0.1:$dns" \
		--dns.disable-cp --domains door-1.home.arpa run
	check_cert "$dir/lego-door-1/certificates/door-1.home.arpa.crt" "lego dns-01" door-1.home.arpa
fi

if [[ " $parts " == *" browser "* ]]; then
	need chromium
	need certutil
	crt=$dir/lego-cam-1/certificates/cam-1.local.crt
	key=$dir/lego-cam-1/certificates/cam-1.local.key
	if [ ! -f "$crt" ]; then
		lego_approved cam-1 "http-01 (for the browser)" --http --http.port ":$http" --domains cam-1.local run
	fi
	web=$(free_port)
	mkdir -p "$dir/www"
	echo '<html><body><p id="hello">served by cam-1 with an iotca certificate</p></body></html>' >"$dir/www/index.html"
	python3 - "$web" "$crt" "$key" "$dir/www" >"$dir/web.log" 2>&1 <<'PY' &
import functools, http.server, ssl, sys
port, crt, key, root = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(crt, key)
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
srv = http.server.HTTPServer(("127.0.0.1", port), handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
	pids+=($!)
	for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/"$web") 2>/dev/null && break; sleep 0.1; done
	home=$dir/home
	mkdir -p "$home/.pki/nssdb"
	certutil -d "sql:$home/.pki/nssdb" -N --empty-password
	certutil -d "sql:$home/.pki/nssdb" -A -t "C,," -n iotca-root -i "$IOTCA_ROOT_PEM"
	page=$(HOME=$home timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$dir/chrome" --host-resolver-rules="MAP cam-1.local 127.0.0.1" \
		--dump-dom "https://cam-1.local:$web/" 2>"$dir/chrome.log" || true)
	if grep -q "served by cam-1 with an iotca certificate" <<<"$page"; then
		ok "chromium loads https://cam-1.local with the iotca root trusted"
	else
		bad "chromium did not load the page: $(grep -o 'ERR_[A-Z_]*' <<<"$page$(cat "$dir/chrome.log")" | head -1)"
	fi
	# And the same browser without the root refuses: the test can fail.
	page=$(timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$dir/chrome2" --host-resolver-rules="MAP cam-1.local 127.0.0.1" \
		--dump-dom "https://cam-1.local:$web/" 2>/dev/null || true)
	if grep -q "served by cam-1" <<<"$page"; then bad "chromium without the root loaded it anyway"
	else ok "chromium without the root refuses the page"; fi
fi

"$src/scripts/devstack" stop "$dir/stack" >/dev/null
for log in "$dir/stack/"*.log; do
	if grep -E -q "AddressSanitizer|LeakSanitizer|runtime error" "$log"; then
		bad "sanitizer report in $(basename "$log")"
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
