"""Where a rollout is, for `status`: .swiftdeploy/rollout.json, rewritten by the rollout at every analysis.

Whether it still runs is not stored: a running rollout holds the stack lock, which the kernel drops when
its process dies, so the lock's holder says it.
"""

import json

from ..files import write_atomic
from .lock import holder

FILE = "rollout.json"


def save(stack, state: dict) -> None:
    write_atomic(stack.state_dir / FILE, json.dumps(state) + "\n")


def load(stack) -> dict | None:
    try:
        state = json.loads((stack.state_dir / FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def clear(stack) -> None:
    try:
        (stack.state_dir / FILE).unlink()
    except FileNotFoundError:
        pass


def rollout_progress(stack) -> str | None:
    """One status line: the step, the weight, the last verdicts; or that a rollout stopped midway."""
    state = load(stack)
    try:
        where = f"step {state['step']}/{state['steps']} at {state['weight']}%"
        verdicts = ", ".join(state.get("verdicts", [])[-5:]) or "none yet"
    except (TypeError, KeyError):
        return None
    running = (holder(stack.state_dir / "lock") or {}).get("operation") == "rollout"
    if not running and stack.manifest.services.mode != "canary":
        return None  # the canary is gone (a rollback, a promotion): nothing stopped midway is left to go on with
    if running:
        return f"rollout: {where} for {state.get('at_step_seconds', 0):.0f} s; last verdicts: {verdicts}"
    return (f"rollout stopped at {where} (last verdicts: {verdicts}); ./swiftdeploy rollout goes on, "
            "./swiftdeploy rollback drops the canary")
