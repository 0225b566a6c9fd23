#!/usr/bin/env bash
# agent-restart.sh: iotca-agent across restarts, outages, renewal and a root
# rotation, on a LAN in network namespaces (tests/lib/lan-lib.sh).
#
# A few devices (AGENT_RESTART_DEVICES, default 3) run "iotca-agent run"
# against the appliance (scripts/devstack --listen 10.77.0.2:443) and are
# approved once.  Then:
#  * an agent restarts: same account (counted in the appliance's acme.db),
#    same certificate, nothing ordered;
#  * the appliance (signer and acmed) restarts under running agents: a pass
#    afterwards succeeds with no new account and no new certificate;
#  * the appliance is away: the agent's pass fails and "status" names the
#    error, the certificate stays; when it is back the daemon recovers by
#    itself (retry_seconds), with no new account;
#  * renewal on time, with the agent's clock moved by faketime: before the
#    renewal window nothing is ordered; after it the agent renews with a
#    fresh key and no operator approval, on the same account;
#  * the root is rotated as the README says (audit export, stop, move the
#    state away, init, start): every agent refuses the new root, keeps its
#    certificate file unchanged and runs the notify hook once; after
#    "iotca-agent trust --accept NET" it enrols under the new root, waiting
#    for the operator once more (a new CA database), and the certificate
#    verifies with the new root.
# Needs root; exits 77 when namespaces cannot be made or faketime is missing.
set -uo pipefail
bin=${1:?usage: agent-restart.sh BIN_DIR}
bin=$(cd "$bin" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
n=${AGENT_RESTART_DEVICES:-3}
. "$src/tests/lib/lan-lib.sh"
command -v sqlite3 >/dev/null || lan_skip "sqlite3 not installed"
command -v faketime >/dev/null || lan_skip "faketime not installed (scripts/install-deps)"
lan_init iotca-restart-$$
a=$tag-a

set -e
join "$a" 10.77.0.2
for i in $(seq 1 "$n"); do join "$tag-d$i" "$(dev_addr "$i")" "$(dev_mac "$i")"; done
set +e
lan_announce
lan_devices "$n"
lan_dnsmasq
lan_appliance "$a" || exit 1
appliance_stop() { IOTCA_BIN=$bin "$src/scripts/devstack" stop "$dir/app" >>"$dir/devstack.log" 2>&1; }
appliance_start() {
	ip netns exec "$a" env IOTCA_BIN="$bin" "$src/scripts/devstack" start "$dir/app" \
		--key file --name ca --domain lan.test --listen 10.77.0.2:443 \
		--acme base_url=https://ca.lan.test --hosts "$dir/hosts" >>"$dir/devstack.log" 2>&1
}
# Device certificates of one day: the renewal window (hours away) stays
# inside the appliance's own 7-day TLS certificate for the faketime checks.
appliance_stop && sed -i 's/^max_days = .*/max_days = 1/' "$dir/app/iotca.conf" && appliance_start ||
	{ cat "$dir/devstack.log"; bad "appliance restart with max_days = 1"; exit 1; }
accounts() { sqlite3 "$dir/app/acme.db" 'SELECT count(*) FROM accounts'; }
certs() { sqlite3 "$dir/app/acme.db" 'SELECT count(*) FROM certs'; }
js() {	# js DEVICE EXPR: a field of the device's status --json
	"$bin/iotca-agent" -c "$dir/d$1/agent.conf" status --json 2>/dev/null |
		python3 -c 'import json,sys; s=json.load(sys.stdin)[0]; print(eval(sys.argv[1]))' "$2"
}
passes() { grep -c "next pass in" "$dir/d$1/agent.log"; }
# wait_pass DEVICE COUNT: until the daemon logged more than COUNT passes (20 s)
wait_pass() {
	local k
	for k in $(seq 1 200); do [ "$(passes "$1")" -gt "$2" ] && return 0; sleep 0.1; done
	return 1
}
declare -A agent_pid
start_agent() {
	ip netns exec "$tag-d$1" "$bin/iotca-agent" -c "$dir/d$1/agent.conf" run \
		>>"$dir/d$1/agent.log" 2>&1 &
	agent_pid[$1]=$!
	pids+=($!)
}
stop_agent() {
	kill -TERM "${agent_pid[$1]}"
	wait "${agent_pid[$1]}"
}
show_log() { tail -n "${2:-12}" "$dir/d$1/agent.log" | sed "s/^/    d$1: /"; }
wait_pending() {	# wait_pending N: N requests before the operator (60 s)
	local k p=0
	for k in $(seq 1 300); do
		p=$(iotca pending 2>/dev/null | grep -c ' ex0200000000')
		[ "$p" -ge "$1" ] && return 0
		sleep 0.2
	done
	return 1
}

# --- enrolment ---------------------------------------------------------------------
for i in $(seq 1 "$n"); do
	agent_conf "$dir/d$i" "approval_timeout = 60"
	start_agent "$i"
done
wait_pending "$n" || { bad "not every device asked"; for i in $(seq 1 "$n"); do show_log "$i"; done; exit 1; }
iotca approve --all >"$dir/approve.log" 2>&1 || bad "iotca approve --all: $(cat "$dir/approve.log")"
for i in $(seq 1 "$n"); do
	for _ in $(seq 1 300); do [ -s "$dir/d$i/cert.pem" ] && break; sleep 0.2; done
	[ -s "$dir/d$i/cert.pem" ] || { bad "d$i: no certificate"; show_log "$i"; }
	cp "$dir/d$i/cert.pem" "$dir/d$i/cert.0"
done
[ "$fails" = 0 ] || exit 1
[ "$(accounts)" = "$n" ] && ok "$n devices certified, $n accounts" || bad "$(accounts) accounts for $n devices"
ncerts=$(certs)
acct1=$(js 1 's["account"]')

# --- the agent restarts -----------------------------------------------------------
stop_agent 1 || bad "d1: SIGTERM exit status $?"
mark=$(wc -l <"$dir/d1/agent.log")
p=$(passes 1)
start_agent 1
wait_pass 1 "$p" || bad "d1: no pass after the restart"
if [ "$(accounts)" = "$n" ] && [ "$(certs)" = "$ncerts" ] && [ "$(js 1 's["account"]')" = "$acct1" ] &&
   cmp -s "$dir/d1/cert.pem" "$dir/d1/cert.0" && ! tail -n +"$mark" "$dir/d1/agent.log" | grep -q ordering &&
   [ -z "$(js 1 's["last_error"]')" ]; then
	ok "agent restart: same account, same certificate, nothing ordered, no error"
else
	bad "agent restart: $(accounts) accounts, $(certs) certificates (was $ncerts)"; show_log 1
fi

# --- the appliance restarts under running agents ---------------------------------------
t0=$SECONDS
appliance_stop && appliance_start || { cat "$dir/devstack.log"; bad "appliance restart"; exit 1; }
ok "appliance restarted in $((SECONDS - t0)) s"
for i in $(seq 1 "$n"); do
	pp[$i]=$(passes "$i")
	kill -HUP "${agent_pid[$i]}"
done
for i in $(seq 1 "$n"); do
	wait_pass "$i" "${pp[$i]}" || bad "d$i: no pass after SIGHUP"
	{ [ -z "$(js "$i" 's["last_error"]')" ] && cmp -s "$dir/d$i/cert.pem" "$dir/d$i/cert.0"; } ||
		{ bad "d$i: after the appliance restart: $(js "$i" 's["last_error"]')"; show_log "$i"; }
done
[ "$(accounts)" = "$n" ] && [ "$(certs)" = "$ncerts" ] &&
	ok "appliance restart: every agent's pass succeeds; still $n accounts, $ncerts certificates" ||
	bad "appliance restart: $(accounts) accounts, $(certs) certificates"

# --- the appliance is away for a while ------------------------------------------------------
appliance_stop
p=$(passes 1)
kill -HUP "${agent_pid[1]}"
wait_pass 1 "$p" || bad "d1: no pass while the appliance is away"
err=$(js 1 's["last_error"]')
"$bin/iotca-agent" -c "$dir/d1/agent.conf" status >"$dir/d1/status-away.txt" 2>&1
sed 's/^/    /' "$dir/d1/status-away.txt"
if [ -n "$err" ] && grep -qF "$err" "$dir/d1/status-away.txt" && grep -q "ca.lan.test\|10.77.0.2" <<<"$err" &&
   cmp -s "$dir/d1/cert.pem" "$dir/d1/cert.0"; then
	ok "appliance away: the pass fails, status says \"$err\"; the certificate stays"
else
	bad "appliance away: last_error \"$err\""; show_log 1
fi
# The daemon retries every retry_seconds; give it two failed tries first.
p=$(passes 1)
wait_pass 1 $((p + 1)) || bad "d1: the daemon does not retry"
t0=$SECONDS
appliance_start || { cat "$dir/devstack.log"; bad "appliance start"; exit 1; }
for _ in $(seq 1 150); do [ -z "$(js 1 's["last_error"]')" ] && break; sleep 0.2; done
if [ -z "$(js 1 's["last_error"]')" ] && [ "$(accounts)" = "$n" ] && [ "$(js 1 's["account"]')" = "$acct1" ] &&
   cmp -s "$dir/d1/cert.pem" "$dir/d1/cert.0"; then
	ok "appliance back: the agent recovered by itself in $((SECONDS - t0)) s, same account, same certificate"
else
	bad "appliance back: last_error \"$(js 1 's["last_error"]')\", $(accounts) accounts"; show_log 1
fi

# --- renewal on time ---------------------------------------------------------------------------
# The certificate's life and the server's window (RFC 9773: the last third
# to the last sixth); the agent's clock moves with faketime, the appliance's
# does not.
stop_agent 1
nb=$(date -d "$(openssl x509 -in "$dir/d1/cert.pem" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$dir/d1/cert.pem" -noout -enddate | cut -d= -f2)" +%s)
life=$((na - nb))
renew_at=$(js 1 's["renew_at"]')
if [ "$renew_at" -ge $((nb + life * 2 / 3)) ] && [ "$renew_at" -le $((nb + life * 5 / 6)) ]; then
	ok "renewal scheduled inside the server's window: $(date -u -d "@$renew_at" +%FT%TZ) for a certificate of $((life / 3600)) h"
else
	bad "renew_at $renew_at outside [$((nb + life * 2 / 3)), $((nb + life * 5 / 6))]"
fi
at() {	# at TIME ARGS...: iotca-agent on d1 with its clock at TIME (epoch s)
	local t=$1
	shift
	ip netns exec "$tag-d1" env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		faketime "$(date -u -d "@$t" '+%Y-%m-%d %H:%M:%S')" \
		"$bin/iotca-agent" -c "$dir/d1/agent.conf" "$@"
}
export TZ=UTC
at $((nb + life * 3 / 5)) enrol --once >/dev/null 2>"$dir/d1/early.log"; rc=$?
sed 's/^/    /' "$dir/d1/early.log"
[ $rc = 0 ] && cmp -s "$dir/d1/cert.pem" "$dir/d1/cert.0" && ! grep -q ordering "$dir/d1/early.log" &&
	ok "before the window (3/5 of the life): nothing ordered" || bad "before the window: status $rc"
key0=$(openssl pkey -in "$dir/d1/key.pem" -pubout | openssl sha256)
hooks=$(grep -c "$dir/d1/cert.pem" "$dir/d1/hook.log")
t0=$SECONDS
at $((nb + life * 6 / 7)) enrol --once >/dev/null 2>"$dir/d1/renew.log"; rc=$?
sed 's/^/    /' "$dir/d1/renew.log"
key1=$(openssl pkey -in "$dir/d1/key.pem" -pubout | openssl sha256)
if [ $rc = 0 ] && ! cmp -s "$dir/d1/cert.pem" "$dir/d1/cert.0" && [ "$key0" != "$key1" ] &&
   [ "$(openssl x509 -in "$dir/d1/cert.pem" -noout -pubkey | openssl sha256)" = "$key1" ] &&
   openssl verify -CAfile "$dir/app/root.pem" -verify_hostname "$(dev_id 1).local" "$dir/d1/cert.pem" >/dev/null 2>&1 &&
   [ "$(grep -c "$dir/d1/cert.pem" "$dir/d1/hook.log")" -gt "$hooks" ]; then
	ok "after the window (6/7 of the life): renewed in $((SECONDS - t0)) s with a fresh key, reload hook run, no operator"
else
	bad "renewal: status $rc"
fi
[ "$(accounts)" = "$n" ] && [ "$(js 1 's["account"]')" = "$acct1" ] && [ "$(certs)" = $((ncerts + 1)) ] &&
	[ -z "$(iotca pending 2>/dev/null | grep ' ex0200000000')" ] &&
	ok "renewal: same account, one new certificate, nothing pending" ||
	bad "renewal: $(accounts) accounts, $(certs) certificates (was $ncerts)"
cp "$dir/d1/cert.pem" "$dir/d1/cert.0"
start_agent 1

# --- root rotation, the README's procedure --------------------------------------------------------
iotca audit export >"$dir/audit-before-rotation.jsonl" || bad "iotca audit export"
cp "$dir/app/root.pem" "$dir/root-old.pem"
appliance_stop
mv "$dir/app" "$dir/app.old"
t0=$SECONDS
appliance_start || { cat "$dir/devstack.log"; bad "appliance start with a new root"; exit 1; }
cmp -s "$dir/app/root.pem" "$dir/root-old.pem" && bad "rotation: the root did not change"
ok "root rotated in $((SECONDS - t0)) s (the old state kept in app.old)"
f0=$fails
for i in $(seq 1 "$n"); do
	pp[$i]=$(passes "$i")
	kill -HUP "${agent_pid[$i]}"
done
for i in $(seq 1 "$n"); do
	wait_pass "$i" "${pp[$i]}" || bad "d$i: no pass after the rotation"
	net=$(basename "$(ls -d "$dir/d$i"/state/net-*)")
	if grep -q "refused: ca.lan.test now serves a different root" "$dir/d$i/agent.log" &&
	   cmp -s "$dir/d$i/cert.pem" "$dir/d$i/cert.0" && cmp -s "$dir/d$i/state/$net/root.pem" "$dir/root-old.pem" &&
	   grep -q "^${net#net-} ca.lan.test " "$dir/d$i/hook.log"; then
		:
	else
		bad "d$i: new root not refused as it should be"; show_log "$i"
	fi
done
[ "$fails" = "$f0" ] && ok "rotation: every agent refuses the new root, keeps its certificate file, ran the notify hook"
sleep 3	# a retry or two: the hook must not run again
for i in $(seq 1 "$n"); do
	net=$(basename "$(ls -d "$dir/d$i"/state/net-*)")
	[ "$(grep -c "^${net#net-} ca.lan.test " "$dir/d$i/hook.log")" = 1 ] || bad "d$i: notify hook ran $(grep -c "^${net#net-} " "$dir/d$i/hook.log") times"
	"$bin/iotca-agent" -c "$dir/d$i/agent.conf" status | grep -q "ROOT CHANGED" || bad "d$i: status does not show the root change"
	"$bin/iotca-agent" -c "$dir/d$i/agent.conf" trust --accept "$net" 2>>"$dir/d$i/accept.log" ||
		bad "d$i: trust --accept: $(cat "$dir/d$i/accept.log")"
	pp[$i]=$(passes "$i")
	kill -HUP "${agent_pid[$i]}"
done
wait_pending "$n" || { bad "after trust --accept: not every device asks the new root's operator"; iotca pending; }
ok "after trust --accept: $n devices wait for the new appliance's operator"
f0=$fails
iotca approve --all >>"$dir/approve.log" 2>&1 || bad "iotca approve --all (new root)"
for i in $(seq 1 "$n"); do
	for _ in $(seq 1 300); do cmp -s "$dir/d$i/cert.pem" "$dir/d$i/cert.0" || break; sleep 0.2; done
	openssl verify -CAfile "$dir/app/root.pem" -verify_hostname "$(dev_id "$i").lan.test" "$dir/d$i/cert.pem" >/dev/null 2>&1 ||
		{ bad "d$i: no certificate under the new root"; show_log "$i"; }
done
[ "$(accounts)" = "$n" ] || bad "new root: $(accounts) accounts in the new acme.db"
[ "$fails" = "$f0" ] && ok "rotation: every device enrolled under the new root, one account each in the new database"

# --- stop ----------------------------------------------------------------------------------------
for i in $(seq 1 "$n"); do
	stop_agent "$i" || bad "d$i: agent exited $? on SIGTERM"
	grep -qi "sanitizer\|runtime error" "$dir/d$i/agent.log" && bad "d$i: sanitizer report"
done
[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
