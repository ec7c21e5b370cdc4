"""The article's flow against the real engine, nginx and OPA, start to teardown."""

import json
import re
import time

import pytest
import requests

from chromiumkit import check_self_contained, screenshot
from stackkit import (SteadyLoad, at_once, containers, doit, history, make_project, manifest_of, ok, public_url,
                      remove_everything, require_engine, swiftdeploy)

pytestmark = [pytest.mark.e2e, pytest.mark.every_engine]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    require_engine()
    project = make_project(tmp_path_factory.mktemp("flow") / "project")
    yield project
    remove_everything(project)


def test_deploy_canary_chaos_gates_recover_promote_status_audit_teardown(project):
    deployed = ok(swiftdeploy(project, "deploy"))
    assert "deployed app 1.0.0 (stable mode)" in deployed.stdout
    url = public_url(project)
    first = requests.get(url + "/", timeout=5)
    assert first.json()["mode"] == "stable" and first.headers["X-Deployed-By"] == "swiftdeploy"

    with SteadyLoad(url) as load:
        ok(swiftdeploy(project, "promote", "canary"))
        assert manifest_of(project).services.mode == "canary"
        assert requests.get(url + "/", timeout=5).headers.get("X-Mode") == "canary"

        ok(swiftdeploy(project, "chaos", "error", "--rate", "0.9"))
        time.sleep(1)
        failing = ok(swiftdeploy(project, "status", "--once"))  # a scrape for the audit's curves
        assert "FAIL canary" in failing.stdout
        gate = doit(project, "canary-gate")
        assert gate.returncode == 1
        assert "denied by the canary policy: error rate" in gate.stderr
        as_json = doit(project, "canary-gate", "--format", "json")
        answer = json.loads(as_json.stdout)  # stdout is the one document; progress and reasons are on stderr
        assert as_json.returncode == 1 and (answer["decision"], answer["exit_code"]) == ("deny", 1), as_json.stderr
        assert any(reason.startswith("error rate") for reason in answer["reasons"]), answer
        assert answer["input"]["requests"] > 0 and answer["input"]["errors"] > 0, answer
        refused = swiftdeploy(project, "promote", "stable")
        assert refused.returncode != 0
        assert "promote:stable denied by the canary policy: error rate" in refused.stderr
        assert "rollback" in refused.stderr, "a refused promotion points at rollback"
        assert "Traceback" not in gate.stderr + refused.stderr
        assert manifest_of(project).services.mode == "canary", "a refused promotion changes nothing"

        ok(swiftdeploy(project, "chaos", "recover"))
        promoted = ok(swiftdeploy(project, "promote", "stable"))  # its gate's window opens after the recover
        assert "canary gate: allowed" in promoted.stdout
        assert manifest_of(project).services.mode == "stable"
        assert "X-Mode" not in requests.get(url + "/", timeout=5).headers

        status, as_json = at_once(lambda: ok(swiftdeploy(project, "status", "--once")),  # status takes no lock
                                  lambda: ok(swiftdeploy(project, "status", "--once", "--format", "json")))
        frame = json.loads(as_json.stdout)
    assert "PASS infra" in status.stdout and "mode: stable" in status.stdout
    assert (frame["mode"], frame["policies"]["infra"]["decision"], frame["exit_code"]) == ("stable", "allow", 0)
    assert frame["tracks"]["stable"]["requests"] > 0 and frame["tracks"]["stable"]["down"] is None, frame
    assert load.total > 200

    ok(swiftdeploy(project, "audit"))
    report = (project / "reports" / "audit_report.md").read_text()
    assert "# SwiftDeploy Audit Report" in report
    assert "chaos error" in report and "gate denied" in report and "error rate" in report
    check_html_report(project / "reports")

    ok(swiftdeploy(project, "teardown"))
    assert containers(manifest_of(project).project) == []

    kinds = [(r["event"], r.get("domain") or r.get("to") or r.get("mode") or "", r.get("allow", r.get("outcome")))
             for r in history(project)]
    expected = [
        ("gate", "infra", True), ("deploy", "stable", "ok"),
        ("gate", "infra", True), ("promote", "canary", "ok"),
        ("chaos", "error", "ok"),
        ("status", "canary", None),
        ("gate", "canary", False), ("gate", "canary", False), ("gate", "canary", False),
        ("promote", "stable", "failed"),
        ("chaos", "recover", "ok"),
        ("gate", "canary", True), ("promote", "stable", "ok"),
        ("status", "stable", None), ("status", "stable", None),
        ("teardown", "", "ok"),
    ]
    assert kinds == expected, kinds
    verified = ok(swiftdeploy(project, "audit", "verify"))  # the chain the real operations wrote, whole
    assert f"reports/history.jsonl: intact: records 1-{len(kinds)} chained, lines 1-{len(kinds)}" in verified.stdout


def check_html_report(reports):
    """The HTML report draws the canary's failing scrape and the denied gates, and renders in Chromium."""
    html = (reports / "audit_report.html").read_text()
    error_chart, latency_chart = html.split("<svg")[1:3]
    assert 'stroke="#d97706"' in error_chart, "the canary's error-rate curve"
    assert 'stroke-dasharray="6 4"' in error_chart and 'stroke-dasharray="6 4"' in latency_chart, "the limits"
    denied = re.findall(r"<title>canary gate denied at [^<]*: (\d+(?:\.\d+)?)%</title>", error_chart)
    assert len(denied) == 3 and all(float(rate) > 50 for rate in denied), denied
    assert re.search(r"<title>canary gate allowed at [^<]*: 0%</title>", error_chart)
    assert "promote:stable</code> gate denied" in html
    check_self_contained(html)
    screenshot(reports / "audit_report.html", reports / "audit_report.png")
