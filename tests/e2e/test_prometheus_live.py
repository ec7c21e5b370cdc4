"""The stack's real Prometheus (Debian's 2.42 in the stand-in image): PromQL figures agree with the direct
scrape over the same window, its recording rules run, and a chaos run is denied through either source."""

import dataclasses
import json
import time
import urllib.parse

import pytest
import requests

from stackkit import (WINDOW_SECONDS, SteadyLoad, at_once, containers, doit, free_port, make_project, manifest_of, ok,
                      public_url, remove_everything, require_engine, swiftdeploy)

pytestmark = pytest.mark.e2e
SCRAPE_INTERVAL = 1


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    require_engine()
    project = make_project(tmp_path_factory.mktemp("prometheus") / "project")
    manifest = project / "manifest.yaml"
    manifest.write_text(manifest.read_text() + f"prometheus:\n  port: {free_port()}\n"
                        f"  scrape_interval_seconds: {SCRAPE_INTERVAL}\nmetrics:\n  source: prometheus\n")
    yield project
    remove_everything(project)


def stack_of(project, source):
    from swiftdeploy.converge.stack import Stack

    stack = Stack.load(project)
    return dataclasses.replace(stack, manifest=dataclasses.replace(stack.manifest, metrics_source=source))


def promql(project, query):
    port = manifest_of(project).prometheus.port
    answer = requests.get(f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query}),
                          timeout=5).json()
    return {item["metric"].get("track"): float(item["value"][1]) for item in answer["data"]["result"]}


def wait_for(condition, seconds=30, what="condition"):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except requests.ConnectionError:  # Prometheus still starting
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met within {seconds} s")
        time.sleep(0.5)


def test_prometheus_runs_in_the_stack_on_loopback_only_and_scrapes_both_tracks(project):
    ok(swiftdeploy(project, "deploy"))
    ok(swiftdeploy(project, "promote", "canary"))
    [prometheus] = [c for c in containers(manifest_of(project).project)
                    if c.labels.get("com.docker.compose.service") == "prometheus"]
    bindings = prometheus.attrs["HostConfig"]["PortBindings"]
    assert [b["HostIp"] for b in bindings["9090/tcp"]] == ["127.0.0.1"]
    wait_for(lambda: promql(project, 'up{job="swiftdeploy"}') == {"stable": 1.0, "canary": 1.0}, 30,
             "Prometheus scraping both tracks")
    assert requests.get(public_url(project) + "/metrics", timeout=5).status_code != 200


@pytest.mark.parametrize("chaos", [("error", "--rate", "0.3"), ("slow", "--duration", "0.3")], ids=["errors", "slow"])
def test_promql_and_the_direct_scrape_agree_on_the_same_window(project, chaos):
    """Both sources over one window: the Sampler's two scrapes A and B, PromQL evaluated at B over B - A.

    The load stops around both instants, so the two windows hold the same requests: Prometheus samples
    the quiet before A's load and after it. increase() extrapolates its counts to the range's edges, so
    the request counts differ; the error rate and the P99 are ratios of series sampled at the same
    instants and must agree within 5 %.
    """
    from swiftdeploy.judge.analysis import Sampler
    from swiftdeploy.judge.prometheus import PrometheusSource

    url = public_url(project)
    ok(swiftdeploy(project, "chaos", *chaos))
    try:
        with SteadyLoad(url):
            time.sleep(4)  # every series (200s, 500s, each bucket) exists before the window
        time.sleep(2.5 * SCRAPE_INTERVAL)
        direct = Sampler(stack_of(project, "scrape"), WINDOW_SECONDS)
        direct.sample()  # A
        time.sleep(1.5 * SCRAPE_INTERVAL)  # Prometheus samples the quiet after A
        with SteadyLoad(url) as load:
            time.sleep(5)
        time.sleep(2.5 * SCRAPE_INTERVAL)  # ... and the quiet after the load
        direct.sample()  # B
    finally:
        ok(swiftdeploy(project, "chaos", "recover"))

    assert load.total > 20, load.outcomes
    scraped, base, latest = direct.window("canary")
    promql_window = PrometheusSource(f"http://127.0.0.1:{manifest_of(project).prometheus.port}").window(
        "canary", base, latest)
    through_sampler = Sampler(stack_of(project, "prometheus"), WINDOW_SECONDS)
    through_sampler.scrapes["canary"].extend(direct.scrapes["canary"])
    gate_figures = through_sampler.figures("canary")
    print(f"\nwindow {scraped.seconds:.2f} s, {load.total} requests sent ({dict(load.outcomes)})")
    for name, w in (("direct scrape", scraped), ("PromQL", promql_window)):
        print(f"{name:14} requests {w.requests:8.1f}  errors {w.errors:7.1f}  error rate {w.error_rate:.4f}  "
              f"p99 {w.p99_seconds * 1000:.2f} ms")
    if chaos[0] == "error":
        assert scraped.errors > 10 and scraped.requests > 50
    else:  # every request waits 0.3 s at least: a P99 inside the fine buckets between 0.25 s and 1 s
        assert scraped.errors == 0 and 0.3 <= scraped.p99_seconds < 1.0
    assert promql_window.error_rate == pytest.approx(scraped.error_rate, rel=0.05)
    assert promql_window.p99_seconds == pytest.approx(scraped.p99_seconds, rel=0.05)
    assert gate_figures["error_rate"] == pytest.approx(scraped.error_rate, rel=0.05)
    assert gate_figures["p99_ms"] == pytest.approx(scraped.p99_seconds * 1000, rel=0.05)
    # extrapolated to the range's edges: never fewer than were counted, at most the range over the sampled span
    assert scraped.requests <= promql_window.requests <= scraped.requests * 1.6


