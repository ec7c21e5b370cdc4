"""`doit infra-gate [--format json]` against a real OPA: exit 0 allowed, 1 denied, 2 could not decide.

The gate runs in a project copy whose manifest points at an `opa run` on a loopback port (policies/ of the
copy, the copy's token). The facts come from the real engine's facts probe, measuring the copy's folder
(SWIFTDEPLOY_DATA_PATH; the engine runs on this machine); where OPA is down the engine is away too
(DOCKER_HOST names a socket that does not exist), so the gate cannot start an OPA of its own. A loopback
fake answers what a real OPA will not: garbage, a malformed decision, extra decision fields.
"""

import json
import os
import subprocess
import sys

import pytest

from opakit import fake_opa, free_port, point_at, running_opa, set_infra_limits, token_of
from projectkit import copy_project, run_doit

ALLOWING = {"min_disk_free_gb": 0, "max_load_1m": 1000.0}
DENYING = {"min_disk_free_gb": 10**9, "max_load_1m": 1000.0}  # no disk has an exabyte free


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("gates") / "project")
    (project / "manifest.yaml").write_text((project / "manifest.yaml").read_text() + "opa:\n  port: 1\n")
    run_doit(project, "init", check=True)  # creates the token the OPA below is started with
    return project


@pytest.fixture(scope="module")
def opa(project, tmp_path_factory):
    with running_opa(tmp_path_factory.mktemp("opa") / "opa.log", token_of(project), project / "policies",
                     writable=True) as url:
        yield url


