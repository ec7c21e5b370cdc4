"""The container engine through the Docker API (Docker Engine, or Podman's Docker-compatible socket)."""

import os
import struct
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from ..errors import SwiftDeployError
from .facts import engine_data_path


API_VERSION = "1.41"  # Docker Engine 20.10 and Podman 4's compatible API both speak it


class EngineError(SwiftDeployError):
    pass


class ImageNotPresent(EngineError):
    """The image is not on the engine (a pull or a build would bring it)."""


@lru_cache(maxsize=1)
def client():
    import docker

    where = os.environ.get("DOCKER_HOST", "the default Docker socket")
    try:
        # A fixed API version: negotiating it costs a /version call, which takes a second on Podman.
        engine = docker.from_env(timeout=300, version=API_VERSION)
        engine.ping()
    except engine_errors() as err:  # a missing socket is a requests error, not a DockerException
        raise EngineError(f"no container engine answers at {where} ({short(err)}); start Docker, "
                          "or run scripts/test-engine up and source .engine/env") from None
    return engine


def data_path() -> str:
    """Where the engine keeps images and containers: the disk the infra gate measures.

    SWIFTDEPLOY_DATA_PATH overrides it (an engine on another filesystem than it reports, or a test).
    """
    return os.environ.get("SWIFTDEPLOY_DATA_PATH") or _reported_data_path()


@lru_cache(maxsize=1)
def _reported_data_path() -> str:
    return engine_data_path(client().info())


def image_present(reference: str) -> bool:
    return image_id(reference) is not None


def split_reference(reference: str) -> tuple[str, str]:
    """"repo/name:tag" -> ("repo/name", "tag"); no tag means "latest" (a registry port is not a tag)."""
    if ":" in reference.split("/")[-1]:
        repository, _, tag = reference.rpartition(":")
        return repository, tag
    return reference, "latest"


def build_image(context: Path, tags: list[str], *, dockerfile: str = "Dockerfile", buildargs: dict | None = None,
                target: str | None = None, labels: dict[str, str] | None = None) -> str:
    """Build context/dockerfile once and tag it with every tag; return the image id."""
    from docker.errors import APIError, BuildError

    try:
        image, _logs = client().images.build(path=str(context), dockerfile=dockerfile, tag=tags[0], rm=True,
                                             forcerm=True, buildargs=buildargs or {}, target=target,
                                             labels=labels or {})
    except BuildError as err:
        raise EngineError(f"building {tags[0]} from {context}/{dockerfile} failed: {short(err)}") from None
    except APIError as err:
        raise EngineError(f"the engine refused to build {tags[0]}: {short(err)}") from None
    for tag in tags[1:]:
        image.tag(*split_reference(tag))
    return image.id


def pull_image(reference: str, auth: dict | None = None) -> str:
    """Pull reference (with auth, else the engine client's own `docker login`); return the image id."""
    from docker.errors import APIError, NotFound

    repository, tag = split_reference(reference)
    try:
        image = client().images.pull(repository, tag=tag, auth_config=auth)
    except NotFound as err:
        raise EngineError(f"pulling {reference}: the registry has no such image or tag ({short(err)})") from None
    except APIError as err:
        raise EngineError(f"pulling {reference} failed: {short(err)}") from None
    return image.id


def image_size(reference: str) -> int:
    return client().images.get(reference).attrs.get("Size", 0)


def short(err: Exception) -> str:
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
        container = client().containers.create(image, command, volumes=volumes, cap_drop=["ALL"],
                                               security_opt=["no-new-privileges:true"], **options)
    except ImageNotFound:
        raise ImageNotPresent(f"image {image} is not present (build or pull it first)") from None
    except APIError as err:
        raise EngineError(f"could not create a container of {image}: {short(err)}") from None
    try:
        try:
            container.start()
        except APIError as err:
            raise EngineError(f"could not start {image}: {short(err)}") from None
        status = container.wait(timeout=120).get("StatusCode", 1)
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    return status, output


def remove_stopped(label: str, older_than_seconds: float) -> None:
    """Remove the containers carrying `label` that were created longer ago than that and do not run: what a
    process killed between creating and removing a throwaway container left."""
    import time

    from docker.errors import NotFound

    with asking(f"removing stopped containers labelled {label}"):
        for entry in client().api.containers(all=True, filters={"label": label}):
            if entry.get("State") == "running" or time.time() - entry.get("Created", 0) < older_than_seconds:
                continue
            try:
                client().api.remove_container(entry["Id"], force=True, v=True)
            except NotFound:
                pass


def import_image(tarball: bytes, reference: str, changes: list[str]) -> None:
    """Make an image on the engine from a root filesystem tarball (what `docker import` does).

    The tag goes inside `repo` (the API allows it): Podman 4.3 ignores a separate `tag` and says latest."""
    with asking(f"importing {reference}"):
        client().api.import_image_from_data(tarball, repository=reference, changes=changes)
    if not image_present(reference):
        raise EngineError(f"importing {reference}: the engine made no image of that name")


def engine_errors() -> tuple[type[Exception], ...]:
    from docker.errors import DockerException
    from requests import RequestException

    return DockerException, RequestException