def test_the_recording_rules_run_in_the_stacks_prometheus(project):
    window = f"{WINDOW_SECONDS}s"
    with SteadyLoad(public_url(project)):
        wait_for(lambda: promql(project, f"job_track:http_requests:rate{window}").get("canary", 0) > 0, 20,
                 "the request rate rule")
        ratio = promql(project, f"job_track:http_requests_errors_per_requests:ratio_rate{window}")
        p99 = promql(project, f"job_track:http_request_duration_seconds:p99_rate{window}")
    assert ratio.get("canary") == 0.0 and 0 < p99["canary"] < 0.5


@pytest.mark.parametrize("source", ["prometheus", "scrape"])
def test_a_chaos_run_is_denied_through_either_source(project, source):
    manifest = project / "manifest.yaml"
    text = manifest.read_text()
    manifest.write_text(text.replace("  source: prometheus\n", f"  source: {source}\n"))
    try:
        ok(swiftdeploy(project, "chaos", "error", "--rate", "0.9"))
        with SteadyLoad(public_url(project)):
            time.sleep(1)
            gate, status = at_once(lambda: doit(project, "canary-gate", "--format", "json"),  # status takes no lock
                                   lambda: ok(swiftdeploy(project, "status", "--once", "--format", "json")))
            frame = json.loads(status.stdout)
    finally:
        manifest.write_text(text)  # first: the module's later tests read it even if the recover fails
        ok(swiftdeploy(project, "chaos", "recover"))
    answer = json.loads(gate.stdout)
    assert gate.returncode == 1 and answer["decision"] == "deny", gate.stderr
    assert any(reason.startswith("error rate") for reason in answer["reasons"]), answer
    assert answer["input"]["error_rate"] > 0.5 and answer["input"]["requests"] >= 20, answer
    assert "Traceback" not in gate.stderr
    canary = frame["tracks"]["canary"]
    assert frame["chaos"] == "error" and canary["down"] is None and canary["error_rate"] > 0.5, frame
    assert frame["policies"]["canary"]["decision"] == "deny", frame


def test_prometheus_stopped_makes_the_gate_undecided_with_one_line(project):
    [prometheus] = [c for c in containers(manifest_of(project).project)
                    if c.labels.get("com.docker.compose.service") == "prometheus"]
    prometheus.stop(timeout=5)
    try:
        gate = doit(project, "canary-gate", "--format", "json")
        answer = json.loads(gate.stdout)
        assert gate.returncode == 2 and answer["decision"] == "unknown", gate.stderr
        assert "could not query Prometheus at http://127.0.0.1:" in answer["error"], answer
        assert "Traceback" not in gate.stderr
        planned = swiftdeploy(project, "plan")
        assert "prometheus" in planned.stdout, planned.stdout + planned.stderr
    finally:
        ok(swiftdeploy(project, "deploy"))  # converges: starts Prometheus again
