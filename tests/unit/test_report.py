import os
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from swiftdeploy.report.audit import EVENT_KINDS, audit_data
from swiftdeploy.report.markdown import render_markdown

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"  # UPDATE_GOLDEN=1 pytest ... rewrites; then read the diff


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_bytes(text.encode("utf-8"))
    assert text.encode("utf-8") == path.read_bytes(), f"{name} differs: rerun with UPDATE_GOLDEN=1 and review"


# --- a realistic history ---------------------------------------------------------------------------

def at(clock: str) -> str:
    return f"2026-11-26T{clock}Z"


def track(req_per_s, error_rate, p99_ms, requests, errors, window_seconds=30.0):
    return {"requests": requests, "errors": errors, "error_rate": error_rate, "req_per_s": req_per_s,
            "p99_ms": p99_ms, "window_seconds": window_seconds}


NO_TRAFFIC = track(0.0, None, None, 0, 0)


def status(clock, mode, stable, canary=None, chaos="none", canary_policy=None, infra=None):
    policies = {"infra": infra or {"allow": True, "reasons": []}}
    if canary is not None:
        policies["canary"] = canary_policy or {"allow": True, "reasons": []}
    tracks = {"stable": stable} if canary is None else {"stable": stable, "canary": canary}
    return {"ts": at(clock), "event": "status", "mode": mode, "chaos": chaos, "tracks": tracks,
            "policies": policies}


def gate(clock, domain, operation, reasons=(), facts=None):
    return {"ts": at(clock), "event": "gate", "domain": domain, "operation": operation,
            "input": facts or {"note": "what OPA was asked"}, "allow": not reasons, "reasons": list(reasons)}


def canary_facts(requests, error_rate, p99_ms):
    return {"window_seconds": 30.0, "requests": requests, "errors": round(error_rate * requests),
            "error_rate": error_rate, "p99_ms": p99_ms}


def error_rate_reason(rate):
    return f"error_rate {rate} is above the limit 0.01"


def failing_canary(clock, rate, requests):
    errors = round(rate * requests)
    return status(clock, "canary", NO_TRAFFIC, track(requests / 30, errors / requests, 38.2, requests, errors),
                  chaos="error", canary_policy={"allow": False, "reasons": [error_rate_reason(rate)]})


def realistic_history() -> list[dict]:
    return [
        gate("12:00:00.100", "infra", "deploy"),
        {"ts": at("12:00:15.300"), "event": "deploy", "outcome": "ok", "mode": "stable", "version": "1.0.0",
         "canary_version": None, "seconds": 14.2},
        status("12:01:00.000", "stable", track(8.5, 0.0, 41.7, 255, 0)),
        status("12:01:05.000", "stable", track(8.4, 0.0, 43.2, 252, 0)),
        gate("12:02:00.000", "infra", "promote:canary"),
        {"ts": at("12:02:09.500"), "event": "promote", "to": "canary", "outcome": "ok", "from_mode": "stable",
         "version": "1.0.0", "canary_version": "1.1.0", "weight": 100},
        status("12:02:40.000", "canary", NO_TRAFFIC, track(8.1, 0.0, 39.9, 243, 0)),
        {"ts": at("12:03:00.000"), "event": "chaos", "outcome": "ok", "mode": "error", "rate": 0.9,
         "status_code": 200},
        failing_canary("12:03:30.000", 0.8966, 242),
        failing_canary("12:03:35.000", 0.9012, 243),
        failing_canary("12:03:40.000", 0.8921, 241),
        failing_canary("12:03:45.000", 0.9037, 244),
        gate("12:04:00.000", "canary", "promote:stable", [error_rate_reason(0.9037)], canary_facts(244, 0.9037, 38.2)),
        {"ts": at("12:04:00.050"), "event": "promote", "to": "stable", "outcome": "failed", "from_mode": "canary",
         "version": "1.0.0", "canary_version": "1.1.0", "weight": 100,
         "error": "canary gate denied: error_rate 0.9037 is above the limit 0.01"},
        {"ts": at("12:04:30.000"), "event": "chaos", "outcome": "ok", "mode": "recover", "status_code": 200},
        status("12:05:05.000", "canary", NO_TRAFFIC, track(8.2, 0.0, 40.3, 246, 0)),
        status("12:05:10.000", "canary", NO_TRAFFIC, track(8.3, 0.0, 40.1, 249, 0)),
        gate("12:05:45.000", "canary", "promote:stable", facts=canary_facts(249, 0.0, 40.3)),
        {"ts": at("12:05:52.250"), "event": "promote", "to": "stable", "outcome": "ok", "from_mode": "canary",
         "version": "1.1.0", "canary_version": None, "weight": None},
        status("12:06:30.000", "stable", track(8.6, 0.0, 40.8, 258, 0)),
        {"ts": at("12:10:00.000"), "event": "teardown", "outcome": "ok", "clean": False},
    ]


