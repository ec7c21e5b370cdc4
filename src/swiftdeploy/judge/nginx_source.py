"""metrics.source: nginx. Each track's figures from nginx's own request log, for an app that serves no
/metrics: the requests nginx sent to the track (nginx marks which track answered), their 5xx share and the
exact P99 of what clients waited. Same shape as the scrape and Prometheus sources, so the canary gate, the
rollout and status read it unchanged."""

import time

from .metrics import Scrape, Window
from .requestlog import exact


class NginxLogSource:
    def __init__(self, requests_between):
        self.requests_between = requests_between  # (start, end) wall seconds -> the requests nginx logged

    def sample(self, track: str) -> Scrape:
        """An instant of the track's window; the figures are read from the log when a window is asked."""
        return Scrape(at=time.monotonic(), wall=time.time(), requests={}, buckets={}, counts={}, gauges={})

    def window(self, track: str, base: Scrape, latest: Scrape) -> Window:
        seconds = max(latest.at - base.at, 1e-9)
        figures = exact(self.requests_between(base.wall, latest.wall), track)
        p99 = None if figures.p99_ms is None else figures.p99_ms / 1000.0
        return Window(seconds=seconds, requests=figures.requests, errors=figures.errors,
                      error_rate=figures.errors / figures.requests if figures.requests else None,
                      req_per_s=figures.requests / seconds, p99_seconds=p99, observations=figures.requests)
