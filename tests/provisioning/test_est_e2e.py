#!/usr/bin/env python3
"""iotca-est-ra end to end: curl and openssl as the EST clients, the real RA
(provisioning/), the real appliance (devstack: signer and acmed), BIND on
loopback for the RA's dns-01 (RFC 2136 with TSIG), and Pebble.

usage: test_est_e2e.py approval|restart|pebble|tsig|racert

approval  The RA pre-authorizes est.home.arpa at start: BIND's journal shows
          the TXT at _acme-challenge.est.home.arpa added with the dns-01
          value of acmed's challenge and deleted again, and nothing is left.
          The first enrolment answers 202 with Retry-After while `iotca
          pending` shows "account X asks for the subtree est.home.arpa" (X:
          the RA's account); after `iotca approve ID` the same request gets
          200 and a certs-only CMS whose leaf names the device, has
          serverAuth and clientAuth and verifies to the root; the decision
          is in the audit log and `iotca approvals`; a second device is
          issued without an operator (200 at once or after one 202); the
          same CSR again is answered from the cache (same serial, one
          certificate at the signer); with [policy] approve_delegated_devices
          = true each new device waits in `iotca pending` as a device; then,
          without it, `iotca revoke-approval --subtree est.home.arpa` stops
          new issuance: 403 text/plain with the reason, audit record, and
          the certificates issued before stay valid.  The RA's log has one
          "enrol user=..." line per enrolment and never the password.
restart   Between the 202 and the approval the RA, then acmed, then the
          signer are restarted (each answers 202 again meanwhile, the
          delegation request is still one pending row); after `iotca
          approve` the client's retry gets its certificate, the signer
          issued exactly one (`iotca certs --device`) and a further retry,
          after another restart of the RA, gets that same certificate.
          Then the same with SIGKILL, for a device waiting for its own
          approval (approve_delegated_devices = true), the RA killed once
          more just after the approval: one certificate.  Last, the RA is
          killed while its finalize waits at the signer (stopped with
          SIGSTOP, then let go): the restarted RA hands the client the
          certificate the signer issued meanwhile, and there is no other.
pebble    The same RA against Pebble, whose VA resolves through the BIND
          (-dnsserver; PEBBLE_VA_ALWAYS_VALID unset, so dns-01 is checked):
          no newAuthz there, so each order is validated by dns-01; the
          journal shows the device name's TXT added and deleted; the leaf
          comes from Pebble and names the device.
tsig      The RA's TSIG key is one BIND allows for another zone only: BIND
          answers REFUSED, the RA logs "pre-authorization of est.home.arpa
          failed: ..." naming REFUSED, an enrolment gets 503 with
          Retry-After and that reason in the body, no ACME order is placed
          and no record is left in the zone.

racert    The RA's own TLS certificate from the appliance: once its
          delegation is approved, its ACME account (the key in its
          state_dir) orders ra.est.home.arpa (ready at once) with a CSR
          asking for id-kp-cmcRA, and gets serverAuth, clientAuth and cmcRA
          without an operator; the RA restarted with it serves it (openssl
          s_client verifies it to the root for that name) and curl enrols
          through it.

env: IOTCA_BIN, IOTCA_SRC.  Exit 77 (skip) without BIND (or Pebble, for
pebble).
"""
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from bind_fixture import Bind  # noqa: E402
from est_stack import (PASSWORD, SUBTREE, USER, EstStack,  # noqa: E402
                       bind_journal, free_port, have_tools, wait)

failures = 0


def check(cond, what, detail=""):
    global failures
    if cond:
        print("ok   " + what, flush=True)
    else:
        failures += 1
        print("FAIL " + what + (": %s" % (detail,) if detail != "" else ""),
              flush=True)
    return cond


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def subtree_authz_status(s):
    return s.acme_sql("SELECT status FROM authzs WHERE value = '%s' AND "
                      "subdomain = 1 ORDER BY expires DESC LIMIT 1" % SUBTREE)


