#!/usr/bin/env python3
"""iotca-acmed under a hostile LAN, on loopback, with the real signer.

  idle       2,000 idle TCP connections from 100 source addresses
             (127.0.1.1 .. 127.0.1.100) are all held, and a client from a
             fresh address (127.0.2.1, curl) still gets the directory within
             2 s; connections that sent nothing are closed after
             request_timeout, and so are those that trickle a byte a second
             without ever completing a request; connections refused over the
             per-address cap leave a bounded number of log lines.  Prints acmed's RSS and
             thread count with the 2,000 connections held.
  tlsmem     what a TLS connection costs and what a request may carry: a
             request with 2 KiB of headers is answered, one with 16 KiB gets
             431 (a status, not a reset) and the server answers the next;
             300 TLS connections (10 addresses), each with a request
             answered and then held, grow acmed's RSS by under 24 KiB each
             (the per-connection memory pool is 4 KiB).  Prints the growth.
  ratelimit  newAccount bursts from one address end in 429 rateLimited with
             Retry-After while another address still gets 201; newOrder and
             finalize are limited per account and per address.

usage: acmed_limits.py idle|ratelimit|tlsmem   (env: IOTCA_SRC, IOTCA_BIN)
"""
import base64
import errno
import hashlib
import http.client
import json
import os
import resource
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from iotca_stack import BIN, DEVSTACK, devstack_env  # noqa: E402
URN = "urn:ietf:params:acme:error:"

failed = 0


def check(cond, what, info=""):
    global failed
    if cond:
        print("ok - " + what, flush=True)
    else:
        failed += 1
        print("not ok - " + what + (": " + str(info) if info else ""),
              flush=True)


class Stack:
    """A devstack with extra [acme] lines; stopped by stop()."""

    def __init__(self, *acme):
        self.tmp = tempfile.mkdtemp(prefix="iotca-limits.")
        self.dir = os.path.join(self.tmp, "stack")
        args = [DEVSTACK, "start", self.dir, "--key", "file"]
        for kv in acme:
            args += ["--acme", kv]
        # The daemons start with a low soft descriptor limit, as under
        # systemd: acmed must raise its own.
        r = subprocess.run(args, capture_output=True, text=True, timeout=90,
                           preexec_fn=lambda: resource.setrlimit(
                               resource.RLIMIT_NOFILE, (1024, resource.getrlimit(
                                   resource.RLIMIT_NOFILE)[1])))
        if r.returncode != 0:
            self.stop()
            raise SystemExit("devstack start: " + r.stderr)
        env = devstack_env(self.dir)
        self.root = env["IOTCA_ROOT_PEM"]
        self.dirurl = env["IOTCA_ACME_DIRECTORY"]
        hostport = self.dirurl.split("/")[2]
        self.host, self.port = hostport.rsplit(":", 1)[0], int(hostport.rsplit(":", 1)[1])
        with open(os.path.join(self.dir, "acmed.pid")) as f:
            self.pid = int(f.read())
        self.ctx = ssl.create_default_context(cafile=self.root)

    def log(self):
        with open(os.path.join(self.dir, "acmed.log"), errors="replace") as f:
            return f.read()

    def nofile(self):
        with open("/proc/%d/limits" % self.pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    return line.split()[3:5]
        return None

    def proc_status(self):
        out = {}
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
        return out

    def sockets(self):
        n = 0
        for fd in os.listdir("/proc/%d/fd" % self.pid):
            try:
                n += os.readlink("/proc/%d/fd/%s" % (self.pid, fd)).startswith("socket:")
            except OSError:
                pass
        return n

    def stop(self):
        subprocess.run([DEVSTACK, "stop", self.dir], capture_output=True,
                       timeout=60)
        log = ""
        try:
            log = self.log()
        except OSError:
            pass
        if "Sanitizer" in log or "runtime error:" in log:
            check(False, "no sanitizer report in acmed.log",
                  log[log.find("Sanitizer") - 200:][:3000])
        shutil.rmtree(self.tmp, ignore_errors=True)


def open_idle(host, port, src, n):
    """n TCP connections from src that send nothing; connected ones only."""
    out = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        out.append(s)
    deadline = time.time() + 10
    pending = {s.fileno(): s for s in out}
    p = select.poll()
    for fd in pending:
        p.register(fd, select.POLLOUT)
    while pending and time.time() < deadline:
        for fd, _ in p.poll(1000):
            p.unregister(fd)
            del pending[fd]
    return out


def closed_by_peer(s):
    """True once the server closed s (EOF or reset), not while it still
    connects (a full backlog delays the handshake)."""
    try:
        return s.recv(1) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError as e:
        return e.errno != errno.ENOTCONN


def curl_directory(st, src):
    t0 = time.time()
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "--max-time", "10", "--interface", src, "--cacert",
                        st.root, st.dirurl], capture_output=True, text=True)
    return r.stdout.strip(), time.time() - t0


