#!/usr/bin/env python3
"""A flood of refused requests does not grow the audit log without bound.

2,300 refusals within seconds: bad arguments from an operator on
admin.sock, ops the front end may not use and CSRs it may not have on
signer.sock (for several accounts), and a foreign uid refused at the door
of admin.sock, with an issuance in the middle.  The log grows by a few
records (the first refusal of each kind per peer), the issuance is its own
record, and at the signer's stop one requests_refused summary per peer
accounts for every other refusal.  `iotca audit verify` passes throughout.
"""
import json
import os
import socket
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from iotca_stack import Stack, call, make_csr  # noqa: E402

ADMIN_BAD = 1000        # {"op": "cert", "serial": "xyz"}: badRequest
FRONT_OP = 500          # {"op": "approve"} on signer.sock: unauthorized
FRONT_CSR = 500         # issue with a junk CSR: badCSR, over 5 accounts
DOOR = 300              # uid 65534 connecting to admin.sock
ACCOUNTS = 5
BOUND = 40              # records the flood may add before the summaries

DOOR_SCRIPT = """
import socket, sys
n = 0
for _ in range(int(sys.argv[2])):
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(10)
        s.connect(sys.argv[1])
        if b"unauthorized" in s.recv(65536):
            n += 1
print(n)
"""


def flood(path, req, n):
    """n requests on one connection; the error codes answered."""
    codes = {}
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(30)
        s.connect(path)
        msg = json.dumps(req).encode()
        for _ in range(n):
            s.send(msg)
            e = json.loads(s.recv(1 << 17)).get("error")
            codes[e] = codes.get(e, 0) + 1
    return codes


def as_nobody():
    os.setgroups([])
    os.setgid(0)
    os.setuid(65534)


class Refusals(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.st = Stack(prefix="iotca-refusals.")
        # Group root may traverse to the sockets, so a foreign uid is
        # refused by the signer (SO_PEERCRED), not by the file system.
        os.chmod(cls.st.tmp, 0o710)
        os.chmod(cls.st.dir, 0o710)

    @classmethod
    def tearDownClass(cls):
        cls.st.finish()

    def count(self):
        return int(self.st.sql("SELECT count(*) FROM audit_log"))

    def events(self, name):
        rows = self.st.sql("SELECT record FROM audit_log WHERE "
                           "json_extract(record, '$.event') = '%s' "
                           "ORDER BY seq" % name)
        return [json.loads(r) for r in rows.splitlines() if r]

    def verify_ok(self):
        r = self.st.iotca("audit", "verify", ok=False)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_flood(self):
        before = self.count()
        t0 = time.time()
        got = flood(self.st.admin, {"op": "cert", "serial": "xyz"},
                    ADMIN_BAD // 2)
        self.assertEqual(got, {"badRequest": ADMIN_BAD // 2})
        got = flood(self.st.signer, {"op": "approve", "id": 1}, FRONT_OP)
        self.assertEqual(got, {"unauthorized": FRONT_OP})

        # An issuance in the middle of the flood is its own record.
        csr = make_csr(self.st.tmp, "meter-4", ["DNS:meter-4.local"])
        r = call(self.st.admin, {"op": "issue", "csr": csr})
        self.assertTrue(r["ok"], r)
        serial = r["serial"]

        for i in range(ACCOUNTS):
            got = flood(self.st.signer, {"op": "issue", "csr": "junk",
                                         "account": "acct-%d" % i},
                        FRONT_CSR // ACCOUNTS)
            self.assertEqual(list(got), ["badCSR"], got)
        got = flood(self.st.admin, {"op": "cert", "serial": "xyz"},
                    ADMIN_BAD // 2)
        self.assertEqual(got, {"badRequest": ADMIN_BAD // 2})
        r = subprocess.run(["/usr/bin/python3", "-c", DOOR_SCRIPT,
                            self.st.admin, str(DOOR)], preexec_fn=as_nobody,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.stdout.strip(), str(DOOR), r.stderr)
        took = time.time() - t0
        total = ADMIN_BAD + FRONT_OP + FRONT_CSR + DOOR

        grown = self.count() - before
        print("# %d refusals in %.1f s: the audit log grew by %d records"
              % (total, took, grown), flush=True)
        self.assertLess(took, 55, "the flood must fit in one interval")
        self.assertLessEqual(grown, BOUND)
        issued = [e for e in self.events("certificate_issued")
                  if e["serial"] == serial]
        self.assertEqual(len(issued), 1)
        self.verify_ok()

        # The summaries come when the interval ends, or at the stop.
        self.st.stop_signer()
        self.st.start_signer()
        singles = [e for e in self.events("request_refused")] + \
            [e for e in self.events("connection_refused")]
        sums = self.events("requests_refused")
        print("# after the stop: %d refusals recorded alone, %d summaries "
              "counting %d" % (len(singles), len(sums),
                               sum(s["count"] for s in sums)), flush=True)
        self.assertEqual(len(singles) + sum(s["count"] for s in sums),
                         total)
        for s in sums:
            self.assertEqual(s["count"], sum(k["count"] for k in
                                             s["refused"]) + s["other"], s)
            self.assertLessEqual(s["first"], s["last"])
            self.assertIn(s["actor"]["role"], ("operator", "frontend"))
        door = [s for s in sums if s["refused"][0]["op"] == "connect"]
        self.assertEqual(len(door), 1, sums)
        self.assertEqual(door[0]["actor"]["uid"], 65534)
        self.assertEqual(door[0]["count"], DOOR - 1)
        accounts = sorted(s.get("account", "") for s in sums
                          if s["refused"][0]["error"] == "badCSR")
        self.assertEqual(accounts, ["acct-%d" % i for i in range(ACCOUNTS)])
        self.assertLessEqual(self.count() - before, BOUND + len(sums) + 4)
        self.verify_ok()


if __name__ == "__main__":
    unittest.main(verbosity=2)