# --- Markdown checks: a GFM row splitter with cmark-gfm's rule, and a real renderer ----------------

ASCII_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def gfm_cells(row: str) -> list[str]:
    """Split a table row as cmark-gfm does: a backslash escapes the punctuation character after it."""
    cells, current, i = [], "", 0
    body = row.strip()
    body = body[1:] if body.startswith("|") else body
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in ASCII_PUNCTUATION:
            current, i = current + body[i:i + 2], i + 2
        elif body[i] == "|":
            cells.append(current.strip())
            current, i = "", i + 1
        else:
            current, i = current + body[i], i + 1
    if current.strip():
        cells.append(current.strip())
    return cells


def tables_of(markdown: str) -> list[list[list[str]]]:
    tables, current = [], None
    for line in markdown.split("\n"):
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            current.append(gfm_cells(line))
        else:
            current = None
    return tables


def check_markdown(markdown: str) -> None:
    assert markdown.endswith("\n") and not markdown.endswith("\n\n")
    assert not [line for line in markdown.split("\n") if line != line.rstrip()], "trailing spaces"
    tables = tables_of(markdown)
    for table in tables:
        header, delimiter, *rows = table
        assert all(re.fullmatch(r"-{3,}", cell) for cell in delimiter) and len(delimiter) == len(header)
        assert [len(row) for row in rows] == [len(header)] * len(rows), table
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert html.count("<table>") == len(tables)
    for table_html in re.findall(r"<table>.*?</table>", html, re.S):
        widths = [len(re.findall(r"<t[hd]>", row)) for row in re.findall(r"<tr>.*?</tr>", table_html, re.S)]
        assert len(set(widths)) == 1, widths


def section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n\n", 1)[1].split("\n## ", 1)[0]


def table_rows(markdown: str, title: str) -> list[list[str]]:
    return tables_of(section(markdown, title))[0][2:]


# --- tests ------------------------------------------------------------------------------------------

def test_the_realistic_history_renders_the_golden_report():
    markdown = render_markdown(audit_data(realistic_history()))
    check_markdown(markdown)
    check_golden("audit_report.md", markdown)


def test_same_records_give_the_same_bytes():
    assert render_markdown(audit_data(realistic_history())) == render_markdown(audit_data(realistic_history()))


