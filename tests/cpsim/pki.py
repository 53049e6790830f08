"""The simulator's test PKI: its own CA (and a second, foreign one), server certificates for
both, and the signing of agents' CSRs. Made at the first start and kept in the state dir, so a
restarted simulator presents the same CA and accepts the certificates it issued before.

Files in the state dir (keys 0600):
  ca.pem, ca.key                  the simulator's CA: signs server.pem and every agent cert
  server.pem, server.key          the server certificate of both ports (127.0.0.1, ::1, localhost)
  other-ca.pem, other-ca.key      a foreign CA, for "a certificate from another CA" tests
  other-server.pem, other-server.key   a server certificate signed by the foreign CA
"""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CSR_MAX_BYTES = 16 * 1024
CA_DAYS = 3650
SERVER_DAYS = 825


class CsrError(ValueError):
    """A CSR the simulator refuses (bad-csr)."""


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_file(path, data, mode=0o644):
    """Writes atomically (temp file + rename) with the given mode."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key, common_name="axion-agent"):
    """A PEM CSR for key (what an agent sends to Enroll and Renew)."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def _key_usage(ca):
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                         decipher_only=False)


def _make_ca(name):
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = now() - datetime.timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _sign(ca_cert, ca_key, public_key, common_name, not_before, not_after, server):
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
         .issuer_name(ca_cert.subject).public_key(public_key)
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(_key_usage(False), critical=True)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if server:
        b = (b.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                            critical=False))
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
    return b.sign(ca_key, hashes.SHA256())


class Authority:
    """One CA with its key and a server certificate it signed."""

    def __init__(self, state, prefix, name):
        paths = {k: os.path.join(state, f"{prefix}{k}") for k in
                 ("ca.pem", "ca.key", "server.pem", "server.key")}
        if all(os.path.exists(p) for p in paths.values()):
            data = {k: open(p, "rb").read() for k, p in paths.items()}
            self.cert = x509.load_pem_x509_certificate(data["ca.pem"])
            self.key = serialization.load_pem_private_key(data["ca.key"], None)
            self.server_pem, self.server_key_pem = data["server.pem"], data["server.key"]
        else:
            self.cert, self.key = _make_ca(name)
            skey = new_key()
            start = now() - datetime.timedelta(minutes=5)
            scert = _sign(self.cert, self.key, skey.public_key(), "cpsim",
                          start, start + datetime.timedelta(days=SERVER_DAYS), server=True)
            self.server_pem, self.server_key_pem = pem_cert(scert), pem_key(skey)
            # The key files first: a crash in between leaves no CA without its key.
            write_file(paths["ca.key"], pem_key(self.key), 0o600)
            write_file(paths["server.key"], self.server_key_pem, 0o600)
            write_file(paths["server.pem"], self.server_pem)
            write_file(paths["ca.pem"], pem_cert(self.cert))
        self.ca_pem = pem_cert(self.cert)

    def sign_csr(self, csr_pem, agent_id, lifetime_s):
        """Signs a client certificate with CN=agent_id for the CSR's key, valid for lifetime_s
        seconds from (a little before) now. Returns (cert_pem, not_before, not_after).
        The subject of the CSR is ignored: the Control Plane names the agent."""
        if not csr_pem:
            raise CsrError("csr_pem is empty")
        if len(csr_pem) > CSR_MAX_BYTES:
            raise CsrError(f"csr_pem has {len(csr_pem)} bytes, more than {CSR_MAX_BYTES}")
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as e:
            raise CsrError(f"csr_pem is not a PEM certificate request: {e}") from None
        if not csr.is_signature_valid:
            raise CsrError("the CSR's signature does not verify")
        pub = csr.public_key()
        if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name != "secp256r1":
            raise CsrError(f"the CSR's key is {type(pub).__name__}"
                           f"{' ' + pub.curve.name if isinstance(pub, ec.EllipticCurvePublicKey) else ''}"
                           ", not EC P-256")
        lifetime_s = int(lifetime_s)
        if lifetime_s < 1:
            raise CsrError(f"certificate lifetime {lifetime_s} s is not positive")
        # Back-dated a little for clock steps, but never by much of a short lifetime: an agent
        # renews at 2/3 of not_before..not_after.
        back = min(60, lifetime_s // 20)
        start = now().replace(microsecond=0) - datetime.timedelta(seconds=back)
        end = start + datetime.timedelta(seconds=lifetime_s)
        cert = _sign(self.cert, self.key, pub, agent_id, start, end, server=False)
        return pem_cert(cert), start, end


class Pki:
    """The simulator's CA and the foreign one."""

    def __init__(self, state):
        os.makedirs(state, exist_ok=True)
        self.ours = Authority(state, "", "cpsim test CA")
        self.other = Authority(state, "other-", "cpsim foreign CA")

    def authority(self, which):
        if which == "ours":
            return self.ours
        if which == "other":
            return self.other
        raise ValueError(f"unknown CA {which!r} (ours, other)")
