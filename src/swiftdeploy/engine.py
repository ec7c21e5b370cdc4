"""The container engine through the Docker API (Docker Engine, or Podman's Docker-compatible socket)."""

import os
from functools import lru_cache
from pathlib import Path

from .errors import SwiftDeployError
from .facts import engine_data_path


class EngineError(SwiftDeployError):
    pass


@lru_cache(maxsize=1)
def client():
    import docker
    from docker.errors import DockerException

    where = os.environ.get("DOCKER_HOST", "the default Docker socket")
    try:
        engine = docker.from_env(timeout=300)
        engine.ping()
    except DockerException as err:
        raise EngineError(f"no container engine answers at {where} ({_short(err)}); start Docker, "
                          "or run scripts/test-engine up and source .engine/env") from None
    return engine


def data_path() -> str:
    """Where the engine keeps images and containers: the disk the infra gate measures.

    SWIFTDEPLOY_DATA_PATH overrides it (an engine on another filesystem than it reports, or a test).
    """
    return os.environ.get("SWIFTDEPLOY_DATA_PATH") or engine_data_path(client().info())


def image_present(reference: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client().images.get(reference)
    except ImageNotFound:
        return False
    return True


def build_image(context: Path, tags: list[str], base_image: str) -> str:
    """Build context/Dockerfile once and tag it with every tag; return the image id."""
    from docker.errors import APIError, BuildError

    try:
        image, _logs = client().images.build(path=str(context), tag=tags[0], rm=True, forcerm=True,
                                             buildargs={"BASE_IMAGE": base_image})
    except BuildError as err:
        raise EngineError(f"building {tags[0]} from {context}/Dockerfile failed: {_short(err)}") from None
    except APIError as err:
        raise EngineError(f"the engine refused to build {tags[0]}: {_short(err)}") from None
    for tag in tags[1:]:
        repository, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
        image.tag(repository, version)
    return image.id


def image_size(reference: str) -> int:
    return client().images.get(reference).attrs.get("Size", 0)


def _short(err: Exception) -> str:
    text = str(getattr(err, "explanation", None) or err).strip()
    return text.splitlines()[-1][:300] if text else type(err).__name__


def run_once(image: str, command: list[str], mounts: dict[str, str], **options) -> tuple[int, str]:
    """Run a throwaway container and return (exit code, output).

    Not `remove=True`: Podman 4.3's API reports exit 0 for every auto-removed container, so the
    container is waited on, read, then removed.
    """
    from docker.errors import APIError, ImageNotFound

    volumes = {source: {"bind": target, "mode": "ro"} for source, target in mounts.items()}
    try:
        container = client().containers.run(image, command, volumes=volumes, detach=True, cap_drop=["ALL"],
                                            security_opt=["no-new-privileges:true"], **options)
    except ImageNotFound:
        raise EngineError(f"image {image} is not present (build or pull it first)") from None
    except APIError as err:
        raise EngineError(f"could not start {image}: {_short(err)}") from None
    try:
        status = container.wait(timeout=120).get("StatusCode", 1)
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    return status, output
