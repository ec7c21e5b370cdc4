"""The manifest is validated once, at the door, and every problem is named with its path."""

import json
from pathlib import Path

import pytest

from swiftdeploy.model.manifest import SCHEMA_PATH, ManifestError, load_manifest, parse_manifest

ROOT = Path(__file__).resolve().parents[2]

ARTICLE = """\
services:
  name: app
  image: swift-deploy-1-node:latest
  port: 3000
  version: "1.0.0"
  mode: stable
nginx:
  image: nginx:latest
  port: 8080
  proxy_timeout: 30
network:
  name: swiftdeploy-net
  driver_type: bridge
"""


def with_lines(*replacements: tuple[str, str]) -> str:
    text = ARTICLE
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


def problems_of(text: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    return caught.value.problems


def test_the_articles_manifest_is_accepted_verbatim_with_documented_defaults():
    m = parse_manifest(ARTICLE)
    assert (m.services.name, m.services.image, m.services.port, m.services.version, m.services.mode) == (
        "app", "swift-deploy-1-node:latest", 3000, "1.0.0", "stable")
    assert (m.nginx.port, m.nginx.proxy_timeout, m.network.name) == (8080, 30, "swiftdeploy-net")
    assert m.services.canary.weight == 100 and m.services.canary.version == "1.0.0"
    assert m.opa.port == 8181 and m.opa.image.startswith("openpolicyagent/opa:1.")
    assert m.project == "swiftdeploy" and m.log_volume == "swiftdeploy-logs"


def test_the_committed_manifest_is_the_articles_plus_comments():
    committed = load_manifest(ROOT / "manifest.yaml")
    assert committed == parse_manifest(ARTICLE)


@pytest.mark.parametrize("spelling, expected", [('"30s"', 30), ("45", 45), ('"7"', 7)])
def test_proxy_timeout_spellings_peers_write(spelling, expected):
    m = parse_manifest(with_lines(("proxy_timeout: 30", f"proxy_timeout: {spelling}")))
    assert m.nginx.proxy_timeout == expected


def test_peer_keys_are_accepted():
    text = with_lines(
        ("  mode: stable\n", "  mode: stable\n  restart_policy: always\n  log_volume: my-logs\n"),
        ("  proxy_timeout: 30\n", "  proxy_timeout: 30\n  contact: oncall@example.org\n"),
    ) + "opa:\n  image: openpolicyagent/opa:1.22.3\n  port: 8282\n"
    m = parse_manifest(text)
    assert m.services.restart_policy == "always" and m.log_volume == "my-logs"
    assert m.nginx.contact == "oncall@example.org" and m.opa.port == 8282


def test_alias_spellings_that_disagree_are_an_error():
    text = with_lines(("  mode: stable\n", "  mode: stable\n  restart_policy: always\n  restart: \"no\"\n"))
    assert problems_of(text) == [
        "services/restart_policy and services/restart: say the same thing differently; keep one of them"]


def test_every_problem_is_reported_at_once_with_its_path():
    text = with_lines(("port: 8080", "port: 70000"), ("mode: stable", "mode: blue"),
                      ("driver_type: bridge", "driver_type: overlay"), ('version: "1.0.0"', "version: 1.0"))
    assert problems_of(text) == [
        "network/driver_type: must be one of bridge; got \"overlay\"",
        "nginx/port: must be 1-65535, got 70000",
        "services/mode: must be one of stable, canary; got \"blue\"",
        'services/version: must be a string, got number 1.0 (a version such as "1.0.0"; quote it, '
        "or YAML reads 1.0 as a number)",
    ]


def test_unknown_keys_get_a_did_you_mean():
    assert problems_of(with_lines(("  port: 8080", "  prot: 8080"))) == [
        "nginx/port: is required", 'nginx/prot: unknown key (did you mean "port"?)']
    [line] = problems_of(ARTICLE + "zzz: 1\n")
    assert line.startswith("zzz: unknown key (known keys: ")


BAD = {
    "empty file": ("", "the file is empty"),
    "only a comment": ("# nothing\n", "the file is empty"),
    "a list": ("- 1\n- 2\n", "must be a mapping of sections, got list"),
    "a scalar": ("hello\n", "must be a mapping of sections, got string"),
    "YAML syntax": ("services: [\n", "line 2, column 1"),
    "tab indentation": ("services:\n\tname: app\n", "line 2"),
    "duplicate key": (ARTICLE + "nginx: {}\n", "duplicate key 'nginx' (first on line 7)"),
    "alias": ("a: &x 1\nb: *x\n", "YAML aliases"),
    "missing services": (ARTICLE.split("nginx:")[0].replace("services:", "x:"), "services: is required"),
    "services null": (with_lines(("services:\n  name: app", "services:\n  # name: app")).replace(
        "services:\n  # name: app\n  image: swift-deploy-1-node:latest\n  port: 3000\n  version: \"1.0.0\"\n"
        "  mode: stable\n", "services:\n"), "services: must be an object, got null"),
    "missing image": (with_lines(("  image: swift-deploy-1-node:latest\n", "")), "services/image: is required"),
    "port zero": (with_lines(("port: 3000", "port: 0")), "services/port: must be 1-65535, got 0"),
    "port string": (with_lines(("port: 3000", "port: abc")), 'services/port: must be an integer, got string "abc"'),
    "port float": (with_lines(("port: 3000", "port: 3000.5")), "services/port: must be an integer"),
    "port bool": (with_lines(("port: 8080", "port: yes")), "nginx/port: must be an integer, got boolean true"),
    "negative timeout": (with_lines(("proxy_timeout: 30", "proxy_timeout: -1")), "nginx/proxy_timeout: must be 1-3600"),
    "timeout units": (with_lines(("proxy_timeout: 30", "proxy_timeout: 30m")), "nginx/proxy_timeout: must be a number of seconds"),
    "huge timeout string": (with_lines(("proxy_timeout: 30", 'proxy_timeout: "9999s"')), "nginx/proxy_timeout"),
    "bad mode": (with_lines(("mode: stable", "mode: Stable")), "services/mode: must be one of stable, canary"),
    "unquoted no": (with_lines(("  mode: stable\n", "  mode: stable\n  restart_policy: no\n")), "quote it"),
    "bad image": (with_lines(("image: nginx:latest", "image: 'NGINX latest'")), "nginx/image: must be an image reference"),
    "empty image": (with_lines(("image: nginx:latest", "image: ''")), "nginx/image: must be an image reference"),
    "bad name": (with_lines(("name: app", "name: My App")), "services/name: must be lowercase"),
    "bad network name": (with_lines(("name: swiftdeploy-net", "name: 'bad net'")), "network/name:"),
    "overlay driver": (with_lines(("driver_type: bridge", "driver_type: host")), "network/driver_type"),
    "canary weight 0": (with_lines(("  mode: stable\n", "  mode: stable\n  canary: {weight: 0}\n")),
                        "services/canary/weight: must be 1-100, got 0"),
    "canary weight 101": (with_lines(("  mode: stable\n", "  mode: stable\n  canary: {weight: 101}\n")),
                          "services/canary/weight: must be 1-100, got 101"),
    "canary unknown key": (with_lines(("  mode: stable\n", "  mode: stable\n  canary: {wieght: 5}\n")),
                           'services/canary/wieght: unknown key (did you mean "weight"?)'),
    "contact with quote": (with_lines(("  proxy_timeout: 30\n", "  proxy_timeout: 30\n  contact: \"a'b\"\n")),
                           "nginx/contact: must be text without quotes"),
    "opa port string": (ARTICLE + "opa: {port: '8181'}\n", 'opa/port: must be an integer, got string "8181"'),
    "section is a list": (ARTICLE.replace("network:\n  name: swiftdeploy-net\n  driver_type: bridge\n",
                                          "network: [a]\n"), "network: must be an object, got list"),
    "version empty": (with_lines(('version: "1.0.0"', 'version: ""')), "services/version: must be a version"),
    "project bad": ("project: Bad Name\n" + ARTICLE, "project: must be lowercase letters"),
    "timeout too large": (with_lines(("proxy_timeout: 30", "proxy_timeout: 99999999999999999999")),
                          'nginx/proxy_timeout: line 10, column 18: integer "99999999999999999999" is too large'),
    "timeout too large, flow style": (
        ARTICLE.split("nginx:")[0] + "nginx: {image: nginx:latest, port: 8080, proxy_timeout: 99999999999999999999}\n"
        + "network:" + ARTICLE.split("network:")[1], 'nginx/proxy_timeout: line 7, column 57: integer "9999'),
    "month 13 as a key": (ARTICLE + "network2: {2024-13-45: 1}\n",
                          'network2: line 14, column 12: cannot read "2024-13-45" as timestamp'),
    "month 13 in a list": (with_lines(("  mode: stable\n", "  mode: stable\n  canary: {steps: [10, 2024-13-45]}\n")),
                           'services/canary/steps/1: line 7, column 24: cannot read "2024-13-45" as timestamp'),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_manifests_get_one_line_errors_with_their_path(case):
    text, expected = BAD[case]
    problems = problems_of(text)
    assert problems and all("\n" not in p and "Traceback" not in p for p in problems)
    assert any(expected in p for p in problems), problems


def test_oversized_and_binary_files_are_refused():
    assert "at most" in problems_of("#" * 300_000)[0]
    with pytest.raises(ManifestError, match="not UTF-8"):
        parse_manifest(b"\xff\xfe\x00")


def test_a_missing_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: file not found (create it, or run from the project directory)"


def test_the_published_schema_is_the_one_the_validator_uses():
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"].endswith("2020-12/schema")
    assert set(schema["properties"]["nginx"]["properties"]) >= {"image", "port", "proxy_timeout", "contact"}
    first_line = (ROOT / "manifest.yaml").read_text().splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=./src/swiftdeploy/model/manifest.schema.json"


def canary_block(**keys) -> str:
    lines = "".join(f"    {key}: {json.dumps(value)}\n" for key, value in keys.items())
    return with_lines(("  mode: stable\n", f"  mode: stable\n  canary:\n{lines}"))


def test_a_rollout_schedule_and_its_defaults():
    canary = parse_manifest(ARTICLE).services.canary
    assert (canary.steps, canary.step_seconds, canary.interval_seconds, canary.failure_limit,
            canary.step_deadline_seconds) == ((100,), 30, 10, 1, 150)
    canary = parse_manifest(canary_block(weight=10, window_seconds=20, steps=[20, 50, 100])).services.canary
    assert (canary.steps, canary.step_seconds, canary.step_deadline_seconds) == ((20, 50, 100), 20, 140)
    assert parse_manifest(canary_block(weight=25)).services.canary.steps == (25,)


@pytest.mark.parametrize("keys, problem", [
    ({"steps": [50, 20]}, "services/canary/steps: must rise step by step, got [50, 20]"),
    ({"steps": [20, 20]}, "services/canary/steps: must rise step by step, got [20, 20]"),
    ({"steps": []}, "services/canary/steps: [] should be non-empty"),
    ({"steps": [0, 50]}, "services/canary/steps/0: must be 1-100, got 0"),
    ({"steps": "20,50"}, 'services/canary/steps: must be an array, got string "20,50"'),
    ({"step_seconds": 60, "step_deadline_seconds": 60},
     "services/canary/step_deadline_seconds: must be longer than step_seconds (60), got 60"),
    ({"failure_limit": 0}, "services/canary/failure_limit: must be 1-100, got 0"),
])
def test_a_bad_schedule_is_one_line_naming_the_key(keys, problem):
    assert problems_of(canary_block(**keys)) == [problem]


def test_prometheus_and_metrics_source_default_off():
    m = parse_manifest(ARTICLE)
    assert m.metrics_source == "scrape"
    assert (m.prometheus.enabled, m.prometheus.image, m.prometheus.port, m.prometheus.scrape_interval_seconds) == (
        False, "prom/prometheus:v2.42.0", 9090, 5)


def test_a_prometheus_block_runs_one_and_metrics_can_come_from_it():
    m = parse_manifest(canary_block(window_seconds=10) + "prometheus:\n  port: 9191\n  scrape_interval_seconds: 2\n"
                       "metrics:\n  source: prometheus\n")
    assert (m.prometheus.enabled, m.prometheus.port, m.prometheus.scrape_interval_seconds) == (True, 9191, 2)
    assert m.metrics_source == "prometheus"
    assert parse_manifest(ARTICLE + "prometheus: {}\n").prometheus.enabled


@pytest.mark.parametrize("text, problem", [
    (ARTICLE + "metrics: {source: prometheus}\n",
     "metrics/source: prometheus needs a prometheus: block (the stack's Prometheus to ask)"),
    (ARTICLE + "metrics: {source: promql}\n", 'metrics/source: must be one of scrape, prometheus, nginx; got "promql"'),
    (ARTICLE + "metrics: {sauce: scrape}\n", 'metrics/sauce: unknown key (did you mean "source"?)'),
    (ARTICLE + "prometheus:\n", "prometheus: must be an object, got null"),
    (ARTICLE + "prometheus: {port: 0}\n", "prometheus/port: must be 1-65535, got 0"),
    (ARTICLE + "prometheus: {scrape_interval_seconds: 0}\n", "prometheus/scrape_interval_seconds: must be 1-300, got 0"),
    (ARTICLE + "prometheus: {scrape_interval_seconds: 16}\n",
     "prometheus/scrape_interval_seconds: must be at most half of services/canary/window_seconds (30), "
     "so a window holds two samples; got 16"),
    (ARTICLE + "prometheus: {image: 'Prom Prometheus'}\n",
     'prometheus/image: must be an image reference such as nginx:latest or registry:5000/team/app:1.2, '
     'got "Prom Prometheus"'),
])
def test_bad_prometheus_and_metrics_keys_are_one_line_each(text, problem):
    assert problems_of(text) == [problem]


@pytest.mark.parametrize(("given", "workers"), [("", None), ("  workers: auto\n", None), ("  workers: 4\n", 4)])
def test_the_bundled_apps_workers_default_to_auto(given, workers):
    assert parse_manifest(ARTICLE.replace("  mode: stable\n", "  mode: stable\n" + given)).services.workers == workers


@pytest.mark.parametrize(("value", "shown"), [("0", "0"), ("65", "65"), ("many", '"many"'), ("true", "true"),
                                              ("2.5", "2.5")])
def test_workers_out_of_range_is_one_line_naming_the_key(value, shown):
    with pytest.raises(ManifestError) as caught:
        parse_manifest(ARTICLE.replace("  mode: stable\n", f"  mode: stable\n  workers: {value}\n"))
    assert caught.value.problems == [f"services/workers: must be auto, or an integer 1-64, got {shown}"]


def test_runtime_defaults_to_compose_and_swarm_takes_replicas():
    assert parse_manifest(ARTICLE).runtime == "compose"
    assert parse_manifest(ARTICLE).services.replicas == 1
    swarm = parse_manifest("runtime: swarm\n" + ARTICLE.replace("  mode: stable\n", "  mode: stable\n  replicas: 3\n"))
    assert (swarm.runtime, swarm.services.replicas) == ("swarm", 3)
    assert (swarm.swarm.endpoint_mode, swarm.swarm.publish_mode, swarm.swarm.engines) == ("dnsrr", "host", ())
    nodes = parse_manifest("runtime: swarm\n" + ARTICLE + "swarm: {engines: [tcp://10.0.0.2:2375, ssh://ops@node3]}\n")
    assert nodes.swarm.engines == ("tcp://10.0.0.2:2375", "ssh://ops@node3")


@pytest.mark.parametrize("text, problem", [
    ("runtime: kubernetes\n" + ARTICLE, 'runtime: must be one of compose, swarm; got "kubernetes"'),
    ("runtime: swarm\n" + ARTICLE.replace("  mode: stable\n", "  mode: stable\n  replicas: 0\n"),
     "services/replicas: must be 1-50, got 0"),
    ("runtime: swarm\n" + ARTICLE.replace("  mode: stable\n", "  mode: stable\n  replicas: two\n"),
     'services/replicas: must be an integer, got string "two"'),
    (ARTICLE.replace("  mode: stable\n", "  mode: stable\n  replicas: 2\n"),
     "services/replicas: 2 needs runtime: swarm (compose runs one container per track)"),
    ("runtime: swarm\n" + ARTICLE + "prometheus: {}\n",
     "prometheus: not supported with runtime: swarm yet (remove the block, or use runtime: compose)"),
    (ARTICLE + "swarm: {endpoint_mode: vip}\n", "swarm: needs runtime: swarm (the compose runtime has no such settings)"),
    ("runtime: swarm\n" + ARTICLE + "swarm: {endpoint_mode: ipvs}\n",
     'swarm/endpoint_mode: must be one of dnsrr, vip; got "ipvs"'),
    ("runtime: swarm\n" + ARTICLE + "swarm: {publish: host}\n",
     'swarm/publish: unknown key (did you mean "publish_mode"?)'),
    ("runtime: swarm\n" + ARTICLE + "swarm: {engines: tcp://10.0.0.2:2375}\n",
     'swarm/engines: must be an array, got string "tcp://10.0.0.2:2375"'),
    ("runtime: swarm\n" + ARTICLE + "swarm: {engines: ['10.0.0.2:2375']}\n",
     'swarm/engines/0: must be a Docker endpoint such as tcp://10.0.0.2:2376 or ssh://ops@node2, got "10.0.0.2:2375"'),
])
def test_bad_runtime_keys_are_one_line_each(text, problem):
    assert problems_of(text) == [problem]
