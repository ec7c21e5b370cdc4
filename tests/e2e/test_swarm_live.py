"""runtime: swarm against a real 3-node swarm of test hosts (scripts/test-engine swarm up 3): 3 stable tasks spread
over the nodes behind nginx; promote canary, rollback, promote stable with a new version (SIGKILLed while
Swarm rolls the tasks, then run again) under load with no failed request; a killed task nginx stops sending to;
chaos on every task; the dockerd of a worker that runs stable tasks stopped under load (Swarm moves them; no request
fails); a teardown that leaves nothing on any node.

SWIFTDEPLOY_SWARM_HOST is the DOCKER_HOST of the swarm's manager, node1, whose network namespace this test runs
in (nginx's host-mode port and OPA are reached on 127.0.0.1); .engine/swarm.env names the other nodes. Selected
with `-m swarm`; it fails, never skips, without them.
"""

import json
import os
import subprocess
import sys
import time

import docker
import pytest
import requests
import yaml

from hostskit import ENGINE_DIR, engine_script, read_env, residue, stopped_nodes  # noqa: F401 - a fixture
from pebblekit import pebble  # noqa: F401 - a fixture
from registrykit import forget_local, registry, registry_client, thirdparty_images  # noqa: F401 - fixtures
from stackkit import (SteadyLoad, TimedLoad, edit_services, history, keep_private, kill_promote_stable_after, make_project, manifest_of, ok,
                      public_url, swiftdeploy)

pytestmark = [pytest.mark.swarm, pytest.mark.timeout(1500)]
REPLICAS = 3


@pytest.fixture
def swarm(monkeypatch):
    host = os.environ.get("SWIFTDEPLOY_SWARM_HOST")
    if not host or not (ENGINE_DIR / "swarm.env").exists():
        pytest.fail("the swarm tests need SWIFTDEPLOY_SWARM_HOST, the DOCKER_HOST of a swarm manager, and "
                    ".engine/swarm.env (scripts/test-engine swarm up 3)")
    monkeypatch.setenv("DOCKER_HOST", host)
    pairs = read_env(ENGINE_DIR / "swarm.env")
    names = pairs["SWIFTDEPLOY_SWARM_NODES"].split(",")
    if len(names) < 3:
        pytest.fail(f"this test wants 3 swarm nodes, .engine/swarm.env has {len(names)} (scripts/test-engine swarm up 3)")
    engines = {f"sd-{name}": docker.DockerClient(base_url=pairs[f"SWIFTDEPLOY_{name.upper()}_SOCKET"], version="1.41")
               for name in names}  # by host name (each node's dockerd runs with the host name sd-nodeK)
    manager = docker.DockerClient(base_url=host, version="1.41")
    if manager.info().get("Swarm", {}).get("ControlAvailable") is not True:
        pytest.fail(f"{host} is not a swarm manager")
    return {"manager": manager, "engines": engines, "pairs": pairs, "names": names}


@pytest.fixture
def project(tmp_path, swarm):
    project = make_project(tmp_path / "project", canary={"version": "1.1.0", "weight": 40})
    manifest = project / "manifest.yaml"
    text = manifest.read_text().replace("  mode: stable\n", f"  mode: stable\n  replicas: {REPLICAS}\n", 1)
    workers = [swarm["pairs"][f"SWIFTDEPLOY_{name.upper()}_TCP"] for name in swarm["names"][1:]]
    manifest.write_text("runtime: swarm\n" + text + f"swarm:\n  engines: {json.dumps(workers)}\n")
    yield project
    ok(swiftdeploy(project, "teardown"))  # what it leaves would fail the next run's residue check


def running_tasks(swarm, service: str) -> list[dict]:
    return [t for t in swarm["manager"].services.get(service).tasks(filters={"desired-state": "running"})
            if t["Status"]["State"] == "running"]


def node_names(swarm) -> dict[str, str]:
    """node id -> host name"""
    return {n.id: n.attrs["Description"]["Hostname"] for n in swarm["manager"].nodes.list()}


def task_address(task: dict) -> str:
    return task["NetworksAttachments"][0]["Addresses"][0].split("/")[0]


def nginx_container(swarm, project):
    name = manifest_of(project).project
    [nginx] = swarm["manager"].containers.list(filters={"label": f"com.docker.swarm.service.name={name}_nginx"})
    return nginx


