"""Shared by the EST end-to-end tests and the est-enrol benchmark: the
appliance, a BIND for the RA's dns-01, and iotca-est-ra in front of them.

    from est_stack import EstStack
    s = EstStack()              # BIND, devstack, the RA's files; RA running
    try:
        r = s.enrol(s.csr("dev1"))          # curl: POST simpleenroll
        r.status, r.headers["retry-after"], r.text
        s.iotca("pending").stdout
        s.restart_ra(); s.restart_acmed(); s.restart_signer()
    finally:
        s.finish()              # stops everything, checks the logs

What it sets up, in a new directory under $TMPDIR (self.tmp):

* tests/lib/bind_fixture.Bind (zone home.arpa, a TSIG key allowed to update
  only it, and a second key for another zone), unless the caller passes
  one;
* a devstack (file key) with domains home.arpa,est.home.arpa whose acmed
  validates dns-01 against that BIND ([acme] dns_server); policy lines
  (e.g. approve_delegated_devices = true) are added under [policy] and
  the stack restarted;
* the RA's TLS certificate for ra.est.home.arpa (and 127.0.0.1), issued
  by the appliance with `iotca issue`; its key 0600;
* a credentials file of "user:HASH" lines made with `openssl passwd -6`;
* the RA's configuration, the keys the contract names and no others
  ([est], [acme], [dns]); directory, ca_file, dns_server and tsig_key may
  be overridden (Pebble, another BIND, another zone's key).

The EST helpers drive the RA with curl, as an EST client nobody here wrote
would: enrol() posts base64 DER PKCS#10 with Content-Type
application/pkcs10 and Basic auth, enrol_until() repeats it while the
answer is 202, sleeping its Retry-After; certs_pem() turns a certs-only CMS
answer into PEM with `openssl pkcs7 -print_certs`; cert_text() is what
`openssl x509 -text` says.  The appliance's side: iotca() and iotca_json()
(the operator's command), certs() and audit(), acme_sql() on acme.db,
journal() (what BIND's journal says the updates changed), and
restart_ra() / restart_acmed() / restart_signer() (SIGTERM, or SIGKILL
with kill=True).  IOTCA_SRC and IOTCA_BIN come from the environment, as
the CMake test definitions set them.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bind_fixture import Bind, have_bind  # noqa: E402
from iotca_stack import BIN, DEVSTACK, devstack_env  # noqa: E402

SUBTREE = "est.home.arpa"
RA_NAME = "ra." + SUBTREE
USER = "est-client"
PASSWORD = "correct horse battery staple"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(cond, seconds, step=0.1):
    """Poll cond every step s for at most seconds; whether it came true."""
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def have_tools():
    """What an EST test needs besides the build: "" or what is missing."""
    if not have_bind():
        return "BIND (named, dig, nsupdate)"
    for t in ("curl", "openssl", "sqlite3"):
        if shutil.which(t) is None:
            return t
    if not os.access(os.path.join(BIN, "iotca-est-ra"), os.X_OK):
        return "iotca-est-ra in " + BIN
    return ""


def bind_journal(bind):
    """The RFC 2136 changes a Bind applied to its zone, from its journal
    (named-journalprint), SOA lines left out: ["add NAME TXT \"V\"",
    "del ..."] in order; [] when nothing was ever changed."""
    jnl = os.path.join(bind.dir, bind.zone + ".zone.jnl")
    if not os.path.exists(jnl):
        return []
    out = run(["named-journalprint", jnl]).stdout.decode()
    lines = []
    for ln in out.splitlines():
        f = ln.split()
        if len(f) >= 5 and f[4] != "SOA":
            lines.append("%s %s %s %s" % (f[0], f[1].rstrip("."), f[4],
                                         " ".join(f[5:])))
    return lines


class Reply:
    """One HTTP answer as curl saw it: status, headers (lower-case names,
    the last value of each), body (bytes) and text."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self.text = body.decode(errors="replace")

    def __repr__(self):
        return "HTTP %d %s %r" % (self.status, self.headers.get(
            "content-type", ""), self.text[:300])


def run(argv, data=None, check=True):
    r = subprocess.run(argv, input=data, capture_output=True)
    if check and r.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(argv[:3]),
                                         r.stderr.decode(errors="replace")))
    return r


