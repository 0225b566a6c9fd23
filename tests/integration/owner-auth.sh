#!/usr/bin/env bash
# A TPM whose owner hierarchy has a password, provisioned as an
# administrator would: a persistent storage key (SRK) at 0x81000001.  With
# [key] parent naming it and [key] owner_auth_file holding the password, the
# root key and the audit log's sealed key live under the SRK and the NV
# counter is defined with the password; the signer signs, restarts, and the
# audit log verifies.  Without parent, or without (or with a wrong)
# password, iotca init stops and says which setting is missing.
#
# usage: owner-auth.sh
set -euo pipefail
src=${IOTCA_SRC:?}
bin=${IOTCA_BIN:?}
iotca=$bin/iotca
dir=$(mktemp -d /tmp/iotca-ownerauth.XXXXXX)
stack=$dir/stack
cleanup() { "$src/scripts/devstack" stop "$stack" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

command -v swtpm >/dev/null || { echo "swtpm not installed"; exit 77; }
command -v tpm2_changeauth >/dev/null || { echo "tpm2-tools not installed"; exit 77; }

fail=0
ok() { echo "ok - $*"; }
bad() { fail=1; echo "not ok - $*"; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }

# Issue one certificate through the admin socket: the key signs.
issue() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes \
		-keyout "$dir/dev.key" -out "$dir/dev.csr" -subj /CN=device-0a0b0c \
		-addext subjectAltName=DNS:device-0a0b0c.local >/dev/null 2>&1 &&
	"$iotca" issue --csr "$dir/dev.csr" --out "$dir/dev-$1.pem" >/dev/null &&
	openssl verify -CAfile "$IOTCA_ROOT_PEM" "$dir/dev-$1.pem" >/dev/null
}

secret='correct horse battery'
if ! "$src/scripts/devstack" start "$stack" --key tpm2 --owner-auth "$secret" >"$dir/start.out" 2>&1; then
	cat "$dir/start.out"; echo "not ok - devstack with an owner password"; exit 1
fi
# shellcheck disable=SC1091
. "$stack/env"
ok "init and the signer work under the SRK, with the owner password in owner_auth_file"
check "the owner hierarchy really has a password (empty authorization refused)" \
	sh -c '! TPM2TOOLS_TCTI=tabrmd:bus_type=session tpm2_createprimary -C o -c "$0/p.ctx"' "$dir"
check "the root key's blob names the SRK as its parent" \
	sh -c 'openssl asn1parse -in "$0" | grep -q ":81000001"' "$stack/root-key.tss"
check "a certificate is signed by the TPM key" issue 1
check "the audit log verifies (sealed key under the SRK, NV counter)" "$iotca" audit verify
check "the password is in no log" sh -c '! grep -rqF "$0" "$1"/*.log' "$secret" "$stack"

"$src/scripts/devstack" stop "$stack" >/dev/null
# A running signer needs no owner password: the key and the sealed key load
# under the SRK and the counter exists.
sed -i 's|^owner_auth_file = |#&|' "$stack/iotca.conf"
if "$src/scripts/devstack" start "$stack" >"$dir/start.out" 2>&1; then
	ok "restarted without the password: the key loads under the SRK"
	check "and signs" issue 2
	check "and the audit log still verifies" "$iotca" audit verify
	"$src/scripts/devstack" stop "$stack" >/dev/null
else
	bad "restart under the SRK"; cat "$dir/start.out"; tail -n 5 "$stack/signer.log"
fi
sed -i 's|^#owner_auth_file = |owner_auth_file = |' "$stack/iotca.conf"

# A file others can read, or an empty one, is refused before it is used.
cp "$stack/owner-auth" "$dir/owner-auth.good"
chmod 644 "$stack/owner-auth"
refused() {	# refused WHAT PATTERN: the signer does not start and logs PATTERN
	: >"$stack/signer.log"
	if "$src/scripts/devstack" start "$stack" >"$dir/start.out" 2>&1; then
		bad "$1 (the signer started)"
		"$src/scripts/devstack" stop "$stack" >/dev/null 2>&1 || true
	elif grep -q -- "$2" "$stack/signer.log"; then ok "$1"
	else bad "$1 (signer.log: $(tail -n 2 "$stack/signer.log"))"; fi
}
refused "a world-readable owner_auth_file is refused" "only its owner can read"
: >"$stack/owner-auth"
chmod 600 "$stack/owner-auth"
refused "an empty owner_auth_file is refused" "must hold one line"
cp "$dir/owner-auth.good" "$stack/owner-auth"

# A fresh appliance on such a TPM: init says what is missing.  The TPM
# (and its SRK) is the same; only the configuration and files are new.
fresh() {	# fresh WHAT PATTERN SED-EXPR NV-INDEX: init with an edited config fails
	local what=$1 pat=$2 conf=$dir/fresh.conf out
	rm -rf "$dir/f" && mkdir -p "$dir/f"
	cp "$stack/owner-auth" "$dir/f/owner-auth"
	sed -e "s|$stack/|$dir/f/|g" -e "$3" "$stack/iotca.conf" >"$conf"
	# A counter of its own: the stack's is defined already.
	printf '\n[audit]\nnv_index = %s\n' "$4" >>"$conf"
	if out=$("$iotca" --config "$conf" init 2>&1); then
		bad "$what (init succeeded)"
	elif grep -q -- "$pat" <<<"$out"; then ok "$what"
	else bad "$what (said: $out)"; fi
}
"$src/scripts/devstack" start "$stack" >/dev/null 2>&1 || bad "start again"
# shellcheck disable=SC1091
. "$stack/env"		# the restarted stack's D-Bus address
fresh "init without [key] parent: the TPM refuses, init names parent" \
	"\[key\] parent" '/^parent = /d' 0x01500020
fresh "init without the password: defining the NV counter fails, init names owner_auth_file" \
	"owner_auth_file" '/^owner_auth_file = /d' 0x01500021
printf 'wrong horse\n' >"$dir/wrong"
chmod 600 "$dir/wrong"
fresh "init with a wrong password: names owner_auth_file" \
	"owner_auth_file" "s|^owner_auth_file = .*|owner_auth_file = $dir/wrong|" 0x01500022
exit $fail
