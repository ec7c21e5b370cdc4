"""Gates: ask OPA, never cache the answer."""

from .actions import not_implemented


def task_infra_gate():
    """Ask OPA whether this host may take a deploy (disk, load, memory facts)."""
    return {"basename": "infra-gate", "actions": [not_implemented], "task_dep": ["init"],
            "uptodate": [False], "verbosity": 2}


def task_canary_gate():
    """Ask OPA whether the canary's windowed error rate and P99 allow promotion."""
    return {"basename": "canary-gate", "actions": [not_implemented], "uptodate": [False], "verbosity": 2}
