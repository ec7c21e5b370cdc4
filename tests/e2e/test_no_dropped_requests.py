"""No request fails while promote:canary, promote:stable (a new stable version) and rollback run."""

import time

import pytest
import requests

from stackkit import (SteadyLoad, dropped, make_project, manifest_of, nginx_errors, ok, public_url, remove_everything,
                      require_engine, swiftdeploy)

pytestmark = [pytest.mark.e2e, pytest.mark.every_engine]


@pytest.fixture
def project(tmp_path):
    require_engine()
    project = make_project(tmp_path / "project", canary={"version": "1.1.0", "weight": 40})
    yield project
    remove_everything(project)


@pytest.fixture
def whole_canary(tmp_path):
    require_engine()
    project = make_project(tmp_path / "project", canary={"version": "1.1.0", "weight": 100})
    yield project
    remove_everything(project)


def versions_served(url: str, n: int = 30) -> set[str]:
    return {requests.get(url + "/", headers={"Connection": "close"}, timeout=5).json()["version"] for _ in range(n)}


def test_promote_and_rollback_under_steady_load_drop_nothing(project):
    ok(swiftdeploy(project, "deploy"))
    url = public_url(project)
    with SteadyLoad(url) as load:
        ok(swiftdeploy(project, "promote", "canary"))
        assert versions_served(url) == {"1.0.0", "1.1.0"}, "weight 40: both versions answer"
        ok(swiftdeploy(project, "promote", "stable"))  # its gate reads a window of this load; stable is replaced
        assert versions_served(url) == {"1.1.0"}
        ok(swiftdeploy(project, "promote", "canary"))
        ok(swiftdeploy(project, "rollback"))
        time.sleep(1)
    print(f"\nsteady load through nginx: {load.total} requests, outcomes {dict(load.outcomes)}")
    assert load.total >= 1000, load.outcomes
    assert load.failures() == {}, dropped(load, project)
    assert manifest_of(project).services.version == "1.1.0" and manifest_of(project).services.mode == "stable"


def test_a_slow_request_in_flight_when_rollback_removes_the_canary_is_still_answered(project):
    """rollback reroutes, then waits for nginx's old workers to finish what they took before removing the canary:
    the request outlasts the engine's stop timeout (5 s), so the app's own graceful stop would not save it."""
    import threading

    ok(swiftdeploy(project, "deploy"))
    ok(swiftdeploy(project, "promote", "canary"))
    ok(swiftdeploy(project, "chaos", "slow", "--duration", "8"))
    url, answers = public_url(project), []

    def slow_request():
        try:
            answers.append(requests.get(url + "/", headers={"Connection": "close", "X-SwiftDeploy-Track": "canary"},
                                        timeout=20))
        except requests.RequestException as err:
            answers.append(err)

    in_flight = threading.Thread(target=slow_request)
    in_flight.start()
    time.sleep(1)
    started = time.monotonic()
    ok(swiftdeploy(project, "rollback"))
    in_flight.join(timeout=30)
    (answer,) = answers
    assert not isinstance(answer, Exception), answer
    assert answer.status_code == 200 and answer.json()["version"] == "1.1.0", answer.text
    assert time.monotonic() - started >= 6, "rollback waited for the request the canary was still answering"


def test_a_canary_at_weight_100_answers_every_new_client_from_the_moment_promote_returns(whole_canary):
    """During the reload that routes the canary, an old worker may take a request a new worker sends to the
    canary's socket: its answer must not count as a canary failure, which would send every new client to
    stable for fail_timeout (5 s) after promote said the canary is routed."""
    ok(swiftdeploy(whole_canary, "deploy"))
    url = public_url(whole_canary)
    for _ in range(3):
        with SteadyLoad(url, threads=6, pause=0) as load:
            time.sleep(0.5)
            ok(swiftdeploy(whole_canary, "promote", "canary"))
            assert versions_served(url, 20) == {"1.1.0"}, nginx_errors(whole_canary, levels=("warn",))
            ok(swiftdeploy(whole_canary, "rollback"))
            assert versions_served(url, 20) == {"1.0.0"}
        assert load.failures() == {}, dropped(load, whole_canary)
    assert not [line for line in nginx_errors(whole_canary, 100, levels=("warn",)) if "disabled" in line]
