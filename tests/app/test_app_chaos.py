"""POST /chaos: gatekeeping, validation, and what each chaos mode does (SPEC A-4, S3, S6)."""

from __future__ import annotations

import json

import pytest
from app_testkit import TOKEN, canary, clock, make_app, post_chaos, sample, stable  # noqa: F401 (fixtures)
from swiftdeploy_app import routes
from swiftdeploy_app.chaos import MAX_SLOW_SECONDS

# --- who may inject chaos -----------------------------------------------------------------


def test_stable_refuses_chaos_with_403_even_with_the_token(stable):
    response = post_chaos(stable, {"mode": "error", "rate": 1})
    assert response.status_code == 403
    assert response.get_json() == {
        "error": "chaos is only available in canary mode; this instance runs in stable mode",
        "code": 403,
    }
    assert stable.get("/").status_code == 200
    assert sample(stable, "chaos_active") == 0


def test_missing_token_is_401(canary):
    response = post_chaos(canary, {"mode": "error", "rate": 1}, token=None)
    assert response.status_code == 401
    assert response.get_json() == {"error": "missing X-Chaos-Token header", "code": 401}
    assert sample(canary, "chaos_active") == 0


@pytest.mark.parametrize("token", ["", "wrong", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "ünïcödé"])
def test_wrong_token_is_401(canary, token):
    response = post_chaos(canary, {"mode": "error", "rate": 1}, token=token)
    assert response.status_code == 401
    assert response.get_json() == {"error": "invalid X-Chaos-Token", "code": 401}
    assert canary.get("/").status_code == 200


