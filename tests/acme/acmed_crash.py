#!/usr/bin/env python3
"""iotca-acmed killed between the signer's answer and its own commit.

The window is opened without any hook in the product: the test stops the
signer (SIGSTOP) while acmed waits for its answer to `issue`, kills acmed
(SIGKILL), then lets the signer go on (SIGCONT): the signer issues and
answers into a closed socket, the certificate exists only in signer.db.
Then acmed is started again and the client polls its order as usual.

Asserted for every order: the order ends valid with THE certificate the
signer issued while acmed was dead (same serial), the signer holds exactly
one certificate for the device, and `iotca certs` lists no certificate that
acme.db does not know (an orphan).  One more order whose certificate the
operator revoked while acmed was down ends invalid, naming the revocation,
and is not issued again.

A small load: two orders are in flight at each kill.

env: IOTCA_BIN, IOTCA_SRC.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from acme_test_client import (Client, Http, Http01, b64,  # noqa: E402
                              free_port, serve_http01, wait)
import iotca_stack  # noqa: E402
from iotca_stack import BIN, DEVSTACK, call, devstack_env  # noqa: E402

CYCLES = 5
PER_CYCLE = 2

failed = 0


def check(cond, what, info=""):
    global failed
    if cond:
        print("ok - " + what, flush=True)
    else:
        failed += 1
        print("not ok - " + what + (": " + str(info) if info else ""),
              flush=True)


tmp = tempfile.mkdtemp(prefix="iotca-crash.")
stack = os.path.join(tmp, "stack")
devices = ["dev-c%d" % i for i in range(1, CYCLES * PER_CYCLE + 3)]
http01 = free_port()
with open(os.path.join(tmp, "hosts"), "w") as f:
    f.write("127.0.0.1 " + " ".join(d + ".local" for d in devices) + "\n")


def pid_of(name):
    with open(os.path.join(stack, name + ".pid")) as f:
        return int(f.read())


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def cleanup():
    try:
        os.kill(pid_of("signer"), signal.SIGCONT)
    except (OSError, ValueError):
        pass
    subprocess.run([DEVSTACK, "stop", stack], capture_output=True)
    for log in ("signer.log", "acmed.log"):
        p = os.path.join(stack, log)
        if os.path.exists(p):
            text = open(p, errors="replace").read()
            if "Sanitizer" in text or "runtime error:" in text:
                print(text[-4000:])
                check(False, "no sanitizer report in " + log)
    shutil.rmtree(tmp, ignore_errors=True)


r = subprocess.run([DEVSTACK, "start", stack, "--key", "file",
                    "--http01-port", str(http01), "--hosts",
                    os.path.join(tmp, "hosts"), "--auto-approve"],
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


def ready_order(c, device):
    """A new order for device.local with its http-01 solved: (url, order)."""
    r = c.post(c.dir["newOrder"], {"identifiers": [
        {"type": "dns", "value": device + ".local"}]})
    url, order = r.headers["Location"], r.json()
    for a_url in order["authorizations"]:
        a = c.post(a_url, None).json()
        ch = [x for x in a["challenges"] if x["type"] == "http-01"][0]
        tokens[ch["token"]] = ch["token"] + "." + c.key.thumb
        c.post(ch["url"], {})
        for _ in range(100):
            if c.post(a_url, None).json()["status"] != "pending":
                break
            time.sleep(0.1)
    for _ in range(50):
        order = c.post(url, None).json()
        if order["status"] == "ready":
            break
        time.sleep(0.1)
    return url, order


def csr_b64(device):
    k = ec.generate_private_key(ec.SECP384R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device)]))
    b = b.add_extension(x509.SubjectAlternativeName(
        [x509.DNSName(device + ".local")]), critical=False)
    return b64(b.sign(k, hashes.SHA384()).public_bytes(
        serialization.Encoding.DER))


def sql(db, statement):
    r = subprocess.run(["sqlite3", "-cmd", ".timeout 5000", db, statement],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("sqlite3: " + r.stderr)
    return r.stdout.split()


def signer_certs():
    """The signer's view, through the operator's command."""
    r = subprocess.run([os.path.join(BIN, "iotca"), "--config",
                        env["IOTCA_CONFIG"], "--json", "certs"],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def serials_for(device):
    return [int(c["serial"], 16) for c in signer_certs()
            if c["device_id"] == device]


def start_acmed():
    return iotca_stack.start_acmed(stack, HTTP, DIRURL)


def finalize_dying(c, device, order):
    """The finalize that acmed's death cuts short: no answer expected."""
    try:
        c.post(order["finalize"], {"csr": csr_b64(device)}, timeout=30)
    except OSError:
        pass


def kill_in_window(c, orders):
    """Finalize orders while the signer is stopped, kill acmed, let the
    signer issue into the closed socket.  Returns when the signer holds a
    certificate for each device."""
    signer, acmed = pid_of("signer"), pid_of("acmed")
    os.kill(signer, signal.SIGSTOP)
    try:
        threads = []
        for device, url, order in orders:
            t = threading.Thread(target=finalize_dying, args=(c, device,
                                 order), daemon=True)
            t.start()
            threads.append(t)
        ids = [url.rsplit("/", 1)[-1] for _, url, _ in orders]
        ok = wait(lambda: all(sql(ACMEDB, "SELECT status FROM orders WHERE "
                                  "id = '%s'" % i) == ["processing"]
                              for i in ids), 10)
        check(ok, "orders %s processing, acmed waits for the stopped signer"
              % " ".join(d for d, _, _ in orders))
        time.sleep(0.5)     # acmed has sent its request and waits
        os.kill(acmed, signal.SIGKILL)
        wait(lambda: not alive(acmed), 5)
    finally:
        os.kill(signer, signal.SIGCONT)
    for t in threads:
        t.join(30)
    for device, _, _ in orders:
        check(wait(lambda: len(serials_for(device)) >= 1, 15),
              "the signer issued %s's certificate after acmed died" % device)


