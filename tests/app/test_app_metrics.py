"""GET /metrics: names, labels, bounded cardinality, histogram accuracy near the 0.5 s gate (SPEC A-6)."""

from __future__ import annotations

import math
import random
import re

import pytest
from app_testkit import canary, clock, make_app, post_chaos, sample  # noqa: F401 (fixtures)
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from swiftdeploy_app.metrics import BUCKETS, UNMATCHED_PATH, AppMetrics

SAMPLE_NAMES = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "http_request_duration_seconds_count",
    "http_request_duration_seconds_sum",
    "app_uptime_seconds",
    "app_mode",
    "chaos_active",
}
TYPES = {
    "http_requests_total": "counter",
    "http_request_duration_seconds": "histogram",
    "app_uptime_seconds": "gauge",
    "app_mode": "gauge",
    "chaos_active": "gauge",
}


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.get_data(as_text=True)


def sample_names(text: str) -> set[str]:
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and line[0] != "#"}


def test_metrics_have_exactly_the_spec_names_and_types(canary):
    canary.get("/")
    text = scrape(canary)
    assert sample_names(text) == SAMPLE_NAMES
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert types == TYPES
    assert "_created" not in text


def test_labels_are_exactly_method_path_status_code(canary):
    canary.get("/")
    canary.get("/healthz")
    families = {f.name: f for f in text_string_to_metric_families(scrape(canary))}
    for s in families["http_requests"].samples:
        assert set(s.labels) == {"method", "path", "status_code"}
    for s in families["http_request_duration_seconds"].samples:
        expected = {"method", "path", "le"} if s.name.endswith("_bucket") else {"method", "path"}
        assert set(s.labels) == expected
    assert sample(canary, "http_requests_total", method="GET", path="/", status_code="200") == 1
    assert sample(canary, "http_requests_total", method="GET", path="/healthz", status_code="200") == 1


def test_every_request_is_counted_with_its_route_template(canary):
    canary.get("/")
    canary.get("/healthz")
    canary.get("/metrics")
    canary.get("/metrics")
    post_chaos(canary, {"mode": "recover"})
    post_chaos(canary, {"mode": "nope"})
    canary.post("/healthz")
    canary.get("/missing")
    expect = {
        ("GET", "/", "200"): 1,
        ("GET", "/healthz", "200"): 1,
        ("GET", "/metrics", "200"): 2,  # a scrape counts once it has been answered
        ("POST", "/chaos", "200"): 1,
        ("POST", "/chaos", "400"): 1,
        ("POST", "/healthz", "405"): 1,
        ("GET", UNMATCHED_PATH, "404"): 1,
    }
    for (method, path, status), count in expect.items():
        assert sample(canary, "http_requests_total", method=method, path=path, status_code=status) == count


def test_path_label_is_bounded_for_unknown_urls(canary):
    for i in range(50):
        assert canary.get(f"/probe/{i}/x?q={i}").status_code == 404
    families = {f.name: f for f in text_string_to_metric_families(scrape(canary))}
    paths = {s.labels["path"] for s in families["http_requests"].samples}
    assert paths == {UNMATCHED_PATH}
    assert sample(canary, "http_requests_total", method="GET", path=UNMATCHED_PATH, status_code="404") == 50


def test_method_label_is_bounded(canary):
    for i in range(20):
        canary.open("/", method=f"X{i}METHOD")
    canary.delete("/")
    families = {f.name: f for f in text_string_to_metric_families(scrape(canary))}
    methods = {s.labels["method"] for s in families["http_requests"].samples}
    assert methods == {"OTHER", "DELETE"}


def test_chaos_500s_are_counted_as_500(canary):
    post_chaos(canary, {"mode": "error", "rate": 1})
    for _ in range(7):
        canary.get("/")
    assert sample(canary, "http_requests_total", method="GET", path="/", status_code="500") == 7


def test_gauges_report_mode_uptime_and_chaos(make_app, clock):
    stable = make_app("stable").test_client()
    canary = make_app("canary").test_client()
    assert sample(stable, "app_mode") == 0
    assert sample(canary, "app_mode") == 1
    clock.advance(42.5)
    assert sample(canary, "app_uptime_seconds") == pytest.approx(42.5)
    assert sample(canary, "chaos_active") == 0
    post_chaos(canary, {"mode": "slow", "duration": 1})
    assert sample(canary, "chaos_active") == 1
    post_chaos(canary, {"mode": "error", "rate": 0.1})
    assert sample(canary, "chaos_active") == 2
    post_chaos(canary, {"mode": "recover"})
    assert sample(canary, "chaos_active") == 0
    assert "chaos_active 0.0" in scrape(canary)