def check_preauth_txt(s):
    """The pre-authorization's TXT: published with the right value, then
    removed; nothing left in the zone."""
    ok = wait(lambda: subtree_authz_status(s) == "valid", 30, 0.2)
    check(ok, "the RA pre-authorized %s at start (acmed: its subdomain "
          "authorization is valid)" % SUBTREE,
          subtree_authz_status(s) + " " + s.log()[-1500:])
    row = s.acme_sql(
        "SELECT c.token || '.' || ac.thumbprint FROM challenges c JOIN "
        "authzs a ON c.authz_id = a.id JOIN accounts ac ON a.account = ac.id"
        " WHERE a.value = '%s' AND a.subdomain = 1 AND c.type = 'dns-01' "
        "AND c.status = 'valid'" % SUBTREE)
    want = b64url(hashlib.sha256(row.encode()).digest()) if row else "?"
    name = "_acme-challenge." + SUBTREE

    def deleted():
        return any(ln.startswith("del %s TXT " % name) for ln in
                   s.journal())
    # The removal follows the validation by a moment.
    wait(deleted, 15, 0.2)
    j = s.journal()
    adds = [i for i, ln in enumerate(j) if ln.startswith("add " + name +
                                                        " TXT ")]
    dels = [i for i, ln in enumerate(j) if ln.startswith("del " + name +
                                                        " TXT ")]
    check(adds and '"%s"' % want in j[adds[0]],
          "BIND's journal: the RA added %s TXT with the dns-01 value of "
          "acmed's challenge (RFC 2136, TSIG)" % name, (want, j))
    check(adds and dels and dels[-1] > adds[0],
          "BIND's journal: the RA deleted the TXT again", j)
    check(s.bind.txt(name) == [], "dig: no TXT is left at " + name,
          s.bind.txt(name))


def cert_of(s, reply):
    """(leaf PEM, openssl x509 -text of it, all certificates) of a 200."""
    pem = s.certs_pem(reply)
    return pem, s.cert_text(pem), pem.count("BEGIN CERTIFICATE")


def check_leaf(s, reply, name, what):
    ctype = reply.headers.get("content-type", "")
    check(reply.status == 200 and ctype.startswith("application/pkcs7-mime")
          and "certs-only" in ctype,
          what + ": 200 application/pkcs7-mime; smime-type=certs-only",
          reply)
    if reply.status != 200:
        return None
    pem, text, n = cert_of(s, reply)
    check("DNS:" + name in text and
          re.search(r"Extended Key Usage:.*\n\s*TLS Web Server "
                    r"Authentication, TLS Web Client Authentication",
                    text) is not None,
          what + ": the leaf names %s with EKU serverAuth, clientAuth "
          "(openssl pkcs7 -print_certs, x509 -text)" % name, text[:1500])
    ok, out = s.verify(pem)
    check(ok, what + ": the leaf verifies to the appliance's root", out)
    return s.cert_serial(pem)


def pending_rows(s):
    return s.iotca_json("pending")


def delegation_rows(s):
    return [r for r in pending_rows(s) if r.get("subtree") == SUBTREE]


def status_202(r):
    return r.status == 202 and re.fullmatch(r"[0-9]+", r.headers.get(
        "retry-after", "")) is not None


def audit_events(s, event, **fields):
    """The audit records (iotca --json audit show) of event whose fields
    have the values given."""
    out = []
    for rec in s.audit():
        r = rec.get("record", {})
        if r.get("event") == event and all(r.get(k) == v for k, v in
                                           fields.items()):
            out.append(r)
    return out


def audit_tail(s, n=12):
    return [r.get("record", {}).get("event") for r in s.audit()][-n:]


def enrol_log_lines(s, name):
    return [ln for ln in s.log().splitlines()
            if "enrol " in ln and name in ln]


def finish(s):
    bad = s.finish()
    check(bad == "", "the RA exited 0 on SIGTERM; no sanitizer report in "
          "the daemons' logs", bad)


# ------------------------------------------------------------------ parts

