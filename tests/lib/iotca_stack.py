"""Shared by the Python tests: a wrapper around scripts/devstack and a call on
the signer's sockets.

Stack starts a development stack (scripts/devstack) in a fresh temporary
directory and stops it (finish(): stop, remove, check the logs for sanitizer
reports); call() sends one JSON request on signer.sock or admin.sock and
returns the answer; devstack_env() reads the variables a stack's env file
sets; start_acmed() starts a stack's iotca-acmed again on its own;
make_csr() writes a key and a CSR with openssl.  IOTCA_SRC (the
source tree) and IOTCA_BIN (the built binaries) come from the environment,
as the CMake test definitions set them.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

SRC = os.environ["IOTCA_SRC"]
BIN = os.environ["IOTCA_BIN"]
DEVSTACK = os.path.join(SRC, "scripts", "devstack")


def call(path, req):
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(30)
        s.connect(path)
        s.send(json.dumps(req).encode())
        return json.loads(s.recv(1 << 17))


def devstack_env(stack_dir):
    """The variables devstack wrote to stack_dir/env, as a dict."""
    env = {}
    with open(os.path.join(stack_dir, "env")) as f:
        for line in f:
            if line.startswith("export "):
                k, _, v = line.strip().removeprefix("export ").partition("=")
                env[k] = v
    return env


def start_acmed(stack_dir, http, dirurl, seconds=20):
    """What devstack does for iotca-acmed alone: the stack's config (so its
    port), its log and pid file.  Returns the process once dirurl answers
    200 through http (an acme_test_client.Http); raises if it does not
    within seconds."""
    with open(os.path.join(stack_dir, "acmed.log"), "a") as log:
        p = subprocess.Popen([os.path.join(BIN, "iotca-acmed"), "-c",
                              os.path.join(stack_dir, "iotca.conf")],
                             stdout=log, stderr=log, start_new_session=True)
    with open(os.path.join(stack_dir, "acmed.pid"), "w") as f:
        f.write("%d\n" % p.pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if http.request("GET", dirurl, timeout=2).status == 200:
                return p
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("iotca-acmed did not come back")


def make_csr(workdir, cn, sans):
    key = os.path.join(workdir, cn + ".key")
    csr = os.path.join(workdir, cn + ".csr")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-384", "-nodes", "-keyout", key,
                    "-out", csr, "-subj", "/CN=" + cn, "-addext",
                    "subjectAltName=" + ",".join(sans)],
                   check=True, capture_output=True)
    with open(csr) as f:
        return f.read()


class Stack:
    """A devstack in a new directory under $TMPDIR (self.tmp, which the
    caller removes); the stack's own state is in self.dir.

    prefix names the temporary directory; key is devstack's --key (the key
    store: "file" or "tpm2")."""

    def __init__(self, prefix="iotca-stack.", key="file"):
        self.key = key
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.dir = os.path.join(self.tmp, "stack")
        self.signer = os.path.join(self.dir, "signer.sock")
        self.admin = os.path.join(self.dir, "admin.sock")
        self.root = os.path.join(self.dir, "root.pem")
        self.db = os.path.join(self.dir, "signer.db")
        self.start()

    def start(self):
        r = subprocess.run([DEVSTACK, "start", self.dir, "--key", self.key],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("devstack start: " + r.stderr)

    def stop(self):
        subprocess.run([DEVSTACK, "stop", self.dir], check=True,
                       capture_output=True)

    def finish(self, logs=("signer.log",)):
        """Stop the stack and remove self.tmp; then fail if one of the
        daemons' logs (names in self.dir) holds a sanitizer report."""
        self.stop()
        text = ""
        for name in logs:
            try:
                with open(os.path.join(self.dir, name)) as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        assert "Sanitizer" not in text and "runtime error" not in text, text

    # The signer alone is stopped and started for the tampering cases: the
    # TPM (and the ACME front end, which a broken log would refuse its
    # server certificate) stay up.
    def stop_signer(self):
        pidfile = os.path.join(self.dir, "signer.pid")
        with open(pidfile) as f:
            pid = int(f.read())
        os.kill(pid, 15)
        if getattr(self, "proc", None) is not None and self.proc.pid == pid:
            self.proc.wait(timeout=10)      # ours: reap it
            return
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise AssertionError("iotca-signer did not stop")

    def start_signer(self):
        env = dict(os.environ)
        env.update(devstack_env(self.dir))
        with open(os.path.join(self.dir, "signer.log"), "a") as log:
            p = subprocess.Popen([os.path.join(BIN, "iotca-signer"), "-c",
                                  os.path.join(self.dir, "iotca.conf")],
                                 stdout=log, stderr=log, env=env,
                                 start_new_session=True)
        self.proc = p
        with open(os.path.join(self.dir, "signer.pid"), "w") as f:
            f.write("%d\n" % p.pid)
        for _ in range(200):
            if self.iotca("status", ok=False).returncode == 0:
                return
            if p.poll() is not None:
                raise AssertionError("iotca-signer exited: " + self.log())
            time.sleep(0.1)
        raise AssertionError("iotca-signer did not answer")

    def iotca(self, *args, ok=True):
        r = subprocess.run([os.path.join(BIN, "iotca"), "--socket",
                            self.admin] + list(args),
                           capture_output=True, text=True)
        if ok and r.returncode != 0:
            raise AssertionError("iotca %s: %s" % (args, r.stderr))
        return r

    def sql(self, statement, db=None):
        """The attacker's tool: the sqlite3 command on the live file."""
        r = subprocess.run(["sqlite3", "-cmd", ".timeout 5000",
                            db or self.db, statement],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("sqlite3 %s: %s" % (statement, r.stderr))
        return r.stdout.strip()

    def log(self):
        with open(os.path.join(self.dir, "signer.log")) as f:
            return f.read()
