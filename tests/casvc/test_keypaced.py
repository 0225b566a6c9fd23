#!/usr/bin/env python3
"""The signer with a key as slow as a TPM chip: the test TCTI
libtss2-tcti-paced.so holds every TPM2_Sign for DELAY_MS (here 250 ms).

  - the TCTI itself, loaded by tpm2-tss's loader in front of a swtpm of our
    own: a TPM2_Sign's response comes no sooner than DELAY_MS after the
    command, a receive with a shorter timeout says TRY_AGAIN and the next
    one continues the same wait; other commands are not held;
  - a devstack (--key tpm2 --tpm-delay-ms 250, the TCTI between
    tpm2-abrmd and swtpm): while issuances wait for the key (4 sent, the
    operator asking once they are all prepared, 1.5 signatures later), an
    operator's `pending` and `status` answer in under 100 ms each (status
    shows the audit counter as the signer last moved it, no TPM command);
    with the signer signing in its loop they waited for the rest of the 4
    (about 700 ms);
  - the checks made before signing still hold with certificates in flight:
    two issuances of one CSR key at once give one certificate and one
    key-reuse refusal; two of one order at once give one certificate,
    handed out twice;
  - a signer stopped with certificates at the key records and answers
    them before it leaves.
"""
import ctypes
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from iotca_stack import DEVSTACK, Stack, call  # noqa: E402

DELAY_MS = 250
TCTI_DIR = os.environ["IOTCA_TCTI_DIR"]
# The loader takes a path as well as a name (tpm2-abrmd gets the name, with
# LD_LIBRARY_PATH set when it starts).
PACED = os.path.join(TCTI_DIR, "libtss2-tcti-paced.so")

TRY_AGAIN = 0xA0009                 # TSS2_TCTI_RC_TRY_AGAIN
BLOCK = -1                          # TSS2_TCTI_TIMEOUT_BLOCK
GET_RANDOM = bytes.fromhex("80010000000c0000017b0008")
# TPM2_Sign of a handle that does not exist: the TPM refuses it at once,
# and the TCTI holds the refusal all the same (it goes by command code).
SIGN = bytes.fromhex("80010000000e0000015d80ffffff")


def csr(key, name):
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, name)]))
    b = b.add_extension(x509.SubjectAlternativeName(
        [x509.DNSName(name + ".local")]), critical=False)
    return b.sign(key, hashes.SHA384()).public_bytes(
        serialization.Encoding.PEM).decode()


def p384():
    return ec.generate_private_key(ec.SECP384R1())


def timed_call(path, req):
    t0 = time.monotonic()
    r = call(path, req)
    return r, time.monotonic() - t0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Common(ctypes.Structure):
    """TSS2_TCTI_CONTEXT_COMMON_V1: what every TCTI context starts with."""
    _fields_ = [("magic", ctypes.c_uint64), ("version", ctypes.c_uint32),
                ("transmit", ctypes.c_void_p), ("receive", ctypes.c_void_p),
                ("finalize", ctypes.c_void_p), ("cancel", ctypes.c_void_p),
                ("poll", ctypes.c_void_p), ("locality", ctypes.c_void_p)]


TRANSMIT = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t,
                            ctypes.c_char_p)
RECEIVE = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p,
                           ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p,
                           ctypes.c_int32)


class Tcti:
    """The paced TCTI through tpm2-tss's loader, as tpm2-abrmd loads it."""

    def __init__(self, conf):
        self.ldr = ctypes.CDLL("libtss2-tctildr.so.0")
        self.ctx = ctypes.c_void_p()
        rc = self.ldr.Tss2_TctiLdr_Initialize(conf.encode(),
                                              ctypes.byref(self.ctx))
        assert rc == 0, "Tss2_TctiLdr_Initialize: 0x%x" % rc
        common = Common.from_address(self.ctx.value)
        self._transmit = TRANSMIT(common.transmit)
        self._receive = RECEIVE(common.receive)

    def transmit(self, cmd):
        rc = self._transmit(self.ctx, len(cmd), cmd)
        assert rc == 0, "transmit: 0x%x" % rc

    def receive(self, timeout):
        size = ctypes.c_size_t(4096)
        buf = ctypes.create_string_buffer(4096)
        rc = self._receive(self.ctx, ctypes.byref(size), buf, timeout)
        return rc, buf.raw[:size.value]

    def close(self):
        self.ldr.Tss2_TctiLdr_Finalize(ctypes.byref(self.ctx))


