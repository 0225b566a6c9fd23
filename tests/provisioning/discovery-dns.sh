#!/usr/bin/env bash
# "iotca discovery" against a real BIND 9 on loopback: --update publishes the
# DNS-SD records with a TSIG-signed RFC 2136 update and dig sees them; a key
# the zone does not allow, a wrong secret, an unknown key and a key file
# others can read are refused with a clear line; the printed zone lines,
# loaded into named as a zone file, give the same answers; dnsmasq accepts
# the printed dnsmasq line.
set -uo pipefail
iotca=${1:?usage: discovery-dns.sh IOTCA}
src=$(cd "$(dirname "$0")/../.." && pwd)
for t in named dig dnsmasq python3 tsig-keygen; do
	command -v "$t" >/dev/null || { echo "SKIP: $t not installed (scripts/install-deps)"; exit 77; }
done
dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
port2=$(free_port)
mkdir -p "$dir/ns" "$dir/ns2"
tsig-keygen -a hmac-sha256 iotca-update >"$dir/update.key"
tsig-keygen -a hmac-sha256 other-key >"$dir/other.key"
chmod 600 "$dir/update.key" "$dir/other.key"
# The same key name with another secret: BADSIG.
sed "s|secret \".*\"|secret \"$(openssl rand -base64 32)\"|" "$dir/update.key" >"$dir/wrong.key"
tsig-keygen -a hmac-sha256 stranger >"$dir/stranger.key"
chmod 600 "$dir/wrong.key" "$dir/stranger.key"

zonehead() {
	printf '$TTL 60\n@ IN SOA ns.lan.test. admin.lan.test. 1 60 60 600 60\n@ IN NS ns.lan.test.\nns IN A 127.0.0.1\n'
}
zonehead >"$dir/ns/lan.test.zone"
cat >"$dir/ns/named.conf" <<CONF
options {
	directory "$dir/ns";
	listen-on port $port { 127.0.0.1; };
	listen-on-v6 { none; };
	pid-file "$dir/ns/named.pid";
	recursion no;
	dnssec-validation no;
};
$(cat "$dir/update.key")
$(cat "$dir/other.key")
zone "lan.test" { type primary; file "$dir/ns/lan.test.zone"; allow-update { key "iotca-update"; }; };
CONF
named -g -c "$dir/ns/named.conf" >"$dir/ns/named.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do dig +short -p "$port" @127.0.0.1 ns.lan.test A 2>/dev/null | grep -q 127.0.0.1 && break; sleep 0.1; done
dig +short -p "$port" @127.0.0.1 ns.lan.test A | grep -q 127.0.0.1 || { bad "named did not start: $(tail -5 "$dir/ns/named.log")"; exit 1; }

conf() {	# conf KEYFILE
	sed -e 's|^domains = .*|domains = lan.test|' -e 's|^; ips = .*|ips = 10.77.0.1|' \
	    -e 's|^base_url = .*|base_url = https://router-fdb531.lan.test:8443|' \
	    "$src/dist/iotca.conf.example" >"$dir/iotca.conf"
	cat >>"$dir/iotca.conf" <<EOF

[discovery]
dns_server = 127.0.0.1:$port
tsig_key_file = $1
ttl = 120
EOF
}

# The answer's records, sorted.  A loaded machine can make dig's first try
# time out: it says so on a ";;" line and asks again; only the answer counts.
q() { dig +short -p "$1" @127.0.0.1 "$2" "$3" | grep -v '^;;' | sort; }
svc=_acme-server._tcp.lan.test

# --- --update publishes ----------------------------------------------------
conf "$dir/update.key"
if out=$("$iotca" -c "$dir/iotca.conf" discovery --update 2>&1) && [[ $out == *"published 6 records for lan.test"* ]]; then
	ok "--update: $out"
else
	bad "--update failed: $out"
