import bisect
import math
import random
import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from swiftdeploy.errors import SwiftDeployError
from swiftdeploy.judge.metrics import MetricsError, Scrape, bucket_quantile, gauge, parse, window

INF = math.inf

# Two scrapes of one app, 30 s apart, exactly as prometheus_client 0.26 prints them (checked by
# test_fixture_matches_prometheus_client_output). In the window, "/" served 30 x 200, 3 x 500 and
# 2 x 503 (a new series); /healthz got 12 slow probes and /metrics 3 scrapes, both excluded by default.
BEFORE = """\
# HELP http_requests_total Total HTTP requests by method, route and status code
# TYPE http_requests_total counter
http_requests_total{method="GET",path="/",status_code="200"} 120.0
http_requests_total{method="GET",path="/",status_code="500"} 2.0
http_requests_total{method="POST",path="/chaos",status_code="200"} 1.0
http_requests_total{method="GET",path="/healthz",status_code="200"} 40.0
http_requests_total{method="GET",path="/metrics",status_code="200"} 10.0
# HELP http_requests_created Total HTTP requests by method, route and status code
# TYPE http_requests_created gauge
http_requests_created{method="GET",path="/",status_code="200"} 1.7641584e+09
http_requests_created{method="GET",path="/",status_code="500"} 1.7641584113e+09
http_requests_created{method="POST",path="/chaos",status_code="200"} 1.764158402e+09
http_requests_created{method="GET",path="/healthz",status_code="200"} 1.7641584001e+09
http_requests_created{method="GET",path="/metrics",status_code="200"} 1.7641584052e+09
# HELP http_request_duration_seconds HTTP request latency in seconds
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05",method="GET",path="/"} 80.0
http_request_duration_seconds_bucket{le="0.1",method="GET",path="/"} 110.0
http_request_duration_seconds_bucket{le="0.25",method="GET",path="/"} 118.0
http_request_duration_seconds_bucket{le="0.5",method="GET",path="/"} 121.0
http_request_duration_seconds_bucket{le="1.0",method="GET",path="/"} 122.0
http_request_duration_seconds_bucket{le="2.5",method="GET",path="/"} 122.0
http_request_duration_seconds_bucket{le="10.0",method="GET",path="/"} 122.0
http_request_duration_seconds_bucket{le="+Inf",method="GET",path="/"} 122.0
http_request_duration_seconds_count{method="GET",path="/"} 122.0
http_request_duration_seconds_sum{method="GET",path="/"} 8.1
http_request_duration_seconds_bucket{le="0.05",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="0.1",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="0.25",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="0.5",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="1.0",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="2.5",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="10.0",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="+Inf",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_count{method="POST",path="/chaos"} 1.0
http_request_duration_seconds_sum{method="POST",path="/chaos"} 0.003
http_request_duration_seconds_bucket{le="0.05",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="0.1",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="0.25",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="0.5",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="1.0",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="2.5",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="10.0",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="+Inf",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_count{method="GET",path="/healthz"} 40.0
http_request_duration_seconds_sum{method="GET",path="/healthz"} 0.04
http_request_duration_seconds_bucket{le="0.05",method="GET",path="/metrics"} 10.0
http_request_duration_seconds_bucket{le="0.1",method="GET",path="/metrics"} 10.0
http_request_duration_seconds_bucket{le="0.25",method="GET",path="/metrics"} 10.0
http_request_duration_seconds_bucket{le="0.5",method="GET",path="/metrics"} 10.0
http_request_duration_seconds_bucket{le="1.0",method="GET",path="/metrics"} 10.0
http_request_duration_seconds_bucket{le="2.5",method="GET",path="/metrics"} 10.0
http_request_duration_seconds_bucket{le="10.0",method="GET",path="/metrics"} 10.0
http_request_duration_seconds_bucket{le="+Inf",method="GET",path="/metrics"} 10.0
http_request_duration_seconds_count{method="GET",path="/metrics"} 10.0
http_request_duration_seconds_sum{method="GET",path="/metrics"} 0.02
# HELP http_request_duration_seconds_created HTTP request latency in seconds
# TYPE http_request_duration_seconds_created gauge
http_request_duration_seconds_created{method="GET",path="/"} 1.7641584e+09
http_request_duration_seconds_created{method="POST",path="/chaos"} 1.764158402e+09
http_request_duration_seconds_created{method="GET",path="/healthz"} 1.7641584001e+09
http_request_duration_seconds_created{method="GET",path="/metrics"} 1.7641584052e+09
# HELP app_uptime_seconds Seconds since the app started
# TYPE app_uptime_seconds gauge
app_uptime_seconds 95.25
# HELP app_mode 0 stable, 1 canary
# TYPE app_mode gauge
app_mode 1.0
# HELP chaos_active 0 none, 1 slow, 2 error
# TYPE chaos_active gauge
chaos_active 0.0
"""

