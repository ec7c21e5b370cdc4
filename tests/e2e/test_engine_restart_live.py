"""A host reboot, as the engine sees one: the engine stops under load and starts again. The stack serves again
by its restart policy (on Podman, whose boot service starts only `always` containers, an `unless-stopped`
stack after `deploy`), and the next plan says nothing to do. The figures are printed."""

import subprocess
import time
from pathlib import Path

import pytest
import requests

from stackkit import SteadyLoad, make_project, ok, public_url, remove_everything, require_engine, swiftdeploy

pytestmark = [pytest.mark.e2e, pytest.mark.every_engine]

CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["unless-stopped", "always"])
def project(request, tmp_path):
    require_engine()
    project = make_project(tmp_path / "project")
    manifest = project / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("  mode: stable\n", f"  mode: stable\n  restart_policy: {request.param}\n"))
    yield project
    remove_everything(project)


def on_podman() -> bool:
    from swiftdeploy.engine.api import client

    return any("podman" in c.get("Name", "").lower() for c in client().version().get("Components", []))


def answers(url: str) -> bool:
    try:
        return requests.get(url + "/", headers={"Connection": "close"}, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_the_stack_serves_again_after_the_engine_restarts_and_plan_says_nothing_to_do(project):
    ok(swiftdeploy(project, "deploy"))
    url, podman = public_url(project), on_podman()
    by_itself = not podman or "restart_policy: always" in (project / "manifest.yaml").read_text()
    with SteadyLoad(url) as load:
        time.sleep(2)
        stopped = time.monotonic()
        restart = subprocess.run([str(CHECKOUT / "scripts" / "test-engine"), "restart"], cwd=CHECKOUT,
                                 capture_output=True, text=True, timeout=300)
        assert restart.returncode == 0, restart.stderr[-2000:]
        engine_back = time.monotonic() - stopped
        converged = None
        if not by_itself:
            planned = swiftdeploy(project, "plan")
            assert planned.returncode == 2, planned.stdout + planned.stderr  # stopped containers: work to do
            ok(swiftdeploy(project, "deploy"))
            converged = time.monotonic() - stopped
        deadline = time.monotonic() + 180
        while not answers(url) and time.monotonic() < deadline:
            time.sleep(0.2)
        serving = time.monotonic() - stopped
        time.sleep(3)
    failed = load.failures()
    policy = "always" if "restart_policy: always" in (project / "manifest.yaml").read_text() else "unless-stopped"
    print(f"\n{'podman' if podman else 'docker'}, restart {policy}: engine restarted in {engine_back:.1f} s"
          f"{f', deploy done at {converged:.1f} s' if converged else ''}; requests succeed again "
          f"{serving:.1f} s after the stop; {load.total} requests, {sum(failed.values())} failed: {failed}")
    assert serving < 180, "the stack serves again"
    assert all(answers(url) for _ in range(20)), "and keeps serving"
    planned = swiftdeploy(project, "plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
