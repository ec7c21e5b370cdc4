"""The app image: built from app/ when the sources it was built from (a label on the image) differ.

The engine keeps the answer to "is the image current?" (the io.swiftdeploy.app-hash label), so a fresh
clone, another doit database or a CI cache all see the same thing, and a kept release image
(`...:release-...`, see releases.py) is never built over.
"""

import hashlib
import os
from pathlib import Path

from ..state import APP_HASH_LABEL

DEFAULT_BASE_IMAGE = "python:3.12-slim"


def base_image() -> str:
    return os.environ.get("SWIFTDEPLOY_BASE_IMAGE", DEFAULT_BASE_IMAGE)


def app_sources(root: Path) -> list[Path]:
    app = root / "app"
    return sorted(p for p in app.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc"))


def app_hash(root: Path, base: str | None = None) -> str:
    """What an app image is built from: every file under app/ (path and content) and the base image."""
    digest = hashlib.sha256(f"base={base or base_image()}\n".encode())
    for path in app_sources(root):
        digest.update(f"{path.relative_to(root).as_posix()}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def buildable(references) -> list[str]:
    """The references a build may tag: never a kept release."""
    return [ref for ref in dict.fromkeys(references) if ":release-" not in ref]


def outdated(references, images, source_hash: str) -> list[str]:
    """The buildable references whose image is missing or was built from other sources.
    `images` maps a reference to its ImageFact (state.py)."""
    return [ref for ref in buildable(references)
            if images.get(ref) is None or images[ref].id is None or images[ref].app_hash != source_hash]


def build(root: Path, references, source_hash: str) -> str:
    from . import api as engine

    tags = buildable(references)
    return engine.build_image(root / "app", tags, base_image(), labels={APP_HASH_LABEL: source_hash})