def part_approval():
    s = EstStack(prefix="iotca-est-approval.")
    try:
        check_preauth_txt(s)
        acct = s.ra_account()
        check(re.fullmatch(r"[A-Za-z0-9_-]+", acct) is not None,
              "the RA has one ACME account in acmed", acct)

        # The first enrolment: the delegation waits for the operator.
        csr1 = s.csr("dev1")
        r = s.enrol(csr1)
        check(status_202(r), "first enrolment of a new RA: 202 with "
              "Retry-After", r)
        want = "account %s asks for the subtree %s" % (acct, SUBTREE)
        ok = wait(lambda: want in s.iotca("pending").stdout, 20, 0.3)
        check(ok, "iotca pending: \"%s\"" % want, s.iotca("pending").stdout)
        r = s.enrol(csr1)
        check(status_202(r), "the same request again before the approval: "
              "202 again", r)
        rows = delegation_rows(s)
        check(len(rows) == 1 and rows[0].get("device_id", "") == "",
              "one pending delegation request (no device), however often "
              "the client asks", rows)
        check(s.certs("dev1") == [], "nothing issued before the approval",
              s.certs("dev1"))
        rid = str(rows[0]["id"]) if rows else "0"
        s.iotca("approve", rid)
        answers = s.enrol_until(csr1, 40)
        serial1 = check_leaf(s, answers[-1], "dev1." + SUBTREE,
                             "after iotca approve %s, the retry" % rid)
        apr = s.iotca("approvals").stdout
        check(SUBTREE in apr and acct in apr,
              "iotca approvals lists the delegation", apr)
        check(len(audit_events(s, "delegation_requested", subtree=SUBTREE,
                               account=acct)) == 1,
              "audit log: one delegation_requested record (subtree, "
              "account)", audit_tail(s))
        recs = audit_events(s, "delegation_granted", subtree=SUBTREE,
                            account=acct)
        check(len(recs) == 1 and recs[0].get("actor", {}).get("role") ==
              "operator", "audit log: delegation_granted by the operator",
              recs or audit_tail(s))

        # A second device: no operator.
        csr2 = s.csr("dev2")
        answers = s.enrol_until(csr2, 30)
        check(len(answers) <= 2 and answers[-1].status == 200,
              "a second device under the subtree: 200 %s, no approval" %
              ("at once" if len(answers) == 1 else "after one 202"),
              [a.status for a in answers])
        check_leaf(s, answers[-1], "dev2." + SUBTREE, "dev2")
        check(pending_rows(s) == [], "iotca pending: nothing waits for "
              "dev2", pending_rows(s))
        recs = audit_events(s, "certificate_issued", device_id="dev2")
        check(len(recs) == 1 and recs[0].get("delegation") == SUBTREE and
              recs[0].get("account") == acct,
              "audit log: dev2's certificate_issued names the delegation "
              "and the RA's account", recs)

        # The same CSR again: the cache answers, nothing new is issued.
        r = s.enrol(csr1)
        if check(r.status == 200, "dev1's CSR again: 200 from the cache", r):
            pem, _, _ = cert_of(s, r)
            check(s.cert_serial(pem) == serial1 and
                  len(s.certs("dev1")) == 1,
                  "dev1's CSR again: the same certificate, one at the "
                  "signer", (s.cert_serial(pem), serial1, s.certs("dev1")))

        # The log: one line per enrolment, who asked; no password.
        lines = enrol_log_lines(s, "dev2." + SUBTREE)
        check(any(("user=" + USER) in ln and "200" in ln for ln in lines),
              "the RA's log: \"enrol user=%s ... dev2 ... -> 200\"" % USER,
              lines or s.log()[-1500:])
        check(PASSWORD not in s.log() and "PRIVATE KEY" not in s.log(),
              "the RA's log holds neither the password nor a key")

        # Per-device approval inside the delegation.
        s.set_policy(["approve_delegated_devices = true"])
        csr3, csr4 = s.csr("dev3"), s.csr("dev4")
        r3, r4 = s.enrol(csr3), s.enrol(csr4)
        check(status_202(r3) and status_202(r4),
              "approve_delegated_devices = true: dev3 and dev4 each get "
              "202", (r3, r4))
        ok = wait(lambda: {"dev3", "dev4"} <= {
            r.get("device_id") for r in pending_rows(s)}, 20, 0.3)
        check(ok and delegation_rows(s) == [],
              "iotca pending: dev3 and dev4 wait as devices (the delegation"
              " stays approved)", pending_rows(s))
        time.sleep(1)
        check(status_202(s.enrol(csr3)), "dev3 still waits (202) before "
              "its own approval")
        for row in pending_rows(s):
            if row.get("device_id") == "dev3":
                s.iotca("approve", str(row["id"]))
        answers = s.enrol_until(csr3, 30)
        check_leaf(s, answers[-1], "dev3." + SUBTREE,
                   "dev3 after its own approval")
        check(s.certs("dev4") == [] and any(
            r.get("device_id") == "dev4" for r in pending_rows(s)),
            "dev4, not approved, is still pending and has nothing",
            s.certs("dev4"))

        # Without per-device approval again; then the delegation revoked.
        s.set_policy(["approve_delegated_devices = false"])
        answers = s.enrol_until(s.csr("dev5"), 30)
        check(answers[-1].status == 200, "policy back to default: dev5 is "
              "issued without an operator", [a.status for a in answers])
        s.iotca("revoke-approval", "--subtree", SUBTREE)
        answers = s.enrol_until(s.csr("dev6"), 30)
        r = answers[-1]
        check(r.status == 403 and r.headers.get(
            "content-type", "").startswith("text/plain") and
            len(r.text.strip()) > 0,
            "after iotca revoke-approval --subtree: a new device gets 403 "
            "text/plain with the reason", r)
        check(SUBTREE in r.text or "revoked" in r.text.lower() or
              "denied" in r.text.lower(),
              "the 403's reason names the revoked delegation", r.text)
        print("# 403 body: " + r.text.strip())
        check(s.certs("dev6") == [], "nothing issued for dev6",
              s.certs("dev6"))
        recs = audit_events(s, "delegation_revoked", subtree=SUBTREE)
        check(len(recs) == 1 and recs[0].get("actor", {}).get("role") ==
              "operator", "audit log: delegation_revoked by the operator",
              recs or audit_tail(s))
        check([c["status"] for c in s.certs("dev1")] == ["valid"],
              "dev1's certificate, issued before, stays valid",
              s.certs("dev1"))
        lines = enrol_log_lines(s, "dev6." + SUBTREE)
        check(any("403" in ln for ln in lines),
              "the RA's log: dev6 -> 403", lines)
    finally:
        finish(s)


