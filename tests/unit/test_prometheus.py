"""Prometheus: the rendered config, rules and dashboard (checked and run by the real promtool), the compose
service and its planning, and the PromQL source's one-line failures."""

import dataclasses
import http.server
import json
import re
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from swiftdeploy.judge.analysis import Sampler
from swiftdeploy.render.desired import desired
from swiftdeploy.model.manifest import parse_manifest
from swiftdeploy.judge.metrics import Scrape
from swiftdeploy.converge.plan import AskGate, RemoveContainers, StartService, describe, plan
from swiftdeploy.judge.prometheus import PrometheusError, PrometheusSource, queries
from swiftdeploy.render.templates import render
from swiftdeploy.state import Container, ImageFact, Observed
from swiftdeploy.engine.tools import promtool_binary

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
BASE = """\
services:
  image: swift-deploy-1-node:latest
  port: 3000
  version: "1.0.0"
  mode: canary
  canary: {version: "1.1.0", window_seconds: 10}
nginx: {image: "nginx:latest", port: 8080}
network: {name: net1, driver_type: bridge}
"""
WITH_PROMETHEUS = BASE + "prometheus: {port: 9191, scrape_interval_seconds: 1}\nmetrics: {source: prometheus}\n"


@pytest.fixture
def rendered(tmp_path):
    manifest = parse_manifest(WITH_PROMETHEUS)
    for name in ("prometheus.yml", "prometheus-rules.yml", "grafana-dashboard.json"):
        (tmp_path / name).write_text(render(name, manifest, TEMPLATES))
    return tmp_path


