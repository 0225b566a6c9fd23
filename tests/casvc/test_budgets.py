#!/usr/bin/env python3
"""Connection budgets of iotca-signer (issue 10, item 2), end to end.

Idle connections held on signer.sock must never keep an operator out of
admin.sock; admin.sock makes room for a new operator by dropping the
connection idle longest; a full signer.sock refuses (and says so in its
log once, not once per connection); and peers that send no request for
[signer] idle_timeout seconds are dropped.  Starts its own devstack (file
key) and stops it.
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
from iotca_stack import Stack, call  # noqa: E402

FRONTEND_BUDGET = 320   # [signer] frontend_connections default
ADMIN_BUDGET = 16       # [signer] admin_connections default


def hold(path, n):
    """n connections to path, connected and left idle."""
    conns = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            conns.append(s)
            s.connect(path)     # blocking: waits while the backlog is full
            s.settimeout(10)
    except BaseException:
        release(conns)
        raise
    return conns


def release(conns):
    for s in conns:
        s.close()


def closed_by_signer(s):
    """1 if the signer has closed s (EOF, possibly after one error record),
    0 if s is still open.  Never blocks."""
    s.setblocking(False)
    try:
        for _ in range(2):
            data = s.recv(1 << 16)
            if data == b"":
                return 1
        return 0
    except BlockingIOError:
        return 0
    except ConnectionResetError:
        return 1


class Budgets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.st = Stack(prefix="iotca-budget.", key="file")
        cls.conf = os.path.join(cls.st.dir, "iotca.conf")

    @classmethod
    def tearDownClass(cls):
        cls.st.finish()

    def status_time(self):
        """Seconds `iotca status` takes; fails the test if it fails."""
        t = time.monotonic()
        r = subprocess.run([os.path.join(os.environ["IOTCA_BIN"], "iotca"),
                            "--socket", self.st.admin, "status"],
                           capture_output=True, text=True, timeout=30)
        took = time.monotonic() - t
        self.assertEqual(r.returncode, 0, r.stderr)
        return took

    def test_01_idle_frontend_peers_leave_operators_room(self):
        held = hold(self.st.signer, 64)
        try:
            took = self.status_time()
            self.assertLess(took, 2)
            print("64 idle on signer.sock: status in %.0f ms" % (took * 1000))
            held += hold(self.st.signer, 136)
            took = self.status_time()
            self.assertLess(took, 2)
            print("200 idle on signer.sock: status in %.0f ms" % (took * 1000))
            # The front end itself is still served beside them.
            self.assertTrue(call(self.st.signer, {"op": "status"})["ok"])
            self.assertEqual(sum(closed_by_signer(s) for s in held), 0)
        finally:
            release(held)

    def test_02_full_admin_socket_makes_room_for_an_operator(self):
        held = hold(self.st.admin, 70)
        try:
            time.sleep(0.2)
            took = self.status_time()
            self.assertLess(took, 2)
            print("70 idle on admin.sock: status in %.0f ms" % (took * 1000))
            # The oldest were dropped for the newer ones; the newest stay.
            dropped = sum(closed_by_signer(s) for s in held)
            self.assertGreaterEqual(dropped, 70 - ADMIN_BUDGET + 1)
            self.assertEqual(sum(closed_by_signer(s) for s in
                                 held[-(ADMIN_BUDGET - 1):]), 0)
        finally:
            release(held)
        lines = [l for l in self.st.log().splitlines()
                 if "admin socket full" in l]
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 3)     # rate-limited

    def test_03_full_frontend_socket_refuses_and_logs_once(self):
        held = hold(self.st.signer, FRONTEND_BUDGET + 80)
        try:
            time.sleep(0.2)
            refused = sum(closed_by_signer(s) for s in held)
            self.assertEqual(refused, 80)
            took = self.status_time()
            self.assertLess(took, 2)
            print("%d on signer.sock (80 refused): status in %.0f ms" %
                  (len(held), took * 1000))
        finally:
            release(held)
        lines = [l for l in self.st.log().splitlines()
                 if "connection refused on the signer socket" in l]
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 3)     # not one per connection
        # Once they are gone, the front end gets in again.
        for _ in range(50):
            try:
                if call(self.st.signer, {"op": "status"})["ok"]:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        else:
            self.fail("signer.sock stayed full after its peers left")

    def test_04_idle_peers_are_dropped(self):
        with open(self.conf) as f:
            text = f.read()
        self.assertIn("[signer]\n", text)
        self.st.stop_signer()
        with open(self.conf, "w") as f:
            f.write(text.replace("[signer]\n", "[signer]\nidle_timeout = 2\n"))
        try:
            self.st.start_signer()
            front = hold(self.st.signer, 10)
            admin = hold(self.st.admin, 5)
            busy = hold(self.st.admin, 1)[0]
            try:
                # A peer that keeps asking stays; the silent ones go.
                t = time.monotonic()
                while time.monotonic() - t < 3.5:
                    busy.send(json.dumps({"op": "ca"}).encode())
                    self.assertTrue(json.loads(busy.recv(1 << 16))["ok"])
                    time.sleep(0.5)
                self.assertEqual(sum(closed_by_signer(s) for s in front), 10)
                self.assertEqual(sum(closed_by_signer(s) for s in admin), 5)
                self.assertEqual(closed_by_signer(busy), 0)
            finally:
                release(front + admin + [busy])
            lines = [l for l in self.st.log().splitlines()
                     if "idle for 2 s" in l]
            self.assertGreaterEqual(len(lines), 1)
            self.assertLessEqual(len(lines), 3)     # 16 dropped, rate-limited
        finally:
            self.st.stop_signer()
            with open(self.conf, "w") as f:
                f.write(text)
            self.st.start_signer()

    def test_05_budget_settings_are_checked(self):
        sig = os.path.join(os.environ["IOTCA_BIN"], "iotca-signer")
        with open(self.conf) as f:
            text = f.read()
        bad = os.path.join(self.st.tmp, "bad.conf")
        for line in ("idle_timeout = 0", "admin_connections = 65",
                     "frontend_connections = 0",
                     "frontend_connections = many"):
            with open(bad, "w") as f:
                f.write(text.replace("[signer]\n", "[signer]\n%s\n" % line))
            r = subprocess.run([sig, "-t", "-c", bad], capture_output=True,
                               text=True)
            self.assertNotEqual(r.returncode, 0, line)
            self.assertIn(line.split()[0], r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