class PacedTcti(unittest.TestCase):
    """The TCTI on its own, in front of a swtpm of ours."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="iotca-paced.")
        port = None
        for _ in range(20):
            port = free_port()
            self.swtpm = subprocess.Popen(
                ["swtpm", "socket", "--tpm2", "--tpmstate",
                 "dir=" + self.tmp, "--server",
                 "type=tcp,port=%d,bindaddr=127.0.0.1" % port, "--ctrl",
                 "type=tcp,port=%d,bindaddr=127.0.0.1" % (port + 1),
                 "--flags", "not-need-init,startup-clear"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(50):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if self.swtpm.poll() is not None:
                        break
                    time.sleep(0.1)
            if self.swtpm.poll() is None:
                break
        self.assertIsNone(self.swtpm.poll(), "swtpm did not start")
        self.tcti = Tcti(PACED + ":delay_ms=%d,next=swtpm:host=127.0.0.1,"
                         "port=%d" % (DELAY_MS, port))

    def tearDown(self):
        self.tcti.close()
        self.swtpm.terminate()
        self.swtpm.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_sign_held_others_not(self):
        t0 = time.monotonic()
        self.tcti.transmit(GET_RANDOM)
        rc, resp = self.tcti.receive(BLOCK)
        quick = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertEqual(resp[6:10], b"\0\0\0\0", resp.hex())  # success
        self.assertLess(quick, DELAY_MS / 2000, "GetRandom was held")

        t0 = time.monotonic()
        self.tcti.transmit(SIGN)
        rc, _ = self.tcti.receive(50)
        early = time.monotonic() - t0
        self.assertEqual(rc, TRY_AGAIN, "a 50 ms receive during the hold")
        self.assertLess(early, DELAY_MS / 1000)
        rc, resp = self.tcti.receive(BLOCK)
        held = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertNotEqual(resp[6:10], b"\0\0\0\0")    # the TPM's refusal
        self.assertGreaterEqual(held, DELAY_MS / 1000, "Sign not held")
        self.assertLess(held, DELAY_MS / 1000 + 0.5)

        # The hold ended with the response: the next command is quick.
        t0 = time.monotonic()
        self.tcti.transmit(GET_RANDOM)
        rc, _ = self.tcti.receive(BLOCK)
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, DELAY_MS / 2000)

    def test_bad_configuration(self):
        ctx = ctypes.c_void_p()
        for conf in ("delay_ms=35", "delay_ms=x,next=swtpm",
                     "speed=3,next=swtpm", "next="):
            rc = self.tcti.ldr.Tss2_TctiLdr_Initialize(
                (PACED + ":" + conf).encode(), ctypes.byref(ctx))
            self.assertNotEqual(rc, 0, conf)


class PacedStack(Stack):
    def start(self):
        env = dict(os.environ, IOTCA_TCTI_DIR=TCTI_DIR)
        r = subprocess.run([DEVSTACK, "start", self.dir, "--key", "tpm2",
                            "--tpm-delay-ms", str(DELAY_MS)],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise AssertionError("devstack start: " + r.stderr)


class SlowKey(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.st = PacedStack(prefix="iotca-keypaced.", key="tpm2")

    @classmethod
    def tearDownClass(cls):
        cls.st.finish()

    def issue_all(self, reqs):
        """Send every request on its own connection at once; the answers
        in the same order."""
        out = [None] * len(reqs)

        def one(i):
            out[i] = call(self.st.admin, reqs[i])
        threads = [threading.Thread(target=one, args=(i,))
                   for i in range(len(reqs))]
        for t in threads:
            t.start()
        return threads, out

    def test_operator_does_not_wait_for_the_key(self):
        reqs = [{"op": "issue", "csr": csr(p384(), "kp-%d" % i)}
                for i in range(4)]
        threads, out = self.issue_all(reqs)
        # All prepared (even in a sanitizer build), 2 or 3 still to sign.
        time.sleep(1.5 * DELAY_MS / 1000)
        # Asked one after the other, while the others wait for the key.
        probes = {op: timed_call(self.st.admin, {"op": op})
                  for op in ("pending", "status")}
        for t in threads:
            t.join(timeout=30)
        for r in out:
            self.assertTrue(r and r.get("ok"), r)
        (pending, p_ms), (status, s_ms) = probes["pending"], probes["status"]
        self.assertTrue(pending.get("ok"), pending)
        self.assertTrue(status.get("ok"), status)
        print("with 4 issuances at the key: pending %.0f ms, status %.0f ms"
              % (p_ms * 1000, s_ms * 1000))
        self.assertLess(p_ms, 0.100)
        self.assertLess(s_ms, 0.100)

    def test_same_key_twice_at_once(self):
        pem = csr(p384(), "kp-same")
        threads, out = self.issue_all([{"op": "issue", "csr": pem}] * 2)
        for t in threads:
            t.join(timeout=30)
        oks = [r for r in out if r.get("ok")]
        refused = [r for r in out if not r.get("ok")]
        self.assertEqual(len(oks), 1, out)
        self.assertEqual(len(refused), 1, out)
        self.assertEqual(refused[0]["error"], "badCSR")
        self.assertIn("certified before", refused[0]["reason"])

    def test_same_order_twice_at_once(self):
        req = {"op": "issue", "csr": csr(p384(), "kp-order"),
               "account": "acct-kp", "order": "order-kp-1"}
        threads, out = self.issue_all([req, req])
        for t in threads:
            t.join(timeout=30)
        self.assertTrue(all(r.get("ok") for r in out), out)
        self.assertEqual(out[0]["serial"], out[1]["serial"])
        self.assertEqual(sum(1 for r in out if r.get("repeated")), 1, out)

    def test_zz_stop_answers_what_is_at_the_key(self):
        """Last (it stops the signer): SIGTERM while certificates are at
        the key; the key finishes them and each is recorded and answered
        before the signer leaves."""
        reqs = [{"op": "issue", "csr": csr(p384(), "kp-stop-%d" % i)}
                for i in range(3)]
        threads, out = self.issue_all(reqs)
        time.sleep(DELAY_MS / 2000)
        self.st.stop_signer()
        for t in threads:
            t.join(timeout=30)
        self.assertTrue(all(r and r.get("ok") for r in out), out)
        serials = self.st.sql("SELECT count(*) FROM certs WHERE "
                              "device_id LIKE 'kp-stop-%'")
        self.assertEqual(serials, "3")


if __name__ == "__main__":
    unittest.main(verbosity=2)
