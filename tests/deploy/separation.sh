#!/usr/bin/env bash
# separation.sh HOSTILE: the trust boundaries of DESIGN.md, as deployed.
#
# Makes the users and groups of dist/iotca.sysusers for real (systemd-sysusers
# on this machine: CI is a throwaway one), lays out the directories of
# dist/iotca.tmpfiles under a temporary prefix, and runs the appliance the
# way the units do, without systemd: a software TPM (swtpm behind
# tpm2-abrmd, its state 0700 iotca-signer), "iotca init" and iotca-signer as
# iotca-signer, iotca-acmed as iotca-acme with no capability (setpriv).
# Then it asserts:
#  * iotca-acme cannot open the root key blob, the TPM state, signer.db or
#    the audit keys: EACCES each;
#  * admin.sock: a user outside iotca-admin cannot reach it (EACCES), and
#    when the file modes are opened up the signer itself refuses him
#    (unauthorized, recorded); an operator in iotca-admin is served;
#  * signer.sock, as iotca-acme: "approve" is refused (unauthorized);
#  * a hostile front end (HOSTILE, as iotca-acme) asking for a public name,
#    for a device nobody approved, for a 10-year certificate, and with a CSR
#    that asks for CA:TRUE gets no certificate, and each attempt is in the
#    audit log;
#  * iotca-acmed socket-activated (systemd-socket-activate) serves on a
#    socket it did not bind, with no "listen" line and no capability.
# Every process started is stopped; only loopback is used.  Root only.
set -euo pipefail

hostile=${1:?usage: separation.sh HOSTILE}
src=${IOTCA_SRC:?}
bin=${IOTCA_BIN:?}

skip() { echo "SKIP: $*" >&2; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (it creates users and runs as them)"
for tool in systemd-sysusers systemd-tmpfiles systemd-socket-activate setpriv \
	swtpm swtpm_setup tpm2-abrmd dbus-daemon python3 curl; do
	command -v "$tool" >/dev/null || skip "no $tool"
done

# The daemons' users get the system's python: root's PATH may lead to an
# interpreter under root's home that they cannot run.
syspy=/usr/bin/python3
[ -x "$syspy" ] || skip "no $syspy"

T=$(mktemp -d /tmp/iotca-deploy.XXXXXX)
chmod 755 "$T"		# the daemons' users walk through it
pids=()
made_users=()

stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "pid $pid ignored SIGTERM; killing" >&2
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local i
	# Newest first: front end, signer, abrmd, D-Bus, swtpm.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop_pid "${pids[$i]}"
	done
	[ -f "$T/tpm.pid" ] && stop_pid "$(cat "$T/tpm.pid")"
	# The two test people go again; the service users are the product's.
	for u in "${made_users[@]}"; do userdel "$u" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "FAIL: $*" >&2
	for f in signer.log acmed.log acmed2.log abrmd.log; do
		[ -f "$T/$f" ] && { echo "--- $f" >&2; tail -n 15 "$T/$f" >&2; }
	done
	exit 1
}
ok() { echo "ok: $*"; }

# --- users and groups: the shipped sysusers file, plus two test people --
systemd-sysusers "$src/dist/iotca.sysusers" || fail "systemd-sysusers"
for u in iotca-test-op iotca-test-out; do
	id "$u" >/dev/null 2>&1 || made_users+=("$u")
done
systemd-sysusers --inline \
	'u iotca-test-op - "iotca test operator" /nonexistent /usr/sbin/nologin' \
	'm iotca-test-op iotca-admin' \
	'u iotca-test-out - "iotca test outsider" /nonexistent /usr/sbin/nologin' ||
	fail "systemd-sysusers (test users)"
id -nG iotca-signer | grep -qw tss || fail "iotca-signer is not in tss"
id -nG iotca-test-op | grep -qw iotca-admin || fail "iotca-test-op not in iotca-admin"
! id -nG iotca-test-out | grep -qw iotca-admin || fail "outsider is in iotca-admin"
! id -nG iotca-acme | grep -qw iotca-admin || fail "iotca-acme is in iotca-admin"
ok "users iotca-signer, iotca-acme, group iotca-admin"

# Run as a user exactly as the units do: that user's groups, no capability
# (bounding set emptied too), no way to gain privileges.
as() {
	local user=$1; shift
	setpriv --reuid="$user" --regid="$user" --init-groups \
		--inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
}
# The same for "as_bg USER CMD... &": the background subshell becomes the
# command, so $! is the daemon's own pid (to check its uid and to stop it).
as_bg() {
	local user=$1; shift
	exec setpriv --reuid="$user" --regid="$user" --init-groups \
		--inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
}

