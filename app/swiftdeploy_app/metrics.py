"""Prometheus metrics of the API service (names fixed by SPEC A-6).

Under gunicorn every worker counts into files of its own in the workers' shared directory (prometheus_client's
multiprocess mode, switched on by PROMETHEUS_MULTIPROC_DIR, which gunicorn.conf.py sets before anything imports
prometheus_client), and /metrics, whichever worker answers it, sums them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

# Request duration buckets (seconds). From 0.25 s to 1 s each bucket is at most 10 % wider than its
# lower bound, so a PromQL histogram_quantile() estimate there is off by less than 10 % (the canary
# gate compares P99 with 0.5 s, which is itself a bound: the estimate is <= 0.5 exactly when at least
# 99 % of the observations are). Coarse below 0.25 s and above 1 s (up to the 60 s chaos cap).
BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.275, 0.3, 0.33, 0.36, 0.39, 0.42, 0.46, 0.5,
    0.55, 0.6, 0.66, 0.72, 0.79, 0.86, 0.94, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

# Request methods get their own label value; anything else is counted as OTHER (bounded cardinality).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})
UNMATCHED_PATH = "<unmatched>"  # path label of requests that match no route (404, 405)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "OTHER"


class _Gauges:
    """The gauges, read when scraped: the same in every worker, so never summed."""

    def __init__(self, canary: bool, uptime: Callable[[], float], chaos_active: Callable[[], int]):
        self._canary, self._uptime, self._chaos_active = canary, uptime, chaos_active

    def collect(self) -> Iterable:
        yield GaugeMetricFamily("app_uptime_seconds", "Seconds since the application started.", value=self._uptime())
        yield GaugeMetricFamily("app_mode", "Deployment mode: 0 stable, 1 canary.", value=1 if self._canary else 0)
        yield GaugeMetricFamily("chaos_active", "Chaos in effect: 0 none, 1 slow, 2 error.", value=self._chaos_active())


class _Exposed:
    """What /metrics shows: the registry without its ``*_created`` series, so that it holds exactly the names
    of SPEC A-6 (prometheus_client's own switch for that is process-global), and with every worker's
    request counts summed in when there are workers."""

    def __init__(self, registry: CollectorRegistry, shared_dir: str | None):
        self._registry = registry
        self._workers = MultiProcessCollector(None, shared_dir) if shared_dir else None

    def collect(self) -> Iterable:
        summed = {m.name: m.samples for m in self._workers.collect()} if self._workers else {}
        for metric in self._registry.collect():
            # the registry's family, not the collector's: it keeps the HELP text (the collector's is "Multiprocess metric")
            samples = summed.get(metric.name, []) if self._workers and metric.type != "gauge" else metric.samples
            metric.samples = [s for s in samples if not s.name.endswith("_created")]
            yield metric


class AppMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        canary: bool,
        uptime: Callable[[], float],
        chaos_active: Callable[[], int],
        shared_dir: str | None = None,  # the workers' shared directory (PROMETHEUS_MULTIPROC_DIR), under gunicorn
    ):
        self.registry = registry
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "path", "status_code"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from the start of request handling to the response, chaos delay included.",
            ["method", "path"],
            buckets=BUCKETS,
            registry=registry,
        )
        registry.register(_Gauges(canary, uptime, chaos_active))
        self._exposed = _Exposed(registry, shared_dir)

    def record(self, method: str, path: str, status: int, seconds: float) -> None:
        method = method_label(method)
        self.requests.labels(method, path, str(status)).inc()
        self.duration.labels(method, path).observe(max(seconds, 0.0))

    def exposition(self) -> bytes:
        return generate_latest(self._exposed)
