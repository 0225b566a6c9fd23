#!/usr/bin/env python3
"""No key reuse (draft-sweet-iot-acme 4.11, RFC 8555 11.1) and the CSR key
error type (RFC 8555 7.4), end to end on a devstack (file key, loopback).

The signer refuses, with badCSR and the reason, a CSR whose key
  - was certified before (through `iotca issue` on admin.sock, and through
    ACME),
  - is the requesting ACME account's key (the front end sends it as
    "account_key"; checked on signer.sock and through ACME),
  - is the appliance's root key,
  - was revoked for keyCompromise, even once the certificate's row is gone.
A P-256 CSR at finalize is badCSR, not badPublicKey.  The ACME side is a
small client written here from RFC 8555 (urllib + python3-cryptography).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from acme_test_client import (URN, Client, Http, Http01, Key,  # noqa: E402
                              b64, serve_http01)
from iotca_stack import DEVSTACK, Stack, call, devstack_env  # noqa: E402

DEVICE = "kr-1"


def pem_pub(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def csr(key, names, cn=None, der=False):
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    b = b.add_extension(x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in names]), critical=False)
    r = b.sign(key, hashes.SHA384())
    return r.public_bytes(serialization.Encoding.DER if der else
                          serialization.Encoding.PEM)


def p384():
    return ec.generate_private_key(ec.SECP384R1())


class KeyReuseStack(Stack):
    """A devstack with the ACME side's http-01 on a port of ours and the
    device's names resolving to loopback; the signer approves by itself
    (the rule under test comes before approval)."""

    def __init__(self, port):
        self.port = port
        super().__init__(prefix="iotca-keyreuse.", key="file")

    def start(self):
        hosts = os.path.join(self.tmp, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 %s.local\n" % DEVICE)
        r = subprocess.run([DEVSTACK, "start", self.dir, "--key", "file",
                            "--http01-port", str(self.port), "--hosts",
                            hosts, "--auto-approve"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("devstack start: " + r.stderr)
        self.env = devstack_env(self.dir)


class Acme(Client):
    """Just enough of an RFC 8555 client: one account (a P-384 key, one a
    CSR could legally carry), orders for one device, http-01 answered on
    our own port."""

    def __init__(self, directory, root, tokens):
        self.tokens = tokens
        super().__init__(Http(root), directory, Key(ec.SECP384R1()))
        assert self.account.status == 201, self.account.body

    def ready_order(self):
        """A new order for the device, its authorizations valid."""
        r = self.post(self.dir["newOrder"], {
            "identifiers": [{"type": "dns", "value": DEVICE + ".local"}]})
        order = r.json()
        assert r.status == 201, order
        url = r.headers["Location"]
        for az in order["authorizations"]:
            a = self.post(az, None).json()
            if a["status"] == "valid":
                continue
            ch = [c for c in a["challenges"] if c["type"] == "http-01"][0]
            self.tokens[ch["token"]] = ch["token"] + "." + self.key.thumb
            self.post(ch["url"], {})
            for _ in range(100):
                if self.post(az, None).json()["status"] != "pending":
                    break
                time.sleep(0.1)
        for _ in range(50):
            order = self.post(url, None).json()
            if order["status"] != "pending":
                break
            time.sleep(0.1)
        assert order["status"] == "ready", order
        return url, order

    def finalize(self, der):
        """Finalize a fresh order with a CSR; (order, problem or None)."""
        url, order = self.ready_order()
        r = self.post(order["finalize"], {"csr": b64(der)})
        body = r.json()
        if r.status >= 400:
            return None, body
        for _ in range(40):
            if body["status"] not in ("processing", "ready"):
                break
            time.sleep(0.5)
            body = self.post(url, None).json()
        return body, body.get("error")


class KeyReuse(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = serve_http01()
        cls.st = KeyReuseStack(cls.srv.server_address[1])
        cls.work = cls.st.tmp
        cls.acme = Acme(cls.st.env["IOTCA_ACME_DIRECTORY"],
                        cls.st.env["IOTCA_ROOT_PEM"], Http01.tokens)

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()
        cls.st.finish(logs=("signer.log", "acmed.log"))

    def admin_issue(self, pem):
        """`iotca issue` on admin.sock: (returncode, stdout + stderr)."""
        fd, path = tempfile.mkstemp(dir=self.work, suffix=".csr")
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        out = os.path.join(self.work, "leaf.pem")
        if os.path.exists(out):
            os.unlink(out)
        r = self.st.iotca("issue", "--json", "--csr", path, "--out", out,
                          ok=False)
        return r.returncode, r.stdout + r.stderr

    # --- admin.sock, through `iotca issue` -------------------------------

    def test_01_certified_key_refused(self):
        k = p384()
        rc, out = self.admin_issue(csr(k, ["kr-a.local"]))
        self.assertEqual(rc, 0, out)
        serial = json.loads(out)["serial"]
        # Same key, another CSR (a "renewal" that keeps its key).
        rc, out = self.admin_issue(csr(k, ["kr-a.local", "kr-a.home.arpa"],
                                       cn="kr-a"))
        self.assertNotEqual(rc, 0, out)
        self.assertIn("badCSR", out)
        self.assertIn("the CSR's key was certified before (serial %s)"
                      % serial, out)
        self.assertFalse(os.path.exists(os.path.join(self.work, "leaf.pem")))
        # A new key for the same device is fine.
        rc, out = self.admin_issue(csr(p384(), ["kr-a.local"]))
        self.assertEqual(rc, 0, out)

    def test_02_root_key_refused(self):
        with open(os.path.join(self.st.dir, "root-key.pem"), "rb") as f:
            root = serialization.load_pem_private_key(f.read(), None)
        rc, out = self.admin_issue(csr(root, ["kr-b.local"]))
        self.assertNotEqual(rc, 0, out)
        self.assertIn("badCSR", out)
        self.assertIn("the CSR's key is the appliance's root key", out)

    def test_03_front_end_server_key_refused(self):
        # The front end's TLS certificate is an issued certificate too.
        k = p384()
        r = call(self.st.signer, {"op": "server_cert", "csr": csr(
            k, ["iotca-test.local"]).decode()})
        self.assertTrue(r["ok"], r)
        rc, out = self.admin_issue(csr(k, ["kr-c.local"]))
        self.assertNotEqual(rc, 0, out)
        self.assertIn("certified before (serial %s)" % r["serial"], out)

    def test_04_compromised_key_blocked_for_good(self):
        k = p384()
        rc, out = self.admin_issue(csr(k, ["kr-d.local"]))
        self.assertEqual(rc, 0, out)
        serial = json.loads(out)["serial"]
        self.st.iotca("revoke", serial, "--reason", "keyCompromise")
        # The certificate's row goes (pruned, or lost): the key stays out.
        self.st.sql("DELETE FROM certs WHERE serial = '%s'" % serial)
        rc, out = self.admin_issue(csr(k, ["kr-d.local"]))
        self.assertNotEqual(rc, 0, out)
        self.assertIn("badCSR", out)
        self.assertIn("revoked for keyCompromise (serial %s)" % serial, out)

    # --- signer.sock, as the front end speaks it --------------------------

    def test_05_account_key_refused_on_signer_socket(self):
        acct = p384()
        r = call(self.st.signer, {"op": "issue", "account": "acct-kr",
                                  "account_key": pem_pub(acct),
                                  "csr": csr(acct, ["kr-e.local"]).decode()})
        self.assertEqual(r.get("error"), "badCSR", r)
        self.assertIn("the CSR's key is the account key", r["reason"])
        r = call(self.st.signer, {"op": "issue", "account": "acct-kr",
                                  "account_key": "not a key",
                                  "csr": csr(p384(), ["kr-e.local"]).decode()})
        self.assertEqual(r.get("error"), "badRequest", r)

    # --- through ACME ------------------------------------------------------

    def test_10_acme_p256_csr_is_badcsr(self):
        k = ec.generate_private_key(ec.SECP256R1())
        order, problem = self.acme.finalize(csr(k, [DEVICE + ".local"],
                                                der=True))
        self.assertIsNotNone(problem, order)
        self.assertEqual(problem["type"], URN + "badCSR", problem)
        self.assertIn("P-256", problem["detail"])

    def test_11_acme_account_key_refused(self):
        order, problem = self.acme.finalize(csr(self.acme.key.priv,
                                                [DEVICE + ".local"], der=True))
        self.assertIsNotNone(problem, order)
        self.assertEqual(problem["type"], URN + "badCSR", problem)
        self.assertIn("the CSR's key is the account key", problem["detail"])

    def test_12_acme_reused_key_refused(self):
        k = p384()
        order, problem = self.acme.finalize(csr(k, [DEVICE + ".local"],
                                                der=True))
        self.assertIsNone(problem, order)
        self.assertEqual(order["status"], "valid", order)
        order, problem = self.acme.finalize(csr(k, [DEVICE + ".local"],
                                                cn=DEVICE, der=True))
        self.assertIsNotNone(problem, order)
        self.assertEqual(problem["type"], URN + "badCSR", problem)
        self.assertIn("the CSR's key was certified before", problem["detail"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
