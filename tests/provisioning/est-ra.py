#!/usr/bin/env python3
"""iotca-est-ra driven by clients nobody here wrote: curl and openssl.

    est-ra.py config     iotca-est-ra check: one refusal per rule
    est-ra.py refusals   the EST resources and every refusal, with a real
                         appliance (devstack) behind and no DNS server, so
                         pre-authorization fails and is reported as 503
    est-ra.py enrol      the happy path with BIND on loopback: 202 while the
                         operator has not approved, 200 after, the cache,
                         simplereenroll with the certificate; a TSIG key for
                         another zone refused by BIND and reported

The RA's own TLS certificate is issued by the stack's signer (iotca issue on
the admin socket); the stack's root is its ca_file.  Each case prints
"ok   ..." or "FAIL ...: detail"; the exit status is the count of failures
(77: a tool is missing).

env: IOTCA_BIN, IOTCA_SRC.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from iotca_stack import BIN, DEVSTACK, devstack_env  # noqa: E402

RA = os.path.join(BIN, "iotca-est-ra")
PASSWORD = "correct-horse-7"
failures = 0


def check(cond, what, detail=""):
    global failures
    if cond:
        print("ok   " + what, flush=True)
    else:
        failures += 1
        print("FAIL " + what + (": %s" % (detail,) if detail != "" else ""),
              flush=True)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


# ---- keys, CSRs, certificates ------------------------------------------------

def new_key(path, kind="ec384"):
    alg = {"ec384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
           "ec256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
           "rsa2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
           "rsa3072": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"]}
    run(["openssl", "genpkey"] + alg[kind] + ["-out", path], check=True)
    os.chmod(path, 0o600)
    return path


def csr_der(key, subj, sans=None, digest="sha384", eku=None):
    args = ["openssl", "req", "-new", "-key", key, "-subj", subj,
            "-outform", "DER", "-" + digest]
    if sans:
        args += ["-addext", "subjectAltName=" + ",".join(sans)]
    if eku:
        args += ["-addext", "extendedKeyUsage=" + eku]
    return run(args, check=True).stdout


def b64_lines(der):
    return base64.encodebytes(der)          # 76-character lines


class Stack:
    """A devstack whose domains are home.arpa and est.home.arpa."""

    def __init__(self, tmp, extra=()):
        self.dir = os.path.join(tmp, "stack")
        self.root = os.path.join(self.dir, "root.pem")
        self.admin = os.path.join(self.dir, "admin.sock")
        r = run([DEVSTACK, "start", self.dir, "--key", "file", "--domain",
                 "home.arpa,est.home.arpa"] + list(extra), text=True)
        if r.returncode != 0:
            raise AssertionError("devstack start: " + r.stderr)
        self.directory = devstack_env(self.dir)["IOTCA_ACME_DIRECTORY"]

    def iotca(self, *args):
        return run([os.path.join(BIN, "iotca"), "--socket", self.admin] +
                   list(args), text=True)

    def issue(self, tmp, name, cn=None):
        """A key and a certificate for name from the signer (admin socket)."""
        key = new_key(os.path.join(tmp, name + ".key"))
        csr = os.path.join(tmp, name + ".csr")
        with open(csr, "wb") as f:
            f.write(run(["openssl", "req", "-new", "-key", key, "-subj",
                         "/CN=" + (cn or name.split(".")[0]), "-addext",
                         "subjectAltName=DNS:" + name + ",IP:127.0.0.1"],
                        check=True).stdout)
        pem = os.path.join(tmp, name + ".pem")
        r = self.iotca("issue", "--csr", csr, "--out", pem)
        if r.returncode != 0:
            raise AssertionError("iotca issue: " + r.stderr)
        return pem, key

    def stop(self):
        run([DEVSTACK, "stop", self.dir])


class Ra:
    """iotca-est-ra on a free loopback port with a config of our making."""

    def __init__(self, tmp, stack, name="ra", dns_server="127.0.0.1:9",
                 tsig=None, extra_est="", extra=""):
        self.tmp = tmp
        self.port = free_port()
        self.host = "estra.home.arpa"
        self.cert, self.key = stack.issue(tmp, self.host)
        self.state = os.path.join(tmp, name + "-state")
        self.log_path = os.path.join(tmp, name + ".log")
        passwd = os.path.join(tmp, name + ".passwd")
        h = run(["openssl", "passwd", "-6", PASSWORD], text=True,
                check=True).stdout.strip()
        write(passwd, "# EST users\nalice:%s\n" % h, 0o600)
        if tsig is None:
            tsig = os.path.join(tmp, name + ".tsig")
            write(tsig, 'key "k" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n'
                  % base64.b64encode(os.urandom(32)).decode(), 0o600)
        self.conf = os.path.join(tmp, name + ".conf")
        write(self.conf, """[est]
