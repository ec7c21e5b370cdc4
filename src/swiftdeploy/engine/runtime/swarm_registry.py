"""App images that came from a registry, on Swarm: each node pulls them itself, with the registry's credentials
(`docker stack deploy --with-registry-auth`), instead of being given them by the manager node by node.

The manager's engine says where an image came from: a pulled image has a digest in its repository
(RepoDigests), one built here has none. A pulled image is deployed pinned to that digest, so every node runs
the manager's image even after the tag moved in the registry, and a node that holds it (a rollback) pulls
nothing. The credentials reach the docker CLI in a config of its own under the state directory (0600, removed
after the command), holding the user's own CLI config with SwiftDeploy's registry files added.
"""

import base64
import json
import os
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

from ..registry import credentials, registry_of

DOCKER_HUB = "https://index.docker.io/v1/"
AUTH_DIR = "docker-config"  # in the state directory, only while a deploy runs


def cli_config(user_config: Mapping, references, directory: Path) -> dict | None:
    """The docker CLI config that adds SwiftDeploy's kept credentials for the references' registries to the
    user's own (credential helpers and other logins stay); None when SwiftDeploy keeps none for them."""
    auths, others = {}, set()
    for reference in references:
        host = registry_of(reference) or DOCKER_HUB
        found = credentials(reference, directory)
        if found:
            token = base64.b64encode(f"{found['username']}:{found['password']}".encode()).decode()
            auths[host] = {"auth": token}
        else:
            others.add(host)
    if not auths:
        return None
    config = dict(user_config)
    config["auths"] = {**(user_config.get("auths") or {}), **auths}
    # A credential store would answer for every registry and hide these: it keeps only the others.
    helpers = {host: helper for host, helper in (user_config.get("credHelpers") or {}).items() if host not in auths}
    store = config.pop("credsStore", None)
    if store:
        helpers.update({host: store for host in others - helpers.keys()})
    if helpers or "credHelpers" in config:
        config["credHelpers"] = helpers
    return config


def user_cli_config() -> dict:
    """The docker CLI config the user's own commands read ({} when there is none or it is unreadable)."""
    path = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


@contextmanager
def registry_auth(references, state_dir: Path):
    """The environment for a docker CLI command that must hand the registries' credentials to the swarm:
    {"DOCKER_CONFIG": a private directory} while the block runs, or {} (the CLI's own login)."""
    config = cli_config(user_cli_config(), references, state_dir / "registries")
    if config is None:
        yield {}
        return
    folder = state_dir / AUTH_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / "config.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(config, file)
    try:
        yield {"DOCKER_CONFIG": str(folder.resolve())}
    finally:
        path.unlink(missing_ok=True)