def csr_der(workdir, name, sans=None, curve="P-384", md="sha384",
            subject=None, ext=None):
    """A fresh key and a PKCS#10 for name (SAN DNS:name unless sans is
    given), made by openssl req: (DER bytes, key file)."""
    key = os.path.join(workdir, "%s.%d.key" % (name, time.monotonic_ns()))
    cmd = ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:" + curve, "-nodes", "-keyout", key,
           "-outform", "DER", "-" + md,
           "-subj", subject if subject is not None else
           "/CN=" + name.split(".")[0]]
    san = sans if sans is not None else ["DNS:" + name]
    if san:
        cmd += ["-addext", "subjectAltName=" + ",".join(san)]
    for e in ext or []:
        cmd += ["-addext", e]
    return run(cmd).stdout, key


def b64_lines(der):
    """base64 of DER with line breaks, as openssl base64 writes it."""
    return run(["openssl", "base64", "-e"], der).stdout


class EstStack:
    """BIND, the appliance and iotca-est-ra (see the module's comment).

    policy: lines for [policy]; acme: extra [acme] lines for acmed (as
    devstack --acme KEY=VALUE); ra: extra "key = value" lines per RA
    section ({"est": [...]}), or overrides of the [acme]/[dns] values
    (directory, ca_file, tsig_key); start_ra: start the RA now."""

    def __init__(self, prefix="iotca-est.", policy=(), acme=(), ra=None,
                 start_ra=True, bind=None):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.dir = os.path.join(self.tmp, "stack")
        self.radir = os.path.join(self.tmp, "ra")
        self.state = os.path.join(self.radir, "state")
        os.makedirs(self.state, mode=0o700)
        self.conf = os.path.join(self.radir, "est-ra.conf")
        self.ra_log = os.path.join(self.radir, "ra.log")
        self.ra_proc = None
        self.ra_exits = []      # non-zero exit statuses of the RA
        self.children = {}      # daemons restarted here: {"acmed": Popen}
        self.own_bind = bind is None
        self.bind = None
        try:
            self.bind = bind or Bind(prefix="iotca-est-bind.")
            self._start_stack(list(policy), list(acme))
            self.env = devstack_env(self.dir)
            self.root = self.env["IOTCA_ROOT_PEM"]
            self.directory = self.env["IOTCA_ACME_DIRECTORY"]
            self._ra_tls()
            self._credentials()
            self.port = free_port()
            self.write_config(ra or {})
            if start_ra:
                self.start_ra()
        except BaseException:
            self.finish(check_logs=False)
            raise

    # ------------------------------------------------------------ appliance

    def _start_stack(self, policy, acme):
        args = [DEVSTACK, "start", self.dir, "--key", "file", "--domain",
                "home.arpa," + SUBTREE, "--acme",
                "dns_server=" + self.bind.server]
        for kv in acme:
            args += ["--acme", kv]
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("devstack start: " + r.stderr)
        if policy:
            self.set_policy(policy)

    def set_policy(self, lines):
        """Add lines under [policy] (replacing a line for the same key)
        and restart the signer so that it reads them."""
        conf = os.path.join(self.dir, "iotca.conf")
        with open(conf) as f:
            text = f.read()
        for line in lines:
            key = line.split("=")[0].strip()
            text = re.sub(r"(?m)^%s\s*=.*\n" % re.escape(key), "", text)
            text = text.replace("[policy]\n", "[policy]\n%s\n" % line, 1)
        with open(conf, "w") as f:
            f.write(text)
        if os.path.exists(os.path.join(self.dir, "signer.pid")):
            self.restart_signer()

    def iotca(self, *args, ok=True):
        r = subprocess.run([os.path.join(BIN, "iotca"), "--socket",
                            os.path.join(self.dir, "admin.sock")] +
                           list(args), capture_output=True, text=True)
        if ok and r.returncode != 0:
            raise AssertionError("iotca %s: %s" % (" ".join(args),
                                                   r.stderr))
        return r

    def iotca_json(self, *args):
        return json.loads(self.iotca("--json", *args).stdout)

    def certs(self, device):
        """The signer's certificates for device (iotca certs --device)."""
        return self.iotca_json("certs", "--device", device)

    def audit(self):
        """Every audit record (iotca --json audit show)."""
        return self.iotca_json("audit", "show")

    def acme_sql(self, statement):
        r = subprocess.run(["sqlite3", "-cmd", ".timeout 5000",
                            os.path.join(self.dir, "acme.db"), statement],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("sqlite3: " + r.stderr)
        return r.stdout.strip()

    def _pid(self, name):
        with open(os.path.join(self.dir, name + ".pid")) as f:
            return int(f.read())

    @staticmethod
    def _kill_wait(pid, what, sig=signal.SIGTERM):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().split(") ")[1][0] == "Z":
                        return
            except (FileNotFoundError, IndexError):
                return
            time.sleep(0.1)
        raise AssertionError(what + " did not stop")

    def restart_acmed(self, kill=False):
        """Stop iotca-acmed (SIGTERM, or SIGKILL with kill) and start it
        again on the same config and port, as devstack does; wait for its
        directory."""
        self._kill_wait(self._pid("acmed"), "iotca-acmed",
                        signal.SIGKILL if kill else signal.SIGTERM)
        with open(os.path.join(self.dir, "acmed.log"), "a") as log:
            p = subprocess.Popen([os.path.join(BIN, "iotca-acmed"), "-c",
                                  self.env["IOTCA_CONFIG"]], stdout=log,
                                 stderr=log, start_new_session=True)
        self.children["acmed"] = p
        with open(os.path.join(self.dir, "acmed.pid"), "w") as f:
            f.write("%d\n" % p.pid)
        if not wait(lambda: self.curl_ok(self.directory, self.root), 20):
            raise AssertionError("iotca-acmed did not come back")

    def restart_signer(self, kill=False):
        """Stop iotca-signer (SIGTERM, or SIGKILL with kill) and start it
        again; wait until it answers on admin.sock."""
        self._kill_wait(self._pid("signer"), "iotca-signer",
                        signal.SIGKILL if kill else signal.SIGTERM)
        env = dict(os.environ)
        env.update(devstack_env(self.dir))
        with open(os.path.join(self.dir, "signer.log"), "a") as log:
            p = subprocess.Popen([os.path.join(BIN, "iotca-signer"), "-c",
                                  os.path.join(self.dir, "iotca.conf")],
                                 stdout=log, stderr=log, env=env,
                                 start_new_session=True)
        self.children["signer"] = p
        with open(os.path.join(self.dir, "signer.pid"), "w") as f:
            f.write("%d\n" % p.pid)
        if not wait(lambda: self.iotca("status", ok=False).returncode == 0,
                    20):
            raise AssertionError("iotca-signer did not come back")

    @staticmethod
    def curl_ok(url, cafile):
        return subprocess.run(["curl", "-sf", "--max-time", "2", "--cacert",
                               cafile, "-o", "/dev/null", url]).returncode == 0

    # --------------------------------------------------------------- the RA

    def _ra_tls(self):
        """The RA's server certificate, issued by the appliance."""
        self.ra_key = os.path.join(self.radir, "tls.key")
        csr = os.path.join(self.radir, "tls.csr")
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-384", "-nodes", "-keyout", self.ra_key,
             "-out", csr, "-subj", "/CN=ra", "-addext",
             "subjectAltName=DNS:%s,IP:127.0.0.1" % RA_NAME])
        os.chmod(self.ra_key, 0o600)
        leaf = os.path.join(self.radir, "tls-leaf.pem")
        self.iotca("issue", "--csr", csr, "--out", leaf)
        self.ra_cert = os.path.join(self.radir, "tls.pem")
        with open(self.ra_cert, "w") as out:      # chain, leaf first
            for p in (leaf, self.root):
                with open(p) as f:
                    out.write(f.read())

    def _credentials(self):
        """user:HASH lines, the hash by openssl passwd -6 (SHA-512 crypt)."""
        self.passwd = os.path.join(self.radir, "est-ra.passwd")
        h = run(["openssl", "passwd", "-6", "-stdin"],
                PASSWORD.encode() + b"\n").stdout.decode().strip()
        fd = os.open(self.passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, "w") as f:
            f.write("%s:%s\n" % (USER, h))

    def write_config(self, extra):
        """The RA's config as the contract spells it; extra: {"est":
        [lines replacing or adding keys], "acme": [lines], "dns": [lines],
        "directory": URL, "ca_file": FILE, "dns_server": ADDR:PORT,
        "tsig_key": FILE, "zone": Z, "tail": text}."""
        est = ["listen = 127.0.0.1:%d" % self.port,
               "tls_cert = " + self.ra_cert,
               "tls_key = " + self.ra_key,
               "state_dir = " + self.state,
               "credentials = " + self.passwd,
               "require_client_cert = false",
               "retry_after = 2",
               "enrol_wait = 2",
               "workers = 4",
               "max_body = 16384"]
        for line in extra.get("est", []):     # a key given replaces ours
            key = line.split("=")[0].strip()
            est = [ln for ln in est if ln.split(" =")[0] != key] + [line]
        acme = ["directory = " + extra.get("directory", self.directory),
                "ca_file = " + extra.get("ca_file", self.root),
                "subtree = " + SUBTREE] + list(extra.get("acme", []))
        dns = ["server = " + extra.get("dns_server", self.bind.server),
               "zone = " + extra.get("zone", self.bind.zone),
               "tsig_key = " + extra.get("tsig_key", self.bind.key_file)
               ] + list(extra.get("dns", []))
        text = "".join("[%s]\n%s\n" % (name, "\n".join(lines) + "\n")
                       for name, lines in (("est", est), ("acme", acme),
                                           ("dns", dns)))
        text += extra.get("tail", "")
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.base = "https://%s:%d/.well-known/est" % (RA_NAME, self.port)

    def check_config(self):
        return subprocess.run([os.path.join(BIN, "iotca-est-ra"), "-c",
                               self.conf, "check"], capture_output=True,
                              text=True)

    def start_ra(self, ready=True):
        """Start iotca-est-ra in the foreground (-f), its output in
        self.ra_log; with ready, wait until /cacerts answers."""
        with open(self.ra_log, "a") as log:
            self.ra_proc = subprocess.Popen(
                [os.path.join(BIN, "iotca-est-ra"), "-c", self.conf, "-f"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True)

        def up():
            if self.ra_proc.poll() is not None:
                raise AssertionError("iotca-est-ra exited (%d): %s" % (
                    self.ra_proc.returncode, self.log()[-2000:]))
            return self.get("cacerts", timeout=2).status == 200
        if ready and not wait(up, 20, 0.2):
            raise AssertionError("iotca-est-ra does not answer: " +
                                 self.log()[-2000:])

    def stop_ra(self):
        """SIGTERM; an exit status other than 0 is kept for finish()."""
        if self.ra_proc is None:
            return
        p, self.ra_proc = self.ra_proc, None
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
                raise AssertionError("iotca-est-ra ignored SIGTERM")
        if p.returncode != 0:
            self.ra_exits.append(p.returncode)

    def kill_ra(self):
        """SIGKILL: the RA dies with whatever it was doing half done."""
        if self.ra_proc is not None:
            self.ra_proc.kill()
            self.ra_proc.wait(timeout=10)
            self.ra_proc = None

    def restart_ra(self, kill=False):
        if kill:
            self.kill_ra()
        else:
            self.stop_ra()
        self.start_ra()

    def log(self):
        try:
            with open(self.ra_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def journal(self):
        """bind_journal() of this stack's BIND."""
        return bind_journal(self.bind)

    def ra_account(self):
        """The RA's ACME account ID in acmed (the end of its URL): the one
        account acme.db holds (the tests make no other)."""
        return self.acme_sql("SELECT id FROM accounts ORDER BY created")

    # ------------------------------------------------------ the EST client

    def curl(self, path, data=None, ctype="application/pkcs10",
             user=USER, password=PASSWORD, cert=None, key=None, label=None,
             method=None, timeout=30, extra=()):
        """One request with curl to /.well-known/est[/label]/path."""
        url = self.base + ("/" + label if label else "") + "/" + path
        hdr = os.path.join(self.tmp, "curl.hdr")
        body = os.path.join(self.tmp, "curl.body")
        argv = ["curl", "-sS", "--max-time", str(timeout), "--cacert",
                self.root, "--resolve", "%s:%d:127.0.0.1" % (RA_NAME,
                                                             self.port),
                "-D", hdr, "-o", body, "-w", "%{http_code}"]
        if user is not None:
            argv += ["-u", "%s:%s" % (user, password)]
        if cert is not None:
            argv += ["--cert", cert, "--key", key]
        if data is not None:
            argv += ["--data-binary", "@-"]
            if ctype is not None:
                argv += ["-H", "Content-Type: " + ctype]
        if method is not None:
            argv += ["-X", method]
        argv += list(extra) + [url]
        r = subprocess.run(argv, input=data, capture_output=True)
        code = r.stdout.decode().strip()
        if r.returncode != 0 and code in ("", "000"):
            return Reply(0, {}, r.stderr)
        headers = {}
        try:
            with open(hdr, errors="replace") as f:
                for line in f:
                    k, sep, v = line.partition(":")
                    if sep:
                        headers[k.strip().lower()] = v.strip()
            with open(body, "rb") as f:
                content = f.read()
        except FileNotFoundError:
            content = b""
        return Reply(int(code), headers, content)

    def get(self, path, **kw):
        return self.curl(path, user=None, **kw)

    def csr(self, name, **kw):
        """base64 (with line breaks) of a fresh P-384 CSR for name under
        the subtree (name gets ".est.home.arpa" unless it has a dot)."""
        fqdn = name if "." in name else name + "." + SUBTREE
        der, self.last_key = csr_der(self.tmp, fqdn, **kw)
        return b64_lines(der)

    def enrol(self, csr, path="simpleenroll", **kw):
        return self.curl(path, data=csr, **kw)

    def enrol_until(self, csr, seconds=60, path="simpleenroll", **kw):
        """Repeat the same request while it answers 202, sleeping what
        Retry-After says (as an EST client must); the answers in order."""
        answers = []
        end = time.time() + seconds
        while True:
            r = self.enrol(csr, path=path, **kw)
            answers.append(r)
            if r.status != 202 or time.time() > end:
                return answers
            try:
                ra = int(r.headers.get("retry-after", "1"))
            except ValueError:
                ra = 1
            time.sleep(max(0.2, min(ra, end - time.time())))

    def certs_pem(self, reply):
        """The certificates of a certs-only CMS answer (base64 DER) as PEM,
        by openssl pkcs7 -print_certs."""
        der = run(["openssl", "base64", "-d"], reply.body).stdout
        return run(["openssl", "pkcs7", "-inform", "DER", "-print_certs"],
                   der).stdout.decode()

    @staticmethod
    def cert_text(pem):
        """openssl x509 -text of the first certificate of pem."""
        return run(["openssl", "x509", "-noout", "-text", "-nameopt",
                    "RFC2253"], pem.encode()).stdout.decode()

    @staticmethod
    def cert_serial(pem):
        out = run(["openssl", "x509", "-noout", "-serial"],
                  pem.encode()).stdout.decode()
        return out.strip().split("=", 1)[1].upper()

    def verify(self, pem, cafile=None):
        """openssl verify of the first certificate of pem against the
        root (or cafile): (ok, output)."""
        leaf = os.path.join(self.tmp, "verify.pem")
        with open(leaf, "w") as f:
            f.write(pem.split("-----END CERTIFICATE-----")[0] +
                    "-----END CERTIFICATE-----\n")
        r = subprocess.run(["openssl", "verify", "-CAfile",
                            cafile or self.root, leaf], capture_output=True,
                           text=True)
        return r.returncode == 0, (r.stdout + r.stderr).strip()

    # ------------------------------------------------------------- cleanup

    def finish(self, check_logs=True):
        """Stop the RA, the stack and (if ours) BIND; remove self.tmp.
        Returns what went wrong ("" if nothing): the RA exiting non-zero
        on SIGTERM, sanitizer reports in the daemons' logs; the caller
        fails on it."""
        text = ""
        try:
            self.stop_ra()
        except AssertionError as e:
            text += str(e) + "\n"
        if self.ra_exits:
            text += "iotca-est-ra exited with %s on SIGTERM\n" % (
                self.ra_exits,)
        # Our own children first (acmed before the signer, as devstack
        # does): devstack cannot reap them, and would wait on the zombies.
        for name in ("acmed", "signer"):
            p = self.children.get(name)
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        subprocess.run([DEVSTACK, "stop", self.dir], capture_output=True)
        if self.own_bind and self.bind is not None:
            self.bind.stop()
        bad = ""
        if check_logs:
            for p in (self.ra_log, os.path.join(self.dir, "signer.log"),
                      os.path.join(self.dir, "acmed.log")):
                try:
                    with open(p, errors="replace") as f:
                        t = f.read()
                except FileNotFoundError:
                    continue
                if "Sanitizer" in t or "runtime error:" in t:
                    bad += "%s:\n%s\n" % (os.path.basename(p), t[-4000:])
        if os.environ.get("IOTCA_KEEP_TMP"):
            print("# kept " + self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return text + bad
