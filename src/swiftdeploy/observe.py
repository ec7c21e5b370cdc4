"""status: scrape each track inside the stack, keep a sliding window, ask each policy, make a frame.

A frame shows what the engine says, not only what the manifest says: a track whose metrics cannot be read
is shown down (with why) instead of failing the frame, a container that differs from the manifest (an
orphan, a stopped or unhealthy one, another version) is a note with the command that fixes it, and so is an
operation that was interrupted.
"""

import time
from collections import deque

from .dashboard import PolicyResult, Snapshot, TrackFigures, snapshot_record
from .errors import SwiftDeployError
from .gates import infra_facts, scrape, window_facts
from .history import utc_timestamp
from .metrics import gauge, parse, window
from .plan import drift
from .policy import PolicyUnavailable
from .stack import Stack
from .state import APP_TRACKS

CHAOS_NAMES = {0: "none", 1: "slow", 2: "error"}


class Observer:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.window_seconds = stack.manifest.services.canary.window_seconds
        self.samples: dict[str, deque] = {track: deque() for track in stack.tracks()}
        self.down: dict[str, str] = {}
        self.notes: tuple[str, ...] = ()
        self.opa = stack.opa()

    def sample(self) -> None:
        """One scrape of every track that runs or should; samples older than the window (but the base) go."""
        target = self.stack.desired()
        observed = self.stack.observe([target.services[t].image for t in target.tracks])
        containers = {c.role: c for c in observed.containers if c.role in APP_TRACKS and c.ready}
        for track in APP_TRACKS:
            if track not in self.samples and track not in containers:
                continue
            samples = self.samples.setdefault(track, deque())
            container = containers.get(track)
            try:
                if container is None:
                    raise SwiftDeployError(f"no ready {track} container")
                samples.append(parse(scrape(self.stack, track, container.id)))
            except SwiftDeployError as err:
                self.down[track] = str(err).splitlines()[0]
                samples.clear()
                continue
            self.down.pop(track, None)
            while len(samples) > 2 and samples[-1].at - samples[1].at >= self.window_seconds:
                samples.popleft()
        self.notes = self._notes(target, observed)

    def frame(self) -> Snapshot:
        figures = {track: self._figures(track) for track in self.samples}
        policies = {"infra": self._ask("infra", lambda: infra_facts(self.stack))}
        if "canary" in figures:
            policies["canary"] = self._ask("canary", lambda: self._canary_input())
        return Snapshot(ts=utc_timestamp(), mode=self.stack.manifest.services.mode, chaos=self._chaos(),
                        stable=figures.get("stable", TrackFigures(down="no stable track")),
                        canary=figures.get("canary"), policies=policies, notes=self.notes)

    def record(self, snapshot: Snapshot) -> None:
        self.stack.history.append("status", **snapshot_record(snapshot))

    def _notes(self, target, observed) -> tuple[str, ...]:
        notes = []
        pending = self.stack.journal.pending()
        if pending is not None:
            notes.append(f"{pending.describe()}; run ./swiftdeploy rollback, or {pending.operation} again")
        differences = drift(target, observed, self.stack.desired)
        notes += [f"drift: {line}" for line in differences]
        if differences:
            notes.append("./swiftdeploy plan shows the steps; ./swiftdeploy deploy converges them")
        return tuple(notes)

    def _figures(self, track: str) -> TrackFigures:
        if track in self.down:
            return TrackFigures(down=self.down[track])
        samples = self.samples[track]
        if len(samples) < 2:
            return TrackFigures()
        return TrackFigures.from_window(window(samples[0], samples[-1]))

    def _canary_input(self) -> dict:
        samples = self.samples.get("canary") or ()
        if len(samples) < 2:
            raise SwiftDeployError(self.down.get("canary", "no canary window yet"))
        return window_facts(window(samples[0], samples[-1]))

    def _chaos(self) -> str:
        track = "canary" if self.samples.get("canary") else "stable"
        latest = self.samples[track][-1] if self.samples.get(track) else None
        value = gauge(latest, "chaos_active") if latest else None
        return CHAOS_NAMES.get(int(value), "unknown") if value is not None else "unknown"

    def _ask(self, domain: str, facts) -> PolicyResult:
        try:
            decision = self.opa.decide(domain, facts())
        except PolicyUnavailable as err:
            return PolicyResult(allow=None, error=str(err))
        except SwiftDeployError as err:
            return PolicyResult(allow=None, error=f"no input: {err}")
        return PolicyResult(allow=decision.allow, reasons=tuple(decision.reasons))


def once(stack: Stack) -> Snapshot:
    """One frame over a full window: two scrapes window_seconds apart."""
    observer = Observer(stack)
    observer.sample()
    time.sleep(observer.window_seconds)
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
