"""One time-series chart as inline SVG: a polyline per track (broken where the track has no figure), the
policy limit as a dashed line, gate decisions as diamonds, axes with time and value ticks. Pure text out."""

import math
import sys
from dataclasses import dataclass
from html import escape

from ..present.dashboard import format_number
from .periods import iso_time

WIDTH, HEIGHT = 960, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 130, 30, 40  # the legend sits in the right margin
MAX_EVENT_LINES = 40  # more mode changes and chaos than this would hide the curves: the tables list them
COLOURS = {"stable": "#1f6feb", "canary": "#d97706"}
LIMIT_COLOUR, DENIED_COLOUR, ALLOWED_COLOUR = "#cf222e", "#cf222e", "#1a7f37"


@dataclass(frozen=True)
class Series:
    name: str  # a track
    spans: list  # (start, end, value or None): one period each, seconds since 1970, in time order


def line_chart(title: str, series: list[Series], limit: float | None, gates: list, events: list, unit: str,
               ceiling: float | None = None) -> str:
    """gates: (seconds since 1970, value, allowed, label) each; events: (seconds since 1970, label) each, drawn
    as dotted vertical lines (mode changes, chaos). ceiling: the highest value the figure can take (100 %)."""
    series = [Series(s.name, [(start, end, v if v is not None and math.isfinite(v) else None)
                              for start, end, v in s.spans]) for s in series]  # a mean may overflow to inf
    gates = [g for g in gates if math.isfinite(g[1])]
    values = [v for s in series for _, _, v in s.spans if v is not None] + [g[1] for g in gates]
    if not values:
        return f'<p class="note">{escape(title)}: no figure recorded.</p>'
    times = ([t for s in series for start, end, _ in s.spans for t in (start, end)] + [g[0] for g in gates]
             + [t for t, _ in events])
    t0, t1 = min(times), max(times)
    if t1 - t0 < 1:
        t0, t1 = t0 - 30, t1 + 30
    top = _nice_ceiling(max(values + ([limit] if limit is not None else []) + [0]) * 1.05)
    top = min(top, ceiling) if ceiling and max(values) <= ceiling else top

    def x(t: float) -> float:
        return LEFT + (t - t0) / (t1 - t0) * (WIDTH - LEFT - RIGHT)

    def y(v: float) -> float:
        return HEIGHT - BOTTOM - v / top * (HEIGHT - TOP - BOTTOM)

    parts = [f'<svg width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
             'style="max-width:100%;height:auto" font-family="sans-serif" font-size="11">',
             f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>']
    parts += _axes(t0, t1, top, x, y, unit)
    if len(events) <= MAX_EVENT_LINES:
        parts += _events(events, x)
    if limit is not None:
        parts.append(f'<line x1="{LEFT}" y1="{y(limit):.1f}" x2="{WIDTH - RIGHT}" y2="{y(limit):.1f}" '
                     f'stroke="{LIMIT_COLOUR}" stroke-dasharray="6 4"/>')
    for s in series:
        colour = COLOURS.get(s.name, "#57606a")
        for run in _runs(s.spans):
            points = " ".join(f"{x((start + end) / 2):.1f},{y(v):.1f}" for start, end, v in run)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
            parts += [f'<circle cx="{x((start + end) / 2):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>'
                      for start, end, v in run]
    size = 6 if len(gates) <= 60 else 3  # many gates: small marks that do not hide the curves
    for t, v, allowed, label in gates:
        cx, cy = x(t), y(v)
        fill, stroke = ("#ffffff", ALLOWED_COLOUR) if allowed else (DENIED_COLOUR, DENIED_COLOUR)
        parts.append(f'<path d="M{cx:.1f},{cy - size:.1f} l{size},{size} l-{size},{size} l-{size},-{size} z" '
                     f'fill="{fill}" stroke="{stroke}" stroke-width="{size / 3:g}">'
                     f'<title>{escape(label)}: {escape(format_number(v))}{unit}</title></path>')
    parts += _legend([s.name for s in series], limit is not None, gates)
    return "\n".join(parts + ["</svg>"])


def _events(events: list, x) -> list[str]:
    """A dotted line per event; its label on the first of two rows where it does not overlap the previous
    label, else only as the line's tooltip."""
    parts, row_ends = [], [float("-inf"), float("-inf")]
    for t, label in events:
        at = x(t)
        parts.append(f'<line x1="{at:.1f}" y1="{TOP}" x2="{at:.1f}" y2="{HEIGHT - BOTTOM}" stroke="#8250df" '
                     f'stroke-dasharray="2 3"><title>{escape(label)}</title></line>')
        width = 6 * len(label)  # about 6 px a character at font-size 10
        anchor, left = ("end", at - 3 - width) if at + 3 + width > WIDTH - RIGHT else ("start", at + 3)
        row = next((i for i, end in enumerate(row_ends) if left > end + 6), None)
        if row is None:
            continue
        text_x = left + width if anchor == "end" else left
        parts.append(f'<text x="{text_x:.1f}" y="{TOP + 9 + 11 * row}" text-anchor="{anchor}" fill="#8250df" '
                     f'font-size="10">{escape(label)}</text>')
        row_ends[row] = left + width
    return parts


def _runs(spans: list) -> list[list]:
    """Consecutive periods with a figure; a missing period or a None figure starts a new run."""
    runs, previous_end = [], None
    for start, end, value in spans:
        if value is None:
            previous_end = None
            continue
        if previous_end != start or not runs:
            runs.append([])
        runs[-1].append((start, end, value))
        previous_end = end
    return runs


def _axes(t0: float, t1: float, top: float, x, y, unit: str) -> list[str]:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    parts = [f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#57606a"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#57606a"/>']
    for step in range(5):
        value = top * step / 4
        parts += [f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{right}" y2="{y(value):.1f}" stroke="#eaeef2"/>',
                  f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
                  f'{escape(format_number(value))}{escape(unit)}</text>']
    label = _time_label(t1 - t0)
    step = next((s for s in _TIME_STEPS if (t1 - t0) / s <= 7), _TIME_STEPS[-1])
    while (t1 - t0) / step > 7:
        step *= 2
    first = -(-t0 // step) * step
    for t in (first + i * step for i in range(int((t1 - first) // step) + 1)):
        parts += [f'<line x1="{x(t):.1f}" y1="{bottom}" x2="{x(t):.1f}" y2="{bottom + 4}" stroke="#57606a"/>',
                  f'<text x="{x(t):.1f}" y="{bottom + 17}" text-anchor="middle">{escape(label(t))}</text>']
    return parts + [f'<text x="{(LEFT + right) / 2:.0f}" y="{HEIGHT - 4}" text-anchor="middle" fill="#57606a">'
                    'time (UTC)</text>']


def _legend(names: list[str], has_limit: bool, gates: list) -> list[str]:
    rows = [(f'<line x1="0" y1="0" x2="18" y2="0" stroke="{COLOURS.get(name, "#57606a")}" stroke-width="2"/>',
             name) for name in names]
    if has_limit:
        rows.append((f'<line x1="0" y1="0" x2="18" y2="0" stroke="{LIMIT_COLOUR}" stroke-dasharray="6 4"/>',
                     "policy limit"))
    if any(not g[2] for g in gates):
        rows.append((f'<path d="M9,-6 l6,6 l-6,6 l-6,-6 z" fill="{DENIED_COLOUR}"/>', "gate denied"))
    if any(g[2] for g in gates):
        rows.append((f'<path d="M9,-6 l6,6 l-6,6 l-6,-6 z" fill="#ffffff" stroke="{ALLOWED_COLOUR}" '
                     'stroke-width="2"/>', "gate allowed"))
    left = WIDTH - RIGHT + 14
    return [f'<g transform="translate({left},{TOP + 10 + 20 * i})">{mark}<text x="24" y="4">{escape(text)}</text></g>'
            for i, (mark, text) in enumerate(rows)]


_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600,
               86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)  # time ticks fall on multiples of these


def _time_label(span: float):
    layout = "%H:%M:%S" if span < 300 else "%H:%M" if span < 86400 else "%m-%d %H:%M" if span < 30 * 86400 \
        else "%Y-%m-%d"

    return lambda t: iso_time(t, layout)


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above value (a readable axis top); 1 for 0."""
    if not value > 0:
        return 1.0
    if not math.isfinite(value) or value > 1e300:  # figures near the float limit: no rounding up past it
        return sys.float_info.max
    scale = 10.0 ** math.floor(math.log10(value))
    return next(scale * m for m in (1, 2, 2.5, 5, 10) if scale * m >= value)