fi
[ "$(q "$port" $svc SRV)" = "0 0 8443 router-fdb531.lan.test." ] && ok "dig SRV $svc" || bad "SRV: $(q "$port" $svc SRV)"
[ "$(q "$port" $svc TXT)" = '"path=/directory"' ] && ok "dig TXT $svc" || bad "TXT: $(q "$port" $svc TXT)"
[ "$(q "$port" $svc PTR)" = "router-fdb531.$svc." ] && ok "dig PTR $svc" || bad "PTR: $(q "$port" $svc PTR)"
[ "$(q "$port" "router-fdb531.$svc" SRV)" = "0 0 8443 router-fdb531.lan.test." ] && ok "dig SRV of the instance" || bad "instance SRV"
[ "$(q "$port" router-fdb531.lan.test A)" = "10.77.0.1" ] && ok "dig A of the server" || bad "A"
ttl=$(dig +noall +answer -p "$port" @127.0.0.1 $svc SRV | awk '!/^;;/ {print $2}')
[ "$ttl" = 120 ] && ok "TTL from [discovery] ttl" || bad "TTL $ttl"
# Again: replaced, not doubled.
"$iotca" -c "$dir/iotca.conf" discovery --update >/dev/null 2>&1
[ "$(q "$port" $svc SRV | wc -l)" = 1 ] && ok "a second --update replaces the records" || bad "records doubled: $(q "$port" $svc SRV)"

# --- refusals ---------------------------------------------------------------
refused() {	# refused KEYFILE WHAT PATTERN
	conf "$1"
	if out=$("$iotca" -c "$dir/iotca.conf" discovery --update 2>&1); then
		bad "$2: accepted: $out"
	elif [[ $out == *"$3"* ]]; then
		ok "$2: $out"
	else
		bad "$2: unclear error: $out"
	fi
}
refused "$dir/other.key" "a key not allowed for the zone" "REFUSED"
refused "$dir/wrong.key" "a wrong secret" "BADSIG"
refused "$dir/stranger.key" "a key the server does not know" "BADKEY"
chmod 644 "$dir/other.key"
refused "$dir/other.key" "a key file others can read" "chmod 600"
conf "$dir/update.key"
sed -i "s|^dns_server = .*|dns_server = 127.0.0.1:$(free_port)|" "$dir/iotca.conf"
if out=$("$iotca" -c "$dir/iotca.conf" discovery --update 2>&1); then bad "no server: accepted"
else ok "no DNS server listening: $out"; fi
sed -i "s|^dns_server = .*|dns_server = nameserver.lan.test|" "$dir/iotca.conf"
if out=$("$iotca" -c "$dir/iotca.conf" discovery 2>&1); then bad "bad dns_server accepted"
elif [[ $out == *"iotca.conf:"*"dns_server must be ADDR"* ]]; then ok "bad dns_server: $out"
else bad "bad dns_server: $out"; fi
grep -q "$(sed -n 's/.*secret "\(.*\)".*/\1/p' "$dir/update.key")" "$dir/ns/named.log" && bad "secret in named's log?"

# --- [discovery] refusals: one per rule, each naming its line --------------
badconf() {	# badconf LINE PATTERN
	conf "$dir/update.key"
	printf '%s\n' "$1" >>"$dir/iotca.conf"
	if out=$("$iotca" -c "$dir/iotca.conf" discovery 2>&1); then
		bad "[discovery] $1: accepted"
	elif [[ $out == *"iotca.conf:"[0-9]*": "*"$2"* ]]; then
		ok "[discovery] $1: $out"
	else
		bad "[discovery] $1: unclear: $out"
	fi
}
badconf "enterprise = 0" "enterprise must be"
badconf "enterprise = 4294967296" "enterprise must be"
badconf "suboption = 255" "suboption must be 1..254"
badconf "suboption = one" "suboption must be 1..254"
badconf "ttl = -1" "ttl must be"
badconf "dns_server = 127.0.0.1:0" "dns_server must be"
badconf "tsig_key_file = relative.key" "absolute path"
badconf "zone = bad_zone!" "zone must be a domain name"
badconf "colour = blue" 'unknown key "colour" in [discovery]'
badconf "enterprise =" 'has no value'
conf "$dir/update.key"
sed -i 's|^base_url = .*|base_url = https://router-fdb531.lan.test:99999|' "$dir/iotca.conf"
if out=$("$iotca" -c "$dir/iotca.conf" discovery 2>&1); then bad "bad base_url port accepted"
else ok "a bad [acme] base_url: $out"; fi
conf "$dir/update.key"
sed -i 's|^base_url = .*||; s|^listen = .*|listen = 127.0.0.1:7443|' "$dir/iotca.conf"
"$iotca" -c "$dir/iotca.conf" discovery | grep -q "SRV 0 0 7443 router-fdb531.lan.test." \
	&& ok "without base_url the first listen's port is announced" || bad "listen port not used"