def part_idle():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4500:
        print("skip: RLIMIT_NOFILE hard limit %d < 4500" % hard)
        return 77
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    timeout = 8		# margin for a loaded machine: accepting 2,000 takes time
    st = Stack("request_timeout=%d" % timeout)
    conns = []
    try:
        soft_hard = st.nofile()
        check(soft_hard and soft_hard[0] == soft_hard[1],
              "acmed raised its soft RLIMIT_NOFILE to the hard limit",
              soft_hard)
        base = st.proc_status()
        lines0 = st.log().count("httpd:")
        t_open = time.time()
        for i in range(1, 101):
            conns += open_idle(st.host, st.port, "127.0.1.%d" % i, 20)
        for _ in range(50):	# the server accepts them as it can
            if st.sockets() >= 2000:
                break
            time.sleep(0.1)
        code, secs = curl_directory(st, "127.0.2.1")
        print("# 2000 idle connections: fresh client got %s in %.0f ms"
              % (code or "nothing", secs * 1000))
        check(code == "200" and secs < 2.0,
              "fresh address served within 2 s while 2,000 idle connections "
              "from 100 addresses are held", "%s in %.2f s" % (code, secs))
        held = sum(not closed_by_peer(s) for s in conns)
        ps = st.proc_status()
        print("# acmed with %d idle connections: VmRSS %s (idle %s), "
              "threads %s (idle %s), server sockets %d" %
              (held, ps["VmRSS"], base["VmRSS"], ps["Threads"],
               base["Threads"], st.sockets()))
        check(held == 2000, "all 2,000 idle connections accepted and held",
              "%d held; acmed.log: %s" % (held, [l for l in st.log().splitlines()
                                                 if "httpd" in l][-5:]))
        check(int(ps["Threads"]) < 64, "no thread per connection",
              ps["Threads"])

        # Over the per-address cap (32): refused, and logged boundedly.
        extra = open_idle(st.host, st.port, "127.0.1.200", 300)
        time.sleep(1)
        refused = sum(closed_by_peer(s) for s in extra)
        check(refused >= 250, "connections over the per-address cap are "
              "refused", "%d of 300 refused" % refused)
        for s in extra:
            s.close()

        # Nothing sent: closed after request_timeout, not before.
        alive = {s.fileno(): s for s in conns}
        p = select.poll()
        for fd in alive:
            p.register(fd, select.POLLIN)
        closed_at = []
        deadline = t_open + timeout + 10
        while alive and time.time() < deadline:
            for fd, _ in p.poll(200):
                if closed_by_peer(alive[fd]):
                    closed_at.append(time.time() - t_open)
                    p.unregister(fd)
                    del alive[fd]
        print("# idle connections closed by the server: %d of 2000, after "
              "%.1f .. %.1f s (request_timeout %d s)" %
              (len(closed_at), min(closed_at or [0]), max(closed_at or [0]),
               timeout))
        check(not alive, "every idle connection closed within "
              "request_timeout + 10 s", "%d still open" % len(alive))
        check(closed_at and min(closed_at) >= timeout - 1,
              "none closed before request_timeout", min(closed_at or [0]))
        code, secs = curl_directory(st, "127.0.2.2")
        check(code == "200", "served after the idle connections are gone")

        # A byte a second never completes a request (a TLS record of 512
        # bytes announced, then trickled): closed at the deadline, although
        # the connection is never silent for request_timeout.
        slow = open_idle(st.host, st.port, "127.0.4.1", 5)
        t0 = time.time()
        for s in slow:
            s.send(b"\x16\x03\x01\x02\x00")
        open_ = list(slow)
        cut_at = []
        while open_ and time.time() < t0 + timeout + 6:
            time.sleep(1)
            for s in list(open_):
                try:
                    s.send(b"\x01")
                    gone = closed_by_peer(s)
                except OSError:
                    gone = True
                if gone:
                    cut_at.append(time.time() - t0)
                    open_.remove(s)
        print("# trickling connections (a byte a second): %d of 5 closed, "
              "after %.1f .. %.1f s" % (len(cut_at), min(cut_at or [0]),
                                        max(cut_at or [0])))
        check(not open_ and min(cut_at) >= timeout - 1 and
              max(cut_at) <= timeout + 4, "a request trickled a byte a "
              "second is cut at request_timeout", cut_at)
        for s in slow:
            s.close()
        lines = st.log().count("httpd:") - lines0
        print("# httpd lines logged for %d refused connections: %d" %
              (refused, lines))
        check(lines <= 10, "refused connections leave a bounded log", lines)
    finally:
        for s in conns:
            s.close()
        st.stop()
    return 0


