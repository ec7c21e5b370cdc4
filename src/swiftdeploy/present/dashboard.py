"""Status frames (O-6): one Snapshot is what a frame shows and what the `status` history event records.

snapshot_record() and snapshot_from_record() convert between a Snapshot and the `status` event fields of
docs/CONTRACTS.md, so the screen, the history and the audit report read the same figures. render_text() is
for `status --once` and non-TTY output; render_rich() is the live view. Figures that are None ("no
traffic" in the window) print as "-".
"""

import functools
import math
import re
from collections.abc import Mapping
from typing import NamedTuple
from dataclasses import dataclass, field, fields

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from tabulate import tabulate

from ..errors import SwiftDeployError

NO_FIGURE = "-"
POLICY_ORDER = ("infra", "canary")
_TS = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(?:Z|[+]00:00)$")
_VERDICT_STYLE = {"PASS": "bold green", "FAIL": "bold red", "WAIT": "bold yellow", "UNKNOWN": "bold yellow"}


class MalformedStatus(SwiftDeployError):
    """A `status` history record whose shape is not the one in docs/CONTRACTS.md."""


@dataclass(frozen=True)
class TrackFigures:
    """One track's windowed figures; None where the window had no traffic (or no latency observations)."""
    req_per_s: float | None = None
    error_rate: float | None = None  # 0..1
    p99_ms: float | None = None
    requests: float | None = None
    errors: float | None = None
    window_seconds: float | None = None
    down: str | None = None  # why the track's metrics could not be read (it is down, or has no container)
    p99_exact_ms: float | None = None  # from nginx's request log; p99_ms is the histogram's estimate
    p99_saturated: bool = False  # the estimate sits in the top bucket: the true P99 is above it

    @classmethod
    def from_window(cls, window, p99_exact_ms: float | None = None) -> "TrackFigures":
        """From a swiftdeploy.metrics.Window (and nginx's exact P99 over the same window)."""
        return cls(req_per_s=_round(window.req_per_s, 3), error_rate=_round(window.error_rate, 6),
                   p99_ms=_round(window.p99_ms, 3), requests=_round(window.requests, 0),
                   errors=_round(window.errors, 0), window_seconds=_round(window.seconds, 3),
                   p99_exact_ms=_round(p99_exact_ms, 3), p99_saturated=window.p99_saturated)


@dataclass(frozen=True)
class PolicyResult:
    """allow None means OPA could not be asked (error says why); the check then counts as failed."""
    allow: bool | None
    reasons: tuple[str, ...] = ()
    error: str | None = None
    outcome: str | None = None  # the canary policy's verdict: pass | fail | insufficient

    @property
    def verdict(self) -> str:
        if self.allow is False and self.outcome == "insufficient":
            return "WAIT"
        return {True: "PASS", False: "FAIL"}.get(self.allow, "UNKNOWN")

    @property
    def explanation(self) -> str:
        """Why it did not pass, in one line ("" when it passed)."""
        if self.allow is None:
            return f"could not ask OPA: {_one_line(self.error or 'no error given')}"
        if self.allow is False:
            why = "; ".join(_one_line(reason) for reason in self.reasons) or "no reasons given"
            return f"insufficient data: {why}" if self.outcome == "insufficient" else why
        return ""


@dataclass(frozen=True)
class Snapshot:
    ts: str  # ISO-8601 UTC
    mode: str  # stable | canary
    chaos: str  # none | slow | error
    stable: TrackFigures
    canary: TrackFigures | None = None
    policies: Mapping[str, PolicyResult] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def tracks(self) -> dict[str, TrackFigures]:
        present = {"stable": self.stable, "canary": self.canary}
        return {name: figures for name, figures in present.items() if figures is not None}

    def ordered_policies(self) -> list[tuple[str, PolicyResult]]:
        return [(name, self.policies[name]) for name in _policy_order(tuple(self.policies))]


