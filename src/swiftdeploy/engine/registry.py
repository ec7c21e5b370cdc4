"""Registry credentials the user keeps beside the stack: .swiftdeploy/registries/<host[:port]>, one line
`username:password`, mode 0600 (git-ignored with the rest of .swiftdeploy/). Without such a file a pull
uses the engine client's own `docker login`."""

import stat
from pathlib import Path

from ..errors import SwiftDeployError


class RegistryCredentialsError(SwiftDeployError):
    pass


def registry_of(reference: str) -> str | None:
    """The registry host a reference names (`127.0.0.1:5000/team/app:1` -> 127.0.0.1:5000); None for Docker Hub."""
    first, slash, _ = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def credentials(reference: str, directory: Path) -> dict | None:
    """The auth_config for pulling reference, or None (no file for its registry)."""
    registry = registry_of(reference)
    path = Path(directory) / (registry or "docker.io")
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise RegistryCredentialsError(f"{path}: cannot read: {err.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise RegistryCredentialsError(f"{path}: readable by others (mode {stat.S_IMODE(mode):o}); "
                                       f"run `chmod 600 {path}`")
    username, colon, password = text.strip().partition(":")
    if not colon or not username or not password:
        raise RegistryCredentialsError(f"{path}: must hold one line username:password")
    return {"username": username, "password": password, **({"serveraddress": registry} if registry else {})}
