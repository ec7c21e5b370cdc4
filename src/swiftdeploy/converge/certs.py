"""`certs`: the certificate nginx serves, and a new one from ACME when a third of its lifetime is left. The new
files reach nginx through a deploy (one validated, confirmed reload), which records the change."""

from datetime import datetime, timezone

from .. import certificates
from .stack import Stack

WARN_DAYS = 14  # status warns this long before a certificate expires


def current(stack: Stack) -> certificates.Certificate | None:
    """The certificate the manifest's files hold now (None without nginx.tls)."""
    tls = stack.manifest.nginx.tls
    if tls is None:
        return None
    certificates.ensure_placeholder(tls, stack.root)
    return certificates.check(tls, stack.root)


def describe(stack: Stack, cert: certificates.Certificate, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    tls = stack.manifest.nginx.tls
    days = (cert.not_after - now).total_seconds() / 86400
    source = (f"ACME from {tls.acme.directory}" if tls.acme else f"your files {tls.cert}, {tls.key}")
    if cert.placeholder:
        state = "a self-signed placeholder until ACME issues the certificate: due now"
    elif cert.renewal_due(now):
        state = f"renewal due ({days:.0f} days left)" + ("" if tls.acme else ": put new files in place, then deploy")
    else:
        state = f"{days:.0f} days left"
    return f"{', '.join(cert.names)}: sha256 {certificates.short(cert.fingerprint)}, valid until " \
           f"{cert.not_after:%Y-%m-%d %H:%M} UTC ({state}); {source}"


def expiry_warning(stack: Stack, now: datetime | None = None) -> str | None:
    """status's line when the certificate served expires within WARN_DAYS (or has)."""
    tls = stack.manifest.nginx.tls
    if tls is None:
        return None
    now = now or datetime.now(timezone.utc)
    try:
        cert = certificates.check(tls, stack.root, now)
    except certificates.CertificateError as err:
        return f"certificate: {err}"
    days = (cert.not_after - now).total_seconds() / 86400
    if days > WARN_DAYS:
        return None
    action = "run ./swiftdeploy certs" if tls.acme else "put renewed files in place and run ./swiftdeploy deploy"
    return f"certificate for {', '.join(cert.names)} expires in {days:.1f} days ({cert.not_after:%Y-%m-%d}): {action}"


def renew_due(stack: Stack, force: bool = False, say=print) -> bool:
    """Obtain a new ACME certificate when due (or `force`: a key that may have leaked). True: new files."""
    from .acme import AcmeError, obtain

    tls = stack.manifest.nginx.tls
    cert = current(stack)
    if tls is None or tls.acme is None or not (force or cert.renewal_due()):
        return False
    say(f"asking {tls.acme.directory} for a certificate for {', '.join(tls.hosts)} (HTTP-01 on port "
        f"{stack.manifest.nginx.port}) ...", flush=True)
    try:
        obtain(tls.acme, tls.hosts, stack.state_dir)
    except AcmeError as err:
        kept = "a self-signed placeholder" if cert.placeholder else f"the certificate valid until {cert.not_after:%Y-%m-%d}"
        raise AcmeError(f"{err}; nginx goes on serving {kept}, run ./swiftdeploy certs once that is fixed") from None
    issued = certificates.check(tls, stack.root)
    say(f"issued: {describe(stack, issued)}")
    return True
