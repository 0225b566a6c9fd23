#!/usr/bin/env bash
# 802.1X with EAP-TLS as a relying party nobody here wrote sees it:
# FreeRADIUS 3.2 (Debian's) on loopback with dist/freeradius/eap-iotca, its
# CRL kept by dist/iotca-crl-refresh from the appliance's admin socket, and
# eapol_test (wpa_supplicant's) as the device.
#
#   appliance certificate               -> Access-Accept
#   the same after iotca revoke + refresh -> Access-Reject (and how long
#                                          from revoke to the first reject)
#   a certificate from another CA       -> Access-Reject
#   an expired appliance certificate    -> Access-Reject (FreeRADIUS run
#                                          under faketime two days ahead;
#                                          the same certificate is accepted
#                                          today)
#   a CRL not signed by the root, garbage, an older CRL of the root, an
#   expired one, a 404: refused by the refresh job, the installed CRL
#   untouched
#   a second revocation, the CRL fetched over HTTP (DER) and picked up by
#   FreeRADIUS without a restart (ca_path_reload_interval)
set -euo pipefail
src=${IOTCA_SRC:?}
bin=${IOTCA_BIN:?}
iotca=$bin/iotca
for c in freeradius eapol_test openssl curl python3 ss; do
	command -v "$c" >/dev/null || { echo "$c not installed"; exit 77; }
done
dir=$(mktemp -d /tmp/iotca-radius.XXXXXX)
work=$dir/work
raddb=$dir/raddb
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	"$src/scripts/devstack" stop "$dir/stack" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT
mkdir -p "$work"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }
now_ms() { date +%s%3N; }

"$src/scripts/devstack" start "$dir/stack" --key file --name iotca-test --domain home.arpa >/dev/null
# shellcheck disable=SC1091
. "$dir/stack/env"

# --- certificates -----------------------------------------------------------
csr() {	# csr NAME SAN
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes \
		-keyout "$work/$1.key" -out "$work/$1.csr" -subj "/CN=$1" \
		-addext "subjectAltName=$2" 2>/dev/null
}
issue() {	# issue NAME DAYS
	csr "$1" "DNS:$1.local"
	"$iotca" issue --csr "$work/$1.csr" --out "$work/$1.pem" --days "$2" >/dev/null
}
issue device-a 90
issue device-old 1
issue radius 90
check "device certificate carries clientAuth" \
	grep -q "TLS Web Client Authentication" <(openssl x509 -in "$work/device-a.pem" -noout -ext extendedKeyUsage)
check "device certificate chains to the root" openssl verify -CAfile "$IOTCA_ROOT_PEM" "$work/device-a.pem"

# Another CA, made with openssl, and a device certificate of its own that
# looks like ours in every other way (same name, clientAuth).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -days 30 \
	-keyout "$work/other-ca.key" -out "$work/other-ca.pem" -subj "/CN=Other CA" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
csr device-x "DNS:device-x.local"
printf 'subjectAltName=DNS:device-x.local\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' >"$work/x.ext"
openssl x509 -req -in "$work/device-x.csr" -CA "$work/other-ca.pem" -CAkey "$work/other-ca.key" \
	-CAcreateserial -days 30 -extfile "$work/x.ext" -out "$work/device-x.pem" 2>/dev/null
