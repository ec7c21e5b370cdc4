"""The audit report (O-7): history records -> AuditData (figures only) -> GitHub-Flavored Markdown.

audit_data() is the one place that interprets the history; report_markdown.render_markdown() only lays AuditData out.
Both are pure and deterministic: the same records give the same bytes (the period comes from the data,
never from the clock). A record of an unknown kind counts as "other"; a record without ts/event, or
without the fields its kind needs (docs/CONTRACTS.md), counts as "malformed"; neither raises.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .dashboard import MalformedStatus, Snapshot, TrackFigures, snapshot_from_record

EVENT_KINDS = ("deploy", "promote", "rollback", "chaos", "gate", "gate_unavailable", "status", "teardown")
DOWN, UNKNOWN = "down", "unknown"
# A figure inside a reason ("error_rate 0.9 is above the limit 0.01"), not a digit inside a name (load_1m).
_FIGURE = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class TimelineEntry:
    ts: str
    event: str  # "deploy", "promote to canary", "chaos error", "gate denied", ...
    failed: bool  # the operation's outcome was "failed"
    mode_after: str
    details: tuple[tuple[str, object], ...]  # (record field, value) pairs worth showing, in order


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
    timeline: tuple[TimelineEntry, ...]
    mode_changes: tuple[ModeChange, ...]
    chaos: tuple[ChaosInjection, ...]
    violations: tuple[Violation, ...]
    tracks: tuple[TrackSummary, ...]


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
}


class _Auditor:
    """Reads records in file order, keeping the mode the stack is in and the open runs of failing scrapes."""

    def __init__(self):
        self.counts = dict.fromkeys(EVENT_KINDS + ("other", "malformed"), 0)
        self.times: list[str] = []
        self.mode = UNKNOWN
        self.timeline, self.mode_changes, self.chaos = [], [], []
        self.violations: list[dict] = []
        self.open_runs: dict[str, tuple[tuple, dict]] = {}  # policy -> (reasons shape, its violation)
        self.tracks: dict[str, list[TrackFigures]] = {"stable": [], "canary": []}

    def take(self, record) -> None:
        kind = record.get("event") if isinstance(record, dict) else None
        if not (_text_field(kind) and _text_field(record.get("ts"))):
            self.counts["malformed"] += 1
            return
        if kind not in EVENT_KINDS:
            self.counts["other"] += 1
            self.times.append(record["ts"])
            return
        payload = _checked(kind, record)
        if payload is None:
            self.counts["malformed"] += 1
            return
        self.counts[kind] += 1
        self.times.append(record["ts"])
        getattr(self, f"_{kind}")(payload)

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
        if not failed and mode_after != self.mode:
            self.mode_changes.append(ModeChange(r["ts"], self.mode, mode_after, r["event"], r.get("version"),
                                                r.get("canary_version")))
            self.mode = mode_after
        self._log(r, label, failed, shown)

    def _chaos(self, r: dict) -> None:
        failed = r["outcome"] != "ok"
        self.chaos.append(ChaosInjection(r["ts"], r["mode"], failed, r.get("rate"), r.get("duration"),
                                         r.get("status_code"), r.get("error")))
        self._log(r, f"chaos {r['mode']}", failed, ("rate", "duration", "status_code", "error"))

    def _gate(self, r: dict) -> None:
        if not r["allow"]:
            self._violation(r["ts"], r["domain"], "gate", r["operation"], tuple(r["reasons"]))
            self._log(r, "gate denied", False, ("domain", "operation", "reasons"))

    def _gate_unavailable(self, r: dict) -> None:
        why = f"could not ask OPA: {r.get('error') or 'no error given'}"
        self._violation(r["ts"], r["domain"], "unavailable", r["operation"], (why,))
        self._log(r, "gate unavailable", False, ("domain", "operation", "error"))

    def _status(self, snapshot: Snapshot) -> None:
        if self.mode == UNKNOWN:
            self.mode = snapshot.mode  # the history began after the last deploy: trust what was seen
        for name, figures in snapshot.tracks().items():
            self.tracks[name].append(figures)
        for policy, result in snapshot.ordered_policies():
            if result.allow is True:
                self.open_runs.pop(policy, None)
                continue
            reasons = (result.explanation,) if result.allow is None else result.reasons
            shape = tuple(_FIGURE.sub("#", reason) for reason in reasons)
            run = self.open_runs.get(policy)
            if run and run[0] == shape:
                run[1]["last_ts"], run[1]["count"] = snapshot.ts, run[1]["count"] + 1
            else:
                self.open_runs[policy] = (shape, self._violation(snapshot.ts, policy, "status", None, reasons))
        for policy in set(self.open_runs) - set(snapshot.policies):
            del self.open_runs[policy]  # not evaluated in this scrape (stable mode has no canary policy)

    def _violation(self, ts, policy, source, operation, reasons) -> dict:
        self.violations.append(dict(first_ts=ts, last_ts=ts, policy=policy, source=source,
                                    operation=operation, count=1, reasons=tuple(reasons)))
        return self.violations[-1]

    def _log(self, r: dict, label: str, failed: bool, shown: tuple[str, ...]) -> None:
        details = tuple((name, r[name]) for name in shown if r.get(name) is not None)
        self.timeline.append(TimelineEntry(r["ts"], label, failed, self.mode, details))

    def result(self) -> AuditData:
        tracks = tuple(_track_summary(name, figures) for name, figures in self.tracks.items() if figures)
        return AuditData(
            first_ts=min(self.times, default=None), last_ts=max(self.times, default=None),
            records=sum(self.counts.values()), counts=dict(self.counts), final_mode=self.mode,
            timeline=tuple(self.timeline), mode_changes=tuple(self.mode_changes), chaos=tuple(self.chaos),
            violations=tuple(Violation(**v) for v in self.violations), tracks=tracks)


def _checked(kind: str, record: dict) -> dict | Snapshot | None:
    """What the handler of `kind` reads (the record, or a Snapshot for status); None when malformed."""
    if kind == "status":
        try:
            return snapshot_from_record(record)
        except MalformedStatus:
            return None
    if not all(name in record and check(record[name]) for name, check in _REQUIRED[kind].items()):
        return None
    if kind == "deploy" and record["outcome"] == "ok" and not _text_field(record.get("mode")):
        return None
    return record


def _track_summary(name: str, scrapes: list) -> TrackSummary:
    def highest(attribute):
        return max((getattr(f, attribute) for f in scrapes if getattr(f, attribute) is not None), default=None)
    return TrackSummary(name, len(scrapes), highest("req_per_s"), highest("error_rate"), highest("p99_ms"))