def test_audit_data_of_the_realistic_history():
    data = audit_data(realistic_history())
    assert (data.first_ts, data.last_ts, data.records) == (at("12:00:00.100"), at("12:10:00.000"), 21)
    assert data.counts == {"deploy": 1, "promote": 3, "rollback": 0, "chaos": 2, "gate": 4,
                           "gate_unavailable": 0, "status": 10, "teardown": 1, "rollout": 0, "rollout_step": 0,
                           "rollout_verdict": 0, "other": 0, "malformed": 0}
    assert [(c.from_mode, c.to_mode, c.cause) for c in data.mode_changes] == [
        ("unknown", "stable", "deploy"), ("stable", "canary", "promote"), ("canary", "stable", "promote"),
        ("stable", "down", "teardown")]
    assert [(e.event, e.failed, e.mode_after) for e in data.timeline] == [
        ("deploy", False, "stable"), ("promote to canary", False, "canary"), ("chaos error", False, "canary"),
        ("gate denied", False, "canary"), ("promote to stable", True, "canary"), ("chaos recover", False, "canary"),
        ("promote to stable", False, "stable"), ("teardown", False, "down")]
    assert [(c.mode, c.rate) for c in data.chaos] == [("error", 0.9), ("recover", None)]
    status_run, denial = data.violations
    assert (status_run.source, status_run.count, status_run.first_ts, status_run.last_ts) == (
        "status", 4, at("12:03:30.000"), at("12:03:45.000"))
    assert status_run.reasons == (error_rate_reason(0.8966),)  # the first scrape's figures
    assert (denial.source, denial.operation, denial.count) == ("gate", "promote:stable", 1)
    stable, canary = data.tracks
    assert (stable.scrapes, stable.max_p99_ms, canary.scrapes) == (10, 43.2, 7)
    assert canary.max_error_rate == pytest.approx(221 / 244)


def test_an_hour_of_failing_scrapes_is_one_violation():
    records = [failing_canary(f"{12 + i // 1200}:{i // 20 % 60:02d}:{i % 20 * 3:02d}.000", 0.5 + i / 10000, 240)
               for i in range(1200)]
    (violation,) = audit_data(records).violations
    assert (violation.policy, violation.count) == ("canary", 1200)
    assert (violation.first_ts, violation.last_ts) == (at("12:00:00.000"), at("12:59:57.000"))
    assert len(table_rows(render_markdown(audit_data(records)), "Policy violations")) == 1


def test_a_passing_scrape_breaks_a_run_of_failing_scrapes_into_two_rows():
    passing = status("12:00:10.000", "canary", NO_TRAFFIC, track(8.0, 0.0, 40.0, 240, 0))
    records = [failing_canary("12:00:00.000", 0.9, 240), failing_canary("12:00:05.000", 0.8, 240), passing,
               failing_canary("12:00:15.000", 0.7, 240)]
    violations = audit_data(records).violations
    assert [(v.first_ts, v.last_ts, v.count) for v in violations] == [
        (at("12:00:00.000"), at("12:00:05.000"), 2), (at("12:00:15.000"), at("12:00:15.000"), 1)]
    rows = table_rows(render_markdown(audit_data(records)), "Policy violations")
    assert [row[4] for row in rows] == ["2", "1"]


def test_a_different_reason_or_a_scrape_without_the_policy_also_breaks_a_run():
    slow = failing_canary("12:00:05.000", 0.9, 240)
    slow["policies"]["canary"]["reasons"].append("p99_ms 812.5 is above the limit 500")
    stable_only = status("12:00:10.000", "stable", track(8.0, 0.0, 40.0, 240, 0))
    records = [failing_canary("12:00:00.000", 0.9, 240), slow, stable_only, failing_canary("12:00:15.000", 0.9, 240)]
    assert [v.count for v in audit_data(records).violations] == [1, 1, 1]


def test_status_policies_that_could_not_be_asked_are_violations_too():
    unknown = {"allow": None, "error": "connection refused (http://127.0.0.1:8181)"}
    records = [status(f"12:00:0{i}.000", "stable", NO_TRAFFIC, infra=unknown) for i in range(3)]
    (violation,) = audit_data(records).violations
    assert violation.count == 3 and violation.reasons == (f"could not ask OPA: {unknown['error']}",)