AFTER = """\
# HELP http_requests_total Total HTTP requests by method, route and status code
# TYPE http_requests_total counter
http_requests_total{method="GET",path="/",status_code="200"} 150.0
http_requests_total{method="GET",path="/",status_code="500"} 5.0
http_requests_total{method="POST",path="/chaos",status_code="200"} 1.0
http_requests_total{method="GET",path="/healthz",status_code="200"} 52.0
http_requests_total{method="GET",path="/metrics",status_code="200"} 13.0
http_requests_total{method="GET",path="/",status_code="503"} 2.0
# HELP http_requests_created Total HTTP requests by method, route and status code
# TYPE http_requests_created gauge
http_requests_created{method="GET",path="/",status_code="200"} 1.7641584e+09
http_requests_created{method="GET",path="/",status_code="500"} 1.7641584113e+09
http_requests_created{method="POST",path="/chaos",status_code="200"} 1.764158402e+09
http_requests_created{method="GET",path="/healthz",status_code="200"} 1.7641584001e+09
http_requests_created{method="GET",path="/metrics",status_code="200"} 1.7641584052e+09
http_requests_created{method="GET",path="/",status_code="503"} 1.7641585163e+09
# HELP http_request_duration_seconds HTTP request latency in seconds
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05",method="GET",path="/"} 90.0
http_request_duration_seconds_bucket{le="0.1",method="GET",path="/"} 130.0
http_request_duration_seconds_bucket{le="0.25",method="GET",path="/"} 148.0
http_request_duration_seconds_bucket{le="0.5",method="GET",path="/"} 154.0
http_request_duration_seconds_bucket{le="1.0",method="GET",path="/"} 157.0
http_request_duration_seconds_bucket{le="2.5",method="GET",path="/"} 157.0
http_request_duration_seconds_bucket{le="10.0",method="GET",path="/"} 157.0
http_request_duration_seconds_bucket{le="+Inf",method="GET",path="/"} 157.0
http_request_duration_seconds_count{method="GET",path="/"} 157.0
http_request_duration_seconds_sum{method="GET",path="/"} 13.75
http_request_duration_seconds_bucket{le="0.05",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="0.1",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="0.25",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="0.5",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="1.0",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="2.5",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="10.0",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_bucket{le="+Inf",method="POST",path="/chaos"} 1.0
http_request_duration_seconds_count{method="POST",path="/chaos"} 1.0
http_request_duration_seconds_sum{method="POST",path="/chaos"} 0.003
http_request_duration_seconds_bucket{le="0.05",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="0.1",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="0.25",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="0.5",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="1.0",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="2.5",method="GET",path="/healthz"} 40.0
http_request_duration_seconds_bucket{le="10.0",method="GET",path="/healthz"} 52.0
http_request_duration_seconds_bucket{le="+Inf",method="GET",path="/healthz"} 52.0
http_request_duration_seconds_count{method="GET",path="/healthz"} 52.0
http_request_duration_seconds_sum{method="GET",path="/healthz"} 36.04
http_request_duration_seconds_bucket{le="0.05",method="GET",path="/metrics"} 13.0
http_request_duration_seconds_bucket{le="0.1",method="GET",path="/metrics"} 13.0
http_request_duration_seconds_bucket{le="0.25",method="GET",path="/metrics"} 13.0
http_request_duration_seconds_bucket{le="0.5",method="GET",path="/metrics"} 13.0
http_request_duration_seconds_bucket{le="1.0",method="GET",path="/metrics"} 13.0
http_request_duration_seconds_bucket{le="2.5",method="GET",path="/metrics"} 13.0
http_request_duration_seconds_bucket{le="10.0",method="GET",path="/metrics"} 13.0
http_request_duration_seconds_bucket{le="+Inf",method="GET",path="/metrics"} 13.0
http_request_duration_seconds_count{method="GET",path="/metrics"} 13.0
http_request_duration_seconds_sum{method="GET",path="/metrics"} 0.026
# HELP http_request_duration_seconds_created HTTP request latency in seconds
# TYPE http_request_duration_seconds_created gauge
http_request_duration_seconds_created{method="GET",path="/"} 1.7641584e+09
http_request_duration_seconds_created{method="POST",path="/chaos"} 1.764158402e+09
http_request_duration_seconds_created{method="GET",path="/healthz"} 1.7641584001e+09
http_request_duration_seconds_created{method="GET",path="/metrics"} 1.7641584052e+09
# HELP app_uptime_seconds Seconds since the app started
# TYPE app_uptime_seconds gauge
app_uptime_seconds 125.25
# HELP app_mode 0 stable, 1 canary
# TYPE app_mode gauge
app_mode 1.0
# HELP chaos_active 0 none, 1 slow, 2 error
# TYPE chaos_active gauge
chaos_active 2.0
"""


