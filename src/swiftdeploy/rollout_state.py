"""Where a rollout is, for `status`: .swiftdeploy/rollout.json, rewritten by the rollout at every analysis."""

import json
import os
import time

from .files import write_atomic

FILE = "rollout.json"


def save(stack, state: dict) -> None:
    write_atomic(stack.state_dir / FILE, json.dumps({**state, "pid": os.getpid(), "updated": time.time()}) + "\n")


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
        fresh = time.time() - float(state["updated"]) < max(60.0, 3 * float(state.get("interval", 10)))
        alive = fresh and _alive(int(state["pid"]))
    except (TypeError, KeyError, ValueError):
        return None
    if alive:
        return f"rollout: {where} for {state.get('at_step_seconds', 0):.0f} s; last verdicts: {verdicts}"
    return (f"rollout stopped at {where} (last verdicts: {verdicts}); ./swiftdeploy rollout goes on, "
            "./swiftdeploy rollback drops the canary")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
