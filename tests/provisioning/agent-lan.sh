#!/usr/bin/env bash
# agent-lan.sh: a LAN in network namespaces provisions itself with
# iotca-agent (draft-sweet-iot-acme 3.3, 3.5, 3.6).
#
# A "router" namespace holds the bridge and dnsmasq (DHCP with the V-I
# option and DNS with the SRV/TXT records, both from "iotca discovery",
# and the devices' names); the appliance (iotca-signer and iotca-acmed via
# scripts/devstack) listens on 10.77.0.2:443 in its own namespace; N device
# namespaces run "iotca-agent run".  All discover the server, pin its root,
# enrol and wait for the operator; one batch approval; every device must
# end with a certificate for <id>.local and <id>.lan.test that openssl
# verify accepts with the pinned root, its key 0600, and the reload hook
# run.  A client namespace runs "iotca-agent trust" and curl loads a
# device's HTTPS page with the exported root, headless Chromium with the
# root trust added to its NSS database (and fails without it).  Refusals, each with a clear
# log line and no crash: an SRV pointing at a public address, a server
# chain whose root lacks the discovered name (TOFU refused), a directory
# that is not JSON.  Then a root change (a different server behind the same
# name) is refused, the notify hook runs, the certificate stays; SIGTERM
# stops every agent with status 0.  Also: a network announcing nothing
# (exit 3), a second pass (same account, nothing ordered), SIGHUP, rename
# (old certificate revoked, new name issued), reset, and option 125 read
# from a lease file in busybox udhcpc's format.
#
# Addresses 10.77.0.0/24 exist only inside the namespaces.  Needs root;
# exits 77 when namespaces cannot be made.  AGENT_LAN_DEVICES sets N (default 3;
# ctest runs 20).
set -uo pipefail
bin=${1:?usage: agent-lan.sh BIN_DIR}
bin=$(cd "$bin" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
n=${AGENT_LAN_DEVICES:-3}
. "$src/tests/lib/lan-lib.sh"
lan_init iotca-agent-$$
a=$tag-a; c=$tag-c; f=$tag-f; x=$tag-x

# --- the LAN ------------------------------------------------------------------
set -e
join "$a" 10.77.0.2
join "$f" 10.77.0.3
join "$c" 10.77.0.200 02:00:00:00:00:c8
join "$x" 10.77.0.201 02:00:00:00:00:c9
for i in $(seq 1 "$n"); do
	join "$tag-d$i" "10.77.0.$((10 + i))" "$(printf '02:00:00:00:00:%02x' "$i")"
done
set +e

# --- what the appliance announces -------------------------------------------------
lan_announce

# Devices' names in DNS, and the same for the ACME server's validation
# (it resolves <id>.local through its hosts file: no mDNS in a namespace).
lan_devices "$n"
# d2's new name after the rename below.
echo "10.77.0.12 renamed2.local renamed2.lan.test" >>"$dir/hosts"
# The refusal cases: their own domains, reached without DHCP.
cat >>"$dir/announce.dnsmasq" <<'EOF'
srv-host=_acme-server._tcp.pub.test,ca.pub.test,443,0,0
host-record=ca.pub.test,203.0.113.9
srv-host=_acme-server._tcp.noname.test,ca.noname.test,8443,0,0
host-record=ca.noname.test,10.77.0.3
srv-host=_acme-server._tcp.nojson.test,ca.nojson.test,8444,0,0
host-record=ca.nojson.test,10.77.0.3
EOF
lan_dnsmasq

# --- the appliance ------------------------------------------------------------------
lan_appliance "$a" || exit 1

# --- the devices -------------------------------------------------------------------------
declare -A agent_pid
for i in $(seq 1 "$n"); do
	agent_conf "$dir/d$i"
	ip netns exec "$tag-d$i" "$bin/iotca-agent" -c "$dir/d$i/agent.conf" run \
		>"$dir/d$i/agent.log" 2>&1 &
	agent_pid[$i]=$!
	pids+=($!)
done
# Every device's request reaches the operator.
for _ in $(seq 1 300); do
	p=$(iotca pending 2>/dev/null | grep -c ' ex0200000000')
	[ "$p" -ge "$n" ] && break
	sleep 0.2
done
if [ "${p:-0}" -ge "$n" ]; then ok "$n devices discovered, pinned, validated and wait for approval"
else
	bad "only ${p:-0} of $n requests pending"
	for i in $(seq 1 "$n"); do sed "s/^/    d$i: /" "$dir/d$i/agent.log" | tail -n 8; done
fi
t1=$(date +%s)
iotca approve --all >"$dir/approve.log" 2>&1 || { cat "$dir/approve.log"; bad "iotca approve --all"; }
for i in $(seq 1 "$n"); do
	for _ in $(seq 1 300); do [ -s "$dir/d$i/cert.pem" ] && break; sleep 0.2; done
done
echo "    certified $(( $(date +%s) - t1 )) s after the approval"

for i in $(seq 1 "$n"); do
	id=$(dev_id "$i") d=$dir/d$i
	root=$(ls "$d"/state/net-*/root.pem 2>/dev/null | head -n 1)
	if [ -z "$root" ] || [ ! -s "$d/cert.pem" ]; then
		bad "d$i: no certificate"; sed 's/^/    /' "$d/agent.log" | tail -n 15; continue
	fi
	cmp -s "$root" "$dir/app/root.pem" || bad "d$i: pinned root is not the appliance's"
	for name in "$id.local" "$id.lan.test"; do
		openssl verify -CAfile "$root" -verify_hostname "$name" "$d/cert.pem" >/dev/null 2>&1 ||
			bad "d$i: openssl verify $name"
	done
	[ "$(stat -c %a "$d/key.pem")" = 600 ] || bad "d$i: key.pem mode $(stat -c %a "$d/key.pem")"
	[ "$(stat -c %a "$(ls "$d"/state/net-*/account.key)")" = 600 ] || bad "d$i: account.key not 0600"
	grep -q "$d/cert.pem" "$d/hook.log" 2>/dev/null || bad "d$i: reload hook not run"
	[ "$(openssl x509 -in "$d/cert.pem" -noout -pubkey | openssl sha256)" = \
	  "$(openssl pkey -in "$d/key.pem" -pubout | openssl sha256)" ] || bad "d$i: key does not match"
done
[ $fails = 0 ] && ok "every device: certificate for <id>.local and <id>.lan.test verifies with the pinned root; key 0600; reload hook run"
grep -q "source=\|(dhcp," "$dir/d1/agent.log" && ok "found through the DHCP option" || bad "d1 did not use the DHCP option: $(grep server "$dir/d1/agent.log" | head -n 1)"

"$bin/iotca-agent" -c "$dir/d1/agent.conf" status --json >"$dir/status.json" 2>&1
python3 - "$dir/status.json" "$(dev_id 1)" <<'PY' && ok "status --json: server, root fingerprint, expiry, no error" || bad "status --json: $(cat "$dir/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert len(s) == 1, s
s = s[0]
assert s["server"]["name"] == "ca.lan.test", s
assert len(s["root_fingerprint"]) == 95, s
assert s["not_after"] > s["renew_at"] > 0, s
assert s["last_error"] == "" and s["device_id"] == sys.argv[2], s
PY
"$bin/iotca-agent" -c "$dir/d1/agent.conf" status | sed 's/^/    /'

# --- a device serves HTTPS; a client trusts it through "iotca-agent trust" ---------------
id1=$(dev_id 1)
ip netns exec "$tag-d1" openssl s_server -quiet -accept 4433 -cert "$dir/d1/cert.pem" \
	-key "$dir/d1/key.pem" -www >/dev/null 2>&1 &
pids+=($!)
agent_conf "$dir/client" "root_export = $dir/client/lan-root.pem
nss_db = $dir/client/home/.pki/nssdb"
mkdir -p "$dir/client/home/.pki/nssdb" "$dir/client/home-empty/.pki/nssdb"
certutil -N -d "sql:$dir/client/home/.pki/nssdb" --empty-password &&
certutil -N -d "sql:$dir/client/home-empty/.pki/nssdb" --empty-password || bad "certutil -N"
ip netns exec "$c" "$bin/iotca-agent" -c "$dir/client/agent.conf" trust >"$dir/client/trust.out" 2>"$dir/client/trust.log"
rc=$?
if [ $rc = 0 ] && cmp -s "$dir/client/lan-root.pem" "$dir/app/root.pem"; then
	ok "client: iotca-agent trust pinned and exported the root"
else
	bad "client: trust status $rc"; sed 's/^/    /' "$dir/client/trust.log"
fi
for _ in $(seq 1 30); do
	ip netns exec "$c" curl -sf --max-time 3 --cacert "$dir/client/lan-root.pem" \
		--resolve "$id1.lan.test:4433:10.77.0.11" "https://$id1.lan.test:4433/" >"$dir/page" 2>"$dir/curl.err" && break
	sleep 0.2
done
grep -q "s_server" "$dir/page" && ok "client: curl loads https://$id1.lan.test:4433/ with the pinned root" ||
	bad "client: curl failed: $(cat "$dir/curl.err")"
ip netns exec "$c" curl -sf --max-time 3 --resolve "$id1.lan.test:4433:10.77.0.11" \
	"https://$id1.lan.test:4433/" >/dev/null 2>&1 && bad "curl without the pinned root trusted the device"
# Headless Chromium, with the root that "trust" put into the NSS database
# of its HOME; with an empty database the same page is an error page.
chrome() {	# chrome HOME OUT
	ip netns exec "$c" env HOME="$1" timeout 60 chromium --headless --no-sandbox --disable-gpu \
		--disable-quic --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync --user-data-dir="$1/chrome" \
		--host-resolver-rules="MAP $id1.lan.test 10.77.0.11" \
		--dump-dom "https://$id1.lan.test:4433/" >"$2" 2>"$2.err"
}
if command -v chromium >/dev/null; then
	certutil -L -d "sql:$dir/client/home/.pki/nssdb" | grep -q "iotca local root" ||
		bad "client: trust did not add the root to the NSS database"
	chrome "$dir/client/home" "$dir/chrome.dom"
	grep -q "s_server" "$dir/chrome.dom" &&
		ok "client: headless Chromium loads https://$id1.lan.test:4433/ with the root from trust's NSS database" ||
		bad "client: Chromium: $(tail -n 3 "$dir/chrome.dom.err")"
	chrome "$dir/client/home-empty" "$dir/chrome-none.dom"
	! grep -q "s_server" "$dir/chrome-none.dom" && ok "client: Chromium without the root does not load the page" ||
		bad "client: Chromium trusted the device without the root"
else
	echo "    (chromium not installed: browser check skipped)"
fi

# --- restart: the same account, the same certificate, no new request ----------------------------
acct=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["account"])' "$dir/status.json")
cp "$dir/d1/cert.pem" "$dir/d1-cert-before.pem"
ip netns exec "$tag-d1" "$bin/iotca-agent" -c "$dir/d1/agent.conf" enrol --once 2>"$dir/d1/again.log"; rc=$?
"$bin/iotca-agent" -c "$dir/d1/agent.conf" status --json >"$dir/status2.json"
acct2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["account"])' "$dir/status2.json")
if [ $rc = 0 ] && [ -n "$acct" ] && [ "$acct" = "$acct2" ] && cmp -s "$dir/d1/cert.pem" "$dir/d1-cert-before.pem" &&
   ! grep -q ordering "$dir/d1/again.log"; then
	ok "a second pass: same account ($acct), certificate kept, nothing ordered"