def test_fixture_matches_prometheus_client_output():
    registry = CollectorRegistry()
    requests = Counter("http_requests_total", "Total HTTP requests by method, route and status code",
                       ["method", "path", "status_code"], registry=registry)
    latency = Histogram("http_request_duration_seconds", "HTTP request latency in seconds", ["method", "path"],
                        buckets=[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0], registry=registry)
    Gauge("app_uptime_seconds", "Seconds since the app started", registry=registry).set(95.25)
    Gauge("app_mode", "0 stable, 1 canary", registry=registry).set(1)
    Gauge("chaos_active", "0 none, 1 slow, 2 error", registry=registry).set(0)
    for labels, count in [(("GET", "/", "200"), 120), (("GET", "/", "500"), 2), (("POST", "/chaos", "200"), 1),
                          (("GET", "/healthz", "200"), 40), (("GET", "/metrics", "200"), 10)]:
        requests.labels(*labels).inc(count)
    for value, count in [(0.03, 80), (0.07, 30), (0.2, 8), (0.4, 3), (0.8, 1)]:
        for _ in range(count):
            latency.labels("GET", "/").observe(value)
    latency.labels("POST", "/chaos").observe(0.003)
    for path, count in [("/healthz", 40), ("/metrics", 10)]:
        for _ in range(count):
            latency.labels("GET", path).observe(0.001)
    mask = re.compile(r"^((?:\w+_created|\w+_sum)\{[^}]*\}) .*$", re.M)
    assert mask.sub(r"\1 X", generate_latest(registry).decode()) == mask.sub(r"\1 X", BEFORE)


def test_hand_computed_case_from_the_reference():
    assert bucket_quantile(0.5, [(0, 6), (0.5, 11), (1, 14), (INF, 19)]) == pytest.approx(0.35)


def test_order_and_string_bounds_do_not_matter():
    shuffled = [("+Inf", 19), ("1", 14), ("0", 6), ("0.5", 11)]
    assert bucket_quantile(0.5, shuffled) == pytest.approx(0.35)


def test_rank_in_inf_bucket_answers_second_highest_bound():
    assert bucket_quantile(0.99, [(0.1, 5), (0.5, 10), (INF, 100)]) == 0.5
    assert bucket_quantile(1.0, [(0, 6), (0.5, 11), (1, 14), (INF, 19)]) == 1.0


def test_without_inf_bucket_is_nan():
    assert math.isnan(bucket_quantile(0.5, [(0.1, 5), (0.5, 10)]))


def test_fewer_than_two_buckets_is_nan():
    assert math.isnan(bucket_quantile(0.5, [(INF, 10)]))
    assert math.isnan(bucket_quantile(0.5, []))


def test_no_observations_is_nan():
    assert math.isnan(bucket_quantile(0.5, [(0.1, 0), (0.5, 0), (INF, 0)]))


def test_equal_bounds_are_merged_by_adding():
    assert bucket_quantile(0.4, [(0.5, 3), (0.5, 2), (1, 10), (INF, 10)]) == pytest.approx(0.4)


def test_non_monotonic_counts_are_fixed():
    # 0.2's count 3 is raised to 5; unfixed it would give 0.2 + 0.2 * 3 / 7.
    assert bucket_quantile(0.6, [(0.1, 5), (0.2, 3), (0.4, 10), (INF, 10)]) == pytest.approx(0.24)


def test_lowest_bucket_interpolates_from_zero_when_its_bound_is_positive():
    assert bucket_quantile(0.5, [(0.5, 10), (INF, 10)]) == pytest.approx(0.25)


