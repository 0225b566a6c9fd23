#!/usr/bin/env bash
# install-tree.sh BUILD_DIR: "cmake --install" lays out a whole appliance.
#
# Installs the build into a staging DESTDIR and asserts that every file of
# the appliance is there (binaries, one manual page per program, the example
# configuration, the units, sysusers.d and tmpfiles.d), that the manual pages
# render without a warning, that the units pass "systemd-analyze verify"
# against the staged binaries and pages, and that "systemd-analyze security
# --offline=true" rates the signer at most 2.0 and the front end at most 3.0
# (the scores are printed), and that "iotca init" reaches the installed
# iotca-signer.  Paths come from the build's GNUInstallDirs
# (environment set by tests/deploy/CMakeLists.txt).
set -euo pipefail

build=${1:?usage: install-tree.sh BUILD_DIR}
: "${CMAKE:=cmake}"
for tool in systemd-analyze groff man; do
	command -v "$tool" >/dev/null || { echo "SKIP: no $tool" >&2; exit 77; }
done

stage=$(mktemp -d "${TMPDIR:-/tmp}/iotca-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR=$stage/root "$CMAKE" --install "$build" >"$stage/install.log" 2>&1 ||
	{ cat "$stage/install.log" >&2; fail "cmake --install"; }
root=$stage/root
prefix=$IOTCA_PREFIX
units=$root$prefix/$IOTCA_UNITDIR

# Every file the appliance needs, and nothing left to chance.
for f in \
	"$IOTCA_SBINDIR/iotca-signer" "$IOTCA_SBINDIR/iotca-acmed" "$IOTCA_BINDIR/iotca" \
	"$IOTCA_MANDIR/man1/iotca.1" "$IOTCA_MANDIR/man8/iotca-signer.8" \
	"$IOTCA_MANDIR/man8/iotca-acmed.8" "$IOTCA_DOCDIR/iotca.conf.example" \
	"$prefix/$IOTCA_UNITDIR/iotca-signer.service" \
	"$prefix/$IOTCA_UNITDIR/iotca-acmed.service" \
	"$prefix/$IOTCA_UNITDIR/iotca-acmed.socket" \
	"$prefix/$IOTCA_UNITDIR/iotca-acmed-http.socket" \
	"$prefix/$IOTCA_UNITDIR/iotca-est-ra.service" \
	"$prefix/$IOTCA_UNITDIR/iotca-crl-refresh.service" \
	"$prefix/$IOTCA_UNITDIR/iotca-crl-refresh.timer" \
	"$IOTCA_MANDIR/man8/iotca-est-ra.8" "$IOTCA_MANDIR/man8/iotca-crl-refresh.8" \
	"$IOTCA_DOCDIR/est-ra.conf.example" "$IOTCA_DOCDIR/freeradius/eap-iotca" \
	"$prefix/$IOTCA_SYSUSERSDIR/iotca.conf" "$prefix/$IOTCA_TMPFILESDIR/iotca.conf"; do
	[ -f "$root$f" ] || fail "not installed: $f"
	echo "installed: $f"
done
for f in iotca-signer iotca-acmed; do
	[ -x "$root$IOTCA_SBINDIR/$f" ] || fail "$f is not executable"
done
[ -x "$root$IOTCA_BINDIR/iotca" ] || fail "iotca is not executable"

# "iotca init" has no key code: it runs the installed iotca-signer (found
# from where iotca sits, so in this staged tree too), which names the file.
out=$("$root$IOTCA_BINDIR/iotca" --config "$stage/none.conf" init 2>&1) &&
	fail "iotca init with no configuration succeeded"
grep -q "^iotca-signer: .*$stage/none.conf: cannot open" <<<"$out" ||
	fail "iotca init did not run the installed iotca-signer: $out"
echo "iotca init runs $IOTCA_SBINDIR/iotca-signer init"

# sysusers: the two users, the operators' group, the signer in tss.
su=$root$prefix/$IOTCA_SYSUSERSDIR/iotca.conf
grep -Eq '^u +iotca-signer ' "$su" || fail "sysusers: no user iotca-signer"
grep -Eq '^u +iotca-acme ' "$su" || fail "sysusers: no user iotca-acme"
grep -Eq '^g +iotca-admin ' "$su" || fail "sysusers: no group iotca-admin"
grep -Eq '^m +iotca-signer +tss$' "$su" || fail "sysusers: iotca-signer not in tss"

# tmpfiles: state 0700, socket directories setgid 2750 with the right groups.
tf=$root$prefix/$IOTCA_TMPFILESDIR/iotca.conf
for want in \
	'/var/lib/iotca 0700 iotca-signer iotca-signer' \
	'/var/lib/iotca-acme 0700 iotca-acme iotca-acme' \
	'/run/iotca/frontend 2750 iotca-signer iotca-acme' \
	'/run/iotca/admin 2750 iotca-signer iotca-admin'; do
	awk '$1 == "d" { print $2, $3, $4, $5 }' "$tf" | grep -qx "$want" ||
		fail "tmpfiles: no \"d $want\""
done

# Manual pages: man can format them and groff has nothing to say.
for page in "$root$IOTCA_MANDIR"/man*/iotca*; do
	man -l "$page" >/dev/null 2>"$stage/man.err" || fail "man -l $page"
	[ ! -s "$stage/man.err" ] || { cat "$stage/man.err" >&2; fail "man -l $page warns"; }
	groff -man -Tutf8 -ww -z "$page" 2>"$stage/groff.err" || fail "groff $page"
	[ ! -s "$stage/groff.err" ] || { cat "$stage/groff.err" >&2; fail "groff warns on $page"; }
done
# Every command of iotca and every key of the example config is documented.
for cmd in init status issue certs revoke pending approve deny approvals \
	revoke-approval crl ca 'audit verify' 'audit show' 'audit export' 'audit pubkey'; do
	man -l "$root$IOTCA_MANDIR/man1/iotca.1" 2>/dev/null | grep -q "^       $cmd\b" ||
		fail "iotca.1 does not describe \"$cmd\""
done
ex=$root$IOTCA_DOCDIR/iotca.conf.example
pages="$(man -l "$root$IOTCA_MANDIR/man8/iotca-signer.8" 2>/dev/null)
$(man -l "$root$IOTCA_MANDIR/man8/iotca-acmed.8" 2>/dev/null)
$(man -l "$root$IOTCA_MANDIR/man1/iotca.1" 2>/dev/null)"
for key in $(sed -nE 's/^;? ?([a-z0-9_]+) = .*/\1/p' "$ex" | sort -u); do
	grep -Eq "^ {7}([a-z_, ]*\b)?$key\b" <<<"$pages" || fail "no manual page describes \"$key\""
done

# The units name binaries that the tree holds.
for unit in iotca-signer.service iotca-acmed.service; do
	for exe in $(sed -nE 's/^Exec[A-Za-z]*=[-+!@:]*([^ ]+).*/\1/p' "$units/$unit"); do
		[ -x "$root$exe" ] || fail "$unit runs $exe, which is not installed"
	done
done

# systemd-analyze verify: the units as installed, their binaries and manual
# pages found in the staged tree (a copy whose paths point there; 252 cannot
# verify against a --root without a whole systemd inside it).
mkdir "$stage/units"
units_checked="iotca-signer.service iotca-acmed.service iotca-acmed.socket
	iotca-acmed-http.socket iotca-est-ra.service iotca-crl-refresh.service
	iotca-crl-refresh.timer"
for f in $units_checked; do
	sed "s|=\\([-+!@:]*\\)$IOTCA_SBINDIR/|=\\1$root$IOTCA_SBINDIR/|" "$units/$f" >"$stage/units/$f"
done
# shellcheck disable=SC2086 # a list of unit names
(cd "$stage/units" && MANPATH=$root$IOTCA_MANDIR systemd-analyze verify \
	$units_checked) >"$stage/verify.out" 2>&1 ||
	{ cat "$stage/verify.out" >&2; fail "systemd-analyze verify"; }
# verify exits 0 on unknown keys and typos: any output at all is a failure.
[ ! -s "$stage/verify.out" ] || { cat "$stage/verify.out" >&2; fail "systemd-analyze verify complains"; }
echo "systemd-analyze verify: clean"

# The sandbox, scored by systemd itself.
score() {
	(cd "$stage/units" && systemd-analyze security --offline=true "$1") |
		sed -nE 's/.*Overall exposure level for [^:]+: ([0-9.]+).*/\1/p'
}
check_score() {
	local unit=$1 max=$2 s
	s=$(score "$unit")
	[ -n "$s" ] || fail "no score for $unit"
	echo "systemd-analyze security: $unit exposure $s (at most $max)"
	awk -v s="$s" -v m="$max" 'BEGIN { exit !(s <= m) }' || fail "$unit exposure $s > $max"
}
check_score iotca-signer.service 2.0
check_score iotca-acmed.service 3.0

# The signer's sandbox specifically: what the issue asks of it.
u=$stage/units/iotca-signer.service
for want in 'RestrictAddressFamilies=AF_UNIX' 'CapabilityBoundingSet=' \
	'DeviceAllow=/dev/tpmrm0 rw' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
	'MemoryDenyWriteExecute=yes' 'SystemCallFilter=@system-service' 'Type=notify'; do
	grep -qx "$want" "$u" || fail "iotca-signer.service lacks $want"
done
u=$stage/units/iotca-acmed.service
for want in 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' 'PrivateDevices=yes' \
	'NoNewPrivileges=yes' 'ProtectSystem=strict' 'MemoryDenyWriteExecute=yes' \
	'SystemCallFilter=@system-service' 'Type=notify'; do
	grep -qx "$want" "$u" || fail "iotca-acmed.service lacks $want"
done
echo "PASS: install tree"
