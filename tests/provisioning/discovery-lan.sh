#!/usr/bin/env bash
# A LAN in network namespaces: a "router" namespace with a bridge and
# dnsmasq (DHCP and DNS, configured from "iotca discovery"'s output), a
# "device" namespace on a veth pair, and the device's discovery (a
# DHCPINFORM, then DNS-SD) run there by discover-probe.  Each path alone:
# the DHCP option only, the SRV record only, both (DHCP first), neither (no
# server, and no mDNS packet leaves the device), an SRV whose target has a
# public address (refused).  Addresses 10.77.0.0/24 exist only inside the
# namespaces.  Needs root; exits 77 when namespaces cannot be made.
set -uo pipefail
iotca=${1:?usage: discovery-lan.sh IOTCA DISCOVER-PROBE}
probe=${2:?usage: discovery-lan.sh IOTCA DISCOVER-PROBE}
src=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "SKIP: $*" >&2; echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
command -v dnsmasq >/dev/null || skip "dnsmasq not installed (scripts/install-deps)"
command -v python3 >/dev/null || skip "python3 not installed"

r=iotca-disc-$$-r
d=iotca-disc-$$-d
dir=$(mktemp -d)
chmod 755 "$dir"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	ip netns del "$d" 2>/dev/null
	ip netns del "$r" 2>/dev/null
	[ -n "${KEEP:-}" ] && echo "kept $dir" || rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$r" 2>/dev/null || skip "ip netns add failed: no network namespaces here"
ip netns add "$d" || skip "ip netns add failed"

fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
inr() { ip netns exec "$r" "$@"; }
ind() { ip netns exec "$d" "$@"; }

# --- the LAN: a bridge in the router, the device on a veth pair ------------
set -e
inr ip link set lo up
ind ip link set lo up
inr ip link add br0 type bridge
inr ip link add vd0 type veth peer name eth0 netns "$d"
inr ip link set vd0 master br0
inr ip addr add 10.77.0.1/24 dev br0
inr ip link set br0 up
inr ip link set vd0 up
ind ip addr add 10.77.0.50/24 dev eth0
ind ip link set eth0 up
ind ip route add default via 10.77.0.1
set +e
for _ in $(seq 1 50); do ind ping -c1 -W1 10.77.0.1 >/dev/null 2>&1 && break; sleep 0.1; done

# --- what the appliance says --------------------------------------------------
sed -e 's|^domains = .*|domains = lan.test|' -e 's|^; ips = .*|ips = 10.77.0.1|' \
    -e 's|^base_url = .*|base_url = https://router-fdb531.lan.test:8443|' \
    "$src/dist/iotca.conf.example" >"$dir/iotca.conf"
"$iotca" -c "$dir/iotca.conf" discovery --json >"$dir/disc.json" || { bad "iotca discovery --json"; exit 1; }
# The DHCP option as printed; the DNS-SD records turned into dnsmasq's
# equivalents (dnsmasq reads no zone files).
python3 - "$dir/disc.json" "$dir" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
out = sys.argv[2]
open(out + "/dhcp.conf", "w").write(j["dhcp"]["dnsmasq"] + "\n")
dns = []
for d in j["domains"]:
    for rec in d["records"]:
        f = rec.split(None, 4)
        name, typ, data = f[0].rstrip("."), f[3], f[4]
        if typ == "SRV":
            prio, weight, port, target = data.split()
            dns.append(f"srv-host={name},{target.rstrip('.')},{port},{prio},{weight}")
        elif typ == "TXT":
            dns.append(f"txt-record={name},{data}")
        elif typ == "PTR":
            dns.append(f"ptr-record={name},{data.rstrip('.')}")
        elif typ in ("A", "AAAA"):
            dns.append(f"host-record={name},{data}")
open(out + "/dnssd.conf", "w").write("\n".join(dns) + "\n")
# the server's own name without the SRV (for "DHCP only")
open(out + "/host.conf", "w").write("\n".join(l for l in dns if l.startswith("host-record")) + "\n")
PY
echo "--- dnsmasq from iotca discovery:"; cat "$dir/dhcp.conf" "$dir/dnssd.conf"