def test_lowest_bucket_with_bound_not_above_zero_answers_the_bound():
    assert bucket_quantile(0.2, [(0, 6), (0.5, 11), (1, 14), (INF, 19)]) == 0
    assert bucket_quantile(0.3, [(-0.5, 5), (1, 10), (INF, 10)]) == -0.5


def test_q_out_of_range_and_nan():
    buckets = [(0, 6), (0.5, 11), (1, 14), (INF, 19)]
    assert bucket_quantile(-0.1, buckets) == -INF
    assert bucket_quantile(1.1, buckets) == INF
    assert math.isnan(bucket_quantile(math.nan, buckets))


def test_q_zero_with_empty_first_bucket_is_nan_like_go():
    assert math.isnan(bucket_quantile(0.0, [(0.1, 0), (0.2, 5), (INF, 5)]))


def test_window_on_recorded_scrapes():
    w = window(parse(BEFORE, at=100.0), parse(AFTER, at=130.0))
    assert w.seconds == 30.0
    assert w.requests == 35 and w.errors == 5
    assert w.error_rate == pytest.approx(5 / 35)
    assert w.req_per_s == pytest.approx(35 / 30)
    assert w.observations == 35
    # rank 34.65 of 35 falls in (0.5, 1.0] holding observations 34..35: 0.5 + 0.5 * 1.65 / 2
    assert w.p99_seconds == pytest.approx(0.9125)
    assert w.p99_ms == pytest.approx(912.5)


def test_window_is_not_the_lifetime_figure():
    lifetime = bucket_quantile(0.99, parse(AFTER).buckets[(("method", "GET"), ("path", "/"))].items())
    assert lifetime == pytest.approx(0.5 + 0.5 * (0.99 * 157 - 154) / 3)
    assert window(parse(BEFORE, at=0.0), parse(AFTER, at=30.0)).p99_seconds != pytest.approx(lifetime)


def test_excluded_paths_are_a_parameter():
    w = window(parse(BEFORE, at=0.0, exclude_paths=()), parse(AFTER, at=30.0, exclude_paths=()))
    assert w.requests == 35 + 12 + 3
    # with the 12 slow probes counted, rank 49.5 lands in (2.5, 10]: 2.5 + 7.5 * 11.5 / 12
    assert w.p99_seconds == pytest.approx(9.6875)
    only_root = window(parse(BEFORE, at=0.0, exclude_paths={"/healthz", "/metrics", "/chaos"}),
                       parse(AFTER, at=30.0, exclude_paths={"/healthz", "/metrics", "/chaos"}))
    assert only_root.requests == 35


def test_le_is_numeric_not_string_ordered():
    buckets = parse(BEFORE).buckets[(("method", "GET"), ("path", "/"))]
    assert sorted(buckets) == [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, INF]


def test_empty_window_has_no_rate_and_no_p99():
    w = window(parse(AFTER, at=0.0), parse(AFTER, at=5.0))
    assert (w.requests, w.errors, w.req_per_s, w.observations) == (0, 0, 0, 0)
    assert w.error_rate is None and w.p99_seconds is None and w.p99_ms is None


def exposition(requests: dict, histograms: dict, bounds=("0.1", "0.5", "1.0")) -> str:
    """prometheus_client's layout for the two traffic metrics (no _created lines, which are ignored anyway)."""
    lines = ["# HELP http_requests_total Total HTTP requests", "# TYPE http_requests_total counter"]
    for (method, path, code), value in requests.items():
        lines.append(f'http_requests_total{{method="{method}",path="{path}",status_code="{code}"}} {float(value)}')
    lines += ["# HELP http_request_duration_seconds Latency", "# TYPE http_request_duration_seconds histogram"]
    for (method, path), cumulative in histograms.items():
        for bound, value in zip([*bounds, "+Inf"], cumulative):
            lines.append(f'http_request_duration_seconds_bucket{{le="{bound}",method="{method}",path="{path}"}} '
                         f"{float(value)}")
        lines.append(f'http_request_duration_seconds_count{{method="{method}",path="{path}"}} {float(cumulative[-1])}')
    return "\n".join(lines) + "\n"


def test_counter_reset_counts_the_new_value():
    before = exposition({("GET", "/", "200"): 500, ("GET", "/", "500"): 9, ("GET", "/api", "200"): 40}, {})
    after = exposition({("GET", "/", "200"): 7, ("GET", "/", "500"): 1, ("GET", "/api", "200"): 45}, {})
    w = window(parse(before, at=0.0), parse(after, at=10.0))
    assert (w.requests, w.errors) == (7 + 1 + 5, 1)


