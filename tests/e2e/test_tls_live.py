"""HTTPS with the user's own certificate on the real engine: a CA of the test's own signs it, as a company CA
or a commercial one would; every public behaviour holds over https, plain http is redirected, old protocols are
refused, and new certificate files reach nginx under load without a failed request."""

import ssl
import time

import pytest
import requests
import yaml

from stackkit import (SteadyLoad, TimedLoad, dropped, free_port, history, make_project, manifest_of, ok, public_url, remove_everything,
                      swiftdeploy)
from tlskit import TestCA, handshake, served_fingerprint

pytestmark = pytest.mark.e2e


@pytest.fixture
def tls_project(tmp_path):
    """A project serving https on a free port with a certificate for 127.0.0.1 and localhost."""
    project = make_project(tmp_path / "project")
    ca = TestCA(project / "certs")
    issued = ca.issue("site")
    document = yaml.safe_load((project / "manifest.yaml").read_text())
    document["nginx"]["tls"] = {"cert": "certs/site.pem", "key": "certs/site.key", "port": free_port(),
                                "hosts": ["localhost"], "hsts_seconds": 600}
    (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    yield project, ca, issued
    swiftdeploy(project, "teardown")
    remove_everything(project)


def https_url(project) -> str:
    return f"https://localhost:{manifest_of(project).nginx.tls.port}"


def test_https_with_the_users_certificate_keeps_every_behaviour_and_takes_new_files_without_a_failed_request(
        tls_project):
    project, ca, issued = tls_project
    port = manifest_of(project).nginx.tls.port
    deployed = ok(swiftdeploy(project, "deploy"))
    assert f"https://127.0.0.1:{port}" in deployed.stdout, deployed.stdout
    url = https_url(project)

    answer = requests.get(url + "/", verify=str(ca.ca_file), timeout=10)
    assert answer.status_code == 200 and answer.json()["mode"] == "stable"
    assert answer.headers["X-Deployed-By"] == "swiftdeploy" and answer.headers["X-SwiftDeploy-Track"] == "stable"
    assert answer.headers["Strict-Transport-Security"] == "max-age=600"
    assert served_fingerprint(port) == issued.fingerprint
    pinned = requests.get(url + "/", headers={"X-SwiftDeploy-Track": "stable"}, verify=str(ca.ca_file), timeout=10)
    assert pinned.status_code == 200 and pinned.headers["X-SwiftDeploy-Track"] == "stable"
    hidden = requests.get(url + "/metrics", verify=str(ca.ca_file), timeout=10)
    assert hidden.status_code == 404 and hidden.json()["error"] == "Not Found", "metrics never leave the stack"
    too_big = requests.post(url + "/", data=b"x" * 200_000, verify=str(ca.ca_file), timeout=10)
    assert too_big.status_code == 413 and too_big.json()["code"] == 413

    plain = requests.get(public_url(project) + "/some/path?q=1", allow_redirects=False, timeout=10)
    assert plain.status_code == 301 and plain.headers["Location"] == f"https://127.0.0.1:{port}/some/path?q=1"
    assert plain.headers["X-Deployed-By"] == "swiftdeploy"

    assert handshake(port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert handshake(port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    refused = handshake(port, ssl.TLSVersion.TLSv1_1)
    print(f"\nTLS 1.1 offered alone: {refused}")
    assert refused == "refused: TLSV1_ALERT_PROTOCOL_VERSION", "nginx itself refuses TLS 1.1 (its alert)"

    # the user drops a new certificate (a new key too) over the same files
    renewed = ca.issue("site")
    assert renewed.fingerprint != issued.fingerprint
    planned = swiftdeploy(project, "plan")
    shown = ":".join(renewed.fingerprint[i:i + 2] for i in range(0, 16, 2)).upper()
    assert planned.returncode == 2 and "Certificate renewed: sha256" in planned.stdout, planned.stdout
    assert shown in planned.stdout, planned.stdout
    assert "PRIVATE KEY" not in planned.stdout
    with SteadyLoad(url, verify=str(ca.ca_file)) as load:
        time.sleep(1)
        ok(swiftdeploy(project, "deploy"))
        time.sleep(1)
    assert load.failures() == {} and load.total > 50, dropped(load, project)
    assert served_fingerprint(port) == renewed.fingerprint
    copies = list((project / ".swiftdeploy" / "tls").iterdir())
    assert len(copies) == 1, f"only the pair nginx serves is kept: {copies}"
    assert "No changes" in ok(swiftdeploy(project, "plan")).stdout
    events = [r for r in history(project) if r["event"] == "certificate"]
    assert [(e["change"], e["fingerprint"], e["source"]) for e in events] == [
        ("https turned on", issued.fingerprint, "files"), ("certificate renewed", renewed.fingerprint, "files")]


@pytest.fixture
def other_nginx_image(tls_project):
    """The nginx image under a second name: a manifest that names it asks for a new nginx container."""
    import docker

    project, _, _ = tls_project
    client = docker.from_env()
    image = client.images.get(manifest_of(project).nginx.image)
    image.tag("swiftdeploy-test/nginx", "other")
    yield "swiftdeploy-test/nginx:other"
    client.images.remove("swiftdeploy-test/nginx:other", noprune=True)


def test_a_new_nginx_container_under_https_load_refuses_connections_for_a_moment_and_answers_no_error(
        tls_project, other_nginx_image):
    """A stop first moves nginx's public servers off their ports and lets the old workers answer what they took
    (a plain QUIT also closed the track sockets those requests go through: 502s)."""
    project, ca, _ = tls_project
    ok(swiftdeploy(project, "deploy"))
    manifest = project / "manifest.yaml"
    document = yaml.safe_load(manifest.read_text())
    document["nginx"]["image"] = other_nginx_image
    manifest.write_text(yaml.safe_dump(document, sort_keys=False))
    with TimedLoad(https_url(project), threads=4, verify=str(ca.ca_file)) as load:
        time.sleep(1)
        started = time.monotonic()
        deployed = ok(swiftdeploy(project, "deploy"))
        took = time.monotonic() - started
        time.sleep(1)
    gap = max(load.failed_at, default=0) - min(load.failed_at, default=0)
    print(f"\nnginx replaced under https load: deploy took {took:.1f} s; {load.total} requests, outcomes "
          f"{dict(load.outcomes)}, failures over {gap:.2f} s")
    assert "replace" in deployed.stdout and "nginx" in deployed.stdout, deployed.stdout
    assert set(load.failures()) <= {"connection error: ConnectionError", "connection error: SSLError"}, dropped(load, project)
    assert load.outcomes[200] > 50, dict(load.outcomes)
