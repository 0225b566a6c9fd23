#!/usr/bin/env python3
"""iotca-acmed prunes acme.db: old history goes, what clients use stays.

Real ACME flows make the rows: an order issued long ago (its certificate
expired), an order whose certificate is still valid, many orders left
pending (never validated), a pending order and a pre-authorization of
today.  With acmed stopped, the old rows are moved into the past by
rewriting their expiry columns in the SQLite file (more than the 7 days of
retention ago); then acmed is started again and prunes at its start.

Asserted: the old orders, their authorizations, challenges and the expired
certificate are gone, and their links; the order whose certificate is still
valid is kept and its certificate downloads; today's pending order is
validated, finalized and issued; the pre-authorization is kept and a new
order reuses it (ready at once); the account is kept; acme.db (with its WAL)
is smaller than before and has no free pages left (auto_vacuum
incremental).

env: IOTCA_BIN, IOTCA_SRC.
"""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from acme_test_client import (Client, Http, Http01, b64,  # noqa: E402
                              free_port, sanitizer_report, serve_http01,
                              wait)
import iotca_stack  # noqa: E402
from iotca_stack import BIN, DEVSTACK, devstack_env  # noqa: E402

OLD_PENDING = 300           # orders left pending, then aged
DAY = 86400

failed = 0


def check(cond, what, info=""):
    global failed
    if cond:
        print("ok - " + what, flush=True)
    else:
        failed += 1
        print("not ok - " + what + (": " + str(info) if info else ""),
              flush=True)


tmp = tempfile.mkdtemp(prefix="iotca-prune.")
stack = os.path.join(tmp, "stack")
devices = ["prune-old", "prune-live", "prune-pend", "prune-today",
           "prune-pre"]
http01 = free_port()
with open(os.path.join(tmp, "hosts"), "w") as f:
    f.write("127.0.0.1 " + " ".join(d + ".local" for d in devices) + "\n")


def cleanup():
    subprocess.run([DEVSTACK, "stop", stack], capture_output=True)
    report = sanitizer_report(stack)
    if report:
        print(report[-4000:])
        check(False, "no sanitizer report in the daemons' logs")
    shutil.rmtree(tmp, ignore_errors=True)


r = subprocess.run([DEVSTACK, "start", stack, "--key", "file",
                    "--http01-port", str(http01), "--hosts",
                    os.path.join(tmp, "hosts"), "--auto-approve",
                    "--acme", "ratelimit_address=off",
                    "--acme", "ratelimit_account=off"],
                   capture_output=True, text=True)
if r.returncode != 0:
    print(r.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1)
env = devstack_env(stack)
DIRURL = env["IOTCA_ACME_DIRECTORY"]
HTTP = Http(env["IOTCA_ROOT_PEM"])
ACMEDB = os.path.join(stack, "acme.db")
tokens = Http01.tokens


def last(url):
    return url.rsplit("/", 1)[-1]


def new_order(c, device):
    r = c.post(c.dir["newOrder"], {"identifiers": [
        {"type": "dns", "value": device + ".local"}]})
    return r.headers["Location"], r.json()


def solve(c, a_url):
    a = c.post(a_url, None).json()
    ch = [x for x in a["challenges"] if x["type"] == "http-01"][0]
    tokens[ch["token"]] = ch["token"] + "." + c.key.thumb
    c.post(ch["url"], {})
    wait(lambda: c.post(a_url, None).json()["status"] != "pending", 15)


def csr_b64(device):
    k = ec.generate_private_key(ec.SECP384R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device)]))
    b = b.add_extension(x509.SubjectAlternativeName(
        [x509.DNSName(device + ".local")]), critical=False)
    return b64(b.sign(k, hashes.SHA384()).public_bytes(
        serialization.Encoding.DER))


def issued_order(c, device):
    """A whole flow: the order's URL and its final state."""
    url, order = new_order(c, device)
    for a_url in order["authorizations"]:
        solve(c, a_url)
    wait(lambda: c.post(url, None).json()["status"] == "ready", 10)
    c.post(order["finalize"], {"csr": csr_b64(device)})
    st = {}

    def done():
        st["o"] = c.post(url, None).json()
        return st["o"]["status"] not in ("ready", "processing")
    wait(done, 30)
    return url, st["o"]


def db():
    return sqlite3.connect(ACMEDB, timeout=10)


def count(table, where="1", args=()):
    with db() as con:
        return con.execute("SELECT count(*) FROM %s WHERE %s" % (table, where),
                           args).fetchone()[0]


def db_bytes():
    return sum(os.path.getsize(ACMEDB + s) for s in ("", "-wal")
               if os.path.exists(ACMEDB + s))


def acmed_pid():
    with open(os.path.join(stack, "acmed.pid")) as f:
        return int(f.read())


def stop_acmed():
    pid = acmed_pid()
    os.kill(pid, signal.SIGTERM)
    gone = wait(lambda: not os.path.exists("/proc/%d" % pid) or
                open("/proc/%d/stat" % pid).read().split(") ")[1][0] == "Z",
                15)
    if not gone:
        raise AssertionError("iotca-acmed did not stop")


