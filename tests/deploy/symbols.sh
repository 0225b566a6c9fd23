#!/usr/bin/env bash
# symbols.sh BIN_DIR: key-store and TPM code is in iotca-signer and nowhere
# else (DESIGN "Processes and trust boundaries").
#
# Every other program of the appliance in BIN_DIR (iotca-*, iotca: the front
# end, the operator's command, and any provisioning program as it lands)
# must neither define nor reference a key-store function (ks_*), a TPM
# function (Esys_*, Tss2_*, tpmseal's tpm_*), or the audit log's anchor
# (anchor_*), and must not load libtss2-*.  The signer must have them, so
# the check cannot pass because nm saw nothing.
set -euo pipefail

bin=${1:?usage: symbols.sh BIN_DIR}
command -v nm >/dev/null || { echo "SKIP: no nm" >&2; exit 77; }
command -v ldd >/dev/null || { echo "SKIP: no ldd" >&2; exit 77; }

key_code='^(ks_|Esys_|Tss2_|tpm_|tpmseal_|anchor_)'
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

# The names of the symbols a binary defines or references that are key or
# TPM code; nm's own output is checked, so a stripped binary cannot pass.
key_symbols() {
	local out
	out=$(nm "$1" 2>&1) || { echo "nm $1: $out" >&2; return 2; }
	grep -q ' [TtU] main$' <<<"$out" || { echo "nm $1: no symbol table" >&2; return 2; }
	awk '{ print $NF }' <<<"$out" | sed 's/@.*//' | grep -E "$key_code" | sort -u || true
}

signer=$bin/iotca-signer
[ -x "$signer" ] || { echo "FAIL: no $signer" >&2; exit 1; }
have=$(key_symbols "$signer") || exit 1
for want in ks_generate ks_load ks_sign Esys_Initialize tpm_seal_new anchor_open; do
	grep -qx "$want" <<<"$have" || bad "iotca-signer lacks $want: is nm reading the symbols?"
done
# Captured first: grep -q would end the pipe early and pipefail count it.
libs=$(ldd "$signer") || { echo "FAIL: ldd $signer" >&2; exit 1; }
grep -q 'libtss2-esys' <<<"$libs" || bad "iotca-signer does not load libtss2-esys"
echo "iotca-signer: $(wc -l <<<"$have") key and TPM symbols, as it should"

n=0
for exe in "$bin"/iotca*; do
	name=${exe##*/}
	[ -f "$exe" ] && [ -x "$exe" ] || continue
	[ "$name" = iotca-signer ] && continue
	n=$((n + 1))
	syms=$(key_symbols "$exe") || { bad "$name: cannot read its symbols"; continue; }
	if [ -n "$syms" ]; then
		bad "$name has key or TPM code: $(tr '\n' ' ' <<<"$syms")"
	else
		echo "$name: no ks_*, Esys_*, Tss2_*, tpm_*, anchor_* symbols"
	fi
	libs=$(ldd "$exe") || { bad "$name: ldd failed"; continue; }
	libs=$(awk '/libtss2-/ { print $1 }' <<<"$libs" | tr '\n' ' ')
	if [ -n "$libs" ]; then
		bad "$name loads $libs"
	else
		echo "$name: loads no libtss2-*"
	fi
done
# The two that exist today must have been looked at.
for must in iotca iotca-acmed; do
	[ -x "$bin/$must" ] || bad "no $bin/$must to check"
done
[ "$n" -ge 2 ] || bad "only $n programs besides the signer checked"
[ "$fail" = 0 ] || exit 1
echo "ok: $n programs besides iotca-signer hold no key-store or TPM code"
