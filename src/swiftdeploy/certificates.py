"""The certificate nginx's HTTPS serves (nginx.tls): the user's files, or the pair ACME issued (kept in
.swiftdeploy/acme/). Checked before anything changes, then copied where nginx reads it.

The user's files stay where the user keeps them. Each pair nginx serves is copied once into .swiftdeploy/tls/<digest>/
(the digest of both files' bytes), 0440 and 0750 in the group the stack's secret files use, which nginx's
container joins; nginx.conf names that folder, so new files are a new config, reaching nginx through the same
validated, confirmed reload as any other change.
"""

import dataclasses
import hashlib
import ipaddress
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from .errors import SwiftDeployError

TLS_DIR = "tls"  # under the state directory
CONTAINER_DIR = "/run/swiftdeploy-tls"  # where nginx's container has that folder
ACME_DIR = "acme"  # an ACME certificate, its key and the account key (0600)
CHALLENGE_DIR = "acme-challenge"  # HTTP-01 answers, served by nginx at /.well-known/acme-challenge/
PLACEHOLDER = "SwiftDeploy placeholder"  # the common name of the self-signed certificate served until ACME issues one


class CertificateError(SwiftDeployError):
    pass


@dataclass(frozen=True)
class Certificate:
    fingerprint: str  # SHA-256 of the leaf certificate (DER), hex
    names: tuple[str, ...]  # its DNS names and IP addresses
    not_after: datetime
    material: str  # the digest of the certificate and key files as read: the folder nginx reads them from
    not_before: datetime
    placeholder: bool = False  # self-signed by SwiftDeploy while an ACME certificate is pending

    def renewal_due(self, now: datetime | None = None) -> bool:
        """A third of its lifetime or less is left (Let's Encrypt's advice), or it is the placeholder."""
        now = now or datetime.now(timezone.utc)
        lifetime = self.not_after - self.not_before
        return self.placeholder or now >= self.not_after - lifetime / 3

    def describe(self) -> str:
        return (f"sha256 {short(self.fingerprint)} for {', '.join(self.names) or 'no names'}, "
                f"valid until {self.not_after:%Y-%m-%d %H:%M} UTC")


