"""status: scrape each track inside the stack, keep a sliding window, ask each policy, make a frame."""

import time
from collections import deque

from .dashboard import PolicyResult, Snapshot, TrackFigures, snapshot_record
from .errors import SwiftDeployError
from .gates import infra_facts, scrape, window_facts
from .history import utc_timestamp
from .metrics import gauge, parse, window
from .policy import PolicyUnavailable
from .stack import Stack

CHAOS_NAMES = {0: "none", 1: "slow", 2: "error"}


class Observer:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.window_seconds = stack.manifest.services.canary.window_seconds
        self.samples: dict[str, deque] = {track: deque() for track in stack.tracks()}
        self.opa = stack.opa()

    def sample(self) -> None:
        """One scrape of every track; samples older than the window (but the base) are dropped."""
        for track, samples in self.samples.items():
            samples.append(parse(scrape(self.stack, track)))
            while len(samples) > 2 and samples[-1].at - samples[1].at >= self.window_seconds:
                samples.popleft()

    def frame(self) -> Snapshot:
        figures = {track: self._figures(samples) for track, samples in self.samples.items()}
        policies = {"infra": self._ask("infra", lambda: infra_facts(self.stack))}
        if "canary" in figures:
            policies["canary"] = self._ask("canary", lambda: self._canary_input())
        return Snapshot(ts=utc_timestamp(), mode=self.stack.manifest.services.mode, chaos=self._chaos(),
                        stable=figures["stable"], canary=figures.get("canary"), policies=policies)

    def record(self, snapshot: Snapshot) -> None:
        self.stack.history.append("status", **snapshot_record(snapshot))

    def _figures(self, samples) -> TrackFigures:
        if len(samples) < 2:
            return TrackFigures()
        return TrackFigures.from_window(window(samples[0], samples[-1]))

    def _canary_input(self) -> dict:
        samples = self.samples["canary"]
        if len(samples) < 2:
            raise SwiftDeployError("no canary window yet")
        return window_facts(window(samples[0], samples[-1]))

    def _chaos(self) -> str:
        track = "canary" if "canary" in self.samples else "stable"
        latest = self.samples[track][-1] if self.samples[track] else None
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
