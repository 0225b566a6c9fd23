"""Shared by the Python ACME tests: a small RFC 8555 client written from the
RFCs (urllib + python3-cryptography), so that a misunderstanding shared with
the server cannot hide.

Http (one TLS context trusting the appliance's root) sends a request and
returns a Resp whatever the HTTP status; Key is an EC account key with its
JWK, thumbprint (RFC 7638) and raw r||s signature (RFC 7518 3.4); jws()
builds a flattened JWS body; Client holds one account (kid) and signs each
POST with a fresh nonce.  serve_http01() answers http-01 from the dict
Http01.tokens on a loopback port; solve_dns01() answers a dns-01
challenge through a publisher such as bind_fixture.Bind.publish_dns01.
b64(), free_port() and wait() are the small pieces every test needs;
sanitizer_report() reads a devstack's daemon logs.
"""
import base64
import hashlib
import http.server
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import \
    decode_dss_signature

URN = "urn:ietf:params:acme:error:"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(cond, seconds):
    """Poll cond every 0.1 s for at most seconds; whether it became true."""
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def sanitizer_report(stack_dir, logs=("signer.log", "acmed.log")):
    """The daemons' logs in stack_dir (names in logs, joined) when one holds
    a sanitizer report, else ""."""
    text = ""
    for log in logs:
        p = os.path.join(stack_dir, log)
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                text += f.read()
    if "Sanitizer" in text or "runtime error:" in text:
        return text
    return ""


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def problem(self):
        """The problem type without its URN prefix, or None."""
        if self.headers.get("Content-Type") != "application/problem+json":
            return None
        return self.json().get("type", "").replace(URN, "")


class Http:
    """Requests to the front end, trusting only the appliance's root."""

    def __init__(self, root_pem):
        self.ctx = ssl.create_default_context(cafile=root_pem)

    def request(self, method, url, body=None, ctype="application/jose+json",
                timeout=20):
        req = urllib.request.Request(url, data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, context=self.ctx,
                                        timeout=timeout) as r:
                return Resp(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Resp(e.code, e.headers, e.read())


class Key:
    """An EC key of curve (P-256, P-384 or P-521) in priv, with its JWS
    algorithm, JWK and thumbprint."""

    def __init__(self, curve=ec.SECP256R1()):
        self.priv = ec.generate_private_key(curve)
        self.size = {256: 32, 384: 48, 521: 66}[curve.key_size]
        self.alg = {256: "ES256", 384: "ES384", 521: "ES512"}[curve.key_size]
        self.hash = {256: hashes.SHA256(), 384: hashes.SHA384(),
                     521: hashes.SHA512()}[curve.key_size]
        nums = self.priv.public_key().public_numbers()
        crv = {256: "P-256", 384: "P-384", 521: "P-521"}[curve.key_size]
        self.jwk = {"kty": "EC", "crv": crv,
                    "x": b64(nums.x.to_bytes(self.size, "big")),
                    "y": b64(nums.y.to_bytes(self.size, "big"))}
        canon = json.dumps(self.jwk, sort_keys=True, separators=(",", ":"))
        self.thumb = b64(hashlib.sha256(canon.encode()).digest())

    def sign(self, data):
        r, s = decode_dss_signature(self.priv.sign(data, ec.ECDSA(self.hash)))
        return r.to_bytes(self.size, "big") + s.to_bytes(self.size, "big")


def jws(key, url, payload, nonce=None, kid=None, alg=None, extra=None):
    """The flattened JWS of payload (None: POST-as-GET) as a request body.
    No nonce header when nonce is None (keyChange's inner JWS); kid, or
    else the key's JWK; extra adds protected header fields."""
    prot = {"alg": alg or key.alg, "url": url}
    if nonce is not None:
        prot["nonce"] = nonce
    if kid:
        prot["kid"] = kid
    else:
        prot["jwk"] = key.jwk
    if extra:
        prot.update(extra)
    p64 = b64(json.dumps(prot).encode())
    pl64 = "" if payload is None else b64(json.dumps(payload).encode())
    sig = key.sign((p64 + "." + pl64).encode())
    return json.dumps({"protected": p64, "payload": pl64,
                       "signature": b64(sig)}).encode()


class Client:
    """One account: reads the directory, creates the account with key (a
    new P-256 Key by default; the answer is kept in self.account) and
    signs every POST with a fresh nonce and the account's kid."""

    def __init__(self, http, directory_url, key=None):
        self.http = http
        self.dir = http.request("GET", directory_url).json()
        self.key = key or Key()
        self.kid = None
        self.account = self.post(self.dir["newAccount"],
                                 {"termsOfServiceAgreed": True})
        self.kid = self.account.headers["Location"]

    def nonce(self):
        return self.http.request("HEAD",
                                 self.dir["newNonce"]).headers["Replay-Nonce"]

    def post(self, url, payload, timeout=20):
        body = jws(self.key, url, payload, self.nonce(), self.kid)
        return self.http.request("POST", url, body, timeout=timeout)


class Http01(http.server.BaseHTTPRequestHandler):
    """Answers GET /.well-known/acme-challenge/TOKEN with tokens[TOKEN]."""
    tokens = {}

    def do_GET(self):
        tok = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/.well-known/acme-challenge/") and \
                tok in self.tokens:
            body = self.tokens[tok].encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, *a):
        pass


def serve_http01(port=0):
    """An http-01 server on 127.0.0.1:port (0: any), served by a daemon
    thread; the caller shuts it down.  Its port: server_address[1]."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Http01)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def solve_dns01(c, a_url, publish, seconds=30):
    """Answer the dns-01 challenge of the authorization at a_url for client
    c: publish(name, keyauth) puts its TXT in DNS (RFC 8555 8.4), then the
    challenge is posted and the authorization polled for at most seconds.
    Its status once no longer pending (None if it could not be read)."""
    a = c.post(a_url, None).json()
    ch = [x for x in a["challenges"] if x["type"] == "dns-01"][0]
    publish(a["identifier"]["value"], ch["token"] + "." + c.key.thumb)
    c.post(ch["url"], {})
    st = {}

    def done():
        st["s"] = c.post(a_url, None).json()["status"]
        return st["s"] != "pending"
    wait(done, seconds)
    return st.get("s")
