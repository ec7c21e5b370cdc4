"""swiftdeploy.judge.policy.OpaClient against a real OPA server, and a loopback fake for faults OPA won't produce.

Both come from tests/opakit.py: the real server runs exactly as in production; the fake only stands in
for what a healthy OPA cannot be made to do on demand: 5xx, HTML, non-JSON, malformed decisions, hangs.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from pathlib import Path

import pytest
import requests

from swiftdeploy.errors import SwiftDeployError
from swiftdeploy.judge.policy import (
    Decision,
    OpaClient,
    OpaHttpError,
    OpaMalformedDecision,
    OpaNotJson,
    OpaRefused,
    OpaTimeout,
    OpaUndefinedDecision,
    PolicyUnavailable,
)

from opakit import FakeOpa, fake_opa, free_port, running_opa

TOKEN = secrets.token_hex(32)

GOOD_INFRA = {
    "disk_path": "/var/lib/containers",
    "disk_free_bytes": 50_000_000_000,
    "disk_total_bytes": 100_000_000_000,
    "load_1m": 0.5,
    "load_5m": 0.4,
    "load_15m": 0.3,
    "cpu_count": 2,
    "memory_available_bytes": 1_000_000_000,
    "memory_total_bytes": 4_000_000_000,
}
GOOD_CANARY = {"window_seconds": 30, "requests": 200, "errors": 1, "error_rate": 0.005, "p99_ms": 120.5}


def assert_clean_message(exc: BaseException, *secrets_: str) -> str:
    """str(exc) is one non-empty line that names no secret; returns it."""
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, repr(text)
    for secret in (TOKEN, *secrets_):
        assert secret not in text
        assert all(secret not in str(arg) for arg in exc.args)
    return text


# --- the real OPA ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def opa_url(tmp_path_factory: pytest.TempPathFactory):
    with running_opa(tmp_path_factory.mktemp("opa") / "opa.log", TOKEN) as url:
        yield url


@pytest.fixture
def opa(opa_url: str):
    client = OpaClient(opa_url, TOKEN)
    yield client
    client.close()


def test_real_opa_is_healthy(opa: OpaClient):
    assert opa.healthy() is True


def test_health_needs_no_token(opa_url: str):
    assert OpaClient(opa_url, None).healthy() is True


def test_infra_allows_a_healthy_host(opa: OpaClient):
    decision = opa.decide("infra", GOOD_INFRA)
    assert decision == Decision(allow=True, reasons=(), raw={})
    assert decision.raw["result"] == {"allow": True, "reasons": []}


def test_canary_allows_a_healthy_window(opa: OpaClient):
    decision = opa.decide("canary", GOOD_CANARY)
    assert (decision.allow, decision.verdict, decision.reasons) == (True, "pass", ())
    assert decision.notes == ("no stable figures in the window: judged against the absolute limits only",)


def test_each_decision_names_the_policy_revision_it_was_made_under(opa: OpaClient):
    from opakit import POLICIES
    from swiftdeploy.render.policy import revision

    assert opa.served_revision() == revision(POLICIES)
    assert opa.decide("infra", GOOD_INFRA).revision == revision(POLICIES)
    assert opa.decide("canary", GOOD_CANARY).revision == revision(POLICIES)


def test_boundaries_pass_through_the_real_server(opa: OpaClient):
    at_limits = {"window_seconds": 30, "requests": 20, "errors": 0, "error_rate": 0.01, "p99_ms": 500}
    assert opa.decide("canary", at_limits).allow is True
    assert opa.decide("infra", {**GOOD_INFRA, "disk_free_bytes": 10_000_000_000, "load_1m": 2.0}).allow is True
    assert opa.decide("infra", {**GOOD_INFRA, "disk_free_bytes": 9_999_999_999}).allow is False


def test_infra_denies_with_reasons(opa: OpaClient):
    decision = opa.decide("infra", {**GOOD_INFRA, "disk_free_bytes": 8_500_000_000, "load_1m": 2.35})
    assert decision.allow is False
    assert decision.reasons == (
        "disk free 8.50 GB on /var/lib/containers is below the minimum 10 GB",
        "load_1m 2.35 is above the limit 2.0",
    )


def test_canary_denies_with_reasons(opa: OpaClient):
    bad = {"window_seconds": 30, "requests": 100, "errors": 52, "error_rate": 0.52, "p99_ms": 812}
    assert opa.decide("canary", bad).reasons == (
        "error rate 52.00% is above the limit 1.00%",
        "p99 812 ms is above the limit 500 ms",
    )


def test_empty_input_is_denied_not_allowed(opa: OpaClient):
    decision = opa.decide("canary", {})
    assert decision.allow is False
    assert "input.requests is missing or not a number" in decision.reasons


def test_idle_canary_window_from_metrics_is_denied(opa: OpaClient):
    """swiftdeploy.metrics gives None for error rate and p99 when nothing was served: JSON null."""
    idle = {"window_seconds": 30, "requests": 0, "errors": 0, "error_rate": None, "p99_ms": None}
    assert opa.decide("canary", idle).reasons == (
        "no error rate in the window (no requests)",
        "no latency observations in the window",
        "only 0 requests in the window; at least 20 needed",
    )


def test_undefined_decision(opa: OpaClient, opa_url: str):
    with pytest.raises(OpaUndefinedDecision) as info:
        opa.decide("nosuch", GOOD_INFRA)
    assert assert_clean_message(info.value) == (
        f"OPA at {opa_url} has no decision at data.swiftdeploy.nosuch.decision (policy not loaded?)"
    )


@pytest.mark.parametrize("token", ["wrong-token", None], ids=["wrong", "none"])
def test_wrong_or_missing_token_is_401(opa_url: str, token: str | None):
    with pytest.raises(OpaHttpError) as info:
        OpaClient(opa_url, token).decide("infra", GOOD_INFRA)
    assert info.value.status == 401
    text = assert_clean_message(info.value, "wrong-token")
    assert text == (f"OPA at {opa_url}/v1/data/swiftdeploy/infra/decision answered HTTP 401 Unauthorized: "
                    "request rejected by administrative policy")


@pytest.mark.parametrize("server_token", [None, ""], ids=["unset", "empty"])
def test_without_opa_token_nobody_gets_in(tmp_path: Path, server_token: str | None):
    with running_opa(tmp_path / "opa.log", server_token) as url:
        assert OpaClient(url, None).healthy() is True  # liveness stays open
        for token in (TOKEN, None):
            with pytest.raises(OpaHttpError) as info:
                OpaClient(url, token).decide("infra", GOOD_INFRA)
            assert info.value.status == 401
        assert requests.get(f"{url}/v1/data", headers={"Authorization": "Bearer "}, timeout=3).status_code == 401


# --- a fake OPA for the faults --------------------------------------------------------------------


@pytest.fixture
def fake():
    with fake_opa() as server:
        yield server


def ask(fake: FakeOpa, domain: str = "infra", timeout=(1.0, 3.0)) -> Decision:
    return OpaClient(fake.url, TOKEN, timeout=timeout).decide(domain, GOOD_INFRA)


def test_client_sends_bearer_token_and_input(fake: FakeOpa):
    assert ask(fake, "canary") == Decision(True, (), {})
    [request] = fake.requests
    assert request["method"] == "POST"
    assert request["path"] == "/v1/data/swiftdeploy/canary/decision?provenance=true"  # the policy revision too
    assert request["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request["body"]) == {"input": GOOD_INFRA}


def test_proxy_settings_are_ignored(fake: FakeOpa, monkeypatch: pytest.MonkeyPatch):
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert ask(fake).allow is True


def test_netrc_cannot_replace_the_token(fake: FakeOpa, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    (tmp_path / ".netrc").write_text("default login someone password other-secret\n")
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    assert ask(fake).allow is True
    assert fake.requests[0]["authorization"] == f"Bearer {TOKEN}"


def test_well_formed_deny_passes_through(fake: FakeOpa):
    fake.mode = ("json", 200, {"result": {"allow": False, "reasons": ["b", "a"]}, "decision_id": "x1"})
    decision = ask(fake)
    assert (decision.allow, decision.reasons, decision.raw["decision_id"]) == (False, ("b", "a"), "x1")


def test_500_with_json_error(fake: FakeOpa):
    fake.mode = ("json", 500, {"code": "internal_error", "message": "eval_builtin_error:\nsprintf: bad"})
    with pytest.raises(OpaHttpError) as info:
        ask(fake)
    assert info.value.status == 500
    assert assert_clean_message(info.value) == (
        f"OPA at {fake.url}/v1/data/swiftdeploy/infra/decision answered HTTP 500 Internal Server Error: "
        "eval_builtin_error: sprintf: bad"
    )


def test_502_with_html(fake: FakeOpa):
    fake.mode = ("raw", 502, b"<html>\n<body><h1>502 Bad Gateway</h1></body>\n</html>\n")
    with pytest.raises(OpaHttpError) as info:
        ask(fake)
    assert info.value.status == 502
    assert assert_clean_message(info.value).endswith("answered HTTP 502 Bad Gateway")


def test_error_message_never_echoes_the_token(fake: FakeOpa):
    fake.mode = ("json", 401, {"code": "unauthorized", "message": f"bad token {TOKEN}"})
    with pytest.raises(OpaHttpError) as info:
        ask(fake)
    assert assert_clean_message(info.value).endswith("answered HTTP 401 Unauthorized: bad token <token>")


def test_redirect_is_not_followed(fake: FakeOpa):
    fake.mode = ("redirect", 307, b"")
    with pytest.raises(OpaHttpError) as info:
        ask(fake)
    assert info.value.status == 307
    assert len(fake.requests) == 1


@pytest.mark.parametrize("body", [b"hello", b"", b"{\"result\": ", b"\xff\xfe\x00"])
def test_non_json_200(fake: FakeOpa, body: bytes):
    fake.mode = ("raw", 200, body)
    with pytest.raises(OpaNotJson) as info:
        ask(fake)
    assert "with a body that is not a JSON object (text/html" in assert_clean_message(info.value)


def test_json_that_is_not_an_object(fake: FakeOpa):
    fake.mode = ("json", 200, [{"result": {"allow": True, "reasons": []}}])
    with pytest.raises(OpaNotJson):
        ask(fake)


def test_200_without_result_is_undefined(fake: FakeOpa):
    fake.mode = ("json", 200, {})
    with pytest.raises(OpaUndefinedDecision) as info:
        ask(fake, "canary")
    assert assert_clean_message(info.value) == (
        f"OPA at {fake.url} has no decision at data.swiftdeploy.canary.decision (policy not loaded?)"
    )


@pytest.mark.parametrize(
    "result",
    [
        {"allow": "yes", "reasons": []},
        {"allow": 1, "reasons": []},
        {"allow": None, "reasons": []},
        {"reasons": []},
        {"allow": True, "reasons": "none"},
        {"allow": False, "reasons": None},
        {"allow": True},
        {"allow": False, "reasons": ["ok", 1]},
        {"allow": False, "reasons": [{"msg": "x"}]},
        {"allow": True, "reasons": ["allowed yet explained"]},
        {"allow": True, "reasons": [], "verdict": "insufficient"},
        {"allow": False, "reasons": ["x"], "verdict": "pass"},
        {"allow": False, "reasons": ["x"], "verdict": "maybe"},
        {"allow": False, "reasons": ["x"], "verdict": "fail", "notes": "none"},
        {"allow": True, "reasons": [], "verdict": "pass", "notes": [3]},
        True,
        None,
        [],
        "allow",
    ],
    ids=lambda r: json.dumps(r),
)
def test_malformed_decision(fake: FakeOpa, result):
    fake.mode = ("json", 200, {"result": result})
    with pytest.raises(OpaMalformedDecision) as info:
        ask(fake)
    text = assert_clean_message(info.value)
    assert text.startswith(f"OPA's data.swiftdeploy.infra.decision at {fake.url}/v1/data/swiftdeploy/infra/decision")
    assert json.dumps(result) in text


def test_a_verdict_and_notes_are_carried(fake: FakeOpa):
    fake.mode = ("json", 200, {"result": {"allow": False, "reasons": ["only 3 requests"], "verdict": "insufficient",
                                          "notes": ["stable not compared"]}})
    decision = ask(fake)
    assert (decision.allow, decision.verdict, decision.notes) == (False, "insufficient", ("stable not compared",))


def test_malformed_decision_message_is_bounded_and_scrubbed(fake: FakeOpa):
    fake.mode = ("json", 200, {"result": {"allow": "yes", "reasons": [TOKEN] * 50}})
    with pytest.raises(OpaMalformedDecision) as info:
        ask(fake)
    assert len(assert_clean_message(info.value)) < 400


def test_hang_after_accept_times_out(fake: FakeOpa):
    fake.mode = ("hang", 0, None)
    start = time.monotonic()
    with pytest.raises(OpaTimeout) as info:
        ask(fake, timeout=(1.0, 1.0))
    assert time.monotonic() - start < 3
    assert assert_clean_message(info.value) == (
        f"OPA at {fake.url}/v1/data/swiftdeploy/infra/decision did not answer within 1 s"
    )


def test_hang_in_the_middle_of_the_body_times_out(fake: FakeOpa):
    fake.mode = ("hang-body", 200, b'{"result": {"allow": tr')
    start = time.monotonic()
    with pytest.raises(OpaTimeout):
        ask(fake, timeout=(1.0, 1.0))
    assert time.monotonic() - start < 3


def test_connection_closed_without_an_answer(fake: FakeOpa):
    fake.mode = ("close", 0, None)
    with pytest.raises(OpaRefused) as info:
        ask(fake)
    assert assert_clean_message(info.value) == (
        f"could not ask OPA at {fake.url}: the connection failed or closed before an answer"
    )


def test_closed_port_is_refused():
    url = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(OpaRefused) as info:
        OpaClient(url, TOKEN).decide("infra", GOOD_INFRA)
    assert time.monotonic() - start < 3
    assert assert_clean_message(info.value) == f"could not ask OPA at {url}: connection refused"


def test_connect_timeout_when_nobody_accepts():
    """A listener whose accept queue is full drops new SYNs (Linux): the connect never completes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        fillers = []
        try:
            for _ in range(8):  # fill the backlog; extra connects just stay pending
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(listener.getsockname())
                fillers.append(filler)
            start = time.monotonic()
            with pytest.raises(OpaTimeout) as info:
                OpaClient(url, TOKEN, timeout=(0.5, 1.0)).decide("infra", GOOD_INFRA)
            assert time.monotonic() - start < 3
            assert assert_clean_message(info.value) == f"could not ask OPA at {url}: no connection within 0.5 s"
        finally:
            for filler in fillers:
                filler.close()