def test_a_pipe_in_a_reason_is_escaped_and_the_table_keeps_its_shape():
    reasons = ["error_rate | p99 both high", r"a\|b stays a\|b", "line one\nline two", "*not emphasis* <b>x</b>"]
    records = [gate("12:00:00.000", "canary", "promote:stable", reasons),
               {"ts": at("12:00:01.000"), "event": "deploy", "outcome": "ok", "mode": "stable",
                "version": "1.0|`beta`"}]
    markdown = render_markdown(audit_data(records))
    check_markdown(markdown)
    assert r"error\_rate \| p99 both high" not in markdown and r"error_rate \| p99 both high" in markdown
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "error_rate | p99 both high" in html and r"a\|b stays a\|b" in html
    assert "line one<br>line two" in html and "*not emphasis* &lt;b&gt;x&lt;/b&gt;" in html
    assert "<code>1.0|`beta`</code>" in html


def test_an_empty_history_gives_a_valid_report_that_says_nothing_was_recorded():
    markdown = render_markdown(audit_data([]))
    check_markdown(markdown)
    assert markdown.startswith("# SwiftDeploy Audit Report\n\n")
    assert "| Period (UTC) | none: no records |" in markdown and "| Records | 0 |" in markdown
    for title in ("Timeline", "Mode changes", "Chaos injections", "Policy violations", "Status scrapes"):
        assert section(markdown, title).strip() == "None recorded."


def test_malformed_records_and_unknown_events_are_counted_not_fatal():
    records = [
        "not a dict", None, {}, {"event": "deploy"}, {"ts": at("12:00:00.000")}, {"ts": 5, "event": "deploy"},
        {"ts": at("12:00:01.000"), "event": "promote", "outcome": "ok"},  # no "to"
        {"ts": at("12:00:02.000"), "event": "deploy", "outcome": "ok"},  # ok without a mode
        {"ts": at("12:00:03.000"), "event": "deploy", "outcome": "maybe", "mode": "stable"},
        {"ts": at("12:00:04.000"), "event": "gate", "domain": "infra", "operation": "deploy", "allow": "no"},
        {"ts": at("12:00:05.000"), "event": "gate", "domain": "infra", "operation": "deploy", "allow": False,
         "reasons": "one string"},
        {"ts": at("12:00:06.000"), "event": "status", "mode": "stable", "tracks": []},
        {"ts": at("12:00:07.000"), "event": "status", "mode": "stable", "tracks": {"stable": {"p99_ms": "fast"}}},
        {"ts": at("12:00:08.000"), "event": "status", "mode": "stable", "tracks": {},
         "policies": {"infra": {"reasons": []}}},
        {"ts": at("12:00:09.000"), "event": "frobnicate", "anything": [1, 2]},
        {"ts": at("12:00:10.000"), "event": "chaos", "outcome": "ok", "mode": "slow", "duration": {"odd": 1}},
    ]
    data = audit_data(records)
    assert (data.counts["malformed"], data.counts["other"], data.counts["chaos"], data.records) == (14, 1, 1, 16)
    assert (data.first_ts, data.last_ts) == (at("12:00:09.000"), at("12:00:10.000"))
    markdown = render_markdown(data)
    check_markdown(markdown)
    assert "| Malformed records (skipped) | 14 |" in markdown and "| Other events (unknown kind) | 1 |" in markdown


def test_mode_follows_successful_operations_only():
    def op(clock, event, outcome="ok", **fields):
        return {"ts": at(clock), "event": event, "outcome": outcome, **fields}
    records = [
        status("11:59:00.000", "canary", NO_TRAFFIC, track(1.0, 0.0, 10.0, 30, 0)),  # history starts in canary
        op("12:00:00.000", "rollback", from_mode="canary", version="1.0.0"),
        op("12:00:01.000", "promote", "failed", to="canary", error="infra gate denied"),
        op("12:00:02.000", "deploy", mode="stable", version="1.0.0"),  # a redeploy: no mode change
        op("12:00:03.000", "teardown", "failed", error="engine not reachable"),
    ]
    data = audit_data(records)
    assert [(c.from_mode, c.to_mode) for c in data.mode_changes] == [("canary", "stable")]
    assert [e.mode_after for e in data.timeline] == ["stable"] * 4 and data.final_mode == "stable"