listen = 127.0.0.1:%(port)d
tls_cert = %(cert)s
tls_key = %(key)s
state_dir = %(state)s
credentials = %(passwd)s
retry_after = 2
enrol_wait = 2
workers = 2
max_body = 8192
%(extra_est)s
[acme]
directory = %(dir)s
ca_file = %(root)s
subtree = est.home.arpa

[dns]
server = %(dns)s
zone = home.arpa
tsig_key = %(tsig)s

[label cams]
subtree = cams.est.home.arpa
require_client_cert = true
%(extra)s""" % {"port": self.port, "cert": self.cert, "key": self.key,
                "state": self.state, "passwd": passwd, "dir": stack.directory,
                "root": stack.root, "dns": dns_server, "tsig": tsig,
                "extra_est": extra_est, "extra": extra})
        self.root = stack.root
        self.proc = None
        self.start()

    def start(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([RA, "-f", "-c", self.conf], stdout=log,
                                     stderr=log, start_new_session=True)
        log.close()
        end = time.time() + 20
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError("iotca-est-ra exited: " + self.log())
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("iotca-est-ra does not listen")

    def stop(self):
        """SIGTERM; the exit status (None if it had to be killed)."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        return rc

    def finish(self):
        """Stop it and check that it ended cleanly: exit 0 and no sanitizer
        report (leaks are reported at exit)."""
        rc = self.stop()
        log = self.log()
        check(rc == 0 and "Sanitizer" not in log and
              "runtime error" not in log,
              "%s: stopped by SIGTERM with status 0, no sanitizer report"
              % os.path.basename(self.log_path), "rc %s: %s" % (rc, log[-3000:]))

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def url(self, path):
        return "https://%s:%d/.well-known/est/%s" % (self.host, self.port, path)

    def curl(self, path, method="GET", body=None, ctype="application/pkcs10",
             user=None, cert=None, key=None, headers=(), tls=()):
        """(status, headers as a dict of lower-case names, body bytes)."""
        hdr = os.path.join(self.tmp, "curl.headers")
        out = os.path.join(self.tmp, "curl.body")
        args = ["curl", "-sS", "--max-time", "60", "--cacert", self.root,
                "--resolve", "%s:%d:127.0.0.1" % (self.host, self.port),
                "-D", hdr, "-o", out, "-w", "%{http_code}", "-X", method]
        if body is not None:
            bodyfile = os.path.join(self.tmp, "curl.req")
            with open(bodyfile, "wb") as f:
                f.write(body)
            args += ["--data-binary", "@" + bodyfile]
            if ctype is not None:
                args += ["-H", "Content-Type: " + ctype]
        if user is not None:
            args += ["-u", user]
        if cert is not None:
            args += ["--cert", cert, "--key", key]
        for h in headers:
            args += ["-H", h]
        r = run(args + list(tls) + [self.url(path)], text=True)
        if r.returncode != 0:
            return 0, {}, r.stderr.encode()
        heads = {}
        with open(hdr) as f:
            for line in f:
                if ":" in line:
                    k, _, v = line.partition(":")
                    heads[k.strip().lower()] = v.strip()
        with open(out, "rb") as f:
            data = f.read()
        return int(r.stdout), heads, data

    def enrol(self, der, path="simpleenroll", **kw):
        kw.setdefault("user", "alice:" + PASSWORD)
        return self.curl(path, "POST", b64_lines(der), **kw)