def test_every_failure_is_a_policy_unavailable_and_a_swiftdeploy_error():
    for cls in (OpaRefused, OpaTimeout, OpaHttpError, OpaNotJson, OpaUndefinedDecision, OpaMalformedDecision):
        assert issubclass(cls, PolicyUnavailable) and issubclass(cls, SwiftDeployError)


# --- input validation and health ------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["", "Infra", "../system", "infra/decision", "a b", "infra?x=1", "1x", None])
def test_bad_domain_is_rejected_before_any_request(fake: FakeOpa, domain):
    with pytest.raises(ValueError):
        OpaClient(fake.url, TOKEN).decide(domain, {})
    assert fake.requests == []


@pytest.mark.parametrize(
    "url", ["", "127.0.0.1:8181", "ftp://h:1", "http://user:pw@h:1", "http://h:x", "http://h:1/v1", "http://h:1?a=b"]
)
def test_bad_base_url_is_rejected(url: str):
    with pytest.raises(SwiftDeployError) as info:
        OpaClient(url, TOKEN)
    assert "pw" not in str(info.value)


@pytest.mark.parametrize("token", ["", "has space", "new\nline", "tab\t", "ünï"])
def test_bad_token_is_rejected_without_echoing_it(token: str):
    with pytest.raises(SwiftDeployError) as info:
        OpaClient("http://127.0.0.1:8181", token)
    assert (token or "\x00") not in str(info.value)


def test_healthy_is_false_on_errors(fake: FakeOpa):
    fake.mode = ("json", 500, {"error": "not ready"})
    assert OpaClient(fake.url, TOKEN).healthy() is False
    assert OpaClient(f"http://127.0.0.1:{free_port()}", TOKEN).healthy() is False


def test_healthy_is_false_and_quick_on_a_hang(fake: FakeOpa):
    fake.mode = ("hang", 0, None)
    start = time.monotonic()
    assert OpaClient(fake.url, TOKEN, timeout=(5.0, 10.0)).healthy() is False
    assert time.monotonic() - start < 3
    assert fake.requests[0]["path"] == "/health"
