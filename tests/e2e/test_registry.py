"""The test registry (scripts/test-registry) and the third-party images (tests/images/) a user's own service
is deployed from: credentials are checked, unknown tags are not found, and each image pulled from the registry
serves its health path hardened (read-only root, only a tmpfs /tmp, no capabilities, a non-root uid)."""

import time

import docker
import pytest
import requests

from registrykit import (SPECS, build, engine_client, forget_local, login, registry, registry_client,  # noqa: F401
                         run_hardened, thirdparty_images)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
WRONG = "not-the-password"


def pulled(client, registry, image):
    """IMAGE not present locally, then pulled from the registry with the right credentials."""
    forget_local(image.ref, client)
    start = time.monotonic()
    result = client.images.pull(image.ref, auth_config=registry.auth_config)
    return result, time.monotonic() - start


def test_the_registry_asks_for_credentials_and_knows_the_right_ones(registry):
    anonymous = registry.get("/v2/", auth=None)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    assert registry.get("/v2/").status_code == 200
    assert registry.get("/v2/", auth=(registry.user, WRONG)).status_code == 401
    assert registry.password_file.stat().st_mode & 0o077 == 0


def test_push_then_pull_with_the_right_credentials(registry, registry_client, thirdparty_images):
    image = thirdparty_images["httpbin:1"]
    tags = registry.get(f"/v2/thirdparty/{image.name}/tags/list").json()["tags"]
    assert image.version in tags

    client = engine_client()  # a fresh client: no login of registry_client's helps it
    try:
        result, seconds = pulled(client, registry, image)
        assert result.id == image.image_id
        assert f"{image.repository}@{image.digest}" in result.attrs["RepoDigests"]
        assert image.ref in result.tags
    finally:
        client.close()
    # a logged-in client pulls with no auth_config of its own
    forget_local(image.ref, registry_client)
    assert registry_client.images.pull(image.ref).id == image.image_id


def test_a_wrong_password_is_refused(registry, thirdparty_images):
    image = thirdparty_images["httpbin:1"]
    client = engine_client()
    try:
        # the engine asks the registry and answers 500 with the registry's 401 in its message
        with pytest.raises(docker.errors.APIError, match="401 Unauthorized"):
            login(client, registry, password=WRONG)
        forget_local(image.ref, client)
        with pytest.raises(docker.errors.APIError, match="unauthorized: authentication required"):
            client.images.pull(image.ref, auth_config={"username": registry.user, "password": WRONG})
        with pytest.raises(docker.errors.APIError, match="no basic auth credentials"):
            client.images.pull(image.ref)  # anonymous: the engine sees the challenge and has nothing to send
        # a push reports the refusal inside its stream, not as an HTTP status
        client.images.get(f"swiftdeploy-test/thirdparty-{image.name}:{image.version}").tag(image.repository, "refused")
        events = list(client.images.push(image.repository, tag="refused", stream=True, decode=True,
                                         auth_config={"username": registry.user, "password": WRONG}))
        assert any("unauthorized" in str(event.get("error", "")) for event in events), events
        forget_local(f"{image.repository}:refused", client)
        assert "refused" not in registry.get(f"/v2/thirdparty/{image.name}/tags/list").json()["tags"]
    finally:
        client.close()


