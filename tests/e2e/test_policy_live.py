"""The policy is part of the desired state: an edit shows in `plan`, `deploy` loads it into the running OPA and
the next gate decides with it; a policy that does not compile is refused and the old one keeps answering."""

import json

import pytest

from stackkit import doit, history, make_project, manifest_of, ok, remove_everything, require_engine, swiftdeploy
from swiftdeploy.judge.policy import OpaClient
from swiftdeploy.render.policy import revision

pytestmark = [pytest.mark.e2e, pytest.mark.every_engine]


@pytest.fixture
def project(tmp_path):
    require_engine()
    project = make_project(tmp_path / "project")
    yield project
    remove_everything(project)


def opa_of(project) -> OpaClient:
    token = (project / ".swiftdeploy" / "opa.env").read_text().strip().partition("=")[2]
    return OpaClient(f"http://127.0.0.1:{manifest_of(project).opa.port}", token)


def set_infra(project, **limits) -> None:
    path = project / "policies" / "data.json"
    data = json.loads(path.read_text())
    data["infra"].update(limits)
    path.write_text(json.dumps(data, indent=2) + "\n")


def test_a_data_edit_shows_in_plan_and_after_deploy_the_gate_decides_with_it(project):
    ok(swiftdeploy(project, "deploy"))
    first = revision(project / "policies")
    assert opa_of(project).served_revision() == first
    assert ok(doit(project, "infra-gate")).returncode == 0

    set_infra(project, min_disk_free_gb=10**9)  # no disk has an exabyte free
    planned = swiftdeploy(project, "plan")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert '+    "min_disk_free_gb": 1000000000,' in planned.stdout, planned.stdout
    assert opa_of(project).served_revision() == first, "plan changes nothing"

    ok(swiftdeploy(project, "deploy"))
    second = revision(project / "policies")
    assert opa_of(project).served_revision() == second != first
    denied = doit(project, "infra-gate")
    assert denied.returncode == 1 and "below the minimum 1000000000 GB" in denied.stdout + denied.stderr, denied
    gates = [r for r in history(project) if r["event"] == "gate"]
    # the first deploy's gate, the infra-gate before the edit, the one after it
    assert [(g["operation"], g.get("policy_revision")) for g in gates] == [
        ("deploy", first), ("infra-gate", first), ("infra-gate", second)], gates
    assert swiftdeploy(project, "plan").returncode == 0


def test_a_rego_edit_that_does_not_compile_is_refused_and_the_old_policy_keeps_answering(project):
    ok(swiftdeploy(project, "deploy"))
    served = opa_of(project).served_revision()
    rule = project / "policies" / "infra.rego"
    rule.write_text(rule.read_text() + "\nbroken if {\n")
    refused = swiftdeploy(project, "deploy")
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if "does not compile" in line]
    assert len(errors) == 1 and "so OPA keeps the policy it serves: policies/infra.rego:" in errors[0], refused.stderr
    assert "Traceback" not in refused.stderr
    assert opa_of(project).served_revision() == served
    assert ok(doit(project, "infra-gate")).returncode == 0