# --- ACME requests from a chosen source address ---------------------------------
def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    def __init__(self):
        self.priv = ec.generate_private_key(ec.SECP256R1())
        n = self.priv.public_key().public_numbers()
        self.jwk = {"kty": "EC", "crv": "P-256",
                    "x": b64(n.x.to_bytes(32, "big")),
                    "y": b64(n.y.to_bytes(32, "big"))}

    def sign(self, data):
        r, s = decode_dss_signature(self.priv.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class Client:
    """One account's view of the server, from one source address."""

    def __init__(self, st, src):
        self.st, self.src, self.key, self.kid = st, src, Key(), None
        self.dir = json.loads(self.req("GET", st.dirurl)[2])

    def req(self, method, url, body=None):
        path = "/" + url.split("/", 3)[3]
        c = http.client.HTTPSConnection(self.st.host, self.st.port,
                                        context=self.st.ctx, timeout=20,
                                        source_address=(self.src, 0))
        try:
            c.request(method, path, body=body, headers={
                "Content-Type": "application/jose+json"} if body else {})
            r = c.getresponse()
            return r.status, r.headers, r.read()
        finally:
            c.close()

    def post(self, url, payload):
        nonce = self.req("HEAD", self.dir["newNonce"])[1]["Replay-Nonce"]
        prot = {"alg": "ES256", "url": url, "nonce": nonce}
        if self.kid:
            prot["kid"] = self.kid
        else:
            prot["jwk"] = self.key.jwk
        p64 = b64(json.dumps(prot).encode())
        pl64 = "" if payload is None else b64(json.dumps(payload).encode())
        sig = self.key.sign((p64 + "." + pl64).encode())
        return self.req("POST", url, json.dumps(
            {"protected": p64, "payload": pl64, "signature": b64(sig)}).encode())

    def new_account(self):
        r = self.post(self.dir["newAccount"], {"termsOfServiceAgreed": True})
        if r[0] == 201:
            self.kid = r[1]["Location"]
        return r

    def new_order(self, name):
        return self.post(self.dir["newOrder"], {"identifiers": [
            {"type": "dns", "value": name}]})


def limited(r):
    """(429, rateLimited, Retry-After) as the test expects them."""
    status, headers, body = r
    try:
        p = json.loads(body)
    except ValueError:
        p = {}
    ra = headers.get("Retry-After", "")
    return (status == 429 and p.get("type") == URN + "rateLimited" and
            p.get("status") == 429 and ra.isdigit() and int(ra) >= 1)


def part_ratelimit():
    st = Stack("ratelimit_new_account=5/60", "ratelimit_account=4/60",
               "ratelimit_address=6/60")
    try:
        # newAccount per address
        codes = [Client(st, "127.0.3.1").new_account()[0] for _ in range(5)]
        check(codes == [201] * 5, "5 new accounts from one address: 201",
              codes)
        r = Client(st, "127.0.3.1").new_account()
        print("# 6th newAccount from one address: %d, Retry-After %s" %
              (r[0], r[1].get("Retry-After")))
        check(limited(r), "6th new account from that address: 429 "
              "rateLimited with Retry-After", r[:1] + (r[2][:200],))
        a = Client(st, "127.0.3.2")
        r = a.new_account()
        check(r[0] == 201, "another address still gets 201", r[0])

        # newOrder and finalize per account (4 per minute)
        codes = [a.new_order("dev-%d.local" % i)[0] for i in range(4)]
        check(codes == [201] * 4, "4 orders of one account: 201", codes)
        r = a.new_order("dev-9.local")
        check(limited(r), "5th newOrder of that account: 429 rateLimited",
              r[:1] + (r[2][:200],))
        b = Client(st, "127.0.3.3")
        b.new_account()
        r = b.new_order("dev-20.local")
        check(r[0] == 201, "another account still orders: 201", r[0])
        fin = json.loads(r[2])["finalize"]
        codes = [b.post(fin, {"csr": "AA"})[0] for _ in range(3)]
        check(429 not in codes, "3 finalize of that account are answered "
              "(not limited)", codes)
        r = b.post(fin, {"csr": "AA"})
        check(limited(r), "finalize over the account's limit: 429 "
              "rateLimited", r[:1] + (r[2][:200],))

        # newOrder and finalize per address (6 per minute), two accounts
        c, d = Client(st, "127.0.3.4"), Client(st, "127.0.3.4")
        c.new_account()
        d.new_account()
        codes = [c.new_order("dev-3%d.local" % i)[0] for i in range(4)]
        codes += [d.new_order("dev-4%d.local" % i)[0] for i in range(2)]
        check(codes == [201] * 6, "6 orders from one address: 201", codes)
        r = d.new_order("dev-49.local")
        check(limited(r) and b"127.0.3.4" in r[2], "7th from that address "
              "(its account still has room): 429 rateLimited",
              r[:1] + (r[2][:200],))
        check(st.log().count("rate limited:") >= 4, "refusals are logged")
    finally:
        st.stop()
    return 0


def https_get(st, s, path, headers=b""):
    """One GET on the TLS socket s, kept alive; (status, body)."""
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " +
              st.host.encode() + b"\r\n" + headers + b"\r\n")
    return read_answer(s)


