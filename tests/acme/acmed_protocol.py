#!/usr/bin/env python3
"""Protocol tests for iotca-acmed against a running devstack (RFC 8555).

Each refusal test asserts the problem type and HTTP status.  The happy path
drives an order through http-01 (served here on the configured port), the
operator's approval with the real `iotca` command (and a restart of acmed
while the order waits), download, renewalInfo and revocation.

Plain urllib + cryptography (Debian python3-cryptography), written from the
RFCs so that a shared misunderstanding with the server cannot hide.

env: IOTCA_ACME_DIRECTORY, IOTCA_ROOT_PEM, IOTCA_BIN, IOTCA_SRC, STACK (the
devstack DIR), HTTP01_PORT.
"""
import base64
import json
import os
import subprocess
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from acme_test_client import URN, Http, Http01, Key, b64  # noqa: E402
from acme_test_client import jws as signed, serve_http01  # noqa: E402

DIRURL = os.environ["IOTCA_ACME_DIRECTORY"]
ROOT = os.environ["IOTCA_ROOT_PEM"]
BIN = os.environ["IOTCA_BIN"]
SRC = os.environ["IOTCA_SRC"]
STACK = os.environ["STACK"]
HTTP01 = int(os.environ["HTTP01_PORT"])

passed = failed = 0


def ok(what):
    global passed
    passed += 1
    print("ok - " + what, flush=True)


def bad(what):
    global failed
    failed += 1
    print("not ok - " + what, flush=True)


def check(cond, what, info=""):
    if cond:
        ok(what)
    else:
        bad(what + (": " + str(info) if info else ""))


request = Http(ROOT).request
directory = request("GET", DIRURL).json()


def nonce():
    return request("HEAD", directory["newNonce"]).headers["Replay-Nonce"]


def jws(key, url, payload, kid=None, nonce_=None, alg=None, extra=None):
    """nonce_: None takes a fresh nonce, False sends none."""
    nonce_ = None if nonce_ is False else nonce_ or nonce()
    return signed(key, url, payload, nonce_, kid, alg, extra)


def post(key, url, payload, kid=None, **kw):
    return request("POST", url, jws(key, url, payload, kid, **kw))


def expect_problem(r, ptype, status, what):
    got = r.problem()
    check(got == ptype and r.status == status, what,
          "got %s %s: %s" % (r.status, got, r.body[:200]))
    return r


def new_account(key=None, contact=None):
    key = key or Key()
    r = post(key, directory["newAccount"],
             {"termsOfServiceAgreed": True,
              "contact": contact or ["mailto:x@home.arpa"]})
    return key, r


# --- directory, nonces, headers ---------------------------------------------
r = request("GET", DIRURL)
d = r.json()
for k in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange",
          "renewalInfo"):
    check(k in d, "directory has " + k)
check(d["meta"].get("externalAccountRequired") is False and
      d["meta"].get("subdomainAuthAllowed") is True, "directory meta")
check("Replay-Nonce" in r.headers, "directory response has Replay-Nonce")
check('rel="index"' in r.headers.get("Link", ""), "Link rel=index")
r = request("HEAD", directory["newNonce"])
check(r.status == 200 and r.headers.get("Cache-Control") == "no-store",
      "newNonce HEAD 200 no-store", r.status)
r = request("GET", directory["newNonce"])
check(r.status == 204 and "Replay-Nonce" in r.headers, "newNonce GET 204",
      r.status)
n1, n2 = nonce(), nonce()
check(n1 != n2, "nonces differ")
root = request("GET", DIRURL.replace("/directory", "/root.pem"))
check(root.status == 200 and root.body.decode() == open(ROOT).read(),
      "GET /root.pem is the root")

# --- accounts -----------------------------------------------------------------
key, r = new_account()
check(r.status == 201 and "Location" in r.headers, "newAccount 201", r.body)
kid = r.headers["Location"]
check(r.json()["status"] == "valid", "account valid")
_, r = new_account(key)
check(r.status == 200 and r.headers["Location"] == kid,
      "newAccount with the same key: 200 and its Location")
r = post(Key(), directory["newAccount"], {"onlyReturnExisting": True})
expect_problem(r, "accountDoesNotExist", 400,
               "onlyReturnExisting for an unknown key: accountDoesNotExist")
r = post(key, directory["newAccount"], {"onlyReturnExisting": True})
check(r.status == 200 and r.headers["Location"] == kid,
      "onlyReturnExisting finds the account")
expect_problem(new_account(contact=["mailto:a@b@c"])[1], "invalidContact",
               400, "bad mailto: invalidContact")
