"""Which manifest passed the JSON Schema last: a command run on the same manifest and schema skips the check
(and the import of jsonschema, most of a no-change command's own time). The record is a digest of the two."""

import hashlib
from pathlib import Path

from ..errors import SwiftDeployError
from ..files import write_atomic
from .manifest import SCHEMA_PATH

RECORD = Path(".swiftdeploy") / "schema-passed"


def digest(content: bytes) -> str:
    return hashlib.sha256(SCHEMA_PATH.read_bytes() + b"\0" + content).hexdigest()


def passed_before(key: str, root: Path = Path(".")) -> bool:
    """key: digest() of the manifest's bytes."""
    try:
        return (root / RECORD).read_text() == key
    except OSError:
        return False


def remember(key: str, root: Path = Path(".")) -> None:
    """After a full check passed. The state folder is private, as init makes it."""
    try:
        (root / RECORD).parent.mkdir(mode=0o700, exist_ok=True)
        write_atomic(root / RECORD, key, mode=0o600)
    except (OSError, SwiftDeployError):
        pass  # only a shortcut: the next command checks in full again