_TRACK_NAMES = frozenset(("stable", "canary"))
_FLOAT_RANGE = 1 << 1024


@functools.lru_cache(maxsize=256)
def _policy_order(names: tuple[str, ...]) -> tuple[str, ...]:
    """POLICY_ORDER first, then the others by name (cached: every status record names the same few)."""
    rank = {name: index for index, name in enumerate(POLICY_ORDER)}
    return tuple(sorted(names, key=lambda name: (rank.get(name, len(rank)), name)))


def _round(value: float | None, places: int) -> float | int | None:
    """Figures as the history keeps them: counts as integers, the rest without float noise."""
    if value is None:
        return None
    return int(round(value)) if places == 0 else round(value, places)


def format_time(ts: str) -> str:
    """"2026-11-26T12:05:00.123Z" -> "2026-11-26 12:05:00"; anything else is returned unchanged."""
    match = _TS.match(ts)
    return f"{match[1]} {match[2]}" if match else ts


def format_percent(rate: float | None) -> str:
    return NO_FIGURE if rate is None else f"{rate * 100:.2f}%"


def format_ms(ms: float | None) -> str:
    return NO_FIGURE if ms is None else f"{ms:.0f} ms"


def format_number(value: float | None, decimals: int = 2) -> str:
    """Integers as integers; other numbers with at most `decimals` decimals; None as "-"."""
    if value is None:
        return NO_FIGURE
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def snapshot_record(snapshot: Snapshot) -> dict:
    """The fields of the `status` history event (History.append adds ts and event)."""
    return {
        "mode": snapshot.mode,
        "chaos": snapshot.chaos,
        "tracks": {name: _track_record(figures) for name, figures in snapshot.tracks().items()},
        "policies": {domain: _policy_record(result) for domain, result in snapshot.ordered_policies()},
    }


class StatusParts(NamedTuple):
    """A `status` history record, checked: its tracks as the record's own mappings of figures (stable first,
    an empty one when the record has none), its policies read. What the audit folds, without a Snapshot."""
    ts: str
    mode: str
    chaos: str
    tracks: dict  # name -> the record's figures (a dict; TrackFigures' fields are its keys)
    policies: dict  # domain -> PolicyResult

    def ordered_policies(self) -> list[tuple[str, "PolicyResult"]]:
        return [(name, self.policies[name]) for name in _policy_order(tuple(self.policies))]


def status_parts(record: Mapping) -> StatusParts:
    """The checked parts of a `status` history record; MalformedStatus when its shape is wrong."""
    ts, mode, chaos = record.get("ts"), record.get("mode"), record.get("chaos", "none")
    tracks, policies = record.get("tracks"), record.get("policies", {})
    if not (isinstance(ts, str) and isinstance(mode, str) and isinstance(chaos, str)):
        raise MalformedStatus("status record: ts, mode and chaos must be strings")
    if not isinstance(tracks, dict) or not isinstance(policies, dict):
        raise MalformedStatus("status record: tracks and policies must be objects")
    if not tracks.keys() <= _TRACK_NAMES:
        raise MalformedStatus(f"status record: unknown tracks {sorted(set(tracks) - _TRACK_NAMES)}")
    checked = {"stable": _checked_track(tracks.get("stable", {}))}
    if "canary" in tracks:
        checked["canary"] = _checked_track(tracks["canary"])
    return StatusParts(ts, mode, chaos, checked,
                       {domain: _policy_from_record(domain, entry) for domain, entry in policies.items()})


def snapshot_from_record(record: Mapping) -> Snapshot:
    """The Snapshot a `status` history record describes; MalformedStatus when its shape is wrong."""
    parts = status_parts(record)
    canary = parts.tracks.get("canary")
    return Snapshot(ts=parts.ts, mode=parts.mode, chaos=parts.chaos, stable=_figures_of(parts.tracks["stable"]),
                    canary=None if canary is None else _figures_of(canary), policies=parts.policies)


