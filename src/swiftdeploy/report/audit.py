"""The audit report (O-7): history records -> AuditData (figures only) -> Markdown and HTML.

audit_data() is the one place that interprets the history; report_markdown.render_markdown() and
report_html.render_html() only lay AuditData out.
Both are pure and deterministic: the same records give the same bytes (the period comes from the data,
never from the clock). A record of an unknown kind counts as "other" and shows in the timeline with its
fields; a record without ts/event, or without the fields its kind needs (docs/CONTRACTS.md), counts as
"malformed"; neither raises.

One pass, bounded memory: records may be a generator over a history of millions. Status scrapes fold into
per-period figures (report_periods.py). Every other list (timeline, mode changes, chaos, violations, gate
points) keeps its first and last KEEP entries and counts the ones folded between: real histories have far
fewer, but a history of a million gate records must not hold a million rows.
"""

import json
import math
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..present.dashboard import MalformedStatus, StatusParts, status_parts
from .periods import Period, PeriodFolder, epoch_seconds

EVENT_KINDS = ("deploy", "promote", "rollback", "chaos", "gate", "gate_unavailable", "status", "teardown",
               "rollout", "rollout_step", "rollout_verdict")
DOWN, UNKNOWN = "down", "unknown"
KEEP = 500
_MAX_TEXT, _MAX_ITEMS = 500, 20  # what one kept entry holds of a string or JSON value, of a list or object
_NOT_DETAILS = ("ts", "event", "chain", "hmac")  # an unknown kind's fields shown as its details, but these
# A figure inside a reason ("error_rate 0.9 is above the limit 0.01"), not a digit inside a name (load_1m).
_FIGURE = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Folded:
    """The first and last entries of a list kept in full, and how many in all (total - kept were folded)."""
    head: tuple
    tail: tuple
    total: int

    @property
    def folded(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def __iter__(self) -> Iterator:
        yield from self.head
        yield from self.tail


class _Kept:
    def __init__(self, keep: int = KEEP):
        self.head, self.tail, self.total, self.keep = [], deque(maxlen=keep), 0, keep

    def add(self, item):
        self.total += 1
        (self.head if len(self.head) < self.keep else self.tail).append(item)
        return item

    def result(self, convert=lambda item: item) -> Folded:
        return Folded(tuple(map(convert, self.head)), tuple(map(convert, self.tail)), self.total)


@dataclass(frozen=True)
class TimelineEntry:
    ts: str
    event: str  # "deploy", "promote to canary", "chaos error", "gate denied", ...
    failed: bool  # the operation's outcome was "failed"
    mode_after: str
    details: tuple[tuple[str, object], ...]  # (record field, value) pairs worth showing, in order
    unknown_kind: bool = False  # an event this report does not know: details are all its fields, as recorded


@dataclass(frozen=True)
class ModeChange:
    ts: str
    from_mode: str
    to_mode: str
    cause: str  # deploy | promote | rollback | teardown
    version: object
    canary_version: object


@dataclass(frozen=True)
class ChaosInjection:
    ts: str
    mode: str  # slow | error | recover
    failed: bool
    rate: object
    duration: object
    status_code: object
    error: object


@dataclass(frozen=True)
class Violation:
    first_ts: str
    last_ts: str
    policy: str
    source: str  # "gate" (a denied operation), "unavailable" (OPA could not be asked) or "status" (scrapes)
    operation: str | None  # the gated operation; None for status scrapes
    count: int
    reasons: tuple[str, ...]  # for a run of scrapes: those of its first scrape
    inputs: tuple[tuple[str, object], ...]  # what OPA was asked (a gate), or the first scrape's track figures


@dataclass(frozen=True)
class GatePoint:
    """A canary gate's input figures, drawn on the canary's curves."""
    ts: str
    epoch: float
    allow: bool
    error_rate: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class TrackSummary:
    track: str
    scrapes: int
    max_req_per_s: float | None
    max_error_rate: float | None
    max_p99_ms: float | None


@dataclass(frozen=True)
class AuditData:
    first_ts: str | None
    last_ts: str | None
    records: int
    counts: Mapping[str, int]  # every kind in EVENT_KINDS, then "other" and "malformed"
    final_mode: str
    timeline: Folded  # of TimelineEntry
    mode_changes: Folded  # of ModeChange
    chaos: Folded  # of ChaosInjection
    violations: Folded  # of Violation
    violation_occurrences: int
    tracks: tuple[TrackSummary, ...]
    period_seconds: int  # the length of each status period
    periods: tuple[Period, ...]  # status scrapes folded per period, oldest first
    gate_points: Folded  # of GatePoint


# How a timeline's Details cell shows a record field: how its value is escaped, and the words around it.
_DETAIL_FORMS = {
    "from_mode": ("code", "from {}"), "version": ("code", "stable {}"), "canary_version": ("code", "canary {}"),
    "weight": ("number", "weight {}%"), "seconds": ("number", "took {} s"), "rate": ("number", "rate {}"),
    "duration": ("number", "duration {} s"), "status_code": ("number", "app answered {}"),
    "domain": ("code", "policy {}"), "operation": ("code", "operation {}"), "error": ("text", "error: {}"),
    "steps": ("number", "steps {}"), "from_step": ("number", "from step {}"), "step": ("number", "step {}"),
    "analyses": ("number", "{} analyses"),
    "policy": ("code", "allowed under policy revision {}"),
}


def detail(name: str, value, code, number, text) -> str:
    """One field of a timeline entry in words; `code`, `number` and `text` are the renderer's own escapes."""
    if name == "reasons":
        return "reasons: " + ("; ".join(text(reason) for reason in value) or "none given")
    if name == "clean":
        return f"{code('generated/')} {'removed' if value is True else 'kept'}"
    if name == "steps" and isinstance(value, list):
        return "steps " + ", ".join(f"{number(weight)}%" for weight in value)
    kind, form = _DETAIL_FORMS[name]
    return form.format({"code": code, "number": number, "text": text}[kind](value))


def audit_data(records: Iterable) -> AuditData:
    auditor = _Auditor()
    for record in records:
        auditor.take(record)
    return auditor.result()


def _text_field(value) -> bool:
    return isinstance(value, str) and value != ""


_OUTCOME = {"outcome": lambda v: v in ("ok", "failed")}
_REQUIRED = {  # kind -> {field: check}: the fields audit_data reads without a default (status: dashboard's)
    "deploy": _OUTCOME, "rollback": _OUTCOME, "teardown": _OUTCOME,
    "promote": {**_OUTCOME, "to": _text_field},
    "chaos": {**_OUTCOME, "mode": _text_field},
    "gate": {"domain": _text_field, "operation": _text_field, "allow": lambda v: isinstance(v, bool),
             "reasons": lambda v: isinstance(v, list) and all(isinstance(r, str) for r in v)},
    "gate_unavailable": {"domain": _text_field, "operation": _text_field},
    "rollout": {"phase": _text_field},
    "rollout_step": {"step": lambda v: isinstance(v, int), "weight": lambda v: isinstance(v, int)},
    "rollout_verdict": {"step": lambda v: isinstance(v, int), "weight": lambda v: isinstance(v, int),
                        "verdict": _text_field,
                        "reasons": lambda v: isinstance(v, list) and all(isinstance(r, str) for r in v)},
}


class _Auditor:
    """Reads records in file order, keeping the mode the stack is in and the open runs of failing scrapes."""

    def __init__(self):
        self.counts = dict.fromkeys(EVENT_KINDS + ("other", "malformed"), 0)
        self.first_ts = self.last_ts = None
        self.mode = UNKNOWN
        self.timeline, self.mode_changes, self.chaos = _Kept(), _Kept(), _Kept()
        self.violations, self.gate_points = _Kept(), _Kept()
        self.occurrences = 0
        self.open_runs: dict[str, tuple[tuple, dict]] = {}  # policy -> (reasons shape, its violation)
        self.tracks = {"stable": _TrackTotals("stable"), "canary": _TrackTotals("canary")}
        self.periods = PeriodFolder()
        self.allowed_under: dict[str, str] = {}  # gated operation -> the policy revision of its last allow
        self.handlers = {kind: getattr(self, f"_{kind}") for kind in EVENT_KINDS}

    def take(self, record) -> None:
        kind = record.get("event") if isinstance(record, dict) else None
        if not (_text_field(kind) and _text_field(record.get("ts"))):
            self.counts["malformed"] += 1
            return
        if kind not in EVENT_KINDS:
            self.counts["other"] += 1
            self._seen(record["ts"])
            self._other(record)
            return
        payload = _checked(kind, record)
        if payload is None:
            self.counts["malformed"] += 1
            return
        self.counts[kind] += 1
        self._seen(record["ts"])
        self.handlers[kind](payload)

    def _seen(self, ts: str) -> None:
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts

    def _deploy(self, r: dict) -> None:
        self._operation(r, "deploy", r.get("mode"), ("version", "canary_version", "seconds", "error"))

    def _promote(self, r: dict) -> None:
        self._operation(r, f"promote to {r['to']}", r["to"],
                        ("from_mode", "version", "canary_version", "weight", "error"))

    def _rollback(self, r: dict) -> None:
        self._operation(r, "rollback", "stable", ("from_mode", "version", "error"))

    def _teardown(self, r: dict) -> None:
        self._operation(r, "teardown", DOWN, ("clean", "error"))

    def _operation(self, r: dict, label: str, mode_after: str, shown: tuple[str, ...]) -> None:
        failed = r["outcome"] != "ok"
        gated = r["event"] if r["event"] != "promote" else f"promote:{r['to']}"
        revision = self.allowed_under.pop(gated, None)
        if revision is not None:  # which policy allowed it (histories from before revisions have none)
            r, shown = {**r, "policy": revision}, (*shown, "policy")
        if not failed and mode_after != self.mode:
            self.mode_changes.add(ModeChange(r["ts"], self.mode, mode_after, r["event"], r.get("version"),
                                             r.get("canary_version")))
            self.mode = mode_after
        self._log(r, label, failed, shown)

    def _chaos(self, r: dict) -> None:
        failed = r["outcome"] != "ok"
        self.chaos.add(ChaosInjection(r["ts"], r["mode"], failed, r.get("rate"), r.get("duration"),
                                      r.get("status_code"), r.get("error")))
        self._log(r, f"chaos {r['mode']}", failed, ("rate", "duration", "status_code", "error"))

    def _gate(self, r: dict) -> None:
        facts = r.get("input") if isinstance(r.get("input"), dict) else {}
        epoch = epoch_seconds(r["ts"])
        if r["domain"] == "canary" and epoch is not None:
            self.gate_points.add(GatePoint(r["ts"], epoch, r["allow"], _number_or_none(facts.get("error_rate")),
                                           _number_or_none(facts.get("p99_ms"))))
        if r["allow"] and _text_field(r.get("policy_revision")):
            self.allowed_under[r["operation"]] = r["policy_revision"]
        if not r["allow"]:
            self._violation(r["ts"], r["domain"], "gate", r["operation"], tuple(r["reasons"]),
                            tuple((name, _bounded(value)) for name, value in list(facts.items())[:_MAX_ITEMS]))
            self._log(r, "gate denied", False, ("domain", "operation", "reasons"))

    def _gate_unavailable(self, r: dict) -> None:
        why = f"could not ask OPA: {r.get('error') or 'no error given'}"
        self._violation(r["ts"], r["domain"], "unavailable", r["operation"], (why,), ())
        self._log(r, "gate unavailable", False, ("domain", "operation", "error"))

    def _rollout(self, r: dict) -> None:
        if r["phase"] == "start":
            self._log(r, "rollout start", False, ("canary_version", "version", "steps", "from_step"))
            return
        outcome = r.get("outcome")
        if outcome == "promoted" and self.mode != "stable":
            self.mode_changes.add(ModeChange(r["ts"], self.mode, "stable", "rollout", r.get("version"), None))
            self.mode = "stable"
        revision = self.allowed_under.pop("rollout", None)
        if revision is not None and outcome == "promoted":
            r = {**r, "policy": revision}
        self._log(r, f"rollout {str(outcome).replace('_', ' ')}", outcome not in ("promoted", "stopped"),
                  ("version", "analyses", "seconds", "reasons", "policy"))

    def _rollout_step(self, r: dict) -> None:
        if self.mode != "canary":
            self.mode_changes.add(ModeChange(r["ts"], self.mode, "canary", "rollout", None, r.get("canary_version")))
            self.mode = "canary"
        self._log(r, f"rollout step {r['step']}/{r.get('steps', '?')}: canary at {r['weight']}%", False,
                  ("canary_version",))

    def _rollout_verdict(self, r: dict) -> None:
        """Every analysis draws a point on the canary's curves; a failed one is a violation."""
        facts = r.get("input") if isinstance(r.get("input"), dict) else {}
        epoch = epoch_seconds(r["ts"])
        if r["verdict"] in ("pass", "fail") and epoch is not None:
            self.gate_points.add(GatePoint(r["ts"], epoch, r["verdict"] == "pass",
                                           _number_or_none(facts.get("error_rate")),
                                           _number_or_none(facts.get("p99_exact_ms", facts.get("p99_ms")))))
        if r["verdict"] == "pass" and _text_field(r.get("policy_revision")):
            self.allowed_under["rollout"] = r["policy_revision"]
        if r["verdict"] == "fail":
            flat = [(name, value) for name, value in facts.items() if not isinstance(value, dict)]
            self._violation(r["ts"], "canary", "gate", f"rollout step {r['step']} ({r['weight']}%)",
                            tuple(r["reasons"]), tuple((n, _bounded(v)) for n, v in flat[:_MAX_ITEMS]))
            self._log(r, "rollout analysis failed", True, ("step", "weight", "reasons"))

    def _status(self, snapshot: StatusParts) -> None:
        if self.mode == UNKNOWN:
            self.mode = snapshot.mode  # the history began after the last deploy: trust what was seen
        tracks = snapshot.tracks
        for name, figures in tracks.items():
            self.tracks[name].add(figures)
        epoch = epoch_seconds(snapshot.ts)
        if epoch is not None:
            self.periods.add(epoch, tracks)
        for policy, result in snapshot.ordered_policies():
            if result.allow is True:
                self.open_runs.pop(policy, None)
                continue
            reasons = (result.explanation,) if result.allow is None else result.reasons
            shape = tuple(_FIGURE.sub("#", reason) for reason in reasons)
            run = self.open_runs.get(policy)
            if run and run[0] == shape:
                run[1]["last_ts"], run[1]["count"] = snapshot.ts, run[1]["count"] + 1
                self.occurrences += 1
            else:
                inputs = _figures_items(tracks[policy]) if policy in tracks else ()
                self.open_runs[policy] = (shape, self._violation(snapshot.ts, policy, "status", None, reasons,
                                                                 inputs))
        if self.open_runs:
            for policy in set(self.open_runs) - set(snapshot.policies):
                del self.open_runs[policy]  # not evaluated in this scrape (stable mode has no canary policy)

    def _other(self, r: dict) -> None:
        details = tuple((name, _bounded(value)) for name, value in r.items() if name not in _NOT_DETAILS)[:_MAX_ITEMS]
        self.timeline.add(TimelineEntry(r["ts"], r["event"], r.get("outcome") == "failed", self.mode, details, True))

    def _violation(self, ts, policy, source, operation, reasons, inputs) -> dict:
        self.occurrences += 1
        return self.violations.add(dict(first_ts=ts, last_ts=ts, policy=policy, source=source,
                                        operation=operation, count=1,
                                        reasons=tuple(_bounded(reason) for reason in reasons[:_MAX_ITEMS]),
                                        inputs=inputs))

    def _log(self, r: dict, label: str, failed: bool, shown: tuple[str, ...]) -> None:
        details = tuple((name, _bounded(r[name])) for name in shown if r.get(name) is not None)
        self.timeline.add(TimelineEntry(r["ts"], label, failed, self.mode, details))

    def result(self) -> AuditData:
        tracks = tuple(totals.summary() for totals in self.tracks.values() if totals.scrapes)
        return AuditData(
            first_ts=self.first_ts, last_ts=self.last_ts, records=sum(self.counts.values()),
            counts=dict(self.counts), final_mode=self.mode, timeline=self.timeline.result(),
            mode_changes=self.mode_changes.result(), chaos=self.chaos.result(),
            violations=self.violations.result(lambda v: Violation(**v)), violation_occurrences=self.occurrences,
            tracks=tracks, period_seconds=self.periods.seconds, periods=self.periods.result(),
            gate_points=self.gate_points.result())


class _TrackTotals:
    def __init__(self, name: str):
        self.name, self.scrapes = name, 0
        self.highest = dict.fromkeys(("req_per_s", "error_rate", "p99_ms"))

    def add(self, figures: dict) -> None:
        """figures: a status record's checked figures of this track."""
        self.scrapes += 1
        for attribute, high in self.highest.items():
            value = figures.get(attribute)
            if value is not None and (high is None or value > high):
                self.highest[attribute] = value

    def summary(self) -> TrackSummary:
        return TrackSummary(self.name, self.scrapes, self.highest["req_per_s"], self.highest["error_rate"],
                            self.highest["p99_ms"])


def _figures_items(figures) -> tuple[tuple[str, object], ...]:
    shown = ("requests", "errors", "error_rate", "p99_ms", "req_per_s", "window_seconds", "down")
    return tuple((name, figures[name]) for name in shown if figures.get(name) is not None)


def _bounded(value):
    """A value as kept in the report: strings and JSON text cut at _MAX_TEXT characters, so that the kept
    entries stay small even when a record carries a huge field (a list of reasons stays a list)."""
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "..."
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [_bounded(item) for item in value[:_MAX_ITEMS]]
    if isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return value if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."
    return value


def _number_or_none(value) -> float | None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return value if is_number and math.isfinite(value) else None


def _checked(kind: str, record: dict) -> dict | StatusParts | None:
    """What the handler of `kind` reads (the record, or its checked parts for status); None when malformed."""
    if kind == "status":
        try:
            return status_parts(record)
        except MalformedStatus:
            return None
    if not all(name in record and check(record[name]) for name, check in _REQUIRED[kind].items()):
        return None
    if kind == "deploy" and record["outcome"] == "ok" and not _text_field(record.get("mode")):
        return None
    return record
