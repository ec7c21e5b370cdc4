"""The audit report's layout: AuditData -> GitHub-Flavored Markdown (report.py computes the figures).

Free text is backslash-escaped; identifiers go in code spans; every table row has the header's cells.
A list folded by report.py shows its first and last rows with one row between saying how many were folded.
"""

import json
import re

from ..present.dashboard import format_ms, format_number, format_percent, format_time
from .audit import EVENT_KINDS, AuditData, ChaosInjection, Folded, TimelineEntry, Violation, detail
from .periods import duration_text, iso_time

def render_markdown(data: AuditData) -> str:
    violation_note = ("Consecutive status scrapes that fail the same policy for the same reasons (figures aside) "
                      "are one row; its reasons are those of the first scrape.")
    sections = [
        "# SwiftDeploy Audit Report",
        _table(("Item", "Value"), _summary_rows(data)),
        _section("Timeline", ("Time (UTC)", "Event", "Mode after", "Details"), _folded(data.timeline, lambda e: (
            _time(e.ts), _text(e.event + (" (failed)" if e.failed else "")), _code(e.mode_after),
            _details(e) or "-"))),
        _section("Mode changes", ("Time (UTC)", "From", "To", "By", "Versions after"), _folded(
            data.mode_changes, lambda c: (_time(c.ts), _code(c.from_mode), _code(c.to_mode), _text(c.cause),
                                          _versions(c.version, c.canary_version)))),
        _section("Chaos injections", ("Time (UTC)", "Chaos", "Parameters", "Outcome", "App answered"), _folded(
            data.chaos, lambda c: (_time(c.ts), _code(c.mode), _chaos_parameters(c),
                                   f"failed: {_text(c.error)}" if c.failed else "ok",
                                   "-" if c.status_code is None else _number(c.status_code)))),
        _section("Policy violations",
                 ("First seen", "Last seen", "Policy", "Operation/source", "Count", "Reasons"), _folded(
                     data.violations, lambda v: (
                         _time(v.first_ts), _time(v.last_ts), _code(v.policy), _violation_source(v), str(v.count),
                         "; ".join(_text(reason) for reason in v.reasons) or "no reasons given")),
                 note=violation_note),
        _section("Status scrapes", ("Track", "Scrapes", "Max req/s", "Max error rate", "Max P99"), [
            (_code(t.track), str(t.scrapes), format_number(t.max_req_per_s), format_percent(t.max_error_rate),
             format_ms(t.max_p99_ms)) for t in data.tracks]),
        _section(f"Status per period ({duration_text(data.period_seconds)})",
                 ("Period from (UTC)", "Track", "Scrapes", "Error rate mean / max", "P99 mean / max",
                  "Req/s mean"), _period_rows(data), note=_periods_note(data)),
    ]
    return "\n\n".join(sections) + "\n"


def _folded(items: Folded, row) -> list[tuple[str, ...]]:
    rows = [row(item) for item in items.head]
    if items.folded:
        first = rows[0] if rows else ("",)
        rows.append((f"{items.folded} more folded here",) + ("...",) * (len(first) - 1))
    return rows + [row(item) for item in items.tail]


def _period_rows(data: AuditData) -> list[tuple[str, ...]]:
    return [(_time(iso_time(period.start)), _code(name), str(f.scrapes) + (f" ({f.down} down)" if f.down else ""),
             f"{format_percent(f.error_rate_mean)} / {format_percent(f.error_rate_max)}",
             f"{format_ms(f.p99_ms_mean)} / {format_ms(f.p99_ms_max)}", format_number(f.req_per_s_mean))
            for period in data.periods for name, f in period.tracks.items()]


def _periods_note(data: AuditData) -> str:
    return (f"Each row folds the status scrapes of one period ({duration_text(data.period_seconds)}: the period grows "
            "with the history's time span); a period without a row had no scrape of that track.")


def _summary_rows(data: AuditData) -> list[tuple[str, str]]:
    period = f"{_time(data.first_ts)} to {_time(data.last_ts)}" if data.first_ts else "none: no records"
    rows = [("Period (UTC)", period), ("Records", str(data.records)), ("Mode at the end", _code(data.final_mode)),
            ("Mode changes", str(data.mode_changes.total)), ("Chaos injections", str(data.chaos.total)),
            ("Policy violations", f"{data.violations.total} ({data.violation_occurrences} occurrences)")]
    rows += [(f"`{kind}` events", str(count)) for kind, count in data.counts.items() if kind in EVENT_KINDS and count]
    return rows + [("Other events (unknown kind)", str(data.counts["other"])),
                   ("Malformed records (skipped)", str(data.counts["malformed"]))]


def _section(title: str, headers: tuple[str, ...], rows: list, note: str = "") -> str:
    if not rows:
        return f"## {title}\n\nNone recorded."
    return f"## {title}\n\n{_table(headers, rows)}" + (f"\n\n{note}" if note else "")


def _table(headers: tuple[str, ...], rows: list) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# Markdown-significant characters, and underscores that could start or end emphasis (not those inside names).
_SPECIAL = re.compile(r"[\\`*\[\]<>|~&$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _text(value) -> str:
    """Free text as one table cell: specials escaped, whitespace runs folded, line breaks as <br>."""
    lines = [" ".join(line.split()) for line in str(value).splitlines()]
    return "<br>".join(_SPECIAL.sub(lambda m: "\\" + m[0], line) for line in lines if line) or "-"


def _code(value) -> str:
    """An identifier as a code span. A backslash cannot be escaped inside one, so such text stays plain."""
    text = str(value)
    if not text or text != " ".join(text.split()) or "\\" in text:
        return _text(text)
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text[0] == "`" or text[-1] == "`" else ""
    return fence + pad + text.replace("|", "\\|") + pad + fence


def _number(value) -> str:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return format_number(value) if is_number else _text(value)


def _time(ts: str) -> str:
    return _text(format_time(ts))


def _versions(stable, canary) -> str:
    shown = [f"{label} {_code(version)}" for label, version in (("stable", stable), ("canary", canary)) if version]
    return ", ".join(shown) or "-"


def _chaos_parameters(chaos: ChaosInjection) -> str:
    return ", ".join([_detail(name, value) for name, value in (("rate", chaos.rate), ("duration", chaos.duration))
                      if value is not None]) or "-"


def _violation_source(violation: Violation) -> str:
    if violation.source == "status":
        return "status scrapes"
    what = "gate, OPA unavailable" if violation.source == "unavailable" else "gate denied"
    return f"{_code(violation.operation)} {what}"


def _details(entry: TimelineEntry) -> str:
    if entry.unknown_kind:
        return ", ".join(f"{_text(name)} {_any_value(value)}" for name, value in entry.details)
    return ", ".join(_detail(name, value) for name, value in entry.details)


def _any_value(value, limit: int = 200) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _text(text if len(text) <= limit else text[:limit] + "...")


def _detail(name: str, value) -> str:
    return detail(name, value, _code, _number, _text)