def part_restart():
    s = EstStack(prefix="iotca-est-restart.")
    try:
        check(wait(lambda: subtree_authz_status(s) == "valid", 30, 0.2),
              "the RA pre-authorized " + SUBTREE, s.log()[-1500:])
        csr = s.csr("dev1")
        r = s.enrol(csr)
        check(status_202(r), "first enrolment: 202 with Retry-After", r)
        check(wait(lambda: len(delegation_rows(s)) == 1, 20, 0.3),
              "the delegation waits in iotca pending", pending_rows(s))
        for what, restart in (("the RA", s.restart_ra),
                              ("iotca-acmed", s.restart_acmed),
                              ("iotca-signer", s.restart_signer)):
            restart()
            r = s.enrol(csr)
            check(status_202(r), "restart of %s in the 202 wait: the retry "
                  "gets 202 again" % what, r)
        rows = delegation_rows(s)
        check(len(rows) == 1, "still one pending delegation request", rows)
        check(s.certs("dev1") == [], "nothing issued before the approval")
        if rows:
            s.iotca("approve", str(rows[0]["id"]))
        answers = s.enrol_until(csr, 40)
        serial = check_leaf(s, answers[-1], "dev1." + SUBTREE,
                            "after the restarts and the approval, the retry")
        certs = s.certs("dev1")
        check(len(certs) == 1, "the signer issued exactly one certificate "
              "for dev1 (iotca certs --device dev1)", certs)
        s.restart_ra()
        r = s.enrol(csr)
        if check(r.status == 200, "after another restart of the RA the "
                 "same request gets 200 (the cache is on disk)", r):
            pem, _, _ = cert_of(s, r)
            check(s.cert_serial(pem) == serial and
                  len(s.certs("dev1")) == 1,
                  "...the same certificate, still one at the signer",
                  (s.cert_serial(pem), serial, s.certs("dev1")))

        # The same with each daemon killed (SIGKILL) in the wait, a device
        # of a delegation that asks for per-device approval.
        s.set_policy(["approve_delegated_devices = true"])
        csr = s.csr("dev2")
        r = s.enrol(csr)
        check(status_202(r), "dev2 (per-device approval on): 202", r)
        check(wait(lambda: any(x.get("device_id") == "dev2" for x in
                               pending_rows(s)), 20, 0.3),
              "dev2 waits in iotca pending", pending_rows(s))
        for what, restart in (("the RA", s.restart_ra),
                              ("iotca-acmed", s.restart_acmed),
                              ("iotca-signer", s.restart_signer)):
            restart(kill=True)
            r = s.enrol(csr)
            check(status_202(r), "%s killed (SIGKILL) and started in dev2's "
                  "202 wait: the retry gets 202 again" % what, r)
        rows = [x for x in pending_rows(s) if x.get("device_id") == "dev2"]
        check(len(rows) == 1, "still one pending request for dev2", rows)
        if rows:
            s.iotca("approve", str(rows[0]["id"]))
        # Killed right after the approval, while its worker may be
        # fetching the certificate.
        time.sleep(0.3)
        s.restart_ra(kill=True)
        answers = s.enrol_until(csr, 40)
        check_leaf(s, answers[-1], "dev2." + SUBTREE, "dev2 after the kills "
                   "and its approval, the retry")
        check(len(s.certs("dev2")) == 1, "the signer issued exactly one "
              "certificate for dev2", s.certs("dev2"))

        # The RA killed while its finalize is at the signer: the signer is
        # stopped (SIGSTOP) while the RA's worker finalizes dev3's order,
        # the RA is killed, the signer goes on and issues into an order
        # whose RA is dead.  The restarted RA resumes the stored order.
        s.set_policy(["approve_delegated_devices = false"])
        csr = s.csr("dev3")
        signer = s._pid("signer")
        got = {}
        os.kill(signer, signal.SIGSTOP)
        try:
            t = threading.Thread(target=lambda: got.update(r=s.enrol(csr)),
                                 daemon=True)
            t.start()
            ok = wait(lambda: "dev3." + SUBTREE in s.acme_sql(
                "SELECT identifiers FROM orders WHERE status = "
                "'processing'"), 20, 0.2)
            check(ok, "dev3's order is processing: acmed waits for the "
                  "stopped signer")
            time.sleep(0.5)
            s.kill_ra()
        finally:
            os.kill(signer, signal.SIGCONT)
        t.join(30)
        check(wait(lambda: len(s.certs("dev3")) == 1, 15, 0.3),
              "the signer issued dev3's certificate after the RA died",
              s.certs("dev3"))
        s.start_ra()
        answers = s.enrol_until(csr, 40)
        serial = check_leaf(s, answers[-1], "dev3." + SUBTREE,
                            "dev3 after the RA's restart, the retry")
        certs = s.certs("dev3")
        check(len(certs) == 1 and serial is not None and
              int(certs[0]["serial"], 16) == int(serial, 16),
              "dev3: the certificate issued while the RA was dead, and no "
              "second one", (serial, certs))
    finally:
        finish(s)