def pkcs7_certs(body, tmp):
    """The certificates of a base64 certs-only body, as PEM text."""
    der = base64.b64decode(body)
    p = os.path.join(tmp, "p7.der")
    with open(p, "wb") as f:
        f.write(der)
    return run(["openssl", "pkcs7", "-inform", "DER", "-in", p,
                "-print_certs"], text=True).stdout


def subject_of(pem_file):
    """The subject of a certificate as openssl req -subj takes it."""
    out = run(["openssl", "x509", "-in", pem_file, "-noout", "-subject",
               "-nameopt", "compat"], text=True, check=True).stdout
    return out.strip().split("=", 1)[1]        # "/CN=..." in this format


def first_cert_text(pem, tmp, *opts):
    p = os.path.join(tmp, "first.pem")
    with open(p, "w") as f:
        f.write(pem)
    return run(["openssl", "x509", "-in", p, "-noout"] + list(opts),
               text=True).stdout


# ---- the cases -----------------------------------------------------------------

def config_cases(tmp):
    """iotca-est-ra check: OK for a good file, one refusal per rule."""
    good = """[est]
listen = 127.0.0.1:8444
listen = [::1]:8444
tls_cert = /x/tls.pem
tls_key = /x/tls.key
state_dir = /x/state
credentials = /x/passwd
[acme]
directory = https://127.0.0.1:8443/directory
ca_file = /x/root.pem
subtree = est.home.arpa
[dns]
server = 127.0.0.1:53
zone = home.arpa
tsig_key = /x/tsig
[label cams]
subtree = cams.est.home.arpa
require_client_cert = true
"""
    path = os.path.join(tmp, "c.conf")

    def check_conf(text, want, what):
        write(path, text)
        r = run([RA, "-c", path, "check"], text=True)
        if want is None:
            check(r.returncode == 0 and r.stdout.strip() == "OK", what,
                  r.stdout + r.stderr)
        else:
            check(r.returncode == 1 and want in r.stderr, what,
                  "rc %d: %s" % (r.returncode, r.stderr.strip()))

    check_conf(good, None, "config: a good file is OK")
    cases = [
        ("listen = 127.0.0.1:8444\n", "listen = 127.0.0.1:8444\nbogus = 1\n",
         "c.conf:3: unknown key bogus in [est]", "unknown key"),
        ("[dns]", "[dnz]", "c.conf:13: unknown section [dnz]", "unknown section"),
        ("listen = [::1]:8444", "listen = localhost:8444",
         "localhost is not an IPv4 address", "listen not an address"),
        ("listen = [::1]:8444", "listen = [::1]:99999",
         "the port must be 1 to 65535", "listen port out of range"),
        ("subtree = cams.est.home.arpa", "subtree = cams.home.arpa",
         "[label cams] subtree cams.home.arpa is not within [acme] subtree "
         "est.home.arpa", "label subtree outside"),
        ("subtree = est.home.arpa", "subtree = est.local",
         ".local cannot be delegated", ".local subtree"),
        ("zone = home.arpa", "zone = example.org",
         "[acme] subtree est.home.arpa is not within [dns] zone example.org",
         "subtree outside the zone"),
        ("tls_key = /x/tls.key\n", "", "[est] tls_key is required",
         "missing tls_key"),
        ("tsig_key = /x/tsig\n", "", "[dns] tsig_key is required",
         "missing tsig_key"),
        ("state_dir = /x/state", "state_dir = x/state",
         "state_dir must be an absolute path", "relative path"),
        ("require_client_cert = true", "require_client_cert = maybe",
         "require_client_cert must be true or false", "bad boolean"),
        ("credentials = /x/passwd", "credentials = /x/passwd\nworkers = 0",
         "workers must be a number from 1 to 64", "workers out of range"),
        ("credentials = /x/passwd", "credentials = /x/passwd\nmax_body = 1e9",
         "max_body must be a number", "max_body not a number"),
        ("directory = https://", "directory = http://",
         "directory must be an https:// URL", "directory not https"),
        ("[label cams]", "[label simpleenroll]",
         "not the name of an EST operation", "label named like an operation"),
        ("credentials = /x/passwd\n", "",
         "neither [est] credentials nor client_ca", "no way to authenticate"),
    ]
    for old, new, want, what in cases:
        assert old in good, old
        check_conf(good.replace(old, new, 1), want, "config refused: " + what)
    r = run([RA, "-c", os.path.join(tmp, "absent.conf"), "check"], text=True)
    check(r.returncode == 1 and "cannot open" in r.stderr,
          "config refused: a missing file", r.stderr)
    r = run([RA, "-c", path, "nonsense"], text=True)
    check(r.returncode == 2 and "usage" in r.stderr, "usage: exit 2", r.stderr)