def render_text(snapshot: Snapshot) -> str:
    """Plain text of one frame, ending with one newline (print it with end="")."""
    rows = [[name, *_track_cells(figures)] for name, figures in snapshot.tracks().items()]
    table = tabulate(rows, headers=_TRACK_HEADERS, tablefmt="simple", disable_numparse=True,
                     colalign=("left",) + ("right",) * (len(_TRACK_HEADERS) - 1))
    lines = [_header(snapshot), "", table]
    if any(_has_gap(figures) for figures in snapshot.tracks().values()):
        lines.append(f"({NO_FIGURE} = no traffic in the window)")
    lines += [f"{name} track down: {_one_line(figures.down)}" for name, figures in snapshot.tracks().items()
              if figures.down]
    lines += ["", "Policy compliance"]
    lines += [f"  {_policy_line(domain, result)}" for domain, result in snapshot.ordered_policies()]
    if not snapshot.policies:
        lines.append("  no policy evaluated")
    lines += [f"Note: {_one_line(note)}" for note in snapshot.notes]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_rich(snapshot: Snapshot) -> Panel:
    """The live view of one frame: tracks table and policy lines, PASS green, FAIL red, UNKNOWN yellow."""
    table = Table(box=box.SIMPLE_HEAD, expand=False)
    for index, header in enumerate(_TRACK_HEADERS):
        table.add_column(header, justify="left" if index == 0 else "right", no_wrap=True)
    for name, figures in snapshot.tracks().items():
        table.add_row(name, *_track_cells(figures))
    parts = [Text(_header(snapshot), style="bold"), table]
    if any(_has_gap(figures) for figures in snapshot.tracks().values()):
        parts.append(Text(f"({NO_FIGURE} = no traffic in the window)", style="dim"))
    parts += [Text(f"{name} track down: {_one_line(figures.down)}", style="bold red")
              for name, figures in snapshot.tracks().items() if figures.down]
    parts.append(Text("Policy compliance", style="bold"))
    for domain, result in snapshot.ordered_policies():
        line = Text("  ")
        line.append(result.verdict, style=_VERDICT_STYLE[result.verdict])
        line.append(f" {domain}" + (f": {result.explanation}" if result.explanation else ""))
        parts.append(line)
    if not snapshot.policies:
        parts.append(Text("  no policy evaluated", style="dim"))
    parts += [Text(f"Note: {_one_line(note)}", style="italic") for note in snapshot.notes]
    return Panel(Group(*parts), title="SwiftDeploy status", title_align="left", expand=False)


_TRACK_HEADERS = ("Track", "Req/s", "Error rate", "P99 est.", "P99 exact", "Requests", "Window")


def _header(snapshot: Snapshot) -> str:
    return f"mode: {snapshot.mode}   chaos: {snapshot.chaos}   time: {format_time(snapshot.ts)} UTC"


def _track_cells(figures: TrackFigures) -> list[str]:
    if figures.down:
        return ["DOWN"] + [NO_FIGURE] * (len(_TRACK_HEADERS) - 2)
    window = NO_FIGURE if figures.window_seconds is None else f"{figures.window_seconds:.0f} s"
    return [NO_FIGURE if figures.req_per_s is None else f"{figures.req_per_s:.2f}",
            format_percent(figures.error_rate),
            format_ms(figures.p99_ms) + ("+" if figures.p99_saturated and figures.p99_ms is not None else ""),
            format_ms(figures.p99_exact_ms), format_number(figures.requests), window]


def _has_gap(figures: TrackFigures) -> bool:
    """A figure missing for lack of traffic (the exact P99 may also miss for lack of nginx's request log)."""
    cells = _track_cells(figures)
    return NO_FIGURE in cells[:3] + cells[4:]


