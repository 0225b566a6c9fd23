#!/usr/bin/env python3
"""The CRL past the 64 KiB record limit, and one CRL per burst of revocations.

A devstack (file key) gets more than 1,000 revoked certificates, made at the
socket level.  The signer's `crl` without `offset` must refuse at once with
`tooLarge` naming the paged form; the pages of DER (`offset`, `der`, `total`,
`number`) must add up to the one CRL, which holds every revoked serial; and
`iotca crl` must print it.  Revocations that arrive together must be signed
into one CRL, not one CRL each; a reader asking right after a revocation
must see it; CRL numbers only grow, across a restart of the signer too.
"""
import base64
import json
import os
import re
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

NCRL = 1100             # revoked certificates: the PEM CRL passes 64 KiB
BURST = 12              # revocations sent together, one connection each
                        # (admin.sock keeps 16 connections)
TIMEOUT = 20


def csr_pem(device, names):
    key = ec.generate_private_key(ec.SECP384R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                       device)]))
           .add_extension(x509.SubjectAlternativeName(
               [x509.DNSName(n) for n in names]), critical=False)
           .sign(key, hashes.SHA384()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(TIMEOUT)
        self.s.connect(path)

    def send(self, req):
        self.s.send(json.dumps(req).encode())

    def recv(self):
        return json.loads(self.s.recv(1 << 17))

    def call(self, req):
        self.send(req)
        return self.recv()

    def close(self):
        self.s.close()


def crl_pages(path):
    """The CRL read in pages over one connection: (der, number, pages)."""
    c = Conn(path)
    try:
        der, number, pages = b"", None, 0
        while True:
            r = c.call({"op": "crl", "offset": len(der)})
            assert r["ok"], r
            assert number in (None, r["number"]), "CRL changed mid-read"
            number = r["number"]
            assert r["offset"] == len(der), r
            der += base64.b64decode(r["der"])
            pages += 1
            if len(der) == r["total"]:
                return der, number, pages
            assert pages < 100
    finally:
        c.close()


class CrlLarge(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # IOTCA_CRL_KEY=tpm2 measures with the software TPM (a slower key).
        cls.st = Stack(prefix="iotca-crl.",
                       key=os.environ.get("IOTCA_CRL_KEY", "file"))
        try:
            cls.fill()
        except BaseException:
            cls.st.finish()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.st.finish()

    @classmethod
    def fill(cls):
        adm = Conn(cls.st.admin)
        cls.serials = []
        t = time.monotonic()
        try:
            for i in range(NCRL + BURST * 8):
                r = adm.call({"op": "issue",
                              "csr": csr_pem("crl-dev", ["crl-dev.local"])})
                assert r["ok"], r
                cls.serials.append(r["serial"])
        finally:
            adm.close()
        print("issued %d certificates in %.1f s" % (len(cls.serials),
              time.monotonic() - t))

    def signings(self):
        return len(re.findall(r"CRL \d+ signed with", self.st.log()))

    def test_01_burst_is_one_crl(self):
        # BURST revocations sent before any answer is read: the signer
        # serves them in one round and signs one CRL for them (the old
        # code signed one CRL per revocation).
        todo = self.serials[NCRL:]
        before = self.signings()
        t = time.monotonic()
        rounds = 0
        while todo:
            batch, todo = todo[:BURST], todo[BURST:]
            conns = [Conn(self.st.admin) for _ in batch]
            try:
                for c, s in zip(conns, batch):
                    c.send({"op": "revoke", "serial": s,
                            "reason": "superseded"})
                for c in conns:
                    r = c.recv()
                    self.assertTrue(r["ok"], r)
            finally:
                for c in conns:
                    c.close()
            rounds += 1
            time.sleep(0.7)     # let the tick sign it (gap 500 ms)
        took = time.monotonic() - t
        signed = self.signings() - before
        n = len(self.serials) - NCRL
        print("%d revocations in %d bursts of %d: %d CRLs signed (%.2f s)"
              % (n, rounds, BURST, signed, took))
        self.assertLessEqual(signed, rounds * 2,
                             "a CRL per revocation, not per burst")

    def test_02_fresh_at_once(self):
        # A reader right after a revocation sees it (no waiting for a tick).
        adm = Conn(self.st.admin)
        try:
            first = adm.call({"op": "crl"})
            self.assertTrue(first["ok"], first)
            s = self.serials[0]
            t = time.monotonic()
            self.assertTrue(adm.call({"op": "revoke", "serial": s,
                                      "reason": "keyCompromise"})["ok"])
            r = adm.call({"op": "crl"})
            took = time.monotonic() - t
            self.assertTrue(r["ok"], r)
            crl = x509.load_pem_x509_crl(r["pem"].encode())
            self.assertIsNotNone(
                crl.get_revoked_certificate_by_serial_number(int(s, 16)))
            self.assertGreater(r["number"], first["number"])
            # The caller's number still current: "unchanged", no body.
            u = adm.call({"op": "crl", "number": r["number"]})
            self.assertTrue(u.get("unchanged"), u)
            self.assertNotIn("pem", u)
            print("revoke to CRL holding it: %.3f s" % took)
        finally:
            adm.close()

    def test_03_large_crl_in_pages(self):
        adm = Conn(self.st.admin)
        try:
            for s in self.serials[1:NCRL]:
                r = adm.call({"op": "revoke", "serial": s,
                              "reason": "superseded"})
                self.assertTrue(r["ok"], r)
            t = time.monotonic()
            r = adm.call({"op": "crl"})
            self.assertLess(time.monotonic() - t, 5)
            self.assertFalse(r["ok"])
            self.assertEqual(r["error"], "tooLarge", r)
            self.assertIn("offset", r["reason"])
            # Bad offsets are refused; the connection stays usable.
            for bad in (-1, "0", 1 << 40):
                r = adm.call({"op": "crl", "offset": bad})
                self.assertEqual(r.get("error"), "badRequest", (bad, r))
            self.assertTrue(adm.call({"op": "status"})["ok"])
        finally:
            adm.close()
        t = time.monotonic()
        der, number, pages = crl_pages(self.st.admin)
        took = time.monotonic() - t
        crl = x509.load_der_x509_crl(der)
        revoked = {format(e.serial_number, "X") for e in crl}
        want = {s.lstrip("0") for s in self.serials}
        self.assertEqual(len(crl), len(self.serials))
        self.assertEqual(revoked, want)
        root = x509.load_pem_x509_certificate(open(self.st.root, "rb").read())
        self.assertTrue(crl.is_signature_valid(root.public_key()))
        print("CRL of %d entries: %d bytes DER in %d pages, %.3f s"
              % (len(crl), len(der), pages, took))
        # What one signing of this CRL costs (a revocation, then a reader:
        # the stale CRL is signed before the answer).
        adm = Conn(self.st.admin)
        try:
            r = adm.call({"op": "issue",
                          "csr": csr_pem("crl-dev", ["crl-dev.local"])})
            self.assertTrue(r["ok"], r)
            self.assertTrue(adm.call({"op": "revoke", "serial": r["serial"]})
                            ["ok"])
            t = time.monotonic()
            r = adm.call({"op": "crl", "offset": 0})
            self.assertTrue(r["ok"], r)
            print("signing a CRL of %d entries: %.3f s"
                  % (len(crl) + 1, time.monotonic() - t))
        finally:
            adm.close()
        # The same through the front end's socket (all of it again).
        der2, number2, _ = crl_pages(self.st.signer)
        self.assertEqual(len(x509.load_der_x509_crl(der2)), len(crl) + 1)
        self.assertGreater(number2, number)
        der, number = der2, number2
        # And the operator's command.
        out = os.path.join(self.st.tmp, "crl.pem")
        t = time.monotonic()
        self.st.iotca("crl", "--out", out)
        took = time.monotonic() - t
        with open(out, "rb") as f:
            crl2 = x509.load_pem_x509_crl(f.read())
        self.assertEqual(crl2.public_bytes(serialization.Encoding.DER), der)
        self.assertLess(took, 10)
        print("iotca crl: %d entries in %.3f s" % (len(crl2), took))

    def test_04_numbers_only_grow(self):
        _, n1, _ = crl_pages(self.st.admin)
        self.st.stop_signer()
        self.st.start_signer()
        _, n2, _ = crl_pages(self.st.admin)
        self.assertGreater(n2, n1)
        nums = [int(m) for m in re.findall(r"CRL (\d+) signed with",
                                           self.st.log())]
        self.assertEqual(nums, sorted(set(nums)), "CRL numbers went back")
        print("CRL numbers %d .. %d, strictly growing over %d signings"
              % (nums[0], nums[-1], len(nums)))

    def test_05_stop_signs_a_stale_crl(self):
        # A revocation just before a stop (inside the 500 ms gap) is in a
        # CRL signed before the signer goes, not only at its next start.
        adm = Conn(self.st.admin)
        try:
            r = adm.call({"op": "issue",
                          "csr": csr_pem("crl-dev", ["crl-dev.local"])})
            self.assertTrue(r["ok"], r)
            crl_pages(self.st.admin)     # nothing stale before the test
            s = r["serial"]
            self.assertTrue(adm.call({"op": "revoke", "serial": s,
                                      "reason": "superseded"})["ok"])
        finally:
            adm.close()
        before = self.signings()
        self.st.stop_signer()
        log = self.st.log()
        tail = log[log.rfind("stopping"):]
        self.assertRegex(tail, r"CRL \d+ signed with", "no CRL at stop")
        self.assertEqual(self.signings(), before + 1)
        self.st.start_signer()


if __name__ == "__main__":
    unittest.main(verbosity=2)