def test_token_is_compared_in_constant_time(canary, monkeypatch):
    calls = []
    real = routes.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(routes.hmac, "compare_digest", spy)
    assert post_chaos(canary, {"mode": "recover"}, token="nope").status_code == 401
    assert post_chaos(canary, {"mode": "recover"}).status_code == 200
    assert calls == [(b"nope", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


@pytest.mark.parametrize("given", [None, "", "anything"])
def test_without_a_configured_token_chaos_is_refused_for_everyone(make_app, given):
    client = make_app("canary", token="").test_client()
    response = post_chaos(client, {"mode": "error", "rate": 1}, token=given)
    assert response.status_code == 403
    assert "no CHAOS_TOKEN configured" in response.get_json()["error"]
    assert sample(client, "chaos_active") == 0


def test_token_is_checked_before_the_body(canary):
    response = post_chaos(canary, b"{not json", token="wrong")
    assert response.status_code == 401


# --- body validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,field",
    [
        (b"", "body"),
        (b"   ", "body"),
        (b"{", "body"),
        (b"{oops}", "body"),
        (b"[1, 2]", "body"),
        (b'"slow"', "body"),
        (b"null", "body"),
        (b"\xff\xfe\x00garbage", "body"),
        (b'{"mode": "slow", "duration": NaN}', "body"),
        (b'{"mode": "error", "rate": Infinity}', "body"),
        ({}, "mode"),
        ({"mode": "explode"}, "mode"),
        ({"mode": "SLOW", "duration": 1}, "mode"),
        ({"mode": 1}, "mode"),
        ({"mode": None}, "mode"),
        ({"mode": ["slow"]}, "mode"),
        ({"duration": 3}, "mode"),
        ({"mode": "slow"}, "duration"),
        ({"mode": "slow", "duration": 0}, "duration"),
        ({"mode": "slow", "duration": -1}, "duration"),
        ({"mode": "slow", "duration": MAX_SLOW_SECONDS + 0.001}, "duration"),
        ({"mode": "slow", "duration": 3600}, "duration"),
        ({"mode": "slow", "duration": 10**400}, "duration"),
        (b'{"mode": "slow", "duration": 1e400}', "duration"),
        ({"mode": "slow", "duration": True}, "duration"),
        ({"mode": "slow", "duration": "3"}, "duration"),
        ({"mode": "slow", "duration": None}, "duration"),
        ({"mode": "slow", "duration": [3]}, "duration"),
        ({"mode": "error"}, "rate"),
        ({"mode": "error", "rate": 1.5}, "rate"),
        ({"mode": "error", "rate": -0.1}, "rate"),
        ({"mode": "error", "rate": 2}, "rate"),
        ({"mode": "error", "rate": False}, "rate"),
        ({"mode": "error", "rate": "0.5"}, "rate"),
        ({"mode": "error", "rate": {"value": 0.5}}, "rate"),
        ({"mode": "recover", "rate": 1}, "rate"),
        ({"mode": "slow", "duration": 3, "rate": 0.5}, "rate"),
        ({"mode": "error", "rate": 0.5, "duration": 3}, "duration"),
        ({"mode": "error", "rate": 0.5, "extra": 1}, "extra"),
        ({"mode": "recover", "please": True}, "please"),
        (b'{"mode": "recover", "mode": "slow"}', "mode"),
        (b'{"mode": "error", "rate": 0.1, "rate": 0.9}', "rate"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(canary, body, field):
    post_chaos(canary, {"mode": "slow", "duration": 2})
    response = post_chaos(canary, body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    payload = response.get_json()
    assert payload["code"] == 400
    assert payload["field"] == field
    assert isinstance(payload["error"], str) and payload["error"] and "\n" not in payload["error"]
    assert sample(canary, "chaos_active") == 1, "a rejected request must leave the chaos state alone"


def test_error_messages_say_what_was_expected(canary):
    too_slow = post_chaos(canary, {"mode": "slow", "duration": 61}).get_json()
    assert too_slow["error"] == "duration must be > 0 and <= 60 seconds, got 61"
    bad_rate = post_chaos(canary, {"mode": "error", "rate": 1.5}).get_json()
    assert bad_rate["error"] == "rate must be between 0 and 1, got 1.5"
    unknown = post_chaos(canary, {"mode": "explode"}).get_json()
    assert unknown["error"] == "mode must be one of 'slow', 'error', 'recover', got 'explode'"
    huge = post_chaos(canary, {"mode": "explode" * 100}).get_json()
    assert len(huge["error"]) < 120


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"],
)
def test_wrong_content_type_is_415_naming_content_type(canary, content_type):
    headers = {"X-Chaos-Token": TOKEN}
    if content_type:
        headers["Content-Type"] = content_type
    response = canary.post("/chaos", data=json.dumps({"mode": "recover"}), headers=headers)
    assert response.status_code == 415
    assert response.get_json()["field"] == "Content-Type"


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
def test_json_content_types_with_parameters_are_accepted(canary, content_type):
    assert post_chaos(canary, {"mode": "recover"}, content_type=content_type).status_code == 200


def test_oversized_body_is_413_json(canary):
    body = json.dumps({"mode": "recover", "pad": "x" * 5000})
    response = post_chaos(canary, body)
    assert response.status_code == 413
    assert response.get_json() == {"error": "request body too large; the limit is 4096 bytes", "code": 413}


def test_a_body_just_under_the_limit_is_read(canary):
    body = b'{"mode": "recover"' + b" " * (4096 - 19) + b"}"
    assert len(body) == 4096
    assert post_chaos(canary, body).status_code == 200


@pytest.mark.parametrize(
    "body,state",
    [
        ({"mode": "slow", "duration": 60}, {"mode": "slow", "duration": 60.0}),
        ({"mode": "slow", "duration": 0.001}, {"mode": "slow", "duration": 0.001}),
        ({"mode": "error", "rate": 0}, {"mode": "error", "rate": 0.0}),
        ({"mode": "error", "rate": 1}, {"mode": "error", "rate": 1.0}),
        ({"mode": "error", "rate": 0.25}, {"mode": "error", "rate": 0.25}),
        ({"mode": "recover"}, {"mode": "none"}),
    ],
)
def test_valid_bodies_answer_200_with_the_new_state(canary, body, state):
    response = post_chaos(canary, body)
    assert response.status_code == 200
    assert response.get_json() == {"chaos": state, "previous": {"mode": "none"}}


# --- what chaos does ----------------------------------------------------------------------


def test_error_rate_one_fails_every_request_except_the_exempt_paths(canary):
    assert post_chaos(canary, {"mode": "error", "rate": 1}).status_code == 200
    assert sample(canary, "chaos_active") == 2
    for _ in range(20):
        response = canary.get("/")
        assert response.status_code == 500
        assert response.get_json() == {"error": "chaos: injected failure (error mode, rate 1)", "code": 500}
        assert response.headers["X-Mode"] == "canary"
    assert canary.get("/unknown").status_code == 500  # chaos applies before routing
    for _ in range(20):
        assert canary.get("/healthz").status_code == 200
        assert canary.get("/metrics").status_code == 200
    assert canary.post("/healthz").status_code == 405  # exempt whatever the method
    assert sample(canary, "http_requests_total", method="GET", path="/", status_code="500") == 20
    assert sample(canary, "http_requests_total", method="GET", path="/", status_code="200") is None
    assert post_chaos(canary, {"mode": "recover"}).status_code == 200  # /chaos itself is exempt


def test_error_rate_zero_fails_nothing(canary):
    post_chaos(canary, {"mode": "error", "rate": 0})
    assert all(canary.get("/").status_code == 200 for _ in range(200))


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.5, 0.9])
def test_error_rate_is_statistically_the_requested_fraction(make_app, rate):
    client = make_app("canary", seed=20261126).test_client()
    post_chaos(client, {"mode": "error", "rate": rate})
    n = 2000
    failures = sum(client.get("/").status_code == 500 for _ in range(n))
    sigma = (rate * (1 - rate) / n) ** 0.5
    assert abs(failures / n - rate) <= 4 * sigma, (failures, n, rate)
    assert sample(client, "http_requests_total", method="GET", path="/", status_code="500") == failures
    assert sample(client, "http_requests_total", method="GET", path="/", status_code="200") == n - failures


def test_slow_sleeps_before_later_requests_but_not_exempt_ones(canary, clock):
    assert post_chaos(canary, {"mode": "slow", "duration": 3}).status_code == 200
    assert clock.sleeps == []
    assert sample(canary, "chaos_active") == 1
    assert canary.get("/").status_code == 200
    assert clock.sleeps == [3.0]
    assert canary.get("/nope").status_code == 404
    assert clock.sleeps == [3.0, 3.0]
    canary.get("/healthz")
    canary.get("/metrics")
    post_chaos(canary, {"mode": "slow", "duration": 1.5})
    assert clock.sleeps == [3.0, 3.0]
    canary.get("/")
    assert clock.sleeps == [3.0, 3.0, 1.5]


def test_slow_requests_are_observed_with_their_delay(canary):
    post_chaos(canary, {"mode": "slow", "duration": 3})
    canary.get("/")
    bucket = "http_request_duration_seconds_bucket"
    assert sample(canary, bucket, method="GET", path="/", le="2.5") == 0
    assert sample(canary, bucket, method="GET", path="/", le="5.0") == 1
    assert sample(canary, "http_request_duration_seconds_sum", method="GET", path="/") == pytest.approx(3.0)


def test_recover_ends_chaos(canary, clock):
    post_chaos(canary, {"mode": "error", "rate": 1})
    assert canary.get("/").status_code == 500
    response = post_chaos(canary, {"mode": "recover"})
    assert response.get_json() == {"chaos": {"mode": "none"}, "previous": {"mode": "error", "rate": 1.0}}
    assert sample(canary, "chaos_active") == 0
    assert canary.get("/").status_code == 200
    post_chaos(canary, {"mode": "slow", "duration": 2})
    post_chaos(canary, {"mode": "recover"})
    canary.get("/")
    assert clock.sleeps == []


def test_a_new_mode_replaces_the_previous_one(canary, clock):
    post_chaos(canary, {"mode": "slow", "duration": 2})
    response = post_chaos(canary, {"mode": "error", "rate": 1})
    assert response.get_json()["previous"] == {"mode": "slow", "duration": 2.0}
    assert canary.get("/").status_code == 500
    assert clock.sleeps == []
    assert sample(canary, "chaos_active") == 2


def test_chaos_changes_are_logged_without_the_token(canary, caplog):
    post_chaos(canary, {"mode": "error", "rate": 0.5})
    post_chaos(canary, {"mode": "error", "rate": 0.5}, token="wrong")
    text = caplog.text
    assert "chaos set to {'mode': 'error', 'rate': 0.5}" in text
    assert "chaos refused (401)" in text
    assert TOKEN not in text and "wrong" not in text


# --- one setting for every worker process ------------------------------------------------


def test_a_setting_made_through_one_mapping_of_the_file_is_what_another_reads(tmp_path):
    from swiftdeploy_app.chaos import ChaosSetting, ChaosState

    path = str(tmp_path / "chaos.state")
    first, second = ChaosState(path), ChaosState(path)
    assert second.get() == ChaosSetting()  # a new file: no chaos
    assert first.set(ChaosSetting("error", rate=0.25)) == ChaosSetting()
    assert second.get() == ChaosSetting("error", rate=0.25) and second.active_value() == 2
    assert second.set(ChaosSetting("slow", duration=1.5)) == ChaosSetting("error", rate=0.25)
    assert first.get() == ChaosSetting("slow", duration=1.5)
    assert ChaosState(path).get() == ChaosSetting("slow", duration=1.5), "opening the file again keeps the setting"
    first.set(ChaosSetting())
    assert second.get() == ChaosSetting() and second.active_value() == 0


def test_a_reader_in_another_process_never_sees_half_a_setting(tmp_path):
    import multiprocessing

    from swiftdeploy_app.chaos import ChaosSetting, ChaosState

    path = str(tmp_path / "chaos.state")
    settings = [ChaosSetting("slow", duration=59.75), ChaosSetting("error", rate=0.125), ChaosSetting()]
    writers = [multiprocessing.get_context("fork").Process(target=_write_in_turn, args=(path, settings, 20_000))
               for _ in range(2)]
    for writer in writers:
        writer.start()
    state, seen = ChaosState(path), set()
    try:
        while any(w.is_alive() for w in writers):
            setting = state.get()
            assert setting in settings, f"read a setting no writer wrote: {setting}"
            seen.add(setting)
    finally:
        for writer in writers:
            writer.join(timeout=60)
    assert [w.exitcode for w in writers] == [0, 0]
    assert len(seen) >= 2, "the reader saw no change while the writers ran"


def _write_in_turn(path: str, settings: list, rounds: int) -> None:
    from swiftdeploy_app.chaos import ChaosState

    state = ChaosState(path)
    for number in range(rounds):
        previous = state.set(settings[number % len(settings)])
        assert previous in settings