def refusal_cases(tmp):
    stack = Stack(tmp)
    ra = None
    try:
        ra = Ra(tmp, stack)
        resources(ra, tmp)
        refusals(ra, stack, tmp)
        log = ra.log()
        check("enrol user=alice csr=" in log and "-> 400" in log,
              "log: one line per enrolment naming who and the status")
        check(PASSWORD not in log and "BEGIN" not in log,
              "log: no password, no key, no PEM")
        ra.finish()
        ra = None
    finally:
        if ra is not None:
            ra.stop()
        stack.stop()


def resources(ra, tmp):
    st, h, body = ra.curl("cacerts")
    certs = pkcs7_certs(body, tmp)
    root_subject = run(["openssl", "x509", "-in", ra.root, "-noout",
                        "-subject"], text=True).stdout.strip()
    check(st == 200 and h.get("content-type", "").startswith(
        "application/pkcs7-mime") and root_subject in certs,
        "cacerts: 200 certs-only, openssl pkcs7 -print_certs shows the root",
        "%d %s %s" % (st, h.get("content-type"), certs[:200]))
    for tls, what in ((("--tlsv1.2", "--tls-max", "1.2"), "TLS 1.2"),
                      (("--tlsv1.3",), "TLS 1.3")):
        st, h, body = ra.curl("cacerts", tls=tls)
        check(st == 200, "cacerts over " + what, "%d %r" % (st, body))
    st, h, body = ra.curl("cacerts", tls=("--tlsv1.1", "--tls-max", "1.1"))
    check(st == 0, "no TLS 1.1 connection is made", "%d %r" % (st, body))
    st, h, body = ra.curl("cams/cacerts")
    check(st == 200 and root_subject in pkcs7_certs(body, tmp),
          "cacerts under a label")
    st, h, body = ra.curl("csrattrs")
    p = os.path.join(tmp, "attrs.der")
    with open(p, "wb") as f:
        f.write(base64.b64decode(body))
    parsed = run(["openssl", "asn1parse", "-inform", "DER", "-in", p],
                 text=True).stdout
    check(st == 200 and h.get("content-type") == "application/csrattrs" and
          all(w in parsed for w in ("ecdsa-with-SHA384", "id-ecPublicKey",
                                    "secp384r1", "Extension Request",
                                    "X509v3 Subject Alternative Name")) and
          "est.home.arpa".encode().hex().upper() in parsed,
          "csrattrs: asn1parse shows P-384, SHA-384 and the SAN hint",
          "%d %s" % (st, parsed))
    st, h, body = ra.curl("cams/csrattrs")
    with open(p, "wb") as f:
        f.write(base64.b64decode(body))
    parsed = run(["openssl", "asn1parse", "-inform", "DER", "-in", p],
                 text=True).stdout
    check(st == 200 and "cams.est.home.arpa".encode().hex().upper() in parsed,
          "csrattrs under a label hints the label's subtree")
    for op in ("serverkeygen", "fullcmc"):
        st, h, body = ra.curl(op, "POST", b"x")
        check(st == 501 and b"not offered" in body and
              h.get("content-type", "").startswith("text/plain"),
              "%s: 501 with a reason" % op, "%d %s" % (st, body))
    st, h, body = ra.curl("nonsense")
    check(st == 404, "an unknown operation: 404", st)
    st, h, body = ra.curl("nolabel/cacerts")
    check(st == 404 and b"no such label" in body, "an unknown label: 404",
          "%d %s" % (st, body))
    st, h, body = ra.curl("cacerts", "POST", b"x")
    check(st == 405 and h.get("allow") == "GET, HEAD", "POST cacerts: 405",
          "%d %s" % (st, h))
    st, h, body = ra.curl("simpleenroll", "GET")
    check(st == 405 and h.get("allow") == "POST", "GET simpleenroll: 405",
          "%d %s" % (st, h))


