#!/usr/bin/env python3
"""Operator approval, the operator's side of issue 10 item 11, end to end:

  - an approval of a device for an account covers the device's own names
    (<id>.local and <id>.<domain>), so a client that orders
    <id>.home.arpa and then <id>.local needs one approval; another device,
    or an address it was not approved with, still needs one;
  - [policy] notify_command runs once for each new pending request, without
    a shell, with the request ID, device ID, account and names as arguments
    and in IOTCA_* variables, and leaves an approval_notified record; a
    repeated poll runs nothing; a command that cannot run is recorded too.

The front end's side is spoken on signer.sock; the operator's with `iotca`.
"""
import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from iotca_stack import Stack, call, make_csr  # noqa: E402

NOTIFY_SCRIPT = """#!/usr/bin/env python3
import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("IOTCA_")}
with open(%r, "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "env": env,
                        "stdin": sys.stdin.read()}) + "\\n")
"""


class Notify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.st = Stack(prefix="iotca-notify.", key="file")
        cls.work = cls.st.tmp
        cls.calls = os.path.join(cls.work, "notified.jsonl")
        cls.script = os.path.join(cls.work, "notify-operator")
        with open(cls.script, "w") as f:
            f.write(NOTIFY_SCRIPT % cls.calls)
        os.chmod(cls.script, 0o755)

    @classmethod
    def tearDownClass(cls):
        cls.st.finish()

    def issue(self, cn, sans, account="acct-N"):
        return call(self.st.signer, {"op": "issue", "account": account,
                                     "csr": make_csr(self.work, cn, sans)})

    def set_notify(self, command):
        conf = os.path.join(self.st.dir, "iotca.conf")
        self.st.stop()
        with open(conf) as f:
            text = f.read()
        lines = [ln for ln in text.split("\n")
                 if not ln.startswith("notify_command")]
        text = "\n".join(lines).replace(
            "[policy]\n", "[policy]\nnotify_command = %s\n" % command)
        with open(conf, "w") as f:
            f.write(text)
        self.st.start()

    def notified(self):
        try:
            with open(self.calls) as f:
                return [json.loads(ln) for ln in f if ln.strip()]
        except FileNotFoundError:
            return []

    def audit(self, event):
        out, after = [], 0
        while True:
            r = call(self.st.admin, {"op": "audit_records",
                                     "after_seq": after, "limit": 500})
            self.assertTrue(r["ok"], r)
            for rec in r["records"]:
                if rec["record"].get("event") == event:
                    out.append(rec["record"])
                after = rec["seq"]
            if not r["more"]:
                return out

    def wait_for(self, fn, what, seconds=10):
        deadline = time.time() + seconds
        while time.time() < deadline:
            got = fn()
            if got:
                return got
            time.sleep(0.1)
        self.fail("timed out waiting for " + what)

    # --- approvals cover the device's own names --------------------------

    def test_01_approval_covers_the_devices_own_names(self):
        r = self.issue("nt-2", ["DNS:nt-2.home.arpa"])
        self.assertEqual(r.get("error"), "approvalPending", r)
        self.st.iotca("approve", str(r["request"]))
        r = self.issue("nt-2", ["DNS:nt-2.home.arpa"])
        self.assertTrue(r.get("ok"), r)
        # One certificate per name, as some clients order: no new approval.
        r = self.issue("nt-2", ["DNS:nt-2.local"])
        self.assertTrue(r.get("ok"), r)
        self.assertEqual(r["names"], ["nt-2.local"])
        r = self.issue("nt-2", ["DNS:nt-2.local", "DNS:nt-2.home.arpa"])
        self.assertTrue(r.get("ok"), r)
        pending = json.loads(self.st.iotca("pending", "--json").stdout)
        self.assertEqual([p for p in pending if p["device_id"] == "nt-2"], [])

    def test_02_other_names_still_need_approval(self):
        # Another device under the same domain.
        r = self.issue("other", ["DNS:other.home.arpa"])
        self.assertEqual(r.get("error"), "approvalPending", r)
        # An address the device was not approved with.
        r = self.issue("nt-2", ["DNS:nt-2.local", "IP:192.168.7.2"])
        self.assertEqual(r.get("error"), "approvalPending", r)
        # The same device for another account.
        r = self.issue("nt-2", ["DNS:nt-2.local"], account="acct-O")
        self.assertEqual(r.get("error"), "approvalPending", r)

    # --- the notify command -----------------------------------------------

    def test_10_new_pending_request_notifies_once(self):
        self.set_notify(self.script)
        r = self.issue("nt-1", ["DNS:nt-1.local", "DNS:nt-1.home.arpa"])
        self.assertEqual(r.get("error"), "approvalPending", r)
        req = r["request"]
        calls = self.wait_for(self.notified, "the notify command")
        self.assertEqual(len(calls), 1, calls)
        c = calls[0]
        self.assertEqual(c["argv"], [str(req), "nt-1", "acct-N",
                                     "nt-1.local", "nt-1.home.arpa"])
        self.assertEqual(c["env"], {
            "IOTCA_REQUEST_ID": str(req), "IOTCA_DEVICE_ID": "nt-1",
            "IOTCA_ACCOUNT": "acct-N",
            "IOTCA_NAMES": "nt-1.local nt-1.home.arpa"})
        self.assertEqual(c["stdin"], "")
        rec = self.wait_for(lambda: [x for x in self.audit(
            "approval_notified") if x["request"] == req],
            "the approval_notified record")
        self.assertEqual(len(rec), 1, rec)
        self.assertEqual(rec[0]["exit_status"], 0, rec)
        self.assertGreater(rec[0]["pid"], 0, rec)
        self.assertEqual(rec[0]["command"], self.script)
        # The client polls again: the same request, nobody bothered.
        r = self.issue("nt-1", ["DNS:nt-1.local", "DNS:nt-1.home.arpa"])
        self.assertEqual(r.get("request"), req, r)
        time.sleep(1.5)
        self.assertEqual(len(self.notified()), 1, self.notified())
        self.assertEqual(len([x for x in self.audit("approval_notified")
                              if x["request"] == req]), 1)

    def test_11_command_that_cannot_run_is_recorded(self):
        missing = os.path.join(self.work, "no-such-command")
        self.set_notify(missing)
        r = self.issue("nt-3", ["DNS:nt-3.local"])
        self.assertEqual(r.get("error"), "approvalPending", r)
        rec = self.wait_for(lambda: [x for x in self.audit(
            "approval_notified") if x["request"] == r["request"]],
            "the approval_notified record")
        self.assertIn("No such file", rec[0]["error"], rec)
        self.assertIn("notify_command for request %d" % r["request"],
                      self.st.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