class Pebble:
    """Debian's Pebble on loopback; its VA asks the BIND for every name
    (-dnsserver) and checks dns-01 for real (no PEBBLE_VA_ALWAYS_VALID)."""

    def __init__(self, dnsserver):
        self.dir = tempfile.mkdtemp(prefix="iotca-est-pebble.")
        key = os.path.join(self.dir, "pebble-key.pem")
        self.ca = os.path.join(self.dir, "pebble-cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", self.ca, "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"], check=True,
                       capture_output=True)
        self.proc = None
        for _ in range(3):
            port = free_port()
            conf = os.path.join(self.dir, "pebble.json")
            with open(conf, "w") as f:
                json.dump({"pebble": {
                    "listenAddress": "127.0.0.1:%d" % port,
                    "managementListenAddress": "",
                    "certificate": self.ca, "privateKey": key,
                    "httpPort": free_port(), "tlsPort": free_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False}}, f)
            env = dict(os.environ, PEBBLE_VA_NOSLEEP="1",
                       PEBBLE_WFE_NONCEREJECT="0")
            env.pop("PEBBLE_VA_ALWAYS_VALID", None)
            self.log = os.path.join(self.dir, "pebble.log")
            with open(self.log, "a") as log:
                self.proc = subprocess.Popen(
                    ["pebble", "-config", conf, "-dnsserver", dnsserver],
                    stdout=log, stderr=log, env=env, start_new_session=True)
            self.directory = "https://127.0.0.1:%d/dir" % port
            if wait(lambda: self.proc.poll() is None and
                    EstStack.curl_ok(self.directory, self.ca), 15, 0.2):
                return
            self.stop(remove=False)
        raise AssertionError("pebble did not start")

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self, remove=True):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


