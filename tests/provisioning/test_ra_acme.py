#!/usr/bin/env python3
"""The EST RA's ACME side (provisioning/ra_acme.c, through ra_acme_probe)
against a devstack and against Pebble, with a loopback BIND for dns-01.

Asserted, against the devstack (domains home.arpa,est.home.arpa; acmed's
dns_server is the BIND):
* preauthorize publishes the dns-01 TXT at _acme-challenge.est.home.arpa
  by a TSIG-signed update (seen in BIND while it waits), the authorization
  becomes valid with subdomainAuthAllowed (acme.db), and the record is gone
  afterwards; the account key file is created 0600;
* an order for dev1.est.home.arpa is ready at once (acme.db); its first
  step finalizes and waits
  (the operator has not approved), after `iotca approve` of what `pending`
  lists a step gives the chain, which verifies to the appliance root and
  names dev1.est.home.arpa;
* a fresh process resuming the order by its URL gets the same certificate,
  and acmed holds one certificate for it, not two;
* four RAs creating one account key file at once end with one key and one
  account;
* a name outside the subtree, or one that is no DNS name, is refused
  before any ACME traffic;
* a TSIG key for other.arpa: preauthorize fails with one line naming BIND's
  REFUSED, and no record is left;
* the TXT published where the ACME server does not look (a second BIND):
  validation fails, the reason is given, and the record is removed anyway;
* a CSR the server refuses (badCSR) and an order URL it does not know are
  final (failed, with the problem); the server away is a transient error.
Against Pebble (-dnsserver: the BIND): preauthorize answers per-order (no
newAuthz), and an order is completed by its own dns-01.

usage: test_ra_acme.py RA_ACME_PROBE; env: IOTCA_BIN, IOTCA_SRC.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from acme_test_client import sanitizer_report  # noqa: E402
from bind_fixture import Bind, free_port, have_bind  # noqa: E402
from iotca_stack import BIN, DEVSTACK, devstack_env, make_csr  # noqa: E402

PROBE = sys.argv[1]
SUBTREE = "est.home.arpa"
CHALLENGE = "_acme-challenge." + SUBTREE
failures = 0


def check(cond, what, detail=""):
    global failures
    if cond:
        print("ok   " + what)
    else:
        failures += 1
        print("FAIL " + what + (": %s" % (detail,) if detail != "" else ""))


if not have_bind():
    print("SKIP: named, dig or nsupdate not installed (scripts/install-deps)")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="iotca-ra-acme.")
stack = os.path.join(tmp, "stack")
ns = ns2 = None
pebble = None


def probe(directory, ca, *args, key=None, tsig=None, server=None,
          wait_ms=0, acct=None, timeout=60):
    cmd = [PROBE, "-d", directory, "-c", ca,
           "-k", acct or os.path.join(tmp, "account.key"),
           "-s", SUBTREE, "-n", server or ns.server, "-z", "home.arpa",
           "-t", tsig or ns.key_file, "-w", str(wait_ms), "-T", "30000"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True,
                          timeout=timeout)


def probe_watching(directory, ca, name, fixture, *args, **kw):
    """Run the probe while polling fixture for the TXT at name; the result
    and the set of values seen."""
    seen = set()
    cmd_kw = dict(kw)
    out = {}

    def run():
        out["r"] = probe(directory, ca, *args, **cmd_kw)
    t = threading.Thread(target=run)
    t.start()
    while t.is_alive():
        seen.update(fixture.txt(name))
        time.sleep(0.1)
    t.join()
    return out["r"], seen


def leaf(pem):
    end = "-----END CERTIFICATE-----"
    return pem[:pem.index(end) + len(end)] if end in pem else ""


def cert_text(pem_file):
    return subprocess.run(["openssl", "x509", "-noout", "-text", "-in",
                           pem_file], capture_output=True, text=True).stdout


def acmedb(query, *params):
    db = sqlite3.connect(os.path.join(stack, "acme.db"), timeout=5)
    try:
        return db.execute(query, params).fetchall()
    finally:
        db.close()


def iotca(*args):
    return subprocess.run([os.path.join(BIN, "iotca"), "--socket",
                           os.path.join(stack, "admin.sock")] + list(args),
                          capture_output=True, text=True)


def start_pebble(dnsserver):
    d = os.path.join(tmp, "pebble")
    os.mkdir(d)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                    d + "/key.pem", "-out", d + "/cert.pem", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    port = free_port()
    with open(d + "/pebble.json", "w") as f:
        json.dump({"pebble": {
            "listenAddress": "127.0.0.1:%d" % port,
            "managementListenAddress": "",
            "certificate": d + "/cert.pem", "privateKey": d + "/key.pem",
            "httpPort": free_port(), "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False}}, f)
    env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_AUTHZREUSE="0",
               PEBBLE_WFE_NONCEREJECT="0")
    log = open(d + "/pebble.log", "w")
    p = subprocess.Popen(["pebble", "-config", d + "/pebble.json",
                          "-dnsserver", dnsserver], env=env, stdout=log,
                         stderr=log, start_new_session=True)
    log.close()
    url = "https://127.0.0.1:%d/dir" % port
    for _ in range(100):
        r = subprocess.run(["curl", "-sf", "--max-time", "2", "--cacert",
                            d + "/cert.pem", url], capture_output=True)
        if r.returncode == 0:
            return p, url, d + "/cert.pem"
        if p.poll() is not None:
            break
        time.sleep(0.1)
    p.terminate()
    p.wait(timeout=10)
    raise AssertionError("pebble did not start")


def cleanup():
    subprocess.run([DEVSTACK, "stop", stack], capture_output=True)
    if pebble is not None:
        pebble.terminate()
        pebble.wait(timeout=10)
    for f in (ns, ns2):
        if f is not None:
            f.stop()
    report = sanitizer_report(stack)
    check(report == "", "no sanitizer report in the daemons' logs",
          report[-3000:])
    shutil.rmtree(tmp, ignore_errors=True)


try:
    ns = Bind()
    r = subprocess.run([DEVSTACK, "start", stack, "--key", "file",
                        "--domain", "home.arpa," + SUBTREE,
                        "--acme", "dns_server=" + ns.server],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("devstack start: " + r.stderr)
    env = devstack_env(stack)
    DIR, ROOT = env["IOTCA_ACME_DIRECTORY"], env["IOTCA_ROOT_PEM"]

    # --- pre-authorization of the subtree ---------------------------------
    t0 = time.time()
    r, seen = probe_watching(DIR, ROOT, CHALLENGE, ns, "preauth",
                             wait_ms=1500)
    dt = time.time() - t0
    out = r.stdout.split()
    check(r.returncode == 0 and out[:1] == ["preauthorized"] and
          int(out[1]) > time.time() + 3600,
          "preauthorize: 1, with an expiry (%.1f s)" % dt,
          (r.returncode, r.stdout, r.stderr))
    check(len(seen) == 1 and all(len(v) == 43 and "=" not in v
                                 for v in seen),
          "the dns-01 TXT (base64url of a SHA-256) was in BIND while "
          "validating", seen)
    check(ns.txt(CHALLENGE) == [], "the TXT is gone afterwards",
          ns.txt(CHALLENGE))
    rows = acmedb("SELECT status, subdomain FROM authzs WHERE value = ?",
                  SUBTREE)
    check(("valid", 1) in rows,
          "acmed holds a valid subdomain authorization of " + SUBTREE, rows)
    st = os.stat(os.path.join(tmp, "account.key"))
    check(st.st_mode & 0o777 == 0o600, "the account key is created 0600",
          oct(st.st_mode))

    # --- an order, stepped by URL ---------------------------------------
    make_csr(tmp, "dev1", ["DNS:dev1." + SUBTREE])
    csr = os.path.join(tmp, "dev1.csr")
    chain = os.path.join(tmp, "dev1.chain")
    r = probe(DIR, ROOT, "open", "dev1." + SUBTREE)
    url = r.stdout.strip()
    check(r.returncode == 0 and url.startswith("https://"),
          "order opened: " + url, (r.returncode, r.stderr))
    rows = acmedb("SELECT status FROM orders WHERE id = ?",
                  url.rsplit("/", 1)[1])
    check(rows == [("ready",)], "the order is ready at once (covered by the "
          "subtree's authorization)", rows)
    r = probe(DIR, ROOT, "step", url, csr, chain)
    check(r.returncode == 0 and r.stdout.startswith("wait ") and
          int(r.stdout.split()[1]) >= 1,
          "first step: wait (the operator has not approved): " +
          r.stdout.strip(), (r.returncode, r.stdout, r.stderr))
    r = iotca("--json", "pending")
    reqs = json.loads(r.stdout) if r.returncode == 0 else []
    check(len(reqs) >= 1, "the request waits in iotca pending", r.stdout)
    for q in reqs:
        a = iotca("approve", str(q["id"]))
        check(a.returncode == 0, "iotca approve %s" % q["id"], a.stderr)
    steps = []
    end = time.time() + 40
    while time.time() < end:
        r = probe(DIR, ROOT, "step", url, csr, chain)
        steps.append(r.stdout.strip() or r.stderr.strip())
        if r.returncode != 0 or not r.stdout.startswith("wait "):
            break
        time.sleep(min(int(r.stdout.split()[1]), 3))
    check(r.returncode == 0 and r.stdout.strip() == "done",
          "after approval a step gives the chain (%d steps)" % len(steps),
          steps)
    pem = open(chain).read() if os.path.exists(chain) else ""
    check("DNS:dev1." + SUBTREE in cert_text(chain),
          "the leaf names dev1." + SUBTREE)
    v = subprocess.run(["openssl", "verify", "-CAfile", ROOT, "-untrusted",
                        chain, chain], capture_output=True, text=True)
    check(v.returncode == 0, "the chain verifies to the appliance root",
          v.stdout + v.stderr)
    certs = acmedb("SELECT count(*) FROM certs WHERE order_id = ?",
                   url.rsplit("/", 1)[1])[0][0]
    check(certs == 1, "acmed issued one certificate for the order", certs)

    # --- resume from a fresh process ------------------------------------
    chain2 = os.path.join(tmp, "dev1.chain2")
    r = probe(DIR, ROOT, "step", url, csr, chain2)
    pem2 = open(chain2).read() if os.path.exists(chain2) else ""
    check(r.stdout.strip() == "done" and leaf(pem2) == leaf(pem) != "",
          "a fresh ra_acme resuming by URL gets the same certificate",
          (r.stdout, r.stderr))
    certs2 = acmedb("SELECT count(*) FROM certs")[0][0]
    check(certs2 == certs, "and no second certificate is issued",
          (certs, certs2))

    # --- one account key file shared by RAs starting at once ------------
    accounts = acmedb("SELECT count(*) FROM accounts")[0][0]
    shared = os.path.join(tmp, "shared.key")
    procs = [subprocess.Popen([PROBE, "-d", DIR, "-c", ROOT, "-k", shared,
                               "-s", SUBTREE, "-n", ns.server, "-z",
                               "home.arpa", "-t", ns.key_file, "open",
                               "dev%d.%s" % (i, SUBTREE)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    added = acmedb("SELECT count(*) FROM accounts")[0][0] - accounts
    check(all(p.returncode == 0 for p in procs) and added == 1 and
          os.listdir(tmp).count("shared.key") == 1 and
          not [f for f in os.listdir(tmp) if f.startswith("shared.key.")],
          "4 RAs creating one account key file at once: one key, one "
          "account", (outs, added))

    # --- refusals -------------------------------------------------------
    r = probe(DIR, ROOT, "open", "dev1.home.arpa")
    check(r.returncode == 1 and "not within the subtree" in r.stderr,
          "a name outside the subtree is refused: " + r.stderr.strip(),
          (r.returncode, r.stdout))
    r = probe(DIR, ROOT, "open", "x y.est.home.arpa")
    check(r.returncode == 1 and "is not a DNS name" in r.stderr,
          "a name that is no DNS name is refused: " + r.stderr.strip(),
          (r.returncode, r.stdout))
    r, seen = probe_watching(DIR, ROOT, CHALLENGE, ns, "preauth",
                             tsig=ns.other_key_file)
    err = r.stderr.strip()
    check(r.returncode == 1 and "\n" not in err and
          ("REFUSED" in err or "NOTAUTH" in err),
          "a TSIG key for other.arpa: preauthorize fails, one line: " + err,
          (r.returncode, r.stdout))
    check(not seen and ns.txt(CHALLENGE) == [],
          "and leaves no record", (seen, ns.txt(CHALLENGE)))
    # Published where acmed does not look: validation fails, record removed.
    ns2 = Bind(prefix="iotca-bind2.")
    r, seen = probe_watching(DIR, ROOT, CHALLENGE, ns2, "preauth",
                             tsig=ns2.key_file, server=ns2.server,
                             wait_ms=500)
    err = r.stderr.strip()
    check(r.returncode == 1 and "\n" not in err and
          err.startswith("preauthorize: "),
          "a failed validation: preauthorize fails, one line: " + err,
          (r.returncode, r.stdout))
    check(len(seen) == 1 and ns2.txt(CHALLENGE) == [],
          "the record was published and is removed after the failure",
          (seen, ns2.txt(CHALLENGE)))
    ns2.stop()
    ns2 = None
    # Final answers: a CSR that does not match the order, an unknown order.
    r = probe(DIR, ROOT, "open", "dev3." + SUBTREE)
    url3 = r.stdout.strip()
    r = probe(DIR, ROOT, "step", url3, csr, os.path.join(tmp, "dev3.chain"))
    check(r.returncode == 3 and r.stdout.startswith("failed badCSR: "),
          "a CSR the server refuses: failed with its problem: " +
          r.stdout.strip(), (r.returncode, r.stdout, r.stderr))
    r = probe(DIR, ROOT, "step", url3 + "x", csr,
              os.path.join(tmp, "dev3.chain"))
    check(r.returncode == 3 and r.stdout.startswith("failed "),
          "an order the server does not know: failed: " + r.stdout.strip(),
          (r.returncode, r.stdout, r.stderr))
    subprocess.run([DEVSTACK, "stop", stack], check=True, capture_output=True)
    r = probe(DIR, ROOT, "step", url, csr, os.path.join(tmp, "x.chain"))
    check(r.returncode == 1 and r.stderr.startswith("step: ") and
          r.stdout == "",
          "the ACME server away: a transient error: " + r.stderr.strip(),
          (r.returncode, r.stdout))

    # --- Pebble: per-order dns-01 -----------------------------------------
    if shutil.which("pebble") is None:
        print("skip Pebble: not installed")
    else:
        pebble, PDIR, PCA = start_pebble(ns.server)
        pacct = os.path.join(tmp, "pebble-account.key")
        r = probe(PDIR, PCA, "preauth", acct=pacct)
        check(r.returncode == 0 and r.stdout.strip() == "per-order",
              "Pebble: preauthorize answers per-order (no newAuthz)",
              (r.returncode, r.stdout, r.stderr))
        make_csr(tmp, "dev2", ["DNS:dev2." + SUBTREE])
        pchain = os.path.join(tmp, "dev2.chain")
        name = "_acme-challenge.dev2." + SUBTREE
        r, seen = probe_watching(PDIR, PCA, name, ns, "enrol",
                                 os.path.join(tmp, "dev2.csr"), pchain,
                                 "dev2." + SUBTREE, acct=pacct, wait_ms=500)
        check(r.returncode == 0 and r.stdout.split()[-1:] == ["done"] and
              "DNS:dev2." + SUBTREE in cert_text(pchain),
              "Pebble: the order is completed by per-order dns-01",
              (r.returncode, r.stdout, r.stderr))
        check(len(seen) == 1 and ns.txt(name) == [],
              "Pebble: the order's TXT was published, then removed",
              (seen, ns.txt(name)))
except (AssertionError, subprocess.TimeoutExpired, OSError) as e:
    check(False, "the test ran", e)
finally:
    cleanup()

sys.exit(1 if failures else 0)