@contextmanager
def asking(what: str):
    """Engine API failures as one EngineError line naming what was being done."""
    try:
        yield
    except engine_errors() as err:
        raise EngineError(f"{what}: {short(err)}") from None


def containers(label: str) -> list[dict]:
    """Every container (running or not) carrying `label` (key=value), as the engine's list call gives them."""
    with asking(f"listing containers labelled {label}"):
        return client().api.containers(all=True, filters={"label": label})


def inspect_container(container_id: str) -> dict | None:
    """The engine's inspect answer, or None when the container is gone."""
    from docker.errors import NotFound

    with asking(f"inspecting container {container_id[:12]}"):
        try:
            return client().api.inspect_container(container_id)
        except NotFound:
            return None


def container_logs(container_id: str, tail: int = 5) -> list[str]:
    """The container's last output lines (stdout and stderr), or [] when it is gone."""
    from docker.errors import NotFound

    with asking(f"reading the logs of container {container_id[:12]}"):
        try:
            raw = client().api.logs(container_id, stdout=True, stderr=True, tail=tail)
        except NotFound:
            return []
    return [line for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]


def log_chunks(container_id: str, *, follow: bool, since: float | None, tail: int | None, service: bool = False):
    """The container's (or, with service, a Swarm service's) output with the engine's timestamps, as chunks."""
    api = client().api
    options = {"stdout": True, "stderr": True, "timestamps": True, "follow": follow,
               "tail": "all" if tail is None else tail}
    if since is not None:
        options["since"] = int(since)
    what = f"reading the logs of {'service' if service else 'container'} {container_id[:12]}"
    with asking(what):
        chunks = api.service_logs(container_id, **options) if service else api.logs(container_id, stream=True, **options)
    return _asked(what, chunks)


def _asked(what: str, chunks):
    """The chunks, with an engine failure while they come as one EngineError line too."""
    with asking(what):
        yield from chunks


def inspect_image(reference: str, api=None) -> dict | None:
    """The engine's inspect answer for an image, or None when no such image is present. `api`: as in exec_in."""
    from docker.errors import ImageNotFound

    with asking(f"inspecting image {reference}"):
        try:
            return (api or client().api).inspect_image(reference)
        except ImageNotFound:
            return None


def image_id(reference: str, api=None) -> str | None:
    """The id an image reference resolves to now, or None when no such image is present. `api`: as in exec_in."""
    image = inspect_image(reference, api)
    return image["Id"] if image else None


def remove_container(container_id: str, stop_seconds: int = 5) -> None:
    """Stop and remove a container; one that is already gone counts as removed."""
    from docker.errors import NotFound

    api = client().api
    with asking(f"removing container {container_id[:12]}"):
        try:
            api.stop(container_id, timeout=stop_seconds)
        except NotFound:
            return
        except engine_errors():
            pass  # some engines refuse to stop an exited container; removing it decides
        try:
            api.remove_container(container_id, force=True)
        except NotFound:
            return


def tag_image(image: str, repository: str, tag: str) -> None:
    with asking(f"tagging {image[:19]} as {repository}:{tag}"):
        client().api.tag(image, repository, tag)


def untag_image(reference: str) -> None:
    from docker.errors import ImageNotFound

    with asking(f"removing the tag {reference}"):
        try:
            client().api.remove_image(reference, noprune=True)
        except ImageNotFound:
            return


def exec_in(container_id: str, command: list[str], api=None) -> tuple[int, str, str]:
    """Run a command in a running container: (exit code, stdout, stderr). The command must bound its own time.
    `api`: another engine's (a swarm node's); default, the engine DOCKER_HOST names."""
    api = api or client().api
    with asking(f"running {command[0]} in container {container_id[:12]}"):
        created = api.exec_create(container_id, command, stdout=True, stderr=True)
        out, err = _exec_output(api, created["Id"])
        code = api.exec_inspect(created["Id"]).get("ExitCode")
    return (1 if code is None else code), (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")


def _exec_output(api, exec_id: str) -> tuple[bytes, bytes]:
    """(stdout, stderr) of an exec, started now and read to its end.

    docker-py's exec_start reads the frames from the raw socket under the HTTP response's buffered reader, so
    output the engine sent right behind the response headers, already in that buffer, is lost and the next frame
    header is read from the middle of a frame ("48 is not a valid stream"; seen here once in a fresh run, reading
    megabytes of nginx's request log; docker/docker-py#3160). The frames are read here from the buffered reader.
    Over ssh:// docker-py's own reading is kept (its stream is a channel, not a buffered socket)."""
    if api.base_url.startswith("http+docker://ssh") or api.base_url == "http+docker://localnpipe":
        return api.exec_start(exec_id, demux=True)
    response = api._post_json(api._url("/exec/{0}/start", exec_id), headers={"Connection": "Upgrade", "Upgrade": "tcp"},
                              data={"Tty": False, "Detach": False}, stream=True)
    try:
        api._raise_for_status(response)
        stream = response.raw._fp.fp
        streams: dict[int, list[bytes]] = {1: [], 2: []}
        while len(header := stream.read(8)) == 8:
            kind, size = struct.unpack(">BxxxL", header)
            streams.get(kind, streams[2]).append(stream.read(size))
        return b"".join(streams[1]), b"".join(streams[2])
    finally:
        response.close()
