"""promote:canary, promote:stable, rollback."""

from .actions import not_implemented


def task_promote():
    """Promote a release: canary (start the canary track) or stable (gated by the canary's metrics)."""
    yield {"basename": "promote", "name": None, "doc": "Promote a release: promote:canary, then promote:stable"}
    yield {"name": "canary", "doc": "start the canary track beside stable and route the canary weight to it",
           "actions": [not_implemented], "uptodate": [False], "verbosity": 2}
    yield {"name": "stable", "doc": "make the canary's version stable if the canary gate allows it",
           "actions": [not_implemented], "task_dep": ["canary-gate"], "uptodate": [False], "verbosity": 2}


def task_rollback():
    """Drop the canary now and send all traffic to stable (never blocked by the canary policy)."""
    return {"actions": [not_implemented], "uptodate": [False], "verbosity": 2}
