#!/usr/bin/env bash
# Run test_validate with a real DNS server on loopback: dnsmasq on a free
# port, answering only from the records below (nothing is forwarded).
# The key authorization must match KA_DNS in test_validate.c.
set -euo pipefail
test_bin=$1
KA_DNS="dnstoken.thumbprint-dns"

if ! command -v dnsmasq >/dev/null 2>&1 && [ ! -x /usr/sbin/dnsmasq ]; then
	echo "dnsmasq not installed (Debian: dnsmasq-base): dns-01 tests skipped"
	"$test_bin"
	exit 77
fi
dnsmasq_bin=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)

# base64url(SHA-256(key authorization)), computed independently of the C code.
value=$(python3 -c 'import base64,hashlib,sys
print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).decode().rstrip("="))' "$KA_DNS")

dir=$(mktemp -d /tmp/iotca-validate.XXXXXX)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$dir"
}
trap cleanup EXIT

free_udp_port() {
	python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Answers once dnsmasq serves the port (SOA query for home.arpa).
dns_ready() {
	python3 - "$1" <<'PY'
import socket, struct, sys
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in "dev1.home.arpa".split(".")) + b"\0"
q += struct.pack(">HH", 16, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
try:
    s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
    sys.exit(0 if s.recv(512)[:2] == b"\x12\x34" else 1)
except OSError:
    sys.exit(1)
PY
}

# A port picked this way can be taken before dnsmasq binds it: retry.
for attempt in 1 2 3; do
	port=$(free_udp_port)
	"$dnsmasq_bin" --keep-in-foreground --conf-file=/dev/null --no-hosts \
		--no-resolv --no-poll --pid-file= --bind-interfaces \
		--listen-address=127.0.0.1 --port="$port" --user="$(id -un)" \
		--local=/home.arpa/ \
		--txt-record="_acme-challenge.dev1.home.arpa,$value" \
		--txt-record="_acme-challenge.dev2.home.arpa,wrong-value" \
		--txt-record="_acme-challenge.split.home.arpa,${value:0:20},${value:20}" \
		--txt-record="_acme-challenge.multi.home.arpa,stale-value" \
		--txt-record="_acme-challenge.multi.home.arpa,$value" \
		--host-record="_acme-challenge.nodata.home.arpa,127.0.0.9" \
		--log-facility="$dir/dnsmasq.log" --log-queries &
	pid=$!
	for _ in $(seq 50); do
		dns_ready "$port" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if dns_ready "$port"; then break; fi
	kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=
done
if [ -z "$pid" ]; then
	echo "dnsmasq did not start"; cat "$dir/dnsmasq.log" 2>/dev/null || true; exit 1
fi

rc=0
IOTCA_TEST_DNS_PORT=$port "$test_bin" || rc=$?
if [ "$rc" -ne 0 ]; then echo "--- dnsmasq log"; tail -n 40 "$dir/dnsmasq.log" || true; fi
exit "$rc"
