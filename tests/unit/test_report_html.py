import re

import pytest

from chromiumkit import Elements, check_self_contained, screenshot
from swiftdeploy.report.audit import audit_data
from swiftdeploy.report.html import Limits, render_html
from test_report import at, failing_canary, gate, realistic_history

LIMITS = Limits(max_error_rate=0.01, max_p99_ms=500)


def test_the_realistic_report_draws_both_curves_the_limits_and_the_denied_gate():
    html = render_html(audit_data(realistic_history()), LIMITS)
    check_self_contained(html)
    elements = Elements(html)
    charts = elements.of("svg")
    assert [chart["aria-label"] for chart in charts] == ["Error rate (%)", "P99 latency (ms)"]
    error_chart = html.split("<svg", 2)[1]
    # the canary's failing scrapes (~90 %) and the limit at 1 %, both on the error-rate chart
    assert 'stroke="#d97706"' in error_chart and 'stroke-dasharray="6 4"' in error_chart
    titles = re.findall(r"<title>([^<]*)</title>", error_chart)
    assert "canary gate denied at 2026-11-26 12:04:00: 90.37%" in titles
    assert "canary gate allowed at 2026-11-26 12:05:45: 0%" in titles
    assert "chaos error" in titles and "promote: canary" in titles
    text = " ".join(elements.text)
    assert "gate denied" in text and "error_rate 0.9037 is above the limit 0.01" in text
    violations = html.split("<h2>Policy violations</h2>", 1)[1].split("</table>", 1)[0]
    assert "<code>error_rate</code> 0.9037" in violations and "<code>p99_ms</code> 38.2" in violations


def test_same_records_give_the_same_bytes():
    assert render_html(audit_data(realistic_history()), LIMITS) == render_html(audit_data(realistic_history()),
                                                                                 LIMITS)


def test_every_string_from_the_history_is_escaped():
    hostile = '<script>alert("x")</script>'
    records = [gate("12:00:00.000", "canary", "promote:stable", [hostile], {"error_rate": 0.5, "note": hostile}),
               {"ts": at("12:00:01.000"), "event": "deploy", "outcome": "ok", "mode": "stable", "version": hostile},
               {"ts": at("12:00:02.000"), "event": f"rollout_{hostile}", "weight": hostile},
               {"ts": at("12:00:03.000"), "event": "chaos", "outcome": "failed", "mode": hostile, "error": hostile}]
    html = render_html(audit_data(records), LIMITS)
    check_self_contained(html)
    assert "<script" not in html
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 6
    assert hostile in " ".join(Elements(html).text)  # shown as text, exactly


def test_an_empty_history_renders_and_says_so():
    html = render_html(audit_data([]))
    check_self_contained(html)
    assert "nothing to draw" in html and html.count("None recorded.") == 5


def test_without_policy_data_the_curves_say_the_limit_is_unknown():
    html = render_html(audit_data(realistic_history()))
    assert 'stroke-dasharray="6 4"' not in html and "unknown: no policy data" in html


def test_a_track_that_did_not_run_leaves_a_gap_in_its_curve():
    records = [failing_canary(f"12:{minute:02d}:{second:02d}.000", 0.5, 240)
               for minute in (0, 20) for second in range(0, 60, 2)]  # a scrape every 2 s, 20 minutes apart
    data = audit_data(records)
    assert data.period_seconds == 10
    error_chart = render_html(data, LIMITS).split("<svg", 2)[1]
    canary_lines = re.findall(r'<polyline fill="none" stroke="#d97706"[^>]*points="([^"]*)"', error_chart)
    assert [len(points.split()) for points in canary_lines] == [6, 6]


def test_chromium_renders_the_report_without_the_network(tmp_path):
    html_path, png_path = tmp_path / "audit_report.html", tmp_path / "audit_report.png"
    html_path.write_text(render_html(audit_data(realistic_history()), LIMITS), encoding="utf-8")
    screenshot(html_path, png_path)


# --- whatever the history holds, both reports render, and the HTML stays inert --------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from swiftdeploy.report.markdown import render_markdown  # noqa: E402

