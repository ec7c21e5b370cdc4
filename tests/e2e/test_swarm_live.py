"""runtime: swarm against a real swarm: 2 replicas per track behind nginx, promotions and a rollback with no failed
request, a killed task that nginx stops sending to, and a teardown that leaves nothing.

SWIFTDEPLOY_SWARM_HOST is the DOCKER_HOST of a swarm manager whose network namespace this test runs in (nginx's
host-mode port and OPA are reached on 127.0.0.1). Selected with `-m swarm`; it fails, never skips, without one.
"""

import json
import os
import time

import docker
import pytest
import requests

from stackkit import SteadyLoad, make_project, manifest_of, ok, public_url, swiftdeploy

pytestmark = [pytest.mark.swarm, pytest.mark.timeout(1200)]
REPLICAS = 2


@pytest.fixture
def swarm(monkeypatch):
    host = os.environ.get("SWIFTDEPLOY_SWARM_HOST")
    if not host:
        pytest.fail("the swarm tests need SWIFTDEPLOY_SWARM_HOST: the DOCKER_HOST of a swarm manager "
                    "(e.g. docker swarm init on scripts/test-engine's dockerd)")
    monkeypatch.setenv("DOCKER_HOST", host)
    engine = docker.DockerClient(base_url=host, version="1.41")
    if engine.info().get("Swarm", {}).get("ControlAvailable") is not True:
        pytest.fail(f"{host} is not a swarm manager (docker swarm init)")
    return engine


@pytest.fixture
def project(tmp_path, swarm):
    project = make_project(tmp_path / "project", canary={"version": "1.1.0", "weight": 40})
    manifest = project / "manifest.yaml"
    text = manifest.read_text().replace("  mode: stable\n", f"  mode: stable\n  replicas: {REPLICAS}\n", 1)
    manifest.write_text("runtime: swarm\n" + text)
    yield project
    swiftdeploy(project, "teardown")


def stack_of(swarm, project) -> dict:
    """What the swarm holds of the project: services, containers, networks, volumes (names)."""
    name = manifest_of(project).project
    label = {"label": f"com.docker.stack.namespace={name}"}
    return {"services": [s.name for s in swarm.services.list(filters=label)],
            "containers": [c.name for c in swarm.containers.list(all=True, filters=label)],
            "networks": [n.name for n in swarm.networks.list(filters=label)],
            "volumes": [v.name for v in swarm.volumes.list() if v.name == manifest_of(project).log_volume]}


def running_tasks(swarm, service: str) -> list[dict]:
    return [t for t in swarm.services.get(service).tasks(filters={"desired-state": "running"})
            if t["Status"]["State"] == "running"]


def nginx_log_upstreams(swarm, project, last: int) -> list[str]:
    """The upstream address column of nginx's last `last` requests."""
    name = manifest_of(project).project
    [nginx] = swarm.containers.list(filters={"label": f"com.docker.swarm.service.name={name}_nginx"})
    code, out = nginx.exec_run(["tail", "-n", str(last), "/var/tmp/swiftdeploy-access.log"])
    assert code == 0, out
    return [line.split(" | ")[3] for line in out.decode().splitlines()]


def canary_statuses(url: str, n: int = 20) -> set[int]:
    return {requests.get(f"{url}/", headers={"Connection": "close", "X-SwiftDeploy-Track": "canary"}, timeout=10).status_code
            for _ in range(n)}


def test_a_swarm_stack_deploys_promotes_rolls_back_survives_a_killed_task_and_tears_down(swarm, project):
    name = manifest_of(project).project
    ok(swiftdeploy(project, "deploy", timeout=600))
    url = public_url(project)
    assert len(running_tasks(swarm, f"{name}_app-stable")) == REPLICAS
    with SteadyLoad(url) as load:
        time.sleep(2)
        assert len(set(nginx_log_upstreams(swarm, project, 40))) == REPLICAS, "both stable tasks take requests"

        ok(swiftdeploy(project, "promote", "canary"))
        assert len(running_tasks(swarm, f"{name}_app-canary")) == REPLICAS
        time.sleep(6)  # the canary gate reads a 5 s window
        ok(swiftdeploy(project, "promote", "stable", timeout=600))
        ok(swiftdeploy(project, "promote", "canary"))
        ok(swiftdeploy(project, "rollback"))
        assert manifest_of(project).services.mode == "stable"
        assert not [s for s in swarm.services.list() if s.name == f"{name}_app-canary"]

        victim = running_tasks(swarm, f"{name}_app-stable")[0]
        dead = victim["NetworksAttachments"][0]["Addresses"][0].split("/")[0]
        swarm.containers.get(victim["Status"]["ContainerStatus"]["ContainerID"]).kill()
        deadline = time.monotonic() + 90
        while len([t for t in running_tasks(swarm, f"{name}_app-stable") if t["ID"] != victim["ID"]]) < REPLICAS:
            assert time.monotonic() < deadline, "Swarm did not replace the killed task within 90 s"
            time.sleep(1)
        replaced = time.monotonic()
        while len({u for u in nginx_log_upstreams(swarm, project, 20) if "," not in u}) < REPLICAS:  # looks every 1 s
            assert time.monotonic() < replaced + 30, "nginx did not send to the new task within 30 s"
            time.sleep(0.5)
        print(f"\nnginx sent to the new task {time.monotonic() - replaced:.1f} s after Swarm reported it running")
        time.sleep(2)
        upstreams = nginx_log_upstreams(swarm, project, 60)
    print(f"\nsteady load through nginx on swarm: {load.total} requests, outcomes {dict(load.outcomes)}")
    assert load.total >= 500, load.outcomes
    assert load.failures() == {}, load.outcomes
    assert not [u for u in upstreams if u.startswith(f"{dead}:")], f"nginx still sends to the dead task {dead}"

    ok(swiftdeploy(project, "promote", "canary"))
    ok(swiftdeploy(project, "chaos", "error", "--rate", "1"))
    assert canary_statuses(url) == {500}, "every canary task injects the error, not just the one nginx picked"
    status = json.loads(ok(swiftdeploy(project, "status", "--once", "--format", "json")).stdout)
    assert status["chaos"] == "error" and status["tracks"]["canary"].get("down") is None, status
    ok(swiftdeploy(project, "chaos", "recover"))
    assert canary_statuses(url) == {200}

    ok(swiftdeploy(project, "teardown"))
    assert stack_of(swarm, project) == {"services": [], "containers": [], "networks": [], "volumes": []}