# --- directories: the shipped tmpfiles rules, under $T ------------------
sed -E "s#^(d[[:space:]]+)/#\\1$T/#" "$src/dist/iotca.tmpfiles" >"$T/tmpfiles.conf"
systemd-tmpfiles --create "$T/tmpfiles.conf" || fail "systemd-tmpfiles --create"
mode_of() { stat -c '%a %U %G' "$1"; }
[ "$(mode_of "$T/var/lib/iotca")" = "700 iotca-signer iotca-signer" ] || fail "state dir: $(mode_of "$T/var/lib/iotca")"
[ "$(mode_of "$T/var/lib/iotca-acme")" = "700 iotca-acme iotca-acme" ] || fail "acme dir"
[ "$(mode_of "$T/run/iotca/frontend")" = "2750 iotca-signer iotca-acme" ] || fail "frontend dir: $(mode_of "$T/run/iotca/frontend")"
[ "$(mode_of "$T/run/iotca/admin")" = "2750 iotca-signer iotca-admin" ] || fail "admin dir"
ok "tmpfiles layout"

# --- the software TPM, all of it the signer's ---------------------------
# swtpm listens on loopback TCP (the tss2 swtpm TCTI of Debian 12 knows no
# Unix sockets); in production the TPM is /dev/tpmrm0, root:tss 0660, which
# iotca-acmed's PrivateDevices= hides anyway.
tpm=$T/var/lib/iotca/tpm
as iotca-signer mkdir -m 700 "$tpm"
as iotca-signer env HOME="$tpm" swtpm_setup --tpm2 --tpmstate "$tpm" --overwrite \
	>"$T/swtpm-setup.log" 2>&1 || { cat "$T/swtpm-setup.log" >&2; fail "swtpm_setup"; }
port=
for _ in 1 2 3 4 5 6 7 8; do
	p=$((20000 + RANDOM % 40000))
	if as iotca-signer swtpm socket --tpm2 --tpmstate dir="$tpm" \
		--server type=tcp,port=$p,bindaddr=127.0.0.1 \
		--ctrl type=tcp,port=$((p + 1)),bindaddr=127.0.0.1 \
		--flags not-need-init,startup-clear --daemon \
		--pid file="$tpm/swtpm.pid" --log file="$tpm/swtpm.log" 2>>"$T/swtpm.err"; then
		port=$p
		break
	fi
done
[ -n "$port" ] || fail "swtpm did not start"
cp "$tpm/swtpm.pid" "$T/tpm.pid"
# D-Bus and the resource manager, as the signer too; the bus socket sits
# in the signer's 0700 directory.
bus=unix:path=$tpm/bus
as_bg iotca-signer dbus-daemon --session --address="$bus" --nofork --nopidfile \
	>"$T/dbus.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do [ -S "$tpm/bus" ] && break; sleep 0.1; done
as_bg iotca-signer env DBUS_SESSION_BUS_ADDRESS="$bus" tpm2-abrmd --session \
	--tcti="swtpm:host=127.0.0.1,port=$port" >"$T/abrmd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	as iotca-signer env DBUS_SESSION_BUS_ADDRESS="$bus" \
		TPM2TOOLS_TCTI=tabrmd:bus_type=session tpm2_getrandom 1 >/dev/null 2>&1 && break
	sleep 0.1
done
ok "software TPM up, state in $tpm (0700 iotca-signer)"

# --- the configuration: the shipped example with paths under $T --------
acme_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/etc/iotca"
conf=$T/etc/iotca/iotca.conf
sed -E -e "s#/var/lib/#$T/var/lib/#; s#/run/iotca/#$T/run/iotca/#" \
	-e 's#^name = .*#name = iotca-deploy#' \
	-e 's#^; ips = .*#ips = 127.0.0.1#' \
	-e 's#^tcti = .*#tcti = tabrmd:bus_type=session#' \
	-e "s#^listen = 0.0.0.0:443#listen = 127.0.0.1:$acme_port#" \
	-e "s#^http_listen = 0.0.0.0:80#http_listen = 127.0.0.1:$http_port#" \
	-e "s#^base_url = .*#base_url = https://127.0.0.1:$acme_port#" \
	"$src/dist/iotca.conf.example" >"$conf"
chmod 644 "$conf"
signer_sock=$T/run/iotca/frontend/signer.sock
admin_sock=$T/run/iotca/admin/admin.sock
"$bin/iotca-signer" -t -c "$conf" >/dev/null || fail "iotca-signer -t on the example config"
"$bin/iotca-acmed" -t -c "$conf" >/dev/null || fail "iotca-acmed -t on the example config"
ok "example configuration passes -t"