TIMES = st.one_of(st.sampled_from(["2026-11-26T12:00:00.000Z", "2026-11-26T12:00:02.000Z", "2026-11-27T00:00:00Z",
                                   "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59Z", "2026-11-26T12:00:00",
                                   "2026-13-45T99:00:00Z", "<b>noon</b>", ""]), st.text(max_size=8))
NUMBERS = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=False), st.sampled_from([1e308, -1e308, 0.0]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12), st.just("<script>x</script>"))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                    max_leaves=8)
FIGURES = st.fixed_dictionaries({}, optional={name: st.one_of(st.none(), NUMBERS, SCALARS) for name in (
    "requests", "errors", "error_rate", "req_per_s", "p99_ms", "window_seconds", "down")})
POLICY = st.fixed_dictionaries({}, optional={"allow": st.one_of(st.none(), st.booleans(), SCALARS),
                                             "reasons": st.one_of(st.lists(st.text(max_size=20), max_size=2), JSON),
                                             "error": SCALARS})
STATUS = st.fixed_dictionaries({"event": st.just("status"), "ts": TIMES}, optional={
    "mode": st.sampled_from(["stable", "canary", "<i>"]), "chaos": st.sampled_from(["none", "error", 3]),
    "tracks": st.one_of(st.dictionaries(st.sampled_from(["stable", "canary"]), FIGURES, max_size=2), JSON),
    "policies": st.one_of(st.dictionaries(st.sampled_from(["infra", "canary"]), POLICY, max_size=2), JSON)})
OPERATION = st.fixed_dictionaries(
    {"event": st.sampled_from(["deploy", "promote", "rollback", "chaos", "gate", "gate_unavailable", "teardown",
                               "interrupted", "rollout_step", "<script>x</script>"]), "ts": TIMES},
    optional={"outcome": st.sampled_from(["ok", "failed", "maybe"]), "mode": SCALARS, "to": SCALARS,
              "domain": st.sampled_from(["canary", "infra", "<u>"]), "operation": SCALARS,
              "allow": st.one_of(st.booleans(), SCALARS), "reasons": st.one_of(st.lists(st.text(max_size=20)), JSON),
              "input": st.one_of(st.dictionaries(st.sampled_from(["error_rate", "p99_ms", "x"]), NUMBERS), JSON),
              "version": JSON, "rate": JSON, "error": SCALARS, "anything": JSON})
RECORDS = st.lists(st.one_of(STATUS, OPERATION, JSON), max_size=12)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(RECORDS)
def test_any_records_give_both_reports_and_an_inert_html(records):
    data = audit_data(records)
    render_markdown(data)
    html = render_html(data, LIMITS)
    check_self_contained(html)
    assert "<script" not in html and "<b>" not in html and "<i>" not in html
    geometry = re.findall(r' (?:x1|x2|y1|y2|cx|cy|x|y|points|d)="([^"]*)"', html)
    assert not [value for value in geometry if "nan" in value or "inf" in value]


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59Z"])
def test_a_gate_at_an_end_of_the_calendar_fuzzing_found(ts):
    html = render_html(audit_data([{**gate("12:00:00.000", "canary", "promote:stable", ["x"], {"error_rate": 0}),
                                    "ts": ts}]), LIMITS)
    assert "s after 1970</text>" in html  # the axis reaches past what datetime can show, and says so
    check_self_contained(html)


def test_many_mode_changes_are_left_to_the_tables_and_many_gates_drawn_small():
    records = []
    for i in range(30):  # 30 promote/rollback pairs, each with a denied gate: 60 mode changes, 30 gates
        minute = f"12:{i:02d}"
        records += [{"ts": at(f"{minute}:00.000"), "event": "promote", "to": "canary", "outcome": "ok"},
                    gate(f"{minute}:10.000", "canary", "promote:stable", ["too many errors"], {"error_rate": 0.5}),
                    {"ts": at(f"{minute}:20.000"), "event": "rollback", "outcome": "ok"}]
    html = render_html(audit_data(records * 3), LIMITS)  # 90 gates
    assert 'stroke-dasharray="2 3"' not in html and "The 180 mode changes and chaos injections are too many" in html
    error_chart = html.split("<svg", 2)[1]
    assert error_chart.count("l3,3 l-3,3") == 90 and error_chart.count("l6,6") == 1  # the legend's diamond
