#!/usr/bin/env python3
"""Delegation in iotca-signer (integrations draft, RFC 9444), at the socket.

The front end's side is spoken directly on signer.sock, as iotca-acmed does
when an order is covered by a subdomain authorization ("delegation": the
subtree); the operator's side is the real `iotca` command on admin.sock.
Starts its own devstack (file key, domains home.arpa and est.home.arpa)
and stops it.

Asserted: the first request of an account for a subtree is a pending
delegation request (one per account and subtree, reason "account X asks for
the subtree D"), listed by `iotca pending` in those words; once approved,
devices under the subtree are issued without a per-device request; another
account's request for the same subtree is its own request; a denial and a
revocation by subtree are approvalDenied, and revoke-approval --revoke-certs
revokes what was issued under it; one refusal per rule (.local subtree,
subtree outside the configured domains, a CSR name outside the subtree, an
IP address under a delegation, id-kp-cmcRA without a delegation); cmcRA is
in the EKU of a certificate issued under an approved delegation; each
decision is an audit record; with [policy] approve_delegated_devices each
device waits for its own approval too.
"""
import json
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from iotca_stack import DEVSTACK, Stack, call, make_csr  # noqa: E402

SUB = "est.home.arpa"


class DomainStack(Stack):
    """A devstack whose domains hold the subtree: device names under
    est.home.arpa pass the signer's policy."""

    def start(self):
        r = subprocess.run([DEVSTACK, "start", self.dir, "--key", self.key,
                            "--domain", "home.arpa," + SUB],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("devstack start: " + r.stderr)


def csr_with(workdir, cn, sans, eku=None):
    """A P-384 CSR; eku: an extendedKeyUsage to ask for."""
    key = os.path.join(workdir, cn + ".key")
    path = os.path.join(workdir, cn + ".csr")
    cmd = ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:P-384", "-nodes", "-keyout", key, "-out", path,
           "-subj", "/CN=" + cn, "-addext", "subjectAltName=" + ",".join(sans)]
    if eku is not None:
        cmd += ["-addext", "extendedKeyUsage=" + eku]
    subprocess.run(cmd, check=True, capture_output=True)
    with open(path) as f:
        return f.read()