# systemd's notification socket, stood in for: one per daemon, and a
# watchdog of 2 s, so each must ping about every second.
listen_notify() {
	"$syspy" "$src/tests/deploy/notify-recv.py" "$T/notify-$1.sock" "$T/notify-$1.log" &
	pids+=($!)
	for _ in $(seq 1 50); do [ -S "$T/notify-$1.sock" ] && return 0; sleep 0.1; done
	fail "notify-recv.py did not start"
}
listen_notify signer
listen_notify acmed
# sd_notify(3) messages a daemon sent: READY=1, WATCHDOG=1 (at least twice,
# so it is periodic) and STOPPING=1.
check_notify() {
	local log=$T/notify-$1.log
	grep -qx READY=1 "$log" || fail "$1 never sent READY=1"
	[ "$(grep -cx WATCHDOG=1 "$log")" -ge 2 ] || fail "$1 sent $(grep -cx WATCHDOG=1 "$log") watchdog pings"
	grep -qx STOPPING=1 "$log" || fail "$1 never sent STOPPING=1"
	ok "$1: READY=1, $(grep -cx WATCHDOG=1 "$log") WATCHDOG=1 pings, STOPPING=1"
}

sigenv=(env DBUS_SESSION_BUS_ADDRESS="$bus" HOME="$T/var/lib/iotca")
as iotca-signer "${sigenv[@]}" "$bin/iotca" --config "$conf" init >"$T/init.log" 2>&1 ||
	{ cat "$T/init.log" >&2; fail "iotca init as iotca-signer"; }
as_bg iotca-signer "${sigenv[@]}" NOTIFY_SOCKET="$T/notify-signer.sock" \
	WATCHDOG_USEC=2000000 "$bin/iotca-signer" -c "$conf" >"$T/signer.log" 2>&1 &
signer_pid=$!
pids+=("$signer_pid")
op() { as iotca-test-op "$bin/iotca" --socket "$admin_sock" "$@"; }
for _ in $(seq 1 200); do
	op status >/dev/null 2>&1 && break
	kill -0 "$signer_pid" 2>/dev/null || fail "iotca-signer exited"
	sleep 0.1
done
op status >/dev/null || fail "iotca-signer does not answer the operator"
[ "$(stat -c '%a %G' "$signer_sock")" = "660 iotca-acme" ] || fail "signer.sock: $(stat -c '%a %G' "$signer_sock")"
[ "$(stat -c '%a %G' "$admin_sock")" = "660 iotca-admin" ] || fail "admin.sock: $(stat -c '%a %G' "$admin_sock")"
ok "iotca-signer up; sockets 0660, groups iotca-acme and iotca-admin from their directories"

as_bg iotca-acme env NOTIFY_SOCKET="$T/notify-acmed.sock" WATCHDOG_USEC=2000000 \
	"$bin/iotca-acmed" -c "$conf" >"$T/acmed.log" 2>&1 &
acmed_pid=$!
pids+=("$acmed_pid")
root_pem=$T/var/lib/iotca/root.pem
for _ in $(seq 1 200); do
	curl -sf --max-time 2 --cacert "$root_pem" "https://127.0.0.1:$acme_port/directory" >/dev/null 2>&1 && break
	kill -0 "$acmed_pid" 2>/dev/null || fail "iotca-acmed exited"
	sleep 0.1
done
curl -sf --max-time 5 --cacert "$root_pem" "https://127.0.0.1:$acme_port/directory" >/dev/null ||
	fail "iotca-acmed does not serve"
# The CRL for relying parties, over plain HTTP, from the unprivileged front end.
curl -sf --max-time 5 -o "$T/root.crl" "http://127.0.0.1:$http_port/pki/root.crl" ||
	fail "iotca-acmed does not serve the CRL over HTTP"
openssl crl -inform DER -in "$T/root.crl" -CAfile "$root_pem" -noout 2>&1 | grep -q "verify OK" ||
	fail "the CRL served over HTTP does not verify to the root"

# Each daemon runs as its own user, the front end with no capability.
uid_of() { awk '/^Uid:/ { print $2 }' "/proc/$1/status"; }
cap_of() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
[ "$(uid_of "$signer_pid")" = "$(id -u iotca-signer)" ] || fail "signer uid"
[ "$(uid_of "$acmed_pid")" = "$(id -u iotca-acme)" ] || fail "acmed uid"
for k in CapEff CapPrm CapBnd CapAmb; do
	[ "$(cap_of "$acmed_pid" $k)" = 0000000000000000 ] || fail "acmed $k $(cap_of "$acmed_pid" $k)"