def part_pebble():
    if shutil.which("pebble") is None:
        print("SKIP: pebble is not installed")
        sys.exit(77)
    bind = Bind(prefix="iotca-est-bind.")
    pebble = s = None
    try:
        pebble = Pebble(bind.server)
        s = EstStack(prefix="iotca-est-pebble.", bind=bind,
                     ra={"directory": pebble.directory,
                         "ca_file": pebble.ca})
        name = "dev1." + SUBTREE
        answers = s.enrol_until(s.csr("dev1"), 60)
        r = answers[-1]
        check(r.status == 200, "the RA against Pebble: the enrolment ends "
              "200", [a.status for a in answers] + [r.text[:300],
                                                   s.log()[-1500:]])
        if r.status == 200:
            pem, text, n = cert_of(s, r)
            check("DNS:" + name in text and "Pebble" in text,
                  "the leaf is Pebble's and names " + name, text[:1200])
        acme = "_acme-challenge." + name
        wait(lambda: any(ln.startswith("del %s TXT" % acme) for ln in
                         s.journal()), 15, 0.2)
        j = s.journal()
        adds = [ln for ln in j if ln.startswith("add %s TXT" % acme)]
        dels = [ln for ln in j if ln.startswith("del %s TXT" % acme)]
        check(adds and dels, "per-order dns-01: BIND's journal shows the "
              "TXT at %s added and deleted" % acme, j)
        check(not any("_acme-challenge.%s " % SUBTREE in ln for ln in j),
              "no pre-authorization was tried against Pebble's directory "
              "(it has no newAuthz)", j)
        check(s.bind.txt(acme) == [], "dig: no TXT is left at " + acme)
        pl = pebble.text()
        check("Using custom DNS resolver for ACME challenges: " +
              bind.server in pl and "set VALID by completed challenge" in pl
              and "ALWAYS_VALID" not in pl,
              "Pebble's VA asked the BIND and validated the challenge "
              "itself (PEBBLE_VA_ALWAYS_VALID unset)", pl[-1500:])
        lines = enrol_log_lines(s, name)
        check(any("200" in ln for ln in lines),
              "the RA's log: the enrolment -> 200", lines)
        check("no pre-authorization" in s.log(), "the RA's log says it "
              "validates each order (no pre-authorization)", s.log()[-800:])

        # The control: the RA publishes in a second BIND that Pebble does
        # not ask.  Pebble finds no TXT, the order fails, and the client
        # is told so: the 200 above was a real DNS check.
        other = Bind(prefix="iotca-est-bind2.")
        try:
            s.stop_ra()
            s.write_config({"directory": pebble.directory,
                            "ca_file": pebble.ca,
                            "dns_server": other.server,
                            "tsig_key": other.key_file})
            s.start_ra()
            name2 = "dev2." + SUBTREE
            answers = s.enrol_until(s.csr("dev2"), 60)
            r = answers[-1]
            check(r.status in (403, 502) and r.headers.get(
                "content-type", "").startswith("text/plain") and r.text,
                "control, TXT where Pebble does not look: the enrolment "
                "fails (403/502 text/plain with Pebble's detail)", r)
            print("# control body: " + r.text.strip())
            wait(lambda: other.txt("_acme-challenge." + name2) == [], 15)
            check(other.txt("_acme-challenge." + name2) == [] and any(
                ln.startswith("add _acme-challenge.%s TXT" % name2)
                for ln in bind_journal(other)),
                "control: the RA published (and removed) the TXT in the "
                "other BIND", bind_journal(other))
        finally:
            other.stop()
    finally:
        if s is not None:
            finish(s)
        if pebble is not None:
            pebble.stop()
        bind.stop()


