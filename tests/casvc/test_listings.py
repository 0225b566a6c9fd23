#!/usr/bin/env python3
"""Listings past the 64 KiB record limit (issue 10, item 1), end to end.

A devstack (file key) gets more than 300 certificates and more than 300
approval requests, enough that no listing fits in one record.  `iotca certs`,
`pending` and `approvals` must still print every row (following the signer's
pages), quickly; the paging cursor must give no duplicates and no gaps; the
filters must give the right subsets; and a reply that cannot fit (the CRL
after about a thousand revocations) must come back as `tooLarge` at once,
not as silence and a 60 s wait.
"""
import json
import os
import socket
import subprocess
import sys
import time
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from iotca_stack import Stack  # noqa: E402

NCERTS = 320            # certificates, over 40 devices
NDEVICES = 40
NREQUESTS = 310         # pending approval requests, one device each
NCRL = 1100             # revoked certificates for the oversize CRL
CLI_TIMEOUT = 20        # the old code hung 60 s: fail well before


def csr_pem(device, names):
    """A fresh P-384 key for every CSR: the signer refuses key reuse."""
    key = ec.generate_private_key(ec.SECP384R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                       device)]))
           .add_extension(x509.SubjectAlternativeName(
               [x509.DNSName(n) for n in names]), critical=False)
           .sign(key, hashes.SHA384()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


class Conn:
    """One connection to a signer socket, reused for many requests."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(CLI_TIMEOUT)
        self.s.connect(path)

    def call(self, req):
        self.s.send(json.dumps(req).encode())
        return json.loads(self.s.recv(1 << 17))

    def close(self):
        self.s.close()


class Listings(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.st = Stack(prefix="iotca-list.", key="file")
        try:
            cls.fill()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def fill(cls):
        # The front end's own server certificate is there already.
        cls.base = set(cls.st.sql("SELECT serial FROM certs").split())
        cls.serials = {}        # serial -> (device, days)
        adm = Conn(cls.st.admin)
        try:
            for i in range(NCERTS):
                dev = "dev-%03d" % (i % NDEVICES)
                days = 1 if i % 10 == 3 else 90
                r = adm.call({"op": "issue", "days": days,
                              "csr": csr_pem(dev, [dev + ".local"])})
                assert r["ok"], r
                cls.serials[r["serial"]] = (dev, days)
            cls.revoked = sorted(cls.serials)[:12]
            for s in cls.revoked:
                r = adm.call({"op": "revoke", "serial": s,
                              "reason": "superseded"})
                assert r["ok"], r
        finally:
            adm.close()
        # Three valid certificates made expired behind the signer's back.
        cls.expired = [s for s in sorted(cls.serials)
                       if s not in cls.revoked][:3]
        cls.st.sql("UPDATE certs SET not_after = strftime('%s','now') - 60 "
                   "WHERE serial IN (" +
                   ",".join("'%s'" % s for s in cls.expired) + ")")
        front = Conn(cls.st.signer)
        cls.requests = {}
        try:
            for i in range(NREQUESTS):
                dev = "waiting-device-with-a-long-id-%04d" % i
                r = front.call({"op": "issue", "account": "acct-%d" % (i % 7),
                                "csr": csr_pem(dev, [dev + ".local",
                                                     dev + ".home.arpa"])})
                assert r.get("error") == "approvalPending", r
                cls.requests[r["request"]] = dev
        finally:
            front.close()

    @classmethod
    def tearDownClass(cls):
        cls.st.finish()

    def iotca(self, *args, ok=True):
        r = subprocess.run([os.path.join(os.environ["IOTCA_BIN"], "iotca"),
                            "--socket", self.st.admin] + list(args),
                           capture_output=True, text=True,
                           timeout=CLI_TIMEOUT)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def page_all(self, op, key, cursor, **filters):
        """Follow the pages of op with a small limit: every row once."""
        conn = Conn(self.st.admin)
        rows, after, pages = [], None, 0
        try:
            while True:
                req = {"op": op, "limit": 7}
                req.update(filters)
                if after is not None:
                    req["after"] = after
                r = conn.call(req)
                self.assertTrue(r["ok"], r)
                rows += r[key]
                pages += 1
                self.assertLess(pages, 1000)
                if not r["more"]:
                    break
                self.assertTrue(r[key], "more with an empty page")
                after = r[key][-1][cursor]
        finally:
            conn.close()
        return rows

    # -- certs ------------------------------------------------------------

    def test_01_certs_prints_everything(self):
        t = time.monotonic()
        out = self.iotca("certs").stdout.splitlines()
        took = time.monotonic() - t
        self.assertLess(took, 5, "iotca certs took %.1f s" % took)
        self.assertEqual(len(out), NCERTS + len(self.base) + 1)  # header
        listed = {line.split()[0] for line in out[1:]}
        self.assertEqual(listed, set(self.serials) | self.base)
        print("iotca certs: %d rows in %.2f s" % (len(out) - 1, took))

    def test_02_certs_json_is_one_array_of_all(self):
        rows = json.loads(self.iotca("certs", "--json").stdout)
        self.assertEqual(len(rows), NCERTS + len(self.base))
        self.assertEqual({r["serial"] for r in rows},
                         set(self.serials) | self.base)

    def test_03_cursor_no_duplicates_no_gaps(self):
        rows = self.page_all("certs", "certs", "serial")
        serials = [r["serial"] for r in rows]
        self.assertEqual(len(serials), len(set(serials)))
        self.assertEqual(set(serials), set(self.serials) | self.base)
        # Newest first, and the same order as the CLI's.
        order = [(r["issued_at"]) for r in rows]
        self.assertEqual(order, sorted(order, reverse=True))
        cli = [r["serial"] for r in
               json.loads(self.iotca("certs", "--json").stdout)]
        self.assertEqual(cli, serials)

    def test_04_filters(self):
        dev = "dev-007"
        want = {s for s, (d, _) in self.serials.items() if d == dev}
        rows = json.loads(self.iotca("certs", "--device", dev,
                                     "--json").stdout)
        self.assertEqual({r["serial"] for r in rows}, want)
        text = self.iotca("certs", "--device", dev).stdout.splitlines()
        self.assertEqual(len(text), len(want) + 1)

        rows = json.loads(self.iotca("certs", "--status", "revoked",
                                     "--json").stdout)
        self.assertEqual({r["serial"] for r in rows}, set(self.revoked))
        rows = json.loads(self.iotca("certs", "--status", "expired",
                                     "--json").stdout)
        self.assertEqual({r["serial"] for r in rows}, set(self.expired))
        rows = json.loads(self.iotca("certs", "--status", "valid",
                                     "--json").stdout)
        self.assertEqual({r["serial"] for r in rows},
                         (set(self.serials) | self.base) -
                         set(self.revoked) - set(self.expired))

        short = {s for s, (_, days) in self.serials.items() if days == 1} - \
            set(self.revoked) - set(self.expired)
        self.assertTrue(short)
        for spec in ("3d", "3", "72h"):
            rows = json.loads(self.iotca("certs", "--expiring-within", spec,
                                         "--json").stdout)
            self.assertEqual({r["serial"] for r in rows}, short, spec)
        # Filters combine, and page like the rest.
        rows = self.page_all("certs", "certs", "serial", device="dev-003",
                             expiring_within=3 * 86400)
        self.assertEqual({r["serial"] for r in rows},
                         {s for s in short if self.serials[s][0] == "dev-003"})
        rows = self.page_all("certs", "certs", "serial", status="valid")
        self.assertEqual(len(rows), NCERTS + len(self.base) -
                         len(self.revoked) - len(self.expired))

    def test_05_bad_arguments_refused(self):
        adm = Conn(self.st.admin)
        try:
            for req in ({"limit": 0}, {"limit": 501}, {"limit": "7"},
                        {"status": "bogus"}, {"device": ""},
                        {"device": 7}, {"expiring_within": -1},
                        {"after": "NOT-HEX"}, {"after": "ABCDEF0123"}):
                req["op"] = "certs"
                r = adm.call(req)
                self.assertEqual(r.get("error"), "badRequest", (req, r))
            for op in ("pending", "approvals"):
                for req in ({"limit": 0}, {"after": "x"}, {"after": -1},
                            {"device": 3}):
                    req["op"] = op
                    r = adm.call(req)
                    self.assertEqual(r.get("error"), "badRequest", (req, r))
        finally:
            adm.close()
        r = self.iotca("certs", "--status", "bogus", ok=False)
        self.assertEqual(r.returncode, 2, r.stderr)
        r = self.iotca("certs", "--expiring-within", "soon", ok=False)
        self.assertEqual(r.returncode, 2, r.stderr)

    # -- pending and approvals --------------------------------------------

    def test_06_pending_lists_everything(self):
        t = time.monotonic()
        out = self.iotca("pending").stdout.splitlines()
        took = time.monotonic() - t
        self.assertLess(took, 5)
        self.assertEqual(len(out), NREQUESTS + 1)
        rows = json.loads(self.iotca("pending", "--json").stdout)
        self.assertEqual({r["id"] for r in rows}, set(self.requests))
        paged = self.page_all("pending", "requests", "id")
        ids = [r["id"] for r in paged]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(set(ids), set(self.requests))
        self.assertEqual(ids, [r["id"] for r in rows])
        print("iotca pending: %d rows in %.2f s" % (len(out) - 1, took))

    def test_07_approvals_lists_everything(self):
        out = self.iotca("approvals").stdout.splitlines()
        self.assertEqual(len(out), NREQUESTS + 1)
        rows = json.loads(self.iotca("approvals", "--json").stdout)
        self.assertEqual({r["id"] for r in rows}, set(self.requests))
        paged = self.page_all("approvals", "approvals", "id")
        self.assertEqual([r["id"] for r in paged], [r["id"] for r in rows])

    def test_08_device_filter_on_requests(self):
        req_id, dev = sorted(self.requests.items())[5]
        for cmd in ("pending", "approvals"):
            rows = json.loads(self.iotca(cmd, "--device", dev,
                                         "--json").stdout)
            self.assertEqual([r["id"] for r in rows], [req_id], cmd)
        out = self.iotca("pending", "--device", "no-such-device").stdout
        self.assertIn("no pending requests", out)

    # -- a reply that cannot fit ------------------------------------------

    def test_09_oversize_reply_is_tooLarge(self):
        # ~1,100 revoked certificates: the CRL's PEM passes 64 KiB.
        adm = Conn(self.st.admin)
        try:
            for i in range(NCRL):
                r = adm.call({"op": "issue",
                              "csr": csr_pem("crl-dev", ["crl-dev.local"])})
                self.assertTrue(r["ok"], r)
            r = adm.call({"op": "revoke_approval", "device_id": "crl-dev",
                          "revoke_certs": True})
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["certs"], NCRL)
            t = time.monotonic()
            r = adm.call({"op": "crl"})
            took = time.monotonic() - t
            self.assertFalse(r["ok"])
            self.assertEqual(r["error"], "tooLarge", r)
            self.assertLess(took, 2)
            # The connection stays usable.
            self.assertTrue(adm.call({"op": "status"})["ok"])
        finally:
            adm.close()
        # The operator's command reads it in pages (test_crl_large.py).
        t = time.monotonic()
        r = self.iotca("crl", "--out", os.path.join(self.st.tmp, "crl.pem"))
        took = time.monotonic() - t
        self.assertEqual(r.returncode, 0)
        with open(os.path.join(self.st.tmp, "crl.pem"), "rb") as f:
            self.assertGreaterEqual(len(x509.load_pem_x509_crl(f.read())),
                                    NCRL)
        self.assertLess(took, 5)
        print("oversize CRL: tooLarge in one record; iotca crl read it "
              "in pages in %.3f s" % took)


if __name__ == "__main__":
    unittest.main(verbosity=2)