def test_bare_records_of_every_kind_are_malformed_not_fatal():
    records = [{"ts": at("12:00:00.000"), "event": kind} for kind in EVENT_KINDS]
    data = audit_data(records)  # each lacks the fields its kind needs
    assert data.counts["malformed"] == data.records == len(EVENT_KINDS)
    check_markdown(render_markdown(data))


def test_a_day_of_scrapes_every_2_s_folds_into_quarter_hours():
    records = [status(f"{h:02d}:{m:02d}:{s:02d}.000", "stable", track(8.0, 0.001 * (h + 1), 40.0 + h, 240, 0))
               for h in range(24) for m in range(60) for s in range(0, 60, 2)]
    data = audit_data(records)
    assert data.counts["status"] == 43_200
    assert (data.period_seconds, len(data.periods)) == (900, 96)
    assert data.periods[0].tracks["stable"].scrapes == 450
    assert data.periods[-1].tracks["stable"].p99_ms_max == 63.0
    markdown = render_markdown(data)
    check_markdown(markdown)
    rows = table_rows(markdown, "Status per period (15 minutes)")
    assert len(rows) == 96 and rows[-1][:4] == ["2026-11-26 23:45:00", "`stable`", "450", "2.40% / 2.40%"]


def test_1500_denied_gates_keep_the_first_and_last_500_and_say_how_many_were_folded():
    denials = [gate(f"{12 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000", "canary", "promote:stable",
                    [f"denial number {i}"]) for i in range(1500)]
    data = audit_data(denials)
    assert (data.violations.total, data.violations.folded, data.violation_occurrences) == (1500, 500, 1500)
    assert [v.reasons for v in data.violations][499:501] == [("denial number 499",), ("denial number 1000",)]
    assert (data.timeline.total, len(data.timeline.head), len(data.timeline.tail)) == (1500, 500, 500)
    markdown = render_markdown(data)
    check_markdown(markdown)
    rows = table_rows(markdown, "Policy violations")
    assert len(rows) == 1001 and rows[500] == ["500 more folded here"] + ["..."] * 5
    assert rows[-1][-1] == "denial number 1499"
    assert "| Policy violations | 1500 (1500 occurrences) |" in markdown


def test_unknown_event_kinds_show_in_the_timeline_with_their_fields():
    records = [
        {"ts": at("12:00:00.000"), "event": "canary_mirror", "weight": 25, "verdict": {"allow": True}, "hmac": "ab12",
         "chain": 7},
        {"ts": at("12:00:01.000"), "event": "interrupted", "operation": "promote:stable", "steps_done": 3,
         "outcome": "failed"},
    ]
    data = audit_data(records)
    assert data.counts["other"] == 2
    assert [(e.event, e.failed, e.unknown_kind) for e in data.timeline] == [
        ("canary_mirror", False, True), ("interrupted", True, True)]
    markdown = render_markdown(data)
    check_markdown(markdown)
    details = [row[3] for row in table_rows(markdown, "Timeline")]
    assert details == ['weight 25, verdict {"allow":true}', "operation promote:stable, steps_done 3, outcome failed"]


def test_a_huge_field_is_cut_so_the_kept_entries_stay_small():
    huge = "x" * 1_000_000
    records = [gate("12:00:00.000", "canary", "promote:stable", [huge] * 100, {"blob": [huge]}),
               {"ts": at("12:00:01.000"), "event": "rollout", "payload": {"a": huge}, "note": huge}]
    data = audit_data(records)
    (violation,) = data.violations
    assert len(violation.reasons) == 20 and {len(reason) for reason in violation.reasons} == {503}
    assert violation.inputs == (("blob", ["x" * 500 + "..."]),)
    markdown = render_markdown(data)
    check_markdown(markdown)
    assert len(markdown) < 30_000


