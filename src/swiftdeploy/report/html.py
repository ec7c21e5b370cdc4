"""The audit report as one self-contained HTML file: AuditData -> HTML with inline CSS and inline SVG curves.

No script, no external font, style sheet or image, and a Content-Security-Policy that forbids fetching any:
the file reads the same offline, in a mail attachment or with JavaScript off. Every string that comes from
the history is untrusted and goes through html.escape, in tables and in SVG alike.
"""

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path

from ..present.dashboard import format_ms, format_number, format_percent, format_time
from .audit import EVENT_KINDS, AuditData, Folded, TimelineEntry, Violation, detail
from .periods import duration_text, epoch_seconds, iso_time
from .svg import MAX_EVENT_LINES, Series, line_chart

_STYLE = """
body{font-family:sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#1b1f24;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f5f7}tr.folded td{background:#fff8c5;font-style:italic}tr.failed td{background:#ffebe9}
code{font-family:monospace;background:#f3f5f7;padding:0 .2em}.note{color:#57606a;font-size:.85em}
svg{display:block;margin:.5em 0}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class Limits:
    """The canary policy's thresholds, drawn as lines on the curves; None when unknown."""
    max_error_rate: float | None = None
    max_p99_ms: float | None = None


def policy_limits(path: Path) -> tuple[Limits, str | None]:
    """The canary limits in the policy data file (policies/data.json), and why there are none if so."""
    try:
        canary = json.loads(path.read_text(encoding="utf-8"))["canary"]
        limits = Limits(canary["max_error_rate"], canary["max_p99_ms"])
    except OSError as err:
        return Limits(), f"{path}: {err.strerror}"
    except (ValueError, KeyError, TypeError) as err:
        return Limits(), f"{path}: no canary max_error_rate and max_p99_ms ({type(err).__name__}: {err})"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vars(limits).values()):
        return Limits(), f"{path}: canary max_error_rate and max_p99_ms must be numbers"
    return limits, None


