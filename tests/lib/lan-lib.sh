# shellcheck shell=bash disable=SC2154
# lan-lib.sh: a LAN in network namespaces for the iotca-agent tests and
# benchmark (sourced, not run).
#
# The caller sets bin (the build's bin directory, absolute) and src (the
# source tree), then:
#	lan_init TAG		root and tools checked (exit 77 without them);
#				$dir (a fresh directory), the trap that cleans
#				up, the router namespace $r with bridge br0 at
#				10.77.0.1/24
#	join NS ADDR [MAC]	a namespace on the bridge, eth0 at ADDR
#	lan_announce		$dir/announce.dnsmasq from "iotca discovery":
#				the V-I option, SRV, TXT, PTR and A records for
#				ca.lan.test at 10.77.0.2
#	lan_devices N		device i's name in DNS and in $dir/hosts (the
#				ACME server's validation: no mDNS here)
#	lan_dnsmasq [CONF]	write $dir/dnsmasq.conf (unless CONF is given)
#				and start dnsmasq in $r; its pid is $dnsmasq_pid
#	lan_appliance NS [DEVSTACK-ARGS]	scripts/devstack start $dir/app
#				listening on 10.77.0.2:443 in NS
#	agent_conf DIR [EXTRA-LINES]	an agent.conf with reload and notify
#				hooks that log to DIR/hook.log
# ok/bad count results in $fails; every pid put in pids is killed at exit,
# every namespace in nss deleted, the appliance in $dir/app stopped.
# Addresses 10.77.0.0/24 exist only inside the namespaces.

lan_skip() { echo "SKIP: $*" >&2; echo "SKIP: $*"; exit 77; }
ok() { echo "ok: [$SECONDS s] $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
inr() { ip netns exec "$r" "$@"; }
dev_id() { printf 'ex0200000000%02x' "$1"; }
dev_mac() { printf '02:00:00:00:00:%02x' "$1"; }
dev_addr() { echo "10.77.0.$((10 + $1))"; }
iotca() { "$bin/iotca" --socket "$dir/app/admin.sock" "$@"; }

lan_cleanup() {
	local p ns
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -f "$dir/app/signer.pid" ] && IOTCA_BIN=$bin "$src/scripts/devstack" stop "$dir/app" >/dev/null 2>&1
	for ns in "${nss[@]}"; do ip netns del "$ns" 2>/dev/null; done
	if [ -n "${KEEP:-}" ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}

lan_init() {
	tag=$1
	r=$tag-r
	[ "$(id -u)" -eq 0 ] || lan_skip "needs root for network namespaces"
	command -v dnsmasq >/dev/null || lan_skip "dnsmasq not installed (scripts/install-deps)"
	command -v python3 >/dev/null || lan_skip "python3 not installed"
	command -v curl >/dev/null || lan_skip "curl not installed"
	dir=$(mktemp -d)
	chmod 755 "$dir"
	pids=()
	nss=()
	fails=0
	trap lan_cleanup EXIT
	ip netns add "$r" 2>/dev/null || lan_skip "ip netns add failed: no network namespaces here"
	nss+=("$r")
	inr ip link set lo up &&
	inr ip link add br0 type bridge &&
	inr ip addr add 10.77.0.1/24 dev br0 &&
	inr ip link set br0 up || { bad "the bridge"; exit 1; }
}

join() {
	local ns=$1 addr=$2 mac=${3:-} port=v$(( ${#nss[@]} ))
	ip netns add "$ns" || return 1
	nss+=("$ns")
	ip netns exec "$ns" ip link set lo up &&
	inr ip link add "$port" type veth peer name eth0 netns "$ns" &&
	inr ip link set "$port" master br0 &&
	inr ip link set "$port" up || return 1
	if [ -n "$mac" ]; then ip netns exec "$ns" ip link set eth0 address "$mac" || return 1; fi
	ip netns exec "$ns" ip addr add "$addr/24" dev eth0 &&
	ip netns exec "$ns" ip link set eth0 up &&
	ip netns exec "$ns" ip route add default via 10.77.0.1
}

lan_announce() {
	sed -e 's|^name = .*|name = ca|' -e 's|^domains = .*|domains = lan.test|' \
	    -e 's|^; ips = .*|ips = 10.77.0.2|' -e 's|^base_url = .*|base_url = https://ca.lan.test|' \
	    "$src/dist/iotca.conf.example" >"$dir/announce.conf"
	"$bin/iotca" -c "$dir/announce.conf" discovery --json >"$dir/disc.json" ||
		{ bad "iotca discovery --json"; exit 1; }
	python3 - "$dir/disc.json" "$dir" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
dns = [j["dhcp"]["dnsmasq"]]
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
open(sys.argv[2] + "/announce.dnsmasq", "w").write("\n".join(dns) + "\n")
PY
	: >"$dir/hosts"
}

lan_devices() {
	local i
	for i in $(seq 1 "$1"); do
		echo "host-record=$(dev_id "$i").lan.test,$(dev_addr "$i")" >>"$dir/announce.dnsmasq"
		echo "$(dev_addr "$i") $(dev_id "$i").local $(dev_id "$i").lan.test" >>"$dir/hosts"
	done
}

lan_dnsmasq() {
	local conf=${1:-$dir/dnsmasq.conf}
	if [ -z "${1:-}" ]; then
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
			cat "$dir/announce.dnsmasq"
		} >"$conf"
	fi
	ip netns exec "$r" dnsmasq --keep-in-foreground --conf-file="$conf" \
		--pid-file="$dir/dnsmasq.pid" --log-facility="$dir/$(basename "$conf" .conf).log" &
	dnsmasq_pid=$!
	pids+=("$dnsmasq_pid")
}

lan_appliance() {
	local ns=$1 t0
	shift
	t0=$(date +%s)
	if ! ip netns exec "$ns" env IOTCA_BIN="$bin" "$src/scripts/devstack" start "$dir/app" \
		--key file --name ca --domain lan.test --listen 10.77.0.2:443 \
		--acme base_url=https://ca.lan.test --hosts "$dir/hosts" "$@" >>"$dir/devstack.log" 2>&1; then
		cat "$dir/devstack.log"
		bad "the appliance did not start"
		return 1
	fi
	ok "appliance up on 10.77.0.2:443 in $(( $(date +%s) - t0 )) s"
}

# The hooks log one line per call, in their own directory.
lan_hook() {
	cat >"$1" <<'EOF'
#!/bin/sh
# hook ARGS...: one line per call, in the device's directory
d=$(dirname "$0")
echo "$*" >>"$d/hook.log"
EOF
	chmod 755 "$1"
}
agent_conf() {
	mkdir -p "$1"
	lan_hook "$1/reload"
	lan_hook "$1/notify"
	cat >"$1/agent.conf" <<EOF
[agent]
state_dir = $1/state
interface = eth0
vendor_prefix = ex
http01_port = 80
cert_file = $1/cert.pem
key_file = $1/key.pem
reload_command = $1/reload
notify_command = $1/notify
retry_seconds = 2
${2:-}
EOF
}
