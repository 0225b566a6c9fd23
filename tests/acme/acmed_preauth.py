#!/usr/bin/env python3
"""iotca-acmed pre-authorization: newAuthz (RFC 8555 7.4.1), subdomain
authorizations (RFC 9444) and the reuse of valid authorizations.

A small BIND on a loopback port serves the zone home.arpa; the test puts
each dns-01 TXT record there with nsupdate (TSIG), and the front end's
[acme] dns_server points at it.  The stack's domains are home.arpa and
est.home.arpa, so device names under est.home.arpa pass policy.

Asserted: an acme.db of before (authzs.order_id NOT NULL, no subdomain
column) is upgraded at start with its rows kept; the directory offers newAuthz and meta.subdomainAuthAllowed; a
newAuthz with subdomainAuthAllowed for est.home.arpa echoes it and offers
dns-01 only; once validated, newOrder for dev1.est.home.arpa (with
ancestorDomain) and dev2.est.home.arpa (without) answer 201 "ready" with
that authorization; xest.home.arpa is not covered, and an ancestorDomain
that is only a string suffix is refused; a second order for a name
validated by dns-01 reuses its authorization; another account's, a
deactivated, an expired and a soon-expiring authorization are not reused;
refusals of .local subdomains, ip identifiers and names outside the
configured domains; the ready order is finalized and waits for the
operator as any order does, then becomes valid.

env: IOTCA_BIN, IOTCA_SRC.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from acme_test_client import (Client, Http, b64,  # noqa: E402
                              sanitizer_report, solve_dns01, wait)
from bind_fixture import Bind  # noqa: E402
from iotca_stack import BIN, DEVSTACK, devstack_env, make_csr  # noqa: E402

failures = 0


def check(cond, what, detail=""):
    global failures
    if cond:
        print("ok   " + what)
    else:
        failures += 1
        print("FAIL " + what + (": %s" % (detail,) if detail != "" else ""))


# acme.db as it was before pre-authorization, with one row of each (live
# until 2100: acmed prunes rows expired long ago at start).
OLD_SCHEMA = """
CREATE TABLE accounts (id TEXT PRIMARY KEY, thumbprint TEXT NOT NULL UNIQUE,
 jwk TEXT NOT NULL, status TEXT NOT NULL, contacts TEXT NOT NULL,
 created INTEGER NOT NULL);
CREATE TABLE orders (id TEXT PRIMARY KEY, account TEXT NOT NULL
 REFERENCES accounts(id), status TEXT NOT NULL, identifiers TEXT NOT NULL,
 created INTEGER NOT NULL, expires INTEGER NOT NULL, error TEXT, csr TEXT,
 cert_id TEXT NOT NULL DEFAULT '', replaces TEXT,
 request TEXT NOT NULL DEFAULT '', asked_at INTEGER NOT NULL DEFAULT 0,
 retry_after INTEGER NOT NULL DEFAULT 0);