def test_new_series_counts_from_zero():
    before = exposition({("GET", "/", "200"): 10}, {("GET", "/"): [10, 10, 10, 10]})
    after = exposition({("GET", "/", "200"): 10, ("GET", "/", "502"): 4},
                       {("GET", "/"): [10, 10, 10, 10], ("POST", "/"): [0, 4, 4, 4]})
    w = window(parse(before, at=0.0), parse(after, at=10.0))
    assert (w.requests, w.errors, w.error_rate) == (4, 4, 1.0)
    assert w.p99_seconds == pytest.approx(0.1 + 0.4 * (0.99 * 4) / 4)


def test_error_rate_counts_5xx_across_paths():
    before = exposition({("GET", "/", "200"): 100, ("GET", "/api", "200"): 50, ("POST", "/chaos", "500"): 1}, {})
    after = exposition({("GET", "/", "200"): 180, ("GET", "/", "500"): 6, ("GET", "/", "404"): 3,
                        ("GET", "/api", "200"): 70, ("GET", "/api", "503"): 3, ("POST", "/chaos", "500"): 2,
                        ("GET", "/healthz", "500"): 50}, {})
    w = window(parse(before, at=0.0), parse(after, at=20.0))
    assert w.requests == 80 + 6 + 3 + 20 + 3 + 1
    assert w.errors == 6 + 3 + 1
    assert w.error_rate == pytest.approx(10 / 113)


def test_histogram_reset_in_one_series_uses_its_new_values():
    before = exposition({}, {("GET", "/"): [50, 90, 100, 100], ("GET", "/api"): [10, 20, 20, 20]})
    after = exposition({}, {("GET", "/"): [60, 100, 110, 110], ("GET", "/api"): [0, 2, 2, 2]})
    w = window(parse(before, at=0.0), parse(after, at=10.0))
    assert w.observations == 10 + 2
    expected = bucket_quantile(0.99, [(0.1, 10), (0.5, 12), (1.0, 12), (INF, 12)])
    assert w.p99_seconds == pytest.approx(expected)


def test_histogram_count_decrease_alone_is_a_reset():
    before = exposition({}, {("GET", "/"): [1, 2, 3, 3]}).replace("_count{method=\"GET\",path=\"/\"} 3.0",
                                                                 "_count{method=\"GET\",path=\"/\"} 9.0")
    after = exposition({}, {("GET", "/"): [1, 2, 5, 5]})
    assert window(parse(before, at=0.0), parse(after, at=1.0)).observations == 5


def test_scrape_time_defaults_to_monotonic_clock():
    first, second = parse(BEFORE), parse(AFTER)
    assert isinstance(first, Scrape) and second.at >= first.at
    assert abs(first.wall - __import__("time").time()) < 60
    with pytest.raises(MetricsError, match="not later"):
        window(parse(AFTER, at=10.0), parse(AFTER, at=10.0))


def test_gauges():
    scrape = parse(AFTER)
    assert gauge(scrape, "chaos_active") == 2.0
    assert gauge(scrape, "app_mode") == 1.0
    assert gauge(scrape, "app_uptime_seconds") == 125.25
    assert gauge(scrape, "no_such_gauge") is None
    labelled = parse('# TYPE t gauge\nt{track="stable"} 0.0\nt{track="canary"} 1.0\n')
    assert gauge(labelled, "t", track="canary") == 1.0
    with pytest.raises(MetricsError, match="2 series"):
        gauge(labelled, "t")


@pytest.mark.parametrize("text, says", [
    (BEFORE.replace("chaos_active 0.0", "chaos_active zero"), "line 71"),
    ('http_requests_total{method="GET",path="/" 1.0\n', "line 1"),
    ("# TYPE x bogus\nx 1\n", "line 1"),
    ("", "empty"),
    ('# TYPE http_request_duration_seconds histogram\n'
     'http_request_duration_seconds_bucket{le="0.1",path="/"} 1.0\n', 'no le="+Inf"'),
    ('http_request_duration_seconds_bucket{le="fast",path="/"} 1.0\n', 'le="fast"'),
    ('http_requests_total{path="/"} 1.0\nhttp_requests_total{path="/"} 2.0\n', "twice"),
])
def test_malformed_text_is_one_line_metrics_error(text, says):
    with pytest.raises(MetricsError) as caught:
        parse(text)
    assert isinstance(caught.value, SwiftDeployError)
    assert says in str(caught.value) and "\n" not in str(caught.value)


