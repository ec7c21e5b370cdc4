"""`--format json`: one JSON document per command on stdout, with stable keys, for CI to read.

Every key below is always present (null when it does not apply), so a consumer never has to test for one.
A gate's document also carries any other field OPA's decision has (a canary "verdict", "notes"), unchanged.
"""

import json
from dataclasses import asdict

# A gate's exit code: what CI branches on.
ALLOWED, DENIED, UNDECIDED = 0, 1, 2
GATE_KEYS = ("gate", "decision", "allow", "reasons", "input", "error", "exit_code")


def gate_document(gate: str, decision=None, facts: dict | None = None, error: str | None = None) -> dict:
    """The answer to one gate; `decision` (a policy.Decision) when OPA gave one, else `error` says why not."""
    if decision is None:
        return {"gate": gate, "decision": "unknown", "allow": None, "reasons": [], "input": facts,
                "error": error or "no decision", "exit_code": UNDECIDED}
    document = {"gate": gate, "decision": "allow" if decision.allow else "deny", "allow": decision.allow,
                "reasons": list(decision.reasons), "input": decision.input, "error": None,
                "exit_code": ALLOWED if decision.allow else DENIED}
    result = decision.raw.get("result")
    extras = {key: value for key, value in result.items() if key not in GATE_KEYS} if isinstance(result, dict) else {}
    if "decision_id" in decision.raw:
        extras.setdefault("decision_id", decision.raw["decision_id"])
    return {**document, **extras}


def status_document(snapshot=None, error: str | None = None) -> dict:
    """One status frame (a dashboard.Snapshot): each track's figures, each policy's answer, the notes."""
    if snapshot is None:
        return {"ts": None, "mode": None, "chaos": None, "tracks": {}, "policies": {}, "notes": [],
                "error": error or "no frame", "exit_code": 1}
    return {
        "ts": snapshot.ts,
        "mode": snapshot.mode,
        "chaos": snapshot.chaos,
        "tracks": {name: asdict(figures) for name, figures in snapshot.tracks().items()},
        "policies": {domain: {"decision": {True: "allow", False: "deny"}.get(result.allow, "unknown"),
                              "allow": result.allow, "reasons": list(result.reasons), "error": result.error}
                     for domain, result in snapshot.ordered_policies()},
        "notes": list(snapshot.notes),
        "error": None,
        "exit_code": 0,
    }


def plan_document(report=None, error: str | None = None) -> dict:
    """What deploy would do (a report_plan.PlanReport); exit 0 nothing to do, 2 changes pending, 1 error."""
    if report is None:
        return {"changes": None, "files": [], "drift": [], "steps": [], "interrupted": None,
                "error": error or "no plan", "exit_code": 1}
    return {
        "changes": report.changes,
        "files": [{"path": path, "change": change} for path, change in report.files.items()],
        "drift": list(report.drift),
        "steps": list(report.steps),
        "interrupted": report.interrupted,
        "error": None,
        "exit_code": 2 if report.changes else 0,
    }


def emit(document: dict) -> None:
    print(json.dumps(document, indent=2), flush=True)
