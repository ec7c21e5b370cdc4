"""Gates: gather facts, ask OPA, record question and answer. No threshold or default lives here."""

import time

from .errors import SwiftDeployError
from .facts import host_facts
from .metrics import parse, window
from .policy import Decision, PolicyUnavailable
from .stack import Stack


class GateDenied(SwiftDeployError):
    def __init__(self, domain: str, operation: str, reasons: tuple[str, ...], hint: str = ""):
        self.domain, self.reasons = domain, reasons
        lines = [f"{operation} denied by the {domain} policy: {reason}" for reason in reasons]
        super().__init__("\n".join(lines + ([hint] if hint else [])))


class GateUnavailable(SwiftDeployError):
    pass


def ask(stack: Stack, domain: str, operation: str, facts: dict, hint: str = "") -> Decision:
    """Ask OPA about facts; record both; raise unless the answer is an allow."""
    try:
        decision = stack.opa().decide(domain, facts)
    except PolicyUnavailable as err:
        stack.history.append("gate_unavailable", domain=domain, operation=operation, error=str(err))
        raise GateUnavailable(f"{domain} gate failed closed: {err}") from None
    stack.history.append("gate", domain=domain, operation=operation, input=facts, allow=decision.allow,
                         reasons=list(decision.reasons))
    if not decision.allow:
        raise GateDenied(domain, operation, decision.reasons, hint)
    return decision


def wait_for_opa(stack: Stack, seconds: float = 30) -> None:
    client = stack.opa()
    deadline = time.monotonic() + seconds
    while not client.healthy():
        if time.monotonic() > deadline:
            raise GateUnavailable(f"could not ask OPA at {stack.opa_url}: not healthy after {seconds:.0f} s "
                                  "(see `docker compose logs opa`)")
        time.sleep(0.2)


def infra_facts(stack: Stack) -> dict:
    from . import engine

    return host_facts(engine.data_path())


def scrape(stack: Stack, track: str) -> str:
    """The /metrics text of one track, read inside its container (never through the public port)."""
    result = stack.runtime.exec(stack.service(track), ["/app/scrape"], timeout=15)
    if result.returncode != 0:
        raise SwiftDeployError(f"could not read /metrics of the {track} track: "
                               f"{(result.stderr.strip().splitlines() or ['exit ' + str(result.returncode)])[-1]}")
    return result.stdout


def canary_facts(stack: Stack, seconds: float | None = None) -> dict:
    """The canary's figures over a window: two scrapes `window_seconds` apart."""
    seconds = seconds or stack.manifest.services.canary.window_seconds
    before = parse(scrape(stack, "canary"))
    time.sleep(seconds)
    after = parse(scrape(stack, "canary"))
    return window_facts(window(before, after))


def window_facts(w) -> dict:
    return {
        "window_seconds": round(w.seconds, 3),
        "requests": round(w.requests),
        "errors": round(w.errors),
        "error_rate": None if w.error_rate is None else round(w.error_rate, 6),
        "p99_ms": None if w.p99_seconds is None else round(w.p99_seconds * 1000, 3),
    }