DISTRIBUTIONS = {
    "lognormal": lambda rng: rng.lognormvariate(math.log(0.08), 0.6),
    "exponential": lambda rng: rng.expovariate(10.0),
    "uniform": lambda rng: rng.uniform(0.01, 0.9),
    "bimodal": lambda rng: max(0.001, rng.gauss(0.05, 0.01) if rng.random() < 0.95 else rng.gauss(0.6, 0.05)),
}
DENSE_BOUNDS = [round(0.01 * i, 2) for i in range(1, 151)] + [2.0, 5.0, 10.0]


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_windowed_p99_matches_the_exact_sample_p99(name):
    rng = random.Random(f"swiftdeploy-{name}")
    registry = CollectorRegistry()
    latency = Histogram("http_request_duration_seconds", "Latency", ["method", "path"],
                        buckets=DENSE_BOUNDS, registry=registry)
    for _ in range(2000):  # earlier traffic, much slower: a lifetime P99 would be wrong
        latency.labels("GET", "/").observe(rng.uniform(1.0, 1.45))
    before = parse(generate_latest(registry).decode(), at=0.0)
    samples = [DISTRIBUTIONS[name](rng) for _ in range(6000)]
    for i, value in enumerate(samples):
        latency.labels("GET", "/" if i % 3 else "/api").observe(value)
        if i % 50 == 0:
            latency.labels("GET", "/healthz").observe(4.0)  # excluded
    after = parse(generate_latest(registry).decode(), at=30.0)

    estimate = window(before, after).p99_seconds
    exact = sorted(samples)[math.ceil(0.99 * len(samples)) - 1]
    bucket = bisect.bisect_left(DENSE_BOUNDS, exact)  # buckets are (lower, upper]: first bound >= value
    assert bucket < len(DENSE_BOUNDS) - 3, "choose a distribution whose P99 lies in the dense part"
    assert bisect.bisect_left(DENSE_BOUNDS, estimate) == bucket
    width = DENSE_BOUNDS[bucket] - (DENSE_BOUNDS[bucket - 1] if bucket else 0.0)
    assert abs(estimate - exact) <= width


def test_a_p99_in_the_inf_bucket_is_flagged_saturated():
    before = exposition({("GET", "/", "200"): 0}, {("GET", "/"): [0, 0, 0, 0]})
    slow = exposition({("GET", "/", "200"): 100}, {("GET", "/"): [0, 0, 90, 100]})  # 10 % above 1 s
    fast = exposition({("GET", "/", "200"): 100}, {("GET", "/"): [50, 99, 100, 100]})
    saturated = window(parse(before, at=0.0), parse(slow, at=30.0))
    assert saturated.p99_saturated and saturated.p99_seconds == 1.0  # PromQL answers the top finite bound
    assert not window(parse(before, at=0.0), parse(fast, at=30.0)).p99_saturated
    assert not window(parse(before, at=0.0), parse(before, at=30.0)).p99_saturated  # no traffic: nothing to flag


def test_a_tracks_tasks_are_summed_before_the_window():
    from swiftdeploy.judge.metrics import total

    def task_text(ok, bad, fast):
        return (f'http_requests_total{{method="GET",path="/",status_code="200"}} {ok}\n'
                f'http_requests_total{{method="GET",path="/",status_code="500"}} {bad}\n'
                f'http_request_duration_seconds_bucket{{le="0.1",path="/"}} {fast}\n'
                f'http_request_duration_seconds_bucket{{le="+Inf",path="/"}} {ok + bad}\n'
                f'http_request_duration_seconds_count{{path="/"}} {ok + bad}\n')

    before = total([parse(task_text(10, 0, 10), at=0), parse(task_text(20, 0, 20), at=0)])
    after = total([parse(task_text(60, 1, 61), at=10), parse(task_text(118, 1, 119), at=10)])
    figures = window(before, after)
    assert (figures.requests, figures.errors) == (150, 2)
    assert figures.error_rate == pytest.approx(2 / 150) and figures.req_per_s == 15


def test_a_gauge_of_several_tasks_reads_as_its_highest_value():
    from swiftdeploy.judge.metrics import total

    tasks = [parse(f"# TYPE chaos_active gauge\nchaos_active {value}\n") for value in (0, 1, 0)]
    assert gauge(total(tasks), "chaos_active") == 1
