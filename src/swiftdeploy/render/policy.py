"""The policy OPA decides with, as an input of the desired state (pure, apart from reading and copying files).

What OPA loads is policies/ without its tests: every `.rego` file but `*_test.rego`, and every `data.json`.
Its revision is a hash of those files' paths and bytes, so an edit of a threshold in data.json is a new
revision like an edit of a rule. OPA never reads policies/ itself: it loads a snapshot of one revision
(`.swiftdeploy/policy/<revision>/`, a bundle whose `.manifest` names the revision), so a policy edited
but not yet deployed never reaches a running or restarted OPA, and every decision says which revision
it came from (OPA's provenance).
"""

import hashlib
import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from ..errors import SwiftDeployError

POLICY_DIR = "policy"  # under the state directory: one snapshot per revision
VERSION_PREFIX = "policy "  # OPA's io.swiftdeploy.version label: "policy <revision>"


class PolicyError(SwiftDeployError):
    pass


def policy_files(policies: Path) -> list[Path]:
    """The files OPA loads, relative to policies/, sorted: what the revision covers."""
    if not policies.is_dir():
        raise PolicyError(f"{policies}: no such directory (the Rego policies OPA decides with live there)")
    found = []
    for path in policies.rglob("*"):
        relative = path.relative_to(policies)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if (path.suffix == ".rego" and not path.name.endswith("_test.rego")) or path.name == "data.json":
            found.append(relative)
    return sorted(found)


def revision(policies: str | Path) -> str:
    """The revision of the policy in a policies/ folder: 12 hex digits of a hash over what OPA loads."""
    policies = Path(policies)
    files = policy_files(policies)
    stamp = tuple((str(f), *_stat(policies / f)) for f in files)
    return _revision(str(policies), stamp)


def _stat(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_mtime_ns, info.st_size


@lru_cache(maxsize=16)
def _revision(policies: str, stamp: tuple) -> str:  # keyed by the files' names, mtimes and sizes
    digest = hashlib.sha256()
    for name, *_ in stamp:
        digest.update(name.encode() + b"\0" + (Path(policies) / name).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def revision_in(version: str | None) -> str:
    """The revision an OPA container's version label names ("" for none)."""
    return (version or "").removeprefix(VERSION_PREFIX)


def snapshot_dir(state_dir: Path, rev: str) -> Path:
    return Path(state_dir) / POLICY_DIR / rev


def write_snapshot(policies: str | Path, state_dir: str | Path) -> tuple[str, Path]:
    """The snapshot of the current revision, written once (a folder renamed into place, never changed after):
    (revision, folder). A folder without its .manifest (a stray one an engine made for a missing mount
    source) is replaced."""
    policies, state_dir = Path(policies), Path(state_dir)
    rev = revision(policies)
    target = snapshot_dir(state_dir, rev)
    if (target / ".manifest").is_file():
        return rev, target
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(target.parent, 0o755)  # OPA's non-root user reads the mounted snapshot
    staging = Path(tempfile.mkdtemp(prefix=f".{rev}-", dir=target.parent))
    try:
        for relative in policy_files(policies):
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(policies / relative, staging / relative)
        (staging / ".manifest").write_text(json.dumps({"revision": rev, "roots": [""]}) + "\n")
        for path in [staging, *staging.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        if target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise PolicyError(f"cannot write the policy snapshot {target}: {err.strerror or err}") from None
    if revision(policies) != rev:  # edited while being copied: the next command snapshots the new files
        shutil.rmtree(target, ignore_errors=True)
        raise PolicyError(f"{policies} changed while it was being read; run the command again")
    return rev, target


def snapshot_diff(old: Path | None, policies: Path) -> list[str]:
    """A unified diff, per file, from a snapshot (what OPA serves) to policies/ (what the next deploy loads)."""
    import difflib

    new_files = set(map(str, policy_files(policies)))
    old_files = set() if old is None or not old.is_dir() else {
        str(p.relative_to(old)) for p in old.rglob("*") if p.is_file() and p.name != ".manifest"}
    lines = []
    for name in sorted(new_files | old_files):
        before = (old / name).read_text().splitlines() if name in old_files else []
        after = (policies / name).read_text().splitlines() if name in new_files else []
        if before != after:
            lines += difflib.unified_diff(before, after, f"policies/{name} (OPA serves)",
                                          f"policies/{name} (on disk)", n=1, lineterm="")
    return lines


def prune(state_dir: str | Path, keep: set[str], newest: int = 3) -> None:
    """Remove snapshots other than `keep` and the `newest` few (a rollback of OPA needs none of them)."""
    base = Path(state_dir) / POLICY_DIR
    if not base.is_dir():
        return
    folders = sorted((p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for folder in folders[newest:]:
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
            folder.with_suffix(".checked").unlink(missing_ok=True)
