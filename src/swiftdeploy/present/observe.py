"""status: scrape each track inside the stack, keep a sliding window, ask each policy, make a frame.

A frame shows what the engine says, not only what the manifest says: a track whose metrics cannot be read
is shown down (with why) instead of failing the frame, a container that differs from the manifest (an
orphan, a stopped or unhealthy one, another version) is a note with the command that fixes it, and so is an
operation that was interrupted.
"""

import time
from .dashboard import PolicyResult, Snapshot, TrackFigures, snapshot_record
from ..errors import SwiftDeployError
from ..judge.analysis import Sampler
from ..judge.gates import infra_facts
from ..evidence.history import utc_timestamp
from ..judge.metrics import gauge
from ..converge.plan import drift
from ..judge.policy import PolicyUnavailable
from ..converge.stack import Stack
from ..converge.lock import holder as lock_holder
from ..converge.rollout_state import rollout_progress
from ..state import APP_TRACKS

CHAOS_NAMES = {0: "none", 1: "slow", 2: "error"}


class Observer:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.window_seconds = stack.manifest.services.canary.window_seconds
        self.sampler = Sampler(stack, self.window_seconds)
        self.shown: set[str] = set(stack.tracks())  # tracks that run or should: each gets a row
        self.notes: tuple[str, ...] = ()
        self.opa = stack.opa()

    def sample(self) -> None:
        """One scrape of every track that runs or should, and nginx's new requests."""
        target = self.stack.desired()
        observed = self.stack.observe([target.services[t].image for t in target.tracks])
        containers = {c.role: c for c in observed.containers if c.role in APP_TRACKS and c.ready}
        self.shown |= set(containers)
        self.sampler.sample(containers)
        self.notes = self._notes(target, observed)

    def frame(self) -> Snapshot:
        figures = {track: self._figures(track) for track in APP_TRACKS if track in self.shown}
        policies = {"infra": self._ask("infra", lambda: infra_facts(self.stack))}
        if "canary" in figures:
            policies["canary"] = self._ask("canary", self.sampler.gate_input)
        return Snapshot(ts=utc_timestamp(), mode=self.stack.manifest.services.mode, chaos=self._chaos(),
                        stable=figures.get("stable", TrackFigures(down="no stable track")),
                        canary=figures.get("canary"), policies=policies, notes=self.notes)

    def record(self, snapshot: Snapshot) -> None:
        self.stack.history.append("status", **snapshot_record(snapshot))

    def _notes(self, target, observed) -> tuple[str, ...]:
        busy = lock_holder(self.stack.state_dir / "lock")
        if busy is not None:  # what it changes meanwhile is neither drift nor an interruption
            progress = rollout_progress(self.stack)
            return (progress or f"{busy.get('operation', 'an operation')} in progress (pid {busy.get('pid', '?')}, "
                                f"since {busy.get('since', '?')})",)
        notes = []
        pending = self.stack.journal.pending()
        if pending is not None:
            notes.append(f"{pending.describe()}; run ./swiftdeploy rollback, or {pending.operation} again")
        progress = rollout_progress(self.stack)
        if progress:
            notes.append(progress)
        differences = drift(target, observed, self.stack.desired)
        notes += [f"drift: {line}" for line in differences]
        if differences:
            notes.append("./swiftdeploy plan shows the steps; ./swiftdeploy deploy converges them")
        return tuple(notes)

    def _figures(self, track: str) -> TrackFigures:
        if track in self.sampler.down:
            return TrackFigures(down=self.sampler.down[track])
        found = self.sampler.window(track)
        if found is None:
            return TrackFigures()
        return TrackFigures.from_window(found[0], p99_exact_ms=self.sampler.figures(track)["p99_exact_ms"])

    def _chaos(self) -> str:
        scrapes = self.sampler.scrapes
        latest = (scrapes["canary"] or scrapes["stable"] or [None])[-1]
        value = gauge(latest, "chaos_active") if latest else None
        return CHAOS_NAMES.get(int(value), "unknown") if value is not None else "unknown"

    def _ask(self, domain: str, facts) -> PolicyResult:
        try:
            decision = self.opa.decide(domain, facts())
        except PolicyUnavailable as err:
            return PolicyResult(allow=None, error=str(err))
        except SwiftDeployError as err:
            return PolicyResult(allow=None, error=f"no input: {err}")
        return PolicyResult(allow=decision.allow, reasons=tuple(decision.reasons), outcome=decision.verdict)


def once(stack: Stack) -> Snapshot:
    """One frame over a full window: two scrapes window_seconds apart."""
    observer = Observer(stack)
    observer.sample()
    observer.sampler.follow_log(observer.window_seconds)
    observer.sample()
    snapshot = observer.frame()
    observer.record(snapshot)
    return snapshot


def live(stack: Stack, interval: float = 2.0) -> None:
    """Refresh a rich dashboard every `interval` seconds until Ctrl-C; every frame goes to the history."""
    from rich.live import Live

    from .dashboard import render_rich

    observer = Observer(stack)
    observer.sample()
    with Live(auto_refresh=False) as screen:
        while True:
            time.sleep(interval)
            observer.sample()
            snapshot = observer.frame()
            observer.record(snapshot)
            screen.update(render_rich(snapshot), refresh=True)
