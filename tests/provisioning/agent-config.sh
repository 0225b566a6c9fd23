#!/usr/bin/env bash
# agent-config.sh IOTCA-AGENT: iotca-agent's configuration file.  Each bad
# line is refused with the file, the line and the reason (exit 2) before
# anything touches the network; the shipped example (with its interface)
# is accepted.  Needs no root and no network.
set -uo pipefail
agent=${1:?usage: agent-config.sh IOTCA-AGENT}
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

refuse() {	# refuse WHAT EXPECTED-MESSAGE LINES...
	local what=$1 want=$2 out rc
	shift 2
	printf '%s\n' "$@" >"$dir/agent.conf"
	out=$("$agent" -c "$dir/agent.conf" status 2>&1); rc=$?
	if [ $rc = 2 ] && grep -qF -- "$want" <<<"$out"; then
		ok "$what: $out"
	else
		bad "$what: status $rc: $out"
	fi
}
out=$("$agent" -c "$dir/none.conf" status 2>&1); [ $? = 2 ] && grep -q "none.conf: cannot open" <<<"$out" &&
	ok "missing file: $out" || bad "missing file: $out"
refuse "no interface" "[agent] interface is required" "[agent]" "state_dir = /x"
refuse "unknown key" "agent.conf:3: unknown key colour" "[agent]" "interface = eth0" "colour = blue"
refuse "unknown section" "agent.conf:2: unknown section [agnet]" "[agnet]" "interface = eth0"
refuse "relative state_dir" "agent.conf:2: state_dir must be an absolute path" "[agent]" "state_dir = var/lib"
refuse "bad device_id" "device_id must be one lower-case DNS label" "[agent]" "device_id = Cam.1"
refuse "bad vendor_prefix" "vendor_prefix must be lower-case" "[agent]" "vendor_prefix = -x"
refuse "port out of range" "http01_port must be a number from 1 to 65535" "[agent]" "http01_port = 70000"
refuse "not a number" "dhcp_timeout must be a number" "[agent]" "dhcp_timeout = 5s"
refuse "bad boolean" "public must be true or false" "[agent]" "public = maybe"
refuse "relative lease file" "dhcp_lease_file must be an absolute path" "[agent]" "dhcp_lease_file = udhcpc.lease"
refuse "relative hook" "reload_command must be an absolute path" "[agent]" "reload_command = reload.sh"
refuse "empty value" "resolver is empty" "[agent]" "resolver ="
refuse "long interface" "interface is not an interface name" "[agent]" "interface = a-very-long-interface-name"
refuse "syntax" "agent.conf:2:" "[agent]" "this is not a key value line"

# The example, with a state directory of its own: accepted.
sed "s|^state_dir = .*|state_dir = $dir/state|" "$src/dist/iotca-agent.conf.example" >"$dir/example.conf"
out=$("$agent" -c "$dir/example.conf" status 2>&1); rc=$?
[ $rc = 0 ] && grep -q "no network known yet" <<<"$out" && ok "the shipped example is accepted" ||
	bad "example: status $rc: $out"
out=$("$agent" -c "$dir/example.conf" trust --accept 0123456789abcdef 2>&1); rc=$?
[ $rc = 1 ] && grep -q "no new root to accept" <<<"$out" && ok "trust --accept without a new root: $out" ||
	bad "accept without a new root: status $rc: $out"
out=$("$agent" -c "$dir/example.conf" frobnicate 2>&1); rc=$?
[ $rc = 2 ] && grep -q "^usage:" <<<"$out" && ok "unknown command: usage" || bad "unknown command: status $rc"

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
