"""promote:canary, promote:stable, rollback: each edits manifest.yaml in place once it has happened."""

from .actions import hold_stack_lock, load_stack, operator_action, recorded


def task_promote():
    """Promote a release: canary (start the canary track) or stable (gated by the canary's metrics)."""
    yield {"basename": "promote", "name": None, "doc": "Promote a release: promote:canary, then promote:stable"}
    yield {"name": "canary", "doc": "pass the infra gate, start the canary track beside stable, route its weight",
           "actions": [promote_canary], "task_dep": ["init"], "uptodate": [False], "verbosity": 2}
    yield {"name": "stable", "doc": "if the canary gate allows it, make the canary's version stable",
           "actions": [promote_stable], "task_dep": ["init", "canary-gate"], "uptodate": [False], "verbosity": 2}


def task_rollback():
    """Drop the canary now and send all traffic to stable (never blocked by the canary policy)."""
    return {"actions": [rollback], "task_dep": ["init"], "uptodate": [False], "verbosity": 2}


@operator_action
def promote_canary():
    from swiftdeploy.gates import ask, infra_facts
    from swiftdeploy.rollout import promote_canary as start_canary

    hold_stack_lock("promote:canary")
    stack = load_stack()
    ask(stack, "infra", "promote:canary", infra_facts(stack))
    new = recorded(stack, "promote", {"to": "canary"}, lambda: start_canary(stack))
    c = new.services.canary
    print(f"canary {c.version} is serving {c.weight}% of traffic beside stable {new.services.version}; "
          "manifest.yaml now says mode: canary")


@operator_action
def promote_stable():
    from . import gates
    from swiftdeploy.rollout import promote_stable as make_stable

    if "canary" not in gates.passed:  # `doit -s` skips task_dep: the gate still runs
        failed = gates.canary_gate()
        if failed is not None and not isinstance(failed, dict):
            return failed
    hold_stack_lock("promote:stable")
    stack = load_stack()
    new = recorded(stack, "promote", {"to": "stable"}, lambda: make_stable(stack))
    print(f"stable is now {new.services.version}; the canary track is gone; manifest.yaml says mode: stable")


@operator_action
def rollback():
    from swiftdeploy.rollout import rollback as drop_canary

    hold_stack_lock("rollback")
    stack = load_stack()
    new = recorded(stack, "rollback", {}, lambda: drop_canary(stack))
    print(f"rolled back: all traffic on stable {new.services.version}; manifest.yaml says mode: stable")