dnsmasq_pid=
start_dnsmasq() {	# start_dnsmasq NAME CONF-FILES...
	local name=$1; shift
	stop_dnsmasq
	{
		echo "interface=br0"
		echo "bind-interfaces"
		echo "no-resolv"
		echo "no-hosts"
		echo "domain=lan.test"
		echo "dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h"
		echo "dhcp-option=option:dns-server,10.77.0.1"
		echo "dhcp-leasefile=$dir/leases"
		echo "log-dhcp"
		echo "log-queries"
		cat "$@"
	} >"$dir/dnsmasq-$name.conf"
	if ! out=$(dnsmasq --test --conf-file="$dir/dnsmasq-$name.conf" 2>&1); then
		bad "$name: dnsmasq --test: $out"
	fi
	# Not through a shell function: $! must be dnsmasq itself.
	ip netns exec "$r" dnsmasq --keep-in-foreground --conf-file="$dir/dnsmasq-$name.conf" \
		--pid-file="$dir/dnsmasq.pid" --log-facility="$dir/dnsmasq-$name.log" &
	dnsmasq_pid=$!
	pids+=("$dnsmasq_pid")
	for _ in $(seq 1 50); do
		grep -q "started" "$dir/dnsmasq-$name.log" 2>/dev/null && break
		sleep 0.1
	done
}
stop_dnsmasq() {
	if [ -n "$dnsmasq_pid" ]; then
		kill "$dnsmasq_pid" 2>/dev/null
		wait "$dnsmasq_pid" 2>/dev/null
		dnsmasq_pid=
	fi
}
run_probe() {	# run_probe NAME: stdout in $dir/NAME.out, stderr .err, status $?
	ind "$probe" -i eth0 -t 4000 >"$dir/$1.out" 2>"$dir/$1.err"
}
show() { sed 's/^/    /' "$dir/$1.err" "$dir/$1.out"; }

# --- DHCP option alone --------------------------------------------------------
empty=$dir/empty.conf
: >"$empty"
start_dnsmasq dhcp "$dir/dhcp.conf" "$dir/host.conf"
run_probe dhcp; rc=$?
show dhcp
if [ $rc = 0 ] && grep -q "^server=router-fdb531.lan.test port=443 path=/directory source=dhcp addr=10.77.0.1$" "$dir/dhcp.out"; then
	ok "DHCP option only: found by option 125 (DHCPINFORM)"
else
	bad "DHCP option only: status $rc"
fi
grep -q "DHCPINFORM(br0) 10.77.0.50" "$dir/dnsmasq-dhcp.log" && ok "dnsmasq answered a DHCPINFORM" || bad "no DHCPINFORM in dnsmasq's log"

# --- SRV alone ----------------------------------------------------------------
start_dnsmasq srv "$dir/dnssd.conf"
run_probe srv; rc=$?
show srv
if [ $rc = 0 ] && grep -q "^server=router-fdb531.lan.test port=8443 path=/directory source=dns-sd addr=10.77.0.1$" "$dir/srv.out"; then
	ok "SRV only: found by DNS-SD in the DHCP domain"
else
	bad "SRV only: status $rc"
fi
grep -q "query\[SRV\] _acme-server._tcp.lan.test from 10.77.0.50" "$dir/dnsmasq-srv.log" && ok "the SRV query went to the unicast resolver" || bad "no SRV query in dnsmasq's log"

# --- both: the DHCP option comes first ----------------------------------------
start_dnsmasq both "$dir/dhcp.conf" "$dir/dnssd.conf"
run_probe both; rc=$?
show both
[ $rc = 0 ] && grep -q "source=dhcp" "$dir/both.out" && ok "both: the DHCP option is used first (draft 3.3 order)" || bad "both: status $rc"

# --- beside a DHCP client that holds port 68 ---------------------------------
# As busybox udhcpc does while renewing: a UDP socket on port 68 with
# SO_REUSEADDR.  The DHCPINFORM still gets its answer; a holder without
# SO_REUSEADDR makes the probe fail with a clear line instead.
hold68() {	# hold68 REUSE: a socket on port 68 in the device, until killed
	ip netns exec "$d" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if sys.argv[1] == "1":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 68))
