"""Where the external binaries the project drives are found."""

import os
import shutil
from pathlib import Path

from .errors import SwiftDeployError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