def read_answer(s):
    data = b""
    while b"\r\n\r\n" not in data:
        b = s.recv(65536)
        if not b:
            raise OSError("closed before the answer")
        data += b
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        b = s.recv(65536)
        if not b:
            raise OSError("closed in the answer")
        body += b
    return head.split(b" ", 2)[1].decode(), body


def tls_conn(st, src):
    raw = socket.create_connection((st.host, st.port), timeout=20,
                                   source_address=(src, 0))
    return st.ctx.wrap_socket(raw, server_hostname=st.host)


def part_tlsmem():
    n, per = 300, 30
    # Idle connections are held past the default request_timeout (5 s).
    st = Stack("request_timeout=60")
    st.ctx.check_hostname = False
    conns = []
    try:
        with tls_conn(st, "127.0.4.1") as s:
            status, _ = https_get(st, s, "/directory", b"X-Pad: " +
                                  b"a" * 2048 + b"\r\n")
            check(status == "200", "2 KiB of request headers: answered",
                  status)
        with tls_conn(st, "127.0.4.1") as s:
            try:
                status, _ = https_get(st, s, "/directory", b"X-Pad: " +
                                      b"a" * 16384 + b"\r\n")
            except OSError as e:
                status = "no answer (%s)" % e
            check(status == "431", "16 KiB of request headers: 431 Request "
                  "Header Fields Too Large", status)
        with tls_conn(st, "127.0.4.1") as s:
            status, _ = https_get(st, s, "/directory")
            check(status == "200", "the next request is answered", status)
        before = int(st.proc_status()["VmRSS"].split()[0])
        for i in range(n):
            conns.append(tls_conn(st, "127.0.4.%d" % (2 + i // per)))
        # One request on each, sent on all first, then every answer read.
        req = (b"GET /directory HTTP/1.1\r\nHost: " + st.host.encode() +
               b"\r\n\r\n")
        for s in conns:
            s.sendall(req)
        ok = 0
        for s in conns:
            try:
                ok += read_answer(s)[0] == "200"
            except OSError:
                pass
        check(ok == n, "%d TLS connections: a request answered on each" % n, ok)
        time.sleep(1)
        after = int(st.proc_status()["VmRSS"].split()[0])
        per_conn = (after - before) / n
        print("# acmed RSS %d KiB -> %d KiB with %d TLS connections held "
              "after a request: %.1f KiB each" % (before, after, n, per_conn))
        with open("/proc/%d/maps" % st.pid) as f:
            sanitized = "libasan" in f.read()
        if sanitized:
            # ASan's redzones and quarantine are most of it there.
            print("# acmed runs under AddressSanitizer: its memory per "
                  "connection is not checked")
        else:
            check(per_conn < 24, "a held TLS connection costs acmed under "
                  "24 KiB", "%.1f KiB" % per_conn)
    finally:
        for s in conns:
            s.close()
        st.stop()
    return 0


def main():
    part = sys.argv[1] if len(sys.argv) > 1 else ""
    if part == "idle":
        rc = part_idle()
    elif part == "ratelimit":
        rc = part_ratelimit()
    elif part == "tlsmem":
        rc = part_tlsmem()
    else:
        raise SystemExit(__doc__)
    if rc == 77:
        return 77
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
