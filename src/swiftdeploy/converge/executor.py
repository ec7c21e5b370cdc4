"""The executor: observe, plan, run the first step, confirm it, journal it; again, until nothing is left.

Planning again after every step (rather than running a plan made at the start) is what makes each step
safe to repeat and the whole converge from wherever a killed run left it: the engine and nginx are
asked what is true now, not what the plan expected.
"""

import time
from collections.abc import Callable

from . import opa_policy, proxy
from ..render.desired import Desired, definition_file
from ..errors import SwiftDeployError
from ..files import write_atomic
from .journal import Journal
from .plan import AskGate, BuildImages, PullImages, RemoveContainers, Reroute, StartService, StartStack, Step, plan
from .stack import Stack
from ..state import APP_TRACKS

MAX_STEPS = 24
ROLE_FILES = {"nginx": ["nginx.conf"], "prometheus": ["prometheus.yml", "prometheus-rules.yml"]}  # what it reads


class ExecutorError(SwiftDeployError):
    pass


class Executor:
    def __init__(self, stack: Stack, operation: str, journal: Journal, *, say: Callable[[str], None] = print,
                 ask_gate: Callable | None = None, checkpoint: Callable[[str], None] | None = None):
        self.stack, self.operation, self.journal, self.say = stack, operation, journal, say
        self.ask_gate = ask_gate or self._ask_opa
        self.checkpoint = checkpoint or (lambda where: None)
        self.passed: set[str] = set()  # gates asked and allowed during this operation
        self.ran: list[str] = []  # what changed something, in order
        self.first_observed = None  # what the engine showed before this executor changed anything

    def _ask_opa(self, domain: str) -> None:
        from ..judge.gates import run_gate  # imported when a gate is asked: a no-change deploy asks none

        run_gate(self.stack, domain, self.operation, self.say)

    def plan(self, target: Desired, gates=(), *, builds: dict | None = None, strict: bool = False) -> list[Step]:
        digest = getattr(self.stack.runtime, "secrets_digest", None)
        references = [target.services[track].image for track in target.tracks]
        observed = self.stack.observe(references)
        if self.first_observed is None:
            self.first_observed = observed
        return plan(target, observed, self.stack.desired, gates=[g for g in gates if g not in self.passed],
                    builds=builds, strict=strict, secrets_digest=digest() if digest and strict else None)

    def converge(self, target: Desired, gates=(), *, builds: dict | None = None, strict: bool = False,
                 planned: list[Step] | None = None) -> None:
        """Run steps until the plan is empty; `planned` is a plan just made from a fresh observation."""
        done = set()
        for _ in range(MAX_STEPS):
            steps = planned if planned is not None else self.plan(target, gates, builds=builds, strict=strict)
            planned = None
            if not steps:
                return
            step = steps[0]
            if _identity(step) in done:
                raise ExecutorError(f"{step.describe()}: done once already, yet the engine still needs it "
                                    "(see `docker ps -a` and the container's logs)")
            self.run(step)
            done.add(_identity(step))
        raise ExecutorError(f"the stack did not converge within {MAX_STEPS} steps")

    def run(self, step: Step) -> None:
        if isinstance(step, AskGate):
            self.ask_gate(step.domain)
            self.passed.add(step.domain)
            self.journal.step(step.describe(), gate=step.domain)
        else:
            self.say(f"  {step.describe()}")
            if not isinstance(step, Reroute):  # a reload a killed run left under way rereads the file on disk
                self.journal.acting(step.describe())
            self._change(step)
            self.journal.step(step.describe())
            self.ran.append(step.describe())
        self.checkpoint(step.describe())

    def _change(self, step: Step) -> None:
        if _starts_opa(step):  # OPA starts only from a policy that compiles, and goes on only once it serves it
            opa_policy.prepare(self.stack, step.target.policy_revision)
            self._act(step)
            opa_policy.confirm(self.stack, step.target.policy_revision)
        else:
            self._act(step)

    def _act(self, step: Step) -> None:
        stack = self.stack
        if isinstance(step, BuildImages):
            stack.runtime.build(stack.root, step.references, step.source_hash, step.source)
        elif isinstance(step, PullImages):
            stack.runtime.pull(step.references)
        elif isinstance(step, StartService):
            if step.replacing is not None and step.role in APP_TRACKS:
                self.drain()
            files = [definition_file(step.target.manifest)] + ROLE_FILES.get(step.role, [])
            self.write(step.target, files)
            # An app track is confirmed healthy by compose --wait; OPA, which has no healthcheck, by the gate
            # that waits for its /health, and nginx by the reload or confirmation that follows.
            try:
                stack.runtime.up([step.spec.service], no_deps=True, recreate=step.replacing is not None,
                                 wait=step.role in APP_TRACKS)
            except SwiftDeployError as err:
                if step.role not in APP_TRACKS:
                    raise
                raise ExecutorError(self.never_ready(step.spec.service, step.target.manifest, err)) from None
        elif isinstance(step, StartStack):
            self.write(step.target, list(step.target.outputs))
            # --no-deps with the services listed: compose still orders them (nginx only once stable is
            # healthy) and leaves running ones alone (on Podman a plain `up` recreates every running
            # container). Readiness is then watched here: compose's --wait polls slowly.
            stack.runtime.up(list(step.services), no_deps=True, wait=False)
            self.await_ready(step.services)
        elif isinstance(step, Reroute):
            self.write(step.target, ["nginx.conf"])
            if step.resolve or stack.proxy.served_generation() != step.target.generation:
                stack.proxy.reload(step.target.generation)
            proxy.confirm(stack.proxy, step.target.generation, dict(step.expect))
        elif isinstance(step, RemoveContainers):
            if any(c.role in APP_TRACKS for c in step.containers):
                self.drain()
            stack.runtime.remove([c.id for c in step.containers])
        else:  # pragma: no cover - a new step kind without an action is a bug
            raise TypeError(f"no action for {step!r}")

    def drain(self) -> None:
        """Before an app container stops: nginx's old workers finish what they took under the config before the
        last reload (which may route there), up to the time a track has to answer."""
        if not any(c.role == "nginx" and c.state == "running" for c in self.stack.runtime.containers()):
            return
        seconds = self.stack.manifest.nginx.proxy_timeout + 1
        left = self.stack.proxy.drain(seconds)
        if left:
            self.say(f"  nginx's old workers still hold requests {seconds} s after the reload (a long download "
                     f"or a WebSocket); going on")

    def await_ready(self, services, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while True:
            containers = [c for c in self.stack.runtime.containers() if c.compose_service in services]
            failed = [c for c in containers if c.health == "unhealthy" or c.state in ("exited", "dead")]
            if failed:
                culprit = failed[0]
                if culprit.role in APP_TRACKS:
                    raise ExecutorError(self.never_ready(culprit.compose_service, self.stack.manifest, None))
                raise ExecutorError(f"{culprit.describe()} after start (see its logs: docker logs {culprit.name})")
            ready = {c.compose_service for c in containers if c.ready}
            waiting = [service for service in services if service not in ready]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise ExecutorError(f"{', '.join(waiting)} not ready {seconds:.0f} s after start "
                                    "(see `docker ps -a` and the container's logs)")
            time.sleep(0.1)

    def never_ready(self, service: str, manifest, err) -> str:
        """Why an app track did not become ready: what was asked, the last answers and its last output."""
        health = manifest.services.health
        asked = (f"GET {health.path} on port {health.port or manifest.services.port} every {health.interval_seconds} s"
                 if health else "the bundled app's /app/healthcheck")
        reason = getattr(self.stack.runtime, "unready_reason", None)
        detail = reason(service) if reason else (str(err) if err else "")
        return f"{service} never became healthy ({asked}): {detail}"

    def confirm(self, target: Desired) -> dict[str, list[str]]:
        """Traffic through the public port shows the target: its config, each track and its version."""
        expect = {track: target.services[track].version for track in target.route.tracks}
        return proxy.confirm(self.stack.proxy, target.generation, expect)

    def write(self, target: Desired, names) -> None:
        tls = target.manifest.nginx.tls
        if tls and "nginx.conf" in names:  # the certificate it names is in place before nginx can load it
            from ..certificates import install

            install(tls, self.stack.root, self.stack.state_dir)
        for name in names:
            write_atomic(self.stack.generated / name, target.outputs[name])


def _starts_opa(step: Step) -> bool:
    if isinstance(step, StartService):
        return step.role == "opa"
    opa = step.target.services.get("opa") if isinstance(step, StartStack) else None
    return opa is not None and opa.service in step.services


def _identity(step: Step) -> tuple:
    """What a step achieves; the same achievement planned twice means the first one did not hold."""
    if isinstance(step, StartService):
        return ("start", step.role, step.spec.spec)
    if isinstance(step, Reroute):  # the same config in front of other containers is another achievement
        return ("reroute", step.target.generation, step.behind, step.resolve)
    if isinstance(step, StartStack):
        return ("start stack", step.target.generation, step.services)
    if isinstance(step, RemoveContainers):
        return ("remove", tuple(c.id for c in step.containers))
    return (type(step).__name__, step.describe())