# --- the zone lines, loaded into a second named -----------------------------
conf "$dir/update.key"
"$iotca" -c "$dir/iotca.conf" discovery --json >"$dir/disc.json" || bad "discovery --json"
{ zonehead; python3 -c 'import json,sys; [print(r) for d in json.load(open(sys.argv[1]))["domains"] for r in d["records"]]' "$dir/disc.json"; } >"$dir/ns2/lan.test.zone"
cat >"$dir/ns2/named.conf" <<CONF
options {
	directory "$dir/ns2";
	listen-on port $port2 { 127.0.0.1; };
	listen-on-v6 { none; };
	pid-file "$dir/ns2/named.pid";
	recursion no;
	dnssec-validation no;
};
zone "lan.test" { type primary; file "$dir/ns2/lan.test.zone"; };
CONF
named-checkzone lan.test "$dir/ns2/lan.test.zone" >/dev/null && ok "named-checkzone accepts the zone lines" || bad "named-checkzone: $(named-checkzone lan.test "$dir/ns2/lan.test.zone")"
named -g -c "$dir/ns2/named.conf" >"$dir/ns2/named.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do dig +short -p "$port2" @127.0.0.1 ns.lan.test A 2>/dev/null | grep -q 127.0.0.1 && break; sleep 0.1; done
same=1
for rr in "$svc SRV" "$svc TXT" "$svc PTR" "router-fdb531.$svc SRV" "router-fdb531.$svc TXT" "router-fdb531.lan.test A"; do
	set -- $rr
	a=$(q "$port" "$1" "$2"); b=$(q "$port2" "$1" "$2")
	if [ -z "$b" ] || [ "$a" != "$b" ]; then same=0; bad "zone lines: $rr: update gave '$a', zone file '$b'"; fi
done
[ $same = 1 ] && ok "the zone lines give the same answers as --update"

# --- the nsupdate script works as printed ------------------------------------
if command -v nsupdate >/dev/null; then
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["domains"][0]["nsupdate"], end="")' "$dir/disc.json" \
		| sed 's/8443/9443/g' >"$dir/nsupdate.txt"
	if nsupdate -k "$dir/update.key" "$dir/nsupdate.txt" >"$dir/nsupdate.out" 2>&1 &&
	   [ "$(q "$port" $svc SRV)" = "0 0 9443 router-fdb531.lan.test." ]; then
		ok "nsupdate -k KEY runs the printed script"
	else
		bad "nsupdate: $(cat "$dir/nsupdate.out") / $(q "$port" $svc SRV)"
	fi
fi

# --- the dnsmasq line --------------------------------------------------------
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dhcp"]["dnsmasq"])' "$dir/disc.json" >"$dir/dnsmasq.conf"
grep -q '^dhcp-option=vi-encap:55357,1,"router-fdb531.lan.test"$' "$dir/dnsmasq.conf" && ok "dnsmasq line: $(cat "$dir/dnsmasq.conf")" || bad "dnsmasq line: $(cat "$dir/dnsmasq.conf")"
if out=$(dnsmasq --test --conf-file="$dir/dnsmasq.conf" 2>&1); then ok "dnsmasq --test: $out"
else bad "dnsmasq --test: $out"; fi
hex=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dhcp"]["option125_hex"])' "$dir/disc.json")
want="7d 1d 00 00 d8 3d 18 01 16 $(printf %s router-fdb531.lan.test | od -An -tx1 | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')"
[ "$hex" = "$want" ] && ok "option 125 bytes: $hex" || bad "option 125 bytes: $hex, want $want"

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