def test_a_rollout_shows_its_steps_failed_analyses_and_outcome():
    canary = {"window_seconds": 10, "requests": 80, "errors": 16, "error_rate": 0.2, "p99_ms": 12.0,
              "p99_exact_ms": 30.0, "stable": {"requests": 300, "errors": 0}}
    records = [
        {"ts": at("12:00:00.000"), "event": "deploy", "outcome": "ok", "mode": "stable", "version": "1.0.0"},
        {"ts": at("12:00:10.000"), "event": "rollout", "phase": "start", "canary_version": "1.1.0", "steps": [20, 100]},
        {"ts": at("12:00:12.000"), "event": "rollout_step", "step": 1, "steps": 2, "weight": 20, "canary_version": "1.1.0"},
        {"ts": at("12:00:14.000"), "event": "rollout_verdict", "step": 1, "weight": 20, "verdict": "insufficient",
         "reasons": ["only 3 requests"], "input": None},
        {"ts": at("12:00:24.000"), "event": "rollout_verdict", "step": 1, "weight": 20, "verdict": "fail",
         "reasons": ["error rate 20.00% is above the limit 1.00%"], "input": canary},
        {"ts": at("12:00:30.000"), "event": "rollback", "outcome": "ok", "from_mode": "canary", "version": "1.0.0"},
        {"ts": at("12:00:31.000"), "event": "rollout", "phase": "end", "outcome": "rolled_back",
         "reasons": ["1 failed analysis in a row at step 1 (20%)"], "analyses": 2},
    ]
    data = audit_data(records)
    assert data.counts["rollout_verdict"] == 2 and data.counts["other"] == 0
    assert [(e.event, e.failed) for e in data.timeline] == [
        ("deploy", False), ("rollout start", False), ("rollout step 1/2: canary at 20%", False),
        ("rollout analysis failed", True), ("rollback", False), ("rollout rolled back", True)]
    assert [(m.from_mode, m.to_mode, m.cause) for m in data.mode_changes] == [
        ("unknown", "stable", "deploy"), ("stable", "canary", "rollout"), ("canary", "stable", "rollback")]
    [violation] = data.violations
    assert (violation.operation, violation.reasons) == ("rollout step 1 (20%)", ("error rate 20.00% is above the limit 1.00%",))
    assert dict(violation.inputs)["p99_exact_ms"] == 30.0 and "stable" not in dict(violation.inputs)
    [point] = data.gate_points
    assert (point.allow, point.error_rate, point.p99_ms) == (False, 0.2, 30.0)
    check_markdown(render_markdown(data))


def test_each_deploy_and_promotion_shows_the_policy_revision_that_allowed_it():
    records = [
        {**gate("10:00:00.000", "infra", "deploy"), "policy_revision": "96712a8b0ac0"},
        {"ts": at("10:00:01.000"), "event": "deploy", "outcome": "ok", "mode": "stable", "version": "1.0.0"},
        {**gate("10:05:00.000", "canary", "promote:stable"), "policy_revision": "16684e33a6c1"},
        {"ts": at("10:05:01.000"), "event": "promote", "outcome": "ok", "to": "stable", "from_mode": "canary",
         "version": "1.1.0"},
        {"ts": at("10:06:00.000"), "event": "deploy", "outcome": "ok", "mode": "stable", "version": "1.1.0"},
    ]
    entries = audit_data(records).timeline.head
    policies = [dict(entry.details).get("policy") for entry in entries if entry.event in ("deploy", "promote to stable")]
    assert policies == ["96712a8b0ac0", "16684e33a6c1", None]  # a deploy no gate allowed names no revision
    assert "allowed under policy revision `16684e33a6c1`" in render_markdown(audit_data(records))
