"""Rendering is pure: the same manifest gives the same bytes, and the files say what the spec says."""

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml

from swiftdeploy.model.manifest import load_manifest
from swiftdeploy.render.templates import OUTPUTS, RenderError, generation_of, manifest_slice, render

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"


@pytest.fixture
def stable():
    return load_manifest(ROOT / "manifest.yaml")


def canary_of(manifest, weight=100, version="1.1.0"):
    return dataclasses.replace(manifest, services=dataclasses.replace(
        manifest.services, mode="canary",
        canary=dataclasses.replace(manifest.services.canary, weight=weight, version=version)))


def compose(manifest):
    return yaml.safe_load(render("docker-compose.yml", manifest, TEMPLATES))


def test_rendering_is_deterministic(stable):
    for output in OUTPUTS:
        assert render(output, stable, TEMPLATES) == render(output, stable, TEMPLATES)


def test_each_output_sees_only_its_manifest_fields(stable):
    assert manifest_slice(stable, OUTPUTS["opa-config.yaml"][1]) == {"project": "swiftdeploy", "services": {"name": "app"}}
    nginx_fields = manifest_slice(stable, OUTPUTS["nginx.conf"][1])
    assert "image" not in nginx_fields["services"] and "image" not in nginx_fields["nginx"]


def test_nginx_conf_follows_the_manifest(stable):
    text = render("nginx.conf", stable, TEMPLATES)
    assert "listen 8080;" in text
    for directive in ("proxy_send_timeout", "proxy_read_timeout"):
        assert f"{directive} 30s;" in text
    assert "proxy_connect_timeout 2s;" in text, "a down track fails fast, not after the read timeout"
    assert "log_format swiftdeploy '$time_iso8601 | $status | ${request_time}s | $upstream_addr | $request';" in text
    assert "add_header X-Deployed-By swiftdeploy always;" in text
    assert "app-canary" not in text


def test_the_config_generation_changes_with_the_config(stable):
    one = generation_of(render("nginx.conf", stable, TEMPLATES))
    other = generation_of(render("nginx.conf", canary_of(stable), TEMPLATES))
    assert len(one) == 12 and one != other


@pytest.mark.parametrize("weight, lines", [
    (100, ["server unix:/tmp/swiftdeploy-canary.sock max_fails=3 fail_timeout=5s;",
           "server unix:/tmp/swiftdeploy-stable.sock backup;"]),
    (25, ["server unix:/tmp/swiftdeploy-stable.sock weight=75 max_fails=3 fail_timeout=5s;",
          "server unix:/tmp/swiftdeploy-canary.sock weight=25 max_fails=3 fail_timeout=5s;"]),
])
def test_canary_mode_splits_traffic_by_weight_and_sends_chaos_to_the_canary(stable, weight, lines):
    text = render("nginx.conf", canary_of(stable, weight), TEMPLATES)
    for line in lines:
        assert line in text
    chaos = text.split("location = /chaos {")[1].split("}")[0]
    assert "proxy_pass http://app_canary;" in chaos
    assert "server unix:/tmp/swiftdeploy-canary.sock;" in text.split("upstream app_canary {")[1].split("}")[0]
    assert "server app-canary:3000;" in text.split("upstream canary_containers {")[1].split("}")[0]


def test_across_reloads_the_track_hop_keeps_its_sockets_opens_fresh_connections_and_streams(stable):
    """What keeps reloads from cutting requests (docs/architecture.md, "Reloads and keep-alive")."""
    import re

    for manifest in (stable, canary_of(stable, 25)):
        text = render("nginx.conf", manifest, TEMPLATES)
        assert text.count("listen unix:/tmp/swiftdeploy-stable.sock;") == 1
        assert text.count("listen unix:/tmp/swiftdeploy-canary.sock;") == 1, "both sockets in every config"
        for name, block in re.findall(r"upstream (\w+) \{(.*?)\}", text, re.S):
            assert ("keepalive" in block) == name.endswith("_containers"), name
        track_servers = text.split("listen unix:")[1:]
        assert all("proxy_buffering off;" in server.split("listen ")[0] for server in track_servers)
        assert "http_504" in text.split("listen 8080;")[1]
    in_stable_mode = render("nginx.conf", stable, TEMPLATES)
    unrouted_canary = in_stable_mode.split("listen unix:/tmp/swiftdeploy-canary.sock;")[1].split("\n    }\n")[0]
    assert "proxy_pass http://canary_to_stable;" in unrouted_canary and "canary_containers" not in in_stable_mode
    assert "X-SwiftDeploy-Track" not in unrouted_canary and "X-Mode" not in unrouted_canary, "stable's server marks"
    assert re.search(r"upstream canary_to_stable \{\s*server unix:/tmp/swiftdeploy-stable.sock;", in_stable_mode)


