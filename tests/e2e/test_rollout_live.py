"""The rollout on the real engine: a healthy canary walks its steps and is promoted; a failing or slow one is
rolled back by the rollout itself; with no traffic it holds and never promotes; the split is sticky."""

import re
import subprocess
import sys
import time
from datetime import datetime

import pytest
import requests

from chromiumkit import check_self_contained, screenshot
from stackkit import SteadyLoad, dropped, history, make_project, manifest_of, ok, public_url, remove_everything, require_engine, swiftdeploy
from swiftdeploy.model.manifest_edit import set_fields

pytestmark = pytest.mark.e2e


def project_with(tmp_path, cleanup, **canary):
    """A deployed project, registered with `cleanup` before the deploy (a failed deploy leaves a stack too)."""
    require_engine()
    project = make_project(tmp_path / "project", canary={"version": "1.1.0", "interval_seconds": 2, **canary})
    cleanup(project)
    ok(swiftdeploy(project, "deploy"))
    return project


@pytest.fixture
def cleanup():
    """Registers projects (and background rollouts) to remove after the test, however it ended: a rollout
    left running after a failed assertion would bring the stack back up behind the teardown."""
    made = []
    yield made.append
    for thing in made:
        if isinstance(thing, subprocess.Popen):
            thing.kill()
            thing.wait()
    for thing in made:
        if not isinstance(thing, subprocess.Popen):
            remove_everything(thing)


def events(project, kind):
    return [record for record in history(project) if record["event"] == kind]


def wait_for(predicate, seconds=120):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def ts(record) -> float:
    return datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()