def part_tsig():
    s = None
    bind = Bind(prefix="iotca-est-bind.")
    try:
        s = EstStack(prefix="iotca-est-tsig.", bind=bind,
                     ra={"tsig_key": bind.other_key_file})
        reason = "pre-authorization of %s failed" % SUBTREE
        check(wait(lambda: reason in s.log(), 30, 0.3),
              "the RA logs \"%s: ...\"" % reason, s.log()[-2000:])
        line = [ln for ln in s.log().splitlines() if reason in ln]
        check(line and "REFUSED" in line[0],
              "...and names BIND's answer, REFUSED", line)
        r = s.enrol(s.csr("dev1"))
        check(r.status == 503 and re.fullmatch(
            r"[0-9]+", r.headers.get("retry-after", "")) is not None,
            "an enrolment meanwhile: 503 with Retry-After", r)
        check(reason in r.text and "REFUSED" in r.text,
              "the 503's body says why: \"%s: ...REFUSED...\"" % reason,
              r.text)
        print("# 503 body: " + r.text.strip())
        check(s.journal() == [], "BIND changed nothing in its zone "
              "(no journal entry)", s.journal())
        check(s.bind.txt("_acme-challenge." + SUBTREE) == [] and
              s.bind.txt("_acme-challenge.dev1." + SUBTREE) == [],
              "dig: no TXT record anywhere in the zone")
        check(s.acme_sql("SELECT count(*) FROM orders") == "0",
              "no ACME order was placed for the enrolment",
              s.acme_sql("SELECT count(*) FROM orders"))
        check(s.certs("dev1") == [], "nothing issued")
    finally:
        if s is not None:
            finish(s)
        bind.stop()


def account_key(path):
    """The RA's ACME account key (PEM, EC) as an acme_test_client Key."""
    from cryptography.hazmat.primitives import serialization
    from acme_test_client import Key
    with open(path, "rb") as f:
        priv = serialization.load_pem_private_key(f.read(), None)
    k = Key(priv.curve)         # same curve; then the RA's key in it
    k.priv = priv
    nums = priv.public_key().public_numbers()
    k.jwk = dict(k.jwk, x=b64url(nums.x.to_bytes(k.size, "big")),
                 y=b64url(nums.y.to_bytes(k.size, "big")))
    canon = json.dumps(k.jwk, sort_keys=True, separators=(",", ":"))
    k.thumb = b64url(hashlib.sha256(canon.encode()).digest())
    return k