done
ok "iotca-signer runs as iotca-signer, iotca-acmed as iotca-acme with no capability"

# --- what the front end's user cannot read ------------------------------
secrets=("$T/var/lib/iotca/root-key.tss" "$tpm/tpm2-00.permall"
	"$T/var/lib/iotca/signer.db" "$T/var/lib/iotca/audit-key.tss"
	"$T/var/lib/iotca/audit-hmac.sealed")
for f in "${secrets[@]}"; do
	[ -f "$f" ] || fail "expected $f to exist (else EACCES proves nothing)"
done
# open(2) each, O_RDONLY, as iotca-acme: must fail with EACCES, not ENOENT
# or anything else.  Its own acme.db is the control: that one opens.
as iotca-acme "$syspy" - "$T/var/lib/iotca-acme/acme.db" "${secrets[@]}" <<'PY' || fail "iotca-acme can read a secret"
import errno, os, sys
own, secrets = sys.argv[1], sys.argv[2:]
os.close(os.open(own, os.O_RDONLY))
print("ok: iotca-acme opens its own", own)
bad = 0
for path in secrets:
    try:
        os.close(os.open(path, os.O_RDONLY))
        print("FAIL: iotca-acme opened", path); bad = 1
    except OSError as e:
        if e.errno != errno.EACCES:
            print("FAIL: %s: %s, not EACCES" % (path, e.strerror)); bad = 1
        else:
            print("ok: iotca-acme: open %s: EACCES" % path)
sys.exit(bad)
PY

# --- admin.sock ---------------------------------------------------------
out=$(as iotca-test-out "$bin/iotca" --socket "$admin_sock" status 2>&1) &&
	fail "outsider got status: $out"
grep -q "Permission denied" <<<"$out" || fail "outsider: $out"
out=$(as iotca-acme "$bin/iotca" --socket "$admin_sock" status 2>&1) &&
	fail "iotca-acme got status on admin.sock"
grep -q "Permission denied" <<<"$out" || fail "iotca-acme on admin.sock: $out"
ok "admin.sock: outsider and iotca-acme cannot connect (EACCES)"
# The file modes are only the first gate: open them, and the signer itself
# must still refuse, by uid and groups.
chmod o+x "$T/run/iotca/admin"
chmod 666 "$admin_sock"
out=$(as iotca-test-out "$bin/iotca" --socket "$admin_sock" status 2>&1) && {
	chmod o-x "$T/run/iotca/admin"; chmod 660 "$admin_sock"
	fail "outsider got status through open modes"; }
chmod o-x "$T/run/iotca/admin"
chmod 660 "$admin_sock"
grep -q "refused (unauthorized)" <<<"$out" || fail "outsider with open modes: $out"
ok "admin.sock: the signer refuses an outsider by itself (unauthorized)"
op status | grep -q . || fail "operator status"
ok "admin.sock: an operator in iotca-admin (supplementary group) is served"

# --- signer.sock: the hostile front end ---------------------------------
h() { as iotca-acme "$hostile" "$signer_sock" "$@"; }
acct=hostileAcct1
r=$(h approve 1) || fail "hostile approve: could not ask"
[ "$r" = "refused unauthorized" ] || fail "approve on signer.sock: $r"
ok "signer.sock: approve refused (unauthorized)"
r=$(h public "$acct") || fail "hostile public"
[ "$r" = "refused rejectedIdentifier" ] || fail "public name: $r"
ok "signer.sock: www.example.org refused (rejectedIdentifier)"
r=$(h device cam-unapproved "$acct") || fail "hostile device"
[[ $r == pending\ * ]] || fail "unapproved device: $r"
ok "signer.sock: unapproved device gets no certificate ($r)"
r=$(h longlived cam-unapproved "$acct") || fail "hostile longlived"
[ "$r" = "refused badRequest" ] || fail "10-year certificate: $r"
ok "signer.sock: days=3650 refused (badRequest)"
# An approved device: the plain request is issued (and is no CA); the same
# device and account asking for CA:TRUE is refused.
r=$(h device cam-approved "$acct") || fail "hostile device (to approve)"
[[ $r == pending\ * ]] || fail "cam-approved first request: $r"
op approve "${r#pending }" >/dev/null || fail "operator approve"
r=$(h device cam-approved "$acct") || fail "hostile device (approved)"
[[ $r == issued\ *\ ca=0 ]] || fail "approved device: $r"
ok "signer.sock: approved device issued, CA:FALSE ($r)"
r=$(h ca cam-approved "$acct") || fail "hostile ca"
[ "$r" = "refused badCSR" ] || fail "CA:TRUE CSR: $r"
ok "signer.sock: CSR asking for CA:TRUE and keyCertSign refused (badCSR)"

