"""rollout: walk the canary through services.canary.steps, judging it against stable as it goes.

At every interval: read both tracks (and nginx's requests) over the last window, ask the canary policy,
then advance, hold or roll back. A step advances after step_seconds once the latest analysis passes;
failure_limit failed analyses in a row roll back at once; a step without a passing analysis by its deadline
(no traffic: insufficient data) rolls back too. After the last step the canary's version becomes stable.

Every weight change is an operation of its own (journaled, confirmed, committed to manifest.yaml), so the
manifest always names a state the stack can hold: a rollout killed anywhere leaves the canary at a step's
weight (or an operation in the journal), which `rollback` drops and a re-run of `rollout` goes on from.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import operations
from . import rollout_state
from ..judge.analysis import Sampler
from ..errors import SwiftDeployError
from ..judge.gates import GateDenied, record_gate, wait_for_opa
from ..judge.policy import Decision, PolicyUnavailable
from .stack import Stack


@dataclass
class Analysis:
    verdict: str  # pass | fail | insufficient | unknown (OPA could not be asked)
    reasons: tuple[str, ...]
    notes: tuple[str, ...] = ()
    facts: dict | None = None
    decision: Decision | None = None


@dataclass
class RolloutResult:
    outcome: str  # promoted | rolled_back
    reasons: tuple[str, ...] = ()
    analyses: int = 0
    seconds: float = 0.0
    version: str = ""


@dataclass
class Rollout:
    stack: Stack
    say: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    operation_options: dict = field(default_factory=dict)  # passed to each operation (tests answer gates there)
    analyses: int = field(init=False, default=0)
    verdicts: list[str] = field(init=False, default_factory=list)

    def run(self) -> RolloutResult:
        stack = self.stack
        self.started = self.clock()
        pending = stack.journal.pending()
        if pending is not None and pending.operation == "promote:stable" and "canary" in pending.gates:
            self.say("finishing the promotion an interrupted run started (its canary gate had passed)")
            return self._promote(None)
        canary = stack.manifest.services.canary
        self.schedule = canary.steps
        first = 0
        if stack.manifest.services.mode == "canary":
            first = next((i for i, weight in enumerate(self.schedule) if weight >= canary.weight), len(self.schedule) - 1)
        version = canary.version
        self.say(f"rollout of {version}: steps {', '.join(f'{w}%' for w in self.schedule)}; "
                 f"{canary.step_seconds} s a step, judged every {canary.interval_seconds} s over {canary.window_seconds} s")
        stack.history.append("rollout", phase="start", canary_version=version, version=stack.manifest.services.version,
                             steps=list(self.schedule), from_step=first + 1)
        self.sampler = Sampler(stack, canary.window_seconds)
        try:
            for index in range(first, len(self.schedule)):
                result = self._step(index)
                if result is not None:
                    return result
        except KeyboardInterrupt:
            self._stopped(index)
            raise SwiftDeployError(
                f"rollout stopped (Ctrl-C) at step {index + 1}/{len(self.schedule)}: the canary keeps "
                f"{self.stack.manifest.services.canary.weight}%; ./swiftdeploy rollout goes on from there, "
                "./swiftdeploy rollback drops the canary") from None
        return self._promote(self.last)

    def _step(self, index: int) -> RolloutResult | None:
        stack, weight = self.stack, self.schedule[index]
        canary = stack.manifest.services.canary
        outcome = operations.set_canary_weight(stack, weight, say=self.say, **self.operation_options)
        stack.manifest = outcome.manifest
        self._save_progress(index, weight, 0.0)  # status names the step the canary serves from its start
        self.say(f"step {index + 1}/{len(self.schedule)}: the canary serves {weight}%")
        stack.history.append("rollout_step", step=index + 1, steps=len(self.schedule), weight=weight,
                             canary_version=canary.version, changed=outcome.steps)
        step_started = self.clock()
        failures = 0
        while True:
            due = self.clock() + canary.interval_seconds
            analysis = self._analyse(index, weight, self.clock() - step_started)
            self.last = analysis
            at_step = self.clock() - step_started
            if analysis.verdict == "fail":
                failures += 1
                if failures >= canary.failure_limit:
                    return self._roll_back(analysis.reasons, f"{failures} failed {'analyses' if failures > 1 else 'analysis'} "
                                           f"in a row at step {index + 1} ({weight}%)")
            elif analysis.verdict == "pass":
                failures = 0
                if at_step >= canary.step_seconds:
                    return None
            if at_step >= canary.step_deadline_seconds:
                return self._roll_back(analysis.reasons, f"no passing analysis at step {index + 1} ({weight}%) "
                                       f"within {canary.step_deadline_seconds} s")
            self.sleep(max(0.0, due - self.clock()))

    def _analyse(self, index: int, weight: int, at_step: float) -> Analysis:
        stack = self.stack
        analysis, split = self._judge()
        self.analyses += 1
        self.verdicts.append(analysis.verdict)
        revision = analysis.decision.revision if analysis.decision is not None else None
        stack.history.append("rollout_verdict", step=index + 1, weight=weight, verdict=analysis.verdict,
                             reasons=list(analysis.reasons), notes=list(analysis.notes), input=analysis.facts,
                             split=split, at_step_seconds=round(at_step, 1),
                             **({"policy_revision": revision} if revision else {}))
        self._save_progress(index, weight, at_step)
        shown = "; ".join(analysis.reasons) if analysis.reasons else "all checks pass"
        figures = f" [{_figures(analysis.facts)}]" if analysis.facts else ""
        self.say(f"  {at_step:5.0f} s  {analysis.verdict.upper():12} {shown}{figures}")
        return analysis

    def _save_progress(self, index: int, weight: int, at_step: float) -> None:
        rollout_state.save(self.stack, {"step": index + 1, "steps": len(self.schedule), "weight": weight,
                                        "at_step_seconds": round(at_step, 1), "verdicts": self.verdicts[-10:]})

    def _judge(self) -> tuple[Analysis, dict]:
        """Read both tracks over the last window, ask the canary policy: (the analysis, the split served)."""
        if not self.analyses:
            wait_for_opa(self.stack)
        self.sampler.sample()
        split = self.sampler.split()
        try:
            facts = self.sampler.gate_input()
        except SwiftDeployError as err:
            return Analysis("insufficient", (str(err).splitlines()[0],)), split
        try:
            decision = self.stack.opa().decide("canary", facts)
        except PolicyUnavailable as err:
            return Analysis("unknown", (f"could not ask OPA: {err}",), facts=facts), split
        verdict = decision.verdict or ("pass" if decision.allow else "fail")
        return Analysis(verdict, decision.reasons, decision.notes, facts, decision), split

    def _roll_back(self, reasons: tuple[str, ...], why: str) -> RolloutResult:
        stack = self.stack
        self.say(f"rolling back by itself: {why}: {'; '.join(reasons) or 'no reasons given'}")
        rollout_state.clear(stack)
        outcome = operations.rollback(stack, say=self.say, **self.operation_options)
        stack.manifest = outcome.manifest
        stack.history.append("rollback", outcome="ok", from_mode="canary", version=outcome.manifest.services.version,
                             seen=outcome.seen, steps=outcome.steps, by="rollout", reasons=[why, *reasons])
        result = RolloutResult("rolled_back", (why, *reasons), self.analyses, round(self.clock() - self.started, 1),
                               stack.manifest.services.version)
        self._record(result)
        return result

    def _promote(self, last: Analysis | None) -> RolloutResult:
        stack = self.stack

        def use_last_analysis(domain: str) -> None:
            if last is None or last.decision is None or last.verdict != "pass":
                raise GateDenied("canary", "rollout", last.reasons if last else ("no passing analysis",))
            record_gate(stack, "canary", "rollout", last.facts, last.decision)

        outcome = operations.promote_stable(stack, say=self.say, **{**self.operation_options,
                                                                      "ask_gate": use_last_analysis})
        stack.manifest = outcome.manifest
        rollout_state.clear(stack)
        result = RolloutResult("promoted", (), self.analyses, round(self.clock() - self.started, 1),
                               outcome.manifest.services.version)
        self._record(result)
        return result

    def _stopped(self, index: int) -> None:
        self.stack.history.append("rollout", phase="end", outcome="stopped", step=index + 1,
                                  weight=self.stack.manifest.services.canary.weight, analyses=self.analyses)

    def _record(self, result: RolloutResult) -> None:
        self.stack.history.append("rollout", phase="end", outcome=result.outcome, reasons=list(result.reasons),
                                  analyses=result.analyses, seconds=result.seconds, version=result.version)


def _figures(facts: dict) -> str:
    from ..judge.gates import facts_summary

    stable = facts.get("stable")
    versus = (f"; stable {stable['requests']:g} requests, error rate "
              f"{'-' if stable['error_rate'] is None else format(stable['error_rate'] * 100, '.2f') + '%'}"
              if stable else "")
    return facts_summary(facts) + versus
