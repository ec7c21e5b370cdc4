import re

from chromiumkit import Elements, check_self_contained, screenshot
from swiftdeploy.report import audit_data
from swiftdeploy.report_html import Limits, render_html
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