def test_each_app_uses_its_own_registry(make_app):
    registry = CollectorRegistry()
    client = make_app("stable", registry=registry).test_client()
    client.get("/")
    assert registry.get_sample_value("http_requests_total", {"method": "GET", "path": "/", "status_code": "200"}) == 1
    other = make_app("stable").test_client()
    assert sample(other, "http_requests_total", method="GET", path="/", status_code="200") is None


# --- histogram accuracy near the gate ---------------------------------------------------------


def test_buckets_are_dense_between_a_quarter_and_one_second():
    assert list(BUCKETS) == sorted(set(BUCKETS))
    assert 0.5 in BUCKETS, "the gate's threshold is a bucket bound"
    dense = [b for b in BUCKETS if 0.25 <= b <= 1.0]
    assert dense[0] == 0.25 and dense[-1] == 1.0
    for lower, upper in zip(dense, dense[1:]):
        assert upper - lower <= 0.1 * lower + 1e-12, (lower, upper)
    assert BUCKETS[-1] >= 60, "slow chaos (up to 60 s) stays inside a finite bucket"
    assert len(BUCKETS) <= 30


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """PromQL histogram_quantile over cumulative (upper bound, count) pairs, +Inf last."""
    total = buckets[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound  # the highest finite bound, as Prometheus does
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return buckets[-2][0]


def exact_quantile(q: float, values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def observe(latencies: list[float]) -> list[tuple[float, float]]:
    registry = CollectorRegistry()
    metrics = AppMetrics(registry, canary=True, uptime=lambda: 0.0, chaos_active=lambda: 0)
    for seconds in latencies:
        metrics.record("GET", "/", 200, seconds)
    pairs = []
    for family in registry.collect():
        for s in family.samples:
            if s.name == "http_request_duration_seconds_bucket":
                pairs.append((float(s.labels["le"]), s.value))
    return sorted(pairs)


def lognormal_with_p99(rng: random.Random, p99: float, sigma: float, n: int) -> list[float]:
    mu = math.log(p99) - 2.3263478740408408 * sigma  # z(0.99)
    return [rng.lognormvariate(mu, sigma) for _ in range(n)]


@pytest.mark.parametrize("target", [0.26, 0.3, 0.4, 0.45, 0.48, 0.5, 0.52, 0.55, 0.6, 0.75, 0.9, 0.99])
@pytest.mark.parametrize("sigma", [0.3, 0.8])
def test_p99_estimate_is_within_10_percent_in_the_dense_range(target, sigma):
    rng = random.Random(hash((target, sigma)) & 0xFFFF)
    latencies = lognormal_with_p99(rng, target, sigma, 20_000)
    exact = exact_quantile(0.99, latencies)
    estimate = bucket_quantile(0.99, observe(latencies))
    assert abs(estimate - exact) / exact <= 0.10, (exact, estimate)


@pytest.mark.parametrize("slow_fraction", [0.015, 0.02, 0.05])
def test_p99_estimate_with_a_slow_tail_near_half_a_second(slow_fraction):
    # Most requests take a few ms; a fraction is slowed to 0.4-0.6 s (e.g. a slow dependency).
    rng = random.Random(7)
    latencies = [
        rng.uniform(0.4, 0.6) if rng.random() < slow_fraction else rng.lognormvariate(math.log(0.004), 0.5)
        for _ in range(20_000)
    ]
    exact = exact_quantile(0.99, latencies)
    estimate = bucket_quantile(0.99, observe(latencies))
    assert abs(estimate - exact) / exact <= 0.10, (exact, estimate)


@pytest.mark.parametrize("seed", range(20))
def test_gate_decision_at_half_a_second_is_exact(seed):
    # 0.5 is a bucket bound: estimate <= 0.5 exactly when at least 99 % of observations are <= 0.5.
    rng = random.Random(seed)
    latencies = lognormal_with_p99(rng, rng.uniform(0.47, 0.53), rng.uniform(0.2, 1.0), 5_000)
    estimate = bucket_quantile(0.99, observe(latencies))
    share_within = sum(v <= 0.5 for v in latencies) / len(latencies)
    assert (estimate <= 0.5) == (share_within >= 0.99), (estimate, share_within)