def start_acmed():
    return iotca_stack.start_acmed(stack, HTTP, DIRURL)


try:
    srv = serve_http01(http01)
    c = Client(HTTP, DIRURL)
    t0 = time.time()

    old_url, old = issued_order(c, "prune-old")
    live_url, live = issued_order(c, "prune-live")
    check(old["status"] == "valid" and live["status"] == "valid",
          "two orders issued through ACME", (old["status"], live["status"]))
    pend = [last(new_order(c, "prune-pend")[0]) for _ in range(OLD_PENDING)]
    today_url, today = new_order(c, "prune-today")
    pre = c.post(c.dir["newAuthz"], {"identifier": {
        "type": "dns", "value": "prune-pre.local"}})
    pre_url = pre.headers["Location"]
    solve(c, pre_url)
    check(c.post(pre_url, None).json()["status"] == "valid",
          "a pre-authorization validated")
    print("# %d orders made in %.1f s" % (count("orders"), time.time() - t0))

    stop_acmed()
    old_id, live_id = last(old_url), last(live_url)
    old_cert = last(old["certificate"])
    now = int(time.time())
    aged = now - 8 * DAY
    with db() as con:
        marks = ",".join("?" * (len(pend) + 2))
        ids = [old_id, live_id] + pend
        con.execute("UPDATE orders SET expires = ?, created = ? - 7 * 86400 "
                    "WHERE id IN (%s)" % marks, [aged, aged] + ids)
        con.execute("UPDATE authzs SET expires = ? WHERE order_id IN (%s)"
                    % marks, [aged] + ids)
        con.execute("UPDATE certs SET not_after = ?, not_before = ? - 30 * "
                    "86400 WHERE id = ?", (aged, aged, old_cert))
    con.close()
    n_acct = count("accounts")
    n_orders = count("orders")
    n_authzs = count("authzs")
    n_chall = count("challenges")
    before = db_bytes()
    print("# before: %d orders, %d authorizations, %d challenges, %d bytes"
          % (n_orders, n_authzs, n_chall, before))

    start_acmed()
    # Pruning runs at start, before the first turn of the main loop ends.
    wait(lambda: "acme.db: pruned" in open(os.path.join(stack, "acmed.log"),
                                             errors="replace").read(), 10)
    after = db_bytes()
    with db() as con:
        free = con.execute("PRAGMA freelist_count").fetchone()[0]
    con.close()
    print("# after: %d orders, %d authorizations, %d challenges, %d bytes"
          % (count("orders"), count("authzs"), count("challenges"), after))

    check(count("orders", "id = ?", (old_id,)) == 0,
          "the order whose certificate expired long ago is gone")
    check(count("certs", "id = ?", (old_cert,)) == 0,
          "its expired certificate is gone")
    check(count("orders", "id IN (%s)" % ",".join("?" * len(pend)),
                pend) == 0,
          "%d pending orders expired long ago are gone" % OLD_PENDING)
    check(count("authzs", "expires < ? AND (order_id IS NULL OR order_id "
                "NOT IN (SELECT id FROM orders))", (now - 7 * DAY,)) == 0,
          "no authorization expired beyond the retention is left (but "
          "those of kept orders)")
    check(count("challenges", "authz_id NOT IN (SELECT id FROM authzs)") == 0
          and count("order_authzs", "order_id NOT IN (SELECT id FROM orders)")
          == 0, "no challenge or link left behind")
    check(count("accounts") == n_acct, "accounts are kept")
    check(count("orders") == 2 and count("orders", "id = ?", (live_id,)) == 1,
          "the order with a valid certificate and today's are kept",
          count("orders"))

    lo = c.post(live_url, None)
    cert = c.post(live["certificate"], None)
    check(lo.status == 200 and lo.json()["status"] == "valid" and
          cert.status == 200 and b"BEGIN CERTIFICATE" in cert.body,
          "the kept order's certificate still downloads", cert.status)
    for a_url in today["authorizations"]:
        solve(c, a_url)
    wait(lambda: c.post(today_url, None).json()["status"] == "ready", 10)
    c.post(today["finalize"], {"csr": csr_b64("prune-today")})
    wait(lambda: c.post(today_url, None).json()["status"] == "valid", 30)
    check(c.post(today_url, None).json()["status"] == "valid",
          "today's pending order still works: validated and issued")
    _, reuse = new_order(c, "prune-pre")
    check(reuse["status"] == "ready" and
          last(reuse["authorizations"][0]) == last(pre_url),
          "the pre-authorization is kept and reused", reuse["status"])
    check(after < before, "acme.db shrank: %d -> %d bytes" % (before, after))
    check(free == 0, "no free pages left in acme.db", free)
finally:
    cleanup()

print("# %s" % ("all passed" if failed == 0 else "%d failed" % failed))
sys.exit(1 if failed else 0)