def part_racert():
    """The RA's own TLS certificate from the appliance, with id-kp-cmcRA,
    through its approved ACME account."""
    from acme_test_client import Client, Http
    s = EstStack(prefix="iotca-est-racert.")
    try:
        check(wait(lambda: subtree_authz_status(s) == "valid", 30, 0.2),
              "the RA pre-authorized " + SUBTREE, s.log()[-1500:])
        csr = s.csr("dev1")
        s.enrol(csr)
        check(wait(lambda: len(delegation_rows(s)) == 1, 20, 0.3),
              "the delegation waits in iotca pending")
        rows = delegation_rows(s)
        if rows:
            s.iotca("approve", str(rows[0]["id"]))
        check(s.enrol_until(csr, 40)[-1].status == 200,
              "the delegation approved: dev1 enrolled")

        # The RA's account (its key in state_dir) orders its own name.
        http = Http(s.root)
        c = Client(http, s.directory, key=account_key(
            os.path.join(s.state, "account.key")))
        check(c.kid.rsplit("/", 1)[-1] == s.ra_account(),
              "the RA's account key finds the RA's account", c.kid)
        name = "ra." + SUBTREE
        r = c.post(c.dir["newOrder"], {"identifiers": [
            {"type": "dns", "value": name}]})
        order_url = r.headers.get("Location", "")
        check(r.status == 201 and r.json().get("status") == "ready",
              "newOrder %s: ready at once (the pre-authorization)" % name,
              (r.status, r.body))
        key = os.path.join(s.tmp, "ra-new.key")
        der = subprocess.run(
            ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-384", "-nodes", "-keyout", key,
             "-outform", "DER", "-sha384", "-subj", "/CN=ra", "-addext",
             "subjectAltName=DNS:" + name, "-addext",
             "extendedKeyUsage=serverAuth,clientAuth,1.3.6.1.5.5.7.3.28"],
            capture_output=True, check=True).stdout
        os.chmod(key, 0o600)
        o = r.json()
        r = c.post(o["finalize"], {"csr": b64url(der)})
        st = {}

        def done():
            st["o"] = c.post(order_url, None).json()
            return st["o"]["status"] not in ("processing", "ready")
        wait(done, 20, 0.3)
        o = st.get("o", {})
        check(o.get("status") == "valid", "finalize with cmcRA requested: "
              "valid, no operator (the approved delegation)", o)
        pem = c.post(o["certificate"], None).body.decode() \
            if o.get("certificate") else ""
        text = s.cert_text(pem) if pem else ""
        check("CMC Registration Authority" in text and
              "TLS Web Server Authentication" in text and "DNS:" + name
              in text, "the RA's certificate has EKU serverAuth, clientAuth "
              "and id-kp-cmcRA (openssl x509 -text)", text[:1500])

        # The RA serves it.
        with open(s.root) as f:
            root = f.read()
        with open(s.ra_cert, "w") as f:       # chain, leaf first
            f.write(pem if pem.count("BEGIN CERT") > 1 else pem + root)
        shutil.copy(key, s.ra_key)
        s.restart_ra()
        r = subprocess.run(["openssl", "s_client", "-connect",
                            "127.0.0.1:%d" % s.port, "-servername", name,
                            "-CAfile", s.root, "-verify_return_error",
                            "-verify_hostname", name],
                           input=b"", capture_output=True, timeout=30)
        served = s.cert_text(r.stdout.decode(errors="replace"))
        check(r.returncode == 0 and "CMC Registration Authority" in served,
              "openssl s_client: the RA serves the cmcRA certificate and it "
              "verifies (to the root, for %s)" % name,
              r.stderr.decode(errors="replace")[-500:])
        answers = s.enrol_until(s.csr("dev2"), 30)
        check(answers[-1].status == 200, "curl enrols through the RA's new "
              "certificate", answers[-1])
    finally:
        finish(s)


PARTS = {"approval": part_approval, "restart": part_restart,
         "pebble": part_pebble, "tsig": part_tsig, "racert": part_racert}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in PARTS:
        print("usage: test_est_e2e.py " + "|".join(PARTS), file=sys.stderr)
        sys.exit(2)
    missing = have_tools()
    if missing.startswith("BIND"):
        print("SKIP: " + missing + " is not installed")
        sys.exit(77)
    if missing:
        print("FAIL missing: " + missing)
        sys.exit(1)
    t0 = time.time()
    try:
        PARTS[sys.argv[1]]()
    except AssertionError as e:
        check(False, "the test ran", e)
    print("# %s: %.1f s, %d failure(s)" % (sys.argv[1], time.time() - t0,
                                           failures))
    sys.exit(1 if failures else 0)
