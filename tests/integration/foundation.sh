#!/usr/bin/env bash
# The foundation as an operator sees it: devstack with a real key store,
# iotca init / issue / certs / revoke / crl / status, and openssl checking
# every result independently.
#
# usage: foundation.sh tpm2|file
set -euo pipefail
store=${1:?tpm2 or file}
src=${IOTCA_SRC:?}
bin=${IOTCA_BIN:?}
iotca=$bin/iotca
dir=$(mktemp -d /tmp/iotca-found.XXXXXX)
work=$dir/work
cleanup() { "$src/scripts/devstack" stop "$dir/stack" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
mkdir -p "$work"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }
refuses() {	# refuses WHAT PATTERN CMD...: CMD fails and says PATTERN
	local what=$1 pat=$2 out; shift 2
	if out=$("$@" 2>&1); then bad "$what (succeeded: $out)";
	elif grep -q -- "$pat" <<<"$out"; then ok "$what";
	else bad "$what (said: $out)"; fi
}

if [ "$store" = tpm2 ] && ! command -v swtpm >/dev/null; then
	echo "swtpm not installed"; exit 77
fi
"$src/scripts/devstack" start "$dir/stack" --key "$store" --name iotca-test --domain home.arpa >/dev/null
# shellcheck disable=SC1091
. "$dir/stack/env"
root=$IOTCA_ROOT_PEM

# --- the root key and certificate -------------------------------------------
keyfile=$(sed -n 's/^path = //p' "$IOTCA_CONFIG")
if [ "$store" = tpm2 ]; then
	label="TSS2 PRIVATE KEY"	# built, so no key-shaped line sits in this file
	check "root key is a TPM-wrapped blob" grep -q -- "-----BEGIN $label-----" "$keyfile"
	refuses "root key blob is no software key" "" openssl pkey -in "$keyfile" -noout
else
	check "file key is mode 0600" test "$(stat -c %a "$keyfile")" = 600