def test_an_unknown_tag_is_not_found(registry, registry_client, thirdparty_images):
    image = thirdparty_images["httpbin:1"]
    with pytest.raises(docker.errors.NotFound, match="manifest unknown"):
        registry_client.images.pull(f"{image.repository}:no-such-tag", auth_config=registry.auth_config)
    answer = registry.get(f"/v2/thirdparty/{image.name}/manifests/no-such-tag",
                          headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    with pytest.raises(docker.errors.NotFound, match="manifest unknown|not found"):
        registry_client.images.pull(f"{registry.address}/thirdparty/no-such-image:1", auth_config=registry.auth_config)


def test_a_second_build_of_the_same_context_is_cached(registry_client, thirdparty_images):
    image = thirdparty_images["httpbin:1"]
    again, cached, seconds = build(registry_client, SPECS["httpbin"], "1")
    assert cached and again.id == image.image_id
    assert seconds < 10


@pytest.mark.parametrize("version", ["1", "2"])
def test_httpbin_pulled_from_the_registry_answers_hardened(registry, registry_client, thirdparty_images, version):
    image = thirdparty_images[f"httpbin:{version}"]
    pulled(registry_client, registry, image)
    assert image.port == 8000 and image.health_path == "/status/200"
    with run_hardened(registry_client, image, user="4242:4242") as running:
        health = requests.get(running.url + image.health_path, timeout=5)
        assert health.status_code == 200
        answer = requests.get(running.url + "/get", timeout=5)
        assert answer.status_code == 200 and answer.json()["url"].endswith("/get")
        # it names no mode, version or anything of SwiftDeploy's: only what httpbin and gunicorn send
        assert not [name for name in answer.headers if name.lower().startswith("x-")], answer.headers
        attrs = running.container.attrs
        assert attrs["HostConfig"]["ReadonlyRootfs"] is True
        assert attrs["HostConfig"]["CapDrop"] == ["ALL"]
        assert attrs["Config"]["User"] == "4242:4242"
        assert running.container.labels["org.opencontainers.image.version"] == version
        assert requests.get(running.url + "/status/500", timeout=5).status_code == 500


def answers(url, paths):
    session = requests.Session()
    return [session.get(url + path, timeout=10).status_code for path in paths]


def test_httpbin_2_fails_the_share_of_requests_it_is_told_and_its_health_path_never(registry_client,
                                                                                    thirdparty_images):
    image = thirdparty_images["httpbin:2"]
    with run_hardened(registry_client, image, env={"HTTPBIN_FAIL_RATE": "0.3"}) as running:
        codes = answers(running.url, ["/get"] * 100 + ["/status/204"] * 50 + ["/anything/x"] * 50)
        assert set(codes) <= {200, 204, 500}
        failures = codes.count(500)
        assert 50 <= failures <= 70, f"{failures} of 200 answered 500 at HTTPBIN_FAIL_RATE=0.3"
        assert set(answers(running.url, [image.health_path] * 30)) == {200}


def test_httpbin_1_ignores_the_fail_rate(registry_client, thirdparty_images):
    image = thirdparty_images["httpbin:1"]
    with run_hardened(registry_client, image, env={"HTTPBIN_FAIL_RATE": "0.5"}) as running:
        assert set(answers(running.url, ["/get"] * 50)) == {200}


@pytest.mark.parametrize("version", ["1", "2"])
def test_prometheus_pulled_from_the_registry_is_healthy_hardened(registry, registry_client, thirdparty_images,
                                                                 version):
    image = thirdparty_images[f"prometheus:{version}"]
    pulled(registry_client, registry, image)
    assert image.port == 9090 and image.health_path == "/-/healthy"
    with run_hardened(registry_client, image) as running:
        health = requests.get(running.url + "/-/healthy", timeout=5)
        assert health.status_code == 200 and "Healthy" in health.text
        config = requests.get(running.url + "/api/v1/status/config", timeout=5).json()["data"]["yaml"]
        assert f'image_version: "{version}"' in config
        assert running.container.attrs["HostConfig"]["ReadonlyRootfs"] is True


def test_a_static_server_in_an_image_with_no_shell(registry, registry_client, thirdparty_images):
    image = thirdparty_images["busybox-httpd:1"]
    pulled(registry_client, registry, image)
    with run_hardened(registry_client, image) as running:
        assert requests.get(running.url + "/healthz", timeout=5).text == "ok\n"
        assert "busybox httpd" in requests.get(running.url + "/", timeout=5).text
        assert requests.get(running.url + "/missing", timeout=5).status_code == 404
        for shell in ("sh", "/bin/sh"):
            with pytest.raises(docker.errors.APIError):
                result = running.container.exec_run([shell, "-c", "true"])
                if result.exit_code != 0:  # an engine may start the exec and report its failure as a code
                    raise docker.errors.APIError(f"{shell}: exit {result.exit_code}")
    history = registry_client.images.get(image.ref).history()
    assert sum(1 for layer in history if layer.get("Size")) == 2  # the binary and /www: no base image