def test_compose_hardens_every_container(stable):
    services = compose(canary_of(stable))["services"]
    assert set(services) == {"app-stable", "app-canary", "nginx", "opa"}
    for name, service in services.items():
        assert service["user"].split(":")[0] != "0", name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["read_only"] is True, name


def test_only_nginx_is_public_and_opa_is_loopback_on_its_own_network(stable):
    doc = compose(stable)
    services = doc["services"]
    assert "ports" not in services["app-stable"]
    assert services["nginx"]["ports"] == ["8080:8080"]
    assert services["opa"]["ports"] == ["127.0.0.1:8181:8181"]
    assert services["opa"]["networks"] == ["policy"]
    assert "policy" not in services["nginx"]["networks"]
    assert doc["networks"]["app"] == {"name": "swiftdeploy-net", "driver": "bridge"}
    assert "--addr=0.0.0.0:8181" in services["opa"]["command"]


def test_app_tracks_get_mode_version_port_tokens_and_a_healthcheck(stable):
    services = compose(canary_of(stable, version="1.1.0"))["services"]
    assert services["app-stable"]["environment"] == {"MODE": "stable", "APP_VERSION": "1.0.0", "APP_PORT": "3000",
                                                     "WORKERS": "auto"}
    assert services["app-canary"]["environment"] == {"MODE": "canary", "APP_VERSION": "1.1.0", "APP_PORT": "3000",
                                                     "WORKERS": "auto"}
    assert services["app-stable"]["env_file"] == ["../.swiftdeploy/app.env"]
    assert services["opa"]["env_file"] == ["../.swiftdeploy/opa.env"]
    assert services["app-stable"]["healthcheck"]["test"] == ["CMD", "/app/healthcheck"]
    assert services["nginx"]["depends_on"]["app-canary"] == {"condition": "service_healthy"}
    assert services["app-stable"]["restart"] == "unless-stopped"


def test_the_manifests_workers_reach_both_tracks_of_the_bundled_app_on_either_runtime(stable):
    three = dataclasses.replace(stable, services=dataclasses.replace(stable.services, workers=3))
    for services in (compose(canary_of(three))["services"], stack_file(swarm_of(canary_of(three)))["services"]):
        assert {services[f"app-{track}"]["environment"]["WORKERS"] for track in ("stable", "canary")} == {"3"}


def test_a_low_public_port_needs_no_capability(stable):
    low = dataclasses.replace(stable, nginx=dataclasses.replace(stable.nginx, port=80))
    nginx = compose(low)["services"]["nginx"]
    assert nginx["sysctls"] == {"net.ipv4.ip_unprivileged_port_start": 0}
    assert nginx["cap_drop"] == ["ALL"]


def test_the_log_volume_is_named_from_the_manifest(stable):
    doc = compose(dataclasses.replace(stable, log_volume="audit-logs"))
    assert doc["volumes"] == {"logs": {"name": "audit-logs"}}
    assert "logs:/var/tmp" in doc["services"]["nginx"]["volumes"]


