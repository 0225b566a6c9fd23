#!/usr/bin/env python3
"""The CRL and the root for relying parties, over plain HTTP and HTTPS.

A devstack (file key) serves them on its HTTP port (devstack --http).  A
device certificate must name them (CRL Distribution Point, AIA caIssuers
under the appliance's publish_url).  curl must get the CRL as
application/pkix-crl and the root as application/pkix-cert (DER), with
ETag and Last-Modified, and 304 for a repeated conditional request; other
paths and methods are refused.  Relying parties nobody here wrote decide:
`openssl verify -crl_check -crl_download` (which fetches the URL in the
certificate; the appliance's name resolves to loopback in a private mount
namespace) and `openssl verify -crl_check -CRLfile` of a curl of that URL
accept the fresh certificate and refuse it once `iotca revoke` ran.  The
time from `iotca revoke` to a CRL over HTTP that lists it is measured.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, AuthorityInformationAccessOID

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))
from iotca_stack import Stack, call  # noqa: E402

DEVICE = "cam-0a1b2c"


def conf_value(path, section, key):
    sec = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            m = re.match(r"^\[(\w+)\]$", line)
            if m:
                sec = m.group(1)
            elif sec == section and line.startswith(key + " = "):
                return line.split(" = ", 1)[1]
    raise AssertionError("no %s in [%s]" % (key, section))


def curl(url, *args, connect=None, cacert=None):
    """(status, headers dict (lower-case names), body bytes)."""
    cmd = ["curl", "-sS", "--max-time", "10", "-D", "-", "-o", "-"]
    if connect:
        cmd += ["--connect-to", connect]
    if cacert:
        cmd += ["--cacert", cacert]
    r = subprocess.run(cmd + list(args) + [url], capture_output=True)
    if r.returncode != 0:
        raise AssertionError("curl %s: %s" % (url, r.stderr.decode()))
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


class CrlHttp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.st = Stack(prefix="iotca-crlhttp.", key="file")
        conf = os.path.join(cls.st.dir, "iotca.conf")
        cls.http = conf_value(conf, "acme", "http_listen")
        cls.https = conf_value(conf, "acme", "listen")
        cls.publish = conf_value(conf, "ca", "publish_url")
        u = urlsplit(cls.publish)
        cls.host = u.hostname
        cls.port = u.port or 80
        # The name in the certificates, to where the daemon listens.
        cls.connect = "%s:%d:%s" % (cls.host, cls.port, cls.http)
        cls.crl_url = cls.publish + "/pki/root.crl"
        cls.root_url = cls.publish + "/pki/root.cer"
        cls.work = tempfile.mkdtemp(prefix="iotca-rp.")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)
        cls.st.finish(logs=("signer.log", "acmed.log"))

    def issue(self, name):
        key = ec.generate_private_key(ec.SECP384R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(
                   NameOID.COMMON_NAME, name)]))
               .add_extension(x509.SubjectAlternativeName(
                   [x509.DNSName(name + ".local")]), critical=False)
               .sign(key, hashes.SHA384()))
        r = call(self.st.admin, {"op": "issue", "csr": csr.public_bytes(
            serialization.Encoding.PEM).decode()})
        self.assertTrue(r["ok"], r)
        path = os.path.join(self.work, name + ".pem")
        with open(path, "w") as f:
            f.write(r["pem"])
        return r["serial"], path, x509.load_pem_x509_certificate(
            r["pem"].encode())

    def fetch_crl_pem(self, url):
        """curl the CRL at url (a certificate's), as a PEM file."""
        status, h, body = curl(url, connect=self.connect)
        self.assertEqual(status, 200)
        der = os.path.join(self.work, "crl.der")
        pem = os.path.join(self.work, "crl.pem")
        with open(der, "wb") as f:
            f.write(body)
        subprocess.run(["openssl", "crl", "-inform", "DER", "-in", der,
                        "-out", pem], check=True, capture_output=True)
        return pem

    def verify(self, cert, crl_pem=None, download=False):
        """openssl verify with CRL checking; (ok, output)."""
        cmd = ["openssl", "verify", "-crl_check", "-CAfile", self.st.root]
        if crl_pem:
            cmd += ["-CRLfile", crl_pem]
        if not download:
            r = subprocess.run(cmd + [cert], capture_output=True, text=True)
            return r.returncode == 0, r.stdout + r.stderr
        # -crl_download fetches the certificate's own URL: the appliance's
        # name resolves to loopback in a mount namespace of this command.
        # The port of that URL must be where the daemon listens.
        hosts = os.path.join(self.work, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost %s\n" % self.host)
        script = ('mount --bind "$1" /etc/hosts && shift && exec "$@"')
        r = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh",
                            hosts] + cmd + ["-crl_download", cert],
                           capture_output=True, text=True)
        return r.returncode == 0, r.stdout + r.stderr

    def test_01_certificate_names_them(self):
        _, _, cert = self.issue("dev-names")
        cdp = cert.extensions.get_extension_for_class(
            x509.CRLDistributionPoints)
        self.assertFalse(cdp.critical)
        self.assertEqual([n.value for n in cdp.value[0].full_name],
                         [self.crl_url])
        aia = cert.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess)
        self.assertEqual([(d.access_method, d.access_location.value)
                          for d in aia.value],
                         [(AuthorityInformationAccessOID.CA_ISSUERS,
                           self.root_url)])
        # The root stays as it was: no CDP, no AIA.
        root = x509.load_pem_x509_certificate(open(self.st.root, "rb").read())
        for cls in (x509.CRLDistributionPoints,
                    x509.AuthorityInformationAccess):
            with self.assertRaises(x509.ExtensionNotFound):
                root.extensions.get_extension_for_class(cls)

    def test_02_types_and_conditional(self):
        for url, ctype in ((self.crl_url, "application/pkix-crl"),
                           (self.root_url, "application/pkix-cert")):
            status, h, body = curl(url, connect=self.connect)
            self.assertEqual(status, 200, url)
            self.assertEqual(h["content-type"], ctype)
            self.assertTrue(h["etag"].startswith('"'), h)
            self.assertIn("last-modified", h)
            self.assertEqual(h["cache-control"], "no-cache")
            if ctype.endswith("crl"):
                x509.load_der_x509_crl(body)
            else:
                root = open(self.st.root, "rb").read()
                self.assertEqual(x509.load_der_x509_certificate(body),
                                 x509.load_pem_x509_certificate(root))
            # A repeated conditional request: 304 and no body.
            s2, h2, b2 = curl(url, "-H", "If-None-Match: " + h["etag"],
                              connect=self.connect)
            self.assertEqual((s2, b2), (304, b""), url)
            self.assertEqual(h2["etag"], h["etag"])
            s3, _, b3 = curl(url, "-H", "If-Modified-Since: " +
                             h["last-modified"], connect=self.connect)
            self.assertEqual((s3, b3), (304, b""), url)
            s4, _, b4 = curl(url, "-H", 'If-None-Match: "other"',
                             connect=self.connect)
            self.assertEqual((s4, b4), (200, body), url)
            # HEAD: the headers alone.
            s5, h5, b5 = curl(url, "-I", connect=self.connect)
            self.assertEqual((s5, h5["content-type"]), (200, ctype))
            # Over HTTPS too, at the same path.
            path = urlsplit(url).path
            s6, h6, b6 = curl("https://%s%s" % (self.https, path),
                              cacert=self.st.root)
            self.assertEqual((s6, h6["content-type"], b6),
                             (200, ctype, body), path)
            s7, _, b7 = curl("https://%s%s" % (self.https, path), "-H",
                             "If-None-Match: " + h["etag"],
                             cacert=self.st.root)
            self.assertEqual((s7, b7), (304, b""), path)
        print("CRL and root: 200 with types, 304 when repeated")

    def test_03_refusals(self):
        base = "http://%s" % self.http
        s, h, _ = curl(base + "/pki/root.crl", "-X", "POST", "-d", "x")
        self.assertEqual(s, 405)
        self.assertEqual(h["allow"], "GET, HEAD")
        for path in ("/", "/directory", "/root.pem", "/pki/root.crl/x",
                     "/pki/../pki/root.crl", "/acme/new-nonce"):
            s, _, _ = curl(base + path, "--path-as-is")
            self.assertEqual(s, 404, path)

    def test_04_relying_parties(self):
        serial, cert, _ = self.issue(DEVICE)
        ok, out = self.verify(cert, download=True)
        self.assertTrue(ok, "fresh, -crl_download: " + out)
        ok, out = self.verify(cert, self.fetch_crl_pem(self.crl_url))
        self.assertTrue(ok, "fresh, -CRLfile: " + out)
        _, h0, _ = curl(self.crl_url, connect=self.connect)

        t = time.monotonic()
        r = self.st.iotca("revoke", serial, "--reason", "keyCompromise")
        # Poll the URL as a relying party would, conditionally.
        for _ in range(200):
            s, h, body = curl(self.crl_url, "-H", "If-None-Match: " +
                              h0["etag"], connect=self.connect)
            if s == 200 and x509.load_der_x509_crl(body). \
                    get_revoked_certificate_by_serial_number(
                        int(serial, 16)) is not None:
                break
            time.sleep(0.05)
        else:
            self.fail("the CRL over HTTP never listed " + serial)
        took = time.monotonic() - t
        self.assertNotEqual(h["etag"], h0["etag"])
        self.assertLess(took, 5)
        print("iotca revoke to the CRL over HTTP listing it: %.3f s" % took)

        ok, out = self.verify(cert, download=True)
        self.assertFalse(ok, "revoked, -crl_download accepted it")
        self.assertIn("certificate revoked", out)
        ok, out = self.verify(cert, self.fetch_crl_pem(self.crl_url))
        self.assertFalse(ok, "revoked, -CRLfile accepted it")
        self.assertIn("certificate revoked", out)
        # Another certificate of the same root is still good.
        _, other, _ = self.issue("dev-other")
        ok, out = self.verify(other, download=True)
        self.assertTrue(ok, out)
        # CRL numbers only grow.
        crl = x509.load_der_x509_crl(curl(self.crl_url,
                                          connect=self.connect)[2])
        n1 = crl.extensions.get_extension_for_class(x509.CRLNumber).value
        r = self.st.iotca("revoke", self.issue("dev-third")[0])
        time.sleep(1.2)
        crl = x509.load_der_x509_crl(curl(self.crl_url,
                                          connect=self.connect)[2])
        n2 = crl.extensions.get_extension_for_class(x509.CRLNumber).value
        self.assertGreater(n2.crl_number, n1.crl_number)
        self.assertIsNotNone(r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
