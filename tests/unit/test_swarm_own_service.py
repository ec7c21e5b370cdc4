"""A user's own image on runtime: swarm, without an engine: the stack file it renders (its env, secrets, user,
writable paths, limits, and the health probe as a Swarm config), a registry image pinned to the manager's digest
and pulled by the nodes with the kept credentials, and what the manifest refuses on swarm."""

import json
import os
import stat
from pathlib import Path

import pytest

from swiftdeploy.engine.runtime.swarm import SwarmRuntime
from swiftdeploy.engine.runtime.images import repository_digest as pinned
from swiftdeploy.engine.runtime.swarm_registry import cli_config, registry_auth
from swiftdeploy.model.manifest import ManifestError, parse_manifest
from swiftdeploy.render.templates import load_yaml, render

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "registry.example:5000/team/site:1"
MANIFEST = """runtime: swarm
services:
  image: {image}
  build: false
  port: 8000
  version: "1"
  mode: stable
  replicas: 2
  health: {{path: /status/200, interval_seconds: 1}}
  env: {{GREETING: hello}}
  secrets: [DB_PASSWORD]
  user: "10001:10001"
  writable: [/tmp, /var/cache/site]
  resources: {{memory: 256m, cpus: 0.5}}
  command: [gunicorn, site:app]
{extra}nginx: {{image: "nginx:latest", port: 8080}}
network: {{name: n, driver_type: bridge}}
"""


def own(extra: str = ""):
    return parse_manifest(MANIFEST.format(image=IMAGE, extra=extra))


@pytest.fixture
def runtime(tmp_path):
    (tmp_path / "stack.yml").write_text(render("stack.yml", own(), ROOT / "templates"))
    return SwarmRuntime(tmp_path / "stack.yml", "site", state_dir=tmp_path / ".swiftdeploy")


def test_the_users_image_runs_with_its_own_settings_and_none_of_the_demos(runtime):
    stack = load_yaml(runtime.stack_file.read_text())
    app = stack["services"]["app-stable"]
    assert app["image"] == IMAGE and app["command"] == ["gunicorn", "site:app"]
    assert app["environment"] == {"GREETING": "hello", "DB_PASSWORD": None}  # the value comes from the environment
    assert "env_file" not in app  # the demo's chaos token
    assert app["user"] == "10001:10001" and app["read_only"] is True and app["cap_drop"] == ["ALL"]
    assert app["volumes"] == [{"type": "tmpfs", "target": "/tmp"}, {"type": "tmpfs", "target": "/var/cache/site"}]
    assert app["deploy"]["resources"] == {"limits": {"memory": "256m", "cpus": "0.5"}}
    assert app["labels"]["io.swiftdeploy.secrets"] == "${SWIFTDEPLOY_SECRETS_DIGEST:-}"


def test_health_is_asked_over_http_by_the_probe_every_node_gets_as_a_config(runtime):
    stack = load_yaml(runtime.stack_file.read_text())
    app = stack["services"]["app-stable"]
    assert app["healthcheck"]["test"] == ["CMD", "/.swiftdeploy/health", "http://127.0.0.1:8000/status/200",
                                          "--host=localhost", "--timeout=3"]
    assert app["configs"] == [{"source": "health-probe", "target": "/.swiftdeploy/health", "mode": 0o555}]
    assert stack["configs"]["health-probe"]["file"] == "../.swiftdeploy/health-probe"


def test_a_step_pins_a_pulled_image_to_its_digest_and_names_the_probe_by_its_content(runtime, tmp_path):
    probe = tmp_path / "probe"
    probe.write_bytes(b"one")
    pin = "registry.example:5000/team/site@sha256:" + "a" * 64
    first = load_yaml(runtime.partial_file(["app-stable"], {IMAGE: pin}, probe))
    assert first["services"]["app-stable"]["image"] == pin
    probe.write_bytes(b"two")
    second = load_yaml(runtime.partial_file(["app-stable"], {IMAGE: pin}, probe))
    names = {first["configs"]["health-probe"]["name"], second["configs"]["health-probe"]["name"]}
    assert len(names) == 2 and all(name.startswith("site-health-") for name in names)
    assert load_yaml(runtime.partial_file(["app-stable"]))["services"]["app-stable"]["image"] == IMAGE


def test_the_bundled_app_on_swarm_is_rendered_as_before():
    from swiftdeploy.model.manifest import load_manifest
    import dataclasses

    seed = dataclasses.replace(load_manifest(ROOT / "manifest.yaml"), runtime="swarm")
    app = load_yaml(render("stack.yml", seed, ROOT / "templates"))["services"]["app-stable"]
    assert app["environment"]["MODE"] == "stable" and app["env_file"] == ["../.swiftdeploy/app.env"]
    assert app["healthcheck"]["test"] == ["CMD", "/app/healthcheck"] and "configs" not in app
    assert app["user"] == "10001:10001"


def test_only_an_image_the_engine_pulled_is_pinned():
    pulled = {"RepoDigests": ["other/repo@sha256:" + "b" * 64, "registry.example:5000/team/site@sha256:" + "c" * 64]}
    assert pinned(IMAGE, pulled) == "registry.example:5000/team/site@sha256:" + "c" * 64
    assert pinned("registry.example:5000/team/site:release-1-abc", pulled).endswith("c" * 64)  # a release tag too
    assert pinned(IMAGE, {"RepoDigests": []}) is None  # built here: given to the nodes instead
    assert pinned(IMAGE, None) is None
    assert pinned("localhost:5000/site", {"RepoDigests": ["localhost:5000/site@sha256:" + "d" * 64]}).endswith("d" * 64)


def keep(path: Path, text: str, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def test_the_kept_credentials_are_added_to_the_users_cli_config_and_hidden_from_no_store(tmp_path):
    keep(tmp_path / "registry.example:5000", "deployer:pw")
    user = {"auths": {"ghcr.io": {"auth": "eA=="}}, "credsStore": "desktop", "credHelpers": {"registry.example:5000": "pass"}}
    config = cli_config(user, [IMAGE, "quay.io/x/y:1"], tmp_path)
    assert config["auths"]["registry.example:5000"] == {"auth": "ZGVwbG95ZXI6cHc="}  # deployer:pw
    assert config["auths"]["ghcr.io"] == {"auth": "eA=="}
    # the store keeps answering for the registry SwiftDeploy has no file for, not for the one it has
    assert "credsStore" not in config and config["credHelpers"] == {"quay.io": "desktop"}
    assert cli_config(user, ["quay.io/x/y:1"], tmp_path) is None  # nothing kept: the CLI's own login


def test_the_cli_config_is_private_and_gone_after_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nowhere"))
    keep(tmp_path / ".swiftdeploy" / "registries" / "registry.example:5000", "deployer:pw")
    with registry_auth([IMAGE], tmp_path / ".swiftdeploy") as env:
        path = Path(env["DOCKER_CONFIG"]) / "config.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert json.loads(path.read_text())["auths"]["registry.example:5000"]["auth"]
    assert not path.exists()
    with registry_auth(["quay.io/x/y:1"], tmp_path / ".swiftdeploy") as env:
        assert env == {}


def test_named_volumes_and_secret_files_are_refused_on_swarm_in_one_line_each():
    with pytest.raises(ManifestError) as caught:
        own("  volumes: {data: /var/lib/site}\n  secret_files: [tls_key]\n")
    lines = caught.value.problems
    assert any(line.startswith("services/volumes: a named volume is local to each swarm node") for line in lines)
    assert any(line.startswith("services/secret_files: runtime: swarm does not mount secret files") for line in lines)
    assert all("\n" not in line for line in lines)