def leaf_serial(c, order):
    body = c.post(order["certificate"], None).body
    return x509.load_pem_x509_certificate(body).serial_number


def poll_until_done(c, url):
    o = None
    for _ in range(60):
        o = c.post(url, None).json()
        if o["status"] not in ("processing",):
            return o
        time.sleep(0.5)
    return o


try:
    srv = serve_http01(http01)
    client = Client(HTTP, DIRURL)
    kills = 0
    n = 0
    for cycle in range(CYCLES):
        orders = []
        for _ in range(PER_CYCLE):
            device = devices[n]
            n += 1
            url, order = ready_order(client, device)
            orders.append((device, url, order))
        kill_in_window(client, orders)
        kills += 1
        acmed = start_acmed()
        for device, url, _ in orders:
            before = serials_for(device)
            o = poll_until_done(client, url)
            after = serials_for(device)
            check(o["status"] == "valid", "%s: the order is valid after "
                  "the restart" % device, o)
            check(len(after) == 1, "%s: the signer issued exactly one "
                  "certificate" % device, "%d certificates" % len(after))
            if o["status"] == "valid":
                check(leaf_serial(client, o) == before[0], "%s: the order "
                      "carries the certificate issued while acmed was dead"
                      % device)

    # The certificate of an order was revoked while acmed was down: the
    # order ends invalid with the reason, and nothing is issued again.
    device = devices[n]
    url, order = ready_order(client, device)
    kill_in_window(client, [(device, url, order)])
    serial = serials_for(device)[0]
    # The signer's own spelling of the serial (whole bytes: a leading 0
    # nibble stays), not a re-formatting of the number.
    text = [c["serial"] for c in signer_certs() if c["device_id"] == device][0]
    subprocess.run([os.path.join(BIN, "iotca"), "--config",
                    env["IOTCA_CONFIG"], "revoke", text, "--reason",
                    "keyCompromise"], check=True, capture_output=True)
    start_acmed()
    o = poll_until_done(client, url)
    check(o["status"] == "invalid" and "revoked" in
          json.dumps(o.get("error", {})), "revoked while acmed was down: the "
          "order is invalid and says so", o)
    check(serials_for(device) == [serial], "revoked: no second certificate",
          serials_for(device))

    # An order whose answer was lost and whose client polls only after the
    # order's expiry: the certificate issued meanwhile is handed over, not
    # left orphaned behind an invalid order.  (acmed is down while the
    # order's expiry is moved into the past: time passing, not tampering.)
    device = devices[n + 1]
    url, order = ready_order(client, device)
    kill_in_window(client, [(device, url, order)])
    serial = serials_for(device)[0]
    sql(ACMEDB, "UPDATE orders SET expires = %d WHERE id = '%s'"
        % (int(time.time()) - 1, url.rsplit("/", 1)[-1]))
    start_acmed()
    o = poll_until_done(client, url)
    check(o["status"] == "valid" and leaf_serial(client, o) == serial,
          "polled after its expiry: the order hands over the certificate "
          "issued while acmed was dead", o)
    check(serials_for(device) == [serial], "expired: no second certificate",
          serials_for(device))

    # The signer answers by order: the lookup op, and a repeat of the order
    # with another key is refused rather than answered.
    sock = os.path.join(stack, "signer.sock")
    acct = client.kid.rsplit("/", 1)[-1]
    oid = orders[0][1].rsplit("/", 1)[-1]
    r = call(sock, {"op": "issued", "account": acct, "order": oid})
    check(r.get("ok") and int(r["cert"]["serial"], 16) ==
          serials_for(orders[0][0])[0] and "pem" in r["cert"],
          "issued: the signer names the order's certificate", r)
    r = call(sock, {"op": "issued", "account": acct,
                    "order": "AAAAAAAAAAAAAAAAAAAAAA"})
    check(r.get("error") == "notFound", "issued: an unknown order: notFound",
          r)
    other = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, orders[0][0])])
    ).add_extension(x509.SubjectAlternativeName(
        [x509.DNSName(orders[0][0] + ".local")]), critical=False).sign(
        ec.generate_private_key(ec.SECP384R1()), hashes.SHA384())
    r = call(sock, {"op": "issue", "account": acct, "order": oid,
                    "csr": other.public_bytes(
                        serialization.Encoding.PEM).decode()})
    check(r.get("error") == "badRequest" and
          len(serials_for(orders[0][0])) == 1,
          "issue: the order again with another key: badRequest, nothing "
          "issued", r)

    known = {int(s, 16) for s in sql(ACMEDB, "SELECT serial FROM certs")}
    mine = [c for c in signer_certs() if c["device_id"] in devices]
    orphans = [c["serial"] for c in mine if int(c["serial"], 16) not in known
               and c["status"] == "valid"]
    print("# %d kills of acmed with %d orders in flight: %d certificates "
          "issued, %d orphaned" % (kills, kills * PER_CYCLE, len(mine),
                                   len(orphans)), flush=True)
    check(not orphans, "no orphaned certificate in iotca certs", orphans)
finally:
    cleanup()
sys.exit(1 if failed else 0)