open(sys.argv[2], "w").close()
time.sleep(60)' "$1" "$dir/hold68.ready" &
	holder=$!
	pids+=("$holder")
	for _ in $(seq 1 50); do [ -f "$dir/hold68.ready" ] && break; sleep 0.1; done
	rm -f "$dir/hold68.ready"
}
hold68 1
run_probe shared; rc=$?
kill "$holder"; wait "$holder" 2>/dev/null
show shared
[ $rc = 0 ] && grep -q "source=dhcp" "$dir/shared.out" && ok "port 68 shared with a client using SO_REUSEADDR: answered" || bad "shared port 68: status $rc"
hold68 0
run_probe taken; rc=$?
kill "$holder"; wait "$holder" 2>/dev/null
show taken
grep -q "dhcp: bind to port 68: Address already in use" "$dir/taken.err" && ok "port 68 held exclusively: a clear error" || bad "port 68 held: no clear error"

# --- neither: no server, and no mDNS ------------------------------------------
# A packet capture on the device's interface counts UDP by destination port.
cat >"$dir/capture.py" <<'PY'
import signal, socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
s.bind(("eth0", 0))
s.settimeout(0.2)
ports, mcast = {}, 0
done = False
def stop(*_):
    global done
    done = True
signal.signal(signal.SIGTERM, stop)
open(sys.argv[1] + ".ready", "w").close()
while not done:
    try:
        f, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    except InterruptedError:
        continue
    if addr[2] != socket.PACKET_OUTGOING or len(f) < 14:
        continue
    et = struct.unpack("!H", f[12:14])[0]
    if et == 0x0800 and len(f) >= 34 and f[23] == 17:
        ihl = (f[14] & 15) * 4
        dport = struct.unpack("!H", f[14 + ihl + 2:14 + ihl + 4])[0]
        if f[30] >= 224 and f[30] <= 239:
            mcast += 1
    elif et == 0x86dd and len(f) >= 58 and f[20] == 17:
        dport = struct.unpack("!H", f[56:58])[0]
    else:
        continue
    ports[dport] = ports.get(dport, 0) + 1
with open(sys.argv[1], "w") as o:
    o.write(" ".join(f"{p}:{n}" for p, n in sorted(ports.items())) + f" mcast4:{mcast}\n")
PY
start_dnsmasq neither "$empty"
ip netns exec "$d" python3 "$dir/capture.py" "$dir/capture" &
cap=$!
pids+=("$cap")
for _ in $(seq 1 50); do [ -f "$dir/capture.ready" ] && break; sleep 0.1; done
run_probe neither; rc=$?
sleep 0.3
kill -TERM "$cap"; wait "$cap" 2>/dev/null
show neither
echo "    captured UDP by port: $(cat "$dir/capture" 2>/dev/null)"
if [ $rc = 3 ] && grep -q "^no ACME server$" "$dir/neither.out"; then
	ok "neither: reports no server"
else
	bad "neither: status $rc"
fi
if ! grep -q " 67:" <<<" $(cat "$dir/capture" 2>/dev/null)" || ! grep -q " 53:" <<<" $(cat "$dir/capture" 2>/dev/null)"; then
	bad "the capture saw no DHCP or DNS: it does not work"
elif grep -q " 5353:" <<<" $(cat "$dir/capture")"; then
	bad "neither: mDNS packets were sent"
else
	ok "neither: DHCP and DNS sent, no packet to port 5353 (no mDNS)"
fi

# --- an SRV whose target is public: refused -----------------------------------
printf 'srv-host=_acme-server._tcp.lan.test,ca.lan.test,443,0,0\nhost-record=ca.lan.test,203.0.113.9\n' >"$dir/public.conf"
start_dnsmasq public "$dir/public.conf"
run_probe public; rc=$?
show public
if [ $rc = 1 ] && grep -q "refused: ca.lan.test has the public address 203.0.113.9" "$dir/public.err"; then
	ok "SRV to a public address: refused"
else
	bad "SRV to a public address: status $rc"
fi

# --- a DHCP option for another enterprise: ignored, DNS-SD used ----------------
sed 's/vi-encap:55357/vi-encap:55358/' "$dir/dhcp.conf" >"$dir/other.conf"
start_dnsmasq other "$dir/other.conf" "$dir/dnssd.conf"
run_probe other; rc=$?
show other
[ $rc = 0 ] && grep -q "source=dns-sd" "$dir/other.out" && ok "option 125 of another enterprise: ignored, DNS-SD used" || bad "other enterprise: status $rc"
stop_dnsmasq

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
