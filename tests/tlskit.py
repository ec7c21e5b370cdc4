"""Certificates for tests: a private CA and the leaf certificates it signs, as PEM files a user would have."""

import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@dataclass
class Issued:
    cert: Path
    key: Path
    fingerprint: str  # SHA-256 of the leaf (DER), hex


class TestCA:
    """A CA of the test's own; `ca_file` is what a client trusts."""

    __test__ = False

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = _key()
        self.cert = (x509.CertificateBuilder().subject_name(_name("SwiftDeploy test CA")).issuer_name(_name("SwiftDeploy test CA"))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_file = self.directory / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, names=("localhost", "127.0.0.1"), days: float = 30, not_before_days: float = -1,
              key=None) -> Issued:
        """A leaf for `names` (DNS names or IP addresses) in <name>.pem / <name>.key (0600), the CA after it."""
        leaf_key = key or _key()
        alternative = [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names]
        builder = (x509.CertificateBuilder().subject_name(_name(names[0] if names else name)).issuer_name(self.cert.subject)
                   .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(NOW + datetime.timedelta(days=not_before_days))
                   .not_valid_after(NOW + datetime.timedelta(days=days)))
        if alternative:
            builder = builder.add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        leaf = builder.sign(self.key, hashes.SHA256())
        cert, key_path = self.directory / f"{name}.pem", self.directory / f"{name}.key"
        cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + self.cert.public_bytes(serialization.Encoding.PEM))
        write_key(key_path, leaf_key)
        return Issued(cert, key_path, leaf.fingerprint(hashes.SHA256()).hex())


def write_key(path: Path, key, mode: int = 0o600) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(path, mode)


def new_key():
    return _key()


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def served_fingerprint(port: int) -> str:
    """The SHA-256 of the certificate nginx presents on port, unverified: what a client is shown."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as conn:
        return hashlib.sha256(conn.getpeercert(binary_form=True)).hexdigest()


def handshake(port: int, version: ssl.TLSVersion) -> str:
    """The protocol nginx agrees to when the client offers only `version` (an ssl error's name if it refuses)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1, offered on purpose
        context.minimum_version = context.maximum_version = version
    context.set_ciphers("ALL:@SECLEVEL=0")  # the client side may offer what nginx must refuse
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as conn:
            return conn.version()
    except ssl.SSLError as err:
        return f"refused: {err.reason}"