def test_the_compose_file_is_valid_for_compose_v2(stable, tmp_path):
    from swiftdeploy.engine.tools import compose_binary

    (tmp_path / ".swiftdeploy").mkdir()
    for name in ("app.env", "opa.env"):
        (tmp_path / ".swiftdeploy" / name).write_text("X=1\n")
    for manifest in (stable, canary_of(stable, 30)):
        generated = tmp_path / "generated"
        generated.mkdir(exist_ok=True)
        (generated / "docker-compose.yml").write_text(render("docker-compose.yml", manifest, TEMPLATES))
        result = subprocess.run([*compose_binary(), "-f", str(generated / "docker-compose.yml"), "config", "-q"],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_a_template_reaching_outside_its_slice_fails_with_the_template_named(stable, tmp_path):
    (tmp_path / "opa-config.yaml.j2").write_text("{{ nginx.port }}\n")
    with pytest.raises(RenderError, match=r"opa-config.yaml.j2: 'nginx' is undefined"):
        render("opa-config.yaml", stable, tmp_path)


def swarm_of(manifest, replicas=2):
    return dataclasses.replace(manifest, runtime="swarm",
                               services=dataclasses.replace(manifest.services, replicas=replicas))


def stack_file(manifest):
    return yaml.safe_load(render("stack.yml", manifest, TEMPLATES))


def test_stack_yml_is_rendered_only_for_runtime_swarm(stable):
    from swiftdeploy.render.desired import desired

    assert "stack.yml" not in desired(stable, TEMPLATES).outputs
    swarm = desired(swarm_of(stable), TEMPLATES)
    assert "stack.yml" in swarm.outputs
    assert {spec.service for spec in swarm.services.values()} == {"app-stable", "nginx", "opa"}


def test_the_stack_runs_each_track_as_replicated_dnsrr_services_with_rolling_updates(stable):
    stack = stack_file(swarm_of(canary_of(stable), replicas=3))
    assert stack["version"] == "3.8"
    for track in ("app-stable", "app-canary"):
        deploy = stack["services"][track]["deploy"]
        assert (deploy["replicas"], deploy["endpoint_mode"]) == (3, "dnsrr")
        assert deploy["update_config"] == {"parallelism": 1, "delay": "0s", "order": "start-first",
                                           "failure_action": "rollback", "monitor": "30s", "max_failure_ratio": 0}
        assert deploy["rollback_config"]["failure_action"] == "pause"
        assert stack["services"][track]["healthcheck"]["test"] == ["CMD", "/app/healthcheck"]
    assert stack["services"]["app-canary"]["environment"]["APP_VERSION"] == "1.1.0"
    assert stack["networks"]["app"]["driver"] == "overlay"


def test_the_stack_publishes_only_nginx_in_host_mode_and_keeps_opa_on_the_managers_loopback(stable):
    services = stack_file(swarm_of(stable))["services"]
    assert services["nginx"]["ports"] == [{"target": 8080, "published": 8080, "protocol": "tcp", "mode": "host"}]
    assert "ports" not in services["opa"] and "ports" not in services["app-stable"]
    assert services["opa"]["networks"] == ["host"] and "--addr=127.0.0.1:8181" in services["opa"]["command"]
    for name in ("nginx", "opa"):
        assert services[name]["deploy"]["placement"]["constraints"] == ["node.role == manager"]
        assert services[name]["deploy"]["update_config"]["order"] == "stop-first"  # a host port cannot overlap


def test_stack_yml_leaves_out_what_docker_stack_deploy_ignores_or_rejects(stable):
    for service in stack_file(swarm_of(canary_of(stable)))["services"].values():
        assert not {"build", "container_name", "depends_on", "restart", "expose", "security_opt",
                    "tmpfs"} & set(service), service
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert {"type": "tmpfs", "target": "/tmp"} in service["volumes"]


def test_where_ipvs_exists_the_stack_can_use_swarms_virtual_ips_and_routing_mesh(stable):
    from swiftdeploy.model.manifest import Swarm

    services = stack_file(dataclasses.replace(swarm_of(stable), swarm=Swarm("vip", "ingress")))["services"]
    assert services["app-stable"]["deploy"]["endpoint_mode"] == "vip"
    assert services["nginx"]["ports"][0]["mode"] == "ingress"
    assert services["nginx"]["deploy"]["endpoint_mode"] == "vip"  # Swarm refuses dnsrr with an ingress port
    assert services["nginx"]["deploy"]["update_config"]["order"] == "start-first"


def test_every_dollar_in_nginx_command_is_escaped_for_compose_and_docker_stack(stable):
    """Both interpolate ${...} in a compose file: a shell `$` must be `$$`, or docker stack deploy refuses the
    file ("invalid interpolation format") where docker compose passed it on."""
    import re

    from swiftdeploy.model.manifest import Tls

    tls = Tls(cert="c.pem", key="k.pem", port=8443, fingerprint="ab" * 32, material="cd" * 16,
              not_after="2030-01-01T00:00:00Z")
    with_tls = dataclasses.replace(stable, nginx=dataclasses.replace(stable.nginx, tls=tls))
    for manifest in (stable, with_tls):
        for output, runtime in (("docker-compose.yml", stable.runtime), ("stack.yml", "swarm")):
            text = render(output, dataclasses.replace(manifest, runtime=runtime), TEMPLATES)
            script = yaml.safe_load(text)["services"]["nginx"]["command"][2]
            lone = [m.start() for m in re.finditer(r"\$+", script) if len(m.group()) % 2]
            assert not lone, (output, [script[i - 30:i + 10] for i in lone])
