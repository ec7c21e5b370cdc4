"""Canary analysis: both tracks' figures over the same sliding window, shaped as the canary policy's input.

A Sampler keeps each track's recent scrapes and nginx's recent requests. A window always starts at the
newest scrape that is at least `window_seconds` older than the latest one, so timing jitter can make a
window a little longer than asked, never shorter; before that much time has passed the window is as long
as the scrapes allow, and the policy calls it insufficient.

Where a track's figures come from is the manifest's `metrics.source`: `scrape` reads /metrics inside each
track at both instants; `prometheus` asks the stack's Prometheus at them (prometheus.PrometheusSource)
and evaluates PromQL over the same window; `nginx` counts the requests nginx logged for the track in the
window (nginx_source.NginxLogSource), for an app without instrumentation. nginx's exact P99 comes from its
request log either way.
"""

import time
from collections import deque

from . import requestlog
from ..errors import SwiftDeployError
from .metrics import Scrape, parse, total, window
from ..state import APP_TRACKS


def source_for(stack, requests_between=None):
    """The manifest's metrics source: None to scrape the tracks, else a PrometheusSource or NginxLogSource."""
    if stack.manifest.metrics_source == "nginx":
        from .nginx_source import NginxLogSource

        return NginxLogSource(requests_between)
    if stack.manifest.metrics_source != "prometheus":
        return None
    from .prometheus import PrometheusSource

    return PrometheusSource(f"http://127.0.0.1:{stack.manifest.prometheus.port}")


def scrape(stack, track: str, container: str | None = None):
    """One Scrape of a track, read inside the stack (never through the public port): the sum over every
    container or task of the track. `container` (an id the caller observed) also reaches an orphan."""
    try:
        texts = stack.runtime.metrics_texts(stack.service(track), container)
        return total([parse(text) for text in texts])
    except SwiftDeployError as err:
        raise SwiftDeployError(f"could not read /metrics of the {track} track: {str(err).splitlines()[0]}") from None


class Sampler:
    def __init__(self, stack, window_seconds: float, source=None):
        self.stack, self.window_seconds = stack, window_seconds
        self.source = source_for(stack, self._requests_between) if source is None else source
        self._windows: dict[tuple, object] = {}  # (track, base, latest) -> Window: PromQL asked once
        self.scrapes: dict[str, deque[Scrape]] = {track: deque() for track in APP_TRACKS}
        self.requests: deque[requestlog.Request] = deque()
        self.down: dict[str, str] = {}
        self.log = requestlog.RequestLog(stack.runtime, "nginx", stack.manifest.logs.keep)
        self.log_error: str | None = None
        self.log_gaps: list[float] = []  # wall times of reads that found requests missing since the one before

    def sample(self, containers: dict | None = None) -> None:
        """Scrape every ready app track (`containers`: role -> observed container) and read nginx's new requests."""
        if containers is None:
            containers = {c.role: c for c in self.stack.runtime.containers() if c.role in APP_TRACKS and c.ready}
        for track in APP_TRACKS:
            samples = self.scrapes[track]
            container = containers.get(track)
            try:
                if container is None:
                    raise SwiftDeployError(f"no ready {track} container")
                if self.source is None:
                    samples.append(scrape(self.stack, track, container.id))
                else:
                    samples.append(self.source.sample(track))
            except SwiftDeployError as err:
                self.down[track] = str(err).splitlines()[0]
                samples.clear()
                continue
            self.down.pop(track, None)
            while len(samples) > 2 and samples[-1].at - samples[1].at >= self.window_seconds:
                samples.popleft()  # samples[1] is a whole window old: it is the newest base
        self.read_log()
        oldest = min((s[0].wall for s in self.scrapes.values() if s), default=None)
        while self.requests and oldest is not None and self.requests[0].at < oldest - 1:
            self.requests.popleft()

    def read_log(self) -> None:
        """Take nginx's new requests. Between samples too: a read follows at most logs.keep rotations."""
        try:
            self.requests.extend(self.log.read())
            self.log_error = self.log.gap
        except SwiftDeployError as err:
            self.log_error = str(err).splitlines()[0]
            return
        if self.log.gap:
            self.log_gaps.append(time.time())

    def follow_log(self, seconds: float, every: float = 1.0) -> None:
        """Wait `seconds`, reading nginx's request log every `every` seconds meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(every, left))
            if deadline - time.monotonic() > every / 2:
                self.read_log()

    def window(self, track: str):
        """(Window, first scrape, last scrape) of the track's latest window, or None before two scrapes."""
        samples = self.scrapes.get(track) or ()
        if len(samples) < 2:
            return None
        latest = samples[-1]
        base = next((s for s in reversed(samples) if latest.at - s.at >= self.window_seconds), samples[0])
        if self.source is None:
            return window(base, latest), base, latest
        key = (track, base.at, latest.at)
        if key not in self._windows:
            try:
                figures = self.source.window(track, base, latest)
            except SwiftDeployError as err:  # Prometheus went away since the last sample
                self.down[track] = str(err).splitlines()[0]
                return None
            self._windows = {k: v for k, v in self._windows.items() if k[0] != track} | {key: figures}
        return self._windows[key], base, latest

    def figures(self, track: str) -> dict | None:
        """The track's figures over its window: the histogram's and nginx's exact ones."""
        found = self.window(track)
        if found is None:
            return None
        w, base, latest = found
        complete = not any(base.wall < gap <= latest.wall for gap in self.log_gaps)
        if not complete and self.stack.manifest.metrics_source == "nginx":
            raise SwiftDeployError(f"the {track} track's figures are incomplete: {self.log_error or 'nginx request log gap'}")
        exact = requestlog.exact(self._requests_between(base.wall, latest.wall), track)
        return {
            "window_seconds": round(w.seconds, 3),
            "requests": round(w.requests),
            "errors": round(w.errors),
            "error_rate": None if w.error_rate is None else round(w.error_rate, 6),
            "p99_ms": None if w.p99_seconds is None else round(w.p99_seconds * 1000, 3),
            "p99_saturated": w.p99_saturated,
            "p99_exact_ms": exact.p99_ms if self.log_error is None and complete else None,
        }

    def gate_input(self) -> dict:
        """The canary policy's input: the canary's figures, and stable's from the same moment."""
        canary = self.figures("canary")
        if canary is None:
            raise SwiftDeployError(self.down.get("canary", "no canary window yet (it needs two scrapes)"))
        stable = self.figures("stable")
        if stable is not None:
            stable = {key: stable[key] for key in ("requests", "errors", "error_rate", "p99_ms", "p99_exact_ms")}
        return {**canary, "stable": stable}

    def split(self) -> dict:
        """The split nginx actually served over the canary's window."""
        found = self.window("canary")
        if found is None:
            return requestlog.split(())
        _, base, latest = found
        return requestlog.split(self._requests_between(base.wall, latest.wall))

    def _requests_between(self, start: float, end: float) -> list:
        return [r for r in self.requests if start < r.at <= end]