expect_problem(new_account(contact=["tel:+1555"])[1], "unsupportedContact",
               400, "tel: contact: unsupportedContact")
_, r = new_account(contact=["https://printer-9.home.arpa"])
check(r.status == 201, "https: contact (draft 3.4.2) accepted", r.body)
r = post(key, kid, {"contact": ["mailto:y@home.arpa"]}, kid)
check(r.status == 200 and r.json()["contact"] == ["mailto:y@home.arpa"],
      "account update (contact)", r.body)
r = post(key, kid, None, kid)
check(r.status == 200 and "orders" in r.json(), "account POST-as-GET")

# --- request authentication refusals --------------------------------------------
r = request("POST", directory["newOrder"], b"{not json")
expect_problem(r, "malformed", 400, "bad JWS: malformed")
r = request("POST", directory["newOrder"],
            jws(key, directory["newOrder"], {"identifiers": []}, kid),
            ctype="application/json")
expect_problem(r, "unsupportedMediaType", 415,
               "wrong Content-Type: unsupportedMediaType 415")
r = request("POST", directory["newOrder"],
            jws(key, directory["newAccount"], {}, kid))
expect_problem(r, "unauthorized", 401, "JWS url of another resource: "
               "unauthorized")
n = nonce()
post(key, kid, None, kid, nonce_=n)
r = post(key, kid, None, kid, nonce_=n)
expect_problem(r, "badNonce", 400, "reused nonce: badNonce")
check(r.headers.get("Replay-Nonce") not in (None, n),
      "badNonce carries a fresh Replay-Nonce")
r = post(key, kid, None, kid, nonce_="AAAAAAAAAAAAAAAAAAAAAA")
expect_problem(r, "badNonce", 400, "forged nonce: badNonce")
r = post(key, kid, None, kid, alg="none")
expect_problem(r, "badSignatureAlgorithm", 400, "alg none: "
               "badSignatureAlgorithm")
check("algorithms" in r.json(), "badSignatureAlgorithm lists algorithms")
other = Key()
r = post(other, kid, None, kid)
check(r.status in (400, 401, 403) and r.problem() in ("malformed",
      "unauthorized"), "signature by another key refused", r.body)
unknown = kid.rsplit("/", 1)[0] + "/AAAAAAAAAAAAAAAAAAAAAA"
r = post(key, directory["newOrder"], {"identifiers": []}, unknown)
expect_problem(r, "accountDoesNotExist", 400, "unknown kid: "
               "accountDoesNotExist")
r = request("POST", directory["newOrder"], b"x" * (70 * 1024))
expect_problem(r, "malformed", 413, "oversized body: 413 malformed")
r = post(key, directory["newOrder"], {"identifiers": []})
expect_problem(r, "malformed", 400, "jwk where kid is required: malformed")

# --- orders ---------------------------------------------------------------------
def new_order(key, kid, idents, **extra):
    payload = {"identifiers": [{"type": t, "value": v} for t, v in idents]}
    payload.update(extra)
    return post(key, directory["newOrder"], payload, kid)


r = expect_problem(new_order(key, kid, [("dns", "example.org")]),
                   "rejectedIdentifier", 400, "example.org: rejectedIdentifier")
check(len(r.json().get("detail", "")) > 0, "rejectedIdentifier has a reason",
      r.body)
r = expect_problem(new_order(key, kid, [("ip", "8.8.8.8")]),
                   "rejectedIdentifier", 400, "8.8.8.8: rejectedIdentifier")
r = expect_problem(new_order(key, kid, [("dns", "dev-2.local"),
                                        ("dns", "example.org"),
                                        ("ip", "8.8.8.8")]),
                   "rejectedIdentifier", 400, "mixed order refused")
subs = r.json().get("subproblems", [])
check(len(subs) == 2 and {s["identifier"]["value"] for s in subs} ==
      {"example.org", "8.8.8.8"}, "subproblems name each refused identifier",
      subs)
expect_problem(new_order(key, kid, [("dns", "*.home.arpa")]),
               "rejectedIdentifier", 400, "wildcard: rejectedIdentifier")
expect_problem(new_order(key, kid, [("email", "a@b.c")]),
               "unsupportedIdentifier", 400, "email identifier: "
               "unsupportedIdentifier")

r = new_order(key, kid, [("dns", "dev-2.local"), ("dns", "dev-2.home.arpa"),
                         ("ip", "127.0.0.1")])
check(r.status == 201 and r.json()["status"] == "pending", "newOrder 201",
      r.body)