def resolve(manifest, root: Path, now: datetime | None = None):
    """The manifest with nginx.tls naming the certificate its files hold now (unchanged without nginx.tls), read
    afresh each time: a manifest resolved earlier may name files since replaced (a renewal)."""
    tls = manifest.nginx.tls
    if tls is None:
        return manifest
    ensure_placeholder(tls, root)
    cert = check(tls, root, now)
    tls = dataclasses.replace(tls, fingerprint=cert.fingerprint, material=cert.material,
                              not_after=cert.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return dataclasses.replace(manifest, nginx=dataclasses.replace(manifest.nginx, tls=tls))


def check(tls, root: Path, now: datetime | None = None) -> Certificate:
    """The certificate nginx.tls names, or one line saying what is wrong and where."""
    cert_path, key_path = _path(root, tls.cert), _path(root, tls.key)
    cert_bytes, key_bytes = _read(cert_path, "nginx/tls/cert"), _read(key_path, "nginx/tls/key")
    mode = stat.S_IMODE(key_path.stat().st_mode)
    if mode & 0o077:
        raise CertificateError(f"nginx/tls/key: {key_path} is readable by others (mode {mode:o}); "
                               f"run `chmod 600 {key_path}`")
    cert = _parsed(cert_path, cert_bytes, key_path, key_bytes)
    now = now or datetime.now(timezone.utc)
    if cert.not_after <= now:
        raise CertificateError(f"nginx/tls/cert: {cert_path} expired on {cert.not_after:%Y-%m-%d %H:%M} UTC")
    if cert.not_before > now:
        raise CertificateError(f"nginx/tls/cert: {cert_path} is not valid before {cert.not_before:%Y-%m-%d %H:%M} UTC")
    for host in tls.hosts:
        if not covers(cert.names, host):
            raise CertificateError(f"nginx/tls/hosts: {host} is not a name of the certificate in {cert_path} "
                                   f"({', '.join(cert.names) or 'it has none'})")
    return cert


def _path(root: Path, name: str) -> Path:
    return Path(name) if os.path.isabs(name) else root / name


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(f"{key}: {path}: no such file") from None
    except IsADirectoryError:
        raise CertificateError(f"{key}: {path}: is a directory, not a PEM file") from None
    except OSError as err:
        raise CertificateError(f"{key}: {path}: cannot read it ({err.strerror})") from None


@lru_cache(maxsize=16)
def _parsed(cert_path: Path, cert_bytes: bytes, key_path: Path, key_bytes: bytes) -> Certificate:
    """The pair's certificate, once the key is found to be its key (parsed once per process per content)."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.hashes import SHA256

    try:
        chain = x509.load_pem_x509_certificates(cert_bytes)
    except ValueError:
        raise CertificateError(f"nginx/tls/cert: {cert_path}: not a PEM certificate") from None
    leaf = chain[0]
    try:
        key = serialization.load_pem_private_key(key_bytes, password=None)
    except TypeError:
        raise CertificateError(f"nginx/tls/key: {key_path}: the key is encrypted; nginx needs it without a "
                               "passphrase (keep the file 0600 instead)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError(f"nginx/tls/key: {key_path}: not a PEM private key") from None
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*public) != leaf.public_key().public_bytes(*public):
        raise CertificateError(f"nginx/tls/key: {key_path} is not the key of the certificate in {cert_path}")
    common = [a.value for a in leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return Certificate(fingerprint=leaf.fingerprint(SHA256()).hex(), names=_names(leaf), not_after=leaf.not_valid_after_utc,
                       material=_material(cert_bytes, key_bytes), not_before=leaf.not_valid_before_utc,
                       placeholder=common == [PLACEHOLDER] and leaf.issuer == leaf.subject)


def ensure_placeholder(tls, root: Path) -> None:
    """With nginx.tls.acme and no pair yet, the placeholder (write_placeholder)."""
    if tls.acme and not _path(root, tls.cert).exists():
        write_placeholder(tls, root)


def write_placeholder(tls, root: Path) -> None:
    """A self-signed certificate for tls.hosts, valid a week, so nginx can serve https (and answer the ACME
    challenge on http) before the first ACME certificate exists. Key first, both 0600."""
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, PLACEHOLDER)])
    now = datetime.now(timezone.utc)
    alternative = []
    for host in tls.hosts:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alternative.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName(alternative), critical=False).sign(key, hashes.SHA256()))
    write_pair(_path(root, tls.cert).parent, cert.public_bytes(serialization.Encoding.PEM),
               key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()))


def write_pair(live: Path, cert_pem: bytes, key_pem: bytes) -> None:
    """Make `live` (a symlink) name a new folder holding cert.pem and key.pem (0600), in one rename: a process
    killed at any point leaves the old pair or the new one, never one's key with the other's certificate.
    The folders live names no longer are removed."""
    import shutil

    base = live.parent
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = base / f"pair-{_material(cert_pem, key_pem)}"
    if not folder.is_dir():
        partial = base / f".{folder.name}.{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(mode=0o700)
        for name, data in (("key.pem", key_pem), ("cert.pem", cert_pem)):
            fd = os.open(partial / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        os.rename(partial, folder)
    link = base / f".{live.name}.{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(folder.name)
    os.replace(link, live)
    for other in base.glob("pair-*"):
        if other != folder:
            shutil.rmtree(other, ignore_errors=True)


def _material(cert_bytes: bytes, key_bytes: bytes) -> str:
    return hashlib.sha256(cert_bytes + b"\0" + key_bytes).hexdigest()[:32]


def _names(leaf) -> tuple[str, ...]:
    from cryptography import x509

    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple([*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))])


def covers(names, host: str) -> bool:
    """A certificate with these names is valid for host (a wildcard covers one label, RFC 6125)."""
    host = host.lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
        return any(_same_ip(name, ip) for name in names)
    except ValueError:
        pass
    for name in (n.lower().rstrip(".") for n in names):
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def _same_ip(name: str, ip) -> bool:
    try:
        return ipaddress.ip_address(name) == ip
    except ValueError:
        return False


_NAMED = re.compile(r"certificate, valid until (\S+), sha256:\n\s*#\s+([0-9a-f]{64})\n.*?/run/swiftdeploy-tls/([0-9a-f]+)/",
                    re.S)


def named_in(nginx_conf: str) -> tuple[str, str, str] | None:
    """(fingerprint, not_after, material) of the certificate an nginx.conf serves; None: it serves no https."""
    found = _NAMED.search(nginx_conf)
    return (found[2], found[1], found[3]) if found else None


def change(before: str | None, tls) -> str | None:
    """What changes in the certificate served, from the nginx.conf on disk to the manifest's; fingerprints
    and dates only, never key material. None: nothing."""
    return _change(named_in(before or ""), tls)


def _change(was: tuple | None, tls) -> str | None:
    now = (tls.fingerprint, tls.not_after) if tls else None
    if was is None and now is None or (was and now and was[:2] == now):
        return None
    if now is None:
        return f"https turned off (it served sha256 {short(was[0])})"
    if was is None:
        return f"https turned on: certificate sha256 {short(now[0])}, valid until {now[1]}"
    return f"certificate renewed: sha256 {short(was[0])} (until {was[1]}) -> sha256 {short(now[0])} (until {now[1]})"


RECORDED = "tls-recorded.json"  # in the state directory: the certificate the history has last


def change_since_recorded(state_dir: Path, tls) -> str | None:
    """change() from the certificate the history recorded last to the one tls names."""
    import json

    try:
        was = json.loads((state_dir / RECORDED).read_text())
    except (FileNotFoundError, ValueError):
        was = None
    return _change((was["fingerprint"], was["not_after"]) if was else None, tls)


def record(state_dir: Path, tls) -> None:
    import json

    from .files import write_atomic

    if tls is None:
        (state_dir / RECORDED).unlink(missing_ok=True)
    else:
        write_atomic(state_dir / RECORDED, json.dumps({"fingerprint": tls.fingerprint, "not_after": tls.not_after}),
                     mode=0o600)


def short(fingerprint: str) -> str:
    return ":".join(fingerprint[i:i + 2] for i in range(0, 16, 2)).upper() + "..."


def install(tls, root: Path, state_dir: Path) -> Path:
    """Copy the checked pair into state_dir/tls/<material>/ (written once, renamed into place, never changed),
    where nginx.conf names it; other pairs but the one nginx may still serve (`keep`) are removed later by prune."""
    from .secrets import install_secret_files

    cert_bytes, key_bytes = _read(_path(root, tls.cert), "nginx/tls/cert"), _read(_path(root, tls.key), "nginx/tls/key")
    if _material(cert_bytes, key_bytes) != tls.material:
        raise CertificateError(f"nginx/tls: {tls.cert} or {tls.key} changed while this command ran; run it again")
    group = install_secret_files({"cert.pem": cert_bytes.decode("ascii", "replace"),
                                  "key.pem": key_bytes.decode("ascii", "replace")}, tls.material, state_dir, base=TLS_DIR)
    folder = state_dir / TLS_DIR
    os.chown(folder, -1, group)  # nginx's container has this folder itself, so its group must pass through it
    os.chmod(folder, 0o750)
    if tls.acme:  # nginx's container mounts it; made here, not by the engine (as root) on a missing source
        (state_dir / CHALLENGE_DIR).mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir / CHALLENGE_DIR, 0o755)
    return folder / tls.material


def prune(state_dir: Path, keep) -> None:
    """Remove the copied pairs no config names any more (`keep`: the materials still named)."""
    from .secrets import prune_secret_files

    prune_secret_files(keep, state_dir, base=TLS_DIR)
