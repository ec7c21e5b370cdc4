"""The HTTP health probe as a container's Docker healthcheck, bind-mounted read-only at /.swiftdeploy/health
as SwiftDeploy mounts it: in the stand-in base image, and in a FROM scratch image with no shell at all (only a
static busybox httpd), also hardened (read-only root, an unprivileged user, no capabilities, no network)."""

import shutil
import time

import pytest

from probekit import built_probe
from projectkit import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

STANDIN = "swiftdeploy/standin-base:bookworm"
SCRATCH = "swiftdeploy-test/health-probe-scratch:latest"
LABEL = {"swiftdeploy.test": "health-probe"}
MOUNTED_AT = "/.swiftdeploy/health"
HARDENED = dict(read_only=True, user="65534:65534", cap_drop=["ALL"])
SECOND = 1_000_000_000  # the Docker API counts healthcheck times in nanoseconds


@pytest.fixture(scope="module")
def engine():
    """The engine's Docker client (DOCKER_HOST of .engine/env); fails, never skips, without one."""
    from swiftdeploy.engine.api import client
    from swiftdeploy.errors import SwiftDeployError

    try:
        return client()
    except SwiftDeployError as err:
        pytest.fail(f"the engine tests need a container engine: {err}")


@pytest.fixture(scope="module")
def probe():
    return built_probe()


@pytest.fixture(scope="module")
def scratch_image(engine, tmp_path_factory):
    """FROM scratch with a static busybox serving /www on :8000: no /bin/sh, no curl, no Python."""
    context = tmp_path_factory.mktemp("scratch-context")
    shutil.copy(ROOT / ".tools" / "bin" / "busybox", context / "busybox")
    (context / "www").mkdir()
    (context / "www" / "index.html").write_text("ok\n")
    (context / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        "COPY www /www\n"
        'ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "8000", "-h", "/www"]\n')
    image, _ = engine.images.build(path=str(context), tag=SCRATCH, rm=True, forcerm=True, labels=LABEL)
    try:
        yield image
    finally:
        engine.images.remove(SCRATCH, force=True)


@pytest.fixture
def run_checked(engine, probe):
    """run_checked(image, url, command=None, **options): a container health-checked by the probe on url."""
    started = []

    def run(image, url, command=None, **options):
        container = engine.containers.run(
            image, command, detach=True, labels=LABEL,
            volumes={str(probe): {"bind": MOUNTED_AT, "mode": "ro"}},
            healthcheck={"test": ["CMD", MOUNTED_AT, url, "--timeout=2"], "interval": SECOND,
                         "timeout": 5 * SECOND, "retries": 2, "start_period": 0},
            **options)
        started.append(container)
        return container

    yield run
    for container in started:
        container.remove(force=True)


def health_of(container, want: str, within: float = 30) -> dict:
    """The container's State.Health once its Status is want (fails on the other final status or time out)."""
    deadline = time.monotonic() + within
    while True:
        container.reload()
        state = container.attrs["State"]
        health = state.get("Health") or {}
        if health.get("Status") == want:
            return health
        assert state["Status"] == "running", f"the container stopped: {state} {container.logs()[-2000:]!r}"
        assert health.get("Status") in ("starting", "healthy", "unhealthy"), health
        if health.get("Status") != "starting" or time.monotonic() > deadline:
            assert health.get("Status") == want, f"health is not {want}: {health}"
        time.sleep(0.2)


def outputs(health: dict) -> list[str]:
    return [entry["Output"] for entry in health["Log"]]


@pytest.mark.parametrize("options", [{}, HARDENED], ids=["plain", "hardened"])
def test_the_stand_in_base_becomes_healthy(engine, run_checked, options):
    container = run_checked(STANDIN, "http://127.0.0.1:8000/",
                            ["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1", "--directory", "/"],
                            **options)
    health = health_of(container, "healthy")
    assert health["Log"][-1]["ExitCode"] == 0 and outputs(health)[-1] == "GET /: 200\n"


@pytest.mark.parametrize("options", [{}, HARDENED], ids=["plain", "hardened"])
def test_the_stand_in_base_with_a_missing_path_becomes_unhealthy(engine, run_checked, options):
    container = run_checked(STANDIN, "http://127.0.0.1:8000/missing",
                            ["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1", "--directory", "/"],
                            **options)
    health = health_of(container, "unhealthy")
    assert health["Log"][-1]["ExitCode"] == 1 and "GET /missing: 404\n" in outputs(health)


@pytest.mark.parametrize("options", [{}, dict(HARDENED, network_mode="none")], ids=["plain", "hardened"])
def test_a_scratch_image_becomes_healthy(run_checked, scratch_image, options):
    container = run_checked(SCRATCH, "http://127.0.0.1:8000/", **options)
    health = health_of(container, "healthy")
    assert outputs(health)[-1] == "GET /: 200\n"
    no_shell = container.exec_run(["/bin/sh", "-c", "true"])  # so no CMD-SHELL healthcheck could run here
    assert no_shell.exit_code != 0 and b"no such file" in no_shell.output


@pytest.mark.parametrize("options", [{}, dict(HARDENED, network_mode="none")], ids=["plain", "hardened"])
def test_a_scratch_image_with_a_missing_path_becomes_unhealthy(run_checked, scratch_image, options):
    container = run_checked(SCRATCH, "http://127.0.0.1:8000/missing", **options)
    health = health_of(container, "unhealthy")
    assert health["Log"][-1]["ExitCode"] == 1 and "GET /missing: 404\n" in outputs(health)


def test_a_scratch_image_whose_server_is_down_is_unhealthy_with_the_reason(run_checked, scratch_image):
    """Port 8001 has no server: the health log, which SwiftDeploy quotes, says why."""
    container = run_checked(SCRATCH, "http://127.0.0.1:8001/healthz", **HARDENED, network_mode="none")
    health = health_of(container, "unhealthy")
    assert "GET /healthz: connection refused\n" in outputs(health)