def promtool(*args, cwd):
    return subprocess.run([promtool_binary(), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_promtool_accepts_the_config_and_the_rules(rendered):
    for check in (("check", "config", "prometheus.yml"), ("check", "rules", "prometheus-rules.yml")):
        result = promtool(*check, cwd=rendered)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_config_scrapes_each_track_by_service_name_never_the_public_port(rendered):
    config = yaml.safe_load((rendered / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "1s" and config["rule_files"] == ["prometheus-rules.yml"]
    [job] = config["scrape_configs"]
    targets = {c["labels"]["track"]: c["targets"] for c in job["static_configs"]}
    assert targets == {"stable": ["app-stable:3000"], "canary": ["app-canary:3000"]}
    assert "8080" not in (rendered / "prometheus.yml").read_text()


RULE_TEST = """\
rule_files: [prometheus-rules.yml]
evaluation_interval: 1s
tests:
  - interval: 1s
    input_series:
      - {series: 'http_requests_total{job="swiftdeploy",track="canary",path="/",method="GET",status_code="200"}', values: '0+9x60'}
      - {series: 'http_requests_total{job="swiftdeploy",track="canary",path="/",method="GET",status_code="500"}', values: '0+1x60'}
      - {series: 'http_requests_total{job="swiftdeploy",track="canary",path="/healthz",method="GET",status_code="500"}', values: '0+50x60'}
      - {series: 'http_requests_total{job="swiftdeploy",track="stable",path="/",method="GET",status_code="200"}', values: '0+4x60'}
      - {series: 'http_request_duration_seconds_bucket{job="swiftdeploy",track="canary",path="/",method="GET",le="0.25"}', values: '0+5x60'}
      - {series: 'http_request_duration_seconds_bucket{job="swiftdeploy",track="canary",path="/",method="GET",le="0.5"}', values: '0+10x60'}
      - {series: 'http_request_duration_seconds_bucket{job="swiftdeploy",track="canary",path="/",method="GET",le="+Inf"}', values: '0+10x60'}
      - {series: 'http_request_duration_seconds_bucket{job="swiftdeploy",track="canary",path="/metrics",method="GET",le="0.25"}', values: '0+0x60'}
      - {series: 'http_request_duration_seconds_bucket{job="swiftdeploy",track="canary",path="/metrics",method="GET",le="0.5"}', values: '0+0x60'}
      - {series: 'http_request_duration_seconds_bucket{job="swiftdeploy",track="canary",path="/metrics",method="GET",le="+Inf"}', values: '0+90x60'}
    promql_expr_test:
      - expr: job_track:http_requests_errors_per_requests:ratio_rate10s
        eval_time: 30s
        exp_samples:
          - {labels: 'job_track:http_requests_errors_per_requests:ratio_rate10s{job="swiftdeploy",track="canary"}', value: 0.1}
          - {labels: 'job_track:http_requests_errors_per_requests:ratio_rate10s{job="swiftdeploy",track="stable"}', value: 0}
      - expr: job_track:http_request_duration_seconds:p99_rate10s{track="canary"}
        eval_time: 30s
        exp_samples:
          - {labels: 'job_track:http_request_duration_seconds:p99_rate10s{job="swiftdeploy",track="canary"}', value: 0.495}
      - expr: job_track:http_requests:rate10s
        eval_time: 30s
        exp_samples:
          - {labels: 'job_track:http_requests:rate10s{job="swiftdeploy",track="canary"}', value: 10}
          - {labels: 'job_track:http_requests:rate10s{job="swiftdeploy",track="stable"}', value: 4}
"""


def test_the_recording_rules_compute_each_tracks_error_rate_and_p99_without_probes(rendered):
    # canary: 9 ok + 1 error a second on "/", 50 probe errors a second on /healthz (not traffic);
    # P99 of "/": rank 9.9 of 10 in (0.25, 0.5] holding 5 -> 0.25 + 0.25 * 4.9 / 5 = 0.495
    (rendered / "rules_test.yml").write_text(RULE_TEST)
    result = promtool("test", "rules", "rules_test.yml", cwd=rendered)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_plots_recording_rules_that_exist(rendered):
    dashboard = json.loads((rendered / "grafana-dashboard.json").read_text())
    rules = yaml.safe_load((rendered / "prometheus-rules.yml").read_text())
    recorded = {rule["record"] for group in rules["groups"] for rule in group["rules"]}
    queried = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)[0] for expr in queried}
    assert len(queried) == 3 and named <= recorded
    assert {"job_track:http_requests_errors_per_requests:ratio_rate10s",
            "job_track:http_request_duration_seconds:p99_rate10s"} <= named
    assert dashboard["uid"] == "swiftdeploy-swiftdeploy" and dashboard["id"] is None
    assert [v["type"] for v in dashboard["templating"]["list"]] == ["datasource"]
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
    assert all(t["legendFormat"] == "{{track}}" for p in dashboard["panels"] for t in p["targets"])


def test_the_compose_service_exists_only_with_a_prometheus_block_and_only_on_loopback():
    without = yaml.safe_load(render("docker-compose.yml", parse_manifest(BASE), TEMPLATES))
    assert "prometheus" not in without["services"] and "metrics" not in without["networks"]
    assert without["services"]["app-stable"]["networks"] == ["app"]
    stack = yaml.safe_load(render("docker-compose.yml", parse_manifest(WITH_PROMETHEUS), TEMPLATES))
    service = stack["services"]["prometheus"]
    assert service["ports"] == ["127.0.0.1:9191:9090"] and service["networks"] == ["metrics"]
    assert service["read_only"] and service["cap_drop"] == ["ALL"] and service["user"] == "65534:65534"
    assert "--storage.tsdb.path=/tmp/prometheus" in service["command"] and service["tmpfs"] == ["/tmp"]
    assert stack["services"]["app-canary"]["networks"] == ["app", "metrics"]
    assert stack["services"]["nginx"]["networks"] == ["app"] and stack["networks"]["metrics"]["name"] == "net1-metrics"


def test_a_scrape_setting_change_recreates_prometheus_so_it_reads_its_new_config():
    before = desired(parse_manifest(WITH_PROMETHEUS), TEMPLATES).services["prometheus"]
    after = desired(parse_manifest(WITH_PROMETHEUS.replace("scrape_interval_seconds: 1", "scrape_interval_seconds: 2")),
                    TEMPLATES).services["prometheus"]
    assert before.spec != after.spec


def running(state, role):
    spec = state.services[role]
    return Container(id=f"id-{spec.service}-{spec.spec}", name=f"p-{spec.service}-1", role=role, spec=spec.spec,
                     version=spec.version, image_id="sha256:a", state="running",
                     health="healthy" if role in ("stable", "canary") else None, compose_service=spec.service)


def test_a_running_stack_gets_prometheus_after_the_infra_gate_and_loses_it_with_the_block():
    now = desired(parse_manifest(WITH_PROMETHEUS), TEMPLATES)
    up = [running(now, role) for role in ("stable", "canary", "nginx", "opa")]
    seen = Observed(containers=tuple(up), served_generation=now.generation,
                    images={"swift-deploy-1-node:latest": ImageFact(id="sha256:a")})
    steps = plan(now, seen, lambda m: desired(m, TEMPLATES), gates=("infra",))
    assert [type(s) for s in steps] == [AskGate, StartService] and steps[1].role == "prometheus"
    assert describe(steps)[1] == "start prometheus"

    without = desired(parse_manifest(BASE), TEMPLATES)
    seen = dataclasses.replace(seen, containers=(*seen.containers, running(now, "prometheus")))
    steps = plan(without, seen, lambda m: desired(m, TEMPLATES))
    removed = [c.role for s in steps if isinstance(s, RemoveContainers) for c in s.containers]
    assert "prometheus" in removed


# -- the PromQL source ---------------------------------------------------------------------------------


def scrape_at(at):
    return Scrape(at=at, wall=1_700_000_000 + at, requests={}, buckets={}, counts={}, gauges={})


def answer(*samples, status=200):
    result = [{"metric": labels, "value": [1_700_000_000, value]} for labels, value in samples]
    return status, json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


def source_answering(replies: dict):
    """A PrometheusSource whose HTTP GET returns, for each query, the reply of the first key it contains."""
    asked = []

    def get(url):
        from urllib.parse import parse_qs, urlparse

        query = parse_qs(urlparse(url).query)["query"][0]
        asked.append(query)
        return next(reply for key, reply in replies.items() if key in query)

    source = PrometheusSource("http://127.0.0.1:1", get=get)
    return source, asked


def test_the_window_is_read_from_promql_at_the_later_instant_over_the_windows_length():
    source, asked = source_answering({
        "http_requests_total": answer(({"status_code": "200"}, "90"), ({"status_code": "503"}, "10")),
        "sum by (le) (increase": answer(({"le": "0.25"}, "50"), ({"le": "0.5"}, "100"), ({"le": "+Inf"}, "100")),
        "histogram_quantile": answer(({}, "0.495")),
    })
    w = source.window("canary", scrape_at(10.0), scrape_at(15.25))
    assert (w.requests, w.errors, w.error_rate, w.p99_seconds, w.observations, w.p99_saturated) == (
        100, 10, 0.1, 0.495, 100, False)
    assert all("[5250ms]" in q and 'track="canary"' in q and 'path!~"/healthz|/metrics"' in q for q in asked)
    assert asked == list(queries("canary", 5250).values())


def test_an_empty_window_has_no_error_rate_and_no_p99_not_a_pass():
    source, _ = source_answering({"http_requests_total": answer(), "increase": answer(),
                                  "histogram_quantile": answer(({}, "NaN"))})
    w = source.window("canary", scrape_at(0), scrape_at(5))
    assert (w.requests, w.error_rate, w.p99_seconds) == (0, None, None)


def test_a_p99_beyond_the_last_finite_bucket_is_flagged_saturated():
    source, _ = source_answering({"http_requests_total": answer(({"status_code": "200"}, "100")),
                                  "increase": answer(({"le": "60"}, "90"), ({"le": "+Inf"}, "100")),
                                  "histogram_quantile": answer(({}, "60"))})
    assert source.window("canary", scrape_at(0), scrape_at(5)).p99_saturated


def test_a_track_prometheus_cannot_scrape_is_down_with_why():
    source, _ = source_answering({"up{": answer(({"track": "canary"}, "0"))})
    with pytest.raises(PrometheusError, match=r"^Prometheus at http://127.0.0.1:1 cannot scrape the canary track"):
        source.sample("canary")
    source, _ = source_answering({"up{": answer()})
    with pytest.raises(PrometheusError, match="has no target for the canary track"):
        source.sample("canary")


def test_sample_carries_the_tracks_gauges_for_status():
    source, _ = source_answering({"up{": answer(({"track": "canary"}, "1")),
                                  "__name__": answer(({"__name__": "chaos_active", "track": "canary"}, "2"))})
    sample = source.sample("canary")
    assert sample.gauges["chaos_active"][0][1] == 2.0


@pytest.mark.parametrize("reply, message", [
    ((200, "<html>oops</html>"), "answered HTTP 200 with something that is not JSON: '<html>oops</html>'"),
    ((200, "[1, 2]"), "answered a JSON list, not an object"),
    ((400, json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error at char 5:\n bad"})),
     "refused the query (HTTP 400, bad_data): parse error at char 5: bad"),
    ((503, "{}"), "refused the query (HTTP 503, ?): no error given"),
    ((200, json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}})),
     "answered without a vector result"),
    ((200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}})),
     "answered a malformed sample"),
    ((200, json.dumps({"status": "success", "data": {"resultType": "vector",
                                                      "result": [{"metric": {}, "value": [1, "many"]}]}})),
     "answered a malformed sample"),
])
def test_a_malformed_answer_is_one_line(reply, message):
    source = PrometheusSource("http://127.0.0.1:1", get=lambda url: reply)
    with pytest.raises(PrometheusError) as caught:
        source.query("up", 0)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_prometheus_down_is_one_line_naming_where():
    port = free_port()  # nothing listens there
    with pytest.raises(PrometheusError) as caught:
        PrometheusSource(f"http://127.0.0.1:{port}").query("up", 0)
    assert str(caught.value).startswith(f"could not query Prometheus at http://127.0.0.1:{port}: ")
    assert "Connection refused" in str(caught.value) and "\n" not in str(caught.value)