order_url = r.headers["Location"]
order = r.json()
check(len(order["authorizations"]) == 3, "one authorization per identifier")
r = request("GET", order_url)
check(r.status == 405 and "POST" in r.headers.get("Allow", ""),
      "GET on an order: 405 with Allow", r.status)
r = request("GET", order["authorizations"][0])
check(r.status == 405, "GET on an authorization: 405")


def csr_der(names, ips=(), cn=None, curve=ec.SECP384R1()):
    import ipaddress
    k = ec.generate_private_key(curve)
    sans = [x509.DNSName(n) for n in names] + \
        [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return k, b.sign(k, hashes.SHA384()).public_bytes(serialization.Encoding.DER)


_, der = csr_der(["dev-2.local", "dev-2.home.arpa"], ["127.0.0.1"])
r = post(key, order["finalize"], {"csr": b64(der)}, kid)
expect_problem(r, "orderNotReady", 403, "finalize before authorization: "
               "orderNotReady")

# --- challenges: http-01 served here --------------------------------------------
tokens = Http01.tokens
srv = serve_http01(HTTP01)


def solve(key, kid, authz_url, serve=True):
    a = post(key, authz_url, None, kid).json()
    ch = [c for c in a["challenges"] if c["type"] == "http-01"][0]
    if serve:
        tokens[ch["token"]] = ch["token"] + "." + key.thumb
    r = post(key, ch["url"], {}, kid)
    check(r.status == 200 and 'rel="up"' in r.headers.get("Link", ""),
          "challenge POST {} answered with Link up", r.body)
    for _ in range(100):
        a = post(key, authz_url, None, kid).json()
        if a["status"] != "pending":
            return a
        time.sleep(0.1)
    return a


a = post(key, order["authorizations"][0], None, kid).json()
types = sorted(c["type"] for c in a["challenges"])
check(types == ["dns-01", "http-01", "tls-alpn-01"],
      "dns identifier offers http-01, tls-alpn-01, dns-01", types)
check(all(len(base64.urlsafe_b64decode(c["token"] + "=")) == 32
          for c in a["challenges"]), "tokens are 32 random bytes")
for u in order["authorizations"]:
    a = post(key, u, None, kid).json()
    if a["identifier"]["type"] == "ip":
        check("dns-01" not in [c["type"] for c in a["challenges"]],
              "no dns-01 for an ip identifier")
    a = solve(key, kid, u)
    check(a["status"] == "valid", "authorization %s valid" %
          a["identifier"]["value"], a)
r = post(key, order_url, None, kid)
check(r.json()["status"] == "ready", "order ready when all are valid", r.body)

# finalize: the CSR must name exactly the order's identifiers
_, der = csr_der(["dev-2.local"], ["127.0.0.1"])
expect_problem(post(key, order["finalize"], {"csr": b64(der)}, kid),
               "badCSR", 400, "CSR lacking a name: badCSR")
_, der = csr_der(["dev-2.local", "dev-2.home.arpa", "dev-3.local"],
                 ["127.0.0.1"])
expect_problem(post(key, order["finalize"], {"csr": b64(der)}, kid),
               "badCSR", 400, "CSR with an extra name: badCSR")
certkey, der = csr_der(["dev-2.local", "dev-2.home.arpa"], ["127.0.0.1"],
                       cn="dev-2")
r = post(key, order["finalize"], {"csr": b64(der)}, kid)
check(r.status == 200 and r.json()["status"] in ("processing", "valid"),
      "finalize accepted", r.body)
approve = os.environ.get("AUTO_APPROVE") != "1"
if approve:
    check(r.json()["status"] == "processing" and
          int(r.headers.get("Retry-After", "0")) > 0,
          "first finalize waits for the operator: processing + Retry-After",
          r.headers.get("Retry-After"))
    # Both daemons restart while the order waits: nothing is lost.
    subprocess.run([SRC + "/scripts/devstack", "stop", STACK], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([SRC + "/scripts/devstack", "start", STACK], check=True,
                   stdout=subprocess.DEVNULL)
    time.sleep(3.5)   # past the poll rate limit
    r = post(key, order_url, None, kid)
    check(r.status == 200 and r.json()["status"] == "processing" and
          "Retry-After" in r.headers, "after restarts the order is still "
          "processing", r.body)
    pend = json.loads(subprocess.run([BIN + "/iotca", "--json", "pending"],
                      check=True, capture_output=True).stdout)
    mine = [p for p in pend if p["device_id"] == "dev-2"]
    check(len(mine) == 1 and mine[0]["account"] == kid.rsplit("/", 1)[-1],
          "the signer has one pending request for dev-2 by this account "
          "(its account ID)", pend)
    subprocess.run([BIN + "/iotca", "approve", str(mine[0]["id"])], check=True,
                   stdout=subprocess.DEVNULL)
    time.sleep(3.5)
for _ in range(50):
    r = post(key, order_url, None, kid)
    if r.json()["status"] != "processing":
        break
    time.sleep(0.5)
o = r.json()
check(o["status"] == "valid" and "certificate" in o, "order valid", r.body)

r = post(key, o["certificate"], None, kid)
check(r.status == 200 and r.headers["Content-Type"] ==
      "application/pem-certificate-chain" and
      r.body.count(b"BEGIN CERTIFICATE") == 2, "certificate chain download")
leaf = x509.load_pem_x509_certificate(r.body)
check(leaf.public_key().public_numbers() ==
      certkey.public_key().public_numbers(), "certificate has the CSR's key")
r = request("GET", o["certificate"])
check(r.status == 405, "GET on a certificate: 405")
other_key, r = new_account()
other_kid = r.headers["Location"]
r = post(other_key, o["certificate"], None, other_kid)
expect_problem(r, "unauthorized", 403, "another account cannot read it")
r = post(other_key, order_url, None, other_kid)
expect_problem(r, "unauthorized", 403, "another account cannot read the order")

# renewalInfo (RFC 9773)
aki = leaf.extensions.get_extension_for_class(
    x509.AuthorityKeyIdentifier).value.key_identifier
ser = leaf.serial_number
serbytes = ser.to_bytes((ser.bit_length() + 8) // 8, "big")
certid = b64(aki) + "." + b64(serbytes)
r = request("GET", directory["renewalInfo"] + "/" + certid)
check(r.status == 200 and "Retry-After" in r.headers, "renewalInfo 200 with "
      "Retry-After", r.body)
if r.status == 200:
    w = r.json()["suggestedWindow"]
    nb = leaf.not_valid_before.timestamp()
    na = leaf.not_valid_after.timestamp()
    s = time.mktime(time.strptime(w["start"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    e = time.mktime(time.strptime(w["end"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    check(nb + (na - nb) * 2 / 3 - 2 <= s < e <= na, "window inside the last "
          "third", w)
r = request("GET", directory["renewalInfo"] + "/AAAA.AAAA")
check(r.status == 404, "renewalInfo for an unknown certID: 404")

# replaces
r = new_order(key, kid, [("dns", "dev-2.local")], replaces="AAAA.AAAA")
check(r.status == 400, "replaces naming no certificate: 400", r.body)
r = new_order(other_key, other_kid, [("dns", "dev-2.local")], replaces=certid)
check(r.status == 400, "replaces naming another account's certificate: 400")
r = new_order(key, kid, [("dns", "dev-2.local")], replaces=certid)
check(r.status == 201 and r.json().get("replaces") == certid,
      "replaces stored", r.body)
expect_problem(new_order(key, kid, [("dns", "dev-2.local")], replaces=certid),
               "alreadyReplaced", 409, "second replacement: alreadyReplaced")

# orders list
r = post(key, kid, None, kid)
r = post(key, r.json()["orders"], None, kid)
check(r.status == 200 and order_url in r.json()["orders"], "orders list")

# revocation: other account refused, then by the certificate's own key
certkey_j = Key.__new__(Key)
certkey_j.priv, certkey_j.size, certkey_j.alg = certkey, 48, "ES384"
certkey_j.hash = hashes.SHA384()
nums = certkey.public_key().public_numbers()
certkey_j.jwk = {"kty": "EC", "crv": "P-384", "x": b64(nums.x.to_bytes(48, "big")),
                 "y": b64(nums.y.to_bytes(48, "big"))}
leafder = leaf.public_bytes(serialization.Encoding.DER)
r = post(other_key, directory["revokeCert"], {"certificate": b64(leafder)},
         other_kid)
expect_problem(r, "unauthorized", 403, "another account cannot revoke")
r = post(key, directory["revokeCert"], {"certificate": b64(leafder),
                                        "reason": 6}, kid)
expect_problem(r, "badRevocationReason", 400, "certificateHold: "
               "badRevocationReason")
r = post(certkey_j, directory["revokeCert"], {"certificate": b64(leafder),
                                              "reason": 1})
check(r.status == 200, "revoked by the certificate's key", r.body)
r = post(key, directory["revokeCert"], {"certificate": b64(leafder)}, kid)
expect_problem(r, "alreadyRevoked", 400, "second revocation: alreadyRevoked")
r = request("GET", directory["renewalInfo"] + "/" + certid)
if r.status == 200:
    w = r.json()["suggestedWindow"]
    e = time.mktime(time.strptime(w["end"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    check(e < time.time(), "renewalInfo of a revoked certificate: renew now")

# a failed challenge makes the authorization invalid, and the order too
r = new_order(key, kid, [("dns", "dev-4.local")])
o4 = r.json()
a = solve(key, kid, o4["authorizations"][0], serve=False)
check(a["status"] == "invalid", "failed challenge: authorization invalid", a)
r = post(key, r.headers["Location"], None, kid)
check(r.json()["status"] == "invalid", "its order is invalid")

# validation never goes to a public address, whatever the name resolves to:
# the hosts file says dev-6.local is 8.8.8.8 (nothing is sent there)
r = new_order(key, kid, [("dns", "dev-6.local")])
t0 = time.time()
a = solve(key, kid, r.json()["authorizations"][0])
err = [c.get("error", {}) for c in a["challenges"] if c["type"] == "http-01"][0]
check(a["status"] == "invalid" and err.get("type") ==
      "urn:ietf:params:acme:error:unauthorized" and "8.8.8.8" in
      err.get("detail", ""), "validation aimed at a public address: "
      "unauthorized, naming it", a)
check(time.time() - t0 < 5, "refused before any connection (fast)")

# denial by the operator (only without auto-approve)
if approve:
    r = new_order(key, kid, [("dns", "dev-5.local")])
    o5, o5url = r.json(), r.headers["Location"]
    solve(key, kid, o5["authorizations"][0])
    _, der = csr_der(["dev-5.local"])
    r = post(key, o5["finalize"], {"csr": b64(der)}, kid)
    check(r.json().get("status") == "processing", "dev-5 waits", r.body)
    pend = json.loads(subprocess.run([BIN + "/iotca", "--json", "pending"],
                      check=True, capture_output=True).stdout)
    mine = [p for p in pend if p["device_id"] == "dev-5"]
    subprocess.run([BIN + "/iotca", "deny", str(mine[0]["id"]), "--reason",
                    "not our camera"], check=True, stdout=subprocess.DEVNULL)
    time.sleep(3.5)
    r = post(key, o5url, None, kid)
    o = r.json()
    check(o["status"] == "invalid" and o.get("error", {}).get("type") ==
          URN + "unauthorized" and "not our camera" in o["error"]["detail"],
          "denied: order invalid, unauthorized with the operator's reason", o)
    check(o.get("error", {}).get("status") == 403,
          "denied: the order's problem carries its HTTP status (403)",
          o.get("error"))

# keyChange
newkey = Key(ec.SECP384R1())
inner = jws(newkey, directory["keyChange"], {"account": kid, "oldKey": key.jwk},
            nonce_=False)
r = post(key, directory["keyChange"], json.loads(inner), kid)
check(r.status == 200, "keyChange 200", r.body)
r = post(newkey, kid, None, kid)
check(r.status == 200, "the new key signs for the account", r.body)
r = post(key, kid, None, kid)
check(r.status >= 400, "the old key no longer does")
# The account keeps its approval across the key change: a renewal for
# dev-2 signed with the new key is issued without the operator.
r = new_order(newkey, kid, [("dns", "dev-2.local")])
check(r.status == 201, "renewal order with the new key", r.body)
ren_url, ren = r.headers["Location"], r.json()
a = solve(newkey, kid, ren["authorizations"][0])
check(a["status"] == "valid", "renewal authorization valid", a)
_, der = csr_der(["dev-2.local"], cn="dev-2")
r = post(newkey, ren["finalize"], {"csr": b64(der)}, kid)
check(r.status == 200 and r.json()["status"] == "valid",
      "after keyChange a renewal needs no operator: valid at once", r.body)
r = post(newkey, r.json().get("certificate", ren_url), None, kid)
check(r.status == 200 and r.body.count(b"BEGIN CERTIFICATE") == 2,
      "renewed certificate downloaded", r.status)
inner = jws(other_key, directory["keyChange"], {"account": kid,
            "oldKey": newkey.jwk}, nonce_=False)
r = post(newkey, directory["keyChange"], json.loads(inner), kid)
expect_problem(r, "conflict", 409, "keyChange to another account's key: 409")

# deactivation
r = post(other_key, other_kid, {"status": "deactivated"}, other_kid)
check(r.status == 200 and r.json()["status"] == "deactivated",
      "account deactivated")
r = post(other_key, other_kid, None, other_kid)
expect_problem(r, "unauthorized", 401, "a deactivated account is refused")

srv.shutdown()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
