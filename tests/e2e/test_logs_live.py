"""`logs`: the containers' output through the engine, behind each line's role; --follow shows a line at once."""

import signal
import subprocess
import sys
import time

import pytest

from stackkit import make_project, ok, remove_everything, require_engine, swiftdeploy

pytestmark = [pytest.mark.e2e, pytest.mark.every_engine]


@pytest.fixture
def project(tmp_path):
    require_engine()
    project = make_project(tmp_path / "project", canary={"version": "1.1.0", "weight": 20})
    yield project
    remove_everything(project)


def test_logs_shows_each_role_and_follow_prints_the_canarys_line_within_a_second(project):
    ok(swiftdeploy(project, "deploy"))
    ok(swiftdeploy(project, "promote", "canary"))
    shown = ok(swiftdeploy(project, "logs", "--tail", "50")).stdout.splitlines()
    assert {line.split(" | ")[0].strip() for line in shown} >= {"stable", "canary"}, shown
    only_opa = ok(swiftdeploy(project, "logs", "opa", "--since", "1h")).stdout.splitlines()
    assert only_opa and all(line.startswith("opa | ") for line in only_opa), only_opa[:3]

    follow = subprocess.Popen([sys.executable, str(project / "swiftdeploy"), "logs", "canary", "--follow", "--tail", "0"],
                              cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              # started as a script's `&` job is: SIGINT ignored, which Ctrl-C must still end
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        time.sleep(2)  # it has attached to the container
        ok(swiftdeploy(project, "chaos", "slow", "--duration", "0.1"))
        said = time.monotonic()
        line = follow.stdout.readline()
        seen = time.monotonic()
        assert line.startswith("canary | ") and "chaos set to" in line, line
        assert seen - said < 1.0, f"the line came {seen - said:.2f} s after the change"
        follow.send_signal(signal.SIGINT)
        out, err = follow.communicate(timeout=10)
    finally:
        follow.kill()
    assert follow.returncode == 0 and "Traceback" not in err, err
