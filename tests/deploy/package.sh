#!/usr/bin/env bash
# package.sh SRC_DIR: "scripts/package" builds the three Debian packages.
#
# Builds the packages from the checkout into a temporary directory and
# asserts that iotca, iotca-agent and iotca-est-ra are there; that each
# holds its programs, units, sysusers.d/tmpfiles.d entries, manual pages and
# example configuration (dpkg-deb -c); that iotca-agent holds no appliance
# program and does not depend on iotca; that iotca depends on tpm2-openssl
# and the TPM stack; that the maintainer scripts make the users and
# directories, never enable or start a unit, try-restart on upgrade and
# never remove /var/lib on purge; that lintian reports no error; and that
# neither the host's packages nor the source tree were touched.  Nothing
# is installed here: the booted test installs the packages.
set -euo pipefail

src=$(cd "${1:?usage: package.sh SRC_DIR}" && pwd)
command -v dpkg-deb >/dev/null || { echo "SKIP: not a Debian system (no dpkg-deb)" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in dpkg-buildpackage dh lintian; do
	command -v "$tool" >/dev/null || fail "no $tool: run scripts/install-deps"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/iotca-pkgtest.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work/out

installed() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
was_installed=
for p in iotca iotca-agent iotca-est-ra; do
	installed "$p" && was_installed+=" $p"
done
start=$SECONDS
"$src/scripts/package" "$out" >"$work/package.log" 2>&1 ||
	{ cat "$work/package.log" >&2; fail "scripts/package"; }
echo "scripts/package: $((SECONDS - start)) s"

version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
deb() { echo "$out/${1}_${version}_${arch}.deb"; }
for p in iotca iotca-agent iotca-est-ra; do
	[ -f "$(deb "$p")" ] || fail "no package $p: $(ls "$out")"
	echo "built: $(basename "$(deb "$p")")"
done
changes=$out/iotca_${version}_${arch}.changes
[ -f "$changes" ] || fail "no .changes"

# What each package must hold (dpkg-deb -c lists ./path).
holds() { # PACKAGE PATH...
	local p=$1 f; shift
	dpkg-deb -c "$(deb "$p")" | awk '{ print $6 }' | sed 's|^\.||' >"$work/$p.list"
	for f; do
		grep -qxF "$f" "$work/$p.list" || fail "$p does not hold $f"
	done
	echo "$p holds its $# files"
}
holds iotca /usr/sbin/iotca-signer /usr/sbin/iotca-acmed /usr/bin/iotca \
	/usr/sbin/iotca-crl-refresh \
	/lib/systemd/system/iotca-signer.service /lib/systemd/system/iotca-acmed.service \
	/lib/systemd/system/iotca-acmed.socket /lib/systemd/system/iotca-acmed-http.socket \
	/lib/systemd/system/iotca-crl-refresh.service /lib/systemd/system/iotca-crl-refresh.timer \
	/usr/lib/sysusers.d/iotca.conf /usr/lib/tmpfiles.d/iotca.conf \
	/usr/share/man/man1/iotca.1.gz /usr/share/man/man8/iotca-signer.8.gz \
	/usr/share/man/man8/iotca-acmed.8.gz /usr/share/man/man8/iotca-crl-refresh.8.gz \
	/usr/share/doc/iotca/iotca.conf.example.gz /usr/share/doc/iotca/README.Debian
holds iotca-agent /usr/sbin/iotca-agent /lib/systemd/system/iotca-agent.service \
	/usr/share/man/man8/iotca-agent.8.gz /usr/share/doc/iotca-agent/iotca-agent.conf.example
holds iotca-est-ra /usr/sbin/iotca-est-ra /lib/systemd/system/iotca-est-ra.service \
	/usr/lib/sysusers.d/iotca-est-ra.conf /usr/share/man/man8/iotca-est-ra.8.gz \
	/usr/share/doc/iotca-est-ra/est-ra.conf.example

# Each program in one package only; the device side is not the appliance.
for f in iotca-signer iotca-acmed iotca-est-ra; do
	! grep -q "/$f\$" "$work/iotca-agent.list" || fail "iotca-agent holds $f"
done
! grep -q "iotca-agent" "$work/iotca.list" || fail "iotca holds the agent"
! grep -q "iotca-signer\|iotca-acmed" "$work/iotca-est-ra.list" || fail "iotca-est-ra holds an appliance file"

# Dependencies.
field() { dpkg-deb -f "$(deb "$1")" "$2"; }
dep_has() { # PACKAGE NAME: NAME is one of PACKAGE's Depends
	field "$1" Depends | tr ',|' '\n\n' | sed 's/(.*//; s/ //g' | grep -qx "$2"
}
for d in tpm2-openssl openssl libtss2-tcti-device0 systemd; do
	dep_has iotca "$d" || fail "iotca does not depend on $d: $(field iotca Depends)"
done
dep_has iotca-agent iotca && fail "iotca-agent depends on iotca: $(field iotca-agent Depends)"
for f in Depends Recommends Pre-Depends; do
	field iotca-agent "$f" | grep -Eq '(^|[ ,|])iotca([ (,]|$)' &&
		fail "iotca-agent $f names iotca"
done
echo "iotca Depends: $(field iotca Depends)"
echo "iotca-agent Depends: $(field iotca-agent Depends)"

# Maintainer scripts: users and directories; nothing enabled or started;
# running units try-restarted on upgrade; state kept on purge.
ctrl() { dpkg-deb --ctrl-tarfile "$(deb "$1")" | tar -xOf - "./$2" 2>/dev/null || true; }
ctrl iotca postinst >"$work/postinst"
grep -q 'systemd-sysusers .*iotca\.conf' "$work/postinst" || fail "iotca postinst makes no users"
grep -q 'systemd-tmpfiles .*--create iotca\.conf' "$work/postinst" || fail "iotca postinst makes no directories"
grep 'deb-systemd-invoke' "$work/postinst" | grep -vq 'deb-systemd-invoke try-restart ' &&
	fail "iotca postinst starts a unit: $(grep 'deb-systemd-invoke' "$work/postinst")"
grep -q "try-restart .*'iotca-signer.service'" "$work/postinst" || fail "iotca postinst does not try-restart the signer on upgrade"
# debhelper's --no-enable snippet enables a unit again only if the
# administrator had enabled it (was-enabled), once per unit.
[ "$(grep -c 'deb-systemd-helper enable' "$work/postinst")" -eq \
  "$(grep -c 'deb-systemd-helper --quiet was-enabled' "$work/postinst")" ] ||
	fail "iotca postinst enables a unit the administrator did not"
ctrl iotca-est-ra postinst | grep -q 'systemd-sysusers .*iotca-est-ra\.conf' ||
	fail "iotca-est-ra postinst makes no user"
for p in iotca iotca-agent iotca-est-ra; do
	ctrl "$p" postrm >"$work/postrm"
	grep -v '^[[:space:]]*#' "$work/postrm" | grep -q '/var/lib' &&
		fail "$p postrm touches /var/lib"
	grep -q 'rm -f /etc/iotca/' "$work/postrm" || fail "$p postrm removes no configuration on purge"
	ctrl "$p" prerm | grep -q 'deb-systemd-invoke stop' || fail "$p prerm does not stop its units on removal"
done
echo "maintainer scripts: users, directories, no enable/start, try-restart on upgrade, /var/lib kept"

# Units name the installed programs.
dpkg-deb -x "$(deb iotca)" "$work/root"
grep -qx 'ExecStart=/usr/sbin/iotca-signer -c /etc/iotca/iotca.conf' \
	"$work/root/lib/systemd/system/iotca-signer.service" || fail "signer unit does not run /usr/sbin/iotca-signer"

# lintian: no error (the warnings kept are listed in debian/README.source).
lintian "$changes" >"$work/lintian.log" 2>&1 || true
if grep -q '^E:' "$work/lintian.log"; then
	cat "$work/lintian.log" >&2
	fail "lintian reports errors"
fi
echo "lintian: $(grep -c '^E:' "$work/lintian.log") errors, $(grep -c '^W:' "$work/lintian.log") warnings"
grep '^W:' "$work/lintian.log" || true

# The host and the source tree are as they were.
now_installed=
for p in iotca iotca-agent iotca-est-ra; do
	installed "$p" && now_installed+=" $p"
done
[ "$was_installed" = "$now_installed" ] ||
	fail "the host's iotca packages changed: before [$was_installed] after [$now_installed]"
for f in debian/tmp debian/iotca debian/files debian/.debhelper obj-*; do
	compgen -G "$src/$f" >/dev/null && fail "build litter in the source tree: $f"
done
echo "host packages and source tree untouched"
echo "PASS"
