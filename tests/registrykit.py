"""A real registry for tests that deploy "a user's own service": the registry itself, a logged-in docker
client, and third-party images (tests/images/) built on the stand-in base and pushed there.

The registry is Debian's docker-registry on loopback (scripts/test-registry): plain HTTP, which Docker
Engine allows for 127.0.0.0/8 without any insecure-registries setting. Its settings come from the
environment when set (SWIFTDEPLOY_REGISTRY, SWIFTDEPLOY_REGISTRY_USER, SWIFTDEPLOY_REGISTRY_PASSWORD_FILE),
else from `scripts/test-registry up` (which writes them to .engine/registry.env too).

Fixtures (session-scoped; import them into the test module: `from registrykit import registry, ...`):

    registry            -> Registry            started when not running (and stopped again at the end)
    registry_client     -> docker.DockerClient logged in to it (the SDK keeps the login in memory only)
    thirdparty_images   -> ThirdPartyImages    images["httpbin:2"] builds (or reuses), tags and pushes
                                               127.0.0.1:5000/thirdparty/httpbin:2 and returns a PushedImage

Builds are cached: an image carries the hash of its build context, build arguments and base image id in
the label org.swiftdeploy.test.context-sha256 (and the local tag swiftdeploy-test/thirdparty-NAME:VERSION);
a later run with the same hash only tags and pushes. At the end of the session the registry tags are
removed from the engine again (forget_local), the cache tags stay. Timings go to .engine/registry/builds.log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
IMAGES_DIR = ROOT / "tests" / "images"
REGISTRY_SCRIPT = ROOT / "scripts" / "test-registry"
REGISTRY_ENV_FILE = ROOT / ".engine" / "registry.env"
BUILD_LOG = ROOT / ".engine" / "registry" / "builds.log"
BUSYBOX = ROOT / ".tools" / "bin" / "busybox"

DEFAULT_BASE_IMAGE = "swiftdeploy/standin-base:bookworm"
STANDIN_BASE = "$SWIFTDEPLOY_BASE_IMAGE"  # the Debian base scripts/test-engine builds (or the one the env names)
HASH_LABEL = "org.swiftdeploy.test.context-sha256"
CACHE_REPO = "swiftdeploy-test/thirdparty-{name}"
REPO_PREFIX = "thirdparty"
ENV_NAMES = ("SWIFTDEPLOY_REGISTRY", "SWIFTDEPLOY_REGISTRY_USER", "SWIFTDEPLOY_REGISTRY_PASSWORD_FILE")


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """One image under tests/images/NAME: where it listens, its health path, the versions it is built in."""

    name: str
    port: int
    health_path: str
    versions: tuple[str, ...] = ("1", "2")
    base: str | None = STANDIN_BASE  # what FROM ${BASE_IMAGE} is: the stand-in base, an image, or None (scratch)
    extra_files: tuple[tuple[str, Path], ...] = ()  # (name in the build context, source file)
    user: str = "10001:10001"  # a non-root uid it runs as (its USER)


SPECS = {
    "httpbin": ImageSpec("httpbin", 8000, "/status/200"),
    "prometheus": ImageSpec("prometheus", 9090, "/-/healthy", base="prom/prometheus:v2.42.0", user="65534:65534"),
    "busybox-httpd": ImageSpec("busybox-httpd", 8080, "/healthz", versions=("1",), base=None,
                               extra_files=(("busybox", BUSYBOX),), user="65534:65534"),
}

# What a container of these images needs to run hardened (the test of each image uses exactly this).
HARDENED = {"read_only": True, "tmpfs": {"/tmp": ""}, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"]}


@dataclasses.dataclass(frozen=True)
class Registry:
    address: str  # host:port, e.g. 127.0.0.1:5000
    user: str
    password_file: Path

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def auth_config(self) -> dict:
        return {"username": self.user, "password": self.password}

    def ref(self, name: str, version: str) -> str:
        return f"{self.address}/{REPO_PREFIX}/{name}:{version}"

    def get(self, path: str, *, auth: tuple[str, str] | None | bool = True, **kwargs) -> requests.Response:
        """GET http://ADDRESS/PATH on the registry's own API (auth=True: the right credentials)."""
        if auth is True:
            auth = (self.user, self.password)
        kwargs.setdefault("timeout", 10)
        return requests.get(f"http://{self.address}/{path.lstrip('/')}", auth=auth or None, **kwargs)


