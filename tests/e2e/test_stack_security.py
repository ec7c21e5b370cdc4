"""The running stack: OPA reachable only from the host's loopback with its token, hardened containers,
image size, validate on a live stack, and teardown that removes only this stack."""

import socket
import subprocess

import pytest
import requests

from stackkit import containers, doit, free_port, make_project, manifest_of, ok, public_url, remove_everything, require_engine, swiftdeploy

pytestmark = [pytest.mark.e2e, pytest.mark.every_engine]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    require_engine()
    project = make_project(tmp_path_factory.mktemp("security") / "project")
    try:
        ok(swiftdeploy(project, "deploy"))
        yield project
    finally:  # a deploy that failed half-way leaves a half-made stack too
        remove_everything(project)


def service_containers(project):
    return {c.labels["com.docker.compose.service"]: c for c in containers(manifest_of(project).project)}


def opa_token(project) -> str:
    return (project / ".swiftdeploy" / "opa.env").read_text().split("=", 1)[1].strip()


def test_opa_answers_on_loopback_only_with_the_token(project):
    url = f"http://127.0.0.1:{manifest_of(project).opa.port}/v1/data/swiftdeploy/infra/decision"
    with_token = requests.post(url, json={"input": {}}, timeout=5,
                               headers={"Authorization": f"Bearer {opa_token(project)}"})
    assert with_token.status_code == 200 and with_token.json()["result"]["allow"] is False
    assert requests.post(url, json={"input": {}}, timeout=5).status_code == 401
    assert requests.post(url, json={"input": {}}, timeout=5,
                         headers={"Authorization": "Bearer not-the-token"}).status_code == 401


def test_nothing_of_opa_is_reachable_through_the_public_port(project):
    url = public_url(project)
    for path in ("/v1/data/swiftdeploy/infra/decision", "/v1/data", "/health", "/metrics"):
        answer = requests.get(url + path, timeout=5)
        assert answer.status_code == 404, path
        assert "result" not in answer.json(), path


def test_opa_is_not_on_the_host_s_other_addresses(project):
    port = manifest_of(project).opa.port
    addresses = [a for a in subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
                 if ":" not in a and not a.startswith("127.")]
    assert addresses, "the host has a non-loopback address to test from"
    for address in addresses:
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex((address, port)) != 0, f"OPA's port {port} is open on {address}"


def test_nginx_cannot_resolve_or_share_a_network_with_opa(project):
    found = service_containers(project)
    nginx, opa = found["nginx"], found["opa"]
    name = manifest_of(project).project
    for host in ("opa", f"{name}-opa-1"):
        code, _ = nginx.exec_run(["getent", "hosts", host])
        assert code != 0, f"{host} resolves inside nginx"
    nginx_networks = set(nginx.attrs["NetworkSettings"]["Networks"])
    opa_networks = set(opa.attrs["NetworkSettings"]["Networks"])
    assert nginx_networks and opa_networks and not nginx_networks & opa_networks


def test_every_container_is_non_root_without_capabilities(project):
    for service, container in service_containers(project).items():
        config, host = container.attrs["Config"], container.attrs["HostConfig"]
        assert config["User"] and not config["User"].startswith("0"), service
        assert any("no-new-privileges" in opt for opt in host["SecurityOpt"] or []), service
        assert not host.get("CapAdd"), service
        if service == "opa":  # no shell in the image: the engine's record must show every capability dropped
            dropped = {c.upper().removeprefix("CAP_") for c in host["CapDrop"] or []}
            assert "ALL" in dropped or {"CHOWN", "DAC_OVERRIDE", "NET_BIND_SERVICE", "SETUID"} <= dropped, dropped
            continue
        code, output = container.exec_run(["cat", "/proc/1/status"])
        status = dict(line.split(":", 1) for line in output.decode().splitlines() if ":" in line)
        assert code == 0 and status["Uid"].split()[0] != "0", service
        assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, (service, status["CapEff"])
        assert status["NoNewPrivs"].strip() == "1", service


def test_the_app_image_is_under_300_mb(project):
    from swiftdeploy.engine.api import image_size

    size = image_size(manifest_of(project).services.image)
    print(f"\napp image {manifest_of(project).services.image}: {size / 1e6:.0f} MB")
    assert size < 300e6


def test_validate_passes_on_the_running_stack_and_names_a_taken_port(project, tmp_path):
    result = ok(doit(project, "validate"))
    lines = [line for line in result.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(lines) == 9 and all(line.startswith("PASS") for line in lines), result.stdout
    assert "held by this stack's nginx" in result.stdout

    other = make_project(tmp_path / "other")
    manifest = other / "manifest.yaml"
    taken = manifest_of(project).nginx.port
    manifest.write_text(manifest.read_text().replace(f"port: {manifest_of(other).nginx.port}", f"port: {taken}"))
    refused = doit(other, "validate")
    assert refused.returncode == 1
    assert f"FAIL  nginx port is free or held by this stack: port {taken} is already in use" in refused.stdout
    assert "swiftdeploy: validate: 1 of 9 checks failed" in refused.stderr


def test_the_access_log_is_a_real_file_in_the_named_volume(project):
    requests.get(public_url(project) + "/healthz", timeout=5)
    nginx = service_containers(project)["nginx"]
    code, output = nginx.exec_run(["tail", "-n", "1", "/var/tmp/swiftdeploy-access.log"])
    assert code == 0 and b" | 200 | " in output and b"GET /healthz HTTP/1.1" in output
    code, _ = nginx.exec_run(["sh", "-c", "test -f /var/tmp/swiftdeploy-access.log && ! test -L /var/tmp/swiftdeploy-access.log"])
    assert code == 0, "a regular file, not the image's stdout symlink"
    mounts = {m["Destination"]: m for m in nginx.attrs["Mounts"]}
    assert mounts["/var/tmp"]["Type"] == "volume"
    assert mounts["/var/tmp"]["Name"] == f"{manifest_of(project).project}-logs"


def test_teardown_removes_this_stack_and_nothing_else(project, tmp_path):
    from swiftdeploy.engine.api import client

    bystander = client().volumes.create(f"bystander-{free_port()}")
    try:
        ok(swiftdeploy(project, "teardown", "--clean"))
        name = manifest_of(project).project
        assert containers(name) == []
        assert not client().networks.list(names=[f"{name}-net"])
        assert not client().volumes.list(filters={"name": f"{name}-logs"})
        assert not (project / "generated").exists()
        assert client().volumes.get(bystander.name)
    finally:
        bystander.remove(force=True)
