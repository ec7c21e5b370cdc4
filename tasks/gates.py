"""Gates on their own: ask OPA, never cache the answer. A denial fails with OPA's reasons.

deploy, promote:canary and promote:stable ask their gate as a step of their plan, right before the
first step that needs it: a deploy with nothing to start asks nothing.
"""

from .actions import hold_stack_lock, load_stack, operator_action


def task_infra_gate():
    """Ask OPA whether this host may take a deploy (disk, load, memory facts)."""
    return {"basename": "infra-gate", "actions": [infra_gate], "task_dep": ["init"],
            "uptodate": [False], "verbosity": 2}


def task_canary_gate():
    """Ask OPA whether the canary's windowed error rate and P99 allow promotion."""
    return {"basename": "canary-gate", "actions": [canary_gate], "task_dep": ["init"],
            "uptodate": [False], "verbosity": 2}


@operator_action
def infra_gate():
    from swiftdeploy.gates import run_gate

    hold_stack_lock("infra-gate")
    stack = load_stack()
    opa = [c for c in stack.runtime.containers() if c.role == "opa" and c.state == "running"]
    if not opa:
        stack.runtime.up(["opa"], no_deps=True)  # OPA decides, so it is the one service started to ask
    decision = run_gate(stack, "infra", "infra-gate")
    return {"allow": decision.allow}


@operator_action
def canary_gate():
    from swiftdeploy.gates import run_gate
    from swiftdeploy.operations import require_canary

    hold_stack_lock("canary-gate")
    stack = load_stack()
    require_canary(stack.manifest, "the canary gate")
    decision = run_gate(stack, "canary", "promote:stable")
    return {"allow": decision.allow}
