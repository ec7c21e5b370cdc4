import io
import json
import re
import os
from pathlib import Path

import pytest
from rich.console import Console

from swiftdeploy.present.dashboard import (MalformedStatus, PolicyResult, Snapshot, TrackFigures, render_rich, render_text,
                                   snapshot_from_record, snapshot_record)
from swiftdeploy.evidence.history import History
from swiftdeploy.judge.metrics import Window

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"  # UPDATE_GOLDEN=1 pytest ... rewrites; then read the diff
TS = "2026-11-26T12:03:40.123Z"
CANARY_REASONS = ("error_rate 0.8921 is above the limit 0.01", "p99_ms 812.5 is above the limit 500")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_bytes(text.encode("utf-8"))
    assert text.encode("utf-8") == path.read_bytes(), f"{name} differs: rerun with UPDATE_GOLDEN=1 and review"


def canary_frame() -> Snapshot:
    return Snapshot(
        ts=TS, mode="canary", chaos="error",
        stable=TrackFigures(req_per_s=0.0, error_rate=None, p99_ms=None, requests=0, errors=0, window_seconds=30.0),
        canary=TrackFigures(req_per_s=8.0333, error_rate=0.8921, p99_ms=812.5, requests=241, errors=215,
                            window_seconds=30.0),
        policies={"canary": PolicyResult(False, CANARY_REASONS), "infra": PolicyResult(True)},
    )


def stable_frame() -> Snapshot:
    return Snapshot(
        ts="2026-11-26T12:06:30.000Z", mode="stable", chaos="none",
        stable=TrackFigures(req_per_s=8.6, error_rate=0.0, p99_ms=40.84, requests=258, errors=0, window_seconds=30.2),
        policies={"infra": PolicyResult(True)},
    )


def rich_text(renderable, styles=False) -> str:
    console = Console(record=True, width=100, file=io.StringIO())
    console.print(renderable)
    return console.export_text(styles=styles)


def test_canary_frame_with_a_failing_canary_policy_matches_the_golden_text():
    text = render_text(canary_frame())
    check_golden("status_canary.txt", text)
    assert "FAIL canary: error_rate 0.8921 is above the limit 0.01; p99_ms 812.5 is above the limit 500" in text
    assert "PASS infra" in text and text.index("PASS infra") < text.index("FAIL canary")


def test_stable_only_frame_matches_the_golden_text():
    text = render_text(stable_frame())
    check_golden("status_stable.txt", text)
    assert "canary" not in text and "no traffic" not in text
    assert text.endswith("PASS infra\n")


def test_a_policy_that_could_not_be_asked_is_unknown_with_its_error_on_one_line():
    frame = Snapshot(ts=TS, mode="stable", chaos="none", stable=TrackFigures(),
                     policies={"infra": PolicyResult(None, error="connection refused\n(127.0.0.1:8181)")},
                     notes=("canary metrics: container not running",))
    text = render_text(frame)
    assert "  UNKNOWN infra: could not ask OPA: connection refused (127.0.0.1:8181)" in text.splitlines()
    assert "Note: canary metrics: container not running" in text
    assert "(- = no traffic in the window)" in text
    assert all(line == line.rstrip() for line in text.splitlines())


def test_a_frame_without_policies_says_so():
    frame = Snapshot(ts=TS, mode="stable", chaos="none", stable=TrackFigures())
    assert "Policy compliance\n  no policy evaluated" in render_text(frame)
    assert "no policy evaluated" in rich_text(render_rich(frame))


def test_the_rich_view_renders_the_figures_and_colours_the_verdicts():
    text = rich_text(render_rich(canary_frame()))
    for figure in ("mode: canary", "chaos: error", "2026-11-26 12:03:40 UTC", "8.03", "89.21%", "812 ms", "241",
                   "30 s", "(- = no traffic in the window)", "PASS infra",
                   "FAIL canary: error_rate 0.8921 is above the limit 0.01"):
        assert figure in text, figure
    assert all(len(line) <= 100 for line in text.splitlines())
    console = Console(width=100, color_system="truecolor", force_terminal=True)
    segments = list(console.render(render_rich(canary_frame())))
    colours = {seg.text: seg.style.color.name for seg in segments if seg.text in ("PASS", "FAIL") and seg.style}
    assert colours == {"PASS": "green", "FAIL": "red"}


