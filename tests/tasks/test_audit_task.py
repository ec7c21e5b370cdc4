"""doit audit: both reports from the history, rebuilt only when the history or the policy limits changed."""

import json

from projectkit import run_doit
from swiftdeploy.evidence.history import History


def executed(result) -> set[str]:
    return {line[3:].strip() for line in result.stdout.splitlines() if line.startswith(".  ")}


def write_history(project) -> History:
    history = History(project / "reports" / "history.jsonl")
    history.append("deploy", outcome="ok", mode="stable", version="1.0.0", canary_version=None, seconds=3.1)
    history.append("status", mode="stable", chaos="none", policies={"infra": {"allow": True, "reasons": []}},
                   tracks={"stable": {"requests": 240, "errors": 0, "error_rate": 0.0, "req_per_s": 8.0,
                                      "p99_ms": 41.0, "window_seconds": 30.0}})
    return history


def test_audit_writes_both_reports_and_rebuilds_only_when_the_history_grows(project):
    history = write_history(project)
    first = run_doit(project, "audit", check=True)
    assert executed(first) == {"audit"}
    assert "wrote reports/audit_report.md and reports/audit_report.html" in first.stdout
    html = (project / "reports" / "audit_report.html").read_text()
    assert "<svg" in html and 'stroke-dasharray="6 4"' in html, "the curves with the policy's limit lines"
    assert (project / "reports" / "audit_report.md").read_text().startswith("# SwiftDeploy Audit Report")

    assert executed(run_doit(project, "audit", check=True)) == set()
    history.append("chaos", outcome="ok", mode="error", rate=0.5, status_code=200)
    assert executed(run_doit(project, "audit", check=True)) == {"audit"}
    assert "chaos error" in (project / "reports" / "audit_report.html").read_text()

    data = project / "policies" / "data.json"
    limits = json.loads(data.read_text())
    limits["canary"]["max_p99_ms"] = 750
    data.write_text(json.dumps(limits))
    assert executed(run_doit(project, "audit", check=True)) == {"audit"}, "the limit lines changed"


def test_unusable_policy_data_is_one_line_and_the_report_has_no_limit_lines(project):
    write_history(project)
    (project / "policies" / "data.json").write_text('{"canary": {"max_error_rate": "1%"}}')
    result = run_doit(project, "audit", check=True)
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("audit: no policy limit lines on the curves: policies/data.json: ")
    html = (project / "reports" / "audit_report.html").read_text()
    assert 'stroke-dasharray="6 4"' not in html and "unknown: no policy data" in html


def test_no_history_is_one_line_not_a_traceback(project):
    result = run_doit(project, "audit")
    assert result.returncode != 0
    assert "reports/history.jsonl does not exist yet: deploy first, then audit" in result.stderr
    assert "Traceback" not in result.stderr
