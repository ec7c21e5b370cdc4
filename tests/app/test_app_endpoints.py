"""GET /, GET /healthz, 404/405, X-Mode, settings from the environment (SPEC A-1..A-3, A-5)."""

from __future__ import annotations

import re

import pytest
from app_testkit import TOKEN, canary, clock, make_app, stable  # noqa: F401 (fixtures)
from swiftdeploy_app import SettingsError, create_app

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_index_answers_welcome_with_mode_version_and_utc_timestamp(canary):
    response = canary.get("/")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body == {
        "message": "Welcome to SwiftDeploy",
        "mode": "canary",
        "version": "1.2.3",
        "timestamp": "2026-11-26T12:00:00.123Z",
    }


def test_index_timestamp_follows_the_real_clock_by_default():
    body = create_app(mode="stable", version="1").test_client().get("/").get_json()
    assert ISO_UTC.match(body["timestamp"]), body["timestamp"]


def test_healthz_reports_status_uptime_mode_version(make_app, clock):
    client = make_app("stable").test_client()
    clock.advance(12.3456)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "uptime_seconds": 12.346, "mode": "stable", "version": "1.2.3"}


def test_head_is_answered_like_get(stable):
    response = stable.head("/healthz")
    assert response.status_code == 200
    assert response.get_data() == b""


def test_unknown_route_is_404_json(stable):
    response = stable.get("/no/such/page")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json() == {"error": "no route for /no/such/page", "code": 404}


@pytest.mark.parametrize("method,path", [("post", "/"), ("delete", "/healthz"), ("put", "/metrics"), ("get", "/chaos")])
def test_wrong_method_is_405_json_with_allow(stable, method, path):
    response = getattr(stable, method)(path)
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == 405 and "not allowed" in body["error"]
    assert response.headers["Allow"]


def _error_responses(client, app_mode):
    """One request per error status reachable in that mode; yields (expected status, response)."""
    yield 404, client.get("/nope")
    yield 405, client.post("/healthz")
    yield 500, client.get("/boom")
    if app_mode == "stable":
        yield 403, client.post("/chaos", json={"mode": "recover"}, headers={"X-Chaos-Token": TOKEN})
        return
    hdr = {"X-Chaos-Token": TOKEN}
    yield 401, client.post("/chaos", json={"mode": "recover"})
    yield 401, client.post("/chaos", json={"mode": "recover"}, headers={"X-Chaos-Token": "wrong"})
    yield 415, client.post("/chaos", data="mode=recover", headers=hdr, content_type="text/plain")
    yield 413, client.post("/chaos", data=b"{" + b" " * 5000 + b"}", headers=hdr, content_type="application/json")
    yield 400, client.post("/chaos", data=b"{oops", headers=hdr, content_type="application/json")
    yield 200, client.post("/chaos", json={"mode": "error", "rate": 1}, headers=hdr)
    yield 500, client.get("/")  # chaos-injected


def _app_with_boom(make_app, mode):
    app = make_app(mode)

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    return app


def test_canary_adds_x_mode_to_every_response(make_app):
    client = _app_with_boom(make_app, "canary").test_client()
    seen = set()
    for status, response in _error_responses(client, "canary"):
        assert response.status_code == status, response.get_data(as_text=True)
        assert response.headers.get("X-Mode") == "canary", status
        if status >= 400:
            assert response.mimetype == "application/json" and response.get_json()["code"] == status
        seen.add(status)
    assert seen == {200, 400, 401, 404, 405, 413, 415, 500}
    for path in ("/", "/healthz", "/metrics"):
        assert client.get(path).headers.get("X-Mode") == "canary"
    assert client.options("/").headers.get("X-Mode") == "canary"
    no_token = make_app("canary", token="").test_client()
    refused = no_token.post("/chaos", json={"mode": "recover"}, headers={"X-Chaos-Token": ""})
    assert refused.status_code == 403 and refused.headers.get("X-Mode") == "canary"


def test_stable_never_adds_x_mode(make_app):
    client = _app_with_boom(make_app, "stable").test_client()
    statuses = set()
    for status, response in _error_responses(client, "stable"):
        assert response.status_code == status
        assert "X-Mode" not in response.headers
        assert response.get_json()["code"] == status
        statuses.add(status)
    assert statuses == {403, 404, 405, 500}
    for path in ("/", "/healthz", "/metrics"):
        assert "X-Mode" not in client.get(path).headers


def test_unhandled_exception_is_500_json_without_details(make_app):
    client = _app_with_boom(make_app, "canary").test_client()
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error", "code": 500}


# --- settings -------------------------------------------------------------------------------


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MODE", "canary")
    monkeypatch.setenv("APP_VERSION", "2.0.0")
    monkeypatch.setenv("CHAOS_TOKEN", "env-token")
    client = create_app().test_client()
    assert client.get("/").get_json()["version"] == "2.0.0"
    assert client.get("/").headers["X-Mode"] == "canary"
    ok = client.post("/chaos", json={"mode": "recover"}, headers={"X-Chaos-Token": "env-token"})
    assert ok.status_code == 200


def test_arguments_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("MODE", "canary")
    monkeypatch.setenv("APP_VERSION", "2.0.0")
    body = create_app(mode="stable", version="3.0.0").test_client().get("/healthz").get_json()
    assert (body["mode"], body["version"]) == ("stable", "3.0.0")


def test_unset_mode_means_stable_and_unset_version_is_unknown(monkeypatch):
    for name in ("MODE", "APP_VERSION", "CHAOS_TOKEN", "APP_PORT"):
        monkeypatch.delenv(name, raising=False)
    body = create_app().test_client().get("/healthz").get_json()
    assert (body["mode"], body["version"]) == ("stable", "unknown")


@pytest.mark.parametrize("value", ["", "Stable", "prod", "canary "])
def test_invalid_mode_is_a_one_line_startup_error(monkeypatch, value):
    monkeypatch.setenv("MODE", value)
    with pytest.raises(SettingsError) as caught:
        create_app()
    message = str(caught.value)
    assert "\n" not in message and "MODE" in message and repr(value) in message


def test_invalid_mode_argument_is_rejected_too():
    with pytest.raises(SettingsError, match="MODE must be 'stable' or 'canary', got 'blue'"):
        create_app(mode="blue")


@pytest.mark.parametrize("value", ["0", "65536", "http", "-1", ""])
def test_invalid_app_port_is_a_one_line_startup_error(monkeypatch, value):
    monkeypatch.setenv("APP_PORT", value)
    with pytest.raises(SettingsError, match="APP_PORT must be an integer 1-65535"):
        create_app(mode="stable")