def gate(project, *options: str, engine: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SWIFTDEPLOY_DATA_PATH": str(project)}
    if not engine:
        env["DOCKER_HOST"] = f"unix://{project}/no-engine.sock"
    return subprocess.run([sys.executable, "-m", "doit", "infra-gate", *options], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


def document(result: subprocess.CompletedProcess) -> dict:
    """stdout is one JSON document and nothing else; its exit_code is the process's."""
    answer = json.loads(result.stdout)
    assert set(answer) >= {"gate", "decision", "allow", "reasons", "input", "error", "exit_code"}, answer
    assert answer["gate"] == "infra" and answer["exit_code"] == result.returncode, (answer, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return answer


def test_allowed_exits_0_with_the_decision_and_the_facts_it_was_asked_about(project, opa):
    point_at(project, opa)
    set_infra_limits(opa, token_of(project), ALLOWING)
    answer = document(gate(project, "--format", "json"))
    assert answer["exit_code"] == 0, answer["error"]
    assert (answer["decision"], answer["allow"], answer["reasons"], answer["error"]) == ("allow", True, [], None)
    assert answer["input"]["disk_path"] == str(project) and answer["input"]["disk_free_bytes"] > 0

    text = gate(project)
    assert text.returncode == 0 and "infra gate: allowed (disk free" in text.stdout, text.stdout + text.stderr


def test_denied_exits_1_with_opas_reasons(project, opa):
    point_at(project, opa)
    set_infra_limits(opa, token_of(project), DENYING)
    answer = document(gate(project, "--format", "json"))
    assert answer["exit_code"] == 1
    assert (answer["decision"], answer["allow"], answer["error"]) == ("deny", False, None)
    [reason] = answer["reasons"]
    assert reason.startswith("disk free") and "below the minimum 1000000000 GB" in reason
    assert answer["input"]["disk_path"] == str(project)

    text = gate(project)
    assert text.returncode == 1 and text.stdout.count("{") == 0
    denied = [line for line in text.stderr.splitlines()
              if line.startswith("swiftdeploy: infra-gate: infra-gate denied by the infra policy: disk free ")]
    assert len(denied) == 1 and denied[0].endswith("below the minimum 1000000000 GB"), text.stderr  # free space moves


def test_json_mode_keeps_doits_progress_lines_off_stdout(project, opa):
    point_at(project, opa)  # the manifest changed since the last init: init re-renders, and says so
    set_infra_limits(opa, token_of(project), ALLOWING)
    result = gate(project, "--format", "json")
    assert result.stdout.lstrip().startswith("{") and document(result)["exit_code"] == 0
    assert ".  infra-gate" in result.stderr


def test_opa_down_exits_2_and_says_why(project):
    nothing_there = f"http://127.0.0.1:{free_port()}"
    point_at(project, nothing_there)
    answer = document(gate(project, "--format", "json", engine=False))
    assert answer["exit_code"] == 2
    assert (answer["decision"], answer["allow"], answer["reasons"], answer["input"]) == ("unknown", None, [], None)
    assert answer["error"].startswith(f"could not ask OPA at {nothing_there}: it does not answer, and starting it "
                                      "failed: no container engine answers at")

    text = gate(project, engine=False)
    assert text.returncode == 2 and not text.stdout.strip().startswith("{")
    lines = [line for line in text.stderr.splitlines() if line.startswith("swiftdeploy:")]
    assert len(lines) == 1 and "could not ask OPA" in lines[0], text.stderr


@pytest.mark.parametrize("answer_kind, status, payload, says", [
    ("raw", 200, b"<html>surprise</html>", "not a JSON object"),
    ("json", 200, {"result": {"allow": "yes", "reasons": []}}, "is not {\"allow\": bool"),
    ("json", 200, {"decision": "allow"}, "has no decision at data.swiftdeploy.infra.decision"),
])
def test_garbage_from_opa_exits_2_never_allowed(project, answer_kind, status, payload, says):
    with fake_opa() as fake:
        fake.mode = (answer_kind, status, payload)
        point_at(project, fake.url)
        answer = document(gate(project, "--format", "json"))
    assert answer["exit_code"] == 2 and (answer["decision"], answer["allow"]) == ("unknown", None)
    assert answer["error"].startswith("infra gate failed closed: ") and says in answer["error"], answer["error"]
    assert answer["input"]["disk_path"] == str(project), "the facts that were asked about are shown"


def test_extra_fields_of_opas_decision_pass_through(project):
    decision = {"allow": False, "reasons": ["too risky"], "verdict": "insufficient", "notes": ["n = 3"],
                "exit_code": 99, "gate": "not ours"}
    with fake_opa() as fake:
        fake.mode = ("json", 200, {"result": decision, "decision_id": "d-1"})
        point_at(project, fake.url)
        answer = document(gate(project, "--format", "json"))
    assert (answer["verdict"], answer["notes"], answer["decision_id"]) == ("insufficient", ["n = 3"], "d-1")
    assert (answer["gate"], answer["exit_code"], answer["reasons"]) == ("infra", 1, ["too risky"]), \
        "OPA's fields never replace the stable ones"


def test_a_gate_that_init_stops_exits_2_not_1(project):
    manifest = project / "manifest.yaml"
    good = manifest.read_text()
    manifest.write_text(good.replace("port: 8080", "port: 70000"))
    try:
        result = gate(project, "--format", "json")
        text = gate(project)
    finally:
        manifest.write_text(good)
    answer = document(result)
    assert answer["exit_code"] == 2 and answer["decision"] == "unknown"
    assert answer["error"] == "not asked: init:nginx.conf: manifest.yaml: nginx/port: must be 1-65535, got 70000"
    assert text.returncode == 2 and "nginx/port: must be 1-65535, got 70000" in text.stderr


def test_a_format_that_does_not_exist_is_refused_before_anything_runs(project):
    result = gate(project, "--format", "yaml")
    assert result.returncode == 3 and not result.stdout
    assert "available choices are: 'text', 'json'" in result.stderr


def test_an_engine_that_cannot_be_measured_exits_2_naming_it(project, opa):
    """The facts come from the engine's host: without an engine there is nothing to judge, never the laptop."""
    point_at(project, opa)
    set_infra_limits(opa, token_of(project), ALLOWING)
    answer = document(gate(project, "--format", "json", engine=False))
    assert answer["exit_code"] == 2 and (answer["decision"], answer["allow"]) == ("unknown", None)
    assert answer["error"].startswith("cannot measure the engine's host: no container engine answers at"), answer