# Each attempt is in the sealed audit log, by the front end's uid.
op --json audit show >"$T/audit.json" || fail "iotca audit show --json"
python3 - "$T/audit.json" "$(id -u iotca-acme)" "$(id -u iotca-test-out)" <<'PY' || fail "audit log"
import json, sys
recs = [x["record"] for x in json.load(open(sys.argv[1]))]
acme, out = int(sys.argv[2]), int(sys.argv[3])
def find(what, **kw):
    for r in recs:
        if r["event"] == what and all(r.get(k) == v for k, v in kw.items()):
            return r
    print("FAIL: no %s %s in the audit log" % (what, kw)); sys.exit(1)
for op, err in (("approve", "unauthorized"), ("issue", "rejectedIdentifier"),
                ("issue", "badRequest"), ("issue", "badCSR")):
    r = find("request_refused", op=op, error=err)
    assert r["actor"]["uid"] == acme and r["actor"]["role"] == "frontend", r
    print("ok: audit: request_refused", op, err, "by uid", acme)
r = find("approval_requested", device_id="cam-unapproved")
assert r["actor"]["uid"] == acme, r
print("ok: audit: approval_requested cam-unapproved by uid", acme)
r = find("connection_refused", socket="admin")
assert r["actor"]["uid"] == out, r
print("ok: audit: connection_refused on admin.sock for uid", out)
PY
op audit verify >/dev/null || fail "audit verify"
ok "audit log verifies"

# --- socket activation: no listen line, no capability -------------------
sleep 2		# let the watchdog pings add up
stop_pid "$acmed_pid"
check_notify acmed
sa_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
conf2=$T/etc/iotca/iotca-activated.conf
sa_http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e '/^listen = /d' -e '/^http_listen = /d' -e "s#^base_url = .*#base_url = https://127.0.0.1:$sa_port#" "$conf" >"$conf2"
chmod 644 "$conf2"
! grep -q '^listen' "$conf2" || fail "listen left in $conf2"
"$bin/iotca-acmed" -t -c "$conf2" >/dev/null || fail "acmed -t without listen"
# systemd-socket-activate binds (as root, like systemd), then on the first
# connection execs setpriv, which execs iotca-acmed: one pid throughout.
# The second socket is the plain-HTTP one (iotca-acmed-http.socket's
# FileDescriptorName=http): the CRL for relying parties.
systemd-socket-activate -l "127.0.0.1:$sa_port" -l "127.0.0.1:$sa_http" \
	--fdname=https:http \
	setpriv --reuid=iotca-acme --regid=iotca-acme --init-groups \
	--inh-caps=-all --bounding-set=-all --no-new-privs -- \
	"$bin/iotca-acmed" -c "$conf2" >"$T/acmed2.log" 2>&1 &
sa_pid=$!
pids+=("$sa_pid")
for _ in $(seq 1 50); do
	(exec 3<>/dev/tcp/127.0.0.1/$sa_port) 2>/dev/null && break
	sleep 0.1
done
curl -sf --max-time 30 --cacert "$root_pem" "https://127.0.0.1:$sa_port/directory" >"$T/dir.json" ||
	fail "socket-activated iotca-acmed does not serve"
grep -q newOrder "$T/dir.json" || fail "directory: $(cat "$T/dir.json")"
[ "$(uid_of "$sa_pid")" = "$(id -u iotca-acme)" ] || fail "activated acmed uid"
for k in CapEff CapPrm CapBnd CapAmb; do
	[ "$(cap_of "$sa_pid" $k)" = 0000000000000000 ] || fail "activated acmed $k"
done
grep -q "socket from systemd" "$T/acmed2.log" || fail "acmed2 did not say it took the socket"
curl -sf --max-time 10 -o "$T/root2.crl" -D "$T/crl2.hdr" "http://127.0.0.1:$sa_http/pki/root.crl" ||
	fail "socket-activated iotca-acmed does not serve the CRL on the http socket"
grep -qi '^content-type: application/pkix-crl' "$T/crl2.hdr" || fail "CRL type: $(cat "$T/crl2.hdr")"
openssl crl -inform DER -in "$T/root2.crl" -CAfile "$root_pem" -noout 2>&1 | grep -q "verify OK" ||
	fail "the CRL on the passed http socket does not verify"
ok "socket-activated iotca-acmed serves 127.0.0.1:$sa_port (TLS) and the CRL on 127.0.0.1:$sa_http (http) as iotca-acme, no capability, no listen line"
stop_pid "$sa_pid"
stop_pid "$signer_pid"
check_notify signer
echo "PASS: separation"