def nginx_log_upstreams(swarm, project, last: int) -> list[str]:
    """The upstream address column of nginx's last `last` requests."""
    nginx = nginx_container(swarm, project)
    code, out = nginx.exec_run(["tail", "-n", str(last), "/var/tmp/swiftdeploy-access.log"])
    assert code == 0, out
    return [line.split(" | ")[3] for line in out.decode().splitlines()]


def nginx_view(swarm, project) -> str:
    """What nginx's container resolves for the stable track now, and its watcher's last reloads."""
    nginx = nginx_container(swarm, project)
    _, resolved = nginx.exec_run(["getent", "ahostsv4", f"tasks.{manifest_of(project).services.name}-stable"])
    addresses = sorted({line.split()[0] for line in resolved.decode().splitlines() if line.strip()})
    return f"nginx's node resolves {addresses}; its watcher: {nginx.logs(tail=6).decode().strip()}"


def failed_requests(swarm, project) -> str:
    """nginx's own account of the failed requests (time, status, upstreams tried) and its task-watcher reloads."""
    nginx = nginx_container(swarm, project)
    _, log = nginx.exec_run(["sh", "-c", "grep -v ' | 200 | ' /var/tmp/swiftdeploy-access.log | head -n 8; "
                                         "grep -c -v ' | 200 | ' /var/tmp/swiftdeploy-access.log"])
    return f"{log.decode()}\nnginx's reloads: {nginx.logs(tail=12).decode()}"


def canary_statuses(url: str, n: int = 20) -> set[int]:
    return {requests.get(f"{url}/", headers={"Connection": "close", "X-SwiftDeploy-Track": "canary"}, timeout=10).status_code
            for _ in range(n)}


class Phases:
    """The load's outcomes step by step: which step a failed request came in."""

    def __init__(self, load: SteadyLoad):
        self.load, self.seen, self.lines, self.failed = load, {}, [], {}

    def mark(self, step: str) -> None:
        now = dict(self.load.outcomes)
        delta = {k: v - self.seen.get(k, 0) for k, v in now.items() if v - self.seen.get(k, 0)}
        self.lines.append(f"{step}: {delta}")
        self.failed[step] = {k: v for k, v in delta.items() if k != 200}
        self.seen = now

    def failures(self, but: str = "") -> dict:
        """Each step's failed requests (steps without any left out), but those of the step `but`."""
        return {step: failed for step, failed in self.failed.items() if failed and step != but}

    def __str__(self) -> str:
        return "; ".join(self.lines)


def await_replicas(swarm, service: str, seconds: float, avoid_node: str | None = None,
                   gone: str | None = None) -> list[dict]:
    """REPLICAS running tasks of `service`, none on `avoid_node` and none the task `gone` (a task just killed
    is still listed as running until Swarm notices)."""
    deadline = time.monotonic() + seconds
    while True:
        names = node_names(swarm)
        tasks = [t for t in running_tasks(swarm, service) if names.get(t["NodeID"]) != avoid_node and t["ID"] != gone]
        if len(tasks) == REPLICAS:
            return tasks
        assert time.monotonic() < deadline, f"{service}: {len(tasks)} running tasks, not {REPLICAS}, after {seconds} s"
        time.sleep(1)


def lost_worker(swarm, service: str) -> tuple[str, list[dict]]:
    """A worker (nginx and OPA run on the manager) and its running tasks of `service`: the worker that runs the
    most of them, at least one."""
    names = node_names(swarm)
    tasks = running_tasks(swarm, service)
    by_worker = {f"sd-{name}": [t for t in tasks if names[t["NodeID"]] == f"sd-{name}"] for name in swarm["names"][1:]}
    node = max(by_worker, key=lambda name: len(by_worker[name]))
    assert by_worker[node], f"no worker runs a task of {service}: {[names[t['NodeID']] for t in tasks]}"
    return node, by_worker[node]