def render_html(data: AuditData, limits: Limits = Limits()) -> str:
    body = [
        "<h1>SwiftDeploy Audit Report</h1>",
        _table(("Item", "Value"), _summary_rows(data)),
        "<h2>Error rate and P99 over time</h2>",
        *_curves(data, limits),
        _section("Timeline", ("Time (UTC)", "Event", "Mode after", "Details"), data.timeline, lambda e: (
            _time(e.ts), escape(e.event + (" (failed)" if e.failed else "")), _code(e.mode_after),
            _details(e)), failed=lambda e: e.failed),
        _section("Mode changes", ("Time (UTC)", "From", "To", "By", "Versions after"), data.mode_changes,
                 lambda c: (_time(c.ts), _code(c.from_mode), _code(c.to_mode), escape(c.cause),
                            _versions(c.version, c.canary_version))),
        _section("Chaos injections", ("Time (UTC)", "Chaos", "Parameters", "Outcome", "App answered"), data.chaos,
                 lambda c: (_time(c.ts), _code(c.mode), _parameters(c.rate, c.duration),
                            f"failed: {_text(c.error)}" if c.failed else "ok", _value(c.status_code)),
                 failed=lambda c: c.failed),
        _section("Policy violations", ("First seen", "Last seen", "Policy", "Operation/source", "Count", "Reasons",
                                       "Inputs"), data.violations, _violation_cells,
                 note="Consecutive status scrapes that fail the same policy for the same reasons (figures aside) "
                      "are one row; its reasons and inputs are those of the first scrape."),
        "<h2>Status scrapes</h2>",
        _table(("Track", "Scrapes", "Max req/s", "Max error rate", "Max P99"), [
            (_code(t.track), str(t.scrapes), format_number(t.max_req_per_s), format_percent(t.max_error_rate),
             format_ms(t.max_p99_ms)) for t in data.tracks]) if data.tracks else "<p>None recorded.</p>",
        _periods(data),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>SwiftDeploy Audit Report</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _summary_rows(data: AuditData) -> list[tuple[str, str]]:
    period = f"{_time(data.first_ts)} to {_time(data.last_ts)}" if data.first_ts else "none: no records"
    rows = [("Period (UTC)", period), ("Records", str(data.records)), ("Mode at the end", _code(data.final_mode)),
            ("Mode changes", str(data.mode_changes.total)), ("Chaos injections", str(data.chaos.total)),
            ("Policy violations", f"{data.violations.total} ({data.violation_occurrences} occurrences)")]
    rows += [(f"<code>{kind}</code> events", str(count)) for kind, count in data.counts.items()
             if kind in EVENT_KINDS and count]
    return rows + [("Other events (unknown kind)", str(data.counts["other"])),
                   ("Malformed records (skipped)", str(data.counts["malformed"]))]


def _curves(data: AuditData, limits: Limits) -> list[str]:
    if not data.periods and not data.gate_points.total:
        return ["<p>No status scrape or canary gate recorded: nothing to draw.</p>"]
    period = data.period_seconds
    gates = list(data.gate_points)

    def series(attribute: str, scale: float) -> list[Series]:
        drawn = [Series(name, [(p.start, p.start + period, None if getattr(p.tracks[name], attribute) is None
                                else getattr(p.tracks[name], attribute) * scale)
                               for p in data.periods if name in p.tracks]) for name in ("stable", "canary")]
        return [s for s in drawn if s.spans]

    def gate_marks(attribute: str, scale: float) -> list[tuple[float, float, bool, str]]:
        return [(g.epoch, getattr(g, attribute) * scale, g.allow,
                 f"canary gate {'allowed' if g.allow else 'denied'} at {format_time(g.ts)}")
                for g in gates if getattr(g, attribute) is not None]

    events = sorted([(epoch, f"{c.cause}: {c.to_mode}") for c in data.mode_changes
                     if (epoch := epoch_seconds(c.ts)) is not None]
                    + [(epoch, f"chaos {c.mode}") for c in data.chaos
                       if not c.failed and (epoch := epoch_seconds(c.ts)) is not None])
    error_limit = None if limits.max_error_rate is None else limits.max_error_rate * 100
    charts = [
        line_chart("Error rate (%)", series("error_rate_max", 100), error_limit, gate_marks("error_rate", 100),
                   events, "%", ceiling=100),
        line_chart("P99 latency (ms)", series("p99_ms_max", 1), limits.max_p99_ms, gate_marks("p99_ms", 1), events,
                   " ms"),
    ]
    folded = (f" {data.gate_points.folded} canary gates between the first and last "
              f"{len(data.gate_points.head)} are not drawn." if data.gate_points.folded else "")
    note = (f"Each point is the worst status scrape of one period of {duration_text(period)} per track; a gap is a "
            "time the track did not run (or no scrape saw it). Diamonds are canary gates (filled red: denied), "
            "at the figures OPA was asked about. "
            + ("Dotted purple lines are mode changes and chaos injections. " if len(events) <= MAX_EVENT_LINES else
               f"The {len(events)} mode changes and chaos injections are too many to draw; the tables list them. ")
            + "The dashed red line is the canary policy's limit"
            + ("" if error_limit is not None or limits.max_p99_ms is not None else " (unknown: no policy data)")
            + "." + folded)
    return charts + [f"<p class=\"note\">{escape(note)}</p>"]


def _periods(data: AuditData) -> str:
    if not data.periods:
        return ""
    rows = [(_time(iso_time(period.start)), _code(name), str(f.scrapes) + (f" ({f.down} down)" if f.down else ""),
             f"{format_percent(f.error_rate_mean)} / {format_percent(f.error_rate_max)}",
             f"{format_ms(f.p99_ms_mean)} / {format_ms(f.p99_ms_max)}", format_number(f.req_per_s_mean))
            for period in data.periods for name, f in period.tracks.items()]
    table = _table(("Period from (UTC)", "Track", "Scrapes", "Error rate mean / max", "P99 mean / max",
                    "Req/s mean"), rows)
    return (f"<h2>Status per period ({duration_text(data.period_seconds)})</h2>\n<details><summary>{len(rows)} rows: the "
            f"scrapes of each period folded into its mean and worst figures</summary>\n{table}\n</details>")


def _section(title: str, headers: tuple[str, ...], items: Folded, cells, note: str = "",
             failed=lambda item: False) -> str:
    if not items.total:
        return f"<h2>{escape(title)}</h2>\n<p>None recorded.</p>"
    rows = [(cells(item), failed(item)) for item in items.head]
    if items.folded:
        rows.append(((f"{items.folded} more folded here (the first {len(items.head)} and the last "
                      f"{len(items.tail)} are shown)",), "folded"))
    rows += [(cells(item), failed(item)) for item in items.tail]
    html = f"<h2>{escape(title)}</h2>\n" + _table(headers, rows, classified=True)
    return html + (f"\n<p class=\"note\">{escape(note)}</p>" if note else "")


def _table(headers: tuple[str, ...], rows: list, classified: bool = False) -> str:
    lines = ["<table>", "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>"]
    for row in rows:
        cells, kind = row if classified else (row, False)
        if kind == "folded":
            lines.append(f"<tr class=\"folded\"><td colspan=\"{len(headers)}\">{escape(cells[0])}</td></tr>")
            continue
        opening = "<tr class=\"failed\">" if kind else "<tr>"
        lines.append(opening + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return "\n".join(lines + ["</table>"])


def _violation_cells(v: Violation) -> tuple[str, ...]:
    if v.source == "status":
        source = "status scrapes"
    else:
        source = f"{_code(v.operation)} {'gate, OPA unavailable' if v.source == 'unavailable' else 'gate denied'}"
    reasons = "<br>".join(_text(reason) for reason in v.reasons) or "no reasons given"
    inputs = "<br>".join(f"{_code(name)} {_value(value)}" for name, value in v.inputs) or "-"
    return (_time(v.first_ts), _time(v.last_ts), _code(v.policy), source, str(v.count), reasons, inputs)


def _details(entry: TimelineEntry) -> str:
    if entry.unknown_kind:
        return ", ".join(f"{_text(name)} {_value(value)}" for name, value in entry.details) or "-"
    return ", ".join(_detail(name, value) for name, value in entry.details) or "-"


def _text(value) -> str:
    return escape(" ".join(str(value).split())) or "-"


def _code(value) -> str:
    return f"<code>{escape(str(value))}</code>"


def _time(ts) -> str:
    return escape(format_time(str(ts)))


def _value(value, limit: int = 200) -> str:
    """Any JSON value from the history in one cell: numbers as numbers, the rest as text, cut at `limit`."""
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return escape(format_number(value, 6))
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _text(text if len(text) <= limit else text[:limit] + "...")


def _versions(stable, canary) -> str:
    shown = [f"{label} {_code(version)}" for label, version in (("stable", stable), ("canary", canary)) if version]
    return ", ".join(shown) or "-"


def _parameters(rate, duration) -> str:
    shown = [f"rate {_value(rate)}" if rate is not None else "",
             f"duration {_value(duration)} s" if duration is not None else ""]
    return ", ".join(part for part in shown if part) or "-"


def _detail(name: str, value) -> str:
    return detail(name, value, _code, _value, _text)
