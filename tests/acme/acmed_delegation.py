#!/usr/bin/env python3
"""Delegation through real ACME: iotca-acmed tells the signer the subtree an
order was proved under (RFC 9444), and the operator approves the subtree
once instead of each device.

A small BIND on a loopback port serves the zone home.arpa (the dns-01 TXT
records go there by RFC 2136 with TSIG); the stack's domains are home.arpa
and est.home.arpa.

Asserted: after a subdomain pre-authorization of est.home.arpa, the
finalize of an order for dev1.est.home.arpa makes a pending delegation
request ("account ID asks for the subtree est.home.arpa" in `iotca
pending`), not a device request; once `iotca approve`d, the order becomes
valid, and a second device's order under the subtree is valid at its
finalize with no request at all; an order whose name was validated by
dns-01 on its own (no ancestor authorization) still waits for a per-device
approval, in the subtree or outside it.

env: IOTCA_BIN, IOTCA_SRC.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from acme_test_client import (Client, Http, b64,  # noqa: E402
                              sanitizer_report, solve_dns01, wait)
from bind_fixture import Bind, have_bind  # noqa: E402
from iotca_stack import BIN, DEVSTACK, devstack_env, make_csr  # noqa: E402

SUB = "est.home.arpa"
failures = 0


def check(cond, what, detail=""):
    global failures
    if cond:
        print("ok   " + what)
    else:
        failures += 1
        print("FAIL " + what + (": %s" % (detail,) if detail != "" else ""))


if not have_bind():
    print("skip: named, dig or nsupdate missing")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="iotca-deleg-acme.")
stack = os.path.join(tmp, "stack")
ns = None


def iotca(*args):
    return subprocess.run([os.path.join(BIN, "iotca"), "--socket",
                           os.path.join(stack, "admin.sock")] + list(args),
                          capture_output=True, text=True)


def pending():
    r = iotca("pending", "--json")
    return json.loads(r.stdout) if r.returncode == 0 else []


def new_order(c, value):
    r = c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns",
                                                     "value": value}]})
    if r.status != 201:
        raise AssertionError("newOrder %s: %s %s" % (value, r.status, r.body))
    return r.headers["Location"], r.json()


def finalize(c, url, name):
    o = c.post(url, None).json()
    csr = make_csr(tmp, name.split(".")[0], ["DNS:" + name])
    der = subprocess.run(["openssl", "req", "-outform", "DER"],
                         input=csr.encode(), capture_output=True,
                         check=True).stdout
    return c.post(o["finalize"], {"csr": b64(der)})


def wait_valid(c, url, seconds=30):
    st = {}

    def done():
        st["o"] = c.post(url, None).json()
        return st["o"]["status"] != "processing"
    wait(done, seconds)
    return st.get("o", {})


def cleanup():
    subprocess.run([DEVSTACK, "stop", stack], capture_output=True)
    if ns is not None:
        ns.stop()
    report = sanitizer_report(stack)
    check(report == "", "no sanitizer report in the daemons' logs",
          report[-3000:])
    shutil.rmtree(tmp, ignore_errors=True)


try:
    ns = Bind()
    r = subprocess.run([DEVSTACK, "start", stack, "--key", "file",
                        "--domain", "home.arpa," + SUB,
                        "--acme", "dns_server=" + ns.server],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("devstack start: " + r.stderr)
    env = devstack_env(stack)
    HTTP = Http(env["IOTCA_ROOT_PEM"])
    DIRURL = env["IOTCA_ACME_DIRECTORY"]
    ra = Client(HTTP, DIRURL)
    RA_ID = ra.kid.rsplit("/", 1)[1]

    # The RA proves the subtree once (newAuthz, subdomainAuthAllowed).
    r = ra.post(ra.dir["newAuthz"], {"identifier": {
        "type": "dns", "value": SUB, "subdomainAuthAllowed": True}})
    check(r.status == 201, "newAuthz of the subtree", (r.status, r.body))
    check(solve_dns01(ra, r.headers.get("Location", ""),
                      ns.publish_dns01) == "valid",
          "the subtree authorization is validated by dns-01")

    # First device: the order is ready through the ancestor; its finalize
    # asks the operator for the subtree, not for the device.
    url1, o = new_order(ra, "dev1." + SUB)
    check(o["status"] == "ready", "dev1: ready through the ancestor", o)
    r = finalize(ra, url1, "dev1." + SUB)
    check(r.status == 200 and r.json()["status"] == "processing",
          "dev1: finalize waits for the operator", (r.status, r.body))
    rows = pending()
    deleg = [x for x in rows if x.get("subtree") == SUB]
    check(len(deleg) == 1 and deleg[0]["account"] == RA_ID and
          deleg[0]["device_id"] == "",
          "a pending delegation request of the RA's account", rows)
    check(not [x for x in rows if x["device_id"] == "dev1"],
          "no per-device request for dev1", rows)
    table = iotca("pending").stdout
    check("account %s asks for the subtree %s" % (RA_ID, SUB) in table,
          "iotca pending: account X asks for the subtree", table)
    if deleg:
        r = iotca("approve", str(deleg[0]["id"]))
        check(r.returncode == 0 and "approved" in r.stdout,
              "iotca approve of the delegation", r.stdout + r.stderr)
    o = wait_valid(ra, url1)
    check(o.get("status") == "valid" and "certificate" in o,
          "dev1: valid once the delegation is approved", o)

    # Second device under the subtree: valid at its finalize, no request.
    url2, o = new_order(ra, "dev2." + SUB)
    r = finalize(ra, url2, "dev2." + SUB)
    check(r.status == 200 and r.json()["status"] == "valid",
          "dev2: issued at finalize without an approval", (r.status, r.body))
    check(not [x for x in pending() if x["device_id"] == "dev2"],
          "no request for dev2", pending())
    if r.status == 200 and "certificate" in r.json():
        cert = ra.post(r.json()["certificate"], None)
        check(cert.status == 200 and b"BEGIN CERTIFICATE" in cert.body,
              "dev2's certificate is served", cert.status)

    # Per-name validation, no ancestor: per-device approval, even for a
    # name in the subtree (another account, which proved only that name).
    dev = Client(HTTP, DIRURL)
    for name in ("dev3." + SUB, "door.home.arpa"):
        url, o = new_order(dev, name)
        check(o["status"] == "pending", name + ": pending (no ancestor)", o)
        check(solve_dns01(dev, o["authorizations"][0],
                          ns.publish_dns01) == "valid",
              name + ": validated by dns-01 on its own")
        r = finalize(dev, url, name)
        check(r.status == 200 and r.json()["status"] == "processing",
              name + ": finalize waits for the operator", (r.status, r.body))
        label = name.split(".")[0]
        rows = pending()
        check([x.get("subtree") for x in rows if x["device_id"] == label]
              == [None], name + ": a per-device request, no delegation", rows)
except AssertionError as e:
    check(False, "the test ran", e)
finally:
    cleanup()

sys.exit(1 if failures else 0)