else
	bad "second pass: status $rc, account $acct -> $acct2"; sed 's/^/    /' "$dir/d1/again.log"
fi
# SIGHUP: the daemon makes a pass at once and keeps running.
passes=$(grep -c "next pass in" "$dir/d1/agent.log")
kill -HUP "${agent_pid[1]}"
for _ in $(seq 1 100); do [ "$(grep -c "next pass in" "$dir/d1/agent.log")" -gt "$passes" ] && break; sleep 0.1; done
[ "$(grep -c "next pass in" "$dir/d1/agent.log")" -gt "$passes" ] && kill -0 "${agent_pid[1]}" &&
	ok "SIGHUP: a pass at once, the daemon still runs" || bad "SIGHUP: no new pass"

# --- refusals ------------------------------------------------------------------------------
# Fake servers on 10.77.0.3: a root without the discovered name; a root
# with it whose server answers the directory with text; a second root.
mkroot() {	# mkroot NAME SAN: NAME.pem, NAME.key
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$1.key" -out "$dir/$1.pem" -subj "/CN=$1" -days 2 \
		-addext "subjectAltName=$2" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
mkleaf() {	# mkleaf NAME ROOT SAN
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$1.key" -out "$dir/$1.csr" -subj "/CN=$1" -addext "subjectAltName=$3" 2>/dev/null &&
	openssl x509 -req -in "$dir/$1.csr" -CA "$dir/$2.pem" -CAkey "$dir/$2.key" -days 1 \
		-copy_extensions copy -out "$dir/$1.pem" 2>/dev/null
}
serve() {	# serve PORT LEAF ROOT: openssl s_server -WWW in $dir/www
	(cd "$dir/www" && exec ip netns exec "$f" openssl s_server -quiet -accept "$1" \
		-cert "$dir/$2.pem" -key "$dir/$2.key" -cert_chain "$dir/$3.pem" -WWW) >/dev/null 2>&1 &
	pids+=($!)
}
mkdir -p "$dir/www"
echo "this is not JSON" >"$dir/www/directory"
mkroot otherroot "DNS:other.test" && mkleaf noname otherroot "DNS:ca.noname.test" &&
mkroot jsonroot "DNS:ca.nojson.test" && mkleaf nojson jsonroot "DNS:ca.nojson.test" &&
mkroot swaproot "DNS:ca.lan.test" && mkleaf swap swaproot "DNS:ca.lan.test" ||
	bad "openssl could not make the fake servers' certificates"
serve 8443 noname otherroot
serve 8444 nojson jsonroot
for _ in $(seq 1 50); do
	ip netns exec "$f" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8444' 2>/dev/null && break
	sleep 0.1
done
refusal() {	# refusal NAME DOMAIN STATUS LOG-PATTERN
	agent_conf "$dir/x-$1" "dhcp = false
resolver = 10.77.0.1
domain = $2"
	ip netns exec "$x" "$bin/iotca-agent" -c "$dir/x-$1/agent.conf" enrol --once \
		>"$dir/x-$1/out" 2>"$dir/x-$1/log"
	local rc=$?
	sed 's/^/    /' "$dir/x-$1/log"
	if [ $rc = "$3" ] && grep -q -- "$4" "$dir/x-$1/log"; then
		ok "$1: refused with a clear line (status $rc)"
	else
		bad "$1: status $rc, no \"$4\""
	fi
	[ ! -e "$dir/x-$1/cert.pem" ] || bad "$1: a certificate was installed"
}
refusal public-srv pub.test 1 "refused: ca.pub.test has the public address 203.0.113.9"
refusal root-without-name noname.test 1 "TOFU refused: the root's subjectAltName does not contain ca.noname.test"
[ -z "$(ls "$dir"/x-root-without-name/state/net-*/root.pem 2>/dev/null)" ] && ok "root-without-name: nothing pinned" || bad "root-without-name: a root was pinned"
refusal directory-not-json nojson.test 1 "directory: "
refusal no-server none.test 3 "no ACME server: no DHCP option, no DNS-SD record in none.test"
refusal public-network "lan.test
public = true" 1 "refused: eth0 is configured as a public network"

# --- the DHCP option from a DHCP client's lease file ---------------------------------------
# What a busybox udhcpc hook running "env >FILE" writes (opt125=HEX of the
# payload, no domain here): the agent, without DHCPINFORM and without a
# domain, can find the server only through that file.  A file with bad hex
# is refused with a line and the agent asks with DHCPINFORM instead.
mkdir -p "$dir/x-lease"
{
	printf 'interface=eth0\nip=10.77.0.201\nsubnet=255.255.255.0\nrouter=10.77.0.1\n'
	printf 'opt125=%s\n' "$(python3 -c 'import sys; n=b"ca.lan.test"; d=bytes([1,len(n)])+n
sys.stdout.write((bytes([0,0,0xd8,0x3d,len(d)])+d).hex())')"
} >"$dir/x-lease/udhcpc.env"
agent_conf "$dir/x-lease" "dhcp = false
resolver = 10.77.0.1
dhcp_lease_file = $dir/x-lease/udhcpc.env
root_export = $dir/x-lease/root.pem"
ip netns exec "$x" "$bin/iotca-agent" -c "$dir/x-lease/agent.conf" trust \
	>/dev/null 2>"$dir/x-lease/log"; rc=$?
sed 's/^/    /' "$dir/x-lease/log"
if [ $rc = 0 ] && grep -q "lease: $dir/x-lease/udhcpc.env: option 125 names the server" \
   "$dir/x-lease/log" && cmp -s "$dir/x-lease/root.pem" "$dir/app/root.pem"; then
	ok "lease file: the server from opt125, no DHCPINFORM, root pinned"
else
	bad "lease file: status $rc"
fi
printf 'interface=eth0\nopt125=0000d83g\n' >"$dir/x-lease/bad.env"
agent_conf "$dir/x-lease-bad" "dhcp_lease_file = $dir/x-lease/bad.env"
ip netns exec "$x" "$bin/iotca-agent" -c "$dir/x-lease-bad/agent.conf" trust \
	>/dev/null 2>"$dir/x-lease-bad/log"; rc=$?
sed 's/^/    /' "$dir/x-lease-bad/log"
if [ $rc = 0 ] && grep -q "bad.env:2: opt125 has a character that is not a hex digit.*asking with DHCPINFORM; dhcp: option 125 names the server" \
   "$dir/x-lease-bad/log"; then
	ok "lease file with bad hex: refused with a line, the server found by DHCPINFORM"
else
	bad "lease file with bad hex: status $rc"
fi

# --- rename (draft 4.7) and reset (4.5), beside the idle daemons ------------------------------
if [ "$n" -ge 3 ]; then
	id2=$(dev_id 2) id3=$(dev_id 3)
	echo "device_id = renamed2" >>"$dir/d2/agent.conf"
	ip netns exec "$tag-d2" "$bin/iotca-agent" -c "$dir/d2/agent.conf" enrol --once \
		>"$dir/d2/rename.out" 2>"$dir/d2/rename.log" &
	rpid=$!
	pids+=($rpid)
	for _ in $(seq 1 150); do iotca pending 2>/dev/null | grep -q renamed2 && break; sleep 0.2; done
	iotca approve --all >>"$dir/approve.log" 2>&1
	wait "$rpid"; rc=$?
	sed 's/^/    /' "$dir/d2/rename.log"
	if [ $rc = 0 ] && openssl verify -CAfile "$dir/app/root.pem" -verify_hostname renamed2.lan.test \
		"$dir/d2/cert.pem" >/dev/null 2>&1; then
		ok "rename: the new name is issued"
	else
		bad "rename: status $rc"
	fi
	iotca certs --device "$id2" | grep -q revoked && ok "rename: the old name's certificate is revoked" ||
		bad "rename: $(iotca certs --device "$id2")"
	ip netns exec "$tag-d3" "$bin/iotca-agent" -c "$dir/d3/agent.conf" reset 2>"$dir/d3/reset.log"; rc=$?
	sed 's/^/    /' "$dir/d3/reset.log"
	left=$(find "$dir/d3" \( -name '*.pem' -o -name '*.key' \) ! -name root.pem | wc -l)
	if [ $rc = 0 ] && [ "$left" = 0 ] && iotca certs --device "$id3" | grep -q revoked &&
	   ! iotca certs --device "$id3" | grep -q " valid\| issued"; then
		ok "reset: certificate revoked, no key or certificate left on the device"
	else
		bad "reset: status $rc, $left key/cert files left; $(iotca certs --device "$id3")"
	fi
fi


# --- root change ---------------------------------------------------------------------------
# d1 pinned the appliance's root on this network; now another server with
# another root answers under the same name: refused, hook run, cert kept.
i=1
d=$dir/d1
net=$(ls -d "$d"/state/net-* | head -n 1)
cp "$d/cert.pem" "$dir/cert-before.pem"
serve 8445 swap swaproot
for _ in $(seq 1 50); do
	ip netns exec "$f" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8445' 2>/dev/null && break
	sleep 0.1
done
# The device's network now announces the other server (DNS-SD, no DHCP
# option), while its network identity (interface, router, domain) stays.
sed -i "s/^retry_seconds = 2$/retry_seconds = 2\ndhcp = false\nresolver = 10.77.0.1\ndomain = lan.test/" "$d/agent.conf"
printf 'srv-host=_acme-server._tcp.lan.test,ca.lan.test,8445,0,0\nhost-record=ca.lan.test,10.77.0.3\n' >"$dir/swap.conf"
grep -v -e '^dhcp-option-force=\|^dhcp-option=vi-encap\|^vendor-class\|_acme-server._tcp.lan.test\|^host-record=ca.lan.test\|^txt-record\|^ptr-record' \
	"$dir/dnsmasq.conf" >"$dir/dnsmasq2.conf"
cat "$dir/swap.conf" >>"$dir/dnsmasq2.conf"
kill "$dnsmasq_pid"; wait "$dnsmasq_pid" 2>/dev/null
lan_dnsmasq "$dir/dnsmasq2.conf"
sleep 0.5
ip netns exec "$tag-d1" "$bin/iotca-agent" -c "$d/agent.conf" enrol --once >"$d/swap.out" 2>"$d/swap.log"
rc=$?
sed 's/^/    /' "$d/swap.log"
if [ $rc = 1 ] && grep -q "refused: ca.lan.test now serves a different root" "$d/swap.log"; then
	ok "root change: refused"
else
	bad "root change: status $rc"
fi
grep -q "^$(basename "$net" | sed 's/^net-//') ca.lan.test " "$d/hook.log" && ok "root change: notify hook run" ||
	bad "root change: no notify hook call ($(cat "$d/hook.log"))"
ip netns exec "$tag-d1" "$bin/iotca-agent" -c "$d/agent.conf" enrol --once 2>/dev/null
[ "$(grep -c "^$(basename "$net" | sed 's/^net-//') ca.lan.test " "$d/hook.log")" = 1 ] &&
	ok "root change: the notify hook runs once per new root, not every pass" ||
	bad "root change: notify hook ran $(grep -c ca.lan.test "$d/hook.log") times"
cmp -s "$d/cert.pem" "$dir/cert-before.pem" && cmp -s "$(ls "$net"/root.pem)" "$dir/app/root.pem" &&
	ok "root change: certificate and pinned root kept" || bad "root change: certificate or pin changed"
"$bin/iotca-agent" -c "$d/agent.conf" status | grep -q "ROOT CHANGED" && ok "status shows the root change" || bad "status does not show the root change"
"$bin/iotca-agent" -c "$d/agent.conf" trust --accept "$(basename "$net")" 2>"$d/accept.log" &&
	cmp -s "$net/root.pem" "$dir/swaproot.pem" && ok "trust --accept: the new root is pinned" ||
	bad "trust --accept: $(cat "$d/accept.log")"
"$bin/iotca-agent" -c "$d/agent.conf" trust --accept 0123 2>/dev/null; [ $? = 2 ] && ok "trust --accept with a bad key: usage error" || bad "trust --accept 0123 accepted"

# --- SIGTERM ----------------------------------------------------------------------------------
for i in $(seq 1 "$n"); do
	kill -TERM "${agent_pid[$i]}"
	wait "${agent_pid[$i]}"; rc=$?
	[ $rc = 0 ] || bad "d$i: agent exited $rc on SIGTERM"
done
[ $fails = 0 ] && ok "SIGTERM: every agent stopped with status 0"
for i in $(seq 1 "$n"); do
	grep -qi "sanitizer\|runtime error" "$dir/d$i/agent.log" && bad "d$i: sanitizer report"
done

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