def test_a_real_http_error_answer_is_read_not_raised_raw():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": "error", "errorType": "execution", "error": "query timed out"}).encode()
            self.send_response(422)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(PrometheusError, match=r"refused the query \(HTTP 422, execution\): query timed out"):
            PrometheusSource(f"http://127.0.0.1:{server.server_port}").query("up", 0)
    finally:
        server.shutdown()


class StackWith:
    """What Sampler reads of a stack: its manifest, and a runtime whose nginx log reads nothing."""

    def __init__(self, manifest):
        self.manifest = manifest
        self.runtime = self

    def exec(self, service, command):
        return subprocess.CompletedProcess(command, 0, stdout="0\n", stderr="")


def test_the_sampler_asks_prometheus_when_the_manifest_says_so_and_a_failure_marks_the_track_down():
    stack = StackWith(parse_manifest(WITH_PROMETHEUS))
    port = free_port()
    stack.manifest = dataclasses.replace(stack.manifest, prometheus=dataclasses.replace(stack.manifest.prometheus,
                                                                                         port=port))
    sampler = Sampler(stack, 5)
    assert isinstance(sampler.source, PrometheusSource) and sampler.source.url == f"http://127.0.0.1:{port}"
    ready = Container(id="c1", name="c", role="canary", spec=None, version=None, image_id="", state="running",
                      health="healthy")
    sampler.sample({"canary": ready, "stable": ready})
    assert sampler.down["canary"].startswith(f"could not query Prometheus at http://127.0.0.1:{port}")
    with pytest.raises(Exception, match="could not query Prometheus"):
        sampler.gate_input()
    assert Sampler(StackWith(parse_manifest(BASE)), 5).source is None


def json_values():
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(["status", "data", "resultType", "result", "metric",
                                                           "value", "error", "errorType", "le"]) | st.text(max_size=4),
                                          inner, max_size=4), max_leaves=12)


def test_any_answer_is_read_or_refused_in_one_line():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    bodies = (st.text(max_size=200) | json_values().map(json.dumps)
              | st.lists(st.tuples(st.dictionaries(st.sampled_from(["le", "status_code", "track"]),
                                                   st.text(max_size=5), max_size=2),
                                   st.text(max_size=6) | st.sampled_from(["NaN", "+Inf", "1e3", "7"])), max_size=3)
              .map(lambda samples: answer(*samples)[1]))

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from([200, 400, 422, 500, 503]), bodies)
    def check(status, body):
        source = PrometheusSource("http://127.0.0.1:1", get=lambda url: (status, body))
        try:
            source.window("canary", scrape_at(0), scrape_at(5))
        except PrometheusError as err:
            assert len(str(err).splitlines()) == 1 and str(err).strip()

    check()