def test_a_three_node_swarm_spreads_promotes_rolls_back_survives_a_lost_node_and_tears_down(
        swarm, project, stopped_nodes):
    name = manifest_of(project).project
    stable = f"{name}_app-stable"
    image = manifest_of(project).services.image
    for worker in list(swarm["engines"].values())[1:]:  # the workers get the app image from the deploy itself
        if worker.images.list(name=image):
            worker.images.remove(image, force=True)

    # a node that takes tasks but that no engine of swarm.engines reaches: one line from plan and deploy, and
    # deploy starts nothing (OPA included)
    manifest = project / "manifest.yaml"
    full = manifest.read_text()
    workers = [swarm["pairs"][f"SWIFTDEPLOY_{n.upper()}_TCP"] for n in swarm["names"][1:]]
    manifest.write_text(full.replace(json.dumps(workers), json.dumps(workers[:1])))
    for words in (("plan",), ("deploy",)):
        refused = swiftdeploy(project, *words)
        errors = [line for line in refused.stderr.splitlines() if "no engine of swarm.engines" in line]
        assert refused.returncode == 1 and len(errors) == 1, refused.stdout + refused.stderr
        assert f"swarm node sd-{swarm['names'][2]} takes tasks" in errors[0] and "Traceback" not in refused.stderr
    assert not [s for s in swarm["manager"].services.list() if s.name.startswith(f"{name}_")], "nothing started"
    manifest.write_text(full)

    started = time.monotonic()
    deployed = ok(swiftdeploy(project, "deploy", timeout=600))
    print(f"\ndeploy on 3 nodes: {time.monotonic() - started:.1f} s")
    for worker in swarm["names"][1:]:
        assert f"swarm node sd-{worker}: loaded {image}" in deployed.stdout, deployed.stdout
    tasks = running_tasks(swarm, stable)
    names = node_names(swarm)
    assert sorted(names[t["NodeID"]] for t in tasks) == [f"sd-{n}" for n in swarm["names"]], "one stable task per node"

    url = public_url(project)
    with SteadyLoad(url) as load:
        phases = Phases(load)
        time.sleep(2)
        assert len(set(nginx_log_upstreams(swarm, project, 60))) == REPLICAS, "every stable task takes requests"
        phases.mark("stable")
        ok(swiftdeploy(project, "promote", "canary"))
        phases.mark("promote canary")
        assert len(running_tasks(swarm, f"{name}_app-canary")) == REPLICAS
        ok(swiftdeploy(project, "rollback"))
        phases.mark("rollback")
        assert not [s for s in swarm["manager"].services.list() if s.name == f"{name}_app-canary"]
        ok(swiftdeploy(project, "promote", "canary"))
        time.sleep(6)  # the canary gate reads a 5 s window
        phases.mark("promote canary")
        # killed while Swarm rolls the stable service (after the gate and the reroute to the canary)
        where = kill_promote_stable_after(project, 2, 1.5)
        assert "finished before the kill" not in where, where
        phases.mark(f"promote stable SIGKILLed, {where}")
        ok(swiftdeploy(project, "promote", "stable", timeout=600))
        phases.mark("promote stable again")
        assert manifest_of(project).services.version == "1.1.0"
        assert {t["Spec"]["ContainerSpec"]["Env"].count("APP_VERSION=1.1.0") for t in running_tasks(swarm, stable)} == {1}

        victim_node, [victim, *_] = lost_worker(swarm, stable)  # a task on a worker, wherever the update put them
        dead = task_address(victim)
        swarm["engines"][victim_node].containers.get(victim["Status"]["ContainerStatus"]["ContainerID"]).kill()
        running = {task_address(t) for t in await_replicas(swarm, stable, 90, gone=victim["ID"])}
        replaced = time.monotonic()
        # every running task answering on the first try, the new one among them (the log's last lines may still
        # be from before the kill, so three addresses alone do not say the new one is reached)
        while (answering := {u.split(":")[0] for u in nginx_log_upstreams(swarm, project, 30) if "," not in u}) != running:
            assert time.monotonic() < replaced + 30, (
                f"nginx did not send to the new task within 30 s: running {sorted(running)}, answering first "
                f"{sorted(answering)}, killed {dead}; {nginx_view(swarm, project)}")
            time.sleep(0.5)
        print(f"nginx sent to the new task {time.monotonic() - replaced:.1f} s after Swarm reported it running")
        time.sleep(2)
        live = {task_address(t) for t in running_tasks(swarm, stable)}
        upstreams = nginx_log_upstreams(swarm, project, 30)
        phases.mark("a killed task")
    print(f"steady load through nginx during promote canary, rollback, promote canary, promote stable and a killed "
          f"task: {load.total} requests, outcomes {dict(load.outcomes)}; by step: {phases}")
    assert load.total >= 500, load.outcomes
    assert phases.failures(but="a killed task") == {}, failed_requests(swarm, project)
    # A SIGKILLed container cuts the answer it was writing: nginx had passed its first bytes on, so no proxy can
    # send it again. That, and nothing else, may fail while the task dies: each a cut body (requests says
    # ChunkedEncodingError), one per load thread at most, each in nginx's log as the dead task closing early.
    cut = phases.failed.get("a killed task", {})
    if cut:
        closed = [line for line in nginx_container(swarm, project).logs(tail=400).decode(errors="replace").splitlines()
                  if "upstream prematurely closed connection" in line and f"http://{dead}:" in line]
        assert set(cut) == {"connection error: ChunkedEncodingError"} and sum(cut.values()) <= 3, (
            cut, failed_requests(swarm, project))
        assert len(closed) >= sum(cut.values()), (f"each cut answer is the killed task's {dead}: {closed}",
                                                  failed_requests(swarm, project))
    assert not [u for u in upstreams if "," in u], f"nginx still tries a dead task first: {upstreams}"
    if dead not in live:  # Swarm may give the replacement the dead task's address
        assert not [u for u in upstreams if u.startswith(f"{dead}:")], f"nginx still sends to the dead task {dead}"

    ok(swiftdeploy(project, "promote", "canary"))
    ok(swiftdeploy(project, "chaos", "error", "--rate", "1"))
    assert canary_statuses(url) == {500}, "every canary task injects the error, not just the one nginx picked"
    status = json.loads(ok(swiftdeploy(project, "status", "--once", "--format", "json")).stdout)
    assert status["chaos"] == "error" and status["tracks"]["canary"].get("down") is None, status
    told = [line for line in ok(swiftdeploy(project, "logs", "canary", "--since", "5m")).stdout.splitlines()
            if "chaos set to" in line]
    assert told and all(line.startswith("canary | ") for line in told), "logs reads the canary tasks' output"
    ok(swiftdeploy(project, "chaos", "recover"))
    assert canary_statuses(url) == {200}
    ok(swiftdeploy(project, "rollback"))

    # the lost node: a worker that runs a stable task now. Swarm spreads a new service's tasks one per node,
    # but a replacement (the killed task above) may land beside another task, leaving a worker with none.
    victim_node, lost = lost_worker(swarm, stable)
    victim_number = victim_node.removeprefix("sd-node")
    with SteadyLoad(url) as load:
        time.sleep(2)
        stopped = time.monotonic()
        stopped_nodes(int(victim_number))
        await_replicas(swarm, stable, 120, avoid_node=victim_node)
        moved = time.monotonic() - stopped
        while [u for u in nginx_log_upstreams(swarm, project, 30) if "," in u]:
            assert time.monotonic() < stopped + 60, "nginx still tries the lost node's tasks after 60 s"
            time.sleep(0.5)
        settled = time.monotonic() - stopped
        time.sleep(2)
    print(f"{victim_node}'s dockerd stopped under load with {len(lost)} of the {REPLICAS} stable tasks: {REPLICAS} "
          f"running on the other nodes {moved:.1f} s later, nginx no longer trying the lost ones {settled:.1f} s later; "
          f"{load.total} requests, outcomes {dict(load.outcomes)}")
    assert load.total >= 200, load.outcomes
    assert load.failures() == {}, failed_requests(swarm, project)

    engine_script("swarm", "start-node", victim_number)
    ok(swiftdeploy(project, "teardown"))
    assert residue(swarm["pairs"]) == []


