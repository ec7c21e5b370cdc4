"""Converging from any state on the real engine: SIGKILLed promotions, a hand-made orphan, a stopped track,
`plan` exit codes. Load runs through nginx with a fresh connection per request, and no request may fail."""

import json
import time

import docker

import pytest
import requests

from stackkit import (SteadyLoad, dropped, containers, kill_promote_stable_after, make_project, manifest_of, ok, public_url,
                      remove_everything, require_engine, swiftdeploy)
from swiftdeploy.model.manifest_edit import set_fields

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(tmp_path):
    require_engine()
    project = make_project(tmp_path / "project", canary={"version": "1.1.0", "weight": 50})
    yield project
    remove_everything(project)


def served(url: str, n: int = 40) -> set[tuple[str, str]]:
    """(mode, version) of n answers through nginx."""
    answers = set()
    for _ in range(n):
        body = requests.get(url + "/", headers={"Connection": "close"}, timeout=5).json()
        answers.add((body["mode"], body["version"]))
    return answers


def app_containers(project) -> dict[str, list[str]]:
    """role -> versions of the app containers the engine has for this stack (running or not)."""
    found: dict[str, list[str]] = {}
    for container in containers(manifest_of(project).project):
        role = container.labels.get("io.swiftdeploy.role")
        if role in ("stable", "canary"):
            found.setdefault(role, []).append(container.labels.get("io.swiftdeploy.version"))
    return found


def last_release(project) -> str | None:
    try:
        return json.loads((project / ".swiftdeploy" / "releases.json").read_text())[-1]["version"]
    except FileNotFoundError:
        return None


def set_canary_version(project, version: str) -> None:
    path = project / "manifest.yaml"
    path.write_text(set_fields(path.read_text(), {"services.canary.version": version}))


NEW_VERSIONS = [f"1.{minor}.0" for minor in range(1, 10)]

# promote:stable journals its steps in this order: 1 the canary gate passed, 2 all traffic on the canary,
# 3 stable replaced by the new version, 4 traffic back on stable, 5 the canary removed. Each test kills it
# once in each of three phases that leave the engine in a different state (steps + seconds into the next
# step); tests/unit/test_converge.py kills it at every point, on the fake engine.
ROLLBACK_KILLS = [(1, 0.0),  # nothing changed yet: rollback only drops the canary
                  (2, 0.3),  # stable being replaced: the killed compose is still stopping the old one
                  (3, 0.2)]  # the new stable up: rollback must replace it with the previous release
RERUN_KILLS = [(2, 0.3),  # the re-run finishes the replacement the killed compose began
               (3, 0.2),  # the new stable up, traffic not yet back on it
               (4, 0.1)]  # traffic back on stable, the canary being removed


def sigkilled_promotions(project, kill_points):
    """For each kill point, in turn: the next version as canary, `promote stable` SIGKILLed there.

    Yields (the version, where it was killed, whether it committed before the kill landed); a committed
    promotion is no interruption, so the same kill point is tried again with the next version.
    """
    points = iter(kill_points)
    point = next(points)
    for version in NEW_VERSIONS:
        set_canary_version(project, version)
        ok(swiftdeploy(project, "promote", "canary"))
        where = kill_promote_stable_after(project, *point)  # the gate reads its own window of this load
        committed = last_release(project) == version
        yield version, where, committed
        if not committed:
            point = next(points, None)
            if point is None:
                return


@pytest.mark.timeout(600)
def test_sigkilled_promote_stable_then_rollback_returns_to_the_previous_release(project):
    ok(swiftdeploy(project, "deploy"))
    url = public_url(project)
    previous, kills = "1.0.0", []
    with SteadyLoad(url) as load:
        for version, where, committed in sigkilled_promotions(project, ROLLBACK_KILLS):
            if committed:
                previous = version
                continue
            kills.append(where)
            rolled_back = ok(swiftdeploy(project, "rollback"))
            assert "was interrupted" in rolled_back.stdout, (where, rolled_back.stdout)
            assert served(url) == {("stable", previous)}, where
            assert app_containers(project) == {"stable": [previous]}, where
            manifest = manifest_of(project).services
            assert (manifest.mode, manifest.version) == ("stable", previous), where
            assert not (project / ".swiftdeploy" / "journal.jsonl").exists(), where
    print(f"\nkill points: {kills}\nload through nginx: {load.total} requests, outcomes {dict(load.outcomes)}")
    assert len(kills) == len(ROLLBACK_KILLS)
    assert load.failures() == {}, dropped(load, project)
    assert load.total > 1000


