#!/usr/bin/env python3
"""The sealed audit log, end to end: python3 test_audit.py tpm2|file

A flow of approvals, issuances, denials and revocations, then `iotca audit
verify`; then an attacker with the sqlite3 command changes, deletes, swaps
and truncates records, alters a checkpoint signature and puts back an older
copy of signer.db, and verify must name the first record that fails each
time; and when the audit record cannot be written, the change it records
is refused and nothing is half-written.  Runs against a devstack with the
key store given (tpm2: swtpm behind tpm2-abrmd).
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

STORE = sys.argv.pop(1) if len(sys.argv) > 1 else "file"


class Audit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.st = Stack(prefix="iotca-audit.", key=STORE)
        cls.work = cls.st.tmp
        cls.serials = []

    @classmethod
    def tearDownClass(cls):
        cls.st.finish()

    def issue(self, csr, account="acct-A"):
        return call(self.st.signer, {"op": "issue", "csr": csr,
                                     "account": account})

    def verify_ok(self):
        r = self.st.iotca("audit", "verify", ok=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("audit log verified:", r.stdout)
        return r

    def verify_fails_at(self, seq, *words):
        r = self.st.iotca("audit", "verify", ok=False)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("FAILED at record %d:" % seq, r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        return r

    def records(self):
        return [json.loads(line) for line in
                self.st.iotca("audit", "export").stdout.splitlines()]

    def events(self):
        return [r["record"]["event"] for r in self.records()]

    def test_01_flow_is_recorded_and_verifies(self):
        csr = make_csr(self.work, "printer-7", ["DNS:printer-7.local"])
        req = self.issue(csr)["request"]
        self.st.iotca("approve", str(req))
        r = self.issue(csr)
        self.assertTrue(r["ok"], r)
        self.serials.append(r["serial"])
        r = self.issue(make_csr(self.work, "printer-7",
                                ["DNS:printer-7.local"]))
        self.assertTrue(r["ok"], r)
        self.serials.append(r["serial"])
        rogue = make_csr(self.work, "rogue-1", ["DNS:rogue-1.local"])
        self.st.iotca("deny", str(self.issue(rogue)["request"]),
                      "--reason", "unknown device")
        self.assertEqual(self.issue(rogue)["error"], "approvalDenied")
        self.st.iotca("revoke", self.serials[0], "--reason", "superseded")
        cam = make_csr(self.work, "cam-9", ["DNS:cam-9.local"])
        self.st.iotca("approve", str(self.issue(cam)["request"]))
        self.assertTrue(self.issue(cam)["ok"])
        self.st.iotca("revoke-approval", "cam-9", "--revoke-certs")
        bad = make_csr(self.work, "cam-2", ["DNS:cam-2.example.org"])
        self.assertEqual(self.issue(bad)["error"], "rejectedIdentifier")
        # A revocation's CRL is signed a moment later (one per burst);
        # asking for it signs it now, so no record is written behind the
        # backs of the tests that cut and swap records below.
        self.assertTrue(call(self.st.admin, {"op": "crl"})["ok"])

        r = self.verify_ok()
        recs = self.records()
        self.assertIn("%d records" % len(recs), r.stdout)
        self.assertEqual([x["seq"] for x in recs],
                         list(range(1, len(recs) + 1)))
        ev = [x["record"]["event"] for x in recs]
        for e in ("audit_log_created", "ca_initialised", "signer_start",
                  "crl_signed", "approval_requested", "approval_granted",
                  "approval_denied", "certificate_issued",
                  "certificate_revoked", "approval_revoked",
                  "request_refused"):
            self.assertIn(e, ev)
        issued = [x["record"] for x in recs
                  if x["record"]["event"] == "certificate_issued"
                  and x["record"]["serial"] == self.serials[0]][0]
        self.assertEqual(issued["device_id"], "printer-7")
        self.assertEqual(issued["names"], ["printer-7.local"])
        self.assertEqual(issued["account"], "acct-A")
        self.assertGreater(issued["not_after"], issued["not_before"])
        self.assertEqual(issued["actor"]["role"], "frontend")
        granted = [x["record"] for x in recs
                   if x["record"]["event"] == "approval_granted"][0]
        self.assertEqual(granted["actor"]["role"], "operator")
        self.assertEqual(granted["actor"]["uid"], os.getuid())
        self.assertIn("user", granted["actor"])
        revoked = [x["record"] for x in recs
                   if x["record"]["event"] == "certificate_revoked"
                   and x["record"]["serial"] == self.serials[0]][0]
        self.assertEqual(revoked["reason"], "superseded")
        refused = [x["record"] for x in recs
                   if x["record"]["event"] == "request_refused"]
        self.assertIn("approvalDenied", [x["error"] for x in refused])
        self.assertIn("rejectedIdentifier", [x["error"] for x in refused])

        status = self.st.iotca("status").stdout
        if STORE == "file":
            self.assertIn("WEAKER than a TPM", status)
            self.assertIn("anchored in FILES", self.st.log())
        else:
            self.assertIn("sealed by the TPM", status)
        shown = self.st.iotca("audit", "show").stdout
        self.assertIn("certificate_issued", shown)
        self.assertIn(self.serials[0], shown)
        later = json.loads(self.st.iotca("audit", "show", "--json",
                                         "--since", "1h").stdout)
        self.assertEqual(len(later), len(recs))
        self.assertEqual(self.st.iotca("audit", "show", "--since",
                                       str(int(time.time()) + 3600)).stdout,
                         "no audit records in that time\n")
        self.assertEqual(self.st.iotca("audit", "show", "--since", "yesterday",
                                       ok=False).returncode, 2)

    def test_02_offline_verify_of_a_copy(self):
        pub = os.path.join(self.work, "audit-pub.pem")
        self.st.iotca("audit", "pubkey", "--out", pub)
        copy = os.path.join(self.work, "copy.db")
        self.st.sql(".backup '%s'" % copy)
        r = self.st.iotca("audit", "verify", "--offline", pub, "--db", copy,
                          ok=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("verified offline: %d records" % len(self.records()),
                      r.stdout)
        # The same copy, one field changed: caught without the TPM too.
        self.st.sql("UPDATE audit_log SET record = replace(record, "
                    "'printer-7', 'printer-8') WHERE seq = (SELECT min(seq) "
                    "FROM audit_log WHERE record LIKE '%printer-7%')", copy)
        r = self.st.iotca("audit", "verify", "--offline", pub, "--db", copy,
                          ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("was altered", r.stderr)
        # Another key does not verify this log's checkpoints.
        other = os.path.join(self.work, "other.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-384", "-out", other + ".key"],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", other + ".key", "-pubout",
                        "-out", other], check=True, capture_output=True)
        self.st.sql(".backup '%s'" % copy)
        r = self.st.iotca("audit", "verify", "--offline", other, "--db", copy,
                          ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad signature", r.stderr)

    def middle(self):
        n = int(self.st.sql("SELECT max(seq) FROM audit_log"))
        return n // 2

    def test_03_changed_field_is_named(self):
        seq = self.middle()
        old = self.st.sql("SELECT record FROM audit_log WHERE seq = %d" % seq)
        self.st.sql("UPDATE audit_log SET record = replace(record, "
                    "'\"time\":', '\"time\":1') WHERE seq = %d" % seq)
        try:
            self.verify_fails_at(seq, "altered")
        finally:
            self.st.sql("UPDATE audit_log SET record = '%s' WHERE seq = %d"
                        % (old.replace("'", "''"), seq))
        self.verify_ok()

    def test_04_deleted_middle_record_is_named(self):
        seq = self.middle()
        self.st.sql("CREATE TABLE saved AS SELECT * FROM audit_log WHERE "
                    "seq = %d; DELETE FROM audit_log WHERE seq = %d" % (seq, seq))
        try:
            self.verify_fails_at(seq, "missing")
        finally:
            self.st.sql("INSERT INTO audit_log SELECT * FROM saved; "
                        "DROP TABLE saved")
        self.verify_ok()

    def test_05_swapped_records_are_named(self):
        seq = self.middle()
        swap = ("UPDATE audit_log SET seq = -1 WHERE seq = %d; "
                "UPDATE audit_log SET seq = %d WHERE seq = %d; "
                "UPDATE audit_log SET seq = %d WHERE seq = -1"
                % (seq, seq, seq + 1, seq + 1))
        self.st.sql(swap)
        try:
            self.verify_fails_at(seq, "does not follow")
        finally:
            self.st.sql(swap)
        self.verify_ok()

    def test_06_checkpoint_signature_altered(self):
        cp, head = self.st.sql("SELECT id, head_seq FROM audit_checkpoints "
                               "ORDER BY id LIMIT 1 OFFSET 1").split("|")
        sig = self.st.sql("SELECT hex(signature) FROM audit_checkpoints "
                          "WHERE id = %s" % cp)
        flipped = sig[:-2] + ("00" if sig[-2:] != "00" else "01")
        self.st.sql("UPDATE audit_checkpoints SET signature = X'%s' WHERE "
                    "id = %s" % (flipped, cp))
        try:
            self.verify_fails_at(int(head), "checkpoint %s" % cp,
                                 "bad signature")
        finally:
            self.st.sql("UPDATE audit_checkpoints SET signature = X'%s' "
                        "WHERE id = %s" % (sig, cp))
        self.verify_ok()

    def test_07_cut_tail_is_named(self):
        # While the signer runs: it knows what it wrote.
        last = int(self.st.sql("SELECT max(seq) FROM audit_log"))
        self.st.sql("CREATE TABLE saved AS SELECT * FROM audit_log WHERE "
                    "seq > %d; DELETE FROM audit_log WHERE seq > %d"
                    % (last - 2, last - 2))
        self.verify_fails_at(last - 1, "missing")
        self.st.sql("INSERT INTO audit_log SELECT * FROM saved; "
                    "DROP TABLE saved")
        self.verify_ok()
        # After a stop: the shutdown checkpoint signed them.
        self.st.stop_signer()
        last = int(self.st.sql("SELECT max(seq) FROM audit_log"))
        self.st.sql("CREATE TABLE saved AS SELECT * FROM audit_log WHERE "
                    "seq > %d; DELETE FROM audit_log WHERE seq > %d"
                    % (last - 3, last - 3))
        self.st.start_signer()
        self.verify_fails_at(last - 2, "missing", "tail was cut off")
        self.assertIn("AUDIT LOG FAILED ITS CHECK", self.st.log())
        # A log that failed its check takes no new records: no changes.
        r = self.issue(make_csr(self.work, "printer-7",
                                ["DNS:printer-7.local"]))
        self.assertEqual(r["error"], "internal", r)
        self.st.stop_signer()
        self.st.sql("INSERT INTO audit_log SELECT * FROM saved; "
                    "DROP TABLE saved")
        self.st.start_signer()
        self.verify_ok()
        # Tail and its checkpoint both gone: the counter tells.
        self.st.stop_signer()
        last = int(self.st.sql("SELECT max(seq) FROM audit_log"))
        prev_head = int(self.st.sql("SELECT head_seq FROM audit_checkpoints "
                                    "ORDER BY id DESC LIMIT 1 OFFSET 1"))
        self.st.sql("CREATE TABLE saved AS SELECT * FROM audit_log WHERE "
                    "seq > %d; CREATE TABLE savedcp AS SELECT * FROM "
                    "audit_checkpoints WHERE id = (SELECT max(id) FROM "
                    "audit_checkpoints); DELETE FROM audit_log WHERE seq > %d; "
                    "DELETE FROM audit_checkpoints WHERE id = (SELECT id FROM "
                    "savedcp)" % (prev_head, prev_head))
        self.st.start_signer()
        self.verify_fails_at(prev_head + 1, "counter", "rolled back")
        self.st.stop_signer()
        self.st.sql("INSERT INTO audit_log SELECT * FROM saved; "
                    "INSERT INTO audit_checkpoints SELECT * FROM savedcp; "
                    "DROP TABLE saved; DROP TABLE savedcp")
        self.st.start_signer()
        self.verify_ok()

    def test_08_older_copy_is_detected(self):
        old = os.path.join(self.work, "old.db")
        self.st.sql(".backup '%s'" % old)
        head = int(self.st.sql("SELECT max(seq) FROM audit_log"))
        r = self.issue(make_csr(self.work, "printer-7",
                                ["DNS:printer-7.local"]))
        self.assertTrue(r["ok"], r)
        self.st.stop_signer()
        cur = os.path.join(self.work, "current.db")
        self.st.sql(".backup '%s'" % cur)
        self.st.sql(".restore '%s'" % old)
        self.st.start_signer()
        r = self.verify_fails_at(head + 1, "rolled back")
        self.st.stop_signer()
        self.st.sql(".restore '%s'" % cur)
        self.st.start_signer()
        self.verify_ok()

    def test_09_fail_closed(self):
        csr = make_csr(self.work, "door-3", ["DNS:door-3.local"])
        req = self.issue(csr)["request"]
        certs = self.st.sql("SELECT count(*) FROM certs")
        n = self.st.sql("SELECT count(*) FROM audit_log")
        # The audit record cannot be written; everything else could be.
        self.st.sql("CREATE TRIGGER audit_jam BEFORE INSERT ON audit_log "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        try:
            r = self.st.iotca("approve", str(req), ok=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("audit log cannot record it", r.stderr)
            self.assertEqual(self.st.sql("SELECT status FROM approvals "
                                         "WHERE id = %d" % req), "pending")
            # An approved device's renewal: no certificate without its record.
            r = self.issue(make_csr(self.work, "printer-7",
                                    ["DNS:printer-7.local"]))
            self.assertEqual(r["error"], "internal", r)
            self.assertIn("audit log", r["reason"])
            self.assertEqual(self.st.sql("SELECT count(*) FROM certs"), certs)
            serial = self.serials[1]
            r = self.st.iotca("revoke", serial, ok=False)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(self.st.sql("SELECT status FROM certs WHERE "
                                         "serial = '%s'" % serial), "valid")
            r = self.issue(make_csr(self.work, "new-1", ["DNS:new-1.local"]))
            self.assertEqual(r["error"], "internal", r)
            self.assertEqual(self.st.sql("SELECT count(*) FROM approvals "
                                         "WHERE device_id = 'new-1'"), "0")
            self.assertEqual(self.st.sql("SELECT count(*) FROM audit_log"), n)
        finally:
            self.st.sql("DROP TRIGGER audit_jam")
        self.verify_ok()
        self.st.iotca("approve", str(req))
        self.assertTrue(self.issue(csr)["ok"])
        self.verify_ok()


if __name__ == "__main__":
    unittest.main(verbosity=2)
