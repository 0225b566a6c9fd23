#!/usr/bin/env python3
"""Operator approval in iotca-signer (draft-sweet-iot-acme 3.4.4), end to end.

The front end's side is spoken directly on signer.sock (as iotca-acmed
does); the operator's side is the real `iotca` command on admin.sock.
Starts its own devstack (file key) and stops it.
"""
import json
import os
import subprocess
import sys
import time
import unittest

# The devstack wrapper and signer-socket call shared by the Python tests.
sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from iotca_stack import Stack, call, make_csr  # noqa: E402


class Approvals(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.st = Stack(prefix="iotca-appr.", key="file")
        cls.work = cls.st.tmp

    @classmethod
    def tearDownClass(cls):
        cls.st.finish()

    def issue(self, csr, account="acct-A"):
        req = {"op": "issue", "csr": csr}
        if account is not None:
            req["account"] = account
        return call(self.st.signer, req)

    def verify(self, pem):
        path = os.path.join(self.work, "leaf.pem")
        with open(path, "w") as f:
            f.write(pem)
        r = subprocess.run(["openssl", "verify", "-CAfile", self.st.root,
                            path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_01_account_required(self):
        r = self.issue(make_csr(self.work, "cam-1", ["DNS:cam-1.local"]),
                       account=None)
        self.assertEqual(r["error"], "badRequest")
        self.assertIn("account", r["reason"])

    def test_02_first_request_waits_then_approval_issues(self):
        csr = make_csr(self.work, "printer-7", ["DNS:printer-7.local"])
        r = self.issue(csr)
        self.assertEqual(r["error"], "approvalPending")
        self.assertGreater(r["retry_after"], 0)
        req_id = r["request"]
        # Asking again is the same request, not a new one.
        self.assertEqual(self.issue(csr)["request"], req_id)
        pending = json.loads(self.st.iotca("pending", "--json").stdout)
        self.assertEqual([p["id"] for p in pending
                          if p["device_id"] == "printer-7"], [req_id])
        table = self.st.iotca("pending").stdout
        self.assertIn("printer-7", table)
        self.st.iotca("approve", str(req_id))
        r = self.issue(csr)
        self.assertTrue(r["ok"], r)
        self.verify(r["pem"])
        # A renewal with the approved names needs no operator.
        csr2 = make_csr(self.work, "printer-7", ["DNS:printer-7.local"])
        r = self.issue(csr2)
        self.assertTrue(r["ok"], r)
        # Approving twice says so.
        again = self.st.iotca("approve", str(req_id), ok=False)
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("already approved", again.stderr)

    def test_03_new_names_need_a_new_approval(self):
        # The device's own names (<id>.local, <id>.<domain>) are covered by
        # its approval; an address it was not approved with is new.
        csr = make_csr(self.work, "printer-7",
                       ["DNS:printer-7.local", "IP:192.168.1.77"])
        r = self.issue(csr)
        self.assertEqual(r["error"], "approvalPending")

    def test_04_other_account_is_another_request(self):
        csr = make_csr(self.work, "printer-7", ["DNS:printer-7.local"])
        r = self.issue(csr, account="acct-B")
        self.assertEqual(r["error"], "approvalPending")
        rows = json.loads(self.st.iotca("pending", "--json").stdout)
        row = [x for x in rows if x["id"] == r["request"]][0]
        self.assertTrue(row["approved_elsewhere"])

    def test_05_denial_reaches_the_client_and_is_final(self):
        csr = make_csr(self.work, "rogue-1", ["DNS:rogue-1.local"])
        req_id = self.issue(csr)["request"]
        self.st.iotca("deny", str(req_id), "--reason", "unknown device on port 12")
        r = self.issue(csr)
        self.assertEqual(r["error"], "approvalDenied")
        self.assertIn("unknown device on port 12", r["reason"])
        r = self.issue(make_csr(self.work, "rogue-1", ["DNS:rogue-1.local"]))
        self.assertEqual(r["error"], "approvalDenied")

    def test_06_revoked_approval_and_certs(self):
        csr = make_csr(self.work, "cam-9", ["DNS:cam-9.local"])
        req_id = self.issue(csr)["request"]
        self.st.iotca("approve", str(req_id))
        r = self.issue(csr)
        self.assertTrue(r["ok"], r)
        serial = r["serial"]
        out = self.st.iotca("revoke-approval", "cam-9", "--revoke-certs").stdout
        self.assertIn("1 certificates revoked", out)
        certs = json.loads(self.st.iotca("certs", "--json").stdout)
        self.assertEqual([c["status"] for c in certs if c["serial"] == serial],
                         ["revoked"])
        # A fresh key: the old one was certified (no key reuse).
        csr = make_csr(self.work, "cam-9", ["DNS:cam-9.local"])
        r = self.issue(csr)
        self.assertEqual(r["error"], "approvalDenied")
        self.assertIn("approval revoked", r["reason"])
        crl = os.path.join(self.work, "crl.pem")
        self.st.iotca("crl", "--out", crl)
        text = subprocess.run(["openssl", "crl", "-in", crl, "-noout", "-text"],
                              capture_output=True, text=True).stdout
        self.assertIn(serial, text)
        # The operator may change their mind: approve the request again.
        self.st.iotca("approve", str(req_id))
        self.assertTrue(self.issue(csr)["ok"])

    def test_07_policy_still_applies_to_approved_devices(self):
        csr = make_csr(self.work, "printer-7", ["DNS:printer-7.example.org"])
        r = self.issue(csr)
        self.assertEqual(r["error"], "rejectedIdentifier")

    def test_08_front_end_revokes_only_for_the_owner(self):
        csr = make_csr(self.work, "printer-7", ["DNS:printer-7.local"])
        r = self.issue(csr)
        self.assertTrue(r["ok"], r)
        bad = call(self.st.signer, {"op": "revoke", "serial": r["serial"],
                                    "account": "acct-B"})
        self.assertEqual(bad["error"], "unauthorized")
        good = call(self.st.signer, {"op": "revoke", "serial": r["serial"],
                                     "account": "acct-A",
                                     "reason": "superseded"})
        self.assertTrue(good["ok"], good)

    def test_09_server_certificate(self):
        csr = make_csr(self.work, "iotca-test",
                       ["DNS:iotca-test.local", "DNS:iotca-test.home.arpa",
                        "IP:127.0.0.1"])
        r = call(self.st.signer, {"op": "server_cert", "csr": csr})
        self.assertTrue(r["ok"], r)
        self.verify(r["pem"])
        self.assertLessEqual(r["not_after"], time.time() + 7 * 86400 + 60)
        other = make_csr(self.work, "cam-1", ["DNS:cam-1.local"])
        r = call(self.st.signer, {"op": "server_cert", "csr": other})
        self.assertEqual(r["error"], "rejectedIdentifier")
        wrong_ip = make_csr(self.work, "iotca-test",
                            ["DNS:iotca-test.local", "IP:10.0.0.9"])
        r = call(self.st.signer, {"op": "server_cert", "csr": wrong_ip})
        self.assertEqual(r["error"], "rejectedIdentifier")
        # Operators have no business asking for it.
        r = call(self.st.admin, {"op": "server_cert", "csr": csr})
        self.assertEqual(r["error"], "unauthorized")

    def test_10_pending_survives_restart(self):
        csr = make_csr(self.work, "door-3", ["DNS:door-3.local"])
        req_id = self.issue(csr)["request"]
        self.st.stop()
        self.st.start()
        rows = json.loads(self.st.iotca("pending", "--json").stdout)
        self.assertIn(req_id, [x["id"] for x in rows])
        self.st.iotca("approve", str(req_id))
        self.assertTrue(self.issue(csr)["ok"])

    def test_10b_batch_approval_by_pattern_then_all(self):
        """iotca approve --match GLOB, then --all: each its own record."""
        # Anything still pending from earlier tests is approved by --all
        # below; start from a clean slate for the counts.
        for row in json.loads(self.st.iotca("pending", "--json").stdout):
            self.st.iotca("deny", str(row["id"]))
        csrs = {}
        for dev in ["batch-cam-1", "batch-cam-2", "batch-cam-3",
                    "batch-door-1", "batch-door-2"]:
            csrs[dev] = make_csr(self.work, dev, ["DNS:%s.local" % dev])
            self.assertEqual(self.issue(csrs[dev], account="acct-B")["error"],
                             "approvalPending")
        before = len(self.st.iotca("audit", "export").stdout.splitlines())
        out = self.st.iotca("approve", "--match", "batch-cam-*").stdout
        self.assertEqual(out.count("approved"), 3, out)
        left = [r["device_id"] for r in
                json.loads(self.st.iotca("pending", "--json").stdout)]
        self.assertEqual(sorted(left), ["batch-door-1", "batch-door-2"])
        for dev in ["batch-cam-1", "batch-cam-2", "batch-cam-3"]:
            self.assertTrue(self.issue(csrs[dev], account="acct-B")["ok"])
        self.assertEqual(self.issue(csrs["batch-door-1"], account="acct-B")
                         ["error"], "approvalPending")
        out = self.st.iotca("approve", "--all").stdout
        self.assertEqual(out.count("approved"), 2, out)
        self.assertEqual(json.loads(self.st.iotca("pending", "--json").stdout),
                         [])
        for dev in ["batch-door-1", "batch-door-2"]:
            self.assertTrue(self.issue(csrs[dev], account="acct-B")["ok"])
        grants = [json.loads(line) for line in
                  self.st.iotca("audit", "export").stdout.splitlines()
                  [before:]]
        granted = sorted(g["record"]["device_id"] for g in grants
                         if g["record"]["event"] == "approval_granted")
        self.assertEqual(granted, sorted(csrs))
        # Nothing left: says so, exit 0.  Usage errors exit 2.
        self.assertIn("no pending requests",
                      self.st.iotca("approve", "--all").stdout)
        self.assertEqual(self.st.iotca("approve", "--all", "7",
                                       ok=False).returncode, 2)
        self.assertEqual(self.st.iotca("deny", "--all",
                                       ok=False).returncode, 2)

    def test_11_auto_approve_is_loud(self):
        conf = os.path.join(self.st.dir, "iotca.conf")
        self.st.stop()
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("[policy]\n", "[policy]\nauto_approve = true\n"))
        self.st.start()
        try:
            r = self.issue(make_csr(self.work, "lab-1", ["DNS:lab-1.local"]))
            self.assertTrue(r["ok"], r)
            log = self.st.log()
            self.assertIn("auto_approve is ON", log)
            self.assertIn("AUTO-APPROVED device lab-1", log)
        finally:
            self.st.stop()
            with open(conf, "w") as f:
                f.write(text)
            self.st.start()


if __name__ == "__main__":
    unittest.main(verbosity=2)
