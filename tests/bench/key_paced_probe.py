#!/usr/bin/env python3
"""key-paced's operator during the burst: runs the load generator (its
arguments after "--"), waits for its "warm-up done", then until the
generator ends runs the real `iotca pending` and `iotca --json status`
against the admin socket in turn, one at a time, at most every INTERVAL
seconds and at most MAX_PROBES times, timing each run (process start to
exit, what an operator waits).

usage: key_paced_probe.py IOTCA ADMIN_SOCKET SECONDS -- [GENERATOR ARGS...]

Without a generator it probes for SECONDS: the same figures with the
signer idle, what the machine itself costs an operator.

Prints the generator's "key: value" lines, then
  issued_per_s: certificates per second over the clock (the certs_valid
                of the first and last status during it)
  pending_p50_ms, pending_p99_ms, status_p50_ms, status_p99_ms, probes
and exits with the generator's status (1 when a probe failed).
"""
import json
import subprocess
import sys
import tempfile
import time

INTERVAL = 0.05
MAX_PROBES = 2000
WARMUP_MAX = 300        # seconds: every client's first flow, then the clock


def percentile(v, p):
    """Nearest rank, as the generators' bench_percentile()."""
    if not v:
        return 0.0
    v = sorted(v)
    k = max(1, -(-len(v) * p // 100))
    return v[int(k) - 1]


def main():
    if len(sys.argv) < 5 or sys.argv[4] != "--":
        sys.exit("usage: key_paced_probe.py IOTCA ADMIN_SOCKET SECONDS -- "
                 "[GENERATOR ARGS...]")
    iotca, admin, secs, gen = sys.argv[1], sys.argv[2], float(sys.argv[3]), \
        sys.argv[5:]
    err = tempfile.TemporaryFile(mode="w+")
    if not gen:     # idle: a stand-in that ends when the time is up
        gen = ["sleep", str(secs)]
        print("warm-up done", file=err, flush=True)
    proc = subprocess.Popen(gen, stdout=subprocess.PIPE, stderr=err,
                            text=True)
    # The generator says "warm-up done" on stderr when the clock starts.
    deadline = time.monotonic() + WARMUP_MAX
    while proc.poll() is None and time.monotonic() < deadline:
        err.seek(0)
        if "warm-up done" in err.read():
            break
        time.sleep(0.05)
    lat = {"pending": [], "status": []}
    samples = []            # (time, certs_valid) during the clock
    failed = 0
    t_end = time.monotonic() + secs
    n = 0
    while proc.poll() is None and n < MAX_PROBES:
        op = "pending" if n % 2 == 0 else "status"
        args = [iotca, "--socket", admin] + (["--json", "status"]
                                             if op == "status" else
                                             ["pending"])
        t0 = time.monotonic()
        r = subprocess.run(args, capture_output=True, text=True)
        t1 = time.monotonic()
        n += 1
        if r.returncode != 0:
            failed += 1
            print("probe: iotca %s: %s" % (op, r.stderr.strip()),
                  file=sys.stderr)
        else:
            lat[op].append((t1 - t0) * 1000)
            if op == "status" and t1 <= t_end:
                samples.append((t1, json.loads(r.stdout)["certs_valid"]))
        time.sleep(max(0.0, INTERVAL - (time.monotonic() - t0)))
    out, _ = proc.communicate()
    sys.stdout.write(out)
    err.seek(0)
    sys.stderr.write(err.read())
    err.close()
    rate = 0.0
    if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
        rate = (samples[-1][1] - samples[0][1]) / \
            (samples[-1][0] - samples[0][0])
    print("issued_per_s: %.2f" % rate)
    for op in ("pending", "status"):
        print("%s_p50_ms: %.1f" % (op, percentile(lat[op], 50)))
        print("%s_p99_ms: %.1f" % (op, percentile(lat[op], 99)))
    print("probes: %d" % n)
    print("probe_errors: %d" % failed)
    sys.exit(proc.returncode or (1 if failed else 0))


if __name__ == "__main__":
    main()
