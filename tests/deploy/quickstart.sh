#!/usr/bin/env bash
# The README's quick start, word for word: every ```sh block that follows a
# "<!-- quickstart: NAME -->" line is taken out of README.md and run, in the
# order they appear, with bash -e in a fresh directory that has the
# checkout's scripts/ beside it, as a developer's source directory would.
# The blocks start from "scripts/run" having left a running iotca-dev stack;
# the test starts that stack itself (scripts/run would also install and
# build, which scripts/test has done).
#
# Root only (certbot's state goes to tmpfs mounts over /etc/letsencrypt and
# its siblings in a private mount namespace, so the host's are untouched).
#
#   quickstart.sh SRCDIR BINDIR
set -euo pipefail
src=$1
bin=$2
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (certbot state on private tmpfs mounts)"; exit 77; }
command -v certbot >/dev/null || { echo "FAIL: certbot is not installed"; exit 1; }
if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
	echo "FAIL: port 8080 on loopback is taken; the README's example needs it"
	exit 1
fi

work=$(mktemp -d)
cleanup() {
	local d
	for d in iotca-dev acme-dev; do
		[ -d "$work/$d" ] && IOTCA_BIN=$bin "$src/scripts/devstack" stop "$work/$d" >/dev/null 2>&1
	done
	rm -rf "$work"
}
trap cleanup EXIT
ln -s "$src/scripts" "$work/scripts"
export IOTCA_BIN=$bin

# Blocks in README order, one file each: NN-NAME.sh.
python3 - "$src/README.md" "$work" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r'<!-- quickstart: ([a-z0-9-]+) -->\n```sh\n(.*?)```', text, re.S)
if len(blocks) < 2:
    sys.exit("README.md: expected the quick start's marked blocks, found %d" % len(blocks))
for i, (name, body) in enumerate(blocks):
    open("%s/%02d-%s.sh" % (sys.argv[2], i, name), "w").write(body)
EOF

cd "$work"
"$src/scripts/devstack" start iotca-dev >start.log 2>&1 || { cat start.log; exit 1; }
# The PATH the blocks run with must not already hold the binaries: the env
# file is what puts them there.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
! command -v iotca >/dev/null || { echo "FAIL: iotca already on PATH"; exit 1; }

status=0
for f in [0-9][0-9]-*.sh; do
	echo "=== README block ${f#??-}"
	cat "$f"
	echo "=== output"
	if ! timeout 180 unshare -m bash -c '
		for d in /etc/letsencrypt /var/lib/letsencrypt /var/log/letsencrypt; do
			mkdir -p "$d" && mount -t tmpfs tmpfs "$d" || exit 1
		done
		exec bash -e "$1"' quickstart "$f" >"$f.out" 2>&1; then
		cat "$f.out"
		echo "FAIL: README block ${f#??-} failed"
		status=1
		break
	fi
	cat "$f.out"
done
[ $status = 0 ] || exit 1

# What a reader of the quick start would check: the certificate verifies,
# and certbot got one for printer-1.local from this root.
grep -q '^dev.pem: OK$' 00-issue.sh.out || { echo "FAIL: dev.pem did not verify"; exit 1; }
grep -q 'Successfully received certificate' 01-acme.sh.out ||
	{ echo "FAIL: certbot got no certificate"; exit 1; }
grep -q 'approved' 01-acme.sh.out || { echo "FAIL: no approval"; exit 1; }
for d in iotca-dev acme-dev; do
	if [ -f "$d/signer.pid" ] && kill -0 "$(cat "$d/signer.pid")" 2>/dev/null; then
		echo "FAIL: $d still runs after the README's stop"
		exit 1
	fi
done
echo "PASS: the quick start works as written"