# eapol_test names the identity; the CN check wants it equal to the CN.
cn() { openssl x509 -in "$work/$1.pem" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p'; }

libs=(/usr/lib/*/faketime/libfaketimeMT.so.1)
libfaketime=${libs[0]}
[ -f "$libfaketime" ] || { echo "libfaketime not installed"; exit 77; }

# --- FreeRADIUS: a config dir of its own, the documented eap module -----------
secret=$(openssl rand -hex 16)
mkdir -p "$raddb/mods-enabled" "$raddb/sites-enabled" "$raddb/certs" "$raddb/iotca" "$raddb/run" "$raddb/log"
cp "$src/dist/freeradius/eap-iotca" "$raddb/mods-enabled/eap"
cp "$work/radius.pem" "$raddb/certs/iotca-server.pem"
cp "$work/radius.key" "$raddb/certs/iotca-server.key"
chmod 600 "$raddb/certs/iotca-server.key"
"$iotca" ca --out "$raddb/iotca/root.pem"
cat >"$raddb/radiusd.conf" <<CONF
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $raddb/log
raddbdir = $raddb
confdir = \${raddbdir}
certdir = \${confdir}/certs
cadir = \${confdir}/certs
run_dir = $raddb/run
db_dir = \${raddbdir}
libdir = /usr/lib/freeradius
pidfile = \${run_dir}/radiusd.pid
max_request_time = 30
cleanup_delay = 1
max_requests = 1024
hostname_lookups = no
log {
	destination = files
	file = \${logdir}/radius.log
	auth = yes
	auth_badpass = no
	auth_goodpass = no
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}
client localhost {
	ipaddr = 127.0.0.1
	secret = $secret
}
thread pool {
	start_servers = 1
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 2
}
modules {
	\$INCLUDE mods-enabled/
}
instantiate {
}
server iotca {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = \${iotca_port}
	}
	authorize {
		eap {
			ok = return
		}
	}
	authenticate {
		eap
	}
	post-auth {
		Post-Auth-Type REJECT {
			eap
		}
	}
}
CONF
: >"$raddb/dictionary"

# Four ports in a row nobody uses (UDP for RADIUS, TCP for HTTP), below the
# kernel's ephemeral range.
for _ in $(seq 1 50); do
	port=$(( (RANDOM % 3000) * 4 + 20000 ))
	used=$(ss -Hlnu -Hlnt 2>/dev/null | awk '{print $5}' | sed 's/.*://' |
		awk -v p="$port" '$1 >= p && $1 <= p + 3' | wc -l)
	[ "$used" -eq 0 ] && break
done
# A plain HTTP server on loopback stands for the appliance's CRL URL
# (and hands out the bad CRLs the refresh job must refuse).
mkdir -p "$work/www"
hport=$((port + 2))
python3 -m http.server "$hport" --bind 127.0.0.1 --directory "$work/www" >"$work/http.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 50); do
	curl -s -o /dev/null "http://127.0.0.1:$hport/" && break
	sleep 0.1
done

refresh() {	# refresh [RELOAD-CMD]: the documented job, CRL from admin.sock
	IOTCA="$iotca" IOTCA_CRL_DIR="$raddb/iotca" IOTCA_CRL_RELOAD="${1:-}" \
		"$src/dist/iotca-crl-refresh"
}
check "first refresh installs the CRL" refresh
check "CRL is in ca_path under its hash" test -L "$raddb/iotca/$(openssl crl -in "$raddb/iotca/crl.pem" -noout -hash).r0"

radius_pid=
start_radius() {	# start_radius PORT [VAR=VALUE...]: foreground, its own log;
			# a faketime variable runs it under libfaketime
	local log=$raddb/log/radius-$1.out pre=()
	shift
	[ $# -eq 0 ] || pre=("LD_PRELOAD=$libfaketime" "$@")
	env "${pre[@]}" freeradius -X -d "$raddb" -D /usr/share/freeradius -n radiusd \
		-l stdout >"$log" 2>&1 &
	radius_pid=$!
	pids+=("$radius_pid")
	for _ in $(seq 1 100); do
		grep -q "Ready to process requests" "$log" && return 0
		kill -0 "$radius_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "FreeRADIUS did not start:"; tail -30 "$log"
	return 1
}
stop_radius() {
	kill -TERM "$radius_pid" 2>/dev/null || true
	wait "$radius_pid" 2>/dev/null || true
}

eap() {	# eap NAME PORT: prints accept or reject (or what else happened)
	local name=$1 p=$2 conf=$work/$1.eapol out
	cat >"$conf" <<NET
network={
	key_mgmt=IEEE8021X
	eap=TLS
	eapol_flags=0
	identity="$(cn "$name")"
	ca_cert="$IOTCA_ROOT_PEM"
	client_cert="$work/$name.pem"
	private_key="$work/$name.key"
}
NET
	out=$(eapol_test -c "$conf" -a 127.0.0.1 -p "$p" -s "$secret" -r 0 -t 10 2>&1) || true
	echo "$out" >"$work/$name.eapol.log"
	if grep -q "code=2 (Access-Accept)" <<<"$out" && grep -q "^SUCCESS" <<<"$out"; then echo accept
	elif grep -q "code=3 (Access-Reject)" <<<"$out"; then echo reject
	else echo "neither accept nor reject"; fi
}
expect() {	# expect WHAT NAME PORT accept|reject
	local got
	got=$(eap "$2" "$3")
	if [ "$got" = "$4" ]; then ok "$1: $got"
	else bad "$1: $got (wanted $4)"; tail -15 "$work/$2.eapol.log"; fi
}

sed -i "s/\${iotca_port}/$port/" "$raddb/radiusd.conf"
start_radius "$port"
expect "appliance device certificate" device-a "$port" accept
expect "short-lived certificate, still valid" device-old "$port" accept
expect "certificate from another CA" device-x "$port" reject
grep -q "unable to get local issuer certificate" "$raddb/log/radius-$port.out" &&
	ok "FreeRADIUS says why: unknown issuer" || bad "no unknown-issuer error in the FreeRADIUS log"

# --- revoke: the refresh job, run at once, and the time to the first reject --
serial=$(openssl x509 -in "$work/device-a.pem" -noout -serial | cut -d= -f2)
cp "$raddb/iotca/crl.pem" "$work/old.crl"
# FreeRADIUS 3 keeps the CRLs it loaded until a restart (a HUP does not
# reload the EAP TLS context) or until ca_path_reload_interval has passed:
# the job's reload command restarts it (systemctl try-restart on a system).
t0=$(now_ms)
"$iotca" revoke "$serial" --reason keyCompromise >/dev/null
refresh "kill -TERM $radius_pid" >/dev/null
wait "$radius_pid" 2>/dev/null || true
start_radius "$port"
t_refresh=$(now_ms)
got=
for _ in $(seq 1 20); do
	got=$(eap device-a "$port")
	[ "$got" = reject ] && break
	sleep 0.5
done
t1=$(now_ms)
if [ "$got" = reject ]; then
	ok "revoked certificate: reject, $((t1 - t0)) ms after iotca revoke (refresh and restart $((t_refresh - t0)) ms)"
else bad "revoked certificate: $got"; tail -15 "$work/device-a.eapol.log"; fi
grep -q "certificate revoked" "$raddb/log/radius-$port.out" &&
	ok "FreeRADIUS says why: certificate revoked" || bad "no revocation error in the FreeRADIUS log"
expect "an unrevoked certificate still authenticates" device-old "$port" accept

# --- the refresh job refuses a bad CRL and keeps the installed one -----------
before=$(sha256sum <"$raddb/iotca/crl.pem")
check "unchanged CRL: refresh succeeds, nothing reloaded" refresh "false"
: >"$work/index.txt"
echo 01 >"$work/crlnumber"
printf '[ca]\ndefault_ca = c\n[c]\ndatabase = %s\ncrlnumber = %s\ndefault_md = sha384\ndefault_crl_days = 7\n' \
	"$work/index.txt" "$work/crlnumber" >"$work/other-ca.cnf"
openssl ca -gencrl -config "$work/other-ca.cnf" -keyfile "$work/other-ca.key" -cert "$work/other-ca.pem" \
	-out "$work/other.crl" 2>/dev/null
refused() {	# refused WHAT PATTERN FILE [VAR=VALUE...]: FILE served over HTTP
	local what=$1 pat=$2 file=$3 out
	shift 3
	if [ -n "$file" ]; then cp "$file" "$work/www/bad.crl"; else rm -f "$work/www/bad.crl"; fi
	if out=$(env "$@" IOTCA_CRL_DIR="$raddb/iotca" IOTCA_CRL_RELOAD=false \
		"$src/dist/iotca-crl-refresh" --url "http://127.0.0.1:$hport/bad.crl" 2>&1); then
		bad "$what (accepted: $out)"
	elif grep -q -- "$pat" <<<"$out"; then ok "$what"
	else bad "$what (said: $out)"; fi
}
refused "refresh refuses a CRL from another CA" "does not verify" "$work/other.crl"
echo "not a crl" >"$work/garbage.crl"
refused "refresh refuses garbage" "no CRL" "$work/garbage.crl"
refused "refresh refuses an older CRL of the root (replay)" "lower than the installed" "$work/old.crl"
"$iotca" crl --out "$work/current.crl"
refused "refresh refuses an expired CRL (its clock 8 days on)" "expired" "$work/current.crl" \
	"LD_PRELOAD=$libfaketime" FAKETIME=+8d
refused "refresh refuses a missing file (HTTP 404)" "fetch failed" ""
check "installed CRL untouched by the refusals" test "$before" = "$(sha256sum <"$raddb/iotca/crl.pem")"
stop_radius

# --- revoke again: the CRL over HTTP (DER), no restart -------------------------
# FreeRADIUS reloads ca_path on its own after ca_path_reload_interval (300 s
# in the fragment, its minimum).  This instance's clock comes from a file, so
# the test moves it 301 s on instead of waiting.
port2=$((port + 1))
sed -i "s/port = $port\$/port = $port2/" "$raddb/radiusd.conf"
echo "+0" >"$work/clock"
start_radius "$port2" "FAKETIME_TIMESTAMP_FILE=$work/clock" FAKETIME_NO_CACHE=1
issue device-b 90
expect "a fresh certificate" device-b "$port2" accept
serial_b=$(openssl x509 -in "$work/device-b.pem" -noout -serial | cut -d= -f2)
"$iotca" revoke "$serial_b" >/dev/null
# The appliance's own HTTP listener where it has one (the path from the
# certificate's CRL Distribution Point, the host devstack's loopback
# address), else the loopback stand-in with "iotca crl" as DER.
crl_url=http://127.0.0.1:$hport/root.crl
dp=$(openssl x509 -in "$work/device-b.pem" -noout -ext crlDistributionPoints 2>/dev/null |
	sed -n 's/^ *URI:http:\/\/[^/]*//p' | head -1)
if [ -n "${IOTCA_HTTP_LISTEN:-}" ] && [ -n "$dp" ]; then
	crl_url=http://$IOTCA_HTTP_LISTEN$dp
else
	"$iotca" crl | openssl crl -outform DER -out "$work/www/root.crl"
fi
out=$(IOTCA_CRL_DIR="$raddb/iotca" IOTCA_CRL_RELOAD="" \
	"$src/dist/iotca-crl-refresh" --url "$crl_url" 2>&1) &&
	ok "refresh over HTTP (DER) from $crl_url: $out" || bad "refresh over HTTP from $crl_url: $out"
expect "revoked, no restart, before ca_path_reload_interval: still accepted" device-b "$port2" accept
echo "+301" >"$work/clock"
expect "revoked, no restart, ca_path_reload_interval later" device-b "$port2" reject
grep -q "certificate revoked" "$raddb/log/radius-$port2.out" &&
	ok "FreeRADIUS says why: certificate revoked" || bad "no revocation error in the FreeRADIUS log"
check "FreeRADIUS ran on (no restart)" kill -0 "$radius_pid"
stop_radius

# --- expired: the server's clock two days on ---------------------------------
port3=$((port + 3))
sed -i "s/port = $port2\$/port = $port3/" "$raddb/radiusd.conf"
start_radius "$port3" FAKETIME=+2d
expect "expired certificate (server clock +2 days)" device-old "$port3" reject
grep -q "certificate has expired" "$raddb/log/radius-$port3.out" &&
	ok "FreeRADIUS says why: certificate has expired" || bad "no expiry error in the FreeRADIUS log"
issue device-c 90
expect "a valid certificate under the same clock" device-c "$port3" accept
stop_radius

# Under ASan/UBSan the daemons report into their logs, at exit for leaks.
"$src/scripts/devstack" stop "$dir/stack" >/dev/null
if grep -E -l "AddressSanitizer|LeakSanitizer|runtime error" "$dir/stack/"*.log; then
	bad "sanitizer report in a daemon log"; grep -E -A30 "Sanitizer|runtime error" "$dir/stack/"*.log | head -60
else ok "no sanitizer report in the daemon logs"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
