"""BIND 9 on a loopback port, for the tests that publish DNS records with
RFC 2136 updates signed with TSIG (dns-01 by an ACME client, DNS-SD).

    from bind_fixture import Bind
    ns = Bind()                 # named -g is up and answering when it returns
    try:
        ns.server               # "127.0.0.1:PORT" (dns_server, -dnsserver)
        ns.key_file             # TSIG key allowed to update ns.zone only
        ns.other_key_file       # TSIG key allowed to update ns.other_zone only
        ns.txt("_acme-challenge.est.home.arpa")   # ["..."] or []
        ns.publish_dns01("dev.home.arpa", keyauth)  # the dns-01 TXT
    finally:
        ns.stop()               # kills named, removes its directory

Two dynamic primary zones, each with its own key: zone (default
"home.arpa") and other_zone (default "other.arpa").  A key may update its
own zone only; BIND answers REFUSED when it tries the other one.  The key
files are in BIND's format (as tsig-keygen writes them; what
dnsupdate_key_load reads), hmac-sha256, mode 0600.  The journals (.jnl)
and named's log are in the fixture's own temporary directory (ns.dir).
Bind is also a context manager (stop() on exit).
"""
import base64
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1 (named needs both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise AssertionError("no free port for named")


def have_bind():
    """Whether named, dig and nsupdate are installed (else: skip the test)."""
    return all(shutil.which(t) for t in ("named", "dig", "nsupdate"))


class Bind:
    """named -g serving zone and other_zone on 127.0.0.1:self.port."""

    def __init__(self, zone="home.arpa", other_zone="other.arpa",
                 prefix="iotca-bind.", key_name="iotca-update",
                 other_key_name="other-update"):
        self.zone = zone
        self.other_zone = other_zone
        self.key_name = key_name
        self.other_key_name = other_key_name
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.proc = None
        self.key_file = os.path.join(self.dir, "update.key")
        self.other_key_file = os.path.join(self.dir, "other.key")
        self.secret = self._write_key(self.key_file, key_name)
        self.other_secret = self._write_key(self.other_key_file,
                                            other_key_name)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _write_key(path, name):
        secret = base64.b64encode(os.urandom(32)).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write('key "%s" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n'
                    '};\n' % (name, secret))
        return secret

    def _zone_file(self, zone):
        path = os.path.join(self.dir, zone + ".zone")
        with open(path, "w") as f:
            f.write("$TTL 60\n@ IN SOA ns.%(z)s. admin.%(z)s. 1 60 60 600 60\n"
                    "@ IN NS ns.%(z)s.\nns IN A 127.0.0.1\n" % {"z": zone})
        return path

    def _start(self):
        d = self.dir
        conf = os.path.join(d, "named.conf")
        keys = ""
        for path in (self.key_file, self.other_key_file):
            with open(path) as f:
                keys += f.read()
        zones = ""
        for zone, key in ((self.zone, self.key_name),
                          (self.other_zone, self.other_key_name)):
            zones += ('zone "%s" { type primary; file "%s";\n'
                      '\tallow-update { key "%s"; }; };\n'
                      % (zone, self._zone_file(zone), key))
        for attempt in range(3):
            self.port = free_port()
            self.server = "127.0.0.1:%d" % self.port
            with open(conf, "w") as f:
                f.write("""options {
	directory "%(d)s";
	listen-on port %(p)d { 127.0.0.1; };
	listen-on-v6 { none; };
	pid-file "%(d)s/named.pid";
	session-keyfile "%(d)s/session.key";
	managed-keys-directory "%(d)s";
	recursion no;
	dnssec-validation no;
	notify no;
};
controls { };
%(keys)s%(zones)s""" % {"d": d, "p": self.port, "keys": keys,
                        "zones": zones})
            os.chmod(conf, 0o600)
            log = open(os.path.join(d, "named.log"), "a")
            self.proc = subprocess.Popen(["named", "-g", "-c", conf],
                                         stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL,
                                         start_new_session=True)
            log.close()
            end = time.time() + 15
            while time.time() < end and self.proc.poll() is None:
                if "127.0.0.1" in self.query("ns." + self.zone, "A") and \
                   "127.0.0.1" in self.query("ns." + self.other_zone, "A"):
                    return
                time.sleep(0.1)
            self._kill()
        raise AssertionError("named did not start: " + self.log()[-2000:])

    def query(self, name, rtype):
        """dig +short NAME RTYPE at this server: the answer lines."""
        r = subprocess.run(["dig", "+short", "+time=2", "+tries=2", "-p",
                            str(self.port), "@127.0.0.1", name, rtype],
                           capture_output=True, text=True)
        return [ln for ln in r.stdout.splitlines() if ln.strip()]

    def txt(self, name):
        """The TXT strings at name (one per record, its character-strings
        joined, quotes removed); [] when there is none."""
        out = []
        for ln in self.query(name, "TXT"):
            parts = []
            i = 0
            while i < len(ln):
                if ln[i] == '"':
                    j = i + 1
                    s = ""
                    while j < len(ln) and ln[j] != '"':
                        if ln[j] == "\\" and j + 1 < len(ln):
                            j += 1
                        s += ln[j]
                        j += 1
                    parts.append(s)
                    i = j + 1
                else:
                    i += 1
            out.append("".join(parts))
        return out

    def nsupdate(self, commands, key_file=None):
        """Run nsupdate -k key_file (default: self.key_file) with commands
        (the "update ..." lines; server and send are added)."""
        script = "server 127.0.0.1 %d\n%s\nsend\n" % (self.port,
                                                     commands.rstrip("\n"))
        return subprocess.run(["nsupdate", "-k", key_file or self.key_file],
                              input=script, capture_output=True, text=True)

    def publish_dns01(self, name, keyauth):
        """Put the dns-01 TXT for name (RFC 8555 8.4: base64url of the
        SHA-256 of keyauth) at _acme-challenge.name in self.zone, replacing
        any there, by an update signed with self.key_file."""
        txt = base64.urlsafe_b64encode(hashlib.sha256(
            keyauth.encode()).digest()).rstrip(b"=").decode()
        r = self.nsupdate("zone %s\nupdate delete _acme-challenge.%s TXT\n"
                          "update add _acme-challenge.%s 60 TXT \"%s\"\n"
                          % (self.zone, name, name, txt))
        if r.returncode != 0:
            raise AssertionError("nsupdate: " + r.stderr)

    def log(self):
        try:
            with open(os.path.join(self.dir, "named.log"),
                      errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def stop(self):
        """Stop named and remove its directory (keys, zones, journals)."""
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