def test_snapshot_record_has_the_contract_fields_and_round_trips_through_the_history(tmp_path):
    frame = canary_frame()
    record = snapshot_record(frame)
    assert set(record) == {"mode", "chaos", "tracks", "policies"}
    assert set(record["tracks"]) == {"stable", "canary"}
    assert set(record["tracks"]["canary"]) == {"requests", "errors", "error_rate", "req_per_s", "p99_ms",
                                               "p99_exact_ms", "window_seconds"}
    assert record["policies"] == {"infra": {"allow": True, "reasons": []},
                                  "canary": {"allow": False, "reasons": list(CANARY_REASONS)}}
    history = History(tmp_path / "history.jsonl")
    stored = history.append("status", **record)
    (read,) = history.read()
    assert read == json.loads(json.dumps(stored))
    back = snapshot_from_record(read)
    assert (back.mode, back.chaos, back.stable, back.canary) == (frame.mode, frame.chaos, frame.stable, frame.canary)
    assert back.policies == frame.policies


def test_a_stable_frame_and_an_unknown_policy_round_trip():
    frame = Snapshot(ts=TS, mode="stable", chaos="none", stable=TrackFigures(req_per_s=1.5, requests=45),
                     policies={"infra": PolicyResult(None, error="timed out after 3.0 s")})
    record = snapshot_record(frame)
    assert "canary" not in record["tracks"]
    assert record["policies"] == {"infra": {"allow": None, "error": "timed out after 3.0 s"}}
    assert snapshot_from_record({"ts": TS, **record}) == frame


def test_track_figures_from_a_metrics_window():
    window = Window(seconds=30.0, requests=240.0, errors=6.0, error_rate=0.025, req_per_s=8.0,
                    p99_seconds=0.25, observations=240.0)
    assert TrackFigures.from_window(window) == TrackFigures(req_per_s=8.0, error_rate=0.025, p99_ms=250.0,
                                                            requests=240.0, errors=6.0, window_seconds=30.0)


@pytest.mark.parametrize("record", [
    {"ts": TS, "mode": "stable"},
    {"ts": TS, "mode": "stable", "tracks": {"stable": {"p99_ms": True}}},
    {"ts": TS, "mode": "stable", "tracks": {"blue": {}}},
    {"ts": TS, "mode": "stable", "tracks": {}, "policies": {"infra": {"allow": 1, "reasons": []}}},
    {"ts": TS, "mode": "stable", "tracks": {}, "policies": {"infra": {"allow": False, "reasons": "slow"}}},
    {"ts": TS, "mode": 3, "tracks": {}},
])
def test_malformed_status_records_raise_one_error_type(record):
    with pytest.raises(MalformedStatus):
        snapshot_from_record(record)


def test_a_down_track_is_shown_down_with_why_and_round_trips_through_the_history():
    down = TrackFigures(down="could not read /metrics of the stable track: no running container of app-stable")
    frame = Snapshot(ts=TS, mode="stable", chaos="unknown", stable=down, policies={"infra": PolicyResult(True)},
                     notes=("drift: sd-app-stable-1 1.0.0 (exited): stopped",))
    text = render_text(frame)
    assert re.search(r"^stable +DOWN", text, re.M), text
    assert "stable track down: could not read /metrics of the stable track: no running container" in text
    assert "Note: drift: sd-app-stable-1 1.0.0 (exited): stopped" in text
    assert "DOWN" in rich_text(render_rich(frame))
    record = snapshot_record(frame)
    assert record["tracks"]["stable"]["down"] == down.down
    assert snapshot_from_record({"ts": TS, **record}).stable == down
    assert "down" not in snapshot_record(stable_frame())["tracks"]["stable"], "a live track keeps the contract fields"