@pytest.mark.timeout(600)
def test_sigkilled_promote_stable_then_the_same_command_finishes_it(project):
    ok(swiftdeploy(project, "deploy"))
    url = public_url(project)
    kills = []
    with SteadyLoad(url) as load:
        for version, where, committed in sigkilled_promotions(project, RERUN_KILLS):
            if not committed:
                kills.append(where)
                ok(swiftdeploy(project, "promote", "stable"))
            assert served(url) == {("stable", version)}, where
            assert app_containers(project) == {"stable": [version]}, where
            assert manifest_of(project).services.version == version, where
    print(f"\nkill points: {kills}\nload through nginx: {load.total} requests, outcomes {dict(load.outcomes)}")
    assert len(kills) == len(RERUN_KILLS)
    assert load.failures() == {}, dropped(load, project)


@pytest.mark.every_engine
def test_plan_exit_codes_a_canary_at_weight_1_and_an_orphan_removed_by_deploy(project):
    ok(swiftdeploy(project, "deploy"))
    plan = swiftdeploy(project, "plan")
    assert plan.returncode == 0 and "No changes" in plan.stdout, plan.stdout + plan.stderr

    path = project / "manifest.yaml"
    path.write_text(set_fields(path.read_text(), {"services.canary.weight": 1}))
    ok(swiftdeploy(project, "promote", "canary"))  # confirmed by pinned requests, whatever the weight
    assert served(public_url(project), 200) >= {("stable", "1.0.0")}
    ok(swiftdeploy(project, "rollback"))

    path.write_text(set_fields(path.read_text(), {"nginx.proxy_timeout": 20}))
    plan = swiftdeploy(project, "plan")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "-        proxy_send_timeout 30s;" in plan.stdout and "+        proxy_send_timeout 20s;" in plan.stdout
    assert "reload nginx" in plan.stdout
    ok(swiftdeploy(project, "deploy"))

    name = manifest_of(project).project
    [stable] = [c for c in containers(name) if c.labels.get("io.swiftdeploy.role") == "stable"]
    orphan = stable.client.containers.run(
        stable.image.id, detach=True, name=f"{name}-hand-made-canary",
        labels={"io.swiftdeploy.project": name, "io.swiftdeploy.role": "canary", "io.swiftdeploy.version": "9.9.9"},
        environment={"MODE": "canary", "APP_VERSION": "9.9.9", "APP_PORT": "3000", "CHAOS_TOKEN": "x" * 64},
        user="10001:10001", cap_drop=["ALL"], security_opt=["no-new-privileges:true"])
    try:
        plan = swiftdeploy(project, "plan")
        assert plan.returncode == 2 and f"{name}-hand-made-canary 9.9.9" in plan.stdout, plan.stdout
        plan = swiftdeploy(project, "plan", "--format", "json")
        answer = json.loads(plan.stdout)
        assert plan.returncode == 2 and (answer["changes"], answer["exit_code"]) == (True, 2), plan.stderr
        assert any(f"{name}-hand-made-canary 9.9.9" in line for line in answer["drift"]), answer
        assert any(step.startswith("remove") for step in answer["steps"]) and answer["files"] == [], answer
        status = ok(swiftdeploy(project, "status", "--once"))
        assert f"{name}-hand-made-canary 9.9.9" in status.stdout, status.stdout
        deployed = ok(swiftdeploy(project, "deploy"))
        assert "remove" in deployed.stdout
        assert app_containers(project) == {"stable": ["1.0.0"]}
        assert swiftdeploy(project, "plan").returncode == 0
    finally:
        # it carries no compose labels, so the stack's teardown would not find it
        try:
            orphan.remove(force=True)
        except docker.errors.NotFound:
            pass  # the deploy removed it, as it should


def test_a_stopped_stable_track_fails_fast_and_status_shows_it_down(project):
    ok(swiftdeploy(project, "deploy"))
    url = public_url(project)
    name = manifest_of(project).project
    [stable] = [c for c in containers(name) if c.labels.get("io.swiftdeploy.role") == "stable"]
    stable.stop(timeout=5)
    started = time.monotonic()
    answer = requests.get(url + "/", timeout=30)
    assert answer.status_code in (502, 504) and json.loads(answer.text)["code"] == answer.status_code
    assert time.monotonic() - started < 5, "a stopped track fails fast, not after the 30 s proxy timeout"
    status = ok(swiftdeploy(project, "status", "--once"))
    assert "stable track down" in status.stdout, status.stdout
    assert "stopped" in status.stdout or "exited" in status.stdout, status.stdout
    plan = swiftdeploy(project, "plan")
    assert plan.returncode == 2 and "start app-stable 1.0.0" in plan.stdout, plan.stdout
    ok(swiftdeploy(project, "deploy"))
    assert served(url) == {("stable", "1.0.0")}