def task_history(swarm, service: str) -> str:
    """Every task of the service: node, state and error (why tasks were not spread, when they were not)."""
    names = node_names(swarm)
    return "; ".join(f"{names.get(t.get('NodeID'), '?')} {t['Status']['State']} {t['Status'].get('Err', '')}".strip()
                     for t in swarm["manager"].services.get(service).tasks())


def forget_everywhere(swarm, *images) -> None:
    """The pushed images (and the test's own canary) gone from every node, so that a deploy must pull them: the
    workers' copies entirely (a node that pulled by digest holds no tag), the manager's registry names only (it
    keeps the build cache's tag)."""
    manager, *workers = swarm["engines"].values()
    for image in images:
        forget_local(image.ref, manager)
        for worker in workers:
            try:
                worker.images.remove(image.image_id, force=True)
            except docker.errors.ImageNotFound:
                pass
    for client in swarm["engines"].values():
        forget_local("local/httpbin-bad:3", client, layers=True)


def node_pulls(swarm, since: float) -> dict[str, list[str]]:
    """host name -> the images each node's engine pulled since `since` (from its own event stream)."""
    return {host: [e.get("id") for e in client.events(since=since, until=time.time() + 1, decode=True,
                                                       filters={"type": "image", "event": "pull"})]
            for host, client in swarm["engines"].items()}


