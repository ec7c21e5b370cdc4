"""The images the stack builds: the bundled app from app/, or the user's own context and Dockerfile.

Each is built only when the inputs it was built from (a hash kept as a label on the image) differ, so a
fresh clone, another doit database or a CI cache all see the same answer, and a kept release image
(`...:release-...`, see releases.py) is never built over. An image the manifest uses as it is
(`build: false`) is never built: it is present, or pulled.
"""

import hashlib
import os
from pathlib import Path

from ..errors import SwiftDeployError
from ..model.manifest import BUNDLED, Build, ImageSource, Manifest
from ..state import APP_HASH_LABEL

DEFAULT_BASE_IMAGE = "python:3.12-slim"


class BuildInputError(SwiftDeployError):
    pass


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


def context_of(root: Path, build: Build) -> Path:
    return (root / build.context).resolve()


def context_files(context: Path, dockerfile: str) -> list[str]:
    """The files a build sends to the engine: the context minus what its .dockerignore excludes."""
    from docker.utils.build import exclude_paths

    ignore = context / ".dockerignore"
    patterns = []
    if ignore.is_file():
        patterns = [line.strip() for line in ignore.read_text().splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    return sorted(exclude_paths(str(context), patterns, dockerfile=dockerfile))


def own_hash(root: Path, build: Build) -> str:
    """What the user's image is built from: the context's files (as .dockerignore leaves them), the
    Dockerfile, the build arguments and the target stage."""
    context = context_of(root, build)
    problem = input_problem(root, build)
    if problem:
        raise BuildInputError(problem)
    digest = hashlib.sha256(f"dockerfile={build.dockerfile}\nargs={sorted(build.args)}\ntarget={build.target}\n".encode())
    for name in context_files(context, build.dockerfile):
        path = context / name
        if path.is_file():
            digest.update(f"{name}\n".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def input_problem(root: Path, build: Build) -> str | None:
    """Why this build cannot start (a missing context or Dockerfile), or None."""
    context = context_of(root, build)
    if not context.is_dir():
        return f"services build context {build.context}: no such directory ({context})"
    if not (context / build.dockerfile).is_file():
        return f"services build: {build.dockerfile} not found in the context {build.context}"
    return None


def source_hashes(manifest: Manifest, root: Path, canary_only: bool = False) -> dict:
    """Hash of every build source the manifest names: the bundled app (BUNDLED) and each own Build (an image
    used as it is has none). canary_only: the canary's own Build only (the bundled app is built by deploy)."""
    hashes = {}
    sources = {manifest.services.build, manifest.services.canary.build}
    if canary_only:
        sources = {manifest.services.canary.build} - {BUNDLED}
    for source in sources:
        if source == BUNDLED:
            hashes[BUNDLED] = app_hash(root)
        elif isinstance(source, Build):
            hashes[source] = own_hash(root, source)
    return hashes


def describe_source(source: ImageSource) -> str:
    if source == BUNDLED:
        return "app/"
    return f"{source.context} ({source.dockerfile}{f', target {source.target}' if source.target else ''})"


def buildable(references) -> list[str]:
    """The references a build may tag: never a kept release."""
    return [ref for ref in dict.fromkeys(references) if ":release-" not in ref]


def outdated(references, images, source_hash: str) -> list[str]:
    """The buildable references whose image is missing or was built from other sources.
    `images` maps a reference to its ImageFact (state.py)."""
    return [ref for ref in buildable(references)
            if images.get(ref) is None or images[ref].id is None or images[ref].app_hash != source_hash]


def build(root: Path, references, source_hash: str, source: ImageSource = BUNDLED) -> str:
    from . import api as engine

    tags = buildable(references)
    labels = {APP_HASH_LABEL: source_hash}
    if source == BUNDLED:
        return engine.build_image(root / "app", tags, buildargs={"BASE_IMAGE": base_image()}, labels=labels)
    return engine.build_image(context_of(root, source), tags, dockerfile=source.dockerfile,
                              buildargs=dict(source.args), target=source.target, labels=labels)