@dataclasses.dataclass(frozen=True)
class PushedImage:
    name: str
    version: str
    ref: str  # 127.0.0.1:5000/thirdparty/NAME:VERSION
    image_id: str
    digest: str  # the manifest digest the registry holds (sha256:...)
    port: int
    health_path: str
    user: str
    cached: bool  # the build was skipped (same context hash)
    build_seconds: float
    push_seconds: float

    @property
    def repository(self) -> str:
        return self.ref.rpartition(":")[0]


class RegistryError(AssertionError):
    pass


# ---------------------------------------------------------------------------------------------------
# the registry


def _parse_exports(text: str) -> dict[str, str]:
    import shlex

    values = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            parts = shlex.split(value)
            values[key] = parts[0] if parts else ""
    return values


def registry_running() -> bool:
    result = subprocess.run([str(REGISTRY_SCRIPT), "status"], capture_output=True, text=True, timeout=30)
    return result.returncode == 0 and result.stdout.startswith("registry: running")


def ensure_registry() -> tuple[Registry, bool]:
    """The registry's settings, and whether this call started it (then the caller stops it again)."""
    if all(os.environ.get(name) for name in ENV_NAMES):
        registry = Registry(os.environ["SWIFTDEPLOY_REGISTRY"], os.environ["SWIFTDEPLOY_REGISTRY_USER"],
                            Path(os.environ["SWIFTDEPLOY_REGISTRY_PASSWORD_FILE"]))
        started = False
    else:
        was_running = registry_running()
        result = subprocess.run([str(REGISTRY_SCRIPT), "up"], capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RegistryError(f"scripts/test-registry up failed ({result.returncode}):\n{result.stderr}")
        values = _parse_exports(result.stdout) or _parse_exports(REGISTRY_ENV_FILE.read_text())
        registry = Registry(values["SWIFTDEPLOY_REGISTRY"], values["SWIFTDEPLOY_REGISTRY_USER"],
                            Path(values["SWIFTDEPLOY_REGISTRY_PASSWORD_FILE"]))
        started = not was_running
    answer = registry.get("/v2/", auth=None)
    if answer.status_code != 401:
        raise RegistryError(f"the registry at {registry.address} answers GET /v2/ with {answer.status_code}, "
                            "not 401: it must ask for credentials")
    return registry, started


def stop_registry() -> None:
    subprocess.run([str(REGISTRY_SCRIPT), "down"], capture_output=True, text=True, timeout=60, check=True)


def engine_client(**kwargs):
    """docker.from_env() with a build-sized timeout; fails (never skips) when no engine answers."""
    import docker

    try:
        client = docker.from_env(timeout=kwargs.pop("timeout", 900), **kwargs)
        client.ping()
    except docker.errors.DockerException as err:
        pytest.fail(f"the registry tests need a container engine (source .engine/env): {err}")
    return client


def login(client, registry: Registry, password: str | None = None) -> dict:
    """client.login with reauth (the SDK otherwise answers from its cache without asking the engine)."""
    return client.login(username=registry.user, password=registry.password if password is None else password,
                        registry=registry.address, reauth=True)


# ---------------------------------------------------------------------------------------------------
# images


def _log(line: str) -> None:
    BUILD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with BUILD_LOG.open("a") as log:
        log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")


def _context_hash(context: Path, buildargs: dict[str, str], base_id: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps(buildargs, sort_keys=True).encode())
    digest.update(base_id.encode())
    return digest.hexdigest()


def _split_ref(ref: str) -> tuple[str, str | None]:
    """"host:5000/a/b:tag" -> ("host:5000/a/b", "tag"); no tag -> (ref, None)."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, None
    return repo, tag


def forget_local(ref: str, client=None, *, layers: bool = False) -> None:
    """Make REF "not present locally": remove the tag and the image's digest references in REF's repository,
    so a deploy must pull it from the registry. The cache tag (swiftdeploy-test/...) stays, so the layers do
    too and a pull is quick; layers=True removes the image itself (every tag), so a pull downloads them."""
    import docker

    client = client or engine_client()
    repo, _ = _split_ref(ref)
    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        return
    if layers:
        client.images.remove(image.id, force=True)
    else:
        for name in [ref] + [d for d in image.attrs.get("RepoDigests") or [] if d.startswith(repo + "@")]:
            try:
                client.images.remove(name, noprune=True)
            except docker.errors.ImageNotFound:
                pass
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return
    raise AssertionError(f"{ref} is still present locally after forget_local")


def push(client, registry: Registry, ref: str) -> str:
    """Push REF with the registry's credentials; the manifest digest it got. Raises on a push error
    (the engine reports those inside the stream, not as an HTTP status)."""
    repo, tag = _split_ref(ref)
    digest = None
    for event in client.images.push(repo, tag=tag, stream=True, decode=True, auth_config=registry.auth_config):
        if "error" in event or "errorDetail" in event:
            raise RegistryError(f"push of {ref} failed: {event.get('error') or event.get('errorDetail')}")
        digest = (event.get("aux") or {}).get("Digest", digest)
    if not digest:
        raise RegistryError(f"push of {ref} reported no digest")
    return digest


def build(client, spec: ImageSpec, version: str, base_image: str | None = None):
    """The image NAME:VERSION built from tests/images/NAME (or the cached one): (image, cached, seconds)."""
    import docker

    if spec.base == STANDIN_BASE:
        base_image = base_image or os.environ.get("SWIFTDEPLOY_BASE_IMAGE") or DEFAULT_BASE_IMAGE
    else:
        base_image = spec.base
    buildargs = {"VERSION": version}
    base_id = ""
    if base_image is not None:
        buildargs["BASE_IMAGE"] = base_image
        try:
            base_id = client.images.get(base_image).id
        except docker.errors.ImageNotFound:
            pytest.fail(f"the base image {base_image} is missing: run scripts/test-engine up")
    cache_ref = f"{CACHE_REPO.format(name=spec.name)}:{version}"
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"sd-image-{spec.name}-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(IMAGES_DIR / spec.name, context)
        for name, source in spec.extra_files:
            if not source.is_file():
                pytest.fail(f"{source} is missing (scripts/setup extracts it); the {spec.name} image needs it")
            shutil.copy2(source, context / name)
        context_hash = _context_hash(context, buildargs, base_id)
        # The cache tag, checked by its label: a search by label alone would also find an image built FROM
        # this one (labels are inherited), such as a test's own derived image.
        try:
            cached = client.images.get(cache_ref)
        except docker.errors.ImageNotFound:
            cached = None
        if cached is not None and (cached.labels or {}).get(HASH_LABEL) == context_hash:
            return cached, True, time.monotonic() - start
        try:
            image, _ = client.images.build(path=str(context), tag=cache_ref, buildargs=buildargs,
                                           labels={HASH_LABEL: context_hash}, rm=True, forcerm=True, pull=False)
        except docker.errors.BuildError as err:
            lines = "".join(str(item.get("stream") or item.get("error") or "") for item in err.build_log)
            raise RegistryError(f"building {cache_ref} failed: {err}\n{lines[-3000:]}") from None
    return image, False, time.monotonic() - start


class ThirdPartyImages:
    """images["httpbin:2"] (or .get("httpbin", "2")): built once per session, pushed, a PushedImage."""

    def __init__(self, client, registry: Registry):
        self.client, self.registry = client, registry
        self.pushed: dict[str, PushedImage] = {}

    def get(self, name: str, version: str = "1") -> PushedImage:
        key = f"{name}:{version}"
        if key not in self.pushed:
            spec = SPECS[name]
            if version not in spec.versions:
                raise KeyError(f"{name} is built in versions {', '.join(spec.versions)}, not {version}")
            image, cached, build_seconds = build(self.client, spec, version)
            ref = self.registry.ref(name, version)
            image.tag(*_split_ref(ref))
            start = time.monotonic()
            digest = push(self.client, self.registry, ref)
            push_seconds = time.monotonic() - start
            _log(f"{ref} {'cached' if cached else 'built'} in {build_seconds:.1f} s, pushed in {push_seconds:.1f} s "
                 f"({digest}, {image.attrs.get('Size', 0) / 1e6:.0f} MB)")
            self.pushed[key] = PushedImage(name, version, ref, image.id, digest, spec.port, spec.health_path,
                                           spec.user, cached, build_seconds, push_seconds)
        return self.pushed[key]

    def __getitem__(self, key: str) -> PushedImage:
        name, _, version = key.partition(":")
        return self.get(name, version or "1")

    def forget_local(self, key_or_ref: str, *, layers: bool = False) -> str:
        """The registry ref of "httpbin:2" (or a ref), made not present locally; it stays in the registry."""
        ref = key_or_ref if "/" in key_or_ref else self[key_or_ref].ref
        forget_local(ref, self.client, layers=layers)
        return ref

    def cleanup(self) -> None:
        for pushed in self.pushed.values():
            forget_local(pushed.ref, self.client)


@dataclasses.dataclass(frozen=True)
class Running:
    container: object  # docker.models.containers.Container
    url: str  # http://127.0.0.1:PORT (the image's port, published on loopback)


@contextlib.contextmanager
def run_hardened(client, image: PushedImage, *, env: dict | None = None, user: str | None = None,
                 wait_seconds: float = 60, **kwargs):
    """Run IMAGE the hardened way (HARDENED: read-only root, only a tmpfs /tmp, no capabilities, a non-root
    uid) with its port on a free loopback port; wait until its health path answers 200; remove it after."""
    container = client.containers.run(image.ref, detach=True, user=user or image.user, environment=env or {},
                                      ports={f"{image.port}/tcp": ("127.0.0.1", None)},
                                      labels={"org.swiftdeploy.test": "registrykit"}, **{**HARDENED, **kwargs})
    try:
        container.reload()
        host_port = container.attrs["NetworkSettings"]["Ports"][f"{image.port}/tcp"][0]["HostPort"]
        running = Running(container, f"http://127.0.0.1:{host_port}")
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                if requests.get(running.url + image.health_path, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            container.reload()
            if container.status not in ("created", "running"):
                pytest.fail(f"{image.ref} exited ({container.status}):\n{container.logs(tail=30).decode(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(f"{image.ref} did not answer 200 on {image.health_path} within {wait_seconds} s:\n"
                            f"{container.logs(tail=30).decode(errors='replace')}")
            time.sleep(0.2)
        yield running
    finally:
        container.remove(force=True)


# ---------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def registry():
    """The test registry (scripts/test-registry): started when it was not running, stopped again after."""
    try:
        settings, started = ensure_registry()
    except RegistryError as err:
        pytest.fail(str(err))
    yield settings
    if started:
        stop_registry()


@pytest.fixture(scope="session")
def registry_client(registry):
    """A docker client logged in to the test registry (in memory: nothing is written to ~/.docker)."""
    client = engine_client()
    login(client, registry)
    yield client
    client.close()


@pytest.fixture(scope="session")
def thirdparty_images(registry_client, registry):
    """ThirdPartyImages: images["httpbin:1"] etc., pushed on first use; their registry tags are removed
    from the engine at the end (the images stay under their cache tags, the registry keeps them)."""
    images = ThirdPartyImages(registry_client, registry)
    yield images
    images.cleanup()
