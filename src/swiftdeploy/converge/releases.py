"""Confirmed stable releases (.swiftdeploy/releases.json): what `rollback` returns to.

A release is confirmed when a deploy or promote:stable finished and traffic showed it serving. Its image is
kept under a tag of its own (`<repository>:release-<version>-<image id>`), so a rollback never needs a
build even after the manifest's tag was rebuilt. The last KEEP releases keep their tags.
"""

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import SwiftDeployError
from ..files import write_atomic

KEEP = 5


class ReleaseError(SwiftDeployError):
    pass


@dataclass(frozen=True)
class Release:
    version: str
    image: str  # the image reference the manifest named
    image_id: str
    tag: str  # the kept tag of image_id
    operation: str  # deploy | promote:stable
    op_id: str
    confirmed_at: str
    digest: str | None = None  # repository@sha256:... of an image that came from a registry


def release_tag(image: str, version: str, image_id: str) -> str:
    from ..engine.api import split_reference

    repository, _ = split_reference(image)
    digest = image_id.split(":")[-1][:12]
    return f"{repository}:release-{re.sub(r'[^A-Za-z0-9_.-]', '_', version)[:80]}-{digest}"


class Releases:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def all(self) -> list[Release]:
        try:
            entries = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as err:
            raise ReleaseError(f"{self.path}: unreadable ({err}); delete it to start the release record anew") from None
        try:
            return [Release(**entry) for entry in entries]
        except TypeError:
            raise ReleaseError(f"{self.path}: not a list of releases; delete it to start the record anew") from None

    def last(self) -> Release | None:
        releases = self.all()
        return releases[-1] if releases else None

    def record(self, release: Release) -> list[Release]:
        """Append a release (the file is replaced atomically); return the releases it no longer keeps."""
        releases = [r for r in self.all() if r.tag != release.tag] + [release]
        kept, dropped = releases[-KEEP:], releases[:-KEEP]
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps([asdict(r) for r in kept], indent=2) + "\n", mode=0o600)
        return [r for r in dropped if r.tag not in {k.tag for k in kept}]