def test_a_users_image_from_the_registry_is_pulled_by_every_node_rolled_out_and_a_failing_canary_rolled_back(
        swarm, tmp_path, registry, thirdparty_images):
    """httpbin (not written here) in two versions in the swarm's registry: each node pulls it with the credentials
    SwiftDeploy keeps (nothing is shipped node by node), health-checked by the probe given as a Swarm config,
    rolled out 20/50/100 on nginx's figures, a canary built from the user's Dockerfile that answers 500 on a share
    of requests rolled back by itself, and `rollback` to the last release with no pull anywhere."""
    one, two = thirdparty_images["httpbin:1"], thirdparty_images["httpbin:2"]
    forget_everywhere(swarm, one, two)  # what an earlier run left: every node must pull
    project = make_project(tmp_path / "project", canary={"interval_seconds": 2, "image": two.ref, "version": "2",
                                                         "steps": [20, 50, 100], "step_seconds": 6})
    document = yaml.safe_load((project / "manifest.yaml").read_text())
    document["services"].update({"image": one.ref, "port": one.port, "version": "1", "build": False, "replicas": REPLICAS,
                                 "health": {"path": one.health_path, "interval_seconds": 1},
                                 "env": {"GREETING": "hello"}, "secrets": ["DB_PASSWORD"]})
    workers = [swarm["pairs"][f"SWIFTDEPLOY_{n.upper()}_TCP"] for n in swarm["names"][1:]]
    document.update({"runtime": "swarm", "swarm": {"engines": workers}})
    (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    keep_private(project / ".swiftdeploy" / "registries" / registry.address, f"{registry.user}:{registry.password}")
    secret = "swarm-" + os.urandom(8).hex()
    keep_private(project / ".swiftdeploy" / "secrets" / "DB_PASSWORD", secret + "\n")
    name = manifest_of(project).project
    stable = f"{name}_app-stable"
    try:
        since = time.time() - 1
        deployed = ok(swiftdeploy(project, "deploy", timeout=600))
        assert f"pull {one.ref}" in deployed.stdout and "loaded" not in deployed.stdout, deployed.stdout
        tasks = running_tasks(swarm, stable)
        names = node_names(swarm)
        assert sorted(names[t["NodeID"]] for t in tasks) == sorted(swarm["engines"]), task_history(swarm, stable)
        pulls = node_pulls(swarm, since)
        assert all(pulls[host] for host in swarm["engines"]), f"every node pulled it itself: {pulls}"
        spec = tasks[0]["Spec"]["ContainerSpec"]
        assert spec["Image"] == f"{one.repository}@{one.digest}", "pinned to the digest the manager pulled"
        env = dict(line.split("=", 1) for line in spec["Env"])
        assert env["GREETING"] == "hello" and env["DB_PASSWORD"] == secret and not {"MODE", "APP_VERSION"} & set(env)
        url = public_url(project)
        answer = requests.get(url + "/get", headers={"Connection": "close"}, timeout=10)
        assert answer.status_code == 200 and answer.headers["X-SwiftDeploy-Track"] == "stable"

        # the rollout SIGKILLed once its 50 % step passed, then run again: it goes on from there to the end
        with SteadyLoad(url) as load:
            first = subprocess.Popen([sys.executable, str(project / "swiftdeploy"), "rollout"], cwd=project,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                deadline = time.monotonic() + 300
                while not [r for r in history(project) if r["event"] == "rollout_verdict" and r["weight"] == 50]:
                    assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0]
                    time.sleep(0.2)
            finally:
                first.kill()
                first.wait()
            rolled = swiftdeploy(project, "rollout", timeout=600)
        assert rolled.returncode == 0 and "promoted: stable is now 2" in rolled.stdout, rolled.stdout + rolled.stderr
        print(f"\nrollout 20/50/100 of httpbin 2 on {REPLICAS} nodes, SIGKILLed after its 50 % verdict and run again: "
              f"{load.total} requests, outcomes {dict(load.outcomes)}")
        assert load.failures() == {} and load.total > 200, failed_requests(swarm, project)
        assert swiftdeploy(project, "plan").returncode == 0

        bad = project / "bad-canary"
        bad.mkdir()
        (bad / "Dockerfile").write_text(f"FROM {two.ref}\nENV HTTPBIN_FAIL_RATE=0.3\n")
        edit_services(project, canary__image="local/httpbin-bad:3", canary__version="3",
                      canary__build={"context": "bad-canary"})
        with SteadyLoad(url) as load:
            failed = swiftdeploy(project, "rollout", timeout=600)
        said = failed.stdout + failed.stderr
        assert failed.returncode != 0 and "rolled back by itself" in said and "error rate" in said, said
        assert "loaded local/httpbin-bad:3" in failed.stdout, "a locally built canary is given to the nodes"
        assert set(load.failures()) <= {500}, load.outcomes  # the bad canary's own 500s, nothing dropped
        assert (manifest_of(project).services.mode, manifest_of(project).services.version) == ("stable", "2")

        ok(swiftdeploy(project, "promote", "canary"))
        since = time.time() - 1
        rolled_back = ok(swiftdeploy(project, "rollback", timeout=600))
        assert "pull" not in rolled_back.stdout and not any(node_pulls(swarm, since).values()), rolled_back.stdout
        assert {t["Spec"]["ContainerSpec"]["Image"] for t in running_tasks(swarm, stable)} == {f"{two.repository}@{two.digest}"}
    finally:
        ok(swiftdeploy(project, "teardown"))
        forget_everywhere(swarm, one, two)
    assert residue(swarm["pairs"]) == []
    assert not (project / ".swiftdeploy" / "docker-config" / "config.json").exists()
    # neither the secret nor the registry password is in any file SwiftDeploy wrote, but the ones kept for it
    kept = {project / ".swiftdeploy" / "secrets" / "DB_PASSWORD", project / ".swiftdeploy" / "registries" / registry.address}
    for value in (secret, registry.password):
        assert [str(p) for p in project.rglob("*") if p.is_file() and p not in kept and value.encode() in p.read_bytes()] == []


def tls_secrets(swarm, project) -> dict[str, bytes]:
    """The stack's Swarm secrets: name -> what nginx's task reads at their target."""
    name = manifest_of(project).project
    [service] = swarm["manager"].services.list(filters={"name": f"{name}_nginx"})
    nginx = nginx_container(swarm, project)
    read = {}
    for reference in service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Secrets") or []:
        code, out = nginx.exec_run(["cat", reference["File"]["Name"]])
        assert code == 0, out
        read[reference["SecretName"]] = out
    return read


def test_https_on_swarm_serves_the_pair_from_swarm_secrets_and_new_files_replace_nginx(swarm, project):
    from stackkit import free_port
    from tlskit import TestCA, served_fingerprint

    ca = TestCA(project / "certs")
    issued = ca.issue("site")
    port = free_port()
    document = yaml.safe_load((project / "manifest.yaml").read_text())
    document["nginx"]["tls"] = {"cert": "certs/site.pem", "key": "certs/site.key", "port": port, "hosts": ["localhost"]}
    (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    name = manifest_of(project).project
    ok(swiftdeploy(project, "deploy"))
    url = f"https://localhost:{port}"

    answer = requests.get(url + "/", verify=str(ca.ca_file), timeout=10)
    assert answer.status_code == 200 and answer.headers["X-Deployed-By"] == "swiftdeploy", answer.text
    plain = requests.get(public_url(project) + "/x", allow_redirects=False, timeout=10)
    assert plain.status_code == 301 and plain.headers["Location"] == f"https://127.0.0.1:{port}/x"
    assert served_fingerprint(port) == issued.fingerprint
    key = (project / "certs/site.key").read_bytes()
    assert tls_secrets(swarm, project) == {f"{name}-tls-{secret}": data for secret, data in zip(
        _pair_names(project), ((project / "certs/site.pem").read_bytes(), key))}
    mounts = nginx_container(swarm, project).attrs["Mounts"]
    assert not [m for m in mounts if "tls" in m.get("Source", "")], "the pair is no bind mount from the manager"
    assert key not in (project / "generated" / "stack.yml").read_bytes()

    renewed = ca.issue("site")
    planned = swiftdeploy(project, "plan")
    assert planned.returncode == 2 and "Certificate renewed" in planned.stdout and "Swarm secrets" in planned.stdout, planned.stdout
    with TimedLoad(url, verify=str(ca.ca_file)) as load:
        time.sleep(1)
        started = time.monotonic()
        deployed = ok(swiftdeploy(project, "deploy"))
        returned = time.monotonic()
        time.sleep(1)
    assert served_fingerprint(port) == renewed.fingerprint, deployed.stdout
    only_the_served_pair(swarm, project)
    nginx_replaced_in(swarm, project, load, started, returned, "new certificate files")

    ok(swiftdeploy(project, "teardown"))
    assert swarm["manager"].secrets.list() == []


def only_the_served_pair(swarm, project) -> None:
    name = manifest_of(project).project
    assert set(tls_secrets(swarm, project)) == {f"{name}-tls-{secret}" for secret in _pair_names(project)}
    assert sorted(s.name for s in swarm["manager"].secrets.list()) == sorted(
        f"{name}-tls-{secret}" for secret in _pair_names(project)), "the old pair's secrets are removed"


def nginx_replaced_in(swarm, project, load: TimedLoad, started: float, returned: float, what: str) -> None:
    """A host-published nginx's task replaced stop-first: the new task cannot take the port until the old one let
    it go, so for that moment connections are refused or cut in their handshake. The old nginx answers what it
    took before it stops, but a replacement on this swarm still gives 0 to 3 answers of 502 (cause not found):
    a 502 is allowed inside the window, never after the command returned."""
    gap = (max(load.failed_at) - min(load.failed_at)) if load.failed_at else 0.0
    print(f"{what} on swarm (host-published nginx, replaced stop-first): the command took {returned - started:.1f} s; "
          f"{load.total} https requests, outcomes {dict(load.outcomes)}, failures over {gap:.2f} s")
    assert set(load.failures()) <= {"connection error: ConnectionError", "connection error: SSLError", 502}, (
        load.outcomes, failed_requests(swarm, project))
    assert load.outcomes[502] <= 10, (load.outcomes, failed_requests(swarm, project))
    assert all(started <= t <= returned for t in load.failed_at), (started, returned, load.failed_at)
    assert load.outcomes[200] > 50, dict(load.outcomes)


def test_on_swarm_a_certificate_is_obtained_over_http01_and_renewed_as_new_secrets(swarm, project, pebble):
    from stackkit import free_port
    from tlskit import served_fingerprint

    server = pebble(http_port=manifest_of(project).nginx.port)
    document = yaml.safe_load((project / "manifest.yaml").read_text())
    document["nginx"]["tls"] = {"acme": {"email": "ops@example.com", "directory": server.directory,
                                         "ca_bundle": str(server.ca_bundle)}, "hosts": ["localhost"], "port": free_port()}
    (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    port = manifest_of(project).nginx.tls.port
    deployed = ok(swiftdeploy(project, "deploy", timeout=600))
    assert "issued: localhost" in deployed.stdout, deployed.stdout
    roots = project / "pebble-root.pem"
    roots.write_text(server.root_pem())
    answer = requests.get(f"https://localhost:{port}/", verify=str(roots), timeout=10)
    assert answer.status_code == 200 and answer.headers["X-Deployed-By"] == "swiftdeploy"
    first = served_fingerprint(port)
    only_the_served_pair(swarm, project)

    with TimedLoad(f"https://localhost:{port}", verify=str(roots)) as load:
        time.sleep(1)
        started = time.monotonic()
        renewed = ok(swiftdeploy(project, "certs", "--renew", timeout=600))
        returned = time.monotonic()
        time.sleep(1)
    assert "nginx serves the new certificate" in renewed.stdout, renewed.stdout
    assert served_fingerprint(port) != first
    only_the_served_pair(swarm, project)
    nginx_replaced_in(swarm, project, load, started, returned, "certs --renew")
    assert "No changes" in ok(swiftdeploy(project, "plan")).stdout


def _pair_names(project) -> tuple[str, str]:
    from swiftdeploy.certificates import resolve

    material = resolve(manifest_of(project), project).nginx.tls.material
    return f"{material[:12]}-cert", f"{material[:12]}-key"