fi
text=$(openssl x509 -in "$root" -noout -text)
has() { grep -q -- "$2" <<<"$text" && ok "root: $1" || bad "root: $1 (no \"$2\")"; }
has "ECDSA P-384 key" "NIST CURVE: P-384"
has "signed with SHA-384" "Signature Algorithm: ecdsa-with-SHA384"
has "basicConstraints critical" "X509v3 Basic Constraints: critical"
has "CA:TRUE" "CA:TRUE"
has "keyUsage critical" "X509v3 Key Usage: critical"
has "keyCertSign and cRLSign" "Certificate Sign, CRL Sign"
has "SKI" "X509v3 Subject Key Identifier"
has "nameConstraints critical" "X509v3 Name Constraints: critical"
has "permits .local" "DNS:local"
has "permits home.arpa" "DNS:home.arpa"
has "permits 10/8" "IP:10.0.0.0/255.0.0.0"
has "permits 172.16/12" "IP:172.16.0.0/255.240.0.0"
has "permits 192.168/16" "IP:192.168.0.0/255.255.0.0"
has "permits 127/8" "IP:127.0.0.0/255.0.0.0"
has "permits 169.254/16" "IP:169.254.0.0/255.255.0.0"
has "permits fc00::/7" "IP:FC00:0:0:0:0:0:0:0/FE00:0:0:0:0:0:0:0"
has "permits fe80::/10" "IP:FE80:0:0:0:0:0:0:0/FFC0:0:0:0:0:0:0:0"
has "permits ::1/128" "IP:0:0:0:0:0:0:0:1/FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF"
has "SAN server.local" "DNS:iotca-test.local"
has "SAN server.home.arpa" "DNS:iotca-test.home.arpa"
years=$(( ($(date -d "$(openssl x509 -in "$root" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400 / 365 ))
check "root valid 10 years" test "$years" -ge 9 -a "$years" -le 10
check "root verifies itself" openssl verify -CAfile "$root" "$root"
# RFC 5758 3.2: ECDSA signature AlgorithmIdentifiers have no parameters
# (browsers reject a NULL there); both the inner and the outer one.
no_sigalg_params() {	# no_sigalg_params FILE [crl]
	! openssl asn1parse -in "$1" | grep -A1 "OBJECT *:ecdsa-with" | grep -q "prim: NULL"
}
check "root's signature algorithm has no parameters" no_sigalg_params "$root"

# --- an algorithm the TPM lacks is named, and nothing is left behind -----------
# A TPM of its own: swtpm has no resource manager, and the running signer
# holds object slots in the devstack one.
if [ "$store" = tpm2 ]; then
	sed -e "s|^root_cert = .*|root_cert = $work/probe-root.pem|" \
	    -e "s|^path = .*|path = $work/probe-key.tss|" -e "/^tcti = /d" \
	    -e "s|^db = .*|db = $work/probe.db|" "$IOTCA_CONFIG" >"$work/probe.conf"
	probe() { "$src/tests/lib/swtpm-run" "$iotca" --config "$work/probe.conf" init "$@"; }
	refuses "init names what the TPM cannot make" "cannot create rsa-4096 keys (it can: .*ec-p384" \
		probe --algorithm rsa-4096
	check "no key or root left by the failed init" test ! -e "$work/probe-key.tss" -a ! -e "$work/probe-root.pem"
	out=$(probe --algorithm ec-p521 2>&1)
	grep -q "ec-p521" <<<"$out" && ok "init with ec-p521 in the TPM" || bad "init ec-p521: $out"
	openssl x509 -in "$work/probe-root.pem" -noout -text | grep -q "ecdsa-with-SHA512" &&
		ok "P-521 root signed with SHA-512" || bad "P-521 root hash"
fi

# --- iotca status --------------------------------------------------------------
status=$("$iotca" status)
grep -q "key .*ec-p384 $store" <<<"$status" && ok "status names the key store" || bad "status: $status"
check "status --json parses" python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["name"]=="iotca-test"' < <("$iotca" status --json)

# --- re-init refuses and changes nothing ---------------------------------------
before=$(sha256sum "$root" "$keyfile")
refuses "re-init refuses" "already exists" "$iotca" init
check "re-init left root and key untouched" test "$before" = "$(sha256sum "$root" "$keyfile")"

# --- issue through admin.sock ----------------------------------------------------
csr() {	# csr NAME KEYALG SAN...
	local name=$1 alg=$2 san newkey; shift 2
	san=$(IFS=,; echo "$*")
	case $alg in
	p384) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-384) ;;
	p256) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
	rsa3072) newkey=(-newkey rsa:3072) ;;
	esac
	openssl req -new "${newkey[@]}" -nodes -keyout "$work/$name.key" -out "$work/$name.csr" \
		-subj "/CN=${name}" -addext "subjectAltName=$san" -sha384 2>/dev/null
}
csr device-12cd56 p384 DNS:device-12cd56.local DNS:device-12cd56.home.arpa IP:192.168.1.20 IP:fe80::1
out=$("$iotca" issue --csr "$work/device-12cd56.csr" --out "$work/device-12cd56.pem")
grep -q "issued .* to device-12cd56" <<<"$out" && ok "iotca issue reports the device" || bad "issue said: $out"
check "issued cert chains to the root" openssl verify -CAfile "$root" "$work/device-12cd56.pem"
check "leaf's signature algorithm has no parameters" no_sigalg_params "$work/device-12cd56.pem"
check "issued cert passes nameConstraints for its names" openssl verify -CAfile "$root" -verify_hostname device-12cd56.home.arpa "$work/device-12cd56.pem"
ctext=$(openssl x509 -in "$work/device-12cd56.pem" -noout -text)
grep -q "TLS Web Server Authentication, TLS Web Client Authentication" <<<"$ctext" && ok "EKU serverAuth+clientAuth" || bad "EKU"
grep -q "CA:FALSE" <<<"$ctext" && ok "not a CA" || bad "CA:FALSE"
grep -q "DNS:device-12cd56.local, DNS:device-12cd56.home.arpa, IP Address:192.168.1.20, IP Address:FE80:0:0:0:0:0:0:1" <<<"$ctext" && ok "SANs copied" || bad "SANs: $(grep -A1 'Alternative' <<<"$ctext")"
grep -q "Subject: CN = device-12cd56.local$" <<<"$ctext" && ok "CN is the first DNS name" || bad "CN"
days=$(( ($(date -d "$(openssl x509 -in "$work/device-12cd56.pem" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))
check "lives at most 90 days" test "$days" -le 90 -a "$days" -ge 89
serial=$(openssl x509 -in "$work/device-12cd56.pem" -noout -serial | cut -d= -f2)
check "serial is ~128 bits" test ${#serial} -ge 30

# certbot-style CSR: no CN; device ID from the first DNS name.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$work/nocn.key" \
	-out "$work/nocn.csr" -subj "/" -addext "subjectAltName=DNS:cam-0042.local" 2>/dev/null
out=$("$iotca" issue --csr "$work/nocn.csr" --out "$work/nocn.pem")
grep -q "to cam-0042" <<<"$out" && ok "no-CN CSR gets device ID from its name" || bad "no-CN: $out"

csr rsa-dev rsa3072 DNS:rsa-dev.local
check "RSA-3072 CSR issued" "$iotca" issue --csr "$work/rsa-dev.csr" --out "$work/rsa-dev.pem" --days 30

# --- refusals through the CLI carry the reason ------------------------------------
csr weak-dev p256 DNS:weak-dev.local
refuses "P-256 CSR refused (badCSR, RFC 8555 7.4)" "badCSR" "$iotca" issue --csr "$work/weak-dev.csr" --out "$work/x.pem"
csr pub-dev p384 DNS:pub-dev.example.org
refuses "public name refused" "rejectedIdentifier" "$iotca" issue --csr "$work/pub-dev.csr" --out "$work/x.pem"
csr iotca-test p384 DNS:iotca-test.local
refuses "server's own name refused" "rejectedIdentifier" "$iotca" issue --csr "$work/iotca-test.csr" --out "$work/x.pem"
refuses "over 90 days refused" "days" "$iotca" issue --csr "$work/device-12cd56.csr" --out "$work/x.pem" --days 91
check "no file written on refusal" test ! -e "$work/x.pem"
echo "not a csr" >"$work/garbage.csr"
refuses "garbage CSR refused" "badCSR" "$iotca" issue --csr "$work/garbage.csr" --out "$work/x.pem"

# --- listing ------------------------------------------------------------------------
list=$("$iotca" certs)
grep -q "$serial .*device-12cd56 .*valid" <<<"$list" && ok "certs lists the issued cert" || bad "certs: $list"
# devstack also starts iotca-acmed, whose own TLS certificate (device ID =
# the server's name) the signer issues too: count the devices' only.
check "certs --json has 3 device entries" python3 -c 'import json,sys; assert len([c for c in json.load(sys.stdin) if c["device_id"]!="iotca-test"])==3' < <("$iotca" certs --json)

# --- revocation and CRL ---------------------------------------------------------------
check "revoke" "$iotca" revoke "$serial" --reason keyCompromise
refuses "second revoke refused" "already revoked" "$iotca" revoke "$serial"
refuses "unknown serial refused" "no such certificate" "$iotca" revoke 0123456789ABCDEF
refuses "certificateHold is not offered" "unknown revocation reason" "$iotca" revoke "$serial" --reason certificateHold
"$iotca" crl --out "$work/crl.pem"
check "CRL verifies against the root" openssl crl -in "$work/crl.pem" -CAfile "$root" -noout
check "CRL's signature algorithm has no parameters" no_sigalg_params "$work/crl.pem"
crltext=$(openssl crl -in "$work/crl.pem" -noout -text)
grep -q "Serial Number: $serial" <<<"$crltext" && ok "CRL lists the revoked serial" || bad "CRL: $crltext"
grep -q "Key Compromise" <<<"$crltext" && ok "CRL carries the reason" || bad "CRL reason"
refuses "openssl rejects the revoked cert with the CRL" "certificate revoked" \
	openssl verify -crl_check -CAfile "$root" -CRLfile "$work/crl.pem" "$work/device-12cd56.pem"
check "a valid cert still passes with the CRL" openssl verify -crl_check -CAfile "$root" -CRLfile "$work/crl.pem" "$work/nocn.pem"
"$iotca" certs | grep -q "$serial .*revoked" && ok "certs shows revoked" || bad "certs after revoke"

# --- restart keeps state ---------------------------------------------------------------
"$src/scripts/devstack" stop "$dir/stack"
check "signer stopped" test ! -e "$dir/stack/signer.pid"
"$src/scripts/devstack" start "$dir/stack" >/dev/null
"$iotca" certs | grep -q "$serial .*revoked" && ok "state survives a restart" || bad "state after restart"
check "signer.db is 0600" test "$(stat -c %a "$dir/stack/signer.db")" = 600

# --- nothing secret in the logs ---------------------------------------------------------
if grep -q "PRIVATE KEY" "$dir/stack/signer.log" "$dir/stack/init.log"; then bad "key material in logs"; else ok "no key material in logs"; fi

"$src/scripts/devstack" stop "$dir/stack"
if [ -f "$dir/stack/swtpm.pid" ] || pgrep -f "iotca-signer -c $dir/stack" >/dev/null; then bad "devstack stop left processes"; else ok "devstack stop stopped everything"; fi

# Under ASan/UBSan the daemons report into their logs, at exit for leaks.
if grep -E -l "AddressSanitizer|LeakSanitizer|runtime error" "$dir/stack/"*.log; then
	bad "sanitizer report in a daemon log"; grep -E -A30 "Sanitizer|runtime error" "$dir/stack/"*.log | head -60
else ok "no sanitizer report in the daemon logs"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