CREATE INDEX orders_account ON orders(account, created);
CREATE TABLE authzs (id TEXT PRIMARY KEY, order_id TEXT NOT NULL
 REFERENCES orders(id), account TEXT NOT NULL, type TEXT NOT NULL,
 value TEXT NOT NULL, status TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX authzs_order ON authzs(order_id);
CREATE TABLE challenges (id TEXT PRIMARY KEY, authz_id TEXT NOT NULL
 REFERENCES authzs(id), type TEXT NOT NULL, token TEXT NOT NULL,
 status TEXT NOT NULL, validated INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE INDEX challenges_authz ON challenges(authz_id);
CREATE TABLE certs (id TEXT PRIMARY KEY, serial TEXT NOT NULL UNIQUE,
 account TEXT NOT NULL REFERENCES accounts(id), issued_to TEXT NOT NULL,
 order_id TEXT NOT NULL, pem TEXT NOT NULL, chain TEXT NOT NULL,
 ari_id TEXT NOT NULL UNIQUE, not_before INTEGER NOT NULL,
 not_after INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
INSERT INTO accounts VALUES ('oldacct', 'oldthumb', '{}', 'valid', '[]', 1);
INSERT INTO orders (id, account, status, identifiers, created, expires)
 VALUES ('oldorder', 'oldacct', 'pending',
 '[{"type":"dns","value":"old.home.arpa"}]', 1, 4102444800);
INSERT INTO authzs VALUES ('oldauthz', 'oldorder', 'oldacct', 'dns',
 'old.home.arpa', 'pending', 4102444800);
INSERT INTO challenges (id, authz_id, type, token, status) VALUES
 ('oldchall', 'oldauthz', 'dns-01', 'tok', 'pending');
"""

tmp = tempfile.mkdtemp(prefix="iotca-preauth.")
stack = os.path.join(tmp, "stack")
ns = None


def new_order(c, value, ancestor=None):
    ident = {"type": "dns", "value": value}
    if ancestor is not None:
        ident["ancestorDomain"] = ancestor
    return c.post(c.dir["newOrder"], {"identifiers": [ident]})


def new_authz(c, value, sub=None, typ="dns"):
    ident = {"type": typ, "value": value}
    if sub is not None:
        ident["subdomainAuthAllowed"] = sub
    return c.post(c.dir["newAuthz"], {"identifier": ident})


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
                        "--domain", "home.arpa,est.home.arpa",
                        "--acme", "dns_server=" + ns.server],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("devstack start: " + r.stderr)
    # An acme.db of before pre-authorization (authzs.order_id NOT NULL, no
    # subdomain column) with one authorization: upgraded in place at start.
    subprocess.run([DEVSTACK, "stop", stack], check=True, capture_output=True)
    ACMEDB = os.path.join(stack, "acme.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(ACMEDB + suffix):
            os.unlink(ACMEDB + suffix)
    db = sqlite3.connect(ACMEDB)
    db.executescript(OLD_SCHEMA)
    db.close()
    os.chmod(ACMEDB, 0o600)
    r = subprocess.run([DEVSTACK, "start", stack], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise AssertionError("devstack start (old acme.db): " + r.stderr)
    db = sqlite3.connect(ACMEDB, timeout=5)
    cols = {row[1]: row for row in db.execute("PRAGMA table_info(authzs)")}
    old = db.execute("SELECT order_id, value, subdomain FROM authzs WHERE"
                     " id = 'oldauthz'").fetchall()
    idx = [row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND"
        " tbl_name = 'authzs'")]
    db.close()
    check("subdomain" in cols and cols["order_id"][3] == 0 and
          old == [("oldorder", "old.home.arpa", 0)] and
          "authzs_reuse" in idx and "authzs_order" in idx,
          "an acme.db of before is upgraded, its authorization kept",
          (cols, old, idx))

    env = devstack_env(stack)
    HTTP = Http(env["IOTCA_ROOT_PEM"])
    DIRURL = env["IOTCA_ACME_DIRECTORY"]

    d = HTTP.request("GET", DIRURL).json()
    check(d.get("newAuthz", "").endswith("/acme/new-authz"),
          "the directory has newAuthz", d)
    check(d.get("meta", {}).get("subdomainAuthAllowed") is True,
          "meta.subdomainAuthAllowed is true", d.get("meta"))

    a = Client(HTTP, DIRURL)
    b = Client(HTTP, DIRURL)

    # Refusals, one per rule.
    r = new_authz(a, "lab.local", True)
    check(r.status == 400 and r.problem() == "rejectedIdentifier" and
          ".local" in r.json().get("detail", ""),
          "newAuthz: a .local subdomain pre-authorization is refused",
          (r.status, r.body))
    r = new_authz(a, "127.0.0.1", typ="ip")
    check(r.status == 400 and r.problem() == "rejectedIdentifier",
          "newAuthz: an ip identifier is refused", (r.status, r.body))
    r = new_authz(a, "corp.example", True)
    check(r.status == 400 and r.problem() == "rejectedIdentifier",
          "newAuthz: a subtree outside the configured domains is refused",
          (r.status, r.body))
    r = new_authz(a, "est.home.arpa", "yes")
    check(r.status == 400 and r.problem() == "malformed",
          "newAuthz: a non-boolean subdomainAuthAllowed is refused",
          (r.status, r.body))

    # The subtree's pre-authorization.
    r = new_authz(a, "est.home.arpa", True)
    az = r.json() if r.status == 201 else {}
    AZ = r.headers.get("Location", "")
    check(r.status == 201 and "/acme/authz/" in AZ,
          "newAuthz: 201 with a Location", (r.status, r.body))
    check(az.get("subdomainAuthAllowed") is True and
          az.get("identifier") == {"type": "dns", "value": "est.home.arpa"}
          and az.get("status") == "pending",
          "newAuthz: the authorization echoes subdomainAuthAllowed", az)
    check([c["type"] for c in az.get("challenges", [])] == ["dns-01"],
          "newAuthz: a subdomain authorization offers dns-01 only", az)

    r = new_order(a, "dev0.est.home.arpa", "est.home.arpa")
    check(r.status == 201 and r.json()["status"] == "pending",
          "newOrder: a pending ancestor authorization is not used",
          (r.status, r.body))

    check(solve_dns01(a, AZ, ns.publish_dns01) == "valid",
          "the subtree authorization is validated by dns-01")

    r = new_order(a, "dev1.est.home.arpa", "est.home.arpa")
    o = r.json()
    check(r.status == 201 and o["status"] == "ready" and
          o["authorizations"] == [AZ],
          "newOrder with ancestorDomain: 201 ready with the ancestor's "
          "authorization", (r.status, r.body))
    READY = r.headers.get("Location")
    r = new_order(a, "dev2.est.home.arpa")
    check(r.status == 201 and r.json()["status"] == "ready" and
          r.json()["authorizations"] == [AZ],
          "newOrder without ancestorDomain: ready through the ancestor",
          (r.status, r.body))
    r = new_order(a, "xest.home.arpa")
    check(r.status == 201 and r.json()["status"] == "pending" and
          AZ not in r.json()["authorizations"],
          "newOrder: xest.home.arpa is not under est.home.arpa",
          (r.status, r.body))
    r = new_order(a, "xest.home.arpa", "est.home.arpa")
    check(r.status == 400 and r.problem() == "malformed",
          "newOrder: an ancestorDomain that is only a string suffix is "
          "refused", (r.status, r.body))
    r = new_order(b, "dev1.est.home.arpa", "est.home.arpa")
    check(r.status == 201 and r.json()["status"] == "pending" and
          AZ not in r.json()["authorizations"],
          "newOrder: another account's authorization is not used",
          (r.status, r.body))

    # Reuse of an exact name's authorization.
    r = new_order(a, "door.home.arpa")
    o = r.json()
    check(r.status == 201 and o["status"] == "pending",
          "newOrder door.home.arpa: pending the first time", (r.status,
                                                               r.body))
    DOOR = o["authorizations"][0]
    check(solve_dns01(a, DOOR, ns.publish_dns01) == "valid",
          "door.home.arpa: dns-01 valid")
    r = new_order(a, "door.home.arpa")
    check(r.status == 201 and r.json()["status"] == "ready" and
          r.json()["authorizations"] == [DOOR],
          "a second newOrder for the same name reuses its valid "
          "authorization", (r.status, r.body))
    r = a.post(DOOR, {"status": "deactivated"})
    check(r.status == 200 and r.json()["status"] == "deactivated",
          "door.home.arpa's authorization deactivated", (r.status, r.body))
    r = new_order(a, "door.home.arpa")
    check(r.status == 201 and r.json()["status"] == "pending" and
          DOOR not in r.json()["authorizations"],
          "a deactivated authorization is not reused", (r.status, r.body))

    # An authorization that ends before the order would: not reused; one
    # past its expiry: not reused either.
    az_id = AZ.rsplit("/", 1)[1]
    db = sqlite3.connect(ACMEDB, timeout=5)
    db.execute("UPDATE authzs SET expires = ? WHERE id = ?",
               (int(time.time()) + 60, az_id))
    db.commit()
    r = new_order(a, "dev3.est.home.arpa", "est.home.arpa")
    check(r.status == 201 and r.json()["status"] == "pending",
          "an authorization expiring before the order is not reused",
          (r.status, r.body))
    db.execute("UPDATE authzs SET expires = ? WHERE id = ?",
               (int(time.time()) - 60, az_id))
    db.commit()
    db.close()
    r = new_order(a, "dev4.est.home.arpa", "est.home.arpa")
    check(r.status == 201 and r.json()["status"] == "pending",
          "an expired authorization is not reused", (r.status, r.body))

    # The ready order goes to the signer as any order does.
    csr = make_csr(tmp, "dev1", ["DNS:dev1.est.home.arpa"])
    der = subprocess.run(["openssl", "req", "-outform", "DER"], input=csr
                         .encode(), capture_output=True, check=True).stdout
    o = a.post(READY, None).json()
    r = a.post(o["finalize"], {"csr": b64(der)})
    check(r.status == 200 and r.json()["status"] == "processing",
          "finalize of the ready order: processing (operator approval)",
          (r.status, r.body))
    pend = subprocess.run([os.path.join(BIN, "iotca"), "--socket",
                           os.path.join(stack, "admin.sock"), "pending"],
                          capture_output=True, text=True).stdout
    check("dev1" in pend, "the device waits in iotca pending", pend)
    subprocess.run([os.path.join(BIN, "iotca"), "--socket",
                    os.path.join(stack, "admin.sock"), "approve", "--all"],
                   capture_output=True, check=True)
    st = {}

    def valid():
        st["o"] = a.post(READY, None).json()
        return st["o"]["status"] != "processing"
    wait(valid, 30)
    check(st.get("o", {}).get("status") == "valid" and
          "certificate" in st.get("o", {}),
          "after approval the order is valid", st.get("o"))
except AssertionError as e:
    check(False, "the test ran", e)
finally:
    cleanup()

sys.exit(1 if failures else 0)