@pytest.mark.every_engine
def test_a_healthy_canary_walks_every_step_and_is_promoted_without_a_failed_request(tmp_path, cleanup):
    project = project_with(tmp_path, cleanup, steps=[20, 50, 100], step_seconds=6)
    with SteadyLoad(public_url(project)) as load:
        result = swiftdeploy(project, "rollout", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "promoted: stable is now 1.1.0" in result.stdout
    assert load.failures() == {} and load.total > 300, dropped(load, project)
    services = manifest_of(project).services
    assert (services.mode, services.version) == ("stable", "1.1.0")
    assert [step["weight"] for step in events(project, "rollout_step")] == [20, 50, 100]
    verdicts = events(project, "rollout_verdict")
    assert verdicts[-1]["verdict"] == "pass" and "fail" not in {v["verdict"] for v in verdicts}
    assert verdicts[-1]["input"]["stable"] is not None or verdicts[-1]["weight"] == 100
    served = [v["split"] for v in verdicts if v["weight"] == 20 and v["split"]["new_client_requests"] >= 100]
    assert served and all(abs(split["new_client_canary_share"] - 0.20) <= 0.05 for split in served), served
    assert events(project, "rollout")[-1]["outcome"] == "promoted"
    gate = [g for g in events(project, "gate") if g["domain"] == "canary"][-1]
    assert gate["allow"] is True and gate["verdict"] == "pass" and gate["operation"] == "rollout"


def run_rollout_with_chaos(project, cleanup, *chaos_words, threads=3):
    """Start the rollout, inject chaos once its first step serves, wait for it to end; (result, injected at)."""
    with SteadyLoad(public_url(project), threads=threads):
        process = subprocess.Popen([sys.executable, str(project / "swiftdeploy"), "rollout"], cwd=project,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cleanup(process)
        wait_for(lambda: events(project, "rollout_step"))
        ok(swiftdeploy(project, "chaos", *chaos_words))
        injected = time.time()
        out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), injected


# Docker Engine only: on Podman, chaos (test_article_flow) and a rollback under load (test_no_dropped_requests)
# run through the same engine calls.
def test_errors_injected_at_the_first_step_roll_back_by_themselves(tmp_path, cleanup):
    project = project_with(tmp_path, cleanup, steps=[20, 50, 100], step_seconds=30)
    result, injected = run_rollout_with_chaos(project, cleanup, "error", "--rate", "0.2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back by itself" in result.stderr and "error rate" in result.stderr
    services = manifest_of(project).services
    assert (services.mode, services.version) == ("stable", "1.0.0")
    rollback = events(project, "rollback")[-1]
    assert rollback["by"] == "rollout" and any("error rate" in reason for reason in rollback["reasons"])
    seconds = ts(rollback) - injected
    print(f"injection to all traffic on stable: {seconds:.1f} s")
    assert seconds < 45
    assert {body["version"] for body in (requests.get(public_url(project) + "/", timeout=5).json() for _ in range(20))} == {"1.0.0"}
    assert events(project, "rollout")[-1]["outcome"] == "rolled_back"

    ok(swiftdeploy(project, "audit"))  # deploy, canary, chaos, failed analysis, rollback: the report shows each
    html = (project / "reports" / "audit_report.html").read_text()
    error_chart = html.split("<svg")[1]
    assert re.search(r"<title>canary gate denied at [^<]*: (\d+(?:\.\d+)?)%</title>", error_chart), error_chart[:2000]
    assert "rollout step 1 (20%)</code> gate denied" in html and "rollout rolled back" in html
    check_self_contained(html)
    screenshot(project / "reports" / "audit_report.html", project / "reports" / "audit_report.png")


def test_a_slow_canary_is_caught_by_the_p99_rule_with_the_exact_and_estimated_figures(tmp_path, cleanup):
    project = project_with(tmp_path, cleanup, steps=[20, 100], step_seconds=30)
    result, _ = run_rollout_with_chaos(project, cleanup, "slow", "--duration", "1", threads=10)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [v for v in events(project, "rollout_verdict") if v["verdict"] == "fail"][-1]
    assert any(reason.startswith("p99 (exact) ") for reason in failed["reasons"]), failed
    facts = failed["input"]
    # Caught as soon as the slow requests show: by the limit, or (often first) against stable's P99.
    assert facts["p99_exact_ms"] > 500 or facts["p99_exact_ms"] > 1.5 * facts["stable"]["p99_exact_ms"], facts
    assert facts["p99_ms"] is not None
    assert any(note.startswith("p99 judged on nginx's exact figure") for note in failed["notes"])
    assert "exact" in result.stdout


def test_with_no_traffic_the_rollout_holds_on_insufficient_data_and_never_promotes(tmp_path, cleanup):
    project = project_with(tmp_path, cleanup, steps=[50, 100], step_seconds=3, step_deadline_seconds=8)
    result = swiftdeploy(project, "rollout", timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    verdicts = {v["verdict"] for v in events(project, "rollout_verdict")}
    assert verdicts == {"insufficient"}, verdicts
    assert "no passing analysis at step 1 (50%) within 8 s" in result.stderr
    assert not [p for p in events(project, "promote") if p.get("to") == "stable"]
    services = manifest_of(project).services
    assert (services.mode, services.version) == ("stable", "1.0.0")


def test_the_split_is_exact_for_new_clients_and_sticky_as_the_weight_rises(tmp_path, cleanup):
    project = project_with(tmp_path, cleanup, weight=20)
    ok(swiftdeploy(project, "promote", "canary"))
    url = public_url(project) + "/"
    modes = [requests.get(url, headers={"Connection": "close"}, timeout=5).json()["mode"] for _ in range(2000)]
    share = modes.count("canary") / len(modes)
    assert abs(share - 0.20) <= 0.02, share

    clients = [requests.Session() for _ in range(40)]
    first = [client.get(url, timeout=5).json()["mode"] for client in clients]
    assert "canary" in first and "stable" in first
    previous = first
    for weight in (50, 100):
        path = project / "manifest.yaml"
        path.write_text(set_fields(path.read_text(), {"services.canary.weight": weight}))
        ok(swiftdeploy(project, "deploy"))
        now = [client.get(url, timeout=5).json()["mode"] for client in clients]
        assert all(before == "stable" or after == "canary" for before, after in zip(previous, now)), (previous, now)
        assert [client.get(url, timeout=5).json()["mode"] for client in clients] == now  # sticky at this weight
        previous = now
    assert set(previous) == {"canary"}


def test_status_shows_the_rollout_and_a_sigkilled_rollout_goes_on_when_run_again(tmp_path, cleanup):
    project = project_with(tmp_path, cleanup, steps=[20, 50, 100], step_seconds=10)

    def start(name):
        output = (tmp_path / name).open("w")
        process = subprocess.Popen([sys.executable, str(project / "swiftdeploy"), "rollout"], cwd=project,
                                   stdout=output, stderr=subprocess.STDOUT)
        cleanup(process)
        return process

    with SteadyLoad(public_url(project)) as load:
        process = start("first.out")
        wait_for(lambda: [v for v in events(project, "rollout_verdict") if v["weight"] == 50] or process.poll() is not None)
        assert process.poll() is None, (tmp_path / "first.out").read_text()
        process.kill()
        process.wait()
        frame = ok(swiftdeploy(project, "status", "--once")).stdout
        assert "rollout stopped at step 2/3 at 50%" in frame, frame

        seen = len(events(project, "rollout_verdict"))
        again = start("again.out")
        wait_for(lambda: len(events(project, "rollout_verdict")) > seen + 1 or again.poll() is not None)
        frame = ok(swiftdeploy(project, "status", "--once")).stdout
        assert re.search(r"rollout: step [23]/3 at (50|100)% for \d+ s; last verdicts: [a-z, ]*pass", frame), frame
        assert again.wait(timeout=300) == 0, (tmp_path / "again.out").read_text()
    assert load.failures() == {} and load.total > 300, dropped(load, project)
    services = manifest_of(project).services
    assert (services.mode, services.version) == ("stable", "1.1.0")
    assert "rollout" not in ok(swiftdeploy(project, "status", "--once")).stdout