def refusals(ra, stack, tmp):
    key = new_key(os.path.join(tmp, "dev1.key"))
    good = csr_der(key, "/CN=dev1", ["DNS:dev1.est.home.arpa"])

    def expect(resp, status, text, what):
        st, h, body = resp
        ok = st == status and text.encode() in body
        if status == 401:
            ok = ok and h.get("www-authenticate", "").startswith("Basic")
        check(ok, "%s: %d %s" % (what, status, text), "%d %r" % (st, body))
        return h

    # Authentication.
    expect(ra.enrol(good, user=None), 401, "authentication required",
           "no authentication")
    expect(ra.enrol(good, user="alice:wrong"), 401,
           "bad user name or password", "bad password")
    expect(ra.enrol(good, user="mallory:" + PASSWORD), 401,
           "bad user name or password", "unknown user")
    expect(ra.enrol(good, user=None, headers=("Authorization: Bearer x",)),
           401, "only HTTP Basic", "another authentication scheme")
    log = ra.log()
    check("user=alice: wrong password" in log and
          "user=mallory: unknown user" in log,
          "the log tells a bad password from an unknown user")

    # The body.
    expect(ra.enrol(good, ctype="application/octet-stream"), 415,
           "must be application/pkcs10", "wrong content type")
    expect(ra.enrol(good, ctype=None), 415, "must be application/pkcs10",
           "no content type")
    st, h, body = ra.curl("simpleenroll", "POST", b"MIIB!!not base64**",
                          user="alice:" + PASSWORD)
    check(st == 400 and b"not base64" in body, "garbage base64: 400",
          "%d %r" % (st, body))
    expect(ra.enrol(good[:len(good) // 2]), 400, "truncated or garbled",
           "truncated PKCS#10")
    expect(ra.enrol(good + b"\0\0"), 400, "bytes follow the PKCS#10",
           "trailing bytes")
    bad = bytearray(good)
    bad[-5] ^= 0x01                 # inside the signature's integers
    expect(ra.enrol(bytes(bad)), 400, "signature does not verify",
           "bad CSR signature (one byte changed)")
    st, h, body = ra.curl("simpleenroll", "POST", b"A" * 9000,
                          user="alice:" + PASSWORD)
    check(st == 413 and b"larger than 8192" in body, "oversized body: 413",
          "%d %r" % (st, body))
    st, h, body = ra.curl("simpleenroll", "POST", b"A" * 200000,
                          user="alice:" + PASSWORD)
    check(st == 413, "far oversized body: 413 at once", "%d %r" % (st, body))

    # Names and keys, before any ACME traffic.
    cases = [
        (csr_der(key, "/CN=dev1", ["DNS:dev1.home.arpa"]),
         "dev1.home.arpa is outside the RA's subtree est.home.arpa",
         "a name outside the subtree"),
        (csr_der(key, "/CN=dev1", ["DNS:dev1.est.home.arpa", "DNS:dev1.local"]),
         ".local names are not enrolled", "a .local name"),
        (csr_der(key, "/CN=dev1", ["DNS:dev1.est.home.arpa", "IP:10.0.0.5"]),
         "IP address subjectAltNames are not enrolled", "an IP SAN"),
        (csr_der(key, "/CN=xest.home.arpa"),
         "xest.home.arpa is outside the RA's subtree",
         "CN only, a suffix that is not a subtree"),
        (csr_der(key, "/CN=dev1", ["DNS:dev_1.est.home.arpa"]),
         "is not a valid host name", "an invalid host name"),
        (csr_der(new_key(os.path.join(tmp, "p256.key"), "ec256"), "/CN=dev1",
                 ["DNS:dev1.est.home.arpa"]), "P-256", "weak key: P-256"),
        (csr_der(new_key(os.path.join(tmp, "rsa2048.key"), "rsa2048"),
                 "/CN=dev1", ["DNS:dev1.est.home.arpa"], "sha256"), "2048",
         "weak key: RSA 2048"),
        (csr_der(key, "/CN=dev1", ["DNS:dev1.est.home.arpa"], "sha1"),
         "SHA-256 or better is required", "SHA-1 signature"),
        (csr_der(key, "/CN=dev1", ["DNS:dev1.est.home.arpa"],
                 eku="serverAuth,clientAuth,1.3.6.1.5.5.7.3.28"),
         "asks for the extended key usage cmcRA", "a device asking for "
         "id-kp-cmcRA (it would become a registrar)"),
        (csr_der(key, "/CN=dev1", ["DNS:dev1.est.home.arpa"],
                 eku="codeSigning"),
         "extended key usage codeSigning", "a device asking for codeSigning"),
    ]
    for der, text, what in cases:
        expect(ra.enrol(der), 400, text, what)

    # A good CSR passes every check, with or without line breaks in the
    # base64: then pre-authorization (no DNS server here) is the answer.
    for body, what in ((b64_lines(good), "with line breaks"),
                       (base64.b64encode(good), "on one line"),
                       (b"  " + b64_lines(good).replace(b"\n", b"\r\n  "),
                        "with CRLF and blanks")):
        st, h, data = ra.curl("simpleenroll", "POST", body,
                              user="alice:" + PASSWORD)
        check(st == 503 and h.get("retry-after") == "30" and
              b"pre-authorization of est.home.arpa failed:" in data,
              "a good CSR %s: 503 Retry-After while pre-authorization fails"
              % what, "%d %s %r" % (st, h.get("retry-after"), data))
    # A passed Basic check is remembered: a wrong password still is not.
    expect(ra.enrol(good, user="alice:" + PASSWORD[:-1]), 401,
           "bad user name or password", "bad password after a good one")
    rsa = csr_der(new_key(os.path.join(tmp, "rsa3072.key"), "rsa3072"),
                  "/CN=dev2", ["DNS:dev2.est.home.arpa"], "sha256")
    st, h, data = ra.enrol(rsa)
    check(st == 503, "RSA 3072 with SHA-256 passes the checks", st)

    # Client certificates: one from the appliance, one from elsewhere.
    dcert, dkey = stack.issue(tmp, "dev9.est.home.arpa", cn="dev9")
    other_key = new_key(os.path.join(tmp, "other.key"))
    other = os.path.join(tmp, "other.pem")
    run(["openssl", "req", "-x509", "-key", other_key, "-subj", "/CN=dev9",
         "-days", "2", "-out", other, "-addext",
         "subjectAltName=DNS:dev9.est.home.arpa"], check=True)
    cams = csr_der(key, "/CN=cam1", ["DNS:cam1.cams.est.home.arpa"])
    expect(ra.enrol(cams, path="cams/simpleenroll"), 403,
           "a TLS client certificate is required here",
           "require_client_cert with HTTP Basic only")
    expect(ra.enrol(cams, path="cams/simpleenroll", user=None, cert=other,
                    key=other_key), 403, "does not verify",
           "require_client_cert with a certificate from elsewhere")
    st, h, data = ra.enrol(cams, path="cams/simpleenroll", user=None,
                           cert=dcert, key=dkey)
    check(st == 503, "require_client_cert with the appliance's certificate "
          "passes authentication", "%d %r" % (st, data))
    expect(ra.enrol(good, path="cams/simpleenroll", user=None, cert=dcert,
                    key=dkey), 400, "outside the RA's subtree cams.est.home.arpa",
           "a label's subtree is its own")

    renew = csr_der(new_key(os.path.join(tmp, "dev9b.key")), "/CN=dev9",
                    ["DNS:dev9.est.home.arpa", "IP:127.0.0.1"])
    expect(ra.enrol(renew, path="simplereenroll"), 403,
           "needs the TLS client certificate being renewed",
           "reenroll without a client certificate")
    expect(ra.enrol(renew, path="simplereenroll", user=None, cert=other,
                    key=other_key), 403, "does not verify to the appliance root",
           "reenroll with a certificate from elsewhere")
    # (IP SANs are refused before the subject comparison is reached.)
    other_subject = csr_der(new_key(os.path.join(tmp, "dev9c.key")),
                            "/CN=dev8", ["DNS:dev8.est.home.arpa"])
    expect(ra.enrol(other_subject, path="simplereenroll", user=None,
                    cert=dcert, key=dkey), 400, "subject differs",
           "reenroll with another subject")
    # The signer writes the subject it wants: the renewal copies it.
    other_sans = csr_der(new_key(os.path.join(tmp, "dev9d.key")),
                         subject_of(dcert), ["DNS:dev9.est.home.arpa"])
    expect(ra.enrol(other_sans, path="simplereenroll", user=None, cert=dcert,
                    key=dkey), 400, "subjectAltNames differ",
           "reenroll with another subjectAltName set")


# ---- the happy path (BIND) --------------------------------------------------------

def enrol_cases(tmp):
    from bind_fixture import Bind, have_bind
    if not have_bind():
        print("SKIP: BIND (named, dig, nsupdate) is not installed")
        sys.exit(77)
    ns = Bind()
    stack = None
    ras = []
    try:
        stack = Stack(tmp, ["--acme", "dns_server=" + ns.server])
        ra = Ra(tmp, stack, dns_server=ns.server, tsig=ns.key_file)
        ras.append(ra)
        happy_path(ra, stack, ns, tmp)
        other = Ra(tmp, stack, name="other", dns_server=ns.server,
                   tsig=ns.other_key_file)
        ras.append(other)
        key = new_key(os.path.join(tmp, "o1.key"))
        der = csr_der(key, "/CN=o1", ["DNS:o1.est.home.arpa"])
        end = time.time() + 30
        st, data = 0, b""
        while time.time() < end:
            st, h, data = other.enrol(der)
            if st == 503:
                break
            time.sleep(1)
        check(st == 503 and b"pre-authorization of est.home.arpa failed" in
              data and b"REFUSED" in data,
              "a TSIG key for another zone: BIND refuses, the RA says so",
              "%d %r" % (st, data))
        for r in ras:
            r.finish()
        ras = []
    finally:
        for r in ras:
            r.stop()
        if stack is not None:
            stack.stop()
        ns.stop()


def happy_path(ra, stack, ns, tmp):
    key = new_key(os.path.join(tmp, "cam7.key"))
    der = csr_der(key, "/CN=cam7", ["DNS:cam7.est.home.arpa"])
    st, h, data = ra.enrol(der)
    check(st == 202 and h.get("retry-after") == "2",
          "simpleenroll with Basic: 202 Retry-After while the operator has "
          "not approved", "%d %s %r" % (st, h, data))
    # The pending request (a delegation of the subtree, or the device).
    rid = None
    end = time.time() + 30
    while rid is None and time.time() < end:
        r = stack.iotca("--json", "pending")
        rows = json.loads(r.stdout or "[]") if r.returncode == 0 else []
        if rows:
            rid = str(rows[0]["id"])
            print("     pending: %s" % json.dumps(rows[0]))
        else:
            st, h, data = ra.enrol(der)
            time.sleep(1)
    check(rid is not None, "the operator sees a pending request")
    if rid is None:
        return
    st, h, data = ra.enrol(der)
    check(st == 202, "the same request before approval: 202 again", st)
    # A restart of the RA in the middle of the wait: the stored order resumes.
    rc = ra.stop()
    check(rc == 0, "the RA stops on SIGTERM with status 0", rc)
    ra.start()
    st, h, data = ra.enrol(der)
    check(st == 202, "after a restart of the RA: 202 again", "%d %r" % (st, data))
    r = stack.iotca("approve", rid)
    check(r.returncode == 0, "iotca approve " + rid, r.stderr)
    end = time.time() + 60
    while time.time() < end:
        st, h, data = ra.enrol(der)
        if st != 202:
            break
        time.sleep(min(int(h.get("retry-after", "1")), 2))
    certs = pkcs7_certs(data, tmp) if st == 200 else ""
    leaf = certs[:certs.find("-----END CERTIFICATE-----") + 26]
    sans = first_cert_text(leaf, tmp, "-ext", "subjectAltName") if leaf else ""
    check(st == 200 and "DNS:cam7.est.home.arpa" in sans,
          "after approval the same request: 200 certs-only with a leaf for "
          "the name", "%d %r" % (st, data[:300]))
    if st != 200:
        print(ra.log()[-3000:])
        return
    leaf_pem = os.path.join(tmp, "cam7.pem")
    write(leaf_pem, leaf)
    v = run(["openssl", "verify", "-CAfile", stack.root, leaf_pem], text=True)
    check(v.returncode == 0, "the leaf verifies to the root", v.stdout + v.stderr)
    serial = first_cert_text(leaf, tmp, "-serial")
    r = stack.iotca("--json", "certs")
    issued = [c for c in json.loads(r.stdout or "[]")
              if "cam7.est.home.arpa" in c.get("names", [])]
    check(len(issued) == 1, "one certificate issued for the name, restart "
          "and repeated requests notwithstanding", r.stdout[:500])
    st, h, data = ra.enrol(der)
    again = pkcs7_certs(data, tmp) if st == 200 else ""
    check(st == 200 and first_cert_text(again[:again.find("-----END") + 26],
                                        tmp, "-serial") == serial,
          "the same CSR again: the cached certificate (same serial)")
    # The delegation is approved: another device needs no operator.
    der8 = csr_der(new_key(os.path.join(tmp, "cam8.key")), "/CN=cam8",
                   ["DNS:cam8.est.home.arpa"])
    end = time.time() + 30
    while time.time() < end:
        st, h, data = ra.enrol(der8)
        if st != 202:
            break
        time.sleep(1)
    pending = stack.iotca("--json", "pending").stdout
    check(st == 200 and json.loads(pending or "[]") == [],
          "another device under the subtree: 200 without an approval",
          "%d %r %s" % (st, data[:200], pending))
    check(ns.txt("_acme-challenge.est.home.arpa") == [],
          "the dns-01 TXT record was removed after pre-authorization")

    # simplereenroll with that certificate as the TLS client certificate.
    key2 = new_key(os.path.join(tmp, "cam7b.key"))
    der2 = csr_der(key2, subject_of(leaf_pem), ["DNS:cam7.est.home.arpa"])
    end = time.time() + 60
    while time.time() < end:
        st, h, data = ra.enrol(der2, path="simplereenroll", user=None,
                               cert=leaf_pem, key=key)
        if st != 202:
            break
        time.sleep(min(int(h.get("retry-after", "1")), 2))
    certs = pkcs7_certs(data, tmp) if st == 200 else ""
    new_serial = first_cert_text(certs[:certs.find("-----END") + 26], tmp,
                                 "-serial") if certs else ""
    check(st == 200 and new_serial and new_serial != serial,
          "simplereenroll with the certificate: 200, a new serial",
          "%d %r %s %s" % (st, data[:300], serial, new_serial))
    log = ra.log()
    check("enrol user=alice csr=" in log and "-> 202" in log and
          "-> 200" in log and "reenrol cert=" in log,
          "log: the enrolments with who asked and the status")


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("config", "refusals", "enrol"):
        print("usage: est-ra.py config|refusals|enrol", file=sys.stderr)
        return 2
    for tool in ("curl", "openssl"):
        if shutil.which(tool) is None:
            print("SKIP: no " + tool)
            return 77
    tmp = tempfile.mkdtemp(prefix="iotca-est.")
    try:
        {"config": config_cases, "refusals": refusal_cases,
         "enrol": enrol_cases}[sys.argv[1]](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure%s" % (failures, "" if failures == 1 else "s"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
