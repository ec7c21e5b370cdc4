"""Gates: ask OPA, never cache the answer. A denial stops the chain with OPA's reasons."""

from .actions import hold_stack_lock, load_stack, operator_action

ROLLBACK_HINT = "to drop the canary instead: ./swiftdeploy rollback (doit rollback)"
passed: set[str] = set()  # gates passed in this run: promote:stable re-checks even under `doit -s`


def task_infra_gate():
    """Ask OPA whether this host may take a deploy (disk, load, memory facts)."""
    return {"basename": "infra-gate", "actions": [infra_gate], "task_dep": ["init"],
            "uptodate": [False], "verbosity": 2}


def task_canary_gate():
    """Ask OPA whether the canary's windowed error rate and P99 allow promotion."""
    return {"basename": "canary-gate", "actions": [canary_gate], "task_dep": ["init"],
            "uptodate": [False], "verbosity": 2}


@operator_action
def infra_gate(operation="deploy"):
    from swiftdeploy.gates import GateDenied, ask, infra_facts, wait_for_opa

    hold_stack_lock(operation)
    stack = load_stack()
    running = stack.runtime.running()
    if running.get("opa", {}).get("State") != "running":
        stack.runtime.up(["opa"], no_deps=True)  # OPA decides, so it is the one service started before asking
    try:
        wait_for_opa(stack)
        facts = infra_facts(stack)
        decision = ask(stack, "infra", operation, facts)
    except GateDenied:
        if not running:  # a denied first deploy leaves nothing running
            stack.runtime.remove(["opa"])
        raise
    print(f"infra gate: allowed ({_facts_line(facts)})")
    passed.add("infra")
    return {"allow": decision.allow}


@operator_action
def canary_gate():
    from swiftdeploy.gates import ask, canary_facts
    from swiftdeploy.rollout import require_canary

    hold_stack_lock("promote:stable")
    stack = load_stack()
    require_canary(stack.manifest, "the canary gate")
    seconds = stack.manifest.services.canary.window_seconds
    print(f"canary gate: reading the canary's metrics over {seconds} s ...", flush=True)
    facts = canary_facts(stack)
    print(f"canary gate: {facts['requests']:g} requests, {facts['errors']:g} errors, "
          f"error rate {_percent(facts['error_rate'])}, p99 {_ms(facts['p99_ms'])}")
    decision = ask(stack, "canary", "promote:stable", facts, hint=ROLLBACK_HINT)
    print("canary gate: allowed")
    passed.add("canary")
    return {"allow": decision.allow}


def _facts_line(facts: dict) -> str:
    return (f"disk free {facts['disk_free_bytes'] / 1e9:.1f} GB on {facts['disk_path']}, "
            f"load {facts['load_1m']:.2f}, {facts['cpu_count']} cpus")


def _percent(rate):
    return "-" if rate is None else f"{rate * 100:.2f}%"


def _ms(value):
    return "-" if value is None else f"{value:.0f} ms"
