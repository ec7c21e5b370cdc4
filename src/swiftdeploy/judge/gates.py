"""Gates: gather facts, ask OPA, record question and answer. No threshold or default lives here.

A `stack` here is whatever offers runtime, manifest, history and opa(): converge.Stack, which imports the
judge, so the judge does not import it back."""

import time

from ..errors import SwiftDeployError
from .policy import Decision, PolicyUnavailable


class GateDenied(SwiftDeployError):
    def __init__(self, domain: str, operation: str, reasons: tuple[str, ...], hint: str = "",
                 verdict: str | None = None, decision: Decision | None = None):
        self.domain, self.reasons, self.verdict, self.decision = domain, reasons, verdict, decision
        why = " (insufficient data)" if verdict == "insufficient" else ""
        lines = [f"{operation} denied by the {domain} policy{why}: {reason}" for reason in reasons]
        super().__init__("\n".join(lines + ([hint] if hint else [])))


class GateUnavailable(SwiftDeployError):
    def __init__(self, message: str, facts: dict | None = None):
        super().__init__(message)
        self.facts = facts  # what was asked, when OPA was reached for the question (--format json shows it)


def ask(stack, domain: str, operation: str, facts: dict, hint: str = "") -> Decision:
    """Ask OPA about facts; record both; raise unless the answer is an allow."""
    try:
        decision = stack.opa().decide(domain, facts)
    except PolicyUnavailable as err:
        stack.history.append("gate_unavailable", domain=domain, operation=operation, error=str(err))
        raise GateUnavailable(f"{domain} gate failed closed: {err}", facts) from None
    record_gate(stack, domain, operation, facts, decision)
    if not decision.allow:
        raise GateDenied(domain, operation, decision.reasons, hint, decision.verdict, decision)
    return decision


def record_gate(stack, domain: str, operation: str, facts: dict, decision: Decision) -> None:
    extra = {"verdict": decision.verdict, "notes": list(decision.notes)} if decision.verdict else {}
    if decision.revision:
        extra["policy_revision"] = decision.revision
    stack.history.append("gate", domain=domain, operation=operation, input=facts, allow=decision.allow,
                         reasons=list(decision.reasons), **extra)


def wait_for_opa(stack, seconds: float = 30) -> None:
    client = stack.opa()
    deadline = time.monotonic() + seconds
    while not client.healthy():
        if time.monotonic() > deadline:
            raise GateUnavailable(f"could not ask OPA at {stack.opa_url}: not healthy after {seconds:.0f} s "
                                  "(see `docker compose logs opa`)")
        time.sleep(0.05)


def infra_facts(stack) -> dict:
    """Measured where the stack runs (the engine's host, or every node of a cluster), not where the CLI runs."""
    return stack.runtime.host_facts()


def canary_facts(stack, seconds: float | None = None) -> dict:
    """Both tracks' figures over one window: two rounds of scrapes (and nginx's requests) `seconds` apart."""
    from .analysis import Sampler

    sampler = Sampler(stack, seconds or stack.manifest.services.canary.window_seconds)
    sampler.sample()
    sampler.follow_log(sampler.window_seconds)
    sampler.sample()
    return sampler.gate_input()


ROLLBACK_HINT = "to drop the canary instead: ./swiftdeploy rollback (doit rollback)"


def run_gate(stack, domain: str, operation: str, say=print) -> Decision:
    """Gather the facts a domain needs, ask OPA, say the answer; raise GateDenied or GateUnavailable."""
    if domain == "infra":
        wait_for_opa(stack)
        facts = infra_facts(stack)
        decision = ask(stack, "infra", operation, facts)
        say(f"infra gate: allowed ({facts_line(facts)})")
        return decision
    if domain == "canary":
        seconds = stack.manifest.services.canary.window_seconds
        say(f"canary gate: reading the canary's metrics over {seconds} s ...")
        facts = canary_facts(stack)
        say(f"canary gate: {facts_summary(facts)}")
        decision = ask(stack, "canary", operation, facts, hint=ROLLBACK_HINT)
        say("canary gate: allowed" + "".join(f"\n  note: {note}" for note in decision.notes))
        return decision
    raise SwiftDeployError(f"unknown gate {domain!r}; gates: canary, infra")


def facts_summary(facts: dict) -> str:
    """One line of canary figures: "240 requests, 0 errors, error rate 0.00%, p99 812 ms (exact 1004 ms)"."""
    estimate = _ms(facts.get("p99_ms")) + ("+ (saturated)" if facts.get("p99_saturated") else "")
    exact = f" (exact {_ms(facts['p99_exact_ms'])})" if facts.get("p99_exact_ms") is not None else ""
    return (f"{facts['requests']:g} requests, {facts['errors']:g} errors, error rate {_percent(facts['error_rate'])}, "
            f"p99 {estimate}{exact}")


def facts_line(facts: dict) -> str:
    """"disk free 80.8 GB on /var/lib/docker, load 0.52, 2 cpus"; for a cluster, one such part per node."""
    if "nodes" in facts:
        return "; ".join(f"{name}: {facts_line(node)}" for name, node in sorted(facts["nodes"].items()))
    return (f"disk free {facts['disk_free_bytes'] / 1e9:.1f} GB on {facts['disk_path']}, "
            f"load {facts['load_1m']:.2f}, {facts['cpu_count']} cpus")


def _percent(rate):
    return "-" if rate is None else f"{rate * 100:.2f}%"


def _ms(value):
    return "-" if value is None else f"{value:.0f} ms"