class Delegation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.st = DomainStack(prefix="iotca-deleg.", key="file")
        cls.work = cls.st.tmp

    @classmethod
    def tearDownClass(cls):
        cls.st.finish()

    def issue(self, csr, account="ra-A", delegation=SUB, sock=None):
        req = {"op": "issue", "csr": csr}
        if account is not None:
            req["account"] = account
        if delegation is not None:
            req["delegation"] = delegation
        return call(sock or self.st.signer, req)

    def dev(self, name, account="ra-A", delegation=SUB, extra=(), eku=None):
        return self.issue(csr_with(self.work, name,
                                   ["DNS:%s.%s" % (name, SUB)] + list(extra),
                                   eku), account, delegation)

    def pending_rows(self):
        return json.loads(self.st.iotca("pending", "--json").stdout)

    def audit(self, event):
        out, after = [], 0
        while True:
            r = call(self.st.admin, {"op": "audit_records",
                                     "after_seq": after, "limit": 500})
            self.assertTrue(r["ok"], r)
            for rec in r["records"]:
                if rec["record"]["event"] == event:
                    out.append(rec["record"])
                after = rec["seq"]
            if not r["more"]:
                return out

    def text(self, pem):
        return subprocess.run(["openssl", "x509", "-noout", "-text"],
                              input=pem, capture_output=True, text=True,
                              check=True).stdout

    def test_01_first_request_is_a_pending_delegation(self):
        r = self.dev("cam-1")
        self.assertEqual(r["error"], "approvalPending", r)
        self.assertIn("account ra-A asks for the subtree " + SUB, r["reason"])
        self.assertGreater(r["retry_after"], 0)
        rid = r["request"]
        # A second device of the same account and subtree: the same request.
        r = self.dev("cam-2")
        self.assertEqual((r["error"], r["request"]), ("approvalPending", rid))
        rows = [x for x in self.pending_rows() if x["id"] == rid]
        self.assertEqual(len(rows), 1)
        self.assertEqual((rows[0]["subtree"], rows[0]["device_id"],
                          rows[0]["account"]), (SUB, "", "ra-A"))
        # No per-device request was made for either device.
        self.assertEqual([x for x in self.pending_rows()
                          if x["device_id"] in ("cam-1", "cam-2")], [])
        table = self.st.iotca("pending").stdout
        self.assertIn("account ra-A asks for the subtree " + SUB, table)
        recs = [x for x in self.audit("delegation_requested")
                if x["request"] == rid]
        self.assertEqual(len(recs), 1)
        self.assertEqual((recs[0]["subtree"], recs[0]["account"]),
                         (SUB, "ra-A"))
        # approve --all grants devices only, never a subtree.
        out = self.st.iotca("approve", "--all").stdout
        self.assertIn("left pending", out)
        self.assertIn(rid, [x["id"] for x in self.pending_rows()])
        type(self).rid = rid

    def test_02_approved_delegation_issues_without_device_approval(self):
        out = self.st.iotca("approve", str(self.rid)).stdout
        self.assertIn("for the subtree " + SUB + " approved", out)
        for name in ("cam-1", "cam-2", "cam-3"):
            r = self.dev(name)
            self.assertTrue(r["ok"], r)
        self.assertEqual([x for x in self.pending_rows()
                          if x["device_id"].startswith("cam-")], [])
        self.assertEqual(len([x for x in self.audit("delegation_granted")
                              if x["request"] == self.rid]), 1)
        issued = [x for x in self.audit("certificate_issued")
                  if x.get("delegation") == SUB]
        self.assertEqual(len(issued), 3)
        approvals = json.loads(self.st.iotca("approvals", "--json").stdout)
        row = [x for x in approvals if x["id"] == self.rid][0]
        self.assertEqual((row["status"], row["subtree"]), ("approved", SUB))
        self.assertIn("account ra-A asks for the subtree " + SUB,
                      self.st.iotca("approvals").stdout)

    def test_03_cmc_ra_only_under_an_approved_delegation(self):
        eku = "serverAuth,clientAuth,cmcRA"
        r = self.dev("ra-1", eku=eku)
        self.assertTrue(r["ok"], r)
        text = self.text(r["pem"])
        self.assertIn("CMC Registration Authority", text)
        self.assertIn("TLS Web Server Authentication", text)
        self.assertIn("TLS Web Client Authentication", text)
        self.assertEqual([x["cmc_ra"] for x in self.audit("certificate_issued")
                          if x["serial"] == r["serial"]], [True])
        # A device without cmcRA in its request gets none.
        r = self.dev("cam-4")
        self.assertNotIn("CMC Registration Authority", self.text(r["pem"]))
        # cmcRA without a delegation: refused, whatever the account.
        r = self.issue(csr_with(self.work, "ra-2", ["DNS:ra-2.home.arpa"],
                                eku), delegation=None)
        self.assertEqual(r["error"], "badCSR", r)
        self.assertIn("id-kp-cmcRA is issued only under an approved "
                      "delegation", r["reason"])
        # Nor by an operator without one.
        r = self.issue(csr_with(self.work, "ra-3", ["DNS:ra-3.home.arpa"],
                                eku), account=None, delegation=None,
                       sock=self.st.admin)
        self.assertEqual(r["error"], "badCSR", r)
        # The operator's way to the RA's own TLS certificate: `iotca issue`
        # under the account's delegation.
        csr = os.path.join(self.work, "ra-cli.csr")
        with open(csr, "w") as f:
            f.write(csr_with(self.work, "ra-cli", ["DNS:ra-cli." + SUB], eku))
        out = os.path.join(self.work, "ra-cli.pem")
        p = self.st.iotca("issue", "--csr", csr, "--out", out,
                          "--subtree", SUB, "--account", "ra-A")
        with open(out) as f:
            self.assertIn("CMC Registration Authority", self.text(f.read()))
        self.assertIn("issued", p.stdout)
        # Without the account's delegation, the CLI says why.
        with open(csr, "w") as f:
            f.write(csr_with(self.work, "ra-cli", ["DNS:ra-cli." + SUB], eku))
        p = self.st.iotca("issue", "--csr", csr, "--out", out + "2",
                          "--subtree", SUB, "--account", "ra-none",
                          ok=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("approvalDenied", p.stderr + p.stdout)
        p = self.st.iotca("issue", "--csr", csr, "--out", out + "3",
                          "--subtree", SUB, ok=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--subtree and --account go together", p.stderr)

    def test_04_refusals_one_per_rule(self):
        cases = [
            ("lab.local", ["DNS:cam-5.local"], ".local"),
            ("local", ["DNS:cam-5.local"], ".local"),
            ("corp.example", ["DNS:cam-5.home.arpa"],
             "not within a configured domain"),
            (SUB, ["DNS:cam-5.home.arpa"],
             "cam-5.home.arpa, which is not within the delegated subtree"),
            (SUB, ["DNS:cam-5." + SUB, "IP:192.168.1.5"], "IP address"),
            ("bad..name", ["DNS:cam-5." + SUB], "bad..name"),
        ]
        for sub, sans, why in cases:
            r = self.issue(csr_with(self.work, "cam-5", sans), delegation=sub)
            self.assertEqual(r["error"], "rejectedIdentifier", (sub, r))
            self.assertIn(why, r["reason"], sub)
        r = self.issue(make_csr(self.work, "cam-5", ["DNS:cam-5." + SUB]),
                       delegation=7)
        self.assertEqual(r["error"], "badRequest", r)
        # An operator's issue under a delegation names the account.
        r = self.issue(make_csr(self.work, "cam-5", ["DNS:cam-5." + SUB]),
                       account=None, sock=self.st.admin)
        self.assertEqual(r["error"], "badRequest", r)
        refused = [x for x in self.audit("request_refused")
                   if x["error"] == "rejectedIdentifier"]
        self.assertTrue(refused)

    def test_05_another_accounts_subtree_is_not_issued(self):
        # ra-A's approved subtree is ra-B's to ask for: a request of its own.
        r = self.dev("cam-6", account="ra-B")
        self.assertEqual(r["error"], "approvalPending", r)
        self.assertNotEqual(r["request"], self.rid)
        self.assertIn("account ra-B asks for the subtree", r["reason"])
        type(self).rid_b = r["request"]

    def test_06_deny(self):
        r = self.dev("cam-7", account="ra-C")
        rid = r["request"]
        self.st.iotca("deny", str(rid), "--reason", "not our RA")
        r = self.dev("cam-7", account="ra-C")
        self.assertEqual(r["error"], "approvalDenied", r)
        self.assertIn("not our RA", r["reason"])
        self.assertEqual([x["reason"] for x in self.audit("delegation_denied")
                          if x["request"] == rid], ["not our RA"])

    def test_07_revoke_by_subtree_stops_issuance(self):
        before = [x["serial"] for x in self.audit("certificate_issued")
                  if x.get("delegation") == SUB and x["account"] == "ra-A"]
        out = self.st.iotca("revoke-approval", "--subtree", SUB, "--account",
                            "ra-A", "--revoke-certs").stdout
        self.assertIn("%d certificates revoked" % len(before), out)
        certs = json.loads(self.st.iotca("certs", "--json").stdout)
        self.assertEqual({c["status"] for c in certs
                          if c["serial"] in before}, {"revoked"})
        r = self.dev("cam-8")
        self.assertEqual(r["error"], "approvalDenied", r)
        self.assertIn("revoked", r["reason"])
        # ra-B's request was not touched by the revocation of ra-A's.
        self.assertIn(self.rid_b, [x["id"] for x in self.pending_rows()])
        recs = self.audit("delegation_revoked")
        self.assertEqual([(x["subtree"], x["account"], x["requests"])
                          for x in recs], [(SUB, "ra-A", 1)])
        revoked = [x for x in self.audit("certificate_revoked")
                   if x.get("delegation") == SUB]
        self.assertEqual(sorted(x["serial"] for x in revoked), sorted(before))
        # All accounts at once: ra-B's pending request ends too.
        out = self.st.iotca("revoke-approval", "--subtree", SUB).stdout
        self.assertIn("delegation of the subtree " + SUB + " revoked", out)
        self.assertNotIn(self.rid_b, [x["id"] for x in self.pending_rows()])
        r = self.st.iotca("revoke-approval", "--subtree", "lab.local",
                          ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(".local", r.stderr)

    def test_08_per_device_approval_when_policy_asks(self):
        conf = os.path.join(self.st.dir, "iotca.conf")
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("[policy]\n", "[policy]\n"
                                 "approve_delegated_devices = true\n"))
        self.st.stop_signer()
        self.st.start_signer()
        r = self.dev("cam-9", account="ra-D")
        self.assertEqual(r["error"], "approvalPending", r)
        self.assertIn("asks for the subtree", r["reason"])
        self.st.iotca("approve", str(r["request"]))
        # The delegation is approved; the device waits for its own approval.
        r = self.dev("cam-9", account="ra-D")
        self.assertEqual(r["error"], "approvalPending", r)
        self.assertIn("device cam-9 waits", r["reason"])
        self.st.iotca("approve", str(r["request"]))
        r = self.dev("cam-9", account="ra-D")
        self.assertTrue(r["ok"], r)
        # A name outside the subtree is still refused, device approval or not.
        r = self.issue(csr_with(self.work, "cam-9", ["DNS:cam-9.home.arpa"]),
                       account="ra-D")
        self.assertEqual(r["error"], "rejectedIdentifier", r)
        starts = self.audit("signer_start")
        self.assertTrue(starts[-1]["settings"]["approve_delegated_devices"])

    def test_09_audit_log_verifies(self):
        r = call(self.st.admin, {"op": "audit_verify"})
        self.assertTrue(r["ok"] and r["verified"], r)

    def test_10_schema_3_is_upgraded(self):
        # A signer.db of before delegations (schema version 3): upgraded in
        # place at start, its rows kept.
        self.st.stop_signer()
        self.st.sql("DROP INDEX approvals_subtree; DROP INDEX "
                    "certs_delegation; ALTER TABLE approvals DROP COLUMN "
                    "subtree; ALTER TABLE certs DROP COLUMN delegation; "
                    "UPDATE meta SET value = 3 WHERE key = "
                    "'schema_version';")
        nappr = self.st.sql("SELECT count(*) FROM approvals")
        ncert = self.st.sql("SELECT count(*) FROM certs")
        self.st.start_signer()
        self.assertEqual(self.st.sql("SELECT value FROM meta WHERE key = "
                                     "'schema_version'"), "4")
        cols = self.st.sql("SELECT name FROM pragma_table_info('approvals')")
        self.assertIn("subtree", cols.split())
        cols = self.st.sql("SELECT name FROM pragma_table_info('certs')")
        self.assertIn("delegation", cols.split())
        self.assertEqual(self.st.sql("SELECT count(*) FROM approvals"), nappr)
        self.assertEqual(self.st.sql("SELECT count(*) FROM certs"), ncert)
        # And it works: a new account's subtree request is a delegation row.
        r = self.dev("cam-10", account="ra-E")
        self.assertEqual(r["error"], "approvalPending", r)
        self.assertIn("account ra-E asks for the subtree", r["reason"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
