"""promote:canary, promote:stable, rollback: each converges to its target, then edits manifest.yaml in place."""

from .actions import hold_stack_lock, load_stack, operator_action, recorded


def task_promote():
    """Promote a release: canary (start the canary track) or stable (gated by the canary's metrics)."""
    yield {"basename": "promote", "name": None, "doc": "Promote a release: promote:canary, then promote:stable"}
    yield {"name": "canary", "doc": "pass the infra gate, start the canary track beside stable, route its weight",
           "actions": [promote_canary], "task_dep": ["init"], "uptodate": [False], "verbosity": 2}
    yield {"name": "stable", "doc": "if the canary gate allows it, make the canary's version stable",
           "actions": [promote_stable], "task_dep": ["init"], "uptodate": [False], "verbosity": 2}


def task_rollback():
    """Return to the last confirmed stable release and drop the canary (never blocked by a policy)."""
    return {"actions": [rollback], "task_dep": ["init"], "uptodate": [False], "verbosity": 2}


@operator_action
def promote_canary():
    from swiftdeploy.converge import operations

    hold_stack_lock("promote:canary")
    stack = load_stack()
    before = stack.manifest.services.mode
    outcome = recorded(stack, "promote", {"to": "canary"}, lambda: operations.promote_canary(stack))
    services = outcome.manifest.services
    stack.history.append("promote", to="canary", outcome="ok", from_mode=before, version=services.version,
                         canary_version=services.canary.version, weight=services.canary.weight, seen=outcome.seen,
                         steps=outcome.steps)
    print(f"canary {services.canary.version} is serving {services.canary.weight}% of traffic beside stable "
          f"{services.version}; manifest.yaml now says mode: canary")


@operator_action
def promote_stable():
    from swiftdeploy.converge import operations

    hold_stack_lock("promote:stable")
    stack = load_stack()
    before = stack.manifest.services
    outcome = recorded(stack, "promote", {"to": "stable"}, lambda: operations.promote_stable(stack))
    services = outcome.manifest.services
    stack.history.append("promote", to="stable", outcome="ok", from_mode=before.mode, version=services.version,
                         canary_version=before.canary.version, weight=before.canary.weight, seen=outcome.seen,
                         steps=outcome.steps)
    print(f"stable is now {services.version}; the canary track is gone; manifest.yaml says mode: stable")


@operator_action
def rollback():
    from swiftdeploy.converge import operations

    hold_stack_lock("rollback")
    stack = load_stack()
    before = stack.manifest.services.mode
    outcome = recorded(stack, "rollback", {}, lambda: operations.rollback(stack))
    services = outcome.manifest.services
    stack.history.append("rollback", outcome="ok", from_mode=before, version=services.version, seen=outcome.seen,
                         steps=outcome.steps)
    print(f"rolled back: all traffic on stable {services.version}; manifest.yaml says mode: stable")