def _policy_line(domain: str, result: PolicyResult) -> str:
    return f"{result.verdict} {domain}" + (f": {result.explanation}" if result.explanation else "")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _track_record(figures: TrackFigures) -> dict:
    record = {item.name: getattr(figures, item.name) for item in fields(TrackFigures)
              if item.name not in ("down", "p99_saturated")}
    if figures.p99_saturated:
        record["p99_saturated"] = True
    return {**record, "down": figures.down} if figures.down else record


def _policy_record(result: PolicyResult) -> dict:
    if result.allow is None:
        return {"allow": None, "error": result.error or "no error given"}
    verdict = {"verdict": result.outcome} if result.outcome else {}
    return {"allow": result.allow, "reasons": list(result.reasons), **verdict}


def _checked_track(entry) -> dict:
    """A track's figures as recorded, or MalformedStatus."""
    if not isinstance(entry, dict):
        raise MalformedStatus("status record: a track must be an object")
    get = entry.get
    down = get("down")
    if down is not None and not isinstance(down, str):
        raise MalformedStatus(f"status record: down must be a string or absent, got {down!r}")
    saturated = get("p99_saturated", False)
    if not isinstance(saturated, bool):
        raise MalformedStatus(f"status record: p99_saturated must be true/false or absent, got {saturated!r}")
    for name in _NUMBER_FIELDS:
        value = get(name)
        # type(), not isinstance(): a bool is an int to isinstance; an int past a float's range is no figure
        kind = type(value)
        if value is not None and not ((kind is float and math.isfinite(value))
                                      or (kind is int and -_FLOAT_RANGE < value < _FLOAT_RANGE)):
            raise MalformedStatus(f"status record: {name} must be a number or null, got {value!r}")
    return entry


def _figures_of(entry: dict) -> TrackFigures:
    """TrackFigures of a checked track entry."""
    return TrackFigures(**{name: entry.get(name) for name in _NUMBER_FIELDS}, down=entry.get("down"),
                        p99_saturated=entry.get("p99_saturated", False))


_NUMBER_FIELDS = tuple(item.name for item in fields(TrackFigures) if item.name not in ("down", "p99_saturated"))
_POLICIES_SEEN: dict = {}  # (domain, its record's fields) -> PolicyResult: a history repeats a few shapes


def _policy_from_record(domain, entry) -> PolicyResult:
    if isinstance(entry, dict):
        reasons = entry.get("reasons", ())
        allow = entry.get("allow", "missing")
        # type(allow) too: 1 == True as a key, and 1 is no allow
        key = (domain, allow, type(allow), tuple(reasons) if isinstance(reasons, list) else reasons,
               entry.get("error"), entry.get("verdict"))
        try:
            return _POLICIES_SEEN[key]
        except (KeyError, TypeError):  # TypeError: something unhashable, which the checks below refuse
            pass
        result = _checked_policy(domain, entry)
        if len(_POLICIES_SEEN) > 4096:
            _POLICIES_SEEN.clear()
        _POLICIES_SEEN[key] = result
        return result
    return _checked_policy(domain, entry)


def _checked_policy(domain, entry) -> PolicyResult:
    allow = entry.get("allow", "missing") if isinstance(entry, dict) else "missing"
    if allow is not None and not isinstance(allow, bool):
        raise MalformedStatus(f"status record: policy {domain!r} must be an object with allow true/false/null")
    reasons, error = entry.get("reasons", []), entry.get("error")
    if not isinstance(reasons, list) or not all(isinstance(reason, str) for reason in reasons):
        raise MalformedStatus(f"status record: policy {domain!r} reasons must be a list of strings")
    if error is not None and not isinstance(error, str):
        raise MalformedStatus(f"status record: policy {domain!r} error must be a string")
    outcome = entry.get("verdict")
    if outcome is not None and outcome not in ("pass", "fail", "insufficient"):
        raise MalformedStatus(f"status record: policy {domain!r} verdict must be pass, fail or insufficient")
    return PolicyResult(allow=allow, reasons=tuple(reasons), error=error, outcome=outcome)

