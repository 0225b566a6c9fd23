#!/usr/bin/env python3
"""signer.db's lookups stay indexed as the devices grow (issue 15, item 3).

A signer.db of schema version 4 as the signer before this change left it
(no approvals_device_status index), holding two real devices' approvals and
certificates and 20,000 more approved devices, is opened by the signer:
the index appears, the version and the rows stay, and the lookup that
every issuance runs (signerdb_approvals_for: "approved for another
account") is planned on it instead of reading every approved device's row.
Renewal, the pending listing and the withdrawal of a device's approval with
its certificates still work on the upgraded file.
"""
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from iotca_stack import Stack, call, make_csr  # noqa: E402

OTHERS = 20000

# The query of signerdb_approvals_for(), as casvc/signerdb.c runs it.
APPROVALS_FOR = (
    "SELECT a.id, a.device_id, a.account, a.names, a.status, "
    "a.requested_at, a.requested_by, a.decided_at, a.decided_by, a.reason, "
    "EXISTS (SELECT 1 FROM approvals o WHERE o.device_id = a.device_id "
    "AND o.subtree IS a.subtree AND o.account != a.account "
    "AND o.status = 'approved'), a.subtree FROM approvals a WHERE "
    "a.device_id = 'idx-1' AND a.account = 'acct-1' AND a.subtree IS NULL "
    "ORDER BY a.id DESC")


class Indexes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.st = Stack(prefix="iotca-idx.")

    @classmethod
    def tearDownClass(cls):
        cls.st.finish()

    def issue(self, device, account):
        # A fresh key every time (make_csr makes one): no key reuse.
        csr = make_csr(self.st.tmp, device, ["DNS:%s.local" % device])
        return call(self.st.signer, {"op": "issue", "csr": csr,
                                     "account": account})

    def approved_issue(self, device, account):
        r = self.issue(device, account)
        if r.get("error") == "approvalPending":
            self.st.iotca("approve", str(r["request"]))
            r = self.issue(device, account)
        self.assertTrue(r["ok"], r)
        return r

    def test_v4_file_gains_the_index(self):
        st = self.st
        self.approved_issue("idx-1", "acct-1")
        self.approved_issue("idx-2", "acct-2")
        st.stop_signer()
        # The file as the signer of schema version 4 made it, and a year's
        # devices beside the two.
        st.sql("DROP INDEX IF EXISTS approvals_device_status;")
        st.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
               "FROM n WHERE i < %d) INSERT INTO approvals(device_id, "
               "account, names, status, requested_at, requested_by, "
               "decided_at, decided_by) SELECT 'other-' || i, 'acct-o' || i, "
               "'[]', 'approved', 0, 'test', 0, 'test' FROM n;" % OTHERS)
        self.assertEqual(st.sql("SELECT value FROM meta WHERE key = "
                                "'schema_version'"), "4")
        nappr = st.sql("SELECT count(*) FROM approvals")
        ncert = st.sql("SELECT count(*) FROM certs")
        st.start_signer()

        self.assertEqual(st.sql("SELECT count(*) FROM sqlite_schema WHERE "
                                "name = 'approvals_device_status'"), "1")
        self.assertEqual(st.sql("SELECT value FROM meta WHERE key = "
                                "'schema_version'"), "4")
        self.assertEqual(st.sql("SELECT count(*) FROM approvals"), nappr)
        self.assertEqual(st.sql("SELECT count(*) FROM certs"), ncert)
        plan = st.sql("EXPLAIN QUERY PLAN " + APPROVALS_FOR)
        print(plan)
        self.assertIn("approvals_device_status", plan)
        self.assertNotIn("approvals_status", plan)

        # Renewal (approved already) issues at once on the upgraded file.
        csr = make_csr(st.tmp, "idx-1", ["DNS:idx-1.local"])
        t0 = time.monotonic()
        r = call(st.signer, {"op": "issue", "csr": csr, "account": "acct-1"})
        print("renewal with %d approved devices: %.1f ms"
              % (OTHERS + 2, (time.monotonic() - t0) * 1000))
        self.assertTrue(r["ok"], r)
        # The listings and the withdrawal of a device with its certificates.
        r = call(st.admin, {"op": "pending"})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["requests"], [])
        r = call(st.admin, {"op": "revoke_approval", "device_id": "idx-1",
                            "revoke_certs": True})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["certs"], 2, r)
        r = call(st.admin, {"op": "certs", "device": "idx-1",
                            "status": "valid"})
        self.assertEqual(r["certs"], [], r)
        r = call(st.admin, {"op": "certs", "device": "idx-2",
                            "status": "valid"})
        self.assertEqual(len(r["certs"]), 1, r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
