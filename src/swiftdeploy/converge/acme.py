"""A certificate from an ACME server (Let's Encrypt, or any RFC 8555 CA) over the HTTP-01 challenge, which the
stack's own nginx answers from .swiftdeploy/acme-challenge/. The protocol is the `acme` package's (certbot's
client library); this module only hands it the account key, the names and the challenge files.

The new certificate and its fresh key (0600) are written into a folder of their own, then one rename makes
acme/live name it: a process killed at any point leaves the old pair or the new one whole.
"""

import datetime
import os
from pathlib import Path

from ..certificates import ACME_DIR, CHALLENGE_DIR, write_pair
from ..errors import SwiftDeployError
from ..files import write_atomic

ACCOUNT_KEY = "account.key"
ORDER_SECONDS = 90  # from the order to the certificate, challenges included


class AcmeError(SwiftDeployError):
    pass


def obtain(acme, hosts, state_dir: Path) -> None:
    """A certificate for hosts from acme.directory, its key new; acme/live under state_dir names the pair."""
    from acme import challenges, client, crypto_util, errors, messages
    import josepy
    import requests

    folder = _private_dir(state_dir / ACME_DIR)
    account = josepy.JWKRSA(key=_account_key(folder / ACCOUNT_KEY))
    network = client.ClientNetwork(account, user_agent="swiftdeploy", verify_ssl=acme.ca_bundle or True)
    try:
        directory = client.ClientV2.get_directory(acme.directory, network)
        issuer = client.ClientV2(directory, net=network)
        registration = messages.NewRegistration.from_data(email=acme.email, terms_of_service_agreed=True)
        try:
            network.account = issuer.new_account(registration)
        except errors.ConflictError as known:  # this key has an account there already
            network.account = messages.RegistrationResource(uri=known.location, body=messages.Registration())
        key_pem = _new_key_pem()
        order = issuer.new_order(crypto_util.make_csr(key_pem, list(hosts)))
        tokens = []
        for authorization in order.authorizations:
            if authorization.body.status == messages.STATUS_VALID:  # the CA still trusts an earlier answer
                continue
            http01 = [c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01)]
            if not http01:
                raise AcmeError(f"nginx/tls/acme: {acme.directory} offers no HTTP-01 challenge for "
                                f"{authorization.body.identifier.value}")
            response, validation = http01[0].response_and_validation(account)
            token = http01[0].chall.encode("token")
            _publish(state_dir / CHALLENGE_DIR / token, validation)
            tokens.append(token)
            issuer.answer_challenge(http01[0], response)
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=ORDER_SECONDS)
        order = issuer.poll_and_finalize(order, deadline)
    except errors.ValidationError as failed:
        problems = [f"{a.body.identifier.value}: {c.error.detail if c.error else c.status}"
                    for a in failed.failed_authzrs for c in a.body.challenges if c.error]
        raise AcmeError(f"nginx/tls/acme: {acme.directory} could not check that nginx answers for "
                        f"{', '.join(hosts)} (HTTP-01; a public CA asks port 80): {'; '.join(problems)}") from None
    except errors.TimeoutError:
        raise AcmeError(f"nginx/tls/acme: {acme.directory} did not issue within {ORDER_SECONDS} s") from None
    except messages.Error as refused:
        raise AcmeError(f"nginx/tls/acme: {acme.directory} refused: {refused.detail or refused.typ}") from None
    except (errors.Error, requests.RequestException) as err:
        raise AcmeError(f"nginx/tls/acme: {acme.directory}: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
    finally:
        for token in locals().get("tokens", []):
            (state_dir / CHALLENGE_DIR / token).unlink(missing_ok=True)
    write_pair(folder / "live", order.fullchain_pem.encode(), key_pem)


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _account_key(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        write_atomic(path, pem.decode(), mode=0o600)
        return key
    except ValueError:
        raise AcmeError(f"{path}: not a PEM private key; remove it to register a new ACME account") from None


def _new_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _publish(path: Path, validation: str) -> None:
    """A challenge answer where nginx serves it: public by design, so world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o755)
    write_atomic(path, validation, mode=0o644)
