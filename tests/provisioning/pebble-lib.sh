# pebble-lib.sh: start and stop Debian's Pebble on loopback, for tests and
# benchmarks (sourced by bash scripts; not run on its own).
#
#   pebble_start DIR HTTP01_PORT NONCEREJECT   sets PEBBLE_DIRECTORY, PEBBLE_CA,
#                                              PEBBLE_PID, CHALLTESTSRV_PID
#   pebble_stop                                stops what pebble_start started
#
# Pebble gets its own TLS certificate (for 127.0.0.1) and a random loopback
# port; its VA validates http-01 on HTTP01_PORT and resolves every name to
# 127.0.0.1 through pebble-challtestsrv used as its DNS server (IPv4 only).
# Always PEBBLE_VA_NOSLEEP=1 (no artificial validation delay) and
# PEBBLE_AUTHZREUSE=0 (every order validates, as with any fresh name).

PEBBLE_PID=
CHALLTESTSRV_PID=

pebble_have() {
	command -v pebble >/dev/null 2>&1 && command -v pebble-challtestsrv >/dev/null 2>&1
}

# A free TCP (or, with "udp", UDP) port on 127.0.0.1.
pebble_free_port() {
	python3 -c 'import socket, sys
t = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, t)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "${1:-tcp}"
}

pebble_stop() {
	local p
	for p in $PEBBLE_PID $CHALLTESTSRV_PID; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	PEBBLE_PID=
	CHALLTESTSRV_PID=
}

pebble_start() {
	local dir=$1 http01=$2 reject=$3 port dns mgmt attempt
	mkdir -p "$dir"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/pebble-key.pem" -out "$dir/pebble-cert.pem" -days 2 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		>/dev/null 2>&1 || { echo "pebble-lib: openssl req failed" >&2; return 1; }
	# A port picked this way can be taken before the server binds it: retry.
	for attempt in 1 2 3; do
		dns=$(pebble_free_port udp)
		mgmt=$(pebble_free_port)
		pebble-challtestsrv -dns01 "127.0.0.1:$dns" -http01 "" -https01 "" \
			-tlsalpn01 "" -management "127.0.0.1:$mgmt" \
			-defaultIPv4 127.0.0.1 -defaultIPv6 "" >"$dir/challtestsrv.log" 2>&1 &
		CHALLTESTSRV_PID=$!
		port=$(pebble_free_port)
		cat >"$dir/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$port", "managementListenAddress": "",
 "certificate": "$dir/pebble-cert.pem", "privateKey": "$dir/pebble-key.pem",
 "httpPort": $http01, "tlsPort": $(pebble_free_port),
 "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
		PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=$reject PEBBLE_AUTHZREUSE=0 \
			pebble -config "$dir/pebble.json" -dnsserver "127.0.0.1:$dns" \
			>"$dir/pebble.log" 2>&1 &
		PEBBLE_PID=$!
		PEBBLE_DIRECTORY=https://127.0.0.1:$port/dir
		PEBBLE_CA=$dir/pebble-cert.pem
		for _ in $(seq 1 100); do
			if curl -sf --max-time 2 --cacert "$PEBBLE_CA" "$PEBBLE_DIRECTORY" \
			    >/dev/null 2>&1 && kill -0 "$CHALLTESTSRV_PID" 2>/dev/null; then
				return 0
			fi
			kill -0 "$PEBBLE_PID" 2>/dev/null || break
			sleep 0.1
		done
		pebble_stop
	done
	echo "pebble-lib: pebble did not start:" >&2
	tail -n 5 "$dir/pebble.log" "$dir/challtestsrv.log" >&2
	return 1
}
