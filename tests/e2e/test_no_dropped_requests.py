"""No request fails while promote:canary, promote:stable (a new stable version) and rollback run."""

import time

import pytest
import requests

from stackkit import SteadyLoad, make_project, manifest_of, ok, public_url, remove_everything, require_engine, swiftdeploy

pytestmark = [pytest.mark.e2e, pytest.mark.every_engine]


@pytest.fixture
def project(tmp_path):
    require_engine()
    project = make_project(tmp_path / "project", canary={"version": "1.1.0", "weight": 40})
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
    assert load.failures() == {}, load.outcomes
    assert manifest_of(project).services.version == "1.1.0" and manifest_of(project).services.mode == "stable"
