"""Gates against the real OPA: a small disk stops a deploy before anything starts; OPA down fails closed."""

import json
import subprocess

import pytest

from stackkit import containers, doit, history, make_project, manifest_of, ok, remove_everything, require_engine, swiftdeploy

pytestmark = [pytest.mark.e2e, pytest.mark.every_engine]


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB filesystem standing in for the engine's data disk."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for the disk gate test: {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=False)


def test_a_deploy_onto_a_small_disk_is_denied_and_starts_nothing(tmp_path, small_disk):
    require_engine()
    project = make_project(tmp_path / "project")
    try:
        result = doit(project, "deploy", env={"SWIFTDEPLOY_DATA_PATH": str(small_disk)})
        assert result.returncode == 1
        denial = [line for line in result.stderr.splitlines() if "denied by the infra policy" in line]
        assert len(denial) == 1, result.stderr
        assert f"disk free 0.07 GB on {small_disk} is below the minimum 10 GB" in denial[0]
        assert "Traceback" not in result.stderr
        assert containers(manifest_of(project).project) == [], "a denied deploy leaves nothing running"
        [gate] = [r for r in history(project) if r["event"] == "gate"]
        assert gate["allow"] is False and gate["input"]["disk_path"] == str(small_disk)
        assert not any(r["event"] == "deploy" and r.get("outcome") == "ok" for r in history(project))
    finally:
        remove_everything(project)


def test_opa_down_during_promote_stable_fails_closed_and_changes_nothing(tmp_path):
    require_engine()
    project = make_project(tmp_path / "project")
    try:
        ok(swiftdeploy(project, "deploy"))
        ok(swiftdeploy(project, "promote", "canary"))
        manifest_before = (project / "manifest.yaml").read_text()
        name = manifest_of(project).project
        [opa] = [c for c in containers(name) if c.labels.get("com.docker.compose.service") == "opa"]
        opa.stop(timeout=5)

        refused = swiftdeploy(project, "promote", "stable")
        assert refused.returncode != 0
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "could not ask OPA" in lines[0], refused.stderr
        assert (project / "manifest.yaml").read_text() == manifest_before
        services = {c.labels["com.docker.compose.service"] for c in containers(name) if c.status == "running"}
        assert {"app-stable", "app-canary", "nginx"} <= services, "the canary still runs, nothing was changed"
        unavailable, failed = history(project)[-2:]
        assert unavailable["event"] == "gate_unavailable"
        assert (failed["event"], failed["to"], failed["outcome"]) == ("promote", "stable", "failed")

        gate = doit(project, "canary-gate", "--format", "json")
        answer = json.loads(gate.stdout)
        assert gate.returncode == 2 and (answer["decision"], answer["exit_code"]) == ("unknown", 2), gate.stderr
        assert "could not ask OPA" in answer["error"] and "requests" in answer["input"], answer

        rolled_back = ok(swiftdeploy(project, "rollback"))  # never blocked by the canary policy (or by OPA)
        assert "rolled back" in rolled_back.stdout
        assert manifest_of(project).services.mode == "stable"
    finally:
        remove_everything(project)
